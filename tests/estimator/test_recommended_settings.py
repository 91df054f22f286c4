"""Training settings a component recommends (``recommended_params``) and the estimator's
``lr`` / ``optimizer`` / ``lr_schedule`` left at ``"auto"``."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone

from fusekit import FusionClassifier, FusionRegressor, Modalities
from fusekit.builtin.concat_fusion import ConcatFusion
from fusekit.builtin.modality_dropout import ModalityDropout
from fusekit.plugin import WarmupCosine


class SlowConcat(ConcatFusion):
    recommended_params = {"lr": 1e-3, "optimizer": "adamw"}


class FastDropout(ModalityDropout):
    recommended_params = {"lr": 0.05, "optimizer": "sgd", "lr_schedule": WarmupCosine()}


class BadKey(ConcatFusion):
    recommended_params = {"max_epochs": 3}


def small_task(n: int = 48) -> tuple[Modalities, np.ndarray]:
    rng = np.random.default_rng(0)
    y = np.arange(n) % 2
    return Modalities(a=rng.normal(size=(n, 3)) + y[:, None], b=rng.normal(size=(n, 2))), y


def fit(**params):
    X, y = small_task()
    return FusionClassifier(max_epochs=2, batch_size=16, random_state=0, **params).fit(X, y)


def optimizer_lr(model) -> float:
    return model.net_.optimizer_.param_groups[0]["initial_lr" if model.lr_schedule_ else "lr"]


def test_defaults_are_auto_and_fall_back_to_adam_at_0_01_constant():
    model = fit()
    assert model.get_params()["lr"] == "auto" and model.get_params()["optimizer"] == "auto"
    assert model.lr_ == 0.01 and model.optimizer_ is torch.optim.Adam
    assert model.lr_schedule_ is None
    assert type(model.net_.optimizer_) is torch.optim.Adam
    assert model.net_.optimizer_.param_groups[0]["lr"] == 0.01
    assert model.training_settings_["lr"] == {"value": 0.01, "source": "default"}


def test_recommendation_used_when_lr_unset():
    model = fit(fusion=SlowConcat)
    assert model.lr_ == 1e-3 and type(model.net_.optimizer_) is torch.optim.AdamW
    assert model.net_.optimizer_.param_groups[0]["lr"] == 1e-3
    assert model.training_settings_["lr"] == {"value": 1e-3, "source": "fusion SlowConcat"}
    assert model.training_settings_["optimizer"]["source"] == "fusion SlowConcat"
    assert model.training_settings_["lr_schedule"] == {"value": None, "source": "default"}


def test_user_settings_win_over_the_recommendation():
    model = fit(fusion=SlowConcat, lr=0.2, optimizer="rmsprop")
    assert model.lr_ == 0.2 and type(model.net_.optimizer_) is torch.optim.RMSprop
    assert model.net_.optimizer_.param_groups[0]["lr"] == 0.2
    assert model.training_settings_["lr"] == {"value": 0.2, "source": "user"}
    assert model.get_params()["lr"] == 0.2


def test_fusion_recommendation_wins_over_the_weightings_per_setting():
    model = fit(fusion=SlowConcat, weighting=FastDropout)
    settings = model.training_settings_
    assert settings["lr"] == {"value": 1e-3, "source": "fusion SlowConcat"}
    assert settings["optimizer"]["value"] == "adamw"
    # the fusion recommends no schedule, so the weighting's applies
    assert settings["lr_schedule"]["source"] == "weighting FastDropout"
    assert isinstance(model.lr_schedule_, WarmupCosine)


def test_a_weighting_recommendation_applies_without_a_recommending_fusion():
    model = fit(weighting=FastDropout)
    assert model.lr_ == 0.05 and type(model.net_.optimizer_) is torch.optim.SGD


def test_clone_round_trips_auto_and_does_not_see_the_resolved_values():
    model = fit(fusion=SlowConcat)
    copy = clone(model)
    assert copy.get_params()["lr"] == "auto" and copy.get_params()["optimizer"] == "auto"
    assert copy.get_params()["lr_schedule"] == "auto"
    assert not hasattr(copy, "lr_") and not hasattr(copy, "training_settings_")
    user = clone(FusionClassifier(lr=0.3, lr_schedule=None))
    assert user.get_params()["lr"] == 0.3 and user.get_params()["lr_schedule"] is None


def test_unknown_recommended_key_is_rejected_with_the_component_named():
    with pytest.raises(ValueError, match=r"fusion BadKey recommends \['max_epochs'\]"):
        fit(fusion=BadKey)


@pytest.mark.parametrize(
    "param, value, match",
    [
        ("lr", "fast", r"'lr' parameter .* range \(0.0, inf\) or a str among \{'auto'\}"),
        ("lr", -1.0, r"'lr' parameter .* range \(0.0, inf\) or a str among \{'auto'\}"),
        ("optimizer", "lion", r"'optimizer' parameter .* Got 'lion' instead"),
        ("lr_schedule", 0.5, r"'lr_schedule' parameter .* None or a callable. Got 0.5"),
    ],
)
def test_bad_settings_name_the_parameter(param, value, match):
    with pytest.raises(ValueError, match=match):
        fit(**{param: value})


def test_schedule_sets_the_lr_of_every_batch_from_the_closed_form():
    """48 rows / batch 16 = 3 batches x 2 epochs = T = 6 steps, warm-up w = 0.5 -> 3 steps.
    Batch k trains at lr x factor(k / 6): k = 0, 1, 2 warm up linearly from 0.1 (0.1, 0.4, 0.7),
    then cosine from 1: k = 3, 4, 5 -> 1, (1 + cos(pi/3)) / 2 = 0.75, (1 + cos(2 pi/3)) / 2 = 0.25.
    """
    schedule = WarmupCosine(warmup=0.5, start_factor=0.1)
    model = fit(lr=0.2, lr_schedule=schedule, optimizer="sgd")
    lrs = [lr for epoch in model.net_.history[:, "batches", :, "event_lr"] for lr in epoch]
    expected = 0.2 * np.array([0.1, 0.4, 0.7, 1.0, 0.75, 0.25])
    np.testing.assert_allclose(lrs, expected, rtol=1e-12)
    assert model.training_settings_["lr_schedule"]["source"] == "user"


def test_schedule_none_turns_a_recommended_schedule_off():
    model = fit(weighting=FastDropout, lr_schedule=None)
    assert model.lr_schedule_ is None
    assert "lr_schedule" not in dict(model.net_.callbacks_)


def test_regressor_resolves_too():
    X, y = small_task()
    model = FusionRegressor(fusion=SlowConcat, max_epochs=1, random_state=0).fit(X, y * 1.0)
    assert model.lr_ == 1e-3


def test_save_and_load_keep_auto_and_predict_the_same(tmp_path):
    X, _ = small_task()
    model = fit(fusion="concat", lr_schedule=WarmupCosine())
    path = model.save(tmp_path / "model.fusekit")
    from fusekit import load

    loaded = load(path)
    assert loaded.get_params()["lr"] == "auto"
    assert loaded.get_params()["lr_schedule"] == WarmupCosine()  # fusekit's schedules are stored
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_a_model_trained_with_a_schedule_pickles():
    X, _ = small_task()
    model = fit(lr_schedule=WarmupCosine())
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict_proba(X), model.predict_proba(X))
