"""``fusekit new-plugin`` writes a distribution that installs, passes its own tests and is found."""

import importlib.util
import inspect
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from fusekit.plugin import COMPONENT_KINDS
from fusekit.scaffold import new_plugin
from fusekit.testing.suite import checks_for

PYTHON = sys.executable
SHARED_SITE = Path(sysconfig.get_paths()["purelib"])  # the environment the other tests run in
PYTHONPATH = os.environ.get("PYTHONPATH", "")


def _run(*command, cwd=None, env=None):
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _scaffolded_in_shared_site() -> list[str]:
    return sorted(p.name for p in SHARED_SITE.glob("fusekit_scaffolded*"))


def test_generated_fusion_installs_passes_its_tests_and_is_found(tmp_path):
    """Installed into a directory of its own (``pip install --target``), seen by subprocesses
    through ``PYTHONPATH``: the shared environment, where other test workers run, is never
    modified, and nothing is left to uninstall."""
    before = _scaffolded_in_shared_site()
    _run(PYTHON, "-m", "fusekit", "new-plugin", "scaffolded-gen", "--kind", "fusion",
         "--dir", str(tmp_path))  # fmt: skip
    root = tmp_path / "fusekit-scaffolded-gen"
    target = tmp_path / "site"
    _run(PYTHON, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(root))  # fmt: skip
    assert list(target.glob("fusekit_scaffolded_gen-*.dist-info"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(target), PYTHONPATH]))}
    unknown_mark_is_an_error = ("-W", "error::pytest.PytestUnknownMarkWarning")
    _run(PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", *unknown_mark_is_an_error,
         str(root / "tests"), cwd=root, env=env)  # fmt: skip
    seeded = _run(PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "seeded",
                  str(root / "tests"), cwd=root, env=env)  # fmt: skip
    assert "1 passed" in seeded, seeded  # check_beats_chance, selected by its mark
    listing = _run(PYTHON, "-m", "fusekit", "plugins", "--kind", "fusion", env=env)
    assert any(
        line.split()[:3] == ["fusion", "scaffolded_gen", "fusekit-scaffolded-gen"]
        for line in listing.splitlines()
    ), listing
    script = (
        "import numpy as np\n"
        "from sklearn.model_selection import GridSearchCV\n"
        "from fusekit import FusionClassifier, Modalities\n"
        "rng = np.random.default_rng(0); y = rng.integers(0, 2, 60)\n"
        "X = Modalities(a=rng.normal(size=(60, 3)) + y[:, None], b=rng.normal(size=(60, 2)))\n"
        "grid = {'fusion': ['scaffolded_gen']}\n"
        "s = GridSearchCV(FusionClassifier(max_epochs=2), grid, cv=2)\n"
        "print(s.fit(X, y).best_params_)\n"
    )
    assert "scaffolded_gen" in _run(PYTHON, "-c", script, env=env)
    assert "scaffolded_gen" not in _run(PYTHON, "-m", "fusekit", "plugins", "--kind", "fusion")
    assert _scaffolded_in_shared_site() == before  # the shared environment is untouched


@pytest.mark.parametrize("kind", COMPONENT_KINDS)
def test_every_kind_generates_a_plugin_that_meets_the_contract(tmp_path, kind):
    root = new_plugin(f"gen_{kind}", kind, tmp_path)
    package = root / f"fusekit_gen_{kind}" / "__init__.py"
    spec = importlib.util.spec_from_file_location(f"fusekit_gen_{kind}", package)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # picklable classes need an importable module
    spec.loader.exec_module(module)
    try:
        cls = next(
            c for _, c in inspect.getmembers(module, inspect.isclass) if c.__module__ == spec.name
        )
        for check in checks_for(kind):
            check(kind, cls, None)
        assert module.__doc__.startswith(f"Gen {kind.title()}")
    finally:
        del sys.modules[spec.name]


def test_names_must_make_identifiers(tmp_path):
    with pytest.raises(ValueError, match="does not make a Python identifier"):
        new_plugin("9lives", "fusion", tmp_path)
    with pytest.raises(ValueError, match="kind must be one of"):
        new_plugin("fine", "decoder", tmp_path)


def test_existing_directory_is_not_overwritten(tmp_path):
    new_plugin("twice", "fusion", tmp_path)
    with pytest.raises(FileExistsError):
        new_plugin("twice", "fusion", tmp_path)


def test_a_name_that_would_be_renamed_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="did you mean 'bad_name'"):
        new_plugin("Bad-Name", "fusion", tmp_path)
    assert not list(tmp_path.iterdir())


def test_cli_reports_an_existing_folder_without_a_traceback(tmp_path, capsys):
    from fusekit.cli import main

    assert main(["new-plugin", "twice", "--kind", "fusion", "--dir", str(tmp_path)]) == 0
    assert main(["new-plugin", "twice", "--kind", "fusion", "--dir", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert "fusekit new-plugin: error:" in error and "exists" in error
    assert "Traceback" not in error
