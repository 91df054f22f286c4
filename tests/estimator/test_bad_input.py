"""Bad input gets a clear error naming the modality, what was expected and what came."""

import numpy as np
import pandas as pd
import pytest

from fusekit import FusionClassifier, FusionRegressor, Modalities


@pytest.fixture
def fitted(vectors):
    X, y = vectors
    return FusionClassifier(max_epochs=2, random_state=0).fit(X, y), X, y


def test_mismatched_row_counts(vectors):
    X, y = vectors
    with pytest.raises(ValueError, match=r"different numbers of rows.*'audio': 160.*'video': 159"):
        FusionClassifier().fit({"audio": X["audio"], "video": X["video"][:-1]}, y)


def test_modalities_container_rejects_mismatched_rows():
    with pytest.raises(ValueError, match="same number of rows"):
        Modalities(a=np.zeros((3, 2)), b=np.zeros((4, 2)))


def test_unknown_modality_at_predict(fitted):
    model, X, _ = fitted
    extra = Modalities(**X, depth=np.zeros((len(X["audio"]), 2)))
    with pytest.raises(ValueError, match=r"unknown: \['depth'\].*same modalities"):
        model.predict(extra)


def test_missing_modality_key_at_predict(fitted):
    model, X, _ = fitted
    with pytest.raises(ValueError, match=r"missing: \['text'\].*NaN rows"):
        model.predict(Modalities(audio=X["audio"], video=X["video"]))


def test_changed_width_at_predict(fitted):
    model, X, _ = fitted
    changed = Modalities(audio=X["audio"][:, :4], video=X["video"], text=X["text"])
    with pytest.raises(ValueError, match=r"modality 'audio': X has 4 features.*expecting 5"):
        model.predict(changed)


