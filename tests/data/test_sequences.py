"""Sequences of any length: ragged rows, channels-first layouts, other lengths at predict."""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.model_selection import cross_val_score
from torch import nn

from fusekit import FusionClassifier, Modalities
from fusekit.plugin import Backbone, ModalityBatch
from fusekit.sequences import ChannelsFirstWarning, looks_channels_first

WIDTH = 3


def _ragged(n=30, low=7, high=26, seed=0, width=WIDTH):
    """Rows ``(T_i, width)`` of lengths in [low, high]; the class shifts the mean."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    lengths = rng.integers(low, high + 1, n)
    lengths[0] = high  # the longest length is there
    rows = [rng.normal(size=(t, width)).astype(np.float32) + y[i] for i, t in enumerate(lengths)]
    return rows, y


def _hand_padded(rows, length=None):
    """The NaN padding loop users had to write (independent of fusekit)."""
    length = length or max(len(r) for r in rows)
    padded = np.full((len(rows), length, rows[0].shape[1]), np.nan, dtype=np.float32)
    for i, row in enumerate(rows):
        padded[i, : len(row)] = row
    return padded


def _model(backbone="gru", **params):
    settings = {"max_epochs": 2, "batch_size": 8, "random_state": 0, "shuffle": False}
    return FusionClassifier(backbone=backbone, **{**settings, **params})


class FlattenBackbone(Backbone):
    """A backbone sized by T: flattens (T, d) into one vector (needs a fixed length)."""

    input_kinds = ("sequence",)

    def build(self, input_shape):
        self.linear = nn.Linear(input_shape[0] * input_shape[1], 4)
        return (4,)

    def forward(self, x):
        return self.linear(x.flatten(start_dim=1))


@pytest.mark.parametrize("backbone", ["gru", "conv1d", "transformer", "mlp"])
def test_ragged_rows_train_and_predict_as_the_hand_padded_array(backbone):
    rows, y = _ragged()
    ragged = _model(backbone).fit(Modalities(s=rows), y)
    padded = _model(backbone).fit({"s": _hand_padded(rows)}, y)
    np.testing.assert_array_equal(
        ragged.predict_proba(Modalities(s=rows)), padded.predict_proba({"s": _hand_padded(rows)})
    )
    assert ragged.modalities_ == {"s": (26, WIDTH)}


def test_list_object_array_and_series_are_the_same_rows():
    rows, y = _ragged(n=12)
    expected = _model().fit({"s": _hand_padded(rows)}, y).predict_proba({"s": _hand_padded(rows)})
    objects = np.empty(len(rows), dtype=object)
    for i, row in enumerate(rows):
        objects[i] = row
    for form in (rows, tuple(rows), objects, pd.Series(rows, index=np.arange(100, 112))):
        model = _model().fit({"s": form}, y)
        np.testing.assert_array_equal(model.predict_proba({"s": form}), expected)


def test_modalities_of_ragged_rows_index_and_cross_validate():
    rows, y = _ragged(n=20)
    X = Modalities(s=rows, t=np.arange(20.0)[:, None])
    assert len(X) == 20 and X[[0, 3]]["s"][1] is rows[3]
    scores = cross_val_score(_model({"s": "gru", "t": "mlp"}, max_epochs=1), X, y, cv=2)
    assert scores.shape == (2,)


def test_none_and_empty_rows_are_absent():
    rows, y = _ragged(n=12)
    rows[2], rows[5] = None, np.zeros((0, WIDTH), dtype=np.float32)
    X = Modalities(s=rows, t=np.ones((12, 1)))
    backbones = {"s": "gru", "t": "mlp"}
    prepared = _model(backbones)._prepare(X, reset=True)
    np.testing.assert_array_equal(prepared.mask[:, 0], [i not in (2, 5) for i in range(12)])
    by_nan = _hand_padded(
        [r if r is not None and len(r) else np.full((1, WIDTH), np.nan) for r in rows]
    )
    expected = _model(backbones).fit({"s": by_nan, "t": np.ones((12, 1))}, y)
    np.testing.assert_array_equal(
        _model(backbones).fit(X, y).predict_proba(X),
        expected.predict_proba({"s": by_nan, "t": np.ones((12, 1))}),
    )


def test_longer_sequences_at_predict_for_a_length_agnostic_backbone():
    """Trained on at most 26 steps, a 29-step row is encoded whole (not cut to 26)."""
    rows, y = _ragged()
    model = _model("gru").fit(Modalities(s=rows), y)
    rng = np.random.default_rng(5)
    longer = rows[:3] + [rng.normal(size=(29, WIDTH)).astype(np.float32)]
    proba = model.predict_proba(Modalities(s=longer))
    # the short rows do not change when a longer row shares their batch
    np.testing.assert_allclose(proba[:3], model.predict_proba(Modalities(s=rows[:3])), atol=1e-6)
    # the long row: the network on its 29 standardised steps, called directly in torch
    z = (longer[3] - model.standardizer_.means["s"][0]) / model.standardizer_.scales["s"][0]
    batch = ModalityBatch(
        features={"s": torch.from_numpy(z[None].astype(np.float32))},
        mask=torch.ones(1, 1, dtype=torch.bool),
    )
    with torch.no_grad():
        logits = model.module_.eval()(batch).logits.double()
    np.testing.assert_allclose(proba[3], torch.softmax(logits, 1)[0].numpy(), atol=1e-6)
    cut = model.predict_proba(Modalities(s=[longer[3][:26]]))
    assert not np.allclose(proba[3], cut[0])


@pytest.mark.parametrize("backbone", ["gru", FlattenBackbone])
def test_shorter_sequences_at_predict_are_padded_to_the_fitted_length(backbone):
    rows, y = _ragged()
    model = _model(backbone).fit(Modalities(s=rows), y)
    short = [r[:5] for r in rows[:4]]
    np.testing.assert_array_equal(
        model.predict_proba(Modalities(s=short)),
        model.predict_proba({"s": _hand_padded(short, length=26)}),
    )


def test_longer_sequences_are_refused_for_a_fixed_length_backbone():
    rows, y = _ragged()
    model = _model(FlattenBackbone).fit(Modalities(s=rows), y)
    longer = [np.ones((29, WIDTH), dtype=np.float32)]
    with pytest.raises(ValueError, match=r"modality 's'.*29 steps.*T=26.*FlattenBackbone"):
        model.predict(Modalities(s=longer))
    # steps beyond 26 that are padding in every row are cut, not refused
    padded = np.full((2, 29, WIDTH), np.nan, dtype=np.float32)
    padded[:, :20] = 1.0
    np.testing.assert_array_equal(
        model.predict_proba({"s": padded}), model.predict_proba({"s": padded[:, :26]})
    )


def test_builtin_sequence_backbones_declare_any_length():
    from fusekit.builtin import (
        conv1d_backbone,
        gru_backbone,
        identity_backbone,
        mlp_backbone,
        transformer_backbone,
    )

    for module, name in [
        (conv1d_backbone, "Conv1dBackbone"),
        (gru_backbone, "GRUBackbone"),
        (transformer_backbone, "TransformerBackbone"),
        (mlp_backbone, "MLPBackbone"),
        (identity_backbone, "IdentityBackbone"),
    ]:
        assert getattr(module, name).accepts_any_length
    assert not Backbone.accepts_any_length


def _smooth_channels_first(n=20, channels=3, length=60, seed=0):
    """Sensor-like recordings in aeon's layout (n, channels, T): smooth along T."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    t = np.linspace(0, 4 * np.pi, length)
    phase = rng.uniform(0, np.pi, (n, channels, 1))
    frequency = (1 + y)[:, None, None] * np.arange(1, channels + 1)[None, :, None] / 2
    return np.sin(frequency * t + phase).astype(np.float32), y


