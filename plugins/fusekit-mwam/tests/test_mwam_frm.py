"""Frequency Ratio Metric: hand examples, a scipy reference, spectral ordering, masks.

Official code (github.com/a6103121/MWAM): 8×8 block DCT-II (orthonormal); low band the 2×2
lowest coefficients (i, j), high band their mirrors (7 − i, 7 − j);
FRM = Σ |low / (high + ε)| ("official") or Σ low² / (Σ high² + ε) ("energy"), ε = 1e-6.
"""

import numpy as np
import pytest
import scipy.fft
import torch
from fusekit_mwam import dct_matrix, frequency_ratio_metric


def vector_with_coefficients(coefficients):
    """The length-8 signal whose orthonormal DCT-II is ``coefficients``: x = Dᵀ c."""
    c = torch.tensor(coefficients, dtype=torch.float64)
    return (dct_matrix(8, torch.float64).T @ c).unsqueeze(0)  # (1, 8)


def test_official_frm_on_hand_example():
    x = vector_with_coefficients([2.0, 1.0, 0, 0, 0, 0, 0.5, 4.0])
    # pairs (c0, c7) and (c1, c6): |2 / 4| + |1 / 0.5| = 2.5
    assert frequency_ratio_metric(x, eps=1e-12).item() == pytest.approx(2.5)


def test_official_frm_uses_signed_high_coefficient():
    x = vector_with_coefficients([2.0, 1.0, 0, 0, 0, 0, -0.5, -4.0])
    assert frequency_ratio_metric(x, eps=1e-12).item() == pytest.approx(2.5)
    near_minus_eps = vector_with_coefficients([1.0, 0, 0, 0, 0, 0, 0, -1e-6 + 1e-12])
    assert frequency_ratio_metric(near_minus_eps, eps=1e-6).item() > 1e9  # the code's heavy tail


def test_energy_frm_on_hand_example():
    x = vector_with_coefficients([2.0, 1.0, 0, 0, 0, 0, 0.5, 4.0])
    expected = (2.0**2 + 1.0**2) / (4.0**2 + 0.5**2)
    assert frequency_ratio_metric(x, mode="energy", eps=1e-12).item() == pytest.approx(expected)


def test_sum_grows_with_batch_and_mean_does_not():
    x = vector_with_coefficients([2.0, 1.0, 0, 0, 0, 0, 0.5, 4.0]).repeat(4, 1)
    assert frequency_ratio_metric(x, reduce="sum", eps=1e-12).item() == pytest.approx(10.0)
    assert frequency_ratio_metric(x, reduce="mean", eps=1e-12).item() == pytest.approx(2.5)


def _frm_by_scipy(x: np.ndarray, mode: str, eps: float = 1e-6) -> float:
    """FRM of (B, C, H, W) images with H, W multiples of 8, written with scipy (sum reduction)."""
    b, c, h, w = x.shape
    blocks = x.reshape(b, c, h // 8, 8, w // 8, 8).transpose(0, 1, 2, 4, 3, 5)
    coefficients = scipy.fft.dctn(blocks, axes=(-2, -1), norm="ortho")
    low = coefficients[..., :2, :2]
    high = coefficients[..., 7:5:-1, 7:5:-1]  # (7 − i, 7 − j) for i, j in {0, 1}
    if mode == "official":
        return float(np.abs(low / (high + eps)).sum())
    return float((low**2).sum() / ((high**2).sum() + eps))


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("official", (12211.92, 12212.02, 12212.05)), ("energy", (47.13898, 47.13905, 47.13905))],
)
def test_scale_invariance_and_values_of_a_scipy_reference(mode, expected):
    """Uniform noise (4, 3, 32, 32) at scales 0.1, 1, 10: FRM is nearly scale-invariant.

    ``expected`` comes from ``_frm_by_scipy`` (an independent block DCT with ``scipy.fft.dctn``);
    only ε breaks the invariance, hence the tiny drift.
    """
    raw = np.random.default_rng(0).random((4, 3, 32, 32))
    noise = torch.from_numpy(raw)
    values = [
        frequency_ratio_metric(scale * noise, mode=mode, reduce="sum").item()
        for scale in (0.1, 1.0, 10.0)
    ]
    reference = [_frm_by_scipy(scale * raw, mode) for scale in (0.1, 1.0, 10.0)]
    np.testing.assert_allclose(values, reference, rtol=1e-9)
    np.testing.assert_allclose(values, expected, rtol=2e-6)
    assert max(values) / min(values) - 1 < 1e-4


def test_smooth_image_has_larger_frm_than_white_noise():
    rng = np.random.default_rng(1)
    noise = rng.normal(size=(4, 3, 32, 32))
    smooth = noise.cumsum(axis=2).cumsum(axis=3)
    for mode in ("official", "energy"):
        smooth_frm = frequency_ratio_metric(torch.from_numpy(smooth), mode=mode)
        noise_frm = frequency_ratio_metric(torch.from_numpy(noise), mode=mode)
        assert smooth_frm > 10 * noise_frm


