"""Temporal convolutional backbone (1-D CNN over time) for sequences ``(B, T, d)``.

Each layer: ``h^(l) = Dropout(act(Conv1d_k(h^(l-1))))`` with "same" zero padding, so the output
keeps ``T``: ``(B, T, d) -> (B, T, hidden)``. Padded steps (``steps`` False) are set to zero
before every layer and in the output, so their values never reach a real step; with trailing
padding this equals running the network on the unpadded sequence (zero padding at the edge).
"""

from __future__ import annotations

from numbers import Integral, Real

from torch import Tensor, nn

from fusekit.plugin import ACTIVATIONS, Backbone, Interval, Shape, StrOptions, hookimpl


class Conv1dBackbone(Backbone):
    """Temporal CNN (``hidden``, ``depth``, ``kernel_size``, ``dropout``); keeps the time axis."""

    input_kinds = ("sequence",)
    #: "same" padding and per-step masking: nothing is sized by T.
    accepts_any_length = True
    parameter_constraints = {
        "hidden": [Interval(Integral, 1, None, closed="left")],
        "depth": [Interval(Integral, 1, None, closed="left")],
        "kernel_size": [Interval(Integral, 1, None, closed="left")],  # odd: checked in build
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS) - {"none"})],
    }

    def __init__(
        self,
        hidden: int = 64,
        depth: int = 2,
        kernel_size: int = 3,
        dropout: float = 0.0,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        self.hidden = hidden
        self.depth = depth
        self.kernel_size = kernel_size
        self.dropout = dropout
        self.activation = activation

    def build(self, input_shape: Shape) -> Shape:
        owner = "conv1d backbone"
        if len(input_shape) != 2:
            raise ValueError(
                f"{owner}: needs sequence input of shape (T, d), got {input_shape}. Use "
                "backbone={modality: ...} to give vector or image modalities another backbone."
            )
        hidden, depth, kernel = int(self.hidden), int(self.depth), int(self.kernel_size)
        if kernel % 2 == 0:  # no declared constraint says "odd"
            raise ValueError(f"{owner}: kernel_size must be odd (keeps T), got {kernel}.")
        widths = [input_shape[1]] + [hidden] * depth
        self.convs = nn.ModuleList(
            nn.Conv1d(w_in, w_out, kernel, padding=kernel // 2)
            for w_in, w_out in zip(widths[:-1], widths[1:], strict=True)
        )
        self.act = ACTIVATIONS[self.activation]()
        self.drop = nn.Dropout(float(self.dropout))
        return (input_shape[0], hidden)

    def encode(self, x: Tensor, steps: Tensor | None) -> Tensor:
        keep = None if steps is None else steps.to(x.dtype).unsqueeze(1)  # (B, 1, T)
        h = x.transpose(1, 2)  # (B, d, T)
        for conv in self.convs:
            if keep is not None:
                h = h * keep  # padded steps -> 0 before each layer
            h = self.drop(self.act(conv(h)))  # (B, hidden, T)
        if keep is not None:
            h = h * keep
        return h.transpose(1, 2)  # (B, T, hidden)

    def forward(self, x: Tensor) -> Tensor:
        return self.encode(x, None)


@hookimpl
def fusekit_backbones() -> dict[str, type]:
    return {"conv1d": Conv1dBackbone}
