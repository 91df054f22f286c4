"""Saving and loading fitted estimators without pickle.

A file format only: the estimator hands its state over (``_get_state``, a :class:`ModelState`) and
builds itself from one (``_from_state``); this module never reaches into an estimator and knows
none of its parameters or fitted attributes by name: it stores them by their type
(:mod:`fusekit.encoding`). ``estimator.save(path)`` writes one ``safetensors`` file: the network's
weights, the standardisation statistics and every numeric array as tensors, plus a JSON document
in the file's metadata (estimator class, parameters, fitted attributes, modality names and shapes,
and every plugin used with its distribution and version) and a SHA-256 digest over the document
and the tensor bytes; with ``key=...`` also an HMAC-SHA-256 signature over the same bytes
(:mod:`fusekit.signing`). The digest catches accidents (truncation, bit rot, careless edits), not
forgers, who can recompute it; the signature gives authenticity to whoever holds the key. Files
are written atomically.

``fusekit.load(path)`` parses only JSON and raw tensors, so loading a file runs no code from it:
plugins are looked up by name in the installed registry, stored callbacks must be inert ones
(:data:`STORABLE_CALLBACKS`), and every declared shape is checked against the stored weights
before a network is built (:func:`check_weights`). Use it for files from others; pickle/joblib also
work (scikit-learn convention) but must only be used for trusted files. Whole pipelines:
:mod:`fusekit.saving`.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from fusekit import model_formats, signing
from fusekit.atomic import atomic_path
from fusekit.data import ModalityLayout, Standardizer
from fusekit.encoding import (
    STORABLE_CALLBACKS,
    Encoder,
    ParameterNotSavedWarning,
    RefusedValueError,
    decode,
)
from fusekit.engine.registry import get_registry
from fusekit.plugin import ENCODED_KINDS, EncoderState
from fusekit.plugin.raw import check_json

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "STORABLE_CALLBACKS",
    "ModelFileError",
    "ModelState",
    "ParameterNotSavedWarning",
    "PluginVersionWarning",
    "SignatureError",
    "check_signature",
    "check_weights",
    "read",
    "write",
]

FORMAT = "fusekit-model"
#: 2: the network holds a list of weightings (weights under ``weightings.<i>.``); version-1 files
#: (one weighting under ``weighting.``, or ``compose`` with ``weighting__steps``) still load.
#: 3: parameters and fitted attributes encoded by type, the fitted ones under ``fitted``;
#: version-2 files (fitted attributes in fields of their own) still load.
#: 4: text / categorical modalities (layout ``kinds``) with their fitted input encoders
#: (``encoders``), and standardisation of some modalities only (``standardized_modalities``);
#: version-3 files (none of these: every modality numeric, all or none standardised) still load.
FORMAT_VERSION = 4
#: The name prefix of the tensors that hold the NumPy arrays of parameters and fitted attributes.
_VALUE_TENSORS = "values."


class ModelFileError(ValueError):
    """A model file is truncated, tampered with, or not a fusekit model."""

    @classmethod
    def mismatch(cls, path: str | Path, error: BaseException) -> ModelFileError:
        """The error for a document that does not match its weights or is incomplete."""
        if isinstance(error, ModelFileError):
            return error if str(path) in str(error) else type(error)(f"{path}: {error}")
        return cls(
            f"{path}: the model document does not match its weights or is incomplete "
            f"({type(error).__name__}: {error})"
        )


class SignatureError(ModelFileError):
    """A file's keyed signature is missing, unexpected or does not match the key given."""


class PluginVersionWarning(UserWarning):
    """A plugin's installed version differs from the one the model was saved with."""


def _feed(hasher: Any, document: str, tensors: dict[str, torch.Tensor]) -> None:
    """Feed the document, then each tensor's name, shape, dtype and bytes, to ``hasher``."""
    hasher.update(document.encode())
    for key in sorted(tensors):
        tensor = tensors[key].contiguous()
        hasher.update(key.encode())
        hasher.update(str(tuple(tensor.shape)).encode() + str(tensor.dtype).encode())
        hasher.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")


def _digest(document: str, tensors: dict[str, torch.Tensor]) -> str:
    """The plain SHA-256 digest: catches accidents, not forgers (anyone can recompute it)."""
    digest = hashlib.sha256()
    _feed(digest, document, tensors)
    return digest.hexdigest()


