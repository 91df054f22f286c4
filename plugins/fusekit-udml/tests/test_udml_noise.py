"""UDML's perturbation noise (Sec. 3.2.1, Eq. 8/10; spec seed-002 §4.2, §6) on known draws.

``draw_levels`` picks σ_i^m uniformly from P_σ per sample and modality and leaves a sample clean on
every modality with probability ``clean_fraction`` (u < clean_fraction, u ~ U[0, 1)), absent
modalities at 0. ``corrupt`` adds ε = ξ · scale · σ · s_m (ξ ~ N(0, I)) on the real steps only and,
at the top level, replaces the input by mean_m + ξ · s_m. The random draws are replaced by known
values (``torch.randint`` / ``torch.rand`` patched) or replayed from the same seed, and every
expected value is written out here from the spec.
"""

import pytest
import torch
from fusekit_udml.noise import corrupt, draw_levels

LEVELS = torch.tensor([0.0, 2.0, 5.0, 10.0])


@pytest.fixture
def known_draws(monkeypatch):
    """``torch.randint`` -> fixed level indices, ``torch.rand`` -> fixed per-sample u."""
    draws = {
        "picks": torch.tensor([[1, 3], [2, 2], [3, 1], [1, 0], [2, 3]]),
        "u": torch.tensor([[0.9], [0.2], [0.25], [0.2499], [0.6]]),
    }

    def randint(high, size, **kwargs):
        assert high == len(LEVELS) and tuple(size) == tuple(draws["picks"].shape)
        return draws["picks"].clone()

    def rand(*size, **kwargs):
        assert size == (5, 1)
        return draws["u"].clone()

    monkeypatch.setattr(torch, "randint", randint)
    monkeypatch.setattr(torch, "rand", rand)
    return draws


def test_levels_are_the_picked_values_zero_for_clean_samples_and_absent_modalities(known_draws):
    """σ = P_σ[pick]; u < 0.25 (rows 1 and 3: u = 0.2, 0.2499) clean; u = 0.25 exactly is not."""
    mask = torch.tensor([[1, 1], [1, 1], [1, 1], [1, 1], [0, 1]], dtype=torch.bool)
    levels = draw_levels(mask, LEVELS, clean_fraction=0.25)
    expected = torch.tensor(
        [
            [2.0, 10.0],  # u = 0.9: noisy, LEVELS[1], LEVELS[3]
            [0.0, 0.0],  # u = 0.2 < 0.25: clean on every modality
            [10.0, 2.0],  # u = 0.25, not < 0.25: noisy
            [0.0, 0.0],  # u = 0.2499: clean
            [0.0, 10.0],  # modality 0 absent: 0; modality 1 LEVELS[3]
        ]
    )
    torch.testing.assert_close(levels, expected, rtol=0, atol=0)


def test_clean_fraction_zero_keeps_every_drawn_level_and_one_cleans_every_sample(known_draws):
    mask = torch.ones(5, 2, dtype=torch.bool)
    torch.testing.assert_close(draw_levels(mask, LEVELS, 0.0), LEVELS[known_draws["picks"]])
    torch.testing.assert_close(draw_levels(mask, LEVELS, 1.0), torch.zeros(5, 2))


def test_level_draw_is_uniform_over_the_levels_and_clean_with_the_given_share():
    """Unpatched: P(σ = σ_k) = (1 − c) / K + c·[σ_k = 0]; 40000 draws, 5 σ of slack at most."""
    torch.manual_seed(0)
    n, clean_fraction = 20000, 0.3
    levels = draw_levels(torch.ones(n, 2, dtype=torch.bool), LEVELS, clean_fraction)
    clean = (levels == 0).all(dim=1).double().mean().item()
    p_clean = clean_fraction + (1 - clean_fraction) / len(LEVELS) ** 2  # clean, or 0 on both
    assert abs(clean - p_clean) < 5 * (p_clean * (1 - p_clean) / n) ** 0.5
    for k, value in enumerate(LEVELS.tolist()):
        share = (levels == value).double().mean().item()
        p = (1 - clean_fraction) / len(LEVELS) + (clean_fraction if k == 0 else 0.0)
        assert abs(share - p) < 5 * (p * (1 - p) / (2 * n)) ** 0.5


def _unit_draw(x: torch.Tensor, seed: int) -> torch.Tensor:
    """The ξ ~ N(0, I) that ``corrupt`` draws after ``torch.manual_seed(seed)``."""
    torch.manual_seed(seed)
    return torch.randn(x.shape, dtype=x.dtype)


def test_vector_noise_is_level_times_scale_times_the_feature_std():
    x = torch.arange(12, dtype=torch.float64).reshape(4, 3) - 5.0
    level = torch.tensor([0.0, 1.0, 2.0, 5.0], dtype=torch.float64)
    mean = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    std = torch.tensor([1.0, 0.5, 3.0], dtype=torch.float64)
    xi = _unit_draw(x, 3)
    torch.manual_seed(3)
    out = corrupt(x, level, 0.2, mean, std, full_corruption_level=None)
    expected = x + xi * std * 0.2 * level[:, None]  # row 0 (σ = 0) unchanged
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    assert torch.equal(out[0], x[0])


def test_top_level_replaces_the_input_by_pure_noise_and_padded_steps_stay_zero():
    """(B, T, D) with padded steps: rows at σ ≥ top become mean + ξ s on real steps, 0 elsewhere."""
    steps = torch.tensor([[1, 1, 1], [1, 1, 0], [1, 0, 0], [1, 1, 0]], dtype=torch.bool)
    x = torch.linspace(-2.0, 3.0, 24, dtype=torch.float64).reshape(4, 3, 2) * steps[..., None]
    level = torch.tensor([10.0, 10.0, 3.0, 0.0], dtype=torch.float64)  # top level 10
    mean = torch.tensor([1.5, -0.5], dtype=torch.float64)
    std = torch.tensor([2.0, 0.25], dtype=torch.float64)
    xi = _unit_draw(x, 7)
    torch.manual_seed(7)
    out = corrupt(x, level, 0.5, mean, std, full_corruption_level=10.0, steps=steps)
    real = steps[..., None].to(x.dtype)
    expected = torch.stack(
        [
            (mean + xi[0] * std) * real[0],  # pure noise on the real steps
            (mean + xi[1] * std) * real[1],
            x[2] + xi[2] * std * 0.5 * 3.0 * real[2],  # ordinary noise, real steps only
            x[3],  # clean
        ]
    )
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    assert torch.isfinite(out).all() and (out * (1 - real) == 0).all()


def test_image_noise_broadcasts_one_level_per_sample_over_channels_and_space():
    x = torch.randn(3, 2, 2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    level = torch.tensor([4.0, 0.0, 1.0], dtype=torch.float64)
    mean, std = torch.zeros(2, 2, 3, dtype=torch.float64), torch.full((2, 2, 3), 0.5).double()
    xi = _unit_draw(x, 11)
    torch.manual_seed(11)
    out = corrupt(x, level, 0.1, mean, std, full_corruption_level=4.0)
    expected = torch.stack([xi[0] * 0.5, x[1], x[2] + xi[2] * 0.5 * 0.1 * 1.0])
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
