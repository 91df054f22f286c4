"""Uni-Modal Teacher (UMT).

Du, Teng, Li, Liu, Yuan, Wang, Yuan, Zhao, "On Uni-Modal Feature Learning in Supervised
Multi-Modal Learning", ICML 2023, arXiv:2305.01233 (UMT first in Du, Li, Liu, Wen, Hua, Wang,
Zhao, "Improving Multi-Modal Learning with Uni-Modal Teachers", arXiv:2106.11059). No official
code was reachable; written from GeWu-Lab/BalanceBenchmark (``balancemm/trainer/UMT_trainer.py``,
``configs/trainer_config.yaml``), which the issue names as the reference implementation. The
equations are labelled (U1)-(U2) rather than with the paper's numbers.

Joint training learns the uni-modal features of each modality too little ("modality laziness");
UMT first trains one uni-modal model per modality, then trains the multi-modal model with its
encoders pulled towards the teachers' features:

    (U1)  teacher_m = argmin_θ CE(g_θ(x_m), y)       one uni-modal model per modality, trained
          first; its encoder output t_m(x_m) ``(B, *shape_m)``, frozen afterwards
    (U2)  L = L_task + s · Σ_m MSE(t_m(x_m), h_m)     h_m ``(B, *shape_m)`` the multi-modal
          encoder's output; MSE the mean over present rows and every feature entry

Choices:

* The uni-modal model of (U1) is a copy of the network itself (its backbone for m, calibration,
  fusion and head) trained with every other modality absent, so its encoder has exactly the shape
  of the multi-modal one and its prediction is made from m alone. BalanceBenchmark loads
  checkpoints of its separately trained uni-modal models of the same encoder architecture. The
  teachers start from the network's initial weights, train with the fit's optimiser class and
  learning rate for ``teacher_epochs`` epochs (``None``: as many as the fit, ``max_epochs``) over
  the training rows where m is present (the validation split, if any, is left out), in
  ``on_train_begin``; they are not saved with the model (prediction does not use them).
* (U2): BalanceBenchmark's ``scaling · MSELoss(teacher, student)``, default s = 10 (its config),
  applied in epochs ``start_epoch ≤ epoch ≤ end_epoch`` (its ``modulation_starts``/``_ends``,
  0-80); outside the window the loss is the task loss alone. The teachers see the same (possibly
  perturbed) batch the training pass saw.
* Missing modalities: the MSE of m averages over the rows where m is present (an absent row's
  features are zeros on both sides); a modality absent from the batch adds nothing, and one with
  no present training row gets no teacher.
* State per training set: the teachers are trained on the whole training set at the start, so
  ``partial_fit`` refuses UMT (``needs_all_training_rows``).
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
    ModalityBatch,
    NetworkView,
    TrainingContext,
    Weighting,
    check_window,
    hookimpl,
    in_window,
    present_mean,
)


def feature_distance(teacher: Tensor, student: Tensor, present: Tensor) -> Tensor:
    """(U2)'s MSE: mean over the present rows ``(B,)`` of the mean squared entry difference."""
    per_row = (teacher - student).pow(2).flatten(start_dim=1).mean(dim=1)  # (B,)
    return present_mean(per_row, present)


def train_teacher(
    network: NetworkView,
    inputs: ModalityBatch,
    target: Tensor,
    name: str,
    epochs: int,
    batch_size: int,
    optimizer_class: type,
    lr: float,
) -> NetworkView:
    """(U1): a copy of ``network`` trained on ``inputs`` with every modality but ``name`` absent."""
    others = [m for m in inputs.names if m != name]
    only = inputs.without(others) if others else inputs
    teacher = network.copy(plain=True)
    optimiser = optimizer_class(teacher.parameters(), lr=lr)
    size = batch_size if batch_size > 0 else len(only)
    teacher.train()
    for _ in range(epochs):
        order = torch.randperm(len(only)).to(target.device)
        for start in range(0, len(only), size):
            rows = order[start : start + size]
            output = teacher(only.take(rows))
            loss = teacher.criterion.per_sample(output.logits, target[rows]).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    teacher.eval()
    teacher.requires_grad_(False)
    return teacher


class UMTWeighting(Weighting):
    """UMT: pull each encoder's features towards a uni-modal teacher's, trained first."""

    needs_all_training_rows = True
    #: Not data-parallel: each process would train its own teachers, with its own random stream.
    data_parallel_safe = False
    parameter_constraints = {
        "scaling": [Interval(Real, 0, None, closed="left")],
        "teacher_epochs": [Interval(Integral, 1, None, closed="left"), None],
        "start_epoch": [Interval(Integral, 0, None, closed="left")],
        "end_epoch": [Interval(Integral, 0, None, closed="left"), None],
    }

    def __init__(
        self,
        scaling: float = 10.0,
        teacher_epochs: int | None = None,
        start_epoch: int = 0,
        end_epoch: int | None = 80,
    ) -> None:
        super().__init__()
        self.scaling = scaling
        self.teacher_epochs = teacher_epochs
        self.start_epoch = start_epoch
        self.end_epoch = end_epoch

    def build(self, spec: BuildSpec) -> None:
        check_window("umt", self.start_epoch, self.end_epoch)  # end_epoch >= start_epoch
        self.names = spec.names
        self.teachers: dict[str, NetworkView] = {}
        #: Σ_m MSE(t_m, h_m) of (U2) on the last training batch in the window (a diagnostic).
        self.last_distance: Tensor | None = None
        self.epoch = 0

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["teachers"] = {}  # training aids only; prediction never uses them
        return state

    def on_train_begin(self, ctx: TrainingContext) -> None:
        if ctx.data is None or ctx.data.target is None:
            raise RuntimeError("umt: needs the training rows (ctx.data) to train its teachers")
        inputs, target = ctx.data.inputs, ctx.data.target
        if ctx.train_rows is not None:
            rows = ctx.train_rows.to(target.device)
            inputs, target = inputs.take(rows), target[rows]
        epochs = ctx.max_epochs if self.teacher_epochs is None else int(self.teacher_epochs)
        self.teachers = {}
        for position, name in enumerate(self.names):
            present = inputs.mask[:, position].nonzero()[:, 0]
            if len(present) == 0:
                continue
            self.teachers[name] = train_teacher(
                ctx.network, inputs.take(present), target[present], name, epochs,
                ctx.batch_size, ctx.loop.optimizer_class, ctx.loop.lr,
            )  # fmt: skip
        self.epoch = 0

    def on_epoch_begin(self, ctx: TrainingContext) -> None:
        self.epoch = ctx.epoch

    def loss_terms(self, output: FusionOutput, ctx: LossContext) -> dict[str, Tensor]:
        if not ctx.training or not self.teachers or output.batch is None:
            return {}
        if not in_window(self.epoch, self.start_epoch, self.end_epoch):
            return {}
        distances = []
        for position, name in enumerate(self.names):
            teacher = self.teachers.get(name)
            present = output.mask[:, position]
            if teacher is None:
                continue
            others = [m for m in self.names if m != name]
            if next(teacher.parameters()).device != output.logits.device:
                teacher.to(output.logits.device)  # the network moved after on_train_begin
            with torch.no_grad():
                taught = teacher(output.batch.without(others) if others else output.batch)
            distances.append(
                feature_distance(taught.features[name], output.features[name], present)
            )  # 0 when m is absent from the batch
        total = torch.stack(distances).sum()
        self.last_distance = total.detach()
        return {"umt_distillation": float(self.scaling) * total}


@hookimpl
def fusekit_weightings() -> dict[str, type]:
    return {"umt": UMTWeighting}
