"""BTW's wiring, without training: ŵ, W, α, predict-time weights and the MoE fusion on numbers.

Every expected value is computed here from the paper's equations (spec seed-004 §4: Eq. 5 with
scipy's ``entropy``, Eq. 15 written out, Eq. 7 with sklearn's MI estimators, Eqs. 8–10) or by a
loop-by-loop reference of the FuseMoE layer, on networks whose outputs are fixed numbers (a fake
network that reads its logits from the batch), so each test runs in milliseconds.
"""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from fusekit_btw import BTW
from fusekit_btw.moe_fusion import ExpertPool, MoELayer, SparseMoEFusion
from scipy.special import softmax
from scipy.stats import entropy
from sklearn.feature_selection import mutual_info_regression
from sklearn.metrics import f1_score, mutual_info_score
from torch import nn

from fusekit import BuildSpec, FusionOutput, ModalityBatch
from fusekit.plugin import LossContext, TaskCriterion, TrainingContext, TrainingData
from fusekit.plugin.views import TrainingLoop

NAMES = ("a", "b", "c")


def spec(task="classification", n_outputs=3, names=NAMES):
    shapes = {name: (4,) for name in names}
    return BuildSpec(
        names=names, input_shapes=shapes, feature_shapes=shapes, n_outputs=n_outputs, task=task
    )


def built(task="classification", n_outputs=3, **params):
    btw = BTW(unimodal="heads", **params)
    btw.build(spec(task, n_outputs))
    return btw


def kl_normalised(kl, mask):
    """KL floored at 1e-5 (authors' code), 0 where absent, sum-normalised per instance."""
    kl = np.where(mask, np.maximum(kl, 1e-5), 0.0)
    return kl / kl.sum(axis=1, keepdims=True)


def bi_level(kl_tilde, mi_tilde, mask):
    """Eq. 9: KL̃·Ĩ renormalised over the present modalities of each instance."""
    both = np.where(mask, kl_tilde * mi_tilde, 0.0)
    return both / both.sum(axis=1, keepdims=True)


def gaussian_kl(mean_p, std_p, mean_q, std_q):
    """Eq. 15 written out: KL(N(μ_p, σ_p²) ‖ N(μ_q, σ_q²))."""
    return np.log(std_q / std_p) + (std_p**2 + (mean_p - mean_q) ** 2) / (2 * std_q**2) - 0.5


def classification_case(seed=0, n=12):
    rng = np.random.default_rng(seed)
    unimodal = rng.normal(size=(n, 3, 3)) * 2.0  # (N, M, C) logits
    multimodal = rng.normal(size=(n, 3)) * 2.0  # (N, C)
    mask = rng.random((n, 3)) > 0.25
    mask[:, 0] = True  # every row has a modality
    mask[1] = [True, False, False]
    return unimodal, multimodal, mask


# -- ŵ (Eqs. 5, 7, 8, 9) ----------------------------------------------------------------------


@pytest.mark.parametrize("level", ["bi", "local"])
@pytest.mark.parametrize("rescale", ["none", "mean_one"])
def test_classification_hat_weights_and_stored_mi(level, rescale):
    unimodal, multimodal, mask = classification_case()
    btw = built(level=level, rescale=rescale)
    hat = btw._hat_weights(
        torch.tensor(unimodal, dtype=torch.float32),
        torch.tensor(multimodal, dtype=torch.float32),
        torch.tensor(mask),
        torch.zeros(len(mask), dtype=torch.long),
    )
    p_uni, p_multi = softmax(unimodal, axis=-1), softmax(multimodal, axis=-1)
    kl = entropy(p_uni, p_multi[:, None], axis=-1)  # Eq. 5, KL(p^m ‖ p^MM)
    tilde = kl_normalised(kl, mask)
    mi = np.array(
        [
            mutual_info_score(unimodal[mask[:, m], m].argmax(-1), multimodal[mask[:, m]].argmax(-1))
            for m in range(3)
        ]
    )
    mi = np.maximum(mi, 1e-5) / np.maximum(mi, 1e-5).sum()  # Eq. 7, Ĩ
    expected = tilde if level == "local" else bi_level(tilde, mi, mask)
    if rescale == "mean_one":
        expected = expected * mask.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(hat.numpy(), expected, rtol=1e-5, atol=1e-7)
    assert hat.dtype == torch.float32
    if level == "bi":
        np.testing.assert_allclose(btw.mi_.numpy(), mi, rtol=1e-6)
    else:
        np.testing.assert_allclose(btw.mi_.numpy(), 1 / 3)  # MI not estimated for "local"


