"""Convolutional networks: chainrule versus PyTorch CPU eager, in one process.

For SimpleConvNet and DeepConvNet (batch 100, MNIST-shaped, cross-entropy, plain SGD
step), at each thread count of ``--threads`` (default: 1 and 2):

* training: seconds per 1,000 images of each framework and their ratio, and the ratio
  round by round (each chainrule round over the PyTorch round beside it: its median
  and middle half, which a slow spell of a shared machine moves less);
* the GEMM floor: the step's multiply-adds (convolutions and affine layers, forward
  and both gradients) at the speed NumPy's BLAS multiplies a large square float32
  matrix, and each framework's step as a multiple of it;
* page faults per step (minor faults, ``getrusage``) of each framework;
* each convolution algorithm's share of chainrule's step (time inside ``_convolve``
  and ``_conv_weight_grad``, by the algorithm the rule chose, and col2im; "convolution"
  counts forward passes and input gradients computed alone, "dx and dW in one pass"
  the backward passes that compute both, see ``_conv_grads``);
* inference: forward-only throughput in images/s (evaluation mode, no graph).

Then the working memory of one DeepConvNet training step at batch 100: how much a fresh
process's peak resident memory grows during its first step, for each framework alike;
and for chainrule also NumPy's peak allocations (tracemalloc), counting the memory its
convolutions keep for reuse (``chainrule/ops/_scratch.py``).

``--algorithms`` instead times each convolution algorithm on each convolution of the
two networks (forward, input gradient, weight gradient): the measurements behind the
rule in ``chainrule/ops/conv.py`` (``_choose_algorithm``), tabled in
docs/convolution.md.

The two frameworks take turns, ``--rounds`` times, each round timing ``--batches``
batches of each (DeepConvNet, whose step is five times longer, a fifth as many, at
least 2), so that a change in the machine's load hits both; the medians and
their ratio are printed (and the ratio of the best rounds). ``--clock cpu`` times with
the process's CPU time instead of the wall clock: on a machine shared with other work
it does not count the time this process waits for a core (only meaningful at one
thread, where it is printed; two threads are always timed by the wall clock). Random
data of MNIST's shape is used unless ``--data-dir`` points at MNIST's IDX files (the
timing is the same). Run by hand, not in CI:

    python benchmarks/bench_conv.py [--threads 1 2] [--rounds 7] [--batches 10]
                                    [--clock wall|cpu] [--data-dir DIR] [--algorithms]

PyTorch runs the textbook's order of layers (ReLU, then max-pool); chainrule's models
pool first, which gives the same result (see ``chainrule/nn/convnets.py``).
"""

from __future__ import annotations

import argparse
import functools
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import chainrule  # noqa: E402
import chainrule.functional as F  # noqa: E402
import chainrule.ops.conv as conv_ops  # noqa: E402
from chainrule.nn.convnets import DeepConvNet, SimpleConvNet  # noqa: E402
from chainrule.ops import _scratch  # noqa: E402

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
CLOCK = time.perf_counter  # or time.process_time (--clock cpu, one thread)


def seconds_per_batch(run: Callable[..., None], x: np.ndarray, y: np.ndarray | None,
                      batches: int) -> float:
    start = CLOCK()
    for i in range(batches):
        lo = (i * BATCH) % len(x)
        if y is None:
            run(x[lo:lo + BATCH])
        else:
            run(x[lo:lo + BATCH], y[lo:lo + BATCH])
    return (CLOCK() - start) / batches


def minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def compare(runs: dict[str, Callable[..., None]], x: np.ndarray, y: np.ndarray | None,
            rounds: int, batches: int,
            faults: dict[str, list[float]] | None = None) -> dict[str, list[float]]:
    """Seconds per batch of each run in every round, the runs taking turns (and, into
    ``faults``, each run's page faults per batch)."""
    for run in runs.values():  # warm up: first-call costs, allocator, BLAS threads
        seconds_per_batch(run, x, y, 2)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            # let the other library's worker threads (which spin a while after their
            # work) go to sleep, so that they do not compete with this one's
            time.sleep(0.2)
            before = minor_faults()
            times[name].append(seconds_per_batch(run, x, y, batches))
            if faults is not None:
                faults.setdefault(name, []).append((minor_faults() - before) / batches)
    return times


