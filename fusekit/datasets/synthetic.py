"""Synthetic multimodal data with known ground truth: how informative each modality is, how much
signal they share, and how noisy each modality is *for each sample*.

Generative model (``k = n_latent``; ``M`` modalities; all draws from one ``random_state``)::

    s_i ~ N(0, I_k)                         shared latent
    u_im ~ N(0, I_k)                        latent specific to modality m
    z_im = sqrt(shared) s_i + sqrt(1 - shared) u_im
    o_im = sqrt(a_m) z_im + sqrt(1 - a_m) e_im,   e_im ~ N(0, I_k)     a_m = informative[m]
    x_im = A_m o_im + sigma_im eps_im,      A_m ~ N(0, 1/k)^(d_m x k), eps_im ~ N(0, I_{d_m})
    sigma_im ~ U(noise_m)                   per-sample quality, returned as ground truth

    w_i = sum_{m: a_m > 0} z_im / sqrt(shared P^2 + (1 - shared) P)   P informative modalities;
                                            (what the target sees; unit variance per latent dim)
    classification: y_i = argmax_c (B w_i)_c, B's rows the vertices of a regular simplex (balanced)
    regression:     y_i = beta . w_i + target_noise * N(0, 1), |beta| = 1

So ``informative=0`` makes a modality independent of ``y``; ``shared=1`` makes the informative
modalities redundant (each alone determines ``y`` when noise-free) and ``shared=0`` complementary
(``y`` needs them all). Sequence modalities (``sequence_length``) repeat the signal ``A_m o_im`` at
every step with fresh noise per step: ``(n, T, d_m)``. ``missing_rate`` makes a modality absent
(all-NaN row) per sample; every sample keeps at least one modality: when all were dropped, one
of them, picked at random, is restored, so realised rates are a little lower (two modalities at
rates p, q: about p - pq/2 and q - pq/2).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.utils import Bunch, check_random_state

from fusekit.data import Modalities


def _per_modality(name: str, value: Any, n_modalities: int) -> list[Any]:
    """Broadcast a scalar (or a ``(low, high)`` pair for ``noise``) to one value per modality."""
    is_scalar = value is None or isinstance(value, numbers.Real)
    is_pair = name == "noise" and isinstance(value, tuple) and len(value) == 2
    if is_scalar or is_pair:
        return [value] * n_modalities
    values = list(value)
    if len(values) != n_modalities:
        raise ValueError(
            f"{name} must be one value or one per modality ({n_modalities}), got {len(values)}: "
            f"{value!r}."
        )
    return values


def _check_fraction(name: str, values: Sequence[float]) -> None:
    for value in values:
        if not isinstance(value, numbers.Real) or not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1] (per modality), got {value!r}.")


def _noise_range(value: Any) -> tuple[float, float]:
    low, high = (value, value) if isinstance(value, numbers.Real) else value
    if not (isinstance(low, numbers.Real) and isinstance(high, numbers.Real) and 0 <= low <= high):
        raise ValueError(f"noise must be sigma >= 0 or a (low, high) range, got {value!r}.")
    return float(low), float(high)


def _simplex(n_classes: int, n_latent: int, rng: np.random.RandomState) -> np.ndarray:
    """``(K, k)`` rows: a regular simplex's vertices, randomly rotated (equal class priors)."""
    centred = np.eye(n_classes) - 1.0 / n_classes  # (K, K), rank K - 1
    basis = np.linalg.svd(centred)[0][:, : n_classes - 1]  # (K, K - 1) orthonormal columns
    vertices = np.zeros((n_classes, n_latent))
    vertices[:, : n_classes - 1] = centred @ basis  # (K, k)
    rotation = np.linalg.qr(rng.normal(size=(n_latent, n_latent)))[0]  # (k, k)
    return vertices @ rotation