def _signature(key: bytes, document: str, tensors: dict[str, torch.Tensor]) -> str:
    """The keyed HMAC-SHA-256 over the same bytes as :func:`_digest`."""
    signature = signing.signer(key)
    _feed(signature, document, tensors)
    return signature.hexdigest()


def check_signature(
    path: str | Path, stored: str | None, key: bytes | None, compute: Callable[[bytes], str]
) -> None:
    """Refuse a signed file loaded without a key, an unsigned one loaded with a key, and a
    signature that ``compute(key)`` does not reproduce (another key, or the file was changed)."""
    if key is None and stored is None:
        return
    if key is None:
        raise SignatureError(
            f"{path} is signed with a key; pass it to load the file: fusekit.load(path, key=...)."
        )
    if stored is None:
        raise SignatureError(
            f"{path} is not signed, but a key was given: it was not written with "
            "fusekit.save(..., key=...) (or its signature was removed). Do not use it."
        )
    if not isinstance(stored, str) or not signing.same(compute(key), stored):
        raise SignatureError(
            f"{path} failed its signature check: it was signed with another key, or changed "
            "after signing. Do not use it."
        )


@dataclass
class ModelState:
    """Everything a fitted estimator stores, as the estimator hands it over (``_get_state``).

    Attributes:
        estimator: the estimator's class name (``"FusionClassifier"``...).
        params: ``get_params(deep=False)``; when read back, plugin entries are unbuilt instances
            and values that could not be stored are ``None``.
        layout: the modality layout seen at ``fit``.
        standardizer: the input standardisation, or ``None``.
        weights: the network's ``state_dict``.
        plugins: ``{"kind", "name", "distribution", "version"}`` of every registered plugin the
            network uses (the estimator's ``plugins_``), checked against the installed ones when
            read back.
        fitted: the other fitted attributes, by attribute name (the estimator declares which);
            each value is stored by its type (:mod:`fusekit.encoding`). A file of an earlier
            version holds fewer of them.
    """

    estimator: str
    params: dict[str, Any]
    layout: ModalityLayout
    standardizer: Standardizer | None
    weights: dict[str, torch.Tensor]
    plugins: list[dict[str, str]] = field(default_factory=list)
    fitted: dict[str, Any] = field(default_factory=dict)
    encoders: dict[str, EncoderState] = field(default_factory=dict)
    #: ``{(kind, class): registered name}`` of the network's components, as they were resolved
    #: (written, not read back): class-valued parameters are stored under these names.
    plugin_names: dict[tuple[str, type], str] = field(default_factory=dict)


def _encoder_records(
    encoders: Mapping[str, EncoderState], tensors: dict[str, torch.Tensor]
) -> dict[str, Any]:
    """The input encoders' states: config in the document, arrays and files as tensors."""
    records = {}
    for name, state in encoders.items():
        check_json(f"the input encoder state of modality {name!r}", state.config)
        arrays, files = sorted(state.arrays), sorted(state.files)
        for position, key in enumerate(arrays):
            array = np.asarray(state.arrays[key])
            if array.dtype.kind not in "biuf":
                raise TypeError(
                    f"the input encoder of modality {name!r} holds the array {key!r} of dtype "
                    f"{array.dtype}; encoder arrays must be numeric or bool (put strings in its "
                    "config or files)"
                )
            native = np.ascontiguousarray(array.astype(array.dtype.newbyteorder("=")))
            tensors[f"encoders.{name}.arrays.{position}"] = torch.from_numpy(native.copy())
        for position, key in enumerate(files):
            data = np.frombuffer(bytes(state.files[key]), dtype=np.uint8).copy()
            tensors[f"encoders.{name}.files.{position}"] = torch.from_numpy(data)
        records[name] = {"config": state.config, "arrays": arrays, "files": files}
    return records


