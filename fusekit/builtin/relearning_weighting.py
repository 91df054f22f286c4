"""Diagnosing & Re-learning (D&R, "relearning").

Wei, Li, Feng, Hu, "Diagnosing and Re-learning for Balanced Multimodal Learning", ECCV 2024,
arXiv:2407.09705. Official code: GeWu-Lab/Diagnosing_Relearning_ECCV2024 (``code/ours.py``:
``purity_score``, ``reinit_score``, ``reinit``, the epoch loop of ``main``;
``code/script/ours.sh``: defaults); also read: GeWu-Lab/BalanceBenchmark
(``balancemm/trainer/ReLearning_trainer.py``). The paper's text was not available to us; the
equations are labelled (R1)-(R4), written from the official code.

Instead of comparing modalities with each other, D&R diagnoses each modality's own learning
state from how separable its uni-modal representation is, and softly re-initialises every
encoder by that state: an over-fitted (well-learnt) encoder is pulled back towards its initial
weights more, a worse-learnt one less. Every ``reinit_epoch`` epochs (after the epoch's training,
at most ``reinit_num`` times), per modality m with encoder outputs h_m over the training rows D
and the held-out rows V:

    (R1)  c = KMeans_K(MinMax_[−1,1](h_m))          K = number of classes, per set ``(n,)``
    (R2)  P(D) = (1/n) Σ_k max_y |{i ∈ cluster k : y_i = y}|            purity of D (and of V)
    (R3)  α_m = tanh(λ · |P_m(D) − P_m(V)|)                              (scalar in [0, 1))
    (R4)  θ_m ← α_m · θ_m^(0) + (1 − α_m) · θ_m                       every parameter of
          encoder m; θ_m^(0) its value at the start of training

Defaults from ``ours.sh``: λ = 3 (``move_lambda``), ``reinit_epoch`` = 20, ``reinit_num`` = 3;
the check is the code's ``epoch % reinit_epoch == 0 and epoch > 0`` on 0-based epochs.

Choices:

* V: the code's separate validation set, never trained on. Here V is the fit's validation split
  when it has one (the rows of ``ctx.data`` outside ``ctx.train_rows``: ``early_stopping=True``
  or a ``train_split``); otherwise D&R holds out ``validation_fraction`` of the training rows
  itself (at least one row per class) at the first epoch (drawn from torch's generator, seeded
  by ``fit``) and leaves them out of the task loss, as gradient blending does (a gap between the
  training rows and themselves would always be 0, and D&R would silently do nothing). So D&R
  defines the task loss (the sample-weighted mean over the rows it trains on) and cannot be
  combined with another weighting that defines one.
* h_m: the backbone outputs (the code's ``a``, ``v``: encoder outputs after pooling), computed in
  evaluation mode without gradient; sequence outputs are pooled over real steps
  (``as_vector``), image-like ones flattened. Each set is scaled on its own (``MinMaxScaler``
  fitted per set, as the code), KMeans with ``random_state=0`` (as the code; scikit-learn's
  ``KMeans``), purity from scikit-learn's ``contingency_matrix`` (the code's majority-vote
  ``purity_score`` gives the same number).
* Only the encoders are re-initialised, not fusion or head (the code: ``audio_net``/``visual_net``
  parameters); the optimiser state is kept (the code too).
* Missing modalities: (R1)-(R3) use the rows where m is present; with fewer present rows than
  classes in D or V, α_m = 0 (no diagnosis, no re-initialisation).
* Classification only (purity needs classes); regression is refused at ``build``.
* ``needs_all_training_rows``: the diagnosis runs over the whole training and validation sets.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
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
    as_vector,
    hookimpl,
)


def purity(labels: np.ndarray, clusters: np.ndarray) -> float:
    """(R2): the fraction of rows whose class is their cluster's majority class."""
    from sklearn.metrics.cluster import contingency_matrix

    table = contingency_matrix(labels, clusters)  # (classes, clusters)
    return float(table.max(axis=0).sum() / table.sum())


def cluster_purity(features: np.ndarray, labels: np.ndarray, n_classes: int) -> float:
    """(R1)-(R2) on one set: MinMax to [−1, 1], KMeans with K = ``n_classes``, purity."""
    from sklearn.cluster import KMeans
    from sklearn.preprocessing import MinMaxScaler

    scaled = MinMaxScaler(feature_range=(-1, 1)).fit_transform(features)
    clusters = KMeans(n_clusters=n_classes, random_state=0, n_init="auto").fit_predict(scaled)
    return purity(labels, clusters)


def relearning_strength(gap: float, move_lambda: float) -> float:
    """(R3): α = tanh(λ · |gap|)."""
    return math.tanh(float(move_lambda) * abs(gap))


@torch.no_grad()
def encoder_outputs(
    network: NetworkView, inputs: ModalityBatch, batch_size: int
) -> dict[str, Tensor]:
    """Backbone outputs as vectors ``{m: (n, D_m)}`` over ``inputs``, in evaluation mode."""
    size = batch_size if batch_size > 0 else len(inputs)
    parts: dict[str, list[Tensor]] = {name: [] for name in inputs.names}
    with network.evaluating():
        for start in range(0, len(inputs), size):
            chunk = inputs.take(slice(start, start + size))
            output = network(chunk)
            for name, value in output.features.items():
                parts[name].append(as_vector(value, output.steps.get(name)).float().cpu())
    return {name: torch.cat(values) for name, values in parts.items()}


