"""The hf_image backbone on tiny random ViT / ResNet / CLIP vision models saved in temporary
folders: contract checks, preprocessing against transformers' own (Pillow) image processors,
pooled outputs against the model itself, image paths and arrays, absent images, bad files,
freezing, and saving without the folder (in a new process)."""

import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
from fusekit_transformers import HFImageBackbone
from PIL import Image

from conftest import REGISTER
from fusekit import FusionClassifier, Modalities
from fusekit.plugin import InputFileError
from fusekit.testing import checks_for


def _images(folder, n, sizes=((40, 24), (24, 40), (32, 32))):
    """``n`` RGB files of varying sizes; brighter for class 1. Returns (paths, y)."""
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    y = np.arange(n) % 2
    paths = []
    for i, label in enumerate(y):
        width, height = sizes[i % len(sizes)]
        pixels = rng.integers(0, 120, (height, width, 3)) + 100 * label
        path = folder / f"{i}.png"
        Image.fromarray(pixels.astype(np.uint8)).save(path)
        paths.append(str(path))
    return paths, y


def _frame(tmp_path, n=16):
    paths, y = _images(tmp_path / "images", n)
    rng = np.random.default_rng(1)
    return pd.DataFrame({"tab__a": rng.normal(size=n), "img__path": paths}), y


def _model(path, **kwargs):
    params = {
        "backbone": {"tab": "mlp", "img": "hf_image"},
        "backbone__img__path": str(path),
        "max_epochs": 2,
        "random_state": 0,
    }
    return FusionClassifier(**{**params, **kwargs})


@pytest.mark.parametrize("model", ["vit2", "resnet2"])
@pytest.mark.parametrize("check", checks_for("backbone"), ids=lambda c: c.__name__)
def test_contract(request, model, check):
    check("backbone", HFImageBackbone(path=str(request.getfixturevalue(model))))


def _processed(model, X):
    return model._prepare(X, reset=False).arrays["img"]


@pytest.mark.parametrize(
    "processor",
    [
        ("ViTImageProcessorPil", {"size": {"height": 32, "width": 32}}),
        (
            "CLIPImageProcessorPil",
            {"size": {"shortest_edge": 32}, "crop_size": {"height": 32, "width": 32}},
        ),
        ("ConvNextImageProcessorPil", {"size": {"shortest_edge": 32}, "crop_pct": 0.875}),
    ],
    ids=["vit", "clip", "convnext"],
)
def test_files_are_preprocessed_as_transformers_processors_do(vit, tmp_path, processor):
    """Resize (exact, shortest edge, crop_pct), crop, rescale and normalise, against the
    processor class itself on the same non-square files."""
    import transformers

    name, settings = processor
    reference = getattr(transformers, name)(
        image_mean=[0.4, 0.5, 0.6], image_std=[0.2, 0.3, 0.25], **settings
    )
    folder = shutil.copytree(vit, tmp_path / "model")
    reference.save_pretrained(folder)
    X, y = _frame(tmp_path, n=6)
    model = _model(folder, max_epochs=1).fit(X, y)
    opened = [Image.open(p).convert("RGB") for p in X["img__path"]]
    expected = reference(opened, return_tensors="np")["pixel_values"]
    assert _processed(model, X).shape == expected.shape == (6, 3, 32, 32)
    np.testing.assert_allclose(_processed(model, X), expected, atol=1e-5)


def test_pooled_output_is_the_models_own(vit, tmp_path):
    from transformers import AutoModel, ViTImageProcessorPil

    X, y = _frame(tmp_path, n=6)
    model = _model(vit, max_epochs=1).fit(X, y)
    features = model.module_.encode(model._batch(model._prepare(X, reset=False)))["img"]
    processor = ViTImageProcessorPil.from_pretrained(vit)
    pixels = processor([Image.open(p) for p in X["img__path"]], return_tensors="pt")
    reference = AutoModel.from_pretrained(vit, local_files_only=True).eval()
    with torch.no_grad():
        expected = reference(**pixels).pooler_output
    torch.testing.assert_close(features.detach(), expected, rtol=1e-4, atol=1e-5)


def test_arrays_are_resized_and_normalised(resnet):
    """(n, C, H, W) pixels in [0, 1]: bilinear resize to 32 x 32, then (x - 0.5) / 0.25."""
    rng = np.random.default_rng(0)
    images = rng.random((8, 3, 16, 16)).astype(np.float32)
    y = np.arange(8) % 2
    X = Modalities(tab=rng.normal(size=(8, 2)), img=images)
    model = _model(resnet, max_epochs=1).fit(X, y)
    resized = torch.nn.functional.interpolate(
        torch.from_numpy(images), size=(32, 32), mode="bilinear", antialias=True
    )
    expected = ((resized - 0.5) / 0.25).numpy()
    np.testing.assert_allclose(_processed(model, X), expected, atol=1e-5)
    assert np.isfinite(model.predict_proba(X)).all()


