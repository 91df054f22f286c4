"""No calibration: features go to fusion unchanged."""

from __future__ import annotations

from torch import Tensor

from fusekit.plugin import Calibration, FusionOutput, hookimpl


class NoCalibration(Calibration):
    """Leave each modality's features as the backbone produced them."""

    def forward(
        self, features: dict[str, Tensor], mask: Tensor, output: FusionOutput
    ) -> dict[str, Tensor]:
        return features


@hookimpl
def fusekit_calibrations() -> dict[str, type]:
    return {"none": NoCalibration}
