"""``chainrule.hpo``: the hyperparams search as an Optuna study shared by many workers.

Workers are real processes (``python -m chainrule experiment hyperparams``) sharing a
SQLite file, or a real PostgreSQL server that a fixture starts in a temporary folder.
Trials are tiny (the built-in digits, a few epochs) so that all of this takes seconds.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest

optuna = pytest.importorskip("optuna", reason='the distributed extra is not installed '
                                               '(pip install -e ".[distributed]")')

from chainrule import hpo  # noqa: E402
from chainrule.experiments import hyperparams, load_experiment_data  # noqa: E402
from chainrule.threads import num_threads  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--dataset", "digits", "--iterations", "24", "--seed", "3"]  # 6 epochs a trial


@pytest.fixture(autouse=True)
def no_mnist_anywhere(tmp_path, monkeypatch):
    """The workers look for MNIST in $CHAINRULE_DATA and the cache: make both empty."""
    monkeypatch.delenv("CHAINRULE_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture(autouse=True)
def one_blas_thread():
    """As the command line does: on a busy machine a second BLAS thread mostly waits."""
    with num_threads(1):
        yield


@pytest.fixture(scope="module")
def digits():
    return load_experiment_data("digits")[0]


def start_worker(storage: str, study: str, trials: int, out: Path, *extra: str):
    """One worker: ``chainrule experiment hyperparams`` in its own process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    return subprocess.Popen(
        [sys.executable, "-m", "chainrule", "experiment", "hyperparams", *TINY,
         "--storage", storage, "--study", study, "--trials", str(trials), "--out", str(out),
         "--no-progress", *extra],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def run_workers(storage: str, study: str, trials: int, tmp_path: Path, count: int = 2):
    """Start ``count`` workers at once on one study; their outputs once all have ended."""
    workers = [start_worker(storage, study, trials, tmp_path / f"worker{i}")
               for i in range(count)]
    outputs = [worker.communicate(timeout=180)[0] for worker in workers]
    for worker, output in zip(workers, outputs):
        assert worker.returncode == 0, output
    return outputs


def textbook_draws(seed: int, trials: int) -> list[tuple[float, float]]:
    """The pairs the textbook's loop drew before the search became an Optuna study."""
    rng = np.random.default_rng(seed)
    return [(float(10 ** rng.uniform(-6.0, -2.0)), float(10 ** rng.uniform(-8.0, -4.0)))
            for _ in range(trials)]


def check_shared_study(storage: str, study_name: str, trials: int, outputs: list[str]):
    """Every trial ran once, on one of the workers, and the study holds exactly
    ``trials``; every worker summarised the same finished study and best trial."""
    study = optuna.load_study(study_name=study_name, storage=hpo.open_storage(storage))
    finished = (hpo.TrialState.COMPLETE, hpo.TrialState.PRUNED)
    runs = [t for t in study.get_trials() if t.state in finished]
    assert sorted(t.number for t in runs) == list(range(trials))
    # workers that finished a trial at the same instant may both have claimed a next
    # one: the one beyond the target is on record as failed and "not run", nothing else
    for t in study.get_trials():
        assert t.state in finished or (t.state == hpo.TrialState.FAIL
                                       and "not run" in t.user_attrs), t
    # the same settings as the one-process search, whichever worker ran the trial
    expected = textbook_draws(3, trials)
    for t in runs:
        assert t.params["lr"] == pytest.approx(expected[t.number][0], rel=1e-12)
        assert t.params["weight_decay"] == pytest.approx(expected[t.number][1], rel=1e-12)
    ran = [int(re.search(r"this process ran (\d+)", out).group(1)) for out in outputs]
    assert sum(ran) == trials, outputs  # nobody ran a trial twice, nobody skipped one
    workers = {t.user_attrs["worker"] for t in runs}
    assert len(workers) == sum(1 for n in ran if n > 0)
    best = study.best_trial
    complete = sum(t.state == hpo.TrialState.COMPLETE for t in runs)
    for out in outputs:
        assert f"{complete} complete, {trials - complete} pruned" in out, out
        assert f"  1. lr {best.params['lr']:.2e}, weight decay " \
               f"{best.params['weight_decay']:.2e}: val accuracy {best.value:.3f}" in out, out
    return study


# --------------------------------------------------------------------------- SQLite
def test_two_workers_share_one_sqlite_study(tmp_path):
    storage = f"sqlite:///{tmp_path / 'hpo.db'}"
    outputs = run_workers(storage, "shared", 8, tmp_path)
    check_shared_study(storage, "shared", 8, outputs)
    for i in range(2):
        assert (tmp_path / f"worker{i}" / "hyperparams_search.png").stat().st_size > 0


def test_a_worker_joining_a_full_study_runs_nothing_and_shows_it(tmp_path):
    storage = f"sqlite:///{tmp_path / 'hpo.db'}"
    first = run_workers(storage, "s", 2, tmp_path, count=1)[0]
    late = start_worker(storage, "s", 2, tmp_path / "late")
    output = late.communicate(timeout=120)[0]
    assert late.returncode == 0, output
    assert "this process ran 2" in first and "this process ran 0" in output
    assert first.split("best ")[1] == output.split("best ")[1]  # the same summary
    more = start_worker(storage, "s", 3, tmp_path / "more")  # a larger target: 1 more
    output = more.communicate(timeout=120)[0]
    assert "3 complete, 0 pruned; this process ran 1" in output, output


def test_a_worker_with_other_settings_is_refused(tmp_path):
    storage = f"sqlite:///{tmp_path / 'hpo.db'}"
    run_workers(storage, "s", 1, tmp_path, count=1)
    other = start_worker(storage, "s", 2, tmp_path / "other", "--no-prune")
    output = other.communicate(timeout=120)[0]
    assert other.returncode == 2, output
    assert "created with other settings: prune" in output and "Traceback" not in output


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")  # the test asks a trial by hand
def test_a_trial_claimed_beyond_the_target_is_recorded_and_not_run(tmp_path, monkeypatch):
    """Two workers check the count at the same instant and both start a trial: the one
    whose trial number lies beyond the target records it as failed, "not run"."""
    storage = f"sqlite:///{tmp_path / 'hpo.db'}"
    study = hpo.open_study(storage, "s", 0, {}, parameter_names=("x",))
    holder = study.ask()  # another worker is running trial 0 of a target of 1
    real = hpo.trials_taken
    # the pre-check reads the count before trial 0 was claimed: the race
    monkeypatch.setattr(hpo, "trials_taken",
                        lambda study, before=None: 0 if before is None else real(study, before))
    objective_calls = []
    # the other worker finishes its trial a moment later; this one waits for it
    threading.Timer(1.0, study.tell, (holder, 0.5)).start()
    ran = hpo.run_trials(hpo.open_study(storage, "s", 0, {}), objective_calls.append, 1)
    assert ran == 0 and objective_calls == []
    late = study.trials[1]
    assert late.state == hpo.TrialState.FAIL and "not run" in late.user_attrs
    assert study.trials[0].state == hpo.TrialState.COMPLETE  # waited for it
    assert real(study) == 1


# --------------------------------------------------------------------------- in memory
def test_in_memory_without_pruning_is_the_textbook_search(tmp_path, digits):
    result = hyperparams(digits, tmp_path, iterations=8, trials=4, seed=3, prune=False)
    by_trial = sorted(result.rows, key=lambda row: row["trial"])
    assert [row["trial"] for row in by_trial] == [1, 2, 3, 4]
    assert [(row["lr"], row["weight decay"]) for row in by_trial] == textbook_draws(3, 4)
    again = hyperparams(digits, tmp_path, iterations=8, trials=4, seed=3, prune=False)
    assert again.rows == result.rows  # the same seed, the same search
    assert "4 complete, 0 pruned" in result.notes[0]


def test_the_pruner_stops_trials_that_fall_behind(tmp_path, digits):
    """Learning rates from 1e-6 (nothing learnt in 12 epochs) to 1e-1: with one trial
    to set the median, the trials that stay near chance fall below it and are pruned."""
    storage = f"sqlite:///{tmp_path / 'hpo.db'}"
    options = {"iterations": 48, "trials": 8, "seed": 0, "lr_range": (-6.0, -1.0),
               "prune_startup_trials": 1, "prune_warmup_epochs": 1}
    result = hyperparams(digits, tmp_path, storage=storage, study="pruned", **options)
    trials = optuna.load_study(study_name="pruned",
                               storage=hpo.open_storage(storage)).get_trials()
    pruned = [t for t in trials if t.state == hpo.TrialState.PRUNED]
    complete = [t for t in trials if t.state == hpo.TrialState.COMPLETE]
    assert pruned and complete and len(pruned) + len(complete) == 8
    epochs = len(complete[0].intermediate_values)
    assert epochs == 12
    for t in pruned:  # stopped early, at the epoch it says
        assert len(t.intermediate_values) == t.user_attrs["pruned at epoch"] < epochs
    assert len(result.rows) == len(complete)  # the table holds the complete trials
    assert f"{len(pruned)} pruned" in result.notes[0]
    unpruned = hyperparams(digits, tmp_path, prune=False, **options)  # in memory
    assert len(unpruned.rows) == 8 and "8 complete, 0 pruned" in unpruned.notes[0]


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize("url, message", [
    ("hpo.db", "is not a database URL"),
    ("redis://localhost", "is not a database URL Optuna can use"),
])
def test_a_bad_storage_url_is_a_clear_error(url, message):
    with pytest.raises(hpo.StorageURLError, match=message):
        hpo.open_storage(url)


def test_an_unreachable_database_is_a_clear_error_without_the_password(tmp_path):
    with pytest.raises(hpo.StorageUnreachableError, match="cannot open") as caught:
        hpo.open_storage(f"postgresql://me:secret@127.0.0.1:{free_port()}/db")
    assert "secret" not in str(caught.value) and "***" in str(caught.value)
    with pytest.raises(hpo.StorageUnreachableError, match="unable to open database file"):
        hpo.open_storage(f"sqlite:///{tmp_path / 'no' / 'such' / 'folder.db'}")


# --------------------------------------------------------------------------- PostgreSQL
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_binaries() -> Path | None:
    """The folder with initdb and pg_ctl: Debian's /usr/lib/postgresql/N/bin, or PATH."""
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if all((Path(folder) / tool).exists() for tool in ("initdb", "pg_ctl")):
            return Path(folder)
    found = shutil.which("pg_ctl")
    return Path(found).parent if found and shutil.which("initdb") else None


def as_server_user() -> tuple[list[str], str | None]:
    """PostgreSQL refuses to run as root: as root, run it as the ``postgres`` system
    user (or ``nobody``) through runuser; otherwise as ourselves."""
    if os.geteuid() != 0:
        return [], None
    runuser = shutil.which("runuser")
    for user in ("postgres", "nobody"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            continue
        if runuser:
            return [runuser, "-u", user, "--"], user
    pytest.skip("running as root without runuser or a postgres/nobody user: cannot start "
                "PostgreSQL, which refuses to run as root")


@pytest.fixture(scope="module")
def postgres_url():
    """A PostgreSQL server of our own: a cluster made by initdb in a temporary folder,
    listening on 127.0.0.1 at a free port, stopped and deleted at the end."""
    binaries = postgres_binaries()
    if binaries is None:
        pytest.skip("PostgreSQL's initdb and pg_ctl were not found (Debian: apt-get install "
                    "postgresql-15; .ci/run installs it)")
    prefix, user = as_server_user()
    folder = Path(tempfile.mkdtemp(prefix="chainrule-pg-"))  # in /tmp: the user can enter
    if user is not None:
        record = pwd.getpwnam(user)
        os.chown(folder, record.pw_uid, record.pw_gid)
    data, port = folder / "data", free_port()

    def run(*command: str) -> None:
        done = subprocess.run([*prefix, *command], capture_output=True, text=True,
                              timeout=120)
        if done.returncode != 0:
            log = folder / "server.log"
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}"
                               + (log.read_text() if log.exists() else ""))

    try:
        run(str(binaries / "initdb"), "-D", str(data), "-U", "chainrule", "--auth=trust",
            "--no-sync", "-E", "UTF8")
        run(str(binaries / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"),
            "-w", "-o", f"-h 127.0.0.1 -p {port} -k {folder} -F", "start")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    try:
        yield f"postgresql://chainrule@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast",
                        "-w", "stop"], capture_output=True, timeout=120)
        shutil.rmtree(folder, ignore_errors=True)


def test_two_workers_share_one_study_on_a_postgresql_server(tmp_path, postgres_url):
    outputs = run_workers(postgres_url, "shared", 8, tmp_path)
    check_shared_study(postgres_url, "shared", 8, outputs)
    assert "postgresql://chainrule@127.0.0.1" in outputs[0]