def write(state: ModelState, path: str | Path, key: signing.SigningKey | None = None) -> Path:
    """Write ``state`` to ``path`` (a safetensors file with a JSON document), atomically: an
    existing file is replaced only once the new one is complete. With ``key`` the file is also
    signed (HMAC-SHA-256), and loads only with the same key."""
    path = Path(path)
    secret = signing.key_bytes(key)
    tensors = {
        f"module.{k}": v.detach().cpu().contiguous().clone() for k, v in state.weights.items()
    }
    standardizer, layout = state.standardizer, state.layout
    if standardizer is not None:
        for name in standardizer.means:
            tensors[f"standardizer.mean.{name}"] = torch.from_numpy(standardizer.means[name].copy())
            tensors[f"standardizer.scale.{name}"] = torch.from_numpy(
                standardizer.scales[name].copy()
            )
    values = Encoder(_VALUE_TENSORS, state.plugin_names)
    document: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "estimator": state.estimator,
        "params": {k: values.top(f"parameter {k}", v) for k, v in state.params.items()},
        "fitted": {k: values.top(f"fitted attribute {k}", v) for k, v in state.fitted.items()},
        "plugins": [dict(record) for record in state.plugins],
        "layout": {
            "names": list(layout.names),
            "shapes": {m: list(s) for m, s in layout.shapes.items()},
            "source": layout.source,
            "columns": {m: [int(c) for c in cols] for m, cols in layout.columns.items()},
            "kinds": dict(layout.kinds),
        },
        "standardized": standardizer is not None,
        "standardized_modalities": [] if standardizer is None else list(standardizer.means),
        "encoders": _encoder_records(state.encoders, tensors),
    }
    tensors.update(values.tensors)
    text = json.dumps(document, sort_keys=True)
    metadata = {"fusekit": text, "fusekit_sha256": _digest(text, tensors)}
    if secret is not None:
        metadata[_SIGNATURE] = _signature(secret, text, tensors)
    with atomic_path(path) as temporary:
        save_file(tensors, str(temporary), metadata=metadata)
    return path


# -- decoding ---------------------------------------------------------------------------------
_SIGNATURE = "fusekit_hmac_sha256"


def _read(path: Path, key: bytes | None) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise ModelFileError(
            f"{path} is not a readable fusekit model (truncated or corrupted): {error}"
        ) from None
    text = metadata.get("fusekit")
    if text is None or "fusekit_sha256" not in metadata:
        raise ModelFileError(f"{path} is a safetensors file but not a fusekit model")
    if not signing.same(_digest(text, tensors), metadata["fusekit_sha256"]):
        raise ModelFileError(
            f"{path} failed its integrity check: the weights or the document were changed after "
            "saving (or the file is corrupted). Do not use it."
        )
    check_signature(
        path, metadata.get(_SIGNATURE), key, lambda secret: _signature(secret, text, tensors)
    )
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ModelFileError(f"{path}: the model document is not valid JSON: {error}") from None
    if document.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not a fusekit model (format {document.get('format')!r})")
    if document.get("format_version", 0) > FORMAT_VERSION:
        raise ModelFileError(
            f"{path} was written by a newer fusekit (format {document['format_version']}); "
            "upgrade fusekit to load it."
        )
    return model_formats.current(document, tensors)


def _plugin_records(document: dict[str, Any]) -> list[dict[str, str]]:
    """The document's plugin records, each exactly ``{"kind", "name", "distribution",
    "version"}`` of strings."""
    records = document.get("plugins", [])
    fields = {"kind", "name", "distribution", "version"}
    if not isinstance(records, list) or not all(
        isinstance(r, dict) and set(r) == fields and all(isinstance(v, str) for v in r.values())
        for r in records
    ):
        raise ValueError(f"the plugin records must be a list of {sorted(fields)} string objects")
    return [dict(r) for r in records]


def _check_plugins(document: dict[str, Any]) -> None:
    registry = get_registry()
    for record in document.get("plugins", []):
        kind, name = record["kind"], record["name"]
        try:
            entry = registry.entry(kind, name)
        except ValueError:
            raise ModuleNotFoundError(
                f"this model uses the {kind} {name!r} from the distribution "
                f"{record['distribution']} {record['version']}, which is not installed. Install "
                f"it: pip install {record['distribution']}=={record['version']}"
            ) from None
        if entry.version != record["version"]:
            warnings.warn(
                f"the model was saved with {record['distribution']} {record['version']} for the "
                f"{kind} {name!r}; {entry.distribution} {entry.version} is installed. Predictions "
                "may differ.",
                PluginVersionWarning,
                stacklevel=3,
            )


