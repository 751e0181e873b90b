"""Reading a run folder written by ``chainrule train --out``: one loader for every
command that rebuilds a trained network (``eval``, ``generate``), with the same clear
errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from chainrule.runs import RunConfig


def read_config(run_dir: Path) -> RunConfig:
    """The run's settings; a missing or unreadable config.json is a usage error."""
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise click.BadParameter(f"{config_path} is missing: RUN_DIR must be a folder "
                                 "written by `chainrule train --out RUN_DIR`",
                                 param_hint="RUN_DIR")
    try:
        return RunConfig.from_dict(json.loads(config_path.read_text()))
    except (ValueError, TypeError) as error:
        raise click.BadParameter(f"{config_path} is not a valid run configuration: {error}",
                                 param_hint="RUN_DIR") from None


def load_weights(net: Any, run_dir: Path, config: RunConfig) -> None:
    """Load RUN_DIR/model.npz into ``net`` (built from ``config``)."""
    from chainrule.serialization import load

    weights_path = run_dir / "model.npz"
    if not weights_path.is_file():
        raise click.BadParameter(f"{weights_path} is missing: RUN_DIR must be a folder "
                                 "written by `chainrule train --out RUN_DIR` (the model is "
                                 "written when training ends)", param_hint="RUN_DIR")
    try:
        net.load_state_dict(load(weights_path))
    except (ValueError, OSError, KeyError) as error:
        raise click.BadParameter(f"{weights_path} does not fit the {config.model} network "
                                 f"of config.json: {error}", param_hint="RUN_DIR") from None


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
