"""MMPareto: multimodal and unimodal gradients combined along a Pareto direction.

Wei & Hu, "MMPareto: Boosting Multimodal Learning with Innocent Unimodal Assistance", ICML 2024,
arXiv:2405.17730. Reference code: GeWu-Lab/MMPareto_ICML2024 ``code/MMPareto.py``
(``train_epoch``) and ``min_norm_solvers.py``.

Loss L = L_mm + Σ_m L_m: the fused task loss plus each modality's own-head loss (z_m from the
unimodal heads). For the encoder parameters θ_m of modality m (``network.modality_parameters``),
with g_mm = ∇θ_m L_mm and g_m = ∇θ_m L_m (flattened over all of θ_m):

    if cos(g_mm, g_m) > 0:   w = (1/2, 1/2)                      (no conflict: equal weights)
    else:                    w = argmin_{w ∈ Δ²} ‖w_1 g_mm + w_2 g_m‖²   (MGDA, two objectives)
                             w_1 = clip((g_m − g_mm)·g_m / ‖g_mm − g_m‖², 0, 1), w_2 = 1 − w_1
    per parameter tensor p of θ_m, with g_p the gradient of the whole loss:
    d_p = 2 (w_1 g_mm,p + w_2 g_m,p)
    g_p ← γ · (‖g_p‖ / ‖d_p‖) · d_p   if ‖g_p‖ > ‖d_p‖,   else γ · d_p       (γ = ``gamma``, 1.5)

i.e. the Pareto direction, with the magnitude of the summed gradient when that is larger, enlarged
by γ. Fusion, head, unimodal heads and calibration keep their ordinary gradients.

How the per-loss gradients are obtained (fusekit runs one backward per batch): ``task_loss``
calls ``torch.autograd.grad`` on L_mm for all encoder parameters and on each L_m for its own
encoder, with ``retain_graph=True``, and keeps them; the loop's backward of the total loss then
gives g_p, and ``on_grad_computed`` replaces the encoder gradients. The official code gets the
same numbers with three ``backward(retain_graph=True)`` calls. Cost: M + 1 extra backward passes
through the encoders. The two-objective min-norm point is the closed form; the official solver
clips w_1 to [0.001, 0.999], this one to [0, 1]. A zero d_p leaves g_p = 0.

Missing modalities: L_m averages over the rows where m is present (absent rows are zero before
fusion, so they give no encoder gradient); a modality absent from the whole batch keeps its
ordinary gradient. Works for classification and regression. Data-parallel: g_mm and g_m are
averaged over the processes (``all_reduce``) before w is computed, so every process edits its
gradients alike (exact with complete data; g_m of a modality present in only some processes'
shards averages over those).
"""

from __future__ import annotations

from numbers import Real

import torch
from torch import Tensor, nn

from fusekit.plugin import (
    BuildSpec,
    FusionOutput,
    Interval,
    LossContext,
    NetworkView,
    TrainingContext,
    Weighting,
    hookimpl,
    unimodal_losses,
)


def pareto_weights(multimodal: Tensor, unimodal: Tensor) -> tuple[float, float]:
    """(w_1, w_2) for two flattened gradients: equal when they agree (cos > 0), else min-norm."""
    cosine = torch.nn.functional.cosine_similarity(multimodal, unimodal, dim=0)
    if cosine > 0:
        return 0.5, 0.5
    difference = multimodal - unimodal
    squared = float(difference @ difference)
    if squared == 0.0:
        return 0.5, 0.5
    first = float(((unimodal - multimodal) @ unimodal) / squared)
    first = min(max(first, 0.0), 1.0)
    return first, 1.0 - first


def pareto_gradient(
    multimodal: Tensor, unimodal: Tensor, total: Tensor, weights: tuple[float, float], gamma: float
) -> Tensor:
    """One parameter's new gradient: γ · max(1, ‖total‖ / ‖d‖) · d, d = 2 (w_1 g_mm + w_2 g_m)."""
    direction = 2 * (weights[0] * multimodal + weights[1] * unimodal)
    direction_norm = direction.norm()
    if direction_norm == 0:
        return torch.zeros_like(direction)
    scale = max(float(total.norm() / direction_norm), 1.0)
    return gamma * scale * direction


def _gradients(loss: Tensor, parameters: list[nn.Parameter]) -> list[Tensor]:
    """∂loss/∂p for each parameter (zeros where unused), keeping the graph."""
    grads = torch.autograd.grad(loss, parameters, retain_graph=True, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(parameters, grads, strict=True)]


def _unflat(flat: Tensor, like: list[nn.Parameter]) -> list[Tensor]:
    """``flat`` cut back into tensors shaped as ``like``."""
    return [
        part.view_as(p) for part, p in zip(flat.split([p.numel() for p in like]), like, strict=True)
    ]


