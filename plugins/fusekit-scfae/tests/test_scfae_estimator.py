"""SCFAE through the estimator: registry, GridSearchCV, fitting, presets, diagnostics, pickling."""

import pickle
from importlib import metadata

import numpy as np
import pytest
import torch
from fusekit_scfae import PRESETS, SCFAEFusion, gradient_cosine
from scfae_helpers import build_fusion, random_features, run
from sklearn.model_selection import GridSearchCV

from fusekit import FusionClassifier, FusionRegressor
from fusekit.engine.registry import get_registry

NAMES = ["scfae", *PRESETS]


def test_registered_by_entry_point_with_its_presets():
    assert "scfae" in [ep.name for ep in metadata.entry_points(group="fusekit")]
    for name in NAMES:
        entry = get_registry().entry("fusion", name)
        assert entry.distribution == "fusekit-scfae"
        assert issubclass(entry.obj, SCFAEFusion)


def test_presets_change_only_their_defaults():
    assert PRESETS["scfae_no_recon"]().get_params()["lam"] == 0.0
    assert PRESETS["scfae_no_expand"]().get_params()["n"] == 1
    assert PRESETS["scfae_mse"](lam=0.5).get_params() == {
        **SCFAEFusion(recon="mse", detach_target=True, lam=0.5).get_params()
    }
    assert PRESETS["linear_proj"]().structure == "linear"
    with pytest.raises(TypeError):
        PRESETS["scfae_mse"](rank=3)


def test_grid_search_over_concat_and_scfae_with_a_nested_parameter(unequal_seeded, train_seed):
    X, y = unequal_seeded
    search = GridSearchCV(
        FusionClassifier(max_epochs=4, backbone__hidden=16, random_state=train_seed),
        [{"fusion": ["concat"]}, {"fusion": ["scfae"], "fusion__n": [1, 2]}],
        cv=2,
    )
    search.fit(X, y)
    assert len(search.cv_results_["params"]) == 3
    assert search.best_score_ > 0.75  # FUSEKIT_TEST_SEED=0-5: 0.91-0.96


def test_fits_unequal_widths_above_chance_and_records_gradient_diagnostics(
    unequal_seeded, train_seed
):
    X, y = unequal_seeded
    model = FusionClassifier(
        fusion="scfae", fusion__gradient_diagnostics=True, max_epochs=6, random_state=train_seed
    ).fit(X, y)
    assert model.module_.fusion.widths == {"a": 64, "b": 64}  # the mlp backbone's width
    assert model.score(X, y) > 0.8  # chance about 0.5; FUSEKIT_TEST_SEED=0-5: 0.956-1.0
    history = model.net_.history
    cosines = history[:, "scfae_grad_cos"]
    assert len(cosines) == 6 and all(-1 <= c <= 1 for c in cosines)
    assert all(0 <= f <= 1 for f in history[:, "scfae_grad_neg"])
    assert all(g >= 0 for g in history[:, "scfae_task_grad_norm"])


def test_identity_backbones_keep_the_raw_unequal_widths(unequal_seeded, train_seed):
    X, y = unequal_seeded
    model = FusionClassifier(
        backbone="identity", fusion="scfae", max_epochs=8, random_state=train_seed
    )
    model.fit(X, y)
    fusion = model.module_.fusion
    assert fusion.widths == {"a": 16, "b": 40} and fusion.shared_width == 16
    assert model.module_.head.in_features == (16 + 16) + (40 + 16)
    assert model.score(X, y) > 0.75  # FUSEKIT_TEST_SEED=0-5: 0.98-1.0


def test_gradient_cosine_flips_sign_with_the_auxiliary_loss():
    torch.manual_seed(0)
    weight = torch.randn(5, requires_grad=True)
    x = torch.randn(8, 5)
    task, aux = (x @ weight).pow(2).mean(), (x @ weight - 1).abs().mean()
    cos, norm = gradient_cosine(task, aux, [weight])
    flipped, _ = gradient_cosine(task, -aux, [weight])
    assert -1 <= cos <= 1 and norm > 0
    assert flipped == pytest.approx(-cos, abs=1e-6)


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_fits_and_predicts_finite(name, unequal):
    X, y = unequal
    model = FusionClassifier(fusion=name, max_epochs=2, random_state=0).fit(X, y)
    assert np.isfinite(model.predict_proba(X)).all()


