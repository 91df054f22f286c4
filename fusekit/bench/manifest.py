"""``manifest.json`` beside ``results.csv``: what a run was, so that it can be run again.

It records the fusekit version, every distribution that provides fusekit plugins (entry-point
group ``fusekit``) with its version, the versions of Python, torch, scikit-learn, numpy, scipy,
pandas and skorch, the platform, the full :class:`~fusekit.bench.config.BenchConfig` (seeds,
folds, repeats, grid, sweeps), each data set's checksum, the backend and the command line.
:func:`rerun` rebuilds the configuration from it and runs it again into a new directory; on the
same machine with the same versions the scores are identical (every unit is seeded and runs with
one thread).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import platform
import sys
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

from fusekit.bench.config import KINDS, BenchConfig, Sweep

MANIFEST = "manifest.json"
LIBRARIES = ("torch", "scikit-learn", "numpy", "scipy", "pandas", "skorch", "scikit-posthocs")


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


def _component(value: Any) -> Any:
    if isinstance(value, str):
        return value
    cls = value if isinstance(value, type) else None
    if cls is None:
        raise TypeError(
            f"the manifest records components by name or class, got the instance {value!r}."
        )
    return {"class": f"{cls.__module__}:{cls.__qualname__}"}


def _load_component(value: Any) -> Any:
    if isinstance(value, dict) and "class" in value:
        module, _, name = value["class"].partition(":")
        found: Any = importlib.import_module(module)
        for part in name.split("."):
            found = getattr(found, part)
        return found
    return value


def config_to_json(config: BenchConfig) -> dict[str, Any]:
    out = dataclasses.asdict(config)
    for kind in KINDS:
        value = getattr(config, kind)
        out[kind] = (
            value
            if isinstance(value, str)
            else [_component(v) for v in (value if isinstance(value, (list, tuple)) else [value])]
        )
    out["datasets"] = list(config.datasets)
    out["params"] = dict(config.params)
    return out


def config_from_json(payload: dict[str, Any]) -> BenchConfig:
    payload = dict(payload)
    for kind in KINDS:
        value = payload[kind]
        payload[kind] = value if isinstance(value, str) else [_load_component(v) for v in value]
    payload["datasets"] = tuple(payload["datasets"])
    payload["sweeps"] = tuple(
        Sweep(
            s["corruption"],
            None if s["modalities"] is None else tuple(s["modalities"]),
            None if s["levels"] is None else tuple(s["levels"]),
        )
        for s in payload["sweeps"]
    )
    known = {f.name for f in dataclasses.fields(BenchConfig)}
    return BenchConfig(**{k: v for k, v in payload.items() if k in known})


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
            "split": "seed + repeat",
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
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def read_manifest(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: --rerun needs the directory of a bench run (with {MANIFEST})."
        )
    return json.loads(path.read_text(encoding="utf-8"))


def rerun(run_dir: str | Path, out_dir: str | Path | None = None, **overrides: Any) -> Any:
    """Run the bench recorded in ``run_dir/manifest.json`` again, into ``out_dir`` (default
    ``run_dir/rerun``), from scratch. Warns when versions or data checksums differ."""
    from fusekit.bench.api import run_bench

    manifest = read_manifest(run_dir)
    in_memory = [d["name"] for d in manifest["data"] if d["source"].get("in_memory")]
    if in_memory:
        raise ValueError(
            f"{run_dir} benchmarked in-memory data {in_memory} (run_bench(data=...)); a rerun "
            "can only reload registered data sets and files. Pass the same data again with "
            "run_bench(config, data=...) instead."
        )
    now = environment()
    changed = {
        k: (manifest["environment"].get(k), v)
        for k, v in now.items()
        if k != "platform" and manifest["environment"].get(k) != v
    }
    if changed:
        warnings.warn(f"rerun with other versions than recorded: {changed}", stacklevel=2)
    config = config_from_json(manifest["config"])
    run = {**manifest["run"], **overrides}
    target = Path(out_dir) if out_dir is not None else Path(run_dir) / "rerun"
    result = run_bench(config, out_dir=target, resume=False, **run)
    recorded = {d["name"]: d["checksum"] for d in manifest["data"]}
    loaded = result.data_checksums
    if recorded != loaded:
        warnings.warn(
            f"data checksums differ from the record: recorded {recorded}, now {loaded}",
            stacklevel=2,
        )
    return result
