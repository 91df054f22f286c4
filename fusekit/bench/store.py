"""``results.csv``: one row per fold x configuration x evaluation level, appended as units finish.

Writing is append-safe, rewriting is atomic. Each finished unit is appended as one write of whole
lines (flushed and fsynced, with SIGINT / SIGTERM held back for its duration), so an interrupted
run loses at most the units in flight, and a crash can at worst tear the final line: a last line
without its newline is that torn append, and reading drops it (its unit is incomplete, so it
runs again). Appending is chosen over rewriting the whole file per unit because a rewrite costs
the whole file every unit; the whole-file rewrites (at the start of a run and the final sort) go
through :func:`fusekit.atomic.atomic_open`, so the file is always the old one or the new one.

Resume: a unit is finished when its rows are exactly the ones it writes
(:func:`~fusekit.bench.runner.expected_keys`), each once and each ``ok``; any other unit of the
plan (failed, never finished, rows lost or duplicated) has its rows dropped and runs again.

Cells are data: text starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return (what a
spreadsheet would run as a formula) is written with a leading ``'``, the OWASP CSV-injection rule,
and so is text already starting with ``'``; reading takes one leading ``'`` off again, so the
store round-trips every name. Numeric columns are never quoted (``-0.5`` stays a number).

A file that cannot be read as a results file (garbled cells, wrong number of fields, a second
header, bytes that are not UTF-8) raises :class:`ResultsFileError` naming the file and the line.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from fusekit.atomic import atomic_open
from fusekit.bench.runner import COLUMNS, TRAINING_COLUMNS, RowKey, row_key
from fusekit.bench.stopping import signals_held

RESULTS = "results.csv"
NUMERIC_COLUMNS = (
    "repeat",
    "fold",
    "seed",
    "level",
    "score",
    "fit_time",
    "predict_time",
    "n_train",
    "n_test",
    "lr",
    "n_epochs",
    "train_loss_first",
    "train_loss_last",
    "train_task_loss_first",
    "train_task_loss_last",
)
TEXT_COLUMNS = tuple(c for c in COLUMNS if c not in NUMERIC_COLUMNS)
OPTIONAL = ("tuned", *TRAINING_COLUMNS, "device")  # added after the format's first release
STATUSES = ("ok", "error")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"


class ResultsFileError(ValueError):
    """``results.csv`` cannot be read as a fusekit bench results file."""


def escape_cell(value: Any) -> Any:
    """``value`` with a leading ``'`` when a spreadsheet would read it as a formula (text only)."""
    if isinstance(value, str) and value.startswith((*FORMULA_STARTS, QUOTE)):
        return QUOTE + value
    return value


def unescape_cell(value: Any) -> Any:
    """Undo :func:`escape_cell`."""
    if isinstance(value, str) and value.startswith(QUOTE):
        return value[1:]
    return value


def _csv_text(rows: Iterable[Mapping[str, Any]], header: bool) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    if header:
        writer.writeheader()
    for row in rows:
        writer.writerow(
            {c: escape_cell(row.get(c)) if c in TEXT_COLUMNS else row.get(c) for c in COLUMNS}
        )
    return buffer.getvalue()


def _cell_value(value: Any) -> Any:
    return None if value is None or (isinstance(value, float) and pd.isna(value)) else value


