"""Training runs described as data: a ``RunConfig`` (saved as config.json) turned into
data, a model, an optimiser and a schedule. ``chainrule train`` builds runs with it,
``chainrule eval`` rebuilds them from a run folder, the experiments reuse it."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from chainrule._progress import progress_bar

#: Datasets of labelled samples (classification), of running text (language models) and
#: of questions with answers (sequence to sequence).
CLASSIFICATION_DATASETS = ("digits", "mnist", "fashion-mnist", "spiral", "xor")
TEXT_DATASETS = ("ptb", "text")
SEQ2SEQ_DATASETS = ("addition", "dates")
DATASETS = CLASSIFICATION_DATASETS + TEXT_DATASETS + SEQ2SEQ_DATASETS
CLASSIFIERS = ("two-layer", "mlp", "cnn", "deep-cnn")
LANGUAGE_MODELS = ("lstm-lm", "transformer-lm")
SEQ2SEQ_MODELS = ("seq2seq", "attention")
MODELS = CLASSIFIERS + LANGUAGE_MODELS + SEQ2SEQ_MODELS
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw")
LR_SCHEDULES = ("constant", "cosine", "step")
ACTIVATIONS = ("relu", "leaky_relu", "sigmoid", "tanh")

# Settings a newcomer gets without asking: enough epochs to learn each dataset well.
DEFAULT_EPOCHS = {"digits": 100, "mnist": 17, "fashion-mnist": 17, "spiral": 300,
                  "xor": 2000, "ptb": 4, "text": 10, "addition": 25, "dates": 10}
#: What a dataset changes in the defaults: for Penn Treebank, the book's ``Rnnlm``
#: (embedding 100, one 100-unit LSTM, batch 20, 35 steps of BPTT, SGD lr 20, gradients
#: clipped to norm 0.25), which reaches a test perplexity of about 136 in 4 epochs. For
#: the sums and the dates, the book's chapter 7 and 8 scripts: word vectors of 16,
#: Adam lr 0.001, batch 128, gradients clipped to norm 5; sums with a 128-unit
#: ``Seq2Seq``, dates with a 256-unit ``AttentionSeq2Seq`` reading the question reversed.
DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    "ptb": {"model": "lstm-lm", "hidden": [100], "lr": 20.0, "batch_size": 20,
            "clip": 0.25},
    "text": {"model": "lstm-lm", "hidden": [100], "lr": 20.0, "batch_size": 20,
             "clip": 0.25},
    "addition": {"model": "seq2seq", "hidden": [128], "optimizer": "adam", "lr": 0.001,
                 "batch_size": 128, "clip": 5.0},
    "dates": {"model": "attention", "hidden": [256], "optimizer": "adam", "lr": 0.001,
              "batch_size": 128, "clip": 5.0, "reverse": True},
}
#: What a model changes in the defaults (over its dataset's): a small GPT wants AdamW,
#: a context of 64 tokens and dropout 0.1, not the LSTM's SGD at lr 20.
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "transformer-lm": {"hidden": [128], "layers": 4, "heads": 4, "bptt": 64,
                       "batch_size": 32, "optimizer": "adamw", "lr": 1e-3,
                       "weight_decay": 0.01, "clip": 1.0, "dropout": 0.1,
                       "tie_weights": True},
}
#: How many examples the generators make for addition and dates (as the book's files),
#: and their seed: without --data-file every run sees the same data.
GENERATED_EXAMPLES = 50_000
GENERATED_SEED = 0
#: Batch size of the validation and test streams of a language model (as the book's).
EVAL_BATCH_SIZE = 10


@dataclass
class RunConfig:
    """Everything that defines a training run."""

    dataset: str = "digits"
    model: str = "two-layer"
    hidden: list[int] = field(default_factory=lambda: [50])
    activation: str = "relu"
    optimizer: str = "sgd"
    lr: float = 0.1
    batch_size: int = 100
    epochs: int | None = None
    weight_decay: float = 0.0
    dropout: float = 0.0
    batch_norm: bool = False
    seed: int = 0
    data_dir: str | None = None
    subset: int | None = None
    lr_schedule: str = "constant"
    # language models
    layers: int = 1
    bptt: int = 35  # for a Transformer: its context
    clip: float | None = None
    tie_weights: bool = False
    heads: int = 4  # attention heads of a Transformer
    # sequence to sequence
    wordvec: int = 16
    reverse: bool = False
    peeky: bool = False
    data_file: str | None = None
    chars: bool = False  # a text file read character by character

    @classmethod
    def for_dataset(cls, dataset: str, **given: Any) -> RunConfig:
        """A config for ``dataset``: the settings given (None counts as not given), and
        for the rest the model's defaults (``MODEL_DEFAULTS``), the dataset's
        (``DATASET_DEFAULTS``), then the general ones."""
        given = {k: v for k, v in given.items() if v is not None}
        dataset_defaults = DATASET_DEFAULTS.get(dataset, {})
        model = given.get("model", dataset_defaults.get("model", cls.model))
        settings = {**dataset_defaults, **MODEL_DEFAULTS.get(model, {}), **given}
        return cls(dataset=dataset, **settings)

    @property
    def is_language_model(self) -> bool:
        return self.model in LANGUAGE_MODELS

    @property
    def is_seq2seq(self) -> bool:
        return self.model in SEQ2SEQ_MODELS

    def resolved_epochs(self) -> int:
        return self.epochs if self.epochs is not None else DEFAULT_EPOCHS[self.dataset]

    def check(self) -> None:
        """Raise ValueError for settings that are out of range or do not fit together
        (a config.json edited by hand gets the same checks as the command line)."""
        self._check_values()
        fits = LANGUAGE_MODELS if self.dataset in TEXT_DATASETS else SEQ2SEQ_MODELS \
            if self.dataset in SEQ2SEQ_DATASETS else CLASSIFIERS
        if self.model not in fits:
            raise ValueError(f"--model {self.model} does not fit --dataset {self.dataset}; "
                             f"for {self.dataset} use --model {' or '.join(fits)}")
        if self.model == "two-layer" and len(self.hidden) != 1:
            raise ValueError(f"--model two-layer has one hidden layer, so one --hidden "
                             f"size, got {self.hidden}; for more layers use --model mlp")
        if self.is_language_model and len(self.hidden) != 1:
            raise ValueError(f"--model {self.model} takes one --hidden size (the width of "
                             f"every layer; the depth is --layers), got {self.hidden}")
        if self.tie_weights and not self.is_language_model:
            raise ValueError("--tie-weights is for language models (--model lstm-lm or "
                             "transformer-lm)")
        seq2seq = ", ".join(SEQ2SEQ_DATASETS)
        if self.is_seq2seq:
            if len(self.hidden) != 1:
                raise ValueError(f"--model {self.model} takes one --hidden size (the width "
                                 f"of its encoder and decoder LSTMs), got {self.hidden}")
            if self.layers != 1 or self.dropout:
                raise ValueError(f"--model {self.model} has one LSTM layer on each side "
                                 "and no dropout (leave out --layers and --dropout)")
            if self.data_dir is not None:
                raise ValueError(f"--dataset {self.dataset} reads one file: give it with "
                                 "--data-file, not --data-dir")
        else:
            if self.reverse:
                raise ValueError(f"--reverse is for the question-answer datasets "
                                 f"({seq2seq}), not --dataset {self.dataset}")
            if self.data_file and self.dataset != "text":
                raise ValueError(f"--data-file is for --dataset text and the question-answer "
                                 f"datasets ({seq2seq}), not --dataset {self.dataset}")
        if self.dataset == "text" and not self.data_file:
            raise ValueError("--dataset text needs --data-file: the text file to learn")
        if self.chars and self.dataset != "text":
            raise ValueError(f"--chars is for --dataset text, not --dataset {self.dataset}")
        if self.peeky and self.model != "seq2seq":
            raise ValueError(f"--peeky is for --model seq2seq (the attention model reads "
                             f"all the encoder's states already), not --model {self.model}")

    def _check_values(self) -> None:
        """Each setting on its own: a known name, a number in its range."""
        for option, value, valid in (("--dataset", self.dataset, DATASETS),
                                     ("--model", self.model, MODELS),
                                     ("--optimizer", self.optimizer, OPTIMIZERS),
                                     ("--lr-schedule", self.lr_schedule, LR_SCHEDULES),
                                     ("--activation", self.activation, ACTIVATIONS)):
            if value not in valid:
                raise ValueError(f"{option} {value!r} is unknown; valid: {', '.join(valid)}")

        def number(option: str, value: Any, low: float, *, integer: bool = False,
                   low_open: bool = False, high: float | None = None) -> None:
            kinds = (int,) if integer else (int, float)
            ok = isinstance(value, kinds) and not isinstance(value, bool) \
                and math.isfinite(value) and (value > low if low_open else value >= low) \
                and (high is None or value < high)
            if not ok:
                bound = f"{'above' if low_open else 'at least'} {low:g}" + (
                    f" and below {high:g}" if high is not None else "")
                raise ValueError(f"{option} must be a finite {'whole ' if integer else ''}"
                                 f"number {bound}, got {value!r}")

        number("--lr", self.lr, 0, low_open=True)
        number("--weight-decay", self.weight_decay, 0)
        number("--dropout", self.dropout, 0, high=1)
        for option, value in (("--batch-size", self.batch_size), ("--layers", self.layers),
                              ("--heads", self.heads), ("--bptt", self.bptt),
                              ("--wordvec", self.wordvec)):
            number(option, value, 1, integer=True)
        for option, value in (("--epochs", self.epochs), ("--subset", self.subset)):
            if value is not None:
                number(option, value, 1, integer=True)
        if self.clip is not None:
            number("--clip", self.clip, 0, low_open=True)
        if not isinstance(self.hidden, list) or not self.hidden:
            raise ValueError(f"--hidden must be a list of layer sizes, got {self.hidden!r}")
        for size in self.hidden:
            number("--hidden", size, 1, integer=True)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class Data:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    image_shape: tuple[int, ...] | None  # (C, H, W) for image data
    class_names: list[str]


def load_data(config: RunConfig, with_train: bool = True) -> Data:
    """The train and test arrays of ``config.dataset`` (flat features, int labels).
    ``with_train=False`` (for an evaluation) leaves the training arrays empty where
    reading them costs (MNIST's 60,000 images)."""
    from chainrule import datasets

    name = config.dataset
    if name in ("mnist", "fashion-mnist"):
        loader = datasets.mnist if name == "mnist" else datasets.fashion_mnist
        x_test, y_test = loader("test", data_dir=config.data_dir)
        x_train, y_train = loader("train", data_dir=config.data_dir) if with_train \
            else (x_test[:0], y_test[:0])
        classes = datasets.MNIST_CLASSES if name == "mnist" else \
            datasets.FASHION_MNIST_CLASSES
        data = Data(x_train, y_train, x_test, y_test, (1, 28, 28), list(classes))
    elif name == "digits":
        x_train, y_train = datasets.digits("train", seed=config.seed)
        x_test, y_test = datasets.digits("test", seed=config.seed)
        data = Data(x_train, y_train, x_test, y_test, (1, 8, 8),
                    [str(c) for c in datasets.DIGITS_CLASSES])
    elif name == "spiral":
        from chainrule.data import train_test_split

        x, y = datasets.spiral(n_per_class=100, classes=3, seed=config.seed)
        x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2,
                                                            seed=config.seed, stratify=True)
        data = Data(x_train, y_train, x_test, y_test, None, ["0", "1", "2"])
    elif name == "xor":
        x, y = datasets.logic_gate("xor")
        labels = y.reshape(-1).astype(np.int64)
        data = Data(x, labels, x, labels, None, ["0", "1"])
    else:
        raise ValueError(f"unknown dataset {name!r}; valid: {', '.join(DATASETS)}")
    if config.subset is not None:
        data.x_train, data.y_train = data.x_train[:config.subset], data.y_train[:config.subset]
    return data


