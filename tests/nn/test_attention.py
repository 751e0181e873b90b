"""Attention: dot_product_attention against central differences and torch, masks (blocked
positions get exactly zero weight, a fully blocked query outputs zeros),
MultiheadAttention and the Transformer block against torch with the parameters loaded
from torch's state dicts, TransformerLM (causality, gradients, learning, generation),
and the explain trace of a tiny attention."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule
import chainrule.functional as F
from chainrule import Tensor, gradcheck, nn, optim
from chainrule.nn.attention import causal_mask, dot_product_attention

torch = pytest.importorskip("torch")

E, H = 6, 2  # embedding width and heads of the small attention layers below


def array(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def leaf(*shape, seed=0):
    return Tensor(array(*shape, seed=seed), requires_grad=True)


def close(ours, theirs, err_msg=""):
    ours = ours.data if isinstance(ours, Tensor) else ours
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-9, atol=1e-11,
                               err_msg=err_msg)


def check_parameter_grads(ours: nn.Module, theirs, transposed=("in_proj_weight", "weight")):
    """Every parameter's gradient equals torch's (2-D weights compared transposed: here
    (in, out), in torch (out, in))."""
    theirs = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        expected = theirs[name].grad
        got = p.grad.data
        if got.ndim == 2 and name.endswith(transposed):
            got = got.T
        close(got, expected, err_msg=f"gradient of {name}")


# --------------------------------------------------------------------------- functions
def test_causal_mask_blocks_the_future():
    np.testing.assert_array_equal(causal_mask(3), [[0, 1, 1], [0, 0, 1], [0, 0, 0]])
    assert causal_mask(2, 4).tolist() == [[False, True, True, True],
                                          [False, False, True, True]]
    with pytest.raises(ValueError, match="length must be a positive int"):
        causal_mask(0)


@pytest.mark.parametrize("mask", ["none", "causal", "float", "padding-broadcast",
                                  "fully-blocked-row"])
def test_dot_product_attention_gradients_match_central_differences(mask):
    q, k, v = leaf(2, 2, 3, 4, seed=0), leaf(2, 2, 5, 4, seed=1), leaf(2, 2, 5, 3, seed=2)
    masks = {
        "none": None,
        "causal": causal_mask(3, 5),
        "float": array(3, 5, seed=3),
        "padding-broadcast": np.array([[False] * 4 + [True], [False] * 2 + [True] * 3]
                                      ).reshape(2, 1, 1, 5),
        "fully-blocked-row": np.array([[False] * 5, [True] * 5, [False, True] * 2 + [False]]),
    }
    weights_seen = np.random.default_rng(4).standard_normal((2, 2, 3, 5))

    def f(q, k, v):
        out, weights = dot_product_attention(q, k, v, masks[mask])
        return (out * out).sum() + (weights * weights_seen).sum()

    report = gradcheck(f, [q, k, v])
    assert report.ok, report.explain()


def test_blocked_positions_get_exactly_zero_weight_and_gradient():
    q, k, v = leaf(1, 3, 4), leaf(1, 3, 4, seed=1), leaf(1, 3, 2, seed=2)
    blocked = np.array([[False, True, True], [True, True, True], [False, False, True]])
    out, weights = dot_product_attention(q * 1e3, k, v, blocked)  # large scores: no help
    assert np.all(weights.data[0][blocked] == 0.0)
    np.testing.assert_allclose(weights.data[0].sum(-1), [1, 0, 1], rtol=1e-12)
    # the query that may attend to nothing outputs zeros (torch's MultiheadAttention: NaN)
    np.testing.assert_array_equal(out.data[0, 1], [0, 0])
    (out.sum() + weights.sum()).backward()
    for t in (q, k, v):
        assert np.all(np.isfinite(t.grad.data))
    np.testing.assert_array_equal(q.grad.data[0, 1], 0)  # no gradient from an empty row
    np.testing.assert_array_equal(v.grad.data[0, 2], 0)  # nobody attends to key 2
    # a float mask's -inf blocks the same way
    additive = np.where(blocked, -np.inf, 0.0)
    out_float, weights_float = dot_product_attention(q * 1e3, k, v, additive)
    np.testing.assert_array_equal(weights_float.data, weights.data)
    np.testing.assert_array_equal(out_float.data, out.data)


def test_dot_product_attention_equals_torch_scaled_dot_product_attention():
    """torch's boolean masks mean the opposite (True: may attend); a fully blocked row
    gives zeros in both; dropout aside, the outputs and gradients agree."""
    q, k, v = leaf(2, 3, 4, 5), leaf(2, 3, 6, 5, seed=1), leaf(2, 3, 6, 2, seed=2)
    blocked = np.random.default_rng(3).random((4, 6)) > 0.6
    blocked[2] = True
    out, _ = dot_product_attention(q, k, v, blocked, scale=0.3)
    tq, tk, tv = (torch.tensor(t.data, requires_grad=True) for t in (q, k, v))
    expected = torch.nn.functional.scaled_dot_product_attention(
        tq, tk, tv, attn_mask=torch.tensor(~blocked), scale=0.3)
    close(out, expected)
    g = array(*out.shape, seed=4)
    out.backward(g)
    expected.backward(torch.tensor(g))
    for ours, theirs in zip((q, k, v), (tq, tk, tv)):
        close(ours.grad, theirs.grad)


def test_attention_dropout_drops_weights_and_rescales_the_rest():
    q, k, v = leaf(4, 8, 3), leaf(4, 8, 3, seed=1), leaf(4, 8, 3, seed=2)
    _, kept = dot_product_attention(q, k, v)
    _, dropped = dot_product_attention(q, k, v, dropout_p=0.5,
                                       rng=np.random.default_rng(0))
    zero = dropped.data == 0
    assert 0.3 < zero.mean() < 0.7
    np.testing.assert_allclose(dropped.data[~zero], 2 * kept.data[~zero], rtol=1e-12)


def test_attention_errors_name_the_shapes():
    q = leaf(2, 3, 4)
    with pytest.raises(ValueError, match=r"query \(\.\.\., L, d\).*\(2, 3, 4\), \(2, 3, 5\)"):
        dot_product_attention(q, leaf(2, 3, 5), leaf(2, 3, 5))
    with pytest.raises(ValueError, match=r"mask of shape \(4, 3\) does not broadcast"):
        dot_product_attention(q, q, q, np.zeros((4, 3), bool))
    with pytest.raises(TypeError, match="boolean .* or float"):
        dot_product_attention(q, q, q, np.zeros((3, 3), int))


# --------------------------------------------------------------------------- MultiheadAttention
def mha_pair(bias=True, batch_first=False, dropout=0.0):
    """torch's MultiheadAttention (float64, non-zero biases) and ours with its state dict."""
    torch.manual_seed(0)
    theirs = torch.nn.MultiheadAttention(E, H, dropout=dropout, bias=bias,
                                         batch_first=batch_first).double()
    with torch.no_grad():
        for p in theirs.parameters():
            if p.ndim == 1:
                p.normal_()
    ours = nn.MultiheadAttention(E, H, dropout=dropout, bias=bias, batch_first=batch_first,
                                 dtype=np.float64)
    ours.load_torch_state_dict(theirs.state_dict())
    return ours, theirs