def test_predict_time_classification_uses_the_stored_mi():
    unimodal, multimodal, mask = classification_case(seed=1)
    btw = built()
    stored = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    btw.mi_.copy_(stored)
    hat = btw._hat_weights(
        torch.tensor(unimodal), torch.tensor(multimodal), torch.tensor(mask), target=None
    )
    kl = entropy(softmax(unimodal, -1), softmax(multimodal, -1)[:, None], axis=-1)
    expected = bi_level(kl_normalised(kl, mask), stored.numpy(), mask)
    np.testing.assert_allclose(hat.numpy(), expected, rtol=1e-5)
    torch.testing.assert_close(btw.mi_, stored.float())


def regression_case(seed=0, n=40, k=2):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(n, k))
    unimodal = y[:, None, :] + rng.normal(size=(n, 3, k)) * np.array([0.3, 1.0, 0.6])[:, None]
    multimodal = y + 0.4 * rng.normal(size=(n, k))
    unimodal[0, 1, 0] = y[0, 0]  # |y − ŷ| = 0: the σ floor 1e-3 applies
    mask = rng.random((n, 3)) > 0.2
    mask[:, 0] = True
    return y, unimodal, multimodal, mask


@pytest.mark.parametrize("level", ["bi", "local"])
def test_regression_hat_weights_pooled_stds_and_predict_time_weights(level):
    y, unimodal, multimodal, mask = regression_case()
    btw = built(task="regression", n_outputs=2, level=level)
    btw._seed = 7
    as_tensor = torch.tensor
    hat = btw._hat_weights(
        as_tensor(unimodal), as_tensor(multimodal), as_tensor(mask), as_tensor(y).flatten()
    )  # a flat target is reshaped to (N, K)
    std_p = np.maximum(np.abs(y[:, None] - unimodal), 1e-3)  # Eq. 6: σ = |y − ŷ|
    std_q = np.maximum(np.abs(y - multimodal), 1e-3)[:, None]
    kl = gaussian_kl(unimodal, std_p, multimodal[:, None], std_q).sum(axis=-1)  # Σ over K
    mi = np.array(
        [
            np.mean(
                [
                    mutual_info_regression(
                        unimodal[mask[:, m], m, k : k + 1], multimodal[mask[:, m], k],
                        n_neighbors=3, random_state=7,
                    )[0]
                    for k in range(2)
                ]
            )
            for m in range(3)
        ]
    )  # fmt: skip
    mi = np.maximum(mi, 1e-5) / np.maximum(mi, 1e-5).sum()
    tilde = kl_normalised(kl, mask)
    expected = tilde if level == "local" else bi_level(tilde, mi, mask)
    np.testing.assert_allclose(hat.numpy(), expected, rtol=1e-5, atol=1e-7)
    # pooled RMS residuals: σ_m over the rows where m is present, σ_MM over all rows
    sigma_m = np.sqrt(
        [((y - unimodal[:, m]) ** 2)[mask[:, m]].mean(axis=0) for m in range(3)]
    )  # (M, K)
    sigma_mm = np.sqrt(((y - multimodal) ** 2).mean(axis=0))  # (K,)
    np.testing.assert_allclose(btw.unimodal_std_.numpy(), sigma_m, rtol=1e-6)
    np.testing.assert_allclose(btw.multimodal_std_.numpy(), sigma_mm, rtol=1e-6)
    # predict (no target): the pooled σ's replace |y − ŷ|, the training Ĩ is kept
    new = unimodal[:5] + 0.5
    predicted = btw._hat_weights(
        as_tensor(new), as_tensor(multimodal[:5]), as_tensor(mask[:5]), None
    )
    kl = gaussian_kl(new, sigma_m[None], multimodal[:5, None], sigma_mm[None, None]).sum(axis=-1)
    tilde = kl_normalised(kl, mask[:5])
    expected = tilde if level == "local" else bi_level(tilde, mi, mask[:5])
    np.testing.assert_allclose(predicted.numpy(), expected, rtol=1e-5, atol=1e-7)


def test_pooled_std_of_a_modality_absent_everywhere_is_zero_not_nan():
    y, unimodal, multimodal, mask = regression_case(n=10, k=1)
    mask[:, 2] = False
    mask[:, 0] = np.arange(10) == 3  # present in exactly one row: σ_0 = |y − ŷ| of that row
    btw = built(task="regression", n_outputs=1, level="local")
    btw._hat_weights(
        torch.tensor(unimodal), torch.tensor(multimodal), torch.tensor(mask), torch.tensor(y)
    )
    assert btw.unimodal_std_[2].item() == 0.0
    assert btw.unimodal_std_[0].item() == pytest.approx(abs(y[3, 0] - unimodal[3, 0, 0]), rel=1e-6)
    expected = np.sqrt(((y[:, 0] - unimodal[:, 1, 0]) ** 2)[mask[:, 1]].mean())
    assert btw.unimodal_std_[1].item() == pytest.approx(expected, rel=1e-6)


# -- applying the weights (Sec. 3.4) -----------------------------------------------------------


