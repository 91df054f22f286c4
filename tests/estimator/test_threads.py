"""``n_jobs``: torch's CPU threads (and the BLAS / OpenMP pools) while an estimator fits or
predicts, scikit-learn's idiom (``None`` one, ``-1`` all), restored afterwards."""

import joblib
import numpy as np
import pytest
import torch
from joblib import Parallel, delayed, parallel_config
from sklearn.model_selection import GridSearchCV
from sklearn.utils._param_validation import InvalidParameterError
from skorch.callbacks import Callback
from threadpoolctl import threadpool_info

from fusekit import FusionClassifier, FusionRegressor
from fusekit.threads import in_joblib_worker, resolve

SEEN: list[int] = []  # torch's threads at each training batch, from every fit (threads too)


class RecordThreads(Callback):
    def on_batch_begin(self, net, **kwargs):
        SEEN.append(torch.get_num_threads())


@pytest.fixture
def outside_threads():
    """torch at 2 threads outside the estimator (the suite runs at 1), restored after the test."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    SEEN.clear()
    yield 2
    torch.set_num_threads(before)


def _model(cls=FusionClassifier, **params):
    return cls(max_epochs=1, batch_size=64, callbacks=[RecordThreads()], **params)


@pytest.mark.parametrize("cls", [FusionClassifier, FusionRegressor])
def test_the_default_is_one_thread_during_fit_and_the_caller_s_setting_comes_back(
    cls, vectors, outside_threads
):
    X, y = vectors
    model = _model(cls).fit(X, y)
    assert SEEN and set(SEEN) == {1}  # 160 rows, batches of 64: three batches, one thread each
    assert torch.get_num_threads() == outside_threads
    model.partial_fit(X, y)
    assert set(SEEN) == {1} and torch.get_num_threads() == outside_threads


def test_an_explicit_count_is_used_during_fit_and_predict(vectors, outside_threads):
    X, y = vectors
    torch.set_num_threads(1)
    model = _model(n_jobs=2).fit(X, y)
    assert set(SEEN) == {2} and torch.get_num_threads() == 1
    during_predict = []
    model.module_.register_forward_pre_hook(
        lambda *_: during_predict.append(torch.get_num_threads())
    )
    model.predict_proba(X), model.predict(X), model.score(X, y), list(model.outputs(X))
    assert during_predict and set(during_predict) == {2}
    assert torch.get_num_threads() == 1


def test_minus_one_means_every_cpu_joblib_counts(vectors, outside_threads):
    X, y = vectors
    _model(n_jobs=-1).fit(X, y)
    assert set(SEEN) == {joblib.cpu_count()}


def test_the_blas_and_openmp_pools_are_limited_too(vectors, outside_threads):
    """threadpoolctl's view of the loaded pools during a training batch: every one at n_jobs."""
    X, y = vectors
    pools = []

    class RecordPools(Callback):
        def on_batch_begin(self, net, **kwargs):
            pools.append({pool["filepath"]: pool["num_threads"] for pool in threadpool_info()})

    before = {pool["filepath"]: pool["num_threads"] for pool in threadpool_info()}
    FusionClassifier(max_epochs=1, callbacks=[RecordPools()]).fit(X, y)
    assert pools and all(set(p.values()) == {1} for p in pools)
    assert {pool["filepath"]: pool["num_threads"] for pool in threadpool_info()} == before


def test_a_fit_that_raises_restores_the_threads(vectors, outside_threads):
    X, y = vectors
    with pytest.raises(ValueError, match="at least 2 classes"):
        FusionClassifier(n_jobs=1).fit(X, np.zeros(len(y)))
    assert torch.get_num_threads() == outside_threads


@pytest.mark.parametrize("bad", [0, 1.5, "2", True])
def test_a_bad_n_jobs_is_refused_by_name(bad, vectors):
    X, y = vectors
    with pytest.raises(InvalidParameterError, match=r"'n_jobs' parameter of FusionClassifier"):
        FusionClassifier(n_jobs=bad).fit(X, y)


def test_resolve_follows_joblib():
    assert resolve(None) == 1 == joblib.effective_n_jobs(None)
    assert resolve(3) == 3
    assert resolve(-1) == joblib.cpu_count()
    with parallel_config(n_jobs=2):  # scikit-learn's "None means 1 unless in a joblib context"
        assert resolve(None) == 2


def test_inside_a_joblib_worker_none_is_one_and_minus_one_is_capped(outside_threads):
    torch.set_num_threads(1)  # what loky starts a worker of GridSearchCV(n_jobs=cores) with
    seen = Parallel(n_jobs=2, backend="threading")(
        delayed(lambda: (in_joblib_worker(), resolve(None), resolve(-1)))() for _ in range(2)
    )
    assert seen == [(True, 1, 1)] * 2
    assert not in_joblib_worker()


def test_a_parallel_grid_search_runs_each_fit_on_one_thread_and_restores(vectors, outside_threads):
    """Fits in two threads of this process at once (joblib's threading backend share torch's
    setting): each trains on one thread, and the caller's setting is back afterwards."""
    X, y = vectors
    with parallel_config(backend="threading"):
        GridSearchCV(_model(), {"lr": [0.01, 0.02]}, cv=2, n_jobs=2).fit(X, y)
    assert len(SEEN) >= 8 and set(SEEN) == {1}
    assert torch.get_num_threads() == outside_threads
