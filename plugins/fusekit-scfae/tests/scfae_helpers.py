"""Helpers for the SCFAE tests: a fusion built from widths, one forward pass, random features.

A uniquely named module (not ``conftest``) so that it cannot collide with another test folder's
``conftest`` when the whole repository's tests run in one session.
"""

import torch
from fusekit_scfae import SCFAEFusion

from fusekit import BuildSpec, FusionOutput


def build_fusion(widths: dict[str, int], cls=SCFAEFusion, **params) -> SCFAEFusion:
    """An SCFAE fusion built for vector features of the given widths."""
    spec = BuildSpec(
        names=tuple(widths),
        input_shapes={m: (w,) for m, w in widths.items()},
        feature_shapes={m: (w,) for m, w in widths.items()},
        n_outputs=2,
        task="classification",
    )
    fusion = cls(**params)
    fusion.width_ = fusion.build(spec)
    return fusion


def run(fusion, features, mask=None) -> tuple[torch.Tensor, FusionOutput]:
    """Fused output and the FusionOutput (aux losses, diagnostics) of one forward pass."""
    batch = next(iter(features.values())).shape[0]
    if mask is None:
        mask = torch.ones(batch, len(features), dtype=torch.bool)
    output = FusionOutput(mask=mask)
    return fusion(features, mask, output), output


def random_features(widths: dict[str, int], batch: int = 6, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return {m: torch.randn(batch, w, generator=generator) for m, w in widths.items()}
