"""UDML's wiring (Eq. 9, 10, 11, 7, 3, 12-15) against a reference written from the spec.

The network is identity backbones -> UDML -> concat -> linear head, in float64. The reference
reads the weights of UDML's heads, estimators and the linear head but recomputes every step
itself (``specs/seed-002-udml.md`` §4.1-4.8): the perturbation x̃ = x + ε with
ε = ξ · s_m · σ · noise_scale (pure noise mean_m + ξ s_m at the top level), μ = W_μ h + b,
σ_z = exp(½ clamp(W_Σ h + b, ±20)), z = μ + ξ σ_z (training) or μ, σ̂ = E(pool σ_z),
w ∝ 1 / (u^p α) over present modalities, z̃ = |P| w z (or (1 + |P| w) z), the keep-only-m logits,
L_uni, L_est, the code's KL (``torch.distributions``) and α = M d / Σ d with
d^m = mean_i ‖ℓ^f − ℓ^{−m}‖. The random draws are replaced by known values: ``torch.randn_like``
by a fixed pattern of the tensor's shape, the noise levels by a fixed table.
"""

from types import SimpleNamespace

import fusekit_udml.weighting as udml_module
import pytest
import torch
from fusekit_udml import UDMLWeighting
from torch import distributions
from torch.nn import functional as F

from fusekit.builtin.concat_fusion import ConcatFusion
from fusekit.builtin.identity_backbone import IdentityBackbone
from fusekit.builtin.no_calibration import NoCalibration
from fusekit.engine.network import FusionNetwork
from fusekit.plugin import FusionOutput, LossContext, ModalityBatch

SHAPES = {"a": (5,), "b": (3,), "c": (4,)}
#: presence patterns (a, b, c); the last row has no modality
MASK = torch.tensor(
    [
        [1, 1, 1],
        [1, 0, 1],
        [0, 1, 1],
        [1, 1, 0],
        [1, 0, 0],
        [0, 1, 0],
        [0, 0, 1],
        [1, 1, 1],
        [1, 1, 1],
        [0, 0, 0],
    ],
    dtype=torch.bool,
)
#: the noise levels σ "drawn" for each sample and modality (0 = clean; absent entries are 0)
LEVELS = torch.tensor(
    [[0, 2, 5], [1, 0, 3], [0, 4, 10], [3, 3, 0], [2, 0, 0], [0, 1, 0], [0, 0, 6], [0, 0, 0]]
    + [[10, 1, 2], [0, 0, 0]],
    dtype=torch.float64,
)
ALPHA = torch.tensor([1.5, 0.9, 0.6], dtype=torch.float64)
INPUT_MEAN = {m: torch.linspace(-0.5, 0.5, s[0], dtype=torch.float64) for m, s in SHAPES.items()}
INPUT_STD = {m: torch.linspace(0.5, 2.0, s[0], dtype=torch.float64) for m, s in SHAPES.items()}


def xi(t: torch.Tensor) -> torch.Tensor:
    """The stand-in for a N(0, I) draw: a fixed, non-constant pattern of ``t``'s shape."""
    return torch.linspace(-1.7, 1.3, t.numel(), dtype=t.dtype).reshape(t.shape)


@pytest.fixture
def known_draws(monkeypatch):
    """``randn_like`` -> :func:`xi`; the noise levels -> ``LEVELS`` (arguments recorded)."""
    calls = []

    def levels(mask, values, clean_fraction):
        calls.append((mask.clone(), values.clone(), clean_fraction))
        return LEVELS[: mask.shape[0], : mask.shape[1]].to(values.dtype) * mask

    monkeypatch.setattr(torch, "randn_like", xi)
    monkeypatch.setattr(udml_module, "draw_levels", levels)
    return calls


def network(shapes=SHAPES, **params):
    params.setdefault("estimator_dropout", 0.0)  # dropout would make E's output random
    params.setdefault("estimator_hidden", 7)
    torch.manual_seed(0)
    net = FusionNetwork(
        input_shapes=shapes,
        backbones={m: IdentityBackbone() for m in shapes},
        calibration=NoCalibration(),
        fusion=ConcatFusion(),
        weighting=UDMLWeighting(**params),
        n_outputs=3,
        task="classification",
    ).double()
    with torch.no_grad():  # non-zero biases everywhere, so that a dropped bias shows
        for parameter in net.parameters():
            parameter.add_(0.2 * torch.randn(parameter.shape, dtype=parameter.dtype))
    if shapes == SHAPES:
        net.weighting.dependency_ratio.copy_(ALPHA)
        net.weighting.input_mean_ = dict(INPUT_MEAN)
        net.weighting.input_std_ = dict(INPUT_STD)
    return net


