"""Saving and loading fitted estimators without pickle.

A file format only: the estimator hands its state over (``_get_state``, a :class:`ModelState`) and
builds itself from one (``_from_state``); this module never reaches into an estimator.
``estimator.save(path)`` writes one ``safetensors`` file: the network's weights and the
standardisation statistics as tensors, plus a JSON document in the file's metadata (estimator
class and parameters, modality names and shapes, class labels, target scaling, and every plugin
used with its distribution and version) and a SHA-256 digest over the document and the tensor
bytes; with ``key=...`` also an HMAC-SHA-256 signature over the same bytes (:mod:`fusekit.signing`).
The digest catches accidents (truncation, bit rot, careless edits), not forgers, who can recompute
it; the signature gives authenticity to whoever holds the key. Files are written atomically.

``fusekit.load(path)`` parses only JSON and raw tensors, so loading a file runs no code from it:
plugins are looked up by name in the installed registry, stored callbacks must be inert ones
(:data:`STORABLE_CALLBACKS`), and every declared shape is checked against the stored weights
before a network is built (:func:`check_weights`). Use it for files from others; pickle/joblib also
work (scikit-learn convention) but must only be used for trusted files. Whole pipelines:
:mod:`fusekit.saving`.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import skorch.callbacks
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from skorch.callbacks import Callback
from skorch.dataset import ValidSplit

from fusekit import signing
from fusekit.atomic import atomic_path
from fusekit.data import ModalityLayout, Standardizer
from fusekit.engine.registry import get_registry
from fusekit.engine.resolve import PREFIXES
from fusekit.plugin import Component

FORMAT = "fusekit-model"
#: 2: the network holds a list of weightings (weights under ``weightings.<i>.``); version-1 files
#: (one weighting under ``weighting.``, or ``compose`` with ``weighting__steps``) still load.
FORMAT_VERSION = 2


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


# -- encoding ---------------------------------------------------------------------------------
def _plugin_name(kind: str, spec: Any) -> Any:
    """A registered name (or ``{"name", "params"}`` for an instance) for a plugin parameter."""
    registry = get_registry()
    if isinstance(spec, str):
        return spec
    cls = spec if isinstance(spec, type) else type(spec)
    name = registry.name_of(kind, cls)
    if name is None:
        raise TypeError(
            f"save() stores plugins by registered name, but {kind} {cls.__name__} is not "
            "registered. Register it through the fusekit entry point, or use pickle/joblib "
            "(trusted files only)."
        )
    if isinstance(spec, Component):
        return {"name": name, "params": _json_value(f"{kind} parameters", spec.get_params())}
    return name


def _json_value(where: str, value: Any) -> Any:
    try:
        json.dumps(value)
    except TypeError as error:
        raise TypeError(
            f"save() can store JSON values only; {where} holds {value!r}: {error}. Use a plain "
            "value, or pickle/joblib (trusted files only)."
        ) from None
    return value


def _plain(value: Any) -> Any:
    """A NumPy scalar as the Python scalar it holds (class labels of ``class_weight``)."""
    return value.item() if hasattr(value, "item") else value


def _encode_params(params: dict[str, Any]) -> dict[str, Any]:
    encoded: dict[str, Any] = {}
    for key, value in params.items():
        if key == "train_split":
            encoded[key] = _encode_train_split(value)
        elif key == "callbacks":
            encoded[key] = _encode_callbacks(value)
        elif key == "backbone" and isinstance(value, dict):
            encoded[key] = {m: _plugin_name("backbone", v) for m, v in value.items()}
        elif key == "weighting" and isinstance(value, (list, tuple)):
            encoded[key] = [_plugin_name("weighting", v) for v in value]
        elif key in PREFIXES:
            encoded[key] = _plugin_name(key, value)
        elif key == "optimizer" and isinstance(value, type):
            encoded[key] = {"torch.optim": value.__name__}
        elif key == "lr_schedule" and callable(value):
            encoded[key] = None  # a schedule object: training-time only; not needed to predict
        elif key == "random_state" and not (value is None or isinstance(value, int)):
            _not_stored(key, value)
            encoded[key] = None
        elif key == "class_weight" and isinstance(value, dict):  # JSON keys would become strings
            pairs = [[_plain(label), float(weight)] for label, weight in value.items()]
            encoded[key] = {"class_weight_pairs": _json_value("parameter 'class_weight'", pairs)}
        else:
            encoded[key] = _json_value(f"parameter {key!r}", value)
    return encoded


class ParameterNotSavedWarning(UserWarning):
    """A training-only parameter could not be stored; it comes back as ``None``."""


def _not_stored(key: str, value: Any) -> None:
    warnings.warn(
        f"save() cannot store the parameter {key}={value!r} (only None, ints, and skorch's "
        f"ValidSplit and allowed callbacks with plain-value arguments are stored); the loaded "
        f"model has {key}=None. Predictions are unaffected; set it again before refitting.",
        ParameterNotSavedWarning,
        stacklevel=6,  # the caller of estimator.save
    )


def _changed_params(obj: Any, params: dict[str, Any]) -> dict[str, Any] | None:
    """The constructor arguments of ``obj`` that differ from their defaults, if all are JSON."""
    signature = inspect.signature(type(obj))
    changed = {}
    for name, value in params.items():
        parameter = signature.parameters.get(name)
        if parameter is not None and parameter.default is not inspect.Parameter.empty:
            try:
                if bool(parameter.default == value) and type(parameter.default) is type(value):
                    continue
            except (TypeError, ValueError):  # arrays and other odd comparisons
                pass
        changed[name] = value
    try:
        json.dumps(changed)
    except (TypeError, ValueError):
        return None
    return changed


def _encode_train_split(value: Any) -> Any:
    """``None``/``False`` as they are; skorch's ``ValidSplit`` by name and changed arguments."""
    if value is None or value is False:
        return value
    if type(value) is ValidSplit:
        params = {k: getattr(value, k) for k in ("cv", "stratified", "random_state")}
        changed = _changed_params(value, params)
        if changed is not None:
            return {"skorch.dataset": "ValidSplit", "params": changed}
    _not_stored("train_split", value)
    return None


