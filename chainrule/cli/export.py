"""``chainrule export``: write a trained classifier of a run folder as an ONNX file and
check the file in onnxruntime against chainrule on test data."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from chainrule._extras import install_hint
from chainrule.cli._run_folder import load_weights, read_config
from chainrule.cli._types import data_error, data_folder
from chainrule.runs import build_model, load_data

CHECK_SAMPLES = 256  # test samples run through both chainrule and onnxruntime


@click.command("export", short_help="Write a trained classifier as an ONNX file.")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              required=True, help="The ONNX file to write (model.onnx).")
@click.option("--data-dir", type=data_folder(), default=None,
              help="Folder with the dataset's files, if not where the run found them.")
@click.option("--softmax", is_flag=True,
              help="End the graph with a softmax: the file outputs probabilities, not logits.")
@click.option("--opset", type=click.IntRange(min=13), default=13, show_default=True,
              help="The ONNX operator set (13 or later).")
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists.")
def command(run_dir: Path, output: Path, data_dir: str | None, softmax: bool, opset: int,
            force: bool) -> None:
    """Export the network of a run folder (`chainrule train --out RUN_DIR`) as ONNX.

    Rebuilds the network from RUN_DIR/config.json and RUN_DIR/model.npz, writes it to
    OUTPUT in evaluation mode (dropout off, batch norm with its running statistics; the
    input is named `input`, with any batch size), and, when onnxruntime is installed,
    runs the file on test samples and prints the largest difference from chainrule's
    outputs. Needs the [onnx] extra: pip install -e ".[onnx]".

    \b
    Examples:
      chainrule export runs/digits -o digits.onnx
      chainrule export runs/mnist-cnn -o mnist.onnx --softmax --data-dir ~/data/mnist
    """
    from chainrule.onnx import UnsupportedOperationError, export
    from chainrule.train import predict

    config = read_config(run_dir)
    if config.is_language_model or config.is_seq2seq:
        raise click.BadParameter(
            f"ONNX export supports the classifiers (two-layer, mlp, cnn, deep-cnn); "
            f"{run_dir} holds a {config.model} {config.dataset} run", param_hint="RUN_DIR")
    if output.exists() and not force:
        raise click.BadParameter(f"{output} exists; give --force to replace it, or another "
                                 "name", param_hint="-o/--output")
    if data_dir is not None:
        config.data_dir = data_dir
    try:
        data = load_data(config, with_train=False)  # the input's shape and the check
        net = build_model(config, data)
    except (FileNotFoundError, ValueError) as error:
        raise data_error(error) from None
    load_weights(net, run_dir, config)
    try:
        path = export(net, data.x_test[:1], output, softmax=softmax, opset=opset)
    except ImportError as error:
        raise click.ClickException(str(error)) from None
    except (UnsupportedOperationError, ValueError) as error:
        raise click.BadParameter(str(error), param_hint="--opset" if "opset" in str(error)
                                 else "RUN_DIR") from None
    click.echo(f"wrote {path}: the {config.model} network of {run_dir} "
               f"({net.num_parameters():,} parameters), opset {opset}, input 'input' of "
               f"shape (N, {', '.join(map(str, data.x_test.shape[1:]))}), output 'output' "
               f"({'probabilities' if softmax else 'logits'})")
    _check(path, net, data.x_test[:CHECK_SAMPLES], softmax, predict)


def _check(path: Path, net, x: np.ndarray, softmax: bool, predict) -> None:
    """Run the file in onnxruntime and compare with chainrule on the same samples."""
    try:
        import onnxruntime
    except ImportError:
        click.echo(f"not checked: onnxruntime is missing ({install_hint('onnx')})")
        return
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = x.astype(np.float32)
    got = session.run(None, {"input": x})[0]
    expected = predict(net, x)
    if softmax:
        shifted = np.exp(expected - expected.max(axis=-1, keepdims=True))
        expected = shifted / shifted.sum(axis=-1, keepdims=True)
    difference = float(np.abs(got - expected).max())
    agree = float(np.mean(got.argmax(-1) == expected.argmax(-1)))
    click.echo(f"checked in onnxruntime {onnxruntime.__version__} on {len(x)} test samples: "
               f"largest difference from chainrule {difference:.2g}, same class for "
               f"{agree:.0%}")
    if difference > 1e-4:
        raise click.ClickException(f"the ONNX file's outputs differ from chainrule's by up "
                                   f"to {difference:.2g}")
