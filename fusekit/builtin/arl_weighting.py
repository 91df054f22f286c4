"""Asymmetric Representation Learning (ARL, "arl").

Wei, Luo, Luo, "Improving Multimodal Learning via Imbalanced Learning", ICCV 2025, arXiv:2507.10203;
the method is ARL, "Asymmetric Representation Learning". This is the ARL of the calibration seed
paper (000): its reference [20] (Shicai Wei, Chunbo Luo, Yang Luo, CoRR abs/2507.10203), described
there as "asymmetric representation learning according to modality variance and bias" and the
"ARL" row combined with VGMR in its Table 8. The gloss "asymmetric reinforcing against
representation bias" is the title of another method, ARM (Gao, Cao, Zhu, Wang, Hu, "Asymmetric
Reinforcing against Multi-modal Representation Bias", arXiv:2501.01240: conditional mutual
information, dynamic fusion and re-sampling), which seed 000 neither cites nor compares with; it
is not this module. Official code: shicaiwei123/ICCV2025-ARL (its README names arXiv:2507.10203)
(``main_arl_variance.py``: ``train_epoch``, the "modality analysis" and the loss;
``models/backbone.py``: ``GradScale`` and its use after each encoder; ``models/fusion_modules.py``:
``ConcatFusion_AUXI``, the shared head's unimodal outputs; ``cramed_arl.sh``, ``ks_arl.sh``:
γ and T). Only the paper's abstract was available to us, so the equations are labelled
(A1)-(A4), written from the code and the abstract's description.

The abstract's claim: the best dependence on each modality is *imbalanced*, inversely
proportional to the modality's prediction variance. ARL adds unimodal regularisers that share the
multimodal model's parameters, estimates each modality's variance from them, re-weights each
modality's optimisation by coefficients from those variances, and trains the unimodal
predictions' bias (their losses) with the multimodal loss. Per training batch, with z_m ``(B, K)``
the unimodal logits, P the present rows of m, y the labels and M modalities:

    (A1)  z_m = the fusion and head with only m present (the shared decision layer on m alone:
          ``fc_out([h_m, 0])`` in the code)                                           (B, K)
    (A2)  c_m = Σ_k mean_{i∈P} |z_m,ik|,  c̃_m = c_m / Σ_j c_j                  logit magnitude
          H_m = mean_{i∈P} H(softmax z_m,i),  H̃_m = H_m / Σ_j H_j              prediction entropy
          u_m = 1 / max(H̃_m, 0.6/M),  ũ_m = u_m / Σ_j u_j         (the code's floor 0.3 at M = 2)
          ω = softmax_m(T · ũ_m · mean_{j≠m} c̃_j)                   coefficients ``(M,)``
    (A3)  L = CE(z, y) + γ Σ_m mean_{i∈P} CE(z_m,i, y_i)
    (A4)  ∇θ_m ← (1 + ω_m) ∇θ_m for every parameter of encoder m (the code's ``GradScale`` after
          the encoder: grad + grad · weight, so every encoder parameter's gradient scales alike)

(A2)-(A4) act from ``warmup_epochs`` on; before, L = CE(z) + Σ_m CE(z_m) and no gradient is
scaled (the code's ``epoch > start`` with γ = 1 before). Shapes: features h_m ``(B, *shape_m)``;
c, H, u and ω are ``(M,)``.

The variance coefficients, untangled. The code computes ω in ``train_epoch`` (``weight``, a
softmax of T times the other modality's logit magnitude and the modality's inverse entropy), but
only prints it: ``args.audio_weight`` / ``args.visual_weight``, which ``GradScale`` reads, are set
to 0.5 in the warm-up branch and never again, so in the released code both encoders' gradients
are multiplied by 1.5 after the warm-up and nothing is asymmetric; the ``weight_2`` of T = 1 is
printed too. The abstract's method is the asymmetric one. The pick: ``coefficients="variance"``
(default) applies ω as (A4), i.e. the assignment the code leaves out (``audio_weight = weight[0]``,
``visual_weight = weight[1]``); ``coefficients="released"`` reproduces the released code
(ω_m = 0.5 for every modality). In the code an assignment after the forward pass would reach the
next batch's backward (``GradScale`` saves the weight at forward time); here each batch's ω scales
that batch's gradients.

Other choices:

* (A2) for M > 2 (the code has two modalities): the other modality's magnitude becomes the mean
  of the others', and the entropy floor 0.3 (of shares that average 1/2) becomes 0.6/M, the same
  fraction of the average share.
* Defaults: γ = 4 and T = 8 from ``cramed_arl.sh`` (CREMA-D; Kinetics-Sounds uses 3 and 4); the
  code's ``start`` = 5 of 100 epochs becomes ``warmup_epochs=1`` for fusekit's shorter fits. The
  code clips the gradient norm at 40 (use skorch's ``GradientNormClipping`` callback if wanted).
* Missing modalities (the code has none): c, H and the unimodal losses average over the rows
  where m is present; a modality absent from the whole batch is left out of (A2) and gets
  ω = 0 (its gradient, zero anyway, is untouched); with fewer than two modalities in the batch
  there is nothing to compare and ω_m = 0.5, the code's constant.
* Data-parallel: c and H are global-batch means (``global_present_mean``), so ω is the same in
  every process, and (A4) edits the averaged gradients.
* Classification only (entropies and cross-entropies of class probabilities); regression is
  refused at ``build``.
"""

from __future__ import annotations

from numbers import Integral, Real

import torch
from torch import Tensor
from torch.nn import functional as F

