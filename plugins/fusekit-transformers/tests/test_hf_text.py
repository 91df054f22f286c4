"""The hf_text backbone on a tiny random BERT saved in a temporary folder: contract checks,
pooled vectors against transformers' own tokenizer and model, padded tokens, absent rows,
freezing, backbone learning rates, the cache id form of ``path``, saving without the folder
(in a new process), GridSearchCV over ``freeze`` and the bench on a text+tabular file."""

import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
from fusekit_transformers import RECOMMENDED_LR, HFTextBackbone, param_groups
from fusekit_transformers.hf_models import ModelFolderError
from sklearn.model_selection import GridSearchCV

from conftest import REGISTER
from fusekit import FusionClassifier
from fusekit.testing import checks_for


def _frame(n=24):
    rng = np.random.default_rng(0)
    y = np.arange(n) % 2
    text = [("a great fun film" if t else "dull awful") for t in y]
    return pd.DataFrame({"tab__a": rng.normal(size=n), "text__review": text}), y


def _model(path, **kwargs):
    params = {
        "backbone": {"tab": "mlp", "text": "hf_text"},
        "backbone__text__path": None if path is None else str(path),
        "backbone__text__max_length": 16,
        "max_epochs": 2,
        "random_state": 0,
    }
    return FusionClassifier(**{**params, **kwargs})


