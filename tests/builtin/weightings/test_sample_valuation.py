"""sample_valuation: per-sample Shapley contributions and re-sampled copies, (S1)-(S4).

Expected values are worked by hand or re-computed with the official two-modality step
(``execute_modulation`` and ``AV_KS_Dataset_sample_level`` of
GeWu-Lab/Valuate-and-Enhance-Multimodal-Cooperation) and BalanceBenchmark's subset loop
(``Calculate_Shapley_Sample``), re-implemented here in plain Python, never read back from the
implementation.
"""

import itertools
import math

import numpy as np
import pytest
import torch
from balancing_helpers import (
    build_network,
    loss_context,
    make_data,
    padded_sequence_batch,
    training_context,
)

from fusekit import FusionClassifier, FusionRegressor
from fusekit.builtin.sample_valuation_weighting import (
    SampleValuationWeighting,
    coalition_masks,
    modality_level_copies,
    modality_resample_rate,
    resample_copies,
    shapley_values,
)
from fusekit.plugin import ModalityBatch, TrainingData
from fusekit.testing import parametrize_with_checks


def _official_contribution(right_all, right_a, right_v):
    """``execute_modulation``: value_all = 2 when right, value_a / value_v = 1 when right."""
    value_all, value_a, value_v = 2.0 * right_all, 1.0 * right_a, 1.0 * right_v
    return (value_a + value_all - value_v) / 2.0, (value_v + value_all - value_a) / 2.0


def _official_copies(contribution):
    """``AV_KS_Dataset_sample_level``: copies per contribution (if / elif chain)."""
    if 0.4 < contribution < 1:
        return 1
    if -0.1 < contribution < 0.4:
        return 2
    if contribution < -0.1:
        return 3
    return 0


def test_two_modality_values_and_copies_match_the_official_code():
    """All 8 right/wrong patterns of (ŷ(ab), ŷ(a), ŷ(b)), value="count" (S1)-(S3)."""
    patterns = list(itertools.product([0, 1], repeat=3))
    values = torch.zeros(len(patterns), 4)  # columns: ∅, {a}, {b}, {a, b}
    for row, (right_all, right_a, right_v) in enumerate(patterns):
        values[row, 1], values[row, 2], values[row, 3] = right_a, right_v, 2.0 * right_all
    phi = shapley_values(values)
    expected = torch.tensor([_official_contribution(*p) for p in patterns])
    torch.testing.assert_close(phi, expected)
    copies = resample_copies(phi, torch.ones(len(patterns), 2, dtype=torch.bool))
    expected_copies = [[_official_copies(float(c)) for c in row] for row in expected]
    torch.testing.assert_close(copies, torch.tensor(expected_copies, dtype=torch.float32))


def _balancebenchmark_shapley(right, modalities):
    """``Calculate_Shapley_Sample`` for one sample: v(S) = 1[right], v(∅) = 0."""
    n = len(modalities)
    result = {}
    for modality in modalities:
        rest = [m for m in modalities if m != modality]
        value = 0.0
        for size in range(len(rest) + 1):
            for combo in itertools.combinations(rest, size):
                weight = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
                with_m = right[tuple(sorted((*combo, modality)))]
                without = right[tuple(sorted(combo))] if combo else 0.0
                value += weight * (with_m - without)
        result[modality] = value
    return result


def test_three_modality_shapley_matches_balancebenchmarks_subset_loop():
    rng = np.random.default_rng(0)
    names = ["a", "b", "c"]
    coalitions = coalition_masks(3)
    for _ in range(5):
        right = {(): 0.0}
        values = torch.zeros(1, 8)
        for code in range(1, 8):
            members = tuple(n for p, n in enumerate(names) if coalitions[code, p])
            right[members] = float(rng.integers(0, 2))
            values[0, code] = right[members]
        expected = _balancebenchmark_shapley(right, names)
        torch.testing.assert_close(
            shapley_values(values)[0], torch.tensor([expected[n] for n in names])
        )


def test_copies_by_hand_and_none_for_absent_modalities():
    phi = torch.tensor([[-0.5, 0.0], [0.5, 1.0], [1.5, 0.4], [-0.1, 0.39]])
    present = torch.tensor([[True, True], [True, False], [True, True], [True, True]])
    expected = torch.tensor([[3.0, 2.0], [1.0, 0.0], [0.0, 0.0], [0.0, 2.0]])
    torch.testing.assert_close(resample_copies(phi, present), expected)


