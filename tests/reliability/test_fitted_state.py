"""A loaded model is the fitted one: every fitted attribute comes back as ``fit`` left it.

The expected values are the fitted estimator's own attributes before saving; loading must set
them back, never resolve the training settings again (at main's load, ``lr_schedule_`` came back
``None`` and ``training_settings_`` said ``"user"`` for a model trained with ``WarmupCosine``).
"""

import copy
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone

import fusekit
from fusekit import FusionClassifier, FusionRegressor, ModelFileError
from fusekit.persistence import ParameterNotSavedWarning
from fusekit.plugin import WarmupCosine, WarmupMultiStep

from .forging import reseal

RECORD = ("n_iter_", "loss_curve_", "validation_scores_", "best_epoch_", "lr_")
SETTINGS = ("lr_schedule_", "optimizer_", "training_settings_")
V2 = Path(__file__).parents[1] / "persistence" / "data"


def _frame(n=30, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, 4)), columns=["a__x", "a__y", "b__x", "b__y"])
    return frame, (frame["a__x"] + frame["b__y"] > 0).to_numpy().astype(int)


def _fit(task, schedule, **params):
    X, y = _frame()
    if task == "classifier":
        return FusionClassifier(lr_schedule=schedule, **params).fit(X, y), X
    return FusionRegressor(lr_schedule=schedule, **params).fit(X, y * 2.0 - 1.0), X


@pytest.mark.parametrize("schedule", [WarmupCosine(warmup=0.3), None, "auto"])
@pytest.mark.parametrize("task", ["classifier", "regressor"])
def test_settings_and_training_record_survive_save_and_load(task, schedule, tmp_path):
    model, X = _fit(
        task, schedule, early_stopping=True, n_iter_no_change=2, max_epochs=3, random_state=0
    )
    expected = {name: copy.deepcopy(getattr(model, name)) for name in (*RECORD, *SETTINGS)}
    loaded = fusekit.load(model.save(tmp_path / "m.safetensors"))
    for name, value in expected.items():
        assert getattr(loaded, name) == value, name
    assert loaded.validation_scores_ is not None and loaded.best_epoch_ is not None
    # what fit resolves: "auto" is the default (constant lr), anything else the user's choice
    used, source = (None, "default") if schedule == "auto" else (schedule, "user")
    assert loaded.training_settings_["lr_schedule"] == {"value": used, "source": source}
    assert loaded.lr_schedule_ == used
    assert ("lr_schedule" in dict(loaded.net_.callbacks_)) == (loaded.lr_schedule_ is not None)
    np.testing.assert_array_equal(
        loaded.predict(X), model.predict(X)
    )  # the network is the fitted one too


def test_a_multistep_schedule_and_an_sgd_optimizer_survive(tmp_path):
    schedule = WarmupMultiStep(warmup=0.1, milestones=(0.5, 0.8), gamma=0.5)
    model, _ = _fit("regressor", schedule, optimizer="sgd", lr=0.05, max_epochs=2, random_state=0)
    loaded = fusekit.load(model.save(tmp_path / "m.safetensors"))
    assert loaded.lr_schedule_ == schedule and type(loaded.lr_schedule_.milestones) is tuple
    assert loaded.optimizer_ is torch.optim.SGD and loaded.lr_ == 0.05
    assert loaded.training_settings_ == model.training_settings_
    assert loaded.get_params()["lr_schedule"] == schedule


def test_load_resolves_no_training_setting(tmp_path, monkeypatch):
    """Loading sets the stored settings back; resolving them again would consult today's
    components (whose recommendations may have changed since the model was trained)."""
    model, X = _fit("classifier", WarmupCosine(), max_epochs=2, random_state=0)
    path = model.save(tmp_path / "m.safetensors")

    def refuse(*args, **kwargs):
        raise AssertionError("load resolved the training settings again")

    monkeypatch.setattr("fusekit.engine.assemble.resolve_training_settings", refuse)
    loaded = fusekit.load(path)
    assert loaded.training_settings_ == model.training_settings_