def test_reweight_scales_every_shape_and_zeroes_absent_modalities():
    btw = BTW(unimodal="heads")
    names = ("v", "s", "i")
    btw.build(
        BuildSpec(
            names=names,
            input_shapes={"v": (3,), "s": (4, 2), "i": (1, 2, 2)},
            feature_shapes={"v": (3,), "s": (4, 2), "i": (1, 2, 2)},
            n_outputs=2,
            task="classification",
        )
    )
    features = {"v": torch.randn(2, 3), "s": torch.randn(2, 4, 2), "i": torch.randn(2, 1, 2, 2)}
    mask = torch.tensor([[True, True, False], [True, False, True]])
    btw._pass_weights = torch.tensor([[0.5, 2.0, 3.0], [0.25, 4.0, 0.75]])
    output = FusionOutput(mask=mask)
    scaled = btw.reweight(features, mask, output)
    expected = torch.tensor([[0.5, 2.0, 0.0], [0.25, 0.0, 0.75]])
    torch.testing.assert_close(output.modality_weights, expected)
    for position, name in enumerate(names):
        for row in range(2):
            torch.testing.assert_close(
                scaled[name][row], features[name][row] * expected[row, position]
            )
    btw.mean_weights_.copy_(torch.tensor([0.2, 0.3, 0.4]))
    for stale in (None, torch.ones(5, 3)):  # no pass weights, or another batch's
        btw._pass_weights = stale
        output = FusionOutput(mask=mask)
        btw.reweight(features, mask, output)
        fallback = torch.tensor([[0.2, 0.3, 0.0], [0.2, 0.0, 0.4]])
        torch.testing.assert_close(output.modality_weights, fallback)


class FixedNetwork(nn.Module):
    """Reads its fused logits from ``batch.extras["fused"]`` and ``unimodal`` ``(B, M, K)``."""

    def __init__(self, names=NAMES):
        super().__init__()
        self.names = names
        self.calls = []

    def has_forward_pre_hook(self, hook):  # as the engine's network answers it
        return hook in self._forward_pre_hooks.values()

    def forward(self, batch):
        self.calls.append(len(batch))
        unimodal = batch.extras["unimodal"]
        return SimpleNamespace(
            logits=batch.extras["fused"],
            unimodal_logits={m: unimodal[:, i] for i, m in enumerate(self.names)},
        )


def fixed_batch(unimodal, multimodal, mask, index=None):
    n = len(mask)
    return ModalityBatch(
        features={m: torch.zeros(n, 4) for m in NAMES},
        mask=torch.as_tensor(mask),
        index=index,
        extras={
            "unimodal": torch.as_tensor(unimodal, dtype=torch.float32),
            "fused": torch.as_tensor(multimodal, dtype=torch.float32),
        },
    )


def test_capture_takes_stored_rows_by_index_and_label_free_weights_otherwise():
    unimodal, multimodal, mask = classification_case()
    btw = built(predict_weights="mean")
    btw.weights_ = torch.arange(36, dtype=torch.float32).reshape(12, 3)
    network = FixedNetwork()
    index = torch.tensor([4, 0, 7])
    btw._capture(network, (fixed_batch(unimodal[:3], multimodal[:3], mask[:3], index),))
    torch.testing.assert_close(btw._pass_weights, btw.weights_[index])
    btw.mean_weights_.copy_(torch.tensor([0.5, 0.25, 2.0]))
    btw._capture(network, (fixed_batch(unimodal[:3], multimodal[:3], mask[:3]),))
    expected = torch.tensor([0.5, 0.25, 2.0]) * torch.as_tensor(mask[:3])
    torch.testing.assert_close(btw._pass_weights, expected)
    btw._inside = True  # a pass run by BTW itself keeps the weights it set
    btw._capture(network, (fixed_batch(unimodal[:3], multimodal[:3], mask[:3], index),))
    torch.testing.assert_close(btw._pass_weights, expected)
    btw._inside = False
    btw.weights_ = torch.ones(0, 3)  # before any fit: no stored rows to index
    btw._capture(network, (fixed_batch(unimodal[:3], multimodal[:3], mask[:3], index),))
    torch.testing.assert_close(btw._pass_weights, expected)
    btw.weights_ = torch.tensor([[0.1, 0.2, 0.3]])  # a one-row training set
    one = fixed_batch(unimodal[:1], multimodal[:1], mask[:1], torch.tensor([0]))
    btw._capture(network, (one,))
    torch.testing.assert_close(btw._pass_weights, torch.tensor([[0.1, 0.2, 0.3]]))


