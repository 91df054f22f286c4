"""Text + tabular benchmark on the clothing reviews: fusekit's raw-text backbones against the
scikit-learn pipeline a user would write and the bench's reference rows, on paired folds.

    python benchmarks/text_tabular/clothing_reviews.py [--rows 3000 --folds 5 --epochs 10]
                                                        [--out benchmarks/text_tabular/results.md]
                                                        [--only fold=1 --only config=ref_logistic]

``--only KEY=VALUE`` (``fold`` from 1, ``config`` a configuration's name with every run of other
characters than letters and digits as ``_``) runs only the matching fits and prints their raw
records (fold, configuration, accuracy, ROC AUC) instead of the report.

Data: :func:`fusekit.datasets.load_clothing_reviews` (``target="recommended"``), a stratified
subsample of ``--rows`` rows (fine-tuning wordllama's 32 000 x 256 matrix is the slow row: its
Adam step updates all 8 M weights, about 40 s of CPU per fold of 2 400 training rows and 10 epochs,
several times that in wall time on a shared 2-core machine), ``StratifiedKFold(--folds,
shuffle=True, random_state=0)``; every configuration is fitted and scored on the same folds.
Modalities: ``review`` (the title and review text; missing for the rows without a review),
``shop`` (division, department, class name) and ``tab`` (age, positive feedback count).

Configurations (accuracy; ROC AUC shown beside it):

* ``sklearn: tfidf+svd, one-hot, hist_gb``: ``TfidfVectorizer(min_df=3) -> TruncatedSVD(64)`` on
  the text (missing as ""), ``OneHotEncoder`` on the categories, the numbers as they are, into
  ``HistGradientBoostingClassifier``: what a scikit-learn user writes;
* ``ref:logistic``, ``ref:hist_gb``, ``ref:only <m>``: the bench's reference rows
  (:mod:`fusekit.bench.reference`) over the featurised modalities (the text as TF-IDF + SVD,
  absent where missing, via ``AbsentWhereMissing``; the categories one-hot);
* ``fusekit: wordllama frozen``: ``review`` through the ``wordllama`` backbone (pretrained,
  frozen, remembered once per fit with ``frozen_backbones``), ``shop`` through the
  ``categorical`` backbone, ``tab`` through ``mlp``;
* ``fusekit: wordllama fine-tuned``: the same with ``backbone__review__freeze=False``;
* ``fusekit: tfidf modality, categorical``: the text as a TF-IDF + SVD feature modality (``mlp``),
  ``shop`` through ``categorical``;
* ``fusekit: tfidf modality, one-hot``: the same with the categories one-hot into ``mlp``: the
  categorical backbone's effect, everything else equal;
* ``fusekit: hashed_text, categorical``: the built-in ``hashed_text`` backbone (hashed word
  1-2-grams, trained from scratch) on the raw review, ``shop`` through ``categorical``.

Verdicts: :func:`fusekit.bench.stats.verdicts` (Nadeau-Bengio corrected t-test against the best,
TOST equivalence inside the bench's ROPE) and, for each fusekit row, the same two tests of its
paired differences from the scikit-learn pipeline.

Cost: the wordllama fits run each in a fresh process, so its peak RSS (``ru_maxrss``) minus the
RSS before ``fit`` is that fit's own peak memory. The frozen-encoder speed-up: on fold 1, the
frozen encoder run every batch (``freeze=True`` alone) against remembered once per fit
(``frozen_backbones``), alternating, ``--repeats`` times, with the rows the encoder encodes
counted.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import multiprocessing
import re
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import TruncatedSVD
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

from fusekit import FusionClassifier, Modalities
from fusekit.atomic import atomic_write_text
from fusekit.bench import stats
from fusekit.bench.reference import make_reference, reference_names
from fusekit.bench.settings import ROPE
from fusekit.datasets import AbsentWhereMissing, load_clothing_reviews

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import provenance  # noqa: E402

CATEGORIES = ["division", "department", "class_name"]
NUMBERS = ["age", "positive_feedback_count"]
SKLEARN = "sklearn: tfidf+svd, one-hot, hist_gb"
FROZEN = "fusekit: wordllama frozen"
FINE_TUNED = "fusekit: wordllama fine-tuned"
TFIDF_CATEGORICAL = "fusekit: tfidf modality, categorical"
TFIDF_ONE_HOT = "fusekit: tfidf modality, one-hot"
HASHED = "fusekit: hashed_text, categorical"
SVD_WIDTH = 64

Predict = tuple[np.ndarray, np.ndarray, float]  # (labels, P(class 1), fit seconds)
REFERENCES = reference_names(["review", "shop", "tab"])  # the featurised modalities' reference rows


def kept(only: provenance.Only, fold: int, name: str) -> bool:
    """Whether ``--only`` keeps configuration ``name`` on ``fold``."""
    return only.keeps(fold=fold, config=config_key(name))


def config_key(name: str) -> str:
    """A configuration's name as a record value and ``--only config=`` key: every run of
    characters other than letters and digits as one ``_`` (``ref:only review`` ->
    ``ref_only_review``)."""
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")


def fusekit_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The raw columns under ``modality__column`` names (text and categories stay strings)."""
    columns = {"review__text": frame["text"]}
    columns |= {f"shop__{c}": frame[c] for c in CATEGORIES}
    columns |= {f"tab__{c}": frame[c].astype(np.float64) for c in NUMBERS}
    return pd.DataFrame(columns, index=frame.index)


