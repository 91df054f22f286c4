"""The engine's one door (``fusekit.engine.assemble``): each component resolved once, its origin
recorded there and read everywhere after; the fitted ``plugins_`` record.

Expected origins come from the registry's own entries (``Registry.entry``), looked up here by
name, independently of how the door found them.
"""

import numpy as np
import pytest
import torch

import fusekit
from fusekit import FusionClassifier, Modalities
from fusekit.builtin.concat_fusion import ConcatFusion
from fusekit.builtin.mlp_backbone import MLPBackbone
from fusekit.engine import assemble
from fusekit.engine.registry import Registry, get_registry
from fusekit.engine.resolve import Origin
from fusekit.plugin import Fusion

SHAPES = {"a": (3,), "b": (2,)}


def _data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = Modalities(a=rng.normal(size=(n, 3)) + y[:, None], b=rng.normal(size=(n, 2)))
    return X, y


def _expected(kind, name, where=""):
    entry = get_registry().entry(kind, name)
    return Origin(kind, where, entry.obj, name, entry.distribution, entry.version)


class Unregistered(ConcatFusion):
    """A fusion no plugin registers."""


def test_each_component_records_its_registry_entry_by_name_class_or_instance():
    choices = assemble.Choices(
        backbone={"a": "mlp", "b": MLPBackbone},
        fusion=ConcatFusion(),
        weighting=["modality_dropout", "none"],
        nested={"backbone__a__hidden": 5},
    )
    network = assemble.build_network(choices, SHAPES, 2, "classification")
    assert network.origins == (
        _expected("backbone", "mlp", " of 'a'"),
        _expected("backbone", "mlp", " of 'b'"),
        _expected("calibration", "none"),
        _expected("fusion", "concat"),
        _expected("weighting", "modality_dropout", " [0]"),
        _expected("weighting", "none", " [1]"),
    )
    assert network.backbones["a"].hidden == 5  # the nested parameter reached its modality only
    assert network.origin_of(network.fusion).label == "fusion concat"


def test_an_unregistered_class_has_an_origin_without_a_name_and_is_no_plugin():
    network = assemble.build_network(
        assemble.Choices(fusion=Unregistered), SHAPES, 2, "classification"
    )
    origin = network.origin_of(network.fusion)
    assert (origin.name, origin.distribution, origin.cls) == (None, None, Unregistered)
    assert origin.label == "fusion Unregistered"
    assert {"kind": "fusion", "name": "concat"}.items() not in [
        r.items() for r in assemble.plugins_used(network)
    ]
    assert [r["kind"] for r in assemble.plugins_used(network)] == [
        "backbone",
        "calibration",
        "weighting",
    ]


def test_plugins_used_lists_each_registered_plugin_once_in_network_order():
    network = assemble.build_network(
        assemble.Choices(weighting=["modality_dropout", "modality_dropout"]),
        SHAPES,
        2,
        "classification",
    )
    expected = [
        {"kind": kind, "name": name, "distribution": e.distribution, "version": e.version}
        for kind, name in [
            ("backbone", "mlp"),
            ("calibration", "none"),
            ("fusion", "concat"),
            ("weighting", "modality_dropout"),
        ]
        for e in [get_registry().entry(kind, name)]
    ]
    assert assemble.plugins_used(network) == expected


def test_the_fixtures_use_the_instances_they_are_given_and_record_origins():
    from fusekit.testing.fixtures import build_network

    fusion = ConcatFusion()
    network = build_network(fusion=fusion)
    assert network.fusion is fusion
    assert network.origin_of(fusion) == _expected("fusion", "concat")