def test_recompute_unrolls_the_ema_over_the_mean_weight_pass():
    """``predict_weights="recompute"``: w = (1 − Π(1 − α)) ŵ + Π(1 − α), ŷ^MM of a mean pass."""
    unimodal, multimodal, mask = classification_case(seed=2)
    btw = built(predict_weights="recompute")
    btw.mean_weights_.copy_(torch.tensor([0.9, 0.6, 0.3]))
    btw.mi_.copy_(torch.tensor([0.2, 0.5, 0.3]))
    btw.history_mass_ = 0.25
    network = FixedNetwork()
    seen = []
    network.register_forward_pre_hook(lambda *_: seen.append(btw._pass_weights.clone()))
    weights = btw._label_free_weights(network, fixed_batch(unimodal, multimodal, mask))
    torch.testing.assert_close(seen[0], torch.tensor([0.9, 0.6, 0.3]) * torch.as_tensor(mask))
    assert not btw._inside
    kl = entropy(softmax(unimodal, -1), softmax(multimodal, -1)[:, None], axis=-1)
    hat = bi_level(kl_normalised(kl, mask), np.array([0.2, 0.5, 0.3]), mask)
    np.testing.assert_allclose(weights.numpy(), (0.75 * hat + 0.25) * mask, rtol=1e-5)
    mean = torch.tensor([0.9, 0.6, 0.3]) * torch.as_tensor(mask)
    btw.history_mass_ = 1.0  # no update yet: W is still W⁽⁰⁾, its mean is what we have
    torch.testing.assert_close(
        btw._label_free_weights(network, fixed_batch(*classification_case(2))), mean
    )
    btw.history_mass_, btw.level = 0.25, "global_kl"
    torch.testing.assert_close(
        btw._label_free_weights(network, fixed_batch(*classification_case(2))), mean
    )
    btw.level, btw.predict_weights = "bi", "ones"
    ones = btw._label_free_weights(network, fixed_batch(*classification_case(2)))
    torch.testing.assert_close(ones, torch.as_tensor(mask).float())


# -- the epoch update (Eq. 10) and α ---------------------------------------------------------


class FakeLoop:
    def __init__(self, batch_size=16, rows=()):
        self.batch_size, self.max_epochs, self.history = batch_size, 3, list(rows)


def update_context(btw, network, batch, target, epoch=0, loop=None):
    return TrainingContext(
        network, loop=TrainingLoop(loop or FakeLoop()), data=TrainingData(batch, target),
        epoch=epoch,
    )  # fmt: skip


def test_update_mixes_hat_weights_into_w_over_chunks_of_256_rows():
    n = 300  # two evaluation chunks: max(batch size 16, 256) rows, then 44
    rng = np.random.default_rng(3)
    unimodal, multimodal = rng.normal(size=(n, 3, 3)), rng.normal(size=(n, 3))
    mask = rng.random((n, 3)) > 0.3
    mask[:, 1] = True
    target = torch.as_tensor(rng.integers(0, 3, n))
    btw = built(level="local", alpha=0.3)
    network = FixedNetwork()
    btw.weights_ = torch.as_tensor(mask).float()  # W⁽⁰⁾ = 1, absent 0
    batch = fixed_batch(unimodal, multimodal, mask)
    network.train()
    btw.update(update_context(btw, network, batch, target))
    assert network.calls == [256, 44] and network.training
    kl = entropy(softmax(unimodal, -1), softmax(multimodal, -1)[:, None], axis=-1)
    hat = kl_normalised(kl, mask)
    expected = 0.3 * hat + 0.7 * mask  # Eq. 10 with w⁽⁰⁾ = 1
    np.testing.assert_allclose(btw.weights_.numpy(), expected, rtol=1e-5)
    assert btw.history_mass_ == pytest.approx(0.7)
    np.testing.assert_allclose(
        btw.mean_weights_.numpy(), expected.sum(axis=0) / mask.sum(axis=0), rtol=1e-5
    )
    entry = btw.history_[-1]
    assert entry["epoch"] == 0 and entry["alpha"] == 0.3
    np.testing.assert_allclose(entry["mean_weights"], btw.mean_weights_.tolist())
    btw.update(update_context(btw, network, batch, target))  # second: W⁽¹⁾ is the previous W
    np.testing.assert_allclose(btw.weights_.numpy(), 0.3 * hat + 0.7 * expected, rtol=1e-5)
    assert btw.history_mass_ == pytest.approx(0.49)


def test_update_is_in_eval_mode_and_restores_eval():
    unimodal, multimodal, mask = classification_case()
    btw = built()
    btw.weights_ = torch.as_tensor(mask).float()
    modes = []
    network = FixedNetwork()
    network.register_forward_pre_hook(lambda module, _: modes.append(module.training))
    network.eval()
    btw.update(
        update_context(
            btw, network, fixed_batch(unimodal, multimodal, mask), torch.zeros(12, dtype=torch.long)
        )
    )
    assert modes == [False] and not network.training