#: The skorch callbacks a model file may hold, each with the arguments it may store. Each one only
#: computes, prints or stops training: none of these arguments names a file, a directory or code
#: (``sink`` and ``target_extractor``, which take functions, are never stored).
STORABLE_CALLBACKS: dict[str, frozenset[str]] = {
    "EarlyStopping": frozenset(
        {"monitor", "patience", "threshold", "threshold_mode", "lower_is_better", "load_best"}
    ),
    "GradientNormClipping": frozenset({"gradient_clip_value", "gradient_clip_norm_type"}),
    "EpochScoring": frozenset({"scoring", "lower_is_better", "on_train", "name", "use_caching"}),
    "BatchScoring": frozenset({"scoring", "lower_is_better", "on_train", "name", "use_caching"}),
    "PassthroughScoring": frozenset({"name", "lower_is_better", "on_train"}),
    "EpochTimer": frozenset(),
    "PrintLog": frozenset({"keys_ignored", "tablefmt", "floatfmt", "stralign"}),
    "ProgressBar": frozenset({"batches_per_epoch", "detect_notebook", "postfix_keys"}),
}


def _storable_callback_class(callback: Any) -> type | None:
    """The skorch class of ``callback`` if it is one of :data:`STORABLE_CALLBACKS` (exactly)."""
    cls = type(callback)
    if cls.__name__ in STORABLE_CALLBACKS and getattr(skorch.callbacks, cls.__name__, None) is cls:
        return cls
    return None


def _encode_callbacks(value: Any) -> Any:
    """A list of skorch callbacks (instances or ``(name, instance)``) by class name and params.

    Only :data:`STORABLE_CALLBACKS` are stored; any other callback is refused with ``TypeError``
    (a loaded model would run it: ``Checkpoint`` writes where its arguments say). One with an
    argument that is not a plain value (a ``sink`` function) is not stored: ``None`` and a
    :class:`ParameterNotSavedWarning`.
    """
    if value is None:
        return None
    encoded = []
    for position, item in enumerate(value):
        name, callback = item if isinstance(item, tuple) and len(item) == 2 else (None, item)
        cls = _storable_callback_class(callback)
        if cls is None:
            raise TypeError(
                f"save() does not store the callback {type(callback).__name__} (callbacks"
                f"[{position}]): a model file holds only callbacks that cannot write files or run "
                f"code, {sorted(STORABLE_CALLBACKS)}. Remove it before saving "
                "(model.set_params(callbacks=None)), or use pickle/joblib (trusted files only)."
            )
        changed = _changed_params(callback, callback.get_params(deep=False))
        if changed is None or not set(changed) <= STORABLE_CALLBACKS[cls.__name__]:
            _not_stored("callbacks", value)
            return None
        encoded.append({"name": name, "skorch.callbacks": cls.__name__, "params": changed})
    return encoded