# --------------------------------------------------------------------------- the floor
def step_flops(model: chainrule.nn.Module) -> float:
    """Floating-point operations of the matrix products of one training step at batch
    BATCH: 2 per multiply-add, forward, and both gradients (the first convolution's
    input gradient is not needed)."""
    from chainrule.nn.conv import Conv2d
    from chainrule.nn.layers import Linear

    flops, first = 0.0, True
    x = chainrule.Tensor(np.zeros((BATCH, *model.input_dim), dtype=np.float32))
    with chainrule.no_grad():
        for layer in model.children():  # the layers in the order the model runs them
            y = layer(x)
            if isinstance(layer, (Conv2d, Linear)):
                weight = layer.weight.shape
                inputs_per_output = np.prod(weight) / \
                    (weight[0] if isinstance(layer, Conv2d) else weight[1])
                macs = float(np.prod(y.shape)) * float(inputs_per_output)
                flops += 2 * macs * (2 if first else 3)  # forward, dW (and dx)
                first = False
            x = y
    return flops


def gemm_rate(threads: int, repeats: int = 10) -> float:
    """FLOP/s of NumPy's float32 matrix product of two 1024×1024 matrices on
    ``threads`` BLAS threads (best of ``repeats``, timed by CLOCK)."""
    from threadpoolctl import threadpool_limits

    a = np.random.default_rng(0).random((1024, 1024), dtype=np.float32)
    with threadpool_limits(threads, user_api="blas"):
        a @ a
        best = np.inf
        for _ in range(repeats):
            start = CLOCK()
            a @ a
            best = min(best, CLOCK() - start)
    return 2 * 1024**3 / best


def _timed(fn: Callable[[], object]) -> float:
    start = CLOCK()
    fn()
    return CLOCK() - start


