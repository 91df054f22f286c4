"""Text and categorical modalities: grouping, absent rows, padded tokens, per-modality
standardisation, encoders saved and loaded, the bench, GridSearchCV, Freezer and param groups."""

import json
import re
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.model_selection import GridSearchCV
from sklearn.utils import murmurhash3_32
from skorch.callbacks import Freezer

import fusekit
from fusekit import FusionClassifier, Modalities
from fusekit.plugin import Backbone, EncodedInput, EncoderState, InputEncoder

BACKBONES = {"tab": "mlp", "text": "hashed_text", "cat": "categorical"}
SMALL = {"backbone__text__n_buckets": 64, "backbone__text__dim": 4}


def _frame(n=24, seed=0):
    """Tabular, text and categorical columns, grouped by their ``modality__`` prefixes."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    text = np.array([("great fun" if label else "dull awful") for label in y], dtype=object)
    frame = pd.DataFrame(
        {
            "tab__a": rng.normal(size=n) + y,
            "tab__b": rng.normal(size=n) * 10 + 3,
            "text__review": text,
            "cat__colour": np.where(y == 1, "red", "blue").astype(object),
            "cat__size": rng.choice(["S", "M", "L"], n).astype(object),
        }
    )
    return frame, y


def _model(**kwargs):
    params = {"backbone": dict(BACKBONES), "max_epochs": 2, "random_state": 0, **SMALL}
    return FusionClassifier(**{**params, **kwargs})


def test_dataframe_columns_group_into_text_and_categorical_modalities():
    X, y = _frame()
    model = _model().fit(X, y)
    assert model.layout_.names == ("tab", "text", "cat")
    assert model.layout_.kinds == {"text": "text", "cat": "categorical"}
    assert model.modalities_ == {"tab": (2,), "text": (1,), "cat": (2,)}
    prepared = model._prepare(X, reset=False)
    assert prepared.arrays["text"].dtype == np.int64 and prepared.arrays["text"].shape == (24, 256)
    assert prepared.arrays["cat"].dtype == np.int64 and prepared.arrays["cat"].shape == (24, 2)
    assert np.isfinite(model.predict_proba(X)).all()


def test_modalities_selects_text_and_category_columns_by_name():
    X, y = _frame()
    X.columns = ["a", "b", "review", "colour", "size"]
    spec = {"tab": ["a", "b"], "text": ["review"], "cat": ["colour", "size"]}
    model = _model(modalities=spec).fit(X, y)
    assert model.layout_.kinds == {"text": "text", "cat": "categorical"}


def test_a_mapping_of_strings_works_too():
    X, y = _frame()
    mapping = Modalities(
        tab=X[["tab__a", "tab__b"]].to_numpy(),
        text=X["text__review"].to_numpy(),  # (n,) strings
        cat=X[["cat__colour", "cat__size"]].to_numpy(),
    )
    model = _model().fit(mapping, y)
    assert model.layout_.kinds == {"text": "text", "cat": "categorical"}
    assert model.predict(mapping[:5]).shape == (5,)


def test_strings_for_a_backbone_that_reads_numbers_name_the_backbones_that_read_them():
    X, y = _frame()
    with pytest.raises(ValueError) as caught:
        FusionClassifier(max_epochs=1).fit(X, y)
    message = str(caught.value)
    assert "modality 'text' holds strings" in message and "'mlp'" in message
    assert re.search(r"'text': \[[^\]]*'hashed_text'", message)  # and any installed plugin's
    assert "'categorical': ['categorical']" in message


def test_strings_at_predict_where_fit_saw_numbers_are_refused():
    rng = np.random.default_rng(0)
    X = Modalities(a=rng.normal(size=(10, 2)), b=rng.normal(size=(10, 2)))
    model = FusionClassifier(max_epochs=1, random_state=0).fit(X, np.arange(10) % 2)
    words = np.array([["x", "y"]] * 10, dtype=object)
    with pytest.raises(ValueError, match="modality 'b' holds strings, but the model was fitted"):
        model.predict(Modalities(a=X["a"], b=words))


def test_missing_text_and_all_missing_categories_are_absent_rows():
    X, y = _frame()
    X.loc[0, "text__review"] = None
    X.loc[1, "text__review"] = np.nan
    X.loc[2, "text__review"] = ""  # a text without words: present, no real token
    X.loc[3, ["cat__colour", "cat__size"]] = [None, np.nan]
    X.loc[4, "cat__colour"] = None  # one missing cell: the reserved code, the row present
    model = _model().fit(X, y)
    prepared = model._prepare(X, reset=False)
    text, cat = model.layout_.names.index("text"), model.layout_.names.index("cat")
    assert prepared.mask[:, text].tolist() == [False, False] + [True] * 22
    assert prepared.mask[:, cat].tolist() == [True] * 3 + [False] + [True] * 20
    assert not prepared.steps["text"][:3].any()  # absent, absent, empty: no real step
    assert prepared.steps["text"][3].sum() == 3  # "dull awful": 2 words + 1 bigram
    assert prepared.arrays["cat"][4, 0] == 0 and prepared.arrays["cat"][3].tolist() == [0, 0]
    assert np.isfinite(model.predict_proba(X)).all()


def test_a_blank_text_is_absent_where_the_backbone_says_so():
    X, y = _frame()
    X.loc[2, "text__review"] = "  "
    model = _model(backbone__text__empty_is_missing=True).fit(X, y)
    prepared = model._prepare(X, reset=False)
    assert not prepared.mask[2, model.layout_.names.index("text")]


def test_hashed_ids_are_murmurhash_buckets_of_the_words_and_bigrams():
    """Worked by hand: "Good movie!" -> tokens good, movie; bigram "good movie"; each hashed
    with MurmurHash3 (seed 0, positive) into 64 buckets, shifted by one (0 pads)."""
    X = pd.DataFrame({"text__t": ["Good movie!", "a"], "tab__x": [0.0, 1.0]})
    model = FusionClassifier(
        backbone={"text": "hashed_text", "tab": "mlp"}, max_epochs=1, random_state=0, **SMALL
    )
    model.fit(X, [0, 1])
    ids = model._prepare(X, reset=False).arrays["text"]
    expected = [murmurhash3_32(g, seed=0, positive=True) % 64 + 1 for g in ("good", "movie")]
    expected.append(murmurhash3_32("good movie", seed=0, positive=True) % 64 + 1)
    assert ids[0, :3].tolist() == expected and not ids[0, 3:].any()
    assert not ids[1].any()  # "a": a one-letter word is no token (scikit-learn's pattern)


def test_unknown_categories_at_predict_take_the_reserved_code():
    X, y = _frame()
    model = _model().fit(X, y)
    new = X.head(2).copy()
    new["cat__colour"] = ["green", "red"]
    codes = model._prepare(new, reset=False).arrays["cat"]
    # categories in order of first appearance: blue (row 0) -> 1, red (row 1) -> 2
    assert codes[:, 0].tolist() == [0, 2]
    assert np.isfinite(model.predict_proba(new)).all()


class _WordVocabulary(InputEncoder):
    """Whitespace words -> ids 1..V (0 pads and stands for unknown words), length 4."""

    kind = "text"

    def __init__(self):
        self.words = []

    def fit(self, values):
        self.words = sorted({w for text in values for w in text.split()})
        return self

    @property
    def shape(self):
        return (4,)

    def transform(self, values):
        index = {w: i + 1 for i, w in enumerate(self.words)}
        ids = np.zeros((len(values), 4), dtype=np.int64)
        for row, text in enumerate(values):
            found = [index.get(w, 0) for w in text.split()][:4]
            ids[row, : len(found)] = found
        return EncodedInput(values=ids, steps=ids > 0)

    def state(self):
        return EncoderState(config={"words": self.words})

    def load_state(self, state):
        self.words = list(state.config["words"])


class _MeanOfTokens(Backbone):
    """Mean of word embeddings over the real steps only (a masked mean)."""

    input_kinds = ("text",)
    seen_steps = []

    def __init__(self, dim=3):
        super().__init__()
        self.dim = dim

    def input_encoder(self):
        return _WordVocabulary()

    def build(self, input_shape):
        self.embedding = torch.nn.Embedding(len(self.input_encoder_.words) + 1, self.dim)
        return (self.dim,)

    def encode(self, x, steps):
        _MeanOfTokens.seen_steps.append(steps)
        weights = steps.unsqueeze(-1).float()
        return (self.embedding(x) * weights).sum(1) / weights.sum(1).clamp(min=1.0)


def test_a_mean_pooling_backbone_gets_the_step_mask_and_an_all_padding_row_stays_finite():
    texts = np.array(["red apple", "green pear", "", "red red pear", "blue"], dtype=object)
    X = Modalities(words=texts, x=np.arange(10.0).reshape(5, 2))
    _MeanOfTokens.seen_steps.clear()
    model = FusionClassifier(backbone={"words": _MeanOfTokens, "x": "mlp"}, max_epochs=2)
    model.fit(X, [0, 1, 0, 1, 0])
    steps = _MeanOfTokens.seen_steps[-1]
    assert steps is not None and steps.dtype == torch.bool
    assert model.input_encoders_["words"].words == ["apple", "blue", "green", "pear", "red"]
    new = Modalities(words=np.array(["", "purple"], dtype=object), x=np.zeros((2, 2)))
    assert model._prepare(new, reset=False).steps["words"].tolist() == [[False] * 4] * 2
    assert np.isfinite(model.predict_proba(new)).all()
    features = model.module_.encode(model._batch(model._prepare(new, reset=False)))
    assert torch.equal(features["words"], torch.zeros(2, 3))  # no real token: the zero mean


def test_per_modality_standardisation_matches_numpy_and_never_touches_codes():
    X, y = _frame()
    rng = np.random.default_rng(1)
    X["raw__c"] = rng.normal(size=len(X)) * 5 + 2
    model = _model(
        backbone={**BACKBONES, "raw": "mlp"}, standardize={"tab": True, "raw": False}
    ).fit(X, y)
    assert sorted(model.standardizer_.means) == ["tab"]
    table = X[["tab__a", "tab__b"]].to_numpy()
    np.testing.assert_allclose(model.standardizer_.means["tab"][0], table.mean(0), rtol=1e-6)
    np.testing.assert_allclose(model.standardizer_.scales["tab"][0], table.std(0), rtol=1e-6)
    plain = model._prepare(X, reset=False, standardize=False)
    scaled = model._prepare(X, reset=False)
    expected = (table - table.mean(0)) / table.std(0)
    np.testing.assert_allclose(scaled.arrays["tab"], expected, rtol=1e-5, atol=1e-6)
    for name in ("text", "cat", "raw"):
        np.testing.assert_array_equal(scaled.arrays[name], plain.arrays[name])


def test_standardize_true_skips_text_and_categories():
    X, y = _frame()
    model = _model().fit(X, y)
    assert sorted(model.standardizer_.means) == ["tab"]


@pytest.mark.parametrize(
    ("standardize", "message"),
    [
        ({"nope": True}, r"standardize names modalities \['nope'\]"),
        ({"text": True}, r"asks to standardise \['text'\], which are \['text'\]"),
    ],
)
def test_standardize_dict_is_checked(standardize, message):
    X, y = _frame()
    with pytest.raises(ValueError, match=message):
        _model(standardize=standardize).fit(X, y)


def test_saved_encoders_give_identical_predictions_in_a_new_process(tmp_path):
    X, y = _frame()
    X.loc[0, "text__review"] = None
    model = _model(standardize={"tab": True}).fit(X, y)
    path = model.save(tmp_path / "model.safetensors")
    X.to_pickle(tmp_path / "X.pkl")  # safe: written by this test
    np.save(tmp_path / "expected.npy", model.predict_proba(X))
    script = textwrap.dedent(
        f"""
        import numpy as np, pandas as pd, fusekit
        model = fusekit.load({str(path)!r})
        X = pd.read_pickle({str(tmp_path / "X.pkl")!r})  # safe: written by the test
        np.save({str(tmp_path / "got.npy")!r}, model.predict_proba(X))
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    np.testing.assert_array_equal(np.load(tmp_path / "got.npy"), np.load(tmp_path / "expected.npy"))
    loaded = fusekit.load(path)
    first_seen = [list(dict.fromkeys(X[c].dropna())) for c in ("cat__colour", "cat__size")]
    assert loaded.input_encoders_["cat"].categories_ == first_seen
    assert first_seen[0] == ["blue", "red"]  # row 0 is class 0: blue
    assert sorted(loaded.standardizer_.means) == ["tab"]