N, L, S = 3, 4, 5
_RNG = np.random.default_rng(10)
# padding: key 0 stays open, so that no query is left without a key (torch: NaN there)
_PADDING = np.array([[False] * 5, [False, False, True, True, True], [False, True] + [False] * 3])
_FLOAT_MASK = np.where(_RNG.random((L, S)) > 0.8, -np.inf, _RNG.standard_normal((L, S)))
_FLOAT_MASK[:, 0] = 0.0  # no query is left without a key
MHA_CASES = {  # id: (keyword arguments, cross-attention, query length)
    "self-causal-bool": (dict(attn_mask=causal_mask(L)), False, L),
    "self-causal-hint": (dict(attn_mask=causal_mask(L), is_causal=True), False, L),
    "self-padding-bool": (dict(key_padding_mask=_PADDING[:, :L]), False, L),
    "self-padding-float": (dict(key_padding_mask=np.where(_PADDING[:, :L], -np.inf, 0.5)),
                           False, L),
    "self-both-bool": (dict(attn_mask=causal_mask(L), key_padding_mask=_PADDING[:, :L]),
                       False, L),
    "cross-float-mask": (dict(attn_mask=_FLOAT_MASK), True, L),
    "cross-per-head-mask": (dict(attn_mask=(_RNG.random((N * H, L, S)) > 0.7)
                                 & ~np.eye(L, S, dtype=bool)), True, L),
    "cross-padding": (dict(key_padding_mask=_PADDING), True, L),
    "cross-mixed-masks": (dict(attn_mask=_FLOAT_MASK, key_padding_mask=_PADDING), True, L),
    "cross-weights-per-head": (dict(average_attn_weights=False, key_padding_mask=_PADDING),
                               True, L),
    "cross-no-weights": (dict(need_weights=False), True, L),
}


@pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask")  # torch's
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("case", MHA_CASES)
def test_multihead_attention_matches_torch(case, batch_first):
    kwargs, cross, length = MHA_CASES[case]
    ours, theirs = mha_pair(batch_first=batch_first)
    shape_q = (N, length, E) if batch_first else (length, N, E)
    shape_kv = (N, S, E) if batch_first else (S, N, E)
    q = leaf(*shape_q)
    k, v = (leaf(*shape_kv, seed=1), leaf(*shape_kv, seed=2)) if cross else (q, q)
    out, weights = ours(q, k, v, **kwargs)
    tq = torch.tensor(q.data, requires_grad=True)
    tk, tv = ((torch.tensor(k.data, requires_grad=True), torch.tensor(v.data,
                                                                       requires_grad=True))
              if cross else (tq, tq))
    t_kwargs = {name: torch.tensor(value) if isinstance(value, np.ndarray) else value
                for name, value in kwargs.items()}
    t_out, t_weights = theirs(tq, tk, tv, **t_kwargs)
    close(out, t_out)
    loss, t_loss = (out * array(*out.shape, seed=5)).sum(), \
        (t_out * torch.tensor(array(*out.shape, seed=5))).sum()
    if t_weights is None:
        assert weights is None
    else:
        close(weights, t_weights)
        loss = loss + (weights * array(*weights.shape, seed=6)).sum()
        t_loss = t_loss + (t_weights * torch.tensor(array(*weights.shape, seed=6))).sum()
    loss.backward()
    t_loss.backward()
    for ours_in, theirs_in in ((q, tq), (k, tk), (v, tv))[:3 if cross else 1]:
        close(ours_in.grad, theirs_in.grad)
    check_parameter_grads(ours, theirs)


def test_unbatched_input_and_no_bias_match_torch():
    ours, theirs = mha_pair(bias=False)
    assert ours.in_proj_bias is None and ours.out_proj.bias is None
    q, kv = leaf(L, E), leaf(S, E, seed=1)
    mask = _PADDING[1]
    out, weights = ours(q, kv, kv, key_padding_mask=mask, average_attn_weights=False)
    tq, tkv = torch.tensor(q.data, requires_grad=True), torch.tensor(kv.data,
                                                                      requires_grad=True)
    t_out, t_weights = theirs(tq, tkv, tkv, key_padding_mask=torch.tensor(mask),
                              average_attn_weights=False)
    assert out.shape == (L, E) and weights.shape == (H, L, S)
    close(out, t_out)
    close(weights, t_weights)
    out.sum().backward()
    t_out.sum().backward()
    close(q.grad, tq.grad)
    close(kv.grad, tkv.grad)
    check_parameter_grads(ours, theirs)


