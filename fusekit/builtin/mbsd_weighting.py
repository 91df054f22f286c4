"""MBSD: confidence-gap-weighted distillation between the unimodal predictions.

Written from GeWu-Lab/BalanceBenchmark (``balancemm/trainer/MBSD_trainer.py``:
``training_step``; ``balancemm/models/avclassify_model.py``: ``unimodality_calculate``;
``configs/trainer_config.yaml``: defaults), where it is one of the "objective" methods. Neither the
trainer, the config nor the README names the paper, and we could not identify it with certainty,
so no paper's equation numbers are claimed: the equations are labelled (D1)-(D5), from the code.

Per training batch, with z_m ``(B, K)`` the unimodal logits, p_m = softmax(z_m), y ``(B,)``, and
for a pair of modalities (j, l):

    (D1)  t_m,i = p_m,i[y_i],   s_i = max(t_j,i, t_l,i),   w_i = min(t_j,i, t_l,i)    ``(B,)``
    (D2)  g_i = s_i − w_i if argmax p_j,i = y_i or argmax p_l,i = y_i, else 0        ``(B,)``
    (D3)  KL_i = w_i · (log w_i − s_i)       (``F.kl_div(s, w)``: s given as a probability)
    (D4)  RS_i = (1/K) Σ_k (z_j,ik − z_l,ik)²
    (D5)  L = CE(z, y) + Σ_m CE(z_m, y) + mean_pairs[(1/B) Σ_i g_i KL_i + (1/B) Σ_i g_i RS_i]

The gap g weights both terms: only a sample that one of the two modalities gets right, and the
more the two disagree on the true class, is pulled together. Gradients flow through every factor
(g, s and w included), as in the code. Outside the window ``start_epoch``..``end_epoch``
(inclusive; config 0-80) and in evaluation the loss is the plain task loss.

Differences between the code and this module, and the pick:

* (D3) passes a *probability* as ``F.kl_div``'s input, which PyTorch documents as a
  log-probability; the result is w (log w − s), not a KL divergence. ``kl_input="probability"``
  (the default) keeps the code's term, which is what BalanceBenchmark's numbers measure;
  ``kl_input="log"`` gives the divergence the call was evidently meant for, w (log w − log s),
  with log s from a log-softmax (finite when s underflows).
* (D4) is on logits in the code's two-modality branch and on probabilities in its three-modality
  branch. Here it is on logits for every M (the two-modality case, the benchmark's, is the code's).
* M > 2: the code handles M = 3 by averaging the three pairs' KL and RS terms; here the mean is
  over every pair for any M ≥ 2 (the same for M = 2 and 3).
* Unimodal logits: ``unimodal="split_head"`` splits the concat head as the code does
  (z_m = h_m W_mᵀ + b / M, trained through the shared head); ``"heads"`` uses the network's
  per-modality heads (any fusion; their losses train the heads and the encoders); ``"auto"``
  splits when the fusion is ``concat`` with a linear head and uses the heads otherwise.
* Missing modalities (the code has none): CE(z_m) is the mean over rows where m is present, a
  pair's terms the mean over rows where both are present (the code's 1/B with complete data);
  sample weights weight every mean. The config's ``modality`` count is implied by the data.
* Classification only (softmax predictions); regression is refused at ``build``.
"""

from __future__ import annotations

from itertools import combinations
from numbers import Integral

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
    check_window,
    concat_head_logits,
    hookimpl,
    in_window,
    splits_concat_head,
    vector_size,
)

_UNIMODAL = ("auto", "split_head", "heads")
_KL_INPUT = ("probability", "log")


def pair_terms(
    z_j: Tensor, z_l: Tensor, target: Tensor, kl_input: str = "probability"
) -> tuple[Tensor, Tensor]:
    """(D1)-(D4) for one pair: ``(B,)`` weighted KL terms g·KL and weighted RS terms g·RS."""
    z_j, z_l = z_j.float(), z_l.float()
    log_j = F.log_softmax(z_j, dim=1).gather(1, target[:, None])[:, 0]  # (B,)
    log_l = F.log_softmax(z_l, dim=1).gather(1, target[:, None])[:, 0]
    t_j, t_l = log_j.exp(), log_l.exp()
    strong, weak = torch.maximum(t_j, t_l), torch.minimum(t_j, t_l)  # (D1)
    right = (z_j.argmax(dim=1) == target) | (z_l.argmax(dim=1) == target)
    gap = torch.where(right, strong - weak, torch.zeros_like(strong))  # (D2)
    if kl_input == "probability":
        kl = F.kl_div(strong, weak, reduction="none")  # (D3) as the code: w (log w − s)
    else:
        kl = F.kl_div(torch.maximum(log_j, log_l), weak, reduction="none")  # w (log w − log s)
    rs = (z_j - z_l).pow(2).mean(dim=1)  # (D4)
    return gap * kl, gap * rs


