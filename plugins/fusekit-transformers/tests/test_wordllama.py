"""The wordllama backbone: contract checks, its tokenizer and mean pooling against the wordllama
package's own embedding, frozen and fine-tuned training, padded tokens, and models that load in
a new process without reading the package."""

import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
from fusekit_transformers import WordLlamaBackbone
from fusekit_transformers.package_files import TOKENIZER, package_file
from sklearn.model_selection import GridSearchCV

import fusekit
from conftest import REGISTER
from fusekit import FusionClassifier
from fusekit.testing import parametrize_with_checks

SMALL = {"backbone__text__dim": 64, "backbone__text__max_length": 16}


def _frame(n=24):
    rng = np.random.default_rng(0)
    y = np.arange(n) % 2
    text = [("a wonderful, delightful film" if t else "a terrible, boring mess") for t in y]
    return pd.DataFrame({"tab__a": rng.normal(size=n), "text__review": text}), y


def _model(**kwargs):
    params = {"backbone": {"tab": "mlp", "text": "wordllama"}, "max_epochs": 3, "random_state": 0}
    return FusionClassifier(**{**params, **SMALL, **kwargs})


@parametrize_with_checks(
    "backbone",
    [
        WordLlamaBackbone(dim=64, max_length=8),
        WordLlamaBackbone(dim=64, max_length=8, freeze=False, projection=8),
    ],
)
def test_contract(plugin, check):
    check(plugin)


def test_ids_and_pooled_vector_match_the_wordllama_package():
    """The package's own tokenizer gives the ids; its WordLlama.embed (numpy, mean of the token
    rows) gives the vector our frozen backbone computes at 256 dimensions."""
    from fusekit_transformers.package_files import TENSOR, WEIGHTS
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer
    from wordllama.inference import WordLlamaInference

    texts = ["The quick brown fox.", "fusekit fuses modalities"]
    X = pd.DataFrame({"tab__a": [0.0, 1.0], "text__t": texts})
    model = _model(backbone__text__dim=256, backbone__text__max_length=32, max_epochs=1)
    model.fit(X, [0, 1])
    reference_ids = (
        Tokenizer.from_file(str(package_file(TOKENIZER)))
        .encode(texts[0], add_special_tokens=False)
        .ids
    )
    prepared = model._prepare(X, reset=False)
    assert prepared.arrays["text"][0, : len(reference_ids)].tolist() == reference_ids
    assert prepared.steps["text"][0].sum() == len(reference_ids)
    features = model.module_.encode(model._batch(prepared))["text"].numpy()
    # the package's own inference (its loader looks for the tokenizer elsewhere in 0.4)
    matrix = load_file(str(package_file(WEIGHTS)))[TENSOR]
    tokenizer = Tokenizer.from_file(str(package_file(TOKENIZER)))
    expected = WordLlamaInference(matrix, tokenizer).embed(texts, norm=False)
    np.testing.assert_allclose(features, expected, rtol=1e-3, atol=1e-4)


def test_frozen_by_default_and_fine_tuned_on_request():
    X, y = _frame()
    frozen = _model().fit(X, y)
    backbone = frozen.module_.backbones["text"]
    assert "embedding" in dict(backbone.named_buffers())
    assert not list(backbone.parameters())  # nothing of it in the optimiser
    torch.testing.assert_close(
        backbone.embedding, _model(max_epochs=1).fit(X, y).module_.backbones["text"].embedding
    )
    tuned = _model(backbone__text__freeze=False, lr=0.1).fit(X, y)
    weight = tuned.module_.backbones["text"].embedding
    assert isinstance(weight, torch.nn.Parameter) and weight.dtype == torch.float32
    assert not torch.equal(weight.half(), backbone.embedding)


def test_a_text_without_tokens_stays_finite_and_blank_can_mean_missing():
    X, y = _frame()
    X.loc[0, "text__review"] = ""
    model = _model().fit(X, y)
    prepared = model._prepare(X, reset=False)
    assert not prepared.steps["text"][0].any() and prepared.mask[0].all()
    features = model.module_.encode(model._batch(prepared))["text"]
    assert torch.equal(features[0], torch.zeros(64))
    assert np.isfinite(model.predict_proba(X)).all()
    missing = _model(backbone__text__empty_is_missing=True).fit(X, y)
    assert not missing._prepare(X, reset=False).mask[0, 1]


def test_grid_search_over_freeze():
    X, y = _frame(n=32)
    search = GridSearchCV(
        _model(max_epochs=1), {"backbone__text__freeze": [True, False]}, cv=2, error_score="raise"
    )
    search.fit(X, y)
    assert search.best_params_["backbone__text__freeze"] in (True, False)


def test_a_saved_model_predicts_the_same_in_a_new_process_without_the_package_files(tmp_path):
    X, y = _frame()
    model = _model(backbone__text__freeze=False, backbone__text__projection=4).fit(X, y)
    path = model.save(tmp_path / "model.safetensors")
    X.to_csv(tmp_path / "X.csv", index=False)
    np.save(tmp_path / "expected.npy", model.predict_proba(X))
    script = REGISTER + textwrap.dedent(
        f"""
        import numpy as np, pandas as pd
        import fusekit, fusekit_transformers.package_files as files
        import fusekit_transformers.wordllama_backbone as backbone

        def refuse(relative):
            raise AssertionError(f"the loaded model read the package file {{relative}}")

        files.package_file = backbone.package_file = refuse
        model = fusekit.load({str(path)!r})
        X = pd.read_csv({str(tmp_path / "X.csv")!r})
        np.save({str(tmp_path / "got.npy")!r}, model.predict_proba(X))
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=180)
    np.testing.assert_array_equal(np.load(tmp_path / "got.npy"), np.load(tmp_path / "expected.npy"))


def test_a_tokenizer_file_altered_in_the_model_is_refused():
    from fusekit.plugin import EncoderState

    X, y = _frame()
    encoder = _model(max_epochs=1).fit(X, y).input_encoders_["text"]
    state = encoder.state()
    altered = EncoderState(config=state.config, files={"tokenizer.json": b"{}"})
    fresh = WordLlamaBackbone(dim=64, max_length=16).input_encoder()
    with pytest.raises(ValueError, match="tokenizer.json is missing or altered"):
        fresh.load_state(altered)


def test_dim_beyond_the_shipped_matrix_is_refused():
    X, y = _frame()
    with pytest.raises(ValueError, match=r"'dim' parameter .* in the range \[1, 256\]"):
        _model(backbone__text__dim=512).fit(X, y)


def test_fusekit_load_finds_the_plugin_and_round_trips(tmp_path):
    X, y = _frame()
    model = _model().fit(X, y)
    loaded = fusekit.load(model.save(tmp_path / "m.safetensors"))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
