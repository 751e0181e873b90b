"""Data-parallel training over MPI (``chainrule.distributed``).

One process: world size 1 without MPI, ``import chainrule`` without mpi4py, the split
of a batch. Several (``mpiexec -n 2`` and ``-n 3``, started as subprocesses with a
time limit): the sampler, synchronised batch norm and the training pieces
(tests/_distributed_worker.py), the weights of ``mpiexec -n K chainrule train`` equal to
the one-process run's, resume, and every rank stopped by a crash or a Ctrl-C on one.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from chainrule import distributed
from chainrule.cli import main
from chainrule.serialization import load

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "_distributed_worker.py"
MNIST_DIR = ROOT.parent / "shared" / "data" / "mnist"
TIME_LIMIT = 90  # seconds for one mpiexec run: a hang fails the test, never the suite


def _mpiexec() -> str | None:
    """mpiexec next to this Python (the mpich wheel puts it there), else on PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.is_file() else shutil.which("mpiexec")


def _mpi_missing() -> str | None:
    if _mpiexec() is None:
        return "mpiexec not found next to the Python or on PATH (pip install -e " \
               "\".[distributed]\" installs it)"
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return 'mpi4py is not installed (pip install -e ".[distributed]")'
    return None


needs_mpi = pytest.mark.skipif(_mpi_missing() is not None, reason=str(_mpi_missing()))


def _env() -> dict[str, str]:
    """This checkout first on the path (a script's own folder would come first), one
    BLAS thread per rank, no display, and no launcher variables of an outer mpiexec."""
    env = {k: v for k, v in os.environ.items()
           if k not in distributed.LAUNCHER_SIZE_VARIABLES and not k.startswith("PMI_")}
    env.update(PYTHONPATH=str(ROOT), MPLBACKEND="Agg", OPENBLAS_NUM_THREADS="1",
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


def _ranks(k: int, *args: str, timeout: float = TIME_LIMIT) -> subprocess.CompletedProcess:
    return subprocess.run([_mpiexec(), "-n", str(k), sys.executable, *args], cwd=ROOT,
                          env=_env(), capture_output=True, text=True, timeout=timeout)


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**_env(), **env},
                          capture_output=True, text=True, timeout=TIME_LIMIT)


# --------------------------------------------------------------------------- one process
def test_one_process_is_a_world_of_one_without_loading_mpi():
    result = _python("import sys; from chainrule import distributed as d; w = d.init(); "
                     "print(w.rank, w.size, w.is_main, 'mpi4py' in sys.modules)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "1", "True", "False"]


BLOCK_MPI4PY = "import sys; sys.modules['mpi4py'] = None; "  # import mpi4py now fails


def test_import_chainrule_and_train_without_mpi4py():
    result = _python(BLOCK_MPI4PY + "import chainrule, chainrule.distributed as d; "
                     "from chainrule.cli import main; assert d.init().size == 1; "
                     "main(['train', '--epochs', '1', '--no-progress'])")
    assert result.returncode == 0, result.stderr
    assert "test accuracy" in result.stdout


def test_started_by_mpiexec_without_mpi4py_names_the_extra():
    result = _python(BLOCK_MPI4PY + "from chainrule import distributed as d\n"
                     "try:\n    d.init()\nexcept d.DistributedUnavailable as e:\n"
                     "    print(e)", PMI_SIZE="2")
    assert 'pip install -e ".[distributed]"' in result.stdout
    assert "2 processes" in result.stdout
    cli = _python(BLOCK_MPI4PY + "from chainrule.cli import main; main(['train'])",
                  PMI_SIZE="2")
    assert cli.returncode == 1
    assert 'pip install -e ".[distributed]"' in cli.stderr and "Traceback" not in cli.stderr


@pytest.mark.parametrize("environ, size", [({}, 1), ({"PMI_SIZE": "3"}, 3),
                                           ({"OMPI_COMM_WORLD_SIZE": "4"}, 4),
                                           ({"PMI_SIZE": "x"}, 1)])
def test_launched_size_reads_the_launchers_variables(environ, size):
    assert distributed.launched_size(environ) == size


@pytest.mark.parametrize("total", [1, 2, 7, 100, 101])
@pytest.mark.parametrize("ranks", [1, 2, 3, 8])
def test_a_global_batch_splits_into_contiguous_near_equal_shares(total, ranks):
    bounds = [distributed.share_bounds(total, r, ranks) for r in range(ranks)]
    assert bounds[0][0] == 0 and bounds[-1][1] == total
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))  # disjoint, in order
    sizes = [stop - start for start, stop in bounds]
    assert max(sizes) - min(sizes) <= 1


