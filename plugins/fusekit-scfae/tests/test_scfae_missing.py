"""Absent modalities: finite outputs, no leakage, masked loss, shared-part swap rules."""

import itertools

import numpy as np
import pytest
import torch
from fusekit_scfae import source_positions
from scfae_helpers import build_fusion, random_features, run
from torch.nn import functional as F

from fusekit import FusionClassifier, Modalities

WIDTHS = {"a": 5, "v": 8, "t": 6}
PATTERNS = [p for p in itertools.product([True, False], repeat=3) if any(p)]


def _mask(rows):
    return torch.tensor(rows, dtype=torch.bool)


@pytest.mark.parametrize("rule", ["zero", "self", "next_present"])
def test_all_seven_presence_patterns_and_none_give_finite_outputs_and_grads(rule):
    fusion = build_fusion(WIDTHS, missing_shared=rule)
    patterns = [*PATTERNS, (False, False, False)]
    features = random_features(WIDTHS, batch=len(patterns))
    mask = _mask(patterns)
    features = {m: v * mask[:, i : i + 1] for i, (m, v) in enumerate(features.items())}
    for v in features.values():
        v.requires_grad_()
    fused, output = run(fusion, features, mask)
    loss = output.aux_losses["scfae_recon"]
    (fused.sum() + loss).backward()
    assert torch.isfinite(fused).all() and torch.isfinite(loss)
    assert all(torch.isfinite(v.grad).all() for v in features.values())
    assert all(torch.isfinite(p.grad).all() for p in fusion.parameters() if p.grad is not None)


@pytest.mark.parametrize("rule", ["zero", "self", "next_present"])
def test_output_does_not_depend_on_values_inside_absent_modalities(rule):
    fusion = build_fusion(WIDTHS, missing_shared=rule)
    mask = _mask(PATTERNS)
    zeros = {
        m: v * mask[:, i : i + 1]
        for i, (m, v) in enumerate(random_features(WIDTHS, batch=7).items())
    }
    garbage = {
        m: torch.where(mask[:, i : i + 1], v, torch.full_like(v, 1e3))
        for i, (m, v) in enumerate(zeros.items())
    }
    fused_zero, out_zero = run(fusion, zeros, mask)
    fused_garbage, out_garbage = run(fusion, garbage, mask)
    torch.testing.assert_close(fused_zero, fused_garbage)
    torch.testing.assert_close(
        out_zero.aux_losses["scfae_recon"], out_garbage.aux_losses["scfae_recon"]
    )


def test_reconstruction_term_counts_present_pairs_only():
    fusion = build_fusion(WIDTHS)
    mask = _mask(PATTERNS)
    features = random_features(WIDTHS, batch=7)
    _, output = run(fusion, features, mask)
    diag = output.diagnostics["scfae"]
    terms = torch.stack(
        [1 - F.cosine_similarity(diag["inputs"][m], diag["recon"][m], dim=1) for m in WIDTHS],
        dim=1,
    )  # (B, M), the absent entries are arbitrary (cosine to a zero target)
    expected = (terms * mask).sum() / 7  # mean over the batch, present pairs only
    assert float(diag["recon_loss"]) == pytest.approx(float(expected), rel=1e-5)
    _, alone = run(fusion, features, _mask([(True, False, False)] * 7))
    assert torch.isfinite(alone.aux_losses["scfae_recon"])


def test_shared_source_rules_when_the_partner_is_absent():
    # cycle (0, 1, 2): default partners 1, 2, 0
    present = _mask([[True, True, True], [True, False, True], [True, False, False]])
    assert source_positions(present, "zero").tolist() == [[1, 2, 0]] * 3
    assert source_positions(present, "self").tolist() == [[1, 2, 0], [0, 2, 0], [0, 1, 0]]
    assert source_positions(present, "next_present").tolist() == [
        [1, 2, 0],
        [2, 2, 0],  # 0 skips absent 1 and takes 2
        [0, 0, 0],  # only 0 present: 0 keeps its own, the absent ones take 0's
    ]


def test_next_present_substitutes_the_next_present_modalitys_shared_part():
    fusion = build_fusion(WIDTHS, missing_shared="next_present")  # cycle a -> v -> t -> a
    features = random_features(WIDTHS, batch=2)
    mask = _mask([[True, False, True], [True, True, True]])
    features["v"] = features["v"] * mask[:, 1:2]
    _, output = run(fusion, features, mask)
    _, full = run(fusion, features, torch.ones(2, 3, dtype=torch.bool))
    diag = output.diagnostics["scfae"]
    assert diag["shared_source"].tolist() == [[2, 2, 0], [1, 2, 0]]
    # row 0: a's partner v is absent, so a takes t's projected shared slice, which is exactly
    # what v (whose partner is t) receives in a pass with everything present.
    torch.testing.assert_close(
        diag["z_shared"]["a"][0], full.diagnostics["scfae"]["z_shared"]["v"][0]
    )


def test_predictions_with_nan_modalities_match_the_all_absent_ones(unequal):
    X, y = unequal
    model = FusionClassifier(fusion="scfae", max_epochs=3, random_state=0).fit(X, y)
    a = np.array(X["a"], copy=True)
    a[:10] = np.nan
    partly = model.predict_proba(Modalities(a=a, b=X["b"]))
    b_only = model.predict_proba(Modalities(a=np.full_like(a, np.nan), b=X["b"]))
    assert np.isfinite(partly).all()
    np.testing.assert_allclose(partly[:10], b_only[:10], rtol=1e-5, atol=1e-6)
    assert np.isfinite(
        model.predict_proba(Modalities(a=X["a"], b=np.full_like(X["b"], np.nan)))
    ).all()
