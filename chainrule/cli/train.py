"""``chainrule train``: train a network on a dataset and report its test accuracy."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from chainrule.runs import (
    DATASETS,
    DEFAULT_EPOCHS,
    LR_SCHEDULES,
    MODELS,
    OPTIMIZERS,
    RunConfig,
    build_model,
    build_optimizer,
    build_scheduler,
    load_data,
)


def _hidden_sizes(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
                  ) -> list[int] | None:
    """``--hidden 100 --hidden 50`` or ``--hidden 100,50``."""
    if not values:
        return None
    sizes = []
    for value in values:
        for part in value.split(","):
            try:
                size = int(part)
            except ValueError:
                raise click.BadParameter(f"{part!r} is not a whole number of units") from None
            if size <= 0:
                raise click.BadParameter(f"layer sizes must be positive, got {size}")
            sizes.append(size)
    return sizes


def _positive(kind: type) -> click.ParamType:
    return click.IntRange(min=1) if kind is int else click.FloatRange(min=0, min_open=True)


@click.command("train")
@click.option("--dataset", type=click.Choice(DATASETS), default="digits", show_default=True,
              help="What to learn. digits is built in; mnist and fashion-mnist are read "
                   "from --data-dir or downloaded once.")
@click.option("--model", type=click.Choice(MODELS), default="two-layer", show_default=True,
              help="two-layer: Affine-ReLU-Affine (the textbook net); mlp: --hidden layers "
                   "with --activation; cnn / deep-cnn: convolutional nets.")
@click.option("--hidden", multiple=True, callback=_hidden_sizes, metavar="SIZES",
              help="Hidden layer sizes, repeatable or comma-separated  [default: 50]")
@click.option("--activation", default="relu", show_default=True,
              type=click.Choice(["relu", "leaky_relu", "sigmoid", "tanh"]),
              help="Hidden activation of --model mlp.")
@click.option("--optimizer", type=click.Choice(OPTIMIZERS), default="sgd",
              show_default=True)
@click.option("--lr", type=_positive(float), default=0.1, show_default=True,
              help="Learning rate.")
@click.option("--lr-schedule", type=click.Choice(LR_SCHEDULES), default="constant",
              show_default=True,
              help="cosine: anneal the learning rate to 0 over the run; step: ×0.1 after "
                   "each third of the run.")
@click.option("--batch-size", type=_positive(int), default=100, show_default=True)
@click.option("--epochs", type=_positive(int), default=None,
              help="Passes over the training data  [default: " + ", ".join(
                  f"{k} {v}" for k, v in DEFAULT_EPOCHS.items()) + "]")
@click.option("--weight-decay", type=click.FloatRange(min=0), default=0.0,
              show_default=True, help="L2 penalty added to the gradient.")
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=0.0,
              show_default=True, help="Dropout after each hidden layer (--model mlp).")
@click.option("--batch-norm", is_flag=True, help="Batch normalisation (--model mlp).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seeds weights and shuffling: the same seed gives the same run.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Folder with the four MNIST IDX files (.gz or not).")
@click.option("--subset", type=_positive(int), default=None,
              help="Train on the first N training samples only (quick tries).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Run folder: config.json, history.csv/json, model.npz, "
                   "learning_curve.png.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar per epoch  [default: on a terminal]")
def command(dataset: str, model: str, hidden: list[int] | None, activation: str,
            optimizer: str, lr: float, lr_schedule: str, batch_size: int, epochs: int | None,
            weight_decay: float, dropout: float, batch_norm: bool, seed: int,
            data_dir: str | None, subset: int | None, out: str | None,
            progress: bool | None) -> None:
    """Train a network and print its test accuracy.

    \b
    Examples:
      chainrule train
      chainrule train --model mlp --hidden 100,50 --optimizer adam --lr 0.001
      chainrule train --dataset mnist --data-dir ~/data/mnist --out runs/mnist
      chainrule train --dataset mnist --model cnn --optimizer adam --lr 0.001 --epochs 5
    """
    from chainrule.data import DataLoader, TensorDataset
    from chainrule.nn import CrossEntropyLoss
    from chainrule.train import Callback, TrainingDiverged, evaluate, fit

    config = RunConfig(dataset=dataset, model=model, hidden=hidden or [50],
                       activation=activation, optimizer=optimizer, lr=lr,
                       batch_size=batch_size, epochs=epochs, weight_decay=weight_decay,
                       dropout=dropout, batch_norm=batch_norm, seed=seed, data_dir=data_dir,
                       subset=subset, lr_schedule=lr_schedule)
    try:
        data = load_data(config)
    except (FileNotFoundError, ValueError) as error:  # missing or corrupt files
        raise click.ClickException(str(error)) from None
    try:
        net = build_model(config, data)
    except ValueError as error:  # a model that does not fit the data: a usage error
        raise click.UsageError(str(error)) from None
    opt = build_optimizer(config, net)
    scheduler = build_scheduler(config, opt)
    train_loader = DataLoader(TensorDataset(data.x_train, data.y_train),
                              batch_size=min(batch_size, len(data.x_train)), shuffle=True,
                              seed=seed)
    test_loader = DataLoader(TensorDataset(data.x_test, data.y_test), batch_size=1000)
    n_epochs = config.resolved_epochs()
    click.echo(f"{dataset}: {len(data.x_train)} training and {len(data.x_test)} test "
               f"samples; {model} network with {net.num_parameters():,} parameters; "
               f"{optimizer} lr={lr}"
               + (f" ({lr_schedule} schedule)" if lr_schedule != "constant" else "")
               + f", batch {batch_size}, {n_epochs} epochs")

    class PrintEpoch(Callback):
        def on_epoch_end(self, epoch: int, record: dict[str, float]) -> None:
            if n_epochs > 20 and epoch % max(1, n_epochs // 10) and epoch != n_epochs:
                return
            click.echo(f"epoch {epoch:>4}/{n_epochs}  loss {record['train_loss']:.4f}  "
                       f"train acc {record['train_accuracy']:.4f}  "
                       f"test acc {record['val_accuracy']:.4f}  ({record['seconds']:.1f} s)")

    started = time.perf_counter()
    try:
        history = fit(net, CrossEntropyLoss(), opt, train_loader, n_epochs,
                      val_loader=test_loader, scheduler=scheduler, callbacks=[PrintEpoch()],
                      progress=progress)
    except TrainingDiverged as error:
        raise click.ClickException(str(error)) from None
    seconds = time.perf_counter() - started
    result = evaluate(net, test_loader)
    click.echo(f"test accuracy: {result['accuracy']:.4f} "
               f"({round(result['accuracy'] * result['samples'])}/{result['samples']}) "
               f"after {n_epochs} epochs in {seconds:.1f} s")
    if out is not None:
        _write_run(Path(out), config, net, history, result)


def _write_run(folder: Path, config: RunConfig, net: object, history: object,
               result: dict) -> None:
    from chainrule.serialization import save

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    history.to_csv(folder / "history.csv")
    history.to_json(folder / "history.json")
    save(net.state_dict(), folder / "model.npz")
    (folder / "result.json").write_text(json.dumps(
        {"test_accuracy": result["accuracy"], "test_samples": result["samples"],
         "confusion_matrix": result["confusion_matrix"].tolist()}, indent=1) + "\n")
    picture = history.plot(folder / "learning_curve.png")
    click.echo(f"wrote {folder}/: config.json, history.csv, history.json, model.npz, "
               f"result.json, {Path(picture).name}")
