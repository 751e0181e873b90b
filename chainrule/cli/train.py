"""``chainrule train``: train a network on a dataset and report its test accuracy."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click
import numpy as np

from chainrule._atomic import remove_temporary_files
from chainrule.cli._run_folder import checkpoint_misfit, read_checkpoint_epoch, read_config
from chainrule.cli._types import FiniteFloatRange, data_error, data_folder, positive_float
from chainrule.runs import (
    DATASETS,
    DEFAULT_EPOCHS,
    EVAL_BATCH_SIZE,
    LR_SCHEDULES,
    MODELS,
    OPTIMIZERS,
    RunConfig,
    answer_questions,
    build_language_model,
    build_model,
    build_optimizer,
    build_scheduler,
    build_seq2seq,
    load_corpus,
    load_data,
    load_sequence_data,
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
    return click.IntRange(min=1) if kind is int else positive_float()


@click.command("train")
@click.option("--dataset", type=click.Choice(DATASETS), default="digits", show_default=True,
              help="What to learn. digits is built in; mnist, fashion-mnist and ptb (Penn "
                   "Treebank) are read from --data-dir or downloaded once; addition "
                   "(sums like 123+45) and dates (to ISO form) are generated, or read "
                   "from --data-file.")
@click.option("--model", type=click.Choice(MODELS), default=None,
              help="two-layer: Affine-ReLU-Affine (the textbook net); mlp: --hidden layers "
                   "with --activation; cnn / deep-cnn: convolutional nets; lstm-lm: an "
                   "LSTM language model; seq2seq / attention: an LSTM encoder-decoder, "
                   "without or with attention  [default: two-layer; lstm-lm for ptb; "
                   "seq2seq for addition; attention for dates]")
@click.option("--hidden", multiple=True, callback=_hidden_sizes, metavar="SIZES",
              help="Hidden layer sizes, repeatable or comma-separated; for lstm-lm the "
                   "width of the embedding and of every LSTM layer; for seq2seq and "
                   "attention the width of both LSTMs  [default: 50; 100 for ptb; 128 for "
                   "addition; 256 for dates]")
@click.option("--activation", default="relu", show_default=True,
              type=click.Choice(["relu", "leaky_relu", "sigmoid", "tanh"]),
              help="Hidden activation of --model mlp.")
@click.option("--optimizer", type=click.Choice(OPTIMIZERS), default=None,
              help="How to update the weights  [default: sgd; adam for addition and "
                   "dates; adamw for transformer-lm]")
@click.option("--lr", type=_positive(float), default=None,
              help="Learning rate  [default: 0.1; 20 for ptb; 0.001 for addition and "
                   "dates]")
@click.option("--lr-schedule", type=click.Choice(LR_SCHEDULES), default="constant",
              show_default=True,
              help="cosine: anneal the learning rate to 0 over the run; step: ×0.1 after "
                   "each third of the run.")
@click.option("--batch-size", type=_positive(int), default=None,
              help="Samples per step; for a language model, parallel streams of text. "
                   "Under mpiexec -n K the global batch, split across the K processes  "
                   "[default: 100; 20 for ptb; 128 for addition and dates]")
@click.option("--epochs", type=_positive(int), default=None,
              help="Passes over the training data  [default: " + ", ".join(
                  f"{k} {v}" for k, v in DEFAULT_EPOCHS.items()) + "]")
@click.option("--weight-decay", type=FiniteFloatRange(min=0), default=None,
              help="L2 penalty added to the gradient (AdamW: decoupled decay)  "
                   "[default: 0; 0.01 for transformer-lm]")
@click.option("--dropout", type=FiniteFloatRange(0, 1, max_open=True), default=None,
              help="Dropout after each hidden layer (--model mlp); for lstm-lm on the "
                   "embedding, between the LSTM layers and before the output; for "
                   "transformer-lm in every block  [default: 0; 0.1 for transformer-lm]")
@click.option("--batch-norm", is_flag=True, help="Batch normalisation (--model mlp).")
@click.option("--layers", type=_positive(int), default=None,
              help="LSTM layers of --model lstm-lm, blocks of transformer-lm  "
                   "[default: 1; 4 for transformer-lm]")
@click.option("--heads", type=_positive(int), default=None,
              help="Attention heads of --model transformer-lm  [default: 4]")
@click.option("--bptt", type=_positive(int), default=None,
              help="Time steps per window of truncated backpropagation through time "
                   "(lstm-lm); the context of transformer-lm  [default: 35; 64 for "
                   "transformer-lm]")
@click.option("--clip", type=_positive(float), default=None,
              help="Clip the gradients to this global norm before every step  "
                   "[default: none; 0.25 for ptb; 5 for addition and dates; 1 for "
                   "transformer-lm]")
@click.option("--tie-weights/--no-tie-weights", default=None,
              help="The output layer shares the embedding matrix (language models)  "
                   "[default: off for lstm-lm, on for transformer-lm]")
@click.option("--wordvec", type=_positive(int), default=None,
              help="Size of the character vectors of --model seq2seq or attention  "
                   "[default: 16]")
@click.option("--reverse/--no-reverse", default=None,
              help="Read every question back to front (addition, dates)  [default: no; "
                   "yes for dates, as the book]")
@click.option("--peeky", is_flag=True,
              help="The decoder sees the encoder's final state at every step (--model "
                   "seq2seq).")
@click.option("--data-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="For addition and dates: questions and answers in the book's format, "
                   "one a line ('16+75  _91  '), e.g. its addition.txt or date.txt  "
                   "[default: generated, 50,000]. For --dataset text: the text to learn "
                   "(plain or .gz; 90 % trains, 5 % validates, 5 % tests).")
@click.option("--chars", is_flag=True,
              help="--dataset text: read the text character by character (a character "
                   "language model) instead of word by word.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seeds weights and shuffling: the same seed gives the same run.")
@click.option("--data-dir", type=data_folder(), default=None,
              help="Folder with the four MNIST IDX files (.gz or not).")
@click.option("--subset", type=_positive(int), default=None,
              help="Train on the first N training samples only (quick tries).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Run folder: config.json, a checkpoint after every epoch, "
                   "history.csv/json, model.npz, learning_curve.png.")
@click.option("--resume", is_flag=True,
              help="Continue the run in --out from its last checkpoint (written after "
                   "every epoch), with the settings saved in its config.json; other "
                   "settings are refused, but --epochs N extends the run to N epochs in "
                   "all (a cosine or step schedule is stretched to the new total and "
                   "goes on from the epochs done), and --data-dir/--data-file may point "
                   "to where the data is now.")
@click.option("--overwrite", is_flag=True,
              help="Start afresh in an --out folder that already holds a run (its run "
                   "files are deleted).")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar per epoch  [default: on a terminal]")
def command(dataset: str, model: str | None, hidden: list[int] | None, activation: str,
            optimizer: str | None, lr: float | None, lr_schedule: str,
            batch_size: int | None, epochs: int | None, weight_decay: float | None,
            dropout: float | None, batch_norm: bool, layers: int | None, heads: int | None,
            bptt: int | None, clip: float | None, tie_weights: bool | None,
            wordvec: int | None, reverse: bool | None, peeky: bool, data_file: str | None,
            chars: bool, seed: int, data_dir: str | None, subset: int | None,
            out: str | None, resume: bool, overwrite: bool, progress: bool | None) -> None:
    """Train a network and print its test accuracy (a language model: its perplexity).

    \b
    Examples:
      chainrule train
      chainrule train --model mlp --hidden 100,50 --optimizer adam --lr 0.001
      chainrule train --dataset mnist --data-dir ~/data/mnist --out runs/mnist
      chainrule train --out runs/mnist --resume      # after an interruption
      chainrule train --dataset mnist --model cnn --optimizer adam --lr 0.001 --epochs 5
      chainrule train --dataset ptb --data-dir ~/data/ptb --out runs/ptb   # the book's
      chainrule train --dataset addition --reverse --peeky
      chainrule train --dataset text --data-file novel.txt --chars --model transformer-lm
      chainrule train --dataset dates --data-file date.txt --epochs 3 --out runs/dates
      mpiexec -n 2 chainrule train --dataset mnist --out runs/mnist2   # 2 processes
    """
    options = dict(locals())
    world = _join_ranks()
    with world.stop_all_on_failure(_failure_report):
        _train_command(**options)


def _join_ranks() -> Any:
    """This process's place among the ``mpiexec`` ranks (world size 1 without MPI);
    ranks other than 0 print nothing but their failures."""
    import os
    import sys

    from chainrule import distributed

    try:
        world = distributed.init()
    except distributed.DistributedUnavailable as error:
        raise click.ClickException(str(error)) from None
    if not world.is_main:
        sys.stdout = open(os.devnull, "w")  # for the process's life
    return world


def _failure_report(error: BaseException) -> tuple[str, int]:
    """What a rank says before it stops the others, as the command line says it: an
    error's message, an unexpected one in one line (its traceback with
    CHAINRULE_DEBUG=1), Ctrl-C as an interruption."""
    import os

    from chainrule import distributed
    from chainrule.cli import DEBUG_VARIABLE, _one_line

    if isinstance(error, click.ClickException):
        return f"Error: {error.format_message()}", error.exit_code
    if isinstance(error, (KeyboardInterrupt, click.Abort)):
        return distributed.describe_failure(KeyboardInterrupt())
    if os.environ.get(DEBUG_VARIABLE, "") not in ("", "0"):
        return distributed.describe_failure(error)
    return f"Error: {_one_line(error)}", 1


def _train_command(dataset: str, model: str | None, hidden: list[int] | None,
                   activation: str, optimizer: str | None, lr: float | None,
                   lr_schedule: str, batch_size: int | None, epochs: int | None,
                   weight_decay: float | None, dropout: float | None, batch_norm: bool,
                   layers: int | None, heads: int | None, bptt: int | None,
                   clip: float | None, tie_weights: bool | None, wordvec: int | None,
                   reverse: bool | None, peeky: bool, data_file: str | None, chars: bool,
                   seed: int, data_dir: str | None, subset: int | None, out: str | None,
                   resume: bool, overwrite: bool, progress: bool | None) -> None:
    # the data's place is saved absolute: the run folder works from anywhere
    data_dir = _absolute(data_dir)
    data_file = _absolute(data_file)
    config = RunConfig.for_dataset(
        dataset, model=model, hidden=hidden, activation=activation, optimizer=optimizer,
        lr=lr, batch_size=batch_size, epochs=epochs, weight_decay=weight_decay,
        dropout=dropout, batch_norm=batch_norm, layers=layers, heads=heads, bptt=bptt,
        clip=clip, tie_weights=tie_weights, seed=seed, data_dir=data_dir, subset=subset,
        lr_schedule=lr_schedule, wordvec=wordvec, reverse=reverse, peeky=peeky or None,
        data_file=data_file, chars=chars or None)
    resume_from = None
    if resume and overwrite:
        raise click.UsageError("give either --resume (continue the run in --out) or "
                               "--overwrite (start it afresh), not both")
    if resume:
        config, resume_from = _resumable_run(out, config, epochs)
    elif out is not None and _is_main():
        _claim_run_folder(Path(out), overwrite)
    try:
        config.check()
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    if config.is_language_model:
        _train_language_model(config, out, resume_from, progress)
    elif config.is_seq2seq:
        _train_seq2seq(config, out, resume_from, progress)
    else:
        _train_classifier(config, out, resume_from, progress)


def _train_classifier(config: RunConfig, out: str | None, resume_from: Path | None,
                      progress: bool | None) -> None:
    from chainrule.data import DataLoader, TensorDataset
    from chainrule.nn import CrossEntropyLoss
    from chainrule.train import Callback, evaluate

    try:
        data = load_data(config)
    except (FileNotFoundError, ValueError) as error:  # missing or corrupt files
        raise data_error(error) from None
    try:
        net = build_model(config, data)
    except ValueError as error:  # a model that does not fit the data: a usage error
        raise click.UsageError(str(error)) from None
    opt = build_optimizer(config, net)
    scheduler = build_scheduler(config, opt)
    train_loader = DataLoader(TensorDataset(data.x_train, data.y_train),
                              batch_size=_batch_size(config, len(data.x_train)),
                              shuffle=True, seed=config.seed)
    test_loader = DataLoader(TensorDataset(data.x_test, data.y_test), batch_size=1000)
    n_epochs = config.resolved_epochs()
    c = config
    click.echo(f"{c.dataset}: {len(data.x_train)} training and {len(data.x_test)} test "
               f"samples; {c.model} network with {net.num_parameters():,} parameters; "
               + _training_summary(c)
               + f", batch {c.batch_size}, {n_epochs} epochs")
    _start_run_folder(config, out, resume_from)

    class PrintEpoch(Callback):
        def on_epoch_end(self, epoch: int, record: dict[str, float]) -> None:
            if n_epochs > 20 and epoch % max(1, n_epochs // 10) and epoch != n_epochs:
                return
            click.echo(f"epoch {epoch:>4}/{n_epochs}  loss {record['train_loss']:.4f}  "
                       f"train acc {record['train_accuracy']:.4f}  "
                       f"test acc {record['val_accuracy']:.4f}  ({record['seconds']:.1f} s)")

    started = time.perf_counter()
    history = _fit(config, out, net, CrossEntropyLoss(), opt, train_loader, n_epochs,
                   val_loader=test_loader, scheduler=scheduler, callbacks=[PrintEpoch()],
                   progress=progress, checkpoint_dir=out, resume=resume_from)
    seconds = time.perf_counter() - started
    result = evaluate(net, test_loader)
    click.echo(f"test accuracy: {result['accuracy']:.4f} "
               f"({round(result['accuracy'] * result['samples'])}/{result['samples']}) "
               f"after {n_epochs} epochs in {seconds:.1f} s")
    if out is not None:
        _write_run(Path(out), net, history,
                   {"test_accuracy": result["accuracy"], "test_samples": result["samples"],
                    "confusion_matrix": result["confusion_matrix"].tolist()})


def _training_summary(c: RunConfig) -> str:
    """'sgd lr=20.0 (cosine schedule), clip 0.25': how the run learns."""
    return (f"{c.optimizer} lr={c.lr}"
            + (f" ({c.lr_schedule} schedule)" if c.lr_schedule != "constant" else "")
            + (f", clip {c.clip}" if c.clip else ""))


def _start_run_folder(config: RunConfig, out: str | None, resume_from: Path | None,
                      vocabulary: Any = None) -> None:
    """Write the settings (and a text model's vocabulary) before training, so that a run
    killed mid-way can be resumed, evaluated and sampled. Under ``mpiexec`` rank 0
    writes, once every rank has read what it needs of the folder."""
    from chainrule import distributed

    distributed.init().barrier()
    if out is not None and _is_main():
        Path(out).mkdir(parents=True, exist_ok=True)
        remove_temporary_files(out)  # left by a run killed while writing a file
        (Path(out) / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
        if vocabulary is not None:
            (Path(out) / "vocabulary.json").write_text(
                json.dumps(vocabulary.to_dict()) + "\n")
    if resume_from is not None:
        click.echo(f"resuming from {resume_from}")


def _train_language_model(config: RunConfig, out: str | None, resume_from: Path | None,
                          progress: bool | None) -> None:
    """Truncated BPTT over the training stream; perplexity per epoch on the validation
    stream, and at the end on the test stream."""
    from chainrule.data import BPTTLoader
    from chainrule.nn import CrossEntropyLoss
    from chainrule.train import Callback, evaluate

    try:
        corpus = load_corpus(config)
    except (FileNotFoundError, ValueError) as error:  # missing or corrupt files
        raise data_error(error) from None
    try:
        net = build_language_model(config, len(corpus.vocabulary))
    except ValueError as error:  # sizes that do not fit together: a usage error
        raise click.UsageError(str(error)) from None
    opt = build_optimizer(config, net)
    scheduler = build_scheduler(config, opt)
    c = config
    train_loader = BPTTLoader(corpus.train, c.batch_size, c.bptt)
    valid_loader = BPTTLoader(corpus.valid, EVAL_BATCH_SIZE, c.bptt)
    test_loader = BPTTLoader(corpus.test, EVAL_BATCH_SIZE, c.bptt)
    n_epochs = c.resolved_epochs()
    click.echo(f"{c.dataset}: {len(corpus.train):,} training, {len(corpus.valid):,} "
               f"validation and {len(corpus.test):,} test tokens, "
               f"{len(corpus.vocabulary):,} words; {c.model} with {c.layers}×{c.hidden[0]} "
               + (f"Transformer, {c.heads} heads" if c.model == "transformer-lm" else "LSTM")
               + (", tied weights" if c.tie_weights else "")
               + (f", dropout {c.dropout}" if c.dropout else "")
               + f" ({net.num_parameters():,} parameters); " + _training_summary(c)
               + f", batch {c.batch_size}×{c.bptt}, {n_epochs} epochs")
    _start_run_folder(config, out, resume_from, corpus.vocabulary)

    class PrintEpoch(Callback):
        def on_epoch_end(self, epoch: int, record: dict[str, float]) -> None:
            click.echo(f"epoch {epoch:>3}/{n_epochs}  train perplexity "
                       f"{record['train_perplexity']:8.2f}  validation perplexity "
                       f"{record['val_perplexity']:8.2f}  lr {record['lr']:g}  "
                       f"({record['seconds']:.0f} s)")

    started = time.perf_counter()
    history = _fit(config, out, net, CrossEntropyLoss(), opt, train_loader, n_epochs,
                   val_loader=valid_loader, scheduler=scheduler, metrics=("perplexity",),
                   callbacks=[PrintEpoch()], progress=progress, checkpoint_dir=out,
                   resume=resume_from)
    seconds = time.perf_counter() - started
    result = evaluate(net, test_loader, CrossEntropyLoss(), metrics=("perplexity",))
    click.echo(f"test perplexity: {result['perplexity']:.2f} ({result['samples']:,} tokens) "
               f"after {n_epochs} epochs in {seconds:.0f} s")
    if out is not None:
        _write_run(Path(out), net, history,
                   {"test_perplexity": result["perplexity"], "test_loss": result["loss"],
                    "test_tokens": result["samples"]})


def _mark_symbols() -> tuple[str, str]:
    """✓ and ✗ where the output can show them, else O and X (as the book falls back)."""
    import sys

    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        "✓✗".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return "O", "X"
    return "✓", "✗"


def show_answers(data: Any, questions: np.ndarray, answers: np.ndarray,
                 guesses: np.ndarray, reverse: bool, count: int) -> None:
    """Print ``count`` questions with the true answer and the guess marked right or
    wrong, as the book's ``eval_seq2seq`` (a reversed question shown the right way)."""
    right, wrong = _mark_symbols()
    for q, t, g in zip(questions[:count], answers[:count], guesses[:count]):
        question = data.decode(q[::-1] if reverse else q)
        true, guess = data.decode(t[1:]), data.decode(g)
        click.echo(f"  Q {question}  T {true}  {right if guess == true else wrong} {guess}")


def _train_seq2seq(config: RunConfig, out: str | None, resume_from: Path | None,
                   progress: bool | None) -> None:
    """Teacher forcing over the training questions; after every epoch the greedy answers
    to the test questions, scored by exact match, with a few of them shown."""
    from chainrule.data import DataLoader, TensorDataset
    from chainrule.nn import CrossEntropyLoss
    from chainrule.train import Callback

    try:
        data = load_sequence_data(config)
    except (FileNotFoundError, ValueError) as error:  # missing or malformed files
        raise data_error(error) from None
    c = config
    net = build_seq2seq(c, len(data.vocabulary))
    opt = build_optimizer(c, net)
    scheduler = build_scheduler(c, opt)
    # decoder input: the answer without its last character; target: without its first
    train_loader = DataLoader(TensorDataset(data.x_train, data.t_train[:, :-1],
                                            data.t_train[:, 1:]),
                              batch_size=_batch_size(c, len(data.x_train)), shuffle=True,
                              seed=c.seed)
    test_loader = DataLoader(TensorDataset(data.x_test, data.t_test[:, :-1],
                                           data.t_test[:, 1:]), batch_size=1000)
    length = data.t_test.shape[1] - 1
    n_epochs = c.resolved_epochs()
    source = c.data_file or "generated"
    click.echo(f"{c.dataset} ({source}): {len(data.x_train):,} training and "
               f"{len(data.x_test):,} test questions, {len(data.vocabulary)} characters"
               + (", questions reversed" if c.reverse else "") + f"; {c.model}"
               + (" (peeky)" if c.peeky else "") + f" with {c.wordvec}-wide character "
               f"vectors and {c.hidden[0]}-unit LSTMs ({net.num_parameters():,} "
               f"parameters); " + _training_summary(c)
               + f", batch {c.batch_size}, {n_epochs} epochs")
    _start_run_folder(config, out, resume_from, data.vocabulary)

    def exact_match() -> tuple[float, np.ndarray]:
        guesses = answer_questions(net, data.x_test, data.start_id, length)
        return float((guesses == data.t_test[:, 1:]).all(axis=1).mean()), guesses

    class ScoreAnswers(Callback):
        """Exact-match accuracy of the greedy answers, added to the epoch's record."""

        def on_epoch_end(self, epoch: int, record: dict[str, float]) -> None:
            record["val_accuracy"], guesses = exact_match()
            click.echo(f"epoch {epoch:>3}/{n_epochs}  loss {record['train_loss']:.4f}  "
                       f"test loss {record['val_loss']:.4f}  test exact-match accuracy "
                       f"{record['val_accuracy']:.4f}  ({record['seconds']:.0f} s)")
            show_answers(data, data.x_test, data.t_test, guesses, c.reverse, 3)

    started = time.perf_counter()
    history = _fit(config, out, net, CrossEntropyLoss(), opt, train_loader, n_epochs,
                   val_loader=test_loader, scheduler=scheduler, metrics=(),
                   callbacks=[ScoreAnswers()], progress=progress, checkpoint_dir=out,
                   resume=resume_from)
    seconds = time.perf_counter() - started
    accuracy, _ = exact_match()
    correct = round(accuracy * len(data.x_test))
    click.echo(f"test exact-match accuracy: {accuracy:.4f} ({correct}/{len(data.x_test)}) "
               f"after {n_epochs} epochs in {seconds:.0f} s")
    if out is not None:
        _write_run(Path(out), net, history,
                   {"test_accuracy": accuracy, "test_samples": len(data.x_test)})


def _fit(config: RunConfig, out: str | None, model: Any, loss_fn: Any, optimizer: Any,
         train_loader: Any, epochs: int, callbacks: Any = (), **kwargs: Any) -> Any:
    """``chainrule.train.fit`` with the run's gradient clipping (``--clip``, for every
    kind of model), data-parallel when started by ``mpiexec -n K`` (the ranks share
    every batch; only rank 0 writes the checkpoint and shows progress), and its
    failures told the command line's way: a diverged run (exit status 1) or a
    checkpoint that does not fit the network (2)."""
    from chainrule import distributed
    from chainrule.train import CheckpointError, TrainingDiverged, fit

    try:
        run = distributed.prepare(model, loss_fn, optimizer, train_loader,
                                  clip_grad_norm=config.clip)
    except ValueError as error:  # a batch smaller than the number of processes
        raise click.BadParameter(str(error), param_hint="--batch-size") from None
    if not run.world.is_main:
        kwargs.update(checkpoint_dir=None, progress=False)
    try:
        return fit(model, run.loss_fn, run.optimizer, run.train_loader, epochs,
                   callbacks=[*run.callbacks, *callbacks], clip_grad_norm=run.clip_grad_norm,
                   **kwargs)
    except TrainingDiverged as error:
        raise click.ClickException(str(error)) from None
    except CheckpointError as error:
        raise checkpoint_misfit(error, Path(out), config) from None


def _batch_size(config: RunConfig, samples: int) -> int:
    """The batch size, at most the training set; a larger one is said, not hidden."""
    if config.batch_size <= samples:
        return config.batch_size
    click.echo(f"note: --batch-size {config.batch_size} is more than the {samples} "
               f"training samples: every step uses all {samples}", err=True)
    return samples


def _absolute(path: str | None) -> str | None:
    return None if path is None else str(Path(path).expanduser().resolve())


#: Every file ``chainrule train --out`` and ``chainrule eval`` write into a run folder.
RUN_FILES = ("config.json", "checkpoint.npz", "history.csv", "history.json", "model.npz",
             "result.json", "learning_curve.png", "vocabulary.json", "confusion_matrix.png",
             "misclassified.png")
#: Options that --resume accepts although config.json has them: where the data is now,
#: how many epochs in all, and what is shown.
RESUME_MAY_CHANGE = ("epochs", "data_dir", "data_file", "progress", "out", "resume",
                     "overwrite")


def _claim_run_folder(out: Path, overwrite: bool) -> None:
    """Refuse to mix a new run into a folder that holds one, unless ``--overwrite``
    (which deletes the old run's files, and only those)."""
    held = [name for name in ("config.json", "checkpoint.npz", "model.npz")
            if (out / name).exists()]
    if not held:
        return
    if not overwrite:
        raise click.BadParameter(
            f"{out} already holds a run ({', '.join(held)}); continue it with --resume, "
            "start it afresh with --overwrite, or choose another folder", param_hint="--out")
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)