def test_prepare_leaves_a_single_process_run_unchanged():
    from chainrule import nn, optim
    from chainrule.data import DataLoader, TensorDataset

    model = nn.MLP([2, 3, 2], batch_norm=True, dropout=0.5, seed=0)
    opt = optim.SGD(model.parameters(), lr=0.1)
    loader = DataLoader(TensorDataset(np.zeros((4, 2), np.float32), np.zeros(4, np.int64)))
    loss_fn = nn.CrossEntropyLoss()
    run = distributed.prepare(model, loss_fn, opt, loader, clip_grad_norm=1.0,
                              world=distributed.World())
    assert (run.loss_fn, run.optimizer, run.train_loader) == (loss_fn, opt, loader)
    assert run.callbacks == [] and run.clip_grad_norm == 1.0
    assert type(model.layers[1]) is nn.BatchNorm1d


def test_a_batch_smaller_than_the_world_is_refused_clearly():
    from chainrule.data import DataLoader, TensorDataset

    loader = DataLoader(TensorDataset(np.zeros(10)), batch_size=2)
    with pytest.raises(ValueError, match="batch of 2 cannot be shared by 3 ranks"):
        distributed.ShardedLoader(loader, distributed.World(rank=0, size=3))


# --------------------------------------------------------------------------- several
@needs_mpi
@pytest.mark.parametrize("ranks", [2, 3])
def test_sampler_batch_norm_loss_and_gradient_sum_across_ranks(ranks):
    result = _ranks(ranks, str(WORKER), "checks")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"all checks passed on {ranks} ranks" in result.stdout


@needs_mpi
def test_a_crash_on_one_rank_stops_every_rank_with_its_message():
    started = time.monotonic()
    result = _ranks(2, str(WORKER), "crash")
    assert result.returncode != 0
    assert time.monotonic() - started < 30
    assert "rank 1 of 2: failed" in result.stderr
    assert "this rank failed on purpose" in result.stderr
    assert "stopping all 2 ranks" in result.stderr


