"""The learning rates SCFAE and its presets recommend (``recommended_params``).

Each is the committed sweep's choice (``benchmarks/lr_sweep.py``, results in
``benchmarks/lr_sweep.md``: UCI Multiple Features fou + kar, lr 1e-4 ... 1e-2, 3 seeds x 3 folds,
the bench's quick budget of 5 epochs): the best mean accuracy among the lrs at which no fit
diverged. The block has no normalisation layer (neither has the paper), and Adam at fusekit's
fallback lr 0.01 diverges on it. ``scfae_paper``'s value is the peak of its warm-up + cosine
schedule; the paper's peak 5e-4 is for far more steps than 5 epochs of a few thousand rows (0.11
accuracy at 3e-4 in the sweep).
"""

from __future__ import annotations

SWEPT_LR: dict[str, float] = {
    "scfae": 3e-3,
    "scfae_no_recon": 3e-3,
    "scfae_no_expand": 3e-3,
    "scfae_mse": 3e-3,
    "scfae_contrastive": 3e-3,
    "linear_proj": 1e-3,
    "scfae_paper": 3e-3,
}
