"""Benchmark one training step of an LSTM language model (run by hand, not in CI).

The step: token ids (batch 20, BPTT 35) → embedding → LSTM → affine to the 10,000-word
vocabulary → softmax cross-entropy (mean over the 700 predictions), backward, clip the
gradients to global norm 0.25, SGD update with lr 20; the LSTM state carries over from
one window of the stream to the next, detached. Two models, no dropout:

* small: the book's ``Rnnlm`` (embedding 100, one 100-unit LSTM);
* medium: embedding 650, two 650-unit LSTM layers (Zaremba et al.'s medium size).

Three implementations in one process:

* chainrule: ``chainrule.nn.RNNLM`` (state carried inside the model),
  ``F.cross_entropy``, ``optim.clip_grad_norm_``, ``optim.SGD``;
* PyTorch CPU eager: ``nn.Embedding``, ``nn.LSTM(batch_first=True)``, ``nn.Linear``,
  ``F.cross_entropy``, ``clip_grad_norm_``, ``optim.SGD``, as many threads as NumPy's BLAS;
* NumPy by hand, the book's ``common/time_layers.py`` (TimeEmbedding, a stateful
  TimeLSTM, TimeAffine, TimeSoftmaxWithLoss, its ``clip_grads`` and ``SGD``), written
  here. As the project's time layers do, its LSTM multiplies the inputs by Wx for all
  N·T rows at once and sums dWx, dWh and db with one product each after the reverse
  loop (the book does these per step); the gates are in PyTorch's order (i, f, g, o),
  so weights copy over as transposes. Before timing, its loss, gradients and update are
  checked against PyTorch's on a tiny two-layer float64 model (``--check`` runs only
  that, including chainrule when its parameter names follow ``nn.LSTM``'s).

Every round runs one step of each implementation in a shuffled order (so that none
always runs right after another, and a busy machine affects all alike), after a
warm-up; medians (and minima) in ms per step and their ratios are printed. The goals
for chainrule, for the small model single-threaded: ≤ 0.8× PyTorch and ≤ 1.1× NumPy.

With more than one thread, each step waits ``--pause`` seconds first, so that the
worker threads of the previous implementation (OpenBLAS and OpenMP threads spin a
while after their work) have gone to sleep and do not compete with this one's.

Token ids are the start of PTB's training text if it is found (``--ptb``), otherwise
random ids from a fixed generator (the timing is the same).

    python benchmarks/bench_rnn.py [--threads 1,2] [--rounds 15] [--models small,medium]
                                   [--only torch,numpy] [--check] [--profile]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from itertools import cycle
from pathlib import Path

from _text_bench import (  # this folder (the script's) is on sys.path
    add_data_and_pause_options,
    blas_threads,
    checkout_first,
    limit_threads_before_numpy,
    names_of,
    report,
    thread_counts,
    time_rounds,
    token_stream,
    windows_of,
)

IMPLEMENTATIONS = ("chainrule", "torch", "numpy")
MODELS = {  # name: (title, vocabulary, embedding, hidden units, layers)
    "small": ("the book's Rnnlm, embedding 100, 1×100 LSTM", 10000, 100, 100, 1),
    "medium": ("embedding 650, 2×650 LSTM", 10000, 650, 650, 2),
}
BATCH, BPTT, LR, MAX_NORM = 20, 35, 20.0, 0.25
WINDOWS = 30  # windows of the stream that the steps cycle through
GOALS = {"torch": 0.8, "numpy": 1.1}  # chainrule's time over theirs, small model, 1 thread


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1",
                        help="BLAS threads for NumPy (PyTorch gets as many); a comma list "
                        "such as 1,2 runs each in turn (default 1)")
    parser.add_argument("--rounds", type=int, default=15,
                        help="timed rounds for the small model; the medium one gets a "
                        "third as many, at least 3 (default 15)")
    parser.add_argument("--warmup", type=int, default=3,
                        help="untimed steps of each implementation first (default 3)")
    parser.add_argument("--models", default="small,medium",
                        help=f"comma list of {', '.join(MODELS)} (default both)")
    parser.add_argument("--only", default=",".join(IMPLEMENTATIONS),
                        help=f"comma list of {', '.join(IMPLEMENTATIONS)} to run "
                        "(default all three)")
    add_data_and_pause_options(parser)
    parser.add_argument("--check", action="store_true",
                        help="only check the NumPy model (and chainrule's, if it can be "
                        "matched) against PyTorch's on a tiny float64 model, then exit")
    parser.add_argument("--profile", action="store_true",
                        help="also profile 10 chainrule steps of the small model with the "
                        "first thread count (cProfile)")
    args = parser.parse_args(argv)
    args.threads = thread_counts(parser, args.threads)
    args.models = names_of(parser, "--models", args.models, tuple(MODELS))
    args.only = names_of(parser, "--only", args.only, IMPLEMENTATIONS)
    if args.rounds < 1 or args.warmup < 0:
        parser.error("--rounds must be at least 1 and --warmup at least 0")
    return args


if __name__ == "__main__":
    limit_threads_before_numpy(parse_args().threads)

import numpy as np  # noqa: E402

checkout_first()
import chainrule  # noqa: E402
import chainrule.functional as F  # noqa: E402
from chainrule import optim  # noqa: E402

# --------------------------------------------------------------------------- data


def init_weights(vocab: int, embed: int, hidden: int, layers: int, seed: int = 0,
                 dtype: type = np.float32) -> dict[str, np.ndarray]:
    """Weights in the book's layout (inputs on the first axis), initialised as in
    PyTorch's word-language-model example: embedding and decoder uniform in ±0.1, the
    decoder bias zero, the LSTM uniform in ±1/√hidden as ``nn.LSTM`` does."""
    rng = np.random.default_rng(seed)
    bound = 1.0 / np.sqrt(hidden)
    weights = {"embed_W": rng.uniform(-0.1, 0.1, (vocab, embed))}
    for layer in range(layers):
        inputs = embed if layer == 0 else hidden
        weights[f"lstm{layer}_Wx"] = rng.uniform(-bound, bound, (inputs, 4 * hidden))
        weights[f"lstm{layer}_Wh"] = rng.uniform(-bound, bound, (hidden, 4 * hidden))
        weights[f"lstm{layer}_b"] = rng.uniform(-bound, bound, 4 * hidden)
    weights["affine_W"] = rng.uniform(-0.1, 0.1, (hidden, vocab))
    weights["affine_b"] = np.zeros(vocab)
    return {name: w.astype(dtype) for name, w in weights.items()}


# --------------------------------------------------------------------------- NumPy
def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


class TimeEmbedding:
    def __init__(self, W: np.ndarray) -> None:
        self.params, self.grads = [W], [np.zeros_like(W)]
        self.idx: np.ndarray | None = None

    def forward(self, xs: np.ndarray) -> np.ndarray:
        self.idx = xs
        return self.params[0][xs]  # (N, T, D)

    def backward(self, dout: np.ndarray) -> None:
        dW, = self.grads
        dW[...] = 0
        np.add.at(dW, self.idx.ravel(), dout.reshape(-1, dW.shape[1]))  # rows may repeat


class TimeLSTM:
    """T steps of an LSTM; the last (h, c) carries over to the next call (stateful).

    a = x·Wx + h_prev·Wh + b, split into the gates i, f, g, o (PyTorch's order);
    c = f⊙c_prev + i⊙tanh(g), h = σ(o)⊙tanh(c) with σ on i, f and o.
    """

    def __init__(self, Wx: np.ndarray, Wh: np.ndarray, b: np.ndarray) -> None:
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.h: np.ndarray | None = None
        self.c: np.ndarray | None = None
        self.cache: tuple | None = None

    def reset_state(self) -> None:
        self.h = self.c = None

    def forward(self, xs: np.ndarray) -> np.ndarray:
        Wx, Wh, b = self.params
        N, T, D = xs.shape
        H = Wh.shape[0]
        if self.h is None:
            self.h = np.zeros((N, H), dtype=xs.dtype)
            self.c = np.zeros((N, H), dtype=xs.dtype)
        # x·Wx + b does not depend on the step: one product over all N·T rows
        ax = (xs.reshape(N * T, D) @ Wx + b).reshape(N, T, 4 * H)
        hs = np.empty((N, T, H), dtype=xs.dtype)
        h0 = h = self.h
        c = self.c
        steps = []
        for t in range(T):
            a = ax[:, t] + h @ Wh
            i, f = sigmoid(a[:, :H]), sigmoid(a[:, H:2 * H])
            g, o = np.tanh(a[:, 2 * H:3 * H]), sigmoid(a[:, 3 * H:])
            c_prev, c = c, f * c + i * g
            tanh_c = np.tanh(c)
            h = hs[:, t] = o * tanh_c
            steps.append((c_prev, i, f, g, o, tanh_c))
        self.cache = (xs, h0, hs, steps)
        self.h, self.c = h, c
        return hs

    def backward(self, dhs: np.ndarray) -> np.ndarray:
        xs, h0, hs, steps = self.cache
        Wx, Wh, b = self.params
        N, T, H = dhs.shape
        da = np.empty((N, T, 4 * H), dtype=dhs.dtype)
        dh = np.zeros((N, H), dtype=dhs.dtype)
        dc = np.zeros((N, H), dtype=dhs.dtype)
        for t in reversed(range(T)):
            c_prev, i, f, g, o, tanh_c = steps[t]
            dh = dh + dhs[:, t]
            # h = o·tanh(c): dL/dc += dh·o·(1 − tanh²c)
            ds = dc + dh * o * (1 - tanh_c ** 2)
            dc = ds * f  # to c_prev
            # σ' = σ(1 − σ), tanh' = 1 − tanh²
            da[:, t, :H] = ds * g * i * (1 - i)
            da[:, t, H:2 * H] = ds * c_prev * f * (1 - f)
            da[:, t, 2 * H:3 * H] = ds * i * (1 - g ** 2)
            da[:, t, 3 * H:] = dh * tanh_c * o * (1 - o)
            dh = da[:, t] @ Wh.T  # to h_prev
        # the weight gradients summed over all steps, one product each
        da_rows = da.reshape(N * T, 4 * H)
        h_prev = np.concatenate([h0[:, None], hs[:, :-1]], axis=1).reshape(N * T, H)
        self.grads[0][...] = xs.reshape(N * T, -1).T @ da_rows
        self.grads[1][...] = h_prev.T @ da_rows
        self.grads[2][...] = da_rows.sum(axis=0)
        return (da_rows @ Wx.T).reshape(N, T, -1)


class TimeAffine:
    def __init__(self, W: np.ndarray, b: np.ndarray) -> None:
        self.params, self.grads = [W, b], [np.zeros_like(W), np.zeros_like(b)]
        self.x: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        W, b = self.params
        N, T, D = x.shape
        self.x = x
        return (x.reshape(N * T, D) @ W + b).reshape(N, T, -1)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        x = self.x
        W, b = self.params
        N, T, D = x.shape
        dout = dout.reshape(N * T, -1)
        self.grads[0][...] = x.reshape(N * T, D).T @ dout
        self.grads[1][...] = dout.sum(axis=0)
        return (dout @ W.T).reshape(N, T, D)


class TimeSoftmaxWithLoss:
    """Mean over all N·T positions of −log softmax(x)[t]."""

    def __init__(self) -> None:
        self.params, self.grads = [], []
        self.cache: tuple | None = None

    def forward(self, xs: np.ndarray, ts: np.ndarray) -> float:
        N, T, V = xs.shape
        xs, ts = xs.reshape(N * T, V), ts.reshape(N * T)
        rows = np.arange(N * T)
        shifted = xs - xs.max(axis=1, keepdims=True)  # stable: exp never overflows
        e = np.exp(shifted)
        total = e.sum(axis=1, keepdims=True)
        self.cache = (e, total, ts, rows, (N, T, V))
        return float(np.mean(np.log(total[:, 0]) - shifted[rows, ts]))

    def backward(self, dout: float = 1.0) -> np.ndarray:
        e, total, ts, rows, shape = self.cache
        # dL/dx = (softmax − onehot) / (N·T)
        dx = e / total
        dx[rows, ts] -= 1
        dx *= dout / len(ts)
        return dx.reshape(shape)


class NumpyRnnlm:
    """The book's Rnnlm (any number of LSTM layers): forward returns the loss."""

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        w = {name: value.copy() for name, value in weights.items()}
        layers = sum(name.endswith("_Wh") for name in w)
        self.lstms = [TimeLSTM(w[f"lstm{k}_Wx"], w[f"lstm{k}_Wh"], w[f"lstm{k}_b"])
                      for k in range(layers)]
        self.layers = [TimeEmbedding(w["embed_W"]), *self.lstms,
                       TimeAffine(w["affine_W"], w["affine_b"])]
        self.loss_layer = TimeSoftmaxWithLoss()
        self.params = [p for layer in self.layers for p in layer.params]
        self.grads = [g for layer in self.layers for g in layer.grads]

    def forward(self, xs: np.ndarray, ts: np.ndarray) -> float:
        for layer in self.layers:
            xs = layer.forward(xs)
        return self.loss_layer.forward(xs, ts)

    def backward(self, dout: float = 1.0) -> None:
        dout = self.loss_layer.backward(dout)
        for layer in reversed(self.layers):
            dout = layer.backward(dout)

    def reset_state(self) -> None:
        for lstm in self.lstms:
            lstm.reset_state()


def clip_grads(grads: list[np.ndarray], max_norm: float) -> None:
    total_norm = np.sqrt(sum(float(np.vdot(g, g)) for g in grads))
    rate = max_norm / (total_norm + 1e-6)
    if rate < 1:
        for g in grads:
            g *= rate


class SGD:
    def __init__(self, lr: float = 0.01) -> None:
        self.lr = lr

    def update(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        for param, grad in zip(params, grads):
            param -= self.lr * grad


def numpy_step_fn(weights: dict[str, np.ndarray], windows: list,
                  max_norm: float = MAX_NORM) -> tuple[Callable[[], float], NumpyRnnlm]:
    model, optimizer, batches = NumpyRnnlm(weights), SGD(LR), cycle(windows)

    def step() -> float:
        xs, ts = next(batches)
        loss = model.forward(xs, ts)
        model.backward()
        clip_grads(model.grads, max_norm)
        optimizer.update(model.params, model.grads)
        return loss

    return step, model


# --------------------------------------------------------------------------- PyTorch
def torch_model(torch, weights: dict[str, np.ndarray]):
    """The same network in PyTorch, its weights copied from ``weights`` (transposed to
    PyTorch's (out, in) layout; the LSTM's bias all in bias_ih, bias_hh zero)."""
    vocab, embed = weights["embed_W"].shape
    hidden = weights["lstm0_Wh"].shape[0]
    layers = sum(name.endswith("_Wh") for name in weights)
    dtype = torch.float64 if weights["embed_W"].dtype == np.float64 else torch.float32
    model = torch.nn.ModuleDict({  # the names of chainrule's RNNLM
        "embedding": torch.nn.Embedding(vocab, embed),
        "rnn": torch.nn.LSTM(embed, hidden, num_layers=layers, batch_first=True),
        "decoder": torch.nn.Linear(hidden, vocab),
    }).to(dtype)
    rnn = model["rnn"]
    with torch.no_grad():
        model["embedding"].weight.copy_(torch.from_numpy(weights["embed_W"]))
        for k in range(layers):
            getattr(rnn, f"weight_ih_l{k}").copy_(torch.from_numpy(weights[f"lstm{k}_Wx"].T))
            getattr(rnn, f"weight_hh_l{k}").copy_(torch.from_numpy(weights[f"lstm{k}_Wh"].T))
            getattr(rnn, f"bias_ih_l{k}").copy_(torch.from_numpy(weights[f"lstm{k}_b"]))
            getattr(rnn, f"bias_hh_l{k}").zero_()
        model["decoder"].weight.copy_(torch.from_numpy(weights["affine_W"].T))
        model["decoder"].bias.copy_(torch.from_numpy(weights["affine_b"]))
    return model


def torch_step_fn(torch, model, windows: list,
                  max_norm: float = MAX_NORM) -> Callable[[], float]:
    params = list(model.parameters())
    optimizer = torch.optim.SGD(params, lr=LR)
    batches = cycle([(torch.from_numpy(np.ascontiguousarray(x)),
                      torch.from_numpy(np.ascontiguousarray(t)).reshape(-1))
                     for x, t in windows])
    state = None

    def step() -> float:
        nonlocal state
        x, t = next(batches)
        hs, state = model["rnn"](model["embedding"](x), state)
        logits = model["decoder"](hs)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), t)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, max_norm)
        optimizer.step()
        state = tuple(s.detach() for s in state)  # carried over, its graph cut
        return loss.item()

    return step


