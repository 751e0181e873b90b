"""word2vec with negative sampling: CBOW and skip-gram, as in "Deep Learning from
Scratch 2", chapter 4.

Every position of a text (an array of word ids) is a *target* word with a *context*
of ``window_size`` words on each side. Two tables of word vectors are learnt: W_in
(the word vectors one keeps) and W_out. Instead of a softmax over the whole
vocabulary, each target becomes 1 + k binary questions: "is this word the right
one?", asked of the true word (label 1) and of k *negative* words drawn at random
(label 0)::

    score = W_out[word] · h,     loss = Σ over the 1 + k words of BCE(σ(score), label)

CBOW asks them about the target, from h = the mean of the context words' W_in rows;
skip-gram asks them about every context word, from h = the target's W_in row.

The models are ordinary ``Module``s built from existing operations (``F.embedding``,
multiplication, ``sum``, ``F.binary_cross_entropy_with_logits``), so backpropagation
comes from the engine. ``most_similar`` and ``analogy`` query the trained vectors.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

import chainrule.functional as F
from chainrule.nn.init import RngLike, make_rng, normal_
from chainrule.nn.layers import Embedding, _check_positive
from chainrule.nn.module import Module
from chainrule.tensor import Tensor

__all__ = ["contexts_and_targets", "UnigramSampler", "negative_sampling_loss", "CBOW",
           "SkipGram", "most_similar", "analogy"]


# --------------------------------------------------------------------------- data
def _int_array(name: str, values: Any) -> np.ndarray:
    array = values.data if isinstance(values, Tensor) else np.asarray(values)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer word ids, got dtype {array.dtype}")
    return array


def contexts_and_targets(ids: Any, window_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Every word of ``ids`` with ``window_size`` words on both sides, and those words.

    ``ids`` is a 1-D array of word ids of length T. Returns ``(contexts, targets)``:
    ``targets`` (T - 2w,) are ``ids[w:-w]``, and row i of ``contexts`` (T - 2w, 2w) holds
    the w words before and the w words after ``targets[i]``, in text order (the book's
    ``create_contexts_target``, built from one sliding-window view instead of a loop).
    """
    ids = _int_array("ids", ids)
    window_size = _check_positive("window_size", window_size)
    if ids.ndim != 1:
        raise ValueError(f"ids must be a 1-D array of word ids, got shape {ids.shape}")
    width = 2 * window_size + 1
    if len(ids) < width:
        raise ValueError(f"a window of {window_size} words on each side needs at least "
                         f"{width} ids, got {len(ids)}")
    windows = np.lib.stride_tricks.sliding_window_view(ids, width)  # (T - 2w, 2w + 1)
    targets = windows[:, window_size].copy()
    contexts = np.delete(windows, window_size, axis=1)  # a new (T - 2w, 2w) array
    return contexts, targets