def _decode_callback(record: Any) -> tuple[Any, Callback]:
    """``(name, callback)`` from a stored record; a callback not on the list is never built."""
    if not isinstance(record, dict) or not isinstance(record.get("params"), dict):
        raise ValueError(f"a stored callback is not a record with 'params': {record!r}")
    class_name, params = record.get("skorch.callbacks"), record["params"]
    if class_name not in STORABLE_CALLBACKS:
        raise ModelFileError(
            f"the model file holds the callback {class_name!r}, which a model file may not hold "
            f"(allowed: {sorted(STORABLE_CALLBACKS)}); it was not built. The file was not "
            "written by fusekit.save, or was altered."
        )
    odd = sorted(set(params) - STORABLE_CALLBACKS[class_name])
    if odd:
        raise ModelFileError(
            f"the model file's callback {class_name} has arguments {odd} that a model file may "
            f"not hold (allowed: {sorted(STORABLE_CALLBACKS[class_name])}); it was not built."
        )
    return record.get("name"), getattr(skorch.callbacks, class_name)(**params)


def _decode_training(decoded: dict[str, Any]) -> None:
    split = decoded.get("train_split")
    if isinstance(split, dict):
        if split.get("skorch.dataset") != "ValidSplit":
            raise ModelFileError(
                f"unknown skorch.dataset class {split.get('skorch.dataset')!r} in the model file"
            )
        decoded["train_split"] = ValidSplit(**split["params"])
    callbacks = decoded.get("callbacks")
    if isinstance(callbacks, list):
        built = [_decode_callback(record) for record in callbacks]
        decoded["callbacks"] = [c if name is None else (name, c) for name, c in built]
    elif callbacks is not None:
        raise ValueError(f"the stored callbacks are not a list: {callbacks!r}")


def _decode_params(params: dict[str, Any]) -> dict[str, Any]:
    from fusekit.engine.resolve import instantiate

    decoded = dict(params)
    class_weight = decoded.get("class_weight")
    if isinstance(class_weight, dict) and set(class_weight) == {"class_weight_pairs"}:
        decoded["class_weight"] = {label: w for label, w in class_weight["class_weight_pairs"]}
    for kind in PREFIXES:
        value = decoded.get(kind)
        if isinstance(value, dict) and set(value) == {"name", "params"}:
            decoded[kind] = instantiate(kind, value["name"], value["params"])
        elif kind == "backbone" and isinstance(value, dict):
            decoded[kind] = {
                m: instantiate("backbone", v["name"], v["params"]) if isinstance(v, dict) else v
                for m, v in value.items()
            }
        elif kind == "weighting" and isinstance(value, list):
            decoded[kind] = [
                instantiate("weighting", v["name"], v["params"]) if isinstance(v, dict) else v
                for v in value
            ]
    optimizer = decoded.get("optimizer")
    if isinstance(optimizer, dict):
        name = optimizer.get("torch.optim", "")
        candidate = getattr(torch.optim, name, None)
        if not (isinstance(candidate, type) and issubclass(candidate, torch.optim.Optimizer)):
            raise ModelFileError(f"unknown optimizer {name!r} in the model file")
        decoded["optimizer"] = candidate
    _decode_training(decoded)
    return decoded


def _plugins_used(components: list[tuple[str, Any]]) -> list[dict[str, str]]:
    registry = get_registry()
    seen, records = set(), []
    for kind, component in components:
        name = registry.name_of(kind, type(component))
        if name is None or (kind, name) in seen:
            continue
        seen.add((kind, name))
        entry = registry.entry(kind, name)
        records.append(
            {
                "kind": kind,
                "name": name,
                "distribution": entry.distribution,
                "version": entry.version,
            }
        )
    return records


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


#: Python types a class label of an object array may have; JSON keeps them apart (``"1"``, ``1``,
#: ``1.0``, ``true``), so they come back as the same type.
_LABEL_TYPES = (str, bool, int, float)


