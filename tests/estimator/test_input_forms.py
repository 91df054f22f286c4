"""Every accepted X form gives the same model; layouts are remembered and checked."""

import numpy as np
import pandas as pd
import pytest
import torch

from fusekit import FusionClassifier, Modalities
from fusekit.data import Standardizer, presence_mask


def _vector_data(n=90, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    a = rng.normal(size=(n, 3)) + y[:, None]
    b = rng.normal(size=(n, 2)) - y[:, None]
    return a, b, y


def _fit_proba(X, y, **params):
    model = FusionClassifier(max_epochs=4, random_state=0, **params).fit(X, y)
    return model, model.predict_proba(X)


def test_all_forms_give_the_same_predictions():
    a, b, y = _vector_data()
    by_mapping = _fit_proba(Modalities(a=a, b=b), y)[1]
    by_dict = _fit_proba({"a": a, "b": b}, y)[1]
    frame = pd.DataFrame(np.hstack([a, b]), columns=["a__0", "a__1", "a__2", "b__0", "b__1"])
    by_prefix = _fit_proba(frame, y)[1]
    plain = pd.DataFrame(np.hstack([a, b]), columns=["p", "q", "r", "s", "t"])
    by_columns = _fit_proba(plain, y, modalities={"a": ["p", "q", "r"], "b": ["s", "t"]})[1]
    by_regex = _fit_proba(plain, y, modalities={"a": "^[pqr]$", "b": "^[st]$"})[1]
    by_widths = _fit_proba(np.hstack([a, b]), y, modalities={"a": 3, "b": 2})[1]
    for other in (by_dict, by_prefix, by_columns, by_regex, by_widths):
        np.testing.assert_allclose(other, by_mapping, rtol=1e-5, atol=1e-6)


def test_layout_is_remembered():
    a, b, y = _vector_data()
    model, _ = _fit_proba(Modalities(a=a, b=b), y)
    assert model.modalities_ == {"a": (3,), "b": (2,)}
    assert model.module_.names == ("a", "b")


def test_plain_array_is_one_modality():
    a, _, y = _vector_data()
    model, proba = _fit_proba(a, y)
    assert model.modalities_ == {"X": (3,)}
    assert model.n_features_in_ == 3
    assert proba.shape == (len(y), 2)


def test_sequences_and_images_are_accepted():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 40)
    X = Modalities(seq=rng.normal(size=(40, 6, 3)), img=rng.normal(size=(40, 2, 4, 4)))
    model, proba = _fit_proba(X, y)
    assert model.modalities_ == {"seq": (6, 3), "img": (2, 4, 4)}
    assert np.isfinite(proba).all()


def test_torch_tensors_are_accepted():
    a, b, y = _vector_data()
    X = Modalities(a=torch.as_tensor(a), b=torch.as_tensor(b))
    assert np.isfinite(_fit_proba(X, y)[1]).all()


def test_all_nan_row_is_absent_and_zero_filled():
    a = np.array([[1.0, 2.0], [np.nan, np.nan], [3.0, 4.0]])
    prepared = presence_mask({"a": a})
    assert prepared.mask[:, 0].tolist() == [True, False, True]
    assert (prepared.arrays["a"][1] == 0).all()


def test_standardizer_ignores_absent_rows():
    a = np.array([[1.0], [np.nan], [3.0]])
    prepared = presence_mask({"a": a})
    scaled = Standardizer.fit(prepared).transform(prepared)
    np.testing.assert_allclose(scaled.arrays["a"][:, 0], [-1.0, 0.0, 1.0])


def test_standardization_can_be_switched_off():
    a, b, y = _vector_data()
    model = FusionClassifier(max_epochs=1, standardize=False).fit(Modalities(a=a, b=b), y)
    assert model.standardizer_ is None


def test_sequence_statistics_are_per_channel():
    rng = np.random.default_rng(0)
    seq = rng.normal(loc=[0.0, 10.0], scale=[1.0, 5.0], size=(50, 7, 2))
    prepared = presence_mask({"s": seq})
    standardizer = Standardizer.fit(prepared)
    assert standardizer.means["s"].shape == (1, 1, 2)
    scaled = standardizer.transform(prepared).arrays["s"]
    np.testing.assert_allclose(scaled.reshape(-1, 2).mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(scaled.reshape(-1, 2).std(axis=0), 1, atol=1e-4)


def test_padded_sequence_steps_are_masked_not_errors():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 40)
    seq = rng.normal(size=(40, 6, 3)) + y[:, None, None]
    seq[:10, 4:] = np.nan  # ragged: the first ten sequences have 4 real steps
    prepared = presence_mask({"s": seq})
    assert prepared.steps["s"][:10].sum(axis=1).tolist() == [4] * 10
    assert prepared.steps["s"][10:].all()
    model, proba = _fit_proba(Modalities(s=seq), y)
    assert np.isfinite(proba).all()
    # pooling averages the real steps only
    from fusekit.plugin import as_vector

    h = torch.as_tensor(np.nan_to_num(seq[:10]))
    steps = torch.as_tensor(prepared.steps["s"][:10])
    np.testing.assert_allclose(as_vector(h, steps), torch.as_tensor(seq[:10, :4]).mean(dim=1))


def test_partial_nan_inside_a_step_is_an_error():
    seq = np.ones((4, 3, 2))
    seq[0, 1, 0] = np.nan
    with pytest.raises(ValueError, match="modality 's' has NaN in part of a time step"):
        presence_mask({"s": seq})


def test_torch_standardisation_at_predict_equals_the_numpy_one():
    from fusekit.plugin import ModalityBatch

    rng = np.random.default_rng(0)
    seq = rng.normal(3.0, 2.0, size=(12, 5, 2))
    seq[:3, 3:] = np.nan  # padded steps
    seq[5] = np.nan  # absent row
    vec = rng.normal(-1.0, 4.0, size=(12, 3))
    prepared = presence_mask({"s": seq, "v": vec})
    standardizer = Standardizer.fit(prepared)
    expected = standardizer.transform(prepared)
    batch = ModalityBatch(
        {m: torch.from_numpy(a) for m, a in prepared.arrays.items()},
        torch.from_numpy(prepared.mask),
        steps={m: torch.from_numpy(s) for m, s in prepared.steps.items()},
    )
    got = standardizer.torch_transform(torch.device("cpu"))(batch)
    for name in ("s", "v"):
        np.testing.assert_array_equal(got.features[name].numpy(), expected.arrays[name])