# --------------------------------------------------------------------------- chainrule
def chainrule_rnnlm() -> tuple[type | None, str]:
    """chainrule's RNNLM class, or None and why it is not available."""
    try:
        from chainrule.nn import RNNLM
    except ImportError as error:
        return None, (f"chainrule: skipped, its recurrent layers are not importable from "
                      f"{Path(chainrule.__file__).parent} ({error})")
    return RNNLM, ""


def chainrule_step_fn(model, windows: list,
                      max_norm: float = MAX_NORM) -> Callable[[], float]:
    params = list(model.parameters())
    optimizer = optim.SGD(params, lr=LR)
    batches = cycle(windows)

    def step() -> float:
        x, t = next(batches)
        loss = F.cross_entropy(model(x), t)  # the model carries its state, detached
        optimizer.zero_grad()
        loss.backward()
        optim.clip_grad_norm_(params, max_norm)
        optimizer.step()
        return float(loss.data)

    return step


# --------------------------------------------------------------------------- check
def check(torch, rnnlm: type | None) -> None:
    """The NumPy step (and chainrule's, if its parameters can be matched by name) against
    PyTorch's on a tiny two-layer model in float64: the loss of two consecutive windows
    (the second starts from the carried state), every gradient, every updated weight."""
    vocab, embed, hidden, layers, batch, bptt = 13, 5, 7, 2, 3, 4
    max_norm = 0.05  # small enough that the clipping takes effect
    stream = np.random.default_rng(1).integers(0, vocab, batch * (3 * bptt + 1))
    windows = windows_of(stream, batch, bptt)[:2]
    weights = init_weights(vocab, embed, hidden, layers, seed=1, dtype=np.float64)
    th = torch_model(torch, weights)
    for k in range(layers):  # ours has one LSTM bias: PyTorch's second stays zero
        getattr(th["rnn"], f"bias_hh_l{k}").requires_grad_(False)
    th_step = torch_step_fn(torch, th, windows, max_norm)
    np_step, np_model = numpy_step_fn(weights, windows, max_norm)

    def numpy_as_torch() -> dict[str, np.ndarray]:
        """The NumPy model's gradients and weights under PyTorch's names and layouts."""
        grads, params = {}, {}
        for key, g, p in zip(th_names(layers), np_model.grads, np_model.params):
            name, transpose = key
            grads[name] = g.T if transpose else g
            params[name] = p.T if transpose else p
        return {"grad": grads, "param": params}

    # gradients before the update: run the step's parts by hand for the first window
    xs, ts = windows[0]
    loss = np_model.forward(xs, ts)
    np_model.backward()
    th_loss = torch.nn.functional.cross_entropy(
        th["decoder"](th["rnn"](th["embedding"](torch.from_numpy(xs)))[0]).reshape(-1, vocab),
        torch.from_numpy(ts).reshape(-1))
    th_loss.backward()
    np.testing.assert_allclose(loss, th_loss.item(), rtol=1e-12)
    ours = numpy_as_torch()["grad"]
    for name, p in th.named_parameters():
        if p.requires_grad:
            np.testing.assert_allclose(ours[name], p.grad.numpy(), rtol=1e-9, atol=1e-12,
                                       err_msg=f"gradient of {name}")
    # two whole steps (clip, update, state carried): losses and weights must agree
    np_model.reset_state()
    th.zero_grad(set_to_none=True)
    for window in range(2):
        np.testing.assert_allclose(np_step(), th_step(), rtol=1e-12,
                                   err_msg=f"loss of window {window}")
    ours = numpy_as_torch()["param"]
    for name, p in th.named_parameters():
        if p.requires_grad:
            np.testing.assert_allclose(ours[name], p.detach().numpy(), rtol=1e-9,
                                       atol=1e-12, err_msg=f"{name} after two steps")
    print("check: the NumPy model's loss, gradients, clipping, update and carried state "
          "equal PyTorch's (float64, 2 layers, 2 windows)")

    if rnnlm is None:
        return
    model = rnnlm(vocab, embedding_dim=embed, hidden_size=hidden, num_layers=layers,
                  dropout=0.0, tie_weights=False, seed=0, dtype=np.float64)
    th = torch_model(torch, weights)
    theirs = {name: p.detach().numpy() for name, p in th.named_parameters()}
    ours_params = dict(model.named_parameters())
    if set(ours_params) != set(theirs):
        print(f"check: chainrule not compared (its parameter names {sorted(ours_params)} "
              f"are not PyTorch's {sorted(theirs)})")
        return
    for name, p in ours_params.items():  # chainrule's Linear keeps (in, out)
        p.data[...] = theirs[name] if p.shape == theirs[name].shape else theirs[name].T
    cr_step = chainrule_step_fn(model, windows, max_norm)
    th_step = torch_step_fn(torch, th, windows, max_norm)
    for window in range(2):
        np.testing.assert_allclose(cr_step(), th_step(), rtol=1e-10,
                                   err_msg=f"chainrule: loss of window {window}")
    for name, p in th.named_parameters():
        value = p.detach().numpy()
        ours_value = ours_params[name].data
        np.testing.assert_allclose(ours_value if ours_value.shape == value.shape
                                   else ours_value.T, value, rtol=1e-8, atol=1e-11,
                                   err_msg=f"chainrule: {name} after two steps")
    print("check: chainrule's losses and weights after two steps equal PyTorch's")


