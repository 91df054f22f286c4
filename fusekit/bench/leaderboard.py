"""Leaderboards from ``results.csv``: per data set, configurations ranked by mean clean score.

Columns: mean ± std of the clean test score over folds x repeats, the mean score over every
corruption level (``robust``) and over every removed-modality subset (``missing``) when those were
run, mean fit time (s) and predict time (ms, clean test fold). Ranks are ``min`` ranks of the mean
score (higher is better: sklearn scorers are all "greater is better"). Failed folds are counted; a
configuration that failed on every fold is listed under the table with its error.
"""

from __future__ import annotations

import pandas as pd

CONFIG = ["fusion", "weighting", "calibration", "backbone"]
LEGEND = (
    "robust: mean score over every corruption level (level 0 included) and corrupted modality; "
    "missing: mean score over every proper subset of modalities removed at test time; "
    "fit s / predict ms: wall-clock per fold (one torch thread), noisy on a busy machine."
)


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """One row per data set x configuration, ranked within each data set."""
    if results.empty:
        return pd.DataFrame(columns=["dataset", *CONFIG, "rank", "mean", "std", "n", "failed"])
    keys = ["dataset", *CONFIG]
    clean = results[results["scenario"] == "clean"]
    ok = clean[clean["status"] == "ok"]
    table = ok.groupby(keys, sort=False).agg(
        metric=("metric", "first"),
        mean=("score", "mean"),
        std=("score", lambda s: s.std(ddof=0)),
        n=("score", "size"),
        fit_time=("fit_time", "mean"),
        predict_time=("predict_time", "mean"),
    )
    failed = (
        clean[clean["status"] != "ok"]
        .groupby(keys, sort=False)
        .agg(failed=("status", "size"), error=("error", "first"))
    )
    table = table.join(failed, how="outer")
    for scenario, column in (("corruption", "robust"), ("missing", "missing")):
        rows = results[(results["scenario"] == scenario) & (results["status"] == "ok")]
        if not rows.empty:
            table[column] = rows.groupby(keys, sort=False)["score"].mean()
    table["failed"] = table["failed"].fillna(0).astype(int)
    table["n"] = table["n"].fillna(0).astype(int)
    table["error"] = table["error"].fillna("")
    table = table.reset_index()
    table["rank"] = table.groupby("dataset")["mean"].rank(ascending=False, method="min")
    table = table.sort_values(["dataset", "rank"], na_position="last", kind="stable")
    return table.reset_index(drop=True)


def _cells(row: pd.Series, shown: list[str], extras: list[str]) -> list[str]:
    cells = [str(int(row["rank"]))] + [str(row[c]) for c in shown]
    cells.append(f"{row['mean']:.3f} ± {row['std']:.3f}")
    cells += [f"{row[c]:.3f}" if pd.notna(row[c]) else "" for c in extras]
    cells += [f"{row['fit_time']:.2f}", f"{1000 * row['predict_time']:.1f}", str(row["n"])]
    if row["failed"]:
        cells[-1] += f" ({row['failed']} failed)"
    return cells


def to_markdown(summary: pd.DataFrame, title: str = "fusekit bench leaderboard") -> str:
    """Markdown: one ranked table per data set, the best row in bold, failures listed after."""
    lines = [f"# {title}", ""]
    for dataset, table in summary.groupby("dataset", sort=False):
        ranked = table[table["n"] > 0]
        broken = table[table["n"] == 0]
        fixed = [c for c in CONFIG if table[c].nunique() == 1]
        shown = [c for c in CONFIG if c not in fixed] or ["fusion"]
        extras = [c for c in ("robust", "missing") if c in table and table[c].notna().any()]
        metric = table["metric"].dropna().iloc[0] if table["metric"].notna().any() else "score"
        lines.append(f"## {dataset}")
        setting = ", ".join(f"{c}={table[c].iloc[0]}" for c in fixed if c not in shown)
        lines += [f"{metric}, mean ± std over folds{'; ' + setting if setting else ''}", ""]
        header = ["rank", *shown, metric, *extras, "fit s", "predict ms", "folds"]
        lines.append("| " + " | ".join(header) + " |")
        lines.append(
            "|"
            + "|".join(["---:"] + ["---"] * len(shown) + ["---:"] * (len(header) - len(shown) - 1))
            + "|"
        )
        for position, (_, row) in enumerate(ranked.iterrows()):
            cells = _cells(row, shown, extras)
            if position == 0 or row["rank"] == 1:
                cells = [f"**{cell}**" for cell in cells]
            lines.append("| " + " | ".join(cells) + " |")
        if extras:
            lines += ["", LEGEND]
        for _, row in broken.iterrows():
            name = ", ".join(str(row[c]) for c in shown)
            lines.append("")
            lines.append(f"- failed: {name} ({row['failed']} folds): {row['error'][:300]}")
        lines.append("")
    return "\n".join(lines)


def missing_table(results: pd.DataFrame) -> pd.DataFrame:
    """Mean score per configuration (rows) and removed modalities (columns), per data set."""
    rows = results[(results["scenario"] == "missing") & (results["status"] == "ok")]
    if rows.empty:
        return pd.DataFrame()
    return rows.pivot_table(
        index=["dataset", *CONFIG], columns="modality", values="score", aggfunc="mean"
    )