def inputs(shapes=SHAPES, mask=MASK, seed=0):
    generator = torch.Generator().manual_seed(seed)
    features = {
        m: torch.randn(len(mask), *s, generator=generator, dtype=torch.float64) + 0.3
        for m, s in shapes.items()
    }
    return ModalityBatch(features, mask)


def stage(net, stage_number, uncertainty_on):
    net.weighting.stage_ = stage_number
    net.weighting.uncertainty_on_ = uncertainty_on
    return net


def _linear(layer, x):
    return x @ layer.weight.T + layer.bias


def reference(net, batch, settings, *, training, perturbed, uncertainty_on):
    """The whole pass from the spec: perturbed inputs, μ, σ_z, z, σ̂, w, z̃ and ℓ^f."""
    w = net.weighting
    names = list(batch.features)
    mask = batch.mask
    p = 2.0 if settings.get("preset") == "official_code" else 1.0
    p = settings.get("uncertainty_power", p)
    residual = settings.get("residual", settings.get("preset") == "official_code")
    exp_half = settings.get("preset") == "official_code"
    levels = LEVELS[: len(mask)] * mask if perturbed else torch.zeros(mask.shape).double()
    top = max(settings.get("noise_levels", range(11)))
    out = {"means": {}, "stds": {}, "z": {}, "noise": [], "h": {}}
    for i, m in enumerate(names):
        x = batch.features[m]
        if perturbed:
            noise = xi(x) * INPUT_STD[m]
            x = x + noise * (settings.get("noise_scale", 0.2) * levels[:, i : i + 1])
            if settings.get("full_corruption", True):
                full = (levels[:, i] >= top)[:, None]
                x = torch.where(full, INPUT_MEAN[m] + noise, x)
        h = x * mask[:, i : i + 1]  # the network zeroes absent rows after the backbone
        out["h"][m] = h
        mean = _linear(w.mean_heads[m].layer, h)
        log_variance = _linear(w.logvar_heads[m].layer, h).clamp(-20, 20)
        std = torch.exp(0.5 * log_variance)
        out["means"][m], out["stds"][m] = mean, std
        out["z"][m] = mean + xi(mean) * std if training else mean
        spread = log_variance if settings.get("estimator_input") == "logvar" else std
        first, last = w.estimators[m][0], w.estimators[m][-1]
        hidden = _linear(first, spread)
        if settings.get("estimator_activation") == "tanh":
            hidden = torch.tanh(hidden)
        estimate = _linear(last, hidden)[:, 0]
        out["noise"].append(torch.exp(0.5 * estimate.clamp(-20, 20)) if exp_half else estimate)
    noise = torch.stack(out["noise"], dim=1)  # (B, M) σ̂
    if not uncertainty_on or settings.get("uncertainty") == "none":
        u = torch.ones_like(noise)
    elif settings.get("uncertainty") == "variance":
        u = torch.stack([out["stds"][m].mean(dim=1) for m in names], dim=1).detach()
    else:
        u = noise.detach()
    alpha = ALPHA if settings.get("dependency", True) else torch.ones(3, dtype=torch.float64)
    weights = []
    for row in range(len(mask)):  # Eq. 7 per sample, over its present modalities
        inverse = [
            float(mask[row, k]) / (max(float(u[row, k]), 1e-6) ** p * float(alpha[k]))
            for k in range(3)
        ]
        weights.append([v / sum(inverse) if sum(inverse) > 0 else 0.0 for v in inverse])
    weights = torch.tensor(weights, dtype=torch.float64)
    count = mask.sum(dim=1, keepdim=True).double()  # |P_i|
    factors = (1 + count * weights) * mask if residual else count * weights
    scaled = {m: out["z"][m] * factors[:, i : i + 1] for i, m in enumerate(names)}
    out.update(noise=noise, weights=weights, scaled=scaled, levels=levels)
    out["logits"] = head(net, scaled, mask)
    return out


def head(net, features, mask):
    """Concat fusion (absent modalities zero) and the linear head: ``(B, C)`` logits."""
    parts = [z * mask[:, i : i + 1] for i, z in enumerate(features.values())]
    return _linear(net.head, torch.cat(parts, dim=1))


def keep_only(net, source, mask, name):
    only = torch.zeros_like(mask)
    position = list(source).index(name)
    only[:, position] = mask[:, position]
    return head(net, {m: z if m == name else torch.zeros_like(z) for m, z in source.items()}, only)


