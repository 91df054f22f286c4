"""Trusted Multi-View Classification (TMC).

Han, Zhang, Fu, Zhou, "Trusted Multi-View Classification", ICLR 2021, arXiv:2102.02051.
Official code: hanmenghan/TMC (``model.py``: ``DS_Combin``, ``ce_loss``, ``KL``).

Each modality's head gives evidence e_m = softplus(z_m) ``(B, K)``; its Dirichlet is α_m = e_m + 1,
strength S_m = Σ_k α_m,k, and its subjective opinion is

    (1)  b_m,k = e_m,k / S_m,    u_m = K / S_m          (Σ_k b_m,k + u_m = 1)

Two opinions combine by the reduced Dempster–Shafer rule

    (2)  C = Σ_{i≠j} b¹_i b²_j,   b_k = (b¹_k b²_k + b¹_k u² + b²_k u¹) / (1 − C),
         u = u¹ u² / (1 − C),      S = K / u,  e = b · S,  α = e + 1

and M > 2 opinions combine left to right in modality order (as the code's ``DS_Combin``).
Loss per Dirichlet α (each modality and the combination), y one-hot:

    (5)  L_ace = Σ_k y_k (ψ(S) − ψ(α_k))
    (8)  L = L_ace + λ_t · KL(Dir(α̃) ‖ Dir(1)),  α̃ = y + (1 − y) ⊙ α,  λ_t = min(1, t / annealing)

with t the 1-based epoch (the code's ``global_step``; ``annealing_epochs`` = its
``lambda_epochs``, 50). The fused logits are log(α / S), so ``predict_proba`` is the combined
Dirichlet's mean. Missing modalities: an absent modality has e = 0, the vacuous opinion (b = 0,
u = 1), which is the identity of rule (2); it gets no loss of its own. A sample with nothing present
gets the uniform Dirichlet. The fusion plugin's output is not used.
"""

from __future__ import annotations

from numbers import Integral

import torch
from torch import Tensor
from torch.nn import functional as F

from fusekit.plugin import (
    BuildSpec,
    FusionOutput,
    Interval,
    LossContext,
    TrainingContext,
    Weighting,
    hookimpl,
)


def combine_opinions(alpha_1: Tensor, alpha_2: Tensor) -> Tensor:
    """Eq. (2): two Dirichlet parameters ``(B, K)`` -> the combined ``(B, K)``."""
    classes = alpha_1.shape[1]
    strength_1 = alpha_1.sum(dim=1, keepdim=True)  # (B, 1)
    strength_2 = alpha_2.sum(dim=1, keepdim=True)
    belief_1, belief_2 = (alpha_1 - 1) / strength_1, (alpha_2 - 1) / strength_2  # (B, K)
    uncertainty_1, uncertainty_2 = classes / strength_1, classes / strength_2  # (B, 1)
    conflict = belief_1.sum(dim=1) * belief_2.sum(dim=1) - (belief_1 * belief_2).sum(dim=1)
    scale = (1 - conflict).unsqueeze(1)  # (B, 1)
    belief = (belief_1 * belief_2 + belief_1 * uncertainty_2 + belief_2 * uncertainty_1) / scale
    uncertainty = uncertainty_1 * uncertainty_2 / scale  # (B, 1)
    return belief * (classes / uncertainty) + 1


def dirichlet_kl_to_uniform(alpha: Tensor) -> Tensor:
    """KL(Dir(α) ‖ Dir(1)) per row: ``(B, K)`` -> ``(B,)``."""
    classes = alpha.shape[1]
    strength = alpha.sum(dim=1)  # (B,)
    log_normaliser = torch.lgamma(strength) - torch.lgamma(alpha).sum(dim=1)
    log_uniform = -torch.lgamma(alpha.new_tensor(float(classes)))
    digamma_gap = torch.digamma(alpha) - torch.digamma(strength).unsqueeze(1)  # (B, K)
    return ((alpha - 1) * digamma_gap).sum(dim=1) + log_normaliser + log_uniform


def evidential_loss(alpha: Tensor, target: Tensor, annealing: float) -> Tensor:
    """Eq. (5) + annealed KL (8): ``(B, K)`` Dirichlets, ``(B,)`` labels -> ``(B,)`` losses."""
    one_hot = F.one_hot(target, alpha.shape[1]).to(alpha.dtype)  # (B, K)
    strength = alpha.sum(dim=1, keepdim=True)
    adjusted_ce = (one_hot * (torch.digamma(strength) - torch.digamma(alpha))).sum(dim=1)
    alpha_tilde = (alpha - 1) * (1 - one_hot) + 1
    return adjusted_ce + annealing * dirichlet_kl_to_uniform(alpha_tilde)


class TMCWeighting(Weighting):
    """TMC: Dirichlet evidence per modality, Dempster–Shafer combination, evidential loss."""

    supported_tasks = ("classification",)

    #: Per-sample opinions and loss means; the epoch is the loop's: nothing to agree.
    data_parallel_safe = True

    needs_unimodal_heads = True
    parameter_constraints = {"annealing_epochs": [Interval(Integral, 1, None, closed="left")]}

    def __init__(self, annealing_epochs: int = 50) -> None:
        super().__init__()
        self.annealing_epochs = annealing_epochs

    def build(self, spec: BuildSpec) -> None:
        if spec.task != "classification":
            raise ValueError(
                f"tmc: needs a classification task (Dirichlet opinions), got {spec.task}"
            )
        self.names = spec.names
        self.epoch = 0

    def on_epoch_begin(self, ctx: TrainingContext) -> None:
        self.epoch = ctx.epoch

    def alphas(self, output: FusionOutput) -> dict[str, Tensor]:
        """``{m: (B, K)}`` α_m = softplus(z_m)·mask_m + 1 (absent: vacuous α = 1)."""
        return {
            # float32 (mixed precision): the Dirichlet's lgamma / digamma need its digits
            name: F.softplus(output.unimodal_logits[name].float()) * output.mask[:, [position]] + 1
            for position, name in enumerate(self.names)
        }

    def adjust_logits(self, output: FusionOutput) -> Tensor:
        if output.unimodal_logits is None:
            return output.logits
        alphas = list(self.alphas(output).values())
        combined = alphas[0]
        for alpha in alphas[1:]:
            combined = combine_opinions(combined, alpha)  # (B, K)
        output.diagnostics["tmc_alpha"] = combined
        return torch.log(combined / combined.sum(dim=1, keepdim=True))  # log Dirichlet mean

    def task_loss(self, output: FusionOutput, ctx: LossContext) -> Tensor:
        if "tmc_alpha" not in output.diagnostics:
            raise RuntimeError("tmc: the pass produced no unimodal logits (no unimodal heads)")
        annealing = min(1.0, (self.epoch + 1) / int(self.annealing_epochs))
        mask = output.mask
        total = ctx.weighted_mean(
            evidential_loss(output.diagnostics["tmc_alpha"], ctx.target, annealing),
            mask.any(dim=1),
        )
        for position, alpha in enumerate(self.alphas(output).values()):
            total = total + ctx.weighted_mean(
                evidential_loss(alpha, ctx.target, annealing), mask[:, position]
            )
        return total


@hookimpl
def fusekit_weightings() -> dict[str, type]:
    return {"tmc": TMCWeighting}
