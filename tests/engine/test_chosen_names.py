"""Error messages name a component as the user chose it: by the registered name it was resolved
under (its recorded origin), never by a name looked up backwards from its class.

Each class here is registered twice, under a name of each of two distributions; each name is
chosen in turn, and the message must carry that name and its own distribution. A look-up by class
finds one entry for both, so it names the other one half of the time.
"""

import types

import numpy as np
import pytest

import fusekit.engine.registry as registry_module
from fusekit import FusionClassifier, Modalities, Weighting, hookimpl
from fusekit.builtin.concat_fusion import ConcatFusion
from fusekit.builtin.mlp_backbone import MLPBackbone
from fusekit.engine.registry import Registry


class RegressionOnly(ConcatFusion):
    supported_tasks = ("regression",)


class NoLossTerms(Weighting):
    """Forgets to return its loss terms (a plugin bug the engine names)."""

    def loss_terms(self, output, ctx):
        return None


class NumbersOnly(MLPBackbone):
    input_kinds = ("vector",)


class UnregisteredRegressionOnly(RegressionOnly):
    """A subclass of a registered class that no plugin registers."""


DISTRIBUTIONS = {"first": ("dist-one", "1.0"), "second": ("dist-two", "2.0")}


def _plugin(prefix):
    module = types.ModuleType(f"{prefix}_plugin")
    module.fusekit_fusions = hookimpl(lambda: {f"{prefix}_fusion": RegressionOnly})
    module.fusekit_weightings = hookimpl(lambda: {f"{prefix}_weighting": NoLossTerms})
    module.fusekit_backbones = hookimpl(lambda: {f"{prefix}_backbone": NumbersOnly})
    return module


@pytest.fixture
def twice_registered(monkeypatch):
    registry = Registry(autoload=False)
    registry.load()
    for prefix, (distribution, version) in DISTRIBUTIONS.items():
        registry.register(_plugin(prefix), distribution, version)
    monkeypatch.setattr(registry_module, "_REGISTRY", registry)
    return registry


def _data(n=12, strings=False):
    rng = np.random.default_rng(0)
    y = np.arange(n) % 2
    a = np.array([[f"w{v}"] for v in y], dtype=object) if strings else rng.normal(size=(n, 3))
    return Modalities(a=a, b=rng.normal(size=(n, 2))), y


@pytest.mark.parametrize("prefix", sorted(DISTRIBUTIONS))
def test_an_unsupported_task_names_the_fusion_by_the_chosen_name(twice_registered, prefix):
    X, y = _data()
    name = f"{prefix}_fusion"
    distribution, version = DISTRIBUTIONS[prefix]
    with pytest.raises(ValueError) as caught:
        FusionClassifier(fusion=name, max_epochs=1).fit(X, y)
    message = str(caught.value)
    assert message.startswith(f"{name}: needs a regression task, got classification.")
    assert f"fusion {name!r} ({distribution} {version}) declares" in message


@pytest.mark.parametrize("prefix", sorted(DISTRIBUTIONS))
def test_a_plugin_bug_names_the_weighting_by_the_chosen_name(twice_registered, prefix):
    X, y = _data()
    name = f"{prefix}_weighting"
    distribution, version = DISTRIBUTIONS[prefix]
    with pytest.raises(TypeError, match=rf"^weighting '{name}' \({distribution} {version}\): "):
        FusionClassifier(weighting=name, max_epochs=1).fit(X, y)


@pytest.mark.parametrize("prefix", sorted(DISTRIBUTIONS))
def test_strings_for_a_numbers_backbone_name_it_by_the_chosen_name(twice_registered, prefix):
    X, y = _data(strings=True)
    name = f"{prefix}_backbone"
    other = next(f"{p}_backbone" for p in DISTRIBUTIONS if p != prefix)
    with pytest.raises(ValueError, match=rf"its backbone '{name}' accepts vector input") as caught:
        FusionClassifier(backbone={"a": name, "b": "mlp"}, max_epochs=1).fit(X, y)
    assert other not in str(caught.value)


def test_an_unregistered_subclass_is_named_by_its_own_class(twice_registered):
    X, y = _data()
    with pytest.raises(ValueError) as caught:
        FusionClassifier(fusion=UnregisteredRegressionOnly, max_epochs=1).fit(X, y)
    message = str(caught.value)
    assert message.startswith("UnregisteredRegressionOnly: needs a regression task")
    assert "fusion UnregisteredRegressionOnly (not registered)" in message
    assert "_fusion" not in message  # not the name of the registered parent class
