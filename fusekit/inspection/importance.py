"""Which modalities does a fitted model rely on? Attribution of its score by marking them absent.

The game: the players are the modalities of the model's final fusekit estimator; the value of a
coalition ``S`` is the model's score on ``X`` with only the modalities in ``S`` present and the
others absent (all-NaN rows, exactly as a user marks a missing modality), so attributions are
read through the model's own missing-modality handling. The empty coalition is the model with
every modality absent: every fusekit fusion maps such a row to a constant output (its bias
path), in practice close to the training prior, so ``v({})`` is the score of that constant
prediction. The Shapley values (:mod:`fusekit.inspection.games`) add up to
``v(all) - v({})`` (``table.attrs["full_score"] - table.attrs["empty_score"]``).

Cost: each coalition's input is predicted once (``2^M`` model calls for exact Shapley,
``M + 2`` for leave-one-out, at most ``P (M - 1) + 2`` distinct coalitions for ``P`` sampled
permutations); scores, bootstrap replicates and per-sample contributions all reuse those cached
predictions.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
from sklearn.metrics import get_scorer
from sklearn.utils import check_random_state

from fusekit.inspection.games import (
    exact_shapley,
    leave_one_out,
    permutation_shapley,
    sample_permutations,
)
from fusekit.robustness.blocks import ModalityBlocks, final_estimator

METHODS = ("shapley", "permutation", "loo")
COLUMNS = ["modality", "importance", "std", "method", "metric"]


class _CoalitionPredictions:
    """The model's outputs on ``X`` with only a coalition's modalities present, each computed once.

    For a classifier, ``predict`` is read off ``predict_proba`` (the class of highest
    probability, as fusekit's ``predict`` is the arg-max of the same logits), so accuracy and
    per-sample probabilities share one forward pass per coalition.
    """

    def __init__(self, model: Any, blocks: ModalityBlocks) -> None:
        self.model = model
        self.blocks = blocks
        self.classifier = is_classifier(model)
        self.classes = getattr(model, "classes_", None) if self.classifier else None
        self.cache: dict[frozenset[str], dict[str, np.ndarray]] = {}
        self.model_calls = 0

    def response(self, present: frozenset[str], method: str) -> np.ndarray:
        entry = self.cache.setdefault(present, {})
        if method not in entry:
            if method == "predict" and self.classifier and hasattr(self.model, "predict_proba"):
                entry[method] = self.classes[self.response(present, "predict_proba").argmax(axis=1)]
            else:
                absent = [m for m in self.blocks.names if m not in present]
                entry[method] = np.asarray(getattr(self.model, method)(self.blocks.without(absent)))
                self.model_calls += 1
        return entry[method]


class _Replay(BaseEstimator):
    """Stands in for the model inside a scorer: ``X`` is an array of row indices, and every
    prediction method returns the cached outputs of one coalition on those rows."""

    def __init__(self, predictions: Any = None, present: Any = None) -> None:
        self.predictions = predictions
        self.present = present

    def _rows(self, method: str, rows: np.ndarray) -> np.ndarray:
        return self.predictions.response(self.present, method)[rows]

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self._rows("predict", X)


class _ReplayRegressor(RegressorMixin, _Replay):
    pass


class _ReplayClassifier(ClassifierMixin, _Replay):
    @property
    def classes_(self) -> np.ndarray:
        return self.predictions.classes

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self._rows("predict_proba", X)

    def predict_log_proba(self, X: np.ndarray) -> np.ndarray:
        return self._rows("predict_log_proba", X)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return self._rows("decision_function", X)


@dataclass
class ModalityContributions:
    """Per-sample contributions of each modality to the model's output (``per_sample=True``).

    Attributes:
        values: classifier ``(n, M, K)``: contribution of modality ``m`` to the probability of
            class ``classes[k]`` for sample ``i``; regressor ``(n, M)`` (``(n, M, k)`` for ``k``
            outputs) in the target's units.
        modalities: names along axis 1.
        classes: labels along axis 2 (classifier), else ``None``.
        output: the model's output with every modality present, ``(n, K)`` / ``(n,)``.
        baseline: the output with every modality absent (constant over rows).
        method: ``"shapley"``, ``"permutation"`` or ``"loo"``. For the first two
            ``baseline + values.sum(axis=1) == output`` to float precision (efficiency);
            leave-one-out contributions do not add up.
    """

    values: np.ndarray
    modalities: tuple[str, ...]
    classes: np.ndarray | None
    output: np.ndarray
    baseline: np.ndarray
    method: str

    def of_predicted_class(self) -> np.ndarray:
        """Classifier: ``(n, M)`` contributions to each sample's predicted-class probability."""
        if self.classes is None:
            raise ValueError("of_predicted_class needs a classifier's contributions.")
        predicted = self.output.argmax(axis=1)  # (n,)
        return self.values[np.arange(len(predicted)), :, predicted]

    def to_frame(self, label: Any = None) -> pd.DataFrame:
        """``(n, M)`` table, one column per modality: the contributions to class ``label``'s
        probability (classifier; ``None``: each sample's predicted class), or to the value."""
        if self.classes is None:
            values = self.values if self.values.ndim == 2 else self.values[..., 0]
        elif label is None:
            values = self.of_predicted_class()
        else:
            found = np.flatnonzero(self.classes == label)
            if not len(found):
                raise ValueError(f"label must be one of {list(self.classes)}, got {label!r}.")
            values = self.values[:, :, found[0]]
        return pd.DataFrame(values, columns=list(self.modalities))


def _scorer(model: Any, scoring: str | Callable | None) -> tuple[str, Callable]:
    """``(metric name, scorer(estimator, X, y))``; ``None``: the estimator's own ``score``."""
    if scoring is None:
        return ("accuracy" if is_classifier(model) else "r2"), lambda est, X, y: est.score(X, y)
    if isinstance(scoring, str):
        return scoring, get_scorer(scoring)
    if callable(scoring):
        return getattr(scoring, "__name__", repr(scoring)), scoring
    raise ValueError(
        f"scoring must be None, a scikit-learn scorer name or a scorer(estimator, X, y) "
        f"callable, got {scoring!r}."
    )


@dataclass
class ScoreGame:
    """The score game of a fitted model on ``(X, y)``: players are its modalities, the value of
    a coalition the score with only those present (predictions cached per coalition)."""

    names: list[str]
    metric: str
    predictions: _CoalitionPredictions
    y: np.ndarray
    scorer: Callable

    @classmethod
    def of(
        cls, model: Any, X: Any, y: Any, scoring: str | Callable | None, caller: str
    ) -> ScoreGame:
        final = final_estimator(model)
        if not hasattr(final, "modalities_"):
            raise ValueError(
                f"{caller} needs a fitted fusekit estimator or a Pipeline ending in one; "
                f"{type(final).__name__} has no modalities_ (not fitted, or not a fusekit "
                f"estimator)."
            )
        metric, scorer = _scorer(model, scoring)
        blocks = ModalityBlocks(model, X)
        blocks.check_absence()
        y = np.asarray(y)
        if len(y) != blocks.n_samples:
            raise ValueError(
                f"X has {blocks.n_samples} samples but y has {len(y)}; pass one per row."
            )
        return cls(blocks.names, metric, _CoalitionPredictions(model, blocks), y, scorer)

    @property
    def n_samples(self) -> int:
        return len(self.y)

    def on(self, rows: np.ndarray) -> Callable[[frozenset[int]], float]:
        """The value function on the given rows (indices into ``X``; repeats allowed)."""
        replay = _ReplayClassifier if self.predictions.classifier else _ReplayRegressor

        def value(players: frozenset[int]) -> float:
            present = frozenset(self.names[i] for i in players)
            return float(self.scorer(replay(self.predictions, present), rows, self.y[rows]))

        return value


def _positive_int(name: str, value: Any, minimum: int) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def _attribute(
    value: Callable[[frozenset[int]], Any],
    n_players: int,
    method: str,
    permutations: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """``(attributions (M, ...), Monte Carlo standard error or None)`` of one game."""
    if method == "shapley":
        return exact_shapley(value, n_players), None
    if method == "loo":
        return leave_one_out(value, n_players), None
    return permutation_shapley(value, permutations)


def modality_importance(
    model: Any,
    X: Any,
    y: Any,
    *,
    scoring: str | Callable | None = None,
    method: str = "shapley",
    max_exact: int = 8,
    n_permutations: int = 100,
    n_repeats: int = 20,
    random_state: int | np.random.RandomState | None = None,
    per_sample: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, ModalityContributions]:
    """The contribution of each modality to ``model``'s score on ``(X, y)``.

    Parameters:
        model: a fitted fusekit estimator, or a ``Pipeline`` ending in one (modalities are marked
            absent in ``X``, the pipeline's input; see :mod:`fusekit.robustness.blocks`).
        scoring: a scikit-learn scorer name or ``scorer(estimator, X, y)``; ``None``: the
            estimator's ``score`` (accuracy for classifiers, R^2 for regressors).
        method: ``"shapley"`` (exact over all ``2^M`` coalitions; sampled permutations when
            there are more than ``max_exact`` modalities), ``"permutation"`` (``n_permutations``
            random orders, seeded by ``random_state``) or ``"loo"`` (full score minus the score
            without the modality).
        max_exact: most modalities for exact Shapley (``2^M`` predictions) under ``"shapley"``.
        n_permutations: orders sampled by ``"permutation"`` (at most ``P (M - 1) + 2``
            predictions).
        n_repeats: bootstrap resamples of the rows of ``X`` (each attribution recomputed from
            the cached predictions; same permutations). ``std`` is their standard deviation;
            for sampled permutations the Monte Carlo standard error is added in quadrature
            (``sqrt(std_boot^2 + se_mc^2)``). ``0`` (or 1): ``std`` is NaN, except the Monte
            Carlo part.
        random_state: seeds the permutations and the bootstrap; same seed, same table.
        per_sample: also return per-sample contributions to the predicted probabilities
            (classifier) or values (regressor), a :class:`ModalityContributions`.

    Returns a DataFrame ``modality, importance, std, method, metric`` (``method`` the one used),
    most important first; ``table.attrs`` holds ``full_score``, ``empty_score`` (every modality
    absent), ``n_model_calls``, ``n_repeats`` and ``n_permutations`` (``None`` unless sampled).
    With ``per_sample=True``, ``(table, contributions)``.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}.")
    max_exact = _positive_int("max_exact", max_exact, 1)
    n_permutations = _positive_int("n_permutations", n_permutations, 1)
    n_repeats = _positive_int("n_repeats", n_repeats, 0)
    game = ScoreGame.of(model, X, y, scoring, "modality_importance")
    names, metric, predictions, game_on = game.names, game.metric, game.predictions, game.on
    used = "permutation" if method == "shapley" and len(names) > max_exact else method
    seed = int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
    permutations = None
    if used == "permutation":
        permutations = sample_permutations(len(names), n_permutations, np.random.default_rng(seed))
    everyone = np.arange(game.n_samples)
    importance, monte_carlo = _attribute(game_on(everyone), len(names), used, permutations)
    bootstrap = np.random.default_rng([seed, 1])
    replicates = np.array(
        [_attribute(game_on(bootstrap.integers(0, len(everyone), len(everyone))), len(names),
                    used, permutations)[0] for _ in range(n_repeats)]
    ).reshape(n_repeats, len(names))  # fmt: skip
    spread = replicates.std(axis=0, ddof=1) if n_repeats > 1 else np.full(len(names), np.nan)
    if monte_carlo is not None:
        spread = np.sqrt(np.nan_to_num(spread) ** 2 + monte_carlo**2)
    table = pd.DataFrame(
        {"modality": names, "importance": importance, "std": spread, "method": used,
         "metric": metric}
    )[COLUMNS]  # fmt: skip
    table = table.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)
    table.attrs.update(
        full_score=game_on(everyone)(frozenset(range(len(names)))),
        empty_score=game_on(everyone)(frozenset()),
        n_model_calls=predictions.model_calls,
        n_repeats=n_repeats,
        n_permutations=n_permutations if used == "permutation" else None,
    )
    if not per_sample:
        return table
    return table, _contributions(predictions, names, used, permutations)


def _contributions(
    predictions: _CoalitionPredictions,
    names: list[str],
    method: str,
    permutations: np.ndarray | None,
) -> ModalityContributions:
    """Per-sample attributions of the model's output (probabilities or values), same game."""
    output = "predict_proba" if predictions.classifier else "predict"

    def value(players: frozenset[int]) -> np.ndarray:
        return predictions.response(frozenset(names[i] for i in players), output)

    attributions, _ = _attribute(value, len(names), method, permutations)  # (M, n, ...)
    return ModalityContributions(
        values=np.moveaxis(attributions, 0, 1),  # (n, M, ...)
        modalities=tuple(names),
        classes=predictions.classes,
        output=value(frozenset(range(len(names)))),
        baseline=value(frozenset()),
        method=method,
    )
