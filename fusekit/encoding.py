"""The values of a model file, encoded by their type (never by what they are called).

:func:`encode` turns a parameter or fitted attribute into JSON, putting numeric NumPy arrays into
tensors; :func:`decode` turns it back. Plain JSON values stay as they are; everything else is a
JSON object tagged ``{"$type": ...}``:

=====================  ============================================================================
``float``              a non-finite float (JSON has none): ``"value"`` ``"nan"``, ``"inf"``...
``numpy``              a NumPy scalar: ``"dtype"`` and ``"value"``
``tuple``              ``"items"`` (a list keeps being a list)
``dict``               a dict whose keys are not all strings: ``"items"`` as ``[key, value]`` pairs
``ndarray``            ``"tensor"`` (the name of a stored tensor: numeric and bool arrays), or
                       ``"dtype"``, ``"shape"``, ``"values"`` (unicode and object arrays, whose
                       elements must be strings, numbers or booleans)
``plugin``             a registered plugin class (``"kind"``, ``"name"``) or instance (``"params"``)
``torch.optim``        a ``torch.optim`` optimiser class, by ``"name"``
``skorch.dataset``     skorch's ``ValidSplit``: ``"class"``, changed ``"params"``
``skorch.callbacks``   one of :data:`STORABLE_CALLBACKS`: ``"class"``, changed ``"params"``
``value``              one of :data:`VALUE_TYPES`, by ``"class"``, with its ``to_dict()``
=====================  ============================================================================

Decoding builds only these: registered plugins, ``torch.optim`` classes, the listed skorch classes
with their listed arguments and :data:`VALUE_TYPES`. It imports nothing and runs no code named by
the file. A function, a ``RandomState`` or a callback whose arguments are not plain values cannot
be stored: it is written as ``None`` with a :class:`ParameterNotSavedWarning` (inside a dict, just
that entry; inside a list or tuple, the whole parameter or attribute).
"""

from __future__ import annotations

import inspect
import json
import math
import pathlib
import sys
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import skorch.callbacks
import torch
from skorch.callbacks import Callback
from skorch.dataset import ValidSplit

from fusekit.engine.registry import get_registry
from fusekit.engine.resolve import instantiate
from fusekit.plugin import BASES, Component, WarmupCosine, WarmupMultiStep

TAG = "$type"

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

#: Value classes stored by name with their ``to_dict()`` and rebuilt with ``from_dict``.
VALUE_TYPES: dict[str, type] = {cls.__name__: cls for cls in (WarmupCosine, WarmupMultiStep)}

#: Python types an element of a unicode or object array may have; JSON keeps them apart (``"1"``,
#: ``1``, ``1.0``, ``true``), so they come back as the same type.
_ELEMENT_TYPES = (str, bool, int, float)
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


class ParameterNotSavedWarning(UserWarning):
    """A training-only value could not be stored; it comes back as ``None``."""


class RefusedValueError(ValueError):
    """A model file holds a value it may not hold (it is never built)."""


class _NotStorable(Exception):  # noqa: N818 - a signal inside the encoder, never raised out of it
    """The value cannot be stored; the enclosing dict entry or top-level value becomes None."""


