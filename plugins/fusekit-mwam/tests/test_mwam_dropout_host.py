"""MWAM composed with modality dropout (the paper's missing-modality host, spec seed-003 §9.4):
the FRM is computed from the complete batch, before the dropout removes modalities, as in the
demo (which drops encoder outputs, so its FRM always sees whole images)."""

import numpy as np
import pytest
import torch
from fusekit_mwam import MWAM
from scipy.fft import dctn

from fusekit import FusionClassifier, Modalities
from fusekit.builtin.modality_dropout import ModalityDropout


def official_frm(images: np.ndarray) -> float:
    """The official FRM of ``(B, 1, 8, 8)`` images, worked with scipy's DCT: per image the sum
    over the 2×2 low coefficients of |L / (H + ε)|, H the mirrored highest ones, mean over B."""
    coefficients = dctn(images[:, 0].astype(np.float64), axes=(1, 2), norm="ortho")  # (B, 8, 8)
    low = coefficients[:, :2, :2]
    high = coefficients[:, ::-1, ::-1][:, :2, :2]  # (0,0)<->(7,7), (0,1)<->(7,6), ...
    return float(np.abs(low / (high + 1e-6)).sum(axis=(1, 2)).mean())


def test_frm_under_modality_dropout_sees_every_row():
    rng = np.random.default_rng(0)
    n = 40
    y = np.tile([0, 1], n // 2)
    smooth = rng.normal(size=(n, 1, 8, 8)).cumsum(axis=2).cumsum(axis=3).astype(np.float32)
    noise = (rng.normal(size=(n, 1, 8, 8)) + 0.5 * y[:, None, None, None]).astype(np.float32)
    X = Modalities(smooth=smooth, noise=noise)
    # p = 1 with keep_one: every row keeps exactly one modality, none is complete after dropout
    model = FusionClassifier(
        weighting=[ModalityDropout(p=1.0), MWAM()],
        standardize=False,
        max_epochs=1,
        batch_size=n,  # one batch holding every row: its FRM is the whole set's
        optimizer="sgd",
        lr=0.01,
        random_state=0,
    ).fit(X, y)
    mwam = model.module_.weightings[1]
    assert len(mwam.frm_history) == 1
    got = dict(zip(mwam.names, mwam.frm_history[0], strict=True))
    for name in ("smooth", "noise"):
        assert got[name] == pytest.approx(official_frm(X[name]), rel=1e-6)
    # the test can tell: the FRM over half the rows (what a post-dropout FRM would use) differs
    assert official_frm(smooth[: n // 2]) != pytest.approx(official_frm(smooth), rel=1e-3)


def test_mwam_still_edits_gradients_on_the_dropout_host():
    """The weights MWAM records are the ones it applied: both weightings act in one fit."""
    rng = np.random.default_rng(1)
    n = 32
    y = np.tile([0, 1], n // 2)
    X = Modalities(
        smooth=rng.normal(size=(n, 1, 8, 8)).cumsum(axis=2).cumsum(axis=3).astype(np.float32),
        noise=rng.normal(size=(n, 1, 8, 8)).astype(np.float32),
    )
    torch.manual_seed(0)
    model = FusionClassifier(
        weighting=[ModalityDropout(p=0.5), MWAM()],
        max_epochs=2,
        batch_size=16,
        optimizer="sgd",
        lr=0.01,
        random_state=0,
    ).fit(X, y)
    history = np.array(model.module_.weightings[1].weight_history)
    assert history.shape == (4, 2)  # 2 epochs × 2 batches, 2 modalities
    assert np.all((history > 0.5) & (history < 1.5))
    # the smooth image (low-frequency dominated) is slowed down relative to the noise
    assert history[-1, 0] < history[-1, 1]
