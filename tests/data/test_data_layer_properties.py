"""Property test of the data layer: a valid result or a clear ValueError/TypeError, always."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fusekit import FusionClassifier
from fusekit.data import presence_mask, split_modalities

DTYPES = [np.float32, np.float64, np.int64, np.int8, np.bool_, np.complex64, object, np.str_]


@st.composite
def modality_arrays(draw):
    n = draw(st.integers(0, 6))
    arrays = {}
    for position in range(draw(st.integers(1, 3))):
        ndim = draw(st.integers(1, 5))
        shape = (n, *draw(st.lists(st.integers(0, 3), min_size=ndim - 1, max_size=ndim - 1)))
        dtype = draw(st.sampled_from(DTYPES))
        values = np.asarray(
            draw(
                st.lists(
                    st.floats(allow_nan=True, allow_infinity=True, width=32),
                    min_size=int(np.prod(shape)),
                    max_size=int(np.prod(shape)),
                )
            )
        ).reshape(shape)
        if dtype is np.str_:
            values = values.astype(str)
        elif dtype is object:
            values = values.astype(object)
        else:
            with np.errstate(all="ignore"):
                values = (
                    values.astype(dtype)
                    if np.issubdtype(dtype, np.floating) or dtype in (np.complex64,)
                    else np.nan_to_num(values).astype(dtype)
                )
        if draw(st.booleans()) and n:
            values = values.astype(np.float64) if values.dtype.kind in "fiub" else values
            if values.dtype.kind == "f":
                values[draw(st.integers(0, n - 1))] = np.nan  # a whole absent row
        arrays[f"m{position}"] = values
    return arrays


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(modality_arrays())
def test_data_layer_returns_valid_data_or_a_clear_error(arrays):
    estimator = FusionClassifier()
    try:
        split, layout = split_modalities(arrays, None, estimator, reset=True)
        prepared = presence_mask(split)
    except (ValueError, TypeError) as error:
        assert str(error), "errors must carry a message"
        return
    n = prepared.mask.shape[0]
    assert prepared.mask.shape == (n, len(arrays)) and prepared.mask.dtype == bool
    for name, array in prepared.arrays.items():
        assert array.dtype == np.float32
        assert np.isfinite(array).all()
        assert array.shape[1:] == layout.shapes[name]
