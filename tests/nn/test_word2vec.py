"""word2vec: contexts and targets, the unigram sampler, the negative-sampling loss of
CBOW and skip-gram (central differences and torch), training on a toy language, and
the queries most_similar / analogy."""

from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import pytest

from chainrule import Tensor, gradcheck, nn, optim

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "word2vec_ptb.py"


# --------------------------------------------------------------------------- contexts
def test_contexts_and_targets_on_the_books_sentence():
    # you say goodbye and i say hello .
    ids = np.array([0, 1, 2, 3, 4, 1, 5, 6])
    contexts, targets = nn.contexts_and_targets(ids, window_size=1)
    np.testing.assert_array_equal(targets, [1, 2, 3, 4, 1, 5])
    np.testing.assert_array_equal(contexts, [[0, 2], [1, 3], [2, 4], [3, 1], [4, 5], [1, 6]])
    contexts, targets = nn.contexts_and_targets(ids, window_size=2)
    np.testing.assert_array_equal(targets, [2, 3, 4, 1])
    np.testing.assert_array_equal(contexts, [[0, 1, 3, 4], [1, 2, 4, 1], [2, 3, 1, 5],
                                             [3, 4, 5, 6]])
    contexts[0, 0] = 99  # a copy, not a view of ids
    assert ids[0] == 0


@pytest.mark.parametrize("ids, window, error, match", [
    (np.zeros((2, 5), int), 1, ValueError, "1-D"),
    (np.arange(4), 2, ValueError, "at least 5 ids, got 4"),
    (np.arange(9.0), 1, TypeError, "integer word ids"),
    (np.arange(9), 0, ValueError, "window_size must be a positive int"),
])
def test_contexts_and_targets_errors(ids, window, error, match):
    with pytest.raises(error, match=match):
        nn.contexts_and_targets(ids, window)


# --------------------------------------------------------------------------- sampler
COUNTS = np.array([2000, 400, 100, 30, 0, 7, 1])  # word 4 never occurs


def toy_ids(counts=COUNTS, seed=0):
    return np.random.default_rng(seed).permutation(np.repeat(np.arange(len(counts)), counts))


def test_sampler_probabilities_are_counts_to_the_power():
    sampler = nn.UnigramSampler(toy_ids(), power=0.75, sample_size=3)
    expected = COUNTS**0.75 / (COUNTS**0.75).sum()
    np.testing.assert_allclose(sampler.probabilities, expected, rtol=1e-12)
    assert sampler.vocab_size == 7


def chi_square(observed, expected_p):
    keep = expected_p > 0
    expected = observed.sum() * expected_p[keep]
    return ((observed[keep] - expected) ** 2 / expected).sum(), keep.sum() - 1


def test_sampler_draws_follow_the_unigram_distribution():
    sampler = nn.UnigramSampler(toy_ids(), sample_size=5, vocab_size=9,
                                exclude_target=False, seed=1)
    drawn = sampler.sample(np.zeros(40_000, dtype=np.int64))  # target 0 not excluded
    observed = np.bincount(drawn.ravel(), minlength=9)
    assert observed[4] == observed[7] == observed[8] == 0  # unseen words never drawn
    statistic, dof = chi_square(observed, sampler.probabilities)
    # chi-square with 5 degrees of freedom: above 25 has probability < 0.0002
    assert statistic < 25, (statistic, observed)
    # and the test can fail: plain unigram frequencies (power 1) are far off
    assert chi_square(observed, np.append(COUNTS, [0, 0]) / COUNTS.sum())[0] > 1000


def test_sampler_excludes_the_target_with_the_renormalised_distribution():
    sampler = nn.UnigramSampler(toy_ids(), sample_size=4, seed=2)
    target = np.zeros((20_000,), dtype=np.int64)  # word 0 is the most frequent (p ≈ 0.7)
    drawn = sampler.sample(target)
    assert not np.any(drawn == 0)
    rest = sampler.probabilities.copy()
    rest[0] = 0.0
    statistic, dof = chi_square(np.bincount(drawn.ravel(), minlength=7), rest / rest.sum())
    assert dof == 4 and statistic < 23  # P(chi2_4 > 23) ≈ 0.0001
    mixed = np.array([[0, 1, 2], [3, 5, 6]])  # every target of a 2-D batch
    assert not np.any(sampler.sample(mixed) == mixed[..., None])