def test_attention_dropout_only_in_training():
    ours, _ = mha_pair(dropout=0.5)
    x = array(2, 4, E)
    train_out = ours(x, x, x)[0].data
    ours.eval()
    a, b = ours(x, x, x)[0].data, ours(x, x, x)[0].data
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, train_out)


def test_multihead_attention_errors():
    with pytest.raises(ValueError, match=r"embed_dim \(6\) must be divisible by num_heads "
                                         r"\(4\)"):
        nn.MultiheadAttention(6, 4)
    mha = nn.MultiheadAttention(E, H, batch_first=True)
    x = array(2, 4, E)
    with pytest.raises(ValueError, match=r"query must have shape \(N, L, E\).*E = embed_dim"
                                         r" = 6, got \(2, 4, 5\)"):
        mha(array(2, 4, 5), x, x)
    with pytest.raises(ValueError, match="key and value must have the same shape"):
        mha(x, x, array(2, 3, E))
    with pytest.raises(ValueError, match="batch of 2, the key and value 3"):
        mha(x, array(3, 4, E), array(3, 4, E))
    with pytest.raises(ValueError, match=r"attn_mask must have shape \(L, S\) = \(4, 4\) or "
                                         r"\(2·2, 4, 4\).*got \(3, 4\)"):
        mha(x, x, x, attn_mask=np.zeros((3, 4), bool))
    with pytest.raises(ValueError, match=r"key_padding_mask must have shape \(N, S\) = "
                                         r"\(2, 4\).*got \(4, 2\)"):
        mha(x, x, x, key_padding_mask=np.zeros((4, 2), bool))


# --------------------------------------------------------------------------- block
@pytest.mark.parametrize("norm_first", [True, False])
def test_transformer_block_matches_torch_encoder_layer(norm_first):
    torch.manual_seed(1)
    theirs = torch.nn.TransformerEncoderLayer(E, H, dim_feedforward=10, dropout=0.0,
                                              activation="gelu", batch_first=True,
                                              norm_first=norm_first).double()
    with torch.no_grad():  # non-trivial layer-norm scales and shifts
        for name, p in theirs.named_parameters():
            if name.startswith("norm"):
                p.copy_(torch.randn_like(p) * 0.3 + (1.0 if name.endswith("weight") else 0))
    ours = nn.TransformerBlock(E, H, dim_feedforward=10, dropout=0.0, norm_first=norm_first,
                               dtype=np.float64)
    ours.load_torch_state_dict(theirs.state_dict())
    x = leaf(N, L, E)
    mask = causal_mask(L)
    y = ours(x, src_mask=mask, src_key_padding_mask=_PADDING[:, :L])
    tx = torch.tensor(x.data, requires_grad=True)
    ty = theirs(tx, src_mask=torch.tensor(mask),
                src_key_padding_mask=torch.tensor(_PADDING[:, :L]))
    close(y, ty)
    g = array(*y.shape, seed=7)
    y.backward(g)
    ty.backward(torch.tensor(g))
    close(x.grad, tx.grad)
    check_parameter_grads(ours, theirs)
    np.testing.assert_array_equal(ours(x, is_causal=True).data, ours(x, src_mask=mask).data)


def test_positional_embedding_adds_a_learnt_vector_per_position():
    pos = nn.PositionalEmbedding(5, 3, seed=0)
    x = np.zeros((2, 4, 3), np.float32)
    np.testing.assert_array_equal(pos(x).data[1], pos.weight.data[:4])
    with pytest.raises(ValueError, match="6 positions is longer than the 5"):
        pos(np.zeros((1, 6, 3)))


# --------------------------------------------------------------------------- TransformerLM
def tiny_lm(**kwargs):
    settings = dict(vocab_size=7, d_model=4, nhead=2, num_layers=2, context=5, dropout=0.0,
                    seed=0)
    return nn.TransformerLM(**{**settings, **kwargs})


