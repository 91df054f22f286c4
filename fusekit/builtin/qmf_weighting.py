"""Quality-aware Multimodal Fusion (QMF).

Zhang, Wu, Zhang, Hu, Fu, Zhou, Peng, "Provable Dynamic Fusion for Low-Quality Multimodal Data",
ICML 2023, arXiv:2306.02050. Official code: QingyangZhang/QMF, two trees: text-image
(``text-image-classification/src/models/late_fusion.py``, ``train_qmf.py``) and RGB-D
(``RGBD-scene-recognition/models/QMF.py``, ``train_QMF_nyud2.py``, ``utils/crl_utils.py``).

With unimodal logits z_m ``(B, K)`` from each modality's own head:

    energy       E_m(x) = −log Σ_k exp(z_m,k)                              ``(B,)``
    confidence   w_m = −E_m / T                 (T = 10 in the code: ``-0.1 * energy``)
    fusion       z = Σ_m mask_m · sg(w_m) · z_m                            ``(B, K)``
    loss         L = Σ_m CE(z_m) + CE(z) + λ · Σ_m L_rank,m

The ranking term (from CRL, Moon et al., ICML 2020) asks a sample whose *history* of unimodal loss
is larger to have a lower confidence. History: c_m[i] = Σ over past epochs of ℓ(z_m,i, y_i), kept
per training row (``batch.index``), sized from ``ctx.data`` at ``on_train_begin``; normalised
ĉ = (c − min c) / (max c − min c). Each sample i is paired with the next one j in the batch
(``roll(-1)``), t = sign(ĉ_i − ĉ_j), margin = |ĉ_i − ĉ_j|, and

    L_rank,m = mean_i max(0, t · (w_m,i − w_m,j) − margin)      (t ≠ 0; 0 when t = 0)

exactly ``MarginRankingLoss(w_i, w_j + margin / t, −t)`` of the code. The loss of the batch is
computed before the batch's losses enter the history, as in the code.

Stop-gradient on the weights (``detach_confidence``). The paper is silent; the two official trees
differ. The text-image code fuses with ``txt_conf.detach()`` / ``img_conf.detach()`` (its default
``--df``), so CE(z) trains each head through z_m only, ∂CE(z)/∂z_m = w_m (softmax(z) − y); the RGB-D
code does not detach, so CE(z) also moves w_m (through logsumexp of z_m). Both trees feed the
*undetached* confidence to the ranking term. Default ``detach_confidence=True`` follows the
text-image code (the setting of most of the paper's tables and the one the code names "dynamic
fusion"); ``False`` gives the RGB-D code.

Missing modalities: an absent modality gets w = 0 in the fusion, no unimodal loss, no history
update, and its pairs are left out of the ranking term. Where the code divides 0/0 (all histories
equal, e.g. the first batch) the targets are 0 and the ranking term is 0. The fusion plugin's own
output is replaced by the QMF late fusion (the fusion and head get no gradient); when a pass has no
unimodal logits (an extra ``network.fuse`` call by another plugin) the fusion's logits are kept.
"""

from __future__ import annotations

from numbers import Real

import torch
from torch import Tensor

from fusekit.plugin import (
    BuildSpec,
    FusionOutput,
    Interval,
    LossContext,
    TrainingContext,
    Weighting,
    hookimpl,
    present_mean,
    unimodal_losses,
)


def energy_confidence(logits: Tensor, temperature: float) -> Tensor:
    """w = −E / T = logsumexp(z) / T: ``(B, K)`` logits -> ``(B,)`` confidence."""
    return torch.logsumexp(logits.float(), dim=1) / temperature  # float32 (mixed precision)


def ranking_loss(confidence: Tensor, history: Tensor, present: Tensor) -> Tensor:
    """CRL ranking term for ``(B,)`` confidences, their rows' ``(B,)`` normalised loss history and
    ``(B,)`` presence: pairs (i, i+1 mod B), both present."""
    partner_confidence = torch.roll(confidence, -1)  # (B,)
    partner_history = torch.roll(history, -1)
    target = torch.sign(history - partner_history)  # (B,) 1: i had the larger loss
    margin = (history - partner_history).abs()
    hinge = (target * (confidence - partner_confidence) - margin).clamp(min=0)
    hinge = torch.where(target != 0, hinge, torch.zeros_like(hinge))
    return present_mean(hinge, present & torch.roll(present, -1))


