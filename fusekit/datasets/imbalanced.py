"""Two-modality classification data with a known, tunable modality imbalance.

What balancing methods (OGM-GE, AGM, PMR, ...) are for: one modality is learned fast but tells
less, the other is learned slowly but carries what the first lacks; joint training fits the fast
one, its loss falls, and the slow one is left under-trained. On data whose modalities are equally
easy (all mfeat views come from the same digit images) there is nothing to balance.

Generative model (``K = n_groups · n_fine`` classes, equally likely; all draws from one
``random_state``; ``N(0, I)`` noise of unit variance on every feature)::

    y_i = g_i · F + f_i,     g_i ~ U{0..G-1} (group), f_i ~ U{0..F-1} (class within the group)
    fast:  x_i,fast = s_fast · u_{g_i} + ε,   u_0..u_{G-1} orthonormal in R^{d_fast}
    slow:  x_i,slow = s_slow · R v_{y_i} + ε, v_0..v_{K-1} a regular simplex (unit norm) in
                                              R^{K-1}, R a random (d_slow, K-1) orthonormal map
    s_slow = slow_strength,  s_fast = imbalance · slow_strength

So the fast modality tells only the group, with a margin ``imbalance`` times the slow one's and
concentrated on ``G`` of its features; the slow one tells the whole class, weakly and spread over
``d_slow`` features: alone it reaches a lower accuracy per step of training but is the only source
of ``f``. The modalities are independent given ``y``, so the Bayes posterior is exact::

    log p(y | x) = const − ||x_fast − s_fast u_{g(y)}||² / 2 − ||x_slow − s_slow R v_y||² / 2

(either term alone for one modality). ``info.bayes_accuracy`` holds E[max_y p(y | x)] over the
drawn rows for ``fast``, ``slow`` and ``both`` (the Bayes accuracy, estimated on the sample with the
true posterior); for two groups the fast one has the closed form Φ(s_fast / √2) / F.
"""

from __future__ import annotations

import numbers

import numpy as np
from scipy.special import logsumexp
from sklearn.utils import Bunch, check_random_state

from fusekit.data import Modalities


def _check_positive_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def _check_positive_real(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise ValueError(f"{name} must be a number > 0, got {value!r}.")
    if not np.isfinite(float(value)):
        raise ValueError(f"{name} must be finite, got {value!r}.")
    return float(value)


def _orthonormal(rows: int, columns: int, rng: np.random.RandomState) -> np.ndarray:
    """``(rows, columns)`` with orthonormal columns, uniformly rotated."""
    return np.linalg.qr(rng.normal(size=(rows, columns)))[0][:, :columns]


def _unit_simplex(n_classes: int) -> np.ndarray:
    """``(K, K - 1)`` vertices of a regular simplex of unit norm, centred on 0."""
    centred = np.eye(n_classes) - 1.0 / n_classes  # (K, K), rank K - 1
    basis = np.linalg.svd(centred)[0][:, : n_classes - 1]  # (K, K - 1)
    vertices = centred @ basis
    return vertices / np.linalg.norm(vertices, axis=1, keepdims=True)


def _log_likelihoods(x: np.ndarray, means: np.ndarray) -> np.ndarray:
    """``(n, K)`` log N(x; mean_y, I) up to a constant, for ``(n, d)`` rows and ``(K, d)`` means."""
    return -0.5 * ((x[:, None, :] - means[None, :, :]) ** 2).sum(axis=2)


def _bayes_accuracy(log_likelihood: np.ndarray) -> float:
    """E[max_y p(y | x)] with equal priors: the Bayes classifier's expected accuracy."""
    posterior = np.exp(log_likelihood - logsumexp(log_likelihood, axis=1, keepdims=True))
    return float(posterior.max(axis=1).mean())


def make_imbalanced_classification(
    n_samples: int = 1000,
    *,
    imbalance: float = 4.0,
    slow_strength: float = 1.5,
    n_groups: int = 2,
    n_fine: int = 2,
    n_fast_features: int = 4,
    n_slow_features: int = 32,
    names: tuple[str, str] = ("fast", "slow"),
    return_info: bool = False,
    random_state: int | np.random.RandomState | None = None,
) -> tuple[Modalities, np.ndarray] | tuple[Modalities, np.ndarray, Bunch]:
    """Two modalities: one fast to learn but telling only the group, one slow but complementary.

    Parameters:
        n_samples: rows.
        imbalance: s_fast / s_slow, the fast modality's margin in units of the slow one's
            (1: equal margins; larger: the fast one dominates joint training sooner).
        slow_strength: s_slow, the norm of the slow modality's class means (noise std 1).
        n_groups: G, groups the fast modality tells apart (<= ``n_fast_features``).
        n_fine: F, classes within a group, told apart by the slow modality only.
        n_fast_features, n_slow_features: widths (``n_slow_features >= G·F − 1``).
        names: the two modalities' names (fast first).
        return_info: also return a Bunch with ``group`` / ``fine`` ``(n,)``, ``bayes_accuracy``
            (``{"fast", "slow", "both"}``), ``fast_means`` ``(K, d_fast)``, ``slow_means``
            ``(K, d_slow)`` (the class means), and ``names``.
        random_state: seed; same seed, same data.

    Returns ``(X, y)`` or ``(X, y, info)``; ``y`` is int in ``0..G·F − 1``.
    """
    n_samples = _check_positive_int("n_samples", n_samples, 2)
    imbalance = _check_positive_real("imbalance", imbalance)
    slow_strength = _check_positive_real("slow_strength", slow_strength)
    n_groups = _check_positive_int("n_groups", n_groups, 2)
    n_fine = _check_positive_int("n_fine", n_fine, 2)
    n_classes = n_groups * n_fine
    d_fast = _check_positive_int("n_fast_features", n_fast_features, n_groups)
    d_slow = _check_positive_int("n_slow_features", n_slow_features, n_classes - 1)
    if len(names) != 2 or len(set(names)) != 2:
        raise ValueError(f"names must be two different modality names, got {names!r}.")
    rng = check_random_state(random_state)

    group = rng.randint(n_groups, size=n_samples)  # (n,)
    fine = rng.randint(n_fine, size=n_samples)
    y = group * n_fine + fine
    fast_strength = imbalance * slow_strength
    group_directions = _orthonormal(d_fast, n_groups, rng).T  # (G, d_fast) orthonormal rows
    fast_means = fast_strength * group_directions[np.arange(n_classes) // n_fine]  # (K, d_fast)
    rotation = _orthonormal(d_slow, n_classes - 1, rng)  # (d_slow, K - 1)
    slow_means = slow_strength * _unit_simplex(n_classes) @ rotation.T  # (K, d_slow)
    x_fast = fast_means[y] + rng.normal(size=(n_samples, d_fast))
    x_slow = slow_means[y] + rng.normal(size=(n_samples, d_slow))

    X = Modalities({names[0]: x_fast, names[1]: x_slow})
    if not return_info:
        return X, y
    fast_ll, slow_ll = _log_likelihoods(x_fast, fast_means), _log_likelihoods(x_slow, slow_means)
    bayes = {
        "fast": _bayes_accuracy(fast_ll),
        "slow": _bayes_accuracy(slow_ll),
        "both": _bayes_accuracy(fast_ll + slow_ll),
    }
    info = Bunch(
        group=group,
        fine=fine,
        bayes_accuracy=bayes,
        fast_means=fast_means,
        slow_means=slow_means,
        names=list(names),
    )
    return X, y, info