@pytest.mark.parametrize("task", ["classifier", "regressor"])
def test_the_declared_fitted_attributes_are_exactly_those_fit_sets(task, tmp_path):
    """The declaration (``_fitted_attributes`` stored by value, ``_fitted_frame`` in the file's
    own sections) against what ``fit`` really adds to the estimator, private ones included."""
    model, X = _fit(task, WarmupCosine(), early_stopping=True, max_epochs=2, random_state=0)
    added = set(vars(model)) - set(vars(clone(model)))
    declared = {*type(model)._fitted_attributes, *type(model)._fitted_frame}
    assert added == declared
    assert len(declared) == len(type(model)._fitted_attributes) + len(type(model)._fitted_frame)
    loaded = fusekit.load(model.save(tmp_path / "m.safetensors"))
    assert set(vars(loaded)) == set(vars(model))


def test_mapping_input_sets_all_but_the_column_attributes():
    X, y = _frame()
    mapping = fusekit.Modalities(a=X[["a__x", "a__y"]].to_numpy(), b=X[["b__x", "b__y"]].to_numpy())
    model = FusionClassifier(max_epochs=1, random_state=0).fit(mapping, y)
    added = set(vars(model)) - set(vars(clone(model)))
    declared = {*FusionClassifier._fitted_attributes, *FusionClassifier._fitted_frame}
    assert declared - added == {"n_features_in_", "feature_names_in_"}
    assert added <= declared


def test_a_schedule_function_is_not_stored_and_says_where(tmp_path):
    """A function cannot be stored: it comes back as None with a warning naming each place,
    while the rest of the settings (its source "user" included) and predictions survive."""
    model, X = _fit("classifier", lambda progress: 1.0 - progress, max_epochs=2, random_state=0)
    with pytest.warns(ParameterNotSavedWarning) as caught:
        path = model.save(tmp_path / "m.safetensors")
    places = {str(w.message).split("=")[0] for w in caught}
    assert places == {
        "save() cannot store the parameter lr_schedule",
        "save() cannot store the fitted attribute lr_schedule_",
        "save() cannot store the fitted attribute training_settings_['lr_schedule']['value']",
    }
    assert all(w.filename == __file__ for w in caught)  # points at the line that called save
    loaded = fusekit.load(path)
    assert loaded.lr_schedule_ is None
    assert loaded.training_settings_["lr_schedule"] == {"value": None, "source": "user"}
    assert loaded.training_settings_["lr"] == model.training_settings_["lr"]
    assert loaded.loss_curve_ == model.loss_curve_
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_the_target_scaling_comes_back_bit_for_bit(tmp_path):
    X, y = _frame()
    target = np.stack([y * 1e6 + 0.1, y / 3.0], axis=1)
    model = FusionRegressor(max_epochs=1, random_state=0).fit(X, target)
    loaded = fusekit.load(model.save(tmp_path / "m.safetensors"))
    assert (
        loaded.y_mean_.dtype == np.float64 and loaded.y_mean_.tobytes() == model.y_mean_.tobytes()
    )
    assert loaded.y_scale_.tobytes() == model.y_scale_.tobytes()
    assert loaded._y_1d is False and loaded.n_outputs_ == 2


# -- hostile documents: nothing undeclared, nothing unknown is built ------------------------------
@pytest.fixture
def saved(tmp_path):
    model, _ = _fit("classifier", WarmupCosine(), max_epochs=1, random_state=0)
    return model.save(tmp_path / "m.safetensors")


def test_an_undeclared_fitted_attribute_is_refused(saved):
    reseal(saved, lambda document: document["fitted"].update(predict_proba="evil"))
    with pytest.raises(ModelFileError, match=r"m\.safetensors.*\['predict_proba'\], which a "):
        fusekit.load(saved)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda fitted: fitted.pop("optimizer_"), r"but not \['optimizer_'\]"),
        (lambda fitted: fitted.update(optimizer_="adam"), r"torch optimizer class, got 'adam'"),
        (lambda fitted: fitted.update(lr_=-1.0), r"lr must be a positive number"),
        (
            lambda fitted: fitted.update(lr_schedule_=0.5),
            r"lr_schedule must be .*got lr_schedule=0\.5",
        ),
    ],
    ids=["missing", "optimizer name", "negative lr", "schedule number"],
)
def test_training_settings_the_net_is_built_with_are_checked(edit, message, saved):
    reseal(saved, lambda document: edit(document["fitted"]))
    with pytest.raises(ModelFileError, match=rf"m\.safetensors.*{message}"):
        fusekit.load(saved)