def test_channels_first_layout_equals_the_transposed_array():
    X, y = _smooth_channels_first()
    first = _model(layout="channels_first").fit({"s": X}, y)
    last = _model().fit({"s": X.transpose(0, 2, 1)}, y)
    assert first.modalities_ == {"s": (60, 3)}
    np.testing.assert_array_equal(
        first.predict_proba({"s": X}), last.predict_proba({"s": X.transpose(0, 2, 1)})
    )
    rows = [x[:, : 30 + i] for i, x in enumerate(X)]  # ragged (channels, T_i), as aeon lists
    by_dict = _model(layout={"s": "channels_first"}).fit({"s": rows}, y)
    transposed = [r.T for r in rows]
    np.testing.assert_array_equal(
        by_dict.predict_proba({"s": rows}),
        _model().fit({"s": transposed}, y).predict_proba({"s": transposed}),
    )


def test_a_channels_first_looking_array_warns_without_a_layout():
    X, y = _smooth_channels_first()
    with pytest.warns(ChannelsFirstWarning, match=r"modality 's'.*channels_first") as record:
        _model(max_epochs=1).fit({"s": X}, y)
    assert record[0].filename == __file__  # points at the fit call
    with warnings.catch_warnings():
        warnings.simplefilter("error", ChannelsFirstWarning)
        _model(max_epochs=1, layout="channels_last").fit({"s": X}, y)  # said: no warning
        _model(max_epochs=1).fit({"s": X.transpose(0, 2, 1)}, y)  # T > d
        embeddings = np.random.default_rng(0).normal(size=(20, 8, 32))  # T < d, unordered
        _model(max_epochs=1).fit({"s": embeddings}, y)


