"""The shipped data sets: shapes, class counts and a checksum of what each loader returns."""

import fnmatch
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fusekit.datasets as fd
from fusekit import FusionClassifier, Modalities, available
from fusekit.data import split_modalities
from fusekit.datasets import checksum


def _counts(y):
    return dict(zip(*np.unique(y, return_counts=True), strict=True))


def test_mfeat_six_views_2000_digits_checksum():
    X, y = fd.load_mfeat()
    assert isinstance(X, Modalities)
    assert {k: v.shape for k, v in X.items()} == {
        "fou": (2000, 76), "fac": (2000, 216), "kar": (2000, 64),
        "pix": (2000, 240), "zer": (2000, 47), "mor": (2000, 6),
    }  # fmt: skip
    assert _counts(y) == {digit: 200 for digit in range(10)}
    assert checksum(X, y) == "3970c9348e9f9ec31c67e3744f1efb501d5f660f11a77ed57e781594fc60ed82"


def test_mfeat_view_subset_keeps_order_and_rejects_unknown_views():
    X, _ = fd.load_mfeat(views=["mor", "fou"])
    assert list(X) == ["mor", "fou"]
    with pytest.raises(ValueError, match="views must be a non-empty subset"):
        fd.load_mfeat(views=["fourier"])


def test_nutrimouse_two_targets_checksum():
    X, diet = fd.load_nutrimouse()
    assert {k: v.shape for k, v in X.items()} == {"gene": (40, 120), "lipid": (40, 21)}
    assert _counts(diet) == {name: 8 for name in ("coc", "fish", "lin", "ref", "sun")}
    assert checksum(X, diet) == "9f60461844731ebbca80b43e86b1a86d4133464cf904368a7af0dfe15f1aa605"
    _, genotype = fd.load_nutrimouse(target="genotype")
    assert _counts(genotype) == {"ppar": 20, "wt": 20}
    with pytest.raises(ValueError, match="target must be one of"):
        fd.load_nutrimouse(target="weight")


def test_basic_motions_two_sensor_sequences_and_40_40_split():
    X, y = fd.load_basic_motions()
    assert {k: v.shape for k, v in X.items()} == {
        "accelerometer": (80, 100, 3),
        "gyroscope": (80, 100, 3),
    }
    assert checksum(X, y) == "0d304d6757373832c660167603c31f38d39ddd24406f7f016891cb958ba8f58b"
    classes = ("Badminton", "Running", "Standing", "Walking")
    for subset in ("train", "test"):
        X_part, y_part = fd.load_basic_motions(subset)
        assert len(y_part) == 40 and _counts(y_part) == {c: 10 for c in classes}
    X_train, _ = fd.load_basic_motions("train")
    np.testing.assert_array_equal(X_train["gyroscope"], X["gyroscope"][:40])


def test_multiview_mnist_four_hog_views_checksum():
    X, y = fd.load_multiview_mnist()
    assert {k: v.shape for k, v in X.items()} == {f"hog{i}": (5000, 192) for i in range(4)}
    assert _counts(y) == {digit: 500 for digit in range(10)}
    assert checksum(X, y) == "db6fd6785138022fc1a87814ef4fa358754074f62ce769270675f9ee7215ee5d"


def test_clothing_reviews_text_missing_exactly_where_the_review_is():
    frame, rating = fd.load_clothing_reviews()
    assert frame.shape == (23486, 9)
    assert frame["text"].isna().sum() == 845
    assert frame["text"].isna().equals(frame["review"].isna())
    assert rating.value_counts().sort_index().tolist() == [842, 1565, 2871, 5077, 13131]
    _, recommended = fd.load_clothing_reviews(target="recommended")
    assert recommended.value_counts().sort_index().tolist() == [4172, 19314]
    digest = hashlib.sha256()
    for column in frame.columns:
        digest.update("\x1f".join(frame[column].map(_text)).encode())
    digest.update(rating.to_numpy(np.int64).tobytes())
    assert digest.hexdigest() == CLOTHING_SHA256
    with pytest.raises(ValueError, match="only exists as a DataFrame"):
        fd.load_clothing_reviews(as_frame=False)


CLOTHING_SHA256 = "ef5f5bbf576a485cf83913e17caf9252a58fa6047e2f37a3e4b990c5ca964c03"


def _text(value):
    return "<NA>" if pd.isna(value) else str(value)


def test_as_frame_uses_the_modality_prefix_fusekit_groups_by():
    frame, y = fd.load_nutrimouse(as_frame=True)
    assert isinstance(frame, pd.DataFrame) and isinstance(y, pd.Series)
    arrays, layout = split_modalities(frame, None, FusionClassifier(), reset=True)
    assert layout.names == ("gene", "lipid")
    X, _ = fd.load_nutrimouse()
    np.testing.assert_allclose(arrays["lipid"], X["lipid"])
    sequences, _ = fd.load_basic_motions("test", as_frame=True)
    assert sequences.shape == (40, 600)  # (T, d) flattened per sensor


def test_loaders_registered_through_the_datasets_hook():
    assert set(fd.BUILTIN_LOADERS) <= set(available("dataset"))
    X, y = fd.load("nutrimouse", target="genotype")
    assert checksum(X, y) == checksum(*fd.load_nutrimouse(target="genotype"))


def test_data_and_cards_are_package_data(monkeypatch):
    """Each built-in data set has its file(s) and its card inside the package, and the wheel's
    package-data globs (pyproject.toml) take every file there."""
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    monkeypatch.delenv("FUSEKIT_DATA_DIR", raising=False)
    folder = Path(fd.__file__).parent / "data"
    assert fd.data_dir() == folder
    files = {p.name for p in folder.iterdir() if p.is_file() and p.suffix != ".py"}
    for name in fd.BUILTIN_LOADERS:
        assert f"{name}.md" in files, f"data set {name!r} has no card in {folder}"
        assert any(f.startswith(f"{name}.") and not f.endswith(".md") for f in files), name
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["fusekit.datasets.data"]
    unshipped = [f for f in files if not any(fnmatch.fnmatch(f, g) for g in globs)]
    assert not unshipped, f"not in the wheel's package data: {unshipped}"


def test_data_dir_override_points_every_loader_elsewhere(monkeypatch, tmp_path):
    expected = checksum(*fd.load_nutrimouse())
    shutil.copy(fd.data_dir() / "nutrimouse.npz", tmp_path)
    monkeypatch.setenv("FUSEKIT_DATA_DIR", str(tmp_path))
    assert fd.data_dir() == tmp_path
    assert checksum(*fd.load_nutrimouse()) == expected
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        fd.load_mfeat()


def test_missing_data_folder_is_a_clear_error_not_a_download(monkeypatch, tmp_path):
    monkeypatch.setenv("FUSEKIT_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="never downloads"):
        fd.load_mfeat()


def test_mfeat_concat_fusion_reaches_97_percent_over_five_folds(train_seed):
    """Guard of the card's 5-fold figure (0.983), 10 epochs per fold: the 5-fold mean was
    0.979-0.983 over seeds 0-5 (threshold 0.97). One 80/20 split scattered over 0.958-0.985
    and crossed 0.97 for two seeds of six."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    X, y = fd.load_mfeat()
    folds = StratifiedKFold(5, shuffle=True, random_state=train_seed)
    model = FusionClassifier(fusion="concat", max_epochs=10, random_state=train_seed)
    assert cross_val_score(model, X, y, cv=folds).mean() >= 0.97