def test_sampler_shape_dtype_and_seed():
    ids = toy_ids()
    target = np.array([[0, 1, 2, 3], [5, 6, 0, 1], [2, 2, 2, 2]])
    a = nn.UnigramSampler(ids, sample_size=5, seed=7)
    b = nn.UnigramSampler(ids, sample_size=5, rng=np.random.default_rng(7))
    first = a.sample(target)
    assert first.shape == (3, 4, 5) and first.dtype.kind == "i"
    np.testing.assert_array_equal(first, b.sample(target))
    assert not np.array_equal(a.sample(target), first)  # the generator moves on
    other = nn.UnigramSampler(ids, sample_size=5, seed=8).sample(target)
    assert not np.array_equal(other, first)
    assert nn.UnigramSampler(ids, sample_size=2).sample(np.array([3])).shape == (1, 2)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(ids=np.array([], int)), ValueError, "non-empty"),
    (dict(ids=np.array([0, -1])), ValueError, ">= 0"),
    (dict(ids=np.array([0.0, 1.0])), TypeError, "integer word ids"),
    (dict(ids=np.array([0, 5]), vocab_size=3), ValueError, "out of range for vocab_size=3"),
    (dict(ids=np.array([0, 1]), sample_size=0), ValueError, "sample_size"),
    (dict(ids=np.array([0, 1]), power=-1), ValueError, "power"),
    (dict(ids=np.array([2, 2, 2])), ValueError, "two distinct words"),
    (dict(ids=np.array([0, 1]), seed=1, rng=np.random.default_rng()), ValueError, "not both"),
])
def test_sampler_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        nn.UnigramSampler(**kwargs)


# --------------------------------------------------------------------------- the loss
V, D, K, WINDOW = 7, 3, 3, 2


def batch(seed=0, n=4):
    """Contexts, targets and negatives with repeated ids (gradients must add up)."""
    rng = np.random.default_rng(seed)
    contexts = rng.integers(0, V, size=(n, 2 * WINDOW))
    contexts[0, :2] = 3  # the same word twice in one context
    target = rng.integers(0, V, size=n)
    return contexts, target, rng


def build(Model, dtype=np.float64, seed=0):
    model = Model(V, D, seed=seed, dtype=dtype)
    for table in (model.in_embedding.weight, model.out_embedding.weight):  # not 0.01-small
        table.data[...] = np.random.default_rng(seed + 1).standard_normal(table.shape)
    return model


@pytest.mark.parametrize("Model, negative_shape", [(nn.CBOW, (4, K)),
                                                    (nn.SkipGram, (4, 2 * WINDOW, K))])
def test_gradients_agree_with_central_differences(Model, negative_shape):
    model = build(Model)
    contexts, target, rng = batch()
    negatives = rng.integers(0, V, size=negative_shape)
    params = [model.in_embedding.weight, model.out_embedding.weight]
    report = gradcheck(lambda *_: model(contexts, target, negatives), params,
                       atol=1e-8, rtol=1e-6)
    assert report.ok, report.explain()
    assert np.abs(report.inputs[0].analytic).max() > 1e-3  # a real gradient was checked


def test_negative_sampling_loss_gradient_of_a_broadcast_hidden():
    rng = np.random.default_rng(3)
    hidden = Tensor(rng.standard_normal((4, 1, D)), requires_grad=True)
    weight = Tensor(rng.standard_normal((V, D)), requires_grad=True)
    target = rng.integers(0, V, size=(4, 5))
    negatives = rng.integers(0, V, size=(4, 5, K))
    report = gradcheck(lambda h, w: nn.negative_sampling_loss(h, target, negatives, w),
                       [hidden, weight], atol=1e-8, rtol=1e-6)
    assert report.ok, report.explain()


def test_the_loss_is_the_books_sum_of_binary_cross_entropies():
    # per target: -ln σ(w₊·h) - Σ ln σ(-w₋·h), averaged over the batch
    model = build(nn.CBOW)
    contexts, target, rng = batch(n=3)
    negatives = rng.integers(0, V, size=(3, K))
    w_in, w_out = model.in_embedding.weight.data, model.out_embedding.weight.data
    h = w_in[contexts].mean(axis=1)
    positive = np.einsum("nd,nd->n", w_out[target], h)
    negative = np.einsum("nkd,nd->nk", w_out[negatives], h)
    log_sigmoid = lambda s: -np.log1p(np.exp(-s))  # noqa: E731
    expected = -(log_sigmoid(positive) + log_sigmoid(-negative).sum(axis=1)).mean()
    assert model(contexts, target, negatives).item() == pytest.approx(expected, rel=1e-12)


def torch_book_loss(torch, model_name, w_in, w_out, contexts, target, negatives):
    """The book's layers in torch: one NegativeSamplingLoss (a mean over the batch for
    the true word and for each negative, summed) per target word; skip-gram adds one
    per context position."""
    functional = torch.nn.functional

    def negative_sampling(h, words, negative_words):
        n = len(words)
        score = (functional.embedding(words, w_out) * h).sum(dim=1)
        loss = functional.binary_cross_entropy_with_logits(score, torch.ones(n,
                                                                             dtype=h.dtype))
        for i in range(negative_words.shape[1]):
            score = (functional.embedding(negative_words[:, i], w_out) * h).sum(dim=1)
            loss = loss + functional.binary_cross_entropy_with_logits(
                score, torch.zeros(n, dtype=h.dtype))
        return loss

    if model_name == "cbow":
        h = sum(functional.embedding(contexts[:, i], w_in) for i in range(contexts.shape[1]))
        return negative_sampling(h / contexts.shape[1], target, negatives)
    h = functional.embedding(target, w_in)
    return sum(negative_sampling(h, contexts[:, i], negatives[:, i])
               for i in range(contexts.shape[1]))