def _linear_setup(weighting, features, mask, target, weight, bias):
    shapes = {m: v.shape[1:] for m, v in features.items()}
    network = build_network(weighting, shapes=shapes, n_outputs=weight.shape[0], identity=True)
    with torch.no_grad():
        network.head.weight.copy_(torch.tensor(weight, dtype=torch.float32))
        network.head.bias.copy_(torch.tensor(bias, dtype=torch.float32))
    tensors = {m: torch.tensor(v * mask[:, [p]], dtype=torch.float32)
               for p, (m, v) in enumerate(features.items())}  # fmt: skip
    mask_t = torch.tensor(mask)
    batch = ModalityBatch(tensors, mask_t, index=torch.arange(len(target))).with_mask(mask_t)
    data = TrainingData(batch, torch.tensor(target))
    return network, batch, data


def _numpy_logits(features, mask, weight, bias, columns):
    """Concat of identity features, absent or excluded blocks zeroed, times the head."""
    blocks = [features[m] * (mask[:, [p]] & columns[p]) for p, m in enumerate(features)]
    return np.concatenate(blocks, axis=1) @ weight.T + bias


def _random_case(seed):
    rng = np.random.default_rng(seed)
    features = {"a": rng.normal(size=(12, 2)), "b": rng.normal(size=(12, 3))}
    mask = np.ones((12, 2), dtype=bool)
    mask[[2, 7], 1] = False  # b absent
    mask[[4], 0] = False  # a absent
    weight, bias = rng.normal(size=(3, 5)) * 2, rng.normal(size=3) * 0.1
    target = rng.integers(0, 3, 12)
    bias[target[2]] = bias.max() + 0.05  # row 2 (b absent): the bias alone predicts right
    return features, mask, target, weight, bias


def _expected_copies(features, mask, target, weight, bias, value="count"):
    """The official step on a linear model: right / wrong of ŷ(ab), ŷ(a), ŷ(b) per row
    (``value="correct"``: BalanceBenchmark's v({a, b}) = 1[right])."""
    right = {
        cols: _numpy_logits(features, mask, weight, bias, cols).argmax(1) == target
        for cols in [(True, True), (True, False), (False, True)]
    }
    copies = np.zeros((len(target), 2))
    for i in range(len(target)):
        present = mask[i]
        # fusekit's rule for a missing modality: v counts present modalities only
        v_a = float(right[(True, False)][i] and present[0])
        v_b = float(right[(False, True)][i] and present[1])
        scale = present.sum() if value == "count" else 1.0
        v_ab = float(right[(True, True)][i]) * scale if present.any() else 0.0
        # with b absent, v({a, b}) = v({a}) and the official formula gives a = v(a), b = 0
        contrib = ((v_a + v_ab - v_b) / 2.0, (v_b + v_ab - v_a) / 2.0)
        copies[i] = [_official_copies(c) * present[p] for p, c in enumerate(contrib)]
    return copies


