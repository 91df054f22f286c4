"""``report.html``: one self-contained page (no network, no external files needed).

Per data set: the leaderboard in verdict groups (group 1, tied with the best, highlighted;
reference rows in italics) with its test named, then the plots; then the cross-data-set ranking
with its critical-difference diagram (or why there is none). Every plot is embedded as a base64
``data:`` image *and* linked to its PNG next to the page
(``<a href="fit_time_mfeat.png">``), so the page works when mailed alone and each figure it shows
can be traced to a file. Leaderboards and the removed-modality table are HTML tables; failed
configurations are listed with their error.

The page is inert: every name, message and setting is HTML-escaped (``html.escape``; the pandas
tables with ``to_html(escape=True)``), so a data set or component name holding markup is shown as
text. It is written atomically (:mod:`fusekit.atomic`).
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from fusekit.atomic import atomic_write_text
from fusekit.bench.leaderboard import (
    CONFIG,
    FEW_FOLDS,
    cells,
    cross_section,
    extra_columns,
    folds_text,
    header,
    importance_table,
    interaction_kind,
    interaction_table,
    legend,
    low_power,
    missing_table,
    shown_columns,
    training_warnings,
)
from fusekit.bench.plots import CROSS, Figure
from fusekit.bench.stats import ROPE, WITHIN_TEST

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f0f0f0; } td.name { text-align: left; }
tr.best td { font-weight: bold; background: #e8f5e9; }
tr.reference td { font-style: italic; color: #444; }
figure { margin: 1em 0; } img { max-width: 100%; border: 1px solid #ddd; }
.error { color: #b00020; font-family: monospace; font-size: 0.85em; text-align: left; }
"""


def _table(summary: pd.DataFrame) -> str:
    shown = shown_columns(summary)
    extras = extra_columns(summary)
    head = [*header(summary, shown, extras), "failed"]
    folds = int(summary["n_paired"].max()) if (summary["n"] > 0).any() else 0
    out = [
        f"<p>Ranked by {html.escape(str(summary['criterion'].iloc[0]))} over {folds} paired "
        "folds, in groups of configurations not significantly worse than the group's first "
        f"({html.escape(WITHIN_TEST)}).</p>"
    ]
    if 0 < folds < FEW_FOLDS:
        out.append(f"<p>{html.escape(low_power(folds))}</p>")
    out.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>")
    for _, row in summary[summary["n"] > 0].iterrows():
        classes = ["best"] if row["group"] == 1 else []
        classes += ["reference"] if row["reference"] else []
        css = f' class="{" ".join(classes)}"' if classes else ""
        texts = cells(row, shown, extras)
        texts[-1] = folds_text(row)  # failures get their own column here
        failed = str(row["failed"] or "")
        names = set(range(2, 2 + len(shown)))
        out.append(
            f"<tr{css}>"
            + "".join(
                f'<td class="name">{html.escape(t)}</td>'
                if i in names
                else f"<td>{html.escape(t)}</td>"
                for i, t in enumerate([*texts, failed])
            )
            + "</tr>"
        )
    rope = float(summary["rope"].iloc[0]) if "rope" in summary else ROPE
    text = legend(extras, bool(summary["reference"].any()), rope)
    out.append(f"</table><p>{html.escape(text)}</p>")
    return "\n".join(out)


def _cross(summary: pd.DataFrame, figures: Sequence[Figure], out_dir: Path) -> str:
    prose, rows = cross_section(summary)
    parts = ["<h2>Across data sets</h2>"] + [f"<p>{html.escape(p)}</p>" for p in prose]
    if rows:
        parts.append("<table>")
        for i, values in enumerate(rows):
            tag = "th" if i == 0 else "td"
            parts.append(
                "<tr>" + "".join(f"<{tag}>{html.escape(v)}</{tag}>" for v in values) + "</tr>"
            )
        parts.append("</table>")
    parts += [_figure(out_dir, f) for f in figures if f.dataset == CROSS]
    return "\n".join(parts)


def _failures(results: pd.DataFrame) -> str:
    failed = results[results["status"] != "ok"]
    if failed.empty:
        return ""
    rows = failed.groupby(["dataset", *CONFIG], sort=False).agg(
        folds=("fold", "size"), error=("error", "first")
    )
    out = [
        "<h2>Failed configurations</h2><table><tr><th>data set</th><th>configuration</th>"
        "<th>folds</th><th>error</th></tr>"
    ]
    for key, row in rows.iterrows():
        name = " / ".join(str(k) for k in key[1:])
        out.append(
            f'<tr><td class="name">{html.escape(key[0])}</td><td class="name">'
            f"{html.escape(name)}</td><td>{row['folds']}</td>"
            f'<td class="error">{html.escape(row["error"])}</td></tr>'
        )
    out.append("</table>")
    return "\n".join(out)


