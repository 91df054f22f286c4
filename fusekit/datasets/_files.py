"""Where the shipped data files live, and the small helpers every loader shares.

Data files are package data in ``fusekit/datasets/data/`` (one compressed file plus a card per data
set, ``*.md`` beside it), so they come with the installed wheel, as scikit-learn's small data sets
do. ``FUSEKIT_DATA_DIR`` overrides the location. Nothing is ever downloaded: a missing file is an
error that says where it was looked for.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # imported where used: registering the loaders (fusekit plugins) stays light
    import pandas as pd

    from fusekit.data import Modalities

DATA_DIR_ENV = "FUSEKIT_DATA_DIR"


BUNDLED_DATA_DIR = Path(__file__).resolve().parent / "data"


def data_dir() -> Path:
    """The data folder: ``$FUSEKIT_DATA_DIR``, else the bundled ``fusekit/datasets/data/``."""
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV])
    return BUNDLED_DATA_DIR


def data_file(name: str) -> Path:
    """Path of one shipped data file; a clear error when it is not there."""
    path = data_dir() / name
    if not path.is_file():
        raise FileNotFoundError(
            f"data file {name!r} not found in {path.parent}. fusekit never downloads data: the "
            f"bundled files live in {BUNDLED_DATA_DIR} (reinstall fusekit-learn if they are "
            f"gone), or set {DATA_DIR_ENV} to a folder holding {name!r}."
        )
    return path


def load_npz(name: str) -> dict[str, np.ndarray]:
    """All arrays of a shipped ``.npz`` file (no pickles)."""
    with np.load(data_file(name), allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def checksum(X: Modalities | dict[str, np.ndarray], y: np.ndarray | None = None) -> str:
    """sha256 over the modality names, shapes and float64 values (and ``y``), in key order.

    Independent of the storage dtype, so it pins the data a loader *returns*.
    """
    digest = hashlib.sha256()
    for name, values in X.items():
        if np.asarray(values).dtype == object:  # text / categories: their strings
            array = np.asarray(values).astype(str).astype("U")
            digest.update(f"{name}{array.shape}".encode())
            digest.update(array.tobytes())
            continue
        array = np.ascontiguousarray(values, dtype=np.float64)
        digest.update(f"{name}{array.shape}".encode())
        digest.update(array.tobytes())
    if y is not None:
        digest.update(np.asarray(y).astype(str).astype("U").tobytes())
    return digest.hexdigest()


def feature_names(name: str, shape: tuple[int, ...]) -> list[str]:
    """``name__<index>`` column names for one modality (sequences: ``name__t<step>_<channel>``)."""
    from fusekit.data import PREFIX_SEPARATOR

    if len(shape) == 1:
        return [f"{name}{PREFIX_SEPARATOR}{i}" for i in range(shape[0])]
    steps, channels = shape[0], int(np.prod(shape[1:]))
    return [f"{name}{PREFIX_SEPARATOR}t{t}_{c}" for t in range(steps) for c in range(channels)]


def to_frame(X: Modalities) -> pd.DataFrame:
    """One DataFrame with ``modality__column`` names (the prefix fusekit groups by).

    Sequences and images are flattened (time-major), so the frame form sees them as vectors.
    """
    import pandas as pd

    blocks = []
    for name, values in X.items():
        array = np.asarray(values)
        blocks.append(
            pd.DataFrame(
                array.reshape(len(array), -1), columns=feature_names(name, array.shape[1:])
            )
        )
    return pd.concat(blocks, axis=1)


def finish(
    X: Modalities, y: np.ndarray, as_frame: bool, target_name: str
) -> tuple[Modalities, np.ndarray] | tuple[pd.DataFrame, pd.Series]:
    """Return ``(Modalities, y)``, or ``(DataFrame, Series)`` when ``as_frame``."""
    if as_frame:
        import pandas as pd

        return to_frame(X), pd.Series(y, name=target_name)
    return X, y
