"""Faulty plugins: the registry keeps the others working; run-time faults name the plugin."""

import types

import numpy as np
import pytest
import torch
from sklearn.metrics import log_loss

from fusekit import Calibration, Fusion, FusionClassifier, Modalities, hookimpl
from fusekit.builtin.concat_fusion import ConcatFusion
from fusekit.engine.registry import PluginError, PluginWarning, Registry


def _module(name, **hooks):
    module = types.ModuleType(name)
    for hook_name, result in hooks.items():

        def hook(result=result):
            if isinstance(result, Exception):
                raise result
            return result

        setattr(module, hook_name, hookimpl(hook))
        hook.__name__ = hook_name
    return module


def _registry_with(module, strict=False):
    registry = Registry(autoload=False, strict=strict)
    registry.load()
    registry.register(module, "fusekit-faulty", "0.0.1")
    return registry


def test_hook_that_raises_is_skipped_and_named():
    registry = _registry_with(_module("raises", fusekit_fusions=RuntimeError("boom")))
    with pytest.warns(PluginWarning, match=r"fusekit-faulty 0\.0\.1 .*RuntimeError: boom"):
        names = registry.names("fusion")
    assert "concat" in names


def test_hook_returning_a_non_class():
    registry = _registry_with(_module("noncls", fusekit_fusions={"bad": 42, "ok": ConcatFusion}))
    with pytest.warns(PluginWarning, match=r"fusion 'bad' is 42, not a subclass of fusekit.Fusion"):
        names = registry.names("fusion")
    assert "bad" not in names


def test_hook_returning_a_class_of_the_wrong_kind():
    from fusekit.builtin.mlp_backbone import MLPBackbone

    registry = _registry_with(_module("wrongkind", fusekit_fusions={"mlpfusion": MLPBackbone}))
    with pytest.warns(PluginWarning, match="not a subclass of fusekit.Fusion"):
        assert "mlpfusion" not in registry.names("fusion")


def test_hook_returning_a_non_dict():
    registry = _registry_with(_module("nondict", fusekit_fusions=[ConcatFusion]))
    with pytest.warns(PluginWarning, match="returned list, not a dict"):
        registry.names("fusion")


def test_strict_mode_raises_on_a_bad_hook():
    registry = _registry_with(_module("strict", fusekit_fusions={"bad": 42}), strict=True)
    with pytest.raises(PluginError, match="fusekit-faulty"):
        registry.names("fusion")


class WrongWidthFusion(Fusion):
    """Returns one column fewer than promised."""

    def build(self, spec):
        self.width = sum(s[-1] for s in spec.feature_shapes.values())
        return self.width

    def forward(self, features, mask, output):
        return torch.cat(list(features.values()), dim=1)[:, :-1]


class ShapeChangingCalibration(Calibration):
    """Drops a feature column."""

    def forward(self, features, mask, output):
        return {m: h[:, :-1] for m, h in features.items()}


class NaNAtEvalFusion(ConcatFusion):
    """Fine in training, NaN at prediction."""

    def forward(self, features, mask, output):
        fused = super().forward(features, mask, output)
        return fused if self.training else fused * float("nan")


def test_fusion_with_a_wrong_output_width_is_named(vectors):
    X, y = vectors
    with pytest.raises(RuntimeError, match=r"fusion WrongWidthFusion .* promised \(B, \d+\)"):
        FusionClassifier(fusion=WrongWidthFusion, max_epochs=1).fit(X, y)


def test_calibration_changing_shapes_is_named(vectors):
    X, y = vectors
    with pytest.raises(RuntimeError, match="calibration ShapeChangingCalibration .* keep shapes"):
        FusionClassifier(calibration=ShapeChangingCalibration, max_epochs=1).fit(X, y)


def test_nan_at_prediction_is_refused(vectors):
    X, y = vectors
    model = FusionClassifier(fusion=NaNAtEvalFusion, max_epochs=1).fit(X, y)
    with pytest.raises(FloatingPointError, match="fusion NaNAtEvalFusion.*refusing"):
        model.predict(X)


def test_callback_keyboard_interrupt_ends_training_and_keeps_the_model_usable(vectors):
    from skorch.callbacks import Callback

    class Interrupt(Callback):
        def on_epoch_end(self, net, **kwargs):
            if len(net.history) == 2:
                raise KeyboardInterrupt

    X, y = vectors
    model = FusionClassifier(max_epochs=10, callbacks=[Interrupt()], random_state=0).fit(X, y)
    assert len(model.net_.history) == 2
    assert np.isfinite(model.predict_proba(X)).all()


def test_early_stopping_restores_the_best_weights(seeded_vectors, train_seed):
    from skorch.callbacks import EarlyStopping
    from skorch.dataset import ValidSplit

    X, y = seeded_vectors
    model = FusionClassifier(
        max_epochs=40,
        lr=0.05,
        random_state=train_seed,
        train_split=ValidSplit(4, stratified=False),
        callbacks=[EarlyStopping(patience=3, load_best=True)],
    ).fit(X, y)
    history = model.net_.history
    best = min(history[:, "valid_loss"])
    assert history[-1, "valid_loss"] > best, "training should have gone past its best epoch"
    # ValidSplit(4) without shuffling holds out the first quarter of the rows
    rows = slice(0, len(y) // 4)
    held_out = Modalities({m: np.asarray(v)[rows] for m, v in X.items()})
    restored_loss = log_loss(y[rows], model.predict_proba(held_out), labels=model.classes_)
    assert restored_loss == pytest.approx(best, rel=1e-4)
