"""What a bench writes is inert and whole: names holding HTML or Markdown are shown as text in
``leaderboard.md`` and ``report.html``, and a failed write leaves the previous file intact."""

import json
import os
import re
from html.parser import HTMLParser

import pandas as pd
import pytest

from fusekit.bench import BenchConfig, run_bench
from fusekit.bench.leaderboard import markdown_text, summarize, to_markdown
from fusekit.bench.manifest import MANIFEST, write_manifest
from fusekit.bench.report import write_report
from fusekit.bench.runner import COLUMNS
from fusekit.builtin.concat_fusion import ConcatFusion
from fusekit.datasets import make_multimodal_classification

DATASET = "<script>alert(1)</script>"
HOSTILE = ["<img src=x onerror=alert(1)>", "a|b", "`code`", "**bold**"]
#: Every tag a report may contain (the page's own markup); anything else came from a name.
REPORT_TAGS = {
    "html", "head", "meta", "title", "style", "body", "h1", "h2", "table", "thead", "tbody",
    "tr", "th", "td", "p", "ul", "li", "a", "figure", "img", "figcaption",
}  # fmt: skip


def _results() -> pd.DataFrame:
    """Two folds of four configurations with hostile names, one of them failed."""
    rows = []
    for position, fusion in enumerate([*HOSTILE, "broken"]):
        for fold in range(2):
            row = dict.fromkeys(COLUMNS)
            row.update(
                unit_id=f"{position}-{fold}",
                dataset=DATASET,
                fusion=fusion,
                weighting="none",
                calibration="none",
                backbone="mlp",
                repeat=0,
                fold=fold,
                scenario="clean",
                metric="accuracy",
                score=0.5 + 0.1 * position + 0.01 * fold,
                fit_time=1.0,
                predict_time=0.01,
                n_train=40,
                n_test=20,
                status="ok" if fusion != "broken" else "error",
                error="" if fusion != "broken" else "ValueError: <b>bad</b> | `x`",
            )
            rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert(1)&gt;"),
        ("a|b", "a\\|b"),
        ("`code`", "\\`code\\`"),
        ("**bold**", "\\*\\*bold\\*\\*"),
        ("[link](http://example.org)", "\\[link\\](http://example.org)"),
        ("R&D", "R&amp;D"),
        ("two\nlines", "two lines"),
        ("_x_", "\\_x\\_"),
        ("hist_gb", "hist_gb"),  # inside a word `_` emphasises nothing: left readable
        ("concat+none+none+mlp", "concat+none+none+mlp"),
    ],
)
def test_markdown_text_makes_a_name_literal(text, expected):
    assert markdown_text(text) == expected


def _unescaped_pipes(line: str) -> int:
    return len(re.findall(r"(?<!\\)\|", line))


def test_leaderboard_md_shows_hostile_names_as_text():
    markdown = to_markdown(summarize(_results()))
    for raw in (DATASET, "<img", "<b>", "**bold**"):
        assert raw not in markdown
    assert "## &lt;script&gt;alert(1)&lt;/script&gt;" in markdown
    assert "&lt;img src=x onerror=alert(1)&gt;" in markdown and "a\\|b" in markdown
    table = [line for line in markdown.splitlines() if line.startswith("|")]
    assert len(table) == 2 + 4  # header, rule, one row per finished configuration
    assert {_unescaped_pipes(line) for line in table} == {_unescaped_pipes(table[0])}
    assert "ValueError: &lt;b&gt;bad&lt;/b&gt; \\| \\`x\\`" in markdown  # the failure line


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.handlers: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.handlers += [name for name, _ in attrs if name.startswith("on")]


def _parse(html_text: str) -> _Tags:
    parser = _Tags()
    parser.feed(html_text)
    return parser


def test_report_html_shows_hostile_names_and_settings_as_text(tmp_path):
    results = _results()
    path = write_report(tmp_path, results, summarize(results), [], {"note <i>": "<b>setting</b>"})
    page = path.read_text()
    parsed = _parse(page)
    assert parsed.tags <= REPORT_TAGS and not parsed.handlers
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;b&gt;bad&lt;/b&gt;" in page


def test_a_bench_with_hostile_data_set_and_component_names_writes_inert_files(tmp_path):
    # markup, a cell separator and mathtext that matplotlib cannot parse ($\\sqrt{$)
    hostile = type("F<b>x</b>|y$\\sqrt{$", (ConcatFusion,), {})
    X, y = make_multimodal_classification(
        n_samples=24, n_features=[3, 2], n_classes=2, names=["a", "b"], random_state=0
    )
    run_bench(
        out_dir=tmp_path,
        data={"<i>d</i>$\\frac{$": (X, y)},
        fusion=[hostile],
        datasets=(),
        max_epochs=1,
        folds=2,
        batch_size=32,
        references=False,
        quiet=True,
        backend="serial",
    )
    written = {p.name for p in tmp_path.iterdir()}
    assert {"results.csv", "leaderboard.md", "report.html", "manifest.json"} <= written
    assert any(name.startswith("fit_time_") for name in written)  # the plot was drawn
    markdown = (tmp_path / "leaderboard.md").read_text()
    assert "<b>" not in markdown and "<i>" not in markdown
    assert "F&lt;b&gt;x&lt;/b&gt;\\|y$\\\\sqrt{$" in markdown
    assert "## &lt;i&gt;d&lt;/i&gt;$\\\\frac{$" in markdown
    parsed = _parse((tmp_path / "report.html").read_text())
    assert parsed.tags <= REPORT_TAGS and not parsed.handlers


def _fail_fsync(monkeypatch):
    def full(descriptor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)


def test_manifest_write_that_fails_keeps_the_previous_manifest(tmp_path, monkeypatch):
    run = {"backend": "serial", "n_jobs": 1, "scheduler": None}
    write_manifest(tmp_path, BenchConfig(datasets=(), folds=3), [], run)
    before = (tmp_path / MANIFEST).read_bytes()
    _fail_fsync(monkeypatch)
    with pytest.raises(OSError, match="No space left on device"):
        write_manifest(tmp_path, BenchConfig(datasets=(), folds=5), [], run)
    assert (tmp_path / MANIFEST).read_bytes() == before
    assert json.loads(before)["config"]["folds"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST]  # no temporary left


def test_report_write_that_fails_keeps_the_previous_report(tmp_path, monkeypatch):
    results = _results()
    write_report(tmp_path, results, summarize(results), [], {"run": "first"})
    before = (tmp_path / "report.html").read_bytes()
    _fail_fsync(monkeypatch)
    with pytest.raises(OSError, match="No space left on device"):
        write_report(tmp_path, results, summarize(results), [], {"run": "second"})
    assert (tmp_path / "report.html").read_bytes() == before and b"first" in before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]
