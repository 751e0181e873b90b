"""Convolutional networks: chainrule versus PyTorch CPU eager, in one process.

* training: seconds per 1,000 MNIST-shaped images (batch 100, cross-entropy, plain SGD
  step), for SimpleConvNet and DeepConvNet;
* inference: forward-only throughput in images/s (batch 100, evaluation mode, no graph);
* memory: peak bytes allocated by NumPy during one DeepConvNet training step at batch
  100 (tracemalloc sees NumPy's allocations), next to the step's input batch.

The two frameworks take turns, ``--rounds`` times, each round timing ``--batches``
batches of each, so that a change in the machine's load hits both; the medians and
their ratio are printed (and the ratio of the best rounds, which is steadier on a
shared machine). PyTorch gets as many threads as NumPy's BLAS. Random data of MNIST's
shape is used unless ``--data-dir`` points at MNIST's IDX files (the timing is the
same). Run by hand, not in CI:

    python benchmarks/bench_conv.py [--rounds 7] [--batches 10] [--data-dir DIR]
                                    [--threads N] [--tune-malloc]

On a machine whose cores are busy with other work, use ``--threads 1``: a BLAS call
split over two threads waits for the slower one, and a thread that shares its core
with another process can make a matrix product many times slower than one thread.

``--tune-malloc`` keeps freed memory in glibc's heap (``mallopt``: mmap threshold
32 MiB, no trimming) for both frameworks. By default glibc hands large freed blocks
back to the kernel, so every training step page-faults its arrays in again; for
chainrule's many NumPy temporaries that is about a third of a SimpleConvNet step.
The same happens with ``MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=
4000000000`` in the environment.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import chainrule  # noqa: E402
import chainrule.functional as F  # noqa: E402
from chainrule.nn.convnets import DeepConvNet, SimpleConvNet  # noqa: E402

BATCH, LR = 100, 0.01


def load(data_dir: str | None, count: int) -> tuple[np.ndarray, np.ndarray]:
    if data_dir:
        from chainrule.datasets import mnist

        x, y = mnist("train", data_dir=data_dir)
        return x[:count].astype(np.float32), y[:count]
    rng = np.random.default_rng(0)
    return rng.random((count, 784), dtype=np.float32), rng.integers(0, 10, count)


# --------------------------------------------------------------------------- chainrule
def chainrule_step(model: chainrule.nn.Module) -> Callable[[np.ndarray, np.ndarray], None]:
    params = list(model.parameters())

    def step(x: np.ndarray, y: np.ndarray) -> None:
        loss = F.cross_entropy(model(x), y)
        for p in params:
            p.grad = None
        loss.backward()
        for p in params:
            p.data -= LR * p.grad.data

    return step


def chainrule_predict(model: chainrule.nn.Module) -> Callable[[np.ndarray], None]:
    def predict(x: np.ndarray) -> None:
        with chainrule.no_grad():
            model(x)

    return predict


# --------------------------------------------------------------------------- PyTorch
def torch_simple(torch):
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(1, 30, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(30 * 12 * 12, 100), nn.ReLU(), nn.Linear(100, 10))


def torch_deep(torch):
    nn = torch.nn
    layers, channels = [], 1
    for index, (out, pad) in enumerate(zip((16, 16, 32, 32, 64, 64), (1, 1, 1, 2, 1, 1))):
        layers += [nn.Conv2d(channels, out, 3, padding=pad), nn.ReLU()]
        if index % 2:
            layers.append(nn.MaxPool2d(2))
        channels = out
    layers += [nn.Flatten(), nn.Linear(64 * 4 * 4, 50), nn.ReLU(), nn.Dropout(0.5),
               nn.Linear(50, 10), nn.Dropout(0.5)]
    return nn.Sequential(*layers)


def torch_step(torch, model) -> Callable[[np.ndarray, np.ndarray], None]:
    params = list(model.parameters())

    def step(x: np.ndarray, y: np.ndarray) -> None:
        xt = torch.from_numpy(x).reshape(-1, 1, 28, 28)
        loss = torch.nn.functional.cross_entropy(model(xt), torch.from_numpy(y))
        for p in params:
            p.grad = None
        loss.backward()
        with torch.no_grad():
            for p in params:
                p -= LR * p.grad

    return step


def torch_predict(torch, model) -> Callable[[np.ndarray], None]:
    def predict(x: np.ndarray) -> None:
        with torch.no_grad():
            model(torch.from_numpy(x).reshape(-1, 1, 28, 28))

    return predict


# --------------------------------------------------------------------------- timing
def seconds_per_batch(run: Callable[..., None], x: np.ndarray, y: np.ndarray | None,
                      batches: int) -> float:
    start = time.perf_counter()
    for i in range(batches):
        lo = (i * BATCH) % len(x)
        if y is None:
            run(x[lo:lo + BATCH])
        else:
            run(x[lo:lo + BATCH], y[lo:lo + BATCH])
    return (time.perf_counter() - start) / batches


def compare(runs: dict[str, Callable[..., None]], x: np.ndarray, y: np.ndarray | None,
            rounds: int, batches: int) -> dict[str, list[float]]:
    """Seconds per batch of each run in every round, the runs taking turns."""
    for run in runs.values():  # warm up: first-call costs, allocator, BLAS threads
        seconds_per_batch(run, x, y, 2)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            # let the other library's worker threads (which spin a while after their
            # work) go to sleep, so that they do not compete with this one's
            time.sleep(0.2)
            times[name].append(seconds_per_batch(run, x, y, batches))
    return times


def tune_malloc() -> bool:
    """Ask glibc to keep freed memory for reuse (see the module docstring)."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_mmap_threshold, 32 * 2**20)
                    and libc.mallopt(m_trim_threshold, 2**31 - 1))
    except (OSError, AttributeError):
        return False