def test_absent_samples_are_left_out_and_duplicates_change_nothing():
    x = torch.randn(6, 2, 16, 16, dtype=torch.float64)
    present = torch.tensor([True, True, False, True, False, True])
    for mode in ("official", "energy"):
        masked = frequency_ratio_metric(x, mode=mode, reduce="mean", present=present)
        only_present = frequency_ratio_metric(x[present], mode=mode, reduce="mean")
        garbage = x.clone()
        garbage[~present] = 1e6 * torch.randn_like(garbage[~present])
        changed = frequency_ratio_metric(garbage, mode=mode, reduce="mean", present=present)
        doubled = frequency_ratio_metric(x[present].repeat(2, 1, 1, 1), mode=mode, reduce="mean")
        torch.testing.assert_close(masked, only_present)
        torch.testing.assert_close(changed, only_present)
        torch.testing.assert_close(doubled, only_present)
    assert frequency_ratio_metric(x, present=torch.zeros(6, dtype=torch.bool)).isnan()


def test_sequence_blocks_with_padded_steps_are_left_out():
    x = torch.randn(2, 16, 3, dtype=torch.float64)
    steps = torch.ones(2, 16, dtype=torch.bool)
    steps[1, 10:] = False  # sample 1: second block holds padding
    padded = x.clone()
    padded[1, 10:] = 0.0
    with_steps = frequency_ratio_metric(padded, steps=steps)
    expected = frequency_ratio_metric(x[:1]) + frequency_ratio_metric(x[1:, :8])
    torch.testing.assert_close(with_steps, expected)
    mean = frequency_ratio_metric(padded, steps=steps, reduce="mean")
    torch.testing.assert_close(mean, expected / 1.5)  # 3 real blocks = 1.5 samples' worth
    steps[:] = False
    assert frequency_ratio_metric(padded, steps=steps).isnan()  # no real block at all


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"mode": "fft"}, "frm_mode"),
        ({"reduce": "max"}, "reduce"),
        ({"patch_size": 1}, "patch_size"),
        ({"band": 5}, "band"),
        ({"eps": 0.0}, "eps"),
    ],
)
def test_bad_parameters_name_themselves(kwargs, name):
    with pytest.raises(ValueError, match=name):
        frequency_ratio_metric(torch.randn(2, 8), **kwargs)


def test_rejects_unsupported_rank():
    with pytest.raises(ValueError, match=r"\(B, d\)"):
        frequency_ratio_metric(torch.randn(2, 2, 2, 2, 2))


def _sequence_bands_by_scipy(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Low (c0, c1) and mirrored high (c7, c6) DCT bands of a (T, d) sequence in blocks of 8."""
    blocks = x.reshape(x.shape[0] // 8, 8, x.shape[1])  # (n, 8, d)
    coefficients = scipy.fft.dct(blocks, axis=1, norm="ortho")
    return coefficients[:, :2], coefficients[:, 7:5:-1]


def test_padded_steps_of_the_present_samples_are_left_out():
    # three sequences, the middle one absent, the last one padded from step 10 on (its second
    # block left out): the real blocks are x[0] (2 blocks) and x[2, :8] (1 block)
    rng = np.random.default_rng(4)
    x = rng.normal(size=(3, 16, 3))
    x[2, 10:] = 0.0
    steps = np.ones((3, 16), bool)
    steps[2, 10:] = False
    present = torch.tensor([True, False, True])
    bands = [_sequence_bands_by_scipy(x[0]), _sequence_bands_by_scipy(x[2, :8])]
    eps = 1e-6
    official = sum(np.abs(low / (high + eps)).sum() for low, high in bands)
    low_energy = sum((low**2).sum() for low, _ in bands)
    high_energy = sum((high**2).sum() for _, high in bands)
    tensor, step_mask = torch.from_numpy(x), torch.from_numpy(steps)
    kwargs = {"present": present, "steps": step_mask, "eps": eps}
    got = frequency_ratio_metric(tensor, reduce="sum", **kwargs).item()
    assert got == pytest.approx(official, rel=1e-9)
    got = frequency_ratio_metric(tensor, reduce="mean", **kwargs).item()
    assert got == pytest.approx(official / 1.5, rel=1e-9)  # 3 real blocks = 1.5 samples
    energy = frequency_ratio_metric(tensor, mode="energy", **kwargs).item()
    assert energy == pytest.approx(low_energy / (high_energy + eps), rel=1e-9)


def test_energy_mean_divides_both_energies_before_adding_eps():
    # hand example repeated 4 times, eps = 1: sum 20 / (65 + 1); mean 5 / (16.25 + 1)
    x = vector_with_coefficients([2.0, 1.0, 0, 0, 0, 0, 0.5, 4.0]).repeat(4, 1)
    energy_sum = frequency_ratio_metric(x, mode="energy", reduce="sum", eps=1.0).item()
    energy_mean = frequency_ratio_metric(x, mode="energy", reduce="mean", eps=1.0).item()
    assert energy_sum == pytest.approx(20.0 / 66.0)
    assert energy_mean == pytest.approx(5.0 / 17.25)


@pytest.mark.parametrize(("patch_size", "band"), [(2, 1), (8, 4), (9, 4), (8, 1)])
def test_boundary_parameters_are_accepted(patch_size, band):
    x = torch.randn(2, 2 * patch_size, dtype=torch.float64)
    assert torch.isfinite(frequency_ratio_metric(x, patch_size=patch_size, band=band))


def test_band_message_states_the_upper_bound():
    with pytest.raises(ValueError, match=r"patch_size // 2 = 4\]"):
        frequency_ratio_metric(torch.randn(2, 9), patch_size=9, band=5)
