"""Frozen encoders run once per fit: their outputs are remembered per training row.

A backbone is *frozen* when ``Backbone.frozen`` is true: set on its class (an encoder that is
always a feature extractor) or by the estimator's ``frozen_backbones=`` (:func:`freeze`, which
also turns ``requires_grad`` off). The network keeps frozen backbones in eval mode
(``FusionNetwork.train``), so in training they compute the function they compute at predict: no
dropout, no batch statistics. This is MulTaBench's "Frozen" protocol; fine-tuning (the default)
trains every backbone.

During ``fit``, :class:`FrozenOutputs` remembers a frozen backbone's output for each training row
(``ModalityBatch.index``, the row's position in the fit's ``TrainingData``) the first time it
encodes the row, and answers every later batch whose present rows it holds from memory. So a fit
of ``E`` epochs runs each frozen encoder once per row instead of ``E`` times (and once more per
validation pass): ``(E - 1) * n_rows`` row encodings avoided, ``E - 1`` of every ``E`` passes.
There is no separate encoding pass, and the remembered values are the ones the first epoch
computed, so with ``shuffle=False`` (each row in the same batch every epoch) training is
bitwise the same as running the encoder every epoch.

* **Rows**: every row of the fit's data, the early-stopping validation rows included. A row that
  is absent (mask 0, in the data or dropped by a mask-only perturbation) is never stored: its
  output is zeroed by the network anyway.
* **Memory**: ``n_rows * prod(feature_shape) * 4`` bytes per frozen modality (float32), on the
  training device, allocated at its first batch and freed when ``fit`` returns or raises. Above
  :data:`MAX_BYTES` in total for a fit, a modality is not remembered (a
  :class:`FrozenCacheWarning` says so) and trains as without this: correct, not faster.
* **Perturbing weightings** run on the inputs before the backbones. When every one of them
  declares ``Weighting.perturbs_mask_only`` (``modality_dropout``: modalities dropped, present
  rows unchanged), the remembered outputs are used and then masked, exactly as the backbone's
  output would be. Any other perturbation (noise on the values) turns remembering off for the
  fit: the backbones run on every batch.
* **partial_fit** sees each row of its chunk once per call, so it remembers nothing.
* **Which batches**: only batches that carry row indices (training and validation batches; not
  predict, which is one pass anyway, so a frozen encoder already runs once per predict) and
  whose features do not require grad (a plugin differentiating with respect to the inputs).
  Plugins that edit feature values and rerun the network build their batch with ``index=None``.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import Tensor

from fusekit.plugin import Weighting

#: The most memory (bytes, all frozen modalities of one fit together) the remembered outputs take.
MAX_BYTES = 2 * 1024**3


class FrozenCacheWarning(UserWarning):
    """A frozen backbone's outputs are too large to remember; it runs on every batch."""


def frozen_modalities(network: Any) -> tuple[str, ...]:
    """The modalities whose backbone is frozen (``Backbone.frozen``), in network order."""
    return tuple(name for name, b in network.backbones.items() if getattr(b, "frozen", False))


def freeze(network: Any, names: Iterable[str]) -> None:
    """Freeze the backbones of ``names`` and of every backbone that declares ``frozen``: set
    ``frozen``, turn ``requires_grad`` off and put them in eval mode (``FusionNetwork.train``
    keeps them there). ``ValueError`` for a name that is no modality."""
    names = list(names)
    unknown = [name for name in names if name not in network.backbones]
    if unknown:
        raise ValueError(
            f"frozen_backbones names {unknown}, which are not modalities of X (its modalities: "
            f"{list(network.backbones)}). Name the modalities whose backbones stay fixed."
        )
    for name in names:
        backbone = network.backbones[name]
        try:
            backbone.frozen = True
        except AttributeError:  # a read-only property: the backbone decides itself
            raise ValueError(
                f"frozen_backbones: the backbone of modality {name!r} "
                f"({type(backbone).__name__}) decides itself whether it is frozen (its 'frozen' "
                "is read-only); use its own parameter instead."
            ) from None
    for name in frozen_modalities(network):
        network.backbones[name].requires_grad_(False).eval()


class FrozenOutputs:
    """Frozen backbones' outputs per training row, filled as the fit encodes the rows."""

    def __init__(self, n_rows: int, names: Iterable[str], max_bytes: int | None = None) -> None:
        self.n_rows = n_rows
        self.names = set(names)
        self.budget = MAX_BYTES if max_bytes is None else max_bytes
        self.outputs: dict[str, Tensor] = {}  # (n_rows, *feature_shape)
        self.stored: dict[str, Tensor] = {}  # (n_rows,) bool: row's output is in outputs

    def __deepcopy__(self, memo: dict) -> FrozenOutputs:
        # A copy of the network (side training) has the same frozen weights: share, never copy.
        return self

    def encode(self, name: str, position: int, backbone: Any, batch: Any) -> Tensor:
        """``backbone.encode`` of ``batch``'s modality ``name``, from memory where stored."""
        x, steps, index = batch.features[name], batch.steps.get(name), batch.index
        if name not in self.names or index is None or x.requires_grad:
            return backbone.encode(x, steps)
        present = batch.mask[:, position]
        stored = self.stored.get(name)
        if stored is not None:
            known = stored.index_select(0, index)
            if bool((known | ~present).all()):
                return self.outputs[name].index_select(0, index)
        encoded = backbone.encode(x, steps)
        self._store(name, index, present, encoded)
        return encoded

    def _store(self, name: str, index: Tensor, present: Tensor, encoded: Tensor) -> None:
        if name not in self.outputs:
            size = self.n_rows * math.prod(encoded.shape[1:]) * encoded.element_size()
            if size > self.budget:
                self.names.discard(name)
                warnings.warn(
                    f"the frozen backbone of modality {name!r} outputs {size / 2**20:.0f} MiB for "
                    f"the {self.n_rows} training rows, more than the {self.budget / 2**20:.0f} MiB "
                    "left for remembered outputs (fusekit.engine.frozen_cache.MAX_BYTES); it runs "
                    "on every batch instead (same result, slower).",
                    FrozenCacheWarning,
                    stacklevel=2,
                )
                return
            self.budget -= size
            self.outputs[name] = encoded.new_zeros((self.n_rows, *encoded.shape[1:]))
            self.stored[name] = torch.zeros(self.n_rows, dtype=torch.bool, device=index.device)
        rows = index[present]
        self.outputs[name].index_copy_(0, rows, encoded.detach()[present])
        self.stored[name][rows] = True


@contextlib.contextmanager
def remembering_frozen_outputs(network: Any, n_rows: int, enabled: bool = True) -> Iterator[None]:
    """Inside the block, ``network`` answers frozen backbones from memory (module docstring).

    Off (``enabled`` False: ``partial_fit``), without a frozen backbone, or with a perturbing
    weighting that changes values (not ``perturbs_mask_only``). Always removed on exit.
    """
    names = frozen_modalities(network) if enabled else ()
    perturbers = [w for w in network.weightings if _overrides_perturb(w)]
    if not names or not all(getattr(w, "perturbs_mask_only", False) for w in perturbers):
        yield
        return
    network.__dict__["frozen_outputs"] = FrozenOutputs(n_rows, names)
    try:
        yield
    finally:
        network.__dict__.pop("frozen_outputs", None)


def _overrides_perturb(weighting: Any) -> bool:
    return type(weighting).perturb is not Weighting.perturb
