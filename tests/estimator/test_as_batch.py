"""``as_batch(X)``: ``X`` as the fitted network sees it, the public way the contract checks and
tests feed ``module_`` directly. Expected values: the columns standardised by numpy with the
training rows' mean and (population) standard deviation."""

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from fusekit import FusionClassifier


def _data(n=20, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)) * [1.0, 4.0, 0.5] + [0.0, 3.0, -2.0]
    return X, (X[:, 0] > 0).astype(int)


def test_as_batch_standardises_with_the_training_statistics_and_feeds_the_network():
    X, y = _data()
    model = FusionClassifier(modalities={"a": 2, "b": 1}, max_epochs=1, random_state=0).fit(X, y)
    new = X[:5] + 1.0
    batch = model.as_batch(new)
    expected = (new - X.mean(axis=0)) / X.std(axis=0)
    np.testing.assert_allclose(batch.features["a"].numpy(), expected[:, :2], rtol=1e-5)
    np.testing.assert_allclose(batch.features["b"].numpy(), expected[:, 2:], rtol=1e-5)
    assert batch.mask.shape == (5, 2) and bool(batch.mask.all())
    with torch.no_grad():
        logits = model.module_(batch).logits
    probabilities = torch.softmax(logits, dim=1).numpy()
    np.testing.assert_allclose(probabilities, model.predict_proba(new), rtol=1e-5, atol=1e-6)


def test_as_batch_needs_a_fitted_model():
    with pytest.raises(NotFittedError):
        FusionClassifier().as_batch(np.zeros((2, 2)))
