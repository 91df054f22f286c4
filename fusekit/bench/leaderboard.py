"""Leaderboards from ``results.csv``: per data set, configurations in groups of statistical ties.

Per configuration: the mean clean score ± std over folds x repeats, a 95 % interval of the ranking
criterion's mean that accounts for the overlapping training sets (Nadeau-Bengio corrected
resampled t, :mod:`fusekit.bench.stats`), the group (1: not significantly worse than the best,
by the corrected paired t-test on per-fold differences; 2: the best of the rest and its ties; ...),
the mean score over every corruption level (``robust``) and every removed-modality subset
(``missing``) when those were run, optionally the paired difference from a named baseline, and
mean fit (s) / predict (ms) time. The criterion (``rank_by``) is ``clean``, ``robust`` or
``missing``: each unit's score is its clean score, or the mean of its corruption / removal rows.
Reference rows (scikit-learn, :mod:`fusekit.bench.reference`) are named ``ref:...``.
Across data sets: average ranks, the Friedman test and the Nemenyi post-hoc test.

``leaderboard.md`` is inert text: every name and message in it goes through
:func:`markdown_text` (HTML special characters as entities, Markdown punctuation escaped).
"""

from __future__ import annotations

import html
import itertools
import re
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import pandas as pd

from fusekit.bench.reference import is_reference
from fusekit.bench.stats import (
    ACROSS_TEST,
    ALPHA,
    EQUIVALENCE_TEST,
    ROPE,
    WITHIN_TEST,
    CrossDataset,
    corrected_interval,
    corrected_ttest,
    cross_dataset,
    verdicts,
)

CONFIG = ["fusion", "weighting", "calibration", "backbone"]
CRITERIA = ("clean", "robust", "missing")
SCENARIO = {"clean": "clean", "robust": "corruption", "missing": "missing"}
LEGENDS = {
    "group": "group: 1 = not significantly worse than the best (tied with the best), 2 = tied "
    "with the best of the rest, ...; test: " + WITHIN_TEST + ".",
    "interval": "95 % CI: corrected interval of the ranking criterion's mean over folds x repeats.",
    "verdict": "vs best: equivalent = practically equivalent to the best, the paired difference "
    "shown inside the ROPE ({rope}); test: " + EQUIVALENCE_TEST + "; not worse = not "
    "significantly worse (group 1) without being shown equivalent; worse = significantly worse.",
    "folds": "folds: the folds a configuration finished; its mean ± std, interval and tests use "
    "those (a row with fewer than the paired folds says so: 4 of 5).",
    "robust": "robust: mean score over every corruption level (level 0 included) and corrupted "
    "modality.",
    "missing": "missing: mean score over every proper subset of modalities removed at test time.",
    "baseline": "vs baseline: mean paired per-fold difference from the baseline on the folds both "
    "finished, its corrected 95 % CI and p-value.",
    "reference": "ref:... rows are scikit-learn reference models on the same folds (logistic / "
    "hist_gb on all modalities concatenated; only <m>: logistic on one modality).",
    "time": "fit s / predict ms: wall-clock per fold (one thread), noisy on a busy machine.",
}


#: Markdown punctuation that changes how text in a table cell renders (CommonMark escapes it with
#: a backslash); ``_`` only where it can open or close emphasis (not inside a word: ``hist_gb``).
_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*\[\]|~!#]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def markdown_text(value: object) -> str:
    """``value`` as literal text in a Markdown table cell or heading: HTML special characters as
    entities (``<b>`` stays text, never markup), Markdown punctuation backslash-escaped
    (``|`` cannot split a cell, backticks and ``*`` format nothing), line breaks as spaces."""
    text = _CONTROL.sub(" ", str(value))
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", html.escape(text, quote=False))


def config_name(row: pd.Series | dict) -> str:
    """``concat+none+none+mlp``, or a reference row's ``ref:...`` name."""
    if is_reference(row["fusion"]):
        return str(row["fusion"])
    return "+".join(str(row[c]) for c in CONFIG)


