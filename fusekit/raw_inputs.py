"""Modalities that are not float blocks: text and categories, through their backbones' encoders.

The data layer (:mod:`fusekit.data`) leaves a modality's values raw (a NumPy object array
``(n, k)``) when they are strings or labels. Here, at ``fit``:

* each modality's **kind** is chosen from its values and its backbone's ``input_kinds``
  (:func:`resolve_kinds`): strings go to a backbone that accepts ``"text"`` or ``"categorical"``
  (refused, naming the backbones that do, where the chosen one accepts neither); numbers stay a
  float block unless the backbone accepts only ``"categorical"`` (integer codes);
* the backbone's :class:`~fusekit.plugin.InputEncoder` is fitted on the rows where the modality
  is present, then every ``fit`` / ``predict`` call encodes all rows once (:func:`prepare`).

An image backbone with an input encoder of kind ``"image"`` (:mod:`fusekit.plugin.raw`) reads
its modality through it: ``(n, C, H, W)`` float arrays or one column of image file paths.

Missing values: a text row that is ``None`` / NaN (or blank, where the encoder's
``empty_is_missing`` says so: a text backbone's ``empty_is_missing=True`` parameter) and a
categorical row whose cells are all missing are absent rows (mask 0, zeros, no real step), as
for numbers. A missing cell in an otherwise present categorical row is the reserved code, as a
category never seen at fit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from fusekit.data import ModalityLayout, PreparedInput, presence_mask
from fusekit.engine.registry import get_registry
from fusekit.engine.resolve import Origin, Resolved, resolve_backbones, split_nested
from fusekit.plugin import RAW_KINDS, Backbone, EncoderState, InputEncoder, InputFileError

NUMERIC_KINDS = ("vector", "sequence", "image")


def backbones(estimator: Any, names: tuple[str, ...]) -> dict[str, Resolved]:
    """The unbuilt backbones ``estimator`` would use, one per modality, with their origins."""
    nested = split_nested(estimator._nested_params(), "backbone")
    return resolve_backbones(estimator.backbone, nested, names)


def accepting(kind: str) -> list[str]:
    """The registered backbones that accept the input kind ``kind``."""
    registry = get_registry()
    return [
        name
        for name in registry.names("backbone")
        if kind in getattr(registry.get("backbone", name), "input_kinds", ())
    ]


def _label(origin: Origin) -> str:
    """The backbone as the user chose it: its registered name (from the entry it was resolved
    by), else its class name."""
    return repr(origin.name) if origin.name is not None else origin.cls.__name__


def _refuse_strings(name: str, chosen: Resolved, n_columns: int) -> None:
    kind = "text" if n_columns == 1 else "categorical"
    example = (accepting(kind) or [kind])[0]
    accepted = " or ".join(chosen.component.input_kinds)
    raise ValueError(
        f"modality {name!r} holds strings (text or categories), but its backbone "
        f"{_label(chosen.origin)} accepts {accepted} input. Backbones that "
        f"accept 'text': {accepting('text')}; 'categorical': {accepting('categorical')}. Choose "
        f"one, e.g. backbone={{{name!r}: {example!r}, ...}}, or encode the columns as numbers."
    )


def resolve_kinds(
    arrays: Mapping[str, np.ndarray], chosen: Mapping[str, Resolved]
) -> dict[str, str]:
    """``{modality: "text" | "categorical"}`` for the modalities read raw (see the module);
    ``chosen``: each modality's resolved backbone (errors name it by its origin)."""
    kinds = {}
    for name, values in arrays.items():
        backbone, label = chosen[name].component, _label(chosen[name].origin)
        if _encodes_images(name, backbone, label, values):
            kinds[name] = "image"
            continue
        raw = [kind for kind in backbone.input_kinds if kind in RAW_KINDS]
        if values.dtype == object:
            if not raw:
                _refuse_strings(name, chosen[name], values.shape[1])
            kind = "text" if "text" in raw and values.shape[1] == 1 else raw[0]
        elif raw and not any(kind in NUMERIC_KINDS for kind in backbone.input_kinds):
            if "categorical" not in raw:
                raise ValueError(
                    f"modality {name!r} holds numbers, but its backbone {label} "
                    f"accepts {' or '.join(raw)} only. Pass strings, or choose a backbone for "
                    "numbers, e.g. 'mlp'."
                )
            if values.ndim != 2:
                raise ValueError(
                    f"modality {name!r}: categorical codes must be a table (n, k), got shape "
                    f"{values.shape}."
                )
            kind = "categorical"
        else:
            continue
        if kind == "text" and values.shape[1] != 1:
            raise ValueError(
                f"modality {name!r} is text, which is one column of strings per sample, but it "
                f"has {values.shape[1]} columns. Make each text column a modality of its own "
                "(prefix 'review__text', 'title__text', ...)."
            )
        if backbone.input_encoder() is None:
            raise TypeError(
                f"backbone {label} of modality {name!r} accepts {kind!r} input but "
                "its input_encoder() returned None; this is a bug in the plugin."
            )
        kinds[name] = kind
    return kinds


