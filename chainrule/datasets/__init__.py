"""Ready-made datasets, returned as NumPy arrays ``(inputs, targets)``.

* ``mnist`` and ``fashion_mnist``: 70,000 28x28 images each, downloaded once, checked
  and cached (see ``chainrule.datasets.mnist_format`` for where files are looked for).
* ``digits``: scikit-learn's 1,797 8x8 digits, no download needed.
* ``logic_gate``, ``spiral``, ``sine``: tiny generated problems.

Wrap the arrays in ``chainrule.data.TensorDataset`` and a ``DataLoader`` to train.
"""

from .digits import DIGITS_CLASSES, digits
from .errors import CorruptFileError, DatasetNotFoundError, DownloadError
from .mnist_format import FASHION_MNIST_CLASSES, MNIST_CLASSES, fashion_mnist, mnist
from .synthetic import LOGIC_GATES, logic_gate, sine, spiral

__all__ = [
    "mnist",
    "fashion_mnist",
    "digits",
    "logic_gate",
    "spiral",
    "sine",
    "MNIST_CLASSES",
    "FASHION_MNIST_CLASSES",
    "DIGITS_CLASSES",
    "LOGIC_GATES",
    "DatasetNotFoundError",
    "CorruptFileError",
    "DownloadError",
]
