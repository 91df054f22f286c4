"""Prototypical Modal Rebalance (PMR).

Fan, Xu, Wang, Wang, Guo, "PMR: Prototypical Modal Rebalance for Multimodal Learning", CVPR 2023,
arXiv:2211.07089. Reference code: fanyunfeng-bit/Modal-Imbalance-PMR (``main_Prototype_grad.py``),
BalanceMM ``PMR_trainer.py`` (clipped coefficients, prototype-entropy regulariser).

Per modality m, h_m,i ``(D_m,)`` is the (calibrated) representation the fusion receives, pooled
with ``as_vector``; K classes.

    prototypes   c_m,k = mean of h_m,i over the training rows of class k where m is present,
                 recomputed at the start of every epoch in the window (eval mode, no gradient),
                 then c ← (1 − μ_c) · c_new + μ_c · c_old from the second computation on
                 (``momentum`` μ_c, 0.2 in the official code)                      ``(K, D_m)``
    (PCE)        p_m,i = softmax_k(−‖h_m,i − c_m,k‖₂);   L_PCE,m = mean_i −log p_m,i[y_i]
    (ratio)      s_m = mean_i p_m,i[y_i]   (prototype-based score; a ratio of sums for M = 2)
    (coeffs)     β_m = clip(max_j s_j / s_m − 1, 0, 1)   accelerate the slow modalities
                 γ_m = clip(s_m / min_j s_j − 1, 0, 1)   restrain the dominant ones
    (PER)        E_m = mean_i −Σ_k p_m,i,k log p_m,i,k   (prototype entropy)
    (loss)       L = L_task + α Σ_m β_m L_PCE,m − μ Σ_m γ_m E_m

For M = 2 with ρ = s_a / s_v this is exactly the paper's rule: ρ > 1 gives β_a = 0,
β_v = clip(ρ − 1, 0, 1) = γ_a, γ_v = 0 (and symmetrically), i.e. L_CE + α β L_PCE,a + α λ L_PCE,v
− μ λ E_a − μ β E_v. The coefficients are computed without gradient. PCE runs in epochs
``start_epoch ≤ epoch ≤ end_epoch`` (``None``: to the end); PER only in the first
``entropy_epochs`` epochs of that window ("early in training").

Choices where the paper is silent: distances are to prototypes in the fusion's input space
(``output.calibrated``); E_m is a mean over samples (the BalanceMM code sums, which ties μ to the
batch size); prototypes use every training row (the BalanceMM code a tenth of the batches); a
class with no present row keeps its previous prototype (zeros before the first computation).
Missing modalities: s_m, L_PCE,m and E_m average over the rows where m is present; a modality
absent from the whole batch gets β = γ = 0 and is left out of max/min; prototypes use present
rows only. Classification only. Data-parallel: s_m (so β, γ) over the global batch; the
prototypes come from every training row, which every process holds.
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
    as_vector,
    check_window,
    global_present_mean,
    hookimpl,
    in_window,
    present_mean,
    vector_size,
)


def class_prototypes(
    features: Tensor, target: Tensor, present: Tensor, previous: Tensor, momentum: float | None
) -> Tensor:
    """Class means of ``(N, D)`` features over present rows -> ``(K, D)``.

    Classes without a present row keep ``previous``; ``momentum`` μ blends
    (1 − μ)·new + μ·previous (``None``: no blending, the first computation).
    """
    n_classes = previous.shape[0]
    weights = F.one_hot(target, n_classes).to(features.dtype) * present[:, None]  # (N, K)
    counts = weights.sum(dim=0)  # (K,)
    sums = weights.T @ features  # (K, D)
    means = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None], previous)
    if momentum is None:
        return means
    return (1 - momentum) * means + momentum * previous


def prototype_logits(features: Tensor, prototypes: Tensor) -> Tensor:
    """−‖h_i − c_k‖₂ for ``(B, D)`` features and ``(K, D)`` prototypes -> ``(B, K)``.

    The squared distance is floored at 1e-12 before the root, so a zero distance (an absent row
    against a zero prototype) has a finite, zero gradient.
    """
    squared = (
        (features**2).sum(dim=1, keepdim=True)
        + (prototypes**2).sum(dim=1)[None, :]
        - 2 * features @ prototypes.T
    )  # (B, K)
    return -squared.clamp(min=1e-12).sqrt()


def rebalance_coefficients(scores: Tensor, available: Tensor) -> tuple[Tensor, Tensor]:
    """``(M,)`` prototype scores -> (β, γ): acceleration and restraint coefficients ``(M,)``.

    β_m = clip(max s / s_m − 1, 0, 1), γ_m = clip(s_m / min s − 1, 0, 1) over the available
    modalities; unavailable ones get 0.
    """
    safe = scores.clamp(min=1e-8)
    top = torch.where(available, safe, torch.zeros_like(safe)).max()
    bottom = torch.where(available, safe, torch.full_like(safe, float("inf"))).min()
    accelerate = (top / safe - 1).clamp(0, 1)
    restrain = (safe / bottom - 1).clamp(0, 1)
    zero = torch.zeros_like(safe)
    return torch.where(available, accelerate, zero), torch.where(available, restrain, zero)


def prototype_entropy(logits: Tensor) -> Tensor:
    """Entropy −Σ_k p_k log p_k of softmax(logits): ``(B, K)`` -> ``(B,)``."""
    log_probabilities = F.log_softmax(logits.float(), dim=1)  # float32 (mixed precision)
    return -(log_probabilities.exp() * log_probabilities).sum(dim=1)


class PMRWeighting(Weighting):
    """PMR: prototypical cross-entropy speeds up slow modalities, prototype entropy slows others."""

    supported_tasks = ("classification",)

    #: Data-parallel: the scores s_m over the global batch (global_present_mean); the prototypes
    #: from every training row, which every process holds.
    data_parallel_safe = True
    parameter_constraints = {
        "alpha": [Interval(Real, 0, None, closed="left")],
        "mu": [Interval(Real, 0, None, closed="left")],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "start_epoch": [Interval(Integral, 0, None, closed="left")],
        "end_epoch": [Interval(Integral, 0, None, closed="left"), None],
        "entropy_epochs": [Interval(Integral, 0, None, closed="left")],
    }
    #: The prototypes of Eq. (2) are class means over every training row at each epoch's start
    #: (``ctx.data``; partial_fit: the chunk), which a streamed fit does not hold in memory.
    needs_training_data = True

    def __init__(
        self,
        alpha: float = 1.0,
        mu: float = 0.01,
        momentum: float = 0.2,
        start_epoch: int = 0,
        end_epoch: int | None = None,
        entropy_epochs: int = 5,
    ) -> None:
        super().__init__()
        self.alpha = alpha
        self.mu = mu
        self.momentum = momentum
        self.start_epoch = start_epoch
        self.end_epoch = end_epoch
        self.entropy_epochs = entropy_epochs

    def build(self, spec: BuildSpec) -> None:
        if spec.task != "classification":
            raise ValueError(
                f"pmr: needs a classification task (class prototypes), got {spec.task}"
            )
        check_window("pmr", self.start_epoch, self.end_epoch)  # end_epoch >= start_epoch
        self.names = spec.names
        for position, name in enumerate(spec.names):
            width = vector_size(spec.feature_shapes[name])
            self.register_buffer(f"prototypes_{position}", torch.zeros(spec.n_outputs, width))
        self.ready = False  # prototypes computed at least once in this fit
        self.epoch: int | None = None  # the current training epoch (set at its start)
        self.coefficients: tuple[Tensor, Tensor] | None = None  # (β, γ) of the last batch

    def prototypes(self, position: int) -> Tensor:
        """``(K, D_m)`` prototypes of the modality in mask column ``position``."""
        return getattr(self, f"prototypes_{position}")

    def on_train_begin(self, ctx: TrainingContext) -> None:
        for position in range(len(self.names)):
            self.prototypes(position).zero_()
        self.ready = False
        self.epoch = None

    @torch.no_grad()
    def on_epoch_begin(self, ctx: TrainingContext) -> None:
        self.epoch = ctx.epoch
        if not in_window(ctx.epoch, self.start_epoch, self.end_epoch):
            return
        if ctx.data is None or ctx.data.target is None:
            raise RuntimeError("pmr: needs the training rows (ctx.data) to compute prototypes")
        network, inputs = ctx.network, ctx.data.inputs
        was_training = network.training
        network.eval()
        chunks = []
        for start in range(0, len(inputs), 1024):
            output = network(inputs.take(slice(start, start + 1024)))
            chunks.append(
                [as_vector(output.calibrated[m], output.steps.get(m)) for m in self.names]
            )  # M x (b, D_m)
        network.train(was_training)
        target = ctx.data.target.long()
        momentum = float(self.momentum) if self.ready else None
        for position in range(len(self.names)):
            features = torch.cat([chunk[position] for chunk in chunks])  # (N, D_m)
            updated = class_prototypes(
                features, target, inputs.mask[:, position], self.prototypes(position), momentum
            )
            self.prototypes(position).copy_(updated)
        self.ready = True

    def loss_terms(self, output: FusionOutput, ctx: LossContext) -> dict[str, Tensor]:
        if not ctx.training or not self.ready or self.epoch is None:
            return {}
        if not in_window(self.epoch, self.start_epoch, self.end_epoch):
            return {}
        mask = output.mask  # (B, M)
        logits = [
            prototype_logits(
                as_vector(output.calibrated[m], output.steps.get(m)), self.prototypes(position)
            )
            for position, m in enumerate(self.names)
        ]  # M x (B, K)
        pce = torch.stack(
            [
                present_mean(F.cross_entropy(z, ctx.target, reduction="none"), mask[:, p])
                for p, z in enumerate(logits)
            ]
        )  # (M,)
        with torch.no_grad():
            probabilities = torch.stack(
                [F.softmax(z.float(), dim=1).gather(1, ctx.target[:, None])[:, 0] for z in logits],
                dim=1,
            )  # (B, M)
            # over the global batch: the same β, γ in every process of a data-parallel fit
            scores, available = global_present_mean(probabilities, mask)  # (M,), (M,)
            accelerate, restrain = rebalance_coefficients(scores, available)
        self.coefficients = (accelerate, restrain)
        terms = {"pmr_pce": float(self.alpha) * (accelerate * pce).sum()}
        if self.epoch < int(self.start_epoch) + int(self.entropy_epochs):
            entropy = torch.stack(
                [present_mean(prototype_entropy(z), mask[:, p]) for p, z in enumerate(logits)]
            )  # (M,)
            terms["pmr_per"] = -float(self.mu) * (restrain * entropy).sum()
        return terms


@hookimpl
def fusekit_weightings() -> dict[str, type]:
    return {"pmr": PMRWeighting}
