"""PNG plots of a bench (matplotlib with the Agg backend, imported on use).

Per data set: score against mean fit time (one point per configuration, ± std bars), one
robustness figure per corruption (a panel per modality, score against level, one line per
configuration, the ``top`` best clean configurations only) and a removed-modality heatmap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from fusekit.bench.leaderboard import CONFIG, cross, missing_table, shown_columns
from fusekit.bench.reference import is_reference


@dataclass(frozen=True)
class Figure:
    """A written plot: its title and file name (relative to the output directory)."""

    title: str
    file: str
    dataset: str


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (no display needed)."""
    try:
        import matplotlib
    except ImportError as error:
        raise ImportError(
            "bench plots need matplotlib: pip install matplotlib (fusekit's 'bench' extra)."
        ) from error
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_") or "data"


def config_name(row: pd.Series | dict, varying: list[str]) -> str:
    if is_reference(row["fusion"]):
        return str(row["fusion"])
    return " / ".join(str(row[c]) for c in varying) or str(row["fusion"])


def _varying(summary: pd.DataFrame) -> list[str]:
    return shown_columns(summary)


def pareto_front(table: pd.DataFrame) -> pd.Series:
    """True for configurations no other one beats on both score and fit time."""
    order = table.sort_values(["fit_time", "mean"], ascending=[True, False])
    best = order["mean"].cummax().shift(fill_value=-float("inf"))
    return (order["mean"] > best).reindex(table.index)