def _encodes_images(name: str, backbone: Backbone, label: str, values: np.ndarray) -> bool:
    """Whether an image backbone's own encoder reads the modality (file paths or arrays)."""
    if "image" not in backbone.input_kinds:
        return False
    encoder = backbone.input_encoder()
    if encoder is None or encoder.kind != "image":
        return False
    paths = values.dtype == object and values.ndim == 2 and values.shape[1] == 1
    if not (paths or (values.dtype != object and values.ndim == 4)):
        raise ValueError(
            f"modality {name!r}: its backbone {label} reads images, as (n, C, H, W) "
            f"arrays or one column of image file paths, but got values of dtype {values.dtype} "
            f"and shape {values.shape}."
        )
    return True


def check_kinds(arrays: Mapping[str, np.ndarray], layout: ModalityLayout) -> None:
    """At predict: strings only where the model reads a modality raw."""
    for name, values in arrays.items():
        if values.dtype == object and name not in layout.kinds:
            raise ValueError(
                f"modality {name!r} holds strings, but the model was fitted on numbers for it. "
                "Pass the same kind of values as at fit."
            )


def _missing(values: np.ndarray) -> np.ndarray:
    """Elementwise missing (None, NaN, pd.NA) of an object or float array."""
    return np.asarray(pd.isna(values), dtype=bool)


def _present_rows(name: str, kind: str, values: np.ndarray, empty_is_missing: bool) -> np.ndarray:
    if kind == "image" and values.dtype != object:  # all-NaN images absent, partial NaN refused
        return presence_mask({name: values}).mask[:, 0]
    missing = _missing(values)
    if kind == "categorical":
        return ~missing.all(axis=1)
    column = values[:, 0]
    present = ~missing[:, 0]
    odd = [i for i in np.flatnonzero(present) if not isinstance(column[i], str)]
    if odd and kind == "image":
        raise ValueError(
            f"modality {name!r} holds image file paths, but row {odd[0]} holds {column[odd[0]]!r} "
            f"({type(column[odd[0]]).__name__}); paths are strings, or None / NaN when the image "
            "is missing."
        )
    if odd:
        raise ValueError(
            f"modality {name!r} is text, but row {odd[0]} holds {column[odd[0]]!r} "
            f"({type(column[odd[0]]).__name__}); text rows are strings, or None / NaN when the "
            "text is missing."
        )
    if empty_is_missing:
        present &= np.array([not (isinstance(v, str) and v.strip() == "") for v in column])
    return present


def _encoder_input(kind: str, values: np.ndarray) -> np.ndarray:
    """What the encoder sees: ``(n,)`` strings, or ``(n, k)`` objects with ``None`` if missing;
    images: ``(n,)`` paths or the ``(n, C, H, W)`` array."""
    if kind == "image" and values.dtype != object:
        return values
    if kind in ("text", "image"):
        return values[:, 0].astype(object)
    cells = values.astype(object)
    cells[_missing(cells)] = None
    return cells


