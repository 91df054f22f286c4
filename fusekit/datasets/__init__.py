"""Real multimodal data sets shipped with fusekit, a synthetic generator, and a loader registry.

``make_imbalanced_classification`` gives two modalities with a known, tunable imbalance (one
learned fast but telling less, one slow but complementary). ``IMBALANCED_REAL`` and
``load_imbalanced(name)``: bundled real data sets where one modality dominates.

``load_<name>()`` returns ``(Modalities, y)`` (``as_frame=True``: ``(DataFrame, Series)``);
:func:`load` finds a loader by name among the built-ins and third-party plugins (hook
``fusekit_datasets``). Data cards, licences and conversion commands:
``fusekit/datasets/data/*.md``.
"""

from __future__ import annotations

import importlib
from typing import Any

from fusekit.datasets._files import checksum, data_dir, to_frame
from fusekit.datasets.real import (
    load_basic_motions,
    load_clothing_reviews,
    load_mfeat,
    load_multiview_mnist,
    load_nutrimouse,
)

#: Names imported on first use (PEP 562): their modules import the data layer and scikit-learn's
#: estimators, which registering the loaders (``fusekit plugins``, the registry) does not need.
_LAZY = {
    "make_imbalanced_classification": "imbalanced",
    "IMBALANCED_REAL": "imbalanced_real",
    "load_imbalanced": "imbalanced_real",
    "AbsentWhereMissing": "missing",
    "make_multimodal_classification": "synthetic",
    "make_multimodal_regression": "synthetic",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)  # safe: _LAZY
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


#: The built-in loaders, registered through ``fusekit_datasets`` by :mod:`fusekit.datasets.hooks`.
BUILTIN_LOADERS = {
    "mfeat": load_mfeat,
    "nutrimouse": load_nutrimouse,
    "basic_motions": load_basic_motions,
    "clothing_reviews": load_clothing_reviews,
    "multiview_mnist": load_multiview_mnist,
}


def load(name: str, **kwargs: Any) -> Any:
    """Load a data set by its registered name (built-in or from a plugin)."""
    from fusekit.engine.registry import get_registry

    return get_registry().get("dataset", name)(**kwargs)


__all__ = [
    "AbsentWhereMissing",
    "BUILTIN_LOADERS",
    "IMBALANCED_REAL",
    "checksum",
    "data_dir",
    "load",
    "load_basic_motions",
    "load_clothing_reviews",
    "load_imbalanced",
    "load_mfeat",
    "load_multiview_mnist",
    "load_nutrimouse",
    "make_imbalanced_classification",
    "make_multimodal_classification",
    "make_multimodal_regression",
    "to_frame",
]
