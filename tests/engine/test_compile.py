"""``compile=True`` and ``compile__*``: options reach ``torch.compile``, the compiled network trains
and predicts, saved files hold the plain weights, and clone / GridSearchCV keep the options.

The tests that really compile use the ``"eager"`` backend (TorchDynamo's tracing without code
generation): inductor needs minutes of C++ compilation on a small CPU machine.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.utils._param_validation import InvalidParameterError

import fusekit
from fusekit import FusionClassifier
from fusekit.testing.fixtures import make_joint_split


@pytest.fixture(scope="module")
def task():
    return make_joint_split(64, 32, seed=0)


def _model(**params):
    return FusionClassifier(max_epochs=2, batch_size=32, random_state=0, **params)


@pytest.fixture
def compile_calls(monkeypatch):
    """The keyword arguments of every ``nn.Module.compile`` call; the stand-in marks the module
    compiled as torch does, without compiling anything."""
    calls = []

    def record(module, **options):
        calls.append(options)
        module._compiled_call_impl = module._call_impl

    monkeypatch.setattr(torch.nn.Module, "compile", record)
    return calls


def test_compile_is_off_by_default(task, compile_calls):
    X, y, _, _ = task
    assert FusionClassifier().get_params()["compile"] is False
    _model().fit(X, y)
    assert compile_calls == []


def test_compile_options_reach_torch_compile(task, compile_calls):
    X, y, X_test, _ = task
    model = _model(compile=True, compile__mode="reduce-overhead", compile__fullgraph=True)
    model.fit(X, y).predict(X_test)
    assert compile_calls == [{"mode": "reduce-overhead", "fullgraph": True}]  # once, not again


def test_clone_and_set_params_keep_compile_options():
    model = FusionClassifier(compile=True, compile__mode="reduce-overhead")
    params = clone(model).get_params()
    assert params["compile"] is True and params["compile__mode"] == "reduce-overhead"
    model.set_params(compile__dynamic=False, compile=False)
    assert model.get_params()["compile__dynamic"] is False
    assert clone(model).get_params()["compile"] is False


def test_grid_search_over_compile_options(task):
    X, y, _, _ = task
    # compile__disable=True: torch.compile returns the forward unchanged, so this checks the
    # routing through clone / set_params / fit without seconds of tracing per fold
    search = GridSearchCV(
        FusionClassifier(max_epochs=1, random_state=0, compile=True, compile__disable=True),
        {"compile__mode": ["default", "max-autotune"]},
        cv=2,
    ).fit(X, y)
    assert [p["compile__mode"] for p in search.cv_results_["params"]] == [
        "default",
        "max-autotune",
    ]


def test_unknown_compile_options_are_refused_by_name(task):
    X, y, _, _ = task
    with pytest.raises(TypeError, match="'compile__mod'.*torch.compile"):
        _model(compile=True, compile__mod="default").fit(X, y)
    with pytest.raises(InvalidParameterError, match="'compile__mode' parameter"):
        _model(compile=True, compile__mode="fast").fit(X, y)
    with pytest.raises(InvalidParameterError, match="'compile' parameter"):
        _model(compile="yes").fit(X, y)
    with pytest.raises(TypeError, match="Did you mean 'compile__mode'"):
        _model(compiel__mode="default").fit(X, y)


@pytest.mark.parametrize(
    ("option", "value"),
    [("compile__options", {"cpp.cxx": "/tmp/not-a-compiler"}), ("compile__backend", "mine")],
)
def test_load_refuses_compile_options_that_choose_programs(task, tmp_path, option, value):
    X, y, _, _ = task
    _model(**{option: value}).fit(X, y).save(tmp_path / "model.fusekit")  # compile=False
    with pytest.raises(fusekit.ModelFileError, match=f"{option}"):
        fusekit.load(tmp_path / "model.fusekit")


@pytest.mark.slow
def test_compiled_network_trains_and_predicts_as_the_plain_one(task):
    X, y, X_test, _ = task
    graphs = []

    def counting_backend(graph_module, example_inputs):  # TorchDynamo's backend protocol
        graphs.append(graph_module)
        return graph_module.forward

    plain = _model().fit(X, y)
    compiled = _model(compile=True, compile__backend=counting_backend).fit(X, y)
    trained = len(graphs)
    assert trained > 0  # training ran through the compiled forward
    np.testing.assert_allclose(
        compiled.predict_proba(X_test), plain.predict_proba(X_test), rtol=1e-5, atol=1e-6
    )
    assert len(graphs) > trained  # prediction too (eval mode, no autograd: new graphs)
    assert isinstance(compiled.module_, type(plain.module_))


@pytest.mark.slow
def test_saved_compiled_model_holds_plain_weights_and_loads_compiled_or_not(task, tmp_path):
    X, y, X_test, _ = task
    model = _model(compile=True, compile__backend="eager").fit(X, y)
    expected = model.predict_proba(X_test)
    assert not any("_orig_mod" in key for key in model.module_.state_dict())
    model.save(tmp_path / "compiled.fusekit")

    loaded = fusekit.load(tmp_path / "compiled.fusekit")
    assert loaded.get_params()["compile__backend"] == "eager"
    np.testing.assert_allclose(loaded.predict_proba(X_test), expected, rtol=1e-6, atol=1e-7)
    assert loaded.module_._compiled_call_impl is not None
    loaded.set_params(compile=False)
    np.testing.assert_allclose(loaded.predict_proba(X_test), expected, rtol=1e-6, atol=1e-7)
    assert loaded.module_._compiled_call_impl is None

    # a continued fit trains a copy, compiled again; the file of a plain model compiles on load
    loaded.set_params(compile=True).partial_fit(X, y)
    assert loaded.module_._compiled_call_impl is not None
    _model().fit(X, y).save(tmp_path / "plain.fusekit")
    plain = fusekit.load(tmp_path / "plain.fusekit").set_params(
        compile=True, compile__backend="eager"
    )
    np.testing.assert_allclose(plain.predict_proba(X_test), expected, rtol=1e-6, atol=1e-7)
    assert plain.module_._compiled_call_impl is not None