# -- encoding ---------------------------------------------------------------------------------
class Encoder:
    """Encodes values into JSON, collecting their numeric arrays as tensors (:attr:`tensors`).

    ``plugin_names``: ``{(kind, class): registered name}`` of the model's components, as they
    were resolved (:attr:`ModelState.plugin_names`); a plugin class or instance is stored under
    that name, never looked up backwards from its class."""

    def __init__(
        self, prefix: str, plugin_names: Mapping[tuple[str, type], str] | None = None
    ) -> None:
        self.prefix = prefix
        self.plugin_names = dict(plugin_names or {})
        self.tensors: dict[str, torch.Tensor] = {}

    def top(self, where: str, value: Any) -> Any:
        """``value`` encoded, or ``None`` with a warning if it cannot be stored."""
        try:
            return self.value(where, value)
        except _NotStorable:
            _not_stored(where, value)
            return None

    def value(self, where: str, value: Any) -> Any:  # noqa: C901, PLR0911 - one case per type
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, np.generic):
            return {
                TAG: "numpy",
                "dtype": value.dtype.str,
                "value": self.value(where, value.item()),
            }
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            if math.isfinite(value):
                return float(value)
            return {TAG: "float", "value": "nan" if math.isnan(value) else str(value)}
        if isinstance(value, list):
            return [self.value(f"{where}[{i}]", v) for i, v in enumerate(value)]
        if isinstance(value, tuple):
            return {
                TAG: "tuple",
                "items": [self.value(f"{where}[{i}]", v) for i, v in enumerate(value)],
            }
        if isinstance(value, dict):
            return self._dict(where, value)
        if isinstance(value, np.ndarray):
            return self._array(where, value)
        if isinstance(value, pathlib.PurePath):  # a component's folder, e.g. hf's path
            return {TAG: "path", "value": str(value)}
        if isinstance(value, type):
            return _class(where, value, self.plugin_names)
        if isinstance(value, Component):
            record = _class(where, type(value), self.plugin_names)
            return {**record, "params": self.value(f"{where} parameters", value.get_params())}
        if type(value) is ValidSplit:
            params = {k: getattr(value, k) for k in ("cv", "stratified", "random_state")}
            return {TAG: "skorch.dataset", "class": "ValidSplit", "params": _changed(value, params)}
        if isinstance(value, Callback):
            return _callback(where, value)
        if type(value) in VALUE_TYPES.values():
            params = self.value(where, value.to_dict())
            return {TAG: "value", "class": type(value).__name__, "params": params}
        if callable(value) or isinstance(value, np.random.RandomState):
            raise _NotStorable
        raise TypeError(
            f"save() can store JSON values, NumPy arrays, registered plugins and fusekit's "
            f"schedules only; {where} holds {value!r} ({type(value).__name__}). Use a plain value, "
            "or pickle/joblib (trusted files only)."
        )

    def _dict(self, where: str, value: dict) -> Any:
        def entry(key: Any, item: Any) -> Any:
            inner = f"{where}[{key!r}]"
            try:
                return self.value(inner, item)
            except _NotStorable:
                _not_stored(inner, item)
                return None

        if all(isinstance(k, str) for k in value) and TAG not in value:
            return {k: entry(k, v) for k, v in value.items()}
        return {
            TAG: "dict",
            "items": [[self.value(where, k), entry(k, v)] for k, v in value.items()],
        }

    def _array(self, where: str, array: np.ndarray) -> dict[str, Any]:
        kind = array.dtype.kind
        if kind in "biuf":
            name = f"{self.prefix}{len(self.tensors)}"
            native = array.astype(array.dtype.newbyteorder("="), copy=True)
            self.tensors[name] = torch.from_numpy(np.ascontiguousarray(native))
            return {TAG: "ndarray", "tensor": name}
        if kind not in "UO":
            raise TypeError(
                f"save() stores arrays of numeric, bool, unicode or object dtype; {where} has "
                f"dtype {array.dtype}. Use pickle/joblib (trusted files only)."
            )
        values = [v.item() if isinstance(v, np.generic) else v for v in array.ravel().tolist()]
        odd = sorted({type(v).__name__ for v in values if not isinstance(v, _ELEMENT_TYPES)})
        if odd:
            raise TypeError(
                f"save() stores object arrays of strings, numbers or booleans; {where} holds "
                f"elements of type {odd}. Map them to strings first, or use pickle/joblib "
                "(trusted files only)."
            )
        dtype = "object" if kind == "O" else array.dtype.str
        stored = [self.value(where, v) for v in values]
        return {TAG: "ndarray", "dtype": dtype, "shape": list(array.shape), "values": stored}


