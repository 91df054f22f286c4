"""The categorical backbone: fastai's embedding-size rule, vector and token outputs, the reserved
code for unknown categories, and the contract checks in its token form."""

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.utils._param_validation import InvalidParameterError

from fusekit import FusionClassifier
from fusekit.builtin.categorical_backbone import CategoricalBackbone, CategoryCodes, embedding_size
from fusekit.engine.resolve import resolve
from fusekit.plugin import RESERVED_CODE
from fusekit.testing import parametrize_with_checks


@pytest.mark.parametrize(
    ("n_codes", "size"),
    [
        (2, 2),  # 1.6 * 2**0.56 = 1.6 * 1.474 = 2.36
        (4, 3),  # 1.6 * 4**0.56 = 1.6 * 2.173 = 3.48
        (100, 21),  # 1.6 * 10**1.12 = 1.6 * 13.18 = 21.09
        (10**6, 600),  # 1.6 * 10**3.36 = 3665: capped at 600
    ],
)
def test_embedding_size_is_fastais_rule_worked_by_hand(n_codes, size):
    assert embedding_size(n_codes) == size


def _codes(columns):
    values = np.array(list(zip(*columns, strict=True)), dtype=object)
    return CategoryCodes().fit(values), values


def test_codes_follow_first_appearance_and_unknown_or_missing_take_the_reserved_code():
    encoder, _ = _codes([["b", "a", "b", None], [3, 1, 2, 3]])
    assert encoder.categories_ == [["b", "a"], [3, 1, 2]]
    assert encoder.cardinalities == [3, 4]
    new = np.array([["a", 2], ["z", 9], [None, 3]], dtype=object)
    assert encoder.transform(new).values.tolist() == [[2, 3], [0, 0], [0, 1]]
    assert RESERVED_CODE == 0


def test_vector_output_concatenates_one_embedding_per_column_of_the_rule_sizes():
    encoder, values = _codes([list("abc") * 3, [str(i) for i in range(9)]])  # 3 and 9 categories
    backbone = CategoricalBackbone()
    backbone.bind_input_encoder(encoder)
    assert backbone.build((2,)) == (embedding_size(4) + embedding_size(10),) == (3 + 6,)
    codes = torch.from_numpy(encoder.transform(values).values)
    out = backbone.eval()(codes)
    first = backbone.embeddings[0].weight[codes[:, 0]]
    torch.testing.assert_close(out[:, :3], first)


def test_token_output_keeps_one_token_per_column():
    encoder, values = _codes([list("ab") * 2, list("wxyz")])
    backbone = CategoricalBackbone(output="tokens", embedding_dim=5)
    backbone.bind_input_encoder(encoder)
    assert backbone.build((2,)) == (2, 5)
    assert backbone(torch.from_numpy(encoder.transform(values).values)).shape == (4, 2, 5)
    rule = CategoricalBackbone(output="tokens")
    rule.bind_input_encoder(encoder)
    assert rule.build((2,)) == (2, max(embedding_size(3), embedding_size(5)))


def test_an_unknown_category_gets_the_reserved_embedding_through_the_estimator():
    rng = np.random.default_rng(0)
    y = np.arange(30) % 3
    X = pd.DataFrame(
        {"cat__c": np.array(["lo", "mid", "hi"])[y], "num__x": rng.normal(size=30) + y}
    )
    model = FusionClassifier(
        backbone={"cat": "categorical", "num": "mlp"}, max_epochs=5, random_state=0
    ).fit(X, y)
    unseen = X.head(1).assign(cat__c="unheard of")
    features = model.module_.encode(model._batch(model._prepare(unseen, reset=False)))
    reserved = model.module_.backbones["cat"].embeddings[0].weight[RESERVED_CODE]
    torch.testing.assert_close(features["cat"][0], reserved)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"output": "grid"}, r"'output' parameter of backbone categorical must be a str among"),
        ({"embedding_dim": 0}, r"'embedding_dim' parameter of backbone categorical must be an int"),
    ],
)
def test_bad_parameters_are_named(params, message):
    with pytest.raises(InvalidParameterError, match=message):
        resolve("backbone", "categorical", params)


@parametrize_with_checks("backbone", [CategoricalBackbone(output="tokens", dropout=0.1)])
def test_token_form_passes_the_contract_checks(plugin, check):
    check(plugin)
