"""mbsd: gap-weighted KL and logit-distance terms between unimodal predictions, (D1)-(D5).

Expected values are worked by hand from the equations in the module docstring, or computed by a
row-by-row re-implementation of BalanceBenchmark's ``MBSDTrainer.training_step`` in this file
(plain torch, as the official code), never read back from the module.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from balancing_helpers import build_network, loss_context, make_data, training_context

from fusekit import FusionClassifier, FusionRegressor
from fusekit.builtin.mbsd_weighting import MBSDWeighting, pair_terms
from fusekit.plugin import ModalityBatch

LN3 = math.log(3.0)


def test_pair_terms_by_hand():
    """Row 0: p_j = (3/4, 1/4), p_l = (1/2, 1/2), y = 0, j right: g = 1/4, s = 3/4, w = 1/2,
    KL = w (log w − s), RS = (ln 3)² / 2. Row 1: both wrong, g = 0."""
    z_j = torch.tensor([[LN3, 0.0], [0.0, 1.0]])
    z_l = torch.tensor([[0.0, 0.0], [0.0, 2.0]])
    target = torch.tensor([0, 0])
    kl, rs = pair_terms(z_j, z_l, target)
    torch.testing.assert_close(kl, torch.tensor([0.25 * 0.5 * (math.log(0.5) - 0.75), 0.0]))
    torch.testing.assert_close(rs, torch.tensor([0.25 * LN3**2 / 2, 0.0]))
    kl_log, _ = pair_terms(z_j, z_l, target, kl_input="log")
    expected = 0.25 * 0.5 * (math.log(0.5) - math.log(0.75))
    torch.testing.assert_close(kl_log, torch.tensor([expected, 0.0]))


def test_the_gap_counts_when_either_modality_is_right():
    """y = 1: p_j = (3/4, 1/4) wrong, p_l = (1/4, 3/4) right: g = 3/4 − 1/4."""
    z_j, z_l = torch.tensor([[LN3, 0.0]]), torch.tensor([[0.0, LN3]])
    kl, _ = pair_terms(z_j, z_l, torch.tensor([1]))
    torch.testing.assert_close(kl, torch.tensor([0.5 * 0.25 * (math.log(0.25) - 0.75)]))


def _official_extra_loss(unimodal, label, kl_log=False):
    """MBSDTrainer.training_step, two-modality branch, minus CE(out): the unimodal CEs and the
    gap-weighted loss_RS and loss_KL, row by row as the official code (``kl_log``: the
    divergence as intended, ``F.kl_div`` given log ps instead of the code's ps)."""
    key = list(unimodal)
    prediction = {m: F.softmax(unimodal[m], dim=1) for m in key}
    loss_modality = sum(F.cross_entropy(unimodal[m], label) for m in key)
    n = len(label)
    loss_rs = (
        1 / unimodal[key[0]].shape[1] * torch.sum((unimodal[key[0]] - unimodal[key[1]]) ** 2, dim=1)
    )
    w, ps, pw = torch.zeros(n), torch.zeros(n), torch.zeros(n)
    y_pred = {m: prediction[m].argmax(dim=-1) for m in key}
    for i in range(n):
        a, b = prediction[key[0]][i][label[i]], prediction[key[1]][i][label[i]]
        if y_pred[key[0]][i] == label[i] or y_pred[key[1]][i] == label[i]:
            w[i] = max(a, b) - min(a, b)
        ps[i], pw[i] = max(a, b), min(a, b)
    kl = F.kl_div(ps.log() if kl_log else ps, pw, reduction="none")
    loss_kl = torch.mm(w.reshape(1, -1), kl.reshape(-1, 1)) / n
    loss_rs = torch.mm(w.reshape(1, -1), loss_rs.reshape(-1, 1)) / n
    return loss_modality + loss_rs.squeeze() + loss_kl.squeeze()


def _linear_network(weighting, shapes, weight, bias):
    network = build_network(weighting, shapes=shapes, n_outputs=weight.shape[0], identity=True)
    with torch.no_grad():
        network.head.weight.copy_(torch.tensor(weight, dtype=torch.float32))
        network.head.bias.copy_(torch.tensor(bias, dtype=torch.float32))
    return network


@pytest.mark.parametrize(
    ("seed", "kl_input"), [(0, "probability"), (1, "probability"), (2, "probability"), (0, "log")]
)
def test_loss_terms_match_the_official_step(seed, kl_input):
    rng = np.random.default_rng(seed)
    features = {"a": rng.normal(size=(8, 2)) * 2, "b": rng.normal(size=(8, 3))}
    weight, bias = rng.normal(size=(3, 5)) * 2, rng.normal(size=3)
    target = torch.tensor(rng.integers(0, 3, size=8))
    weighting = MBSDWeighting(kl_input=kl_input)
    network = _linear_network(weighting, {"a": (2,), "b": (3,)}, weight, bias)
    network.train()
    weighting.on_train_begin(training_context(network))
    tensors = {m: torch.tensor(v, dtype=torch.float32) for m, v in features.items()}
    batch = ModalityBatch(tensors, torch.ones(8, 2, dtype=torch.bool))
    output = network(batch)
    terms = weighting.loss_terms(output, loss_context(network, batch, target))
    w, b = torch.tensor(weight, dtype=torch.float32), torch.tensor(bias, dtype=torch.float32)
    unimodal = {"a": tensors["a"] @ w[:, :2].T + b / 2, "b": tensors["b"] @ w[:, 2:].T + b / 2}
    expected = _official_extra_loss(unimodal, target, kl_log=kl_input == "log")
    torch.testing.assert_close(sum(terms.values()), expected)


def test_missing_rows_count_where_their_modalities_are_present():
    """Row 1 lacks b: CE(z_a) over all 4 rows, CE(z_b) and the pair terms over rows 0, 2, 3."""
    rng = np.random.default_rng(5)
    features = {"a": rng.normal(size=(4, 2)) * 2, "b": rng.normal(size=(4, 1)) * 3}
    mask = np.array([[1, 1], [1, 0], [1, 1], [1, 1]], dtype=bool)
    features["b"] = features["b"] * mask[:, [1]]
    weight, bias = rng.normal(size=(2, 3)) * 2, rng.normal(size=2)
    target = torch.tensor([0, 1, 1, 0])
    weighting = MBSDWeighting()
    network = _linear_network(weighting, {"a": (2,), "b": (1,)}, weight, bias)
    network.train()
    weighting.on_train_begin(training_context(network))
    tensors = {m: torch.tensor(v, dtype=torch.float32) for m, v in features.items()}
    batch = ModalityBatch(tensors, torch.tensor(mask)).with_mask(torch.tensor(mask))
    output = network(batch)
    terms = weighting.loss_terms(output, loss_context(network, batch, target))
    w, b = torch.tensor(weight, dtype=torch.float32), torch.tensor(bias, dtype=torch.float32)
    z_a, z_b = tensors["a"] @ w[:, :2].T + b / 2, tensors["b"] @ w[:, 2:].T + b / 2
    rows = [0, 2, 3]
    expected_uni = F.cross_entropy(z_a, target) + F.cross_entropy(z_b[rows], target[rows])
    expected_pair = _official_extra_loss({"a": z_a[rows], "b": z_b[rows]}, target[rows]) - (
        F.cross_entropy(z_a[rows], target[rows]) + F.cross_entropy(z_b[rows], target[rows])
    )
    torch.testing.assert_close(terms["mbsd_unimodal"], expected_uni)
    torch.testing.assert_close(terms["mbsd_kl"] + terms["mbsd_rs"], expected_pair)


def test_three_modalities_average_the_three_pairs():
    """The code's three-modality branch averages the pairs (0,1), (0,2), (1,2); each pair's
    terms are checked by hand above, so this checks the pairing and the mean."""
    torch.manual_seed(0)
    z = [torch.randn(6, 3) * 2 for _ in range(3)]
    target = torch.tensor([0, 1, 2, 0, 1, 2])
    weighting = MBSDWeighting(unimodal="heads")
    network = build_network(weighting, shapes={"a": (2,), "b": (2,), "c": (2,)})
    network.train()
    weighting.on_train_begin(training_context(network))
    output = network(ModalityBatch({m: torch.randn(6, 2) for m in "abc"}, torch.ones(6, 3) > 0))
    output.unimodal_logits = dict(zip("abc", z, strict=True))
    terms = weighting.loss_terms(output, loss_context(network, None, target))
    expected = sum(pair_terms(z[j], z[l], target)[0].mean() for j, l in [(0, 1), (0, 2), (1, 2)])
    torch.testing.assert_close(terms["mbsd_kl"], expected / 3)


def test_nothing_outside_training_or_the_window():
    weighting = MBSDWeighting(start_epoch=2, end_epoch=3)
    network = build_network(weighting)
    batch = ModalityBatch({"a": torch.randn(4, 4), "b": torch.randn(4, 3)}, torch.ones(4, 2) > 0)
    output = network(batch)
    target = torch.tensor([0, 1, 2, 0])
    for epoch, training, expected in [(1, True, False), (2, True, True), (4, True, False),
                                      (2, False, False)]:  # fmt: skip
        weighting.on_epoch_begin(training_context(network, epoch=epoch))
        terms = weighting.loss_terms(output, loss_context(network, batch, target, training))
        assert bool(terms) is expected, (epoch, training)


def test_the_terms_train_the_encoders_and_the_head():
    torch.manual_seed(0)
    weighting = MBSDWeighting()
    network = build_network(weighting)
    network.train()
    weighting.on_train_begin(training_context(network))
    batch = ModalityBatch({"a": torch.randn(8, 4), "b": torch.randn(8, 3)}, torch.ones(8, 2) > 0)
    output = network(batch)
    terms = weighting.loss_terms(output, loss_context(network, batch, torch.randint(0, 3, (8,))))
    sum(terms.values()).backward()
    for name in ("a", "b"):
        grads = [p.grad for p in network.modality_parameters(name) if p.grad is not None]
        assert grads and any(g.abs().sum() > 0 for g in grads), name
    assert network.head.weight.grad.abs().sum() > 0


def test_fits_with_another_fusion_through_unimodal_heads():
    X, y = make_data(2)
    model = FusionClassifier(fusion="sum", weighting="mbsd", max_epochs=3, random_state=0)
    assert model.fit(X, y).score(X, y) > 0.6


def test_split_head_with_another_fusion_is_refused_by_name():
    X, y = make_data(2)
    model = FusionClassifier(
        fusion="sum", weighting="mbsd", weighting__unimodal="split_head", max_epochs=1
    )
    with pytest.raises(ValueError, match="mbsd: unimodal='split_head' needs fusion='concat'"):
        model.fit(X, y)


def test_fits_and_is_reproducible():
    X, y = make_data(3)
    first = FusionClassifier(weighting="mbsd", max_epochs=3, random_state=0).fit(X, y)
    second = FusionClassifier(weighting="mbsd", max_epochs=3, random_state=0).fit(X, y)
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))
    assert first.score(X, y) > 0.6