def _encode_classes(classes: np.ndarray) -> dict[str, Any]:
    """Class labels as JSON: ``values`` and the numpy ``dtype``.

    Numeric, bool and unicode arrays keep their dtype. Object arrays (pandas strings,
    categoricals, object-dtype labels: what ``np.unique`` gives for them) store each label as
    its JSON value (scikit-learn refuses bytes labels at ``fit``).
    """
    kind = classes.dtype.kind
    if kind in "biufU":
        return {"values": classes.tolist(), "dtype": classes.dtype.str}
    if kind == "O":
        values = [v.item() if isinstance(v, np.generic) else v for v in classes.tolist()]
        odd = sorted({type(v).__name__ for v in values if not isinstance(v, _LABEL_TYPES)})
        if not odd:
            return {"values": values, "dtype": "object"}
        raise TypeError(
            f"save() stores class labels that are strings, numbers or booleans; these labels "
            f"are of type {odd}. Map them to strings first, or use pickle/joblib (trusted files "
            "only)."
        )
    raise TypeError(
        f"save() stores class labels of numeric, bool, unicode or object dtype, got "
        f"{classes.dtype}; use pickle/joblib (trusted files only)."
    )


def _decode_classes(record: dict[str, Any]) -> np.ndarray:
    values, dtype = record["values"], record["dtype"]
    if not isinstance(values, list) or len(values) < 2:
        raise ValueError(f"a classifier has at least two class labels, the file lists {values!r}")
    if dtype == "object":
        if not all(isinstance(v, _LABEL_TYPES) for v in values):
            raise ValueError("class labels must be strings, numbers or booleans")
        classes = np.empty(len(values), dtype=object)
        classes[:] = values
    else:
        classes = np.asarray(values, dtype=np.dtype(dtype))
    # fit stores np.unique's result; a relabelled file (reordered or duplicated labels) is not
    if not np.array_equal(np.unique(classes), classes):
        raise ValueError(
            f"the class labels {values!r} are not sorted and distinct as fit stores them: the "
            "classes were relabelled after saving"
        )
    return classes


@dataclass
class ModelState:
    """Everything a fitted estimator stores, as the estimator hands it over (``_get_state``).

    Attributes:
        estimator: the estimator's class name (``"FusionClassifier"``...).
        params: ``get_params(deep=False)``; when read back, plugin entries are unbuilt instances.
        layout: the modality layout seen at ``fit``.
        standardizer: the input standardisation, or ``None``.
        weights: the network's ``state_dict``.
        components: ``(kind, component)`` of every network component (to record the plugins used;
            empty when read back).
        fitted: the other fitted attributes: ``n_features_in``, ``feature_names_in``,
            ``classes`` (classifiers) or ``target`` (``n_outputs``, ``mean``, ``scale``,
            ``one_dimensional``: regressors), and ``training`` (``n_iter``, ``loss_curve``,
            ``validation_scores``, ``best_epoch``, ``lr``: the training record; absent in files
            written before it was stored).
    """

    estimator: str
    params: dict[str, Any]
    layout: ModalityLayout
    standardizer: Standardizer | None
    weights: dict[str, torch.Tensor]
    components: list[tuple[str, Any]] = field(default_factory=list)
    fitted: dict[str, Any] = field(default_factory=dict)


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
        for name in layout.names:
            tensors[f"standardizer.mean.{name}"] = torch.from_numpy(standardizer.means[name].copy())
            tensors[f"standardizer.scale.{name}"] = torch.from_numpy(
                standardizer.scales[name].copy()
            )
    document: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "estimator": state.estimator,
        "params": _encode_params(state.params),
        "plugins": _plugins_used(state.components),
        "layout": {
            "names": list(layout.names),
            "shapes": {m: list(s) for m, s in layout.shapes.items()},
            "source": layout.source,
            "columns": {m: [int(c) for c in cols] for m, cols in layout.columns.items()},
        },
        "standardized": standardizer is not None,
    }
    fitted = state.fitted
    if "n_features_in" in fitted:
        document["n_features_in"] = int(fitted["n_features_in"])
    if "feature_names_in" in fitted:
        document["feature_names_in"] = [str(c) for c in fitted["feature_names_in"]]
    if "classes" in fitted:
        document["classes"] = _encode_classes(np.asarray(fitted["classes"]))
    else:
        target = fitted["target"]
        document["target"] = {
            "n_outputs": int(target["n_outputs"]),
            "mean": np.asarray(target["mean"]).tolist(),
            "scale": np.asarray(target["scale"]).tolist(),
            "one_dimensional": bool(target["one_dimensional"]),
        }
    if "training" in fitted:
        document["training"] = _encode_training_record(fitted["training"])
    text = json.dumps(document, sort_keys=True)
    metadata = {"fusekit": text, "fusekit_sha256": _digest(text, tensors)}
    if secret is not None:
        metadata[_SIGNATURE] = _signature(secret, text, tensors)
    with atomic_path(path) as temporary:
        save_file(tensors, str(temporary), metadata=metadata)
    return path