# --------------------------------------------------------------------------- shares
class AlgorithmShares:
    """Time spent in each convolution algorithm while active (wraps conv.py's passes)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.originals = {name: getattr(conv_ops, name)
                          for name in ("_convolve", "_conv_weight_grad", "_fold")}

    def _add(self, key: str, start: float) -> None:
        self.seconds[key] = self.seconds.get(key, 0.0) + CLOCK() - start

    def __enter__(self) -> AlgorithmShares:
        convolve, weight_grad, fold = self.originals.values()

        def timed_convolve(padded, weight, window, out_size, groups, algorithm, bias=None,
                           correlate=None):
            start = CLOCK()
            out = convolve(padded, weight, window, out_size, groups, algorithm, bias,
                           correlate)
            what = "convolution" if correlate is None else "dx and dW in one pass"
            self._add(f"{algorithm}: {what}", start)
            return out

        def timed_weight_grad(padded, g, weight_shape, window, groups):
            algorithm = conv_ops._choose_algorithm(window, padded.shape[0], g.shape[1],
                                                   g.shape[2:], groups, weight_grad=True)
            start = CLOCK()
            out = weight_grad(padded, g, weight_shape, window, groups)
            self._add(f"{algorithm}: weight gradient", start)
            return out

        def timed_fold(*args):
            start = CLOCK()
            out = fold(*args)
            self._add("col2im", start)
            return out

        conv_ops._convolve, conv_ops._conv_weight_grad = timed_convolve, timed_weight_grad
        conv_ops._fold = timed_fold
        return self

    def __exit__(self, *exc: object) -> None:
        for name, original in self.originals.items():
            setattr(conv_ops, name, original)


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


def numpy_working_memory(step: Callable[[np.ndarray, np.ndarray], None], x: np.ndarray,
                         y: np.ndarray) -> tuple[int, int]:
    """chainrule's working memory in one (warm) step, by tracemalloc: the peak of NumPy's
    allocations above what was allocated before, plus the memory the convolutions keep
    for reuse between steps (it is part of every step's working set); and that part."""
    step(x, y)  # warm up: the kept memory reaches its size
    step(x, y)
    tracemalloc.start()
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    kept = _scratch.scratch_bytes()
    step(x, y)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak - before + kept, kept


def rss_growth(framework: str) -> int:
    """How many bytes a fresh process's peak resident memory grows during its first
    DeepConvNet training step (batch 100, model and data made before): the same
    measure for both frameworks, allocator and library buffers included."""
    code = f"""
import sys
sys.argv = ["bench_conv.py"]
sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
import bench_conv as B
x, y = B.load(None, B.BATCH)
if {framework!r} == "pytorch":
    import torch
    torch.set_num_threads(1)
    step = B.torch_step(torch, B.torch_deep(torch))
else:
    step = B.chainrule_step(B.DeepConvNet(seed=0))
def status(field):  # VmHWM, not ru_maxrss: that one starts at the parent's peak
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field))
before = status("VmRSS:")
step(x, y)
print(status("VmHWM:") - before)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return int(out.stdout.split()[-1])


# --------------------------------------------------------------------------- algorithms
NETWORK_CONVS = [  # name, in, out, image size, kernel, padding (batch 100)
    ("DeepConvNet conv1", 1, 16, 28, 3, 1), ("DeepConvNet conv2", 16, 16, 28, 3, 1),
    ("DeepConvNet conv3", 16, 32, 14, 3, 1), ("DeepConvNet conv4", 32, 32, 14, 3, 2),
    ("DeepConvNet conv5", 32, 64, 8, 3, 1), ("DeepConvNet conv6", 64, 64, 8, 3, 1),
    ("SimpleConvNet conv1", 1, 30, 28, 5, 0),
    # wider layers than the networks', where the rule's Winograd bound lies
    ("wider", 64, 64, 16, 3, 1), ("wider", 128, 128, 14, 3, 1)]


def algorithm_table(rounds: int) -> None:
    """Milliseconds of each algorithm for each pass of each of the networks' convolutions
    (best of ``rounds``, the algorithms taking turns), and the rule's choice."""
    rng = np.random.default_rng(0)
    print(f"{'convolution (batch 100)':34}{'pass':>8}" + "".join(
        f"{a:>11}" for a in conv_ops.ALGORITHMS) + "   rule")
    for name, c, o, size, k, p in NETWORK_CONVS:
        x = conv_ops._batch_innermost(rng.standard_normal((BATCH, c, size, size)).astype(
            np.float32))
        w = rng.standard_normal((o, c, k, k)).astype(np.float32)
        window = conv_ops.Window.make(k, 1, p)
        out = window.output_size(x.shape, "conv2d")
        g = conv_ops._batch_innermost(rng.standard_normal((BATCH, o, *out)).astype(
            np.float32))
        padded = conv_ops._pad_stored(x, window, out)
        passes = {
            "forward": functools.partial(conv_ops._conv_forward, x, w, None, window, 1),
            "dx": functools.partial(conv_ops._conv_input_grad, g, w, x.shape, window, 1),
            "dW": functools.partial(conv_ops._conv_weight_grad, padded, g, w.shape, window,
                                    1)}
        algorithms = [a for a in conv_ops.ALGORITHMS
                      if a != "winograd" or conv_ops._winograd_applies(window, 1)]
        for pass_name, run in passes.items():
            best = {}
            for _ in range(rounds):
                for algorithm in algorithms:
                    with conv_ops.use_algorithm(algorithm):
                        seconds = _timed(run)
                    best[algorithm] = min(best.get(algorithm, np.inf), seconds)
            shape = (o, c, out) if pass_name == "dx" else (c, o, out)
            size_out = tuple(x.shape[2:]) if pass_name == "dx" else out
            rule = conv_ops._choose_algorithm(
                conv_ops.Window((k, k), (1, 1), (k - 1 - p, k - 1 - p))
                if pass_name == "dx" else window, shape[0], shape[1], size_out, 1,
                weight_grad=pass_name == "dW")
            print(f"{name + f' {c}→{o} {size}×{size}':34}{pass_name:>8}" + "".join(
                f"{best[a] * 1e3:11.2f}" if a in best else f"{'-':>11}"
                for a in conv_ops.ALGORITHMS) + f"   {rule}")


def main() -> None:
    global CLOCK
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="thread counts for chainrule (chainrule.set_num_threads) and PyTorch "
                             "(default: 1 2)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="time one-thread runs by the wall clock or by this "
                             "process's CPU time (steadier on a busy machine)")
    parser.add_argument("--algorithms", action="store_true",
                        help="time each convolution algorithm on the networks' shapes")
    parser.add_argument("--no-memory", action="store_true",
                        help="skip the working-memory measurement")
    args = parser.parse_args()
    if args.rounds < 1 or args.batches < 1 or min(args.threads) < 1:
        parser.error("--rounds, --batches and --threads must be at least 1")
    x, y = load(args.data_dir, BATCH * args.batches)

    try:
        import torch

        torch.manual_seed(0)
    except ImportError:
        torch = None
    if args.algorithms:
        chainrule.set_num_threads(args.threads[0])
        CLOCK = time.process_time if args.clock == "cpu" and args.threads[0] == 1 \
            else time.perf_counter
        print(f"milliseconds, best of {args.rounds}, {args.threads[0]} thread(s), "
              f"{'CPU time' if CLOCK is time.process_time else 'wall clock'}")
        algorithm_table(args.rounds)
        return
    for threads in args.threads:
        chainrule.set_num_threads(threads)  # as `chainrule --threads N` computes
        CLOCK = time.process_time if args.clock == "cpu" and threads == 1 \
            else time.perf_counter
        if torch:
            torch.set_num_threads(threads)
        rate = gemm_rate(threads)
        print(f"\nbatch {BATCH}, float32, {args.rounds} rounds of {args.batches} batches, "
              f"{threads} thread{'s' if threads > 1 else ''}, "
              f"{'CPU time' if CLOCK is time.process_time else 'wall clock'}"
              + (f"; torch {torch.__version__}" if torch else "; PyTorch not installed")
              + f"; NumPy's float32 GEMM {rate / 1e9:.0f} GFLOP/s")
        print(f"{'median (best)':36}{'chainrule':>18}{'pytorch':>18}{'time ratio':>15}")
        run_networks(args, torch, x, y, rate)
    if not args.no_memory:
        deep = DeepConvNet(seed=0)
        working, kept = numpy_working_memory(chainrule_step(deep), x[:BATCH], y[:BATCH])
        print(f"\nDeepConvNet training step at batch {BATCH}, working memory:")
        print(f"  chainrule, NumPy's peak allocations (tracemalloc): {working / 2**20:.1f} "
              f"MiB, of which {kept / 2**20:.1f} MiB kept for reuse between steps")
        for framework in ("chainrule", "pytorch") if torch else ("chainrule",):
            print(f"  {framework}, growth of a fresh process's peak resident memory in "
                  f"its first step: {rss_growth(framework) / 2**20:.1f} MiB")


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