def plot_fit_time(summary: pd.DataFrame, dataset: str, path: Path, top: int = 10) -> None:
    """Score against fit time: every configuration with the Pareto front (fastest for its score)
    on the left; the ``top`` best on the right, numbered by rank, with the numbers' names in a
    key beside the panel (long names next to their points overlapped)."""
    plt = pyplot()
    table = summary[(summary["dataset"] == dataset) & (summary["n"] > 0)]
    varying = _varying(table)
    front = pareto_front(table)
    panels = [table] if len(table) <= top else [table, table.head(top)]
    figure, axes = plt.subplots(
        1, len(panels), figsize=(5.5 * len(panels) + 2.5, 4.8), squeeze=False
    )
    axes = axes[0]
    for ax, shown in zip(axes, panels, strict=True):
        ax.errorbar(
            shown["fit_time"],
            shown["mean"],
            yerr=shown["std"],
            fmt="o",
            capsize=3,
            color="tab:gray",
            alpha=0.6,
            label="configuration (± std over folds)",
        )
        on_front = shown[front.reindex(shown.index)]
        ax.plot(on_front["fit_time"], on_front["mean"], "o-", color="tab:red", label="Pareto front")
        ax.set_xscale("log")
        ax.set_xlabel("mean fit time per fold (s, log scale)")
    labelled = table.head(top)
    key = []
    for rank, (_, row) in enumerate(labelled.iterrows(), start=1):
        axes[-1].annotate(
            str(rank),
            (row["fit_time"], row["mean"]),
            fontsize=7,
            xytext=(4, 4),
            textcoords="offset points",
        )
        key.append(f"{rank}  {config_name(row, varying)}")
    axes[-1].text(
        1.03, 1.0, "\n".join(key), transform=axes[-1].transAxes, va="top", ha="left", fontsize=7
    )
    axes[0].set_ylabel(f"{table['metric'].iloc[0]} (clean test folds)")
    axes[0].set_title("all configurations")
    if len(panels) > 1:
        axes[1].set_title(f"the {top} best")
    axes[0].legend(fontsize=7, loc="lower left")
    figure.suptitle(f"{dataset}: score vs fit time")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_robustness(
    results: pd.DataFrame,
    summary: pd.DataFrame,
    dataset: str,
    corruption: str,
    path: Path,
    top: int = 8,
) -> None:
    plt = pyplot()
    table = summary[(summary["dataset"] == dataset) & (summary["n"] > 0)].head(top)
    varying = _varying(summary[summary["dataset"] == dataset])
    rows = results[
        (results["dataset"] == dataset)
        & (results["corruption"] == corruption)
        & (results["status"] == "ok")
    ]
    modalities = list(dict.fromkeys(rows["modality"]))
    figure, axes = plt.subplots(
        1, len(modalities), figsize=(4.2 * len(modalities), 3.8), squeeze=False, sharey=True
    )
    for ax, modality in zip(axes[0], modalities, strict=True):
        for _, config in table.iterrows():
            mine = rows[
                (rows["modality"] == modality) & (rows[CONFIG] == config[CONFIG]).all(axis=1)
            ]
            curve = mine.groupby("level")["score"].mean()
            ax.plot(curve.index, curve.to_numpy(), marker="o", label=config_name(config, varying))
        ax.set_title(f"{corruption} on {modality}")
        ax.set_xlabel("level")
    axes[0][0].set_ylabel(str(table["metric"].iloc[0]) if len(table) else "score")
    axes[0][-1].legend(fontsize=7)
    figure.suptitle(dataset)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_missing(results: pd.DataFrame, dataset: str, path: Path) -> bool:
    table = missing_table(results[results["dataset"] == dataset])
    if table.empty:
        return False
    plt = pyplot()
    table = table.droplevel("dataset")
    table = table.loc[table.mean(axis=1).sort_values(ascending=False).index]
    fusekit = [i for i in table.index if not is_reference(i[0])]
    varying = [c for k, c in enumerate(CONFIG) if len({i[k] for i in fusekit}) > 1] or ["fusion"]
    labels = [
        i[0]
        if is_reference(i[0])
        else " / ".join(str(v) for v, c in zip(i, CONFIG, strict=True) if c in varying)
        for i in table.index
    ]
    figure, ax = plt.subplots(figsize=(1.2 * table.shape[1] + 3, 0.35 * len(table) + 1.5))
    image = ax.imshow(table.to_numpy(), aspect="auto", cmap="viridis")
    ax.set_xticks(range(table.shape[1]), [f"-{c}" for c in table.columns], rotation=30)
    ax.set_yticks(range(len(table)), labels, fontsize=7)
    for (i, j), value in pd.DataFrame(table.to_numpy()).stack().items():
        ax.text(
            j,
            i,
            f"{value:.2f}",
            ha="center",
            va="center",
            fontsize=6,
            color="k" if value > table.to_numpy().mean() else "w",
        )
    figure.colorbar(image, ax=ax)
    ax.set_title(f"{dataset}\nscore with modalities removed at test time", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def plot_critical_difference(summary: pd.DataFrame, path: Path) -> bool:
    """The critical-difference diagram across data sets (scikit-posthocs), if there is one."""
    result = cross(summary)
    if result is None:
        return False
    import scikit_posthocs as sp

    plt = pyplot()
    figure, ax = plt.subplots(figsize=(12, 0.28 * len(result.ranks) + 1.8))
    sp.critical_difference_diagram(result.ranks, result.nemenyi, ax=ax, label_props={"fontsize": 7})
    ax.set_title(
        f"average rank over {result.n_datasets} data sets ({summary['criterion'].iloc[0]}); "
        f"Friedman p = {result.friedman_p:.3g}; bars join configurations the Nemenyi test "
        "does not separate",
        fontsize=8,
    )
    figure.savefig(path, dpi=110, bbox_inches="tight")  # the labels stand outside the axes
    plt.close(figure)
    return True


CROSS = "(across data sets)"


def write_plots(results: pd.DataFrame, summary: pd.DataFrame, out_dir: Path) -> list[Figure]:
    """Every plot of the bench into ``out_dir``; returns what was written. Names are drawn as
    plain text: ``$...$`` in a data set or component name is not parsed as mathtext (a name
    such as ``d$\\frac{$`` would otherwise stop the report from being written)."""
    with pyplot().rc_context({"text.parse_math": False, "text.usetex": False}):
        return _write_plots(results, summary, out_dir)


def _write_plots(results: pd.DataFrame, summary: pd.DataFrame, out_dir: Path) -> list[Figure]:
    figures = []
    if plot_critical_difference(summary, out_dir / "critical_difference.png"):
        figures.append(Figure("critical-difference diagram", "critical_difference.png", CROSS))
    ok = results[results["status"] == "ok"]
    for dataset in dict.fromkeys(summary["dataset"]):
        if not (summary[summary["dataset"] == dataset]["n"] > 0).any():
            continue
        name = f"fit_time_{slug(dataset)}.png"
        plot_fit_time(summary, dataset, out_dir / name)
        figures.append(Figure(f"{dataset}: score vs fit time", name, dataset))
        mine = ok[(ok["dataset"] == dataset) & (ok["scenario"] == "corruption")]
        for corruption in dict.fromkeys(mine["corruption"]):
            name = f"robustness_{slug(dataset)}_{slug(corruption)}.png"
            plot_robustness(ok, summary, dataset, corruption, out_dir / name)
            figures.append(Figure(f"{dataset}: {corruption} robustness", name, dataset))
        name = f"missing_{slug(dataset)}.png"
        if plot_missing(ok, dataset, out_dir / name):
            figures.append(Figure(f"{dataset}: modalities removed at test time", name, dataset))
    return figures