def test_channels_first_rule():
    X, _ = _smooth_channels_first()
    assert looks_channels_first(X)
    assert looks_channels_first(X[:, :1])  # univariate (n, 1, T)
    assert not looks_channels_first(X.transpose(0, 2, 1))
    assert not looks_channels_first(np.random.default_rng(0).normal(size=(20, 8, 32)))


def test_ragged_rows_in_the_other_layout_are_refused_with_advice():
    X, y = _smooth_channels_first()
    rows = [x[:, : 30 + i] for i, x in enumerate(X)]  # (3, T_i) read as (T_i, d)
    with pytest.raises(ValueError, match=r"modality 's'.*layout=\{'s': 'channels_first'\}"):
        _model().fit({"s": rows}, y)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([np.ones(5), np.ones(7)], r"row 0 has shape \(5,\).*\(T_i, 1\)"),
        ([np.ones((5, 2)), np.ones((7, 3)), np.ones((4, 2))], r"row 0 has 2 features.*row 1 has 3"),
        ([np.ones((5, 2)), np.array([["a", "b"]] * 7)], r"row 1.*numeric \(T_i, d\)"),
        ([None, None], r"every row is None"),
    ],
)
def test_bad_ragged_rows_name_the_modality_and_row(rows, message):
    with pytest.raises(ValueError, match=r"modality 's'.*" + message):
        _model().fit({"s": rows}, np.arange(len(rows)) % 2)


def test_bad_layouts_are_refused():
    rows, y = _ragged(n=10)
    X = {"s": rows, "v": np.ones((10, 2))}
    with pytest.raises(ValueError, match=r"layout= names modalities \['audio'\]"):
        _model(layout={"audio": "channels_first"}).fit(X, y)
    with pytest.raises(ValueError, match=r"layout\['s'\]='time_first'"):
        _model(layout={"s": "time_first"}).fit(X, y)
    with pytest.raises(ValueError, match=r"modality 'v' has shape \(10, 2\).*sequences"):
        _model(layout={"v": "channels_first"}).fit(X, y)
    with pytest.raises(ValueError, match="layout"):
        _model(layout="sideways").fit(X, y)


def test_japanese_vowels_like_ragged_set():
    """12 cepstrum-like channels, 7-29 steps: trained on <= 26, tested with 27-29 steps too."""
    rng = np.random.default_rng(0)

    def utterances(n, low, high):
        y = np.arange(n) % 3
        rows = []
        for label in y:
            t = np.arange(rng.integers(low, high + 1))[:, None]
            formant = np.sin(t * (0.3 + 0.25 * label) + np.arange(12)[None, :])
            rows.append((formant + 0.3 * rng.normal(size=formant.shape)).astype(np.float32))
        return rows, y

    train, y_train = utterances(60, 7, 26)
    test, y_test = utterances(30, 7, 29)
    assert max(len(r) for r in test) > 26
    model = FusionClassifier(backbone="gru", max_epochs=12, batch_size=16, random_state=0)
    model.fit(Modalities(voice=train), y_train)
    assert model.score(Modalities(voice=test), y_test) > 0.8


def test_a_later_partial_fit_chunk_may_hold_longer_sequences():
    rows, y = _ragged(n=24, high=20)
    longer, y_longer = _ragged(n=24, high=26, seed=1)
    model = _model("gru")
    model.partial_fit(Modalities(s=rows), y, classes=[0, 1])
    model.partial_fit(Modalities(s=longer), y_longer)  # encoded whole: 26 steps
    assert model.modalities_ == {"s": (20, WIDTH)} and model.n_iter_ == 2
    fixed = _model(FlattenBackbone)
    fixed.partial_fit(Modalities(s=rows), y, classes=[0, 1])
    with pytest.raises(ValueError, match=r"modality 's'.*26 steps.*T=20"):
        fixed.partial_fit(Modalities(s=longer), y_longer)
