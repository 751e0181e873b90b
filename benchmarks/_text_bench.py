"""What the language-model benchmarks (bench_rnn.py, bench_attention.py) share: the BLAS
thread limit, this checkout on the import path, the token stream and its windows, and
interleaved timing with its report.

NumPy is imported inside the functions: ``limit_threads_before_numpy`` must run before
NumPy is first imported when threadpoolctl is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import importlib.util
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PTB_TRAIN = ROOT.parent / "shared" / "data" / "ptb" / "ptb.train.txt.gz"
HAVE_THREADPOOLCTL = importlib.util.find_spec("threadpoolctl") is not None
LABELS = {"chainrule": "chainrule", "torch": "pytorch (cpu)", "numpy": "numpy by hand"}


def limit_threads_before_numpy(threads: Sequence[int]) -> None:
    """Without threadpoolctl, the BLAS thread count can only be set by the environment,
    and BLAS reads it once, when NumPy is first imported: so call this before that."""
    if HAVE_THREADPOOLCTL:
        return
    if len(threads) > 1:
        sys.exit("without threadpoolctl, --threads takes one number (BLAS reads its "
                 "thread count once, when NumPy loads): run once per count")
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(threads[0])


def checkout_first() -> None:
    """This checkout's chainrule ahead of an installed one, but after the PYTHONPATH
    entries (which follow the script's folder in sys.path), so that a scratch copy can
    be timed."""
    entries = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    sys.path.insert(1 + len(entries), str(ROOT))


def blas_threads(threads: int) -> contextlib.AbstractContextManager:
    """Compute with ``threads`` threads inside the ``with`` block as ``chainrule
    --threads`` does (``chainrule.num_threads``: BLAS may use that many, for the
    hand-written NumPy too). Without threadpoolctl the limit was set from the
    environment before NumPy loaded."""
    if not HAVE_THREADPOOLCTL:
        return contextlib.nullcontext()
    from chainrule.threads import num_threads

    return num_threads(threads)


# --------------------------------------------------------------------------- options
def add_data_and_pause_options(parser: argparse.ArgumentParser) -> None:
    """--pause, --ptb and --random-ids, the same in both benchmarks."""
    parser.add_argument("--pause", type=float, default=0.2,
                        help="seconds to wait before each step when running with more than "
                        "one thread (default 0.2; 0 turns it off)")
    parser.add_argument("--ptb", type=Path, default=PTB_TRAIN,
                        help="PTB training text (gzipped); random ids if it is absent")
    parser.add_argument("--random-ids", action="store_true",
                        help="use random token ids even if PTB is found")


def thread_counts(parser: argparse.ArgumentParser, value: str) -> list[int]:
    """--threads '1,2' as [1, 2]; anything else is a usage error."""
    try:
        counts = [int(n) for n in value.split(",")]
    except ValueError:
        parser.error(f"--threads takes comma-separated integers such as 1,2, got {value!r}")
    if min(counts) < 1:
        parser.error(f"--threads must be at least 1, got {counts}")
    return counts


def names_of(parser: argparse.ArgumentParser, option: str, value: str,
             valid: Sequence[str]) -> list[str]:
    """A comma list of names, each one of ``valid``; anything else is a usage error."""
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names or any(name not in valid for name in names):
        parser.error(f"{option} takes a comma list of {', '.join(valid)}, got {value!r}")
    return names


# --------------------------------------------------------------------------- data
def token_stream(ptb: Path, random_ids: bool, count: int, vocab: int) -> tuple[Any, str]:
    """``count`` token ids (< ``vocab``) and where they came from: the start of PTB's
    training text if it is there, else random ids from a fixed generator."""
    import numpy as np

    if not random_ids and ptb.is_file():
        word_to_id: dict[str, int] = {}
        ids: list[int] = []
        with gzip.open(ptb, "rt", encoding="utf-8") as lines:
            for line in lines:  # ids by first appearance, as the book's ptb.load_data
                for word in line.split() + ["<eos>"]:
                    ids.append(word_to_id.setdefault(word, len(word_to_id)))
                if len(ids) >= count:
                    return np.array(ids[:count], dtype=np.int64), f"PTB ({ptb.name})"
    note = "random ids" if random_ids else f"random ids ({ptb} not found)"
    return np.random.default_rng(0).integers(0, vocab, count), note


def windows_of(stream: Any, batch: int, length: int) -> list[tuple[Any, Any]]:
    """The stream cut into ``batch`` rows read side by side, then into windows of
    ``length`` tokens: (inputs, targets) pairs, the targets one token ahead."""
    import numpy as np

    rows = stream[:len(stream) // batch * batch].reshape(batch, -1)
    return [(np.ascontiguousarray(rows[:, i:i + length]),
             np.ascontiguousarray(rows[:, i + 1:i + length + 1]))
            for i in range(0, rows.shape[1] - length, length)]


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
        shuffler.shuffle(order)  # no implementation always runs right after another
        for name, step in order:
            if pause:
                time.sleep(pause)
            start = clock()
            step()
            samples[name].append(clock() - start)
    return samples, first_loss


def report(title: str, samples: dict[str, list[float]], first_loss: dict[str, float],
           goals: dict[str, float] | None = None) -> None:
    """Medians, minima and first losses, then the ratios chainrule/torch,
    chainrule/numpy and numpy/torch of those measured, each against its goal (chainrule's
    time over theirs) when ``goals`` names one."""
    median = {name: statistics.median(times) * 1e3 for name, times in samples.items()}
    print(title)
    print(f"{'implementation':<16}{'median ms':>11}{'min ms':>9}{'first loss':>12}")
    for name in LABELS:
        if name in samples:
            print(f"{LABELS[name]:<16}{median[name]:>11.1f}{min(samples[name]) * 1e3:>9.1f}"
                  f"{first_loss[name]:>12.4f}")
    for ours, theirs in (("chainrule", "torch"), ("chainrule", "numpy"), ("numpy", "torch")):
        if ours in median and theirs in median:
            ratio = median[ours] / median[theirs]
            line = f"{ours} / {theirs} = {ratio:.2f}×"
            if goals and ours == "chainrule" and theirs in goals:
                line += (f" (goal ≤ {goals[theirs]}×: "
                         + ("met)" if ratio <= goals[theirs] else "NOT met)"))
            print(line)
    print()
