"""``fit`` over a streamed source (:mod:`fusekit.streaming`): data read chunk by chunk.

The reference for the training path is ``fit`` in memory over the concatenated chunks with
``shuffle=False``: the same statistics, batches and order, so the weights must agree to float
tolerance. The merged statistics are checked against numpy over the concatenation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from reliability.raising import raises_exactly

from fusekit import FusionClassifier, FusionRegressor
from fusekit.data import PreparedInput
from fusekit.streaming import ChunkSource, DaskSource, ParquetSource, StreamError
from fusekit.streaming.order import Piece, chunk_order, windows
from fusekit.streaming.statistics import RunningMoments, StreamingStandardizer

SIZES = (20, 13, 31)  # no chunk is a whole number of batches: windows carry rows over
PARAMS = dict(batch_size=8, shuffle=False, random_state=0, lr=0.05, max_epochs=2)


def _chunks(seed: int = 0) -> list[tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for n in SIZES:
        X = {"a": rng.normal(2.0, 3.0, (n, 3)), "b": rng.normal(-1.0, 0.5, (n, 2))}
        out.append((X, rng.integers(0, 3, n), rng.normal(5.0, 2.0, n)))
    return out


def _concatenated(chunks, target: int = 1):
    X = {m: np.concatenate([c[0][m] for c in chunks]) for m in ("a", "b")}
    return X, np.concatenate([c[target] for c in chunks])


def _frame(X: dict[str, np.ndarray], y: np.ndarray | None = None) -> pd.DataFrame:
    columns = {f"{m}__{j}": v[:, j] for m, v in X.items() for j in range(v.shape[1])}
    if y is not None:
        columns["label"] = y
    return pd.DataFrame(columns)


def _assert_same_weights(left, right) -> None:
    theirs = right.module_.state_dict()
    for name, value in left.module_.state_dict().items():
        torch.testing.assert_close(value, theirs[name], rtol=1e-5, atol=1e-6, msg=name)


# -- the merged statistics ------------------------------------------------------------------


def test_running_moments_equal_numpy_over_the_concatenation():
    rng = np.random.default_rng(1)
    # a large offset: a naive sum of squares loses the variance to cancellation
    parts = [rng.normal(1e6, s, (n, 4)) for n, s in ((7, 1.0), (1, 2.0), (40, 0.5))]
    moments = RunningMoments((0,))
    for part in parts:
        moments.update(part, np.ones((len(part), 1)))
    mean, std = moments.mean_std()
    whole = np.concatenate(parts)
    np.testing.assert_allclose(mean.ravel(), whole.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(std.ravel(), whole.std(axis=0), rtol=1e-9)


def test_weighted_running_moments_equal_numpy_average():
    rng = np.random.default_rng(2)
    parts = [rng.normal(3.0, 2.0, (n, 2)) for n in (5, 9, 4)]
    weights = [rng.uniform(0.0, 3.0, len(p)) for p in parts]
    weights[1][:3] = 0.0  # zero weights leave rows out
    moments = RunningMoments((0,))
    for part, w in zip(parts, weights, strict=True):
        moments.update(part, w[:, None])
    whole, w = np.concatenate(parts), np.concatenate(weights)
    expected = np.average(whole, axis=0, weights=w)
    variance = np.average((whole - expected) ** 2, axis=0, weights=w)
    mean, std = moments.mean_std()
    np.testing.assert_allclose(mean.ravel(), expected, rtol=1e-13)
    np.testing.assert_allclose(std.ravel(), np.sqrt(variance), rtol=1e-12)


def test_standardiser_skips_absent_rows_and_padded_steps_and_pools_image_channels():
    rng = np.random.default_rng(3)
    vectors = rng.normal(4.0, 2.0, (12, 3))
    sequences = rng.normal(-2.0, 1.5, (12, 5, 2))
    images = rng.normal(1.0, 3.0, (12, 2, 3, 3))
    mask = np.ones((12, 3), dtype=bool)
    mask[[1, 7], 0] = False  # vectors absent in two rows
    steps = np.ones((12, 5), dtype=bool)
    steps[2, 3:] = steps[9, 1:] = False  # padded steps
    stats = StreamingStandardizer()
    for rows in (slice(0, 5), slice(5, 6), slice(6, 12)):
        stats.update(
            PreparedInput(
                arrays={"v": vectors[rows], "s": sequences[rows], "i": images[rows]},
                mask=mask[rows],
                steps={"s": steps[rows]},
            )
        )
    result = stats.standardizer()
    present = vectors[mask[:, 0]]
    np.testing.assert_allclose(result.means["v"].ravel(), present.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(result.scales["v"].ravel(), present.std(axis=0), rtol=1e-6)
    real = sequences[steps]  # (real steps, 2)
    np.testing.assert_allclose(result.means["s"].ravel(), real.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(result.scales["s"].ravel(), real.std(axis=0), rtol=1e-6)
    assert result.means["s"].shape == (1, 1, 2)
    per_channel = images.transpose(1, 0, 2, 3).reshape(2, -1)
    np.testing.assert_allclose(result.means["i"].ravel(), per_channel.mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(result.scales["i"].ravel(), per_channel.std(axis=1), rtol=1e-6)
    assert result.means["i"].shape == (1, 2, 1, 1)


# -- the epoch order ------------------------------------------------------------------------


def _piece(start: int, n: int) -> Piece:
    rows = np.arange(start, start + n)
    data = PreparedInput(arrays={"a": rows[:, None].astype(np.float32)}, mask=np.ones((n, 1), bool))
    return Piece(data, rows.copy(), None, rows)


def test_windows_are_whole_batches_in_order_and_bounded():
    sizes, buffer_rows, batch = (5, 7, 3, 9, 2), 6, 4
    starts = np.cumsum((0, *sizes[:-1]))
    out = list(windows((_piece(s, n) for s, n in zip(starts, sizes, strict=True)), buffer_rows, 4))
    lengths = [len(w) for w in out]
    assert all(n % batch == 0 for n in lengths[:-1]) and sum(lengths) == sum(sizes)
    assert max(lengths) <= buffer_rows + max(sizes) + batch
    np.testing.assert_array_equal(np.concatenate([w.rows for w in out]), np.arange(sum(sizes)))
    np.testing.assert_array_equal(np.concatenate([w.target for w in out]), np.arange(sum(sizes)))


def test_chunk_order_is_a_seeded_permutation():
    draw = [chunk_order(10, True, torch.Generator().manual_seed(4)) for _ in range(2)]
    assert draw[0] == draw[1] and sorted(draw[0]) == list(range(10))
    assert draw[0] != list(range(10))
    assert chunk_order(10, False, None) is None and chunk_order(None, True, None) is None


# -- training ---------------------------------------------------------------------------------


def test_unshuffled_streaming_fit_equals_fit_over_the_concatenation():
    chunks = _chunks()
    pairs = [(X, y) for X, y, _ in chunks]
    streamed = FusionClassifier(**PARAMS).fit(ChunkSource(pairs, buffer_rows=10))
    whole = FusionClassifier(**PARAMS).fit(*_concatenated(chunks))
    _assert_same_weights(streamed, whole)
    np.testing.assert_allclose(streamed.loss_curve_, whole.loss_curve_, rtol=1e-6)
    assert streamed.classes_.tolist() == [0, 1, 2] and streamed.n_iter_ == 2
    for name in ("a", "b"):
        np.testing.assert_allclose(
            streamed.standardizer_.means[name], whole.standardizer_.means[name], rtol=1e-6
        )


def test_mla_counts_the_streamed_rows_for_its_batches_per_epoch(monkeypatch):
    # MLA's alpha_t needs n_batches = ceil(rows / batch); a streamed fit holds no ctx.data, so the
    # count must come from the first pass (64 rows / 8 = 8 batches), as in memory
    from fusekit.builtin import mla_weighting

    seen: list[int] = []
    original = mla_weighting.batches_per_epoch
    monkeypatch.setattr(
        mla_weighting, "batches_per_epoch", lambda ctx: seen.append(original(ctx)) or seen[-1]
    )
    chunks = _chunks()
    pairs = [(X, y) for X, y, _ in chunks]
    streamed = FusionClassifier(**PARAMS, weighting="mla").fit(ChunkSource(pairs, buffer_rows=10))
    assert seen and set(seen) == {-(-sum(SIZES) // PARAMS["batch_size"])}
    whole = FusionClassifier(**PARAMS, weighting="mla").fit(*_concatenated(chunks))
    _assert_same_weights(streamed, whole)


def test_unshuffled_streaming_regressor_equals_fit_over_the_concatenation():
    chunks = _chunks(5)
    source = ChunkSource(lambda: ((X, t) for X, _, t in chunks), buffer_rows=16)
    streamed = FusionRegressor(**PARAMS).fit(source)
    X_all, t_all = _concatenated(chunks, 2)
    whole = FusionRegressor(**PARAMS).fit(X_all, t_all)
    np.testing.assert_allclose(streamed.y_mean_, [t_all.mean()], rtol=1e-12)
    np.testing.assert_allclose(streamed.y_scale_, [t_all.std()], rtol=1e-12)
    _assert_same_weights(streamed, whole)
    np.testing.assert_allclose(streamed.predict(X_all), whole.predict(X_all), rtol=1e-5)


def test_an_lr_schedule_sees_the_length_of_training_from_the_first_pass():
    pairs = [(X, y) for X, y, _ in _chunks(11)]
    params = {**PARAMS, "lr_schedule": lambda progress: 1.0 - progress}
    streamed = FusionClassifier(**params).fit(ChunkSource(pairs, buffer_rows=10))
    whole = FusionClassifier(**params).fit(*_concatenated(_chunks(11)))
    _assert_same_weights(streamed, whole)
    assert streamed.net_.history[-1, "batches", -1, "event_lr"] == pytest.approx(
        0.05 * (1 - 15 / 16)  # 2 epochs of 8 batches (64 rows): the last step is 15 of 16
    )


def test_a_class_weight_dict_weighs_rows_and_statistics_as_in_memory():
    chunks = _chunks(6)
    params = {**PARAMS, "class_weight": {0: 1.0, 1: 3.0, 2: 0.5}}
    streamed = FusionClassifier(**params).fit(ChunkSource([(X, y) for X, y, _ in chunks]))
    whole = FusionClassifier(**params).fit(*_concatenated(chunks))
    _assert_same_weights(streamed, whole)


def test_parquet_folder_round_trip(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    chunks = _chunks(7)
    frames = [_frame(X, y) for X, y, _ in chunks]
    # two files, the second in row groups of 13 rows: 20 | 13 + 13 + 13 + 5
    pq.write_table(pa.Table.from_pandas(frames[0]), tmp_path / "part-0.parquet")
    both = pd.concat(frames[1:], ignore_index=True)
    pq.write_table(pa.Table.from_pandas(both), tmp_path / "part-1.parquet", row_group_size=13)
    source = ParquetSource(tmp_path, target="label", buffer_rows=10)
    assert source.n_chunks == 5 and source.n_rows == sum(SIZES)
    streamed = FusionClassifier(**PARAMS).fit(source)
    everything = pd.concat(frames, ignore_index=True)
    whole = FusionClassifier(**PARAMS).fit(everything.drop(columns="label"), everything["label"])
    _assert_same_weights(streamed, whole)
    assert list(streamed.feature_names_in_) == list(whole.feature_names_in_)
    assert streamed.modalities_ == {"a": (3,), "b": (2,)}
    fold = ParquetSource(tmp_path, target="label", rows=np.arange(15, 40))
    assert sum(len(c.y) for c in fold.read()) == 25
    np.testing.assert_array_equal(source.read_target(), everything["label"].to_numpy())


def test_dask_frame_streams_by_partition():
    dd = pytest.importorskip("dask.dataframe")
    chunks = _chunks(8)
    frame = pd.concat([_frame(X, y) for X, y, _ in chunks], ignore_index=True)
    ddf = dd.from_pandas(frame, npartitions=3, sort=False)
    streamed = FusionClassifier(**PARAMS).fit(DaskSource(ddf, target="label"))
    whole = FusionClassifier(**PARAMS).fit(frame.drop(columns="label"), frame["label"])
    _assert_same_weights(streamed, whole)


def test_shuffled_streaming_is_reproducible_and_shuffles():
    pairs = [(X, y) for X, y, _ in _chunks(9)]
    params = {**PARAMS, "shuffle": True}
    before = torch.get_rng_state()
    first = FusionClassifier(**params).fit(ChunkSource(pairs, buffer_rows=10))
    again = FusionClassifier(**params).fit(ChunkSource(pairs, buffer_rows=10))
    assert torch.equal(torch.get_rng_state(), before)
    _assert_same_weights(first, again)
    in_order = FusionClassifier(**PARAMS).fit(ChunkSource(pairs, buffer_rows=10))
    assert not torch.allclose(first.module_.head.weight, in_order.module_.head.weight)


# -- refusals and bad sources ---------------------------------------------------------------


def test_a_one_shot_generator_is_refused_before_reading():
    pairs = [(X, y) for X, y, _ in _chunks()]
    read = []

    def generate():
        for pair in pairs:
            read.append(1)
            yield pair

    model = FusionClassifier(**PARAMS)
    with raises_exactly(StreamError, r"one-shot iterator \(generator\).*reads the chunks 3 times"):
        model.fit(ChunkSource(generate()))
    assert not read and not hasattr(model, "net_")


def test_a_callable_that_returns_an_exhausted_iterator_is_caught():
    stream = iter([(X, y) for X, y, _ in _chunks()])
    model = FusionClassifier(**PARAMS)
    with raises_exactly(StreamError, r"gave 0 rows in this epoch but 64 in the first pass"):
        model.fit(ChunkSource(lambda: stream))
    assert not hasattr(model, "net_") and not hasattr(model, "classes_")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"early_stopping": True}, r"streamed source cannot use early_stopping"),
        ({"train_split": lambda *a: None}, r"streamed source cannot use train_split"),
        ({"class_weight": "balanced"}, r"cannot use class_weight: class_weight='balanced'"),
        ({"weighting": "qmf"}, r"cannot train weighting 'qmf' \(QMFWeighting\): it needs every"),
        ({"weighting": "pmr"}, r"cannot train weighting 'pmr' \(PMRWeighting\): it needs every"),
    ],
    ids=["early_stopping", "train_split", "balanced", "qmf", "pmr"],
)
def test_what_a_streamed_fit_cannot_honour_is_refused_by_name(params, message):
    pairs = [(X, y) for X, y, _ in _chunks()]
    model = FusionClassifier(**{**PARAMS, **params})
    with raises_exactly(ValueError, message):
        model.fit(ChunkSource(pairs))
    assert not hasattr(model, "net_")


def test_y_sample_weight_and_partial_fit_with_a_source_are_refused():
    pairs = [(X, y) for X, y, _ in _chunks()]
    source = ChunkSource(pairs)
    with raises_exactly(TypeError, r"got a streamed source and y: the source holds the target"):
        FusionClassifier().fit(source, pairs[0][1])
    with raises_exactly(TypeError, r"cannot take sample_weight with a streamed source"):
        FusionClassifier().fit(source, sample_weight=np.ones(3))
    with raises_exactly(TypeError, r"partial_fit takes one in-memory chunk"):
        FusionClassifier().partial_fit(source, None, classes=[0, 1, 2])


def test_missing_target_column_names_the_file(tmp_path):
    pytest.importorskip("pyarrow")
    X, y, _ = _chunks()[0]
    _frame(X, y).to_parquet(tmp_path / "a.parquet")
    _frame(X).to_parquet(tmp_path / "b.parquet")
    with raises_exactly(StreamError, r"b.parquet: target column 'label' is not among its columns"):
        ParquetSource(tmp_path, target="label")


def test_a_non_numeric_parquet_column_is_named(tmp_path):
    pytest.importorskip("pyarrow")
    X, y, _ = _chunks()[0]
    frame = _frame(X, y).assign(a__name="x")
    frame.to_parquet(tmp_path / "a.parquet")
    with raises_exactly(
        StreamError, r"a.parquet: columns \['a__name'\] have types \['string|large"
    ):
        ParquetSource(tmp_path / "a.parquet", target="label")


def test_a_file_with_other_columns_is_named(tmp_path):
    pytest.importorskip("pyarrow")
    X, y, _ = _chunks()[0]
    _frame(X, y).to_parquet(tmp_path / "a.parquet")
    _frame(X, y).drop(columns="b__1").to_parquet(tmp_path / "b.parquet")
    with raises_exactly(StreamError, r"b.parquet has other columns than a.parquet: missing \['b"):
        ParquetSource(tmp_path, target="label")


def test_a_chunk_with_other_columns_is_named():
    (X0, y0, _), (X1, y1, _), _ = _chunks()
    changed = _frame(X1).rename(columns={"b__1": "c__1"})
    source = ChunkSource([(_frame(X0), y0), (changed, y1)])
    with raises_exactly(StreamError, r"chunk 1 has other columns than the first chunk .*c__1"):
        FusionClassifier(**PARAMS).fit(source)
    ddf_module = pytest.importorskip("dask.dataframe")
    frames = [_frame(X0, y0), _frame(X1, y1).rename(columns={"b__1": "c__1"})]
    ddf = ddf_module.from_delayed(
        [ddf_module.from_pandas(f, npartitions=1).to_delayed()[0] for f in frames],
        meta=frames[0],
        verify_meta=False,
    )
    with raises_exactly(StreamError, r"partition 1 of the Dask DataFrame has other columns .*c__1"):
        FusionClassifier(**PARAMS).fit(DaskSource(ddf, target="label"))


def test_a_chunk_of_another_width_or_dtype_is_named():
    (X0, y0, _), (X1, y1, _), _ = _chunks()
    narrow = {"a": X1["a"][:, :2], "b": X1["b"]}
    with raises_exactly(StreamError, r"chunk 1: modality 'a': X has 2 features, but .* 3"):
        FusionClassifier(**PARAMS).fit(ChunkSource([(X0, y0), (narrow, y1)]))
    text = {"a": X1["a"].astype(str).astype(object), "b": X1["b"]}
    text["a"][0, 0] = "high"
    with raises_exactly(StreamError, r"chunk 1: .*modality 'a'"):
        FusionClassifier(**PARAMS).fit(ChunkSource([(X0, y0), (text, y1)]))
    with raises_exactly(StreamError, r"chunk 1: .*labels .* cannot be compared"):
        FusionClassifier(**PARAMS).fit(ChunkSource([(X0, y0), (X1, y1.astype(str))]))
    with raises_exactly(StreamError, r"chunk 1 is tuple of length 3; every chunk must be a pair"):
        FusionClassifier(**PARAMS).fit(ChunkSource([(X0, y0), (X1, y1, y1)]))


# -- dask-ml ----------------------------------------------------------------------------------


def test_dask_ml_incremental_trains_partition_by_partition_on_a_local_cluster():
    """``Incremental`` calls ``partial_fit`` once per block: with ``shuffle_blocks=False`` and
    partitions of whole batches, one pass equals ``fit`` with ``max_epochs=1`` in memory. Each
    partition holds every column's values in another order, so the first partition's
    standardisation (``partial_fit``'s) is that of all rows."""
    dd = pytest.importorskip("dask.dataframe")
    distributed = pytest.importorskip("distributed")
    incremental = pytest.importorskip("dask_ml.wrappers").Incremental
    rng = np.random.default_rng(10)
    first = _frame({"a": rng.normal(2.0, 3.0, (16, 3)), "b": rng.normal(size=(16, 2))})
    first["label"] = np.arange(16) % 3
    blocks = [first] + [first.apply(lambda c: rng.permutation(c.to_numpy())) for _ in range(2)]
    frame = pd.concat(blocks, ignore_index=True)
    ddf = dd.from_pandas(frame, npartitions=3, sort=False)  # 16 rows each: two batches
    features, target = ddf.drop(columns="label"), ddf["label"]
    params = {**PARAMS, "max_epochs": 1}
    with (
        distributed.LocalCluster(
            processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster, timeout=30),
    ):
        wrapped = incremental(FusionClassifier(**params), shuffle_blocks=False)
        wrapped.fit(features, target, classes=[0, 1, 2])
        predicted = wrapped.predict(features).compute()
        array = incremental(
            FusionClassifier(**params, modalities={"a": 3, "b": 2}), shuffle_blocks=False
        )
        array.fit(
            features.to_dask_array(lengths=True),
            target.to_dask_array(lengths=True),
            classes=[0, 1, 2],
        )
    whole = FusionClassifier(**params).fit(frame.drop(columns="label"), frame["label"])
    _assert_same_weights(wrapped.estimator_, whole)
    _assert_same_weights(array.estimator_, whole)  # the same blocks, as arrays
    np.testing.assert_array_equal(predicted, whole.predict(frame.drop(columns="label")))