class ResultStore:
    """The results file of one output directory."""

    def __init__(self, out_dir: str | Path) -> None:
        self.path = Path(out_dir) / RESULTS

    def _damaged(self, where: str, problem: str) -> ResultsFileError:
        return ResultsFileError(
            f"{self.path}{where} {problem}. The results file is damaged: pass --no-resume "
            "(resume=False) to start it afresh, or use a fresh --out directory."
        )

    def _records(self) -> tuple[list[str], list[tuple[int, list[str]]]]:
        """The header and ``(line number, fields)`` of each record; a torn last line dropped."""
        try:
            text = self.path.read_bytes().decode("utf-8")  # no newline translation
        except UnicodeDecodeError as error:
            raise self._damaged("", f"is not UTF-8 text ({error})") from None
        if text and not text.endswith("\n"):  # an append cut short: drop the torn line
            text = text[: text.rfind("\n") + 1]
        reader = csv.reader(io.StringIO(text, newline=""))
        try:
            header = next(reader, [])
            records = [(reader.line_num, fields) for fields in reader if fields]
        except csv.Error as error:
            raise self._damaged(
                f": line {reader.line_num}:", f"is not valid CSV ({error})"
            ) from None
        return header, records

    def read(self) -> pd.DataFrame:
        """Every row, text unescaped, numbers as numbers (empty cells NaN)."""
        if not self.path.is_file() or self.path.stat().st_size == 0:
            return pd.DataFrame(columns=COLUMNS)
        header, records = self._records()
        if not header:
            return pd.DataFrame(columns=COLUMNS)
        missing = [c for c in COLUMNS if c not in header and c not in OPTIONAL]
        if missing:
            raise ResultsFileError(
                f"{self.path} is not a fusekit bench results file (missing columns {missing}). "
                "Use another output directory or pass --no-resume to overwrite it."
            )
        for line, fields in records:
            if len(fields) != len(header):
                raise self._damaged(
                    f": line {line}:", f"has {len(fields)} fields, the header has {len(header)}"
                )
        frame = pd.DataFrame([fields for _, fields in records], columns=header, dtype=object)
        lines = [line for line, _ in records]
        for column in OPTIONAL:
            if column not in frame.columns:
                frame[column] = ""
        for column in NUMERIC_COLUMNS:
            frame[column] = self._numbers(frame[column], column, lines)
        for column in TEXT_COLUMNS:
            frame[column] = frame[column].map(lambda v: None if v == "" else unescape_cell(v))
        frame["error"] = frame["error"].fillna("")
        frame["tuned"] = frame["tuned"].fillna("")
        for position, (unit_id, status) in enumerate(
            zip(frame["unit_id"], frame["status"], strict=True)
        ):
            unit_id = unit_id if isinstance(unit_id, str) else ""
            if not unit_id or status not in STATUSES:
                value = repr(status) if unit_id else "an empty unit_id"
                raise self._damaged(
                    f": line {lines[position]}:",
                    f"holds {value}, expected a unit id and a status in {list(STATUSES)}",
                )
        return frame[COLUMNS]

    def _numbers(self, cells: pd.Series, column: str, lines: list[int]) -> pd.Series:
        blank = cells.isna() | (cells == "")
        numbers = pd.to_numeric(cells.where(~blank), errors="coerce")
        bad = numbers.isna() & ~blank
        if bad.any():
            position = int(bad.to_numpy().nonzero()[0][0])
            raise self._damaged(
                f": line {lines[position]}:",
                f"column {column!r} holds {cells.iloc[position]!r}, expected a number",
            )
        return numbers

    def finished(self, expected: Mapping[str, frozenset[RowKey]] | None = None) -> set[str]:
        """Ids of the units of ``expected`` (unit id -> row keys) whose rows are exactly their
        expected keys, each once and each ``ok``; without ``expected``: the units whose every
        row is ``ok`` (no check that none is missing)."""
        frame = self.read()
        done = set()
        for unit_id, rows in frame.groupby("unit_id", sort=False):
            if not (rows["status"] == "ok").all():
                continue
            if expected is None:
                done.add(unit_id)
                continue
            keys = expected.get(unit_id)
            if keys is None:
                continue
            found = [
                row_key(*values)
                for values in zip(
                    rows["scenario"],
                    rows["corruption"],
                    rows["modality"],
                    rows["level"],
                    strict=True,
                )
            ]
            if len(found) == len(keys) and set(found) == keys:
                done.add(unit_id)
        return done

    def start(self, resume: bool, expected: Mapping[str, frozenset[RowKey]]) -> set[str]:
        """Prepare the file for the plan ``expected`` (unit id -> its row keys); returns the
        unit ids to skip. Rows of the plan's unfinished units are dropped; rows of units not in
        the plan are kept (one copy of each)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not resume:
            self.write(pd.DataFrame(columns=COLUMNS))
            return set()
        done = self.finished(expected)
        frame = self.read()
        keep = frame["unit_id"].isin(done) | ~frame["unit_id"].isin(set(expected))
        key = ["unit_id", "scenario", "corruption", "modality", "level"]
        self.write(frame[keep].drop_duplicates(subset=key, keep="first"))
        return done

    def unit_ids(self) -> set[str]:
        """The ids of the units with rows in the file."""
        return set(self.read()["unit_id"])

    def append(self, rows: Iterable[dict[str, Any]]) -> None:
        """Add one unit's rows: one write of whole lines, fsynced, never cut by a signal."""
        text = _csv_text(rows, header=False)
        with signals_held(), self.path.open("a", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())

    def write(self, frame: pd.DataFrame) -> None:
        """Replace the file with ``frame`` atomically."""
        frame = frame.reindex(columns=COLUMNS)
        rows = (
            {c: _cell_value(v) for c, v in zip(COLUMNS, values, strict=True)}
            for values in frame.itertuples(index=False, name=None)
        )
        with atomic_open(self.path, "w", newline="") as handle:
            handle.write(_csv_text(rows, header=True))

    def finalize(self, order: Sequence[str]) -> pd.DataFrame:
        """Sort the rows into plan order (units not in ``order`` last) and rewrite the file."""
        frame = self.read()
        rank = {unit_id: i for i, unit_id in enumerate(order)}
        position = frame["unit_id"].map(rank).fillna(len(rank))
        frame = frame.assign(_order=position).sort_values("_order", kind="stable")
        frame = frame.drop(columns="_order").reset_index(drop=True)
        self.write(frame)
        return frame
