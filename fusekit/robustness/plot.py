"""Plot a :func:`~fusekit.robustness.robustness_curve` table (matplotlib, imported on use)."""

from __future__ import annotations

from typing import Any

import pandas as pd


def plot_robustness(table: pd.DataFrame, ax: Any = None, title: str | None = None) -> Any:
    """One line per (modality, corruption): mean score against level, +/- one std shaded.

    Returns the matplotlib ``Figure`` (``fig.savefig("curve.png")`` to write it).
    """
    try:
        import matplotlib

        if ax is None:
            matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError(
            "plot_robustness needs matplotlib: pip install matplotlib (fusekit's 'plot' extra)."
        ) from error
    required = {"modality", "corruption", "level", "metric", "mean", "std"}
    missing = required - set(table.columns)
    if missing:
        raise ValueError(
            f"table lacks the columns {sorted(missing)}; pass the DataFrame robustness_curve "
            "returned."
        )
    if ax is None:
        figure, ax = plt.subplots(figsize=(5, 3.5))
    else:
        figure = ax.figure
    corruptions = table["corruption"].unique()
    for (modality, corruption), curve in table.groupby(["modality", "corruption"], sort=False):
        curve = curve.sort_values("level")
        label = modality if len(corruptions) == 1 else f"{modality} ({corruption})"
        (line,) = ax.plot(curve["level"], curve["mean"], marker="o", label=label)
        ax.fill_between(
            curve["level"],
            curve["mean"] - curve["std"],
            curve["mean"] + curve["std"],
            color=line.get_color(),
            alpha=0.2,
        )
    ax.set_xlabel("level" if len(corruptions) > 1 else f"{corruptions[0]} level")
    ax.set_ylabel(str(table["metric"].iloc[0]))
    ax.legend(title="corrupted modality")
    if title:
        ax.set_title(title)
    figure.tight_layout()
    return figure
