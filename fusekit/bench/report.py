"""``report.html``: one self-contained page (no network, no external files needed).

Every plot is embedded as a base64 ``data:`` image *and* linked to its PNG next to the page
(``<a href="fit_time_mfeat.png">``), so the page works when mailed alone and each figure it shows
can be traced to a file. Leaderboards and the removed-modality table are HTML tables; failed
configurations are listed with their error.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from fusekit.bench.leaderboard import CONFIG, LEGEND, missing_table
from fusekit.bench.plots import Figure

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f0f0f0; } td.name { text-align: left; }
tr.best td { font-weight: bold; background: #e8f5e9; }
figure { margin: 1em 0; } img { max-width: 100%; border: 1px solid #ddd; }
.error { color: #b00020; font-family: monospace; font-size: 0.85em; text-align: left; }
"""


def _table(summary: pd.DataFrame) -> str:
    shown = [c for c in CONFIG if summary[c].nunique() > 1] or ["fusion"]
    extras = [c for c in ("robust", "missing") if c in summary and summary[c].notna().any()]
    metric = summary["metric"].dropna().iloc[0] if summary["metric"].notna().any() else "score"
    header = ["rank", *shown, metric, *extras, "fit s", "predict ms", "folds", "failed"]
    out = ["<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"]
    for _, row in summary[summary["n"] > 0].iterrows():
        css = ' class="best"' if row["rank"] == 1 else ""
        cells = [f"<td>{int(row['rank'])}</td>"]
        cells += [f'<td class="name">{html.escape(str(row[c]))}</td>' for c in shown]
        cells.append(f"<td>{row['mean']:.3f} ± {row['std']:.3f}</td>")
        cells += [f"<td>{row[c]:.3f}</td>" if pd.notna(row[c]) else "<td></td>" for c in extras]
        cells += [
            f"<td>{row['fit_time']:.2f}</td>",
            f"<td>{1000 * row['predict_time']:.1f}</td>",
            f"<td>{row['n']}</td>",
            f"<td>{row['failed'] or ''}</td>",
        ]
        out.append(f"<tr{css}>" + "".join(cells) + "</tr>")
    out.append(f"</table><p>{html.escape(LEGEND)}</p>")
    return "\n".join(out)


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
        parts += [_figure(out_dir, f) for f in figures if f.dataset == dataset]
    missing = missing_table(results)
    if not missing.empty:
        parts.append("<h2>Score with modalities removed at test time (mean over folds)</h2>")
        parts.append(missing.round(3).to_html(border=0))
    parts.append(_failures(results))
    parts.append(
        "<p>Raw numbers: <a href='results.csv'>results.csv</a>; "
        "leaderboard: <a href='leaderboard.md'>leaderboard.md</a>.</p></body></html>"
    )
    path = out_dir / "report.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
