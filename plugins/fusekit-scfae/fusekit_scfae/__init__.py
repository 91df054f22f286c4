"""SCFAE fusion for fusekit: the ``scfae`` fusion method and its ablation presets.

Xiong et al., "Multimodal Fusion via Self-Consistent Task-Gradient Fields", arXiv:2410.15475v2.
See :mod:`fusekit_scfae.fusion` for the equations and the choices made where the paper is silent.
"""

from __future__ import annotations

from fusekit.plugin import hookimpl
from fusekit_scfae.blocks import GeluLinear, SwiGLU
from fusekit_scfae.diagnostics import encoder_gradient_cosine, gradient_cosine
from fusekit_scfae.fusion import SCFAEFusion, source_positions, split_point
from fusekit_scfae.loss import reconstruction_loss
from fusekit_scfae.presets import PRESETS

__all__ = [
    "GeluLinear",
    "PRESETS",
    "SCFAEFusion",
    "SwiGLU",
    "encoder_gradient_cosine",
    "gradient_cosine",
    "reconstruction_loss",
    "source_positions",
    "split_point",
]


@hookimpl
def fusekit_fusions() -> dict[str, type]:
    return {"scfae": SCFAEFusion, **PRESETS}
