"""``fit`` over a :class:`~fusekit.streaming.source.StreamSource`: training out of core.

1. A first pass over the chunks fixes the modality layout (from the first chunk), checks every
   chunk against it, merges the standardisation statistics (:mod:`.statistics`), collects the
   classes (classifier) or the target's mean and scale (regressor) and counts the rows.
2. Each epoch streams the chunks again in a shuffled order, in windows of ``buffer_rows`` rows
   shuffled within (:mod:`.order`), into skorch's loop (:class:`~fusekit.engine.streamed.
   StreamedData`), so that history, callbacks, plugins' epoch hooks and lr schedules work as in
   memory. Seeded from ``random_state`` as the in-memory fit: with ``shuffle=False`` the batches,
   and so the weights, are those of ``fit`` over the concatenated chunks.

Not available on a streamed source (refused up front, by name): validation (``early_stopping``,
``train_split``: hold rows out in a source of their own and score them between fits, or use a
skorch callback on the training loss), ``sample_weight`` and ``class_weight="balanced"`` (a dict
``class_weight`` works), continuing with ``warm_start`` (use ``partial_fit``), and methods that
keep state per training row (``needs_all_training_rows``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_array, column_or_1d

from fusekit.data import PreparedInput, presence_mask, split_modalities
from fusekit.engine.streamed import StreamedData
from fusekit.plugin import ModalityBatch, TrainingData
from fusekit.streaming.order import Piece, chunk_order, windows
from fusekit.streaming.source import Chunk, StreamError, StreamSource
from fusekit.streaming.statistics import RunningMoments, StreamingStandardizer


def fit_stream(estimator: Any, source: StreamSource, y: Any, sample_weight: Any) -> None:
    """Train ``estimator`` on ``source`` (see the module docstring); ``y`` and
    ``sample_weight`` must be ``None`` (the target is in the source)."""
    check_settings(estimator, y, sample_weight)
    source.check_reads(int(estimator.max_epochs) + 1)
    scan = _Scan(estimator)
    for chunk in source.read():
        scan.add(chunk)
    scan.finish(source)
    network = _train(estimator, source, scan)
    network.eval()


def check_settings(estimator: Any, y: Any, sample_weight: Any) -> None:
    """The settings a streamed fit cannot honour, refused before anything is read."""
    owner = type(estimator).__name__
    if y is not None:
        raise TypeError(
            f"{owner}.fit got a streamed source and y: the source holds the target (its "
            "target= column, or the y of each (X, y) chunk). Call fit(source)."
        )
    if sample_weight is not None:
        raise TypeError(
            f"{owner}.fit cannot take sample_weight with a streamed source: weights for every "
            "row would have to be in memory. Weight by class with class_weight={class: weight}, "
            "or call partial_fit per chunk with that chunk's sample_weight."
        )
    refusals = {
        "early_stopping": (
            estimator.early_stopping,
            "early_stopping=True holds out validation_fraction of all the rows, which a "
            "streamed source does not keep in memory. Hold the validation rows out in a source "
            "of their own and score them after fit (or between partial_fit calls)",
        ),
        "train_split": (
            estimator.train_split is not None,
            f"train_split={estimator.train_split!r} splits the training rows in memory; a "
            "streamed fit trains on every row of the source. Pass train_split=None and hold the "
            "validation rows out in a source of their own",
        ),
        "warm_start": (
            estimator._continues(),
            "warm_start=True would continue the fitted model, but a streamed fit starts anew "
            "(its statistics come from the first pass). Continue with partial_fit per chunk, or "
            "set warm_start=False",
        ),
        "class_weight": (
            isinstance(getattr(estimator, "class_weight", None), str),
            "class_weight='balanced' needs the class frequencies before the first pass; pass "
            "them as a dict {class: weight}",
        ),
    }
    for name, (refused, why) in refusals.items():
        if refused:
            raise ValueError(f"{owner}.fit on a streamed source cannot use {name}: {why}.")


def check_streamable(owner: str, network: Any) -> None:
    """A ``ValueError`` naming the components that need every training row in memory."""
    refused = [
        network.label(c)
        for c in network.components()
        if c.needs_all_training_rows or c.needs_training_data
    ]
    if refused:
        raise ValueError(
            f"{owner}.fit on a streamed source cannot train {', '.join(refused)}: it needs every "
            "training row in memory at once (needs_all_training_rows: state per training row or "
            "a split of all rows; needs_training_data: reads all rows each epoch, e.g. PMR's "
            "prototypes). Load the data in memory, or use a method that trains per batch."
        )


def _located(error: Exception, where: str) -> Exception:
    """``error`` re-raised as a ``StreamError`` (a ``TypeError`` stays one) naming the chunk."""
    message = f"{where}: {error}"
    return TypeError(message) if isinstance(error, TypeError) else StreamError(message)


def prepare_chunk(estimator: Any, chunk: Chunk, first: bool) -> PreparedInput:
    """The chunk's features validated against the layout (``first``: recorded from it), with
    the presence mask, unstandardised."""
    try:
        arrays, layout = split_modalities(chunk.X, estimator.modalities, estimator, reset=first)
        prepared = presence_mask(arrays)
    except (ValueError, TypeError) as error:
        raise _located(error, chunk.where) from error
    if first:
        raw = {m: k for m, k in layout.kinds.items() if k in ("text", "categorical")}
        if raw:
            raise StreamError(
                f"{chunk.where}: a streamed fit reads numeric modalities only, but {raw} are "
                "text / categorical; fit them in memory (their encoders are fitted on all rows)"
            )
        if not isinstance(estimator.standardize, bool):
            raise StreamError(
                f"a streamed fit takes standardize=True or False, got {estimator.standardize!r} "
                "(per-modality standardisation is for in-memory fits)"
            )
        estimator.layout_ = layout
        estimator.modalities_ = dict(layout.shapes)
        estimator.input_encoders_ = {}  # numeric modalities: nothing to encode
    if prepared.n_samples != len(chunk.y):
        raise StreamError(
            f"{chunk.where}: X has {prepared.n_samples} rows but y has {len(chunk.y)}; pass one "
            "target per row."
        )
    return prepared


class _Scan:
    """The first pass: layout, statistics, classes or target scaling, and row counts."""

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator
        self.classifier = estimator._task == "classification"
        self.stats = StreamingStandardizer()
        self.labels: np.ndarray | None = None
        self.target = RunningMoments((0,))
        self.target_shape: tuple[int, ...] | None = None
        self.first_rows: dict[int, int] = {}  # chunk number -> position of its first row
        self.n_rows = 0

    def add(self, chunk: Chunk) -> None:
        first = not self.first_rows
        prepared = prepare_chunk(self.estimator, chunk, first)
        y = validated_target(self.estimator, chunk)
        if self.classifier:
            try:
                labels = np.unique(y)
                if self.labels is not None and _is_number(labels) != _is_number(self.labels):
                    raise TypeError("numbers and strings")
                self.labels = labels if self.labels is None else np.union1d(self.labels, labels)
            except TypeError as error:
                raise StreamError(
                    f"{chunk.where}: its labels {np.unique(y.astype(str)).tolist()[:5]} cannot "
                    f"be compared with the earlier chunks' ({self.labels.tolist()[:5]}): {error}. "
                    "Give every chunk labels of one kind."
                ) from error
        else:
            if self.target_shape is None:
                self.target_shape = y.shape[1:]
            elif y.shape[1:] != self.target_shape:
                raise StreamError(
                    f"{chunk.where}: y has shape {y.shape}, but the first chunk's y has "
                    f"{self.target_shape or 'one'} output(s) per row. Every chunk needs the same."
                )
            self.target.update(y.reshape(len(y), -1), np.ones((len(y), 1)))
        if self.estimator.standardize:
            self.stats.update(prepared, self.weights(y))
        self.first_rows[chunk.number] = self.n_rows
        self.n_rows += prepared.n_samples

    def weights(self, y: np.ndarray) -> np.ndarray | None:
        class_weight = getattr(self.estimator, "class_weight", None)
        return None if class_weight is None else compute_sample_weight(class_weight, y)

    def finish(self, source: StreamSource) -> None:
        """Set the fitted statistics; refuse an empty source, one class, a modality never
        present."""
        estimator = self.estimator
        if not self.n_rows:
            raise StreamError(f"the source {source!r} holds no rows.")
        if self.n_rows < 2:
            raise StreamError(
                f"{type(estimator).__name__} needs at least 2 rows, {source!r} has 1."
            )
        names = estimator.layout_.names
        if estimator.standardize:
            never = [m for m in names if not self.stats.present(m)]
            if never:
                raise StreamError(
                    f"modalities {never} are absent (all NaN) in every row of {source!r}; "
                    "nothing can be learned from them. Drop them from the source."
                )
            estimator.standardizer_ = self.stats.standardizer()
        else:
            estimator.standardizer_ = None
        if self.classifier:
            self._set_classes()
        else:
            mean, scale = self.target.mean_std()
            mean, scale = mean.reshape(-1), scale.reshape(-1)
            estimator.y_mean_ = mean
            estimator.y_scale_ = np.where(scale > 0, scale, 1.0)
            estimator.n_outputs_ = len(mean)
            estimator._y_1d = self.target_shape == ()

    def _set_classes(self) -> None:
        classes = self.labels
        kind = type_of_target(classes, input_name="y")
        if kind not in ("binary", "multiclass"):
            check_classification_targets(classes)  # scikit-learn's message for continuous y
            raise StreamError(f"FusionClassifier supports binary and multiclass y, got {kind}.")
        if len(classes) < 2:
            raise StreamError(
                "FusionClassifier needs samples of at least 2 classes in the data, but the source "
                f"holds only one class: {classes[0]!r}."
            )
        self.estimator.classes_ = classes


def _is_number(labels: np.ndarray) -> bool:
    return labels.dtype.kind in "biuf"


def validated_target(estimator: Any, chunk: Chunk) -> np.ndarray:
    """The chunk's ``y`` checked as ``fit`` checks it in memory, errors naming the chunk."""
    try:
        if estimator._task == "classification":
            return column_or_1d(
                check_array(chunk.y, ensure_2d=False, dtype=None, input_name="y"), warn=True
            )
        y = check_array(chunk.y, ensure_2d=False, dtype=np.float64, input_name="y")
    except (ValueError, TypeError) as error:
        raise _located(error, chunk.where) from error
    if y.ndim > 2:
        raise StreamError(f"{chunk.where}: y must be (n,) or (n, k), got shape {y.shape}.")
    return y


