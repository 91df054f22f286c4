"""GridSearchCV over the fusion method × one nested parameter of each built-in fusion."""

import numpy as np
from catalogue_helpers import easy_task
from sklearn.model_selection import GridSearchCV

from fusekit import FusionClassifier, Modalities
from fusekit.engine.registry import get_registry

ONE_PARAMETER_EACH = {
    "concat": {"fusion__indicators": [False, True]},
    "late": {"fusion__weights": ["mean", "learned"]},
    "sum": {"fusion__dim": [4, 16]},
    "mean": {"fusion__activation": ["none", "tanh"]},
    "tensor": {"fusion__dim": [2, 4]},
    "lowrank": {"fusion__rank": [2, 4]},
    "gated": {"fusion__dim": [4, 16]},
    "attention": {"fusion__attention_dim": [4, 16]},
    "crossmodal": {"fusion__heads": [1, 2]},
    "embracenet": {"fusion__dim": [8, 32]},
}


def test_grid_search_over_fusion_and_a_nested_parameter_of_each(train_seed):
    arrays, y = easy_task(80, 3, "vector", missing=True, seed=7 + train_seed)
    grid = [{"fusion": [name], **params} for name, params in ONE_PARAMETER_EACH.items()]
    search = GridSearchCV(
        FusionClassifier(max_epochs=2, batch_size=32, lr=0.02, random_state=train_seed),
        grid,
        cv=2,
        error_score="raise",
    ).fit(Modalities(**arrays), y)
    results = search.cv_results_
    assert len(results["params"]) == 2 * len(ONE_PARAMETER_EACH)
    assert np.isfinite(results["mean_test_score"]).all()
    tried = {(p["fusion"], *[v for k, v in p.items() if k != "fusion"]) for p in results["params"]}
    assert len(tried) == 2 * len(ONE_PARAMETER_EACH)
    assert search.best_score_ > 0.7  # 0.99-1.00 over seeds 0-5
    fitted = search.best_estimator_.module_.fusion
    assert type(fitted) is get_registry().get("fusion", search.best_params_["fusion"])
    for key, value in search.best_params_.items():
        if key != "fusion":  # the nested value reached the fitted fusion
            assert fitted.get_params()[key.removeprefix("fusion__")] == value