def load_sequence_data(config: RunConfig) -> Any:
    """The questions and answers of ``config.dataset`` as a ``SequencePairs``: read
    from ``config.data_file`` (the book's format), or generated (``GENERATED_EXAMPLES``
    of them, seed ``GENERATED_SEED``); split 90/10 as the book does. ``reverse`` turns
    every question back to front, ``subset`` keeps the first training examples."""
    from chainrule import datasets

    if config.dataset not in SEQ2SEQ_DATASETS:
        raise ValueError(f"unknown question-answer dataset {config.dataset!r}; valid: "
                         f"{', '.join(SEQ2SEQ_DATASETS)}")
    if config.data_file is not None:
        data = datasets.load_sequence_pairs(config.data_file)
    else:
        make = datasets.addition_lines if config.dataset == "addition" else \
            datasets.date_lines
        data = datasets.sequence_pairs(make(GENERATED_EXAMPLES, seed=GENERATED_SEED),
                                       source=f"generated {config.dataset}")
    if config.subset is not None:
        data.x_train, data.t_train = data.x_train[:config.subset], \
            data.t_train[:config.subset]
    if config.reverse:  # the book's x[:, ::-1]
        data.x_train = np.ascontiguousarray(data.x_train[:, ::-1])
        data.x_test = np.ascontiguousarray(data.x_test[:, ::-1])
    return data


