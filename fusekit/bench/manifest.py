"""``manifest.json`` beside ``results.csv``: what a run was, so that it can be run again.

It records the fusekit version, every distribution that provides fusekit plugins (entry-point
group ``fusekit``) with its version, the versions of Python, torch, scikit-learn, numpy, scipy,
pandas and skorch, the platform, the full :class:`~fusekit.bench.config.BenchConfig` (seeds,
folds, repeats, grid, sweeps), each data set's checksum, the backend and the command line.
:func:`fusekit.bench.api.rerun` rebuilds the configuration from it and runs it again into a new
directory; on the same machine with the same versions the scores are identical (every unit is
seeded and runs with one thread). This module is the file format only (write, read, codec): it
runs nothing.

The file is data. Reading it imports nothing: components are recorded by their registered name
(a class that is not registered is recorded as ``{"class": "module:Name"}`` for the reader, and a
rerun refuses it), and the recorded backend, ``n_jobs`` and scheduler are never used to decide
where a rerun sends the data. :func:`read_manifest` checks the file against :data:`SCHEMA`
before anything runs; every error names the file and the key.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import sys
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from fusekit.atomic import atomic_write_text
from fusekit.bench.config import GRID_KINDS, BenchConfig, Sweep
from fusekit.bench.schema import ListOf, MapOf, Record, SchemaError, check
from fusekit.bench.splitters import describe as describe_cv
from fusekit.engine.registry import get_registry

MANIFEST = "manifest.json"
LIBRARIES = ("torch", "scikit-learn", "numpy", "scipy", "pandas", "skorch", "scikit-posthocs")
#: A manifest is a few kilobytes; a larger file is refused before it is read.
MAX_MANIFEST_BYTES = 16 * 2**20
#: Where the work runs: never read from a manifest (a rerun takes them from its caller).
RUN_SETTINGS = ("backend", "n_jobs", "scheduler")

_COMPONENTS = (str, ListOf((str, Record({"class": str, "instance": str}, frozenset({"instance"})))))
CONFIG_SCHEMA = Record(
    {
        "datasets": ListOf(str),
        "target": (str, None),
        "modalities": (None, str, MapOf((str, ListOf(str)))),
        **dict.fromkeys(GRID_KINDS, _COMPONENTS),
        "design": str,
        "params": MapOf(object),
        "max_epochs": (int, None),
        "batch_size": (int, None),
        "lr": (float, None),
        "equal_budget": bool,
        "folds": int,
        "repeats": int,
        "seed": int,
        "metric": (str, None),
        "sweeps": ListOf(
            Record(
                {
                    "corruption": str,
                    "modalities": (ListOf(str), None),
                    "levels": (ListOf(float), None),
                }
            )
        ),
        "missing": bool,
        "references": bool,
        "rank_by": str,
        "baseline": (str, None),
        "tune": MapOf(ListOf(object)),
        "tune_folds": int,
        "tune_search": str,
        "groups": (str, None),
        # the outer splitter: a registered name (its parameters in cv_params), or the record of
        # a splitter object that is not registered (for the reader; a rerun refuses it)
        "cv": (None, str, Record({"class": str, "params": str})),
        "cv_params": MapOf(object),
        "budget_steps": (int, None),
        "rope": float,
        "stream": bool,
    },
    # settings added after the first manifests: older files load with their defaults
    frozenset({"tune_search", "groups", "cv", "cv_params", "budget_steps", "rope", "stream"}),
)
#: The shape of ``manifest.json``; ``config`` is checked on its own by :func:`config_from_json`.
SCHEMA = Record(
    {
        "environment": Record(
            {
                "fusekit": str,
                "plugins": MapOf(str),
                "libraries": MapOf((str, None)),
                "python": str,
                "platform": str,
            }
        ),
        "config": dict,
        "data": ListOf(Record({"name": str, "checksum": str, "source": MapOf(object), "n": int})),
        "seeds": MapOf(object),
        "run": Record({"backend": str, "n_jobs": int, "scheduler": (str, None)}),
        "command": ListOf(str),
    }
)


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def plugin_distributions() -> dict[str, str]:
    """``{distribution: version}`` of every installed distribution with ``fusekit`` entry
    points."""
    found = {}
    for entry_point in metadata.entry_points(group="fusekit"):
        dist = entry_point.dist
        if dist is not None:
            found[dist.metadata["Name"]] = dist.version
    return dict(sorted(found.items()))


def environment() -> dict[str, Any]:
    from fusekit import __version__

    return {
        "fusekit": __version__,
        "plugins": plugin_distributions(),
        "libraries": {name: _version(name) for name in LIBRARIES},
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


class ManifestError(SchemaError):
    """``manifest.json`` cannot be rerun as it is: malformed, or it names code to import."""


class IgnoredRunSettings(UserWarning):
    """A rerun did not take the recorded backend, ``n_jobs`` or scheduler from the manifest."""


def _component(kind: str, value: Any) -> Any:
    """A grid entry as the manifest records it: the registered name (also of a registered
    class), else ``{"class": "module:Name"}``, a record for the reader that a rerun refuses."""
    if isinstance(value, str):
        return value
    cls = value if isinstance(value, type) else type(value)
    name = get_registry().name_of(kind, cls)
    if name is not None and cls is value:
        return name
    entry = {"class": f"{cls.__module__}:{cls.__qualname__}"}
    return entry if cls is value else {**entry, "instance": repr(value)}


def config_to_json(config: BenchConfig) -> dict[str, Any]:
    out = dataclasses.asdict(config)
    for kind in GRID_KINDS:
        value = getattr(config, kind)
        out[kind] = (
            value
            if isinstance(value, str)
            else [
                _component(kind, v)
                for v in (value if isinstance(value, (list, tuple)) else [value])
            ]
        )
    out["datasets"] = list(config.datasets)
    out["params"] = dict(config.params)
    spec = describe_cv(config.cv, config.cv_params)
    if spec is None or "name" in spec:  # a registered splitter: its name and parameters
        out["cv"], out["cv_params"] = (None, {}) if spec is None else (spec["name"], spec["params"])
    else:
        out["cv"], out["cv_params"] = spec, {}
    return out


def _refuse_classes(config: Mapping[str, Any], source: str, given: set[str]) -> None:
    """A component recorded as a class is never imported: the caller passes it (``given``)."""
    for kind in GRID_KINDS:
        value = config[kind]
        if kind in given or isinstance(value, str):
            continue
        for position, entry in enumerate(value):
            if isinstance(entry, dict):
                raise ManifestError(
                    f"{source}: config.{kind}[{position}] records the class {entry['class']!r}. "
                    "A manifest is data: a rerun never imports code named in it. Give the "
                    f"{kind} yourself: register it as a plugin and pass its name on the command "
                    f"line (--rerun DIR --{kind} NAME,...), or in Python: "
                    f"rerun(DIR, {kind}=[...])."
                )


def config_from_json(
    payload: dict[str, Any], source: str = MANIFEST, components: Mapping[str, Any] | None = None
) -> BenchConfig:
    """The :class:`BenchConfig` of a manifest's ``config`` (checked against
    :data:`CONFIG_SCHEMA`). ``components``: grid axes the caller gives (``{"fusion": [cls]}``),
    in place of the recorded ones; a component recorded as a class is refused otherwise."""
    check(payload, CONFIG_SCHEMA, source, "config", ManifestError)
    components = dict(components or {})
    _refuse_classes(payload, source, set(components))
    if isinstance(payload.get("cv"), dict) and "cv" not in components:
        raise ManifestError(
            f"{source}: config.cv records the splitter class {payload['cv']['class']!r}. A "
            "manifest is data: a rerun never imports code named in it. Pass the splitter "
            "yourself: rerun(DIR, cv=splitter), or a registered name (--cv NAME)."
        )
    payload = {**payload, **components}
    payload["datasets"] = tuple(payload["datasets"])
    payload["sweeps"] = tuple(
        Sweep(
            s["corruption"],
            None if s["modalities"] is None else tuple(s["modalities"]),
            None if s["levels"] is None else tuple(s["levels"]),
        )
        for s in payload["sweeps"]
    )
    config = BenchConfig(**payload)
    try:
        config.validate()
    except (TypeError, ValueError) as error:
        raise ManifestError(f"{source}: config: {error}") from None
    return config


def write_manifest(
    out_dir: Path,
    config: BenchConfig,
    data: list[Any],
    run: dict[str, Any],
) -> Path:
    """Write ``out_dir/manifest.json``; ``run``: backend, n_jobs, scheduler."""
    payload = {
        "environment": environment(),
        "config": config_to_json(config),
        "data": [
            {"name": d.name, "checksum": d.fingerprint, "source": d.source, "n": len(d.y)}
            for d in data
        ],
        "seeds": {
            "split": "seed + repeat (the splitter's random_state)",
            "fit": "seed * 10007 + repeat * 101 + fold",
            "corruption": "default_rng([fit_seed + 1, sweep, modality])",
            "seed": config.seed,
            "folds": config.folds,
            "repeats": config.repeats,
        },
        "run": run,
        "command": sys.argv,
    }
    path = Path(out_dir) / MANIFEST
    atomic_write_text(path, json.dumps(payload, indent=2, default=str) + "\n")
    return path


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def read_manifest(run_dir: str | Path) -> dict[str, Any]:
    """``run_dir/manifest.json`` parsed and checked against :data:`SCHEMA` (its ``config`` is
    checked when it is turned into a :class:`BenchConfig`); :class:`ManifestError` names the
    file, the key, what was expected and what came."""
    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: --rerun needs the directory of a bench run (with {MANIFEST})."
        )
    size = path.stat().st_size
    if size > MAX_MANIFEST_BYTES:
        raise ManifestError(
            f"{path} is {size} bytes; a bench manifest is at most {MAX_MANIFEST_BYTES} bytes."
        )
    try:
        payload = json.loads(path.read_bytes().decode("utf-8"), parse_constant=_refuse_constant)
    except UnicodeDecodeError as error:
        raise ManifestError(f"{path} is not UTF-8 text: {error}.") from None
    except json.JSONDecodeError as error:
        raise ManifestError(
            f"{path} is not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}."
        ) from None
    except ValueError as error:
        raise ManifestError(f"{path} is not valid JSON: {error}.") from None
    check(payload, SCHEMA, str(path), error=ManifestError)
    return payload
