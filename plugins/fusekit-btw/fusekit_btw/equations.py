"""BTW's weight equations as plain float64 NumPy functions (no torch, no autograd).

Hou, Wang, Wang, "BTW: A Non-Parametric Variance Stabilization Framework for Multimodal Model
Integration", Findings of EMNLP 2025 (arXiv 2508.18551), Sec. 3 and Appendices C, E. The paper's
equation bodies are lost in its text copy; these are the rebuilt forms of
``specs/seed-004-btw.md`` §4 (prose + the authors' code). Shapes: N samples, M modalities,
C classes, K regression outputs; ``mask`` ``(N, M)`` bool marks present modalities.

(5)  KL_{i,m} = Σ_c p^m_{i,c} log(p^m_{i,c} / p^MM_{i,c})                      classification
(15) KL(N(μ_p, σ_p²) ‖ N(μ_q, σ_q²)) = log(σ_q/σ_p) + (σ_p² + (μ_p − μ_q)²)/(2σ_q²) − 1/2
(6)  KL_{i,m} = (15) with P = N(ŷ^m_i, (y_i − ŷ^m_i)²), Q = N(ŷ^MM_i, (y_i − ŷ^MM_i)²)    regression
     KL̃_{i,m} = KL_{i,m} / Σ_{m' present} KL_{i,m'}       (per-instance sum-normalisation)
(7)  I_m = I(Ŷ^m; Ŷ^MM); Ĩ_m = max(I_m, 1e-5) / Σ_m' max(I_m', 1e-5)
(8)  BTW-local:  ŵ_{i,m} = KL̃_{i,m}
(9)  BTW:        ŵ_{i,m} = KL̃_{i,m} Ĩ_m / Σ_{m' present} KL̃_{i,m'} Ĩ_m'
(10) w^{(t)} = α_t ŵ^{(t)} + (1 − α_t) w^{(t−1)},  w^{(0)} = 1;  α ± step on (no) improvement

KL values are floored at 1e-5 (authors' code) so a modality whose unimodal prediction equals the
multimodal one keeps a tiny positive weight; absent modalities get weight exactly 0 and take no
part in any normalisation or MI estimate. K regression outputs are treated as independent
Gaussians, so the KL of a sample is the sum over outputs, and the MI of a modality the mean over
outputs of the per-output k-NN estimate (our choice; the paper has K = 1).
"""

from __future__ import annotations

import numpy as np

KL_FLOOR = 1e-5
MI_FLOOR = 1e-5
PROBABILITY_FLOOR = 1e-8
ZERO_ROW_SUM = 1e-6
LEVELS = ("bi", "local", "global_kl", "global_mi")


def categorical_kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Eq. (5): KL(p ‖ q) in nats over the last axis; ``p``, ``q`` ``(..., C)`` -> ``(...)``.

    Both are clipped to [1e-8, 1] and renormalised first (``specs`` §10.7).
    """
    p = np.clip(np.asarray(p, dtype=np.float64), PROBABILITY_FLOOR, 1.0)
    q = np.clip(np.asarray(q, dtype=np.float64), PROBABILITY_FLOOR, 1.0)
    p = p / p.sum(axis=-1, keepdims=True)
    q = q / q.sum(axis=-1, keepdims=True)
    return (p * np.log(p / q)).sum(axis=-1)


def gaussian_kl(
    mean_p: np.ndarray, std_p: np.ndarray, mean_q: np.ndarray, std_q: np.ndarray
) -> np.ndarray:
    """Eq. (15): KL(N(mean_p, std_p²) ‖ N(mean_q, std_q²)), element-wise."""
    mean_p, std_p, mean_q, std_q = (
        np.asarray(a, dtype=np.float64) for a in (mean_p, std_p, mean_q, std_q)
    )
    return np.log(std_q / std_p) + (std_p**2 + (mean_p - mean_q) ** 2) / (2.0 * std_q**2) - 0.5


def instance_kl_classification(
    unimodal_probs: np.ndarray, multimodal_probs: np.ndarray, mask: np.ndarray
) -> np.ndarray:
    """Eq. (5) per sample and modality: ``(N, M, C)``, ``(N, C)`` -> KL ``(N, M)``.

    Floored at 1e-5 where present; 0 where absent.
    """
    kl = categorical_kl(unimodal_probs, multimodal_probs[:, None, :])  # (N, M)
    return np.where(mask, np.maximum(kl, KL_FLOOR), 0.0)


def instance_kl_regression(
    unimodal_pred: np.ndarray,
    multimodal_pred: np.ndarray,
    unimodal_std: np.ndarray,
    multimodal_std: np.ndarray,
    mask: np.ndarray,
    std_floor: float,
) -> np.ndarray:
    """Eq. (6) per sample and modality, summed over K outputs -> KL ``(N, M)``.

    ``unimodal_pred`` ``(N, M, K)``, ``multimodal_pred`` ``(N, K)``; the stds broadcast against
    them (per-sample residuals ``|y − ŷ|`` in training, pooled RMS residuals at predict). Stds are
    floored at ``std_floor`` before the log and the division.
    """
    std_p = np.maximum(np.asarray(unimodal_std, dtype=np.float64), std_floor)  # (N|1, M, K)
    std_q = np.maximum(np.asarray(multimodal_std, dtype=np.float64), std_floor)  # (N|1, K)
    kl = gaussian_kl(unimodal_pred, std_p, multimodal_pred[:, None, :], std_q[:, None, :])
    kl = kl.sum(axis=-1)  # (N, M)
    return np.where(mask, np.maximum(kl, KL_FLOOR), 0.0)


def normalise_rows(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-instance sum-normalisation over present modalities ``(N, M) -> (N, M)``.

    Absent entries are 0; a zero row sum is replaced by 1e-6 (authors' code), so a sample with no
    modality present keeps a row of zeros.
    """
    values = np.where(mask, values, 0.0)
    total = values.sum(axis=1, keepdims=True)
    return values / np.where(total > 0, total, ZERO_ROW_SUM)