#: The most values one sample of one modality may declare (a 3 x 16384 x 16384 image is 0.8e9);
#: every declared shape is also checked against the stored weights before a network is built.
MAX_SAMPLE_VALUES = 2**31 - 1

#: The most bytes a network built from a model file may hold beyond the weights the file stores
#: (buffers that are not saved); a bigger one is refused before it is built.
MAX_UNSTORED_BYTES = 64 * 2**20


def _count(value: Any, what: str) -> int:
    """A positive JSON integer (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return value


def _decode_layout(layout_doc: dict[str, Any]) -> ModalityLayout:
    """The modality layout; every declared shape checked and bounded (:data:`MAX_SAMPLE_VALUES`)."""
    names = layout_doc["names"]
    shapes, columns, source = layout_doc["shapes"], layout_doc["columns"], layout_doc["source"]
    if not (isinstance(names, list) and names and all(isinstance(m, str) for m in names)):
        raise ValueError(f"the modality names must be a non-empty list of strings, got {names!r}")
    if len(set(names)) != len(names) or set(shapes) != set(names):
        raise ValueError(f"the modality shapes {sorted(shapes)} do not match the names {names}")
    if source not in ("mapping", "table"):
        raise ValueError(f"the layout's source must be 'mapping' or 'table', got {source!r}")
    checked: dict[str, tuple[int, ...]] = {}
    for name in names:
        shape = shapes[name]
        if not isinstance(shape, list) or not 1 <= len(shape) <= 8:
            raise ValueError(
                f"modality {name!r}: the shape {shape!r} is not a list of 1 to 8 sizes"
            )
        checked[name] = tuple(
            _count(d, f"modality {name!r}: each size of the shape") for d in shape
        )
        values = math.prod(checked[name])
        if values > MAX_SAMPLE_VALUES:
            raise ValueError(
                f"modality {name!r} declares the shape {checked[name]} ({values} values per "
                f"sample), more than the {MAX_SAMPLE_VALUES} a model file may declare"
            )
        if name in columns and len(columns[name]) != values:
            raise ValueError(
                f"modality {name!r} declares the shape {checked[name]} but "
                f"{len(columns[name])} columns"
            )
    kinds = layout_doc.get("kinds", {})  # format 3 and earlier: every modality numeric
    if not (isinstance(kinds, dict) and set(kinds) <= set(names)) or any(
        kind not in ENCODED_KINDS for kind in kinds.values()
    ):
        raise ValueError(f"the layout's kinds {kinds!r} are not encoded kinds of its modalities")
    # the document's keys are sorted; the network's modality order is the fitted one (names)
    return ModalityLayout(
        names=tuple(names),
        shapes=checked,
        source=source,
        columns={m: np.asarray(columns[m], dtype=int) for m in names if m in columns},
        kinds=dict(kinds),
    )


def _file_name(name: Any) -> str:
    if (
        not isinstance(name, str)
        or not name
        or name in (".", "..")
        or any(c in name for c in "/\\")
    ):
        raise ValueError(f"an input encoder's file name must be a plain name, got {name!r}")
    return name


def _decode_encoders(
    document: dict[str, Any], tensors: dict[str, torch.Tensor], layout: ModalityLayout
) -> dict[str, EncoderState]:
    """The input encoders' states; one for every raw modality of ``layout``, none other."""
    records = document.get("encoders", {})  # format 3 and earlier: none
    if not isinstance(records, dict) or set(records) != set(layout.kinds):
        raise ValueError(
            f"the model file stores input encoders for {sorted(records)} but its layout reads "
            f"{sorted(layout.kinds)} raw"
        )
    states = {}
    for name, record in records.items():
        config, arrays, files = record["config"], record["arrays"], record["files"]
        check_json(f"the input encoder state of modality {name!r}", config)
        if not isinstance(config, dict) or not all(isinstance(a, str) for a in arrays):
            raise ValueError(f"the input encoder record of modality {name!r} is malformed")
        states[name] = EncoderState(
            config=config,
            arrays={
                key: tensors[f"encoders.{name}.arrays.{i}"].numpy() for i, key in enumerate(arrays)
            },
            files={
                _file_name(key): tensors[f"encoders.{name}.files.{i}"].numpy().tobytes()
                for i, key in enumerate(files)
            },
        )
    return states


