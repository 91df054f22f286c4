"""DataFrame columns are found by name: reordered frames, unused columns, label slices, and the
warning for a frame that has no modality prefixes."""

import warnings

import numpy as np
import pandas as pd
import pytest

import fusekit
from fusekit import FusionClassifier
from fusekit.data import SingleModalityWarning


def _frame(n=90, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    frame = pd.DataFrame(
        {
            "chem__alc": rng.normal(size=n) + y,
            "chem__ph": rng.normal(size=n),
            "img__a": rng.normal(size=n) - y,
            "img__b": rng.normal(size=n),
            "img__c": rng.normal(size=n),
        }
    )
    return frame, y


def _fit(frame, y, **params):
    return FusionClassifier(max_epochs=2, random_state=0, **params).fit(frame, y)


@pytest.mark.parametrize(
    "modalities",
    [None, {"chem": "^chem__", "img": ["img__a", "img__b", "img__c"]}],
    ids=["prefixes", "selectors"],
)
def test_reordered_columns_give_the_same_predictions(modalities):
    frame, y = _frame()
    model = _fit(frame, y, modalities=modalities)
    shuffled = frame[["img__c", "chem__ph", "img__a", "chem__alc", "img__b"]]
    np.testing.assert_array_equal(model.predict_proba(shuffled), model.predict_proba(frame))


def test_a_column_present_only_at_predict_is_still_an_error_without_selectors():
    """With the prefix rule every column is used: an extra one is scikit-learn's name error."""
    frame, y = _frame()
    model = _fit(frame, y)
    with pytest.raises(ValueError, match="Feature names unseen at fit time"):
        model.predict(frame.assign(img__d=0.0))


def test_selectors_use_only_the_selected_columns():
    """Unselected columns are ignored at fit (even a text id column) and need not be there at
    predict; ``n_features_in_`` and ``feature_names_in_`` count what the model uses."""
    frame, y = _frame()
    wide = frame.assign(row_id=[f"r{i}" for i in range(len(frame))])
    selectors = {"chem": "^chem__alc$", "img": ["img__b", "img__a"]}
    model = _fit(wide, y, modalities=selectors)
    used = ["chem__alc", "img__a", "img__b"]  # in the frame's column order
    assert model.n_features_in_ == 3
    assert list(model.feature_names_in_) == used
    full = model.predict_proba(wide)
    np.testing.assert_array_equal(model.predict_proba(frame[used]), full)
    np.testing.assert_array_equal(model.predict_proba(frame[used[::-1]]), full)
    # the same columns passed as the only ones at fit: the same model
    np.testing.assert_array_equal(
        _fit(frame[used], y, modalities=selectors).predict_proba(wide), full
    )
    with pytest.raises(ValueError, match="img__b"):
        model.predict(frame[["chem__alc", "img__a"]])


def test_selected_columns_survive_save_and_load(tmp_path):
    frame, y = _frame()
    model = _fit(frame, y, modalities={"chem": "^chem__alc$", "img": ["img__a"]})
    loaded = fusekit.load(model.save(tmp_path / "m.safetensors"))
    assert list(loaded.feature_names_in_) == ["chem__alc", "img__a"]
    np.testing.assert_array_equal(
        loaded.predict_proba(frame[["img__a", "chem__alc"]]), model.predict_proba(frame)
    )


def test_label_slices_select_as_loc_does():
    frame, y = _frame()
    model = _fit(
        frame, y, modalities={"chem": slice("chem__alc", "chem__ph"), "img": slice("img__a", None)}
    )
    for name, selector in [
        ("chem", slice("chem__alc", "chem__ph")),
        ("img", slice("img__a", None)),
    ]:
        expected = [frame.columns.get_loc(c) for c in frame.loc[:, selector].columns]
        assert model.layout_.columns[name].tolist() == expected


def test_integer_slices_stay_positions():
    frame, y = _frame()
    model = _fit(frame, y, modalities={"chem": slice(0, 2), "img": slice(2, None)})
    assert model.layout_.columns["chem"].tolist() == [0, 1]
    assert model.layout_.columns["img"].tolist() == [2, 3, 4]


def test_a_label_slice_with_a_missing_label_is_a_clear_error():
    frame, y = _frame()
    frame = frame[["img__a", "chem__alc", "chem__ph", "img__b", "img__c"]]  # not sorted
    with pytest.raises(ValueError, match=r"modality 'chem': slice\('chem__alc', 'nope'\).*loc"):
        _fit(frame, y, modalities={"chem": slice("chem__alc", "nope"), "img": "^img"})


def _unprefixed(frame):
    return frame.rename(columns=lambda c: c.replace("__", "_"))


def test_a_frame_without_prefixes_warns_how_to_name_columns():
    frame, y = _frame()
    with pytest.warns(SingleModalityWarning, match=r"'modality__column' prefixes.*modalities="):
        model = _fit(_unprefixed(frame), y)
    assert model.modalities_ == {"X": (5,)}


@pytest.mark.parametrize("case", ["prefixed frame", "explicit single modality", "array"])
def test_no_warning_when_the_modalities_are_declared(case):
    frame, y = _frame()
    X, params = {
        "prefixed frame": (frame, {}),
        "explicit single modality": (_unprefixed(frame), {"modalities": {"X": slice(None)}}),
        "array": (frame.to_numpy(), {}),
    }[case]
    with warnings.catch_warnings():
        warnings.simplefilter("error", SingleModalityWarning)
        _fit(X, y, **params)


def test_scattered_nan_in_an_unprefixed_frame_advises_declaring_modalities():
    """Imputing would destroy a missing modality's absence: the advice is to declare the
    modalities, not to run SimpleImputer."""
    frame, y = _frame()
    frame = _unprefixed(frame)
    frame.iloc[3, :2] = np.nan  # the "chem" columns of row 3: a missing modality in disguise
    with pytest.warns(SingleModalityWarning), pytest.raises(ValueError) as error:
        _fit(frame, y)
    message = str(error.value)
    assert "declare them" in message and "modalities=" in message
    assert "SimpleImputer" not in message