def run_updates(btw, fused_per_update, target, rows_per_update=None, unimodal=None):
    """Call ``update`` once per entry; return α after each."""
    n = len(target)
    mask = np.ones((n, 3), dtype=bool)
    unimodal = np.zeros((n, 3, fused_per_update[0].shape[1])) if unimodal is None else unimodal
    btw.weights_ = torch.ones(n, 3)
    alphas = []
    for step, fused in enumerate(fused_per_update):
        loop = FakeLoop(rows=[] if rows_per_update is None else [rows_per_update[step]])
        ctx = update_context(
            btw, FixedNetwork(), fixed_batch(unimodal, fused, mask), target, loop=loop
        )
        btw.update(ctx)
        alphas.append(round(btw.alpha_, 10))
    return alphas


def test_alpha_follows_the_validation_loss_in_the_configured_direction():
    target = torch.tensor([0, 1, 2, 0])
    fused = [np.eye(3)[[0, 1, 2, 0]] * 5.0] * 4
    rows = [{"valid_loss": v} for v in (1.0, 0.5, 0.7, 0.4)]  # new best, worse, new best
    assert run_updates(built(alpha=0.5, alpha_step=0.1), fused, target, rows) == [
        0.5,
        0.6,
        0.5,
        0.6,
    ]
    down = built(alpha=0.5, alpha_step=0.1, alpha_on_improve="decrease")
    assert run_updates(down, fused, target, rows) == [0.5, 0.4, 0.5, 0.4]
    tie = [{"valid_loss": v} for v in (1.0, 1.0)]  # equal is not an improvement
    assert run_updates(built(alpha=0.5, alpha_step=0.1), fused[:2], target, tie) == [0.5, 0.4]


def test_alpha_follows_the_training_macro_f1_without_a_validation_split():
    target = torch.tensor([0, 0, 0, 1, 2, 2])
    labels = ([0, 0, 0, 1, 2, 2], [0, 0, 1, 1, 2, 2], [0, 0, 0, 0, 0, 0], [0, 0, 0, 1, 2, 1])
    f1 = [f1_score(target.numpy(), np.array(p), average="macro") for p in labels]
    assert f1[1] < f1[0] and f1[2] < f1[1] and f1[2] < f1[3] < f1[0]  # best stays the first
    fused = [np.eye(3)[p] * 4.0 for p in labels]
    alphas = run_updates(built(alpha=0.5, alpha_step=0.05), fused, target)
    assert alphas == [0.5, 0.45, 0.4, 0.35]
    better = [np.eye(3)[p] * 4.0 for p in (labels[2], labels[3], labels[0])]  # rising F1
    assert run_updates(built(alpha=0.5, alpha_step=0.05), better, target) == [0.5, 0.55, 0.6]


def test_alpha_follows_the_training_mae_for_regression():
    target = torch.tensor([[0.0], [1.0], [2.0], [3.0], [4.0]])
    offsets = (1.0, -0.5, 0.75, -0.25)  # MAE: 1.0, 0.5 (best), 0.75 (worse), 0.25 (best)
    fused = [target.numpy() + o for o in offsets]  # |ŷ + y| would rank the last one worse
    rng = np.random.default_rng(0)
    unimodal = target.numpy()[:, None, :] + rng.normal(size=(5, 3, 1))
    btw = BTW(unimodal="heads", level="local", alpha=0.5, alpha_step=0.1)
    btw.build(spec("regression", 1))
    assert run_updates(btw, fused, target.flatten(), unimodal=unimodal) == [0.5, 0.6, 0.5, 0.6]


def test_updates_run_after_every_update_every_epochs(monkeypatch):
    btw = built(update_every=3)
    epochs = []
    monkeypatch.setattr(btw, "update", lambda ctx: epochs.append(ctx.epoch))
    for epoch in range(9):
        btw.on_epoch_end(TrainingContext(FixedNetwork(), loop=None, data=None, epoch=epoch))
    assert epochs == [2, 5, 8]


def test_train_begin_resets_the_state_and_hooks_once():
    unimodal, multimodal, mask = classification_case()
    btw = built(alpha=0.35)
    network = FixedNetwork()
    batch = fixed_batch(unimodal, multimodal, mask)
    btw.mi_.fill_(0.9)
    btw.mean_weights_.fill_(0.1)
    btw.history_mass_, btw.alpha_, btw.history_, btw._best = 0.2, 0.9, [{}], 3.0
    ctx = update_context(btw, network, batch, torch.zeros(12, dtype=torch.long))
    btw.on_train_begin(ctx)
    torch.manual_seed(2**31 + 5)
    btw.on_train_begin(ctx)
    assert btw._seed == 6  # the torch seed taken modulo 2³¹ − 1 (the MI estimator's random_state)
    assert len(network._forward_pre_hooks) == 1
    torch.testing.assert_close(btw.weights_, torch.as_tensor(mask).float())
    torch.testing.assert_close(btw.mi_, torch.full((3,), 1 / 3))
    torch.testing.assert_close(btw.mean_weights_, torch.ones(3))
    assert (btw.history_mass_, btw.alpha_, btw.history_, btw._best) == (1.0, 0.35, [], None)
    with pytest.raises(
        ValueError, match="^btw: training needs the training rows and their target$"
    ):
        btw.on_train_begin(TrainingContext(network, loop=None, data=None, epoch=0))


