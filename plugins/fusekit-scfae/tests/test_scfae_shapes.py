"""Shapes, split points, cycle dependencies, parameter counts (Sec. 4, App. A Tables 12-13)."""

import pytest
import torch
from fusekit_scfae import SCFAEFusion, split_point
from fusekit_scfae.blocks import swiglu_hidden
from scfae_helpers import build_fusion, random_features, run

from fusekit import BuildSpec


def test_shapes_with_unequal_widths_keep_each_modality_width():
    widths = {"img": 16, "vid": 40}  # ActivityNet's 128-vs-4096 widths, scaled down
    fusion = build_fusion(widths)
    fused, output = run(fusion, random_features(widths, batch=4))
    diag = output.diagnostics["scfae"]
    assert fusion.width_ == fused.shape[1] == (16 + 16) + (40 + 16)  # Σ_m (l_m + l*)
    assert fusion.expand["img"].linear.out_features == 32
    assert fusion.expand["vid"].linear.out_features == 80
    assert diag["z_shared"]["img"].shape == diag["z_shared"]["vid"].shape == (4, 16)
    assert diag["z_specific"]["img"].shape == (4, 16)
    assert diag["z_specific"]["vid"].shape == (4, 40)
    assert diag["z"]["img"].shape == (4, 32) and diag["z"]["vid"].shape == (4, 56)
    for m, w in widths.items():
        assert diag["recon"][m].shape == (4, w)


@pytest.mark.parametrize("n", [1, 2, 4])
@pytest.mark.parametrize("b", [0.25, 0.5, 0.75])
def test_every_n_b_in_the_paper_grid_builds_and_trains_one_step(n, b):
    widths = {"a": 6, "b": 9}
    fusion = build_fusion(widths, n=n, b=b)
    for m, w in widths.items():
        cut = split_point(n, b, w)
        assert cut == int(b * n * w + 0.5)
        assert fusion.shared[m].linear.in_features == cut
        assert fusion.specific[m].linear.in_features == n * w - cut  # the slices partition Ẑ
    optimizer = torch.optim.SGD(fusion.parameters(), lr=0.1)
    fused, output = run(fusion, random_features(widths))
    (fused.pow(2).mean() + output.aux_losses["scfae_recon"]).backward()
    optimizer.step()
    assert all(torch.isfinite(p).all() for p in fusion.parameters())


def test_split_without_room_for_both_slices_names_the_modality():
    with pytest.raises(ValueError, match=r"modality 'tiny'.*width 1"):
        build_fusion({"big": 8, "tiny": 1}, n=1, b=0.5)


def test_a_modality_order_that_misses_a_modality_is_refused_at_build():
    # each parameter alone: its declaration (test_scfae_declared_parameters.py)
    with pytest.raises(ValueError, match=r"modality_order=\['a', 'x'\] must list each modality"):
        build_fusion({"a": 4, "b": 5}, modality_order=["a", "x"])


def test_one_modality_is_refused():
    with pytest.raises(ValueError, match="needs at least 2 modalities"):
        build_fusion({"a": 4})


def _changes(fusion, widths, perturbed, key):
    base = random_features(widths, batch=5)
    moved = {m: v + (1.0 if m == perturbed else 0.0) for m, v in base.items()}
    _, before = run(fusion, base)
    _, after = run(fusion, moved)
    return {
        m: not torch.equal(before.diagnostics["scfae"][key][m], after.diagnostics["scfae"][key][m])
        for m in widths
    }


def test_three_modalities_take_the_shared_part_of_the_next_in_the_cycle():
    widths = {"t": 5, "a": 4, "v": 6}  # given order differs from the cycle (a, v, t)
    fusion = build_fusion(widths, modality_order=["a", "v", "t"])
    partner = {"a": "v", "v": "t", "t": "a"}  # Eq. 4: m takes k = (m + 1) mod M: a <- v <- t <- a
    for perturbed in widths:
        shared_changed = _changes(fusion, widths, perturbed, "z_shared")
        specific_changed = _changes(fusion, widths, perturbed, "z_specific")
        for m in widths:
            assert shared_changed[m] == (partner[m] == perturbed), (perturbed, m)
            assert specific_changed[m] == (m == perturbed), (perturbed, m)