class RelearningWeighting(Weighting):
    """D&R: re-initialise each encoder softly by its train/validation cluster-purity gap."""

    supported_tasks = ("classification",)

    needs_all_training_rows = True
    #: Not data-parallel: the held-out rows are drawn, and the encoders re-initialised, per process.
    data_parallel_safe = False
    parameter_constraints = {
        "move_lambda": [Interval(Real, 0, None, closed="left")],
        "reinit_epoch": [Interval(Integral, 1, None, closed="left")],
        "reinit_num": [Interval(Integral, 0, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
    }

    def __init__(
        self,
        move_lambda: float = 3.0,
        reinit_epoch: int = 20,
        reinit_num: int = 3,
        validation_fraction: float = 0.1,
    ) -> None:
        super().__init__()
        self.move_lambda = move_lambda
        self.reinit_epoch = reinit_epoch
        self.reinit_num = reinit_num
        self.validation_fraction = validation_fraction

    def build(self, spec: BuildSpec) -> None:
        if spec.task != "classification":
            raise ValueError(f"relearning: needs a classification task (purity), got {spec.task}")
        self.names = spec.names
        self.n_classes = spec.n_outputs
        self.initial: dict[str, list[Tensor]] = {}
        #: α_m of each re-initialisation so far, ``[(epoch, {m: α_m}), ...]`` (a diagnostic).
        self.strengths: list[tuple[int, dict[str, float]]] = []
        self.done = 0
        #: ``(N,)`` bool over ``ctx.data``: the rows D&R holds out itself (no validation split).
        self.register_buffer("holdout", None, persistent=False)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["initial"] = {}  # θ^(0) serves training only
        return state

    def on_train_begin(self, ctx: TrainingContext) -> None:
        if ctx.data is None or ctx.data.target is None:
            raise RuntimeError("relearning: needs the training rows (ctx.data)")
        self.initial = {
            name: [p.detach().clone() for p in ctx.network.modality_parameters(name)]
            for name in self.names
        }
        self.strengths = []
        self.done = 0
        self.holdout = None
        self._split_known = False

    def on_epoch_begin(self, ctx: TrainingContext) -> None:
        """At the first epoch, when the loop tells whether it holds out a validation split."""
        if getattr(self, "_split_known", True) or ctx.data is None:
            return
        self._split_known = True
        if ctx.train_rows is not None:
            return  # the fit's own validation split is V
        n = len(ctx.data)
        n_holdout = max(round(float(self.validation_fraction) * n), self.n_classes)
        if n - n_holdout < self.n_classes:
            raise ValueError(
                f"relearning: validation_fraction={self.validation_fraction} of {n} rows holds "
                f"out {n_holdout} and trains on {n - n_holdout}; the diagnosis clusters each into "
                f"{self.n_classes} classes, so both must be >= {self.n_classes}"
            )
        device = ctx.data.target.device
        order = torch.randperm(n).to(device)
        self.holdout = torch.zeros(n, dtype=torch.bool, device=device)
        self.holdout[order[:n_holdout]] = True

    def task_loss(self, output: FusionOutput, ctx: LossContext) -> Tensor:
        losses = ctx.per_sample_loss(output.logits)
        if not ctx.training or self.holdout is None or ctx.batch.index is None:
            return ctx.weighted_mean(losses)
        return ctx.weighted_mean(losses, ~self.holdout[ctx.batch.index])

    def on_epoch_end(self, ctx: TrainingContext) -> None:
        due = ctx.epoch > 0 and ctx.epoch % int(self.reinit_epoch) == 0
        if not due or self.done >= int(self.reinit_num) or not self.initial:
            return
        self.done += 1
        strengths = self.diagnose(ctx)
        self.strengths.append((ctx.epoch, strengths))
        with torch.no_grad():
            for name, alpha in strengths.items():
                for parameter, start in zip(
                    ctx.network.modality_parameters(name), self.initial[name], strict=True
                ):
                    parameter.copy_(alpha * start + (1.0 - alpha) * parameter)  # (R4)

    def diagnose(self, ctx: TrainingContext) -> dict[str, float]:
        """α_m of (R3) for every modality from the training and validation rows."""
        device = ctx.data.target.device
        if self.holdout is not None:
            train_rows, valid_rows = (~self.holdout).nonzero()[:, 0], self.holdout.nonzero()[:, 0]
        else:
            train_rows = ctx.train_rows.to(device)
            held_out = torch.ones(len(ctx.data), dtype=torch.bool, device=device)
            held_out[train_rows] = False
            valid_rows = held_out.nonzero()[:, 0]
        sets = []
        for rows in (train_rows, valid_rows):
            inputs = ctx.data.inputs.take(rows)
            sets.append(
                (
                    encoder_outputs(ctx.network, inputs, ctx.batch_size),
                    inputs.mask.cpu().numpy(),
                    ctx.data.target[rows].cpu().numpy(),
                )
            )
        strengths = {}
        for position, name in enumerate(self.names):
            purities = []
            for features, mask, labels in sets:
                present = mask[:, position]
                if present.sum() < self.n_classes:
                    break
                purities.append(
                    cluster_purity(features[name].numpy()[present], labels[present], self.n_classes)
                )
            gap = purities[0] - purities[1] if len(purities) == 2 else 0.0
            strengths[name] = relearning_strength(gap, float(self.move_lambda))
        return strengths


@hookimpl
def fusekit_weightings() -> dict[str, type]:
    return {"relearning": RelearningWeighting}