def prepare(
    arrays: Mapping[str, np.ndarray],
    kinds: Mapping[str, str],
    encoders: dict[str, InputEncoder],
    fit: bool,
) -> PreparedInput:
    """:func:`~fusekit.data.presence_mask` for the float blocks, the encoders for the raw ones.

    ``fit``: fit ``encoders`` (made by the backbones) on the present rows first.
    """
    if not kinds:
        return presence_mask(dict(arrays))
    numeric = {m: a for m, a in arrays.items() if m not in kinds}
    prepared = presence_mask(numeric) if numeric else None
    names = list(arrays)
    n = next(iter(arrays.values())).shape[0]
    mask = np.ones((n, len(names)), dtype=bool)
    out: dict[str, np.ndarray] = {}
    steps: dict[str, np.ndarray] = {}
    for position, name in enumerate(names):
        if name not in kinds:
            column = list(numeric).index(name)
            mask[:, position] = prepared.mask[:, column]
            out[name] = prepared.arrays[name]
            if name in prepared.steps:
                steps[name] = prepared.steps[name]
            continue
        kind, encoder = kinds[name], encoders[name]
        empty_is_missing = bool(getattr(encoder, "empty_is_missing", False))
        present = _present_rows(name, kind, arrays[name], empty_is_missing)
        values = _encoder_input(kind, arrays[name][present])
        if fit:
            encoder.fit(values)
        try:
            encoded = _checked(name, encoder, encoder.transform(values), len(values))
        except InputFileError as error:
            row = "" if error.row is None else f" (row {np.flatnonzero(present)[error.row]} of X)"
            raise InputFileError(f"modality {name!r}{row}: {error}", error.file) from error
        full = np.zeros((n, *encoded.values.shape[1:]), dtype=encoded.values.dtype)
        full[present] = encoded.values
        out[name] = full
        if encoded.steps is not None:
            real = np.zeros(full.shape, dtype=bool)
            real[present] = encoded.steps
            steps[name] = real
        mask[:, position] = present
    return PreparedInput(arrays=out, mask=mask, steps=steps)


def _checked(name: str, encoder: InputEncoder, encoded: Any, n: int) -> Any:
    """The encoder's output, or a ``RuntimeError`` naming the broken promise."""
    values, shape = np.asarray(encoded.values), tuple(encoder.shape)
    dtype = np.float32 if encoder.kind == "image" else np.int64
    if values.dtype != dtype or values.shape != (n, *shape):
        raise RuntimeError(
            f"the input encoder {type(encoder).__name__} of modality {name!r} returned "
            f"{values.dtype} values of shape {values.shape}, but promised {np.dtype(dtype)} "
            f"(n, *{shape}) = {(n, *shape)}. This is a bug in the plugin."
        )
    if encoded.steps is not None and np.asarray(encoded.steps).shape != values.shape:
        raise RuntimeError(
            f"the input encoder {type(encoder).__name__} of modality {name!r} returned steps of "
            f"shape {np.asarray(encoded.steps).shape} for values of shape {values.shape}."
        )
    encoded.values = values
    return encoded


def network_shapes(layout: ModalityLayout, encoders: Mapping[str, InputEncoder]) -> dict:
    """The per-sample shapes the network is built with: the encoded ones for raw modalities."""
    return {
        m: tuple(encoders[m].shape) if m in encoders else tuple(s) for m, s in layout.shapes.items()
    }


def restore_encoders(
    chosen: Mapping[str, Resolved], kinds: Mapping[str, str], states: Mapping[str, EncoderState]
) -> dict[str, InputEncoder]:
    """Encoders made by the loaded model's own (resolved) backbones, with the stored fitted
    state."""
    missing = sorted(set(kinds) - set(states))
    if missing or set(states) - set(kinds):
        raise ValueError(
            f"the model file stores input encoders for {sorted(states)} but the layout reads "
            f"{sorted(kinds)} raw"
        )
    encoders = {}
    for name, kind in kinds.items():
        encoder = chosen[name].component.input_encoder()
        if encoder is None or encoder.kind != kind:
            raise ValueError(
                f"modality {name!r} is {kind} in the model file, but its backbone "
                f"{_label(chosen[name].origin)} makes no {kind} encoder"
            )
        encoder.load_state(states[name])
        encoders[name] = encoder
    return encoders


def standardized(standardize: Any, layout: ModalityLayout) -> list[str]:
    """The modalities ``standardize`` (a bool or ``{modality: bool}``) z-scores; raw ones never.

    ``ValueError`` naming unknown modalities, or a raw modality asked to be standardised.
    """
    names = [m for m in layout.names if m not in layout.kinds]
    if not isinstance(standardize, Mapping):
        return names if standardize else []
    unknown = [m for m in standardize if m not in layout.names]
    if unknown:
        raise ValueError(
            f"standardize names modalities {unknown} that X does not have; its modalities are "
            f"{list(layout.names)}."
        )
    raw = [m for m, on in standardize.items() if on and m in layout.kinds]
    if raw:
        raise ValueError(
            f"standardize={dict(standardize)} asks to standardise {raw}, which are "
            f"{[layout.kinds[m] for m in raw]}: token ids and category codes are never "
            "standardised. Set them to False or leave them out."
        )
    return [m for m in names if standardize.get(m, True)]