def test_two_modalities_swap_their_shared_parts():
    widths = {"a": 4, "b": 7}
    fusion = build_fusion(widths)
    assert _changes(fusion, widths, "a", "z_shared") == {"a": False, "b": True}
    assert _changes(fusion, widths, "b", "z_shared") == {"a": True, "b": False}


def _count(dims: dict[str, int], **params) -> int:
    with torch.device("meta"):
        fusion = SCFAEFusion(**params)
        fusion.build(
            BuildSpec(
                names=tuple(dims),
                input_shapes={m: (d,) for m, d in dims.items()},
                feature_shapes={m: (d,) for m, d in dims.items()},
                n_outputs=2,
                task="classification",
            )
        )
    return sum(p.numel() for p in fusion.parameters())


def _table12(dims: dict[str, int], n: int = 2, b: float = 0.5) -> int:
    """Table 12's per-modality formulas with integer SwiGLU widths and output-size biases."""
    star = min(dims.values())

    def swiglu(d: int) -> int:
        h = swiglu_hidden(d)
        return 3 * d * h + 2 * h + d

    total = 0
    for d in dims.values():
        cut = split_point(n, b, d)
        total += swiglu(d) + (n * d * d + n * d) + (cut * star + star)
        total += (n * d - cut) * d + d + d * (d + star) + d + swiglu(d + star)
    return total


def test_parameter_count_matches_table_12_formulas_for_unequal_widths():
    assert _count({"a": 16, "b": 40}) == _table12({"a": 16, "b": 40})
    assert _count({"a": 7, "b": 12, "c": 9}, n=4, b=0.25) == _table12(
        {"a": 7, "b": 12, "c": 9}, n=4, b=0.25
    )


def _table12_real(dims: dict[str, int], n: int = 2, b: float = 0.5) -> float:
    """Table 12 (App. A) with the paper's real SwiGLU width h = 8d/3, per modality l, l* = min l:

    SwiGLU pre 8l² + 19/3·l; P_expand n·l² + n·l; P_shared s·l* + l*; P_specific (n·l − s)·l + l;
    P_recon l·(l + l*) + l; SwiGLU post 8(l + l*)² + 19/3·(l + l*); s = b·n·l (biases of the
    output size, as nn.Linear has them). 512/512, n = 2: per modality 2 100 394.67 + 525 312 +
    262 656 + 262 656 + 524 800 + 8 395 093.33 = 12 070 912, so 24 141 824 = Table 13's 24.14M.
    """
    star = min(dims.values())
    total = 0.0
    for l in dims.values():
        s, wide = b * n * l, l + star
        total += 8 * l**2 + 19 / 3 * l + n * l * l + n * l + s * star + star
        total += (n * l - s) * l + l + l * wide + l + 8 * wide**2 + 19 / 3 * wide
    return total


def test_table_13_count_of_the_fakeavceleb_setting():
    assert _table12_real({"audio": 512, "visual": 512}) == pytest.approx(24_141_824)  # 24.14M


@pytest.mark.parametrize(
    ("dims", "n", "tolerance"),
    [
        ({"audio": 512, "visual": 512}, 2, 10_000),  # integer h: 24 136 700 to 24 145 924
        ({"audio": 512, "visual": 512}, 1, 10_000),  # 23.09M
        ({"audio": 512, "visual": 512}, 4, 10_000),  # 26.24M
        ({"image": 128, "video": 128}, 2, 1_000),  # 1 513 472 (ActivityNet 128-128)
        ({"image": 128, "video": 4096}, 2, 100_000),  # 345.9M (ActivityNet 4096-128)
        ({"a": 512, "t": 1024, "v": 1024}, 2, 100_000),  # 77.1M (CMU-MOSEI widths)
    ],
)
def test_parameter_counts_match_table_12_with_real_swiglu_widths(dims, n, tolerance):
    """The module's count differs from Table 12's real-width count only by integer SwiGLU widths."""
    assert abs(_count(dims, n=n) - _table12_real(dims, n=n)) <= tolerance


def test_numpy_hyperparameters_from_a_search_grid_are_accepted():
    import numpy as np

    fusion = build_fusion({"a": 4, "b": 6}, n=np.int64(2), b=np.float64(0.25), lam=np.float32(1))
    assert fusion.expand["b"].linear.out_features == 12 and fusion.splits["b"] == 3
