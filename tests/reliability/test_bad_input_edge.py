"""Input the estimators used to accept and then crash on or misread: modality names, numbers that
do not fit float32, datetimes, targets whose scaling overflows, the wrong form at predict."""

import numpy as np
import pandas as pd
import pytest

from fusekit import FusionClassifier, FusionRegressor, Modalities
from reliability.raising import raises_exactly

N = 20
RNG = np.random.default_rng(0)
A, B = RNG.normal(size=(N, 3)), RNG.normal(size=(N, 2))
Y = np.arange(N) % 2


def _model(**params):
    return FusionClassifier(max_epochs=1, random_state=0, **params)


@pytest.mark.parametrize(
    ("name", "match"),
    [
        (
            "a.b",
            r"modality 'a\.b' \(X\): modality names cannot contain '\.'; rename it, e.g. 'a_b'",
        ),
        ("type", "modality 'type' .*reserved"),
        ("training", "modality 'training' .*reserved"),
        ("forward", "modality 'forward' .*reserved"),
        ("keys", "modality 'keys' .*reserved"),
        ("", "X has a modality with an empty name"),
    ],
)
def test_bad_modality_names_are_refused_before_torch(name, match):
    with raises_exactly(ValueError, match):
        _model().fit({name: A, "b": B}, Y)


def test_a_name_only_a_plugin_container_refuses_is_named_not_a_torch_keyerror():
    # nn.ParameterDict (the lowrank fusion's factors) refuses "copy"; nn.ModuleDict accepts it
    assert _model().fit({"copy": A, "b": B}, Y).modalities_["copy"] == (3,)
    with raises_exactly(ValueError, r"modality 'copy': a component .* Rename the modality"):
        _model(fusion="lowrank").fit({"copy": A, "b": B}, Y)


def test_reserved_name_from_a_dataframe_prefix_is_refused():
    frame = pd.DataFrame(np.c_[A, B], columns=["type__x", "type__y", "type__z", "b__u", "b__v"])
    with raises_exactly(ValueError, r"modality 'type' \(the DataFrame's column prefixes\)"):
        _model().fit(frame, Y)


def test_reserved_name_from_modalities_spec_is_refused():
    with raises_exactly(ValueError, r"modality 'forward' \(modalities=\).*reserved"):
        _model(modalities={"forward": 3, "b": 2}).fit(np.c_[A, B], Y)


def test_non_string_modalities_spec_keys_are_refused():
    with raises_exactly(TypeError, r"modalities= keys must be strings .*\[1, 2\]"):
        _model(modalities={1: 3, 2: 2}).fit(np.c_[A, B], Y)


def test_keys_equal_as_strings_are_an_error_not_a_dropped_modality():
    with raises_exactly(ValueError, r"keys 1 and '1', which both give the modality name '1'"):
        _model().fit({1: A, "1": B}, Y)


def test_keys_equal_as_strings_at_predict_are_an_error():
    model = _model().fit({"1": A, "2": B}, Y)
    with raises_exactly(ValueError, r"keys '1' and 1"):
        model.predict({"1": A, 1: A, "2": B})


def test_non_string_keys_still_name_modalities():
    model = _model().fit({0: A, 1: B}, Y)
    assert list(model.modalities_) == ["0", "1"]


def test_float64_beyond_float32_names_modality_and_column():
    big = A.copy()
    big[4, 2] = 1e300
    with raises_exactly(ValueError, r"modality 'a', column 2: value 1e\+300 in row 4 does not fit"):
        _model().fit({"a": big, "b": B}, Y)


def test_float64_beyond_float32_in_a_dataframe_names_the_column_label():
    frame = pd.DataFrame(np.c_[A, B], columns=["a__x", "a__y", "a__z", "b__u", "b__v"])
    frame.loc[3, "b__v"] = -1e39
    with raises_exactly(ValueError, r"modality 'b', column 'b__v': value -1e\+39 in row 3"):
        _model().fit(frame, Y)


def test_float64_beyond_float32_at_predict_is_refused():
    model = _model().fit({"a": A, "b": B}, Y)
    with raises_exactly(ValueError, r"modality 'b', column 0: .*does not fit float32"):
        model.predict({"a": A, "b": B * 1e39})


@pytest.mark.parametrize(
    ("values", "match"),
    [
        (np.arange(N).astype("datetime64[D]"), r"dtype datetime64\[D\]: datetimes are not numbers"),
        (np.arange(N).astype("timedelta64[s]"), r"dtype timedelta64\[s\]: durations are not num"),
        (np.ones(N, dtype=complex), r"dtype complex128: Complex data not supported; pass real"),
    ],
)
def test_non_real_arrays_are_refused_with_the_fix(values, match):
    with raises_exactly(ValueError, "modality 't' has " + match):
        _model().fit({"t": values.reshape(-1, 1), "b": B}, Y)


def test_datetime_dataframe_column_is_refused_with_the_fix():
    frame = pd.DataFrame({"a__when": pd.date_range("2020-01-01", periods=N), "b__x": B[:, 0]})
    with raises_exactly(ValueError, r"column 'a__when' has dtype datetime64.*seconds since"):
        _model().fit(frame, Y)


def test_regression_target_whose_scaling_overflows_is_refused():
    y = np.linspace(-1.0, 1.0, N) * 1e308  # finite, but its standard deviation overflows
    with raises_exactly(ValueError, r"y cannot be standardised for training: output\(s\) \[0\]"):
        FusionRegressor(max_epochs=1).fit({"a": A}, y)


def test_warm_regression_target_beyond_float32_once_scaled_is_refused():
    model = FusionRegressor(max_epochs=1, warm_start=True).fit({"a": A}, np.linspace(0, 1, N))
    with raises_exactly(ValueError, r"y cannot be standardised.*once scaled by the fitted mean"):
        model.fit({"a": A}, np.linspace(0, 1, N) * 1e38)


@pytest.mark.parametrize(
    ("X", "came"),
    [
        (pd.DataFrame(np.c_[A, B]), "X is a DataFrame with 5 columns"),
        (np.c_[A, B], r"X is ndarray of shape \(20, 5\)"),
    ],
)
def test_table_at_predict_after_a_mapping_fit_says_what_was_fitted(X, came):
    model = _model().fit(Modalities(a=A, b=B), Y)
    with raises_exactly(
        ValueError,
        r"fitted on a mapping of modalities \('a': \(3,\), 'b': \(2,\) per sample\), but "
        + came
        + r".*keys \['a', 'b'\]",
    ):
        model.predict(X)