def test_a_parameter_that_is_no_parameter_is_refused(saved):
    """``__init__`` sets any ``**kwargs`` name: a stored "parameter" must not replace a method."""
    reseal(saved, lambda document: document["params"].update(predict_proba="evil"))
    with pytest.raises(
        ModelFileError, match=r"m\.safetensors.*unexpected parameter 'predict_proba'"
    ):
        fusekit.load(saved)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"$type": "pickle", "data": "gASV"}, r"unknown type 'pickle'"),
        ({"$type": "value", "class": "os.system", "params": {}}, r"class 'os\.system'"),
        ({"$type": "torch.optim", "name": "load"}, r"unknown optimizer 'load'"),
        ({"$type": "skorch.dataset", "class": "CVSplit", "params": {}}, r"class 'CVSplit'"),
    ],
)
def test_a_stored_value_of_a_type_not_on_the_list_is_never_built(value, message, saved):
    reseal(saved, lambda document: document["fitted"].update(lr_schedule_=value))
    with pytest.raises(ModelFileError, match=rf"m\.safetensors: .*{message}"):
        fusekit.load(saved)


# -- files of format 2, written before fitted attributes were stored by type ----------------------
EXPECTED_V2 = json.loads((V2 / "model_v2_expected.json").read_text())


def test_a_version_2_classifier_loads_as_it_was_saved():
    from fusekit.builtin.late_fusion import LateFusion

    rng = np.random.default_rng(0)
    codes = rng.integers(0, 3, 40)
    X = fusekit.Modalities(a=rng.normal(size=(40, 3)) + codes[:, None], b=rng.normal(size=(40, 2)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = fusekit.load(V2 / "model_v2_classifier.safetensors")
    expected = EXPECTED_V2["classifier"]
    np.testing.assert_allclose(model.predict_proba(X)[:5], expected["proba"], atol=2e-6)
    assert model.classes_.tolist() == expected["classes_"]
    for name in RECORD:
        assert getattr(model, name) == expected[name], name
    assert isinstance(model.fusion, LateFusion) and model.fusion.weights == "learned"
    assert model.class_weight == {"low": 2.0, "mid": 1.0, "high": 1.0}
    split = model.train_split
    assert (split.cv, split.stratified, split.random_state) == (0.25, True, 3)
    stop, (name, clip) = model.callbacks
    assert stop.patience == 2 and name == "clip" and clip.gradient_clip_value == 0.5
    # format 2 did not store the settings: they are resolved from the stored parameters
    assert model.optimizer_.__name__ == expected["optimizer_"]


def test_a_version_2_regressor_loads_as_it_was_saved():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(30, 4)), columns=["a__x", "a__y", "b__x", "b__y"])
    model = fusekit.load(V2 / "model_v2_regressor.safetensors")
    expected = EXPECTED_V2["regressor"]
    np.testing.assert_allclose(model.predict(frame)[:5], expected["predict"], atol=2e-6)
    assert model.feature_names_in_.tolist() == expected["feature_names_in_"]
    for name in RECORD:
        assert getattr(model, name) == expected[name], name
    assert model.optimizer_ is torch.optim.SGD


def test_a_version_2_file_with_a_forged_callback_is_refused(tmp_path):
    path = shutil.copy(V2 / "model_v2_classifier.safetensors", tmp_path / "v2.safetensors")
    target = tmp_path / "elsewhere"
    record = {"name": None, "skorch.callbacks": "Checkpoint", "params": {"dirname": str(target)}}
    reseal(path, lambda document: document["params"].update(callbacks=[record]))
    with pytest.raises(
        ModelFileError, match=r"v2\.safetensors: .*callback 'Checkpoint'.*not built"
    ):
        fusekit.load(path)
    assert not target.exists()