def _generate(
    n_samples: int,
    n_features: int | Sequence[int],
    n_modalities: int | None,
    n_latent: int,
    sequence_length: int | Sequence[int | None] | None,
    informative: float | Sequence[float],
    shared: float,
    noise: Any,
    missing_rate: float | Sequence[float],
    names: Sequence[str] | None,
    rng: np.random.RandomState,
) -> tuple[Modalities, np.ndarray, Bunch]:
    if isinstance(n_features, numbers.Integral):
        count = 2 if n_modalities is None else n_modalities
        widths = [int(n_features)] * count
    else:
        widths = [int(w) for w in n_features]
        if n_modalities is not None and n_modalities != len(widths):
            raise ValueError(
                f"n_modalities={n_modalities} but n_features has {len(widths)} widths: {widths}."
            )
    count = len(widths)
    if count < 1 or min(widths) < 1:
        raise ValueError(f"n_features must give >= 1 modality of width >= 1, got {n_features!r}.")
    if not isinstance(n_samples, numbers.Integral) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}.")
    if not isinstance(n_latent, numbers.Integral) or n_latent < 1:
        raise ValueError(f"n_latent must be a positive integer, got {n_latent!r}.")
    names = [f"m{i}" for i in range(count)] if names is None else [str(n) for n in names]
    if len(names) != count or len(set(names)) != count:
        raise ValueError(f"names must be {count} distinct names, got {names!r}.")
    lengths = _per_modality("sequence_length", sequence_length, count)
    for length in lengths:
        if length is not None and (not isinstance(length, numbers.Integral) or length < 1):
            raise ValueError(
                f"sequence_length must be None or >= 1 (per modality), got {length!r}."
            )
    strengths = _per_modality("informative", informative, count)
    _check_fraction("informative", strengths)
    _check_fraction("shared", [shared])
    noise_ranges = [_noise_range(v) for v in _per_modality("noise", noise, count)]
    missing = _per_modality("missing_rate", missing_rate, count)
    _check_fraction("missing_rate", missing)

    shared_latent = rng.normal(size=(n_samples, n_latent))  # s: (n, k)
    target_latent = np.zeros((n_samples, n_latent))  # w: (n, k)
    arrays: dict[str, np.ndarray] = {}
    sigma = np.zeros((n_samples, count))
    for m, (name, width) in enumerate(zip(names, widths, strict=True)):
        specific = rng.normal(size=(n_samples, n_latent))  # u_m: (n, k)
        latent = np.sqrt(shared) * shared_latent + np.sqrt(1 - shared) * specific  # z_m
        if strengths[m] > 0:
            target_latent = target_latent + latent
        nuisance = rng.normal(size=(n_samples, n_latent))
        observed = np.sqrt(strengths[m]) * latent + np.sqrt(1 - strengths[m]) * nuisance  # o_m
        loading = rng.normal(scale=1 / np.sqrt(n_latent), size=(width, n_latent))  # A_m
        signal = observed @ loading.T  # (n, d_m)
        sigma[:, m] = rng.uniform(*noise_ranges[m], size=n_samples)  # sigma_m: (n,)
        if lengths[m] is None:
            arrays[name] = signal + sigma[:, m, None] * rng.normal(size=signal.shape)
        else:
            steps = rng.normal(size=(n_samples, lengths[m], width))  # (n, T, d_m)
            arrays[name] = signal[:, None, :] + sigma[:, m, None, None] * steps

    n_informative = sum(a > 0 for a in strengths)
    if n_informative:
        target_latent /= np.sqrt(shared * n_informative**2 + (1 - shared) * n_informative)
    present = rng.uniform(size=(n_samples, count)) >= np.asarray(missing)  # (n, M)
    for row in np.flatnonzero(~present.any(axis=1)):
        present[row, rng.randint(count)] = True
    for m, name in enumerate(names):
        arrays[name][~present[:, m]] = np.nan
    info = Bunch(noise=sigma, present=present, names=names, latent=target_latent)
    return Modalities(arrays), target_latent, info


