"""The divergence flag reads the fused prediction's task loss, not the total with aux terms."""

import numpy as np
import torch

from fusekit import FusionClassifier
from fusekit.bench.leaderboard import summarize, to_markdown
from fusekit.bench.runner import COLUMNS, training_record
from fusekit.plugin import Weighting


class RisingPenalty(Weighting):
    """An auxiliary term that grows by 1 every epoch, whatever the network does."""

    def on_epoch_begin(self, ctx):
        self.epoch_ = ctx.epoch

    def loss_terms(self, output, ctx):
        return {"rising": torch.tensor(float(getattr(self, "epoch_", 0)))}


def test_a_rising_aux_term_with_a_falling_task_loss_is_not_flagged():
    rng = np.random.default_rng(0)
    y = np.arange(40) % 2
    X = {"a": rng.normal(size=(40, 3)) + y[:, None], "b": rng.normal(size=(40, 2))}
    model = FusionClassifier(
        weighting=RisingPenalty(), max_epochs=4, batch_size=20, lr=0.05, random_state=0
    ).fit(X, y)
    record = training_record(model)
    # the total rises (0, 1, 2, 3 added per epoch) ...
    assert record["train_loss_last"] > record["train_loss_first"] + 2
    # ... while the task loss of the fused prediction falls; worked out independently: the
    # task loss is the total minus the known penalty of each epoch
    assert record["train_task_loss_last"] < record["train_task_loss_first"]
    np.testing.assert_allclose(
        np.array(model.loss_curve_) - np.arange(4),
        [row["train_task_loss"] for row in model.net_.history],
        rtol=1e-5,
    )
    rows = []
    for fold in range(2):
        row = dict.fromkeys(COLUMNS)
        row.update(
            unit_id=f"u{fold}", dataset="d", fusion="concat", weighting="rising",
            calibration="none", backbone="mlp", repeat=0, fold=fold, scenario="clean",
            metric="accuracy", score=0.9, fit_time=1.0, predict_time=0.01, n_train=40,
            n_test=10, status="ok", error="", **record,
        )  # fmt: skip
        rows.append(row)
    import pandas as pd

    summary = summarize(pd.DataFrame(rows, columns=COLUMNS))
    assert summary["not_learning"].eq(0).all()
    assert "did not fall" not in to_markdown(summary)
    # the same fits judged by the total, as before, would have been flagged
    old = pd.DataFrame(rows, columns=COLUMNS).drop(
        columns=["train_task_loss_first", "train_task_loss_last"]
    )
    assert summarize(old)["not_learning"].eq(2).all()