@needs_mpi
def test_ctrl_c_on_one_rank_stops_every_rank(tmp_path):
    process = subprocess.Popen([_mpiexec(), "-n", "2", sys.executable, str(WORKER),
                                "interrupt", str(tmp_path)], cwd=ROOT, env=_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        pid_file = tmp_path / "rank1.pid"
        deadline = time.monotonic() + 30
        while not (pid_file.is_file() and pid_file.read_text()):
            assert time.monotonic() < deadline and process.poll() is None, \
                "the ranks did not start"
            time.sleep(0.1)
        time.sleep(0.5)  # in the middle of training
        os.kill(int(pid_file.read_text()), signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode != 0
    assert "rank 1 of 2: interrupted (Ctrl-C)" in stderr
    assert "not stopped" not in stderr


# --------------------------------------------------------------------------- the command
def _train_one_process(args: list[str], out: Path) -> None:
    result = CliRunner().invoke(main, ["train", *args, "--no-progress", "--out", str(out)])
    assert result.exit_code == 0, result.output


def _train_ranks(ranks: int, args: list[str], out: Path, *extra: str
                 ) -> subprocess.CompletedProcess:
    result = _ranks(ranks, "-m", "chainrule", "train", *args, "--no-progress", "--out",
                    str(out), *extra)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def _largest_difference(a: Path, b: Path, skip: tuple[str, ...] = ()) -> float:
    first, second = load(a / "model.npz"), load(b / "model.npz")
    assert sorted(first) == sorted(second)
    return max(float(np.max(np.abs(first[k] - second[k]))) for k in first
               if k not in skip)


DIGITS_MLP = ["--model", "mlp", "--hidden", "32,16", "--dropout", "0.3", "--epochs", "3",
              "--batch-size", "50", "--seed", "3"]


@needs_mpi
@pytest.mark.parametrize("ranks, optimizer", [(2, "sgd"), (3, "sgd"), (2, "adam")])
def test_ranks_train_the_weights_of_one_process(tmp_path, ranks, optimizer):
    """digits (1,438 samples: the last batch of 38 splits too), dropout; batch norm
    with SGD. (Adam's batch-norm case is the MNIST test's.)"""
    args = DIGITS_MLP + (["--batch-norm", "--lr", "0.1"] if optimizer == "sgd"
                         else ["--optimizer", "adam", "--lr", "0.01"])
    _train_one_process(args, tmp_path / "one")
    result = _train_ranks(ranks, args, tmp_path / "many")
    assert _largest_difference(tmp_path / "one", tmp_path / "many") < 1e-5
    one = json.loads((tmp_path / "one" / "history.json").read_text())
    many = json.loads((tmp_path / "many" / "history.json").read_text())
    np.testing.assert_allclose(many["iteration_loss"], one["iteration_loss"], rtol=1e-5)
    for a, b in zip(one["epochs"], many["epochs"]):  # global loss and accuracy
        assert abs(a["train_loss"] - b["train_loss"]) < 1e-5
        assert a["train_accuracy"] == pytest.approx(b["train_accuracy"], abs=1e-12)
    assert result.stdout.count("test accuracy:") == 1  # rank 0 alone prints


@needs_mpi
@pytest.mark.skipif(not (MNIST_DIR / "train-images-idx3-ubyte.gz").is_file(),
                    reason=f"real MNIST files not found in {MNIST_DIR}")
def test_ranks_train_an_mnist_subset_with_adam_dropout_and_batch_norm(tmp_path):
    """The biases feeding batch norm have a gradient of exactly 0 (the normalisation
    removes them), so what they get is round-off, which Adam scales up to steps of
    size lr, and the running means follow them: those are compared through the
    network's outputs, everything else weight by weight."""
    args = ["--dataset", "mnist", "--data-dir", str(MNIST_DIR), "--subset", "500",
            "--model", "mlp", "--hidden", "64,32", "--dropout", "0.2", "--batch-norm",
            "--optimizer", "adam", "--lr", "0.003", "--epochs", "2", "--batch-size", "64"]
    _train_one_process(args, tmp_path / "one")
    _train_ranks(2, args, tmp_path / "many")
    noise_driven = ("layers.0.bias", "layers.1.running_mean", "layers.4.bias",
                    "layers.5.running_mean")
    assert _largest_difference(tmp_path / "one", tmp_path / "many", noise_driven) < 1e-5
    one = json.loads((tmp_path / "one" / "result.json").read_text())
    many = json.loads((tmp_path / "many" / "result.json").read_text())
    assert abs(one["test_accuracy"] - many["test_accuracy"]) <= 0.002  # 20 of 10,000


@needs_mpi
def test_resume_under_two_ranks_continues_the_one_process_run(tmp_path):
    args = DIGITS_MLP + ["--batch-norm", "--optimizer", "adam", "--lr", "0.01"]
    _train_one_process(args, tmp_path / "one")
    first = [*args[:args.index("--epochs")], "--epochs", "1",
             *args[args.index("--epochs") + 2:]]
    _train_ranks(2, first, tmp_path / "many")
    result = _train_ranks(2, [], tmp_path / "many", "--resume", "--epochs", "3")
    assert "resuming from" in result.stdout
    noise_driven = ("layers.0.bias", "layers.1.running_mean", "layers.4.bias",
                    "layers.5.running_mean")
    assert _largest_difference(tmp_path / "one", tmp_path / "many", noise_driven) < 1e-5
    history = json.loads((tmp_path / "many" / "history.json").read_text())
    assert [row["epoch"] for row in history["epochs"]] == [1, 2, 3]


@needs_mpi
def test_a_failing_command_stops_every_rank_with_its_message(tmp_path):
    """A diverging run fails on every rank (the loss is the global one) and stops all."""
    result = _ranks(2, "-m", "chainrule", "train", "--lr", "1e6", "--epochs", "20",
                    "--no-progress", timeout=60)
    assert result.returncode != 0
    assert "training diverged" in result.stderr
    assert "Traceback" not in result.stderr


@needs_mpi
def test_the_readme_script_trains_under_two_ranks(tmp_path):
    """The README's few lines for a script of one's own, run as written by mpiexec."""
    import re

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    [block] = [b for b in re.findall(r"```python\n(.*?)^```", readme, re.DOTALL | re.M)
               if "distributed.prepare" in b]
    script = tmp_path / "train.py"
    script.write_text(block)
    result = subprocess.run([_mpiexec(), "-n", "2", sys.executable, str(script)],
                            cwd=tmp_path, env=_env(), capture_output=True, text=True,
                            timeout=TIME_LIMIT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("2 rank(s): train accuracy") == 1
    assert (tmp_path / "run" / "checkpoint.npz").is_file()


@needs_mpi
def test_a_batch_smaller_than_the_ranks_is_a_usage_error_on_every_rank():
    result = _ranks(3, "-m", "chainrule", "train", "--batch-size", "2", "--epochs", "1",
                    "--no-progress", timeout=60)
    assert result.returncode == 2
    assert "a batch of 2 cannot be shared by 3 ranks" in result.stderr
    assert "Traceback" not in result.stderr


@needs_mpi
@pytest.mark.parametrize("kind", ["language model", "seq2seq"])
def test_ranks_train_a_language_model_and_a_seq2seq_model_as_one_process(tmp_path, kind):
    """An LSTM language model on 3 ranks (each keeps its rows of the 8 text streams,
    and their hidden states, from window to window; dropout) and a sequence-to-sequence
    model on 2 (clipping after the sum)."""
    if kind == "language model":
        rng = np.random.default_rng(0)
        words = [f"w{i}" for i in range(50)]
        text = tmp_path / "text.txt"
        text.write_text("\n".join(" ".join(rng.choice(words, 12)) for _ in range(600)))
        ranks, args = 3, ["--dataset", "text", "--data-file", str(text), "--model",
                          "lstm-lm", "--hidden", "16", "--batch-size", "8", "--bptt", "8",
                          "--dropout", "0.2", "--epochs", "2", "--lr", "1"]
    else:
        ranks, args = 2, ["--dataset", "addition", "--subset", "600", "--hidden", "16",
                          "--wordvec", "8", "--batch-size", "64", "--epochs", "1"]
    _train_one_process(args, tmp_path / "one")
    _train_ranks(ranks, args, tmp_path / "many")
    assert _largest_difference(tmp_path / "one", tmp_path / "many") < 1e-5
