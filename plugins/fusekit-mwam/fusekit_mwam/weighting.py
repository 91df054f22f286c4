"""MWAM: Multimodal Weight Allocation Module guided by the Frequency Ratio Metric.

Lu, Xu, Zheng, Luan, Sun, Yao, "Plug, Play, and Fortify: A Low-Cost Module for Robust Multimodal
Image Understanding Models", ICLR 2026 (arXiv 2602.22644). Only the abstract was available; the
behaviour is the official code's (github.com/a6103121/MWAM, spec seed-003 §3), generalised as in
spec §4. No trainable parameters; no effect at predict time.

Per training step, for every modality m present in the batch:
    FRM_m   = frequency_ratio_metric(X_m or detached h_m)        :mod:`fusekit_mwam.frm`   (§3.2)
    w_m     = α − β · sigmoid(s · (FRM_m / (μ_bank + ε) − γ))    :mod:`fusekit_mwam.allocation`
    apply="grad":  ∇θ_m ← w_m · ∇θ_m for θ_m in backbone_m, after backward            (§3.5)
    apply="loss":  L = L_fused + Σ_m w_m · mean_{present} L(unimodal head_m)    (README, §3.5)
A low-frequency-dominated modality (large FRM, "dominant") is slowed down, w < 1; the others are
sped up, w > 1. Calibration, fusion and heads keep their gradients (§9.6).

Choices where the spec leaves room (each tested):
    - ``frm_source="input"`` (code) computes FRM in ``on_batch_begin`` from the batch inputs;
      ``"feature"`` (abstract) from the detached backbone outputs, in the same step's ``task_loss``.
    - ``reduce="mean"`` over present samples by default: equal to the code's ``"sum"`` when batches
      are full and complete (r_m is a ratio of FRMs, so the 1/B cancels), but without the unearned
      boost a short last batch or a partly-missing modality would get under ``"sum"`` (§9.3).
    - Modality absent from the whole batch: w = 1, bank untouched; μ over present ones (§9.4).
    - Padded sequence steps: DCT blocks holding a padded step are left out of the FRM.
    - Vector modalities: FRM along the feature axis with a warning (no frequency meaning for
      unordered columns) unless ``ordered_vectors=True`` (§9.9).
    - Evaluation / validation: w = 1 (validation loss with ``apply="loss"`` is L_fused + Σ L_m).
    - Data-parallel: the FRM of each modality is the global batch's (``_agreed``), so the bank
      and the weights agree across processes; the gradient scaling edits the averaged gradients.
    - Under Adam a constant gradient scale is mostly normalised away (§9.5); see README.
"""

from __future__ import annotations

from numbers import Integral, Real

import torch
from torch import Tensor

from fusekit.plugin import (
    BuildSpec,
    FusionOutput,
    Interval,
    LossContext,
    StrOptions,
    TrainingContext,
    Weighting,
    all_reduce,
    world_size,
)
from fusekit_mwam.allocation import update_and_allocate
from fusekit_mwam.frm import MODES, REDUCTIONS, frequency_ratio_metric, warn_unordered_vectors

SOURCES = ("input", "feature")
APPLY = ("grad", "loss", "both")