def test_changed_sequence_width_at_predict():
    """Another number of features per step is refused (another T: tests/data/test_sequences)."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 30)
    model = FusionClassifier(max_epochs=1).fit(Modalities(s=rng.normal(size=(30, 4, 2))), y)
    with pytest.raises(ValueError, match=r"modality 's': shape \(4, 3\).*fitted with \(4, 2\)"):
        model.predict(Modalities(s=rng.normal(size=(30, 4, 3))))


def test_partial_nan_names_modality_and_rows(vectors):
    X, y = vectors
    audio = np.array(X["audio"], copy=True)
    audio[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"modality 'audio' has NaN in part of 1 rows.*\[3\]"):
        FusionClassifier().fit(Modalities(audio=audio, video=X["video"]), y)


def test_partial_nan_at_predict(fitted):
    model, X, _ = fitted
    text = np.array(X["text"], copy=True)
    text[0, 0] = np.nan
    with pytest.raises(ValueError, match="modality 'text' has NaN"):
        model.predict(Modalities(audio=X["audio"], video=X["video"], text=text))


def test_inf(vectors):
    X, y = vectors
    video = np.array(X["video"], copy=True)
    video[5, 0] = np.inf
    with pytest.raises(ValueError, match=r"modality 'video' contains inf in 1 rows"):
        FusionClassifier().fit(Modalities(audio=X["audio"], video=video), y)


def test_non_numeric_dataframe_column():
    frame = pd.DataFrame({"a__x": [1.0, 2.0, 3.0], "a__colour": ["red", "blue", "red"]})
    expected = r"modality 'a' holds strings.*'categorical': \['categorical'"
    with pytest.raises(ValueError, match=expected):
        FusionClassifier().fit(frame, [0, 1, 0])


def test_strings_in_a_modality_array():
    strings = np.array([["a", "b"], ["c", "d"], ["e", "f"]], dtype=object)
    with pytest.raises(ValueError, match="modality 'words'"):
        FusionClassifier().fit({"words": strings}, [0, 1, 0])


def test_empty_modality():
    with pytest.raises(ValueError, match=r"modality 'b' is empty.*\(4, 0\)"):
        FusionClassifier().fit({"a": np.ones((4, 2)), "b": np.ones((4, 0))}, [0, 1, 0, 1])


def test_one_sample():
    with pytest.raises(ValueError, match="1 sample"):
        FusionClassifier().fit({"a": np.ones((1, 2))}, [0])


def test_one_dimensional_modality():
    with pytest.raises(ValueError, match=r"modality 'a' has shape \(4,\).*\(n, 1\)"):
        FusionClassifier().fit({"a": np.ones(4)}, [0, 1, 0, 1])


def test_one_class(vectors):
    X, y = vectors
    with pytest.raises(ValueError, match="contains only one class"):
        FusionClassifier(max_epochs=1).fit(X, np.full(len(y), "a"))


def test_y_length_mismatch(vectors):
    X, y = vectors
    with pytest.raises(ValueError, match="X has 160 samples but y has 159"):
        FusionClassifier().fit(X, y[:-1])


def test_modality_absent_in_every_training_row(vectors):
    X, y = vectors
    with pytest.raises(ValueError, match=r"\['text'\] are absent .* in every training row"):
        FusionClassifier().fit(
            Modalities(audio=X["audio"], text=np.full_like(X["text"], np.nan)), y
        )


def test_widths_that_do_not_add_up():
    with pytest.raises(ValueError, match=r"add up to 5 columns, but X has 6"):
        FusionClassifier(modalities={"a": 2, "b": 3}).fit(np.ones((4, 6)), [0, 1, 0, 1])


def test_unknown_nested_parameter(vectors):
    X, y = vectors
    with pytest.raises(ValueError, match=r"fusion ConcatFusion got unknown parameters \['rank'\]"):
        FusionClassifier(fusion__rank=3).fit(X, y)


def test_unprefixed_unknown_parameter_fails_at_fit(vectors):
    X, y = vectors
    model = FusionClassifier(colour="red")  # sklearn: never raise in __init__
    with pytest.raises(TypeError, match="unexpected parameter 'colour'"):
        model.fit(X, y)


def test_backbone_parameter_no_backbone_accepts(vectors):
    X, y = vectors
    with pytest.raises(ValueError, match="no backbone in use accepts 'hidden'"):
        FusionClassifier(backbone="identity", backbone__hidden=8).fit(X, y)


def test_backbone_dict_with_unknown_modality(vectors):
    X, y = vectors
    with pytest.raises(ValueError, match=r"unknown: \['depth'\]"):
        FusionClassifier(
            backbone={"audio": "mlp", "video": "mlp", "text": "mlp", "depth": "mlp"}
        ).fit(X, y)


def test_component_of_the_wrong_kind(vectors):
    X, y = vectors
    from fusekit.builtin.mlp_backbone import MLPBackbone

    with pytest.raises(TypeError, match="not a Fusion subclass"):
        FusionClassifier(fusion=MLPBackbone).fit(X, y)


def test_continuous_target_for_classifier(vectors):
    X, _ = vectors
    with pytest.raises(ValueError, match="Unknown label type"):
        FusionClassifier().fit(X, np.linspace(0, 1, 160))


def test_nan_in_regression_target(vectors):
    X, _ = vectors
    y = np.ones(160)
    y[0] = np.nan
    with pytest.raises(ValueError, match="Input y contains NaN"):
        FusionRegressor().fit(X, y)


def test_predict_before_fit(vectors):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        FusionClassifier().predict(vectors[0])


@pytest.mark.parametrize("param, value", [("max_epochs", 0), ("batch_size", -1), ("lr", 0.0)])
def test_bad_training_parameters(vectors, param, value):
    X, y = vectors
    with pytest.raises(ValueError, match=param):
        FusionClassifier(**{param: value}).fit(X, y)


def test_unknown_optimizer_name(vectors):
    X, y = vectors
    with pytest.raises(ValueError, match=r"The 'optimizer' parameter .* Got 'lbfgs2' instead"):
        FusionClassifier(optimizer="lbfgs2").fit(X, y)


def test_modality_order_is_matched_by_name(fitted):
    model, X, _ = fitted
    reordered = Modalities(text=X["text"], video=X["video"], audio=X["audio"])
    np.testing.assert_array_equal(model.predict_proba(reordered), model.predict_proba(X))


def test_complex_values():
    with pytest.raises(ValueError, match="Complex data not supported"):
        FusionClassifier().fit({"a": np.ones((4, 2), dtype=complex)}, [0, 1, 0, 1])


def test_ragged_sequences_given_as_lists():
    """Padded to the longest row (tests/data/test_sequences); rows of other widths are refused."""
    ragged = [np.ones((3, 2)), np.ones((4, 2)), np.ones((3, 2))]
    assert FusionClassifier(max_epochs=1).fit({"s": ragged}, [0, 1, 0]).modalities_ == {"s": (4, 2)}
    with pytest.raises(ValueError, match="modality 's': rows are read as"):
        FusionClassifier().fit({"s": [*ragged, np.ones((3, 5))]}, [0, 1, 0, 1])


def test_dataframe_missing_a_column_at_predict():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(20, 3)), columns=["a__x", "a__y", "b__x"])
    model = FusionClassifier(max_epochs=1).fit(frame, np.arange(20) % 2)
    with pytest.raises(ValueError, match="a__y"):
        model.predict(frame.drop(columns=["a__y"]))


def test_a_column_in_two_modalities():
    frame = pd.DataFrame(np.ones((4, 3)), columns=["p", "q", "r"])
    with pytest.raises(ValueError, match="column 'q' is selected by modalities 'a' and 'b'"):
        FusionClassifier(modalities={"a": ["p", "q"], "b": ["q", "r"]}).fit(frame, [0, 1, 0, 1])


def test_zero_rank(vectors):
    X, y = vectors
    with pytest.raises(ValueError, match="rank"):
        FusionClassifier(fusion="lowrank", fusion__rank=0).fit(X, y)


def test_bad_input_inside_grid_search_is_reported(vectors):
    from sklearn.model_selection import GridSearchCV

    X, y = vectors
    search = GridSearchCV(
        FusionClassifier(max_epochs=1), {"fusion": ["concat", "nope"]}, cv=2, error_score="raise"
    )
    with pytest.raises(ValueError, match="unknown fusion 'nope'"):
        search.fit(X, y)


def test_cli_rejects_an_unknown_kind(capsys):
    from fusekit.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["plugins", "--kind", "decoder"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'decoder'" in capsys.readouterr().err