def reference_losses(net, ref, target, mask, settings):
    """L_uni, L_est, the KL and the updated α from the reference pass."""
    official = settings.get("preset") == "official_code"
    names = list(ref["z"])
    weighted = settings.get("dependency_on", "weighted" if official else "unweighted")
    source = ref["scaled"] if weighted == "weighted" else ref["z"]
    offset = settings.get("target_offset", 1.0)
    targets = ref["levels"] + offset
    uni, est, kl, scores = 0.0, 0.0, 0.0, []
    order = 2 if settings.get("dependency_norm") == "l2" else 1
    unweighted = {m: z * mask[:, i : i + 1] for i, (m, z) in enumerate(ref["z"].items())}
    full = head(net, unweighted, mask)
    for i, m in enumerate(names):
        rows = mask[:, i]
        only = keep_only(net, source, mask, m)
        uni = uni + F.cross_entropy(only[rows], target[rows])
        est = est + ((ref["noise"][rows, i] - targets[rows, i]) ** 2).mean()
        posterior = distributions.Normal(ref["means"][m][rows], ref["stds"][m][rows])
        prior = distributions.Normal(0.0, targets[rows, i, None].clamp(min=1e-6).sqrt())
        kl = kl + distributions.kl_divergence(posterior, prior).sum(dim=1).mean()
        if weighted == "weighted":
            change = only
        else:
            dropped = mask.clone()
            dropped[:, i] = False
            kept = {k: torch.zeros_like(z) if k == m else z for k, z in unweighted.items()}
            change = full - head(net, kept, dropped)
        scores.append(change[rows].norm(p=order, dim=1).mean())
    scores = torch.stack(scores)
    return {
        "uni": settings.get("uni_weight", 4.0 if official else 1.0) * uni,
        "est": settings.get("est_weight", 0.1) * est,
        "kl": settings.get("kl_weight", 1e-5 if official else 0.0) * kl,
        "alpha": 3 * scores / scores.sum(),
        "scores": scores,
    }


SETTINGS = [
    {},
    {"preset": "official_code", "kl_weight": 0.5},
    {
        "estimator_input": "logvar",
        "estimator_activation": "tanh",
        "dependency_norm": "l2",
        "target_offset": 0.5,
        "est_weight": 0.3,
        "uni_weight": 0.7,
        "noise_scale": 0.5,
        "kl_weight": 0.2,
    },
    {"preset": "official_code", "uncertainty_power": 1.5, "residual": False},
    {"uncertainty": "variance", "full_corruption": False, "dependency_on": "weighted"},
    {"dependency": False, "residual": True, "noise_levels": (0, 1, 2, 3, 4, 5, 6)},
]


@pytest.mark.parametrize("settings", SETTINGS, ids=range(len(SETTINGS)))
def test_stage_two_training_pass_and_losses_match_the_reference(settings, known_draws):
    net = stage(network(**settings), 2, True).train()
    batch, target = inputs(), torch.arange(len(MASK)) % 3
    output = net(batch)
    state = output.diagnostics["udml"]
    ref = reference(net, batch, settings, training=True, perturbed=True, uncertainty_on=True)
    (mask, values, clean) = known_draws[0]
    assert torch.equal(mask, MASK) and clean == 0.5
    assert values.tolist() == list(settings.get("noise_levels", range(11)))
    close = {"rtol": 1e-10, "atol": 1e-12}
    torch.testing.assert_close(output.features["a"], ref["h"]["a"], **close)  # the perturbed x
    for m in SHAPES:
        torch.testing.assert_close(output.features[m], ref["h"][m], **close)
        torch.testing.assert_close(state.means[m], ref["means"][m], **close)
        torch.testing.assert_close(state.stds[m], ref["stds"][m], **close)
        torch.testing.assert_close(state.embeddings[m], ref["z"][m], **close)
        torch.testing.assert_close(state.scaled[m], ref["scaled"][m], **close)
    torch.testing.assert_close(state.predicted_noise, ref["noise"], **close)
    torch.testing.assert_close(state.levels, ref["levels"], **close)
    torch.testing.assert_close(state.weights, ref["weights"], **close)
    torch.testing.assert_close(output.modality_weights, ref["weights"], **close)
    torch.testing.assert_close(output.logits, ref["logits"], **close)

    ctx = LossContext(network=net, batch=batch, target=target, training=True)
    terms = net.weighting.loss_terms(output, ctx)
    want = reference_losses(net, ref, target, MASK, settings)
    torch.testing.assert_close(terms["udml_uni"], want["uni"], **close)
    if settings.get("uncertainty", "estimator") == "estimator":
        torch.testing.assert_close(terms["udml_est"], want["est"], **close)
    else:  # the -NUE ablation has no estimator loss
        assert "udml_est" not in terms
    if settings.get("kl_weight", 1e-5 if settings.get("preset") == "official_code" else 0):
        torch.testing.assert_close(terms["udml_kl"], want["kl"], **close)
    else:
        assert "udml_kl" not in terms
    alpha = net.weighting.dependency_ratio
    if settings.get("dependency", True):
        torch.testing.assert_close(alpha, want["alpha"], **close)
    else:
        assert torch.equal(alpha, ALPHA)  # untouched; the weights used α ≡ 1