def test_regression_and_pickling(unequal):
    X, y = unequal
    target = y + 0.1 * X["a"][:, 0]
    model = FusionRegressor(fusion="scfae_mse", max_epochs=3, random_state=0).fit(X, target)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_allclose(model.predict(X), again.predict(X), rtol=1e-6)


def test_branch_masking_changes_the_output():
    widths = {"a": 4, "b": 6}
    features = random_features(widths)
    full = build_fusion(widths)
    outputs = {"both": run(full, features)[0]}
    for branch in ("shared", "specific"):
        full.branch = branch  # Table 14: mask a branch of the fitted module at inference
        outputs[branch] = run(full, features)[0]
    assert not torch.allclose(outputs["both"], outputs["shared"])
    assert not torch.allclose(outputs["both"], outputs["specific"])


def _info_nce_by_hand(a: np.ndarray, b: np.ndarray, temperature: float) -> float:
    """Symmetric InfoNCE (CLIP-style, positives on the diagonal), float64, written out.

    S_ij = cos(a_i, b_j) / τ;  ℓ = ½ [mean_i (log Σ_j e^{S_ij} − S_ii)
                                   + mean_j (log Σ_i e^{S_ij} − S_jj)].
    """
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    s = a @ b.T / temperature  # (P, P)
    rows = np.mean(np.log(np.exp(s).sum(axis=1)) - np.diag(s))
    columns = np.mean(np.log(np.exp(s).sum(axis=0)) - np.diag(s))
    return 0.5 * (rows + columns)


def _own_shared(fusion, features):
    """Each modality's own projected shared slice P_shared(Ẑ_sh^m), (B, l*), before the swap."""
    out = {}
    with torch.no_grad():
        for m, v in features.items():
            expanded = fusion.expand[m](fusion.pre[m](v))
            out[m] = fusion.shared[m](expanded[:, : fusion.splits[m]]).double().numpy()
    return out


@pytest.mark.parametrize("absent_row", [None, 2])
def test_contrastive_preset_loss_is_symmetric_info_nce_over_cycle_pairs(absent_row):
    """Table 8's "Contrastive Replacement": λ Σ_(m, m+1 mod M) InfoNCE(shared_m, shared_m+1).

    Positives are the same sample; a pair uses only the samples where both are present; the
    temperature is the preset's default 0.07. Expected value computed here in float64.
    """
    widths = {"a": 4, "b": 6, "c": 5}
    fusion = build_fusion(widths, cls=PRESETS["scfae_contrastive"], lam=0.3)
    features = random_features(widths, batch=8)
    mask = torch.ones(8, 3, dtype=torch.bool)
    if absent_row is not None:
        mask[absent_row, 1] = False  # b absent in one sample: pairs (a, b), (b, c) lose it
        features["b"][absent_row] = 0.0
    _, output = run(fusion, features, mask)
    shared = _own_shared(fusion, features)
    expected = 0.0
    for first, second in [("a", "b"), ("b", "c"), ("c", "a")]:
        rows = (mask[:, list(widths).index(first)] & mask[:, list(widths).index(second)]).numpy()
        expected += _info_nce_by_hand(shared[first][rows], shared[second][rows], 0.07)
    assert fusion.temperature == 0.07
    assert float(output.diagnostics["scfae"]["recon_loss"]) == pytest.approx(expected, rel=1e-5)
    loss = float(output.aux_losses["scfae_recon"].detach())
    assert loss == pytest.approx(0.3 * expected, rel=1e-5)


def test_contrastive_loss_of_two_modalities_uses_the_single_pair_once():
    widths = {"a": 4, "b": 6}
    fusion = build_fusion(widths, cls=PRESETS["scfae_contrastive"])
    features = random_features(widths, batch=8)
    _, output = run(fusion, features)
    shared = _own_shared(fusion, features)
    expected = _info_nce_by_hand(shared["a"], shared["b"], 0.07)  # not (a, b) + (b, a)
    assert float(output.diagnostics["scfae"]["recon_loss"]) == pytest.approx(expected, rel=1e-5)


def test_rejects_a_wrong_modality_order_at_fit(unequal):
    X, y = unequal
    with pytest.raises(ValueError, match="modality_order"):
        FusionClassifier(fusion="scfae", fusion__modality_order=["a", "c"], max_epochs=1).fit(X, y)
