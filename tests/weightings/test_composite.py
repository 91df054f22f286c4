"""compose: several weightings in a defined order."""

import numpy as np
import pytest
import torch
from weightings_helpers import build_network, loss_context, make_batch, make_data

from fusekit import FusionClassifier
from fusekit.builtin.composite_weighting import CompositeWeighting
from fusekit.builtin.ogm_ge_weighting import OGMGEWeighting
from fusekit.builtin.static_weighting import StaticWeighting
from fusekit.components import Weighting
from fusekit.output import FusionOutput
from fusekit.resolve import instantiate


def test_dropout_then_ogm_ge_then_qmf_fits():
    X, y = make_data(3)
    model = FusionClassifier(
        weighting="compose",
        weighting__steps=["modality_dropout", OGMGEWeighting(alpha=0.3, unimodal="heads"), "qmf"],
        max_epochs=3,
        random_state=0,
    ).fit(X, y)
    parts = model.module_.weighting.parts
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
    composite = CompositeWeighting(steps=[first, second])
    network = build_network(composite)
    batch = make_batch(n=3)
    features = network.encode(batch)
    chained = composite.reweight(features, batch.mask, FusionOutput(mask=batch.mask))
    one, two = composite.parts
    expected = two.reweight(
        one.reweight(features, batch.mask, FusionOutput(mask=batch.mask)),
        batch.mask,
        FusionOutput(mask=batch.mask),
    )
    for name in features:
        torch.testing.assert_close(chained[name], expected[name])


def test_loss_terms_of_every_step_are_kept_apart():
    composite = CompositeWeighting(steps=["unimodal_aux", "prob_embedding"])
    network = build_network(composite)
    batch = make_batch(n=4)
    output = network(batch)
    terms = composite.loss_terms(output, loss_context(network, batch, torch.zeros(4).long()))
    assert set(terms) == {"0_UnimodalAuxWeighting/unimodal", "1_ProbEmbeddingWeighting/pe_kl"}


def test_two_task_losses_are_an_error():
    X, y = make_data(2)
    model = FusionClassifier(weighting="compose", weighting__steps=["qmf", "tmc"], max_epochs=1)
    with pytest.raises(ValueError, match="compose: steps"):
        model.fit(X, y)


def test_a_list_of_weightings_composes_them(vectors):
    from fusekit import FusionClassifier

    X, y = vectors
    model = FusionClassifier(weighting=["modality_dropout", "static"], max_epochs=2).fit(X, y)
    assert type(model.module_.weighting).__name__ == "CompositeWeighting"
    parts = [type(p).__name__ for p in model.module_.weighting.parts]
    assert parts == ["ModalityDropout", "StaticWeighting"]
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


@pytest.mark.parametrize("form", ["compose", "list"])
def test_the_network_applies_every_step_in_list_order(form):
    """Steps that do not commute: [shift 1, scale 2] gives 2(h + 1) and logits 2(W·2(h + 1) + b
    + 1), by hand from the identity backbones and the concat head; the other order differs."""
    steps = [_Shift(1.0), _Scale(2.0)]
    weighting = CompositeWeighting(steps=steps) if form == "compose" else steps
    if form == "list":  # the estimator's list form resolves to the same composite
        weighting = instantiate("weighting", weighting, {})
    network = build_network(weighting, identity=True)
    batch = make_batch(n=5)
    x = torch.cat([batch.features["a"], batch.features["b"]], dim=1)  # (5, 7), all present
    expected = 2 * (network.head(2 * (x + 1)) + 1)
    torch.testing.assert_close(network(batch).logits, expected)
    reverse = build_network(CompositeWeighting(steps=[_Scale(2.0), _Shift(1.0)]), identity=True)
    reverse.head.load_state_dict(network.head.state_dict())
    torch.testing.assert_close(reverse(batch).logits, 2 * network.head(2 * x + 1) + 1)