@pytest.mark.parametrize("preset", ["paper", "official_code"])
def test_stage_one_is_clean_with_unit_uncertainty(preset, known_draws):
    net = stage(network(preset=preset), 1, False).train()
    batch, target = inputs(), torch.arange(len(MASK)) % 3
    output = net(batch)
    state = output.diagnostics["udml"]
    settings = {"preset": preset}
    ref = reference(net, batch, settings, training=True, perturbed=False, uncertainty_on=False)
    assert known_draws == []  # no levels drawn
    close = {"rtol": 1e-10, "atol": 1e-12}
    for m in SHAPES:
        torch.testing.assert_close(output.features[m], ref["h"][m], **close)  # unperturbed
    assert not state.levels.any()
    torch.testing.assert_close(state.weights, ref["weights"], **close)
    torch.testing.assert_close(output.logits, ref["logits"], **close)
    terms = net.weighting.loss_terms(
        output, LossContext(network=net, batch=batch, target=target, training=True)
    )
    want = reference_losses(net, ref, target, MASK, settings)
    if preset == "official_code":  # the code trains E in stage 1 too, on clean targets
        torch.testing.assert_close(terms["udml_est"], want["est"], **close)
    else:
        assert "udml_est" not in terms


@pytest.mark.parametrize("uses_uncertainty", [False, True])
def test_evaluation_uses_the_mean_and_the_uncertainty_only_if_switched_on(uses_uncertainty):
    net = stage(network(), 2, not uses_uncertainty).eval()  # uncertainty_on_ is ignored in eval
    net.weighting.uses_uncertainty.fill_(uses_uncertainty)
    batch, target = inputs(), torch.arange(len(MASK)) % 3
    with torch.no_grad():
        output = net(batch)
    ref = reference(
        net, batch, {}, training=False, perturbed=False, uncertainty_on=uses_uncertainty
    )
    close = {"rtol": 1e-10, "atol": 1e-12}
    state = output.diagnostics["udml"]
    for m in SHAPES:
        torch.testing.assert_close(state.embeddings[m], ref["means"][m], **close)
    torch.testing.assert_close(state.weights, ref["weights"], **close)
    torch.testing.assert_close(output.logits, ref["logits"], **close)
    ctx = LossContext(network=net, batch=batch, target=target, training=False)
    assert net.weighting.loss_terms(output, ctx) == {}
    assert torch.equal(net.weighting.dependency_ratio, ALPHA)


def test_uncertainty_none_weights_by_dependency_only(known_draws):
    net = stage(network(uncertainty="none"), 2, True).train()
    batch, target = inputs(), torch.arange(len(MASK)) % 3
    output = net(batch)
    ref = reference(
        net, batch, {"uncertainty": "none"}, training=True, perturbed=True, uncertainty_on=True
    )
    torch.testing.assert_close(output.modality_weights, ref["weights"], rtol=1e-10, atol=1e-12)
    terms = net.weighting.loss_terms(
        output, LossContext(network=net, batch=batch, target=target, training=True)
    )
    assert "udml_est" not in terms


