"""No weighting: plain joint training on the fused task loss."""

from __future__ import annotations

from fusekit.plugin import Weighting, hookimpl


class NoWeighting(Weighting):
    """Plain joint training: the mean task loss of the fused prediction."""

    data_parallel_safe = True  # no state, no batch statistics


@hookimpl
def fusekit_weightings() -> dict[str, type]:
    return {"none": NoWeighting}