def test_heads_loss_is_the_mean_over_present_rows_on_detached_features():
    btw = built()
    calibrated = {m: torch.randn(4, 4, requires_grad=True) for m in NAMES}
    heads = nn.ModuleDict({m: nn.Linear(4, 3) for m in NAMES})
    network = SimpleNamespace(
        names=NAMES,
        unimodal=lambda features, steps: {
            m: heads[m](h) * (1.0 if steps is output.steps else math.nan)
            for m, h in features.items()
        },
        criterion=TaskCriterion("classification"),  # cross-entropy, the classifier's criterion
    )
    mask = torch.tensor([[1, 1, 0], [1, 0, 0], [0, 1, 1], [1, 1, 1]], dtype=torch.bool)
    target = torch.tensor([0, 2, 1, 1])
    output = FusionOutput(mask=mask, calibrated=calibrated)
    ctx = LossContext(network, batch=None, target=target, training=True)
    term = btw.loss_terms(output, ctx)["btw_unimodal_heads"]
    losses = [
        nn.functional.cross_entropy(heads[m](calibrated[m][i : i + 1]), target[i : i + 1])
        for i in range(4)
        for position, m in enumerate(NAMES)
        if mask[i, position]
    ]
    torch.testing.assert_close(term, sum(losses) / len(losses))
    term.backward()
    assert all(h.grad is None for h in calibrated.values())
    assert heads["a"].weight.grad is not None
    assert BTW(unimodal="separate").loss_terms(output, ctx) == {}
    single = torch.zeros(4, 3, dtype=torch.bool)
    single[2, 1] = True  # one present entry: its loss, divided by 1
    output = FusionOutput(mask=single, calibrated=calibrated)
    term = btw.loss_terms(output, ctx)["btw_unimodal_heads"]
    expected = nn.functional.cross_entropy(heads["b"](calibrated["b"][2:3]), target[2:3])
    torch.testing.assert_close(term, expected)


# -- FuseMoE fusion ----------------------------------------------------------------------------


def layer_norm(x, weight, bias):
    mean = x.mean()
    variance = ((x - mean) ** 2).mean()
    return (x - mean) / torch.sqrt(variance + 1e-5) * weight + bias


