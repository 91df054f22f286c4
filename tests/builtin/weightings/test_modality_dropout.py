"""modality_dropout (ModDrop): mask'_im = mask_im · 1[u_im ≥ p], at least one kept (keep_one)."""

import pytest
import torch
from weightings_helpers import build_network, make_batch

from fusekit.builtin.modality_dropout import ModalityDropout

SHAPES = {"a": (2,), "b": (3,), "c": (1,)}


def _batch(n, mask=None):
    return make_batch(shapes=SHAPES, n=n, mask=mask)


def test_drop_rate_is_p_for_each_present_modality():
    # keep_one=False: each present (i, m) is dropped independently with probability p = 0.3.
    # 3 · 20000 Bernoulli(0.3) draws: std of the rate sqrt(0.3·0.7 / 60000) = 0.0019; allow 0.01
    torch.manual_seed(0)
    mask = torch.ones(20000, 3, dtype=torch.bool)
    mask[:5000, 1] = False  # already absent: must stay absent
    dropped = ModalityDropout(p=0.3, keep_one=False).perturb(_batch(20000, mask)).mask
    assert not dropped[:5000, 1].any()
    rate = 1 - dropped[mask].float().mean().item()
    assert abs(rate - 0.3) < 0.01


def test_p_zero_keeps_everything_and_p_one_drops_everything_without_keep_one():
    mask = torch.tensor([[True, False, True], [True, True, True], [False, False, False]])
    batch = _batch(3, mask)
    assert torch.equal(ModalityDropout(p=0.0).perturb(batch).mask, mask)
    emptied = ModalityDropout(p=1.0, keep_one=False).perturb(batch)
    assert not emptied.mask.any()
    for value in emptied.features.values():  # dropped features are zeroed
        assert torch.equal(value, torch.zeros_like(value))


def test_keep_one_keeps_exactly_one_present_modality_chosen_uniformly():
    # p = 1 drops everything, so keep_one restores one of the present modalities, each with
    # probability 1/3 when all three are present (std sqrt(2/9 / 30000) = 0.0024; allow 0.015)
    torch.manual_seed(1)
    n = 30000
    mask = torch.ones(n, 3, dtype=torch.bool)
    mask[:10, :] = torch.tensor([False, True, False])  # only b present: b must be the one kept
    mask[10:20, :] = False  # nothing present: stays empty
    kept = ModalityDropout(p=1.0, keep_one=True).perturb(_batch(n, mask)).mask
    assert torch.equal(kept[:10], mask[:10])
    assert not kept[10:20].any()
    assert (kept[20:].sum(dim=1) == 1).all()
    shares = kept[20:].float().mean(dim=0)
    torch.testing.assert_close(shares, torch.full((3,), 1 / 3), atol=0.015, rtol=0)


def test_keep_one_leaves_samples_that_kept_something_alone():
    torch.manual_seed(2)
    mask = torch.ones(4000, 3, dtype=torch.bool)
    without = ModalityDropout(p=0.5, keep_one=False)
    torch.manual_seed(2)
    reference = without.perturb(_batch(4000, mask)).mask  # same first draw u
    torch.manual_seed(2)
    kept = ModalityDropout(p=0.5, keep_one=True).perturb(_batch(4000, mask)).mask
    survived = reference.any(dim=1)
    assert torch.equal(kept[survived], reference[survived])
    assert (kept[~survived].sum(dim=1) == 1).all()  # P(all three dropped) = 1/8: ~500 rows


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_p_outside_the_unit_interval_is_rejected(p):
    with pytest.raises(
        ValueError,
        match=r"The 'p' parameter of weighting modality_dropout must be a float in the range "
        r"\[0.0, 1.0\]",
    ):
        build_network(ModalityDropout(p=p))


def test_default_p_is_a_quarter_and_u_equal_to_p_keeps_the_modality(monkeypatch):
    """mask' = mask · 1[u ≥ p] with the default p = 0.25: u = 0.25 keeps, u just below drops."""
    draws = torch.tensor([[0.25, 0.2499, 0.9]])
    monkeypatch.setattr(torch, "rand", lambda *args, **kwargs: draws.clone())
    kept = ModalityDropout().perturb(_batch(1)).mask
    assert torch.equal(kept, torch.tensor([[True, False, True]]))


def test_keep_one_is_on_by_default():
    torch.manual_seed(0)
    dropout = ModalityDropout()
    dropout.p = 1.0
    kept = dropout.perturb(_batch(50)).mask
    assert (kept.sum(dim=1) == 1).all()
