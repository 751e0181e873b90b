"""``chainrule eval``: rebuild a trained network from its run folder and report how it
does on the test data: accuracy, confusion matrix, pictures of its mistakes."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from chainrule._progress import showing_progress
from chainrule.cli._run_folder import load_weights, read_config, read_vocabulary
from chainrule.cli._types import data_error, data_folder
from chainrule.runs import (
    EVAL_BATCH_SIZE,
    RunConfig,
    answer_questions,
    build_language_model,
    build_model,
    build_seq2seq,
    load_corpus,
    load_data,
    load_sequence_data,
)


def format_confusion_matrix(matrix: np.ndarray, class_names: list[str]) -> str:
    """Rows: true class (with its name), columns: predicted class (by index)."""
    n = len(matrix)
    labels = [f"{i} {name}" if name != str(i) else str(i)
              for i, name in enumerate(class_names[:n])]
    label_width = max(len("true \\ predicted"), *map(len, labels))
    width = max(4, len(str(int(matrix.max(initial=0)))) + 1)
    lines = ["true \\ predicted".ljust(label_width) + "".join(str(j).rjust(width)
                                                          for j in range(n))]
    for label, row in zip(labels, matrix):
        lines.append(label.ljust(label_width) + "".join(str(int(v)).rjust(width)
                                                      for v in row))
    return "\n".join(lines)


@click.command("eval", short_help="Test accuracy (or perplexity) of a trained run.")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--data-dir", type=data_folder(), default=None,
              help="Folder with the dataset's files, if not where the run found them.")
@click.option("--data-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="The question-answer file of an addition or dates run, if not where "
                   "the run found it.")
@click.option("--max-images", type=click.IntRange(min=1), default=36, show_default=True,
              help="Misclassified test images drawn in misclassified.png.")
@click.option("--progress/--no-progress", default=None,
              help="Show progress bars on stderr  [default: on a terminal only]")
def command(run_dir: Path, data_dir: str | None, data_file: str | None,
            max_images: int, progress: bool | None) -> None:
    """Evaluate a run folder written by `chainrule train --out RUN_DIR`.

    Rebuilds the network from RUN_DIR/config.json and RUN_DIR/model.npz, prints its
    test accuracy and confusion matrix, and writes confusion_matrix.png and
    misclassified.png into RUN_DIR. For a language model, prints its perplexity on the
    test text; for a sequence-to-sequence model, the share of test questions it
    answers exactly right, with a few of its answers.

    \b
    Examples:
      chainrule train --out runs/digits && chainrule eval runs/digits
      chainrule eval runs/mnist --data-dir ~/data/mnist
      chainrule eval runs/ptb
      chainrule eval runs/dates --data-file ~/data/date.txt
    """
    from chainrule import plot
    from chainrule.train import confusion_matrix, predict

    click.get_current_context().with_resource(showing_progress(progress))  # every bar inside
    config = read_config(run_dir)
    if config.is_seq2seq and data_dir is not None:
        raise click.UsageError(f"a {config.dataset} run reads one file: give it with "
                               "--data-file, not --data-dir")
    if data_dir is not None:
        config.data_dir = data_dir
    if config.is_language_model:
        _evaluate_language_model(run_dir, config)
        return
    if config.is_seq2seq:
        if data_file is not None:
            config.data_file = data_file
        _evaluate_seq2seq(run_dir, config)
        return
    try:
        data = load_data(config, with_train=False)  # only the test split is used
        net = build_model(config, data)
    except (FileNotFoundError, ValueError) as error:
        raise data_error(error) from None
    load_weights(net, run_dir, config)

    predicted = predict(net, data.x_test, progress=None).argmax(axis=-1)
    n_classes = len(data.class_names)
    matrix = confusion_matrix(predicted, data.y_test, n_classes)
    correct = int(np.trace(matrix))
    click.echo(f"{config.model} network on {config.dataset} ({net.num_parameters():,} "
               f"parameters) from {run_dir}")
    click.echo(f"test accuracy: {correct / len(data.y_test):.4f} "
               f"({correct}/{len(data.y_test)})\n")
    click.echo(format_confusion_matrix(matrix, data.class_names))
    names = data.class_names
    written = [plot.confusion_matrix(matrix, run_dir / "confusion_matrix.png", names)]
    if data.image_shape is not None:
        written.append(plot.misclassified(data.x_test, data.y_test, predicted,
                                          run_dir / "misclassified.png",
                                          image_shape=data.image_shape, class_names=names,
                                          max_images=max_images))
    click.echo(f"\nwrote {run_dir}/: {', '.join(p.name for p in written)}")


def _evaluate_language_model(run_dir: Path, config: RunConfig) -> None:
    from chainrule.data import BPTTLoader
    from chainrule.nn import CrossEntropyLoss
    from chainrule.train import evaluate

    vocabulary = read_vocabulary(run_dir)
    try:
        corpus = load_corpus(config)
    except (FileNotFoundError, ValueError) as error:
        raise data_error(error) from None
    if corpus.vocabulary != vocabulary:
        raise click.ClickException(f"the vocabulary of {config.dataset} read now differs "
                                   f"from the one in {run_dir}/vocabulary.json")
    net = build_language_model(config, len(vocabulary))
    load_weights(net, run_dir, config)
    result = evaluate(net, BPTTLoader(corpus.test, EVAL_BATCH_SIZE, config.bptt),
                      CrossEntropyLoss(), metrics=("perplexity",))
    click.echo(f"{config.model} on {config.dataset} ({net.num_parameters():,} parameters) "
               f"from {run_dir}")
    click.echo(f"test perplexity: {result['perplexity']:.2f} ({result['samples']:,} tokens)")


def _evaluate_seq2seq(run_dir: Path, config: RunConfig) -> None:
    from chainrule.cli.train import show_answers

    vocabulary = read_vocabulary(run_dir)
    try:
        data = load_sequence_data(config)
    except (FileNotFoundError, ValueError) as error:
        raise data_error(error) from None
    if data.vocabulary != vocabulary:
        source = config.data_file or f"the generated {config.dataset}"
        raise click.ClickException(f"the characters of {source} differ from the ones in "
                                   f"{run_dir}/vocabulary.json: not the data of this run")
    net = build_seq2seq(config, len(vocabulary))
    load_weights(net, run_dir, config)
    guesses = answer_questions(net, data.x_test, data.start_id, data.t_test.shape[1] - 1,
                               progress=None)
    correct = int((guesses == data.t_test[:, 1:]).all(axis=1).sum())
    click.echo(f"{config.model}{' (peeky)' if config.peeky else ''} on {config.dataset} "
               f"({net.num_parameters():,} parameters) from {run_dir}")
    click.echo(f"test exact-match accuracy: {correct / len(guesses):.4f} "
               f"({correct}/{len(guesses)})")
    show_answers(data, data.x_test, data.t_test, guesses, config.reverse, 10)
