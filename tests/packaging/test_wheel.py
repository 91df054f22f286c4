"""fusekit as a user gets it: wheels installed into a fresh venv outside the checkout.

The core (``fusekit-learn``) and one plugin (``fusekit-vgmr``) are built as wheels from copies of
their sources (with build isolation, as ``pip wheel`` does for anyone) and installed, not editable,
into a new venv under a temporary folder, with their dependencies from the package index (torch:
the CPU build pinned by ``constraints.txt``) and the ``bench`` extra. There, with the working
directory outside the checkout, ``fusekit bench`` runs its default suite on the bundled data (two
folds, one epoch), every bundled data set loads with its card, and every plugin under
``plugins/`` plus a freshly generated one installs offline against the installed core, which
fails if any of them depends on another distribution name (``fusekit`` on PyPI is an unrelated
package). The shared ``.venv`` is only used to run pip and build wheels, never changed.

Measured on the shared 2-core VM: 2.6 min at load 8 without the final clean-up, 5.6 min at load
7-12 (installing and then deleting the 1.4 GB venv is most of it, all disk-bound);
its module fixture builds the venv once, so run it with ``--dist loadfile`` (as ``make test`` does).
Marked ``wheel``: ``pytest -m "not wheel"`` leaves it out of a quick local run; CI runs it.
"""

from __future__ import annotations

import csv
import email.parser
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.wheel

ROOT = Path(__file__).resolve().parents[2]
CONSTRAINTS = ROOT / "constraints.txt"
#: Plugins that need third-party packages beyond the core's (fusekit-transformers: wordllama,
#: tokenizers, transformers) cannot install offline from the wheel folder; their own tests run.
NEEDS_THIRD_PARTY = {"fusekit-transformers"}
PLUGINS = sorted(
    p
    for p in (ROOT / "plugins").glob("fusekit-*")
    if (p / "pyproject.toml").is_file() and p.name not in NEEDS_THIRD_PARTY
)
CORE_DISTRIBUTION = "fusekit-learn"
SHIPPED_PLUGIN = "fusekit-vgmr"
GENERATED = "wheelcheck"
COPY_IGNORE = shutil.ignore_patterns(
    "*.egg-info", "build", "dist", "__pycache__", ".pytest_cache", ".ruff_cache", "results"
)


def _environment() -> dict[str, str]:
    """The caller's environment without anything that points back into the checkout."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PYTHONPATH", "FUSEKIT_DATA_DIR", "VIRTUAL_ENV", "PYTHONHOME"}
    }
    env.update(
        PIP_NO_INPUT="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        MPLBACKEND="Agg",
    )
    return env


def _run(*command: str | Path, cwd: Path, timeout: float = 900) -> str:
    result = subprocess.run(
        [str(c) for c in command],
        cwd=cwd,
        env=_environment(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, (
        f"{' '.join(map(str, command))} exited {result.returncode}\n"
        f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
    )
    return result.stdout


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _wheel_metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        member = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return email.parser.Parser().parsestr(archive.read(member).decode())


def _requirements(wheel: Path) -> set[str]:
    """Normalised distribution names of a wheel's unconditional ``Requires-Dist``."""
    names = set()
    for requirement in _wheel_metadata(wheel).get_all("Requires-Dist") or []:
        if "extra ==" in requirement:
            continue
        names.add(_normalise(re.match(r"[A-Za-z0-9._-]+", requirement).group(0)))
    return names


def _no_isolation_if_possible() -> tuple[str, ...]:
    """Build the remaining plugins with this interpreter's setuptools when it can build wheels by
    itself (>= 71): seconds instead of a fresh build environment per plugin. The core and the
    shipped plugin are always built with isolation, as anyone's ``pip wheel`` does."""
    from importlib import metadata

    try:
        major = int(metadata.version("setuptools").split(".")[0])
    except (metadata.PackageNotFoundError, ValueError):
        return ()
    return ("--no-build-isolation",) if major >= 71 else ()


def _wheel_of(directory: Path, distribution: str) -> Path:
    stem = distribution.replace("-", "_")
    (wheel,) = directory.glob(f"{stem}-*.whl")
    return wheel


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """A fresh venv with the core and fusekit-vgmr installed from wheels; its paths."""
    base = tmp_path_factory.mktemp("shipped")
    sources, wheels, work = base / "src", base / "wheels", base / "work"
    work.mkdir()
    core = sources / "core"
    core.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, core / name)
    shutil.copytree(ROOT / "fusekit", core / "fusekit", ignore=COPY_IGNORE)
    plugin = shutil.copytree(
        ROOT / "plugins" / SHIPPED_PLUGIN, sources / SHIPPED_PLUGIN, ignore=COPY_IGNORE
    )
    pip = (sys.executable, "-m", "pip")
    _run(*pip, "wheel", "--quiet", "--no-deps", "--wheel-dir", wheels, core, plugin, cwd=work)

    venv = base / "venv"
    _run(sys.executable, "-m", "venv", venv, cwd=work)
    python = venv / "bin" / "python"
    core_wheel = _wheel_of(wheels, CORE_DISTRIBUTION)
    _run(
        python,
        "-m",
        "pip",
        "install",
        "--quiet",
        "-c",
        CONSTRAINTS,
        "torch==2.13.0",
        f"{core_wheel}[bench]",
        _wheel_of(wheels, SHIPPED_PLUGIN),
        cwd=work,
    )
    yield {"base": base, "wheels": wheels, "work": work, "python": python, "venv": venv}
    shutil.rmtree(base, ignore_errors=True)  # 1.4 GB; pytest would keep the last three runs