@pytest.mark.parametrize("other", ["modality_dropout", "agm", "cml"])
def test_composes_with_another_weighting(other):
    """Beside a perturbation and beside methods that make extra fuse passes."""
    X, y = make_data(2)
    model = FusionClassifier(weighting=[other, "mbsd"], max_epochs=2, random_state=0)
    assert np.isfinite(model.fit(X, y).predict_proba(X)).all()


def test_regression_is_refused():
    X, y = make_data(2)
    with pytest.raises(ValueError, match="mbsd: needs a classification task"):
        FusionRegressor(weighting="mbsd", max_epochs=1).fit(X, y.astype(float))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"kl_input": "logits"}, "The 'kl_input' parameter of weighting mbsd must be a str among"),
        ({"unimodal": "probes"}, "The 'unimodal' parameter of weighting mbsd must be a str among"),
        ({"start_epoch": 3, "end_epoch": 1}, "mbsd: end_epoch must be None or >= start_epoch"),
    ],
)
def test_bad_parameters_name_themselves(params, message):
    X, y = make_data(2)
    model = FusionClassifier(
        weighting="mbsd", max_epochs=1, **{f"weighting__{k}": v for k, v in params.items()}
    )
    with pytest.raises(ValueError, match=message):
        model.fit(X, y)
