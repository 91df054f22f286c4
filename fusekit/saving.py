"""``fusekit.save`` / ``fusekit.load``: a fitted estimator, or a ``Pipeline`` ending in one, without
pickle.

A fusekit estimator is one safetensors file (:mod:`fusekit.persistence`). A scikit-learn
``Pipeline`` whose last step is a fusekit estimator is one zip file holding

* ``steps.skops``: the pipeline with its last step replaced by ``"passthrough"``, written by
  ``skops.io`` (objects as their stored state, numpy arrays without pickle);
* ``estimator.safetensors``: the last step in the fusekit format;
* ``manifest.json``: the format, the last step's name, and each member's size and SHA-256
  digest; with ``key=...`` also an HMAC-SHA-256 signature of the manifest (so of every member).

Loading never unpickles and never runs code from the file. skops rebuilds only the types it is
told to trust: the ones it trusts itself (scikit-learn's estimators, numpy and scipy containers,
builtins), fusekit's own transformers (:data:`TRUSTED_TYPES`) and the type names passed as
``trusted=[...]``. A file with any other type is refused with :class:`UntrustedTypesError`, which
lists them; check them before passing them in ``trusted``. Each member's size is checked against
the manifest and against how much it may inflate (:data:`MAX_INFLATION`) before it is read, and
it is read with a bounded reader, so a small file cannot make ``load`` read a huge member.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sklearn.pipeline import Pipeline

from fusekit import devices, signing
from fusekit import estimator as estimators
from fusekit.atomic import atomic_path
from fusekit.engine import distributed as data_parallel
from fusekit.persistence import ModelFileError, check_signature

PIPELINE_FORMAT = "fusekit-pipeline"
PIPELINE_FORMAT_VERSION = 1
_MANIFEST, _STEPS, _ESTIMATOR = "manifest.json", "steps.skops", "estimator.safetensors"
_ZIP_MAGIC = b"PK\x03\x04"
_SIGNATURE = "hmac_sha256"

#: A member may inflate to at most this many times its compressed size (plus
#: :data:`MAX_SMALL_MEMBER` bytes): deflate gives weights and skops files a few times at most,
#: a zip bomb a thousand.
MAX_INFLATION = 100
#: Bytes any member may have whatever its compressed size (the manifest: at most this).
MAX_SMALL_MEMBER = 8 * 2**20

#: Trusted when a pipeline is loaded, beyond skops' own list: fusekit's own transformers, and
#: ``numpy.dtype`` (data only, rebuilt from its name; scikit-learn's imputers keep one).
TRUSTED_TYPES: tuple[str, ...] = (
    "fusekit.datasets.missing.AbsentWhereMissing",
    "numpy.dtype",
)


class UntrustedTypesError(ModelFileError):
    """A pipeline file holds types that were not declared trusted; loading it was refused."""

    def __init__(self, path: str | Path, types: list[str]) -> None:
        self.types = types
        super().__init__(
            f"{path} holds types that are not trusted, so it was not loaded: {types}. Loading "
            "builds only trusted types (scikit-learn estimators, numpy/scipy containers, fusekit's "
            "transformers). If you trust the file's source and these types, load it with "
            f"fusekit.load(path, trusted={types!r})."
        )


def save(model: Any, path: str | Path, key: signing.SigningKey | None = None) -> Path:
    """Write a fitted fusekit estimator, or a fitted ``Pipeline`` ending in one, to ``path``.

    An estimator is written as by ``model.save(path)``; a pipeline as a zip file (see the module
    documentation). Neither uses pickle. An existing file is replaced only once the new one is
    complete (a failed save leaves it as it was). With ``key`` (bytes or a string kept secret)
    the file is signed with HMAC-SHA-256 and loads only with the same key. Read it back with
    :func:`load`.
    """
    secret = signing.key_bytes(key)
    if isinstance(model, estimators._FusionEstimator):
        return model.save(path, key=secret)
    if not isinstance(model, Pipeline) or not model.steps:
        raise TypeError(
            "fusekit.save stores a fitted FusionClassifier / FusionRegressor or a scikit-learn "
            f"Pipeline whose last step is one; got {type(model).__name__}. Use skops.io for other "
            "scikit-learn objects."
        )
    name, final = model.steps[-1]
    if not isinstance(final, estimators._FusionEstimator):
        raise TypeError(
            f"fusekit.save stores a Pipeline whose last step is a fusekit estimator; its last step "
            f"{name!r} is {type(final).__name__}. Use skops.io for this pipeline."
        )
    if not data_parallel.writes_files(getattr(final, "net_", None)):
        return Path(path)  # a data-parallel fit's other ranks: rank 0 writes the file
    steps = Pipeline.__new__(Pipeline)
    steps.__dict__.update(model.__dict__)  # a shallow copy with the last step left out
    steps.steps = [*model.steps[:-1], (name, "passthrough")]
    import skops.io  # only pipelines need it (1 s or more to import): not at ``import fusekit``

    members = {_STEPS: skops.io.dumps(steps)}
    with tempfile.TemporaryDirectory() as folder:
        members[_ESTIMATOR] = Path(final.save(Path(folder) / _ESTIMATOR)).read_bytes()
    manifest: dict[str, Any] = {
        "format": PIPELINE_FORMAT,
        "format_version": PIPELINE_FORMAT_VERSION,
        "final_step": name,
        "sha256": {member: hashlib.sha256(data).hexdigest() for member, data in members.items()},
        "sizes": {member: len(data) for member, data in members.items()},
    }
    if secret is not None:
        manifest[_SIGNATURE] = signing.sign_bytes(secret, _signed_part(manifest))
    path = Path(path)
    with (
        atomic_path(path) as temporary,
        zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED) as archive,
    ):
        archive.writestr(_MANIFEST, json.dumps(manifest, sort_keys=True))
        for member, data in members.items():
            archive.writestr(member, data)
    return path


def _signed_part(manifest: dict[str, Any]) -> bytes:
    """The manifest's bytes its signature covers: all of it but the signature, canonically."""
    unsigned = {k: v for k, v in manifest.items() if k != _SIGNATURE}
    return json.dumps(unsigned, sort_keys=True).encode()


