"""VGMR (Value-Gated Modality Refiner) for fusekit, registered as calibration ``vgmr``.

Liu et al., "Before Fusion, Ask What to Keep: Contextual Calibration of Multimodal Signals",
arXiv 2606.02679 (2026). See :mod:`fusekit_vgmr.refiner` for the equations and
:mod:`fusekit_vgmr.objective` for the auxiliary losses.
"""

from __future__ import annotations

from fusekit.plugin import hookimpl
from fusekit_vgmr.refiner import DIAGNOSTICS_KEY, RefinerSignals, ValueGatedModalityRefiner

__all__ = ["DIAGNOSTICS_KEY", "RefinerSignals", "ValueGatedModalityRefiner"]


@hookimpl
def fusekit_calibrations() -> dict[str, type]:
    return {"vgmr": ValueGatedModalityRefiner}
