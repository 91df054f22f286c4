"""What one forward pass returns: :class:`FusionOutput`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

from fusekit.plugin.batch import ModalityBatch


@dataclass
class FusionOutput:
    """The result of :meth:`FusionNetwork.forward`.

    Attributes:
        logits: ``(B, n_outputs)`` fused predictions (class logits or standardised regression
            outputs). Predictions use these only.
        mask: ``(B, M)`` presence mask the pass ran with (after any training-time perturbation).
        features: ``{m: (B, *shape)}`` backbone outputs, absent rows zeroed.
        steps: ``{m: (B, T)}`` real-step masks of padded sequence modalities (see
            ``ModalityBatch.steps``); pool with ``fusekit.plugin.as_vector(h, steps.get(m))``.
        calibrated: ``{m: (B, *shape)}`` features after calibration (what fusion received, before
            any per-sample modality weights).
        fused: the fusion's output before the head, or ``None`` when the fusion emits logits.
        unimodal_logits: ``{m: (B, n_outputs)}`` from per-modality heads, when a component asked
            for them (``needs_unimodal_heads``), else ``None``.
        modality_weights: ``(B, M)`` per-sample weights a weighting scheme applied, if any.
        aux_losses: named scalar losses added during the pass (e.g. a reconstruction loss);
            ``get_loss`` adds them to the task loss.
        diagnostics: anything a component wants to expose for analysis (detached or not).
        batch: the (possibly perturbed) input batch of this pass: ``batch.index`` holds the rows'
            numbers in training, the raw inputs are there for plugins that need them.
    """

    logits: Tensor | None = None
    mask: Tensor | None = None
    features: dict[str, Tensor] = field(default_factory=dict)
    steps: dict[str, Tensor] = field(default_factory=dict)
    calibrated: dict[str, Tensor] = field(default_factory=dict)
    fused: Tensor | None = None
    unimodal_logits: dict[str, Tensor] | None = None
    modality_weights: Tensor | None = None
    aux_losses: dict[str, Tensor] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    batch: ModalityBatch | None = None

    @property
    def all_present(self) -> bool:
        """True when every modality is known present in every row (masking may be skipped)."""
        return self.batch is not None and self.batch.complete and self.mask is self.batch.mask

    def add_loss(self, name: str, value: Tensor) -> None:
        """Add a scalar auxiliary loss; a name used twice is summed."""
        if value.dim() != 0:
            raise ValueError(
                f"auxiliary loss {name!r} must be a scalar, got shape {tuple(value.shape)}"
            )
        self.aux_losses[name] = self.aux_losses[name] + value if name in self.aux_losses else value
