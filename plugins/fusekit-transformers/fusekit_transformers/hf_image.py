"""The ``hf_image`` backbone: any local Hugging Face ``AutoModel`` vision encoder.

ViT, DINOv2, CLIP's vision tower (``CLIPVisionModel`` folders), ResNet, ConvNeXt...: ``path`` is
the model's folder or its id in the local Hugging Face cache, read offline. The modality is
``(n, C, H, W)`` float arrays (pixels in [0, 1]) or one column of image file paths (loaded with
Pillow); both are resized and normalised once per ``fit`` / ``predict`` call as the model's
``preprocessor_config.json`` says (:mod:`fusekit_transformers.images`). A ``None`` / NaN path or
an all-NaN image is an absent row; a path that does not open is an
:class:`~fusekit.plugin.InputFileError` naming the modality, the row and the file.

Output ``(B, D)``: the model's pooled output (``pooling="pooler"``, default: ViT's and CLIP's
pooled first token, ResNet's and ConvNeXt's global average), the mean of its last hidden state
over tokens or positions (``"mean"``), or its first token (``"cls"``, transformers only).
``freeze`` as for ``hf_text`` (:mod:`fusekit_transformers.freezing`), frozen by default.

Saving: the weights are in the network's state; ``config.json`` and ``preprocessor_config.json``
go into the model file in the encoder's state, so ``fusekit.load`` needs no folder.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from fusekit.plugin import Backbone, EncodedInput, EncoderState, InputEncoder, Shape, StrOptions
from fusekit_transformers.freezing import FREEZE_CONSTRAINT, apply_freeze
from fusekit_transformers.hf_models import (
    CONFIG_FILE,
    config_from_bytes,
    encoder_model,
    model_folder,
    read_file,
)
from fusekit_transformers.images import PROCESSOR_FILE, ImageProcessing

OWNER = "hf_image backbone"
POOLINGS = ("pooler", "mean", "cls")


def _model_files(path: str) -> dict[str, bytes]:
    """``config.json`` and, where the folder has one, ``preprocessor_config.json``."""
    folder = model_folder(OWNER, path)
    files = {CONFIG_FILE: read_file(OWNER, str(folder), CONFIG_FILE)}
    if (Path(folder) / PROCESSOR_FILE).is_file():
        files[PROCESSOR_FILE] = read_file(OWNER, str(folder), PROCESSOR_FILE)
    return files


class ImageEncoder(InputEncoder):
    """Arrays or image paths -> ``(n, C, H, W)`` float32 model inputs; stores the model's files."""

    kind = "image"

    def __init__(self, path: str | None) -> None:
        self.read = functools.partial(_model_files, path)
        self.files: dict[str, bytes] | None = None
        self.from_model_file = False
        self._processing: ImageProcessing | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**vars(self), "_processing": None}

    def fit(self, values: Any) -> ImageEncoder:
        if self.files is None:
            self.files = self.read()
        return self

    @property
    def config(self) -> Any:
        if self.files is None:
            raise RuntimeError(f"{OWNER}: the image encoder is used before fit")
        return config_from_bytes(OWNER, self.files[CONFIG_FILE])

    @property
    def processing(self) -> ImageProcessing:
        if self._processing is None:
            processor = (self.files or {}).get(PROCESSOR_FILE)
            self._processing = ImageProcessing.parse(OWNER, processor, self.config)
        return self._processing

    @property
    def shape(self) -> Shape:
        processing = self.processing
        if processing.size is None:
            raise ValueError(
                f"{OWNER}: the model has no {PROCESSOR_FILE} and no image_size, so its input "
                "size is unknown; add the processor's configuration to the model folder"
            )
        return (processing.channels, *processing.size)

    def transform(self, values: np.ndarray) -> EncodedInput:
        processing = self.processing
        if values.dtype != object:
            pixels = processing.arrays(OWNER, torch.from_numpy(np.asarray(values, np.float32)))
            return EncodedInput(values=pixels.numpy().astype(np.float32, copy=False))
        out = np.empty((len(values), *self.shape), dtype=np.float32)
        for row, path in enumerate(values):
            out[row] = processing.file(OWNER, str(path), row)
        return EncodedInput(values=out)

    def state(self) -> EncoderState:
        if self.files is None:
            raise RuntimeError(f"{OWNER}: the encoder is saved before fit")
        digests = {name: hashlib.sha256(data).hexdigest() for name, data in self.files.items()}
        return EncoderState(config={"sha256": digests}, files=dict(self.files))

    def load_state(self, state: EncoderState) -> None:
        digests = state.config.get("sha256")
        files = dict(state.files)
        if (
            not isinstance(digests, dict)
            or CONFIG_FILE not in files
            or set(digests) != set(files)
            or any(hashlib.sha256(files[n]).hexdigest() != digests[n] for n in files)
        ):
            raise ValueError(f"{OWNER}: the stored {CONFIG_FILE} / {PROCESSOR_FILE} are altered")
        self.files, self._processing, self.from_model_file = files, None, True


def _width(config: Any) -> int:
    """The width of the pooled output: ``hidden_size`` (transformers) or the last stage's."""
    sizes = getattr(config, "hidden_sizes", None)
    if sizes:
        return int(sizes[-1])
    return int(config.hidden_size)


class HFImageBackbone(Backbone):
    """A local Hugging Face vision encoder (``path``, ``pooling``, ``freeze``)."""

    input_kinds = ("image",)
    parameter_constraints = {
        "path": [str, os.PathLike, None],  # None (the default) is refused when the model is read
        "pooling": [StrOptions(set(POOLINGS))],  # "cls" needs a transformer: checked in build
        "freeze": FREEZE_CONSTRAINT,
    }

    def __init__(
        self, path: str | None = None, pooling: str = "pooler", freeze: bool | int = True
    ) -> None:
        super().__init__()
        self.path = path
        self.pooling = pooling
        self.freeze = freeze

    def input_encoder(self) -> ImageEncoder:
        return ImageEncoder(self.path)

    def build(self, input_shape: Shape) -> Shape:
        encoder = getattr(self, "input_encoder_", None)
        # without its encoder (a backbone used on its own) float images are preprocessed here
        self.preprocess_in_forward = encoder is None
        if encoder is None:
            encoder = self.input_encoder().fit(None)
        config = encoder.config
        self.processing = encoder.processing
        if self.pooling == "cls" and getattr(config, "hidden_sizes", None):
            raise ValueError(
                f"{OWNER}: pooling='cls' needs a transformer (a first token), but "
                f"{config.model_type} is convolutional; use 'pooler' or 'mean'"
            )
        folder = None if encoder.from_model_file else str(model_folder(OWNER, self.path))
        self.model = encoder_model(OWNER, config, folder)
        self.frozen = apply_freeze(OWNER, self.model, self.freeze)
        return (_width(config),)

    def forward(self, x: Tensor) -> Tensor:
        if self.preprocess_in_forward:
            x = self.processing.arrays(OWNER, x)
        output = self.model(pixel_values=x)
        if self.pooling == "pooler":
            pooled = output.pooler_output
            if pooled is None:
                raise ValueError(f"{OWNER}: the model has no pooler; use pooling='mean'")
            return pooled.flatten(1)
        hidden = output.last_hidden_state
        if self.pooling == "cls":
            return hidden[:, 0]
        return hidden.mean(dim=1) if hidden.ndim == 3 else hidden.mean(dim=(2, 3))
