"""The ``wordllama`` backbone: WordLlama's pretrained token embeddings, mean-pooled.

WordLlama (Miller, 2024) trains a token-embedding matrix extracted from a large language model
(here ``l2_supercat``: Llama 2's tokenizer, 32 000 tokens, 256 dimensions, Matryoshka-trained so
the first 64 or 128 dimensions also work) for sentence similarity; its embedding of a text is
the mean of its tokens' rows. The ``wordllama`` wheel ships the matrix (16 MB, float16,
safetensors, MIT) and the tokenizer, so this backbone needs no download.

``(B, max_length)`` token ids with the step mask -> the mean of the real tokens' rows, first
``dim`` dimensions -> dropout -> an optional trainable ``projection`` (``Linear(dim, projection)``)
-> ``(B, projection or dim)``. A text without tokens gives zeros (the count is clamped to 1).

``freeze=True`` (default) keeps the matrix fixed, as a float16 buffer (not a parameter: the
optimiser never sees it); ``freeze=False`` fine-tunes it as a float32 parameter (then
``optimizer__param_groups=[("backbones.<modality>.embedding", {"lr": ...})]`` gives it its own
learning rate). Unlike ``hf_text``, the backbone never declares itself frozen
(``Backbone.frozen``), even at ``freeze=True``: with a ``dropout`` or a ``projection`` its
output for a row changes from batch to batch, and at the defaults (neither) fusekit still runs
it on every batch unless the estimator's ``frozen_backbones`` names the modality, which fixes
all of it (dropout off, the projection untrained) and has each training row encoded once per fit.

Saving: the matrix is part of the network's state, so the model file stores it (16 MB frozen at
256 dimensions, 4 MB at 64; twice that fine-tuned), with the tokenizer file (1.8 MB, in the
encoder's state). A loaded model reads neither from the wordllama package: a different
wordllama version installed later cannot change its predictions.
"""

from __future__ import annotations

from numbers import Integral, Real

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from fusekit.plugin import Backbone, Interval, Shape
from fusekit_transformers.package_files import TENSOR, WEIGHTS, package_file, tokenizer_bytes
from fusekit_transformers.tokens import TokenizerEncoder

OWNER = "wordllama backbone"
FULL_DIM = 256


def pretrained_embedding(dim: int) -> Tensor:
    """The first ``dim`` columns of the shipped matrix, float16 ``(32000, dim)``."""
    from safetensors import safe_open  # lazily

    with safe_open(str(package_file(WEIGHTS)), framework="pt") as handle:
        return handle.get_tensor(TENSOR)[:, :dim].contiguous()


class WordLlamaBackbone(Backbone):
    """Mean of WordLlama token embeddings (``dim``, ``max_length``, ``freeze``, ``projection``)."""

    input_kinds = ("text",)
    parameter_constraints = {
        "dim": [Interval(Integral, 1, FULL_DIM, closed="both")],  # the shipped matrix's columns
        "max_length": [Interval(Integral, 1, None, closed="left")],
        "freeze": ["boolean"],
        "projection": [Interval(Integral, 1, None, closed="left"), None],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "empty_is_missing": ["boolean"],
    }

    def __init__(
        self,
        dim: int = 256,
        max_length: int = 128,
        freeze: bool = True,
        projection: int | None = None,
        dropout: float = 0.0,
        empty_is_missing: bool = False,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.max_length = max_length
        self.freeze = freeze
        self.projection = projection
        self.dropout = dropout
        self.empty_is_missing = empty_is_missing

    def input_encoder(self) -> TokenizerEncoder:
        return TokenizerEncoder(
            tokenizer_bytes,
            self.max_length,
            empty_is_missing=self.empty_is_missing,
            owner=OWNER,
        )

    def build(self, input_shape: Shape) -> Shape:
        dim = int(self.dim)
        encoder = self.input_encoder_
        vocab = encoder.vocab_size
        dtype = torch.float16 if self.freeze else torch.float32
        weight = torch.zeros(vocab, dim, dtype=dtype)
        if not weight.is_meta and not encoder.from_model_file:  # a loaded model has its own
            pretrained = pretrained_embedding(dim)
            if pretrained.shape[0] != vocab:
                raise ValueError(
                    f"{OWNER}: the tokenizer has {vocab} tokens but the matrix "
                    f"{pretrained.shape[0]} rows; reinstall wordllama"
                )
            weight.copy_(pretrained)
        if self.freeze:
            self.register_buffer("embedding", weight)
        else:
            self.embedding = nn.Parameter(weight)
        self.drop = nn.Dropout(float(self.dropout))
        if self.projection is None:
            self.project: nn.Module = nn.Identity()
            return (dim,)
        width = int(self.projection)
        self.project = nn.Linear(dim, width)
        return (width,)

    def encode(self, x: Tensor, steps: Tensor | None) -> Tensor:
        ids = x.clamp(0, self.embedding.shape[0] - 1)
        tokens = F.embedding(ids, self.embedding).float()  # (B, T, dim)
        weights = (torch.ones_like(ids) if steps is None else steps).to(tokens.dtype).unsqueeze(-1)
        pooled = (tokens * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
        return self.project(self.drop(pooled))

    def forward(self, x: Tensor) -> Tensor:
        return self.encode(x, None)
