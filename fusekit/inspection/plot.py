"""Plot a :func:`~fusekit.inspection.modality_importance` table (matplotlib, imported on use)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def plot_modality_importance(table: pd.DataFrame, ax: Any = None) -> Any:
    """Horizontal bars, most important modality on top, ``std`` as error bars.

    Returns the matplotlib ``Figure`` (``fig.savefig("importance.png")`` to write it).
    """
    try:
        import matplotlib

        if ax is None:
            matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError(
            "plot_modality_importance needs matplotlib: pip install matplotlib (fusekit's 'plot' "
            "extra)."
        ) from error
    missing = {"modality", "importance", "std", "method", "metric"} - set(table.columns)
    if missing:
        raise ValueError(
            f"table lacks the columns {sorted(missing)}; pass the DataFrame modality_importance "
            "returned."
        )
    if ax is None:
        figure, ax = plt.subplots(figsize=(5, 0.6 + 0.4 * len(table)))
    else:
        figure = ax.figure
    ordered = table.sort_values("importance", kind="stable")  # barh draws bottom-up
    spread = ordered["std"].to_numpy(dtype=np.float64)
    ax.barh(
        ordered["modality"].astype(str),
        ordered["importance"],
        xerr=None if np.isnan(spread).all() else np.nan_to_num(spread),
        capsize=3,
        color="tab:blue",
    )
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel(f"contribution to {table['metric'].iloc[0]} ({table['method'].iloc[0]})")
    figure.tight_layout()
    return figure