def build_seq2seq(config: RunConfig, vocab_size: int) -> Any:
    """``Seq2Seq`` (``config.peeky``) or ``AttentionSeq2Seq`` with word vectors of
    ``config.wordvec`` and LSTMs of ``config.hidden[0]`` units."""
    from chainrule import nn

    if config.model == "attention":
        return nn.AttentionSeq2Seq(vocab_size, config.wordvec, config.hidden[0],
                                   seed=config.seed)
    return nn.Seq2Seq(vocab_size, config.wordvec, config.hidden[0], peeky=config.peeky,
                      seed=config.seed)


def answer_questions(model: Any, questions: np.ndarray, start_id: int, length: int,
                     batch_size: int = 1000, progress: bool | None = False) -> np.ndarray:
    """The model's greedy answers (N, length) to ``questions`` (N, Tq), a batch at a time;
    a bar on a terminal with ``progress=None`` (none by default: training calls it every
    epoch)."""
    starts = range(0, len(questions), batch_size)
    answers = []
    with progress_bar(len(starts), "answering", "batch", progress) as bar:
        for i in starts:
            answers.append(model.generate(questions[i:i + batch_size], start_id, length))
            bar.update(1)
    return np.concatenate(answers)


@dataclass
class Corpus:
    """A language-modelling dataset: three streams of token ids and their vocabulary."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    vocabulary: Any  # chainrule.datasets.text.Vocabulary


#: How a text file is shared out (``--dataset text``): its first 90 % trains, the next
#: 5 % validates, the last 5 % tests, each a stretch of running text.
TEXT_SPLIT = (0.9, 0.05)


def load_corpus(config: RunConfig) -> Corpus:
    """The token streams of ``config.dataset`` (``subset`` cuts the training stream):
    Penn Treebank's three files, or a text file of the user's (words with ``<eos>`` at
    each line's end, or characters with ``chars``) cut into three stretches
    (``TEXT_SPLIT``) over one vocabulary."""
    from chainrule import datasets

    if config.dataset == "text":
        eos = "\n" if config.chars else datasets.EOS
        ids, vocabulary = datasets.load_corpus(config.data_file, chars=config.chars, eos=eos)
        first, second = (int(len(ids) * f) for f in (TEXT_SPLIT[0], sum(TEXT_SPLIT)))
        if min(first, second - first, len(ids) - second) < 2:
            raise ValueError(f"{config.data_file} holds only {len(ids)} tokens: too few to "
                             "share out for training, validation and testing")
        train, valid, test = ids[:first], ids[first:second], ids[second:]
        if config.subset is not None:
            train = train[:config.subset]
        return Corpus(train, valid, test, vocabulary)
    if config.dataset != "ptb":
        raise ValueError(f"unknown text dataset {config.dataset!r}; valid: "
                         f"{', '.join(TEXT_DATASETS)}")
    train, vocabulary = datasets.ptb("train", data_dir=config.data_dir)
    valid, _ = datasets.ptb("valid", data_dir=config.data_dir)
    test, _ = datasets.ptb("test", data_dir=config.data_dir)
    if config.subset is not None:
        train = train[:config.subset]
    return Corpus(train, valid, test, vocabulary)


def build_language_model(config: RunConfig, vocab_size: int) -> Any:
    """The language model named by ``config.model``, ``config.hidden[0]`` wide (its
    embedding too) and ``config.layers`` deep: an LSTM, or a Transformer with
    ``config.heads`` heads reading ``config.bptt`` tokens."""
    from chainrule import nn

    width = config.hidden[0]
    if config.model == "transformer-lm":
        if width % config.heads:
            raise ValueError(f"--hidden {width} must be a multiple of --heads "
                             f"{config.heads} (each head gets width/heads dimensions)")
        return nn.TransformerLM(vocab_size, d_model=width, nhead=config.heads,
                                num_layers=config.layers, context=config.bptt,
                                dropout=config.dropout, tie_weights=config.tie_weights,
                                seed=config.seed)
    return nn.RNNLM(vocab_size, embedding_dim=width, hidden_size=width,
                    num_layers=config.layers, dropout=config.dropout,
                    tie_weights=config.tie_weights, seed=config.seed)


def build_model(config: RunConfig, data: Data) -> Any:
    """The network named by ``config.model`` sized for ``data``."""
    from chainrule import nn

    n_in = int(np.prod(data.x_test.shape[1:]))
    n_out = len(data.class_names)
    if config.model == "two-layer":
        return nn.TwoLayerNet(n_in, config.hidden[0], n_out, seed=config.seed)
    if config.model == "mlp":
        return nn.MLP([n_in, *config.hidden, n_out], activations=config.activation,
                      dropout=config.dropout, batch_norm=config.batch_norm, seed=config.seed)
    if config.model in ("cnn", "deep-cnn"):
        if data.image_shape is None:
            raise ValueError(f"--model {config.model} needs image data (digits, mnist, "
                             f"fashion-mnist), not {config.dataset}")
        if config.model == "cnn":
            return nn.SimpleConvNet(input_dim=data.image_shape, output_size=n_out,
                                    seed=config.seed)
        if data.image_shape[1] < 16:
            raise ValueError("--model deep-cnn needs 28×28 images (mnist or fashion-mnist)")
        return nn.DeepConvNet(input_dim=data.image_shape, output_size=n_out, seed=config.seed)
    raise ValueError(f"unknown model {config.model!r}; valid: {', '.join(MODELS)}")


def build_optimizer(config: RunConfig, model: Any) -> Any:
    from chainrule.optim import get_optimizer

    return get_optimizer(config.optimizer, model.parameters(), lr=config.lr,
                         weight_decay=config.weight_decay)


def build_scheduler(config: RunConfig, optimizer: Any) -> Any:
    """The per-epoch learning-rate schedule: constant, cosine annealing to zero over the
    run, or a step decay (×0.1 after each third of the run)."""
    from chainrule.optim.lr_scheduler import CosineAnnealingLR, StepLR

    epochs = config.resolved_epochs()
    if config.lr_schedule == "constant":
        return None
    if config.lr_schedule == "cosine":
        return CosineAnnealingLR(optimizer, T_max=epochs)
    if config.lr_schedule == "step":
        return StepLR(optimizer, step_size=max(1, epochs // 3), gamma=0.1)
    raise ValueError(f"unknown learning-rate schedule {config.lr_schedule!r}; valid: "
                     f"{', '.join(LR_SCHEDULES)}")
