"""The ``hf_text`` backbone: any local Hugging Face ``AutoModel`` text encoder and its tokenizer.

BERT, RoBERTa, DeBERTa, E5, MiniLM...: ``path`` is the model's folder (``save_pretrained``) or
its id in the local Hugging Face cache, read offline (``local_files_only=True``); its *fast*
tokenizer's ``tokenizer.json`` tokenizes the texts (with the special tokens its post-processor
adds, cut to ``max_length`` tokens). ``(B, max_length)`` ids with their step mask go in as the
attention mask; the output is the first token's hidden state (``pooling="cls"``) or the mean over
the real tokens (``"mean"``), ``(B, hidden_size)``. A row with no real token (an absent row)
attends to its first position only and gives zeros, never NaN.

``freeze`` (:mod:`fusekit_transformers.freezing`): ``True`` (default) keeps the encoder fixed and
declares the backbone frozen, so fusekit encodes each training row once per fit; ``False``
fine-tunes it; ``k`` trains only its last ``k`` layers. Fine-tune at ~2e-5
(:data:`~fusekit_transformers.freezing.RECOMMENDED_LR`) with
``optimizer__param_groups=fusekit_transformers.param_groups("text")``.

Saving: the encoder's weights are in the network's state; ``config.json`` and ``tokenizer.json``
go into the model file with the encoder's state (with their SHA-256), so ``fusekit.load`` rebuilds
the architecture from the stored configuration and reads nothing from ``path``.
"""

from __future__ import annotations

import functools
import hashlib
import os
from numbers import Integral
from typing import Any

import torch
from torch import Tensor

from fusekit.plugin import Backbone, EncoderState, Interval, Shape, StrOptions
from fusekit_transformers.freezing import FREEZE_CONSTRAINT, apply_freeze
from fusekit_transformers.hf_models import (
    CONFIG_FILE,
    config_from_bytes,
    encoder_model,
    model_folder,
    read_file,
)
from fusekit_transformers.tokens import TOKENIZER_FILE, TokenizerEncoder

OWNER = "hf_text backbone"
POOLINGS = ("cls", "mean")


def _read_model_file(path: str, name: str) -> bytes:
    """``name`` from the folder of ``path`` (resolved when the encoder is fitted)."""
    return read_file(OWNER, str(model_folder(OWNER, path)), name)


class HFTextEncoder(TokenizerEncoder):
    """The model's ``tokenizer.json`` (truncating to ``max_length`` with its special tokens) and
    its ``config.json``, both stored in the model file."""

    def __init__(self, path: str, max_length: int, empty_is_missing: bool = False) -> None:
        super().__init__(
            functools.partial(_read_model_file, path, TOKENIZER_FILE),
            max_length,
            add_special_tokens=True,
            empty_is_missing=empty_is_missing,
            owner=OWNER,
        )
        self.path = path
        self.config_file: bytes | None = None

    def fit(self, values: Any) -> HFTextEncoder:
        super().fit(values)
        if self.config_file is None:
            self.config_file = _read_model_file(self.path, CONFIG_FILE)
        return self

    def tokenizer(self) -> Any:
        tokenizer = super().tokenizer()
        tokenizer.enable_truncation(self.max_length)  # keeps [CLS] ... [SEP] within max_length
        return tokenizer

    def state(self) -> EncoderState:
        state = super().state()
        if self.config_file is None:
            raise RuntimeError(f"{OWNER}: the encoder is saved before fit")
        state.config["config_sha256"] = hashlib.sha256(self.config_file).hexdigest()
        state.files[CONFIG_FILE] = self.config_file
        return state

    def load_state(self, state: EncoderState) -> None:
        config = dict(state.config)
        digest = config.pop("config_sha256", None)
        stored = state.files.get(CONFIG_FILE)
        if stored is None or hashlib.sha256(stored).hexdigest() != digest:
            raise ValueError(f"{OWNER}: the stored {CONFIG_FILE} is missing or altered")
        files = {k: v for k, v in state.files.items() if k != CONFIG_FILE}
        super().load_state(EncoderState(config=config, arrays=state.arrays, files=files))
        self.config_file = stored


class HFTextBackbone(Backbone):
    """A local Hugging Face text encoder (``path``, ``pooling``, ``max_length``, ``freeze``)."""

    input_kinds = ("text",)
    needs_host_values = (
        "transformers reads the attention mask on the host once per forward pass, to skip it "
        "where no token is padded (its SDPA fast path)"
    )
    parameter_constraints = {
        "path": [str, os.PathLike, None],  # None (the default) is refused when the model is read
        "pooling": [StrOptions(set(POOLINGS))],
        # at most the model's max_position_embeddings: checked in build
        "max_length": [Interval(Integral, 1, None, closed="left")],
        "freeze": FREEZE_CONSTRAINT,
        "empty_is_missing": ["boolean"],
    }

    def __init__(
        self,
        path: str | None = None,
        pooling: str = "cls",
        max_length: int = 128,
        freeze: bool | int = True,
        empty_is_missing: bool = False,
    ) -> None:
        super().__init__()
        self.path = path
        self.pooling = pooling
        self.max_length = max_length
        self.freeze = freeze
        self.empty_is_missing = empty_is_missing

    def input_encoder(self) -> HFTextEncoder:
        return HFTextEncoder(self.path, self.max_length, empty_is_missing=self.empty_is_missing)

    def build(self, input_shape: Shape) -> Shape:
        encoder = getattr(self, "input_encoder_", None)
        if encoder is None:
            encoder = self.input_encoder().fit(None)
        config = config_from_bytes(OWNER, encoder.config_file)
        folder = None if encoder.from_model_file else str(model_folder(OWNER, self.path))
        positions = getattr(config, "max_position_embeddings", None)
        if isinstance(positions, int) and self.max_length > positions:
            raise ValueError(
                f"{OWNER}: max_length={self.max_length} exceeds the model's "
                f"max_position_embeddings={positions}"
            )
        if encoder.vocab_size > config.vocab_size:
            raise ValueError(
                f"{OWNER}: the tokenizer has {encoder.vocab_size} tokens but the model's "
                f"vocab_size is {config.vocab_size}; path must hold a model with its own tokenizer"
            )
        self.model = encoder_model(OWNER, config, folder)
        if isinstance(getattr(self.model, "pooler", None), torch.nn.Module):
            self.model.pooler = None  # BERT-style pooler: unused (the pooling is ours), dropped
        self.frozen = apply_freeze(OWNER, self.model, self.freeze)
        return (int(config.hidden_size),)

    def encode(self, x: Tensor, steps: Tensor | None) -> Tensor:
        real = torch.ones_like(x, dtype=torch.bool) if steps is None else steps.bool()
        has_token = real.any(dim=1)
        attention = real.clone()
        attention[:, 0] |= ~has_token  # an all-masked row would give NaN in some attentions
        hidden = self.model(input_ids=x, attention_mask=attention.long()).last_hidden_state
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            weights = real.to(hidden.dtype).unsqueeze(-1)
            pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
        return pooled * has_token.to(pooled.dtype).unsqueeze(-1)

    def forward(self, x: Tensor) -> Tensor:
        return self.encode(x, None)