from fusekit.plugin import (
    BuildSpec,
    FusionOutput,
    Interval,
    LossContext,
    StrOptions,
    TrainingContext,
    Weighting,
    at_least_float32,
    global_present_mean,
    hookimpl,
)

COEFFICIENTS = ("variance", "released")
#: ω_m of the released code (``args.audio_weight = args.visual_weight = 0.5``).
RELEASED_WEIGHT = 0.5


def modality_coefficients(
    magnitude: Tensor, entropy: Tensor, seen: Tensor, temperature: float
) -> Tensor:
    """(A2): ω ``(M,)`` from logit magnitudes c and entropies H ``(M,)`` of the modalities
    ``seen`` ``(M,)`` in the batch; 0 for the others, 0.5 each when fewer than two are seen."""
    weights = seen.to(magnitude.dtype)
    n_seen = weights.sum()
    tiny = torch.finfo(magnitude.dtype).tiny
    share = magnitude * weights / (magnitude * weights).sum().clamp(min=tiny)  # c̃
    spread = entropy * weights / (entropy * weights).sum().clamp(min=tiny)  # H̃
    floor = 0.6 / n_seen.clamp(min=1.0)
    inverse = weights / torch.maximum(spread, floor)  # u
    inverse = inverse / inverse.sum().clamp(min=tiny)  # ũ
    others = (share.sum() - share) / (n_seen - 1.0).clamp(min=1.0)  # mean_{j≠m} c̃_j
    scores = temperature * inverse * others
    scores = torch.where(seen, scores, torch.full_like(scores, -torch.inf))
    omega = torch.softmax(torch.where(n_seen > 0, scores, torch.zeros_like(scores)), dim=0)
    omega = torch.where(seen, omega, torch.zeros_like(omega))
    return torch.where(n_seen >= 2, omega, RELEASED_WEIGHT * weights)


def prediction_entropy(logits: Tensor) -> Tensor:
    """H(softmax z) per row ``(B,)`` in float32, as the code: Σ_k −p log(p + 1e−16)."""
    p = F.softmax(at_least_float32(logits), dim=1)
    return -(p * torch.log(p + 1e-16)).sum(dim=1)


class ARLWeighting(Weighting):
    """ARL: unimodal losses through the shared head and encoder gradients scaled by 1 + ω."""

    supported_tasks = ("classification",)

    #: Data-parallel: c and H from the global batch; (A4) edits the averaged gradients.
    data_parallel_safe = True
    parameter_constraints = {
        "gamma": [Interval(Real, 0, None, closed="left")],
        "temperature": [Interval(Real, 0, None, closed="left")],
        "warmup_epochs": [Interval(Integral, 0, None, closed="left")],
        "coefficients": [StrOptions(set(COEFFICIENTS))],
    }

    def __init__(
        self,
        gamma: float = 4.0,
        temperature: float = 8.0,
        warmup_epochs: int = 1,
        coefficients: str = "variance",
    ) -> None:
        super().__init__()
        self.gamma = gamma
        self.temperature = temperature
        self.warmup_epochs = warmup_epochs
        self.coefficients = coefficients

    def build(self, spec: BuildSpec) -> None:
        if spec.task != "classification":
            raise ValueError(
                f"arl: needs a classification task (entropies of class probabilities), "
                f"got {spec.task}"
            )
        self.names = spec.names
        #: ω of the last training batch (A2), float32.
        self.register_buffer("omega", torch.zeros(len(spec.names)), persistent=False)
        self.active = int(self.warmup_epochs) == 0

    def on_train_begin(self, ctx: TrainingContext) -> None:
        self.active = int(self.warmup_epochs) == 0
        self.omega.zero_()

    def on_epoch_begin(self, ctx: TrainingContext) -> None:
        self.active = ctx.epoch >= int(self.warmup_epochs)

    def loss_terms(self, output: FusionOutput, ctx: LossContext) -> dict[str, Tensor]:
        if not ctx.training:
            return {}
        mask = output.mask  # (B, M)
        losses, magnitudes, entropies = [], [], []
        for position in range(len(self.names)):
            only = torch.zeros_like(mask)
            only[:, position] = mask[:, position]
            logits = ctx.network.fuse(output.calibrated, only, steps=output.steps)  # z_m (A1)
            rows = mask[:, position]
            losses.append(ctx.weighted_mean(ctx.per_sample_loss(logits), rows))
            magnitudes.append(at_least_float32(logits.detach()).abs().sum(dim=1))  # (B,)
            entropies.append(prediction_entropy(logits.detach()))  # (B,)
        gamma = float(self.gamma) if self.active else 1.0
        terms = {"arl_unimodal": gamma * torch.stack(losses).sum()}  # (A3)
        if self.active:
            magnitude, seen = global_present_mean(torch.stack(magnitudes, dim=1), mask)
            entropy, _ = global_present_mean(torch.stack(entropies, dim=1), mask)
            if self.coefficients == "variance":
                omega = modality_coefficients(magnitude, entropy, seen, float(self.temperature))
            else:
                omega = RELEASED_WEIGHT * torch.ones_like(magnitude)
            self.omega.copy_(omega)
            output.diagnostics["arl_coefficients"] = omega
        return terms

    @torch.no_grad()
    def on_grad_computed(self, ctx: TrainingContext) -> None:
        if not self.active:
            return
        for position, name in enumerate(self.names):
            scale = 1.0 + self.omega[position]  # (A4)
            for parameter in ctx.network.modality_parameters(name):
                if parameter.grad is not None:
                    parameter.grad.mul_(scale.to(parameter.grad.dtype))


@hookimpl
def fusekit_weightings() -> dict[str, type]:
    return {"arl": ARLWeighting}
