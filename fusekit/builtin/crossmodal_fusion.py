"""Pairwise cross-modal attention in the style of the Multimodal Transformer (MulT).

Tsai et al., "Multimodal Transformer for Unaligned Multimodal Language Sequences", ACL 2019.
Each modality becomes tokens X_m ``(B, T_m, dim)`` (a linear map, the paper's 1-D convolution
with kernel 1, plus sinusoidal positions; a vector or image is one token). For every ordered pair
of modalities β -> α (source β, target α) a crossmodal transformer (§3.2-3.3) runs ``layers``
times:

    CM_{β→α}(X_α, X_β) = softmax(Q_α K_β^T / √d) V_β,  Q_α = X_α W_Q, K_β = X_β W_K, V_β = X_β W_V
    Ẑ^[i] = CM(LN(Z^[i-1]), LN(X_β)) + LN(Z^[i-1]),   Z^[i] = FFN(LN(Ẑ^[i])) + LN(Ẑ^[i])

with Z^[0] = X_α (multi-head). The target's outputs from all M-1 sources are concatenated
``(B, T_α, (M-1)·dim)`` and, our pick instead of the paper's self-attention transformer and
"last element" (ill-defined with padded steps), averaged over α's real steps. The fused vector
is the concatenation over targets plus the ``(B, M)`` mask: ``(B, M·(M-1)·dim + M)``; the paper
has M = 3 (6 pairs), M modalities cost M·(M-1) pair blocks.

Masks: a source's padded steps are excluded as keys; a target's padded steps are excluded from
the pooling. When the source β is absent for a sample, the attention term CM is multiplied by 0
and only the target's residual stream goes on (so a sample with one modality still carries its
information); when the target α is absent the pair's output is 0. Absent inputs are zeroed
before attention, so their values never enter, and the appended mask lets the head tell
"absent" from "present with zero output". For vector modalities each attention has a single
key (weight 1), so CM reduces to a learned transfer V_β of the source token into the target's
residual stream: attention between modality tokens, without a softmax choice to make.
"""

from __future__ import annotations

from numbers import Integral, Real

import torch
from torch import Tensor, nn

from fusekit.plugin import (
    BuildSpec,
    Fusion,
    FusionOutput,
    Interval,
    Shape,
    hookimpl,
    sinusoidal_positions,
    vector_size,
)


def _tokens(features: Tensor) -> Tensor:
    """``(B, T, D)`` as is; ``(B, D)`` and ``(B, C, H, W)`` as one token ``(B, 1, D')``."""
    if features.dim() == 3:
        return features
    return features.flatten(start_dim=1).unsqueeze(1)


def _token_width(shape: Shape) -> int:
    return shape[1] if len(shape) == 2 else vector_size(shape)


class _CrossmodalLayer(nn.Module):
    """One crossmodal transformer layer: target queries attend to source keys/values."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.norm_target = nn.LayerNorm(dim)
        self.norm_source = nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm_ff = nn.LayerNorm(dim)
        self.ff = nn.Sequential(
            nn.Linear(dim, 2 * dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(2 * dim, dim)
        )

    def forward(
        self, target: Tensor, source: Tensor, key_padding: Tensor, source_present: Tensor
    ) -> Tensor:
        query = self.norm_target(target)  # LN(Z^[i-1]) (B, T_α, dim)
        memory = self.norm_source(source)  # LN(X_β) (B, T_β, dim)
        attended = self.attention(query, memory, memory, key_padding_mask=key_padding)[0]
        updated = attended * source_present.reshape(-1, 1, 1) + query  # Ẑ^[i] (B, T_α, dim)
        normed = self.norm_ff(updated)
        return self.ff(normed) + normed  # Z^[i] (B, T_α, dim)


class CrossmodalFusion(Fusion):
    """MulT-style pairwise cross-modal multi-head attention between modality token sequences."""

    parameter_constraints = {
        "dim": [Interval(Integral, 1, None, closed="left")],  # divisible by heads: checked in build
        "heads": [Interval(Integral, 1, None, closed="left")],
        "layers": [Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
    }

    def __init__(
        self, dim: int = 32, heads: int = 4, layers: int = 1, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.dim = dim
        self.heads = heads
        self.layers = layers
        self.dropout = dropout

    def build(self, spec: BuildSpec) -> int:
        owner = "crossmodal fusion"
        dim, heads, dropout = int(self.dim), int(self.heads), float(self.dropout)
        if dim % heads:
            raise ValueError(f"{owner}: dim must be divisible by heads, got dim={dim}, {heads=}.")
        if len(spec.names) < 2:
            raise ValueError(f"{owner}: needs at least 2 modalities, got {list(spec.names)}.")
        self.embed = nn.ModuleList(
            nn.Linear(_token_width(spec.feature_shapes[m]), dim) for m in spec.names
        )
        self.pairs = [
            (source, target)
            for target in range(len(spec.names))
            for source in range(len(spec.names))
            if source != target
        ]
        self.blocks = nn.ModuleList(
            nn.ModuleList(_CrossmodalLayer(dim, heads, dropout) for _ in range(int(self.layers)))
            for _ in self.pairs
        )
        return len(self.pairs) * dim + len(spec.names)

    def forward(self, features: dict[str, Tensor], mask: Tensor, output: FusionOutput) -> Tensor:
        names = list(features)
        present = mask.to(next(iter(features.values())).dtype)  # (B, M)
        tokens, steps = [], []
        for position, (name, h) in enumerate(features.items()):
            raw = _tokens(h) * present[:, position].reshape(-1, 1, 1)  # (B, T_m, D_m), absent 0
            embedded = self.embed[position](raw)  # (B, T_m, dim)
            tokens.append(
                embedded + sinusoidal_positions(raw.shape[1], embedded.shape[2], h.device)
            )
            real = output.steps.get(name) if h.dim() == 3 else None
            steps.append(
                torch.ones(raw.shape[:2], dtype=torch.bool, device=h.device)
                if real is None
                else real
            )  # (B, T_m) True = real step
        pooled: list[Tensor] = []
        for (source, target), block in zip(self.pairs, self.blocks, strict=True):
            # keys: the source's real steps (a row without any attends to all; it is zeroed below)
            key_padding = ~steps[source] & steps[source].any(dim=1, keepdim=True)  # (B, T_β)
            state = tokens[target]  # Z^[0] = X_α (B, T_α, dim)
            for layer in block:
                state = layer(state, tokens[source], key_padding, present[:, source])
            query_steps = steps[target].to(state.dtype).unsqueeze(-1)  # (B, T_α, 1)
            mean = (state * query_steps).sum(1) / query_steps.sum(1).clamp(min=1.0)  # (B, dim)
            pooled.append(mean * present[:, target : target + 1])  # zero if target absent
        output.diagnostics["crossmodal_pairs"] = [(names[s], names[t]) for s, t in self.pairs]
        return torch.cat([*pooled, present], dim=1)  # (B, M(M-1)·dim + M)


@hookimpl
def fusekit_fusions() -> dict[str, type]:
    return {"crossmodal": CrossmodalFusion}
