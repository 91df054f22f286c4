"""Raw input kinds (text, categories) and the fitted encoder that turns them into tensors.

A backbone whose ``input_kinds`` holds :data:`RAW_KINDS` (``"text"``, ``"categorical"``) receives
a modality's raw values, not a float block. It supplies an :class:`InputEncoder` from
:meth:`Backbone.input_encoder <fusekit.plugin.Backbone.input_encoder>`; the data layer fits it
once per ``fit`` on the training rows where the modality is present and runs ``transform`` once
per ``fit`` / ``predict`` call (never per batch). The network hands the fitted encoder to the
backbone (:meth:`Backbone.bind_input_encoder <fusekit.plugin.Backbone.bind_input_encoder>`)
before ``build``, so a backbone sizes its layers from it (a vocabulary, per-column cardinalities).

What ``transform`` returns (:class:`EncodedInput`):

* text: ``values`` ``(n, T)`` int64 token ids and ``steps`` ``(n, T)`` bool (True = real token),
  ``T = shape[0]`` for every call (padded or cut to the encoder's length); the network passes
  ``steps`` to :meth:`Backbone.encode <fusekit.plugin.Backbone.encode>`. A row may have no real
  token (an empty string): the backbone must still return finite values for it;
* categorical: ``values`` ``(n, k)`` int64 codes, one column per input column, ``steps=None``.
  Code :data:`RESERVED_CODE` (0) is kept for a value not seen at fit and for a missing cell;
* image: ``values`` ``(n, C, H, W)`` float32 pixels ready for the backbone, ``steps=None``. An
  image backbone (``"image"`` in ``input_kinds``) whose :meth:`Backbone.input_encoder
  <fusekit.plugin.Backbone.input_encoder>` returns an encoder of kind ``"image"`` gets both
  ``(n, C, H, W)`` float arrays and a column of image file paths through it (the encoder loads,
  resizes and normalises them, and its state may hold the files a loaded model needs). An absent
  row is an all-NaN image or a ``None`` / NaN path.

Ids and codes are never standardised. Absent rows (the modality missing for a sample: ``None`` /
NaN text, a row whose categories are all missing) never reach ``fit`` or ``transform``: the data
layer marks them in the presence mask and fills them with zeros (no real step), as for numbers.

The fitted state is plain data (:class:`EncoderState`: a JSON-able ``config``, numeric
``arrays`` and ``files`` of bytes by file name, e.g. a tokenizer's ``tokenizer.json``), which a
model file stores without pickle; :meth:`InputEncoder.load_state` restores it into an encoder the
same backbone made, so loading never imports a class named by the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from fusekit.plugin.spec import Shape

#: The input kinds whose values are not float blocks: each needs a fitted :class:`InputEncoder`.
RAW_KINDS = ("text", "categorical")
#: The input kinds an :class:`InputEncoder` may produce: the raw ones, and ``"image"`` (an image
#: backbone's own preprocessing of arrays or file paths, float32 values).
ENCODED_KINDS = (*RAW_KINDS, "image")
#: The categorical code of a category not seen at fit, and of a missing cell.
RESERVED_CODE = 0


class InputFileError(ValueError):
    """An encoder could not read the file a row names (an image path that does not open).

    Raise it from :meth:`InputEncoder.transform` with ``row`` (the position in ``values``) and
    ``file``; the data layer adds the modality and the row of ``X`` to the message."""

    def __init__(self, message: str, file: str = "", row: int | None = None) -> None:
        super().__init__(message)
        self.file, self.row = file, row


@dataclass
class EncodedInput:
    """What :meth:`InputEncoder.transform` returns: int64 ``values`` (float32 for images) and,
    for text, ``steps``."""

    values: np.ndarray
    steps: np.ndarray | None = None


@dataclass
class EncoderState:
    """An encoder's fitted state as plain data: what a model file stores.

    Attributes:
        config: JSON values only (str, int, float, bool, None, lists, str-keyed dicts).
        arrays: numeric or bool NumPy arrays by name.
        files: raw bytes by file name (a tokenizer's files), a plain name without ``/``.
    """

    config: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)


class InputEncoder:
    """Turns one modality's raw values into int64 tensors; fitted once per ``fit``.

    Subclasses set :attr:`kind` and implement :meth:`fit`, :meth:`transform`, :attr:`shape`,
    :meth:`state` and :meth:`load_state`. ``values`` are NumPy object arrays: ``(n,)`` strings
    for text, ``(n, k)`` labels or numbers for categories (a missing cell is ``None``), ``(n,)``
    file paths or an ``(n, C, H, W)`` float array for images (present rows only).
    """

    #: ``"text"``, ``"categorical"`` or ``"image"`` (one of :data:`ENCODED_KINDS`).
    kind: ClassVar[str] = ""
    #: Text only: a blank string (``""``, only spaces) is a missing row (the modality is absent
    #: for that sample) rather than a text without tokens. Text backbones expose it as their
    #: ``empty_is_missing`` parameter; the data layer reads it here.
    empty_is_missing: bool = False

    def fit(self, values: np.ndarray) -> InputEncoder:
        """Learn from the present training rows (a vocabulary, the categories); return self."""
        return self

    def transform(self, values: np.ndarray) -> EncodedInput:
        """Int64 ids ``(n, T)`` with ``steps`` (text), codes ``(n, k)`` (categorical), or
        float32 pixels ``(n, C, H, W)`` (image)."""
        raise NotImplementedError

    @property
    def shape(self) -> Shape:
        """The per-sample shape of :meth:`transform`'s values, what ``Backbone.build`` gets."""
        raise NotImplementedError

    def state(self) -> EncoderState:
        """The fitted state as plain data (stored in the model file)."""
        return EncoderState()

    def load_state(self, state: EncoderState) -> None:
        """Restore :meth:`state`'s output; ``ValueError`` naming what does not fit."""


def check_json(where: str, value: Any) -> None:
    """``TypeError`` unless ``value`` is plain JSON (what an :class:`EncoderState` config holds)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return
    if isinstance(value, (list, tuple)):
        for position, item in enumerate(value):
            check_json(f"{where}[{position}]", item)
        return
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        for key, item in value.items():
            check_json(f"{where}[{key!r}]", item)
        return
    raise TypeError(f"{where} must hold JSON values only, got {type(value).__name__} {value!r}")
