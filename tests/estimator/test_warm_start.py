"""``warm_start=True``: a second ``fit`` continues the fitted network (sklearn's convention)."""

import numpy as np
import pytest
import torch

from fusekit import FusionClassifier, FusionRegressor

SPEC = {"a": 3, "b": 2}


def _data(n: int = 60):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 5))
    return X, (X[:, 0] - X[:, 4] > 0).astype(int)


def test_two_warm_fits_of_3_epochs_equal_one_fit_of_6():
    """One batch per epoch (batch_size >= n): the shuffle cannot matter, so 3 + 3 epochs that
    keep the network and Adam's moments follow the same path as 6 epochs in one fit."""
    X, y = _data()
    params = dict(modalities=SPEC, batch_size=256, lr=0.05, random_state=0)
    warm = FusionClassifier(max_epochs=3, warm_start=True, **params).fit(X, y)
    first = {k: v.clone() for k, v in warm.module_.state_dict().items()}
    network = warm.module_
    warm.fit(X, y)
    assert warm.n_iter_ == 6 and len(warm.loss_curve_) == 6
    # the continued fit trained a copy (so a failure could not have harmed the fitted network)
    assert warm.module_ is not network
    torch.testing.assert_close(network.state_dict(), first)
    whole = FusionClassifier(max_epochs=6, **params).fit(X, y)
    for name, value in warm.module_.state_dict().items():
        torch.testing.assert_close(value, whole.module_.state_dict()[name], rtol=1e-5, atol=1e-6)
    assert any(not torch.equal(first[k], v) for k, v in warm.module_.state_dict().items())
    # without warm_start the second fit starts over
    cold = FusionClassifier(max_epochs=3, **params).fit(X, y)
    cold.fit(X, y)
    assert cold.n_iter_ == 3
    torch.testing.assert_close(cold.module_.state_dict(), {k: first[k] for k in first})


def test_warm_start_needs_the_same_layout_and_classes():
    X, y = _data()
    model = FusionClassifier(modalities=SPEC, max_epochs=1, warm_start=True).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        model.fit(X[:, :4], y)
    with pytest.raises(ValueError, match="classes"):
        model.fit(X, np.where(y == 1, 2, 0))
    regressor = FusionRegressor(modalities=SPEC, max_epochs=1, warm_start=True).fit(X, X[:, 0])
    with pytest.raises(ValueError, match="output"):
        regressor.fit(X, X[:, :2])


def test_warm_start_keeps_the_target_and_input_standardisation():
    X, _ = _data()
    model = FusionRegressor(modalities=SPEC, max_epochs=2, warm_start=True).fit(X, X[:, 0])
    mean, scale, means = model.y_mean_.copy(), model.y_scale_.copy(), model.standardizer_.means
    model.fit(X * 3.0 + 1.0, X[:, 0] * 10.0)
    np.testing.assert_array_equal(model.y_mean_, mean)
    np.testing.assert_array_equal(model.y_scale_, scale)
    assert model.standardizer_.means is means


@pytest.mark.parametrize("lr", ["auto", 0.05])
def test_warm_start_continues_at_the_resolved_learning_rate(lr):
    """With ``lr="auto"`` the continued optimiser runs at the resolved ``lr_`` (0.01 for concat:
    no recommendation), not at the string: 3 + 3 epochs equal 6."""
    X, y = _data()
    params = dict(modalities=SPEC, batch_size=256, lr=lr, random_state=0)
    warm = FusionClassifier(max_epochs=3, warm_start=True, **params).fit(X, y)
    warm.fit(X, y)
    assert all(group["lr"] == warm.lr_ for group in warm.net_.optimizer_.param_groups)
    assert warm.lr_ == (0.01 if lr == "auto" else lr)
    whole = FusionClassifier(max_epochs=6, **params).fit(X, y)
    for name, value in warm.module_.state_dict().items():
        torch.testing.assert_close(value, whole.module_.state_dict()[name], rtol=1e-5, atol=1e-6)
