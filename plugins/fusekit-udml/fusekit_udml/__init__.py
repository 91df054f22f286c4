"""UDML, "Unbiased Dynamic Multimodal Learning", as the fusekit weighting ``udml``.

``FusionClassifier(weighting="udml", weighting__preset="paper" | "official_code")``; see
:mod:`fusekit_udml.weighting` for the equations and :mod:`fusekit_udml.presets` for the presets.
"""

from __future__ import annotations

from fusekit.plugin import hookimpl
from fusekit_udml.inspection import modality_weights
from fusekit_udml.weighting import UDMLWeighting

__all__ = ["UDMLWeighting", "modality_weights"]


@hookimpl
def fusekit_weightings() -> dict[str, type]:
    return {"udml": UDMLWeighting}
