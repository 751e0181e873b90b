"""Benchmark one training step of a small GPT (run by hand, not in CI).

The step: token ids (batch 32, context 64) → token embedding + learned positions → 4
pre-norm Transformer blocks (width 128, 4 heads, feed-forward 512, GELU, causal
self-attention) → LayerNorm → logits over a 10,000-word vocabulary, the output layer
tied to the embedding → softmax cross-entropy (mean over the 2,048 predictions),
backward, AdamW step (lr 1e-3, weight decay 0.01). No dropout by default (``--dropout``).
Two implementations in one process:

* chainrule: ``chainrule.nn.TransformerLM``, ``F.cross_entropy``, ``optim.AdamW``;
* PyTorch CPU eager, the same model built from its own parts: ``nn.Embedding`` for the
  words and the positions, ``nn.TransformerEncoder`` of
  ``nn.TransformerEncoderLayer(norm_first=True, activation='gelu', batch_first=True)``
  with a final ``LayerNorm``, a causal mask (``is_causal=True``), the logits from the
  embedding matrix, ``F.cross_entropy``, ``optim.AdamW``; as many threads as NumPy's BLAS.

Both start from the same weights: the PyTorch model is initialised as GPT-2 (and as
``TransformerLM``) and loaded into chainrule's with ``load_torch_state_dict``. Before
timing, the two are checked against each other on a tiny float64 model (losses of
three steps and every weight after them; ``--check`` runs only that).

Every round runs one step of each implementation in a shuffled order (so that none
always runs right after the other, and a busy machine affects both alike), after a
warm-up; medians (and minima) in ms per step and their ratio are printed. The goal for
chainrule, single-threaded: ≤ 1.2× PyTorch's time.

Token ids are PTB's training text if it is found (``--ptb``), otherwise random ids from
a fixed generator (the timing is the same).

    python benchmarks/bench_attention.py [--threads 1] [--rounds 10] [--only chainrule]
                                         [--check] [--profile]
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from itertools import cycle
from pathlib import Path

from _text_bench import (  # this folder (the script's) is on sys.path
    add_data_and_pause_options,
    blas_threads,
    checkout_first,
    limit_threads_before_numpy,
    names_of,
    report,
    thread_counts,
    time_rounds,
    token_stream,
    windows_of,
)

IMPLEMENTATIONS = ("chainrule", "torch")
VOCAB, WIDTH, HEADS, LAYERS, CONTEXT, BATCH = 10000, 128, 4, 4, 64, 32
LR, WEIGHT_DECAY = 1e-3, 0.01
WINDOWS = 20  # windows of the stream that the steps cycle through
GOAL = 1.2  # chainrule's time over PyTorch's, single-threaded


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1",
                        help="BLAS threads for NumPy (PyTorch gets as many); a comma list "
                        "such as 1,2 runs each in turn (default 1)")
    parser.add_argument("--rounds", type=int, default=10, help="timed rounds (default 10)")
    parser.add_argument("--warmup", type=int, default=2,
                        help="untimed steps of each implementation first (default 2)")
    parser.add_argument("--only", default=",".join(IMPLEMENTATIONS),
                        help=f"comma list of {', '.join(IMPLEMENTATIONS)} to run "
                        "(default both)")
    parser.add_argument("--dropout", type=float, default=0.0,
                        help="dropout probability in both models (default 0)")
    add_data_and_pause_options(parser)
    parser.add_argument("--check", action="store_true",
                        help="only check chainrule's model against PyTorch's on a tiny "
                        "float64 model, then exit")
    parser.add_argument("--profile", action="store_true",
                        help="also profile 5 chainrule steps with the first thread count "
                        "(cProfile)")
    args = parser.parse_args(argv)
    args.threads = thread_counts(parser, args.threads)
    args.only = names_of(parser, "--only", args.only, IMPLEMENTATIONS)
    if args.rounds < 1 or args.warmup < 0:
        parser.error("--rounds must be at least 1 and --warmup at least 0")
    if not 0.0 <= args.dropout < 1.0:
        parser.error(f"--dropout must be in [0, 1), got {args.dropout}")
    return args


if __name__ == "__main__":
    limit_threads_before_numpy(parse_args().threads)

import numpy as np  # noqa: E402

checkout_first()
import chainrule  # noqa: E402
import chainrule.functional as F  # noqa: E402
from chainrule import nn, optim  # noqa: E402

# --------------------------------------------------------------------------- data


# --------------------------------------------------------------------------- PyTorch
def torch_model(torch, vocab: int, width: int, heads: int, layers: int, context: int,
                dropout: float, dtype=None, seed: int = 0):
    """A small GPT from PyTorch's parts, initialised as GPT-2: weight matrices and
    embeddings N(0, 0.02²), the residual projections divided by √(2·layers), biases 0."""
    tnn = torch.nn

    class TorchGPT(tnn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding = tnn.Embedding(vocab, width)
            self.position = tnn.Embedding(context, width)
            self.dropout = tnn.Dropout(dropout)
            block = tnn.TransformerEncoderLayer(width, heads, 4 * width, dropout,
                                                activation="gelu", batch_first=True,
                                                norm_first=True)
            self.encoder = tnn.TransformerEncoder(block, layers, norm=tnn.LayerNorm(width),
                                                  enable_nested_tensor=False)
            self.decoder_bias = tnn.Parameter(torch.zeros(vocab))

        def forward(self, ids):
            T = ids.shape[1]
            x = self.dropout(self.embedding(ids) + self.position.weight[:T])
            mask = tnn.Transformer.generate_square_subsequent_mask(T, dtype=x.dtype)
            x = self.encoder(x, mask=mask, is_causal=True)
            return tnn.functional.linear(x, self.embedding.weight, self.decoder_bias)

    torch.manual_seed(seed)
    model = TorchGPT()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 2:
                std = 0.02
                if name.endswith(("out_proj.weight", "linear2.weight")):
                    std /= math.sqrt(2 * layers)
                p.normal_(0.0, std)
            elif name.endswith("bias"):
                p.zero_()
    return model.to(dtype) if dtype is not None else model


def as_chainrule_names(state_dict: dict) -> dict:
    """PyTorch's names for the same parameters: encoder.layers.0... → layers.0...,
    encoder.norm → norm."""
    return {key.replace("encoder.layers.", "layers.").replace("encoder.norm.", "norm."):
            value for key, value in state_dict.items()}


def chainrule_model(torch, theirs, vocab: int, width: int, heads: int, layers: int,
                    context: int, dropout: float, dtype=np.float32) -> nn.TransformerLM:
    ours = nn.TransformerLM(vocab, d_model=width, nhead=heads, num_layers=layers,
                            context=context, dropout=dropout, seed=0, dtype=dtype)
    ours.load_torch_state_dict(as_chainrule_names(theirs.state_dict()))
    return ours


def torch_step_fn(torch, model, windows: list) -> Callable[[], float]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    batches = cycle([(torch.from_numpy(x), torch.from_numpy(t).reshape(-1))
                     for x, t in windows])

    def step() -> float:
        x, t = next(batches)
        logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), t)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def chainrule_step_fn(model, windows: list) -> Callable[[], float]:
    optimizer = optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    batches = cycle(windows)

    def step() -> float:
        x, t = next(batches)
        loss = F.cross_entropy(model(x), t)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return float(loss.data)

    return step


# --------------------------------------------------------------------------- check
def check(torch) -> None:
    """Three steps of both on a tiny float64 model: equal losses, equal weights after."""
    vocab, width, heads, layers, context, batch = 23, 8, 2, 2, 6, 3
    stream = np.random.default_rng(1).integers(0, vocab, batch * (4 * context + 1))
    windows = windows_of(stream, batch, context)[:3]
    theirs = torch_model(torch, vocab, width, heads, layers, context, 0.0,
                         dtype=torch.float64, seed=1)
    ours = chainrule_model(torch, theirs, vocab, width, heads, layers, context, 0.0,
                           dtype=np.float64)
    th_step, cr_step = torch_step_fn(torch, theirs, windows), chainrule_step_fn(ours, windows)
    for window in range(3):
        np.testing.assert_allclose(cr_step(), th_step(), rtol=1e-10,
                                   err_msg=f"loss of step {window + 1}")
    ours_params = dict(ours.named_parameters())
    transposed = {"in_proj_weight", "out_proj.weight", "linear1.weight", "linear2.weight"}
    for name, p in as_chainrule_names(dict(theirs.named_parameters())).items():
        value = ours_params[name].data
        if name.endswith(tuple(transposed)):
            value = value.T
        np.testing.assert_allclose(value, p.detach().numpy(), rtol=1e-8, atol=1e-11,
                                   err_msg=f"{name} after three steps")
    print("check: chainrule's TransformerLM and PyTorch's model give the same losses and "
          "weights over three AdamW steps (float64, 2 layers)")


# --------------------------------------------------------------------------- timing


def profile_chainrule(model, windows: list) -> None:
    """cProfile of 5 chainrule steps, the 25 costliest functions by their own time."""
    import cProfile
    import pstats

    step = chainrule_step_fn(model, windows)
    step()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(5):
        step()
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


def main() -> None:
    args = parse_args()
    try:
        import torch
    except ImportError:
        sys.exit("PyTorch is not installed: it builds the reference model and the weights "
                 "both start from")
    check(torch)
    if args.check:
        return
    stream, source = token_stream(args.ptb, args.random_ids, BATCH * (WINDOWS * CONTEXT + 1),
                                  VOCAB)
    windows = windows_of(stream, BATCH, CONTEXT)
    print(f"chainrule {chainrule.__version__} from {Path(chainrule.__file__).parent}, "
          f"numpy {np.__version__}, torch {torch.__version__}; batch {BATCH}, context "
          f"{CONTEXT}, {LAYERS} layers × {HEADS} heads, width {WIDTH}, vocabulary {VOCAB}, "
          f"AdamW, float32, dropout {args.dropout}; {source}\n")
    for threads in args.threads:
        with blas_threads(threads):
            torch.set_num_threads(threads)
            theirs = torch_model(torch, VOCAB, WIDTH, HEADS, LAYERS, CONTEXT, args.dropout)
            steps: dict[str, Callable[[], float]] = {}
            if "chainrule" in args.only or args.profile:
                ours = chainrule_model(torch, theirs, VOCAB, WIDTH, HEADS, LAYERS, CONTEXT,
                                       args.dropout)
            if "chainrule" in args.only:
                steps["chainrule"] = chainrule_step_fn(ours, windows)
            if "torch" in args.only:
                steps["torch"] = torch_step_fn(torch, theirs, windows)
            samples, first_loss = time_rounds(steps, args.rounds, args.warmup,
                                              args.pause if threads > 1 else 0.0)
            report(f"ms per training step, {threads} thread{'s' if threads > 1 else ''}, "
                   f"{args.rounds} rounds", samples, first_loss,
                   goals={"torch": GOAL} if threads == 1 else None)
            if args.profile and threads == args.threads[0]:
                profile_chainrule(chainrule_model(torch, theirs, VOCAB, WIDTH, HEADS,
                                                  LAYERS, CONTEXT, args.dropout), windows)


if __name__ == "__main__":
    main()
