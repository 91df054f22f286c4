"""Hashed n-gram text backbone (the hashing trick of fastText, Joulin et al., 2017): no
vocabulary, no download.

Input: a ``"text"`` modality, one string per sample. Its input encoder (:class:`HashedNgrams`)
splits each text into word n-grams with scikit-learn's analyzer (``HashingVectorizer``'s
``build_analyzer()``: lower case, tokens of 2+ word characters, ``ngram_range``) and hashes each
n-gram with MurmurHash3 (``sklearn.utils.murmurhash3_32``, seed 0, positive) into
``murmurhash3_32(g) % n_buckets + 1``; id 0 is padding. The first ``max_tokens`` n-grams are kept
(unigrams come first), so every text is ``(max_tokens,)`` ids with a step mask. Nothing is fitted.

Output: ``(B, dim)``, the mean of the n-grams' embeddings (``nn.EmbeddingBag``, mode ``mean``,
padding excluded): a text with no n-gram (``""``, only punctuation) gives zeros, never NaN.
``empty_is_missing=True`` makes a blank text an absent row instead.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from torch import Tensor, nn

from fusekit.plugin import (
    Backbone,
    EncodedInput,
    EncoderState,
    InputEncoder,
    Interval,
    SequenceOf,
    Shape,
    hookimpl,
)

OWNER = "hashed_text backbone"


class HashedNgrams(InputEncoder):
    """Word n-grams hashed into ``n_buckets`` ids (``1..n_buckets``; 0 pads); the parameters
    are those of :class:`HashedTextBackbone`, checked there."""

    kind = "text"

    def __init__(
        self,
        n_buckets: int,
        ngram_range: tuple[int, int],
        max_tokens: int,
        empty_is_missing: bool = False,
    ) -> None:
        self.n_buckets = int(n_buckets)
        self.max_tokens = int(max_tokens)
        low, high = (int(n) for n in ngram_range)
        if low > high:
            raise ValueError(
                f"{OWNER}: ngram_range must be (low, high), low <= high, got {ngram_range}"
            )
        self.ngram_range = (low, high)
        self.empty_is_missing = bool(empty_is_missing)
        # imported here: loading the plugins (fusekit plugins) never needs sklearn's text features
        from sklearn.feature_extraction.text import HashingVectorizer

        self._analyzer = HashingVectorizer(ngram_range=self.ngram_range).build_analyzer()

    @property
    def shape(self) -> Shape:
        return (self.max_tokens,)

    def ids(self, text: str) -> list[int]:
        """The bucket ids of ``text``'s first ``max_tokens`` n-grams."""
        from sklearn.utils import murmurhash3_32  # here, as HashingVectorizer in __init__

        grams = self._analyzer(text)[: self.max_tokens]
        return [murmurhash3_32(g, seed=0, positive=True) % self.n_buckets + 1 for g in grams]

    def transform(self, values: np.ndarray) -> EncodedInput:
        ids = np.zeros((len(values), self.max_tokens), dtype=np.int64)
        for row, text in enumerate(values):
            found = self.ids(text)
            ids[row, : len(found)] = found
        return EncodedInput(values=ids, steps=ids > 0)

    def _config(self) -> dict:
        return {
            "n_buckets": self.n_buckets,
            "ngram_range": list(self.ngram_range),
            "max_tokens": self.max_tokens,
        }

    def state(self) -> EncoderState:
        return EncoderState(config=self._config())

    def load_state(self, state: EncoderState) -> None:
        if state.config != self._config():
            raise ValueError(
                f"{OWNER}: the stored encoder {state.config} differs from the parameters "
                f"{self._config()}"
            )


class HashedTextBackbone(Backbone):
    """Mean of hashed word n-gram embeddings (``n_buckets``, ``dim``, ``ngram_range``...)."""

    input_kinds = ("text",)
    parameter_constraints = {
        "n_buckets": [Interval(Integral, 1, None, closed="left")],
        "dim": [Interval(Integral, 1, None, closed="left")],
        # (low, high), low <= high: checked by the input encoder
        "ngram_range": [SequenceOf(Interval(Integral, 1, None, closed="left"), length=2)],
        "max_tokens": [Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "empty_is_missing": ["boolean"],
    }

    def __init__(
        self,
        n_buckets: int = 2**14,
        dim: int = 32,
        ngram_range: tuple[int, int] = (1, 2),
        max_tokens: int = 256,
        dropout: float = 0.0,
        empty_is_missing: bool = False,
    ) -> None:
        super().__init__()
        self.n_buckets = n_buckets
        self.dim = dim
        self.ngram_range = ngram_range
        self.max_tokens = max_tokens
        self.dropout = dropout
        self.empty_is_missing = empty_is_missing

    def input_encoder(self) -> HashedNgrams:
        return HashedNgrams(
            self.n_buckets, tuple(self.ngram_range), self.max_tokens, self.empty_is_missing
        )

    def build(self, input_shape: Shape) -> Shape:
        dim = int(self.dim)
        self.bag = nn.EmbeddingBag(int(self.n_buckets) + 1, dim, mode="mean", padding_idx=0)
        self.drop = nn.Dropout(float(self.dropout))
        return (dim,)

    def encode(self, x: Tensor, steps: Tensor | None) -> Tensor:
        if steps is not None:
            x = x * steps  # a padded step is id 0, whatever it held
        return self.drop(self.bag(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.encode(x, None)


@hookimpl
def fusekit_backbones() -> dict[str, type]:
    return {"hashed_text": HashedTextBackbone}
