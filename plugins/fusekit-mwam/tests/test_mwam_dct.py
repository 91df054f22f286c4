"""Block DCT: orthonormal, equal to scipy's, bands in the official code's mirror pairing."""

import numpy as np
import pytest
import scipy.fft
import torch
from fusekit_mwam.dct import (
    block_dct_image,
    block_dct_sequence,
    block_dct_vector,
    block_steps,
    dct_matrix,
)


@pytest.mark.parametrize("n", [1, 2, 3, 8, 13])
def test_dct_matrix_is_orthonormal(n):
    basis = dct_matrix(n, torch.float64)
    torch.testing.assert_close(basis @ basis.T, torch.eye(n, dtype=torch.float64))


@pytest.mark.parametrize("n", [2, 5, 8])
def test_dct_matrix_equals_scipy_dct_ortho(n):
    x = np.random.default_rng(n).normal(size=(4, n))
    ours = (torch.from_numpy(x) @ dct_matrix(n, torch.float64).T).numpy()
    np.testing.assert_allclose(ours, scipy.fft.dct(x, norm="ortho", axis=-1), atol=1e-10)


def test_image_blocks_equal_scipy_dctn_and_bands_mirror():
    x = np.random.default_rng(0).random((2, 3, 16, 24))
    low, high = block_dct_image(torch.from_numpy(x), patch_size=8, band=2)
    assert low.shape == high.shape == (2, 3, 2, 3, 2, 2)
    blocks = x.reshape(2, 3, 2, 8, 3, 8).transpose(0, 1, 2, 4, 3, 5)
    reference = scipy.fft.dctn(blocks, axes=(-2, -1), norm="ortho")
    assert np.abs(low.numpy() - reference[..., :2, :2]).max() < 1e-6
    for i in range(2):
        for j in range(2):  # (0,0)<->(7,7), (0,1)<->(7,6), (1,0)<->(6,7), (1,1)<->(6,6)
            assert np.abs(high[..., i, j].numpy() - reference[..., 7 - i, 7 - j]).max() < 1e-6


def test_low_band_holds_dc_and_high_band_holds_highest_frequency():
    basis = dct_matrix(8, torch.float64)
    constant = torch.full((1, 1, 8, 8), 3.0, dtype=torch.float64)
    low, high = block_dct_image(constant, 8, 2)
    assert low[..., 0, 0].item() == pytest.approx(3.0 * 8)  # DC of an orthonormal 8×8 DCT
    assert high.abs().max().item() < 1e-12
    checker = (basis[7].unsqueeze(1) * basis[7].unsqueeze(0)).reshape(1, 1, 8, 8)  # coeff (7, 7)
    low, high = block_dct_image(checker, 8, 2)
    assert high[..., 0, 0].item() == pytest.approx(1.0)
    assert low.abs().max().item() < 1e-12


def test_sequence_blocks_run_along_time_per_channel():
    x = np.random.default_rng(1).normal(size=(2, 17, 3))  # T = 17 -> 2 blocks, last step cropped
    low, high = block_dct_sequence(torch.from_numpy(x), 8, 2)
    assert low.shape == (2, 2, 2, 3)
    reference = scipy.fft.dct(x[:, :16].reshape(2, 2, 8, 3), axis=2, norm="ortho")
    np.testing.assert_allclose(low.numpy(), reference[:, :, :2], atol=1e-10)
    np.testing.assert_allclose(high.numpy(), reference[:, :, [7, 6]], atol=1e-10)


def test_short_axis_is_one_block_with_quarter_band():
    x = torch.randn(3, 5, dtype=torch.float64)  # d = 5 < P = 8 -> one block, band max(1, 5 // 4)
    low, high = block_dct_vector(x, 8, 2)
    reference = scipy.fft.dct(x.numpy(), norm="ortho", axis=-1)
    assert low.shape == (3, 1, 1)
    np.testing.assert_allclose(low[:, 0, 0].numpy(), reference[:, 0], atol=1e-10)
    np.testing.assert_allclose(high[:, 0, 0].numpy(), reference[:, 4], atol=1e-10)


def test_block_steps_marks_blocks_with_padding():
    steps = torch.ones(2, 16, dtype=torch.bool)
    steps[1, 12:] = False
    assert block_steps(steps, 8).tolist() == [[True, True], [True, False]]