def test_sequence_and_image_modalities_pool_over_real_steps_and_space():
    """μ/Σ heads per step (linear) and per pixel (1×1 conv); E reads the pooled σ_z."""
    shapes = {"s": (3, 2), "i": (3, 2, 4)}  # s: T = 3 steps of width 2; i: 3 channels, 2×4
    net = stage(network(shapes), 2, True).train()
    generator = torch.Generator().manual_seed(1)
    features = {
        m: torch.randn(4, *s, generator=generator, dtype=torch.float64) for m, s in shapes.items()
    }
    steps = torch.tensor([[1, 1, 1], [1, 0, 0], [1, 1, 0], [0, 1, 1]], dtype=torch.bool)
    mask = torch.ones(4, 2, dtype=torch.bool)
    output = FusionOutput(mask=mask, steps={"s": steps})
    net.weighting.stage_ = 1  # reweight only (no perturbation here)
    torch.manual_seed(0)
    net.weighting.reweight(features, mask, output)
    state = output.diagnostics["udml"]
    w = net.weighting
    std_s = torch.exp(0.5 * _linear(w.logvar_heads["s"].layer, features["s"]).clamp(-20, 20))
    conv = w.logvar_heads["i"].layer
    log_var_i = torch.einsum("oc,bchw->bohw", conv.weight[:, :, 0, 0], features["i"])
    std_i = torch.exp(0.5 * (log_var_i + conv.bias[None, :, None, None]).clamp(-20, 20))
    torch.testing.assert_close(state.stds["s"], std_s, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(state.stds["i"], std_i, rtol=1e-10, atol=1e-12)
    pooled_s = torch.stack([std_s[b][steps[b]].mean(dim=0) for b in range(4)])  # real steps
    pooled_i = std_i.mean(dim=(2, 3))  # spatial mean
    for m, pooled in (("s", pooled_s), ("i", pooled_i)):
        first, last = w.estimators[m][0], w.estimators[m][-1]
        expected = _linear(last, _linear(first, pooled))[:, 0]
        torch.testing.assert_close(
            state.predicted_noise[:, list(shapes).index(m)], expected, rtol=1e-10, atol=1e-12
        )


def _ctx(max_epochs, epoch=0, data=None):
    return SimpleNamespace(max_epochs=max_epochs, epoch=epoch, data=data)


@pytest.mark.parametrize(
    ("params", "max_epochs", "stage1", "start"),
    [
        ({}, 10, 5, 5),  # paper: half the epochs, no warm-up
        ({"stage1_fraction": 0.35}, 9, 3, 3),  # ⌊0.35 · 9⌋ = 3
        ({"preset": "official_code"}, 100, 50, 60),  # code: 50 clean, E from epoch 60
        ({"preset": "official_code"}, 14, 7, 8),  # round(0.1 · 14) = 1 warm-up epoch
        ({"uncertainty_warmup_epochs": 2}, 10, 5, 7),
    ],
)
def test_progressive_stages_and_uncertainty_start(params, max_epochs, stage1, start):
    net = network(**params)
    weighting = net.weighting
    weighting.uses_uncertainty.fill_(True)
    weighting.on_train_begin(_ctx(max_epochs))
    assert (weighting.stage1_epochs_, weighting.uncertainty_start_) == (stage1, start)
    assert torch.equal(weighting.dependency_ratio, torch.ones(3).double())  # α reset to 1
    assert not bool(weighting.uses_uncertainty)
    for epoch in range(max_epochs):
        weighting.on_epoch_begin(_ctx(max_epochs, epoch))
        assert weighting.stage_ == (2 if epoch >= stage1 else 1), epoch
        assert weighting.uncertainty_on_ == (epoch >= start), epoch
        assert bool(weighting.uses_uncertainty) == (epoch >= start), epoch


def test_uncertainty_none_is_never_switched_on():
    weighting = network(uncertainty="none").weighting
    weighting.on_train_begin(_ctx(4))
    for epoch in range(4):
        weighting.on_epoch_begin(_ctx(4, epoch))
    assert not weighting.uncertainty_on_ and not bool(weighting.uses_uncertainty)


@pytest.mark.filterwarnings("ignore:std.*degrees of freedom")
def test_training_statistics_come_from_the_present_rows():
    """s_m: per-feature std of the present training rows (1 where undefined, ≥ 1e-6)."""
    weighting = network().weighting
    a = torch.tensor([[1.0, 5.0, 2.0, 0, 0], [3.0, 5.0, 2.0, 0, 0], [100.0, 100, 100, 0, 0]])
    b = torch.tensor([[1.0, 2.0, 3.0], [7.0, 8.0, 9.0], [4.0, 4.0, 4.0]])
    c = torch.tensor([[2.0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0], [0, 1, 0]], dtype=torch.bool)
    data = SimpleNamespace(inputs=ModalityBatch({"a": a, "b": b, "c": c}, mask))
    weighting.on_train_begin(_ctx(10, data=data))
    torch.testing.assert_close(weighting.input_mean_["a"], torch.tensor([2.0, 5, 2, 0, 0]))
    std_a = torch.tensor([2.0**0.5, 1e-6, 1e-6, 1e-6, 1e-6])  # rows 0-1 only; constant -> floor
    torch.testing.assert_close(weighting.input_std_["a"], std_a)
    torch.testing.assert_close(weighting.input_mean_["b"], torch.tensor([4.0, 14 / 3, 16 / 3]))
    torch.testing.assert_close(weighting.input_std_["b"], b.std(dim=0))
    torch.testing.assert_close(weighting.input_mean_["c"], torch.tensor([2.0, 0, 0, 0]))
    torch.testing.assert_close(weighting.input_std_["c"], torch.ones(4))  # one row: std NaN -> 1


def test_alpha_is_kept_when_a_modality_is_absent_from_the_whole_batch(known_draws):
    net = stage(network(), 2, True).train()
    mask = MASK.clone()
    mask[:, 1] = False  # b absent everywhere
    batch, target = inputs(mask=mask), torch.arange(len(mask)) % 3
    output = net(batch)
    net.weighting.loss_terms(output, LossContext(net, batch, target, training=True))
    assert torch.equal(net.weighting.dependency_ratio, ALPHA)


def test_epoch_mean_dependency_is_the_ratio_of_the_mean_scores(known_draws):
    net = stage(network(dependency_estimate="epoch_mean"), 2, True).train()
    weighting = net.weighting
    weighting.on_epoch_begin(_ctx(10, epoch=6))
    scores = []
    for seed in (0, 1, 2):
        batch, target = inputs(seed=seed), torch.arange(len(MASK)) % 3
        output = net(batch)
        ref = reference(net, batch, {}, training=True, perturbed=True, uncertainty_on=True)
        scores.append(reference_losses(net, ref, target, MASK, {})["scores"])  # d of this batch
        weighting.loss_terms(output, LossContext(net, batch, target, training=True))
        assert torch.equal(weighting.dependency_ratio, ALPHA)  # unchanged until the epoch ends
    weighting.on_epoch_end(_ctx(10, epoch=6))
    mean = torch.stack(scores).mean(dim=0)
    torch.testing.assert_close(weighting.dependency_ratio, 3 * mean / mean.sum())


def test_separate_unimodal_heads_give_the_unimodal_loss(known_draws):
    net = stage(network(uni_head="separate", uni_weight=0.5), 2, True).train()
    batch, target = inputs(), torch.arange(len(MASK)) % 3
    output = net(batch)
    terms = net.weighting.loss_terms(output, LossContext(net, batch, target, training=True))
    expected = 0.0
    for i, m in enumerate(SHAPES):
        rows = MASK[:, i]
        logits = _linear(net.unimodal_heads[m], output.calibrated[m])  # per-modality head
        expected = expected + F.cross_entropy(logits[rows], target[rows])
    torch.testing.assert_close(terms["udml_uni"], 0.5 * expected, rtol=1e-10, atol=1e-12)


def test_explicit_parameters_override_every_preset_setting():
    from fusekit_udml.presets import Settings

    chosen = {
        "uncertainty_power": 3.0,
        "residual": False,
        "dependency_on": "unweighted",
        "uni_weight": 0.25,
        "kl_weight": 0.5,
        "estimate_in_stage1": False,
        "detach_weights": True,
        "uncertainty_transform": "identity",
    }
    weighting = network(preset="official_code", **chosen).weighting
    assert weighting.settings_ == Settings(**chosen, warmup_fraction=0.1)
    flipped = {
        "estimate_in_stage1": True,
        "detach_weights": False,
        "uncertainty_transform": "exp_half",
    }
    weighting = network(preset="paper", **flipped).weighting
    assert weighting.settings_ == Settings(
        1.0, False, "unweighted", 1.0, 0.0, True, 0.0, False, "exp_half"
    )


@pytest.mark.parametrize(("preset", "reaches"), [("paper", False), ("official_code", True)])
def test_task_loss_reaches_the_estimator_only_without_detached_weights(preset, reaches):
    net = stage(network(preset=preset), 2, True).train()
    batch, target = inputs(), torch.arange(len(MASK)) % 3
    output = net(batch)
    task = F.cross_entropy(output.logits[MASK.any(dim=1)], target[MASK.any(dim=1)])
    grads = torch.autograd.grad(
        task, list(net.weighting.estimators.parameters()), allow_unused=True
    )
    assert any(g is not None and bool(g.abs().sum() > 0) for g in grads) == reaches


def test_padded_sequence_steps_in_the_perturbation_variance_and_dependency(known_draws):
    """A (B, T, D) modality with padded steps: ε only on real steps, −NUE u and Eq. 12 pool them."""
    shapes = {"s": (3, 2), "x": (4,)}
    net = stage(network(shapes, uncertainty="variance", full_corruption=False), 2, True).train()
    weighting = net.weighting
    weighting.input_std_ = {"s": torch.tensor([1.0, 2.0]).double(), "x": torch.ones(4).double()}
    weighting.input_mean_ = {"s": torch.zeros(2).double(), "x": torch.zeros(4).double()}
    mask = torch.ones(4, 2, dtype=torch.bool)
    generator = torch.Generator().manual_seed(2)
    features = {
        m: torch.randn(4, *s, generator=generator, dtype=torch.float64) for m, s in shapes.items()
    }
    steps = torch.tensor([[1, 1, 1], [1, 0, 0], [1, 1, 0], [0, 1, 1]], dtype=torch.bool)
    batch = ModalityBatch(features, mask, steps={"s": steps})
    output = net(batch)
    state = output.diagnostics["udml"]
    levels = LEVELS[:4, :2]
    noise = xi(features["s"]) * torch.tensor([1.0, 2.0]).double() * steps[..., None]
    perturbed = features["s"] + noise * 0.2 * levels[:, 0, None, None]
    torch.testing.assert_close(output.features["s"], perturbed, rtol=1e-10, atol=1e-12)

    def pooled(t):  # mean over real steps
        return torch.stack([t[b][steps[b]].mean(dim=0) for b in range(4)])

    u = torch.stack([pooled(state.stds["s"]).mean(dim=1), state.stds["x"].mean(dim=1)], dim=1)
    inverse = 1 / u.detach()  # α = 1 at the start
    torch.testing.assert_close(state.weights, inverse / inverse.sum(dim=1, keepdim=True))

    target = torch.tensor([0, 1, 2, 0])
    weighting.loss_terms(output, LossContext(net, batch, target, training=True))
    vectors = {"s": pooled(state.embeddings["s"]), "x": state.embeddings["x"]}
    full = head(net, vectors, mask)
    drops = [
        full - _linear(net.head, torch.cat([torch.zeros_like(vectors["s"]), vectors["x"]], 1)),
        full - _linear(net.head, torch.cat([vectors["s"], torch.zeros_like(vectors["x"])], 1)),
    ]
    scores = torch.stack([d.abs().sum(dim=1).mean() for d in drops])
    torch.testing.assert_close(weighting.dependency_ratio, 2 * scores / scores.sum())
    only_s = _linear(net.head, torch.cat([vectors["s"], torch.zeros_like(vectors["x"])], 1))
    only_x = _linear(net.head, torch.cat([torch.zeros_like(vectors["s"]), vectors["x"]], 1))
    expected = F.cross_entropy(only_s, target) + F.cross_entropy(only_x, target)  # L_uni, λ = 1
    terms = weighting.loss_terms(output, LossContext(net, batch, target, training=True))
    torch.testing.assert_close(terms["udml_uni"], expected, rtol=1e-10, atol=1e-12)


def test_defaults_are_the_papers_and_the_codes_settings():
    w = UDMLWeighting()
    assert (w.preset, w.stage1_fraction, w.clean_fraction, w.noise_scale) == (
        "paper",
        0.5,
        0.5,
        0.2,
    )
    assert tuple(w.noise_levels) == tuple(range(11)) and w.full_corruption is True
    assert (w.target_offset, w.estimator_hidden, w.estimator_dropout) == (1.0, 256, 0.1)
    assert (w.est_weight, w.estimator_activation, w.estimator_input) == (0.1, None, "std")
    assert (w.dependency_norm, w.dependency_estimate, w.uncertainty) == (
        "l1",
        "last_batch",
        "estimator",
    )
    assert w.dependency is True and w.uni_head == "shared"


def test_log_variance_and_the_exp_link_are_clipped_at_plus_minus_twenty():
    net = stage(network(preset="official_code"), 2, True).train()
    weighting = net.weighting
    with torch.no_grad():
        weighting.logvar_heads["a"].layer.bias.fill_(50.0)  # log Σ ≈ 50 -> clipped to 20
        weighting.logvar_heads["b"].layer.bias.fill_(-50.0)  # -> -20
        weighting.estimators["a"][-1].bias.fill_(80.0)  # E ≈ 80 -> σ̂ = exp(20 / 2)
        weighting.estimators["b"][-1].bias.fill_(-80.0)  # -> exp(-10)
        for m in ("a", "b"):
            weighting.logvar_heads[m].layer.weight.zero_()
            weighting.estimators[m][-1].weight.zero_()
    output = net(inputs(mask=torch.ones(4, 3, dtype=torch.bool)))
    state = output.diagnostics["udml"]
    torch.testing.assert_close(state.stds["a"], torch.full_like(state.stds["a"], 10.0).exp())
    torch.testing.assert_close(state.stds["b"], torch.full_like(state.stds["b"], -10.0).exp())
    torch.testing.assert_close(state.predicted_noise[:, 0], torch.full((4,), 10.0).double().exp())
    torch.testing.assert_close(state.predicted_noise[:, 1], torch.full((4,), -10.0).double().exp())


def test_dependency_of_a_modality_present_in_one_sample_is_that_samples_change(known_draws):
    mask = MASK.clone()
    mask[:, 1] = False
    mask[0, 1] = True  # b present in sample 0 only: d^b = ‖ℓ^f_0 − ℓ^{−b}_0‖₁, not half of it
    net = stage(network(), 2, True).train()
    batch, target = inputs(mask=mask), torch.arange(len(mask)) % 3
    output = net(batch)
    ref = reference(net, batch, {}, training=True, perturbed=True, uncertainty_on=True)
    want = reference_losses(net, ref, target, mask, {})
    net.weighting.loss_terms(output, LossContext(net, batch, target, training=True))
    torch.testing.assert_close(net.weighting.dependency_ratio, want["alpha"])


@pytest.mark.parametrize(("scale", "updates"), [(0.0, False), (1e-3, True)])
def test_alpha_is_kept_for_zero_dependency_and_updated_for_a_small_one(scale, updates, known_draws):
    net = stage(network(), 2, True).train()
    with torch.no_grad():
        net.head.weight.mul_(scale)  # d = 0 (no change when a modality is dropped), or tiny
    batch, target = inputs(), torch.arange(len(MASK)) % 3
    output = net(batch)
    ref = reference(net, batch, {}, training=True, perturbed=True, uncertainty_on=True)
    want = reference_losses(net, ref, target, MASK, {})
    assert float(want["scores"].sum().detach()) < 1.0
    net.weighting.loss_terms(output, LossContext(net, batch, target, training=True))
    expected = want["alpha"] if updates else ALPHA
    torch.testing.assert_close(net.weighting.dependency_ratio, expected)


def test_dropping_a_modality_also_drops_its_mask_column():
    """Eq. 12's ℓ^{−m}: a fusion that reads the mask (concat with indicators) sees m absent."""
    torch.manual_seed(0)
    net = FusionNetwork(
        input_shapes=SHAPES,
        backbones={m: IdentityBackbone() for m in SHAPES},
        calibration=NoCalibration(),
        fusion=ConcatFusion(indicators=True),
        weighting=UDMLWeighting(estimator_dropout=0.0),
        n_outputs=3,
        task="classification",
    ).double()
    batch, target = inputs(mask=torch.ones(6, 3, dtype=torch.bool)), torch.arange(6) % 3
    output = net(batch)
    z = output.diagnostics["udml"].embeddings
    ones = torch.ones(6, 3, dtype=torch.float64)

    def logits(kept, indicators):
        return _linear(net.head, torch.cat([*kept, indicators], dim=1))

    full = logits(list(z.values()), ones)
    scores = []
    for i, m in enumerate(SHAPES):
        dropped = ones.clone()
        dropped[:, i] = 0.0
        kept = [torch.zeros_like(v) if k == m else v for k, v in z.items()]
        scores.append((full - logits(kept, dropped)).abs().sum(dim=1).mean())
    scores = torch.stack(scores)
    net.weighting.loss_terms(output, LossContext(net, batch, target, training=True))
    torch.testing.assert_close(net.weighting.dependency_ratio, 3 * scores / scores.sum())


def test_epoch_mean_without_steps_keeps_alpha_and_one_step_sets_it(known_draws):
    net = stage(network(dependency_estimate="epoch_mean"), 2, True).train()
    weighting = net.weighting
    weighting.on_epoch_begin(_ctx(10, epoch=6))
    weighting.on_epoch_end(_ctx(10, epoch=6))  # no step: α untouched (not 0 / 0)
    assert torch.equal(weighting.dependency_ratio, ALPHA)
    weighting.on_epoch_begin(_ctx(10, epoch=7))
    batch, target = inputs(), torch.arange(len(MASK)) % 3
    output = net(batch)
    ref = reference(net, batch, {}, training=True, perturbed=True, uncertainty_on=True)
    want = reference_losses(net, ref, target, MASK, {})
    weighting.loss_terms(output, LossContext(net, batch, target, training=True))
    weighting.on_epoch_end(_ctx(10, epoch=7))
    torch.testing.assert_close(weighting.dependency_ratio, want["alpha"])
