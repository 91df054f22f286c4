"""The command line answers at once and ``import fusekit`` stays cheap: asking for help imports
neither torch nor pandas, ``import fusekit`` imports none of the heavy libraries, skops waits
for a pipeline to be saved or loaded, and every public name still resolves on first use.

Each check runs in a fresh interpreter (this one has imported everything already) and reports
``sys.modules`` as JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
HEAVY = ("torch", "pandas", "sklearn", "skops", "skorch", "scipy")

#: ``fusekit.__all__`` as it stood when every name was imported eagerly: written out, so a
#: name lost from the lazy table fails here.
PUBLIC_NAMES = {
    "Backbone",
    "BuildSpec",
    "Calibration",
    "ChannelsFirstWarning",
    "ChunkSource",
    "Component",
    "DaskSource",
    "DeviceUnavailableWarning",
    "FrozenCacheWarning",
    "Fusion",
    "FusionClassifier",
    "FusionNetwork",
    "FusionOutput",
    "FusionRegressor",
    "LossContext",
    "ModalityBatch",
    "Modalities",
    "ModelFileError",
    "ParquetSource",
    "SignatureError",
    "TrainingContext",
    "UntrustedTypesError",
    "Weighting",
    "available",
    "get_registry",
    "hookimpl",
    "load",
    "save",
}


def fresh_env() -> dict[str, str]:
    """The environment of a fresh interpreter that imports this checkout's fusekit."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }


def loaded_after(code: str) -> dict[str, bool]:
    """Run ``code`` in a fresh interpreter; which of :data:`HEAVY` it left in ``sys.modules``."""
    report = f"import json, sys; print(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))"
    result = subprocess.run(
        [sys.executable, "-c", f"{code}\n{report}"],
        capture_output=True,
        text=True,
        timeout=60,
        env=fresh_env(),
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def help_of(module: str, argv: list[str]) -> str:
    """Code that prints ``module.main(argv)``'s help to devnull, as ``--help`` exits."""
    return (
        "import contextlib, io\n"
        f"from {module} import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        f"        main({argv!r})\n"
        "    except SystemExit as stop:\n"
        "        assert stop.code == 0, stop.code\n"
    )


@pytest.mark.parametrize(
    "module, argv",
    [
        ("fusekit.cli", ["--help"]),
        ("fusekit.cli", ["bench", "--help"]),
        ("fusekit.cli", ["plugins", "--help"]),
        ("fusekit.cli", ["datasets", "--help"]),
        ("fusekit.cli", ["new-plugin", "--help"]),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else value,
)
def test_help_imports_neither_torch_nor_pandas(module, argv):
    loaded = loaded_after(help_of(module, argv))
    assert not loaded["torch"] and not loaded["pandas"], loaded


def test_python_dash_m_fusekit_help_imports_neither_torch_nor_pandas():
    """The real entry point (``fusekit/__main__.py``), as ``python -m fusekit --help`` runs it."""
    code = (
        "import contextlib, io, runpy, sys\n"
        "sys.argv = ['fusekit', '--help']\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        "        runpy.run_module('fusekit', run_name='__main__')\n"
        "    except SystemExit as stop:\n"
        "        assert stop.code == 0, stop.code\n"
    )
    loaded = loaded_after(code)
    assert not loaded["torch"] and not loaded["pandas"], loaded


def test_help_still_lists_the_commands_and_the_choices():
    """Cheap help is still the whole help: every command, the kinds, the bench's defaults."""
    env = fresh_env()
    run = [sys.executable, "-m", "fusekit"]
    top = subprocess.run([*run, "--help"], capture_output=True, text=True, timeout=60, env=env)
    assert top.returncode == 0, top.stderr
    assert "{plugins,new-plugin,bench,datasets}" in top.stdout
    plugins = subprocess.run(
        [*run, "plugins", "--help"], capture_output=True, text=True, timeout=60, env=env
    )
    assert "--kind {backbone,calibration,fusion,weighting,dataset}" in plugins.stdout
    bench = subprocess.run(
        [*run, "bench", "--help"], capture_output=True, text=True, timeout=60, env=env
    )
    assert "default concat (default suite: all)" in " ".join(bench.stdout.split())


def modules_after(code: str) -> set[str]:
    """Every module in ``sys.modules`` after ``code`` ran in a fresh interpreter."""
    report = "import json, sys; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", f"{code}\n{report}"],
        capture_output=True,
        text=True,
        timeout=120,
        env=fresh_env(),
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_fusekit_plugins_imports_only_the_plugins_and_the_command_line():
    """``fusekit plugins`` costs loading the plugins plus the command line's own light modules:
    nothing else (no pandas, skops, estimator, bench) comes in on top."""
    plugins = modules_after(
        "from fusekit.engine.registry import get_registry\nget_registry().entries()"
    )
    command = modules_after(
        "import contextlib, io\n"
        "from fusekit.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['plugins']) == 0\n"
    )
    command_line = {
        "fusekit.cli",
        "fusekit.bench",
        "fusekit.bench.cli",
        "fusekit.bench.parsing",
        "fusekit.bench.settings",
        "fusekit.bench.stopping",
    }
    assert command - plugins <= command_line, sorted(command - plugins - command_line)


#: Modules the methods need only when they train or read data, never to be registered.
NOT_FOR_REGISTERING = {
    "fusekit.data",  # the data layer (and skorch, through it): the data-set hook's loaders
    "skorch",
    "sklearn.feature_extraction.text",  # hashed_text's analyser
    "sklearn.feature_selection",  # BTW's mutual information
    "sklearn.metrics",  # BTW's F1 and mutual information
}


def test_loading_the_plugins_leaves_what_only_training_needs_out():
    """Registering the plugins (what ``fusekit plugins`` costs) imports the plugin layer and the
    methods' modules; what a method needs only to train, or a loader only to load, waits."""
    plugins = modules_after(
        "from fusekit.engine.registry import get_registry\nget_registry().entries()"
    )
    assert not plugins & NOT_FOR_REGISTERING, sorted(plugins & NOT_FOR_REGISTERING)


#: Libraries ``fusekit plugins`` does without: scikit-learn's parameter validation (the declared
#: constraints are plain data until the engine checks them), and scipy.stats and pandas, which
#: it imports (half of the command's CPU when they came in).
NOT_FOR_LISTING = {"sklearn.utils._param_validation", "scipy.stats", "pandas"}


def test_fusekit_plugins_leaves_sklearn_validation_scipy_stats_and_pandas_out():
    """Loading the plugins builds every component class's ``parameter_constraints`` table (the
    declarations are made when the class is defined), yet nothing there imports scikit-learn's
    validation; the built-in encoders import pandas and scikit-learn's hashing when they run."""
    command = modules_after(
        "import contextlib, io\n"
        "from fusekit.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['plugins']) == 0\n"
        "from fusekit.engine.registry import get_registry\n"
        "assert get_registry().entries()\n"
    )
    assert not command & NOT_FOR_LISTING, sorted(command & NOT_FOR_LISTING)


def test_the_declared_constraints_still_check_after_a_lazy_import():
    """The other side of the lazy import: the first check imports scikit-learn's validation and
    refuses a bad value with scikit-learn's own error class and message."""
    code = (
        "import sys\n"
        "from fusekit.engine.registry import get_registry\n"
        "from fusekit.plugin.constraints import check_declared\n"
        "mlp = get_registry().get('backbone', 'mlp')\n"
        "assert 'sklearn.utils._param_validation' not in sys.modules\n"
        "try:\n"
        "    check_declared(mlp.parameter_constraints, {'hidden': 0}, 'backbone mlp')\n"
        "except Exception as error:\n"
        "    from sklearn.utils._param_validation import InvalidParameterError\n"
        "    assert type(error) is InvalidParameterError, type(error)\n"
        "    assert \"The 'hidden' parameter of backbone mlp must be\" in str(error), error\n"
        "else:\n"
        "    raise AssertionError('hidden=0 was accepted')\n"
    )
    modules = modules_after(code)
    assert "sklearn.utils._param_validation" in modules


def test_import_fusekit_imports_no_heavy_library():
    loaded = loaded_after("import fusekit")
    assert not any(loaded.values()), loaded


def test_the_estimators_and_save_load_leave_skops_out():
    """skops (over a second to import) is needed only when a pipeline is saved or loaded."""
    loaded = loaded_after("from fusekit import FusionClassifier, FusionRegressor, load, save")
    assert loaded["torch"] and loaded["sklearn"], loaded  # the estimators did import
    assert not loaded["skops"], loaded


def test_every_public_name_resolves():
    code = (
        "import fusekit\n"
        f"assert set(fusekit.__all__) == {PUBLIC_NAMES!r}, sorted(fusekit.__all__)\n"
        "namespace = {}\n"
        "exec('from fusekit import *', namespace)\n"
        "missing = set(fusekit.__all__) - set(namespace) - set(dir(fusekit))\n"
        "assert not missing, missing\n"
        "assert all(namespace[name] is getattr(fusekit, name) for name in fusekit.__all__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=fresh_env()
    )
    assert result.returncode == 0, result.stderr


#: One public name of each module behind ``fusekit``'s names.
FIRST_IMPORTS = (
    "Modalities",  # fusekit.data
    "DeviceUnavailableWarning",  # fusekit.devices
    "FusionNetwork",  # fusekit.engine.network
    "available",  # fusekit.engine.registry
    "FusionClassifier",  # fusekit.estimator
    "ModelFileError",
    "ParquetSource",  # fusekit.persistence
    "Backbone",  # fusekit.plugin
    "load",  # fusekit.saving
)


def test_each_module_behind_the_public_names_imports_first():
    """Each of :data:`FIRST_IMPORTS` is the first fusekit import of its interpreter, so no import
    cycle hides behind the order the others happen to run in. One interpreter: every fusekit
    (and plugin) module is dropped from ``sys.modules`` before the next name, so fusekit's
    modules run afresh while torch and the other libraries stay imported (seconds, not a
    minute)."""
    code = (
        "import sys\n"
        f"for name in {FIRST_IMPORTS!r}:\n"
        "    for module in [m for m in sys.modules if m.split('.')[0].startswith('fusekit')]:\n"
        "        del sys.modules[module]\n"
        "    namespace = {}\n"
        "    try:\n"
        "        exec(f'from fusekit import {name}', namespace)\n"
        "    except Exception as error:\n"
        "        sys.exit(f'from fusekit import {name}: {type(error).__name__}: {error}')\n"
        "    assert namespace[name] is not None, name\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=fresh_env()
    )
    assert result.returncode == 0, result.stderr


def test_the_public_names_are_the_objects_their_modules_define():
    import fusekit
    from fusekit.engine import registry
    from fusekit.estimator import FusionClassifier
    from fusekit.plugin import hookimpl
    from fusekit.saving import save

    assert fusekit.FusionClassifier is FusionClassifier
    assert fusekit.save is save
    assert fusekit.hookimpl is hookimpl
    assert fusekit.get_registry is registry.get_registry


def test_an_unknown_attribute_is_an_attribute_error_naming_it():
    import fusekit

    with pytest.raises(AttributeError, match="module 'fusekit' has no attribute 'FusionClasifier'"):
        fusekit.FusionClasifier  # noqa: B018 - the attribute access is the test
    assert not hasattr(fusekit, "FusionClasifier")


def test_the_cli_kinds_are_the_plugin_layer_kinds():
    """The command line writes the kinds out (the plugin layer imports torch); they agree."""
    from fusekit import cli
    from fusekit.plugin import COMPONENT_KINDS, KINDS

    assert set(cli.PLUGIN_KINDS) == set(KINDS)
    assert set(cli.COMPONENT_KINDS) == set(COMPONENT_KINDS)


def test_a_bad_kind_is_still_refused_by_name(capsys):
    from fusekit.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["new-plugin", "x", "--kind", "decoder"])
    assert stop.value.code == 2
    error = capsys.readouterr().err
    assert "argument --kind: invalid choice: 'decoder'" in error
    assert "backbone" in error and "weighting" in error


def test_the_startup_benchmark_reads_gnu_time_reports(monkeypatch):
    """``benchmarks/speed/cli_startup.py`` takes wall, CPU and peak memory from ``/usr/bin/time
    -v``; a report in GNU time's words, with the figures worked out by hand."""
    import importlib.util

    path = ROOT / "benchmarks" / "speed" / "cli_startup.py"
    spec = importlib.util.spec_from_file_location("cli_startup", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "cli_startup", module)  # its dataclasses look it up there
    spec.loader.exec_module(module)
    report = (
        '\tCommand being timed: "fusekit --help"\n'
        "\tUser time (seconds): 1.25\n"
        "\tSystem time (seconds): 0.50\n"
        "\tPercent of CPU this job got: 2%\n"
        "\tElapsed (wall clock) time (h:mm:ss or m:ss): 1:02.50\n"
        "\tMaximum resident set size (kbytes): 2048\n"
        "\tExit status: 0\n"
    )
    assert module.gnu_time_figures(report) == (62.5, 1.75, 2.0)
    hours = report.replace("1:02.50", "1:00:01.00")
    assert module.gnu_time_figures(hours)[0] == 3601.0