def text_features() -> AbsentWhereMissing:
    """TF-IDF + SVD of the text, all-NaN rows where there is no review."""
    return AbsentWhereMissing(
        make_pipeline(TfidfVectorizer(min_df=3), TruncatedSVD(SVD_WIDTH, random_state=0))
    )


def one_hot() -> OneHotEncoder:
    return OneHotEncoder(handle_unknown="ignore", sparse_output=False)


def featurised(train: pd.DataFrame, test: pd.DataFrame) -> tuple[dict, dict]:
    """``{review, shop, tab}`` numeric blocks, fitted on ``train`` (the reference rows read
    numbers only)."""
    text, shop = text_features(), one_hot()
    out = []
    for frame, fit in ((train, True), (test, False)):
        review = (text.fit_transform if fit else text.transform)(frame["text"])
        codes = (shop.fit_transform if fit else shop.transform)(frame[CATEGORIES])
        numbers = frame[NUMBERS].to_numpy(np.float64)
        out.append({"review": np.asarray(review, np.float64), "shop": codes, "tab": numbers})
    return out[0], out[1]


def sklearn_pipeline(seed: int) -> Any:
    """TF-IDF + SVD per text column, one-hot categories, numbers, gradient boosting."""
    fill = FunctionTransformer(lambda column: column.fillna(""), feature_names_out="one-to-one")
    features = ColumnTransformer(
        [
            (
                "text",
                make_pipeline(
                    fill, TfidfVectorizer(min_df=3), TruncatedSVD(SVD_WIDTH, random_state=0)
                ),
                "text",
            ),
            ("categories", one_hot(), CATEGORIES),
            ("numbers", "passthrough", NUMBERS),
        ]
    )
    return make_pipeline(features, HistGradientBoostingClassifier(random_state=seed))


def timed(model: Any, X_train: Any, y_train: np.ndarray, X_test: Any) -> Predict:
    start = time.perf_counter()
    model.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    return model.predict(X_test), model.predict_proba(X_test)[:, 1], seconds


def fusekit_model(seed: int, epochs: int, **params: Any) -> FusionClassifier:
    return FusionClassifier(max_epochs=epochs, random_state=seed, **params)


