"""SCFAE's building blocks (paper App. A, Table 12; spec §4.2).

- Every P-matrix is "a standard linear layer, and then it goes through GeLU":
  P(x) = GELU(W x + c).
- The per-modality "SwiGLU with an intermediate dimension of 8/3 d" before and after the block:
  SwiGLU_d(x) = W3 (SiLU(W1 x + c1) ⊙ (W2 x + c2)) + c3, W1, W2: d -> h, W3: h -> d,
  h = round(8 d / 3); 3 d h + 2 h + d parameters (Table 12's 8 d² + 19/3 d when h = 8 d / 3).
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F


def swiglu_hidden(width: int) -> int:
    """The intermediate width h = round(8 d / 3) (8 d / 3 is not an integer for most d)."""
    return max(1, int(round(8 * width / 3)))


class SwiGLU(nn.Module):
    """Gated feed-forward block ``(B, d) -> (B, d)`` with three biased linears."""

    def __init__(self, width: int) -> None:
        super().__init__()
        hidden = swiglu_hidden(width)
        self.gate = nn.Linear(width, hidden)  # W1
        self.value = nn.Linear(width, hidden)  # W2
        self.out = nn.Linear(hidden, width)  # W3

    def forward(self, x: Tensor) -> Tensor:  # x: (B, d)
        return self.out(F.silu(self.gate(x)) * self.value(x))  # (B, h) -> (B, d)


class GeluLinear(nn.Module):
    """P(x) = act(W x + c): GELU by default, identity for ``activation="identity"``."""

    def __init__(self, in_features: int, out_features: int, activation: str = "gelu") -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:  # x: (B, in)
        y = self.linear(x)  # (B, out)
        return F.gelu(y) if self.activation == "gelu" else y
