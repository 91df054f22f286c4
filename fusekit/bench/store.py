"""``results.csv``: one row per fold x configuration x evaluation level, appended as units finish.

Appending unit by unit means an interrupted run loses at most the units in flight. Resume: a unit
whose rows are all ``ok`` is skipped on the next run with the same output directory; a unit that
failed (or never finished) is run again and its old rows are dropped.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from fusekit.bench.runner import COLUMNS, TRAINING_COLUMNS

RESULTS = "results.csv"
TEXT_COLUMNS = ("error", "corruption", "modality", "status", "tuned", "optimizer", "lr_schedule")
OPTIONAL = ("tuned", *TRAINING_COLUMNS)


class ResultStore:
    """The results file of one output directory."""

    def __init__(self, out_dir: str | Path) -> None:
        self.path = Path(out_dir) / RESULTS

    def read(self) -> pd.DataFrame:
        if not self.path.is_file() or self.path.stat().st_size == 0:
            return pd.DataFrame(columns=COLUMNS)
        text = dict.fromkeys(TEXT_COLUMNS, object)
        frame = pd.read_csv(self.path, dtype=text)
        for column in OPTIONAL:  # added after the first release of the format
            if column not in frame.columns:
                frame[column] = ""
        missing = [c for c in COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(
                f"{self.path} is not a fusekit bench results file (missing columns {missing}). "
                "Use another output directory or pass --no-resume to overwrite it."
            )
        frame["error"] = frame["error"].fillna("")
        frame["tuned"] = frame["tuned"].fillna("")
        frame["status"] = frame["status"].fillna("error")
        return frame[COLUMNS]

    def finished(self) -> set[str]:
        """Ids of the units whose every row is ``ok``."""
        frame = self.read()
        if frame.empty:
            return set()
        ok = frame.groupby("unit_id")["status"].agg(lambda s: bool((s == "ok").all()))
        return set(ok.index[ok])

    def start(self, resume: bool) -> set[str]:
        """Prepare the file; returns the unit ids to skip. Rows of unfinished units are dropped."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not resume:
            self.write(pd.DataFrame(columns=COLUMNS))
            return set()
        done = self.finished()
        frame = self.read()
        self.write(frame[frame["unit_id"].isin(done)])
        return done

    def append(self, rows: Iterable[dict[str, Any]]) -> None:
        with self.path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            writer.writerows(rows)
            handle.flush()

    def write(self, frame: pd.DataFrame) -> None:
        frame.reindex(columns=COLUMNS).to_csv(self.path, index=False)

    def finalize(self, order: Sequence[str]) -> pd.DataFrame:
        """Sort the rows into plan order (units not in ``order`` last) and rewrite the file."""
        frame = self.read()
        rank = {unit_id: i for i, unit_id in enumerate(order)}
        position = frame["unit_id"].map(rank).fillna(len(rank))
        frame = frame.assign(_order=position).sort_values("_order", kind="stable")
        frame = frame.drop(columns="_order").reset_index(drop=True)
        self.write(frame)
        return frame