def test_wheel_carries_the_data_and_the_cards(shipped):
    with zipfile.ZipFile(_wheel_of(shipped["wheels"], CORE_DISTRIBUTION)) as archive:
        names = set(archive.namelist())
    bundled = ROOT / "fusekit" / "datasets" / "data"
    expected = {f"fusekit/datasets/data/{p.name}" for p in bundled.iterdir() if p.is_file()}
    assert expected <= names, f"missing from the wheel: {sorted(expected - names)}"
    assert _wheel_metadata(_wheel_of(shipped["wheels"], CORE_DISTRIBUTION))["Name"] == (
        CORE_DISTRIBUTION
    )


def test_installed_fusekit_is_the_wheel_not_the_checkout_and_loads_every_data_set(shipped):
    script = (
        "import sys, pathlib, fusekit, fusekit.datasets as fd\n"
        "from importlib import metadata\n"
        "here = pathlib.Path(fusekit.__file__).resolve()\n"
        "assert here.is_relative_to(pathlib.Path(sys.prefix).resolve()), here\n"
        "assert metadata.version('fusekit-learn') == fusekit.__version__\n"
        "for name in sorted(fd.BUILTIN_LOADERS):\n"
        "    X, y = fd.load(name)\n"
        "    assert len(y) > 0 and len(X) == len(y), name\n"
        "    assert (fd.data_dir() / f'{name}.md').is_file(), name\n"
        "    print(name, len(y))\n"
    )
    printed = _run(shipped["python"], "-c", script, cwd=shipped["work"])
    loaded = {line.split()[0] for line in printed.splitlines()}
    assert loaded == {"basic_motions", "clothing_reviews", "mfeat", "multiview_mnist", "nutrimouse"}


def _results(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_fusekit_bench_runs_its_default_suite_on_the_bundled_data(shipped):
    fusekit = shipped["venv"] / "bin" / "fusekit"
    out = shipped["work"] / "bench-default"
    # No data set or grid option: the default suite (mfeat views and BasicMotions sequences,
    # every distinct installed fusion and weighting), made quick by fewer folds and epochs.
    printed = _run(
        fusekit,
        "bench",
        "--folds",
        "2",
        "--max-epochs",
        "1",
        "--quiet",
        "--out",
        out,
        cwd=shipped["work"],
    )
    assert "| group |" in printed and (out / "report.html").is_file()
    rows = _results(out / "results.csv")
    assert rows and {r["status"] for r in rows} == {"ok"}
    assert {r["dataset"] for r in rows} == {"mfeat:views=fou,kar", "basic_motions"}
    assert {"concat", "late", "gated", "tensor"} <= {r["fusion"] for r in rows}

    # The plugin installed from its wheel is a method by name in the bench too.
    out = shipped["work"] / "bench-vgmr"
    _run(
        fusekit,
        "bench",
        "--dataset",
        "nutrimouse",
        "--calibration",
        "none,vgmr",
        "--folds",
        "2",
        "--max-epochs",
        "1",
        "--quiet",
        "--out",
        out,
        cwd=shipped["work"],
    )
    rows = _results(out / "results.csv")
    methods = [r for r in rows if not r["fusion"].startswith("ref:")]  # not the reference rows
    assert {r["calibration"] for r in methods if r["status"] == "ok"} == {"none", "vgmr"}, rows


def test_every_plugin_and_a_generated_one_install_against_the_core(shipped):
    work, wheels = shipped["work"], shipped["wheels"]
    fusekit = shipped["venv"] / "bin" / "fusekit"
    _run(fusekit, "new-plugin", GENERATED, "--kind", "fusion", "--dir", work, cwd=work)
    sources = [
        shutil.copytree(p, shipped["base"] / "plugins" / p.name, ignore=COPY_IGNORE)
        for p in PLUGINS
        if p.name != SHIPPED_PLUGIN
    ] + [work / f"fusekit-{GENERATED}"]
    _run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--quiet",
        "--no-deps",
        *_no_isolation_if_possible(),
        "--wheel-dir",
        wheels,
        *sources,
        cwd=work,
    )
    distributions = [p.name for p in PLUGINS] + [f"fusekit-{GENERATED}"]
    for distribution in distributions:
        requires = _requirements(_wheel_of(wheels, distribution))
        assert CORE_DISTRIBUTION in requires, f"{distribution} requires {sorted(requires)}"
        assert "fusekit" not in requires, f"{distribution} depends on PyPI's unrelated 'fusekit'"

    # Offline and ignoring every pip configuration: a dependency on any name but the installed
    # core (and what it brought) has nowhere to come from and fails the install.
    python = shipped["python"]
    _run(
        python,
        "-m",
        "pip",
        "--isolated",
        "install",
        "--quiet",
        "--no-index",
        "--find-links",
        wheels,
        *distributions,
        cwd=work,
    )
    _run(python, "-m", "pip", "check", cwd=work)
    listing = _run(fusekit, "plugins", cwd=work)
    found = {tuple(line.split()[1:3]) for line in listing.splitlines()[1:]}
    assert ("vgmr", "fusekit-vgmr") in found
    assert ("maxout", "fusekit-example") in found
    assert (GENERATED, f"fusekit-{GENERATED}") in found
    assert ("concat", CORE_DISTRIBUTION) in found
    assert {dist for _, dist in found} == {CORE_DISTRIBUTION, *distributions}
