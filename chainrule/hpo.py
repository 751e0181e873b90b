"""Hyper-parameter search as an Optuna study whose trials any number of workers share.

The ``hyperparams`` experiment (``chainrule.experiments``) trains; this module holds
what makes the search an Optuna study that many processes on many machines can serve:

* ``open_study``: the study in a relational database (``sqlite:///hpo.db`` on one
  machine, ``postgresql://...`` across machines; None keeps it in memory). Workers
  started with the same storage and study name join one study; the first creates it.
  The settings that decide what a trial means (data, iterations, seed, ranges) are
  stored with the study, and a worker started with other settings is refused;
* ``TextbookRandomSampler``: the textbook's random search, trial k drawing the k-th
  (learning rate, weight decay) pair of the seeded stream whichever worker runs it;
* ``run_trials``: the loop that stops when the study holds its target number of trials.

Importing this module imports Optuna (``pip install -e ".[distributed]"``); without it,
``MissingExtraError`` says so.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from chainrule._extras import MissingExtraError, import_extra, install_hint
from chainrule._progress import progress_bar

optuna = import_extra("optuna", "distributed", "the hyper-parameter search (an Optuna study)")

from optuna.distributions import BaseDistribution, FloatDistribution  # noqa: E402
from optuna.samplers import RandomSampler  # noqa: E402
from optuna.trial import FrozenTrial, TrialState  # noqa: E402

__all__ = ["TextbookRandomSampler", "open_storage", "open_study", "run_trials", "trials_taken",
           "worker_name", "redacted_url", "TrialState",
           "StorageURLError", "StorageUnreachableError", "StudySettingsError",
           "MissingExtraError", "COUNTED_STATES", "TrialPruned"]

TrialPruned = optuna.TrialPruned

#: The trials that count towards a study's target: finished (complete or pruned) and
#: running. A failed trial does not count, so another worker runs one in its place.
COUNTED_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)

#: A worker writes a heartbeat into the database every HEARTBEAT seconds while it runs a
#: trial; a running trial with no heartbeat for GRACE seconds (its worker was killed or
#: lost its machine) is marked failed by the next worker to start a trial, so that the
#: study still reaches its target.
HEARTBEAT, GRACE = 20, 120

SETTINGS_ATTR = "chainrule settings"


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Optuna's log lines (study created, each trial finished) and its warnings about
    experimental features off: chainrule prints its own summary."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(verbosity)


class StorageURLError(ValueError):
    """``--storage`` is not a database URL Optuna can use."""


class StorageUnreachableError(RuntimeError):
    """The database named by ``--storage`` could not be opened (server down, wrong
    password, a folder that does not exist)."""


class StudySettingsError(ValueError):
    """A worker joined a study that was created with other settings."""


class TextbookRandomSampler(RandomSampler):
    """Random search as the textbook does it: every parameter drawn uniformly on a
    log scale, the draws coming from one stream seeded by ``seed``: trial k (0-based)
    takes the k-th pair of (``names[0]``, ``names[1]``, ...) draws.

    Optuna's ``RandomSampler`` draws from a stream of its own in each worker: two
    workers seeded alike would try the same pairs, seeded unalike the study would
    depend on which worker ran which trial. Here a trial's values depend on its number
    only, so a study of N trials tries the same N settings however many workers share
    it, and an in-memory study reproduces the textbook loop
    ``10 ** rng.uniform(*range)`` draw for draw."""

    def __init__(self, seed: int, names: tuple[str, ...]) -> None:
        super().__init__(seed)
        self.seed, self.names = int(seed), tuple(names)

    def sample_independent(self, study: Any, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        if param_name not in self.names or not (
                isinstance(param_distribution, FloatDistribution) and param_distribution.log):
            return super().sample_independent(study, trial, param_name, param_distribution)
        position = trial.number * len(self.names) + self.names.index(param_name)
        unit = np.random.default_rng(self.seed).random(position + 1)[position]
        low, high = np.log10(param_distribution.low), np.log10(param_distribution.high)
        # the same arithmetic as Generator.uniform(low, high): low + (high - low) * u
        value = float(10 ** (low + (high - low) * unit))
        return min(max(value, param_distribution.low), param_distribution.high)


def redacted_url(url: str) -> str:
    """``url`` with its password, if any, shown as ***."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL has no password we could find
        return url


