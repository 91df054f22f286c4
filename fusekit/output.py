"""What one forward pass returns and what loss and training hooks are handed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from torch import Tensor

if TYPE_CHECKING:
    from fusekit.batch import ModalityBatch, TrainingData
    from fusekit.network import FusionNetwork


@dataclass
class FusionOutput:
    """The result of :meth:`FusionNetwork.forward`.

    Attributes:
        logits: ``(B, n_outputs)`` fused predictions (class logits or standardised regression
            outputs). Predictions use these only.
        mask: ``(B, M)`` presence mask the pass ran with (after any training-time perturbation).
        features: ``{m: (B, *shape)}`` backbone outputs, absent rows zeroed.
        steps: ``{m: (B, T)}`` real-step masks of padded sequence modalities (see
            ``ModalityBatch.steps``); pool with ``fusekit.nn.as_vector(h, steps.get(m))``.
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


@dataclass
class LossContext:
    """Everything a component may need to compute loss terms for one batch.

    ``per_sample_loss(logits, target)`` is the task criterion without reduction, ``(B,)``.
    ``network`` allows extra forward passes (e.g. with a modality masked: ``batch.without(m)``).
    """

    network: FusionNetwork
    batch: ModalityBatch
    target: Tensor
    training: bool

    def per_sample_loss(self, logits: Tensor, target: Tensor | None = None) -> Tensor:
        return self.network.per_sample_loss(logits, self.target if target is None else target)

    def mean_loss(self, logits: Tensor, target: Tensor | None = None) -> Tensor:
        """The mean of :meth:`per_sample_loss`, computed by one fused loss call."""
        return self.network.mean_loss(logits, self.target if target is None else target)


@dataclass
class TrainingContext:
    """What epoch- and batch-level hooks receive.

    Attributes:
        network: the module being trained.
        net: the private skorch net driving the loop (history, optimizer_, callbacks).
        data: all training rows (for schemes that need a held-out split or per-sample state).
        epoch: zero-based epoch number.
        batch: the current batch inputs in batch-level hooks, else ``None``.
        target: the current batch target in batch-level hooks, else ``None``.
        train_rows: rows of ``data`` used for training when skorch holds out a validation split
            (``train_split``), else ``None`` (all rows train).
        batch_index: zero-based number of the batch within the epoch (batch-level hooks).
    """

    network: FusionNetwork
    net: Any
    data: TrainingData | None
    epoch: int
    batch: ModalityBatch | None = None
    target: Tensor | None = None
    train_rows: Tensor | None = None
    batch_index: int = 0
