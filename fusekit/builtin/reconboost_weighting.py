"""ReconBoost: alternating modality boosting with the reconcilement regulariser ("reconboost").

Hua, Xu, Bao, Yang, Huang, "ReconBoost: Boosting Can Achieve Modality Reconcilement", ICML 2024,
arXiv:2405.09321. Official code: huacong/ReconBoost (``train.py``: the stage loop, phase 1 and
phase 2; ``models/dynamic_net.py``: ``DynamicNet``, the ensemble with its learnt ``boost_rate``;
``schedule.py``: the fixed modality order). Also read: GeWu-Lab/BalanceBenchmark
(``balancemm/trainer/ReconBoost_trainer.py``, ``BaseClassifierReconBoostModel`` in
``balancemm/models/avclassify_model.py``, ``configs/trainer_config.yaml``). Only the paper's
abstract was available to us, so the equations are labelled (B1)-(B4), written from the two
codes, not with the paper's numbers.

One modality is updated at a time. Stage s picks the modality m_s (the modalities in
``spec.names`` order, cyclically, as the official ``fixed_mode`` schedule); with f_m the learner
of modality m (its encoder and the shared decision layer), K classes, y ``(B,)`` the labels and
e_y the one-hot target ``(B, K)``:

    (B1)  F(x) = ρ · Σ_m f_m(x_m)                 the ensemble, ρ a learnt scalar ``boost_rate``
          F_{−m}(x) = ρ · Σ_{j≠m} f_j(x_j)         the ensemble without m (no gradient)   (B, K)
    (B2)  L_boost = mean_i 1/K Σ_k e_ik (w₁ − w₂ softmax(F_{−m}(x_i))_k)(−log softmax(f_m(x_i))_k)
          = mean_i (w₁ − w₂ q_i) CE(f_m(x_i), y_i) / K,   q_i = softmax(F_{−m}(x_i))[y_i]
          phase 1, the reconcilement (KL-based, boosting) objective: rows the other modalities
          already get right weigh less, the others more (w₁ = ``weight1``, w₂ = ``weight2``)
    (B3)  L = L_boost + α · MSE(softmax(f_m), softmax(f_{m_{s−1}}))    from the second stage
          on ("memory consolidation"; f_{m_{s−1}} the previous stage's modality, no gradient)
    (B4)  phase 2, global rectification: CE(F(x), y) on every parameter (encoders, decision
          layer, ρ)

Each stage runs ``boost_epochs`` epochs of phase 1, then ``rectify_epochs`` epochs of phase 2.
Shapes: features h_m ``(B, *shape_m)``, logits ``(B, K)``, q and the losses per row ``(B,)``.

In fusekit's network the modalities meet in the fusion, so the learner and the ensembles are
passes of the fusion and head with a mask (as AGM's and CML's coalitions), which works with every
fusion:

* f_m = the fusion and head (``network.decide``) on the calibrated features with only m present,
  with gradient; with ``fusion="sum"`` or ``"concat"`` and the linear head this is the codes'
  shared head on m's features (plus the head's bias). The boosting phase's loss reaches only m's
  encoder and the decision layer, so only they are trained in phase 1, as in both codes.
* F_{−m} = the full decision pass (``network.fuse``, with ρ) with m's mask bit cleared, without
  gradient; F = the network's own logits, ρ·(fusion and head), which this weighting scales in
  ``adjust_logits`` in training and prediction, as ``DynamicNet.forward`` does. For concat or sum
  fusion with a linear head F is additive over modalities, the codes' Σ_m f_m.
* The phase follows the epoch (``ctx.epoch``; ``partial_fit`` continues the count): epoch e is in
  stage s = e // (``boost_epochs`` + ``rectify_epochs``), in phase 1 for the first
  ``boost_epochs`` epochs of the stage. Before any epoch hook (a loss computed outside a fit) the
  schedule's epoch 0 holds: phase 1 on the first modality. Validation passes use (B4).

Where the two codes differ, and the picks:

* (B1) ρ: the official code starts it at ``--boost_rate`` = 1.0, BalanceBenchmark at 0.01; both
  train it in phase 2 only (as here: phase 1's losses do not reach it). Default 1.0: at 0.01 the
  ensemble's softmax is nearly uniform for many epochs, so q ≈ 1/K and (B2) loses its boosting
  weight.
* (B2) the first stage: the official code without pretrained learners uses a random constant c₀
  as the ensemble, whose one-column softmax is 1, so q = 1 and the weight is w₁ − w₂;
  BalanceBenchmark uses the untrained other learners (q ≈ 1/K). Here as BalanceBenchmark: F_{−m}
  from the network as it is. The factor 1/K (both codes' ``.mean(-1)`` over classes) is kept.
* (B3): both codes compute the term on ``out_obj.detach()`` and ``pre_out_obj.detach()``, so it
  has no gradient and changes no parameter (it is only logged), although both configs set
  α = 0.5. Default ``alpha=0.0`` is that effect. ``alpha > 0`` adds the term with gradient through
  the current learner f_m (the previous modality's side stays detached), the regulariser as the
  codes write it without the first ``detach``; it is never on by default because neither code
  ever trained with it.
* Schedule: BalanceBenchmark runs, per epoch, every modality's stage (``T_epochs`` = 1 epoch of
  phase 1, then 1 of phase 2); the official code runs 1001 stages of ``epochs_per_stage`` = 4 and
  ``correct_epoch`` = 4 epochs (CREMA-D). Defaults ``boost_epochs=1``, ``rectify_epochs=1`` are
  BalanceBenchmark's; fusekit's one optimiser (the estimator's) serves both phases, where the
  official code makes a fresh SGD optimiser per phase and stage. BalanceBenchmark's
  ``modulation_starts``/``modulation_ends`` fall back to a loss it never defines, so there is no
  window here. The official learning-rate steps (×0.1 every 30 stages) are left to
  ``lr_schedule``.
* Missing modalities (neither code has them): a row where m is absent has no learner output and is
  left out of (B2) and (B3); a row with no other modality present has no ensemble, so q = 0 (the
  full weight w₁); (B3) counts the rows where both m and the previous modality are present; a
  batch without m trains nothing in phase 1 (loss 0). Sample weights weight (B2) and (B3) as the
  task loss.
* Classification only (q is a class probability); regression is refused at ``build``.
* Data-parallel: the phase is a function of the epoch, the same in every process, and the losses
  are per-row means over each process's shard, averaged by DDP like the task loss.
"""