def _encoded_target(estimator: Any, y: np.ndarray, where: str) -> np.ndarray:
    if estimator._task == "classification":
        known = np.isin(y, estimator.classes_)
        if not known.all():  # a source that changed between passes
            raise StreamError(
                f"{where}: labels {np.unique(y[~known]).tolist()[:5]} were not in the first pass."
            )
        return np.searchsorted(estimator.classes_, y)
    scaled = (y.reshape(len(y), -1) - estimator.y_mean_) / estimator.y_scale_
    if not np.isfinite(scaled).all() or np.abs(scaled).max() > np.finfo(np.float32).max ** 0.5:
        raise StreamError(
            f"{where}: y cannot be standardised for training (a value overflows float32 once "
            "scaled by the first pass's mean and scale). Rescale y before fitting."
        )
    return scaled.astype(np.float32)


def _piece(estimator: Any, chunk: Chunk, first_rows: dict[int, int], scan: _Scan) -> Piece:
    if chunk.number not in first_rows:
        raise StreamError(
            f"{chunk.where} was not in the first pass; a source must give the same "
            "chunks every pass."
        )
    prepared = prepare_chunk(estimator, chunk, first=False)
    y = validated_target(estimator, chunk)
    if estimator.standardizer_ is not None:
        prepared = estimator.standardizer_.transform(prepared)
    start = first_rows[chunk.number]
    return Piece(
        prepared,
        _encoded_target(estimator, y, chunk.where),
        scan.weights(y),
        np.arange(start, start + prepared.n_samples),
    )


