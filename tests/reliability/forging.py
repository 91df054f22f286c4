"""What a forger does to a model file: edit its JSON document and recompute the plain digest.

The plain SHA-256 digest is public arithmetic, so anyone can re-seal an edited file; only a keyed
signature (``save(..., key=...)``) tells a forged file from a genuine one.
"""

import json
import zipfile
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import save_file

from fusekit import persistence


def reseal(path: Path, edit, signature: str = "keep") -> None:
    """Rewrite the model file at ``path`` with ``edit(document)`` applied and a recomputed
    SHA-256 digest; ``signature``: ``"keep"`` the old keyed signature or ``"drop"`` it."""
    with safe_open(str(path), framework="pt") as handle:
        metadata = dict(handle.metadata())
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    document = json.loads(metadata["fusekit"])
    edit(document)
    text = json.dumps(document, sort_keys=True)
    metadata["fusekit"] = text
    metadata["fusekit_sha256"] = persistence._digest(text, tensors)
    if signature == "drop":
        metadata.pop("fusekit_hmac_sha256", None)
    save_file(tensors, str(path), metadata=metadata)


def rezip(path: Path, edit) -> None:
    """Rewrite the pipeline zip at ``path`` with ``edit(members)`` applied to its members."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    edit(members)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
