"""The encoder-decoders: shapes, gradients, attention, greedy decoding and learning."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule.functional as F
from chainrule import datasets, gradcheck, nn, optim
from chainrule.tensor import Tensor

V, TQ, TA = 7, 5, 4


def tiny(kind: str, seed: int = 0) -> nn.Module:
    """A small float64 model with weights large enough for every path to matter."""
    model = nn.AttentionSeq2Seq(V, 3, 4, seed=seed) if kind == "attention" else \
        nn.Seq2Seq(V, 3, 4, peeky=kind == "peeky", seed=seed)
    model = model.double()
    rng = np.random.default_rng(seed)
    for param in model.parameters():
        param.data[...] = rng.normal(0.0, 0.5, param.shape)
    return model


def batch(seed: int = 1, n: int = 3):
    rng = np.random.default_rng(seed)
    return rng.integers(0, V, (n, TQ)), rng.integers(0, V, (n, TA))


@pytest.mark.parametrize("kind", ["plain", "peeky", "attention"])
def test_logits_and_answers_have_the_right_shapes(kind):
    model = tiny(kind)
    questions, answers = batch()
    assert model(questions, answers[:, :-1]).shape == (3, TA - 1, V)
    answer = model.generate(questions, start_id=2, length=6)
    assert answer.shape == (3, 6) and answer.dtype == np.int64
    assert model.training  # generate leaves the mode as it found it
    if kind == "attention":
        assert model.attention_weights.shape == (3, 6, TQ)
    else:
        assert model.attention_weights is None
    with pytest.raises(ValueError, match=r"shape \(batch, time\)"):
        model(questions[0], answers)
    with pytest.raises(ValueError, match="2 rows but the questions 3"):
        model(questions, answers[:2])
    with pytest.raises(ValueError, match="length must be a positive int"):
        model.generate(questions, 2, 0)
    with pytest.raises(ValueError, match="start_id"):
        model.generate(questions, V, 3)


def test_the_books_layers_and_initial_weights():
    plain, peeky = nn.Seq2Seq(13, seed=0), nn.Seq2Seq(13, peeky=True, seed=0)
    attention = nn.AttentionSeq2Seq(13, seed=0)
    assert (plain.hidden_size, attention.hidden_size, plain.wordvec_size) == (128, 256, 16)
    # peeky: h joins the decoder's input (16 + 128) and the output layer's (128 + 128)
    assert peeky.decoder.input_size == 144 and peeky.output.in_features == 256
    assert plain.decoder.input_size == 16 and plain.output.in_features == 128
    assert attention.output.in_features == 512  # concat(context, h)
    assert np.std(peeky.encoder_embedding.weight.data) == pytest.approx(0.01, rel=0.15)
    assert np.std(peeky.decoder.weight_ih_l0.data) == pytest.approx(144 ** -0.5, rel=0.05)
    assert np.std(peeky.output.weight.data) == pytest.approx(256 ** -0.5, rel=0.05)
    assert not peeky.decoder.bias_ih_l0.data.any() and not peeky.output.bias.data.any()
    same = nn.Seq2Seq(13, peeky=True, seed=0)
    assert all((a.data == b.data).all() for a, b in zip(peeky.parameters(),
                                                         same.parameters()))


@pytest.mark.parametrize("kind", ["plain", "peeky", "attention"])
def test_gradients_match_central_differences(kind):
    model = tiny(kind)
    questions, answers = batch()

    def loss(*_):
        return F.cross_entropy(model(questions, answers[:, :-1]), answers[:, 1:])

    report = gradcheck(loss, list(model.parameters()))
    assert report.ok, report.explain()


def test_luong_attention_matches_torch_and_its_weights_sum_to_one(torch):
    rng = np.random.default_rng(5)
    queries, states = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 6, 4))
    q, s = Tensor(queries, requires_grad=True), Tensor(states, requires_grad=True)
    context, weights = nn.luong_attention(q, s)
    tq = torch.tensor(queries, requires_grad=True)
    ts = torch.tensor(states, requires_grad=True)
    t_weights = torch.softmax(tq @ ts.transpose(1, 2), dim=-1)
    t_context = t_weights @ ts
    np.testing.assert_allclose(weights.data, t_weights.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(context.data, t_context.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(weights.data.sum(axis=-1), 1.0, rtol=1e-12)
    g = rng.standard_normal(context.shape)
    (context * Tensor(g)).sum().backward()
    (t_context * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(q.grad.data, tq.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(s.grad.data, ts.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_the_attention_model_reads_context_and_state_and_exposes_its_weights():
    model = tiny("attention")
    questions, answers = batch()
    logits = model(questions, answers[:, :-1])
    weights = model.attention_weights
    assert weights.shape == (3, TA - 1, TQ)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-12)
    # by hand: the decoder's states, the weights over the encoder's, the output layer
    hs_enc, h = model.encode(questions)
    x = model.decoder_embedding(answers[:, :-1])
    hs, _ = model.decoder(x, (F.unsqueeze(h, 0), F.unsqueeze(h, 0) * 0))
    scores = np.einsum("nth,nsh->nts", hs.data, hs_enc.data)
    expected = np.exp(scores - scores.max(-1, keepdims=True))
    expected /= expected.sum(-1, keepdims=True)
    np.testing.assert_allclose(weights, expected, rtol=1e-10)
    context = np.einsum("nts,nsh->nth", expected, hs_enc.data)
    by_hand = np.concatenate([context, hs.data], -1) @ model.output.weight.data \
        + model.output.bias.data
    np.testing.assert_allclose(logits.data, by_hand, rtol=1e-10)


@pytest.fixture(scope="module")
def sums():
    """Every sum of two one-digit numbers (55 questions, each twice), as ids."""
    return datasets.sequence_pairs(datasets.addition_lines(55, digits=1, seed=0) * 2,
                                   test_fraction=0.1)


@pytest.fixture(scope="module", params=["plain", "peeky", "attention"])
def trained(request, sums):
    """A model of each kind trained for 150 steps (a fraction of a second) on the sums."""
    kind, vocab = request.param, len(sums.vocabulary)
    model = nn.AttentionSeq2Seq(vocab, 16, 48, seed=0) if kind == "attention" else \
        nn.Seq2Seq(vocab, 16, 48, peeky=kind == "peeky", seed=0)
    opt = optim.Adam(model.parameters(), lr=0.01)
    questions, answers = sums.x_train, sums.t_train
    rng = np.random.default_rng(0)
    for _ in range(150):
        rows = rng.choice(len(questions), 32, replace=False)
        q, a = questions[rows], answers[rows]
        loss = F.cross_entropy(model(q, a[:, :-1]), a[:, 1:])
        opt.zero_grad()
        loss.backward()
        optim.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
    return kind, model


def test_learns_the_sums_of_one_digit_numbers(trained, sums):
    kind, model = trained
    questions, answers = sums.x_train, sums.t_train
    guesses = model.generate(questions, sums.start_id, answers.shape[1] - 1)
    exact = (guesses == answers[:, 1:]).all(axis=1).mean()
    assert exact > 0.95, (kind, exact, sums.decode(guesses[:5]))


def test_greedy_answers_are_the_argmax_path_of_teacher_forcing(trained, sums):
    """Fed its own greedy answer (after the start symbol), the decoder's logits pick
    that same answer at every step, with the same attention."""
    _, model = trained
    questions = sums.x_test
    answer = model.generate(questions, sums.start_id, length=5)  # longer than trained
    during = model.attention_weights
    assert len(np.unique(answer[:, 0])) > 3  # different answers to different questions
    start = np.full((len(questions), 1), sums.start_id)
    inputs = np.concatenate([start, answer[:, :-1]], axis=1)
    np.testing.assert_array_equal(model(questions, inputs).data.argmax(-1), answer)
    if during is not None:
        np.testing.assert_allclose(model.attention_weights, during, rtol=1e-5, atol=1e-7)