from __future__ import annotations

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
    at_least_float32,
    hookimpl,
    zero_absent,
)

#: The name of the rectification phase in ``phase`` and ``phases``.
RECTIFY = "rectify"


def boosting_loss_per_row(
    learner: Tensor, ensemble: Tensor, target: Tensor, has_ensemble: Tensor, w1: float, w2: float
) -> Tensor:
    """(B2) per row ``(B,)``: (w₁ − w₂ q_i) · CE(f_m(x_i), y_i) / K in float32.

    ``learner`` and ``ensemble`` are ``(B, K)`` logits; q_i = softmax(ensemble_i)[y_i], set to 0
    where ``has_ensemble`` ``(B,)`` is False (no other modality present).
    """
    log_p = F.log_softmax(at_least_float32(learner), dim=1)  # (B, K)
    q = F.softmax(at_least_float32(ensemble), dim=1).gather(1, target[:, None]).squeeze(1)
    q = torch.where(has_ensemble, q, torch.zeros_like(q))  # (B,)
    nll = -log_p.gather(1, target[:, None]).squeeze(1)  # (B,)
    return (w1 - w2 * q) * nll / learner.shape[1]


def consolidation_per_row(learner: Tensor, previous: Tensor) -> Tensor:
    """(B3) per row ``(B,)``: mean_k (softmax(f_m)_k − softmax(f_prev)_k)², f_prev detached."""
    p = F.softmax(at_least_float32(learner), dim=1)
    p_prev = F.softmax(at_least_float32(previous.detach()), dim=1)
    return ((p - p_prev) ** 2).mean(dim=1)


def schedule(epoch: int, n_modalities: int, boost_epochs: int, rectify_epochs: int) -> tuple:
    """``(stage, phase)`` of ``epoch``: phase is a modality position (phase 1) or ``RECTIFY``."""
    stage, within = divmod(epoch, boost_epochs + rectify_epochs)
    return stage, (stage % n_modalities if within < boost_epochs else RECTIFY)