class UnigramSampler:
    """Draws negative words with probability P(w) ∝ count(w) ** ``power``.

    ``UnigramSampler(ids, power=0.75, sample_size=5)`` counts the words of ``ids`` (a
    1-D array of word ids; ``vocab_size`` defaults to max id + 1). ``power`` < 1 lifts
    rare words a little: 0.75 is word2vec's choice. ``sample(target)`` returns
    ``sample_size`` negatives for every entry of ``target``, all in one vectorised draw
    (inverse transform: uniform numbers looked up in the cumulative distribution).

    ``exclude_target=True`` (the default, as the book's CPU code) never returns a
    target as its own negative: the clashing draws are drawn again until none clash, so
    each negative follows P restricted to the other words. Unlike the book, the
    negatives of one target are drawn *with* replacement (as in the book's GPU code and
    the original word2vec), so a row may repeat a word. ``seed`` (or a Generator
    ``rng``) makes the draws reproducible.
    """

    def __init__(self, ids: Any, power: float = 0.75, sample_size: int = 5,
                 vocab_size: int | None = None, exclude_target: bool = True,
                 seed: int | None = None, rng: RngLike = None) -> None:
        ids = _int_array("ids", ids).reshape(-1)
        if ids.size == 0:
            raise ValueError("UnigramSampler needs a non-empty array of word ids")
        if ids.min() < 0:
            raise ValueError(f"word ids must be >= 0, got {ids.min()}")
        self.sample_size = _check_positive("sample_size", sample_size)
        if not np.isfinite(power) or power < 0:
            raise ValueError(f"power must be a finite number >= 0, got {power!r}")
        largest = int(ids.max())
        if vocab_size is None:
            vocab_size = largest + 1
        vocab_size = _check_positive("vocab_size", vocab_size)
        if largest >= vocab_size:
            raise ValueError(f"word id {largest} is out of range for vocab_size={vocab_size}")
        self.vocab_size, self.power = vocab_size, float(power)
        counts = np.bincount(ids, minlength=vocab_size).astype(np.float64)
        weights = np.where(counts > 0, counts**self.power, 0.0)  # unseen words: never
        #: P(w) for every word id: count(w)^power / Σ count^power
        self.probabilities = weights / weights.sum()
        self.exclude_target = bool(exclude_target)
        if self.exclude_target and np.count_nonzero(counts) < 2:
            raise ValueError("exclude_target=True needs at least two distinct words in "
                             "ids (a target cannot be its own negative)")
        # the cumulative distribution, ending at exactly 1.0 so that a uniform draw
        # u < 1 always lands on a word: word i is drawn when cdf[i-1] <= u < cdf[i]
        cumulative = np.cumsum(weights)
        self._cumulative = cumulative / cumulative[-1]
        self.rng = make_rng(rng, seed)

    def _draw(self, shape: int | tuple[int, ...]) -> np.ndarray:
        """Word ids drawn independently from ``probabilities``."""
        uniform = self.rng.random(shape)
        return np.searchsorted(self._cumulative, uniform, side="right")

    def sample(self, target: Any) -> np.ndarray:
        """``sample_size`` negative word ids for each entry of ``target``: an int array
        of shape ``target.shape + (sample_size,)``."""
        target = _int_array("target", target)
        negatives = self._draw(target.shape + (self.sample_size,))
        if self.exclude_target:
            flat_target = np.broadcast_to(target[..., None], negatives.shape).reshape(-1)
            flat = negatives.reshape(-1)  # a view: writes go into negatives
            clash = np.flatnonzero(flat == flat_target)
            while clash.size:  # redraw only the clashes (a few per batch)
                flat[clash] = self._draw(clash.size)
                clash = clash[flat[clash] == flat_target[clash]]
        return negatives

    def __repr__(self) -> str:
        return (f"UnigramSampler(vocab_size={self.vocab_size}, power={self.power}, "
                f"sample_size={self.sample_size}, exclude_target={self.exclude_target})")


# --------------------------------------------------------------------------- loss
def negative_sampling_loss(hidden: Tensor, target: Any, negatives: Any,
                           weight: Tensor) -> Tensor:
    """The negative-sampling loss of hidden vectors against their true words and
    negatives, summed over the 1 + k words and averaged over the batch.

    Args:
        hidden: (N, ..., D) vectors h, broadcastable to ``target.shape + (D,)`` (one
            per target, or (N, 1, D) shared by all of a row's targets in skip-gram).
        target: (N, ...) ids of the true words (label 1).
        negatives: ``target.shape + (k,)`` ids of the negative words (label 0).
        weight: (V, D) the output table W_out.

    loss = (1/N) Σ [ BCE(W_out[target]·h, 1) + Σ_k BCE(W_out[negative]·h, 0) ], where
    BCE(s, t) = -t ln σ(s) - (1 - t) ln(1 - σ(s)), so per target
    -ln σ(s₊) - Σ ln σ(-s₋), as in the book's ``NegativeSamplingLoss``.
    """
    target = _int_array("target", target)
    negatives = _int_array("negatives", negatives)
    if negatives.shape[:-1] != target.shape or negatives.ndim != target.ndim + 1:
        raise ValueError(f"negatives must have shape target.shape + (k,) = "
                         f"{target.shape} + (k,), got {negatives.shape}")
    if target.ndim == 0:
        raise ValueError("target needs a batch axis, got a single id")
    # the true word first, then its negatives: one lookup and one gradient for all
    words = np.concatenate([target[..., None], negatives], axis=-1)  # (N, ..., 1 + k)
    vectors = F.embedding(words, weight)  # (N, ..., 1 + k, D)
    scores = (vectors * hidden.unsqueeze(-2)).sum(axis=-1)  # (N, ..., 1 + k)
    labels = np.zeros(scores.shape, dtype=scores.dtype)
    labels[..., 0] = 1.0
    total = F.binary_cross_entropy_with_logits(scores, labels, reduction="sum")
    return total * (1.0 / len(target))


