"""Running, weighted mean and variance over chunks: the standardisation of a streamed ``fit``.

Each chunk's weighted mean and sum of squared deviations are computed in float64 and merged
into the running ones with Chan, Golub and LeVeque's pairwise update (the parallel form of
Welford's algorithm), which stays accurate where accumulating sums of squares cancels:

    W = W_a + W_b,   δ = μ_b - μ_a,   μ = μ_a + δ W_b / W,   M2 = M2_a + M2_b + δ² W_a W_b / W

and the population variance is ``M2 / W`` (``np.std(ddof=0)``, as ``Standardizer.fit``).
Written here because scikit-learn's ``StandardScaler.partial_fit`` pools over rows only (not
the time steps of a sequence or the pixels of an image channel) and knows no presence mask.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fusekit.data import PreparedInput, Standardizer, _stat_axes


@dataclass
class RunningMoments:
    """Weighted mean and ``M2`` over ``axes`` of a stream of arrays, merged chunk by chunk."""

    axes: tuple[int, ...]
    weight: np.ndarray | None = None  # W: total weight, keepdims shape
    mean: np.ndarray | None = None
    m2: np.ndarray | None = None

    def update(self, values: np.ndarray, weights: np.ndarray) -> None:
        """Merge ``values`` ``(n, ...)``, each element weighted by ``weights`` (broadcastable to
        ``values``; a zero weight leaves the element out)."""
        values = values.astype(np.float64, copy=False)
        w = np.broadcast_to(weights.astype(np.float64, copy=False), values.shape)
        total = w.sum(axis=self.axes, keepdims=True)
        safe = np.where(total > 0, total, 1.0)
        mean = (w * values).sum(axis=self.axes, keepdims=True) / safe
        m2 = (w * (values - mean) ** 2).sum(axis=self.axes, keepdims=True)
        if self.weight is None:
            self.weight, self.mean, self.m2 = total, mean, m2
            return
        merged = self.weight + total
        safe_merged = np.where(merged > 0, merged, 1.0)
        delta = mean - self.mean
        self.mean = self.mean + delta * total / safe_merged
        self.m2 = self.m2 + m2 + delta**2 * self.weight * total / safe_merged
        self.weight = merged

    def mean_std(self) -> tuple[np.ndarray, np.ndarray]:
        """The weighted mean and population standard deviation (zeros where nothing counted)."""
        if self.weight is None:
            raise ValueError("no values were merged")
        safe = np.where(self.weight > 0, self.weight, 1.0)
        return self.mean, np.sqrt(np.maximum(self.m2 / safe, 0.0))


@dataclass
class StreamingStandardizer:
    """The per-modality statistics of ``Standardizer.fit``, over chunks: present rows only,
    pooled per feature (vectors), per feature over time steps that are not padding (sequences)
    or per channel (images); rows weighted by ``sample_weight`` when given."""

    moments: dict[str, RunningMoments] = field(default_factory=dict)

    def update(self, data: PreparedInput, sample_weight: np.ndarray | None = None) -> None:
        for position, (name, array) in enumerate(data.arrays.items()):
            rows = data.mask[:, position].astype(np.float64)  # absent rows weigh 0
            if sample_weight is not None:
                rows = rows * sample_weight
            weights = rows.reshape(-1, *([1] * (array.ndim - 1)))
            if name in data.steps:  # padded steps do not count
                weights = weights * data.steps[name][:, :, None]
            moments = self.moments.setdefault(name, RunningMoments(_stat_axes(array.ndim)))
            moments.update(array, weights)

    def present(self, name: str) -> bool:
        """Whether any row of modality ``name`` counted."""
        moments = self.moments.get(name)
        return moments is not None and bool((moments.weight > 0).any())

    def standardizer(self) -> Standardizer:
        """A :class:`~fusekit.data.Standardizer` with the merged statistics (float32, with
        ``Standardizer.fit``'s rule for constant features: scale 1)."""
        result = Standardizer()
        for name, moments in self.moments.items():
            mean, scale = moments.mean_std()
            scale = np.where(moments.weight > 0, scale, 1.0)
            scale[scale < 1e-12 * np.maximum(1.0, np.abs(mean))] = 1.0
            result.means[name] = mean.astype(np.float32)
            result.scales[name] = scale.astype(np.float32)
        return result