def load(
    path: str | Path,
    trusted: Iterable[str] = (),
    key: signing.SigningKey | None = None,
    device: str | None = None,
) -> Any:
    """The estimator or pipeline written by :func:`save` (or ``estimator.save``).

    Args:
        path: the file.
        trusted: for a pipeline, type names (``"module.Class"``) to trust beyond scikit-learn's
            estimators, numpy/scipy containers and fusekit's transformers; an
            :class:`UntrustedTypesError` lists the ones a file needs.
        key: the key the file was signed with (``save(..., key=...)``). With a key, a file not
            signed with it is refused; a signed file is refused without its key.
        device: where the fusekit estimator goes (``"cpu"``, ``"cuda:1"``...). ``None``: the
            device it was fitted on if present here, otherwise the CPU with a
            :class:`~fusekit.devices.DeviceUnavailableWarning`.

    Raises:
        ModelFileError: a truncated, altered or foreign file.
        SignatureError: a signed file without its key, an unsigned one with a key, a wrong key.
        UntrustedTypesError: a pipeline holding types not declared trusted.
        ValueError: ``device`` is not a torch device, or not present on this machine.
    """
    path = Path(path)
    secret = signing.key_bytes(key)
    devices.requested_device(device)  # a bad device is an error before any reading
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}")
    with path.open("rb") as file:
        magic = file.read(len(_ZIP_MAGIC))
    if magic != _ZIP_MAGIC:
        return estimators.load(path, key=secret, device=device)
    return _load_pipeline(path, tuple(trusted), secret, device)


