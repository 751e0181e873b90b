"""Reading a run folder written by ``chainrule train --out``: one loader for every
command that rebuilds a trained network (``eval``, ``generate``), with the same clear
errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from chainrule.runs import RunConfig


def read_config(run_dir: Path, param_hint: str = "RUN_DIR") -> RunConfig:
    """The run's settings, checked; a missing or invalid config.json is a usage error
    (``param_hint`` names the argument that gave the folder)."""
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise click.BadParameter(f"{config_path} is missing: {param_hint} must be a folder "
                                 f"written by `chainrule train --out {param_hint}`",
                                 param_hint=param_hint)
    try:
        config = RunConfig.from_dict(json.loads(config_path.read_text()))
        config.check()
    except (ValueError, TypeError, AttributeError) as error:
        raise click.BadParameter(f"{config_path} is not a valid run configuration: {error}",
                                 param_hint=param_hint) from None
    return config


def load_weights(net: Any, run_dir: Path, config: RunConfig) -> None:
    """Load RUN_DIR/model.npz into ``net`` (built from ``config``); for a run that was
    interrupted before it wrote model.npz, the weights of its last checkpoint."""
    from chainrule.serialization import load
    from chainrule.train import CHECKPOINT_NAME

    weights_path = run_dir / "model.npz"
    checkpoint = run_dir / CHECKPOINT_NAME
    try:
        if weights_path.is_file():
            weights = load(weights_path)
        elif checkpoint.is_file():
            state = load(checkpoint)
            weights = state["model"]
            click.echo(f"{weights_path.name} is not written yet (the run was interrupted): "
                       f"the weights of {checkpoint.name}, after epoch {int(state['epoch'])}",
                       err=True)
            weights_path = checkpoint
        else:
            raise click.BadParameter(f"{weights_path} is missing: RUN_DIR must be a folder "
                                     "written by `chainrule train --out RUN_DIR` (the model "
                                     "is written when training ends, a checkpoint after "
                                     "every epoch)", param_hint="RUN_DIR")
        net.load_state_dict(weights)
    except (ValueError, OSError, KeyError) as error:
        raise click.BadParameter(f"{weights_path} does not fit the {config.model} network "
                                 f"of config.json: {_first_line(error)}",
                                 param_hint="RUN_DIR") from None


def read_checkpoint_epoch(run_dir: Path, param_hint: str = "--out") -> int:
    """The last epoch saved in RUN_DIR/checkpoint.npz; an unreadable checkpoint (one
    truncated by a full disk, say) is reported with what to do."""
    from chainrule.serialization import load
    from chainrule.train import CHECKPOINT_NAME

    path = run_dir / CHECKPOINT_NAME
    try:
        return int(load(path)["epoch"])
    except (ValueError, KeyError, TypeError, OSError) as error:
        raise click.BadParameter(
            f"{path} cannot be resumed from: {_first_line(error)}. Start the run afresh with "
            "--overwrite (or in another --out folder)", param_hint=param_hint) from None


def checkpoint_misfit(error: Exception, run_dir: Path, config: RunConfig,
                      param_hint: str = "--out") -> click.BadParameter:
    """The usage error for a checkpoint that does not fit the network of config.json
    (``chainrule.train.CheckpointError``), worded as for model.npz."""
    return click.BadParameter(f"the checkpoint in {run_dir} does not fit the "
                              f"{config.model} network of config.json: {_first_line(error)}",
                              param_hint=param_hint)


def _first_line(error: Exception) -> str:
    """The error's message on one line."""
    return " ".join(str(error).split()) or type(error).__name__


def read_vocabulary(run_dir: Path) -> Any:
    """The vocabulary a language model or a sequence-to-sequence model was trained with
    (RUN_DIR/vocabulary.json)."""
    from chainrule.datasets import Vocabulary

    path = run_dir / "vocabulary.json"
    if not path.is_file():
        raise click.BadParameter(f"{path} is missing: RUN_DIR must hold a model trained on "
                                 "text by `chainrule train --dataset ptb|addition|dates "
                                 "--out RUN_DIR`", param_hint="RUN_DIR")
    try:
        return Vocabulary.from_dict(json.loads(path.read_text()))
    except (ValueError, TypeError, KeyError) as error:
        raise click.BadParameter(f"{path} is not a valid vocabulary: {error}",
                                 param_hint="RUN_DIR") from None