def check_weights(build: Callable[[], torch.nn.Module], stored: Mapping[str, torch.Tensor]) -> None:
    """Refuse ``stored`` weights unless they are exactly those of the network ``build()`` makes
    (the one the document describes; built here on torch's ``meta`` device, so nothing is
    allocated) and that network holds at most :data:`MAX_UNSTORED_BYTES` more than them.
    ``ValueError`` naming the first difference."""
    try:
        with torch.device("meta"):
            skeleton = build()
    except (NotImplementedError, RuntimeError) as error:
        raise ValueError(
            "the network the document describes could not be built on torch's meta device, where "
            f"it is checked against the stored weights before anything is allocated: {error}"
        ) from None
    expected = skeleton.state_dict()
    missing, unexpected = sorted(set(expected) - set(stored)), sorted(set(stored) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"the stored weights are not those of the network the document describes: missing "
            f"{missing[:5]}, unexpected {unexpected[:5]}"
        )
    for name, tensor in expected.items():
        if tuple(tensor.shape) != tuple(stored[name].shape):
            raise ValueError(
                f"the weight {name!r} has the shape {tuple(stored[name].shape)} in the file, but "
                f"the network the document describes needs {tuple(tensor.shape)} (a modality's "
                "shape, the number of classes or outputs, or a plugin parameter was changed)"
            )
    tensors = {id(t): t for t in [*skeleton.parameters(), *skeleton.buffers()]}.values()
    needed = sum(t.numel() * t.element_size() for t in tensors)
    held = sum(t.numel() * t.element_size() for t in stored.values())
    if needed > held + MAX_UNSTORED_BYTES:
        raise ValueError(
            f"the network the document describes needs {needed} bytes, but the file stores "
            f"{held} bytes of weights; refusing to build it"
        )


def read(path: str | Path, key: signing.SigningKey | None = None) -> ModelState:
    """The :class:`ModelState` stored at ``path``; ``ModelFileError`` on a bad file,
    :class:`SignatureError` on a missing, unexpected or wrong keyed signature."""
    path = Path(path)
    document, tensors = _read(path, signing.key_bytes(key))
    _check_plugins(document)
    try:
        layout = _decode_layout(document["layout"])
        values = {k: v for k, v in tensors.items() if k.startswith(_VALUE_TENSORS)}
        params, fitted = document["params"], document["fitted"]
        if not (isinstance(params, dict) and isinstance(fitted, dict)):
            raise ValueError("the parameters and the fitted attributes must be JSON objects")
        return ModelState(
            estimator=document["estimator"],
            params={k: decode(v, values) for k, v in params.items()},
            layout=layout,
            standardizer=_standardizer(document, tensors, layout),
            weights={k[len("module.") :]: v for k, v in tensors.items() if k.startswith("module.")},
            fitted={k: decode(v, values) for k, v in fitted.items()},
            encoders=_decode_encoders(document, tensors, layout),
            plugins=_plugin_records(document),
        )
    except RefusedValueError as error:
        raise ModelFileError(f"{path}: {error}") from None
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise ModelFileError.mismatch(path, error) from None


def _standardizer(
    document: dict[str, Any], tensors: dict[str, torch.Tensor], layout: ModalityLayout
) -> Standardizer | None:
    if not document.get("standardized"):
        return None
    standardizer = Standardizer()
    names = document.get("standardized_modalities", list(layout.names))  # format 3: all
    if not (isinstance(names, list) and set(names) <= set(layout.names) - set(layout.kinds)):
        raise ValueError(f"the standardised modalities {names!r} are not numeric modalities")
    for name in names:
        mean = tensors[f"standardizer.mean.{name}"].numpy()
        scale = tensors[f"standardizer.scale.{name}"].numpy()
        shape = (1, *layout.shapes[name])
        broadcastable = mean.ndim == len(shape) and all(
            size in (1, full) for size, full in zip(mean.shape, shape, strict=True)
        )
        if not broadcastable or scale.shape != mean.shape:
            raise ValueError(
                f"the standardisation statistics of {name!r} have the shapes {mean.shape} and "
                f"{scale.shape}, which do not fit the modality's shape {layout.shapes[name]}"
            )
        standardizer.means[name], standardizer.scales[name] = mean, scale
    return standardizer
