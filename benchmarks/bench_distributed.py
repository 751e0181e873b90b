"""Data-parallel training over MPI: speed-up of 2 ranks over 1, and what the all-reduce
costs.

* time per MNIST epoch (60,000 images, global batch 100: 600 steps) of the MLP
  784-256-256-10 and of SimpleConvNet on 1 and 2 ranks, each rank one BLAS thread, and
  the speed-up; the epoch time is the median step time × 600 (``--steps`` steps are
  timed, after ``--warmup``), the steps being complete ``chainrule.distributed`` steps:
  forward on the rank's share, the global loss, backward, the gradients' all-reduce,
  the optimiser step;
* what 2 ranks would give on 2 cores of their own, which the wall time of a shared
  machine cannot show: the 1-rank step on the whole batch / (its step on half the batch
  + the all-reduce alone), timed in turns in one process;
* the all-reduce's share of a step (its median time / the median step), and apart from
  it the time a rank waits for the other to arrive (a barrier just before the
  all-reduce: load imbalance, or a core taken by another process);
* per-tensor versus one flat buffer versus buckets for the gradients' all-reduce, on
  the models' own gradient shapes and on those of a 4-block, width-128 TransformerLM
  (many tensors); ``DistributedOptimizer`` sums per tensor on one machine (the
  fastest here) and through one flat buffer across machines (one latency a step);
* a paper estimate for 8 and 64 machines over 10 Gbit/s Ethernet, from the measured
  compute time and the ring all-reduce model: 2(K-1)/K × bytes / bandwidth (plus a
  per-message latency, stated).

1 and 2 ranks take turns (``--rounds`` times), so that a change in the machine's load
hits both; medians over rounds are printed, and the best round beside them, which is
steadier on a shared machine. Random data of MNIST's shape (the timing is the same as
real data's). Run by hand, not in CI:

    python benchmarks/bench_distributed.py [--rounds 3] [--steps 40] [--warmup 5]
                                           [--only speed,hpo] [--trials 16]

* the hyper-parameter search's trials per minute with 1 and 2 workers, in memory and
  sharing a SQLite study (``benchmarks/bench_hpo.py``; ``--only speed`` or ``--only hpo``
  runs one section).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BATCH, LR, STEPS_PER_EPOCH = 100, 0.01, 600
MODELS = ("mlp", "cnn")
NAMES = {"mlp": "MLP 784-256-256-10", "cnn": "SimpleConvNet",
         "transformer": "TransformerLM 4×128"}
ETHERNET_BYTES_PER_S = 10e9 / 8  # 10 Gbit/s
ETHERNET_LATENCY_S = 50e-6  # per message of the ring (TCP over 10 GbE: tens of µs)


def _build(name: str):
    from chainrule import nn

    if name == "mlp":
        return nn.MLP([784, 256, 256, 10], seed=0)
    return nn.SimpleConvNet(seed=0)


# --------------------------------------------------------------------------- worker
def worker(args: argparse.Namespace) -> None:
    """One rank (started by mpiexec): time training steps and all-reduces; rank 0
    prints one JSON line."""
    from chainrule import distributed, nn, optim
    from chainrule.data import DataLoader, TensorDataset
    from chainrule.threads import set_num_threads

    set_num_threads(1)
    world = distributed.init()
    rng = np.random.default_rng(0)
    count = BATCH * (args.warmup + args.steps)
    x = rng.random((count, 784), dtype=np.float32)
    y = rng.integers(0, 10, count)
    report: dict[str, object] = {"ranks": world.size}
    for name in MODELS:
        model = _build(name)
        if name == "cnn":
            x_in = x.reshape(-1, 1, 28, 28)
        else:
            x_in = x
        run = distributed.prepare(model, nn.CrossEntropyLoss(),
                                  optim.SGD(model.parameters(), lr=LR),
                                  DataLoader(TensorDataset(x_in, y), batch_size=BATCH),
                                  world=world)
        reduce_seconds: list[float] = []
        wait_seconds: list[float] = []
        if world.size > 1:
            plain = run.optimizer.allreduce_gradients

            def timed(plain: Callable[[], None] = plain, waits: list[float] = wait_seconds,
                      reduces: list[float] = reduce_seconds) -> None:
                # the wait for the slower rank apart from the all-reduce proper
                started = time.perf_counter()
                world.barrier()
                arrived = time.perf_counter()
                plain()
                waits.append(arrived - started)
                reduces.append(time.perf_counter() - arrived)

            run.optimizer.allreduce_gradients = timed
        step_seconds = []
        world.barrier()
        for inputs, targets in run.train_loader:
            started = time.perf_counter()
            loss = run.loss_fn(model(inputs), targets)
            run.optimizer.zero_grad()
            loss.backward()
            run.optimizer.step()
            step_seconds.append(time.perf_counter() - started)
        step_seconds = step_seconds[args.warmup:]
        reduce_seconds = reduce_seconds[args.warmup:]
        wait_seconds = wait_seconds[args.warmup:]
        # the slowest rank sets the pace: report rank-wise maxima of the medians
        step = _max_over_ranks(world, statistics.median(step_seconds))
        reduce = _max_over_ranks(world, statistics.median(reduce_seconds)) \
            if reduce_seconds else 0.0
        wait = _max_over_ranks(world, statistics.median(wait_seconds)) \
            if wait_seconds else 0.0
        grads = [p for p in model.parameters()]
        report[name] = {"step": step, "allreduce": reduce, "wait": wait,
                        "bytes": int(sum(p.data.nbytes for p in grads)),
                        "tensors": len(grads)}
        if world.size > 1:
            report[name]["variants"] = _allreduce_variants(world, grads, args.reduce_repeats)
        else:
            report[name].update(_half_and_full_steps(run, model, x_in, y, args.steps))
    if world.size > 1:  # many tensors: where one call per tensor costs most
        lm = nn.TransformerLM(10000, d_model=128, nhead=4, num_layers=4, context=64, seed=0)
        grads = list(lm.parameters())
        report["transformer"] = {"tensors": len(grads),
                                 "bytes": int(sum(p.data.nbytes for p in grads)),
                                 "variants": _allreduce_variants(world, grads,
                                                                 args.reduce_repeats)}
    if world.is_main:
        print(json.dumps(report))


def _half_and_full_steps(run, model, x: np.ndarray, y: np.ndarray, steps: int
                         ) -> dict[str, float]:
    """One process, taking turns: median seconds of a step on half the batch (one
    rank's share of 2) and on the whole batch. With the measured all-reduce they give
    what 2 ranks would take on 2 cores of their own, which a shared machine's wall
    time cannot show."""
    from chainrule.tensor import Tensor

    times: dict[int, list[float]] = {BATCH // 2: [], BATCH: []}
    for _ in range(steps):
        for rows, seconds in times.items():
            inputs, targets = Tensor(x[:rows]), Tensor(y[:rows])
            started = time.perf_counter()
            loss = run.loss_fn(model(inputs), targets)
            run.optimizer.zero_grad()
            loss.backward()
            run.optimizer.step()
            seconds.append(time.perf_counter() - started)
    return {"half_step": statistics.median(times[BATCH // 2]),
            "full_step": statistics.median(times[BATCH])}


def _max_over_ranks(world, value: float) -> float:
    if world.comm is None:
        return value
    from mpi4py import MPI

    return float(world.comm.allreduce(value, op=MPI.MAX))


def _allreduce_variants(world, params, repeats: int) -> dict[str, float]:
    """Median seconds to sum gradients of these shapes over the ranks: one Allreduce per
    tensor (as DistributedOptimizer does on one machine), one per bucket of about
    256 KiB, or one flat buffer (with the copies in and out, as it does across
    machines)."""
    from mpi4py import MPI

    arrays = [np.random.default_rng(i).random(p.shape, dtype=np.float32)
              for i, p in enumerate(params)]
    flat = np.empty(sum(a.size for a in arrays), np.float32)

    def per_tensor() -> None:
        for a in arrays:
            world.comm.Allreduce(MPI.IN_PLACE, a, op=MPI.SUM)

    def packed(limit: int) -> Callable[[], None]:
        buckets, current, size = [], [], 0
        for a in arrays:
            current.append(a)
            size += a.nbytes
            if size >= limit:
                buckets.append(current)
                current, size = [], 0
        if current:
            buckets.append(current)

        def run() -> None:
            for bucket in buckets:
                n = sum(a.size for a in bucket)
                buffer, offset = flat[:n], 0
                for a in bucket:
                    buffer[offset:offset + a.size] = a.reshape(-1)
                    offset += a.size
                world.comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)
                offset = 0
                for a in bucket:
                    a.reshape(-1)[:] = buffer[offset:offset + a.size]
                    offset += a.size
        return run

    variants = {"per tensor": per_tensor, "buckets of 256 KiB": packed(256 * 1024),
                "one flat buffer": packed(1 << 62)}
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(repeats):  # interleaved
        for key, fn in variants.items():
            world.barrier()
            started = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - started)
    return {k: _max_over_ranks(world, statistics.median(v)) for k, v in times.items()}


# --------------------------------------------------------------------------- launcher
def _mpiexec() -> str:
    beside = Path(sys.executable).parent / "mpiexec"
    found = str(beside) if beside.is_file() else shutil.which("mpiexec")
    if found is None:
        sys.exit('mpiexec not found: pip install -e ".[distributed]"')
    return found


def _launch(ranks: int, args: argparse.Namespace) -> dict:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    command = [_mpiexec(), "-n", str(ranks), sys.executable, __file__, "--worker",
               "--steps", str(args.steps), "--warmup", str(args.warmup),
               "--reduce-repeats", str(args.reduce_repeats)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        sys.exit(f"{ranks} ranks failed:\n{result.stdout}{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def speed_section(args: argparse.Namespace) -> None:
    rounds: dict[int, list[dict]] = {1: [], 2: []}
    for _ in range(args.rounds):
        for ranks in (1, 2):
            rounds[ranks].append(_launch(ranks, args))
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} cores, load average {load[0]:.1f} / {load[1]:.1f} / "
          f"{load[2]:.1f} (1 / 5 / 15 min); {args.rounds} rounds, {args.steps} timed steps "
          f"each, global batch {BATCH}, one BLAS thread per rank\n")
    print(f"{'model':<20} {'1 rank s/epoch':>15} {'2 ranks s/epoch':>16} {'speed-up':>9} "
          f"{'(best round)':>13} {'all-reduce':>11} {'of a step':>10} "
          f"{'waiting for the other rank':>27} {'2 free cores (est.)':>20}")
    summary = {}
    for name in MODELS:
        one = [r[name]["step"] for r in rounds[1]]
        two = [r[name]["step"] for r in rounds[2]]
        reduce = statistics.median(r[name]["allreduce"] for r in rounds[2])
        wait = statistics.median(r[name]["wait"] for r in rounds[2])
        half = statistics.median(r[name]["half_step"] for r in rounds[1])
        full = statistics.median(r[name]["full_step"] for r in rounds[1])
        alone = statistics.median(r[name]["variants"]["per tensor"] for r in rounds[2])
        estimate = full / (half + alone)
        step1, step2 = statistics.median(one), statistics.median(two)
        summary[name] = (step1, reduce, rounds[2][0][name]["bytes"])
        print(f"{NAMES[name]:<20} {step1 * STEPS_PER_EPOCH:>15.2f} "
              f"{step2 * STEPS_PER_EPOCH:>16.2f} {step1 / step2:>8.2f}× "
              f"{min(one) / min(two):>12.2f}× {reduce * 1e3:>9.3f} ms "
              f"{reduce / step2:>9.1%} {wait * 1e3:>11.3f} ms ({wait / step2:>3.0%} of a step) "
              f"{estimate:>19.2f}×")
    print("\n(2 free cores, an estimate: the 1-rank step on 100 images / (the step on 50 + "
          "the per-tensor all-reduce alone), timed in turns in one process)")
    print("\nall-reduce of the gradients, 2 ranks (median ms; DistributedOptimizer sums per "
          "tensor on one machine, one flat buffer across machines):")
    for name in (*MODELS, "transformer"):
        last = rounds[2][-1][name]
        variants = {k: statistics.median(r[name]["variants"][k] for r in rounds[2])
                    for k in last["variants"]}
        cells = "  ".join(f"{k} {v * 1e3:.3f}" for k, v in variants.items())
        # over Ethernet every Allreduce pays the ring's latencies: per tensor, n times
        per_tensor = last["tensors"] * 2 * 7 * ETHERNET_LATENCY_S + _ring_seconds(
            8, last["bytes"]) - 2 * 7 * ETHERNET_LATENCY_S
        print(f"  {NAMES[name]:<20} {last['tensors']} tensors, "
              f"{last['bytes'] / 1e6:.2f} MB: {cells}  | ring model, 8 machines: per "
              f"tensor {per_tensor * 1e3:.1f}, flat {_ring_seconds(8, last['bytes']) * 1e3:.1f}")
    _paper_estimate(summary)


def _ring_seconds(ranks: int, nbytes: int) -> float:
    """Ring all-reduce: 2(K-1) messages of bytes/K each way: 2(K-1)/K × bytes / bandwidth,
    plus 2(K-1) latencies."""
    return 2 * (ranks - 1) / ranks * nbytes / ETHERNET_BYTES_PER_S \
        + 2 * (ranks - 1) * ETHERNET_LATENCY_S


def _paper_estimate(summary: dict[str, tuple[float, float, int]]) -> None:
    print(f"\npaper estimate over 10 Gbit/s Ethernet (ring all-reduce, "
          f"{ETHERNET_LATENCY_S * 1e6:.0f} µs per message; compute = the measured 1-rank "
          "step divided among the machines; the all-reduce measured here on one machine "
          "is shown for scale):")
    print(f"{'model':<20} {'K':>3} {'all-reduce':>11} {'speed-up, batch 100':>20} "
          f"{'speed-up, 100 per machine':>26}")
    for name, (step1, measured, nbytes) in summary.items():
        for ranks in (2, 8, 64):
            ring = _ring_seconds(ranks, nbytes)
            strong = step1 / (step1 / ranks + ring)  # the same global batch of 100
            weak = ranks * step1 / (step1 + ring)  # each machine a batch of 100
            print(f"{NAMES[name]:<20} {ranks:>3} {ring * 1e3:>8.2f} ms {strong:>19.1f}× "
                  f"{weak:>25.1f}×")
        print(f"{'':<20} (measured here, 2 ranks on one machine: {measured * 1e3:.3f} ms)")


#: Sections of the report, in order; each takes the parsed arguments and prints.
def hpo_section(args: argparse.Namespace) -> None:
    """The hyper-parameter search's trials per minute with 1 and 2 workers
    (benchmarks/bench_hpo.py, which also runs on its own)."""
    from bench_hpo import report  # this folder (the script's) is on sys.path

    report(args.trials, args.rounds, args.iterations)


SECTIONS: dict[str, Callable[[argparse.Namespace], None]] = {"speed": speed_section,
                                                            "hpo": hpo_section}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=40, help="timed steps per model")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--reduce-repeats", type=int, default=50)
    parser.add_argument("--trials", type=int, default=16,
                        help="trials per hyper-parameter search timed (default 16)")
    parser.add_argument("--iterations", type=int, default=200,
                        help="training iterations per trial (default 200)")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma list of sections: {', '.join(SECTIONS)} (default all)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    unknown = set(args.only.split(",")) - set(SECTIONS)
    if unknown:
        parser.error(f"--only: unknown section(s) {', '.join(sorted(unknown))}; "
                     f"choose from {', '.join(SECTIONS)}")
    for name in args.only.split(","):
        SECTIONS[name](args)


if __name__ == "__main__":
    main()