def test_model_file_records_kinds_and_encoder_state(tmp_path):
    from safetensors import safe_open

    X, y = _frame()
    path = _model().fit(X, y).save(tmp_path / "m.safetensors")
    with safe_open(str(path), framework="pt") as handle:
        document = json.loads(handle.metadata()["fusekit"])
    assert document["format_version"] == 4
    assert document["layout"]["kinds"] == {"cat": "categorical", "text": "text"}
    assert document["encoders"]["text"]["config"] == {
        "max_tokens": 256,
        "n_buckets": 64,
        "ngram_range": [1, 2],
    }
    assert document["encoders"]["cat"]["config"]["categories"] == [
        list(dict.fromkeys(X[c])) for c in ("cat__colour", "cat__size")
    ]
    assert document["standardized_modalities"] == ["tab"]


def test_grid_search_over_a_text_backbone_parameter():
    X, y = _frame(n=32)
    search = GridSearchCV(
        _model(max_epochs=1), {"backbone__text__dim": [2, 4]}, cv=2, error_score="raise"
    )
    search.fit(X, y)
    assert search.best_params_["backbone__text__dim"] in (2, 4)


def _text_weights(model):
    return {k: v.clone() for k, v in model.module_.backbones["text"].state_dict().items()}


def test_freezer_keeps_the_text_backbone_fixed():
    X, y = _frame()
    torch.manual_seed(0)
    frozen = _model(callbacks=[Freezer("backbones.text.*")]).fit(X, y)
    initial = _model(max_epochs=1, lr=1e-12).fit(X, y)  # same seed: the initial weights, ~
    for name, weight in _text_weights(frozen).items():
        torch.testing.assert_close(weight, _text_weights(initial)[name], rtol=0, atol=1e-9)
    trained_tab = frozen.module_.backbones["tab"].state_dict()
    untrained_tab = initial.module_.backbones["tab"].state_dict()
    assert any(not torch.equal(trained_tab[k], untrained_tab[k]) for k in trained_tab)