def modality_mi_classification(
    unimodal_labels: np.ndarray, multimodal_labels: np.ndarray, mask: np.ndarray
) -> np.ndarray:
    """Eq. (7) with Eqs. (17–19): ``mutual_info_score(ŷ^m, ŷ^MM)`` over samples where m is present.

    ``unimodal_labels`` ``(N, M)`` and ``multimodal_labels`` ``(N,)`` are argmax classes.
    Returns the raw MI ``(M,)`` in nats (0 for a modality present in fewer than 2 samples).
    """
    from sklearn.metrics import mutual_info_score  # here: registering the plugin stays light

    mi = np.zeros(unimodal_labels.shape[1])
    for m in range(unimodal_labels.shape[1]):
        rows = mask[:, m]
        if rows.sum() >= 2:
            mi[m] = mutual_info_score(unimodal_labels[rows, m], multimodal_labels[rows])
    return mi


def modality_mi_regression(
    unimodal_pred: np.ndarray,
    multimodal_pred: np.ndarray,
    mask: np.ndarray,
    random_state: int,
    n_neighbors: int = 3,
) -> np.ndarray:
    """Eq. (7), continuous: k-NN ``mutual_info_regression`` (k = 3), mean over the K outputs.

    ``unimodal_pred`` ``(N, M, K)``, ``multimodal_pred`` ``(N, K)``; samples where m is absent are
    left out. Returns raw MI ``(M,)`` (0 for a modality present in ≤ ``n_neighbors`` samples).
    """
    from sklearn.feature_selection import mutual_info_regression  # here, as above

    n_modalities, n_outputs = unimodal_pred.shape[1], unimodal_pred.shape[2]
    mi = np.zeros(n_modalities)
    for m in range(n_modalities):
        rows = mask[:, m]
        if rows.sum() <= n_neighbors:
            continue
        mi[m] = np.mean(
            [
                mutual_info_regression(
                    unimodal_pred[rows, m, k].reshape(-1, 1),
                    multimodal_pred[rows, k],
                    n_neighbors=n_neighbors,
                    random_state=random_state,
                )[0]
                for k in range(n_outputs)
            ]
        )
    return mi


def normalise_mi(mi: np.ndarray) -> np.ndarray:
    """Ĩ_m = max(I_m, 1e-5) / Σ_m' max(I_m', 1e-5): sums to 1 over modalities ``(M,)``."""
    floored = np.maximum(np.asarray(mi, dtype=np.float64), MI_FLOOR)
    return floored / floored.sum()


def combine(
    kl_normalised: np.ndarray, mi_normalised: np.ndarray, mask: np.ndarray, level: str
) -> np.ndarray:
    """Eqs. (8), (9) and the Sec. 6.1 ablations: ŵ ``(N, M)`` from KL̃ ``(N, M)`` and Ĩ ``(M,)``.

    ``"local"`` (8): KL̃. ``"bi"`` (9): KL̃·Ĩ renormalised per sample. ``"global_kl"``: the mean of
    KL̃_{·,m} over samples where m is present, one constant per modality (the paper's definition;
    the authors' code instead compares data-set-level Gaussians). ``"global_mi"``: Ĩ_m.
    Absent modalities get 0 in every variant.
    """
    if level == "local":
        return np.where(mask, kl_normalised, 0.0)
    if level == "bi":
        return normalise_rows(kl_normalised * mi_normalised[None, :], mask)
    if level == "global_kl":
        counts = np.maximum(mask.sum(axis=0), 1)
        per_modality = np.where(mask, kl_normalised, 0.0).sum(axis=0) / counts  # (M,)
        return np.where(mask, per_modality[None, :], 0.0)
    if level == "global_mi":
        return np.where(mask, mi_normalised[None, :], 0.0)
    raise ValueError(f"btw: level must be one of {LEVELS}, got {level!r}")


def ema(previous: np.ndarray, new: np.ndarray, alpha: float) -> np.ndarray:
    """Eq. (10): w^{(t)} = α ŵ^{(t)} + (1 − α) w^{(t−1)}."""
    return alpha * new + (1.0 - alpha) * previous


def next_alpha(alpha: float, improved: bool, step: float, on_improve: str) -> float:
    """α_{t+1} = clip(α_t ± step, 0, 1): + on improvement with ``on_improve="increase"`` (paper)."""
    sign = 1.0 if improved else -1.0
    if on_improve == "decrease":
        sign = -sign
    return float(np.clip(alpha + sign * step, 0.0, 1.0))
