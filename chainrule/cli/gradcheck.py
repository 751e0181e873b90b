"""``chainrule gradcheck``: a whole network's backpropagation checked against numerical
gradients, and the two timed (``chainrule.gradcheck.gradcheck_model``)."""

from __future__ import annotations

import json

import click
import numpy as np

from chainrule._progress import showing_progress
from chainrule.cli._types import data_error, data_folder
from chainrule.cli.train import _hidden_sizes  # the same --hidden syntax as `train`
from chainrule.runs import RunConfig, build_model, load_data

# Models with more elements than this are sampled unless --sample or --full says
# otherwise: differencing half a million weights one by one takes many minutes.
AUTO_SAMPLE_ABOVE = 50_000
AUTO_SAMPLE = 200


@click.command("gradcheck", short_help="Backprop vs numerical gradients of a network, "
                                       "and the speed-up.")
@click.option("--model", type=click.Choice(["two-layer", "mlp", "cnn"]), default="two-layer",
              show_default=True, help="two-layer: the textbook's Affine-ReLU-Affine; mlp: "
              "--hidden layers; cnn: the textbook's SimpleConvNet.")
@click.option("--dataset", type=click.Choice(["digits", "mnist"]), default="digits",
              show_default=True, help="Where the batch of inputs comes from (and so the "
                                      "input size).")
@click.option("--data-dir", type=data_folder(), default=None,
              help="Folder with the four MNIST IDX files (.gz or not).")
@click.option("--hidden", multiple=True, callback=_hidden_sizes, metavar="SIZES",
              help="Hidden layer sizes, repeatable or comma-separated (two-layer: the "
                   "first only)  [default: 50]")
@click.option("--batch", type=click.IntRange(min=1), default=10, show_default=True,
              help="Training samples in the batch the loss is computed on.")
@click.option("--sample", type=click.IntRange(min=1), default=None,
              help="Difference only N random elements of each parameter numerically and "
                   f"extrapolate the time  [default: all; {AUTO_SAMPLE} when the model has "
                   f"more than {AUTO_SAMPLE_ABOVE:,} parameters]")
@click.option("--full", is_flag=True, help="Difference every element, however many.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seeds the weights and the sampled elements.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--progress/--no-progress", default=None,
              help="Show progress bars on stderr  [default: on a terminal only]")
def command(model: str, dataset: str, data_dir: str | None, hidden: list[int] | None,
            batch: int,
            sample: int | None, full: bool, seed: int, as_json: bool,
            progress: bool | None) -> None:
    """Check backpropagation against numerical differentiation on a real network.

    In float64, every parameter's gradient is computed twice: by backpropagation (one
    backward pass) and by central differences (two forward passes per weight). The
    table shows how closely they agree and how much faster backpropagation is.
    Biases start at small random values rather than 0, so that no ReLU sits exactly on
    its kink. Exits with status 1 when the gradients disagree.

    \b
    Examples:
      chainrule gradcheck
      chainrule gradcheck --model mlp --hidden 100,50 --batch 3
      chainrule gradcheck --model cnn --sample 100
      chainrule gradcheck --dataset mnist --data-dir ~/data/mnist --sample 500
    """
    from chainrule.gradcheck import gradcheck_model
    from chainrule.nn import CrossEntropyLoss

    click.get_current_context().with_resource(showing_progress(progress))  # every bar inside
    if full and sample is not None:
        raise click.UsageError("give either --sample N or --full, not both")
    config = RunConfig(dataset=dataset, model=model, hidden=hidden or [50], seed=seed,
                       data_dir=data_dir)
    try:
        data = load_data(config)
        net = build_model(config, data)
    except (FileNotFoundError, ValueError) as error:
        raise data_error(error) from None
    if batch > len(data.x_train):
        raise click.BadParameter(f"the training set has only {len(data.x_train)} samples",
                                 param_hint="--batch")
    _biases_off_the_kink(net, seed)
    if sample is None and not full and net.num_parameters() > AUTO_SAMPLE_ABOVE:
        sample = AUTO_SAMPLE
        if not as_json:
            click.echo(f"{net.num_parameters():,} parameters: differencing {sample} random "
                       "elements of each (--full for all, --sample N for another number)")
    report = gradcheck_model(net, CrossEntropyLoss(), data.x_train[:batch],
                             data.y_train[:batch], sample=sample, seed=seed)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=1))
    else:
        click.echo(f"{dataset}: {net.num_parameters():,}-parameter {model} network")
        click.echo(str(report))
    if not report.ok:
        raise SystemExit(1)


def _biases_off_the_kink(net: object, seed: int) -> None:
    """Give the biases small random values instead of their initial zeros.

    With zero biases, a blank image patch (all pixels 0) gives a pre-activation of
    exactly 0: the kink of ReLU, where nudging a bias by ±eps crosses from one slope to
    the other and the numerical derivative averages the two. Backprop is right there,
    but the comparison is not; small random biases move every unit off the kink.
    """
    rng = np.random.default_rng(seed)
    for name, param in net.named_parameters():
        if name.endswith("bias"):
            param.data[...] = rng.normal(0.0, 0.01, size=param.shape)