@pytest.mark.parametrize("value", ["count", "correct"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_valuation_of_a_linear_model_matches_the_official_step(seed, value):
    """Rows 2 and 7 lack b, row 4 lacks a; an absent modality's coalition is worth 0 even where
    the head's bias alone would be right (row 2)."""
    features, mask, target, weight, bias = _random_case(seed)
    weighting = SampleValuationWeighting(warmup_epochs=0, value=value)
    network, _, data = _linear_setup(weighting, features, mask, target, weight, bias)
    ctx = training_context(network, epoch=0, data=data)
    weighting.on_train_begin(ctx)
    weighting.on_epoch_begin(ctx)
    expected = _expected_copies(features, mask, target, weight, bias, value)
    torch.testing.assert_close(weighting.copies, torch.tensor(expected, dtype=torch.float32))


def test_copy_loss_is_the_copies_cross_entropy_divided_by_the_batch_size():
    """L = Σ_i Σ_m c_im CE(head(only m)_i, y_i) / B, c set by hand (S4)."""
    features, mask, target, weight, bias = _random_case(3)
    weighting = SampleValuationWeighting(warmup_epochs=0)
    network, batch, data = _linear_setup(weighting, features, mask, target, weight, bias)
    weighting.on_train_begin(training_context(network, data=data))
    weighting._active = True
    copies = np.random.default_rng(1).integers(0, 4, size=(12, 2)).astype(float)
    weighting.copies = torch.tensor(copies, dtype=torch.float32)
    network.train()
    output = network(batch)
    terms = weighting.loss_terms(output, loss_context(network, batch, torch.tensor(target)))
    expected = 0.0
    for p, cols in enumerate([(True, False), (False, True)]):
        z = _numpy_logits(features, mask, weight, bias, cols)
        z = z - z.max(1, keepdims=True)
        ce = -(z[np.arange(12), target] - np.log(np.exp(z).sum(1)))
        expected += (copies[:, p] * ce).sum() / 12
    torch.testing.assert_close(
        terms["sample_valuation_copies"], torch.tensor(expected, dtype=torch.float32)
    )


def test_padded_sequences_are_valued_and_copied_over_their_real_steps():
    """a is a padded sequence (9s in the padding): the valuation passes (S1) and the copies'
    passes v_θ({m}) of (S4) see a's mean over its real steps, as the numpy re-implementation on
    those means does (rows 2 and 3 lack b and a)."""
    batch, mask, pooled = padded_sequence_batch()
    rng = np.random.default_rng(5)
    weight, bias = rng.normal(size=(3, 4)), rng.normal(size=3) * 0.1
    target = np.array([0, 2, 1, 1])
    weighting = SampleValuationWeighting(warmup_epochs=0)
    network = build_network(weighting, shapes={"a": (3, 2), "b": (2,)}, identity=True)
    with torch.no_grad():
        network.head.weight.copy_(torch.tensor(weight, dtype=torch.float32))
        network.head.bias.copy_(torch.tensor(bias, dtype=torch.float32))
    ctx = training_context(network, epoch=0, data=TrainingData(batch, torch.tensor(target)))
    weighting.on_train_begin(ctx)
    weighting.on_epoch_begin(ctx)
    expected = _expected_copies(pooled, mask, target, weight, bias)
    torch.testing.assert_close(weighting.copies, torch.tensor(expected, dtype=torch.float32))
    copies = np.array([[1.0, 2.0], [3.0, 1.0], [2.0, 0.0], [0.0, 3.0]])
    weighting.copies = torch.tensor(copies, dtype=torch.float32)
    network.train()
    terms = weighting.loss_terms(network(batch), loss_context(network, batch, torch.tensor(target)))
    loss = 0.0
    for p, cols in enumerate([(True, False), (False, True)]):
        z = _numpy_logits(pooled, mask, weight, bias, cols)
        z = z - z.max(1, keepdims=True)
        ce = -(z[np.arange(4), target] - np.log(np.exp(z).sum(1)))
        loss += (copies[:, p] * ce).sum() / 4
    torch.testing.assert_close(
        terms["sample_valuation_copies"], torch.tensor(loss, dtype=torch.float32)
    )


def test_copies_train_only_their_own_modality():
    """Copies of modality a only (c_b = 0): the term's gradient reaches a's encoder, not b's."""
    torch.manual_seed(0)
    weighting = SampleValuationWeighting(warmup_epochs=0)
    network = build_network(weighting, shapes={"a": (4,), "b": (3,)})
    batch = ModalityBatch(
        {"a": torch.randn(6, 4), "b": torch.randn(6, 3)},
        torch.ones(6, 2, dtype=torch.bool),
        index=torch.arange(6),
    )
    weighting._active = True
    weighting.copies = torch.tensor([[2.0, 0.0]] * 6)
    output = network.train()(batch)
    terms = weighting.loss_terms(output, loss_context(network, batch, torch.arange(6) % 3))
    terms["sample_valuation_copies"].backward()
    grad = {m: sum(float(p.grad.abs().sum()) for p in network.modality_parameters(m)
                   if p.grad is not None) for m in ("a", "b")}  # fmt: skip
    assert grad["a"] > 0 and grad["b"] == 0


def test_nothing_before_the_warmup_nor_in_validation_passes():
    features, mask, target, weight, bias = _random_case(0)
    weighting = SampleValuationWeighting(warmup_epochs=2)
    network, batch, data = _linear_setup(weighting, features, mask, target, weight, bias)
    weighting.on_train_begin(training_context(network, data=data))
    output = network(batch)
    weighting.on_epoch_begin(training_context(network, epoch=1, data=data))
    assert weighting.loss_terms(output, loss_context(network, batch, torch.tensor(target))) == {}
    assert weighting.mean_contributions == []
    weighting.on_epoch_begin(training_context(network, epoch=2, data=data))
    assert weighting.mean_contributions[0][0] == 2
    context = loss_context(network, batch, torch.tensor(target), training=False)
    assert weighting.loss_terms(output, context) == {}
    assert "sample_valuation_copies" in weighting.loss_terms(
        output, loss_context(network, batch, torch.tensor(target))
    )


def test_rows_held_out_for_validation_are_not_valued():
    features, mask, target, weight, bias = _random_case(0)
    weighting = SampleValuationWeighting(warmup_epochs=0)
    network, _, data = _linear_setup(weighting, features, mask, target, weight, bias)
    train_rows = torch.arange(6)
    ctx = training_context(network, epoch=0, data=data, train_rows=train_rows)
    weighting.on_train_begin(ctx)
    weighting.on_epoch_begin(ctx)
    expected = _expected_copies(features, mask, target, weight, bias)
    expected[6:] = 0.0
    torch.testing.assert_close(weighting.copies, torch.tensor(expected, dtype=torch.float32))


def test_value_correct_is_balancebenchmarks_indicator():
    """value="correct": v({a, b}) = 1 when right, so a row right everywhere has φ = (0.5, 0.5):
    one copy each; with "count" φ = (1, 1) and no copies."""
    values = torch.tensor([[0.0, 1.0, 1.0, 1.0]])
    phi = shapley_values(values)
    torch.testing.assert_close(phi, torch.tensor([[0.5, 0.5]]))
    torch.testing.assert_close(
        resample_copies(phi, torch.ones(1, 2, dtype=torch.bool)), torch.tensor([[1.0, 1.0]])
    )


def test_fits_with_three_modalities_and_is_reproducible():
    X, y = make_data(3)
    kwargs = {"weighting": "sample_valuation", "max_epochs": 3, "random_state": 0}
    first = FusionClassifier(**kwargs).fit(X, y)
    second = FusionClassifier(**kwargs).fit(X, y)
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))
    weighting = first.module_.weighting
    assert [epoch for epoch, _ in weighting.mean_contributions] == [1, 2]
    assert first.score(X, y) > 0.6