def _interactions(results: pd.DataFrame) -> str:
    """Per data set, the pairwise Shapley interaction of each pair of modalities (mean over
    folds) with its kind: redundant (< 0) or complementary (> 0)."""
    table = interaction_table(results)
    if table.empty:
        return ""
    out = [
        "<h2>Modality interactions: pairwise Shapley interactions of the test score (mean over "
        "folds)</h2>",
        "<p>From the same removed-modality scores as the importance table. Negative: "
        "<b>redundant</b> (each modality of the pair adds less once the other is present: "
        "shared information); positive: <b>complementary</b> (together they add more than "
        "apart).</p>",
    ]
    for dataset, rows in table.groupby(level="dataset", sort=False):
        rows = rows.dropna(axis=1, how="all")
        out.append(f"<h3>{html.escape(str(dataset))}</h3><table><tr><th>configuration</th>")
        out.append("".join(f"<th>{html.escape(str(pair))}</th>" for pair in rows.columns))
        out.append("</tr>")
        for key, values in rows.iterrows():
            name = "+".join(str(k) for k in key[1:])
            texts = [
                f"{value:+.3f} {interaction_kind(value)}" if pd.notna(value) else ""
                for value in values
            ]
            out.append(
                f'<tr><td class="name">{html.escape(name)}</td>'
                + "".join(f"<td>{html.escape(t)}</td>" for t in texts)
                + "</tr>"
            )
        out.append("</table>")
    return "\n".join(out)


def _figure(out_dir: Path, figure: Figure) -> str:
    payload = base64.b64encode((out_dir / figure.file).read_bytes()).decode()
    title = html.escape(figure.title)
    return (
        f'<figure><a href="{html.escape(figure.file)}"><img alt="{title}" '
        f'src="data:image/png;base64,{payload}"></a><figcaption>{title} '
        f'(<a href="{html.escape(figure.file)}">{html.escape(figure.file)}</a>)</figcaption>'
        "</figure>"
    )


def write_report(
    out_dir: Path,
    results: pd.DataFrame,
    summary: pd.DataFrame,
    figures: Sequence[Figure],
    info: Mapping[str, Any],
) -> Path:
    """Write ``out_dir/report.html`` and return its path."""
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>fusekit bench report</title>",
        f"<style>{STYLE}</style></head><body><h1>fusekit bench report</h1>",
        "<table>"
        + "".join(
            f'<tr><th>{html.escape(str(k))}</th><td class="name">{html.escape(str(v))}</td></tr>'
            for k, v in info.items()
        )
        + "</table>",
    ]
    for dataset, table in summary.groupby("dataset", sort=False):
        parts.append(f"<h2>{html.escape(str(dataset))}</h2>")
        parts.append(_table(table))
        warnings = training_warnings(table[table["n"] > 0], shown_columns(table))
        if warnings:
            items = "".join(f"<li>{html.escape(line[2:])}</li>" for line in warnings if line)
            parts.append(f"<ul class='warning'>{items}</ul>")
        parts += [_figure(out_dir, f) for f in figures if f.dataset == dataset]
    parts.append(_cross(summary, figures, out_dir))
    missing = missing_table(results)
    if not missing.empty:
        parts.append(
            "<h2>Score with modalities removed at test time (mean over folds)</h2><p>Each "
            "column names the modalities <b>removed</b> (the others present).</p>"
        )
        missing = missing.rename(columns=lambda removed: f"without {removed}")
        parts.append(missing.round(3).to_html(border=0, escape=True))
    importance = importance_table(results)
    if not importance.empty:
        parts.append(
            "<h2>Modality importance: Shapley values of the test score over the subsets of "
            "modalities present (absent = all-NaN rows; mean over folds)</h2>"
            "<p>Each row sums to its clean score minus its score with every modality absent. A "
            "modality with a value near 0 is one the configuration does not rely on at test time "
            "(reliance under its own absent-handling, not causal importance).</p>"
        )
        parts.append(importance.round(3).to_html(border=0, escape=True))
    parts.append(_interactions(results))
    parts.append(_failures(results))
    parts.append(
        "<p>Raw numbers: <a href='results.csv'>results.csv</a>; "
        "leaderboard: <a href='leaderboard.md'>leaderboard.md</a>.</p></body></html>"
    )
    path = out_dir / "report.html"
    atomic_write_text(path, "\n".join(parts))
    return path
