"""A text encoder over a ``tokenizers`` tokenizer file (``tokenizer.json``), stored in the model.

:class:`TokenizerEncoder` is the :class:`~fusekit.plugin.InputEncoder` of this distribution's
text backbones: wordllama's tokenizer today, any Hugging Face *fast* tokenizer (which saves the
same ``tokenizer.json``) for the ``hf_text`` backbone. Its state is the file's bytes plus its
settings, so a saved model tokenizes without the original folder, the package or the internet,
and a file whose bytes do not match their SHA-256 is refused. ``tokenizers`` is imported only
when a text is tokenized.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np

from fusekit.plugin import EncodedInput, EncoderState, InputEncoder, Shape, check_int

TOKENIZER_FILE = "tokenizer.json"


class TokenizerEncoder(InputEncoder):
    """Texts to ``(n, max_length)`` token ids and a step mask, cut or padded to ``max_length``.

    Args:
        read: returns the tokenizer file's bytes; called once, at ``fit`` (a module-level
            function, so the encoder pickles).
        max_length: tokens kept per text (the first ones).
        add_special_tokens: let the tokenizer's post-processor add its special tokens (BERT's
            ``[CLS]`` / ``[SEP]``); wordllama adds none.
        pad_id: the id written at padded steps (masked out by the steps anyway).
        empty_is_missing: a blank text is an absent row (:class:`~fusekit.plugin.InputEncoder`).
    """

    kind = "text"

    def __init__(
        self,
        read: Callable[[], bytes],
        max_length: int,
        add_special_tokens: bool = False,
        pad_id: int = 0,
        empty_is_missing: bool = False,
        owner: str = "text backbone",
    ) -> None:
        self.read = read
        self.max_length = check_int(owner, "max_length", max_length)
        self.add_special_tokens = bool(add_special_tokens)
        self.pad_id = int(pad_id)
        self.empty_is_missing = bool(empty_is_missing)
        self.owner = owner
        self.file: bytes | None = None
        #: True when the state came from a model file (the backbone's weights then come from it
        #: too, so the backbone need not read its pretrained weights).
        self.from_model_file = False
        self._tokenizer: Any = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(vars(self))
        state["_tokenizer"] = None  # rebuilt from the bytes
        return state

    @property
    def shape(self) -> Shape:
        return (self.max_length,)

    def fit(self, values: np.ndarray) -> TokenizerEncoder:
        if self.file is None:
            self.file = bytes(self.read())
        return self

    def tokenizer(self) -> Any:
        """The ``tokenizers.Tokenizer`` of the stored file (no padding, no truncation)."""
        if self._tokenizer is None:
            if self.file is None:
                raise RuntimeError(f"{self.owner}: the tokenizer is used before fit")
            from tokenizers import Tokenizer  # lazily: only when texts are tokenized

            tokenizer = Tokenizer.from_str(self.file.decode("utf-8"))
            tokenizer.no_padding()
            tokenizer.no_truncation()
            self._tokenizer = tokenizer
        return self._tokenizer

    @property
    def vocab_size(self) -> int:
        return int(self.tokenizer().get_vocab_size(with_added_tokens=True))

    def transform(self, values: np.ndarray) -> EncodedInput:
        texts = [str(text) for text in values]
        encodings = self.tokenizer().encode_batch(texts, add_special_tokens=self.add_special_tokens)
        ids = np.full((len(texts), self.max_length), self.pad_id, dtype=np.int64)
        steps = np.zeros((len(texts), self.max_length), dtype=bool)
        for row, encoding in enumerate(encodings):
            kept = encoding.ids[: self.max_length]
            ids[row, : len(kept)] = kept
            steps[row, : len(kept)] = True
        return EncodedInput(values=ids, steps=steps)

    def _config(self) -> dict[str, Any]:
        return {
            "max_length": self.max_length,
            "add_special_tokens": self.add_special_tokens,
            "pad_id": self.pad_id,
        }

    def state(self) -> EncoderState:
        if self.file is None:
            raise RuntimeError(f"{self.owner}: the encoder is saved before fit")
        digest = hashlib.sha256(self.file).hexdigest()
        return EncoderState(
            config={**self._config(), "sha256": digest}, files={TOKENIZER_FILE: self.file}
        )

    def load_state(self, state: EncoderState) -> None:
        config = dict(state.config)
        digest = config.pop("sha256", None)
        if config != self._config():
            raise ValueError(
                f"{self.owner}: the stored tokenizer settings {config} differ from the "
                f"backbone's {self._config()}"
            )
        file = state.files.get(TOKENIZER_FILE)
        if file is None or hashlib.sha256(file).hexdigest() != digest:
            raise ValueError(f"{self.owner}: the stored {TOKENIZER_FILE} is missing or altered")
        self.file, self._tokenizer, self.from_model_file = file, None, True