def test_partial_fit_is_refused_by_name():
    X, y = make_data(2)
    model = FusionClassifier(weighting="sample_valuation")
    with pytest.raises(ValueError, match="sample_valuation|SampleValuation"):
        model.partial_fit(X, y, classes=np.unique(y))


def test_composes_with_another_weighting():
    X, y = make_data(2)
    model = FusionClassifier(
        weighting=["modality_dropout", "sample_valuation"], max_epochs=2, random_state=0
    )
    assert np.isfinite(model.fit(X, y).predict_proba(X)).all()


def test_regression_is_refused():
    X, y = make_data(2)
    with pytest.raises(ValueError, match="sample_valuation: needs a classification task"):
        FusionRegressor(weighting="sample_valuation", max_epochs=1).fit(X, y.astype(float))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"warmup_epochs": -1},
            "The 'warmup_epochs' parameter of weighting sample_valuation must be",
        ),
        (
            {"value": "shapley"},
            "The 'value' parameter of weighting sample_valuation must be a str among",
        ),
        ({"level": "dataset"}, "'level' parameter of .*sample_valuation.*Got 'dataset'"),
        ({"part_ratio": 0.0}, "'part_ratio' parameter of .*sample_valuation"),
        ({"alpha": -1.0}, "'alpha' parameter of .*sample_valuation"),
    ],
)
def test_bad_parameters_are_clear_errors(params, message):
    X, y = make_data(2)
    params = {f"weighting__{k}": v for k, v in params.items()}
    model = FusionClassifier(weighting="sample_valuation", max_epochs=1, **params)
    with pytest.raises(ValueError, match=message):
        model.fit(X, y)


@parametrize_with_checks("weighting", ["sample_valuation"], params={"warmup_epochs": 0})
def test_contract_checks_pass_with_copies_from_the_first_epoch(plugin, check):
    check(plugin)


# --- the modality-level method, (S5)-(S6) ---------------------------------------------------


