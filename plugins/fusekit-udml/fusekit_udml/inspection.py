"""Reading UDML's per-sample modality weights off a fitted estimator (Fig. 1 / Fig. 3 analyses)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


@torch.no_grad()
def modality_weights(estimator: Any, X: Any, batch_size: int = 1024) -> np.ndarray:
    """``(n, M)`` weights w the fitted network applies to each sample's modalities (Eq. 7).

    Columns follow ``estimator.modalities_``; rows sum to 1 over the present modalities. Works for
    any weighting that sets ``FusionOutput.modality_weights``.
    """
    chunks = []
    for output in estimator.outputs(X, batch_size):
        if output.modality_weights is None:
            raise ValueError(
                f"weighting {estimator.weighting!r} sets no modality weights; use a "
                "weighting that re-weights modalities, such as 'udml'."
            )
        chunks.append(output.modality_weights.cpu())
    return torch.cat(chunks).numpy()