def normalise_history(history: Tensor) -> Tensor:
    """(c − min) / (max − min) over all rows, ``(N,)``; all zeros when max = min."""
    low, high = history.min(), history.max()
    span = high - low
    # torch.where, not `if high <= low:`: no host read of the device every batch
    return torch.where(
        span > 0, (history - low) / span.clamp(min=torch.finfo(span.dtype).tiny), 0.0
    )


class QMFWeighting(Weighting):
    """QMF: energy-based per-sample confidence weights of unimodal logits + ranking regulariser."""

    supported_tasks = ("classification",)

    #: A loss history per training row, updated from the rows each process trains on: the
    #: processes would each hold a different part of it.
    data_parallel_safe = False

    needs_unimodal_heads = True
    needs_all_training_rows = True  # the loss history has one row per training row
    parameter_constraints = {
        "lam": [Interval(Real, 0, None, closed="left")],
        "temperature": [Interval(Real, 0, None, closed="neither")],
        "detach_confidence": ["boolean"],
    }

    def __init__(
        self, lam: float = 0.1, temperature: float = 10.0, detach_confidence: bool = True
    ) -> None:
        super().__init__()
        self.lam = lam
        self.temperature = temperature
        self.detach_confidence = detach_confidence

    def build(self, spec: BuildSpec) -> None:
        if spec.task != "classification":
            raise ValueError(
                f"qmf: needs a classification task (energy of logits), got {spec.task}"
            )
        self.names = spec.names
        self.register_buffer("loss_history", torch.zeros(0, len(spec.names)))  # (N, M)

    def on_train_begin(self, ctx: TrainingContext) -> None:
        if ctx.data is None:
            raise RuntimeError("qmf: needs the training rows (ctx.data) to size its loss history")
        self.loss_history = torch.zeros(
            len(ctx.data), len(self.names), device=ctx.data.inputs.mask.device
        )

    def confidences(self, output: FusionOutput) -> Tensor:
        """``(B, M)`` w_m = −E_m / T for every modality (absent ones included, unmasked)."""
        logits = output.unimodal_logits
        return torch.stack(
            [energy_confidence(logits[name], float(self.temperature)) for name in self.names],
            dim=1,
        )

    def adjust_logits(self, output: FusionOutput) -> Tensor:
        if output.unimodal_logits is None:
            return output.logits
        weights = self.confidences(output) * output.mask.to(output.logits.dtype)  # (B, M)
        if self.detach_confidence:
            weights = weights.detach()  # as the text-image code's ``conf.detach()``
        output.modality_weights = weights
        stacked = torch.stack([output.unimodal_logits[name] for name in self.names], dim=1)
        return (stacked * weights.unsqueeze(-1)).sum(dim=1)  # (B, M, K) -> (B, K)

    def task_loss(self, output: FusionOutput, ctx: LossContext) -> Tensor:
        fused = ctx.weighted_mean(ctx.per_sample_loss(output.logits))
        return fused + unimodal_losses(output, ctx, "qmf").sum()

    def loss_terms(self, output: FusionOutput, ctx: LossContext) -> dict[str, Tensor]:
        index = ctx.batch.index
        if not ctx.training or index is None or self.loss_history.shape[0] == 0:
            return {}
        confidence = self.confidences(output)  # (B, M), not detached (as in the code)
        mask = output.mask
        total = confidence.new_zeros(())
        for position in range(len(self.names)):
            history = normalise_history(self.loss_history[:, position])[index]  # (B,)
            total = total + ranking_loss(confidence[:, position], history, mask[:, position])
        with torch.no_grad():  # then the batch's losses enter the history
            for position, name in enumerate(self.names):
                losses = ctx.per_sample_loss(output.unimodal_logits[name])  # (B,)
                present = mask[:, position]  # absent rows add 0 (no boolean indexing: no sync)
                self.loss_history[index, position] += torch.where(present, losses, 0.0)
        return {"qmf_rank": float(self.lam) * total}


@hookimpl
def fusekit_weightings() -> dict[str, type]:
    return {"qmf": QMFWeighting}