def test_absent_images_and_bad_files(vit, tmp_path):
    X, y = _frame(tmp_path)
    X.loc[2, "img__path"] = None
    X.loc[5, "img__path"] = np.nan
    model = _model(vit).fit(X, y)
    prepared = model._prepare(X, reset=False)
    assert not prepared.mask[2, 1] and not prepared.mask[5, 1] and prepared.mask[0, 1]
    assert not prepared.arrays["img"][2].any()
    assert np.isfinite(model.predict_proba(X)).all()
    broken = tmp_path / "broken.png"
    broken.write_text("not an image")
    for bad in (str(tmp_path / "missing.png"), str(broken)):
        X.loc[7, "img__path"] = bad
        with pytest.raises(InputFileError, match=rf"modality 'img' \(row 7 of X\).*{bad}"):
            model.predict(X)
    X["img__path"] = X["img__path"].astype(object)
    X.loc[7, "img__path"] = 3.0
    with pytest.raises(ValueError, match="modality 'img' holds image file paths, but row 7"):
        model.predict(X)


def test_freeze_the_resnet_but_its_last_stage(resnet):
    rng = np.random.default_rng(0)
    X = Modalities(tab=rng.normal(size=(8, 2)), img=rng.random((8, 3, 32, 32)))
    model = _model(resnet, backbone__img__freeze=1).fit(X, np.arange(8) % 2)
    encoder = model.module_.backbones["img"].model
    names = {n for n, _ in encoder.named_parameters()}
    trained = {n for n, p in encoder.named_parameters() if p.requires_grad}
    # ResNet's longest block list is encoder.stages (two stages); nothing follows it
    assert trained == {n for n in names if n.startswith("encoder.stages.1.")} and trained
    frozen = _model(resnet).fit(X, np.arange(8) % 2)
    assert frozen.module_.backbones["img"].frozen
    with pytest.raises(ValueError, match="pooling='cls' needs a transformer"):
        _model(resnet, backbone__img__pooling="cls").fit(X, np.arange(8) % 2)


def test_a_clip_vision_tower_with_mean_pooling(tmp_path):
    from transformers import CLIPImageProcessorPil, CLIPVisionConfig, CLIPVisionModel

    config = CLIPVisionConfig(
        image_size=32,
        patch_size=8,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=20,
    )
    folder = tmp_path / "clip"
    CLIPVisionModel(config).save_pretrained(folder)
    CLIPImageProcessorPil(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    ).save_pretrained(folder)
    X, y = _frame(tmp_path, n=6)
    model = _model(folder, backbone__img__pooling="mean", max_epochs=1).fit(X, y)
    hidden = model.module_.encode(model._batch(model._prepare(X, reset=False)))["img"]
    assert hidden.shape == (6, 16)
    reference = CLIPVisionModel.from_pretrained(folder).eval()
    pixels = torch.from_numpy(_processed(model, X))
    with torch.no_grad():
        expected = reference(pixel_values=pixels).last_hidden_state.mean(dim=1)
    torch.testing.assert_close(hidden.detach(), expected, rtol=1e-4, atol=1e-5)


def test_a_saved_model_predicts_the_same_after_the_folder_is_deleted(vit, tmp_path):
    folder = shutil.copytree(vit, tmp_path / "vit")
    X, y = _frame(tmp_path)
    X.loc[1, "img__path"] = None
    model = _model(folder, backbone__img__freeze=False).fit(X, y)
    path = model.save(tmp_path / "model.safetensors")
    shutil.rmtree(folder)
    X.to_csv(tmp_path / "X.csv", index=False)
    np.save(tmp_path / "expected.npy", model.predict_proba(X))
    script = REGISTER + textwrap.dedent(
        f"""
        import numpy as np, pandas as pd, fusekit
        model = fusekit.load({str(path)!r})
        X = pd.read_csv({str(tmp_path / "X.csv")!r})
        np.save({str(tmp_path / "got.npy")!r}, model.predict_proba(X))
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=240)
    np.testing.assert_allclose(np.load(tmp_path / "got.npy"), np.load(tmp_path / "expected.npy"))


def test_bf16_predictions_stay_within_bfloat16_rounding_of_float32(vit, tmp_path):
    """As for hf_text: the same fitted weights predict under precision="bf16" within bfloat16's
    rounding of float32 (the core's sweep over every component leaves hf_image out)."""
    X, y = _frame(tmp_path)
    model = _model(vit).fit(X, y)
    proba = model.predict_proba(X)
    half = model.set_params(precision="bf16").predict_proba(X)
    assert np.isfinite(half).all()
    np.testing.assert_allclose(half, proba, atol=0.05)