class MWAM(Weighting):
    """MWAM: per-modality gradient (or loss) weights from the Frequency Ratio Metric."""

    needs_host_values = (
        "records every step's FRM and weights in Python lists (frm_history, weight_history, the "
        "trajectory the paper plots) and reads the weights as floats to scale the gradients"
    )
    #: Data-parallel: the FRMs of the global batch (``_agreed``); bank and weights agree.
    data_parallel_safe = True
    #: ``band <= patch_size // 2``, a relation between the two, is checked in ``build``.
    parameter_constraints = {
        "frm_source": [StrOptions(set(SOURCES))],
        "frm_mode": [StrOptions(set(MODES))],
        "patch_size": [Interval(Integral, 2, None, closed="left")],
        "band": [Interval(Integral, 1, None, closed="left")],
        "eps": [Interval(Real, 0, None, closed="neither")],
        "reduce": [StrOptions(set(REDUCTIONS))],
        "ema": [Interval(Real, 0, 1, closed="left")],
        "soft_begin": ["boolean"],
        "alpha": [Interval(Real, None, None, closed="neither")],
        "beta": [Interval(Real, 0, None, closed="left")],
        "gamma": [Interval(Real, None, None, closed="neither")],
        "sharpness": [Interval(Real, 0, None, closed="left")],
        "apply": [StrOptions(set(APPLY))],
        "ordered_vectors": ["boolean"],
    }

    def __init__(
        self,
        frm_source: str = "input",
        frm_mode: str = "official",
        patch_size: int = 8,
        band: int = 2,
        eps: float = 1e-6,
        reduce: str = "mean",
        ema: float = 0.5,
        soft_begin: bool = True,
        alpha: float = 1.5,
        beta: float = 1.0,
        gamma: float = 1.0,
        sharpness: float = 10.0,
        apply: str = "grad",
        ordered_vectors: bool = False,
    ) -> None:
        super().__init__()
        self.frm_source = frm_source
        self.frm_mode = frm_mode
        self.patch_size = patch_size
        self.band = band
        self.eps = eps
        self.reduce = reduce
        self.ema = ema
        self.soft_begin = soft_begin
        self.alpha = alpha
        self.beta = beta
        self.gamma = gamma
        self.sharpness = sharpness
        self.apply = apply
        self.ordered_vectors = ordered_vectors

    @property
    def needs_unimodal_heads(self) -> bool:  # type: ignore[override]
        return self.apply in ("loss", "both")

    # -- set-up ------------------------------------------------------------------------------
    def build(self, spec: BuildSpec) -> None:
        if self.band > self.patch_size // 2:
            raise ValueError(
                f"mwam: band must be at most patch_size // 2 = {self.patch_size // 2} so that the "
                f"low and high bands do not overlap, got {self.band!r}"
            )
        self.names = spec.names
        shapes = spec.input_shapes if self.frm_source == "input" else spec.feature_shapes
        if not self.ordered_vectors and any(len(shape) == 1 for shape in shapes.values()):
            warn_unordered_vectors()
        count = len(spec.names)
        self.register_buffer("frm_bank", torch.zeros(count, dtype=torch.float64))
        self.register_buffer("bank_started", torch.zeros(count, dtype=torch.bool))
        self.register_buffer("modality_weights", torch.ones(count, dtype=torch.float64))
        self.reset()

    def reset(self) -> None:
        """Empty the FRM banks and the recorded trajectory (called at the start of every fit)."""
        self.frm_bank.zero_()
        self.bank_started.zero_()
        self.modality_weights.fill_(1.0)
        self.frm_history: list[list[float]] = []
        self.weight_history: list[list[float]] = []

    # -- the FRM step ------------------------------------------------------------------------
    def step(
        self, features: dict[str, Tensor], mask: Tensor, steps: dict[str, Tensor] | None = None
    ) -> Tensor:
        """FRM of each modality in ``features`` ``{m: (B, ...)}``, bank update, weights ``(M,)``.

        ``mask`` is the ``(B, M)`` presence mask; ``steps`` the padded-sequence step masks.
        """
        steps = steps or {}
        frm = torch.full(  # (M,), on the bank's device: the bank update mixes them
            (len(self.names),), float("nan"), dtype=torch.float64, device=self.frm_bank.device
        )
        for position, name in enumerate(self.names):
            present = mask[:, position]  # (B,)
            if not present.any():
                continue
            value = features[name].detach().double()  # (B, ...)
            step_mask = steps.get(name) if value.dim() == 3 else None
            if step_mask is not None and step_mask.shape[1] != value.shape[1]:
                step_mask = None  # a backbone that changed T: no step mask applies
            frm[position] = frequency_ratio_metric(
                value,
                mode=self.frm_mode,
                patch_size=self.patch_size,
                band=self.band,
                eps=self.eps,
                reduce=self.reduce,
                present=present,
                steps=step_mask,
            )
        frm = self._agreed(frm)
        weights = update_and_allocate(
            frm,
            self.frm_bank,
            self.bank_started,
            ema=float(self.ema),
            soft_begin=bool(self.soft_begin),
            eps=float(self.eps),
            alpha=float(self.alpha),
            beta=float(self.beta),
            gamma=float(self.gamma),
            sharpness=float(self.sharpness),
        )
        self.modality_weights.copy_(weights)
        self.frm_history.append(frm.tolist())
        self.weight_history.append(weights.tolist())
        return weights

    def _agreed(self, frm: Tensor) -> Tensor:
        """The FRMs ``(M,)`` of the global batch under data parallelism (the processes' shards
        are equal in size): the sum of the processes' FRMs for ``reduce="sum"``, else their mean,
        over the processes where the modality is present (NaN where it is in none). Exact for
        ``frm_mode="official"``; for ``"energy"``, a ratio of sums, the mean of the ratios."""
        if world_size() == 1:
            return frm
        known = ~torch.isnan(frm)
        parts = all_reduce(torch.stack([torch.where(known, frm, 0.0), known.double()]), "sum")
        total, count = parts[0], parts[1]
        value = total if self.reduce == "sum" else total / count.clamp(min=1.0)
        return torch.where(count > 0, value, torch.full_like(value, float("nan")))

    def weight_of(self, name: str) -> float:
        """Weight of modality ``name`` from the last training step (1.0 before any)."""
        return float(self.modality_weights[self.names.index(name)])

    # -- training hooks ----------------------------------------------------------------------
    def on_train_begin(self, ctx: TrainingContext) -> None:
        self.reset()

    def on_batch_begin(self, ctx: TrainingContext) -> None:
        if self.frm_source == "input" and ctx.batch is not None:
            self.step(ctx.batch.features, ctx.batch.mask, ctx.batch.steps)

    def task_loss(self, output: FusionOutput, ctx: LossContext) -> Tensor:
        if ctx.training and self.frm_source == "feature":
            self.step(output.features, output.mask, output.steps)
        loss = ctx.weighted_mean(ctx.per_sample_loss(output.logits))
        if self.apply == "grad":
            return loss
        for position, name in enumerate(self.names):
            present = output.mask[:, position]  # (B,)
            if not present.any():
                continue
            unimodal = ctx.weighted_mean(ctx.per_sample_loss(output.unimodal_logits[name]), present)
            weight = self.weight_of(name) if ctx.training else 1.0
            loss = loss + weight * unimodal
        return loss

    def on_grad_computed(self, ctx: TrainingContext) -> None:
        if self.apply == "loss":
            return
        for name in self.names:
            weight = self.weight_of(name)
            if weight == 1.0:
                continue
            for parameter in ctx.network.modality_parameters(name):
                if parameter.grad is not None:
                    parameter.grad.mul_(weight)
