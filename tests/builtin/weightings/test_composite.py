"""Several weightings as a list the network holds, combined in a defined order."""

import numpy as np
import pytest
import torch
from weightings_helpers import build_network, make_batch, make_data

from fusekit import FusionClassifier
from fusekit.builtin.ogm_ge_weighting import OGMGEWeighting
from fusekit.builtin.static_weighting import StaticWeighting
from fusekit.plugin import FusionOutput, Weighting


def test_dropout_then_ogm_ge_then_qmf_fits():
    X, y = make_data(3)
    model = FusionClassifier(
        weighting=["modality_dropout", OGMGEWeighting(alpha=0.3, unimodal="heads"), "qmf"],
        max_epochs=3,
        random_state=0,
    ).fit(X, y)
    parts = model.module_.weightings
    assert [type(p).__name__ for p in parts] == [
        "ModalityDropout",
        "OGMGEWeighting",
        "QMFWeighting",
    ]
    assert parts[1].alpha == 0.3
    assert model.module_.unimodal_heads is not None
    assert np.isfinite(model.predict_proba(X)).all()


def test_reweight_is_chained_in_order():
    first, second = StaticWeighting(init={"a": 1.0}), StaticWeighting(init={"b": 2.0})
    network = build_network([first, second])
    batch = make_batch(n=3)
    features = network.encode(batch)
    one, two = network.weightings
    logits = network.fuse(features, batch.mask, FusionOutput(mask=batch.mask))
    expected = two.reweight(
        one.reweight(features, batch.mask, FusionOutput(mask=batch.mask)),
        batch.mask,
        FusionOutput(mask=batch.mask),
    )
    fused = network.fusion(expected, batch.mask, FusionOutput(mask=batch.mask))
    torch.testing.assert_close(logits, network.head(fused))


def test_two_task_losses_are_an_error():
    X, y = make_data(2)
    model = FusionClassifier(weighting=["qmf", "tmc"], max_epochs=1)
    with pytest.raises(ValueError, match="at most one weighting in the list may redefine"):
        model.fit(X, y)


def test_nested_parameters_of_a_list_are_an_error():
    X, y = make_data(2)
    model = FusionClassifier(weighting=["static", "qmf"], weighting__learnable=False, max_epochs=1)
    with pytest.raises(ValueError, match="pass configured instances in the list"):
        model.fit(X, y)


def test_a_list_of_weightings_is_held_as_a_list(vectors):
    X, y = vectors
    model = FusionClassifier(weighting=["modality_dropout", "static"], max_epochs=2).fit(X, y)
    assert [type(w).__name__ for w in model.module_.weightings] == [
        "ModalityDropout",
        "StaticWeighting",
    ]
    assert np.isfinite(model.predict_proba(X)).all()


class _Shift(Weighting):
    """Adds ``c`` to every feature and to the logits."""

    def __init__(self, c: float = 1.0) -> None:
        super().__init__()
        self.c = c

    def reweight(self, features, mask, output):
        return {m: h + self.c for m, h in features.items()}

    def adjust_logits(self, output):
        return output.logits + self.c


class _Scale(_Shift):
    """Multiplies every feature and the logits by ``c``."""

    def reweight(self, features, mask, output):
        return {m: h * self.c for m, h in features.items()}

    def adjust_logits(self, output):
        return output.logits * self.c


def test_the_network_applies_every_weighting_of_the_list_in_order():
    """Steps that do not commute: [shift 1, scale 2] gives 2(h + 1) and logits 2(W·2(h + 1) + b
    + 1), by hand from the identity backbones and the concat head; the other order differs, so
    skipping or reordering a step fails."""
    network = build_network([_Shift(1.0), _Scale(2.0)], identity=True)
    batch = make_batch(n=5)
    x = torch.cat([batch.features["a"], batch.features["b"]], dim=1)  # (5, 7), all present
    expected = 2 * (network.head(2 * (x + 1)) + 1)
    torch.testing.assert_close(network(batch).logits, expected)
    reverse = build_network([_Scale(2.0), _Shift(1.0)], identity=True)
    reverse.head.load_state_dict(network.head.state_dict())
    torch.testing.assert_close(reverse(batch).logits, 2 * network.head(2 * x + 1) + 1)
