"""UDML's two presets: the paper's equations, and the authors' release code (spec §5, §6.2).

A parameter left at ``None`` takes its preset's value; any explicit value wins.

| setting                    | "paper"       | "official_code"                          |
|----------------------------|---------------|------------------------------------------|
| uncertainty_power          | 1 (u = σ̂)     | 2 (u = σ̂², inverse variance)             |
| residual                   | False (M·w·z) | True ((1 + M·w)·z)                       |
| dependency_on              | "unweighted"  | "weighted" (‖ℓ^{only m}‖ on weighted z)  |
| uni_weight                 | 1.0           | 4.0 (CREMA-D's γ)                        |
| kl_weight                  | 0.0           | 1e-5 (noise label as prior variance)     |
| estimate_in_stage1         | False         | True (L_est with clean targets)          |
| uncertainty_warmup_epochs  | 0             | round(0.1 · max_epochs) (code: 10 of 100) |
| detach_weights             | True          | False (task loss also trains E)          |
| uncertainty_transform      | "identity"    | "exp_half" (σ̂ = exp(E/2))               |
"""

from __future__ import annotations

from dataclasses import dataclass

PRESETS = ("paper", "official_code")


@dataclass(frozen=True)
class Settings:
    """The resolved switches a fitted :class:`UDMLWeighting` runs with."""

    uncertainty_power: float
    residual: bool
    dependency_on: str
    uni_weight: float
    kl_weight: float
    estimate_in_stage1: bool
    warmup_fraction: float
    detach_weights: bool
    uncertainty_transform: str


_TABLE = {
    "paper": Settings(1.0, False, "unweighted", 1.0, 0.0, False, 0.0, True, "identity"),
    "official_code": Settings(2.0, True, "weighted", 4.0, 1e-5, True, 0.1, False, "exp_half"),
}


def preset_settings(preset: str) -> Settings:
    if preset not in _TABLE:
        raise ValueError(f"udml: preset={preset!r} is unknown; expected one of {list(PRESETS)}.")
    return _TABLE[preset]
