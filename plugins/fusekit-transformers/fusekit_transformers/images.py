"""Image preprocessing as a model's ``preprocessor_config.json`` says, without torchvision.

transformers' own image processors need torchvision for their default (fast) backend; the
Pillow fallback is slated for removal. So the processor configuration (a JSON file, data) is read
here and applied with Pillow (files) and torch (arrays), following the steps the processors of
the supported encoders take:

1. resize (``do_resize``): ``size={"height", "width"}`` exactly (ViT); ``{"shortest_edge": s}``
   the shorter side to ``s`` keeping the aspect ratio (CLIP, DINOv2), or with ``crop_pct``
   (ConvNeXt, ``s < 384``) to ``s / crop_pct`` and then a centre crop to ``s x s``;
2. centre crop (``do_center_crop``) to ``crop_size``; a shortest-edge resize with no crop is
   cropped to ``s x s``, so every image gets the same shape;
3. rescale (``do_rescale``): 8-bit pixels times ``rescale_factor`` (1/255);
4. normalise (``do_normalize``): ``(x - image_mean) / image_std`` per channel.

Arrays ``(n, C, H, W)`` are taken as rescaled pixels (floats in [0, 1], what step 3 makes of an
8-bit image): they are resized to the model's size (bilinear, antialiased) when theirs differs,
then normalised. Without a ``preprocessor_config.json`` arrays pass unchanged, and files are
resized to the model configuration's ``image_size``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from fusekit.plugin import InputFileError

PROCESSOR_FILE = "preprocessor_config.json"
CROP_PCT_LIMIT = 384  # ConvNeXt's processor: crop_pct applies below this shortest edge


@dataclass(frozen=True)
class ImageProcessing:
    """The steps of the module docstring, parsed once from the processor configuration."""

    channels: int
    size: tuple[int, int] | None  # the (H, W) every image ends at; None: arrays as they come
    resize_to: tuple[int, int] | None = None  # exact (H, W) resize
    shortest_edge: int | None = None
    crop: tuple[int, int] | None = None
    resample: int = 2  # PIL.Image.BILINEAR
    rescale: float | None = 1 / 255
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    @classmethod
    def parse(cls, owner: str, processor: bytes | None, model_config: Any) -> ImageProcessing:
        """From ``preprocessor_config.json`` bytes (or ``None``) and the model's configuration."""
        channels = int(getattr(model_config, "num_channels", 3))
        if processor is None:
            side = getattr(model_config, "image_size", None)
            size = (side, side) if isinstance(side, int) else None
            return cls(channels=channels, size=size, resize_to=size, rescale=1 / 255)
        try:
            doc = json.loads(processor.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{owner}: {PROCESSOR_FILE} is not JSON ({error})") from None
        if not isinstance(doc, dict):
            raise ValueError(f"{owner}: {PROCESSOR_FILE} must hold a JSON object")
        resize_to = shortest = crop = None
        size = doc.get("size") if doc.get("do_resize", True) else None
        if isinstance(size, int):  # an old processor's plain int: a square
            size = {"height": size, "width": size}
        if isinstance(size, dict) and {"height", "width"} <= set(size):
            resize_to = (int(size["height"]), int(size["width"]))
        elif isinstance(size, dict) and "shortest_edge" in size:
            shortest = int(size["shortest_edge"])
            crop_pct = doc.get("crop_pct")
            if crop_pct is not None and shortest < CROP_PCT_LIMIT:
                crop = (shortest, shortest)
                shortest = int(shortest / float(crop_pct))
            elif crop_pct is not None:
                resize_to, shortest = (shortest, shortest), None
        elif size is not None:
            raise ValueError(f"{owner}: {PROCESSOR_FILE} has a size {size!r} this reader lacks")
        crop_size = doc.get("crop_size")
        if doc.get("do_center_crop") and isinstance(crop_size, dict):
            crop = (int(crop_size["height"]), int(crop_size["width"]))
        if shortest is not None and crop is None:
            crop = (shortest, shortest)
        final = crop or resize_to
        normalize = bool(doc.get("do_normalize", False))
        rescale = bool(doc.get("do_rescale", True))
        return cls(
            channels=channels,
            size=final,
            resize_to=resize_to,
            shortest_edge=shortest,
            crop=crop,
            resample=int(doc.get("resample", 2)),
            rescale=float(doc.get("rescale_factor", 1 / 255)) if rescale else None,
            mean=tuple(float(v) for v in doc["image_mean"]) if normalize else None,
            std=tuple(float(v) for v in doc["image_std"]) if normalize else None,
        )

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` rescaled pixels, normalised per channel."""
        if self.mean is None or self.std is None:
            return pixels
        mean = torch.tensor(self.mean, dtype=pixels.dtype, device=pixels.device)
        std = torch.tensor(self.std, dtype=pixels.dtype, device=pixels.device)
        return (pixels - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)

    def arrays(self, owner: str, pixels: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` floats in [0, 1] -> the model's input (resized, normalised)."""
        if pixels.ndim != 4 or pixels.shape[1] != self.channels:
            raise ValueError(
                f"{owner}: images must be (n, {self.channels}, H, W) arrays for this model, got "
                f"shape {tuple(pixels.shape)}"
            )
        if self.size is not None and tuple(pixels.shape[-2:]) != self.size:
            pixels = F.interpolate(
                pixels.float(), size=self.size, mode="bilinear", antialias=True, align_corners=False
            )
        return self.normalize(pixels.float())

    def file(self, owner: str, path: str, row: int) -> np.ndarray:
        """One image file -> ``(C, H, W)`` float32 input; ``InputFileError`` naming the file."""
        from PIL import Image, UnidentifiedImageError  # lazily

        if self.size is None:
            raise ValueError(
                f"{owner}: the model has no {PROCESSOR_FILE} and no image_size, so image files "
                "cannot be resized to its input; pass (n, C, H, W) arrays"
            )
        try:
            with Image.open(path) as image:
                image = image.convert("RGB" if self.channels == 3 else "L")
                image = self._resized(image)
        except (FileNotFoundError, IsADirectoryError, UnidentifiedImageError, OSError) as error:
            raise InputFileError(
                f"{owner}: cannot read the image file {path!r} ({type(error).__name__}: {error})",
                file=path,
                row=row,
            ) from None
        pixels = np.asarray(image, dtype=np.float32)
        pixels = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
        if self.rescale is not None:
            pixels = pixels * np.float32(self.rescale)
        return self.normalize(torch.from_numpy(pixels)[None])[0].numpy()

    def _resized(self, image: Any) -> Any:
        if self.resize_to is not None:
            image = image.resize((self.resize_to[1], self.resize_to[0]), resample=self.resample)
        elif self.shortest_edge is not None:
            width, height = image.size
            scale = self.shortest_edge / min(width, height)
            shape = (max(1, round(width * scale)), max(1, round(height * scale)))
            image = image.resize(shape, resample=self.resample)
        if self.crop is not None:
            width, height = image.size
            crop_h, crop_w = self.crop
            left, top = (width - crop_w) // 2, (height - crop_h) // 2
            image = image.crop((left, top, left + crop_w, top + crop_h))
        return image