def _read_member(path: Path, archive: zipfile.ZipFile, member: str, size: Any = None) -> bytes:
    """``member``'s bytes, its size checked before reading (against the manifest's ``size``
    when given, and :data:`MAX_INFLATION`) and read with a bounded reader."""
    info = archive.getinfo(member)
    limit = max(MAX_INFLATION * info.compress_size, MAX_SMALL_MEMBER)
    if member == _MANIFEST:
        limit = MAX_SMALL_MEMBER
    if info.file_size > limit:
        raise ModelFileError(
            f"{path}: {member} would inflate to {info.file_size} bytes from "
            f"{info.compress_size} compressed (at most {limit} are read); it was not read. This "
            "is not a file fusekit.save wrote."
        )
    if size is not None and size != info.file_size:
        raise ModelFileError(
            f"{path} failed its integrity check: {member} holds {info.file_size} bytes, but the "
            f"manifest says {size!r}. Do not use it."
        )
    with archive.open(info) as stream:
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise ModelFileError(f"{path}: {member} holds more than {limit} bytes; it was not read.")
    return data


def _members(path: Path, key: bytes | None) -> tuple[dict[str, Any], bytes, bytes]:
    try:
        with zipfile.ZipFile(path) as archive:
            manifest = json.loads(_read_member(path, archive, _MANIFEST))
            if not isinstance(manifest, dict) or manifest.get("format") != PIPELINE_FORMAT:
                raise ModelFileError(f"{path} is a zip file but not a fusekit pipeline")
            if manifest.get("format_version", 0) > PIPELINE_FORMAT_VERSION:
                raise ModelFileError(
                    f"{path} was written by a newer fusekit (pipeline format "
                    f"{manifest['format_version']}); upgrade fusekit to load it."
                )
            check_signature(
                path,
                manifest.get(_SIGNATURE),
                key,
                lambda secret: signing.sign_bytes(secret, _signed_part(manifest)),
            )
            sizes = manifest.get("sizes", {})
            if not isinstance(sizes, dict):
                raise ModelFileError(f"{path}: the manifest's sizes are not a mapping: {sizes!r}")
            steps = _read_member(path, archive, _STEPS, sizes.get(_STEPS))
            final = _read_member(path, archive, _ESTIMATOR, sizes.get(_ESTIMATOR))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, OSError, EOFError) as error:
        raise ModelFileError(
            f"{path} is not a readable fusekit pipeline file (truncated or corrupted): {error}"
        ) from None
    digests = manifest.get("sha256", {})
    for member, data in ((_STEPS, steps), (_ESTIMATOR, final)):
        stored = digests.get(member) if isinstance(digests, dict) else None
        if not isinstance(stored, str) or not signing.same(
            stored, hashlib.sha256(data).hexdigest()
        ):
            raise ModelFileError(
                f"{path} failed its integrity check: {member} was changed after saving (or the "
                "file is corrupted). Do not use it."
            )
    return manifest, steps, final


def _load_pipeline(
    path: Path, trusted: tuple[str, ...], key: bytes | None, device: str | None
) -> Pipeline:
    import skops.io  # only pipelines need it (1 s or more to import): not at ``import fusekit``

    manifest, steps_bytes, final_bytes = _members(path, key)
    try:
        needed = skops.io.get_untrusted_types(data=steps_bytes)
    except Exception as error:  # skops raises many kinds on a foreign or damaged file
        raise ModelFileError(f"{path}: the pipeline steps are unreadable: {error}") from None
    refused = sorted(set(needed) - set(TRUSTED_TYPES) - set(trusted))
    if refused:
        raise UntrustedTypesError(path, refused)
    try:
        steps = skops.io.loads(steps_bytes, trusted=needed)
    except Exception as error:
        raise ModelFileError(f"{path}: the pipeline steps are unreadable: {error}") from None
    if not isinstance(steps, Pipeline) or steps.steps[-1] != (
        manifest["final_step"],
        "passthrough",
    ):
        raise ModelFileError(f"{path}: the stored steps are not the pipeline fusekit saved")
    with tempfile.TemporaryDirectory() as folder:
        final_path = Path(folder) / _ESTIMATOR
        final_path.write_bytes(final_bytes)
        final = estimators.load(final_path, device=device)
    steps.steps = [*steps.steps[:-1], (manifest["final_step"], final)]
    return steps