def _class(where: str, cls: type, plugin_names: Mapping[tuple[str, type], str]) -> dict[str, Any]:
    """A plugin class of the model (by the name it was resolved under, ``plugin_names``) or a
    ``torch.optim`` optimiser class, by name."""
    if issubclass(cls, torch.optim.Optimizer):
        if getattr(torch.optim, cls.__name__, None) is cls:
            return {TAG: "torch.optim", "name": cls.__name__}
    elif issubclass(cls, Component) and cls.kind in BASES:
        name = plugin_names.get((cls.kind, cls))
        if name is not None:
            return {TAG: "plugin", "kind": cls.kind, "name": name}
        raise TypeError(
            f"save() stores plugins by registered name, but {cls.kind} {cls.__name__} ({where}) "
            "is not registered, or is no component the model was built from. Register it through "
            "the fusekit entry point (and refit), or use pickle/joblib (trusted files only)."
        )
    raise TypeError(
        f"save() stores classes that are registered plugins or torch.optim optimisers; {where} "
        f"is {cls.__module__}.{cls.__qualname__}. Use pickle/joblib (trusted files only)."
    )


def _callback(where: str, callback: Callback) -> dict[str, Any]:
    """One of :data:`STORABLE_CALLBACKS` by class and changed arguments; any other is refused
    (a loaded model would run it: ``Checkpoint`` writes where its arguments say)."""
    cls = type(callback)
    if not (
        cls.__name__ in STORABLE_CALLBACKS and getattr(skorch.callbacks, cls.__name__, None) is cls
    ):
        raise TypeError(
            f"save() does not store the callback {cls.__name__} ({where}): a model file holds "
            f"only callbacks that cannot write files or run code, {sorted(STORABLE_CALLBACKS)}. "
            "Remove it before saving (model.set_params(callbacks=None)), or use pickle/joblib "
            "(trusted files only)."
        )
    changed = _changed(callback, callback.get_params(deep=False))
    if not set(changed) <= STORABLE_CALLBACKS[cls.__name__]:
        raise _NotStorable
    return {TAG: "skorch.callbacks", "class": cls.__name__, "params": changed}


def _changed(obj: Any, params: dict[str, Any]) -> dict[str, Any]:
    """The constructor arguments of ``obj`` that differ from their defaults; all must be JSON."""
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
        json.dumps(changed, allow_nan=False)
    except (TypeError, ValueError):
        raise _NotStorable from None
    return changed


def _not_stored(where: str, value: Any) -> None:
    warnings.warn(
        f"save() cannot store the {where}={value!r} (functions, RandomState objects and callbacks "
        "with arguments that are not plain values are not stored); the loaded model has None "
        "there. Predictions are unaffected; set it again before refitting.",
        ParameterNotSavedWarning,
        stacklevel=_first_frame_outside_fusekit(),
    )


