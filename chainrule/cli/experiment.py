"""``chainrule experiment``: the textbooks' chapter-6 experiments (the logic lives in
``chainrule.experiments``; this module only parses and prints)."""

from __future__ import annotations

from pathlib import Path

import click

from chainrule._progress import showing_progress
from chainrule.cli._types import data_error, data_folder
from chainrule.experiments import EXPERIMENTS, needs_data, run_experiment


def _study_error(error: Exception) -> click.ClickException | None:
    """A failure of the hyperparams study's storage as a message without a traceback:
    a bad --storage URL or a study made with other settings is a usage error (exit 2),
    a database that cannot be reached a plain failure (exit 1); anything else is a bug
    and keeps its traceback (None)."""
    import sys

    hpo = sys.modules.get("chainrule.hpo")  # only loaded when a study was opened
    if hpo is None:
        return None
    if isinstance(error, hpo.StorageURLError):
        return click.BadParameter(str(error), param_hint="'--storage'")
    if isinstance(error, hpo.StudySettingsError):
        return click.UsageError(str(error))
    if isinstance(error, hpo.StorageUnreachableError):
        return click.ClickException(str(error))
    return None


@click.command("experiment", short_help="The textbooks' chapter-6 experiments (training, "
                                        "gradients through time).")
@click.argument("name", type=click.Choice(list(EXPERIMENTS)), metavar="NAME")
@click.option("--dataset", type=click.Choice(["mnist", "digits"]), default=None,
              help="Data to train on (not for vanishing-gradients, which makes its own)  "
                   "[default: mnist when its files are found in --data-dir, "
                   "$CHAINRULE_DATA or the cache, else digits; never downloads]")
@click.option("--data-dir", type=data_folder(), default=None,
              help="Folder with the four MNIST IDX files (.gz or not).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Folder for the figures and the CSV  [default: experiments/NAME]")
@click.option("--iterations", type=click.IntRange(min=1), default=None,
              help="Training iterations of each run  [default: optimizers and init 2000, "
                   "batchnorm 200, overfit 600, hyperparams 200 per trial, "
                   "vanishing-gradients 300 (the clipping runs)]")
@click.option("--trials", type=click.IntRange(min=1), default=None,
              help="hyperparams: the number of trials the study is to hold, counting "
                   "those other workers ran  [default: 20]")
@click.option("--storage", metavar="URL", default=None,
              help="hyperparams: the database holding the study, shared by every worker "
                   "started with it: sqlite:///hpo.db (one machine) or postgresql://USER:"
                   "PASSWORD@HOST:PORT/DB (many)  [default: in memory]")
@click.option("--study", "study_name", metavar="NAME", default=None,
              help="hyperparams: the study's name in --storage  [default: hyperparams]")
@click.option("--prune/--no-prune", default=None,
              help="hyperparams: stop trials whose validation accuracy falls below the "
                   "median of earlier trials at the same epoch  [default: prune]")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seeds weights, shuffling, the search and synthetic data: the same "
                   "seed, the same run.")
@click.option("--progress/--no-progress", default=None,
              help="Show progress bars on stderr  [default: on a terminal only]")
def command(name: str, dataset: str | None, data_dir: str | None, out: str | None,
            iterations: int | None, trials: int | None, storage: str | None,
            study_name: str | None, prune: bool | None, seed: int,
            progress: bool | None) -> None:
    """Run one of the textbooks' chapter-6 experiments and print its summary.

    \b
    NAME is one of:
      optimizers   SGD, Momentum, AdaGrad and Adam: loss curves on one plot
      init         weights with std 0.01, Xavier or He: activation histograms of
                   a 5-layer net, and loss curves
      batchnorm    batch norm on and off across weight scales: accuracy curves
      overfit      300 samples, with and without weight decay and dropout:
                   training vs test accuracy
      hyperparams  random search of learning rate and weight decay, judged on
                   validation data: sorted table, best trials. An Optuna
                   study: workers started anywhere with the same --storage
                   and --study share its --trials (needs
                   pip install -e ".[distributed]")
      vanishing-gradients
                   book 2: the gradient norm reaching each time step of a
                   plain RNN (vanishing, exploding) and an LSTM, and SGD on
                   the exploding RNN with and without gradient clipping
                   (synthetic sequences: no dataset)

    \b
    Examples:
      chainrule experiment optimizers
      chainrule experiment init --dataset digits --iterations 500
      chainrule experiment batchnorm --data-dir ~/data/mnist --out runs/bn
      chainrule experiment hyperparams --trials 50 --seed 1
      chainrule experiment hyperparams --storage sqlite:///hpo.db --study s1 --trials 50
      chainrule experiment vanishing-gradients --iterations 500
    """
    from chainrule._extras import MissingExtraError
    from chainrule.datasets import CorruptFileError, DatasetNotFoundError

    click.get_current_context().with_resource(showing_progress(progress))  # every bar inside
    search = {"trials": trials, "storage": storage, "study": study_name, "prune": prune}
    options = {key: value for key, value in search.items() if value is not None}
    for key in options:
        if name != "hyperparams":
            flag = "--prune/--no-prune" if key == "prune" else f"--{key}"
            raise click.UsageError(f"{flag} is for the hyperparams experiment, not {name}")
    if study_name is not None and storage is None:
        raise click.UsageError("--study names a study in --storage: give --storage too "
                               "(without it the study lives in this process's memory)")
    if not needs_data(name) and (dataset is not None or data_dir is not None):
        raise click.UsageError(f"--dataset and --data-dir are for the experiments that "
                               f"train on images; {name} makes its own sequences")
    folder = Path(out) if out is not None else Path("experiments") / name
    click.echo(f"experiment {name}")
    try:
        result = run_experiment(name, folder, dataset=dataset, data_dir=data_dir,
                                iterations=iterations, seed=seed,
                                announce=lambda sentence: click.echo(f"data: {sentence}"),
                                **options)
    except (DatasetNotFoundError, CorruptFileError) as error:
        raise data_error(error) from None
    except MissingExtraError as error:
        raise click.ClickException(str(error)) from None
    except (ValueError, RuntimeError) as error:  # a study's storage or settings?
        message = _study_error(error)
        if message is None:
            raise
        raise message from None
    click.echo(f"\n{result.title}\n")
    click.echo(result.table(max_rows=20))
    if result.notes:
        click.echo("")
        click.echo("\n".join(result.notes))
    names = ", ".join(path.name for path in result.files)
    click.echo(f"\nwrote {folder}/: {names}  ({result.seconds:.1f} s)")