def th_names(layers: int) -> Iterator[tuple[str, bool]]:
    """PyTorch's name for each of the NumPy model's parameters, in its order, and
    whether the layout is transposed."""
    yield "embedding.weight", False
    for k in range(layers):
        yield f"rnn.weight_ih_l{k}", True
        yield f"rnn.weight_hh_l{k}", True
        yield f"rnn.bias_ih_l{k}", False
    yield "decoder.weight", True
    yield "decoder.bias", False


# --------------------------------------------------------------------------- timing


def main() -> None:
    args = parse_args()
    try:
        import torch
    except ImportError:
        torch = None
        if "torch" in args.only or args.check:
            print("PyTorch not installed: skipping it (and the check)")
    rnnlm, why = chainrule_rnnlm()
    if rnnlm is None and "chainrule" in args.only:
        print(why)
    if torch is not None:
        check(torch, rnnlm)
    if args.check:
        return
    run = [name for name in args.only
           if not (name == "torch" and torch is None) and not (name == "chainrule"
                                                               and rnnlm is None)]
    stream, source = token_stream(args.ptb, args.random_ids, BATCH * (WINDOWS * BPTT + 1),
                                  MODELS['small'][1])
    windows = windows_of(stream, BATCH, BPTT)
    print(f"chainrule {chainrule.__version__} from {Path(chainrule.__file__).parent}, "
          f"numpy {np.__version__}"
          + (f", torch {torch.__version__}" if torch is not None else "")
          + f"; batch {BATCH}, BPTT {BPTT}, SGD lr {LR}, clip {MAX_NORM}, float32, no "
          f"dropout; {source}\n")

    for threads in args.threads:
        with blas_threads(threads):
            if torch is not None:
                torch.set_num_threads(threads)
            for model_name in args.models:
                title, vocab, embed, hidden, layers = MODELS[model_name]
                weights = init_weights(vocab, embed, hidden, layers)
                steps: dict[str, Callable[[], float]] = {}
                if "chainrule" in run:
                    steps["chainrule"] = chainrule_step_fn(
                        rnnlm(vocab, embedding_dim=embed, hidden_size=hidden,
                              num_layers=layers, dropout=0.0, tie_weights=False, seed=0),
                        windows)
                if "torch" in run:
                    steps["torch"] = torch_step_fn(torch, torch_model(torch, weights), windows)
                if "numpy" in run:
                    steps["numpy"] = numpy_step_fn(weights, windows)[0]
                if not steps:
                    sys.exit("nothing to run: see the lines above")
                rounds = args.rounds if model_name == "small" else max(3, args.rounds // 3)
                samples, first_loss = time_rounds(steps, rounds, args.warmup,
                                                  args.pause if threads > 1 else 0.0)
                report(f"{model_name} ({title}): ms per training step, {threads} thread"
                       f"{'s' if threads > 1 else ''}, {rounds} rounds",
                       samples, first_loss,
                       goals=GOALS if model_name == "small" and threads == 1 else None)
            if args.profile and "chainrule" in run and threads == args.threads[0]:
                profile_chainrule(rnnlm, windows)


def profile_chainrule(rnnlm: type, windows: list) -> None:
    """cProfile of 10 chainrule steps of the small model, the 20 costliest functions."""
    import cProfile
    import pstats

    _, vocab, embed, hidden, layers = MODELS["small"]
    step = chainrule_step_fn(rnnlm(vocab, embedding_dim=embed, hidden_size=hidden,
                                   num_layers=layers, dropout=0.0, tie_weights=False,
                                   seed=0), windows)
    step()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(10):
        step()
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(20)

if __name__ == "__main__":
    main()
