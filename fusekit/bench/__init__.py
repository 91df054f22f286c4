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
:mod:`~fusekit.bench.manifest` (``manifest.json`` and ``--rerun``). See ``docs/bench.md``.
"""

from fusekit.bench.api import BenchResult, run_bench
from fusekit.bench.config import BenchConfig, Sweep

__all__ = ["BenchConfig", "BenchResult", "Sweep", "run_bench"]
