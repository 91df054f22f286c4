"""Image backbones with their own input encoder (kind ``"image"``): arrays and file paths go
through it, absent images are masked, unreadable files name the modality and the row, the
encoder's float32 output is never standardised, and a broken promise is a named error."""

import numpy as np
import pytest
import torch

from fusekit import FusionClassifier, Modalities
from fusekit.plugin import Backbone, EncodedInput, InputEncoder, InputFileError

SHAPE = (1, 2, 2)


class _NpyImages(InputEncoder):
    """``.npy`` files or ``(n, 1, 2, 2)`` arrays -> twice the pixels (the "preprocessing")."""

    kind = "image"
    dtype = np.float32

    @property
    def shape(self):
        return SHAPE

    def transform(self, values):
        if values.dtype != object:
            return EncodedInput(values=(2 * values).astype(self.dtype))
        out = np.empty((len(values), *SHAPE), dtype=self.dtype)
        for row, path in enumerate(values):
            try:
                out[row] = 2 * np.load(path)
            except FileNotFoundError:
                raise InputFileError(f"no image file {path}", file=path, row=row) from None
        return EncodedInput(values=out)


class _Flatten(Backbone):
    input_kinds = ("image",)

    def input_encoder(self):
        return _NpyImages()

    def build(self, input_shape):
        self.linear = torch.nn.Linear(int(np.prod(input_shape)), 2)
        return (2,)

    def forward(self, x):
        return self.linear(x.flatten(1))


def _model(**kwargs):
    return FusionClassifier(backbone={"img": _Flatten, "tab": "mlp"}, max_epochs=1, **kwargs)


def _images(n=6):
    return np.arange(n * 4, dtype=np.float32).reshape(n, *SHAPE)


def test_arrays_go_through_the_encoder_and_are_not_standardised():
    images = _images()
    X = Modalities(img=images, tab=np.random.default_rng(0).normal(size=(6, 2)))
    model = _model(standardize=True).fit(X, np.arange(6) % 2)
    assert model.layout_.kinds == {"img": "image"}
    prepared = model._prepare(X, reset=False)
    np.testing.assert_array_equal(prepared.arrays["img"], 2 * images)  # encoded, not z-scored
    assert prepared.arrays["img"].dtype == np.float32
    assert model.standardizer_.means.keys() == {"tab"}


def test_file_paths_with_absent_rows(tmp_path):
    images = _images()
    paths = []
    for i, image in enumerate(images):
        np.save(tmp_path / f"{i}.npy", image)
        paths.append(str(tmp_path / f"{i}.npy"))
    paths[2] = None
    X = Modalities(img=np.array(paths, dtype=object), tab=np.zeros((6, 2)))
    model = _model().fit(X, np.arange(6) % 2)
    prepared = model._prepare(X, reset=False)
    assert prepared.mask[:, 0].tolist() == [True, True, False, True, True, True]
    expected = 2 * images
    expected[2] = 0
    np.testing.assert_array_equal(prepared.arrays["img"], expected)
    paths[4] = str(tmp_path / "gone.npy")
    X = Modalities(img=np.array(paths, dtype=object), tab=np.zeros((6, 2)))
    with pytest.raises(InputFileError, match=r"modality .img. \(row 4 of X\): no image file"):
        model.predict(X)


def test_all_nan_images_are_absent_and_partial_nan_is_refused():
    images = _images()
    images[1] = np.nan
    X = Modalities(img=images, tab=np.zeros((6, 2)))
    model = _model().fit(X, np.arange(6) % 2)
    assert model._prepare(X, reset=False).mask[:, 0].tolist() == [True, False] + [True] * 4
    images[3, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="'img'"):
        model.predict(Modalities(img=images, tab=np.zeros((6, 2))))


def test_images_of_another_rank_and_a_wrong_dtype_are_named_errors(monkeypatch):
    X = Modalities(img=np.zeros((6, 4)), tab=np.zeros((6, 2)))
    with pytest.raises(ValueError, match=r"modality 'img'.*reads images, as \(n, C, H, W\)"):
        _model().fit(X, np.arange(6) % 2)
    monkeypatch.setattr(_NpyImages, "dtype", np.float64)
    X = Modalities(img=_images(), tab=np.zeros((6, 2)))
    with pytest.raises(RuntimeError, match="float64 values .* promised float32"):
        _model().fit(X, np.arange(6) % 2)
