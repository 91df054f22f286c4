"""MWAM inside fusekit: registration, gradient editing, eval no-op, state, masks."""

import copy
import warnings

import numpy as np
import pytest
import torch
from fusekit_mwam import MWAM
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from fusekit import FusionClassifier, Modalities, ModalityBatch, TrainingContext
from fusekit.builtin.concat_fusion import ConcatFusion
from fusekit.builtin.mlp_backbone import MLPBackbone
from fusekit.builtin.no_calibration import NoCalibration
from fusekit.builtin.no_weighting import NoWeighting
from fusekit.engine.network import FusionNetwork
from fusekit.engine.registry import get_registry


def image_data(n=96, seed=0):
    """A smooth (low-frequency) image, a white-noise image and a sequence; all informative."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    smooth = rng.normal(size=(n, 1, 16, 16)).cumsum(axis=2).cumsum(axis=3)
    smooth += 4.0 * y[:, None, None, None]
    noise = rng.normal(size=(n, 1, 16, 16)) + 0.5 * y[:, None, None, None]
    sequence = rng.normal(size=(n, 8, 2)) + 0.5 * y[:, None, None]
    return Modalities(smooth=smooth, noise=noise, sequence=sequence), y


def small_network(weighting, seed=0):
    torch.manual_seed(seed)
    shapes = {"smooth": (1, 16, 16), "noise": (1, 16, 16), "sequence": (8, 2)}
    return FusionNetwork(
        input_shapes=shapes,
        backbones={name: MLPBackbone(hidden=8) for name in shapes},
        calibration=NoCalibration(),
        fusion=ConcatFusion(),
        weighting=weighting,
        n_outputs=2,
        task="classification",
    )


def as_batch(X, y, rows=slice(0, 32)):
    features = {m: torch.as_tensor(value[rows], dtype=torch.float32) for m, value in X.items()}
    count = next(iter(features.values())).shape[0]
    mask = torch.ones(count, len(features), dtype=torch.bool)
    return ModalityBatch(features=features, mask=mask), torch.as_tensor(y[rows])


def context(network, batch, target):
    return TrainingContext(network, loop=None, data=None, epoch=0, batch=batch, target=target)


def gradients(network):
    return {name: p.grad.clone() for name, p in network.named_parameters() if p.grad is not None}


def test_registered_under_its_name():
    entry = get_registry().entry("weighting", "mwam")
    assert entry.obj is MWAM
    assert entry.distribution == "fusekit-mwam"


def test_no_trainable_parameters():
    with_mwam = sum(p.numel() for p in small_network(MWAM()).parameters())
    without = sum(p.numel() for p in small_network(NoWeighting()).parameters())
    assert with_mwam == without
    assert list(MWAM().parameters()) == []


def test_smooth_modality_gets_the_smaller_weight():
    X, y = image_data()
    network = small_network(MWAM())
    batch, target = as_batch(X, y)
    ctx = context(network, batch, target)
    network.weighting.on_train_begin(ctx)
    for _ in range(15):
        network.weighting.on_batch_begin(ctx)
    weights = dict(zip(network.names, network.weighting.modality_weights.tolist(), strict=True))
    assert weights["smooth"] < 1.0 < weights["noise"]


@pytest.mark.parametrize("apply", ["grad", "both"])
def test_gradient_editing_is_exact_and_local(apply):
    X, y = image_data()
    network = small_network(MWAM(apply=apply))
    batch, target = as_batch(X, y)
    ctx = context(network, batch, target)
    weighting = network.weighting
    weighting.on_train_begin(ctx)
    for _ in range(3):
        weighting.on_batch_begin(ctx)
    assert (weighting.modality_weights != 1.0).all()
    network.loss(network(batch), target, batch, training=True).backward()
    before = gradients(network)
    weighting.on_grad_computed(ctx)
    after = gradients(network)
    backbone_ids = {}
    for name in network.names:
        for parameter in network.modality_parameters(name):
            backbone_ids[id(parameter)] = weighting.weight_of(name)
    for name, parameter in network.named_parameters():
        expected = before[name] * backbone_ids.get(id(parameter), 1.0)
        torch.testing.assert_close(after[name], expected, rtol=0, atol=0)


def test_loss_mode_weights_unimodal_losses_and_leaves_gradients():
    X, y = image_data()
    network = small_network(MWAM(apply="loss"))
    assert network.unimodal_heads is not None
    batch, target = as_batch(X, y)
    ctx = context(network, batch, target)
    network.weighting.on_train_begin(ctx)
    network.weighting.on_batch_begin(ctx)
    output = network(batch)
    loss = network.loss(output, target, batch, training=True)
    ce = torch.nn.functional.cross_entropy
    expected = ce(output.logits, target) + sum(
        network.weighting.weight_of(m) * ce(output.unimodal_logits[m], target)
        for m in network.names
    )
    torch.testing.assert_close(loss, expected)
    eval_loss = network.loss(output, target, batch, training=False)
    unweighted = ce(output.logits, target) + sum(
        ce(output.unimodal_logits[m], target) for m in network.names
    )
    torch.testing.assert_close(eval_loss, unweighted)
    loss.backward()
    before = gradients(network)
    network.weighting.on_grad_computed(ctx)
    for name, grad in gradients(network).items():
        assert torch.equal(grad, before[name])


SGD = dict(max_epochs=2, random_state=0, optimizer="sgd", lr=0.05)  # plain SGD, no momentum


def test_weights_one_train_bit_identically_to_no_weighting():
    """w ≡ 1 (α = 1, β = 0) leaves training as it is; the same run with real weights does not.

    The FRM machinery still runs every step (the weight history is recorded), and MWAM's default
    weights (w ≠ 1) change the predictions, so a comparison that could not see a gradient edit
    would fail the last assertion.
    """
    X, y = image_data()
    plain = FusionClassifier(weighting="none", **SGD).fit(X, y)
    unit = FusionClassifier(weighting="mwam", weighting__alpha=1.0, weighting__beta=0.0, **SGD)
    unit.fit(X, y)
    history = unit.module_.weighting.weight_history
    assert len(history) == 4 and all(w == 1.0 for step in history for w in step)
    np.testing.assert_array_equal(plain.predict_proba(X), unit.predict_proba(X))
    real = FusionClassifier(weighting="mwam", **SGD).fit(X, y)
    assert any(w != 1.0 for step in real.module_.weighting.weight_history for w in step)
    assert np.abs(real.predict_proba(X) - plain.predict_proba(X)).max() > 1e-3


def test_constant_weight_equals_scaling_the_backbone_learning_rate():
    """Plain SGD: ∇θ_m ← w·∇θ_m on backbone m is the update of lr_m = w·lr (apply="grad").

    α = 2, β = 0 gives w ≡ 2 on every backbone, so MWAM must train bit-identically to no
    weighting with the backbones' learning rate doubled (2 · 0.05 = 0.1 exactly in binary) and
    every other parameter's left at 0.05 — and differently from plain training.
    """
    X, y = image_data()
    doubled = FusionClassifier(weighting="mwam", weighting__alpha=2.0, weighting__beta=0.0, **SGD)
    doubled.fit(X, y)
    assert all(w == 2.0 for step in doubled.module_.weighting.weight_history for w in step)
    faster = FusionClassifier(
        weighting="none", optimizer__param_groups=[("backbones.*", {"lr": 0.1})], **SGD
    ).fit(X, y)
    np.testing.assert_array_equal(doubled.predict_proba(X), faster.predict_proba(X))
    plain = FusionClassifier(weighting="none", **SGD).fit(X, y)
    assert np.abs(plain.predict_proba(X) - faster.predict_proba(X)).max() > 1e-3


def test_no_effect_on_predictions():
    X, y = image_data()
    model = FusionClassifier(weighting="mwam", max_epochs=2, random_state=0).fit(X, y)
    proba = model.predict_proba(X)
    assert model.module_.weighting.weight_history  # it did act during training
    model.module_.weighting = NoWeighting()
    np.testing.assert_array_equal(model.predict_proba(X), proba)


def test_banks_reset_per_fit_isolated_and_reproducible():
    X, y = image_data()
    first = FusionClassifier(weighting="mwam", max_epochs=2, random_state=3).fit(X, y)
    trajectory = copy.deepcopy(first.module_.weighting.weight_history)
    assert len(trajectory) == 2 * 2  # 96 rows, batch 64 -> 2 steps per epoch
    other_X, other_y = image_data(seed=5)
    FusionClassifier(weighting="mwam", max_epochs=2, random_state=3).fit(other_X, other_y)
    assert first.module_.weighting.weight_history == trajectory
    assert clone(first).fit(X, y).module_.weighting.weight_history == trajectory
    assert first.fit(X, y).module_.weighting.weight_history == trajectory


def test_feature_source_runs_on_detached_backbone_outputs():
    X, y = image_data()
    model = FusionClassifier(
        weighting="mwam",
        weighting__frm_source="feature",
        weighting__ordered_vectors=True,
        max_epochs=2,
        random_state=0,
    ).fit(X, y)
    history = model.module_.weighting.weight_history
    assert len(history) == 4
    assert any(w != 1.0 for step in history for w in step)


def test_feature_source_identity_backbone_equals_input_source():
    X, y = image_data()
    params = dict(backbone="identity", max_epochs=1, random_state=0)
    by_input = FusionClassifier(weighting="mwam", **params).fit(X, y)
    by_feature = FusionClassifier(weighting="mwam", weighting__frm_source="feature", **params)
    by_feature.fit(X, y)
    np.testing.assert_allclose(
        by_input.module_.weighting.weight_history, by_feature.module_.weighting.weight_history
    )


def test_absent_modality_in_whole_batch_keeps_weight_and_bank():
    X, y = image_data()
    network = small_network(MWAM())
    batch, target = as_batch(X, y)
    weighting = network.weighting
    weighting.on_train_begin(context(network, batch, target))
    weighting.step(batch.features, batch.mask)
    bank = weighting.frm_bank.clone()
    without_noise = batch.without("noise")
    weights = weighting.step(without_noise.features, without_noise.mask)
    position = network.names.index("noise")
    assert weights[position] == 1.0
    assert weighting.frm_bank[position] == bank[position]


def test_duplicating_a_batch_leaves_weights_unchanged():
    X, y = image_data()
    batch, _ = as_batch(X, y)
    partial = batch.mask.clone()
    partial[::3, 1] = False
    doubled = {name: torch.cat([value, value]) for name, value in batch.features.items()}
    weights = []
    for features, mask in [(batch.features, partial), (doubled, torch.cat([partial, partial]))]:
        weighting = small_network(MWAM()).weighting
        weighting.reset()
        weights.append([weighting.step(features, mask).tolist() for _ in range(4)])
    np.testing.assert_allclose(weights[0], weights[1], rtol=1e-12)


def test_mean_equals_official_sum_for_full_batches():
    X, y = image_data()
    batch, _ = as_batch(X, y)
    trajectories = []
    for reduce in ("sum", "mean"):
        weighting = small_network(MWAM(reduce=reduce)).weighting
        trajectories.append([weighting.step(batch.features, batch.mask).tolist() for _ in range(5)])
    np.testing.assert_allclose(trajectories[0], trajectories[1], atol=1e-6)


def test_vector_modalities_warn_unless_ordered():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 40)
    X = Modalities(a=rng.normal(size=(40, 8)) + y[:, None], b=rng.normal(size=(40, 16)))
    with pytest.warns(UserWarning, match="no frequency meaning"):
        FusionClassifier(weighting="mwam", max_epochs=1, random_state=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        FusionClassifier(
            weighting="mwam", weighting__ordered_vectors=True, max_epochs=1, random_state=0
        ).fit(X, y)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("frm_source", "logits"),
        ("apply", "feature"),
        ("ema", 1.0),
        ("beta", -1.0),
        ("band", 0),
        ("reduce", "median"),
    ],
)
def test_bad_parameters_are_named(name, value):
    X, y = image_data(n=20)
    model = FusionClassifier(weighting="mwam", max_epochs=1, **{f"weighting__{name}": value})
    with pytest.raises(ValueError, match=name):
        model.fit(X, y)


def test_grid_search_over_weighting(train_seed):
    X, y = image_data(seed=train_seed)
    search = GridSearchCV(
        FusionClassifier(max_epochs=3, random_state=train_seed),
        {"weighting": ["none", "mwam"]},
        cv=2,
    )
    search.fit(X, y)
    assert search.best_score_ > 0.7  # FUSEKIT_TEST_SEED=0-5: 0.969-1.0
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


def test_regression_with_loss_weighting_and_padded_sequences():
    from fusekit import FusionRegressor

    X, y = image_data()
    sequence = np.array(X["sequence"], copy=True)
    sequence[::2, 5:] = np.nan  # padded trailing steps -> step masks
    X = Modalities(smooth=X["smooth"], noise=X["noise"], sequence=sequence)
    model = FusionRegressor(weighting="mwam", weighting__apply="both", max_epochs=2, random_state=0)
    model.fit(X, y.astype(float))
    assert np.isfinite(model.predict(X)).all()
    history = np.array(model.module_.weighting.frm_history)
    assert np.isfinite(history).all()
