"""Draw the pictures the README and the docs show, into docs/images/.

    python docs/make_pictures.py [--data-dir ~/data/mnist] [--quick]

On MNIST when its files are found (--data-dir, $CHAINRULE_DATA or the cache; nothing
is downloaded), otherwise on the built-in 8x8 digits. A few minutes on MNIST;
--quick trains less (for trying the script, not for the README).

Pictures: learning_curve.png, confusion_matrix.png, misclassified.png,
first_layer_weights.png (the two-layer net), conv_filters.png (SimpleConvNet's first
layer before and after training), and the chapter-6 experiments: optimizers_loss.png,
init_activations.png, init_loss.png, batchnorm_accuracy.png, overfit_accuracy.png,
hyperparams_search.png.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"
sys.path.insert(0, str(ROOT))

from chainrule import nn, optim, plot  # noqa: E402
from chainrule.data import DataLoader, TensorDataset  # noqa: E402
from chainrule.experiments import load_experiment_data, run_experiment  # noqa: E402
from chainrule.train import confusion_matrix, fit, predict  # noqa: E402


def two_layer_pictures(data, epochs: int) -> None:
    """Train the textbook's two-layer net; draw its curves, mistakes and weights."""
    n_in = data.x_train.shape[1]
    net = nn.TwoLayerNet(n_in, 50, 10, seed=0)
    train = DataLoader(TensorDataset(data.x_train, data.y_train), batch_size=100,
                       shuffle=True, seed=0)
    test = DataLoader(TensorDataset(data.x_test, data.y_test), batch_size=1000)
    history = fit(net, nn.CrossEntropyLoss(), optim.SGD(net.parameters(), lr=0.1), train,
                  epochs, val_loader=test, progress=False)
    history.plot(IMAGES / "learning_curve.png")
    predicted = predict(net, data.x_test).argmax(axis=-1)
    plot.confusion_matrix(confusion_matrix(predicted, data.y_test, 10),
                          IMAGES / "confusion_matrix.png", data.class_names)
    plot.misclassified(data.x_test, data.y_test, predicted, IMAGES / "misclassified.png",
                       image_shape=data.image_shape, class_names=data.class_names)
    plot.first_layer_weights(net.fc1.weight, IMAGES / "first_layer_weights.png",
                             image_shape=data.image_shape[1:], max_units=50)
    print(f"two-layer net: test accuracy {history.epochs[-1]['val_accuracy']:.4f}")


def conv_filter_pictures(data, epochs: int, samples: int) -> None:
    """SimpleConvNet's 30 first-layer filters before and after training (issue 6),
    starting from the textbook's small random weights (std 0.01): noise before, edge and
    blob detectors after."""
    net = nn.SimpleConvNet(input_dim=data.image_shape, output_size=10, seed=0,
                           weight_init_std=0.01)
    before = net.conv1.weight.data.copy()
    train = DataLoader(TensorDataset(data.x_train[:samples], data.y_train[:samples]),
                       batch_size=100, shuffle=True, seed=0)
    test = DataLoader(TensorDataset(data.x_test, data.y_test), batch_size=1000)
    history = fit(net, nn.CrossEntropyLoss(), optim.Adam(net.parameters(), lr=0.001), train,
                  epochs, val_loader=test, progress=False)
    plot.filters({"before training": before, "after training": net.conv1.weight},
                 IMAGES / "conv_filters.png",
                 title="SimpleConvNet: the 30 first-layer filters")
    print(f"SimpleConvNet: test accuracy {history.epochs[-1]['val_accuracy']:.4f}")


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
    parser.add_argument("--quick", action="store_true", help="train much less")
    args = parser.parse_args()
    IMAGES.mkdir(parents=True, exist_ok=True)
    data, sentence = load_experiment_data(None, args.data_dir)
    print(f"data: {sentence}")
    dataset = "mnist" if sentence.startswith("MNIST") else "digits"
    two_layer_pictures(data, epochs=1 if args.quick else 10)
    conv_filter_pictures(data, epochs=1 if args.quick else 3,
                         samples=1000 if args.quick else 60_000)
    experiment_pictures(dataset, args.data_dir, args.quick)
    print(f"wrote {IMAGES.relative_to(ROOT)}/")


if __name__ == "__main__":
    main()