def _training_data(estimator: Any, piece: Piece) -> TrainingData:
    device = torch.device(estimator.device)
    data = piece.data
    inputs = ModalityBatch(
        features={n: torch.from_numpy(a).to(device) for n, a in data.arrays.items()},
        mask=torch.from_numpy(data.mask).to(device),
        index=torch.from_numpy(piece.rows).to(device),
        steps={n: torch.from_numpy(s).to(device) for n, s in data.steps.items()},
        complete=bool(data.mask.all()),
    )
    if piece.weights is not None:
        inputs.sample_weight = torch.as_tensor(piece.weights, dtype=torch.float32, device=device)
    dtype = torch.long if estimator._task == "classification" else torch.float32
    target = torch.as_tensor(piece.target, dtype=dtype, device=device)
    return TrainingData(inputs, target.reshape(-1) if dtype == torch.long else target)


def _train(estimator: Any, source: StreamSource, scan: _Scan) -> Any:
    """Build the network and train it for ``max_epochs`` streamed epochs (seeded as the
    in-memory ``fit``: the same initial weights and shuffling generator)."""
    rng = check_random_state(estimator.random_state)
    seed = int(rng.randint(np.iinfo(np.int32).max))
    first_rows, n_rows = scan.first_rows, scan.n_rows
    n_outputs = len(estimator.classes_) if scan.classifier else estimator.n_outputs_

    def epoch(shuffle: bool, generator: torch.Generator | None) -> Iterator[TrainingData]:
        order = chunk_order(source.n_chunks, shuffle, generator)
        pieces = (_piece(estimator, c, first_rows, scan) for c in source.read(order))
        seen = 0
        for window in windows(pieces, source.buffer_rows, int(estimator.batch_size)):
            seen += len(window)
            yield _training_data(estimator, window)
        if seen != n_rows:
            raise StreamError(
                f"the source {source!r} gave {seen} rows in this epoch but {n_rows} in the first "
                "pass; it must give the same rows every pass (a ChunkSource callable must return "
                "a fresh iterator each call)."
            )

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        assembly = estimator._assemble(n_outputs)
        network = assembly.network
        check_streamable(type(estimator).__name__, network)
        net = estimator._make_net(assembly, None)
        net.generator = torch.Generator().manual_seed(seed)
        net.fit(StreamedData(epoch, n_rows), None)
    estimator.net_ = net
    estimator.plugins_ = assembly.plugins
    estimator._set_training_record(net)
    return network
