"""Draw the pictures the README and the docs show, into docs/images/.

    python docs/make_pictures.py [--data-dir ~/data/mnist] [--threads 1] [--quick]

The README's MNIST pictures come from the very commands the README shows, run here as
they are printed (with ``--threads``, one BLAS thread by default: the run then repeats
bit for bit):

    chainrule --threads 1 train --dataset mnist --data-dir D --epochs 17 --out RUNS/mnist
    chainrule --threads 1 eval RUNS/mnist
    chainrule --threads 1 train --dataset mnist --data-dir D --model cnn --optimizer adam \
        --lr 0.001 --lr-schedule cosine --epochs 8 --out RUNS/cnn

(``README_COMMANDS`` below; a test holds them equal to the README's.)
learning_curve.png (written by train), confusion_matrix.png and misclassified.png
(written by eval) and first_layer_weights.png (the weights in RUNS/mnist/model.npz)
all come from the first run; conv_filters.png is SimpleConvNet's first layer as the
second run started (rebuilt from its config.json: the same seed, the same weights),
as it ended, and the difference. Then the chapter-6 experiments: optimizers_loss.png,
init_activations.png, init_loss.png, batchnorm_accuracy.png, overfit_accuracy.png,
hyperparams_search.png.

MNIST is read from --data-dir, $CHAINRULE_DATA or the cache (nothing is downloaded);
without it the built-in 8x8 digits stand in (not the README's pictures). A few minutes
on MNIST; --quick trains much less (for trying the script, not for the README).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"
sys.path.insert(0, str(ROOT))

from chainrule import num_threads, plot  # noqa: E402
from chainrule.experiments import load_experiment_data, run_experiment  # noqa: E402
from chainrule.runs import RunConfig, build_model, load_data  # noqa: E402
from chainrule.serialization import load  # noqa: E402

#: The README's MNIST commands ("## MNIST"), as its reader types them: ~/data/mnist is
#: replaced by the data folder found, runs/ by this script's run folder.
README_COMMANDS = {
    "two-layer": "train --dataset mnist --data-dir ~/data/mnist --epochs 17 --out runs/mnist",
    "eval": "eval runs/mnist",
    "cnn": "train --dataset mnist --data-dir ~/data/mnist --model cnn --optimizer adam "
           "--lr 0.001 --lr-schedule cosine --epochs 8 --out runs/cnn",
}
#: What --quick trains instead (for trying the script, not for the README).
_QUICK = {"--epochs 17": "--epochs 1", "--epochs 8": "--epochs 1 --subset 1000"}


def command(name: str, data_dir: str | None, runs: Path, quick: bool = False) -> list[str]:
    """The README's command ``name`` for this machine: MNIST from ``data_dir`` (None: from
    $CHAINRULE_DATA or the cache; ``"digits"``: the built-in digits instead) and the run
    folder under ``runs``."""
    text = README_COMMANDS[name]
    for old, new in _QUICK.items() if quick else ():
        text = text.replace(old, new)
    args = []
    for arg in text.split():
        if arg == "~/data/mnist":
            if data_dir is None or data_dir == "digits":
                args.pop()  # its --data-dir
            else:
                args.append(data_dir)
        elif arg == "mnist" and data_dir == "digits":
            args.append("digits")
        else:
            args.append(str(runs / arg.removeprefix("runs/")) if arg.startswith("runs/")
                        else arg)
    return args


def chainrule(threads: int, args: list[str]) -> None:
    """Run ``chainrule --threads THREADS ARGS`` from this checkout, printing the command
    first."""
    print("$ chainrule --threads", threads, " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "chainrule", "--threads", str(threads), *args],
                   cwd=ROOT, check=True)


def two_layer_pictures(data_dir: str | None, runs: Path, threads: int, quick: bool) -> None:
    """The README's two-layer run and its eval: learning curve, confusion matrix,
    misclassified digits and first-layer weights, all of one run."""
    chainrule(threads, command("two-layer", data_dir, runs, quick))
    chainrule(threads, command("eval", data_dir, runs, quick))
    run = runs / "mnist"
    for picture in ("learning_curve.png", "confusion_matrix.png", "misclassified.png"):
        shutil.copy(run / picture, IMAGES / picture)
    side = 8 if data_dir == "digits" else 28
    plot.first_layer_weights(load(run / "model.npz")["fc1.weight"],
                             IMAGES / "first_layer_weights.png", image_shape=(side, side),
                             max_units=50)


def conv_filter_pictures(data_dir: str | None, runs: Path, threads: int,
                         quick: bool) -> None:
    """The README's SimpleConvNet run, and its first-layer filters (``draw_filters``)."""
    chainrule(threads, command("cnn", data_dir, runs, quick))
    draw_filters(runs / "cnn")


def draw_filters(run: Path) -> None:
    """The 30 first-layer filters of the SimpleConvNet in ``run`` as training began
    (rebuilt from config.json: the same seed, the same weights), as it ended, and what
    training added: He's random start barely shows its change by eye, the difference
    shows smooth edge and stroke detectors."""
    config = RunConfig.from_dict(json.loads((run / "config.json").read_text()))
    net = build_model(config, load_data(config, with_train=False))  # as training began
    before = net.conv1.weight.data.copy()
    net.load_state_dict(load(run / "model.npz"))
    after = net.conv1.weight.data
    plot.filters({"before training": before, "after training": after,
                  "what training added (after - before)": after - before},
                 IMAGES / "conv_filters.png",
                 title="SimpleConvNet: the 30 first-layer filters")


def experiment_pictures(dataset: str, data_dir: str | None, quick: bool) -> None:
    wanted = {"optimizers": ["optimizers_loss.png"],
              "init": ["init_activations.png", "init_loss.png"],
              "batchnorm": ["batchnorm_accuracy.png"], "overfit": ["overfit_accuracy.png"],
              "hyperparams": ["hyperparams_search.png"]}
    with tempfile.TemporaryDirectory() as folder:
        for name, pictures in wanted.items():
            options = {"iterations": 100} if quick else {}
            if name == "hyperparams" and not quick:
                options["trials"] = 40
            run_experiment(name, folder, dataset=dataset, data_dir=data_dir, **options)
            for picture in pictures:
                shutil.copy(Path(folder) / picture, IMAGES / picture)
            print(f"experiment {name}: done")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="folder with the four MNIST files")
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS threads (default 1, as the command line's default)")
    parser.add_argument("--runs", help="keep the run folders here (default: a temporary "
                                       "folder)")
    parser.add_argument("--quick", action="store_true", help="train much less")
    args = parser.parse_args()
    IMAGES.mkdir(parents=True, exist_ok=True)
    _, sentence = load_experiment_data(None, args.data_dir)
    print(f"data: {sentence}")
    dataset = "mnist" if sentence.startswith("MNIST") else "digits"
    data_dir = args.data_dir if dataset == "mnist" else "digits"
    with tempfile.TemporaryDirectory() as temporary:
        runs = Path(args.runs) if args.runs else Path(temporary)
        two_layer_pictures(data_dir, runs, args.threads, args.quick)
        conv_filter_pictures(data_dir, runs, args.threads, args.quick)
    with num_threads(args.threads):
        experiment_pictures(dataset, args.data_dir, args.quick)
    print(f"wrote {IMAGES.relative_to(ROOT)}/")


if __name__ == "__main__":
    main()