def gelu(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def expert(pool, e, x):
    """E_e(x) = W2_e GeLU(W1_e x + b1_e) + b2_e for one token ``x`` ``(W,)``."""
    return gelu(x @ pool.w1[e] + pool.b1[e]) @ pool.w2[e] + pool.b2[e]


def reference_layer(layer, tokens, mask):
    """One MoE layer token by token, and its balance loss E · Σ_e f_e P_e over present tokens."""
    batch, n_modalities, width = tokens.shape
    n_experts = layer.routers[0].out_features
    out = tokens.clone()
    share, probability, count = torch.zeros(n_experts), torch.zeros(n_experts), 0
    for b in range(batch):
        for m in range(n_modalities):
            x = layer_norm(tokens[b, m], layer.norm.weight, layer.norm.bias)
            scores = layer.routers[m].weight @ x + layer.routers[m].bias  # (E,)
            order = sorted(range(n_experts), key=lambda e: -float(scores[e].detach()))[
                : layer.top_k
            ]
            gates = torch.exp(scores[order]) / torch.exp(scores[order]).sum()
            for gate, e in zip(gates, order, strict=True):
                out[b, m] = out[b, m] + gate * expert(layer.experts, e, x)
            if mask[b, m]:
                count += 1
                share[order[0]] += 1
                probability += torch.exp(scores) / torch.exp(scores).sum()
    balance = n_experts * ((share / max(count, 1)) * (probability / max(count, 1))).sum()
    return out, balance


def perturbed(module, seed=0):
    """Random values in every parameter (biases and LayerNorm affine are zero / one at init)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)
    return module


def test_expert_pool_is_a_gelu_mlp_per_expert():
    pool = perturbed(ExpertPool(n_experts=3, width=4, hidden=5))
    tokens = torch.randn(2, 2, 4)
    out = pool(tokens)
    assert out.shape == (2, 2, 3, 4)
    for b in range(2):
        for m in range(2):
            for e in range(3):
                torch.testing.assert_close(out[b, m, e], expert(pool, e, tokens[b, m]))


@pytest.mark.parametrize(("top_k", "one_token"), [(1, False), (3, False), (2, True)])
def test_moe_layer_and_balance_loss_match_a_token_by_token_reference(top_k, one_token):
    torch.manual_seed(1)
    layer = perturbed(MoELayer(n_modalities=3, width=4, n_experts=4, top_k=top_k, hidden=6), 1)
    tokens = torch.randn(5, 3, 4)
    mask = torch.tensor([[1, 1, 1], [1, 0, 1], [0, 0, 1], [1, 1, 0], [0, 1, 1]], dtype=torch.bool)
    if one_token:  # a single present token: f_e and P_e are divided by 1
        mask = torch.zeros(5, 3, dtype=torch.bool)
        mask[2, 1] = True
    new, balance = layer(tokens, mask)
    expected, expected_balance = reference_layer(layer, tokens, mask)
    torch.testing.assert_close(new, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(balance, expected_balance, rtol=1e-5, atol=1e-6)


def test_fusion_matches_the_reference_over_two_layers_with_a_padded_sequence():
    torch.manual_seed(2)
    fusion = SparseMoEFusion(
        width=4, n_experts=3, top_k=2, expert_hidden=5, n_layers=2, balance=0.3
    )
    shapes = {"v": (3,), "s": (4, 2), "i": (1, 2, 2)}
    width = fusion.build(
        BuildSpec(names=tuple(shapes), input_shapes=shapes, feature_shapes=shapes, n_outputs=2,
                  task="classification")
    )  # fmt: skip
    assert width == 3 * 4
    perturbed(fusion, 2)
    features = {"v": torch.randn(3, 3), "s": torch.randn(3, 4, 2), "i": torch.randn(3, 1, 2, 2)}
    steps = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]], dtype=torch.bool)
    mask = torch.tensor([[1, 1, 1], [1, 0, 1], [0, 1, 1]], dtype=torch.bool)
    output = FusionOutput(mask=mask, steps={"s": steps})
    fused = fusion.train()(features, mask, output)
    pooled = {
        "v": features["v"],
        "s": torch.stack([features["s"][b, steps[b]].mean(dim=0) for b in range(3)]),
        "i": features["i"].reshape(3, 4),
    }
    tokens = torch.stack([fusion.projections[m](pooled[m]) for m in shapes], dim=1)
    balances = []
    for layer in fusion.layers:
        tokens, balance = reference_layer(layer, tokens, mask)
        balances.append(balance)
    final = torch.stack(
        [
            torch.stack(
                [
                    layer_norm(tokens[b, m], fusion.norm.weight, fusion.norm.bias) * mask[b, m]
                    for m in range(3)
                ]
            )
            for b in range(3)
        ]
    )
    torch.testing.assert_close(fused, final.reshape(3, 12), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(
        output.aux_losses["moe_balance"],
        0.3 * (balances[0] + balances[1]) / 2,
        rtol=1e-5,
        atol=1e-6,
    )
    silent = FusionOutput(mask=mask, steps={"s": steps})
    fusion.train()
    fusion.balance = 0.0
    fusion(features, mask, silent)
    assert "moe_balance" not in silent.aux_losses


def test_top_k_equal_to_n_experts_and_zero_balance_are_accepted():
    SparseMoEFusion(n_experts=3, top_k=3).build(spec())
    SparseMoEFusion(balance=0.0).build(spec())
    with pytest.raises(ValueError, match="top_k must be at most n_experts=3, got 4"):
        SparseMoEFusion(n_experts=3, top_k=4).build(spec())


# -- reference predictions (Eqs. 1–3) ----------------------------------------------------------


class OptimiserLoop(FakeLoop):
    def __init__(self, network):
        super().__init__(batch_size=8)
        self.max_epochs = 2
        self.optimizer_ = torch.optim.SGD(network.parameters(), lr=0.2)


def reference_of(features, mask, target, seed=0):
    """ŷ^m ``(N, M, K)`` that ``on_train_begin`` records with ``unimodal="separate"``."""
    from fusekit.builtin.concat_fusion import ConcatFusion
    from fusekit.builtin.mlp_backbone import MLPBackbone
    from fusekit.builtin.no_calibration import NoCalibration
    from fusekit.engine.network import FusionNetwork

    torch.manual_seed(seed)
    network = FusionNetwork(
        input_shapes={m: (4,) for m in NAMES},
        backbones={m: MLPBackbone(hidden=6) for m in NAMES},
        calibration=NoCalibration(),
        fusion=ConcatFusion(),
        weighting=BTW(),
        n_outputs=3,
        task="classification",
    )
    btw = network.weighting
    inputs = ModalityBatch(features=features, mask=mask, index=torch.arange(len(mask)))
    loop = OptimiserLoop(network)
    torch.manual_seed(seed + 1)
    btw.on_train_begin(
        TrainingContext(network, TrainingLoop(loop), TrainingData(inputs, target), 0)
    )
    untrained = network.copy(plain=True).eval()
    with torch.no_grad():
        before = [
            untrained(inputs.with_mask(mask & (torch.arange(3) == m))).logits for m in range(3)
        ]
    return btw._reference, torch.stack(before, dim=1)


def test_separate_reference_models_see_only_their_modality_and_its_rows():
    """Eq. 1–3: ŷ^m = f_m(x^m), f_m trained on the rows where m is present, m alone."""
    generator = torch.Generator().manual_seed(0)
    features = {m: torch.randn(24, 4, generator=generator) for m in NAMES}
    mask = torch.rand(24, 3, generator=generator) > 0.3
    mask[:, 0] = True
    target = torch.randint(0, 3, (24,), generator=generator)
    reference, untrained = reference_of(features, mask, target)
    assert reference.shape == (24, 3, 3)
    assert (reference - untrained).abs().amax(dim=(0, 2)).min() > 1e-3  # each model was trained
    scrambled = dict(features)
    scrambled["a"] = features["a"] + 5 * torch.randn(24, 4, generator=generator)
    changed, _ = reference_of(scrambled, mask, target)
    torch.testing.assert_close(changed[:, 1:], reference[:, 1:])  # models b, c never see a
    assert (changed[:, 0] - reference[:, 0]).abs().max() > 1e-3
    absent_b = ~mask[:, 1]
    relabelled = target.clone()
    relabelled[absent_b] = (target[absent_b] + 1) % 3
    moved = dict(features)
    moved["b"] = features["b"].clone()
    moved["b"][absent_b] = 100.0  # rows where b is absent: neither their b nor their y is used
    other, _ = reference_of(moved, mask, relabelled)
    torch.testing.assert_close(other[mask[:, 1], 1], reference[mask[:, 1], 1])
    assert (other[:, 0] - reference[:, 0]).abs().max() > 1e-3  # model a does train on them


# -- small pieces --------------------------------------------------------------------------------


def test_softmax_is_row_wise_and_stable_for_large_logits():
    from fusekit_btw.weighting import _softmax

    logits = np.array([[1000.0, 0.0, -1000.0], [-1000.0, -1001.0, -1000.5]])
    np.testing.assert_allclose(_softmax(logits), softmax(logits, axis=-1), rtol=1e-12)


def test_move_alpha_without_a_loop_scores_the_training_f1():
    btw = built(alpha=0.5, alpha_step=0.1)
    target = torch.tensor([0, 1, 2, 1])
    ctx = TrainingContext(FixedNetwork(), loop=None, data=None, epoch=0)
    for logits in (torch.eye(3)[[0, 0, 0, 0]], torch.eye(3)[[0, 1, 2, 1]]):
        btw._move_alpha(ctx, logits, target)
    assert btw.alpha_ == pytest.approx(0.6)


def test_btw_local_is_btw_at_the_local_level_and_passes_every_parameter_on():
    names = (
        "level", "unimodal", "unimodal_epochs", "alpha", "alpha_step", "alpha_on_improve",
        "update_every", "predict_weights", "rescale",
    )  # fmt: skip
    from fusekit_btw import BTWLocal

    assert {n: getattr(BTWLocal(), n) for n in names} == {
        n: getattr(BTW(level="local"), n) for n in names
    }
    values = ("bi", "heads", 3, 0.3, 0.2, "decrease", 2, "ones", "mean_one")
    assert [getattr(BTWLocal(*values), n) for n in names] == list(values)
    assert BTWLocal(unimodal="heads").needs_unimodal_heads


def test_unimodal_epochs_builds():
    BTW(unimodal_epochs=2).build(spec())  # bad values: test_btw_declared_parameters.py


def test_regression_mi_is_estimated_with_the_fit_seed_on_tied_predictions():
    """Integer predictions tie; sklearn's jitter, seeded by the fit's seed, breaks the ties."""
    rng = np.random.default_rng(8)
    y = rng.integers(0, 3, size=(60, 1)).astype(float)
    unimodal = y[:, None, :] + rng.integers(0, 2, size=(60, 3, 1))  # (60, 3, 1)
    multimodal = y + rng.integers(0, 2, size=(60, 1))
    mask = np.ones((60, 3), dtype=bool)
    btw = built(task="regression", n_outputs=1)
    btw._seed = 11
    btw._hat_weights(
        torch.tensor(unimodal), torch.tensor(multimodal), torch.tensor(mask), torch.tensor(y)
    )
    mi = [
        mutual_info_regression(unimodal[:, m], multimodal[:, 0], n_neighbors=3, random_state=11)[0]
        for m in range(3)
    ]
    mi = np.maximum(mi, 1e-5) / np.maximum(mi, 1e-5).sum()
    np.testing.assert_allclose(btw.mi_.numpy(), mi, rtol=1e-6)
