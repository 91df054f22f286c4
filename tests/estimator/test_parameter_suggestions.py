"""An unknown parameter's error suggests the close name (``epochs`` -> ``max_epochs``)."""

import pytest

from fusekit import FusionClassifier


@pytest.mark.parametrize(
    ("given", "suggested"),
    [
        ("epochs", "max_epochs"),
        ("random_seed", "random_state"),
        ("fuson__rank", "fusion__rank"),
        ("weightings__alpha", "weighting__alpha"),
    ],
)
def test_a_close_name_is_suggested(given, suggested, vectors):
    X, y = vectors
    with pytest.raises(
        TypeError, match=rf"unexpected parameter '{given}'\. Did you mean '{suggested}'\?"
    ):
        FusionClassifier(max_epochs=1, **{given: 4}).fit(X, y)


def test_no_suggestion_for_a_name_like_nothing(vectors):
    X, y = vectors
    with pytest.raises(TypeError, match="unexpected parameter 'zzzz'") as error:
        FusionClassifier(max_epochs=1, zzzz=1).fit(X, y)
    assert "Did you mean" not in str(error.value)
