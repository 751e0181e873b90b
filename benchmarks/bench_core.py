"""Benchmark of the autodiff core: chainrule versus PyTorch versus plain NumPy.

Two workloads, run in one process, medians over many repeats:

1. framework overhead: forward + backward of a chain of small elementwise operations,
   reported in µs per operation (the arrays are tiny, so this is bookkeeping time);
2. an affine layer: forward + backward of relu(x @ W + b) with x (100, 784) and W
   (784, 256), where x needs no gradient (like input images).

Run by hand:  python benchmarks/bench_core.py [--repeats 15] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import chainrule as cr  # noqa: E402
import chainrule.functional as F  # noqa: E402


def median_time(fn: Callable[[], object], repeats: int, inner: int) -> float:
    """Median over ``repeats`` of the mean time of ``inner`` calls, in seconds."""
    fn()  # warm-up
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - start) / inner)
    return statistics.median(samples)


CHAIN = 30  # operations per chain: (mul, add, tanh) repeated


def chain_chainrule() -> None:
    x = cr.Tensor(np.ones(4, dtype=np.float32), requires_grad=True)
    y = x
    for _ in range(CHAIN // 3):
        y = (y * 0.5 + 0.1).tanh()
    y.sum().backward()


def chain_torch(torch) -> Callable[[], None]:
    def run() -> None:
        x = torch.ones(4, requires_grad=True)
        y = x
        for _ in range(CHAIN // 3):
            y = (y * 0.5 + 0.1).tanh()
        y.sum().backward()
    return run


def chain_numpy() -> None:
    # the same arithmetic by hand: forward keeps what backward needs
    x = np.ones(4, dtype=np.float32)
    ys = []
    y = x
    for _ in range(CHAIN // 3):
        y = np.tanh(y * 0.5 + 0.1)
        ys.append(y)
    g = np.ones_like(x)
    for y in reversed(ys):
        g = g * (1 - y * y) * 0.5


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15,
                        help="timed repeats per measurement; the median is reported "
                             "(default 15)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for NumPy's BLAS and PyTorch (default: NumPy's)")
    args = parser.parse_args(argv)
    if args.repeats < 1 or (args.threads is not None and args.threads < 1):
        parser.error("--repeats and --threads must be at least 1")
    return args


def main() -> None:
    args = parse_args()
    repeats = args.repeats
    if args.threads:
        from threadpoolctl import threadpool_limits
        threadpool_limits(args.threads, user_api="blas")  # stays in force until exit
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((100, 784)).astype(np.float32)
    w_np = (rng.standard_normal((784, 256)) * 0.05).astype(np.float32)
    b_np = np.zeros(256, dtype=np.float32)
    g_np = rng.standard_normal((100, 256)).astype(np.float32)

    try:
        import torch
        from threadpoolctl import threadpool_info
        blas_threads = max((p["num_threads"] for p in threadpool_info()
                            if p.get("user_api") == "blas"), default=1)
        torch.set_num_threads(blas_threads)
    except ImportError:
        torch = None

    # ---- 1. per-operation overhead
    n_ops = CHAIN + 1  # + the final sum
    rows = [("chainrule", median_time(chain_chainrule, repeats, 50) / n_ops)]
    if torch is not None:
        rows.append(("pytorch", median_time(chain_torch(torch), repeats, 50) / n_ops))
    rows.append(("numpy (by hand)", median_time(chain_numpy, repeats, 50) / n_ops))

    # ---- 2. affine + relu forward and backward
    x = cr.Tensor(x_np)
    w = cr.Tensor(w_np, requires_grad=True)
    b = cr.Tensor(b_np, requires_grad=True)
    g = cr.Tensor(g_np)

    def affine_chainrule() -> None:
        w.grad = b.grad = None
        F.linear(x, w, b).relu().backward(g)

    def affine_matmul_chainrule() -> None:
        w.grad = b.grad = None
        (x @ w + b).relu().backward(g)

    def affine_numpy() -> None:
        z = x_np @ w_np + b_np
        y = np.maximum(z, 0)
        dz = g_np * (z > 0)
        dw = x_np.T @ dz
        db = dz.sum(axis=0)
        return y, dw, db

    affine = [("chainrule F.linear", median_time(affine_chainrule, repeats, 20)),
              ("chainrule x @ W + b", median_time(affine_matmul_chainrule, repeats, 20))]
    if torch is not None:
        xt = torch.from_numpy(x_np)
        wt = torch.from_numpy(w_np.copy()).requires_grad_()
        bt = torch.from_numpy(b_np.copy()).requires_grad_()
        gt = torch.from_numpy(g_np)

        def affine_torch() -> None:
            wt.grad = bt.grad = None
            torch.relu(xt @ wt + bt).backward(gt)

        affine.append(("pytorch", median_time(affine_torch, repeats, 20)))
    affine.append(("numpy (by hand)", median_time(affine_numpy, repeats, 20)))

    print(f"chainrule {cr.__version__}, numpy {np.__version__}"
          + (f", torch {torch.__version__} ({torch.get_num_threads()} threads)"
             if torch is not None else ""))
    print(f"\n1. framework overhead: chain of {n_ops} small ops, forward + backward")
    print(f"{'':22}{'µs/op':>10}")
    for name, seconds in rows:
        print(f"{name:22}{seconds * 1e6:10.2f}")
    if torch is not None:
        print(f"chainrule / pytorch: {rows[0][1] / rows[1][1]:.2f}x")

    print("\n2. relu(x @ W + b), x (100, 784), W (784, 256): forward + backward")
    print(f"{'':22}{'µs':>10}{'vs numpy':>10}")
    numpy_time = affine[-1][1]
    for name, seconds in affine:
        print(f"{name:22}{seconds * 1e6:10.1f}{seconds / numpy_time:9.2f}x")


if __name__ == "__main__":
    main()
