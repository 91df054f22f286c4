"""Sparse mixture-of-experts fusion with per-modality routers (FuseMoE-style), BTW's host model.

Han, Nguyen, Harris, Ho, Saria, "FuseMoE: Mixture-of-Experts Transformers for Fleximodal Fusion",
NeurIPS 2024; used as the backbone fusion in Hou et al., BTW (Findings of EMNLP 2025, Sec. 4.2,
App. F: 16 experts, FFN hidden 512, top-2, per-modality router, GeLU, 3 MoE layers).

Each modality is one token: t_m = P_m as_vector(h_m) ``(B, W)`` (modality-specific projection).
Each of ``n_layers`` layers applies, to every token independently,
    t_m <- t_m + Σ_{e ∈ TopK(r_m)} g_{m,e} E_e(LN(t_m)),   r_m = R_m LN(t_m)  ``(B, n_experts)``,
    g_{m,·} = softmax of r_m over its top-k entries (0 elsewhere),  E_e(x) = W2_e GeLU(W1_e x),
with a router R_m per modality ("permod") and one pool of experts E_e shared by all modalities.
The fused vector is the concatenation of the final LayerNorm'd tokens ``(B, M·W)``, absent tokens
zeroed. A Switch-style load-balancing loss ``balance · n_experts · Σ_e f_e P_e`` (f_e: share of
present tokens whose top-1 expert is e, P_e: their mean router probability) is added in training.

Simplifications (documented picks): one token per modality (sequences are mean-pooled over real
steps) rather than one per time step; softmax top-k gating (FuseMoE's code also offers Laplace
gating); no per-modality convolution / FFN sub-layers; every expert is evaluated densely and the
gates select (same output as sparse dispatch, simpler, fine for a few experts). Tokens never
interact inside a layer, so a sample's output does not depend on its absent modalities.
Data-parallel: f_e is the global batch's (``all_reduce``; it carries no gradient), P_e each
process's, whose gradients the processes average.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from fusekit.plugin import (
    BuildSpec,
    Fusion,
    FusionOutput,
    Interval,
    all_reduce,
    as_vector,
    vector_size,
)


class ExpertPool(nn.Module):
    """``n_experts`` two-layer GeLU MLPs ``W -> hidden -> W`` evaluated on every token."""

    def __init__(self, n_experts: int, width: int, hidden: int) -> None:
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(n_experts, width, hidden) / math.sqrt(width))
        self.b1 = nn.Parameter(torch.zeros(n_experts, hidden))
        self.w2 = nn.Parameter(torch.randn(n_experts, hidden, width) / math.sqrt(hidden))
        self.b2 = nn.Parameter(torch.zeros(n_experts, width))

    def forward(self, tokens: Tensor) -> Tensor:  # tokens: (B, M, W)
        hidden = F.gelu(torch.einsum("bmw,ewh->bmeh", tokens, self.w1) + self.b1)  # (B, M, E, H)
        return torch.einsum("bmeh,ehw->bmew", hidden, self.w2) + self.b2  # (B, M, E, W)


class MoELayer(nn.Module):
    """One sparse MoE layer: per-modality routers over a shared expert pool, pre-LN residual."""

    def __init__(self, n_modalities: int, width: int, n_experts: int, top_k: int, hidden: int):
        super().__init__()
        self.top_k = top_k
        self.norm = nn.LayerNorm(width)
        self.routers = nn.ModuleList(nn.Linear(width, n_experts) for _ in range(n_modalities))
        self.experts = ExpertPool(n_experts, width, hidden)

    def forward(self, tokens: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """``tokens`` ``(B, M, W)``, ``mask`` ``(B, M)`` -> new tokens, balance loss (scalar)."""
        normed = self.norm(tokens)  # (B, M, W)
        scores = torch.stack(
            [router(normed[:, position]) for position, router in enumerate(self.routers)], dim=1
        )  # (B, M, E)
        top_scores, top_experts = scores.topk(self.top_k, dim=-1)  # (B, M, k)
        gates = torch.zeros_like(scores).scatter(-1, top_experts, top_scores.softmax(dim=-1))
        mixed = (gates.unsqueeze(-1) * self.experts(normed)).sum(dim=2)  # (B, M, W)
        present = mask.to(scores.dtype)  # (B, M)
        count = present.sum().clamp(min=1.0)
        chosen = F.one_hot(top_experts[..., 0], scores.shape[-1]).to(scores.dtype)  # (B, M, E)
        share = (chosen * present.unsqueeze(-1)).sum(dim=(0, 1)) / count  # f_e: (E,)
        if self.training:  # f_e of the global batch (data-parallel; no gradient flows through it)
            counts = all_reduce(torch.cat([share * count, count.reshape(1)]), "sum")
            share = counts[:-1] / counts[-1].clamp(min=1.0)
        probability = (scores.softmax(dim=-1) * present.unsqueeze(-1)).sum(dim=(0, 1)) / count
        balance = scores.shape[-1] * (share * probability).sum()
        return tokens + mixed, balance


class SparseMoEFusion(Fusion):
    """FuseMoE-style sparse mixture of experts with per-modality routers; tokens concatenated."""

    #: ``top_k <= n_experts``, a relation between two of them, is checked in ``build``.
    parameter_constraints = {
        "width": [Interval(Integral, 1, None, closed="left")],
        "n_experts": [Interval(Integral, 1, None, closed="left")],
        "top_k": [Interval(Integral, 1, None, closed="left")],
        "expert_hidden": [Interval(Integral, 1, None, closed="left")],
        "n_layers": [Interval(Integral, 1, None, closed="left")],
        "balance": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        width: int = 32,
        n_experts: int = 4,
        top_k: int = 2,
        expert_hidden: int = 64,
        n_layers: int = 1,
        balance: float = 0.01,
    ) -> None:
        super().__init__()
        self.width = width
        self.n_experts = n_experts
        self.top_k = top_k
        self.expert_hidden = expert_hidden
        self.n_layers = n_layers
        self.balance = balance

    def build(self, spec: BuildSpec) -> int:
        if self.top_k > self.n_experts:
            raise ValueError(
                f"moe: top_k must be at most n_experts={self.n_experts}, got {self.top_k}"
            )
        self.projections = nn.ModuleDict(
            {
                m: nn.Linear(vector_size(shape), self.width)
                for m, shape in spec.feature_shapes.items()
            }
        )
        self.layers = nn.ModuleList(
            MoELayer(len(spec.names), self.width, self.n_experts, self.top_k, self.expert_hidden)
            for _ in range(self.n_layers)
        )
        self.norm = nn.LayerNorm(self.width)
        return len(spec.names) * self.width

    def forward(self, features: dict[str, Tensor], mask: Tensor, output: FusionOutput) -> Tensor:
        tokens = torch.stack(
            [self.projections[m](as_vector(h, output.steps.get(m))) for m, h in features.items()],
            dim=1,
        )  # (B, M, W)
        balance = tokens.new_zeros(())
        for layer in self.layers:
            tokens, layer_balance = layer(tokens, mask)  # (B, M, W)
            balance = balance + layer_balance
        if self.training and self.balance > 0:
            output.add_loss("moe_balance", float(self.balance) * balance / len(self.layers))
        tokens = self.norm(tokens) * mask.unsqueeze(-1).to(tokens.dtype)  # absent tokens -> 0
        return tokens.flatten(start_dim=1)  # (B, M·W)