def wordllama_params(freeze: bool, remember: bool = True) -> dict[str, Any]:
    return {
        "backbone": {"review": "wordllama", "shop": "categorical", "tab": "mlp"},
        "backbone__review__freeze": freeze,
        "frozen_backbones": ("review",) if freeze and remember else (),
    }


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def wordllama_fold(
    freeze: bool, seed: int, epochs: int, X_train: Any, y_train: Any, X_test: Any
) -> tuple[Predict, float]:
    """One wordllama fit in a fresh process: its predictions and its own peak RSS (MB)."""
    torch.set_num_threads(1)
    model = fusekit_model(seed, epochs, **wordllama_params(freeze))
    before = rss_mb()
    result = timed(model, X_train, y_train, X_test)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result, peak - before


def in_fresh_process(function: Callable, *args: Any) -> Any:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(function, *args).result()


@contextlib.contextmanager
def counting_encoded_rows() -> Iterator[list[int]]:
    """Rows the wordllama backbone encodes while inside (its ``encode`` wrapped)."""
    from fusekit_transformers.wordllama_backbone import WordLlamaBackbone

    rows: list[int] = []
    original = WordLlamaBackbone.encode

    def encode(self, x, steps):  # noqa: ANN001, ANN202
        rows.append(x.shape[0])
        return original(self, x, steps)

    WordLlamaBackbone.encode = encode
    try:
        yield rows
    finally:
        WordLlamaBackbone.encode = original


def speed_up(X_train: Any, y_train: np.ndarray, epochs: int, repeats: int) -> list[str]:
    """Frozen wordllama run every batch vs remembered once per fit, alternating."""
    modes = {"run every batch": False, "remembered": True}
    seconds: dict[str, list[float]] = {mode: [] for mode in modes}
    rows: dict[str, int] = {}
    for _ in range(repeats):
        for mode, remember in modes.items():
            model = fusekit_model(0, epochs, **wordllama_params(True, remember))
            with counting_encoded_rows() as counted:
                start = time.perf_counter()
                model.fit(X_train, y_train)
                seconds[mode].append(time.perf_counter() - start)
            rows[mode] = sum(counted)
    base = statistics.median(seconds["run every batch"])
    lines = []
    for mode in modes:
        median = statistics.median(seconds[mode])
        lines.append(f"| frozen, {mode} | {median:.1f} | {base / median:.2f}x | {rows[mode]} |")
    avoided = rows["run every batch"] - rows["remembered"]
    lines.append("")
    lines.append(
        f"Encoder row passes avoided per fit: {avoided} (= {rows['run every batch']} - "
        f"{rows['remembered']}; epochs - 1 = {epochs - 1} of every {epochs} passes over the "
        f"{len(y_train)} training rows)."
    )
    return lines


def verdict_word(v: stats.Verdict) -> str:
    if v.is_best:
        return "best"
    if v.equivalent:
        return "equivalent"
    return "not worse" if v.tied else "worse"


def versus(scores: pd.DataFrame, row: str, baseline: str, n_train: float, n_test: float) -> str:
    """``mean diff [90 % CI] p`` of ``row - baseline`` and the plain verdict."""
    diffs = (scores[row] - scores[baseline]).to_numpy()
    p = stats.corrected_ttest(diffs, n_train, n_test)
    same, low, high = stats.equivalent(diffs, n_train, n_test, ROPE)
    if same:
        word = "equivalent"
    elif p < stats.ALPHA:
        word = "better" if diffs.mean() > 0 else "worse"
    else:
        word = "no significant difference, not shown equivalent"
    return f"{diffs.mean():+.3f} | [{low:+.3f}, {high:+.3f}] | {p:.3f} | {word}"


