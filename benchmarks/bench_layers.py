"""Benchmark one training step of the textbook's two-layer net (run by hand, not in CI).

Linear(784, 50) → ReLU → Linear(50, 10) → CrossEntropyLoss, forward and backward, on a
batch of 100 float32 images, three ways in one process:

* chainrule (modules, autodiff);
* the same step written by hand in NumPy (forward, softmax-with-loss backward, the
  three affine gradients, no gradient for the input images): the floor chainrule is
  measured against (target: within 1.15×);
* PyTorch on the CPU with the same number of threads as NumPy.

The three are interleaved step by step and medians over many repeats are reported, so
that a busy machine affects them alike. The order is shuffled every round: in a fixed
order, the step that always runs right after PyTorch's finds its caches cold, and the
one after it finds the shared input warm (when this was written: 1.32× in the order
chainrule, NumPy, PyTorch; 1.14× reversed; 1.22× shuffled or in blocks of 20 steps).

    python benchmarks/bench_layers.py [--repeats 2000] [--threads 1] [--batch 100] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

try:
    import chainrule  # noqa: F401
except ModuleNotFoundError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from chainrule import Tensor, nn

BATCH, IN, HIDDEN, OUT = 100, 784, 50, 10


def make_data(batch: int = BATCH, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(batch, IN)).astype(np.float32)
    t = rng.integers(0, OUT, size=batch)
    return x, t


def chainrule_step_fn(model: nn.Module, x: np.ndarray, t: np.ndarray):
    criterion = nn.CrossEntropyLoss()
    images = Tensor(x)  # no requires_grad: no gradient for the images

    def step() -> None:
        model.zero_grad()
        loss = criterion(model(images), t)
        loss.backward()

    return step


def numpy_step_fn(params: dict[str, np.ndarray], x: np.ndarray, t: np.ndarray):
    """The step by hand, and the dict its gradients are written to."""
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    rows = np.arange(len(t))
    grads: dict[str, np.ndarray] = {}

    def step() -> None:
        # forward
        h = x @ W1
        h += b1
        mask = h > 0
        r = h * mask  # ReLU
        y = r @ W2
        y += b2
        # softmax with loss (stable), mean over the batch
        shifted = y - y.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        s = e.sum(axis=1, keepdims=True)
        loss = np.mean(np.log(s[:, 0]) - shifted[rows, t])
        # backward: dL/dy = (softmax - onehot) / N
        dy = e / s
        dy[rows, t] -= 1.0
        dy *= 1.0 / len(t)
        grads["W2"] = r.T @ dy
        grads["b2"] = dy.sum(axis=0)
        dh = (dy @ W2.T) * mask  # ReLU backward
        grads["W1"] = x.T @ dh
        grads["b1"] = dh.sum(axis=0)
        grads["loss"] = loss

    return step, grads


def torch_step_fn(torch, params: dict[str, np.ndarray], x: np.ndarray, t: np.ndarray):
    model = torch.nn.Sequential(torch.nn.Linear(IN, HIDDEN), torch.nn.ReLU(),
                                torch.nn.Linear(HIDDEN, OUT))
    with torch.no_grad():  # PyTorch stores Linear weights transposed: (out, in)
        model[0].weight.copy_(torch.from_numpy(params["W1"].T.copy()))
        model[0].bias.copy_(torch.from_numpy(params["b1"]))
        model[2].weight.copy_(torch.from_numpy(params["W2"].T.copy()))
        model[2].bias.copy_(torch.from_numpy(params["b2"]))
    criterion = torch.nn.CrossEntropyLoss()
    images, targets = torch.from_numpy(x), torch.from_numpy(t)

    def step() -> None:
        model.zero_grad(set_to_none=True)
        criterion(model(images), targets).backward()

    return step


def time_interleaved(steps: dict[str, object], repeats: int, warmup: int = 50) -> dict:
    for step in steps.values():
        for _ in range(warmup):
            step()
    samples: dict[str, list[float]] = {name: [] for name in steps}
    clock = time.perf_counter
    order = list(steps.items())
    shuffler = random.Random(0)
    for _ in range(repeats):
        shuffler.shuffle(order)  # no implementation always runs right after another
        for name, step in order:
            start = clock()
            step()
            samples[name].append(clock() - start)
    return {name: statistics.median(values) * 1e6 for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=BATCH,
                        help=f"batch size (default {BATCH}); larger batches show how much "
                        "of the difference is fixed per-step overhead")
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS threads for NumPy and PyTorch alike (default 1)")
    parser.add_argument("--profile", action="store_true",
                        help="profile the chainrule step with cProfile")
    args = parser.parse_args()

    try:
        from threadpoolctl import threadpool_limits
        limiter = threadpool_limits(limits=args.threads)
    except ImportError:
        limiter = None
        print("threadpoolctl not installed: NumPy uses its default thread count; set "
              "OPENBLAS_NUM_THREADS to match --threads")

    x, t = make_data(args.batch)
    model = nn.Sequential(nn.Linear(IN, HIDDEN, init="he", seed=0), nn.ReLU(),
                          nn.Linear(HIDDEN, OUT, seed=1))
    params = {"W1": model[0].weight.data.copy(), "b1": model[0].bias.data.copy(),
              "W2": model[2].weight.data.copy(), "b2": model[2].bias.data.copy()}
    numpy_step, numpy_grads = numpy_step_fn(params, x, t)
    steps = {"chainrule": chainrule_step_fn(model, x, t), "numpy by hand": numpy_step}
    try:
        import torch
        torch.set_num_threads(args.threads)
        steps["pytorch (cpu)"] = torch_step_fn(torch, params, x, t)
    except ImportError:
        print("PyTorch not installed: skipping it")

    # chainrule and the hand-written step must compute the same gradients
    steps["chainrule"]()
    numpy_step()
    for name, param in (("W1", model[0].weight), ("b1", model[0].bias),
                        ("W2", model[2].weight), ("b2", model[2].bias)):
        np.testing.assert_allclose(param.grad.data, numpy_grads[name], rtol=1e-4, atol=1e-6)

    medians = time_interleaved(steps, args.repeats)
    base = medians["numpy by hand"]
    print(f"\none training step, batch {args.batch}, {IN}→{HIDDEN}→{OUT}, float32, "
          f"{args.threads} thread(s), median of {args.repeats}")
    print(f"{'implementation':<16}{'µs/step':>10}{'vs numpy':>10}")
    for name, us in medians.items():
        print(f"{name:<16}{us:>10.1f}{us / base:>9.2f}×")
    ratio = medians["chainrule"] / base
    print(f"\nchainrule / numpy = {ratio:.2f}× (target ≤ 1.15×): "
          + ("met" if ratio <= 1.15 else "NOT met"))

    if args.profile:
        profiler = cProfile.Profile()
        step = steps["chainrule"]
        profiler.enable()
        for _ in range(2000):
            step()
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
    if limiter is not None:
        limiter.restore_original_limits()


if __name__ == "__main__":
    main()
