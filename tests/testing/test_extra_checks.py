"""The checks of fusekit.testing.extra_checks fail deliberately harmful plugins, each naming the
broken promise, and pass a correct plugin of the same shape (the built-ins run them all in
test_builtin_contract.py)."""

import numpy as np
import pytest
import torch

from fusekit import Fusion, FusionClassifier, FusionRegressor, Weighting
from fusekit.plugin import as_vector, vector_size
from fusekit.testing import ContractError, checks_for
from fusekit.testing.extra_checks import (
    EXTRA_CHECKS,
    check_beside_multipass,
    check_loss_terms_mapping,
    check_padded_steps_ignored,
    check_regression,
    check_row_independent,
    check_supported_tasks_declared,
)
from fusekit.testing.fixtures import build_network, loss_context, make_batch, make_joint_task


class _Pooled(Fusion):
    """Concatenated per-modality vectors, pooled over the real steps (a correct base)."""

    def build(self, spec):
        self.width = sum(vector_size(s) for s in spec.feature_shapes.values())
        return self.width

    def forward(self, features, mask, output):
        return torch.cat([as_vector(h, output.steps.get(m)) for m, h in features.items()], 1)


class PoolsPadding(_Pooled):
    """Averages a sequence over every step, padded ones included."""

    def forward(self, features, mask, output):
        return torch.cat([as_vector(h) for h in features.values()], 1)


class BatchCentred(Weighting):
    """Subtracts the batch mean of the logits: fine on a full batch, constant row by row."""

    def adjust_logits(self, output):
        return output.logits - output.logits.mean(dim=0, keepdim=True)


class ReadsFeatures(Weighting):
    """Scales the logits by a modality's feature norm, read in adjust_logits (masked passes
    carry no features, so ``output.calibrated[m]`` is a KeyError there)."""

    def build(self, spec):
        self.names = spec.names

    def adjust_logits(self, output):
        norm = output.calibrated[self.names[0]].flatten(1).norm(dim=1, keepdim=True)
        return output.logits * (1 + 0 * norm)


class ForgetsReturn(Weighting):
    """A loss term computed and never returned."""

    def loss_terms(self, output, ctx):
        output.logits.pow(2).mean()


class BrokenRegression(Weighting):
    """Correct for classification; in regression, outputs a constant."""

    def build(self, spec):
        self.task = spec.task

    def adjust_logits(self, output):
        return output.logits * 0 if self.task == "regression" else output.logits


class PassThrough(Weighting):
    """Changes nothing (a correct weighting)."""


class SquashedRegression(BrokenRegression):
    """In regression, squashes the outputs into ±0.01: gradients flow, nothing is learned."""

    def adjust_logits(self, output):
        logits = output.logits
        return 0.01 * torch.tanh(logits) if self.task == "regression" else logits


class UnknownTask(Weighting):
    supported_tasks = ("classification", "ranking")


class ClassificationOnly(Weighting):
    supported_tasks = ("classification",)


class RegressionOnly(Weighting):
    supported_tasks = ("regression",)


@pytest.mark.parametrize(
    "kind, defect, check, promise",
    [
        ("weighting", BatchCentred, check_row_independent, "a prediction depends on its own row"),
        ("fusion", PoolsPadding, check_padded_steps_ignored, "padded steps are ignored"),
        ("weighting", ForgetsReturn, check_loss_terms_mapping, "loss_terms returns"),
        ("weighting", UnknownTask, check_supported_tasks_declared, "declares its tasks"),
        ("weighting", BrokenRegression, check_regression, "works on a regression task"),
        ("weighting", SquashedRegression, check_regression, "learns an easy regression task"),
        ("weighting", ReadsFeatures, check_beside_multipass, "composes with multi-pass"),
    ],
)
def test_harmful_plugin_fails_with_the_promise_named(kind, defect, check, promise):
    with pytest.raises(ContractError, match=f"{kind} {defect.__name__}: promise '{promise}"):
        check(kind, defect, None)


