"""Local Hugging Face models: finding the folder, reading its files, building the encoder.

Everything here runs offline: ``path`` is a folder or a Hugging Face cache id (``"org/name"``,
resolved with ``local_files_only=True``, so only a model already in the local cache is found).
A model is built from its ``config.json`` alone (the architecture, random weights) when its
weights come from a fusekit model file, and loaded with its pretrained weights otherwise.

A stored ``config.json`` is data: its ``model_type`` must name one of transformers' own
configuration classes, and a configuration that asks for remote code (``auto_map``) is refused,
so loading a fusekit model never imports a module a file names. ``transformers`` is imported
here lazily (``import transformers`` takes seconds).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

CONFIG_FILE = "config.json"


class ModelFolderError(FileNotFoundError):
    """A model folder or cache id that does not hold what a backbone needs."""


def model_folder(owner: str, path: str | Path | None) -> Path:
    """The local folder of ``path``: a folder, or a cache id found in the local cache only."""
    if path is None or (isinstance(path, str) and not path.strip()):
        raise ValueError(
            f"{owner}: path is required: a folder holding a Hugging Face model (config.json and "
            "its weights) or the id of a model in the local Hugging Face cache"
        )
    folder = Path(path).expanduser()
    if folder.is_dir():
        return folder
    if isinstance(path, str) and path.count("/") == 1 and not folder.exists():
        from huggingface_hub import snapshot_download  # lazily
        from huggingface_hub.errors import LocalEntryNotFoundError

        try:
            return Path(snapshot_download(path, local_files_only=True))
        except (LocalEntryNotFoundError, ValueError):  # not cached, or not a valid repo id
            pass
    raise ModelFolderError(
        f"{owner}: path={str(path)!r} is neither a folder nor a model in the local Hugging Face "
        "cache (nothing is downloaded: save the model with save_pretrained(folder) or fetch it "
        "into the cache first)"
    )


def read_file(owner: str, folder: str, name: str) -> bytes:
    """The bytes of ``folder / name``; ``ModelFolderError`` naming the file when it is absent.

    Module level (with :func:`functools.partial`) so that encoders holding it pickle."""
    file = Path(folder) / name
    if not file.is_file():
        raise ModelFolderError(f"{owner}: the model folder {folder} has no {name}")
    return file.read_bytes()


def config_from_bytes(owner: str, data: bytes) -> Any:
    """A transformers configuration from ``config.json`` bytes; its class is transformers' own."""
    from transformers import CONFIG_MAPPING  # lazily

    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{owner}: {CONFIG_FILE} is not JSON ({error})") from None
    if not isinstance(document, dict):
        raise ValueError(f"{owner}: {CONFIG_FILE} must hold a JSON object")
    if "auto_map" in document:
        raise ValueError(
            f"{owner}: {CONFIG_FILE} asks for remote code (auto_map); only the architectures "
            "transformers ships are loaded (no trust_remote_code)"
        )
    model_type = document.get("model_type")
    if model_type not in CONFIG_MAPPING:
        raise ValueError(
            f"{owner}: {CONFIG_FILE} names model_type={model_type!r}, which is not an "
            "architecture of the installed transformers"
        )
    # safe: the name picks one of transformers' own architectures (its fixed CONFIG_MAPPING,
    # checked above); no module or class named by the file outside it is imported
    return CONFIG_MAPPING[model_type].from_dict(document)


def building_on_meta() -> bool:
    """True inside ``with torch.device("meta")`` (a skeleton: no weights are read)."""
    return torch.empty(0).device.type == "meta"


def encoder_model(owner: str, config: Any, folder: str | None) -> nn.Module:
    """``AutoModel`` of ``config``: pretrained from ``folder``, or random where ``folder`` is
    ``None`` (its weights then come from the fusekit model file) or on the meta device."""
    from transformers import AutoModel  # lazily

    if folder is None or building_on_meta():
        return AutoModel.from_config(config, dtype=torch.float32)
    try:
        return AutoModel.from_pretrained(
            folder, config=config, local_files_only=True, dtype=torch.float32
        )
    except OSError as error:  # no weights file, or an unreadable one
        message = f"{owner}: the weights in {folder} cannot be read: {error}"
        raise ModelFolderError(message) from None
