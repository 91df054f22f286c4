"""AGM's modulation strength α: fusekit's old default 0.1 against the authors' 1.0 and 2.5.

The authors' ``utils/config.py`` (lihong2303/AGM_ICCV2023) defaults α to 1.0 (their README's
AV-MNIST example uses 2.5). UCI Multiple Features, views ``fou``, ``zer``, ``mor``; stratified
5-fold CV (``random_state=0``), fit seed = fold; 15 epochs, the estimator's defaults otherwise
(Adam, lr 0.01, mlp backbones, concat). Each held-out fold is scored clean and with Gaussian
noise (level 3, ``fusekit.robustness.corrupt``) on ``fou``. Writes the whole of
``benchmarks/results/agm_alpha.md``.

    .venv/bin/python benchmarks/balancing/agm_alpha.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import StratifiedKFold

from fusekit import FusionClassifier, Modalities
from fusekit.datasets import load_mfeat
from fusekit.robustness import corrupt

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import provenance  # noqa: E402

ALPHAS = (0.1, 1.0, 2.5)
RESULTS = Path(__file__).resolve().parents[1] / "results" / "agm_alpha.md"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    provenance.add_arguments(parser)
    only, records = provenance.Only(parser.parse_args().only), provenance.Records()
    torch.set_num_threads(1)
    start = time.perf_counter()
    X, y = load_mfeat(views=["fou", "zer", "mor"])

    def take(rows: np.ndarray) -> Modalities:
        return Modalities({m: np.asarray(v)[rows] for m, v in X.items()})

    scores: dict[float, list[tuple[float, float, float]]] = {a: [] for a in ALPHAS}
    folds = StratifiedKFold(5, shuffle=True, random_state=0).split(np.zeros(len(y)), y)
    for fold, (train, test) in enumerate(folds):
        X_test = take(test)
        noisy = corrupt(X_test, "fou", "gaussian", 3.0, random_state=0)
        for alpha in ALPHAS:
            if not only.keeps(fold=fold, alpha=alpha):
                continue
            model = FusionClassifier(
                weighting="agm", weighting__alpha=alpha, max_epochs=15, random_state=fold
            ).fit(take(train), y[train])
            ratio = model.loss_curve_[-1] / model.loss_curve_[0]
            scores[alpha].append((model.score(X_test, y[test]), model.score(noisy, y[test]), ratio))
            clean, noise, ratio = scores[alpha][-1]
            records.add(
                {"fold": fold, "alpha": alpha}, clean=clean, noise_3=noise, loss_ratio=ratio
            )
    if only:
        print(records.text(), end="")
        return
    lines = [
        "# AGM: modulation strength α",
        "",
        "This file is written entirely by `benchmarks/balancing/agm_alpha.py` (protocol in its "
        "docstring).",
        "",
        "```",
        *provenance.header_lines(),
        f"wall time: {time.perf_counter() - start:.0f} s",
        "```",
        "",
        "| α | clean accuracy | noise 3 on fou | last / first training loss |",
        "|---|---|---|---|",
    ]
    for alpha, rows in scores.items():
        values = np.array(rows)
        mean, std = values.mean(axis=0), values.std(axis=0)
        lines.append(
            f"| {alpha:g} | {mean[0]:.3f} ± {std[0]:.3f} | {mean[1]:.3f} ± {std[1]:.3f} | "
            f"{mean[2]:.3f} ± {std[2]:.3f} |"
        )
    lines += ["", "Mean ± std over the 5 folds.", *records.block(), ""]
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
