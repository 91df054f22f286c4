"""Gradient diagnostic of paper Sec. 5.7 / Fig. 4A-B and Table 7 (spec §7.8).

For one batch: g_T = ∂L_task/∂P and g_A = ∂(λ L_aux)/∂P on the encoder P, flattened over P;
cos = <g_T, g_A> / (‖g_T‖ ‖g_A‖ + 1e-12) and the task-gradient norm ‖g_T‖. P is every trainable
backbone parameter; when the backbones have none (``identity``), P is the backbone inputs, which
then equal the encoder outputs the fusion sees. Gradients are of the *minimised* terms (1 − cos),
so a negative cosine means the auxiliary loss pushes the encoder against the task. L_task is the
training-mode task loss as the weighting defines it, weighted by the batch's sample weights.

The measurement reruns the training forward pass on the batch (train mode, so any random
perturbation or dropout is redrawn) and uses ``torch.autograd.grad``, which leaves ``.grad`` alone.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor

from fusekit.plugin import LossContext, ModalityBatch, NetworkView


def gradient_cosine(task: Tensor, aux: Tensor, wrt: list[Tensor]) -> tuple[float, float]:
    """Cosine between the gradients of two scalars on ``wrt``, and the first one's norm."""
    task_grads = torch.autograd.grad(task, wrt, retain_graph=True, allow_unused=True)
    aux_grads = torch.autograd.grad(aux, wrt, retain_graph=True, allow_unused=True)

    def flat(grads: tuple[Tensor | None, ...]) -> Tensor:
        pairs = zip(grads, wrt, strict=True)
        return torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in pairs])

    g_task, g_aux = flat(task_grads), flat(aux_grads)
    task_norm = g_task.norm()
    cos = (g_task @ g_aux) / (task_norm * g_aux.norm() + 1e-12)
    return float(cos), float(task_norm)


def encoder_gradient_cosine(
    network: NetworkView, batch: ModalityBatch, target: Tensor
) -> tuple[float, float]:
    """Task-vs-SCFAE-auxiliary gradient cosine and task-gradient norm at the encoder."""
    wrt: list[Tensor] = [
        p for name in network.names for p in network.modality_parameters(name) if p.requires_grad
    ]
    if not wrt:
        features = {m: x.detach().requires_grad_(True) for m, x in batch.features.items()}
        batch = replace(batch, features=features)
        wrt = list(features.values())
    with torch.enable_grad():
        output = network(batch)
        # the batch carries the sample weights: the task term training minimises is weighted
        ctx = LossContext(network=network, batch=batch, target=target, training=True)
        task = network.task_loss(output, ctx)
        aux = output.diagnostics["scfae"]["aux_loss"] * float(network.fusion.lam)
        return gradient_cosine(task, aux, wrt)


class GradientLog:
    """Per-batch (cos, task norm) pairs of one epoch, summarised for skorch's history."""

    def __init__(self) -> None:
        self.values: list[tuple[float, float]] = []

    def reset(self) -> None:
        self.values = []

    def add(self, cos: float, task_norm: float) -> None:
        self.values.append((cos, task_norm))

    def __bool__(self) -> bool:
        return bool(self.values)

    def summary(self) -> dict[str, float]:
        cosines = torch.tensor([cos for cos, _ in self.values])
        norms = torch.tensor([norm for _, norm in self.values])
        return {
            "scfae_grad_cos": float(cosines.mean()),
            "scfae_grad_neg": float((cosines < 0).to(torch.float32).mean()),
            "scfae_task_grad_norm": float(norms.mean()),
        }
