"""Attention and the Transformer block: ``dot_product_attention``, ``causal_mask``,
``MultiheadAttention``, ``PositionalEmbedding`` and ``TransformerBlock``.

Attention lets each position of a sequence (a *query*) gather information from the
positions it is shown (the *keys*, each carrying a *value*): it scores every key by its
dot product with the query, turns the scores into weights with a softmax, and returns
the weighted average of the values,

    attention(Q, K, V) = softmax(Q·Kᵀ/√d + mask)·V.

Everything here is written with existing operations (matmul, the scale, ``where`` for
a mask, softmax, dropout, matmul), so its backward pass comes from theirs; the step a
learner most often gets wrong, the softmax's, is ``Softmax``'s rule
dx = y·(g - Σ g·y), which ``chainrule.explain`` shows.

Masks follow ``torch.nn.MultiheadAttention``: a boolean mask's True means "may not
attend", a float mask is added to the scores (-inf blocks). A blocked position gets a
weight of exactly 0 (its score is -inf before the softmax). A query that may attend to
no key at all has no softmax (torch's ``MultiheadAttention`` returns NaN there); here its
weights are all 0, so it outputs zeros and sends back no gradient, as
``torch.nn.functional.scaled_dot_product_attention`` does.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import chainrule.functional as F
from chainrule.nn.activation import get_activation
from chainrule.nn.init import RngLike, make_rng, normal_, xavier_uniform_
from chainrule.nn.layers import Dropout, Linear, _check_positive
from chainrule.nn.module import Module, Parameter, as_input
from chainrule.nn.normalization import LayerNorm
from chainrule.tensor import Tensor

__all__ = ["dot_product_attention", "causal_mask", "MultiheadAttention",
           "PositionalEmbedding", "TransformerBlock"]


# --------------------------------------------------------------------------- functions
def causal_mask(length: int, key_length: int | None = None) -> np.ndarray:
    """A boolean (length, key_length) mask that is True above the diagonal: query i may
    not attend to key j > i (it sees only the past). ``key_length`` defaults to
    ``length``; the mask is aligned top-left, as torch's ``is_causal``."""
    length = _check_positive("length", length)
    key_length = length if key_length is None else _check_positive("key_length", key_length)
    return np.triu(np.ones((length, key_length), dtype=bool), k=1)


