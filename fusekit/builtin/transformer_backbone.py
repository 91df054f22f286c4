"""Small Transformer encoder backbone (Vaswani et al., 2017) for sequences ``(B, T, d)``.

``x_t -> W x_t + PE(t)`` (sinusoidal positions, §3.5), then ``layers`` encoder layers of
multi-head self-attention ``softmax(QK^T/√d_k + mask) V`` (Eq. 1) and a position-wise feed-forward
network (Eq. 2), pre-norm. ``(B, T, d) -> (B, T, dim)``: the time axis is kept.

Padded steps are excluded as keys (``src_key_padding_mask``), so they never change a real step's
output, and their own outputs are set to zero. A row with no real step (only possible for an
absent modality, which the network zeroes anyway) attends to all steps to stay finite.
"""

from __future__ import annotations

from numbers import Integral, Real

from torch import Tensor, nn

from fusekit.plugin import Backbone, Interval, Shape, hookimpl, sinusoidal_positions


class TransformerBackbone(Backbone):
    """Transformer encoder with positional encoding and padded-step masking; keeps time."""

    input_kinds = ("sequence",)
    #: masked attention; the sinusoidal positions are computed for any T (no maximum).
    accepts_any_length = True
    parameter_constraints = {
        "dim": [Interval(Integral, 1, None, closed="left")],  # divisible by heads: in build
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

    def build(self, input_shape: Shape) -> Shape:
        owner = "transformer backbone"
        if len(input_shape) != 2:
            raise ValueError(
                f"{owner}: needs sequence input of shape (T, d), got {input_shape}. Use "
                "backbone={modality: ...} to give vector or image modalities another backbone."
            )
        dim, heads, dropout = int(self.dim), int(self.heads), float(self.dropout)
        if dim % heads:
            raise ValueError(f"{owner}: dim must be divisible by heads, got dim={dim}, {heads=}.")
        self.embed = nn.Linear(input_shape[1], dim)
        layer = nn.TransformerEncoderLayer(
            dim, heads, dim_feedforward=2 * dim, dropout=dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, int(self.layers), enable_nested_tensor=False)
        return (input_shape[0], dim)

    def encode(self, x: Tensor, steps: Tensor | None) -> Tensor:
        h = self.embed(x)  # (B, T, dim)
        h = h + sinusoidal_positions(x.shape[1], h.shape[-1], x.device)  # + PE (T, dim)
        if steps is None:
            return self.encoder(h)  # (B, T, dim)
        padding = ~steps & steps.any(dim=1, keepdim=True)  # (B, T) True = ignore as key
        out = self.encoder(h, src_key_padding_mask=padding)  # (B, T, dim)
        return out * steps.to(out.dtype).unsqueeze(-1)  # padded steps -> 0

    def forward(self, x: Tensor) -> Tensor:
        return self.encode(x, None)


@hookimpl
def fusekit_backbones() -> dict[str, type]:
    return {"transformer": TransformerBackbone}