def _reference(folder, texts, pooling):
    """transformers' own tokenizer (padding to the longest) and model, pooled by hand."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModel.from_pretrained(folder, local_files_only=True).eval()
    batch = tokenizer(texts, padding=True, truncation=True, max_length=16, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    if pooling == "cls":
        return hidden[:, 0].numpy()
    mask = batch["attention_mask"].unsqueeze(-1).float()
    return ((hidden * mask).sum(1) / mask.sum(1)).numpy()


@pytest.mark.parametrize("form", [{}, {"pooling": "mean", "freeze": 1}], ids=["frozen", "last1"])
@pytest.mark.parametrize("check", checks_for("backbone"), ids=lambda c: c.__name__)
def test_contract(bert, form, check):
    check("backbone", HFTextBackbone(path=str(bert), max_length=8, **form))


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_pooled_vectors_match_transformers_and_ignore_padding(bert, pooling):
    """Texts of different lengths (so the short ones are padded) give the vector transformers
    computes for them, and the same vector as each text encoded alone."""
    texts = ["a great fun film great fun", "dull", "awful film"]
    X = pd.DataFrame({"tab__a": [0.0, 1.0, 2.0], "text__t": texts})
    model = _model(bert, backbone__text__pooling=pooling, max_epochs=1).fit(X, [0, 1, 0])
    prepared = model._prepare(X, reset=False)
    assert prepared.steps["text"].sum(axis=1).tolist() == [8, 3, 4]  # [CLS] words [SEP]
    features = model.module_.encode(model._batch(prepared))["text"].detach().numpy()
    np.testing.assert_allclose(features, _reference(bert, texts, pooling), rtol=1e-4, atol=1e-5)
    for row, text in enumerate(texts):
        alone = _reference(bert, [text], pooling)[0]
        np.testing.assert_allclose(features[row], alone, rtol=1e-4, atol=1e-5)


def test_long_texts_are_cut_keeping_the_special_tokens(bert):
    from transformers import AutoTokenizer

    long = " ".join(["great"] * 40)
    X = pd.DataFrame({"tab__a": [0.0, 1.0], "text__t": [long, "fun"]})
    model = _model(bert, max_epochs=1).fit(X, [0, 1])
    ids = model._prepare(X, reset=False).arrays["text"][0]
    tokenizer = AutoTokenizer.from_pretrained(bert, local_files_only=True)
    expected = tokenizer(long, truncation=True, max_length=16)["input_ids"]
    assert ids.tolist() == expected and expected[-1] == tokenizer.sep_token_id


def test_absent_rows_and_rows_without_tokens_stay_finite(bert):
    X, y = _frame()
    X.loc[0, "text__review"] = None
    model = _model(bert).fit(X, y)
    prepared = model._prepare(X, reset=False)
    assert not prepared.mask[0, 1] and not prepared.steps["text"][0].any()
    backbone = model.module_.backbones["text"]
    ids = torch.zeros(2, 16, dtype=torch.long)
    no_steps = torch.zeros(2, 16, dtype=torch.bool)
    for pooling in ("cls", "mean"):
        backbone.pooling = pooling
        assert torch.equal(backbone.encode(ids, no_steps), torch.zeros(2, 32))
    assert np.isfinite(model.predict_proba(X)).all()


def _trainable(model):
    backbone = model.module_.backbones["text"].model
    return {name for name, p in backbone.named_parameters() if p.requires_grad}


def test_freeze_all_none_or_all_but_the_last_layers(bert):
    X, y = _frame()
    frozen = _model(bert).fit(X, y)
    assert _trainable(frozen) == set() and frozen.module_.backbones["text"].frozen
    tuned = _model(bert, backbone__text__freeze=False).fit(X, y)
    names = {name for name, _ in tuned.module_.backbones["text"].model.named_parameters()}
    assert _trainable(tuned) == names and not tuned.module_.backbones["text"].frozen
    last = _model(bert, backbone__text__freeze=1, lr=0.05).fit(X, y)
    # BERT's stack is encoder.layer.{0,1}; its pooler (unused) is dropped
    assert not any(n.startswith("pooler.") for n in names)
    expected = {n for n in names if n.startswith("encoder.layer.1.")}
    assert _trainable(last) == expected
    from transformers import AutoModel

    pretrained = AutoModel.from_pretrained(bert, local_files_only=True).state_dict()
    weights = last.module_.backbones["text"].model.state_dict()
    for name in names:
        same = torch.equal(weights[name], pretrained[name])
        assert same == (name not in expected), name
    with pytest.raises(ValueError, match="freeze=3 asks to train the last 3 layers, but the"):
        _model(bert, backbone__text__freeze=3).fit(X, y)
    with pytest.raises(ValueError, match="'freeze' parameter of backbone of 'text' hf_text"):
        _model(bert, backbone__text__freeze="some").fit(X, y)


def test_param_groups_give_the_encoder_its_learning_rate(bert):
    X, y = _frame()
    model = _model(
        bert, backbone__text__freeze=False, optimizer__param_groups=param_groups("text")
    ).fit(X, y)
    groups = model.net_.optimizer_.param_groups
    encoder = {id(p) for p in model.module_.backbones["text"].model.parameters()}
    slow = [g for g in groups if g["lr"] == RECOMMENDED_LR == 2e-5]
    assert len(slow) == 1 and {id(p) for p in slow[0]["params"]} == encoder
    rest = {id(p) for g in groups if g is not slow[0] for p in g["params"]}
    assert rest and not rest & encoder
    assert all(g["lr"] == model.lr_ for g in groups if g is not slow[0])


def test_a_cache_id_is_found_offline(bert, tmp_path, monkeypatch):
    import huggingface_hub.constants

    snapshot = tmp_path / "hub" / "models--tiny--bert" / "snapshots" / "0123abcd"
    shutil.copytree(bert, snapshot)
    (tmp_path / "hub" / "models--tiny--bert" / "refs").mkdir()
    (tmp_path / "hub" / "models--tiny--bert" / "refs" / "main").write_text("0123abcd")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    X, y = _frame()
    by_id = _model("tiny/bert", max_epochs=1).fit(X, y)
    by_folder = _model(bert, max_epochs=1).fit(X, y)
    np.testing.assert_allclose(by_id.predict_proba(X), by_folder.predict_proba(X))
    with pytest.raises(ModelFolderError, match="'tiny/absent' is neither a folder nor a model"):
        _model("tiny/absent").fit(X, y)


def test_bad_model_folders_are_refused(bert, tmp_path):
    X, y = _frame()
    with pytest.raises(ValueError, match="hf_text backbone: path is required"):
        _model(None).fit(X, y)
    remote = tmp_path / "remote"
    shutil.copytree(bert, remote)
    config = json.loads((remote / "config.json").read_text())
    (remote / "config.json").write_text(json.dumps({**config, "auto_map": {"AutoModel": "x.Y"}}))
    with pytest.raises(ValueError, match="asks for remote code"):
        _model(remote).fit(X, y)
    (remote / "config.json").write_text(json.dumps(config))
    (remote / "tokenizer.json").unlink()
    with pytest.raises(ModelFolderError, match="has no tokenizer.json"):
        _model(remote).fit(X, y)


def test_a_saved_model_predicts_the_same_after_the_folder_is_deleted(bert, tmp_path):
    folder = shutil.copytree(bert, tmp_path / "bert")
    X, y = _frame()
    X.loc[3, "text__review"] = None
    model = _model(folder, backbone__text__freeze=1, backbone__text__pooling="mean").fit(X, y)
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


def test_a_config_altered_in_the_model_file_is_refused(bert):
    from fusekit.plugin import EncoderState

    X, y = _frame()
    state = _model(bert, max_epochs=1).fit(X, y).input_encoders_["text"].state()
    files = {**state.files, "config.json": b'{"model_type": "bert"}'}
    fresh = HFTextBackbone(path=str(bert), max_length=16).input_encoder()
    with pytest.raises(ValueError, match="config.json is missing or altered"):
        fresh.load_state(EncoderState(config=state.config, files=files))


def test_grid_search_over_freeze(bert):
    X, y = _frame(n=32)
    search = GridSearchCV(
        _model(bert, max_epochs=1),
        {"backbone__text__freeze": [True, False, 1]},
        cv=2,
        error_score="raise",
    )
    search.fit(X, y)
    assert len(search.cv_results_["params"]) == 3
    assert search.best_params_["backbone__text__freeze"] in (True, False, 1)


def test_bench_on_a_text_and_tabular_file(bert, tmp_path, capsys):
    from fusekit.cli import main

    X, y = _frame(n=20)
    X["label"] = y
    X.to_csv(tmp_path / "reviews.csv", index=False)
    arguments = ["--fusion", "concat", "--weighting", "none", "--calibration", "none"]
    code = main(
        [
            "bench",
            "--data",
            str(tmp_path / "reviews.csv"),
            "--target",
            "label",
            *arguments,
            "--backbone",
            "mlp",
            "--param",
            'backbone={"text": "hf_text"}',
            "--param",
            f"backbone__text__path={bert}",
            "--param",
            "backbone__text__max_length=16",
            "--folds",
            "2",
            "--max-epochs",
            "1",
            "--out",
            str(tmp_path / "out"),
            "--quiet",
        ]
    )
    results = pd.read_csv(tmp_path / "out" / "results.csv")
    errors = results.filter(like="error").to_dict("records")
    assert code == 0 and (results["status"] == "ok").all(), errors
    assert len(results) == 2


def test_a_frozen_encoder_runs_once_per_row_per_fit(bert, monkeypatch):
    """freeze=True: each training row goes through the encoder once in a fit of 4 epochs (the
    frozen cache); fine-tuned, once per epoch."""
    from transformers import BertModel

    seen = []
    forward = BertModel.forward

    def counting(self, input_ids=None, **kwargs):
        seen.append(len(input_ids))
        return forward(self, input_ids=input_ids, **kwargs)

    monkeypatch.setattr(BertModel, "forward", counting)
    X, y = _frame(n=24)
    for freeze, passes in ((True, 1), (False, 4)):
        seen.clear()
        _model(bert, backbone__text__freeze=freeze, max_epochs=4, train_split=None).fit(X, y)
        assert sum(seen) == passes * len(X), (freeze, seen)


@pytest.mark.parametrize("freeze", [True, False])
def test_bf16_predictions_stay_within_bfloat16_rounding_of_float32(bert, freeze):
    """The float32 rule of the contract (docs/plugins.md): the same fitted weights predict under
    precision="bf16" within bfloat16's rounding of float32 (the core's sweep over every
    component leaves hf_text out: it needs a model folder)."""
    X, y = _frame()
    model = _model(bert, backbone__text__freeze=freeze, backbone__text__pooling="mean").fit(X, y)
    proba = model.predict_proba(X)
    half = model.set_params(precision="bf16").predict_proba(X)
    assert np.isfinite(half).all()
    np.testing.assert_allclose(half, proba, atol=0.05)