def open_storage(url: str | None) -> Any:
    """The Optuna storage at the SQLAlchemy database ``url`` (None: in memory).

    ``postgresql://`` without a driver means psycopg2 (the driver the ``distributed``
    extra installs; SQLAlchemy 2.1 changed its own default to psycopg 3); name another
    as ``postgresql+DRIVER://``. SQLite waits up to a minute for a lock that another
    worker holds instead of failing at once."""
    if url is None:
        return None
    scheme, separator, rest = url.partition("://")
    if not separator or not scheme:
        raise StorageURLError(f"{url!r} is not a database URL: give sqlite:///FILE.db (one "
                              "machine) or postgresql://USER:PASSWORD@HOST:PORT/DATABASE "
                              "(many machines)")
    dialect, _, driver = scheme.partition("+")
    if dialect == "postgresql" and not driver:
        url = f"postgresql+psycopg2://{rest}"
    engine_kwargs: dict[str, Any] = {}
    if dialect == "sqlite":
        engine_kwargs["connect_args"] = {"timeout": 60}
    import sqlalchemy.exc

    for attempt in range(1, 6):
        try:
            with _quiet():
                storage = optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs,
                                                     heartbeat_interval=HEARTBEAT,
                                                     grace_period=GRACE)
            if dialect == "sqlite":
                _write_ahead_log(storage.engine)
            return storage
        except ImportError as error:  # the database driver SQLAlchemy needs is missing
            missing = getattr(error.__cause__, "name", None) or "its database driver"
            raise MissingExtraError(
                f"the storage {redacted_url(url)} needs {missing}, which is not installed: "
                f"{install_hint('distributed')} (PostgreSQL through psycopg2); for another "
                "database install its SQLAlchemy driver") from None
        except (sqlalchemy.exc.ArgumentError, sqlalchemy.exc.NoSuchModuleError) as error:
            raise StorageURLError(f"{url!r} is not a database URL Optuna can use ({error}); "
                                  "give sqlite:///FILE.db or postgresql://USER:PASSWORD@"
                                  "HOST:PORT/DATABASE") from None
        except sqlalchemy.exc.SQLAlchemyError as error:
            reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
            # Workers opening a new database at once all create Optuna's tables and
            # stamp their version: the losers find them made and try again.
            racing = isinstance(error, sqlalchemy.exc.IntegrityError) or any(
                words in reason for words in ("already exists", "duplicate key",
                                              "UNIQUE constraint failed"))
            if attempt < 5 and racing:
                time.sleep(0.2 * attempt)
                continue
            raise StorageUnreachableError(f"cannot open the study storage "
                                          f"{redacted_url(url)}: {reason}") from None
    raise AssertionError("unreachable: the last attempt returns or raises")


def _write_ahead_log(engine: Any) -> None:
    """SQLite in write-ahead-log mode, syncing to disk at checkpoints rather than at
    every commit: a trial commits once per epoch (its validation accuracy, for the
    pruner), and with a sync each time the database cost as much as the training
    (measured: 24 trials/min against 57 in memory). Readers no longer wait for a
    writer either. What a power cut can lose is the last commits, never the
    database's consistency (https://www.sqlite.org/wal.html)."""
    import sqlalchemy

    def pragmas(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    sqlalchemy.event.listen(engine, "connect", pragmas)
    engine.dispose()  # the connections opened while creating the tables lack them


def open_study(storage: str | None, name: str | None, seed: int,
               settings: dict[str, Any], prune: bool = True, startup_trials: int = 5,
               warmup_steps: int = 0, parameter_names: tuple[str, ...] = ()) -> Any:
    """Create the study ``name`` in ``storage`` (a database URL; None: in memory), or
    join it if another worker already has: maximising the objective, sampled by
    ``TextbookRandomSampler(seed, parameter_names)``, and pruned (if ``prune``) by a
    median pruner: from the ``startup_trials``-th complete trial on, a trial whose best
    value so far is below the median of the earlier trials' values at the same step
    (after ``warmup_steps`` steps) is stopped.

    ``settings`` (JSON-able) are stored with a new study; joining one stored with other
    settings raises ``StudySettingsError``, naming what differs."""
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=startup_trials,
                                          n_warmup_steps=warmup_steps)
              if prune else optuna.pruners.NopPruner())
    with _quiet():
        study = optuna.create_study(storage=open_storage(storage), study_name=name,
                                    direction="maximize", load_if_exists=True,
                                    sampler=TextbookRandomSampler(seed, parameter_names),
                                    pruner=pruner)
    wanted = json.loads(json.dumps(settings))  # as the database gives it back
    if SETTINGS_ATTR not in study.user_attrs:
        study.set_user_attr(SETTINGS_ATTR, wanted)
    stored = study.user_attrs[SETTINGS_ATTR]  # read back: two creators race, one wins
    if stored != wanted:
        differences = ", ".join(f"{key} ({stored.get(key)!r} there, {wanted.get(key)!r} here)"
                                for key in sorted(set(stored) | set(wanted))
                                if stored.get(key) != wanted.get(key))
        raise StudySettingsError(
            f"the study {name!r} in {redacted_url(storage or 'memory')} was created with other "
            f"settings: {differences}. Every worker of a study must train the same way: "
            "start this one with the same options, or name a new --study")
    return study