def test_param_groups_give_the_text_backbone_its_own_learning_rate():
    X, y = _frame()
    model = _model(optimizer__param_groups=[("backbones.text.*", {"lr": 0.0})]).fit(X, y)
    reference = _model(max_epochs=1, lr=1e-12).fit(X, y)
    for name, weight in _text_weights(model).items():
        torch.testing.assert_close(weight, _text_weights(reference)[name], rtol=0, atol=1e-9)
    groups = model.net_.optimizer_.param_groups
    assert [g["lr"] for g in groups][0] == 0.0 and groups[-1]["lr"] == model.lr_


def test_bench_on_a_text_and_tabular_file(tmp_path, capsys):
    from fusekit.cli import main

    X, y = _frame(n=20)
    X["label"] = y
    X.to_csv(tmp_path / "reviews.csv", index=False)
    code = main(
        [
            "bench",
            "--data",
            str(tmp_path / "reviews.csv"),
            "--target",
            "label",
            "--fusion",
            "concat",
            "--weighting",
            "none",
            "--calibration",
            "none",
            "--backbone",
            "mlp",
            "--param",
            'backbone={"text": "hashed_text", "cat": "categorical"}',
            "--param",
            "backbone__text__n_buckets=32",
            "--folds",
            "2",
            "--max-epochs",
            "1",
            "--out",
            str(tmp_path / "out"),
            "--quiet",
        ]
    )
    assert code == 0, capsys.readouterr().err
    results = pd.read_csv(tmp_path / "out" / "results.csv")
    assert (results["status"] == "ok").all() and len(results) == 2  # no reference rows