def _flat(tensors: list[Tensor]) -> Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


class MMParetoWeighting(Weighting):
    """MMPareto: Pareto (min-norm) combination of multimodal and unimodal encoder gradients."""

    #: Data-parallel: g_mm and g_m come from ``autograd.grad`` on each process's shard, which DDP
    #: does not average; ``agreed`` averages them before the Pareto weights are computed.
    data_parallel_safe = True
    parameter_constraints = {"gamma": [Interval(Real, 0, None, closed="neither")]}

    needs_unimodal_heads = True
    needs_host_values = (
        "the encoders present in the batch choose which autograd.grad calls the step makes, and "
        "the two-objective min-norm weights are a branch on cos(g_mm, g_m) (the reference code's "
        "Python floats)"
    )

    def __init__(self, gamma: float = 1.5) -> None:
        super().__init__()
        self.gamma = gamma

    def build(self, spec: BuildSpec) -> None:
        self.names = spec.names
        # {m: (parameters, g_mm per parameter, g_m per parameter)} of the current batch
        self.pending: dict[str, tuple[list[nn.Parameter], list[Tensor], list[Tensor]]] = {}
        self.weights: dict[str, tuple[float, float]] = {}  # (w_1, w_2) of the last batch

    def task_loss(self, output: FusionOutput, ctx: LossContext) -> Tensor:
        multimodal = ctx.weighted_mean(ctx.per_sample_loss(output.logits))
        unimodal = unimodal_losses(output, ctx, "mmpareto")  # (M,)
        if ctx.training and multimodal.requires_grad:
            self.pending = self.branch_gradients(ctx.network, multimodal, unimodal, output.mask)
        return multimodal + unimodal.sum()

    def branch_gradients(
        self, network: NetworkView, multimodal: Tensor, unimodal: Tensor, mask: Tensor
    ) -> dict[str, tuple[list[nn.Parameter], list[Tensor], list[Tensor]]]:
        """g_mm and g_m for every encoder parameter of each modality present in the batch."""
        available = mask.any(dim=0)  # (M,)
        branches = {
            name: [p for p in network.modality_parameters(name) if p.requires_grad]
            for position, name in enumerate(self.names)
            if available[position] and unimodal[position].requires_grad
        }
        branches = {name: params for name, params in branches.items() if params}
        if not branches:
            return {}
        flat_params = [p for params in branches.values() for p in params]
        multimodal_grads = iter(_gradients(multimodal, flat_params))
        pending = {}
        for name, params in branches.items():
            own = [next(multimodal_grads) for _ in params]
            position = self.names.index(name)
            pending[name] = (params, own, _gradients(unimodal[position], params))
        return pending

    def agreed(
        self, ctx: TrainingContext
    ) -> dict[str, tuple[list[nn.Parameter], list[Tensor], list[Tensor]]]:
        """``pending`` with g_mm and g_m of the global batch: g_mm averaged over the processes
        (a process without the modality contributes 0, as its absent rows give no gradient), g_m
        over the processes that have the modality. In one process, ``pending`` itself."""
        if ctx.world_size == 1:
            return self.pending
        agreed = {}
        for name in self.names:  # every process reduces every modality, in the same order
            params = [p for p in ctx.network.modality_parameters(name) if p.requires_grad]
            if not params:
                continue
            mine = self.pending.get(name)
            zeros = [torch.zeros_like(p) for p in params]
            multimodal, unimodal = (zeros, zeros) if mine is None else (mine[1], mine[2])
            flag = params[0].new_full((1,), float(mine is not None))
            total = ctx.all_reduce(torch.cat([flag, _flat(multimodal), _flat(unimodal)]), "sum")
            if total[0] == 0:
                continue
            size = sum(p.numel() for p in params)
            g_mm = total[1 : 1 + size] / ctx.world_size
            g_m = total[1 + size :] / total[0]
            agreed[name] = (params, _unflat(g_mm, params), _unflat(g_m, params))
        return agreed

    @torch.no_grad()
    def on_grad_computed(self, ctx: TrainingContext) -> None:
        for name, (params, multimodal, unimodal) in self.agreed(ctx).items():
            weights = pareto_weights(_flat(multimodal), _flat(unimodal))
            self.weights[name] = weights
            for parameter, g_mm, g_m in zip(params, multimodal, unimodal, strict=True):
                total = parameter.grad if parameter.grad is not None else torch.zeros_like(g_mm)
                parameter.grad = pareto_gradient(g_mm, g_m, total, weights, float(self.gamma))
        self.pending = {}


@hookimpl
def fusekit_weightings() -> dict[str, type]:
    return {"mmpareto": MMParetoWeighting}