# --------------------------------------------------------------------------- models
class _Word2Vec(Module):
    """What CBOW and skip-gram share: the two tables and the sampler."""

    def __init__(self, vocab_size: int, embedding_dim: int,
                 sampler: UnigramSampler | None = None, seed: int | None = None,
                 rng: RngLike = None, dtype: Any = np.float32) -> None:
        super().__init__()
        generator = make_rng(rng, seed)
        self.in_embedding = Embedding(vocab_size, embedding_dim, rng=generator, dtype=dtype)
        self.out_embedding = Embedding(vocab_size, embedding_dim, rng=generator, dtype=dtype)
        for table in (self.in_embedding.weight, self.out_embedding.weight):
            normal_(table, std=0.01, rng=generator)  # the book's 0.01 · N(0, 1)
        if sampler is not None and sampler.vocab_size > vocab_size:
            raise ValueError(f"the sampler draws from {sampler.vocab_size} words but the "
                             f"model has vocab_size={vocab_size}")
        self.sampler = sampler

    @property
    def word_vectors(self) -> np.ndarray:
        """The learnt word vectors: the rows of W_in, (vocab_size, embedding_dim)."""
        return self.in_embedding.weight.data

    def _negatives(self, target: np.ndarray, negatives: Any) -> np.ndarray:
        if negatives is not None:
            return _int_array("negatives", negatives)
        if self.sampler is None:
            raise ValueError(f"{type(self).__name__} was built without a sampler: give "
                             "sampler=UnigramSampler(ids) or pass negatives= to forward")
        return self.sampler.sample(target)

    @staticmethod
    def _check_batch(contexts: Any, target: Any) -> tuple[np.ndarray, np.ndarray]:
        contexts, target = _int_array("contexts", contexts), _int_array("target", target)
        if contexts.ndim != 2 or target.shape != contexts.shape[:1]:
            raise ValueError(f"expected contexts of shape (N, 2·window) and target of shape "
                             f"(N,), got {contexts.shape} and {target.shape}")
        return contexts, target

    def extra_repr(self) -> str:
        vocab_size, dim = self.in_embedding.weight.shape
        return f"vocab_size={vocab_size}, embedding_dim={dim}, sampler={self.sampler}"


class CBOW(_Word2Vec):
    """Continuous bag of words: predict the target from the mean of its context words.

    ``CBOW(vocab_size, embedding_dim, sampler)``; ``model(contexts, target)`` with
    contexts (N, 2·window) and target (N,) returns the negative-sampling loss, for
    h = mean of W_in[contexts] (the book's CBOW). Both tables start as 0.01·N(0, 1).
    ``negatives=`` (N, k) replaces the sampler's draw (for tests).
    """

    def forward(self, contexts: Any, target: Any, negatives: Any = None) -> Tensor:
        contexts, target = self._check_batch(contexts, target)
        hidden = self.in_embedding(contexts).mean(axis=1)  # (N, D)
        weight = self.out_embedding.weight
        return negative_sampling_loss(hidden, target, self._negatives(target, negatives),
                                      weight)


class SkipGram(_Word2Vec):
    """Skip-gram: predict every context word from the target word.

    ``SkipGram(vocab_size, embedding_dim, sampler)``; ``model(contexts, target)`` with
    contexts (N, 2·window) and target (N,) returns the negative-sampling loss of each
    context word given h = W_in[target], summed over the 2·window context words (the
    book's SkipGram). ``negatives=`` (N, 2·window, k) replaces the sampler's draw.
    """

    def forward(self, contexts: Any, target: Any, negatives: Any = None) -> Tensor:
        contexts, target = self._check_batch(contexts, target)
        hidden = self.in_embedding(target).unsqueeze(1)  # (N, 1, D): one h per row
        weight = self.out_embedding.weight
        return negative_sampling_loss(hidden, contexts, self._negatives(contexts, negatives),
                                      weight)