def make_multimodal_classification(
    n_samples: int = 200,
    n_features: int | Sequence[int] = 10,
    n_classes: int = 2,
    *,
    n_modalities: int | None = None,
    n_latent: int | None = None,
    sequence_length: int | Sequence[int | None] | None = None,
    informative: float | Sequence[float] = 1.0,
    shared: float = 0.5,
    noise: Any = 0.5,
    missing_rate: float | Sequence[float] = 0.0,
    names: Sequence[str] | None = None,
    return_info: bool = False,
    random_state: int | np.random.RandomState | None = None,
) -> tuple[Modalities, np.ndarray] | tuple[Modalities, np.ndarray, Bunch]:
    """Multimodal classification data, like ``sklearn.datasets.make_classification`` per modality.

    Parameters:
        n_samples: rows.
        n_features: one width for every modality, or one per modality (sets their number).
        n_classes: classes, equally likely.
        n_modalities: number of modalities when ``n_features`` is one int (default 2).
        n_latent: latent dimension ``k`` (default ``max(4, n_classes - 1)``; >= ``n_classes - 1``).
        sequence_length: ``None`` (vectors), ``T`` for all, or one per modality (``None`` = vector).
        informative: ``a_m`` in [0, 1] per modality (0: independent of ``y``).
        shared: fraction of the signal shared by all modalities, in [0, 1].
        noise: per-sample noise std: ``sigma``, a ``(low, high)`` tuple (range drawn per sample),
            or a list with one of those per modality.
        missing_rate: probability (per modality) that a sample's modality is absent (NaN).
        names: modality names (default ``m0, m1, ...``).
        return_info: also return a Bunch with ``noise`` ``(n, M)`` (sigma per sample and
            modality), ``present`` ``(n, M)`` bool, ``names`` and ``latent`` ``(n, k)`` (``w``).
        random_state: seed; same seed, same data.

    Returns ``(X, y)`` or ``(X, y, info)``; ``y`` is int in ``0..n_classes-1``.
    """
    if not isinstance(n_classes, numbers.Integral) or n_classes < 2:
        raise ValueError(f"n_classes must be an integer >= 2, got {n_classes!r}.")
    n_latent = max(4, n_classes - 1) if n_latent is None else n_latent
    if n_latent < n_classes - 1:
        raise ValueError(f"n_latent must be >= n_classes - 1 = {n_classes - 1}, got {n_latent}.")
    rng = check_random_state(random_state)
    X, latent, info = _generate(
        n_samples, n_features, n_modalities, n_latent, sequence_length, informative, shared,
        noise, missing_rate, names, rng,
    )  # fmt: skip
    vertices = _simplex(n_classes, n_latent, rng)  # B: (K, k)
    y = np.argmax(latent @ vertices.T, axis=1)  # (n,)
    return (X, y, info) if return_info else (X, y)


def make_multimodal_regression(
    n_samples: int = 200,
    n_features: int | Sequence[int] = 10,
    *,
    n_modalities: int | None = None,
    n_latent: int = 4,
    sequence_length: int | Sequence[int | None] | None = None,
    informative: float | Sequence[float] = 1.0,
    shared: float = 0.5,
    noise: Any = 0.5,
    target_noise: float = 0.1,
    missing_rate: float | Sequence[float] = 0.0,
    names: Sequence[str] | None = None,
    return_info: bool = False,
    random_state: int | np.random.RandomState | None = None,
) -> tuple[Modalities, np.ndarray] | tuple[Modalities, np.ndarray, Bunch]:
    """Multimodal regression data: ``y = beta . w + target_noise * N(0, 1)``.

    Same parameters as :func:`make_multimodal_classification` (no ``n_classes``), plus
    ``target_noise`` (std of the noise added to ``y``). ``info`` also holds ``coef`` (``beta``).
    """
    if not isinstance(target_noise, numbers.Real) or target_noise < 0:
        raise ValueError(f"target_noise must be a number >= 0, got {target_noise!r}.")
    rng = check_random_state(random_state)
    X, latent, info = _generate(
        n_samples, n_features, n_modalities, n_latent, sequence_length, informative, shared,
        noise, missing_rate, names, rng,
    )  # fmt: skip
    coef = rng.normal(size=n_latent)
    coef /= np.linalg.norm(coef)  # beta: (k,), unit norm
    y = latent @ coef + target_noise * rng.normal(size=n_samples)  # (n,)
    info.coef = coef
    return (X, y, info) if return_info else (X, y)
