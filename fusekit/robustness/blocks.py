"""A model's input split into per-modality blocks, and put back together in the same form.

Shared by :mod:`fusekit.robustness` (corrupt or remove a modality) and :mod:`fusekit.inspection`
(mark modalities absent to attribute the score). Corrupting happens on the input the *user*
passes, so the whole model (a fusekit estimator or a ``Pipeline`` ending in one) sees it, as it
would in deployment. Supported ``(model, X)``:

* ``X`` a :class:`~fusekit.Modalities` / ``dict``: one block per key. With a model whose final
  estimator is fitted, the keys must be its ``modalities_``.
* ``X`` an array or DataFrame and ``model`` a fitted fusekit estimator: the blocks are the column
  groups of its ``layout_``.
* ``X`` an array or DataFrame and ``model`` a ``Pipeline`` (nested ones too) ending in a fitted
  fusekit estimator fitted on a table: each step before it must be a ``ColumnTransformer`` (its
  ``transformers_`` and ``output_indices_`` trace every output column to the input columns it is
  computed from) or keep its columns one to one (``get_feature_names_out()`` returns the step's
  input names: scalers, ``FunctionTransformer(feature_names_out="one-to-one")``, ...) or be
  ``"passthrough"``. A modality's block is the set of input columns its final columns are traced
  to; an input column feeding two modalities is an error. Other steps (PCA, feature selection
  across modalities, ...) are refused with a message naming the step.

:meth:`ModalityBlocks.check_absence` verifies, on a few rows, that a modality made absent at the
input reaches the final estimator as all-NaN rows (and leaves the other modalities unchanged): a
step that fills NaN (an imputer, a one-hot encoder of NaN) would otherwise make "absent" mean
something else without a word.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

from fusekit.data import Modalities

#: rows of ``X`` that :meth:`ModalityBlocks.check_absence` pushes through a pipeline
ABSENCE_CHECK_ROWS = 16


def final_estimator(model: Any) -> Any:
    """The last step of ``model`` (through nested ``Pipeline``\\ s), or ``model`` itself."""
    while isinstance(model, Pipeline):
        model = model.steps[-1][1]
    return model


def _flat_steps(model: Any) -> list[Any]:
    if not isinstance(model, Pipeline):
        return [model]
    return [inner for _, step in model.steps for inner in _flat_steps(step)]


def _preprocessing_steps(model: Any) -> list[Any]:
    """The steps before the final estimator, nested pipelines flattened, in order."""
    return _flat_steps(model)[:-1]


def final_input(model: Any, X: Any) -> tuple[Any, Any]:
    """``(final estimator, X as it receives it)``: ``X`` through every step before it."""
    while isinstance(model, Pipeline):
        if len(model.steps) > 1:
            X = model[:-1].transform(X)
        model = model.steps[-1][1]
    return model, X


def _step_name(step: Any) -> str:
    return step if isinstance(step, str) else type(step).__name__


def _keeps_columns(step: Any, n_columns: int) -> bool:
    """True when ``step`` maps its ``n_columns`` inputs one to one onto its outputs."""
    try:
        names_in = getattr(step, "feature_names_in_", None)
        n_in = getattr(step, "n_features_in_", None)
        if names_in is None and n_in is not None:
            names_in = [f"x{i}" for i in range(n_in)]
        names_out = step.get_feature_names_out()
    except Exception:  # noqa: BLE001 - unfitted, or no feature-name support: not traceable
        return False
    return names_in is not None and len(names_in) == n_columns and list(names_out) == list(names_in)


def _column_positions(transformer: ColumnTransformer, columns: Any) -> np.ndarray:
    """Input positions of one ``ColumnTransformer`` column selection (names, ints, mask, slice)."""
    positions = np.arange(transformer.n_features_in_)
    names = pd.Index(getattr(transformer, "feature_names_in_", positions))
    if isinstance(columns, slice):
        if isinstance(columns.start, str) or isinstance(columns.stop, str):
            return positions[names.slice_indexer(columns.start, columns.stop)]
        return positions[columns]
    selection = np.atleast_1d(np.asarray(columns, dtype=object))
    if selection.size == 0:
        return selection.astype(int)
    if all(isinstance(column, str) for column in selection):
        found = names.get_indexer(selection)
        if (found < 0).any():
            raise ValueError(
                f"the ColumnTransformer selects columns {list(selection[found < 0])} that are not "
                f"among its input columns {list(names)}."
            )
        return found
    if all(isinstance(column, (bool, np.bool_)) for column in selection):
        return positions[selection.astype(bool)]
    return positions[selection.astype(int)]


def _through_column_transformer(
    transformer: ColumnTransformer, sources: list[frozenset[int]]
) -> list[frozenset[int]]:
    """Per output column of ``transformer``, the input columns of the pipeline it depends on."""
    if transformer.n_features_in_ != len(sources):
        raise ValueError(
            f"the ColumnTransformer expects {transformer.n_features_in_} columns but receives "
            f"{len(sources)}; cannot trace its columns to the pipeline's input."
        )
    width = max((s.stop for s in transformer.output_indices_.values()), default=0)
    traced: list[frozenset[int]] = [frozenset()] * width
    for name, _, columns in transformer.transformers_:
        out = transformer.output_indices_.get(name)
        if out is None or out.stop <= out.start:
            continue  # dropped columns feed no output
        inputs = _column_positions(transformer, columns)
        depends = frozenset().union(*(sources[int(i)] for i in inputs))
        traced[out.start : out.stop] = [depends] * (out.stop - out.start)
    return traced


def pipeline_columns(model: Pipeline, n_columns: int) -> dict[str, np.ndarray]:
    """Input column positions per modality of the final estimator, traced through ``model``."""
    final = final_estimator(model)
    layout = getattr(final, "layout_", None)
    if layout is None or not layout.columns:
        raise ValueError(
            f"the Pipeline ends in {type(final).__name__}, which is not a fusekit estimator "
            "fitted on a table (no layout_ columns), so its modalities cannot be found in a table "
            "X. Pass X as fusekit.Modalities, or end the pipeline in a fitted fusekit estimator."
        )
    sources = [frozenset([j]) for j in range(n_columns)]
    for step in _preprocessing_steps(model):
        if step is None or (isinstance(step, str) and step == "passthrough"):
            continue
        if isinstance(step, ColumnTransformer):
            sources = _through_column_transformer(step, sources)
        elif not _keeps_columns(step, len(sources)):
            raise ValueError(
                f"cannot tell which input columns feed each modality through the pipeline step "
                f"{_step_name(step)}: supported steps are ColumnTransformer and steps that keep "
                "their columns one to one (get_feature_names_out() equal to their input names). "
                "Pass X as fusekit.Modalities, or move this step inside a ColumnTransformer."
            )
    columns: dict[str, np.ndarray] = {}
    owner: dict[int, str] = {}
    for name, positions in layout.columns.items():
        if len(positions) and int(np.max(positions)) >= len(sources):
            raise ValueError(
                f"modality {name!r} reads column {int(np.max(positions))} of the final "
                f"estimator's input, but the steps before it produce {len(sources)} columns."
            )
        inputs = sorted(frozenset().union(*(sources[int(c)] for c in positions)))
        for column in inputs:
            if column in owner:
                raise ValueError(
                    f"input column {column} feeds both modality {owner[column]!r} and {name!r} "
                    "through the pipeline, so neither can be removed alone. Give each modality "
                    "its own input columns."
                )
            owner[column] = name
        columns[name] = np.asarray(inputs, dtype=int)
    return columns


def _head(X: Any, rows: int) -> Any:
    if isinstance(X, Modalities):
        return X[:rows]
    if isinstance(X, Mapping):
        return {name: value[:rows] for name, value in X.items()}
    if isinstance(X, pd.DataFrame):
        return X.iloc[:rows]
    return np.asarray(X)[:rows]


def final_blocks(final: Any, Xt: Any) -> dict[str, np.ndarray]:
    """The final estimator's input ``Xt`` split into float blocks (its own modalities)."""
    if isinstance(Xt, Mapping):
        return {str(name): np.asarray(value, dtype=np.float64) for name, value in Xt.items()}
    table = np.asarray(Xt, dtype=np.float64)
    return {name: table[:, cols] for name, cols in final.layout_.columns.items()}