def header(
    provenance_lines: list[str], args: argparse.Namespace, n_rows: int, majority: float
) -> list[str]:
    return [
        "# Text + tabular: clothing reviews",
        "",
        "This file is written entirely by `benchmarks/text_tabular/clothing_reviews.py`; the "
        "reading is in README.md beside it.",
        "",
        "```",
        *provenance_lines,
        f"data: clothing_reviews target=recommended, {n_rows} rows (stratified subsample of "
        f"23486), majority class {majority:.3f}; {args.folds} paired folds "
        f"(StratifiedKFold, shuffle, random_state 0); fusekit max_epochs={args.epochs}",
        "```",
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=None)
    provenance.add_arguments(parser)
    args = parser.parse_args()
    only = provenance.Only(args.only)
    torch.set_num_threads(1)
    wall = time.perf_counter()
    provenance_lines = provenance.header_lines(extra_versions=("fusekit-transformers", "wordllama"))
    frame, target = load_clothing_reviews(target="recommended")
    if args.rows < len(frame):
        frame, _, target, _ = train_test_split(
            frame, target, train_size=args.rows, stratify=target, random_state=0
        )
    frame, y = frame.reset_index(drop=True), target.to_numpy()
    raw = fusekit_frame(frame)
    folds = list(StratifiedKFold(args.folds, shuffle=True, random_state=0).split(frame, y))
    scores: dict[str, list[float]] = {}
    aucs: dict[str, list[float]] = {}
    fit_seconds: dict[str, list[float]] = {}
    peak_mb: dict[str, list[float]] = {FROZEN: [], FINE_TUNED: []}
    records = provenance.Records()

    def record(name: str, y_test: np.ndarray, result: Predict) -> None:
        labels, proba, seconds = result
        scores.setdefault(name, []).append(accuracy_score(y_test, labels))
        aucs.setdefault(name, []).append(roc_auc_score(y_test, proba))
        fit_seconds.setdefault(name, []).append(seconds)
        records.add(
            {"fold": fold, "config": config_key(name)},
            accuracy=float(scores[name][-1]),
            roc_auc=float(aucs[name][-1]),
        )
        print(f"  {name}: accuracy {scores[name][-1]:.3f}, fit {seconds:.1f} s", flush=True)

    for fold, (train, test) in enumerate(folds, start=1):
        if not only.keeps(fold=fold):
            continue
        wanted = functools.partial(kept, only, fold)
        print(f"fold {fold}:", flush=True)
        y_train, y_test = y[train], y[test]
        seed = fold
        if wanted(SKLEARN):
            record(
                SKLEARN,
                y_test,
                timed(sklearn_pipeline(seed), frame.iloc[train], y_train, frame.iloc[test]),
            )
        if any(wanted(name) for name in (*REFERENCES, TFIDF_CATEGORICAL, TFIDF_ONE_HOT)):
            blocks_train, blocks_test = featurised(frame.iloc[train], frame.iloc[test])
        for name in filter(wanted, REFERENCES):
            model = make_reference(name, "classification", seed)
            record(name, y_test, timed(model, blocks_train, y_train, blocks_test))
        for name, freeze in ((FROZEN, True), (FINE_TUNED, False)):
            if not wanted(name):
                continue
            result, peak = in_fresh_process(
                wordllama_fold, freeze, seed, args.epochs, raw.iloc[train], y_train, raw.iloc[test]
            )
            record(name, y_test, result)
            peak_mb[name].append(peak)
        if wanted(TFIDF_CATEGORICAL) or wanted(TFIDF_ONE_HOT):
            tfidf_train = Modalities(review=blocks_train["review"], tab=blocks_train["tab"])
            tfidf_test = Modalities(review=blocks_test["review"], tab=blocks_test["tab"])
        if wanted(TFIDF_CATEGORICAL):
            shop_train = frame.iloc[train][CATEGORIES].to_numpy(object)
            shop_test = frame.iloc[test][CATEGORIES].to_numpy(object)
            model = fusekit_model(
                seed, args.epochs, backbone={"review": "mlp", "shop": "categorical", "tab": "mlp"}
            )
            record(
                TFIDF_CATEGORICAL,
                y_test,
                timed(
                    model,
                    Modalities(tfidf_train, shop=shop_train),
                    y_train,
                    Modalities(tfidf_test, shop=shop_test),
                ),
            )
        if wanted(TFIDF_ONE_HOT):
            model = fusekit_model(seed, args.epochs)
            record(
                TFIDF_ONE_HOT,
                y_test,
                timed(
                    model,
                    Modalities(tfidf_train, shop=blocks_train["shop"]),
                    y_train,
                    Modalities(tfidf_test, shop=blocks_test["shop"]),
                ),
            )
        if wanted(HASHED):
            model = fusekit_model(
                seed,
                args.epochs,
                backbone={"review": "hashed_text", "shop": "categorical", "tab": "mlp"},
            )
            record(HASHED, y_test, timed(model, raw.iloc[train], y_train, raw.iloc[test]))
        print(
            f"fold {fold}: " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in scores.items()), flush=True
        )

    if only:  # the raw records of the runs kept, no report
        print(records.text(), end="")
        return
    table = pd.DataFrame(scores)
    n_test = len(y) / args.folds
    n_train = len(y) - n_test
    found = stats.verdicts(table, n_train, n_test)
    lines = header(provenance_lines, args, len(y), float(np.bincount(y).max() / len(y)))
    lines += [
        "## Leaderboard (accuracy)",
        "",
        "| group | vs best | configuration | accuracy mean ± std | 95 % CI | ROC AUC | fit s |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, v in found.items():
        lines.append(
            f"| {v.group} | {verdict_word(v)} | {name} | {table[name].mean():.3f} ± "
            f"{table[name].std(ddof=1):.3f} | [{v.low:.3f}, {v.high:.3f}] | "
            f"{np.mean(aucs[name]):.3f} | {statistics.median(fit_seconds[name]):.1f} |"
        )
    lines += [
        "",
        "group / vs best: "
        + stats.WITHIN_TEST
        + "; equivalent: "
        + stats.EQUIVALENCE_TEST
        + f", ROPE ±{ROPE:g}. fit s: median wall time per fold (one thread, busy machine).",
        "",
        f"## Each fusekit row against `{SKLEARN}`",
        "",
        "| configuration | mean paired diff | 90 % corrected CI | p (corrected t) | verdict |",
        "|---|---|---|---|---|",
    ]
    for name in (FROZEN, FINE_TUNED, HASHED, TFIDF_CATEGORICAL, TFIDF_ONE_HOT):
        lines.append(f"| {name} | {versus(table, name, SKLEARN, n_train, n_test)} |")
    lines += [
        "",
        f"The categorical backbone against one-hot categories (`{TFIDF_CATEGORICAL}` - "
        f"`{TFIDF_ONE_HOT}`): "
        + " | ".join(versus(table, TFIDF_CATEGORICAL, TFIDF_ONE_HOT, n_train, n_test).split(" | ")),
        "",
        "## Frozen vs fine-tuned wordllama: fit time and peak memory",
        "",
        "| configuration | fit s (median) | peak RSS above the fit's start, MB (median) |",
        "|---|---|---|",
    ]
    for name in (FROZEN, FINE_TUNED):
        lines.append(
            f"| {name} | {statistics.median(fit_seconds[name]):.1f} | "
            f"{statistics.median(peak_mb[name]):.0f} |"
        )
    train, _ = folds[0]
    lines += [
        "",
        f"## Frozen-encoder speed-up (fold 1, {len(train)} training rows, "
        f"{args.epochs} epochs, median of {args.repeats} alternating fits)",
        "",
        "| frozen wordllama | fit s | speed-up | rows encoded |",
        "|---|---|---|---|",
    ]
    lines += speed_up(raw.iloc[train], y[train], args.epochs, args.repeats)
    lines += ["", f"Wall time of the whole run: {time.perf_counter() - wall:.0f} s."]
    lines += [*records.block(), ""]
    text = "\n".join(lines)
    print(text)
    if args.out:
        atomic_write_text(Path(args.out), text)


if __name__ == "__main__":
    main()
