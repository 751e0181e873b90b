"""Gradient check: backpropagation against the numerical gradient on the two-layer net.

Read this file from top to bottom. The numerical gradient nudges one weight at a time,

    ∂L/∂w ≈ (L(w + h) - L(w - h)) / 2h,

and needs two forward passes per weight: simple enough to trust, far too slow to train
with. Backpropagation gives all the gradients in one backward pass, but its code can
hide mistakes. So we compute both and compare: if they agree, the backward pass is
right. That is what the textbook (chapter 5) does with its two-layer network.

Three things to see:

1. in float64 the two gradients agree to about 1e-10 for every parameter;
2. in float32 the differences are about a hundred thousand times larger (rounding
   error in L(w+h) - L(w-h) is divided by the small 2h): checks run in float64;
3. backpropagation is thousands of times faster.

Run it: python examples/gradient_check.py  (a few seconds; --dataset mnist for the
textbook's 784-input network, which takes longer).
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import numpy as np

try:
    import chainrule
except ModuleNotFoundError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import chainrule

from chainrule import datasets, nn, numerical_gradient
from chainrule.gradcheck import gradcheck_model


def load_batch(dataset: str, batch: int, data_dir: str | None) -> tuple[np.ndarray, np.ndarray]:
    """The first ``batch`` training images and labels."""
    if dataset == "mnist":
        x, t = datasets.mnist("train", data_dir=data_dir)
    else:
        x, t = datasets.digits("train")
    return x[:batch], t[:batch]


def mean_differences(network: nn.TwoLayerNet, x: np.ndarray, t: np.ndarray,
                     eps: float) -> dict[str, float]:
    """The textbook's check: for every parameter, the mean |backprop - numerical|."""
    network.zero_grad()
    network.loss(x, t).backward()                   # backprop: all gradients at once
    differences = {}
    for name, param in network.named_parameters():
        numerical = numerical_gradient(lambda _: network.loss(x, t), param, eps=eps)
        differences[name] = float(np.mean(np.abs(param.grad.data - numerical)))
    return differences


def main(dataset: str = "digits", batch: int = 3, sample: int | None = None,
         data_dir: str | None = None, seed: int = 0) -> dict[str, float]:
    """Run the three comparisons; returns the largest mean difference in float64 and in
    float32 and the speed-up of backpropagation."""
    x, t = load_batch(dataset, batch, data_dir)
    network = nn.TwoLayerNet(input_size=x.shape[1], hidden_size=50, output_size=10,
                             seed=seed)
    print(f"chainrule {chainrule.__version__}: two-layer net {x.shape[1]}-50-10 on a batch "
          f"of {batch} {dataset} images\n")

    # 1. float64: a copy of the network with every parameter converted.
    double = copy.deepcopy(network).double()
    differences64 = mean_differences(double, x.astype(np.float64), t, eps=1e-6)
    print("mean |backprop - numerical| per parameter, float64 (eps 1e-6):")
    for name, value in differences64.items():
        print(f"  {name:<10} {value:.2e}")

    # 2. float32: the same check on the original network (only the small parameters,
    # to save time); the rounding error of float32 swamps the comparison.
    differences32 = {}
    network.zero_grad()
    network.loss(x, t).backward()
    for name in ("fc1.bias", "fc2.bias"):
        param = dict(network.named_parameters())[name]
        numerical = numerical_gradient(lambda _: network.loss(x, t), param, eps=1e-3)
        differences32[name] = float(np.mean(np.abs(param.grad.data - numerical)))
    print("\nthe same in float32 (eps 1e-3), for the biases:")
    for name, value in differences32.items():
        print(f"  {name:<10} {value:.2e}   <- rounding error, not a bug")

    # 3. How much faster is backpropagation? gradcheck_model times both methods.
    print()
    report = gradcheck_model(network, nn.CrossEntropyLoss(), x, t, sample=sample, seed=seed)
    print(report)
    return {"max float64 difference": max(differences64.values()),
            "max float32 difference": max(differences32.values()),
            "speed-up": report.speedup}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=["digits", "mnist"], default="digits")
    parser.add_argument("--data-dir", help="folder with the four MNIST files")
    parser.add_argument("--batch", type=int, default=3, help="images in the batch (3)")
    parser.add_argument("--sample", type=int, default=None,
                        help="time only N elements per parameter numerically, extrapolate")
    args = parser.parse_args()
    main(dataset=args.dataset, batch=args.batch, sample=args.sample, data_dir=args.data_dir)
