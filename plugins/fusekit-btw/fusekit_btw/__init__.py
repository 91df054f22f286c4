"""fusekit-btw: BTW bi-level KL/MI modality weighting (Hou et al., Findings of EMNLP 2025).

Registers the weightings ``btw`` (bi-level, Eq. 9) and ``btw_local`` (instance-level KL, Eq. 8),
and the fusion ``moe`` (FuseMoE-style sparse mixture of experts, the paper's host model).
"""

from __future__ import annotations

from fusekit.plugin import hookimpl
from fusekit_btw.moe_fusion import SparseMoEFusion
from fusekit_btw.weighting import BTW, BTWLocal

__all__ = ["BTW", "BTWLocal", "SparseMoEFusion"]


@hookimpl
def fusekit_weightings() -> dict[str, type]:
    return {"btw": BTW, "btw_local": BTWLocal}


@hookimpl
def fusekit_fusions() -> dict[str, type]:
    return {"moe": SparseMoEFusion}
