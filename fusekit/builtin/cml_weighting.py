"""Calibrating Multimodal Learning (CML).

Ma, Zhang, Zhang, Wu, Fu, Zhou, Hu, "Calibrating Multimodal Learning", ICML 2023,
arXiv:2306.01265. Official code: QingyangZhang/CML (``cpm/CPM_Nets.py``: ``rank_loss``); also
read: GeWu-Lab/BalanceBenchmark
(``balancemm/trainer/CML_trainer.py``: ``conf_loss``, ``training_step``;
``configs/trainer_config.yaml``: defaults). The paper's text was not available to us; the
equations are labelled (C1)-(C4), written from the two codes, and every choice is listed.

The paper's claim: a calibrated multimodal model is never *more* confident when a modality is
removed. CML regularises the training loss towards that. Per training batch, with v(S) ``(B, K)``
the fused logits when only the modalities in S are present and y ``(B,)`` the labels:

    (C1)  Conf(S)_i = max_k softmax(v(S)_i)_k,   ŷ(S)_i = argmax_k v(S)_i,k          ``(B,)``
    (C2)  N = S_0 ⊃ S_1 ⊃ … ⊃ S_{M−1},   S_j = S_{j−1} ∖ {π_j}
          π a random order of the modalities, drawn once per epoch                 (M − 1 pairs)
    (C3)  L_CML = Σ_{j=1}^{M−1} Σ_i ReLU((Conf(S_j)_i − Conf(S_{j−1})_i) · σ_ij)
          σ_ij = 0 if ŷ(S_j)_i = y_i and ŷ(S_{j−1})_i ≠ y_i, else 1                   (scalar)
    (C4)  L = L_task(v(N)) + Σ_{j=1}^{M−1} CE(v(S_j)) + λ · L_CML       (``subset_loss=True``)

σ is the official code's "trick 1": a sample whose smaller subset predicts right while the larger
one is wrong may be more confident on the smaller one. v(S_0) is the network's own training pass
(``output.logits``, with gradient); v(S_j) are extra fusion-and-head passes
(``network.fuse``) over the calibrated features with the modalities outside S_j masked, with
gradients: the regulariser and the subset losses train the encoders, the fusion and the head.
Defaults: λ = 0.1 and the window ``start_epoch=0``, ``end_epoch=80`` of BalanceBenchmark's
config; outside the window the loss is the plain task loss.

Choices, and where the two codes differ:

* (C2), nested subsets in a random order per epoch: BalanceBenchmark (``random.shuffle`` once per
  epoch, then ``pop()`` removes from the end); the official code compares a fixed sequence of
  inputs with growing sets of missing views. Here π is drawn in ``on_epoch_begin`` from torch's
  generator (seeded by ``fit``), and the last entry of the shuffled order is removed first.
* (C3), per sample and with σ: the official code (``ReLU((conf_{j} − conf_{j−1}) · sign)``,
  summed over the batch). BalanceBenchmark applies the ReLU to the batch *sum* of differences
  (``max(0, Σ_i …)``), so one sample's under-confidence can cancel another's over-confidence, and
  computes σ the other way round (exempting a right larger subset with a wrong smaller one) but
  never uses it. Both codes *sum* over the batch, and so does this module (λ then scales with the
  batch size, as in both codes).
* (C4): BalanceBenchmark divides the cross-entropy sum by M, ``(CE(v(N)) + Σ_j CE(v(S_j))) / M +
  λ·L_CML``; here the task loss keeps its weight 1 (so CML composes with weightings that define
  their own task loss), which is M times BalanceBenchmark's objective with λ/M in place of λ.
  ``subset_loss=False`` keeps the paper's L_task + λ·L_CML only.
* Missing modalities: a sample with no present modality left in S_j is left out of pair j (no
  prediction to compare) and of CE(v(S_j)); removing a modality a sample lacks leaves its
  prediction and so its penalty 0. Sample weights weight the subsets' cross-entropies as they do
  the task loss.
* Classification only (confidence is a class probability); regression is refused at ``build``.
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
    TrainingContext,
    Weighting,
    broadcast,
    check_window,
    hookimpl,
    in_window,
    world_size,
)


def confidence_and_prediction(logits: Tensor) -> tuple[Tensor, Tensor]:
    """(C1): max softmax probability and arg-max class of ``(B, K)`` logits, each ``(B,)``."""
    return F.softmax(logits, dim=1).max(dim=1)


def confidence_penalty(
    larger: Tensor, smaller: Tensor, target: Tensor, rows: Tensor, exempt_right_smaller: bool
) -> Tensor:
    """One pair of (C3): Σ_i ReLU((Conf(smaller) − Conf(larger)) · σ_i) over ``rows`` (scalar).

    ``larger``/``smaller`` are ``(B, K)`` logits of S_{j−1} ⊃ S_j, ``rows`` ``(B,)`` the samples
    that count; ``exempt_right_smaller`` applies σ (the official code's trick).
    """
    conf_larger, pred_larger = confidence_and_prediction(larger)
    conf_smaller, pred_smaller = confidence_and_prediction(smaller)
    sign = rows.to(conf_smaller.dtype)
    if exempt_right_smaller:
        exempt = (pred_smaller == target) & (pred_larger != target)
        sign = sign * (~exempt).to(sign.dtype)
    return F.relu((conf_smaller - conf_larger) * sign).sum()


class CMLWeighting(Weighting):
    """CML: penalise a prediction that grows more confident when a modality is removed."""

    supported_tasks = ("classification",)

    #: Data-parallel: π is the first process's draw (``broadcast``); the penalty is per sample,
    #: so each process's shard sum averaged by DDP is the global sum divided by the processes.
    data_parallel_safe = True

    parameter_constraints = {
        "lam": [Interval(Real, 0, None, closed="left")],
        "subset_loss": ["boolean"],
        "sign_trick": ["boolean"],
        "start_epoch": [Interval(Integral, 0, None, closed="left")],
        "end_epoch": [
            Interval(Integral, 0, None, closed="left"),
            None,
        ],  # >= start_epoch: checked in build
    }

    def __init__(
        self,
        lam: float = 0.1,
        subset_loss: bool = True,
        sign_trick: bool = True,
        start_epoch: int = 0,
        end_epoch: int | None = 80,
    ) -> None:
        super().__init__()
        self.lam = lam
        self.subset_loss = subset_loss
        self.sign_trick = sign_trick
        self.start_epoch = start_epoch
        self.end_epoch = end_epoch

    def build(self, spec: BuildSpec) -> None:
        if spec.task != "classification":
            raise ValueError(f"cml: needs a classification task (confidences), got {spec.task}")
        check_window("cml", self.start_epoch, self.end_epoch)
        self.names = spec.names
        #: π of (C2): modality positions, the last one removed first.
        self.removal_order: list[int] = list(range(len(spec.names)))
        self.epoch = 0

    def on_train_begin(self, ctx: TrainingContext) -> None:
        self.epoch = 0

    def on_epoch_begin(self, ctx: TrainingContext) -> None:
        self.epoch = ctx.epoch
        self.removal_order = broadcast(torch.randperm(len(self.names))).tolist()

    def loss_terms(self, output: FusionOutput, ctx: LossContext) -> dict[str, Tensor]:
        if not ctx.training or not in_window(self.epoch, self.start_epoch, self.end_epoch):
            return {}
        mask = output.mask  # (B, M)
        keep = torch.ones_like(mask)
        larger = output.logits  # v(S_0), (B, K)
        penalty = larger.new_zeros(())
        subsets = larger.new_zeros(())
        for position in reversed(self.removal_order[1:]):  # M − 1 removals, the last entry first
            keep[:, position] = False
            subset_mask = mask & keep  # (B, M)
            rows = subset_mask.any(dim=1)  # (B,) something left to predict from
            smaller = ctx.network.fuse(output.calibrated, subset_mask, steps=output.steps)
            penalty = penalty + confidence_penalty(
                larger, smaller, ctx.target, rows, self.sign_trick
            )
            if self.subset_loss:
                subsets = subsets + ctx.weighted_mean(ctx.per_sample_loss(smaller), rows)
            larger = smaller
        # a sum over rows: times the process count, DDP's average of the shards' sums is the
        # global batch's sum (1 in a single process)
        terms = {"cml_confidence": float(self.lam) * world_size() * penalty}
        if self.subset_loss:
            terms["cml_subsets"] = subsets
        output.diagnostics["cml_penalty"] = penalty.detach()
        return terms


@hookimpl
def fusekit_weightings() -> dict[str, type]:
    return {"cml": CMLWeighting}