def test_a_fitted_model_says_which_plugins_it_uses_and_keeps_it_through_save(tmp_path):
    X, y = _data()
    model = FusionClassifier(weighting="modality_dropout", max_epochs=1, random_state=0).fit(X, y)
    names = [(r["kind"], r["name"]) for r in model.plugins_]
    assert names == [
        ("backbone", "mlp"),
        ("calibration", "none"),
        ("fusion", "concat"),
        ("weighting", "modality_dropout"),
    ]
    entry = get_registry().entry("weighting", "modality_dropout")
    assert model.plugins_[-1]["distribution"] == entry.distribution
    assert model.plugins_[-1]["version"] == entry.version
    loaded = fusekit.load(model.save(tmp_path / "m.safetensors"))
    assert loaded.plugins_ == model.plugins_


def test_after_the_door_nothing_looks_a_plugin_up_from_its_class(tmp_path, monkeypatch):
    """Settings, training, error messages, save and load read the origins the door recorded;
    a second look-up by class (the registry walked backwards) is an error here."""
    X, y = _data()
    calls = []
    original = Registry.entry_of

    def counting(self, kind, cls):
        calls.append((kind, cls))
        return original(self, kind, cls)

    monkeypatch.setattr(Registry, "entry_of", counting)

    def refuse(self, kind, cls):
        raise AssertionError(f"looked up the name of {kind} {cls.__name__} from its class")

    monkeypatch.setattr(Registry, "name_of", refuse)
    model = FusionClassifier(fusion=ConcatFusion, max_epochs=1, random_state=0).fit(X, y)
    assert calls == [("fusion", ConcatFusion)]  # once, when the door resolved the class
    assert model.training_settings_["lr"]["source"] == "default"
    # the class-valued parameter is stored under the name its origin recorded
    with_class = fusekit.load(model.save(tmp_path / "class.safetensors"))
    assert with_class.fusion is ConcatFusion
    assert calls == [("fusion", ConcatFusion)] * 2  # saved by origin; load's own resolution
    calls.clear()
    by_name = FusionClassifier(max_epochs=1, random_state=0).fit(X, y)
    loaded = fusekit.load(by_name.save(tmp_path / "m.safetensors"))
    assert calls == [] and loaded.plugins_ == by_name.plugins_


class WrongWidth(Fusion):
    """Promises one width and returns another."""

    def build(self, spec):
        self.width = sum(int(np.prod(s)) for s in spec.feature_shapes.values())
        return self.width

    def forward(self, features, mask, output):
        return torch.cat(list(features.values()), dim=1)[:, :1]


def test_a_plugin_bug_is_reported_with_the_origin_the_door_recorded():
    network = assemble.build_network(
        assemble.Choices(fusion=WrongWidth), SHAPES, 2, "classification"
    )
    from fusekit.testing.fixtures import make_batch

    with pytest.raises(RuntimeError, match="fusion class .*WrongWidth, not registered"):
        network(make_batch(SHAPES, n=4))


def test_load_resolves_the_components_once_and_never_the_settings(tmp_path, monkeypatch):
    """One resolution (the encoders' backbones and both builds come from it), no settings."""
    X, y = _data()
    model = FusionClassifier(backbone={"a": "mlp", "b": MLPBackbone}, max_epochs=1, random_state=0)
    model.fit(X, y)
    path = model.save(tmp_path / "m.safetensors")
    resolved, built = [], []
    original_resolve, original_build = assemble.resolve_choices, assemble.build_resolved

    def spy_resolve(choices, names):
        resolved.append(choices)
        return original_resolve(choices, names)

    def spy_build(resolution, *args, **kwargs):
        built.append(resolution)
        return original_build(resolution, *args, **kwargs)

    def refuse(*args, **kwargs):
        raise AssertionError("load resolved the training settings")

    monkeypatch.setattr(assemble, "resolve_choices", spy_resolve)
    monkeypatch.setattr(assemble, "build_resolved", spy_build)
    monkeypatch.setattr(assemble, "resolve_training_settings", refuse)
    monkeypatch.setattr(assemble, "build_network", refuse)
    loaded = fusekit.load(path)
    assert len(resolved) == 1 and resolved[0].fusion == "concat"
    assert len(built) == 2  # the meta-device skeleton checked against the weights, then the net
    assert built[0] is not built[1]  # each build gets its own copy of the resolved components
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
