"""GRU backbone (Cho et al., 2014) for sequences ``(B, T, d)``, optionally bidirectional.

``(B, T, d) -> (B, T, H)`` with ``H = hidden`` (``2·hidden`` when bidirectional): the hidden state
at every step, so the time axis and the step mask stay valid for pooling in the fusion.

Padded steps: each sample's real steps are moved to the front (order kept), run as a packed
sequence of its true length, and the outputs are scattered back to their original positions;
padded positions output zero. So padded steps never change the state, wherever they sit, and
a bidirectional GRU's backward pass starts at the last *real* step.
"""

from __future__ import annotations

from numbers import Integral, Real

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from fusekit.plugin import Backbone, Interval, Shape, hookimpl


class GRUBackbone(Backbone):
    """GRU encoder for sequences (``hidden``, ``layers``, ``bidirectional``); keeps time."""

    input_kinds = ("sequence",)
    #: a recurrence over packed sequences: nothing is sized by T.
    accepts_any_length = True
    parameter_constraints = {
        "hidden": [Interval(Integral, 1, None, closed="left")],
        "layers": [Interval(Integral, 1, None, closed="left")],
        "bidirectional": ["boolean"],
        "dropout": [Interval(Real, 0, 1, closed="left")],
    }

    def __init__(
        self,
        hidden: int = 64,
        layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.hidden = hidden
        self.layers = layers
        self.bidirectional = bidirectional
        self.dropout = dropout

    def build(self, input_shape: Shape) -> Shape:
        owner = "gru backbone"
        if len(input_shape) != 2:
            raise ValueError(
                f"{owner}: needs sequence input of shape (T, d), got {input_shape}. Use "
                "backbone={modality: ...} to give vector or image modalities another backbone."
            )
        hidden, layers, dropout = int(self.hidden), int(self.layers), float(self.dropout)
        self.gru = nn.GRU(
            input_shape[1],
            hidden,
            num_layers=layers,
            batch_first=True,
            bidirectional=bool(self.bidirectional),
            dropout=dropout if layers > 1 else 0.0,
        )
        return (input_shape[0], hidden * (2 if self.bidirectional else 1))

    def encode(self, x: Tensor, steps: Tensor | None) -> Tensor:
        if steps is None:
            return self.gru(x)[0]  # (B, T, H)
        length = x.shape[1]
        # Stable order: real steps first, in time order; then the padded ones.
        order = torch.argsort((~steps).to(torch.int8), dim=1, stable=True)  # (B, T)
        compact = torch.gather(x, 1, order.unsqueeze(-1).expand_as(x))  # (B, T, d)
        lengths = steps.sum(dim=1).clamp(min=1).cpu()  # (B,)
        packed = pack_padded_sequence(compact, lengths, batch_first=True, enforce_sorted=False)
        out, _ = pad_packed_sequence(self.gru(packed)[0], batch_first=True, total_length=length)
        restored = torch.zeros_like(out).scatter(
            1, order.unsqueeze(-1).expand_as(out), out
        )  # (B, T, H), back at original positions
        return restored * steps.to(out.dtype).unsqueeze(-1)  # padded steps -> 0

    def forward(self, x: Tensor) -> Tensor:
        return self.encode(x, None)


@hookimpl
def fusekit_backbones() -> dict[str, type]:
    return {"gru": GRUBackbone}