class MBSDWeighting(Weighting):
    """MBSD: pull unimodal predictions together where one is right, weighted by their gap."""

    supported_tasks = ("classification",)
    parameter_constraints = {
        "start_epoch": [Interval(Integral, 0, None, closed="left")],
        "end_epoch": [Interval(Integral, 0, None, closed="left"), None],
        "kl_input": [StrOptions(set(_KL_INPUT))],
        "unimodal": [StrOptions(set(_UNIMODAL))],
    }

    #: Data-parallel: per-sample terms, averaged per process and across processes by DDP.
    data_parallel_safe = True

    def __init__(
        self,
        start_epoch: int = 0,
        end_epoch: int | None = 80,
        kl_input: str = "probability",
        unimodal: str = "auto",
    ) -> None:
        super().__init__()
        self.start_epoch = start_epoch
        self.end_epoch = end_epoch
        self.kl_input = kl_input
        self.unimodal = unimodal
        self.needs_unimodal_heads = unimodal != "split_head"

    def build(self, spec: BuildSpec) -> None:
        if spec.task != "classification":
            raise ValueError(f"mbsd: needs a classification task (softmax), got {spec.task}")
        check_window("mbsd", self.start_epoch, self.end_epoch)  # end_epoch >= start_epoch
        self.names = spec.names
        self.widths = [vector_size(spec.feature_shapes[m]) for m in spec.names]
        self.epoch = 0
        self._split = self.unimodal == "split_head"

    def on_train_begin(self, ctx: TrainingContext) -> None:
        splittable = splits_concat_head(ctx.network)
        if self.unimodal == "split_head" and not splittable:
            raise ValueError(
                "mbsd: unimodal='split_head' needs fusion='concat' (a linear head over the "
                f"concatenated features), got {type(ctx.network.fusion).__name__}. "
                "Use unimodal='heads'."
            )
        self._split = self.unimodal == "split_head" or (self.unimodal == "auto" and splittable)
        self.epoch = 0

    def on_epoch_begin(self, ctx: TrainingContext) -> None:
        self.epoch = ctx.epoch

    def _unimodal_logits(self, output: FusionOutput, ctx: LossContext) -> list[Tensor]:
        if self._split and output.fused is not None:
            z = concat_head_logits(ctx.network, output.fused, self.widths)  # (B, M, K)
            return [z[:, position] for position in range(len(self.names))]
        if output.unimodal_logits is None:
            raise RuntimeError("mbsd: unimodal='heads' but the network built no unimodal heads")
        return [output.unimodal_logits[m] for m in self.names]

    def loss_terms(self, output: FusionOutput, ctx: LossContext) -> dict[str, Tensor]:
        if not ctx.training or not in_window(self.epoch, self.start_epoch, self.end_epoch):
            return {}
        logits = self._unimodal_logits(output, ctx)
        mask, target = output.mask, ctx.target
        unimodal = sum(
            ctx.weighted_mean(ctx.per_sample_loss(z), mask[:, position])
            for position, z in enumerate(logits)
        )  # Σ_m CE(z_m), (D5)
        pairs = list(combinations(range(len(logits)), 2))
        kl, rs = [], []
        for j, l in pairs:
            both = mask[:, j] & mask[:, l]  # (B,)
            weighted_kl, weighted_rs = pair_terms(logits[j], logits[l], target, self.kl_input)
            kl.append(ctx.weighted_mean(weighted_kl, both))
            rs.append(ctx.weighted_mean(weighted_rs, both))
        return {
            "mbsd_unimodal": unimodal,
            "mbsd_kl": torch.stack(kl).mean(),
            "mbsd_rs": torch.stack(rs).mean(),
        }


@hookimpl
def fusekit_weightings() -> dict[str, type]:
    return {"mbsd": MBSDWeighting}
