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
import contextlib
import gzip
import importlib.util
import math
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from itertools import cycle
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
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
    parser.add_argument("--pause", type=float, default=0.2,
                        help="seconds to wait before each step when running with more than "
                        "one thread (default 0.2; 0 turns it off)")
    parser.add_argument("--ptb", type=Path,
                        default=ROOT.parent / "shared" / "data" / "ptb" / "ptb.train.txt.gz",
                        help="PTB training text (gzipped); random ids if it is absent")
    parser.add_argument("--random-ids", action="store_true",
                        help="use random token ids even if PTB is found")
    parser.add_argument("--check", action="store_true",
                        help="only check chainrule's model against PyTorch's on a tiny "
                        "float64 model, then exit")
    parser.add_argument("--profile", action="store_true",
                        help="also profile 5 chainrule steps with the first thread count "
                        "(cProfile)")
    args = parser.parse_args(argv)
    try:
        args.threads = [int(n) for n in args.threads.split(",")]
    except ValueError:
        parser.error(f"--threads takes comma-separated integers such as 1,2, got "
                     f"{args.threads!r}")
    if min(args.threads) < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    names = [name.strip() for name in args.only.split(",") if name.strip()]
    if not names or any(name not in IMPLEMENTATIONS for name in names):
        parser.error(f"--only takes a comma list of {', '.join(IMPLEMENTATIONS)}, got "
                     f"{args.only!r}")
    args.only = names
    if args.rounds < 1 or args.warmup < 0:
        parser.error("--rounds must be at least 1 and --warmup at least 0")
    if not 0.0 <= args.dropout < 1.0:
        parser.error(f"--dropout must be in [0, 1), got {args.dropout}")
    return args


HAVE_THREADPOOLCTL = importlib.util.find_spec("threadpoolctl") is not None
if __name__ == "__main__" and not HAVE_THREADPOOLCTL:
    # Without threadpoolctl, the BLAS thread count can only be set by the environment,
    # and BLAS reads it once, when NumPy is first imported: so before the import below.
    _threads = parse_args().threads
    if len(_threads) > 1:
        sys.exit("without threadpoolctl, --threads takes one number (BLAS reads its "
                 "thread count once, when NumPy loads): run once per count")
    for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_variable] = str(_threads[0])

import numpy as np  # noqa: E402

# this checkout's chainrule ahead of an installed one, but after the PYTHONPATH entries
# (which follow the script's folder in sys.path), so that a scratch copy can be timed
sys.path.insert(1 + len([p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]),
                str(ROOT))
import chainrule  # noqa: E402
import chainrule.functional as F  # noqa: E402
from chainrule import nn, optim  # noqa: E402


# --------------------------------------------------------------------------- data
def token_stream(args: argparse.Namespace, count: int) -> tuple[np.ndarray, str]:
    """``count`` token ids (< VOCAB) and where they came from."""
    if not args.random_ids and args.ptb.is_file():
        word_to_id: dict[str, int] = {}
        ids: list[int] = []
        with gzip.open(args.ptb, "rt", encoding="utf-8") as lines:
            for line in lines:  # ids by first appearance, as the book's ptb.load_data
                for word in line.split() + ["<eos>"]:
                    ids.append(word_to_id.setdefault(word, len(word_to_id)))
                if len(ids) >= count:
                    return np.array(ids[:count], dtype=np.int64), f"PTB ({args.ptb.name})"
    note = "random ids" if args.random_ids else f"random ids ({args.ptb} not found)"
    return np.random.default_rng(0).integers(0, VOCAB, count), note


def windows_of(stream: np.ndarray, batch: int,
               context: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The stream cut into ``batch`` rows read side by side, then into windows of
    ``context`` tokens: (inputs, targets) pairs, the targets one token ahead."""
    rows = stream[:len(stream) // batch * batch].reshape(batch, -1)
    return [(np.ascontiguousarray(rows[:, i:i + context]),
             np.ascontiguousarray(rows[:, i + 1:i + context + 1]))
            for i in range(0, rows.shape[1] - context, context)]


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
def time_rounds(steps: dict[str, Callable[[], float]], rounds: int, warmup: int,
                pause: float) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Seconds per step of each implementation in every round, and its first loss."""
    first_loss = {}
    for name, step in steps.items():  # warm-up: first-call costs, allocator, threads
        first_loss[name] = step()
        for _ in range(warmup - 1):
            step()
    samples: dict[str, list[float]] = {name: [] for name in steps}
    order = list(steps.items())
    shuffler = random.Random(0)
    clock = time.perf_counter
    for _ in range(rounds):
        shuffler.shuffle(order)  # neither always runs right after the other
        for name, step in order:
            if pause:
                time.sleep(pause)
            start = clock()
            step()
            samples[name].append(clock() - start)
    return samples, first_loss


def report(title: str, samples: dict[str, list[float]], first_loss: dict[str, float],
           goal: bool) -> None:
    labels = {"chainrule": "chainrule", "torch": "pytorch (cpu)"}
    median = {name: statistics.median(times) * 1e3 for name, times in samples.items()}
    print(title)
    print(f"{'implementation':<16}{'median ms':>11}{'min ms':>9}{'first loss':>12}")
    for name in IMPLEMENTATIONS:
        if name in samples:
            print(f"{labels[name]:<16}{median[name]:>11.1f}{min(samples[name]) * 1e3:>9.1f}"
                  f"{first_loss[name]:>12.4f}")
    if len(median) == 2:
        ratio = median["chainrule"] / median["torch"]
        line = f"chainrule / torch = {ratio:.2f}×"
        if goal:
            line += f" (goal ≤ {GOAL}×: " + ("met)" if ratio <= GOAL else "NOT met)")
        print(line)
    print()


def blas_threads(threads: int) -> contextlib.AbstractContextManager:
    """Limit NumPy's BLAS to ``threads`` threads inside the ``with`` block (without
    threadpoolctl the limit was set from the environment before NumPy loaded)."""
    if not HAVE_THREADPOOLCTL:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(threads, user_api="blas")


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
    stream, source = token_stream(args, BATCH * (WINDOWS * CONTEXT + 1))
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
                   f"{args.rounds} rounds", samples, first_loss, goal=threads == 1)
            if args.profile and threads == args.threads[0]:
                profile_chainrule(chainrule_model(torch, theirs, VOCAB, WIDTH, HEADS,
                                                  LAYERS, CONTEXT, args.dropout), windows)


if __name__ == "__main__":
    main()