@pytest.mark.parametrize("Model, name", [(nn.CBOW, "cbow"), (nn.SkipGram, "skipgram")])
def test_loss_and_gradients_match_torch(Model, name):
    torch = pytest.importorskip("torch")
    model = build(Model, seed=4)
    contexts, target, rng = batch(seed=5, n=6)
    shape = (6, K) if name == "cbow" else (6, 2 * WINDOW, K)
    negatives = rng.integers(0, V, size=shape)
    loss = model(contexts, target, negatives)
    loss.backward()
    w_in = torch.tensor(model.in_embedding.weight.data, requires_grad=True)
    w_out = torch.tensor(model.out_embedding.weight.data, requires_grad=True)
    theirs = torch_book_loss(torch, name, w_in, w_out, torch.tensor(contexts),
                             torch.tensor(target), torch.tensor(negatives))
    theirs.backward()
    assert loss.item() == pytest.approx(theirs.item(), rel=1e-12)
    for ours, their in [(model.in_embedding.weight, w_in), (model.out_embedding.weight, w_out)]:
        np.testing.assert_allclose(ours.grad.data, their.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_model_draws_negatives_from_its_sampler_and_checks_its_inputs():
    ids = np.arange(V).repeat(3)
    model = nn.CBOW(V, D, nn.UnigramSampler(ids, sample_size=K, seed=0), seed=0)
    contexts, target, _ = batch()
    loss = model(contexts, target)
    # Adam's first step needs gradients for both tables; float32 throughout
    assert loss.dtype == np.float32 and loss.item() == pytest.approx((1 + K) * np.log(2),
                                                                      rel=1e-3)
    with pytest.raises(ValueError, match=r"contexts of shape \(N, 2·window\)"):
        model(contexts[:, 0], target)
    with pytest.raises(ValueError, match=r"target of shape \(N,\)"):
        model(contexts, target[:2])
    with pytest.raises(ValueError, match=r"target.shape \+ \(k,\)"):
        model(contexts, target, negatives=np.zeros((3, K), int))
    with pytest.raises(ValueError, match="without a sampler"):
        nn.SkipGram(V, D)(contexts, target)
    with pytest.raises(ValueError, match="draws from 7 words but the model has vocab_size=5"):
        nn.CBOW(5, D, nn.UnigramSampler(ids))
    assert "vocab_size=7, embedding_dim=3" in repr(model)


# --------------------------------------------------------------------------- training
def toy_language(sentences=600, seed=0):
    """Sentences in which cat/dog, car/bus and apple/pear fill the same slots."""
    rng = np.random.default_rng(seed)
    templates = [["the", "A", "barks", "at", "night"], ["i", "drive", "the", "B", "fast"],
                 ["we", "eat", "a", "C", "slowly"]]
    fillers = {"A": ["cat", "dog"], "B": ["car", "bus"], "C": ["apple", "pear"]}
    tokens = []
    for t in rng.integers(0, 3, size=sentences):
        tokens += [str(rng.choice(fillers[w])) if w in fillers else w for w in templates[t]]
        tokens.append("<eos>")
    words = list(dict.fromkeys(tokens))
    return np.array([words.index(w) for w in tokens]), words


# skip-gram's loss stays higher: a word's neighbours are less certain than a gap's filler
# (measured over seeds 0-5: CBOW ends at 0.17-0.24 of its first loss, skip-gram 0.56-0.59)
@pytest.mark.parametrize("Model, fall", [(nn.CBOW, 0.4), (nn.SkipGram, 0.7)])
def test_training_lowers_the_loss_and_pairs_words_of_the_same_slot(Model, fall):
    ids, words = toy_language()
    contexts, target = nn.contexts_and_targets(ids, window_size=2)
    model = Model(len(words), 8, nn.UnigramSampler(ids, sample_size=3, seed=0), seed=0)
    optimizer = optim.Adam(model.parameters(), lr=0.05)
    order = np.random.default_rng(0).permutation(len(target))
    losses = []
    for _ in range(3):  # epochs
        for start in range(0, len(target), 50):
            rows = order[start:start + 50]
            loss = model(contexts[rows], target[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    assert np.mean(losses[-10:]) < fall * np.mean(losses[:10])
    for word, partner in [("cat", "dog"), ("car", "bus"), ("pear", "apple")]:
        nearest = nn.most_similar(word, model.word_vectors, words, top=3)
        assert nearest[0][0] == partner, (word, nearest)


# --------------------------------------------------------------------------- queries
WORDS = ["king", "queen", "man", "woman", "apple"]
VECTORS = np.array([[3.0, 1.0, 0.0],    # king: royal + male
                    [3.0, -1.0, 0.0],   # queen: royal + female
                    [0.0, 1.0, 0.2],    # man
                    [0.0, -1.0, 0.2],   # woman
                    [-1.0, 0.0, 2.0]])  # apple


def cosine(u, v):
    return u @ v / np.linalg.norm(u) / np.linalg.norm(v)


def test_most_similar_ranks_by_cosine_and_leaves_out_the_query():
    found = nn.most_similar("king", VECTORS, WORDS, top=3)
    expected = sorted(((w, cosine(VECTORS[0], v)) for w, v in zip(WORDS[1:], VECTORS[1:])),
                      key=lambda pair: -pair[1])[:3]
    assert [w for w, _ in found] == [w for w, _ in expected] == ["queen", "man", "woman"]
    np.testing.assert_allclose([s for _, s in found], [s for _, s in expected], rtol=1e-12)
    assert all(isinstance(s, float) for _, s in found)
    # top larger than what is left: every other word once
    assert len(nn.most_similar("king", VECTORS, WORDS, top=50)) == 4


def test_analogy_adds_unit_vectors_and_leaves_out_the_three_words():
    # man : king = woman : ?  →  king - man + woman
    found = nn.analogy("man", "king", "woman", VECTORS, WORDS, top=2)
    unit = VECTORS / np.linalg.norm(VECTORS, axis=1, keepdims=True)
    query = unit[0] - unit[2] + unit[3]
    assert found[0][0] == "queen" and found[1][0] == "apple"
    assert found[0][1] == pytest.approx(cosine(query, VECTORS[1]), rel=1e-12)
    assert found[1][1] == pytest.approx(cosine(query, VECTORS[4]), rel=1e-12)


class Vocab:
    """Like chainrule.datasets' Vocabulary: an object with an id_to_word list."""

    id_to_word = WORDS


@pytest.mark.parametrize("vocabulary", [WORDS, tuple(WORDS), np.array(WORDS),
                                        {w: i for i, w in enumerate(WORDS)}, Vocab()])
def test_queries_accept_any_form_of_vocabulary_and_tensors(vocabulary):
    vectors = Tensor(VECTORS.astype(np.float32))
    [(word, similarity)] = nn.most_similar("queen", vectors, vocabulary, top=1)
    assert word == "king" and type(word) is str and type(similarity) is float
    assert nn.analogy("man", "woman", "king", vectors, vocabulary, top=1)[0][0] == "queen"


def test_query_errors():
    with pytest.raises(KeyError, match=r"'kings' is not in the vocabulary of 5 words; "
                                       r"did you mean 'king'"):
        nn.most_similar("kings", VECTORS, WORDS)
    with pytest.raises(KeyError, match="'banana' is not in the vocabulary"):
        nn.analogy("man", "king", "banana", VECTORS, WORDS)
    with pytest.raises(ValueError, match=r"\(5, D\) matrix, got shape \(4, 3\)"):
        nn.most_similar("king", VECTORS[:4], WORDS)
    with pytest.raises(TypeError, match="vocabulary must be"):
        nn.most_similar("king", VECTORS, "king queen man woman apple")
    with pytest.raises(ValueError, match="each id once"):
        nn.most_similar("king", VECTORS, {"king": 0, "queen": 0, "man": 2, "woman": 3,
                                          "apple": 4})
    with pytest.raises(ValueError, match="top must be a positive int"):
        nn.most_similar("king", VECTORS, WORDS, top=0)


# --------------------------------------------------------------------------- the example
PTB_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "ptb"


@pytest.mark.skipif(not (PTB_DIR / "ptb.train.txt.gz").is_file(),
                    reason=f"real Penn Treebank files not found in {PTB_DIR}")
def test_example_trains_saves_and_answers(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    example = runpy.run_path(str(EXAMPLE), run_name="example")
    results = example["main"](str(PTB_DIR), epochs=2, vectors_path=str(tmp_path / "v.npz"),
                              max_words=3000, print_every=10)
    out = capsys.readouterr().out
    assert "[query] toyota" in out and "[analogy] good : better = bad : ?" in out
    saved = np.load(tmp_path / "v.npz")
    assert saved["word_vectors"].shape == (10_000, 100) and saved["words"][0] == "aer"
    assert len(results["epoch_losses"]) == 2 and len(results["analogy"]) == 4
    assert results["epoch_losses"][1] < results["epoch_losses"][0]