# --------------------------------------------------------------------------- queries
def _id_to_word(vocabulary: Any) -> list[str]:
    """The words in id order, from a word -> id mapping, an id -> word sequence, or an
    object with an ``id_to_word`` list (such as a ``Vocabulary``)."""
    if hasattr(vocabulary, "id_to_word"):
        vocabulary = vocabulary.id_to_word
    if isinstance(vocabulary, Mapping):
        words: list[Any] = [None] * len(vocabulary)
        for word, i in vocabulary.items():
            if not 0 <= int(i) < len(words) or words[int(i)] is not None:
                raise ValueError("the word -> id mapping must number its words 0..n-1, "
                                 f"each id once; {word!r} has id {i!r}")
            words[int(i)] = str(word)
        return words
    if isinstance(vocabulary, (str, bytes)) or not isinstance(vocabulary, Sequence | np.ndarray):
        raise TypeError("vocabulary must be a word -> id mapping, a sequence of words in id "
                        f"order, or have an id_to_word list; got {type(vocabulary).__name__}")
    return [str(word) for word in vocabulary]  # (NumPy's str_ printed as plain words)


def _unit_rows(word_vectors: Any, words: list[str]) -> np.ndarray:
    """The word vectors scaled to length 1 (all-zero rows stay zero), float64."""
    matrix = word_vectors.data if isinstance(word_vectors, Tensor) else np.asarray(word_vectors)
    if matrix.ndim != 2 or matrix.shape[0] != len(words):
        raise ValueError(f"word_vectors must be a (vocabulary size, dim) = ({len(words)}, D) "
                         f"matrix, got shape {matrix.shape}")
    matrix = matrix.astype(np.float64)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


def _lookup(word: str, word_to_id: dict[str, int]) -> int:
    if word not in word_to_id:
        close = difflib.get_close_matches(str(word), list(word_to_id), n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise KeyError(f"{word!r} is not in the vocabulary of {len(word_to_id):,} "
                       f"words{hint}")
    return word_to_id[word]


def _nearest(query: np.ndarray, unit: np.ndarray, words: list[str], exclude: list[int],
             top: int) -> list[tuple[str, float]]:
    """The ``top`` words whose unit vectors have the largest cosine with ``query``."""
    top = _check_positive("top", top)
    norm = np.linalg.norm(query)
    similarity = unit @ (query / norm if norm > 0 else query)
    similarity[exclude] = -np.inf
    top = min(top, len(words) - len(set(exclude)))
    best = np.argpartition(-similarity, top - 1)[:top] if top > 0 else np.array([], int)
    best = best[np.argsort(-similarity[best], kind="stable")]
    return [(words[i], float(similarity[i])) for i in best]


def most_similar(query: str, word_vectors: Any, vocabulary: Any,
                 top: int = 5) -> list[tuple[str, float]]:
    """The ``top`` words nearest to ``query`` by cosine similarity, with their
    similarities, most similar first (the query itself left out).

    ``word_vectors`` is the (V, D) matrix (a model's ``word_vectors``); ``vocabulary``
    maps words to rows: a word -> id mapping, a list of words in id order, or an
    object with an ``id_to_word`` list. An unknown word raises KeyError.
    """
    words = _id_to_word(vocabulary)
    word_to_id = {w: i for i, w in enumerate(words)}
    unit = _unit_rows(word_vectors, words)
    i = _lookup(query, word_to_id)
    return _nearest(unit[i], unit, words, [i], top)


def analogy(a: str, b: str, c: str, word_vectors: Any, vocabulary: Any,
            top: int = 5) -> list[tuple[str, float]]:
    """a : b = c : ?  The ``top`` words nearest to b - a + c by cosine similarity,
    leaving out a, b and c (e.g. ``analogy('man', 'king', 'woman', ...)`` → queen).

    The three words' vectors are scaled to length 1 first (as gensim does), so that no
    one of them dominates. Arguments as for ``most_similar``.
    """
    words = _id_to_word(vocabulary)
    word_to_id = {w: i for i, w in enumerate(words)}
    unit = _unit_rows(word_vectors, words)
    ia, ib, ic = (_lookup(w, word_to_id) for w in (a, b, c))
    return _nearest(unit[ib] - unit[ia] + unit[ic], unit, words, [ia, ib, ic], top)