def unit_scores(results: pd.DataFrame, criterion: str = "clean") -> pd.DataFrame:
    """One score per finished unit under ``criterion``: its clean score, or the mean of its
    corruption (``robust``) or removed-modality (``missing``) rows."""
    if criterion not in CRITERIA:
        raise ValueError(f"rank_by must be one of {list(CRITERIA)}, got {criterion!r}.")
    rows = results[(results["scenario"] == SCENARIO[criterion]) & (results["status"] == "ok")]
    keys = ["dataset", *CONFIG, "repeat", "fold"]
    return rows.groupby(keys, sort=False).agg(
        score=("score", "mean"), n_train=("n_train", "first"), n_test=("n_test", "first")
    )


def match_baseline(names: Sequence[str], baseline: str) -> str:
    """The configuration ``baseline`` names: ``concat+none`` matches ``concat+none+...``;
    ``ref:logistic`` a reference row. Exactly one must match."""
    parts = baseline.split("+")
    found = [n for n in names if n == baseline or n.split("+")[: len(parts)] == parts]
    if len(found) != 1:
        raise ValueError(
            f"baseline {baseline!r} must name exactly one configuration, it matches {found}; "
            f"configurations: {list(names)[:12]}."
        )
    return found[0]


def summarize(
    results: pd.DataFrame,
    rank_by: str = "clean",
    baseline: str | None = None,
    alpha: float = ALPHA,
    rope: float = ROPE,
) -> pd.DataFrame:
    """One row per data set x configuration, in verdict groups within each data set; ``rope``:
    the region of practical equivalence of the "equivalent to the best" verdict."""
    columns = ["dataset", *CONFIG, "name", "group", "tied", "rank", "mean", "std", "n", "failed"]
    if results.empty:
        return pd.DataFrame(columns=columns)
    keys = ["dataset", *CONFIG]
    clean = results[results["scenario"] == "clean"]
    ok = clean[clean["status"] == "ok"]
    ok = ok.assign(not_learning=_loss_did_not_fall(ok))
    table = ok.groupby(keys, sort=False).agg(
        metric=("metric", "first"),
        not_learning=("not_learning", "sum"),
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
    for criterion in ("robust", "missing"):
        rows = results[(results["scenario"] == SCENARIO[criterion]) & (results["status"] == "ok")]
        if not rows.empty:
            table[criterion] = rows.groupby(keys, sort=False)["score"].mean()
    table["failed"] = table["failed"].fillna(0).astype(int)
    table["n"] = table["n"].fillna(0).astype(int)
    table["not_learning"] = table["not_learning"].fillna(0).astype(int)
    table["error"] = table["error"].fillna("")
    table = table.reset_index()
    table["name"] = [config_name(row) for _, row in table.iterrows()]
    table["reference"] = table["fusion"].map(is_reference)
    if rank_by != "clean" and not (results["scenario"] == SCENARIO[rank_by]).any():
        flag = "--corrupt" if rank_by == "robust" else "--missing"
        raise ValueError(f"rank_by={rank_by!r} needs {SCENARIO[rank_by]} rows: run with {flag}.")
    scores = unit_scores(results, rank_by)
    parts = [
        _verdicts(table, scores, dataset, rank_by, baseline, alpha, rope)
        for dataset in dict.fromkeys(results["dataset"])  # the order of the run
        if dataset in set(table["dataset"])
    ]
    table = pd.concat(parts, ignore_index=True)
    table["criterion"] = rank_by
    table["rope"] = rope
    return table


def _loss_did_not_fall(rows: pd.DataFrame) -> pd.Series:
    """True for fits whose last epoch's task loss of the fused prediction is not below the
    first's (diverged or stalled). The task loss, not the total: a method's auxiliary terms may
    rise while it trains normally (UDML's stage-2 terms). Results without the task-loss columns
    (older files) fall back to the total loss; False where no loss was recorded (reference
    rows)."""
    for first_column, last_column in (
        ("train_task_loss_first", "train_task_loss_last"),
        ("train_loss_first", "train_loss_last"),
    ):
        if (
            first_column in rows
            and pd.to_numeric(rows[first_column], errors="coerce").notna().any()
        ):
            first = pd.to_numeric(rows[first_column], errors="coerce")
            last = pd.to_numeric(rows[last_column], errors="coerce")
            return last >= first
    return pd.Series(False, index=rows.index)


def _verdicts(
    table: pd.DataFrame,
    scores: pd.DataFrame,
    dataset: str,
    rank_by: str,
    baseline: str | None,
    alpha: float,
    rope: float,
) -> pd.DataFrame:
    mine = table[table["dataset"] == dataset].copy()
    if dataset not in scores.index.get_level_values("dataset"):  # every unit failed
        for column in ("score", "low", "high", "p_vs_best", "group", "rank"):
            mine[column] = np.nan
        return mine.assign(tied=False, equivalent=False, is_best=False, n_folds=0, n_paired=0)
    folds = scores.xs(dataset, level="dataset").reset_index()
    folds["name"] = [config_name(row) for _, row in folds.iterrows()]
    paired = folds.pivot_table(index=["repeat", "fold"], columns="name", values="score")
    n_train, n_test = float(folds["n_train"].mean()), float(folds["n_test"].mean())
    found = verdicts(paired, n_train, n_test, alpha, rope)
    mine["score"] = mine["name"].map({k: v.mean for k, v in found.items()})
    mine["low"] = mine["name"].map({k: v.low for k, v in found.items()})
    mine["high"] = mine["name"].map({k: v.high for k, v in found.items()})
    mine["p_vs_best"] = mine["name"].map({k: v.p_vs_best for k, v in found.items()})
    mine["group"] = mine["name"].map({k: v.group for k, v in found.items()})
    mine["tied"] = mine["name"].map({k: v.tied for k, v in found.items()}).fillna(False)
    mine["equivalent"] = (
        mine["name"].map({k: v.equivalent for k, v in found.items()}).fillna(False).astype(bool)
    )
    mine["n_folds"] = mine["name"].map({k: v.n_folds for k, v in found.items()}).fillna(0)
    mine["is_best"] = mine["name"].map({k: v.is_best for k, v in found.items()}).fillna(False)
    mine["n_paired"] = int(mine["n_folds"].max())
    if baseline is not None:
        base = match_baseline(list(paired.columns), baseline)
        deltas = {}
        for name in paired.columns:
            pair = paired[list(dict.fromkeys([name, base]))].dropna()  # folds both finished
            diff = pair[name] - pair[base]
            low, high = (
                corrected_interval(diff, n_train, n_test, alpha) if len(diff) > 1 else (np.nan,) * 2
            )
            p = corrected_ttest(diff, n_train, n_test) if len(diff) > 1 else np.nan
            deltas[name] = (float(diff.mean()), low, high, p)
        for i, column in enumerate(("delta", "delta_low", "delta_high", "p_baseline")):
            mine[column] = mine["name"].map({k: v[i] for k, v in deltas.items()})
        mine["baseline"] = base
    mine["rank"] = mine["score"].rank(ascending=False, method="min")
    mine = mine.sort_values(["group", "score"], ascending=[True, False], na_position="last")
    return mine


def cross(summary: pd.DataFrame) -> CrossDataset | None:
    """Average ranks, Friedman and Nemenyi over the data sets of ``summary`` (the criterion's
    means; configurations that ran on every data set), named by the components that vary."""
    finished = summary[summary["n"] > 0]
    fusekit = finished[~finished["reference"]]
    varying = [c for c in CONFIG if fusekit[c].nunique() > 1] or ["fusion"]
    short = [
        row["name"] if row["reference"] else "+".join(str(row[c]) for c in varying)
        for _, row in finished.iterrows()
    ]
    means = finished.assign(short=short).pivot_table(
        index="dataset", columns="short", values="score"
    )
    return cross_dataset(means)


FEW_FOLDS = 10


def low_power(folds: int) -> str:
    return (
        f"Only {folds} paired folds: the corrected test has little power, so many "
        "configurations tie with the best. To separate them, run more folds and repeats "
        "(--folds 5 --repeats 2 or more)."
    )


def _fmt(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if pd.notna(value) else ""


def shown_columns(table: pd.DataFrame) -> list[str]:
    """Component columns that vary within ``table`` (fusekit rows only)."""
    fusekit = table[~table["reference"]] if "reference" in table else table
    return [c for c in CONFIG if fusekit[c].nunique() > 1] or ["fusion"]


def verdict_text(row: pd.Series) -> str:
    """The ``vs best`` cell: ``best``, ``equivalent``, ``not worse`` or ``worse``."""
    if pd.isna(row.get("group")):
        return ""
    if row.get("is_best"):
        return "best"
    if row.get("equivalent"):
        return "equivalent"
    return "not worse" if row.get("tied") else "worse"


def folds_text(row: pd.Series) -> str:
    """``5``, or ``4 of 5`` for a row whose figures use fewer folds than the paired ones."""
    n, paired = int(row["n"]), int(row.get("n_paired", row["n"]) or 0)
    return f"{n} of {paired}" if 0 < n < paired else str(n)


def cells(row: pd.Series, shown: list[str], extras: list[str]) -> list[str]:
    """The text cells of one leaderboard row (markdown and HTML)."""
    group = f"{int(row['group'])}" if pd.notna(row["group"]) else ""
    out = [group, verdict_text(row)] + [str(row[c]) for c in shown]
    out.append(f"{row['mean']:.3f} ± {row['std']:.3f}")
    out.append(f"{_fmt(row['score'])} [{_fmt(row['low'])}, {_fmt(row['high'])}]")
    out += [_fmt(row[c]) for c in extras if c in ("robust", "missing")]
    if "delta" in extras:
        out.append(
            f"{row['delta']:+.3f} [{row['delta_low']:+.3f}, {row['delta_high']:+.3f}] "
            f"p={row['p_baseline']:.2g}"
            if pd.notna(row["delta"]) and pd.notna(row["delta_low"])
            else ""
        )
    out += [f"{row['fit_time']:.2f}", f"{1000 * row['predict_time']:.1f}", folds_text(row)]
    if row["failed"]:
        out[-1] += f" ({row['failed']} failed)"
    return out


def header(table: pd.DataFrame, shown: list[str], extras: list[str]) -> list[str]:
    metric = table["metric"].dropna().iloc[0] if table["metric"].notna().any() else "score"
    criterion = table["criterion"].iloc[0]
    names = {"robust": "robust", "missing": "missing", "delta": "vs baseline"}
    return [
        "group",
        "vs best",
        *shown,
        f"{metric} mean ± std",
        f"{criterion} 95 % CI",
        *(names[e] for e in extras),
        "fit s",
        "predict ms",
        "folds",
    ]


def extra_columns(table: pd.DataFrame) -> list[str]:
    extras = [c for c in ("robust", "missing") if c in table and table[c].notna().any()]
    return extras + (["delta"] if "delta" in table and table["delta"].notna().any() else [])


def legend(extras: list[str], has_reference: bool, rope: float = ROPE) -> str:
    keys = ["group", "verdict", "interval", *extras]
    keys = [("baseline" if k == "delta" else k) for k in keys]
    keys += ["reference"] if has_reference else []
    texts = [LEGENDS[k] for k in [*keys, "time", "folds"]]
    return " ".join(t.replace("{rope}", f"±{rope:g}") for t in texts)


def to_markdown(
    summary: pd.DataFrame,
    title: str = "fusekit bench leaderboard",
    notes: Sequence[str] = (),
) -> str:
    """Markdown: one grouped table per data set (group 1 in bold), failures listed after, then
    the cross-data-set ranking; ``notes`` (e.g. the aliases dropped) under the title."""
    lines = [f"# {markdown_text(title)}", "", *map(markdown_text, notes), *([""] if notes else [])]
    for dataset, table in summary.groupby("dataset", sort=False):
        ranked = table[table["n"] > 0]
        broken = table[table["n"] == 0]
        shown = shown_columns(table)
        fusekit = table[~table["reference"]]
        fixed = [c for c in CONFIG if c not in shown and fusekit[c].nunique() == 1]
        extras = extra_columns(table)
        lines.append(f"## {markdown_text(dataset)}")
        setting = ", ".join(f"{c}={markdown_text(fusekit[c].iloc[0])}" for c in fixed)
        folds = int(ranked["n_paired"].max()) if len(ranked) else 0
        lines += [
            f"ranked by {table['criterion'].iloc[0]} over {folds} paired folds"
            f"{'; ' + setting if setting else ''}",
            "",
        ]
        if 0 < folds < FEW_FOLDS:
            lines += [low_power(folds), ""]
        head = header(table, shown, extras)
        lines.append("| " + " | ".join(map(markdown_text, head)) + " |")
        lines.append(
            "|"
            + "|".join(
                ["---:", "---"] + ["---"] * len(shown) + ["---:"] * (len(head) - len(shown) - 2)
            )
            + "|"
        )
        for _, row in ranked.iterrows():
            row_cells = [markdown_text(cell) for cell in cells(row, shown, extras)]
            if row["group"] == 1:
                row_cells = [f"**{cell}**" for cell in row_cells]
            lines.append("| " + " | ".join(row_cells) + " |")
        rope = float(table["rope"].iloc[0]) if "rope" in table else ROPE
        lines += ["", markdown_text(legend(extras, bool(table["reference"].any()), rope))]
        lines += training_warnings(ranked, shown, markdown_text)
        for _, row in broken.iterrows():
            name = ", ".join(markdown_text(row[c]) for c in shown)
            error = markdown_text(row["error"][:300])
            lines.append("")
            lines.append(f"- failed: {name} ({row['failed']} folds): {error}")
        lines.append("")
    lines += cross_markdown(summary)
    return "\n".join(lines)


def training_warnings(
    table: pd.DataFrame, shown: list[str], text: Callable[[object], str] = str
) -> list[str]:
    """One line per configuration with folds whose training loss did not fall: its score is a
    statement about that training (lr, epochs in ``results.csv``), not about the method.
    ``text`` renders the names (:func:`markdown_text` for Markdown; ``str`` for a caller that
    escapes the whole line)."""
    lines = []
    for _, row in table[table["not_learning"] > 0].iterrows():
        name = ", ".join(text(row[c]) for c in shown)
        lines.append(
            f"- training loss did not fall: {name} in {int(row['not_learning'])} of {row['n']} "
            "folds (the last epoch's task loss of the fused prediction not below the first's: "
            "diverged or stalled; see `lr`, `n_epochs` and `train_task_loss_*` in results.csv)"
        )
    return ["", *lines] if lines else []


def cross_section(summary: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """The cross-data-set section as plain text: its paragraphs and its table (header first;
    no table when there is no ranking), for :func:`cross_markdown` and the HTML report."""
    n_datasets = summary["dataset"].nunique()
    result = cross(summary) if n_datasets >= 2 else None
    if result is None:
        return [
            f"This run has {n_datasets} data set(s) (with at least 3 configurations run on "
            "every one): the cross-data-set ranking (Friedman, Nemenyi) needs at least 2, and "
            "has little power below about 5."
        ], []
    prose = [
        f"{ACROSS_TEST}; {result.n_datasets} data sets (few: the tests have little power below "
        f"about 5). Friedman p = {result.friedman_p:.3g}."
    ]
    rows = [
        [
            "average rank",
            "configuration",
            "not significantly different from the first (Nemenyi)",
        ]
    ]
    first = result.ranks.index[0]
    for name, rank in result.ranks.items():
        same = "yes" if result.nemenyi.loc[first, name] >= ALPHA else "no"
        rows.append([f"{rank:.2f}", str(name), same])
    return prose, rows


def cross_markdown(summary: pd.DataFrame) -> list[str]:
    """The cross-data-set section: average ranks, Friedman and Nemenyi, or why there is none."""
    prose, rows = cross_section(summary)
    lines = ["## Across data sets", ""]
    for paragraph in prose:
        lines += [markdown_text(paragraph), ""]
    if rows:
        lines.append("| " + " | ".join(map(markdown_text, rows[0])) + " |")
        lines.append("|---:|---|---|")
        lines += ["| " + " | ".join(map(markdown_text, row)) + " |" for row in rows[1:]]
        lines.append("")
    return lines


def missing_table(results: pd.DataFrame) -> pd.DataFrame:
    """Mean score per configuration (rows) and removed modalities (columns), per data set."""
    rows = results[(results["scenario"] == "missing") & (results["status"] == "ok")]
    if rows.empty:
        return pd.DataFrame()
    return rows.pivot_table(
        index=["dataset", *CONFIG], columns="modality", values="score", aggfunc="mean"
    )


def importance_table(results: pd.DataFrame) -> pd.DataFrame:
    """Shapley value of each modality for the test score, per data set x configuration (rows) and
    modality (columns): mean over folds and repeats.

    Per fold, the game's value of a set ``S`` of present modalities is the test score with the
    others removed (all-NaN rows): ``v(N)`` the clean score, ``v(S)`` the ``missing`` row that
    removed ``N \\ S``, ``v({})`` the ``empty`` row. Exact Shapley values
    (:func:`fusekit.inspection.exact_shapley`) sum to ``v(N) - v({})`` in every fold. Folds
    without the ``empty`` row (results of older runs) are left out.
    """
    from fusekit.inspection import exact_shapley

    records = []
    for key, names, value in fold_games(results):
        for name, phi in zip(names, exact_shapley(value, len(names)), strict=True):
            records.append(
                {**dict(zip(GAME_KEYS, key, strict=True)), "modality": name, "value": phi}
            )
    if not records:
        return pd.DataFrame()
    table = pd.DataFrame.from_records(records)
    return table.pivot_table(
        index=["dataset", *CONFIG], columns="modality", values="value", aggfunc="mean", sort=False
    )


GAME_KEYS = ["dataset", *CONFIG, "repeat", "fold"]


def fold_games(
    results: pd.DataFrame,
) -> Iterator[tuple[tuple, list[str], Callable[[frozenset[int]], float]]]:
    """``(key, modality names, value)`` of every fold with the whole removed-modality table:
    ``value(present)`` is the fold's test score with only the modalities at positions
    ``present`` (``v(N)`` the clean score, ``v({})`` the ``empty`` row). Folds without the
    ``empty`` row (results of older runs) are left out."""
    ok = results[results["status"] == "ok"]
    empty = ok[ok["scenario"] == "empty"]
    if empty.empty:
        return
    clean = ok[ok["scenario"] == "clean"].set_index(GAME_KEYS)["score"]
    missing = ok[ok["scenario"] == "missing"]
    removed = {
        key: dict(zip(group["modality"], group["score"], strict=True))
        for key, group in missing.groupby(GAME_KEYS, sort=False)
    }
    for _, row in empty.iterrows():
        key = tuple(row[k] for k in GAME_KEYS)
        names = str(row["modality"]).split("+")
        scores = removed.get(key, {})
        if key not in clean.index or len(scores) != 2 ** len(names) - 2:
            continue
        yield key, names, _fold_value(names, float(clean[key]), float(row["score"]), scores)


def _fold_value(
    names: list[str], full: float, empty: float, removed: dict[str, float]
) -> Callable[[frozenset[int]], float]:
    """The score game of one fold: ``removed`` maps ``"a+b"`` (the modalities removed, in
    ``names`` order) to the score without them."""
    everyone = frozenset(range(len(names)))

    def value(present: frozenset[int]) -> float:
        if present == everyone:
            return full
        if not present:
            return empty
        return removed["+".join(m for i, m in enumerate(names) if i not in present)]

    return value


def interaction_table(results: pd.DataFrame) -> pd.DataFrame:
    """Pairwise Shapley interaction of each pair of modalities for the test score, per data set
    x configuration (rows) and pair (columns ``a x b``): mean over folds, from the same fold
    games as :func:`importance_table` (:func:`fusekit.inspection.exact_shapley_interactions`).
    Positive: complementary (the pair adds more together than apart); negative: redundant."""
    from fusekit.inspection import exact_shapley_interactions

    records = []
    for key, names, value in fold_games(results):
        matrix = exact_shapley_interactions(value, len(names))
        for i, j in itertools.combinations(range(len(names)), 2):
            records.append(
                {
                    **dict(zip(GAME_KEYS, key, strict=True)),
                    "pair": f"{names[i]} x {names[j]}",
                    "value": float(matrix[i, j]),
                }
            )
    if not records:
        return pd.DataFrame()
    return pd.DataFrame.from_records(records).pivot_table(
        index=["dataset", *CONFIG], columns="pair", values="value", aggfunc="mean", sort=False
    )


def interaction_kind(value: float, tolerance: float = 1e-9) -> str:
    """``complementary`` (> 0), ``redundant`` (< 0) or ``additive`` (within ``tolerance``)."""
    if abs(value) <= tolerance:
        return "additive"
    return "complementary" if value > 0 else "redundant"
