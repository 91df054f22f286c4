"""Loaders of the real multimodal data sets bundled in ``fusekit/datasets/data/`` (with cards).

Each returns ``(Modalities, y)``, or ``(DataFrame, Series)`` with ``as_frame=True`` (columns
``modality__feature``, the prefix :class:`~fusekit.FusionClassifier` groups by). The text + tabular
clothing reviews are a DataFrame only: their text has to be featurised first (see its card).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from fusekit.datasets._files import data_file, finish, load_npz

if TYPE_CHECKING:
    import pandas as pd

    from fusekit.data import Modalities


def _modalities(*args: Any, **kwargs: Any) -> Modalities:
    """A :class:`~fusekit.data.Modalities`, the data layer imported only when a data set is
    loaded (registering the loaders, as ``fusekit plugins`` does, imports neither it nor
    pandas)."""
    from fusekit.data import Modalities

    return Modalities(*args, **kwargs)


MFEAT_VIEWS = ("fou", "fac", "kar", "pix", "zer", "mor")
SUBSETS = ("train", "test", "all")


def _choose(parameter: str, value: str, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise ValueError(f"{parameter} must be one of {list(allowed)}, got {value!r}.")
    return value


def load_mfeat(
    views: Sequence[str] | None = None, as_frame: bool = False
) -> tuple[Modalities, np.ndarray] | tuple[pd.DataFrame, pd.Series]:
    """UCI Multiple Features: 2,000 handwritten digits (200 per class), six views.

    Views (width): ``fou`` Fourier coefficients (76), ``fac`` profile correlations (216), ``kar``
    Karhunen-Loève coefficients (64), ``pix`` 2x3 pixel averages (240), ``zer`` Zernike moments
    (47), ``mor`` morphological features (6). ``views`` picks a subset, in that order.
    ``y``: digit 0-9 (int).
    """
    chosen = list(MFEAT_VIEWS if views is None else views)
    unknown = [view for view in chosen if view not in MFEAT_VIEWS]
    if unknown or not chosen:
        raise ValueError(f"views must be a non-empty subset of {list(MFEAT_VIEWS)}, got {views!r}.")
    arrays = load_npz("mfeat.npz")
    X = _modalities({view: arrays[view].astype(np.float64) for view in chosen})
    return finish(X, arrays["y"].astype(np.int64), as_frame, "digit")


def load_nutrimouse(
    target: str = "diet", as_frame: bool = False
) -> tuple[Modalities, np.ndarray] | tuple[pd.DataFrame, pd.Series]:
    """Nutrimouse: 40 mice, ``gene`` expression (120) and hepatic ``lipid`` concentrations (21).

    ``target="diet"`` (5 classes: coc, fish, lin, ref, sun; 8 mice each) or ``"genotype"``
    (ppar, wt; 20 each). The tiny-n, high-d case.
    """
    _choose("target", target, ("diet", "genotype"))
    arrays = load_npz("nutrimouse.npz")
    X = _modalities(
        gene=arrays["gene"].astype(np.float64), lipid=arrays["lipid"].astype(np.float64)
    )
    return finish(X, arrays[target].astype(object), as_frame, target)


def load_basic_motions(
    subset: str = "all", as_frame: bool = False
) -> tuple[Modalities, np.ndarray] | tuple[pd.DataFrame, pd.Series]:
    """BasicMotions: smartwatch ``accelerometer`` and ``gyroscope`` series, each ``(n, 100, 3)``.

    4 classes (Standing, Running, Walking, Badminton), 10 per class in each split.
    ``subset="train"`` (40), ``"test"`` (40) or ``"all"`` (80, train rows first).
    """
    _choose("subset", subset, SUBSETS)
    arrays = load_npz("basic_motions.npz")
    splits = ["train", "test"] if subset == "all" else [subset]
    X = _modalities(
        {
            sensor: np.concatenate([arrays[f"{sensor}_{s}"] for s in splits]).astype(np.float64)
            for sensor in ("accelerometer", "gyroscope")
        }
    )
    y = np.concatenate([arrays[f"y_{s}"] for s in splits]).astype(object)
    return finish(X, y, as_frame, "activity")


def load_multiview_mnist(
    as_frame: bool = False,
) -> tuple[Modalities, np.ndarray] | tuple[pd.DataFrame, pd.Series]:
    """Multiview MNIST: 5,000 digits (500 per class), four HOG views ``hog0..hog3`` of 192.

    Stored as float16 (relative error <= 2**-11 on the HOG values, which lie in [0, 0.51]).
    """
    arrays = load_npz("multiview_mnist.npz")
    X = _modalities({f"hog{i}": arrays[f"hog{i}"].astype(np.float64) for i in range(4)})
    return finish(X, arrays["y"].astype(np.int64), as_frame, "digit")


CLOTHING_COLUMNS = {
    "Title": "title",
    "Review Text": "review",
    "Age": "age",
    "Clothing ID": "clothing_id",
    "Positive Feedback Count": "positive_feedback_count",
    "Division Name": "division",
    "Department Name": "department",
    "Class Name": "class_name",
}
CLOTHING_TARGETS = {"rating": "Rating", "recommended": "Recommended IND"}


@lru_cache(maxsize=1)
def _clothing_table() -> pd.DataFrame:
    import pandas as pd

    return pd.read_csv(data_file("clothing_reviews.csv.xz"))  # ~3 s: decompress once


def load_clothing_reviews(
    target: str = "rating", as_frame: bool = True
) -> tuple[pd.DataFrame, pd.Series]:
    """Women's E-Commerce Clothing Reviews: 23,486 rows of text + tabular data.

    Columns: ``text`` (title and review joined; NaN for the 845 rows without a review: the
    naturally missing modality), the raw ``title`` and ``review``, and the tabular ``age``,
    ``clothing_id``, ``positive_feedback_count``, ``division``, ``department``, ``class_name``.
    ``target="rating"`` (1-5) or ``"recommended"`` (0/1).
    Only ``as_frame=True`` exists: text must be featurised first (TF-IDF + SVD in a
    ``ColumnTransformer``, with :class:`~fusekit.datasets.AbsentWhereMissing`; see the card).
    """
    _choose("target", target, tuple(CLOTHING_TARGETS))
    if not as_frame:
        raise ValueError(
            "load_clothing_reviews has raw text, so it only exists as a DataFrame (as_frame=True). "
            "Featurise the text in a ColumnTransformer; its card, "
            "fusekit/datasets/data/clothing_reviews.md, shows how."
        )
    raw = _clothing_table().copy()
    frame = raw[list(CLOTHING_COLUMNS)].rename(columns=CLOTHING_COLUMNS)
    review = frame["review"]
    text = frame["title"].fillna("").str.cat(review.fillna(""), sep=" ").str.strip()
    frame.insert(0, "text", text.where(review.notna()))
    return frame, raw[CLOTHING_TARGETS[target]].rename(target)
