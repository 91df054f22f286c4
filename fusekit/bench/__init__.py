"""``fusekit bench``: cross-validated leaderboards, robustness sweeps and an HTML report.

>>> from fusekit.bench import run_bench, Sweep
>>> result = run_bench(datasets=["mfeat:views=fou,kar"], fusion=["concat", "late"],
...                    sweeps=[Sweep("gaussian", levels=(0, 1, 2))], missing=True, n_jobs=2)
>>> print(result.leaderboard)

Pieces: :mod:`~fusekit.bench.config` (settings, grid, units), :mod:`~fusekit.bench.data`
(loaders and files), :mod:`~fusekit.bench.runner` (one fit and its evaluations),
:mod:`~fusekit.bench.backends` (serial / forked processes / joblib / Dask),
:mod:`~fusekit.bench.store`
(``results.csv`` and resume), :mod:`~fusekit.bench.outdir` (one bench per output directory),
:mod:`~fusekit.bench.stopping` (Ctrl-C and SIGTERM), :mod:`~fusekit.bench.leaderboard`,
:mod:`~fusekit.bench.plots`,
:mod:`~fusekit.bench.report`, :mod:`~fusekit.bench.cli`, :mod:`~fusekit.bench.stats` (the
verdicts' tests), :mod:`~fusekit.bench.reference` (scikit-learn reference rows),
:mod:`~fusekit.bench.aliases` (one name per method), :mod:`~fusekit.bench.tuning` (nested CV),
:mod:`~fusekit.bench.manifest` (``manifest.json``; :func:`rerun` runs one again). See
``docs/bench.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fusekit.bench.settings import BenchConfig, Sweep

if TYPE_CHECKING:
    from fusekit.bench.api import BenchResult, rerun, run_bench

__all__ = ["BenchConfig", "BenchResult", "Sweep", "rerun", "run_bench"]


def __getattr__(name: str) -> Any:
    """``run_bench``, ``rerun`` and ``BenchResult`` import the bench (torch, pandas) on first use
    (PEP 562), so ``fusekit bench --help`` does not."""
    if name not in ("BenchResult", "rerun", "run_bench"):
        raise AttributeError(f"module 'fusekit.bench' has no attribute {name!r}")
    from fusekit.bench import api

    value = getattr(api, name)
    globals()[name] = value
    return value