class ModalityBlocks:
    """``X`` split into per-modality blocks of the model's input; rebuilt in ``X``'s own form."""

    def __init__(self, model: Any, X: Any) -> None:
        self.model = model
        self.X = X
        self.columns: dict[str, np.ndarray] = {}
        final = final_estimator(model)
        if isinstance(X, Mapping):
            self.names = [str(name) for name in X]
            fitted = getattr(final, "modalities_", None)
            if fitted is not None and set(fitted) != set(self.names):
                raise ValueError(
                    f"X has modalities {self.names}, but {type(final).__name__} was fitted with "
                    f"{list(fitted)}. Pass the modalities under the names the (final) estimator "
                    "was fitted with."
                )
            return
        if isinstance(model, Pipeline):
            self.columns = pipeline_columns(model, np.shape(X)[1])
        else:
            layout = getattr(model, "layout_", None)
            if layout is None or not layout.columns:
                raise ValueError(
                    f"X is a {type(X).__name__}: finding its modalities needs a fitted fusekit "
                    f"estimator fitted on a table (with layout_), or a Pipeline ending in one, "
                    f"got {type(model).__name__}. Pass X as fusekit.Modalities instead."
                )
            self.columns = dict(layout.columns)
        self.names = list(self.columns)
        self.table = X if isinstance(X, pd.DataFrame) else np.asarray(X)
        self._float_table: np.ndarray | None = None

    @property
    def n_samples(self) -> int:
        if isinstance(self.X, Mapping):
            return len(next(iter(self.X.values())))
        return len(self.table)

    def check(self, modalities: Sequence[str]) -> None:
        unknown = [m for m in modalities if m not in self.names]
        if unknown or not modalities:
            raise ValueError(f"modality must be among {self.names}, got {list(modalities)}.")

    def array(self, name: str) -> np.ndarray:
        """Modality ``name``'s block as float64 ``(n, *shape)`` (of a table: ``(n, columns)``)."""
        if isinstance(self.X, Mapping):
            return np.asarray(self.X[name], dtype=np.float64)
        block = (
            self.table.iloc[:, self.columns[name]]
            if isinstance(self.table, pd.DataFrame)
            else self.table[:, self.columns[name]]
        )
        try:
            return np.asarray(block, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"modality {name!r} is fed by non-numeric input columns; corruptions need numbers "
                f"(making the modality absent does not)."
            ) from error

    def shape(self, name: str) -> tuple[int, ...]:
        if isinstance(self.X, Mapping):
            return tuple(np.shape(self.X[name]))
        return (self.n_samples, len(self.columns[name]))

    def rebuild(self, replaced: dict[str, np.ndarray]) -> Any:
        """``X`` with the blocks in ``replaced`` swapped in; same form, ``X`` left untouched."""
        if isinstance(self.X, Mapping):
            merged = {name: replaced.get(name, self.X[name]) for name in self.X}
            return Modalities(merged) if isinstance(self.X, Modalities) else merged
        frame = self.table if isinstance(self.table, pd.DataFrame) else None
        if frame is not None and not self._numeric:  # mixed dtypes: swap whole columns
            frame = frame.copy()
            for name, values in replaced.items():
                for k, column in enumerate(self.columns[name]):
                    frame.isetitem(int(column), values[:, k])
            return frame
        if self._float_table is None:
            self._float_table = np.asarray(self.table, dtype=np.float64)
        table = self._float_table.copy()  # one float block: fast to predict on
        for name, values in replaced.items():
            table[:, self.columns[name]] = values
        if frame is not None:
            return pd.DataFrame(table, columns=frame.columns, index=frame.index)
        return table

    @property
    def _numeric(self) -> bool:
        return all(pd.api.types.is_numeric_dtype(dtype) for dtype in self.table.dtypes)

    def without(self, names: Sequence[str]) -> Any:
        """``X`` with the modalities ``names`` absent (all-NaN rows), the way users mark it."""
        return self.rebuild({m: np.full(self.shape(m), np.nan) for m in names})

    def check_absence(self) -> None:
        """For a pipeline: each modality made absent at the input arrives absent, alone.

        Runs on the first :data:`ABSENCE_CHECK_ROWS` rows, one transform per modality.
        """
        if not isinstance(self.model, Pipeline):
            return
        head = ModalityBlocks(self.model, _head(self.X, ABSENCE_CHECK_ROWS))
        final, untouched = final_input(self.model, head.X)
        before = final_blocks(final, untouched)
        steps = " -> ".join(_step_name(step) for step in _preprocessing_steps(self.model))
        for name in self.names:
            after = final_blocks(final, final_input(self.model, head.without([name]))[1])
            if name in after and not np.isnan(after[name]).all():
                raise ValueError(
                    f"modality {name!r} made absent (all-NaN) at the pipeline's input does not "
                    f"reach {type(final).__name__} as all-NaN rows: a step ({steps}) fills or "
                    "encodes NaN (an imputer, a one-hot encoder, ...). Make the steps keep NaN, "
                    "or evaluate the final estimator on the transformed input."
                )
            changed = [
                other
                for other in before
                if other != name and not np.array_equal(before[other], after[other], equal_nan=True)
            ]
            if changed:
                raise ValueError(
                    f"making modality {name!r} absent at the pipeline's input also changes "
                    f"modalities {changed} at {type(final).__name__}; a step ({steps}) mixes "
                    "modalities, so neither can be removed alone."
                )