def test_transformer_lm_is_causal_and_bounded_by_its_context():
    model = tiny_lm().double()
    ids = np.array([[1, 2, 3, 4, 5], [6, 5, 4, 3, 2]])
    logits = model(ids)
    assert logits.shape == (2, 5, 7)
    changed = ids.copy()
    changed[:, 3] = 0  # a later token cannot change the earlier predictions
    np.testing.assert_array_equal(model(changed).data[:, :3], logits.data[:, :3])
    assert not np.allclose(model(changed).data[:, 3:], logits.data[:, 3:])
    with pytest.raises(ValueError, match="at most context=5 tokens.*got 6.*only the last 5"):
        model(np.zeros((1, 6), int))
    with pytest.raises(ValueError, match=r"shape \(batch, time\)"):
        model(np.arange(3))


@pytest.mark.parametrize("tie_weights", [True, False])
def test_transformer_lm_gradients_match_central_differences(tie_weights):
    model = tiny_lm(num_layers=1, tie_weights=tie_weights).double()
    ids, targets = np.array([[1, 2, 3, 1], [4, 4, 0, 6]]), np.array([[2, 3, 1, 5], [4, 0, 6, 6]])
    report = gradcheck(lambda *_: F.cross_entropy(model(ids), targets),
                       list(model.parameters()))
    assert report.ok, report.explain()


def test_tied_output_layer_shares_the_embedding():
    tied, untied = tiny_lm(), tiny_lm(tie_weights=False)
    assert not hasattr(tied, "decoder")
    assert untied.num_parameters() - tied.num_parameters() == 4 * 7
    F.cross_entropy(tied(np.array([[1, 2, 3]])), np.array([[2, 3, 4]])).backward()
    assert np.abs(tied.embedding.weight.grad.data[6]).sum() > 0  # a word no input used


def test_a_tiny_transformer_learns_a_repeating_text_and_continues_it():
    """"a b c d e" over and over: after training, each next word is predicted, and greedy
    generation (re-reading the last context tokens) continues the pattern."""
    stream = np.tile(np.arange(5), 40)
    starts = np.arange(0, len(stream) - 9)
    inputs = np.stack([stream[s:s + 8] for s in starts])
    targets = np.stack([stream[s + 1:s + 9] for s in starts])
    model = nn.TransformerLM(5, d_model=16, nhead=2, num_layers=1, context=8, dropout=0.0,
                             seed=0)
    optimizer = optim.AdamW(model.parameters(), lr=0.01)
    losses = []
    for step in range(60):
        batch = np.random.default_rng(step).choice(len(inputs), 16)
        loss = F.cross_entropy(model(inputs[batch]), targets[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 < 1.0 < losses[0]
    produced = nn.generate(model, [0, 1], 12, greedy=True)  # reads the last 8 (context)
    assert produced == [2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3]
    assert model.training  # generate restores the mode


# --------------------------------------------------------------------------- explain
def test_explain_shows_the_softmax_step_of_a_three_token_attention():
    q = Tensor(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), requires_grad=True,
               name="q")
    k = Tensor(np.array([[1.0, 2.0], [0.5, 0.0], [0.0, 1.0]]), requires_grad=True,
               name="k")
    v = Tensor(np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]]), requires_grad=True,
               name="v")
    out, weights = dot_product_attention(q, k, v, causal_mask(3))
    trace = chainrule.explain(out.sum())
    text = str(trace)
    softmax_steps = [s for s in trace.steps if s.node.op == "softmax"]
    assert len(softmax_steps) == 1
    assert softmax_steps[0].node.rule == "dyᵢ/dxⱼ = yᵢ(δᵢⱼ - yⱼ), so dx = y·(g - Σ g·y)"
    assert "softmax" in text and "y·(g - Σ g·y)" in text and "where" in text
    # the weights the trace shows are the causal ones: the first token sees only itself
    np.testing.assert_allclose(weights.data[0], [1, 0, 0])
    assert {"q", "k", "v"} <= set(trace.grads)