class ReconBoostWeighting(Weighting):
    """ReconBoost: train one modality at a time on a boosting loss against the others' ensemble."""

    supported_tasks = ("classification",)

    #: Data-parallel: the phase follows the epoch; the losses are per-row means (see docstring).
    data_parallel_safe = True
    parameter_constraints = {
        "weight1": [Interval(Real, 0, None, closed="left")],
        "weight2": [Interval(Real, 0, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "boost_rate": [Interval(Real, None, None, closed="neither")],  # any finite number
        "boost_epochs": [Interval(Integral, 1, None, closed="left")],
        "rectify_epochs": [Interval(Integral, 0, None, closed="left")],
    }

    def __init__(
        self,
        weight1: float = 5.0,
        weight2: float = 1.0,
        alpha: float = 0.0,
        boost_rate: float = 1.0,
        boost_epochs: int = 1,
        rectify_epochs: int = 1,
    ) -> None:
        super().__init__()
        self.weight1 = weight1
        self.weight2 = weight2
        self.alpha = alpha
        self.boost_rate = boost_rate
        self.boost_epochs = boost_epochs
        self.rectify_epochs = rectify_epochs

    def build(self, spec: BuildSpec) -> None:
        if spec.task != "classification":
            raise ValueError(
                f"reconboost: needs a classification task (its boosting weight is a class "
                f"probability), got {spec.task}"
            )
        self.names = spec.names
        #: ρ of (B1), trained in phase 2 (B4).
        self.rate = nn.Parameter(torch.tensor(float(self.boost_rate)))
        self._set_epoch(0)
        #: The phase of every epoch trained so far: a modality name or ``"rectify"``.
        self.phases: list[str] = []

    def _set_epoch(self, epoch: int) -> None:
        self.stage, self.phase = schedule(
            epoch, len(self.names), int(self.boost_epochs), int(self.rectify_epochs)
        )

    def on_train_begin(self, ctx: TrainingContext) -> None:
        self.phases = []
        self._set_epoch(0)

    def on_epoch_begin(self, ctx: TrainingContext) -> None:
        self._set_epoch(ctx.epoch)
        self.phases.append(RECTIFY if self.phase == RECTIFY else self.names[self.phase])

    def adjust_logits(self, output: FusionOutput) -> Tensor:
        return self.rate.to(output.logits.dtype) * output.logits  # (B1): F = ρ · (fusion, head)

    def _learner(self, ctx: LossContext, output: FusionOutput, position: int) -> Tensor:
        """f_m: fusion and head on modality ``position`` alone (other features zeroed)."""
        only = torch.zeros_like(output.mask)
        only[:, position] = output.mask[:, position]
        features = zero_absent(output.calibrated, only)
        return ctx.network.decide(features, only, steps=output.steps)

    def task_loss(self, output: FusionOutput, ctx: LossContext) -> Tensor:
        if not ctx.training or self.phase == RECTIFY:
            return ctx.mean_loss(output.logits)  # (B4)
        position = self.phase
        mask = output.mask  # (B, M)
        rows = mask[:, position]  # (B,) the learner has an input
        others = mask.clone()
        others[:, position] = False
        learner = self._learner(ctx, output, position)  # (B, K), with gradient
        with torch.no_grad():
            ensemble = ctx.network.fuse(output.calibrated, others, steps=output.steps)
        per_row = boosting_loss_per_row(
            learner,
            ensemble,
            ctx.target,
            others.any(dim=1),
            float(self.weight1),
            float(self.weight2),
        )
        loss = ctx.weighted_mean(per_row, rows)
        output.diagnostics["reconboost_boosting"] = loss.detach()
        if self.stage > 0 and len(self.names) > 1:
            previous_position = (position - 1) % len(self.names)
            with torch.no_grad():
                previous = self._learner(ctx, output, previous_position)
            both = rows & mask[:, previous_position]
            consolidation = ctx.weighted_mean(consolidation_per_row(learner, previous), both)
            output.diagnostics["reconboost_consolidation"] = consolidation.detach()
            if float(self.alpha) > 0:
                loss = loss + float(self.alpha) * consolidation
        return loss


@hookimpl
def fusekit_weightings() -> dict[str, type]:
    return {"reconboost": ReconBoostWeighting}
