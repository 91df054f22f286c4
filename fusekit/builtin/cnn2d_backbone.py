"""Small 2-D CNN backbone for images ``(B, C, H, W)``.

``depth`` blocks of ``Conv3x3 -> BatchNorm -> ReLU -> MaxPool2`` (LeCun et al., 1998 in spirit;
the pooling is skipped once a side is below 2), then global average pooling:
``(B, C, H, W) -> (B, channels)``.
"""

from __future__ import annotations

from numbers import Integral

from torch import Tensor, nn

from fusekit.plugin import Backbone, Interval, Shape, hookimpl


class CNN2dBackbone(Backbone):
    """Small CNN for images (``channels``, ``depth``, ``batch_norm``), global average pooled."""

    input_kinds = ("image",)
    parameter_constraints = {
        "channels": [Interval(Integral, 1, None, closed="left")],
        "depth": [Interval(Integral, 1, None, closed="left")],
        "batch_norm": ["boolean"],
    }

    def __init__(self, channels: int = 16, depth: int = 2, batch_norm: bool = True) -> None:
        super().__init__()
        self.channels = channels
        self.depth = depth
        self.batch_norm = batch_norm

    def build(self, input_shape: Shape) -> Shape:
        owner = "cnn2d backbone"
        if len(input_shape) != 3:
            raise ValueError(
                f"{owner}: needs image input of shape (C, H, W), got {input_shape}. Use "
                "backbone={modality: ...} to give vector or sequence modalities another backbone."
            )
        channels, depth = int(self.channels), int(self.depth)
        blocks: list[nn.Module] = []
        width, (height, side) = input_shape[0], input_shape[1:]
        for _ in range(depth):
            blocks.append(nn.Conv2d(width, channels, 3, padding=1))  # (B, channels, H, W)
            if self.batch_norm:
                blocks.append(nn.BatchNorm2d(channels))
            blocks.append(nn.ReLU())
            if min(height, side) >= 2:
                blocks.append(nn.MaxPool2d(2))  # (B, channels, H/2, W/2)
                height, side = height // 2, side // 2
            width = channels
        blocks.append(nn.AdaptiveAvgPool2d(1))  # (B, channels, 1, 1)
        blocks.append(nn.Flatten())  # (B, channels)
        self.blocks = nn.Sequential(*blocks)
        return (channels,)

    def forward(self, x: Tensor) -> Tensor:
        return self.blocks(x)  # (B, C, H, W) -> (B, channels)


@hookimpl
def fusekit_backbones() -> dict[str, type]:
    return {"cnn2d": CNN2dBackbone}
