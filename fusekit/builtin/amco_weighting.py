"""Adaptive Mask-based Modality Cooperation (AMCo), as BalanceBenchmark implements it.

Zhou, Liang, Zheng, Xuan, Kumada, "Adaptive Mask Co-Optimization for Modal Dependence in
Multimodal Learning", ICASSP 2023. This module follows GeWu-Lab/BalanceBenchmark
(``balancemm/trainer/AMCo_trainer.py``: ``train_loop``, ``training_step``;
``balancemm/models/avclassify_model.py``: ``BaseClassifierAMCoModel``;
``configs/trainer_config.yaml``: defaults), which is what the task names; the paper's text was not
available to us, so the equations are labelled (A1)-(A6) and written from that code.

The concat head W = [W_1 … W_M] ``(K, Σ D_m)``, b ``(K,)`` is split per modality, the logits of
a modality judged *dependent* (dominant) are multiplied by a random class mask, and one more
linear layer L* ``(K, K)`` makes the decision. Per training batch t of epoch e (0-based), with
h_m ``(B, D_m)`` the (pooled) features and y ``(B,)`` the labels:

    (A1)  z_m = h_m W_mᵀ + b / M                                      ``(B, K)``
    (A2)  p_t = sin(π/2 · min(ε, l_t) / ε),  l_t = t · e / 10;   N_t = ⌊p_t · K⌋
          c_t ∈ {0, 1}^K with N_t zeros at uniformly random classes        ``(K,)``
    (A3)  z̃_m = c_t ⊙ z_m if d_m else z_m;    logits = L*(Σ_m z̃_m)     ``(B, K)``
    (A4)  L = CE(logits, y) + Σ_m CE(z̃_m, y)                            (scalar)
    (A5)  u_m = (1/B) Σ_i Σ_{k ∈ block m} softmax([z̃_1 … z̃_M]_i)_k   (share of the M·K softmax)
    (A6)  d_m ← u_m > σ   after the batch; d_m = False at the start of each epoch

so the dependence flags of batch t come from batch t − 1. Outside the modulation window
(``start_epoch``..``end_epoch``, inclusive) and in evaluation and prediction nothing is masked and
there are no unimodal losses, but L* always decides (it is part of the model). Defaults from the
config: ε = 0.3, σ = 0.5, window 0-80. With them the mask is empty in epoch 0 (l_t = 0), and from
epoch e ≥ 1 on it covers every class after ⌈3 / e⌉ batches (p_t = 1): the dependent modality's
logits are then removed from the decision and from its own loss altogether.

Differences between paper, code and this module, and the pick:

* The paper values modalities with a Shapley-style contribution and masks the *features* of the
  dependent one; BalanceBenchmark measures dependence by the softmax share (A5) and masks *class
  logits* (A3). The task asks for BalanceBenchmark's method, so this follows the code.
* The code builds c_t as a ``(2, K)`` tensor (``mask_t.expand(2, -1)``), which broadcasts against
  ``(B, K)`` logits only when B = 2; both rows are the same mask, so here the one ``(K,)`` mask is
  applied to every row (the evident intent).
* The config's ``alpha``, ``U`` and ``method`` are read by the trainer but never used; ``pt`` is
  passed to the model and never used there. They are not parameters here.
* The code backpropagates CE(logits) and each CE(z̃_m) separately with weight 1 (A4); the sum is
  the same gradient. Here the unimodal losses are one loss term, ``amco_unimodal``.
* (A1) needs the head's per-modality blocks, so the fusion must be ``concat`` with a linear head,
  as in the code (its unimodal logits exist for ``fusion == 'concat'`` only); with
  ``indicators=True`` the mask column of modality m belongs to z_m. Another fusion is refused at
  ``on_train_begin`` with a ValueError naming it. z_m is computed from the fused vector
  (``output.fused``), so it is exactly the head's split in every pass.
* Missing modalities (the code has none): an absent row's block of the fused vector is zero, so
  z_m = b / M there. CE(z̃_m) is the mean over the rows where m is present (sample weights
  applied). In (A5) an absent entry gets no share (−∞ logits before the softmax) and the mean is
  over rows with some modality present.
* Data-parallel: c_t is the first process's draw (``broadcast``) and u_m the global batch's mean
  (``global_present_mean``), so every process masks the same way.
* Classification only (softmax shares and class masks); regression is refused at ``build``.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import torch
from torch import Tensor, nn
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
    concat_head_logits,
    global_present_mean,
    hookimpl,
    in_window,
    split_concat_head,
    splits_concat_head,
    vector_size,
)


def mask_fraction(progress: float, eps: float) -> float:
    """(A2): p_t = sin(π/2 · min(ε, l_t) / ε) for progress l_t >= 0."""
    return math.sin(math.pi / 2 * min(eps, progress) / eps)


def class_mask(permutation: Tensor, n_masked: int) -> Tensor:
    """(A2): ``(K,)`` float mask with zeros at the ``n_masked`` classes of lowest rank in
    ``permutation`` (a random permutation of 0..K−1), ones elsewhere."""
    return (permutation >= n_masked).float()


def dependence_shares(unimodal: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """(A5): per-row shares of the softmax over all M·K unimodal logits, ``(B, M)``, and the
    rows that count ``(B,)`` (some modality present). Absent entries get no share."""
    scores = unimodal.detach().float().masked_fill(~mask.unsqueeze(-1), float("-inf"))
    rows = mask.any(dim=1)  # (B,)
    scores = torch.where(rows[:, None, None], scores, torch.zeros_like(scores))  # no NaN rows
    shares = F.softmax(scores.flatten(1), dim=1).view_as(scores).sum(dim=2)  # (B, M)
    return shares, rows


class AMCoWeighting(Weighting):
    """AMCo: mask random classes of the dominant modality's logits, decide with one more layer."""

    supported_tasks = ("classification",)

    #: Data-parallel: the class mask is broadcast, the dependence shares are global means.
    data_parallel_safe = True
    parameter_constraints = {
        "sigma": [Interval(Real, 0, 1, closed="both")],
        "eps": [Interval(Real, 0, None, closed="neither")],
        "start_epoch": [Interval(Integral, 0, None, closed="left")],
        "end_epoch": [
            Interval(Integral, 0, None, closed="left"),
            None,
        ],  # >= start_epoch: checked in build
    }

    def __init__(
        self,
        sigma: float = 0.5,
        eps: float = 0.3,
        start_epoch: int = 0,
        end_epoch: int | None = 80,
    ) -> None:
        super().__init__()
        self.sigma = sigma
        self.eps = eps
        self.start_epoch = start_epoch
        self.end_epoch = end_epoch

    def build(self, spec: BuildSpec) -> None:
        if spec.task != "classification":
            raise ValueError(f"amco: needs a classification task (class masks), got {spec.task}")
        check_window("amco", self.start_epoch, self.end_epoch)
        self.names = spec.names
        self.widths = [vector_size(spec.feature_shapes[m]) for m in spec.names]
        self.n_classes = spec.n_outputs
        self.decision = nn.Linear(spec.n_outputs, spec.n_outputs)  # L* of (A3)
        m = len(spec.names)
        self.register_buffer("dependent", torch.zeros(m, dtype=torch.bool), persistent=False)
        self.register_buffer("mask", torch.ones(spec.n_outputs), persistent=False)  # c_t
        self.epoch = 0
        self.progress = 0.0  # l_t
        self._head: tuple[nn.Module, bool] | None = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_head"] = None  # the fit's head, set again at every training batch
        return state

    def _active(self) -> bool:
        return self.training and in_window(self.epoch, self.start_epoch, self.end_epoch)

    def on_train_begin(self, ctx: TrainingContext) -> None:
        network = ctx.network
        if not splits_concat_head(network):
            raise ValueError(
                "amco: needs fusion='concat' (a linear head over the concatenated features, "
                f"split per modality), got {type(network.fusion).__name__}"
            )
        self.epoch = 0

    def on_epoch_begin(self, ctx: TrainingContext) -> None:
        self.epoch = ctx.epoch
        self.progress = 0.0
        self.dependent.zero_()

    def on_batch_begin(self, ctx: TrainingContext) -> None:
        self.epoch = ctx.epoch
        network = ctx.network
        self._head = (network.head, bool(getattr(network.fusion, "indicators", False)))
        n_masked = int(mask_fraction(self.progress, float(self.eps)) * self.n_classes)  # (A2)
        permutation = broadcast(torch.randperm(self.n_classes, device=self.mask.device))
        self.mask.copy_(class_mask(permutation, n_masked))
        self.progress += ctx.epoch / 10

    def _factor(self) -> Tensor:
        """(A3): ``(M, K)``, the class mask c_t for dependent modalities and ones otherwise."""
        ones = torch.ones_like(self.mask)
        return torch.where(self.dependent[:, None], self.mask[None, :], ones[None, :])

    def adjust_logits(self, output: FusionOutput) -> Tensor:
        logits = output.logits  # Σ_m z_m, (B, K)
        if self._active() and self._head is not None and output.fused is not None:
            head, indicators = self._head
            z = split_concat_head(output.fused, head.weight, head.bias, self.widths, indicators)
            dropped = z * (1 - self._factor()).to(z.dtype)  # (B, M, K): z_m − z̃_m
            logits = logits - dropped.sum(dim=1)  # Σ_m z̃_m, (A3)
        return self.decision(logits)

    def loss_terms(self, output: FusionOutput, ctx: LossContext) -> dict[str, Tensor]:
        if not ctx.training or not self._active() or output.fused is None:
            return {}
        z = concat_head_logits(ctx.network, output.fused, self.widths)  # (A1), (B, M, K)
        unimodal = z * self._factor().to(z.dtype)  # z̃_m, (B, M, K)
        mask = output.mask
        loss = sum(
            ctx.weighted_mean(ctx.per_sample_loss(unimodal[:, position]), mask[:, position])
            for position in range(len(self.names))
        )  # (A4)
        with torch.no_grad():
            shares, rows = dependence_shares(unimodal, mask)  # (A5)
            share, _ = global_present_mean(shares, rows[:, None].expand_as(mask))  # (M,)
            self.dependent.copy_(share > float(self.sigma))  # (A6), used from the next batch
        output.diagnostics["amco_share"] = share
        return {"amco_unimodal": loss}


@hookimpl
def fusekit_weightings() -> dict[str, type]:
    return {"amco": AMCoWeighting}