def _first_frame_outside_fusekit() -> int:
    """The ``stacklevel`` of the first caller outside fusekit (the line that called ``save``)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith("fusekit"):
        frame, level = frame.f_back, level + 1
    return level


# -- decoding ---------------------------------------------------------------------------------
def decode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """The value :meth:`Encoder.value` encoded; ``tensors`` holds the stored arrays."""
    if isinstance(value, list):
        return [decode(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    if TAG not in value:
        return {k: decode(v, tensors) for k, v in value.items()}
    tag = value[TAG]
    decoder = _DECODERS.get(tag) if isinstance(tag, str) else None
    if decoder is None:
        raise RefusedValueError(
            f"the model file holds a value of the unknown type {tag!r} (known: "
            f"{sorted(_DECODERS)}); it was not built."
        )
    return decoder(value, tensors)


def _decode_float(value: dict, tensors: dict) -> float:
    return _NON_FINITE[value["value"]]


def _decode_numpy(value: dict, tensors: dict) -> np.generic:
    dtype = np.dtype(value["dtype"])
    if dtype.kind not in "biufU":
        raise ValueError(f"a stored NumPy scalar has the dtype {dtype}")
    return dtype.type(decode(value["value"], tensors))


def _decode_dict(value: dict, tensors: dict) -> dict:
    return {decode(k, tensors): decode(v, tensors) for k, v in value["items"]}


def _decode_array(value: dict, tensors: dict) -> np.ndarray:
    if "tensor" in value:
        return tensors[value["tensor"]].numpy()
    shape = tuple(int(d) for d in value["shape"])
    values = [decode(v, tensors) for v in value["values"]]
    if not all(isinstance(v, _ELEMENT_TYPES) for v in values) or len(values) != math.prod(shape):
        raise ValueError(f"a stored array of the shape {shape} holds {values!r}")
    if value["dtype"] == "object":
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return array.reshape(shape)
    dtype = np.dtype(value["dtype"])
    if dtype.kind not in "biufU":
        raise ValueError(f"a stored array has the dtype {dtype}")
    return np.asarray(values, dtype=dtype).reshape(shape)


def _decode_plugin(value: dict, tensors: dict) -> Any:
    kind, name = value["kind"], value["name"]
    if kind not in BASES:
        raise ValueError(f"a stored plugin has the unknown kind {kind!r}")
    if "params" not in value:
        return get_registry().get(kind, name)
    return instantiate(kind, name, decode(value["params"], tensors))


def _decode_optimizer(value: dict, tensors: dict) -> type:
    name = value["name"]
    candidate = getattr(torch.optim, name, None) if isinstance(name, str) else None
    if not (isinstance(candidate, type) and issubclass(candidate, torch.optim.Optimizer)):
        raise RefusedValueError(f"the model file holds the unknown optimizer {name!r}")
    return candidate


def _decode_split(value: dict, tensors: dict) -> ValidSplit:
    if value.get("class") != "ValidSplit":
        raise RefusedValueError(
            f"the model file holds the skorch.dataset class {value.get('class')!r}; only "
            "ValidSplit is built"
        )
    return ValidSplit(**value["params"])


def _decode_callback(value: dict, tensors: dict) -> Callback:
    """A callback on :data:`STORABLE_CALLBACKS` with its listed arguments; any other is never
    built."""
    class_name, params = value.get("class"), value.get("params")
    if class_name not in STORABLE_CALLBACKS:
        raise RefusedValueError(
            f"the model file holds the callback {class_name!r}, which a model file may not hold "
            f"(allowed: {sorted(STORABLE_CALLBACKS)}); it was not built. The file was not "
            "written by fusekit.save, or was altered."
        )
    if not isinstance(params, dict):
        raise ValueError(f"the stored callback {class_name} has no 'params' record: {value!r}")
    odd = sorted(set(params) - STORABLE_CALLBACKS[class_name])
    if odd:
        raise RefusedValueError(
            f"the model file's callback {class_name} has arguments {odd} that a model file may "
            f"not hold (allowed: {sorted(STORABLE_CALLBACKS[class_name])}); it was not built."
        )
    return getattr(skorch.callbacks, class_name)(**params)


def _path_text(value: dict) -> str:
    text = value.get("value")
    if not isinstance(text, str):
        raise RefusedValueError(
            f"the model file holds a path that is not a string ({text!r}); it was not built."
        )
    return text


def _decode_value(value: dict, tensors: dict) -> Any:
    cls = VALUE_TYPES.get(value.get("class"))
    if cls is None:
        raise RefusedValueError(
            f"the model file holds a value of the class {value.get('class')!r}, which is not one "
            f"a model file may hold ({sorted(VALUE_TYPES)}); it was not built."
        )
    return cls.from_dict(decode(value["params"], tensors))


_DECODERS: dict[str, Callable[[dict, dict], Any]] = {
    "float": _decode_float,
    "numpy": _decode_numpy,
    "tuple": lambda value, tensors: tuple(decode(v, tensors) for v in value["items"]),
    "dict": _decode_dict,
    "ndarray": _decode_array,
    "plugin": _decode_plugin,
    "torch.optim": _decode_optimizer,
    "skorch.dataset": _decode_split,
    "skorch.callbacks": _decode_callback,
    "value": _decode_value,
    "path": lambda value, tensors: pathlib.Path(_path_text(value)),
}