def run_networks(args: argparse.Namespace, torch, x: np.ndarray, y: np.ndarray,
                 rate: float) -> None:
    for name, cr_model, th_model in (("SimpleConvNet", SimpleConvNet(seed=0), torch_simple),
                                     ("DeepConvNet", DeepConvNet(seed=0), torch_deep)):
        runs = {"chainrule": chainrule_step(cr_model)}
        if torch:
            th = th_model(torch)
            runs["pytorch"] = torch_step(torch, th)
        batches = args.batches if name == "SimpleConvNet" else max(2, args.batches // 5)
        faults: dict[str, list[float]] = {}
        times = compare(runs, x, y, args.rounds, batches, faults)
        row(f"{name} train, s / 1000 images", times, lambda t: t * 1000 / BATCH, ".3f")
        if "pytorch" in times:  # each round's ratio: a slow spell of the machine hits both
            pairs = [a / b for a, b in zip(times["chainrule"], times["pytorch"])]
            low, _, high = statistics.quantiles(pairs, n=4)
            print(f"  round by round, chainrule / PyTorch: median {statistics.median(pairs):.2f}, "
                  f"middle half {low:.2f}-{high:.2f}")
        floor = step_flops(cr_model) / rate
        print(f"  GEMM floor {floor * 1e3:.1f} ms per step ({step_flops(cr_model) / 1e9:.2f} "
              f"GFLOP); step / floor: " + ", ".join(
                  f"{k} {statistics.median(v) / floor:.1f}×" for k, v in times.items()))
        print("  page faults per step: " + ", ".join(
            f"{k} {statistics.median(v):,.0f}" for k, v in faults.items()))
        with AlgorithmShares() as shares:
            seconds_per_batch(runs["chainrule"], x, y, batches)
        step = statistics.median(times["chainrule"]) * batches
        print("  chainrule's convolutions, share of its step: " + ", ".join(
            f"{k} {v / step:.0%}" for k, v in sorted(shares.seconds.items())))

        cr_model.eval()
        runs = {"chainrule": chainrule_predict(cr_model)}
        if torch:
            th.eval()
            runs["pytorch"] = torch_predict(torch, th)
        # throughput: images per second (the ratio is still of times)
        row(f"{name} inference, images / s", compare(runs, x, None, args.rounds, batches),
            lambda t: BATCH / t, ",.0f")
        cr_model.train()


if __name__ == "__main__":
    main()
