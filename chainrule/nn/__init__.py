"""Neural-network layers, losses and models built on the autodiff core.

``Module`` and ``Parameter`` are the base of everything here: a module registers the
parameters, buffers and submodules assigned to it, so that ``model.parameters()`` can
be handed to an optimiser and ``model.state_dict()`` saved.
"""

from chainrule.nn import init
from chainrule.nn.activation import (
    ACTIVATIONS,
    GELU,
    Identity,
    LeakyReLU,
    ReLU,
    Sigmoid,
    Softmax,
    Softplus,
    Tanh,
    get_activation,
)
from chainrule.nn.attention import (
    MultiheadAttention,
    PositionalEmbedding,
    TransformerBlock,
    causal_mask,
    dot_product_attention,
)
from chainrule.nn.container import ModuleList, Sequential
from chainrule.nn.conv import (
    AdaptiveAvgPool2d,
    AvgPool2d,
    Conv2d,
    Convolution,
    ConvTranspose2d,
    MaxPool2d,
    Pooling,
)
from chainrule.nn.convnets import DeepConvNet, SimpleConvNet
from chainrule.nn.language_models import RNNLM, TransformerLM, generate, sample_next
from chainrule.nn.layers import Affine, Dropout, Dropout2d, Embedding, Flatten, Linear
from chainrule.nn.losses import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    MSELoss,
    NLLLoss,
    SumSquaredError,
)
from chainrule.nn.models import MLP, TwoLayerNet
from chainrule.nn.module import LoadResult, Module, Parameter, as_input
from chainrule.nn.normalization import BatchNorm1d, BatchNorm2d, LayerNorm
from chainrule.nn.recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell
from chainrule.nn.seq2seq import AttentionSeq2Seq, Seq2Seq, luong_attention
from chainrule.nn.word2vec import (
    CBOW,
    SkipGram,
    UnigramSampler,
    analogy,
    contexts_and_targets,
    most_similar,
    negative_sampling_loss,
)

__all__ = [
    "ACTIVATIONS", "Affine", "BCEWithLogitsLoss", "BatchNorm1d", "BatchNorm2d",
    "CrossEntropyLoss", "Dropout", "Dropout2d", "Embedding", "Flatten", "GELU", "Identity",
    "LayerNorm",
    "LeakyReLU", "Linear", "LoadResult", "MLP", "MSELoss", "Module", "ModuleList",
    "Parameter", "ReLU", "Sequential", "Sigmoid", "Softmax", "Softplus", "SumSquaredError",
    "Tanh",
    "TwoLayerNet", "as_input", "get_activation", "init",
]
__all__ += ["AdaptiveAvgPool2d", "AvgPool2d", "Conv2d", "Convolution", "ConvTranspose2d",
            "DeepConvNet", "MaxPool2d", "Pooling", "SimpleConvNet"]
__all__ += ["CBOW", "SkipGram", "UnigramSampler", "analogy", "contexts_and_targets",
            "most_similar", "negative_sampling_loss"]
__all__ += ["BCELoss", "NLLLoss"]
__all__ += ["RNNLM", "TransformerLM", "generate", "sample_next"]
__all__ += ["MultiheadAttention", "PositionalEmbedding", "TransformerBlock", "causal_mask",
            "dot_product_attention"]
__all__ += ["GRU", "GRUCell", "LSTM", "LSTMCell", "RNN", "RNNBase", "RNNCell"]
__all__ += ["AttentionSeq2Seq", "Seq2Seq", "luong_attention"]