def _resumable_run(out: str | None, given: RunConfig, epochs: int | None
                   ) -> tuple[RunConfig, Path]:
    """The saved settings and checkpoint of the run in ``out``, both checked (read as
    ``eval`` reads a run folder). Settings given on the command line must agree with
    the saved ones, except ``RESUME_MAY_CHANGE``: ``--epochs`` extends the run,
    ``--data-dir``/``--data-file`` say where the data is now."""
    from chainrule.train import CHECKPOINT_NAME

    if out is None:
        raise click.UsageError("--resume needs --out: the folder of the run to continue")
    checkpoint = Path(out) / CHECKPOINT_NAME
    config_file = Path(out) / "config.json"
    if not checkpoint.exists() or not config_file.exists():
        raise click.UsageError(f"--resume: {out} has no {CHECKPOINT_NAME} and config.json "
                               "to continue from (train with --out first)")
    config = read_config(Path(out), param_hint="--out")
    done = read_checkpoint_epoch(Path(out))
    ctx = click.get_current_context()
    conflicts = []
    for param in ctx.command.params:
        name = param.name
        if name in RESUME_MAY_CHANGE or name not in config.__dataclass_fields__ or \
                ctx.get_parameter_source(name) is not click.core.ParameterSource.COMMANDLINE:
            continue
        wanted, saved = getattr(given, name), getattr(config, name)
        if wanted != saved:
            flag = max(param.opts, key=len)
            conflicts.append(f"{flag} {_shown(wanted)} (saved: {_shown(saved)})")
    if conflicts:
        raise click.UsageError(
            f"--resume continues the run in {out} with the settings of its config.json; "
            f"these differ from them: {'; '.join(conflicts)}. Leave them out, or start a "
            "new run (another --out, or --overwrite)")
    for name in ("data_dir", "data_file"):
        if getattr(given, name) is not None:
            setattr(config, name, getattr(given, name))
    if epochs is not None:
        if epochs < done:
            raise click.BadParameter(
                f"the run in {out} has already trained {done} epochs; --epochs {epochs} "
                f"would be fewer. Give more than {done} to continue it (nothing was "
                "changed)", param_hint="--epochs")
        config.epochs = epochs
    return config, checkpoint


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


def _is_main() -> bool:
    """Whether this process writes files: always, but for ranks 1... under mpiexec."""
    from chainrule import distributed

    return distributed.init().is_main


def _write_run(folder: Path, net: object, history: object, result: dict) -> None:
    from chainrule.serialization import save

    if not _is_main():
        return

    history.to_csv(folder / "history.csv")
    history.to_json(folder / "history.json")
    save(net.state_dict(), folder / "model.npz")
    (folder / "result.json").write_text(json.dumps(result, indent=1) + "\n")
    history.plot(folder / "learning_curve.png")
    written = sorted(p.name for p in folder.iterdir() if p.is_file()
                     and not p.name.startswith("."))
    click.echo(f"wrote {folder}/: {', '.join(written)}")