def dot_product_attention(query: Any, key: Any, value: Any, mask: Any = None,
                          dropout_p: float = 0.0, scale: float | None = None,
                          rng: np.random.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Scaled dot-product attention, softmax(q·kᵀ·scale + mask)·v, and its weights.

    ``query`` has shape (..., L, d), ``key`` (..., S, d), ``value`` (..., S, d_v): for
    multi-head attention (N, heads, L, d). ``scale`` defaults to 1/√d. ``mask``
    broadcasts against the scores (..., L, S): boolean, True where a query may *not*
    attend to a key (as in ``MultiheadAttention``; beware that torch's
    ``scaled_dot_product_attention`` reads True the other way round), or float, added to
    the scores. ``dropout_p`` drops weights (with generator ``rng``); pass 0 in
    evaluation. Returns (output (..., L, d_v), weights (..., L, S)), the weights after
    dropout, the ones the output was computed with.
    """
    query, key, value = as_input(query), as_input(key), as_input(value)
    if min(query.ndim, key.ndim, value.ndim) < 2 or query.shape[-1] != key.shape[-1] \
            or key.shape[-2] != value.shape[-2]:
        raise ValueError(
            f"dot_product_attention needs query (..., L, d), key (..., S, d) and value "
            f"(..., S, d_v), got shapes {query.shape}, {key.shape} and {value.shape}")
    d = query.shape[-1]  # query (..., L, d), key (..., S, d), value (..., S, d_v)
    scale = 1.0 / math.sqrt(d) if scale is None else float(scale)
    scores = (query @ key.mT) * scale                          # (..., L, S)
    empty = None  # (..., L, 1): True for a query that may attend to no key
    if mask is not None:
        blocked, additive = _as_mask(mask, scores)
        if blocked is not None:
            scores = F.where(blocked, -np.inf, scores)         # weight exactly 0
            closed = blocked
        else:
            scores = scores + additive
            closed = np.isneginf(additive.data)
        if closed.all(axis=-1).any():
            empty = closed.all(axis=-1, keepdims=True)
            scores = F.where(empty, 0.0, scores)  # any finite row: its weights become 0
    weights = F.softmax(scores, axis=-1)
    if empty is not None:
        weights = F.where(empty, 0.0, weights)
    if dropout_p > 0.0:
        weights = F.dropout(weights, dropout_p, training=True, rng=rng)
    return weights @ value, weights                            # (..., L, d_v), (..., L, S)


def _as_mask(mask: Any, scores: Tensor) -> tuple[np.ndarray | None, Tensor | None]:
    """A mask as (blocked, None) for a boolean one or (None, additive) for a float one,
    checked to broadcast against the scores (..., L, S)."""
    array = mask.data if isinstance(mask, Tensor) else np.asarray(mask)
    try:
        np.broadcast_shapes(array.shape, scores.shape)
    except ValueError:
        raise ValueError(f"an attention mask of shape {array.shape} does not broadcast "
                         f"against the attention scores (..., L, S) of shape "
                         f"{scores.shape}") from None
    if array.dtype == np.bool_:
        return array, None
    if array.dtype.kind != "f":
        raise TypeError(f"an attention mask must be boolean (True: may not attend) or "
                        f"float (added to the scores), got dtype {array.dtype}")
    if isinstance(mask, Tensor):  # a Tensor keeps its graph (a learnt bias, say)
        return None, mask.astype(scores.dtype)
    return None, Tensor._wrap(array.astype(scores.dtype, copy=False))


def _combine_masks(first: np.ndarray | Tensor | None,
                   second: np.ndarray | Tensor | None) -> Any:
    """Two masks in one: boolean ones are joined by "or"; if either is float, a boolean
    one becomes 0/-inf and the two are added (as torch combines them)."""
    if first is None or second is None:
        return second if first is None else first
    arrays = [m.data if isinstance(m, Tensor) else np.asarray(m) for m in (first, second)]
    if all(a.dtype == np.bool_ for a in arrays):
        return arrays[0] | arrays[1]
    dtype = next(a.dtype for a in arrays if a.dtype.kind == "f")
    floats = [np.where(a, -np.inf, 0.0).astype(dtype) if a.dtype == np.bool_ else m
              for a, m in zip(arrays, (first, second))]
    if any(isinstance(m, Tensor) for m in floats):
        return as_input(floats[0]) + as_input(floats[1])
    return floats[0] + floats[1]


# --------------------------------------------------------------------------- modules
class MultiheadAttention(Module):
    """Multi-head attention, with ``torch.nn.MultiheadAttention``'s arguments, call,
    masks, results and parameter names.

    The query, key and value are projected by one (E, 3E) matrix ``in_proj_weight``
    (and bias ``in_proj_bias``): columns 0:E give the queries, E:2E the keys, 2E:3E the
    values. Each is split into ``num_heads`` heads of d = E/heads features, every head
    attends on its own (``dot_product_attention``), and the heads' outputs, side by side
    again, go through ``out_proj``, an E → E ``Linear``. ``in_proj_weight`` is stored in
    chainrule's (in, out) layout, the transpose of PyTorch's (3E, E), and declared in
    ``torch_transposed``, so ``load_torch_state_dict`` takes a torch state dict as it is.
    Initialisation as torch: ``in_proj_weight`` Xavier-uniform, biases 0 (``out_proj``'s
    weight: ``Linear``'s default, Xavier).

    ``forward(query, key, value, key_padding_mask=None, need_weights=True,
    attn_mask=None, average_attn_weights=True, is_causal=False)``: query (L, N, E), key
    and value (S, N, E) (N first with ``batch_first=True``; or unbatched (L, E), (S, E)).
    ``key_padding_mask`` (N, S) marks keys to ignore (padding); ``attn_mask`` (L, S) or
    (N·heads, L, S) marks pairs a query may not attend to. Boolean masks: True = may not
    attend; float masks are added to the scores. ``is_causal=True`` without an
    ``attn_mask`` applies ``causal_mask(L, S)`` (with one, torch reads it as a hint that
    the mask is causal: it is used as given). Returns (output of the query's shape,
    weights): the weights averaged over the heads, (N, L, S), or per head, (N, heads, L,
    S), with ``average_attn_weights=False``; None with ``need_weights=False``.
    """

    torch_transposed = ("in_proj_weight",)  # (E, 3E) here, (3E, E) in PyTorch

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0,
                 bias: bool = True, batch_first: bool = False, seed: int | None = None,
                 rng: RngLike = None, dtype: Any = np.float32) -> None:
        super().__init__()
        self.embed_dim = _check_positive("embed_dim", embed_dim)
        self.num_heads = _check_positive("num_heads", num_heads)
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim ({embed_dim}) must be divisible by num_heads "
                             f"({num_heads}): each head gets embed_dim/num_heads features")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {dropout}")
        self.head_dim = self.embed_dim // self.num_heads
        self.dropout, self.batch_first = float(dropout), bool(batch_first)
        self.rng = make_rng(rng, seed)  # the attention weights' dropout masks
        E = self.embed_dim
        self.in_proj_weight = Parameter(np.empty((E, 3 * E), dtype=dtype))
        xavier_uniform_(self.in_proj_weight, rng=self.rng)
        if bias:
            self.in_proj_bias = Parameter(np.zeros(3 * E, dtype=dtype))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(E, E, bias=bias, rng=self.rng, dtype=dtype)

    def forward(self, query: Any, key: Any, value: Any, key_padding_mask: Any = None,
                need_weights: bool = True, attn_mask: Any = None,
                average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[Tensor, Tensor | None]:
        """(output, attention weights or None): see the class docstring for the shapes
        and the masks."""
        weight = self.in_proj_weight
        query, key, value = (as_input(x, weight) for x in (query, key, value))
        unbatched = self._check_inputs(query, key, value)
        if unbatched:  # (L, E) -> (1, L, E)
            query, key, value = (x.unsqueeze(0) for x in (query, key, value))
        elif not self.batch_first:  # (L, N, E) -> (N, L, E)
            query, key, value = (x.swapaxes(0, 1) for x in (query, key, value))
        N, L, E = query.shape
        S, H, d = key.shape[1], self.num_heads, self.head_dim
        mask = self._mask(attn_mask, key_padding_mask, is_causal, N, L, S, unbatched)

        # the three projections, with the column blocks of the one (E, 3E) matrix
        bias = self.in_proj_bias
        q, k, v = (F.linear(x, weight[:, i * E:(i + 1) * E],
                            None if bias is None else bias[i * E:(i + 1) * E])
                   for i, x in enumerate((query, key, value)))
        q, k, v = (x.reshape(N, -1, H, d).swapaxes(1, 2) for x in (q, k, v))  # (N, H, ·, d)
        heads, weights = dot_product_attention(
            q, k, v, mask, self.dropout if self.training else 0.0, rng=self.rng)
        out = self.out_proj(heads.swapaxes(1, 2).reshape(N, L, E))  # heads side by side

        if unbatched:
            out = out[0]
        elif not self.batch_first:
            out = out.swapaxes(0, 1)
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = weights.mean(axis=1)                     # (N, L, S)
        return out, (weights[0] if unbatched else weights)

    def _check_inputs(self, query: Tensor, key: Tensor, value: Tensor) -> bool:
        """Check the shapes; True for unbatched inputs (L, E)."""
        layout = "(N, L, E)" if self.batch_first else "(L, N, E)"
        if query.ndim not in (2, 3) or query.shape[-1] != self.embed_dim:
            raise ValueError(f"MultiheadAttention: query must have shape {layout} (or "
                             f"unbatched (L, E)) with E = embed_dim = {self.embed_dim}, "
                             f"got {query.shape}")
        if key.shape != value.shape or key.ndim != query.ndim \
                or key.shape[-1] != self.embed_dim:
            raise ValueError(f"MultiheadAttention: key and value must have the same shape, "
                             f"with as many axes as the query {query.shape} and "
                             f"E = {self.embed_dim} features; got key {key.shape}, value "
                             f"{value.shape}")
        batch = 0 if self.batch_first else 1
        if query.ndim == 3 and key.shape[batch] != query.shape[batch]:
            raise ValueError(f"MultiheadAttention: the query has a batch of "
                             f"{query.shape[batch]}, the key and value {key.shape[batch]} "
                             f"(shapes {query.shape}, {key.shape}; layout {layout})")
        return query.ndim == 2

    def _mask(self, attn_mask: Any, key_padding_mask: Any, is_causal: bool, N: int,
              L: int, S: int, unbatched: bool) -> Any:
        """attn_mask and key_padding_mask as one mask that broadcasts against the
        scores (N, heads, L, S)."""
        H = self.num_heads
        attn_mask, key_padding_mask = (
            m if m is None or isinstance(m, Tensor) else np.asarray(m)
            for m in (attn_mask, key_padding_mask))
        if attn_mask is None and is_causal:
            attn_mask = causal_mask(L, S)
        if attn_mask is not None:
            shape = tuple(attn_mask.shape)
            if shape == (L, S):
                pass  # the same for every sample and head
            elif shape == (N * H, L, S) and not unbatched:
                attn_mask = _reshape_mask(attn_mask, (N, H, L, S))
            elif shape == (H, L, S) and unbatched:
                attn_mask = _reshape_mask(attn_mask, (1, H, L, S))
            else:
                expected = f"({H}, {L}, {S})" if unbatched else f"({N}·{H}, {L}, {S})"
                raise ValueError(f"MultiheadAttention: attn_mask must have shape (L, S) = "
                                 f"({L}, {S}) or {expected} (one per sample and head), "
                                 f"got {shape}")
        if key_padding_mask is not None:
            shape = tuple(key_padding_mask.shape)
            expected = (S,) if unbatched else (N, S)
            if shape != expected:
                raise ValueError(f"MultiheadAttention: key_padding_mask must have shape "
                                 f"{'(S,)' if unbatched else '(N, S)'} = {expected}, one "
                                 f"entry per key, got {shape}")
            key_padding_mask = _reshape_mask(key_padding_mask, (-1, 1, 1, S))
        return _combine_masks(attn_mask, key_padding_mask)

    def extra_repr(self) -> str:
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, "
                f"dropout={self.dropout}, batch_first={self.batch_first}")


def _reshape_mask(mask: Any, shape: tuple[int, ...]) -> Any:
    return mask.reshape(shape) if isinstance(mask, Tensor) else np.asarray(mask).reshape(shape)


class PositionalEmbedding(Module):
    """Learned absolute positions: a table ``weight`` of shape (max_length,
    embedding_dim) whose row t is added to the vector at position t.

    ``forward(x)`` takes x of shape (N, T, embedding_dim) (or (T, embedding_dim)) with
    T ≤ max_length and returns x + weight[:T]. The table starts as N(0, 0.02²), as in
    GPT-2.
    """

    def __init__(self, max_length: int, embedding_dim: int, seed: int | None = None,
                 rng: RngLike = None, dtype: Any = np.float32) -> None:
        super().__init__()
        self.max_length = _check_positive("max_length", max_length)
        self.embedding_dim = _check_positive("embedding_dim", embedding_dim)
        self.weight = Parameter(np.empty((self.max_length, self.embedding_dim), dtype=dtype))
        normal_(self.weight, std=0.02, rng=make_rng(rng, seed))

    def forward(self, x: Any) -> Tensor:
        x = as_input(x, self.weight)
        if x.ndim < 2 or x.shape[-1] != self.embedding_dim:
            raise ValueError(f"PositionalEmbedding expects input of shape (N, T, "
                             f"{self.embedding_dim}) or (T, {self.embedding_dim}), got "
                             f"{x.shape}")
        T = x.shape[-2]
        if T > self.max_length:
            raise ValueError(f"a sequence of {T} positions is longer than the "
                             f"{self.max_length} this PositionalEmbedding has learnt")
        return x + self.weight[:T]

    def extra_repr(self) -> str:
        return f"{self.max_length}, {self.embedding_dim}"


class TransformerBlock(Module):
    """One Transformer layer: self-attention, then a position-wise feed-forward network,
    each with a residual connection and layer normalisation.

    Pre-norm (``norm_first=True``, the default; GPT-2's arrangement, which trains
    stably without a warm-up)::

        x = x + dropout(self_attn(norm1(x)))
        x = x + dropout(linear2(dropout(activation(linear1(norm2(x))))))

    and with ``norm_first=False`` the original post-norm, x = norm1(x + dropout(...)).
    The arguments, submodule names (``self_attn``, ``linear1``, ``linear2``, ``norm1``,
    ``norm2``) and ``forward(src, src_mask=None, src_key_padding_mask=None,
    is_causal=False)`` are ``torch.nn.TransformerEncoderLayer``'s, so its state dict
    loads with ``load_torch_state_dict``; the defaults differ: ``dim_feedforward`` None
    means 4·d_model, ``activation='gelu'`` (exact), ``batch_first=True`` and
    ``norm_first=True``. A decoder-only language model passes ``causal_mask(T)`` as
    ``src_mask`` (or ``is_causal=True``).
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int | None = None,
                 dropout: float = 0.1, activation: str | Module = "gelu",
                 layer_norm_eps: float = 1e-5, batch_first: bool = True,
                 norm_first: bool = True, bias: bool = True, seed: int | None = None,
                 rng: RngLike = None, dtype: Any = np.float32) -> None:
        super().__init__()
        generator = make_rng(rng, seed)
        d_model = _check_positive("d_model", d_model)
        dim_feedforward = 4 * d_model if dim_feedforward is None else \
            _check_positive("dim_feedforward", dim_feedforward)
        self.norm_first = bool(norm_first)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout, bias, batch_first,
                                            rng=generator, dtype=dtype)
        self.linear1 = Linear(d_model, dim_feedforward, bias, rng=generator, dtype=dtype)
        self.dropout = Dropout(dropout, rng=generator)
        self.linear2 = Linear(dim_feedforward, d_model, bias, rng=generator, dtype=dtype)
        self.norm1 = LayerNorm(d_model, layer_norm_eps, dtype=dtype)
        self.norm2 = LayerNorm(d_model, layer_norm_eps, dtype=dtype)
        self.dropout1 = Dropout(dropout, rng=generator)
        self.dropout2 = Dropout(dropout, rng=generator)
        self.activation = get_activation(activation)

    def forward(self, src: Any, src_mask: Any = None, src_key_padding_mask: Any = None,
                is_causal: bool = False) -> Tensor:
        """The block applied to ``src`` (N, T, d_model) (T first if not batch_first);
        the masks are ``MultiheadAttention``'s ``attn_mask`` and ``key_padding_mask``."""
        x = as_input(src, self.linear1.weight)
        if self.norm_first:
            x = x + self._attention_block(self.norm1(x), src_mask, src_key_padding_mask,
                                          is_causal)
            return x + self._feed_forward_block(self.norm2(x))
        x = self.norm1(x + self._attention_block(x, src_mask, src_key_padding_mask,
                                                 is_causal))
        return self.norm2(x + self._feed_forward_block(x))

    def _attention_block(self, x: Tensor, mask: Any, key_padding_mask: Any,
                         is_causal: bool) -> Tensor:
        out, _ = self.self_attn(x, x, x, key_padding_mask=key_padding_mask,
                                need_weights=False, attn_mask=mask, is_causal=is_causal)
        return self.dropout1(out)

    def _feed_forward_block(self, x: Tensor) -> Tensor:
        hidden = self.dropout(self.activation(self.linear1(x)))
        return self.dropout2(self.linear2(hidden))

    def extra_repr(self) -> str:
        return f"norm_first={self.norm_first}"

