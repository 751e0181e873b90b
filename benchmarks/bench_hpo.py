"""Trials per minute of ``chainrule experiment hyperparams`` with 1 and 2 workers sharing
one SQLite study, beside the one-process in-memory search.

Each worker is its own process (``python -m chainrule experiment hyperparams --storage
sqlite:///... --study bench --trials N``), single-threaded BLAS as the command line
runs by default; the workers start together and share the study's N trials. The
textbook's default trial (the 6-layer ReLU net, 200 iterations of SGD on 400 digits,
validated on 100) with ``--no-prune`` so that every trial costs the same. Two rates:

* wall: N trials over the time from starting the workers to the last one ending
  (process start, imports, the summary picture included): what a user waits;
* steady: from the study's own clock, trials finished per minute between the first
  trial's start and the last trial's end (the database and the training only; not
  for the in-memory search, whose study ends with its process).

Beside them, the same trials searched in memory by one process, and by two processes
each searching half on its own (no database, no coordination): the 2-process rate is
what two workers could reach on this machine, so the SQLite 2-worker rate below it is
the cost of sharing, and its distance from twice the 1-process rate is the machine's
(two busy cores give two processes less than two cores' worth).

Rounds interleave the four settings in a shuffled order; medians of ``--repeats``
rounds.

    python benchmarks/bench_hpo.py [--trials 16] [--repeats 3] [--iterations 200]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run_search(processes: int, shared: bool, trials: int, iterations: int,
               folder: Path) -> tuple[float, float]:
    """Trials per minute (wall, steady) of ``processes`` processes that share one SQLite
    study of ``trials`` trials (``shared``), or that each search in memory on their own,
    ``trials / processes`` trials each: the same work without any coordination."""
    import optuna

    from chainrule import hpo

    database = folder / f"bench-{time.monotonic_ns()}.db"
    storage = ["--storage", f"sqlite:///{database}", "--study", "bench"] if shared else []
    each = trials if shared else trials // processes
    command = [sys.executable, "-m", "chainrule", "experiment", "hyperparams", "--dataset",
               "digits", "--iterations", str(iterations), "--trials", str(each),
               "--no-prune", "--no-progress", *storage]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    started = time.perf_counter()
    workers = [subprocess.Popen([*command, "--out", str(folder / f"out{i}")], cwd=ROOT,
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True) for i in range(processes)]
    outputs = [p.communicate()[0] for p in workers]
    wall = time.perf_counter() - started
    for worker, output in zip(workers, outputs):
        if worker.returncode != 0:
            raise RuntimeError(output)
    if not shared:
        return each * processes / wall * 60, float("nan")
    study = optuna.load_study(study_name="bench",
                              storage=hpo.open_storage(f"sqlite:///{database}"))
    done = study.get_trials(states=(hpo.TrialState.COMPLETE,))
    assert len(done) == trials, f"{len(done)} trials complete, not {trials}"
    first = min(t.datetime_start for t in done)
    last = max(t.datetime_complete for t in done)
    return trials / wall * 60, trials / (last - first).total_seconds() * 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=200)
    args = parser.parse_args()
    report(args.trials, args.repeats, args.iterations)


def report(trials: int, repeats: int, iterations: int) -> None:
    """Time the search in memory and shared through SQLite, 1 and 2 processes, in
    shuffled turns, and print trials per minute (also a section of bench_distributed)."""
    args = argparse.Namespace(trials=trials, repeats=repeats, iterations=iterations)
    settings = {"in memory, 1 process": (1, False), "in memory, 2 processes": (2, False),
                "SQLite, 1 worker": (1, True), "SQLite, 2 workers": (2, True)}
    rates: dict[str, list[tuple[float, float]]] = {name: [] for name in settings}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.repeats):
            order = list(settings)
            random.shuffle(order)
            for name in order:
                rates[name].append(run_search(*settings[name], args.trials,
                                              args.iterations, Path(folder)))
    print(f"{args.trials} trials of {args.iterations} iterations (digits, --no-prune), "
          f"median of {args.repeats} rounds; {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f} at the end")
    print(f"{'setting':<24} {'trials/min (wall)':>18} {'trials/min (steady)':>20} "
          f"{'vs 1 worker':>12}")
    one = statistics.median(r[1] for r in rates["SQLite, 1 worker"])
    for name in settings:
        wall = statistics.median(r[0] for r in rates[name])
        steady = statistics.median(r[1] for r in rates[name])
        if steady != steady:  # nan: the in-memory search has no study left to read
            print(f"{name:<24} {wall:>18.1f} {'-':>20} {'-':>12}")
        else:
            print(f"{name:<24} {wall:>18.1f} {steady:>20.1f} {steady / one:>11.2f}x")


if __name__ == "__main__":
    main()
