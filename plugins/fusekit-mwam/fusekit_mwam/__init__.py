"""fusekit-mwam: MWAM, frequency-ratio modality weight allocation (Lu et al., ICLR 2026).

Registers the weighting ``mwam``; the metric is reusable as :func:`frequency_ratio_metric`.
"""

from __future__ import annotations

from fusekit.plugin import hookimpl
from fusekit_mwam.allocation import allocation_weight, update_and_allocate
from fusekit_mwam.dct import dct_matrix
from fusekit_mwam.frm import frequency_ratio_metric
from fusekit_mwam.weighting import MWAM

__all__ = [
    "MWAM",
    "allocation_weight",
    "dct_matrix",
    "frequency_ratio_metric",
    "update_and_allocate",
]


@hookimpl
def fusekit_weightings() -> dict[str, type]:
    return {"mwam": MWAM}