def trials_taken(study: Any, before: int | None = None) -> int:
    """How many of the study's trials count towards its target (``COUNTED_STATES``),
    of those numbered below ``before`` if given."""
    trials = study.get_trials(deepcopy=False, states=COUNTED_STATES)
    return sum(1 for t in trials if before is None or t.number < before)


class _TargetReached(Exception):
    """This worker claimed a trial beyond the target: the study is full."""


def worker_name() -> str:
    """``host:pid``, recorded with every trial a process runs."""
    return f"{socket.gethostname()}:{os.getpid()}"


def run_trials(study: Any, objective: Callable[[Any], float], trials: int) -> int:
    """Run ``objective`` on new trials of ``study`` until the study holds ``trials``
    counted trials (``COUNTED_STATES``: this worker's and every other worker's); returns
    how many this worker ran.

    How workers stop: a worker starts a trial only while fewer than ``trials`` trials
    are counted, checking before its first trial and after each one (Optuna's
    ``MaxTrialsCallback`` counting running trials too, so nobody starts a trial that a
    running one will complete the study without). Two workers that check at the same
    instant could both start one; to make the total exact, a trial also checks its own
    number, which the database hands out one at a time: if ``trials`` counted trials
    are numbered below it, it is recorded as failed with the user attribute "not run"
    and not run. So every trial runs once, and the study ends with exactly ``trials``
    complete or pruned trials unless one fails (failed trials do not count: start a
    worker again and it runs their replacements).

    Then it waits for the trials still running on other workers when it stopped, so
    that every worker summarises the whole study and sees the same best trial. A
    worker that died holding a trial stops its heartbeat; after ``GRACE`` seconds the
    trial is marked failed and the wait ends."""
    ran = 0

    def claimed(trial: Any) -> float:
        nonlocal ran
        if trials_taken(study, before=trial.number) >= trials:
            trial.set_user_attr("not run", "the study had reached its number of trials")
            raise _TargetReached
        trial.set_user_attr("worker", worker_name())
        ran += 1
        return objective(trial)

    with _quiet():
        optuna.storages.fail_stale_trials(study)  # trials of killed workers stop counting
        if trials_taken(study) < trials:
            study.optimize(claimed, catch=(_TargetReached,), callbacks=[
                optuna.study.MaxTrialsCallback(trials, states=COUNTED_STATES)])
        _wait_for_running(study)
    return ran


def _wait_for_running(study: Any, poll: float = 0.5) -> None:
    """Wait until the trials running now have finished (or been failed as stale)."""
    running = {t.number for t in study.get_trials(deepcopy=False,
                                                   states=(TrialState.RUNNING,))}
    with progress_bar(len(running), "trials of other workers", "trial") as bar:
        while running:
            time.sleep(poll)
            optuna.storages.fail_stale_trials(study)
            still = {t.number for t in study.get_trials(deepcopy=False,
                                                         states=(TrialState.RUNNING,))}
            bar.update(len(running - still))
            running &= still
