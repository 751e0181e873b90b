"""The recurrent language model: shapes, the carried state, tied weights, gradients,
learning, and text generation."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule.functional as F
from chainrule import gradcheck, nn, optim
from chainrule.nn.language_models import generate, sample_next


def small_lm(**kwargs):
    settings = dict(vocab_size=11, embedding_dim=6, hidden_size=6, seed=0)
    return nn.RNNLM(**{**settings, **kwargs})


def test_logits_have_a_score_for_every_word_at_every_step():
    model = small_lm(num_layers=2)
    ids = np.random.default_rng(0).integers(0, 11, (3, 5))
    assert model(ids).shape == (3, 5, 11)
    with pytest.raises(ValueError, match=r"shape \(batch, time\)"):
        model(np.arange(4))


def test_state_carries_over_detached_until_reset():
    """Window 2 after window 1 gives what window 1+2 read at once gives; its gradient
    stops at the window's edge; reset_state starts afresh."""
    model = small_lm().double()
    ids = np.random.default_rng(1).integers(0, 11, (2, 8))
    whole = model(ids).data
    model.reset_state()
    model(ids[:, :5])
    second = model(ids[:, 5:])
    np.testing.assert_allclose(second.data, whole[:, 5:], rtol=1e-12)
    assert not model.state[0].requires_grad and model.state[0].creator is None
    model.reset_state()
    fresh = small_lm().double()  # the same weights, never called
    np.testing.assert_allclose(model(ids[:, 5:]).data, fresh(ids[:, 5:]).data, rtol=1e-12)
    with pytest.raises(ValueError, match="call reset_state"):
        model(ids[:1])


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_gradients_match_central_differences(cell):
    model = small_lm(cell=cell, num_layers=2, tie_weights=True).double()
    ids = np.random.default_rng(2).integers(0, 11, (2, 4))
    targets = np.random.default_rng(3).integers(0, 11, (2, 4))

    def loss(*_):
        model.reset_state()
        return F.cross_entropy(model(ids), targets)

    report = gradcheck(loss, list(model.parameters()))
    assert report.ok, report.explain()


def test_tied_weights_share_the_embedding():
    tied, untied = small_lm(tie_weights=True), small_lm()
    assert not hasattr(tied, "decoder")
    assert untied.num_parameters() - tied.num_parameters() == 6 * 11
    F.cross_entropy(tied(np.array([[1, 2, 3]])), np.array([[2, 3, 4]])).backward()
    # the output layer's gradient reaches rows of the table no input used
    assert np.abs(tied.embedding.weight.grad.data[7]).sum() > 0
    with pytest.raises(ValueError, match="hidden_size == embedding_dim"):
        nn.RNNLM(11, embedding_dim=6, hidden_size=8, tie_weights=True)


def test_dropout_only_in_training():
    model = small_lm(num_layers=2, dropout=0.5).double()
    ids = np.random.default_rng(4).integers(0, 11, (2, 5))
    model.eval()
    a = model(ids).data
    model.reset_state()
    np.testing.assert_array_equal(a, model(ids).data)
    model.train()
    model.reset_state()
    assert not np.allclose(a, model(ids).data)


def test_a_tiny_language_model_learns_a_repeating_text():
    """"a b c d e" over and over: after training, each next word is predicted."""
    from chainrule.data import BPTTLoader
    from chainrule.train import fit

    stream = np.tile(np.arange(5), 200)
    model = nn.RNNLM(5, embedding_dim=8, hidden_size=16, seed=0)
    loader = BPTTLoader(stream, batch_size=4, bptt=10)
    history = fit(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=0.02),
                  loader, epochs=6, metrics=("perplexity",), progress=False,
                  clip_grad_norm=1.0)
    assert history.train_perplexity[-1] < 1.2 < history.train_perplexity[0]
    assert generate(model, [0, 1], 6, greedy=True) == [2, 3, 4, 0, 1, 2]


def test_greedy_generation_with_the_carried_state_equals_rereading_everything():
    """One token at a time with the state carried gives what re-reading the whole text
    every step gives (the path a Transformer takes)."""
    model = small_lm(num_layers=2).double()
    carried = generate(model, [3, 1, 4], 8, greedy=True)

    class Stateless(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, ids):
            self.inner.reset_state()
            return self.inner(ids)

    assert generate(Stateless(model), [3, 1, 4], 8, greedy=True) == carried
    assert model.training  # the mode is restored


def test_sampling_follows_the_softmax_and_its_cuts():
    logits = np.log(np.array([0.1, 0.2, 0.3, 0.4]))
    rng = np.random.default_rng(0)
    draws = np.bincount([sample_next(logits, rng=rng) for _ in range(4000)], minlength=4)
    np.testing.assert_allclose(draws / 4000, [0.1, 0.2, 0.3, 0.4], atol=0.03)
    top2 = {sample_next(logits, top_k=2, rng=rng) for _ in range(300)}
    assert top2 == {2, 3}
    cold = np.bincount([sample_next(logits, temperature=0.1, rng=rng) for _ in range(300)],
                       minlength=4)
    assert cold[3] > 250  # a low temperature sharpens towards the arg-max
    assert sample_next(logits, greedy=True) == 3
    with pytest.raises(ValueError, match="temperature must be positive"):
        sample_next(logits, temperature=0)
    with pytest.raises(ValueError, match="top_k must be a positive int"):
        sample_next(logits, top_k=0)


def test_generation_skips_words_and_checks_its_arguments():
    model = small_lm()
    produced = generate(model, [1], 30, skip=[0, 5], seed=0)
    assert len(produced) == 30 and not {0, 5} & set(produced)
    with pytest.raises(ValueError, match="prompt"):
        generate(model, [], 3)
    with pytest.raises(ValueError, match="steps"):
        generate(model, [1], -1)