def test_modality_resample_rate_by_hand():
    """(S6): two modalities, gaps (0.2, 0.8), α = 1: 2/3 · 0.6 = 0.4; three, gaps (0, 0.25,
    1), α = 1.5: pairs 0.25 + 1 + 0.75 = 2, over M − 1 = 2: 1, times α · 2/3 = 1."""
    assert modality_resample_rate(torch.tensor([0.2, 0.8]), 1.0) == pytest.approx(0.4)
    assert modality_resample_rate(torch.tensor([0.0, 0.25, 1.0]), 1.5) == pytest.approx(1.0)
    assert modality_resample_rate(torch.tensor([0.3, 0.3]), 1.0) == 0.0


def _official_modality_level(contribution, part_ratio, alpha, seed):
    """``modality_level.py``'s ``execute_modulation`` and ``AV_KS_Dataset_modality_level``
    (two modalities, ``func="linear"``), with the two ``np.random.choice`` draws taken from
    torch's generator in the same order: the copies per row ``(n, 2)``, kept modality only."""
    n = len(contribution)
    torch.manual_seed(seed)
    choice = torch.randint(n, (int(n * part_ratio),)).tolist()
    part_cona = sum(contribution[i][0] for i in choice) / len(choice)
    part_conv = sum(contribution[i][1] for i in choice) / len(choice)
    gap_a, gap_v = 1.0 - part_cona, 1.0 - part_conv
    difference = (abs(gap_a - gap_v) / 3 * 2) * alpha
    sample_choice = torch.randint(n, (int(difference * n),)).tolist()
    copies = np.zeros((n, 2))
    for i in sample_choice:  # drop = 2 (visual) keeps audio when gap_a > gap_v
        copies[i, 0 if gap_a > gap_v else 1] += 1
    return copies


@pytest.mark.parametrize(("seed", "alpha"), [(0, 1.0), (1, 1.5), (2, 0.5)])
def test_two_modality_copies_match_the_official_modality_level_step(seed, alpha):
    patterns = np.random.default_rng(seed).integers(0, 2, size=(30, 3))
    patterns[:, 2] |= patterns[:, 0]  # audio mostly right: a wide gap between the modalities
    contribution = [_official_contribution(*p) for p in patterns]
    phi = torch.tensor(contribution, dtype=torch.float32)
    expected = _official_modality_level(contribution, 0.5, alpha, seed)
    assert expected.sum() > 0
    torch.manual_seed(seed)
    copies = modality_level_copies(phi, torch.ones(30, 2, dtype=torch.bool), 0.5, alpha)
    torch.testing.assert_close(copies, torch.tensor(expected, dtype=torch.float32))


@pytest.mark.parametrize("c_present", [True, False])
def test_modality_level_with_absent_modalities_by_hand(c_present):
    """φ = (0.5, 0.75, 1.0) on every row where the modality is present, 0 (a null player) where
    absent: b absent in rows 1 and 5, a in row 2. Over present rows g = (0.5, 0.25, 0), so with
    α = 1.5: s = 1 · (0.25 + 0.5 + 0.25) / 2 = 0.5, ⌊8 s⌋ = 4 copies of a, the largest gap;
    with c absent everywhere c is left out: s = 1 · 0.25 = 0.25, 2 copies. A copy drawn on
    row 2 (a absent) is dropped. Expected from the same draws taken from torch's generator."""
    present = torch.ones(8, 3, dtype=torch.bool)
    present[[1, 5], 1] = False
    present[2, 0] = False
    present[:, 2] = c_present
    phi = torch.tensor([0.5, 0.75, 1.0]).expand(8, 3) * present
    torch.manual_seed(3)
    torch.randint(8, (8,))  # Z: every row of it gives the same means over present rows
    drawn = torch.randint(8, (4 if c_present else 2,))
    expected = torch.zeros(8, 3)
    for i in drawn.tolist():
        expected[i, 0] += float(i != 2)
    torch.manual_seed(3)
    copies = modality_level_copies(phi, present, 1.0, 1.5)
    torch.testing.assert_close(copies, expected)


def test_modality_level_needs_two_modalities_seen_and_a_part():
    phi = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    only_a = torch.tensor([[True, False], [True, False]])
    assert modality_level_copies(phi, only_a, 1.0, 1.0).sum() == 0  # b never seen
    both = torch.ones(2, 2, dtype=torch.bool)
    assert modality_level_copies(phi, both, 0.4, 1.0).sum() == 0  # ⌊2 · 0.4⌋ = 0 rows in Z