def peak_memory(step: Callable[[np.ndarray, np.ndarray], None], x: np.ndarray,
                y: np.ndarray) -> int:
    """Peak bytes allocated (above what was allocated before) during one step."""
    step(x, y)  # warm up
    tracemalloc.start()
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    step(x, y)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--tune-malloc", action="store_true")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for NumPy's BLAS and PyTorch (default: NumPy's)")
    args = parser.parse_args()
    if args.tune_malloc and not tune_malloc():
        print("--tune-malloc: mallopt is not available (not glibc?); running without")
    x, y = load(args.data_dir, BATCH * args.batches)

    from threadpoolctl import threadpool_info, threadpool_limits

    if args.threads:
        threadpool_limits(args.threads, user_api="blas")  # stays in force until exit
    threads = max((p["num_threads"] for p in threadpool_info()
                   if p.get("user_api") == "blas"), default=1)
    try:
        import torch

        torch.set_num_threads(threads)
        torch.manual_seed(0)
    except ImportError:
        torch = None
    print(f"batch {BATCH}, float32, {args.rounds} rounds of {args.batches} batches, "
          f"{threads} BLAS thread{'s' if threads > 1 else ''}"
          + (f"; torch {torch.__version__} with {torch.get_num_threads()}"
             if torch else "; PyTorch not installed")
          + ("; malloc tuned" if args.tune_malloc else ""))
    print(f"{'median (best)':36}{'chainrule':>18}{'pytorch':>18}{'time ratio':>15}")

    def row(label: str, times: dict[str, list[float]], scale: Callable[[float], float],
            fmt: str) -> None:
        """One line: median and best of each framework, and chainrule's time divided by
        PyTorch's (for the medians, and in parentheses for the best rounds)."""
        cells, ratio = [], ""
        for name in ("chainrule", "pytorch"):
            t = times.get(name)
            cells.append(f"{format(scale(statistics.median(t)), fmt)} "
                         f"({format(scale(min(t)), fmt)})" if t else "-")
        if "pytorch" in times:
            ours, theirs = times["chainrule"], times["pytorch"]
            ratio = (f"{statistics.median(ours) / statistics.median(theirs):.2f} "
                     f"({min(ours) / min(theirs):.2f})")
        print(f"{label:36}{cells[0]:>18}{cells[1]:>18}{ratio:>15}")

    for name, cr_model, th_model in (("SimpleConvNet", SimpleConvNet(seed=0), torch_simple),
                                     ("DeepConvNet", DeepConvNet(seed=0), torch_deep)):
        runs = {"chainrule": chainrule_step(cr_model)}
        if torch:
            th = th_model(torch)
            runs["pytorch"] = torch_step(torch, th)
        batches = args.batches if name == "SimpleConvNet" else max(2, args.batches // 5)
        row(f"{name} train, s / 1000 images", compare(runs, x, y, args.rounds, batches),
            lambda t: t * 1000 / BATCH, ".3f")

        cr_model.eval()
        runs = {"chainrule": chainrule_predict(cr_model)}
        if torch:
            th.eval()
            runs["pytorch"] = torch_predict(torch, th)
        # throughput: images per second (the ratio is still of times)
        row(f"{name} inference, images / s", compare(runs, x, None, args.rounds, batches),
            lambda t: BATCH / t, ",.0f")
        cr_model.train()

    deep = DeepConvNet(seed=0)
    peak = peak_memory(chainrule_step(deep), x[:BATCH], y[:BATCH])
    print(f"DeepConvNet training step at batch {BATCH}: peak NumPy memory "
          f"{peak / 2**20:.1f} MiB (tracemalloc)")


if __name__ == "__main__":
    main()