@pytest.mark.parametrize(
    "kind, correct, check",
    [
        ("fusion", _Pooled, check_row_independent),
        ("fusion", _Pooled, check_padded_steps_ignored),
        ("weighting", BrokenRegression, check_loss_terms_mapping),
        ("weighting", ClassificationOnly, check_supported_tasks_declared),
        ("weighting", BrokenRegression, check_row_independent),
        ("weighting", PassThrough, check_beside_multipass),
    ],
)
def test_a_correct_plugin_passes(kind, correct, check):
    check(kind, correct, None)


def test_every_kind_runs_the_new_checks():
    for kind in ("fusion", "backbone", "calibration", "weighting"):
        assert set(EXTRA_CHECKS) <= set(checks_for(kind))


def test_the_harmful_full_batch_plugin_is_right_on_a_batch_and_at_chance_row_by_row():
    """Why the one-row check matters: the batch-centred weighting scores well on a whole test
    set and at chance one row at a time (3 classes)."""
    X, y = make_joint_task(400, seed=0, n_modalities=1, separation=6.0)
    model = FusionClassifier(weighting=BatchCentred, max_epochs=10, random_state=0)
    model.fit(X[:300], y[:300])
    together = model.score(X[300:], y[300:])
    alone = np.mean([model.predict(X[i : i + 1])[0] == y[i] for i in range(300, 400)])
    assert together > 0.85
    assert alone < 0.65  # every single row gets logits (0, 0): the first class


def test_a_classification_only_plugin_is_refused_by_the_regressor_naming_it():
    X, y = make_joint_task(40, seed=1, task="regression")
    message = r"ClassificationOnly: needs a classification task, got regression"
    with pytest.raises(ValueError, match=message):
        FusionRegressor(weighting=ClassificationOnly, max_epochs=1).fit(X, y)
    check_regression("weighting", ClassificationOnly, None)  # the refusal is the promise kept


def test_a_regression_only_plugin_is_refused_by_the_classifier_naming_it():
    X, y = make_joint_task(40, seed=1)
    message = r"weighting RegressionOnly .*supported_tasks = \('regression',\)"
    with pytest.raises(ValueError, match=message):
        FusionClassifier(weighting=RegressionOnly, max_epochs=1).fit(X, y)


def test_builtin_classification_only_weighting_is_refused_by_name():
    X, y = make_joint_task(40, seed=1, task="regression")
    message = r"cml: needs a classification task.*weighting 'cml' \(fusekit-learn "
    with pytest.raises(ValueError, match=message):
        FusionRegressor(weighting="cml", max_epochs=1).fit(X, y)


def test_the_suite_skips_classification_checks_for_a_regression_only_plugin():
    from fusekit.testing.extra_checks import applies

    ran = [c.__name__ for c in checks_for("weighting") if applies(c, "weighting", RegressionOnly)]
    assert "check_regression" in ran and "check_beats_chance" not in ran


def test_engine_names_the_plugin_whose_loss_terms_return_none():
    network = build_network(ForgetsReturn())
    batch = make_batch()
    output = network(batch)
    target = torch.arange(8) % 3
    with pytest.raises(TypeError, match=r"weighting ForgetsReturn .*loss_terms returned NoneType"):
        network.loss(output, target, batch, training=True)
    assert loss_context(network, batch, target).training


def test_loss_terms_with_a_non_tensor_value_are_rejected():
    class FloatTerm(Weighting):
        def loss_terms(self, output, ctx):
            return {"penalty": 0.5}

    network = build_network(FloatTerm())
    batch = make_batch()
    with pytest.raises(TypeError, match="non-tensor values"):
        network.loss(network(batch), torch.arange(8) % 3, batch, training=True)


def test_padding_check_reads_steps_through_the_default_backbone():
    """The default MLP backbone encodes padded steps too (step by step); the check passes
    because the fusion pools over real steps only, and fails once it does not."""
    check_padded_steps_ignored("fusion", "concat", None)
    with pytest.raises(ContractError):
        check_padded_steps_ignored("fusion", PoolsPadding, None)


class RefusesInBuild(Weighting):
    """Refuses regression in build without declaring it."""

    def build(self, spec):
        if spec.task != "classification":
            raise ValueError("refuses: needs a classification task")


def test_a_plugin_refusing_regression_undeclared_is_told_to_declare_it():
    with pytest.raises(ContractError, match=r"Fix: declare supported_tasks = \(.classification"):
        check_regression("weighting", RefusesInBuild, None)