def _finite_or_none(values: list[float] | None) -> list[float | None] | None:
    """JSON has no NaN: a missing epoch value is written as null."""
    if values is None:
        return None
    return [float(v) if np.isfinite(v) else None for v in values]


def _encode_training_record(record: dict[str, Any]) -> dict[str, Any]:
    """The training record (``n_iter_``, ``loss_curve_``, ``validation_scores_``,
    ``best_epoch_``, ``lr_``) as JSON values."""
    best = record.get("best_epoch")
    return {
        "n_iter": int(record["n_iter"]),
        "loss_curve": _finite_or_none(record["loss_curve"]),
        "validation_scores": _finite_or_none(record.get("validation_scores")),
        "best_epoch": None if best is None else int(best),
        "lr": float(record["lr"]),
    }


def _decode_training_record(document: dict[str, Any]) -> dict[str, Any]:
    def floats(values: list[float | None] | None) -> list[float] | None:
        return None if values is None else [np.nan if v is None else float(v) for v in values]

    best = document["best_epoch"]
    return {
        "n_iter": int(document["n_iter"]),
        "loss_curve": floats(document["loss_curve"]),
        "validation_scores": floats(document["validation_scores"]),
        "best_epoch": None if best is None else int(best),
        "lr": float(document["lr"]),
    }


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
    if document.get("format_version", 0) < 2:
        document, tensors = _from_version_1(document, tensors)
    return document, tensors


def _from_version_1(
    document: dict[str, Any], tensors: dict[str, torch.Tensor]
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """A version-1 document and weights in version 2's form (a list of weightings).

    Version 1 held one weighting module under ``module.weighting.``; the ``compose`` weighting
    held its steps under ``module.weighting.parts.<i>.`` with ``weighting__steps`` in the
    parameters. Version 2 holds the list under ``module.weightings.<i>.``.
    """
    params = dict(document.get("params", {}))
    composed = params.get("weighting") == "compose"
    if composed:
        params["weighting"] = params.pop("weighting__steps", [])
    old, new = (
        ("module.weighting.parts.", "module.weightings.")
        if composed
        else (
            "module.weighting.",
            "module.weightings.0.",
        )
    )
    tensors = {(new + k[len(old) :] if k.startswith(old) else k): v for k, v in tensors.items()}
    plugins = [
        record
        for record in document.get("plugins", [])
        if not (record.get("kind") == "weighting" and record.get("name") == "compose")
    ]
    return {**document, "params": params, "plugins": plugins}, tensors


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
    # the document's keys are sorted; the network's modality order is the fitted one (names)
    return ModalityLayout(
        names=tuple(names),
        shapes=checked,
        source=source,
        columns={m: np.asarray(columns[m], dtype=int) for m in names if m in columns},
    )


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
        fitted: dict[str, Any] = {}
        if "n_features_in" in document:
            fitted["n_features_in"] = int(document["n_features_in"])
        if "feature_names_in" in document:
            fitted["feature_names_in"] = np.asarray(document["feature_names_in"], dtype=object)
        if "classes" in document:
            fitted["classes"] = _decode_classes(document["classes"])
        else:
            target = document["target"]
            fitted["target"] = {
                "n_outputs": int(target["n_outputs"]),
                "mean": np.asarray(target["mean"], dtype=float),
                "scale": np.asarray(target["scale"], dtype=float),
                "one_dimensional": bool(target["one_dimensional"]),
            }
            n_outputs = _count(fitted["target"]["n_outputs"], "the number of outputs")
            shapes = {fitted["target"][k].shape for k in ("mean", "scale")}
            if shapes != {(n_outputs,)}:
                raise ValueError(
                    f"the target scaling has the shapes {sorted(shapes)} for {n_outputs} outputs"
                )
        if "training" in document:
            fitted["training"] = _decode_training_record(document["training"])
        return ModelState(
            estimator=document["estimator"],
            params=_decode_params(document["params"]),
            layout=layout,
            standardizer=_standardizer(document, tensors, layout),
            weights={k[len("module.") :]: v for k, v in tensors.items() if k.startswith("module.")},
            fitted=fitted,
        )
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise ModelFileError.mismatch(path, error) from None


def _standardizer(
    document: dict[str, Any], tensors: dict[str, torch.Tensor], layout: ModalityLayout
) -> Standardizer | None:
    if not document.get("standardized"):
        return None
    standardizer = Standardizer()
    for name in layout.names:
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