def test_modality_level_through_the_epoch_hook_matches_the_official_step():
    """A linear model's valuation (S1)-(S2) on complete rows, then (S5)-(S6) as the official
    code: the copies set at the epoch's start."""
    features, mask, target, weight, bias = _random_case(4)
    mask[:] = True
    weighting = SampleValuationWeighting(warmup_epochs=0, level="modality", part_ratio=0.5)
    network, _, data = _linear_setup(weighting, features, mask, target, weight, bias)
    ctx = training_context(network, epoch=0, data=data)
    weighting.on_train_begin(ctx)
    right = {
        cols: _numpy_logits(features, mask, weight, bias, cols).argmax(1) == target
        for cols in [(True, True), (True, False), (False, True)]
    }
    contribution = [
        _official_contribution(right[(True, True)][i], right[(True, False)][i],
                               right[(False, True)][i])
        for i in range(12)
    ]  # fmt: skip
    expected = _official_modality_level(contribution, 0.5, 1.0, 7)
    torch.manual_seed(7)
    weighting.on_epoch_begin(ctx)
    torch.testing.assert_close(weighting.copies, torch.tensor(expected, dtype=torch.float32))


def test_modality_level_fits_and_is_reproducible():
    X, y = make_data(2)
    kwargs = {
        "weighting": "sample_valuation",
        "weighting__level": "modality",
        "max_epochs": 3,
        "random_state": 0,
    }
    first = FusionClassifier(**kwargs).fit(X, y)
    second = FusionClassifier(**kwargs).fit(X, y)
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))
    assert first.score(X, y) > 0.6


@parametrize_with_checks(
    "weighting", ["sample_valuation"], params={"warmup_epochs": 0, "level": "modality"}
)
def test_contract_checks_pass_at_the_modality_level(plugin, check):
    check(plugin)


def test_modality_level_with_one_row_in_z_and_one_copy():
    """n = 2, ρ = 0.5: Z is one row (each modality seen once), φ = (0.5, 1) on both rows so
    g = (0.5, 0); α = 1.5: s = 1 · 0.5, ⌊2 s⌋ = exactly one copy of a, on the drawn row."""
    phi = torch.tensor([[0.5, 1.0], [0.5, 1.0]])
    torch.manual_seed(0)
    torch.randint(2, (1,))  # Z
    row = int(torch.randint(2, (1,)))
    expected = torch.zeros(2, 2)
    expected[row, 0] = 1.0
    torch.manual_seed(0)
    copies = modality_level_copies(phi, torch.ones(2, 2, dtype=torch.bool), 0.5, 1.5)
    torch.testing.assert_close(copies, expected)


def test_a_one_row_fit_is_valued_and_gets_its_copy_loss():
    """One training row, both present: the head makes ŷ(a) wrong, ŷ(b) and ŷ(ab) right, so
    φ = ((0 + 2 − 1) / 2, (1 + 2 − 0) / 2) = (0.5, 1.5) and c = (1, 0) (S1)-(S3); the copy loss is
    then CE(head(only a), y) over a batch of one row (S4), as the numpy step gives."""
    features = {"a": np.array([[1.0, 0.0]]), "b": np.array([[0.0, 1.0, 0.0]])}
    mask, target = np.ones((1, 2), dtype=bool), np.array([1])
    # a alone → class 0; b alone and a + b → class 1 (logits 2, 3 for class 0, 1 with both)
    weight = np.array([[2.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 3.0, 0.0]])
    bias = np.zeros(2)
    weighting = SampleValuationWeighting(warmup_epochs=0)
    network, batch, data = _linear_setup(weighting, features, mask, target, weight, bias)
    ctx = training_context(network, epoch=0, data=data)
    weighting.on_train_begin(ctx)
    weighting.on_epoch_begin(ctx)
    expected_copies = _expected_copies(features, mask, target, weight, bias)
    np.testing.assert_array_equal(expected_copies, [[1.0, 0.0]])  # the case is the one above
    torch.testing.assert_close(weighting.copies, torch.tensor(expected_copies, dtype=torch.float32))
    network.train()
    terms = weighting.loss_terms(network(batch), loss_context(network, batch, torch.tensor(target)))
    z = _numpy_logits(features, mask, weight, bias, (True, False))[0]  # only a: (2, 0)
    expected = np.log(np.exp(z).sum()) - z[target[0]]  # CE = log(e² + 1) − 0
    assert terms, "a one-row fit must get its copy loss"
    torch.testing.assert_close(
        terms["sample_valuation_copies"], torch.tensor(expected, dtype=torch.float32)
    )
