"""Model documents of earlier format versions, turned into the current form (format 3).

Each step turns one version into the next, so a file of any version goes through the same
decoding: version 1 (one weighting) -> 2 (a list of weightings) -> 3 (parameters and fitted
attributes encoded by type, :mod:`fusekit.encoding`). Only these converters know what the
fields of the old versions were called.
"""

from __future__ import annotations

from typing import Any

import torch

from fusekit.encoding import TAG

Tensors = dict[str, torch.Tensor]


def current(document: dict[str, Any], tensors: Tensors) -> tuple[dict[str, Any], Tensors]:
    """``document`` and ``tensors`` of any earlier version in the current form."""
    if document.get("format_version", 0) < 2:
        document, tensors = from_version_1(document, tensors)
    if document.get("format_version", 0) < 3:
        document = from_version_2(document)
    return document, tensors


def from_version_1(
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


#: The component parameters of version 2, which stored an instance as ``{"name", "params"}``.
_COMPONENT_KINDS = ("backbone", "calibration", "fusion", "weighting")


def _plugin(kind: str, value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"name", "params"}:
        return {TAG: "plugin", "kind": kind, **value}
    return value


def _callback(record: Any) -> Any:
    if not isinstance(record, dict):
        return record
    tagged = {TAG: "skorch.callbacks", "class": record.get("skorch.callbacks")}
    tagged["params"] = record.get("params")
    name = record.get("name")
    return tagged if name is None else {TAG: "tuple", "items": [name, tagged]}


def _params_of_version_2(params: dict[str, Any]) -> dict[str, Any]:
    params = dict(params)
    for kind in _COMPONENT_KINDS:
        value = params.get(kind)
        if kind == "backbone" and isinstance(value, dict) and set(value) != {"name", "params"}:
            params[kind] = {m: _plugin(kind, v) for m, v in value.items()}
        elif kind == "weighting" and isinstance(value, list):
            params[kind] = [_plugin(kind, v) for v in value]
        elif kind in params:
            params[kind] = _plugin(kind, value)
    optimizer = params.get("optimizer")
    if isinstance(optimizer, dict):
        params["optimizer"] = {TAG: "torch.optim", "name": optimizer.get("torch.optim")}
    split = params.get("train_split")
    if isinstance(split, dict):
        params["train_split"] = {
            TAG: "skorch.dataset",
            "class": split.get("skorch.dataset"),
            "params": split.get("params"),
        }
    if isinstance(params.get("callbacks"), list):
        params["callbacks"] = [_callback(record) for record in params["callbacks"]]
    class_weight = params.get("class_weight")
    if isinstance(class_weight, dict) and set(class_weight) == {"class_weight_pairs"}:
        params["class_weight"] = {TAG: "dict", "items": class_weight["class_weight_pairs"]}
    return params


def _array(values: list, dtype: str) -> dict[str, Any]:
    return {TAG: "ndarray", "dtype": dtype, "shape": [len(values)], "values": values}


def _floats(values: list | None) -> list | None:
    """Version 2 wrote a NaN epoch value as null."""
    if values is None:
        return None
    return [{TAG: "float", "value": "nan"} if v is None else v for v in values]


def _fitted_of_version_2(document: dict[str, Any]) -> dict[str, Any]:
    fitted: dict[str, Any] = {}
    if "n_features_in" in document:
        fitted["n_features_in_"] = document["n_features_in"]
    if "feature_names_in" in document:
        fitted["feature_names_in_"] = _array(document["feature_names_in"], "object")
    if "classes" in document:
        classes = document["classes"]
        fitted["classes_"] = _array(classes["values"], classes["dtype"])
    if "target" in document:
        target = document["target"]
        fitted["n_outputs_"] = target["n_outputs"]
        fitted["y_mean_"] = _array(target["mean"], "<f8")
        fitted["y_scale_"] = _array(target["scale"], "<f8")
        fitted["_y_1d"] = target["one_dimensional"]
    if "training" in document:  # absent in files written before the training record was stored
        training = document["training"]
        fitted["n_iter_"] = training["n_iter"]
        fitted["loss_curve_"] = _floats(training["loss_curve"])
        fitted["validation_scores_"] = _floats(training["validation_scores"])
        fitted["best_epoch_"] = training["best_epoch"]
        fitted["lr_"] = training["lr"]
    return fitted


def from_version_2(document: dict[str, Any]) -> dict[str, Any]:
    """A version-2 document in version 3's form.

    Version 2 named each encoded parameter's form by the parameter (plugins as ``{"name",
    "params"}``, ``{"torch.optim": ...}``, ``{"skorch.dataset": ...}``, callback records,
    ``{"class_weight_pairs": ...}``) and held the fitted attributes in their own fields
    (``classes``, ``target``, ``n_features_in``, ``feature_names_in``, ``training``). Version 3
    tags every value by its type and holds the fitted attributes under ``fitted`` by attribute
    name. Version 2 did not store ``optimizer_``, ``lr_schedule_`` or ``training_settings_``.
    """
    kept = {
        k: v
        for k, v in document.items()
        if k not in ("classes", "target", "n_features_in", "feature_names_in", "training")
    }
    params = document.get("params")
    params = _params_of_version_2(params) if isinstance(params, dict) else params
    return {**kept, "params": params, "fitted": _fitted_of_version_2(document)}
