"""The sequence and image backbones: shapes, padded-step masking, input checks, and use through
the estimator with one backbone per modality."""

import numpy as np
import pytest
import torch

from fusekit import FusionClassifier, Modalities
from fusekit.builtin.cnn2d_backbone import CNN2dBackbone
from fusekit.builtin.conv1d_backbone import Conv1dBackbone
from fusekit.builtin.gru_backbone import GRUBackbone
from fusekit.builtin.transformer_backbone import TransformerBackbone

SEQUENCE_BACKBONES = {
    "conv1d": lambda: Conv1dBackbone(hidden=6, depth=2),
    "gru": lambda: GRUBackbone(hidden=5),
    "gru_bidirectional": lambda: GRUBackbone(hidden=5, bidirectional=True, layers=2),
    "transformer": lambda: TransformerBackbone(dim=8, heads=2, layers=2),
}


def _built(factory, shape):
    torch.manual_seed(0)
    backbone = factory()
    out_shape = backbone.build(shape)
    return backbone.eval(), out_shape


@pytest.mark.parametrize("name", sorted(SEQUENCE_BACKBONES))
def test_sequence_backbones_keep_the_time_axis(name):
    backbone, out_shape = _built(SEQUENCE_BACKBONES[name], (7, 3))
    out = backbone.encode(torch.randn(4, 7, 3), None)
    assert out.shape == (4, *out_shape) and out_shape[0] == 7


@pytest.mark.parametrize("name", sorted(SEQUENCE_BACKBONES))
def test_padded_steps_never_change_real_steps(name):
    backbone, _ = _built(SEQUENCE_BACKBONES[name], (7, 3))
    x = torch.randn(4, 7, 3)
    steps = torch.ones(4, 7, dtype=torch.bool)
    steps[0, 5:] = False  # trailing padding
    steps[1, 2] = False  # a hole
    steps[2, :6] = True
    steps[2, 6] = False
    garbage = torch.where(steps.unsqueeze(-1), x, 50 * torch.randn(4, 7, 3))
    reference = backbone.encode(x * steps.unsqueeze(-1), steps)
    changed = backbone.encode(garbage, steps)
    torch.testing.assert_close(changed, reference, rtol=1e-5, atol=1e-5)
    assert (changed[~steps] == 0).all()


@pytest.mark.parametrize("name", sorted(SEQUENCE_BACKBONES))
def test_trailing_padding_equals_the_unpadded_sequence(name):
    backbone, _ = _built(SEQUENCE_BACKBONES[name], (7, 3))
    x = torch.randn(1, 7, 3)
    steps = torch.tensor([[True] * 4 + [False] * 3])
    padded = backbone.encode(x, steps)[:, :4]
    alone = backbone.encode(x[:, :4], None)
    torch.testing.assert_close(padded, alone, rtol=1e-5, atol=1e-5)


def test_gru_skips_a_hole_as_if_the_step_was_not_there():
    backbone, _ = _built(SEQUENCE_BACKBONES["gru"], (5, 2))
    x = torch.randn(1, 5, 2)
    steps = torch.tensor([[True, False, True, True, True]])
    with_hole = backbone.encode(x, steps)[0, [0, 2, 3, 4]]
    compact = backbone.encode(x[:, [0, 2, 3, 4]], None)[0]
    torch.testing.assert_close(with_hole, compact, rtol=1e-5, atol=1e-5)


def test_transformer_uses_positions():
    backbone, _ = _built(SEQUENCE_BACKBONES["transformer"], (4, 3))
    x = torch.randn(1, 1, 3).expand(1, 4, 3)  # same vector at every step
    out = backbone.encode(x, None)
    assert not torch.allclose(out[0, 0], out[0, 1])


def test_cnn2d_pools_an_image_to_a_vector():
    backbone, out_shape = _built(lambda: CNN2dBackbone(channels=5, depth=3), (2, 9, 7))
    assert out_shape == (5,)
    assert backbone(torch.randn(3, 2, 9, 7)).shape == (3, 5)


@pytest.mark.parametrize(
    ("backbone", "shape", "message"),
    [
        (Conv1dBackbone(), (5,), r"conv1d backbone: needs sequence input of shape \(T, d\)"),
        (Conv1dBackbone(kernel_size=4), (5, 2), "kernel_size must be odd"),
        (GRUBackbone(), (2, 4, 4), r"gru backbone: needs sequence input"),
        (TransformerBackbone(dim=10, heads=3), (5, 2), "dim must be divisible by heads"),
        (CNN2dBackbone(), (5, 2), r"cnn2d backbone: needs image input of shape \(C, H, W\)"),
    ],
)
def test_bad_shapes_and_parameters_raise_clear_errors(backbone, shape, message):
    with pytest.raises(ValueError, match=message):
        backbone.build(shape)


@pytest.mark.parametrize("fusion", ["attention", "crossmodal"])
def test_one_backbone_per_modality_through_the_estimator(fusion, train_seed):
    rng = np.random.default_rng(train_seed)
    n = 64
    y = rng.integers(0, 2, n)
    sign = (2 * y - 1)[:, None, None]
    gru_seq = rng.normal(size=(n, 5, 3)) + sign
    gru_seq[: n // 2, 3:] = np.nan  # ragged: padded steps
    tf_seq = rng.normal(size=(n, 6, 2)) + sign
    tf_seq[::3, 4:] = np.nan
    conv_seq = rng.normal(size=(n, 4, 2)) + sign
    conv_seq[::5] = np.nan  # absent modality
    image = rng.normal(size=(n, 1, 6, 6)) + sign[..., None]
    X = Modalities(g=gru_seq, t=tf_seq, c=conv_seq, i=image, v=rng.normal(size=(n, 3)))
    model = FusionClassifier(
        backbone={"g": "gru", "t": "transformer", "c": "conv1d", "i": "cnn2d", "v": "mlp"},
        fusion=fusion,
        backbone__g__bidirectional=True,
        backbone__t__dim=8,
        max_epochs=4,
        lr=0.02,
        random_state=train_seed,
    ).fit(X, y)
    proba = model.predict_proba(X)
    assert proba.shape == (n, 2) and np.isfinite(proba).all()
    assert model.score(X, y) > 0.8  # 0.89-1.00 over seeds 0-5
    assert model.module_.spec.feature_shapes["g"] == (5, 128)
