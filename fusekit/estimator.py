"""``FusionClassifier`` and ``FusionRegressor``: scikit-learn estimators over multimodal input.

Composition, not inheritance: a raw skorch ``NeuralNetClassifier`` fails a third of scikit-learn's
``check_estimator`` (attributes set in ``__init__``, string labels, ``predict`` returning indices,
no input validation). These are plain ``BaseEstimator`` subclasses whose ``fit`` validates the
input once (:mod:`fusekit.data`), encodes the target, builds the network from the plugin registry
and trains it with a private skorch net (``net_``), keeping skorch's loop and callbacks.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels
from sklearn.utils.validation import (
    _check_sample_weight,
    check_array,
    check_is_fitted,
    column_or_1d,
)
from torch.optim import Optimizer

from fusekit import devices, persistence, raw_inputs, threads
from fusekit.data import (
    PreparedInput,
    Standardizer,
    split_modalities,
    weighted_mean_std,
)
from fusekit.engine import assemble, compilation, frozen_cache
from fusekit.engine import distributed as data_parallel
from fusekit.engine.network import FusionNetwork
from fusekit.engine.precision import autocast, carry_over
from fusekit.engine.resolve import PREFIXES
from fusekit.engine.settings import AUTO, check_setting
from fusekit.engine.stopping import FixedSplit
from fusekit.engine.training import FusionNet
from fusekit.parameters import (
    CLASSIFIER_CONSTRAINTS,
    ESTIMATOR_CONSTRAINTS,
    check_callbacks,
    check_class_weight,
)
from fusekit.plugin import FusionOutput, ModalityBatch, TrainingData
from fusekit.streaming.fit import fit_stream
from fusekit.streaming.source import StreamSource

NESTED_PREFIXES = (*PREFIXES, "optimizer", "callbacks", "compile")
#: The fitted training settings stored since format 3 (``lr_`` is in the training record too).
_SETTINGS = ("optimizer_", "lr_schedule_", "training_settings_")


class _FusionEstimator(BaseEstimator):
    """Shared parameters, input preparation and training of both estimators."""

    _task: str = ""
    _parameter_constraints: dict = ESTIMATOR_CONSTRAINTS
    #: The fitted state, declared once: the attributes ``fit`` sets that ``save`` stores by value
    #: (each by its type, :mod:`fusekit.encoding`) and ``load`` sets back as they were, never
    #: recomputing them. ``n_features_in_`` is set for array and DataFrame input only,
    #: ``feature_names_in_`` for DataFrames only.
    _fitted_attributes: tuple[str, ...] = (
        "n_features_in_",
        "feature_names_in_",
        "n_iter_",
        "loss_curve_",
        "validation_scores_",
        "best_epoch_",
        "lr_",
        "optimizer_",
        "lr_schedule_",
        "training_settings_",
        "device_",
    )
    #: The rest of the fitted state, held in the model file's own sections: the modality layout
    #: (``modalities_`` is derived from it), the standardisation, and the skorch net, stored as
    #: its network's weights and rebuilt around them.
    #: ``plugins_`` (the registered plugins the network uses: kind, name, distribution, version)
    #: is the file's plugin record, which ``load`` checks against the installed plugins first.
    _fitted_frame: tuple[str, ...] = (
        "layout_",
        "modalities_",
        "standardizer_",
        "input_encoders_",  # fitted encoders of the text / categorical modalities (raw_inputs)
        "net_",
        "plugins_",
    )

    def __init__(
        self,
        backbone: Any = "mlp",
        calibration: Any = "none",
        fusion: Any = "concat",
        weighting: Any = "none",
        *,
        modalities: dict | None = None,
        layout: str | dict | None = None,
        frozen_backbones: tuple[str, ...] | list[str] = (),
        standardize: bool | dict = True,
        max_epochs: int = 30,
        batch_size: int = 64,
        shuffle: bool = True,
        lr: float | str = "auto",
        optimizer: Any = "auto",
        lr_schedule: Any = "auto",
        train_split: Any = None,
        callbacks: list | None = None,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        tol: float = 1e-4,
        warm_start: bool = False,
        predict_batch_size: int = 1024,
        random_state: int | np.random.RandomState | None = None,
        device: str = "cpu",
        n_jobs: int | None = None,
        precision: str = "32",
        compile: bool = False,
        distributed: bool | str = "auto",
        verbose: int = 0,
        **kwargs: Any,
    ) -> None:
        self.backbone = backbone
        self.calibration = calibration
        self.fusion = fusion
        self.weighting = weighting
        self.modalities = modalities
        self.layout = layout
        self.frozen_backbones = frozen_backbones
        self.standardize = standardize
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.lr = lr
        self.optimizer = optimizer
        self.lr_schedule = lr_schedule
        self.train_split = train_split
        self.callbacks = callbacks
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.warm_start = warm_start
        self.predict_batch_size = predict_batch_size
        self.random_state = random_state
        self.device = device
        self.n_jobs = n_jobs
        self.precision = precision
        self.compile = compile
        self.distributed = distributed
        self.verbose = verbose
        for key, value in kwargs.items():
            setattr(self, key, value)

    # -- parameters: skorch-style prefix routing ---------------------------------------------
    def _nested_params(self) -> dict[str, Any]:
        """Parameters passed through ``**kwargs`` (validated at ``fit``, never in ``__init__``)."""
        own = set(self._get_param_names())
        return {
            key: value
            for key, value in vars(self).items()
            if key not in own and not key.endswith("_") and not key.startswith("_")
        }

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        params = super().get_params(deep=deep)
        params.update(self._nested_params())
        return params

    def set_params(self, **params: Any) -> _FusionEstimator:
        nested = {k: v for k, v in params.items() if "__" in k}
        for key, value in nested.items():
            setattr(self, key, value)
        plain = {k: v for k, v in params.items() if "__" not in k}
        if plain:
            super().set_params(**plain)
        return self

    def __sklearn_tags__(self):  # noqa: ANN204 - sklearn's Tags type
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.non_deterministic = False
        return tags

    # -- input -------------------------------------------------------------------------------
    def _prepare(self, X: Any, reset: bool, standardize: bool = True) -> PreparedInput:
        """Validated float32 arrays and mask; standardised unless ``standardize=False``.

        ``reset``: the layout is fitted; so is the standardisation, unless ``standardize=False``
        leaves it to the caller (``fit`` fits it once, weighted: :meth:`_standardize_training`)."""
        arrays, layout = split_modalities(X, self.modalities, self, reset=reset)
        n = next(iter(arrays.values())).shape[0]
        if n == 0:
            raise ValueError(
                f"Found array with 0 sample(s) (shape {(0, *next(iter(layout.shapes.values())))}) "
                f"while a minimum of 1 is required by {type(self).__name__}."
            )
        if reset:  # text / categorical modalities go through their backbones' encoders
            chosen = raw_inputs.backbones(self, layout.names)
            layout.kinds = raw_inputs.resolve_kinds(arrays, chosen)
            encoders = {m: chosen[m].component.input_encoder() for m in layout.kinds}
        else:
            raw_inputs.check_kinds(arrays, layout)
            encoders = self.input_encoders_
        prepared = raw_inputs.prepare(arrays, layout.kinds, encoders, fit=reset)
        if reset:
            never = [m for i, m in enumerate(layout.names) if not prepared.mask[:, i].any()]
            if never:
                raise ValueError(
                    f"modalities {never} are absent (all NaN) in every training row; nothing can "
                    "be learned from them. Drop them from X."
                )
            self.layout_ = layout
            self.modalities_ = dict(layout.shapes)
            self.input_encoders_ = encoders
            if standardize:
                scaled = raw_inputs.standardized(self.standardize, layout)
                self.standardizer_ = Standardizer.fit(prepared, names=scaled) if scaled else None
        if standardize and self.standardizer_ is not None:
            prepared = self.standardizer_.transform(prepared)
        return prepared

    def _standardize_training(
        self, prepared: PreparedInput, weights: np.ndarray | None, warm: bool
    ) -> PreparedInput:
        """The training rows standardised; a new fit fits the statistics here, once (weighted by
        ``weights`` when given); a continued fit keeps the fitted ones."""
        if not warm:
            scaled = raw_inputs.standardized(self.standardize, self.layout_)
            self.standardizer_ = (
                Standardizer.fit(prepared, weights, names=scaled) if scaled else None
            )
        return prepared if self.standardizer_ is None else self.standardizer_.transform(prepared)

    def _batch(
        self, prepared: PreparedInput, with_index: bool = False, device: str | None = None
    ) -> ModalityBatch:
        """The prepared rows as tensors on ``device`` (default: the fitted device ``device_``)."""
        device = torch.device(self.device_ if device is None else device)
        return ModalityBatch(
            features={n: torch.from_numpy(a).to(device) for n, a in prepared.arrays.items()},
            mask=torch.from_numpy(prepared.mask).to(device),
            index=torch.arange(prepared.n_samples, device=device) if with_index else None,
            steps={n: torch.from_numpy(s).to(device) for n, s in prepared.steps.items()},
            complete=bool(prepared.mask.all()),
        )

    # -- training ----------------------------------------------------------------------------
    def _build_network(self, n_outputs: int) -> FusionNetwork:
        """The network for this estimator's choices (:func:`.assemble.build_network`)."""
        choices = assemble.Choices.of(self.get_params(deep=False))
        return assemble.build_network(choices, n_outputs=n_outputs, **self._inputs())

    def _inputs(self) -> dict[str, Any]:
        """What the network is built over: the task, the (encoded) input shapes, the fitted
        input encoders and the frozen backbones."""
        return {
            "task": self._task,
            "input_shapes": raw_inputs.network_shapes(self.layout_, self.input_encoders_),
            "encoders": self.input_encoders_,
            "frozen": self.frozen_backbones,
        }

    def _check_params(self) -> None:
        """Every parameter's type and range (:mod:`fusekit.parameters`), the nested names and
        the combinations, before ``fit`` reads any input."""
        self._validate_params()
        owner = type(self).__name__
        check_callbacks(owner, self.callbacks)
        check_class_weight(owner, getattr(self, "class_weight", None))
        _check_nested_names(owner, self._nested_params(), self._get_param_names())
        compilation.check_options(owner, self._nested_params())
        if self.early_stopping and self.train_split is not None:
            raise ValueError(
                "early_stopping=True draws its own stratified, shuffled validation split from "
                f"validation_fraction, but train_split={self.train_split!r} was given too. Use "
                "one: train_split=None with early_stopping=True, or your train_split with a skorch "
                "EarlyStopping callback and early_stopping=False."
            )

    @contextlib.contextmanager
    def _unchanged_on_error(self) -> Iterator[None]:
        """Make ``fit`` atomic: on any exception (a Ctrl-C included) every attribute is put back
        as it was, so a failed refit leaves the previous model (or no model) whole.

        Restoring the attribute dictionary is enough because fitting never changes a previous
        fitted object in place (a continued fit trains a copy of the network, see ``_train``).
        """
        saved = dict(vars(self))
        try:
            yield
        except BaseException:
            vars(self).clear()
            vars(self).update(saved)
            raise

    def _record_settings(self, settings: assemble.TrainingSettings) -> None:
        """``lr_``, ``optimizer_``, ``lr_schedule_`` and ``training_settings_`` from the resolved
        (or, at load, stored) ``settings``."""
        self.training_settings_ = settings.sources
        self.lr_ = settings.lr
        self.optimizer_ = settings.optimizer
        self.lr_schedule_ = settings.lr_schedule

    def _assemble(
        self, n_outputs: int, partial: bool = False, network: FusionNetwork | None = None
    ) -> assemble.Assembly:
        """The network for this estimator's choices (or, continuing, ``network``) and its
        training settings, those left at ``"auto"`` resolved from its components
        (:func:`fusekit.engine.assemble.assemble`; ``partial``: a ``partial_fit`` call, constant
        lr); sets ``lr_``, ``optimizer_``, ``lr_schedule_`` and ``training_settings_``."""
        params = self.get_params(deep=False)
        assembly = assemble.assemble(
            assemble.Choices.of(params),
            n_outputs=n_outputs,
            requested=params,
            partial=partial,
            network=network,
            **self._inputs(),
        )
        self._record_settings(assembly.settings)
        return assembly

    def _make_net(
        self,
        assembly: assemble.Assembly,
        data: TrainingData | None,
        split: FixedSplit | None = None,
        resume: bool = False,
    ) -> FusionNet:
        """The private skorch net that trains ``assembly``'s network (hooks on ``data``'s rows);
        with an early-stopping ``split``, validates on its rows and stops on their loss;
        ``resume``: the components' state carries on (:func:`.assemble.make_net`)."""
        params = self.get_params(deep=False)
        return assemble.make_net(
            assembly.network, assembly.settings, params, data, split, self.device_, resume=resume
        )

    def _continues(self, partial: bool = False) -> bool:
        """Whether this ``fit`` continues the fitted network (``warm_start``; ``partial_fit``
        once a model is fitted)."""
        return (bool(self.warm_start) or partial) and hasattr(self, "net_")

    def _check_partial_fit_params(self) -> None:
        """The settings ``partial_fit`` cannot honour on one chunk per call, refused up front."""
        owner = type(self).__name__
        if self.early_stopping:
            raise ValueError(
                f"{owner}.partial_fit cannot use early_stopping=True: early stopping holds out "
                "validation_fraction of all the training rows and watches their loss over "
                "epochs, but partial_fit sees one chunk per call. Set early_stopping=False and "
                "score held-out rows between calls, or use fit."
            )
        if isinstance(getattr(self, "class_weight", None), str):
            raise ValueError(
                f"{owner}.partial_fit cannot use class_weight='balanced': it balances by the "
                "class frequencies of all the training rows, which partial_fit never sees at "
                "once. Compute the weights once, e.g. dict(zip(classes, compute_class_weight("
                "'balanced', classes=classes, y=y_sample))) from sklearn.utils.class_weight, and "
                "pass that dict as class_weight."
            )
        schedule = self.lr_schedule
        if schedule is not None and not (isinstance(schedule, str) and schedule == AUTO):
            raise ValueError(
                f"{owner}.partial_fit cannot follow lr_schedule={schedule!r}: a schedule maps "
                "training progress in [0, 1] to a factor on lr, but partial_fit does not know "
                "how long training will run. Pass lr_schedule=None (constant lr), or use fit."
            )

    def _sample_weight(
        self, sample_weight: Any, n_samples: int, y: np.ndarray | None = None
    ) -> np.ndarray | None:
        """Validated ``(n,)`` float64 weights (times ``class_weight``), or ``None`` (unweighted)."""
        class_weight = getattr(self, "class_weight", None)
        if sample_weight is None and class_weight is None:
            return None
        rows = np.empty((n_samples, 0))
        weights = _check_sample_weight(
            sample_weight, rows, dtype=np.float64, ensure_non_negative=True
        )
        if class_weight is not None:
            weights = weights * compute_sample_weight(class_weight, y)
        if not weights.sum() > 0:
            raise ValueError(
                "sample_weight (times class_weight) sums to zero: no training row would count. "
                "Give at least one row a positive weight."
            )
        return weights

    def _validation_split(
        self, n_samples: int, stratify: np.ndarray | None, seed: int
    ) -> FixedSplit:
        """A shuffled, seeded split holding out ``validation_fraction`` of the rows (stratified
        by class for classifiers)."""
        try:
            train_rows, valid_rows = train_test_split(
                np.arange(n_samples),
                test_size=self.validation_fraction,
                shuffle=True,
                stratify=stratify,
                random_state=seed,
            )
        except ValueError as error:  # too few rows of a class for a stratified split
            raise ValueError(
                "early_stopping=True cannot hold out validation_fraction="
                f"{self.validation_fraction} of the {n_samples} training rows: {error} Raise "
                "validation_fraction, or train without early_stopping."
            ) from None
        return FixedSplit(np.sort(train_rows), np.sort(valid_rows))

    def _train(
        self,
        prepared: PreparedInput,
        target: torch.Tensor,
        n_outputs: int,
        sample_weight: np.ndarray | None = None,
        stratify: np.ndarray | None = None,
        partial: bool = False,
    ) -> None:
        """Train a new network, or continue the fitted one (``warm_start``; ``partial_fit`` once
        fitted), for ``max_epochs`` epochs, or one with ``partial``.

        A ``partial_fit`` after a ``partial_fit`` also continues the random streams (the global
        torch RNG of dropout and the plugins, the shuffling generator), so calls on consecutive
        chunks draw what one epoch over their concatenation would."""
        parallel = data_parallel.setup(self.distributed, type(self).__name__)
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        split_seed = int(rng.randint(np.iinfo(np.int32).max)) if self.early_stopping else None
        if parallel is not None:  # one shuffling order and split in every process
            seed, split_seed = parallel.same_everywhere(seed, split_seed)
        inputs = self._batch(prepared, with_index=True)
        if sample_weight is not None:
            inputs.sample_weight = torch.as_tensor(
                sample_weight, dtype=torch.float32, device=inputs.mask.device
            )
        split = None
        if self.early_stopping:
            split = self._validation_split(prepared.n_samples, stratify, split_seed)
        previous = self.net_ if self._continues(partial) else None
        resumed = partial and previous is not None and previous.rng_state_ is not None
        with devices.forked_rng(self.device_) as forked:
            if resumed:
                torch.set_rng_state(previous.rng_state_)
            else:
                devices.manual_seed(seed, self.device_, forked)
            # a continued fit trains a copy, so that a failure leaves the fitted network as it was
            continued = None if previous is None else copy.deepcopy(previous.module_)
            assembly = self._assemble(n_outputs, partial, continued)
            network = assembly.network
            if partial:
                _check_chunkable(type(self).__name__, network)
            data_parallel.check_components(type(self).__name__, network, parallel)
            data = TrainingData(inputs, target)
            net = self._make_net(assembly, data, split, resume=partial and bool(previous))
            data_parallel.attach(net, parallel, None if resumed else seed)
            net.generator = torch.Generator().manual_seed(seed)
            if resumed:
                net.generator.set_state(previous.generator.get_state())
            epochs = {"epochs": 1} if partial else {}
            with frozen_cache.remembering_frozen_outputs(network, len(data), enabled=not partial):
                if previous is None:
                    net.fit(data, target, **epochs)
                else:
                    _carry_over(previous, net, self.lr_)
                    net.partial_fit(data, target, **epochs)
            if partial:
                net.rng_state_ = torch.get_rng_state()
            data_parallel.detach(net)
        network.eval()
        self.net_ = net
        self.plugins_ = assemble.plugins_used(network)
        self._set_training_record(net)

    def _set_training_record(self, net: FusionNet) -> None:
        """``n_iter_``, ``loss_curve_``, ``validation_scores_``, ``best_epoch_`` from skorch's
        history (every epoch of this model, warm-started fits included)."""
        history = net.history
        self.n_iter_ = len(history)
        self.loss_curve_ = [float(row.get("train_loss", np.nan)) for row in history]
        scores = [-float(row["valid_loss"]) if "valid_loss" in row else np.nan for row in history]
        self.validation_scores_ = None if np.isnan(scores).all() else scores
        stopper = dict(net.callbacks_).get("fusekit_early_stopping")
        self.best_epoch_ = None if stopper is None else stopper.best_epoch_

    def save(self, path: Any, key: str | bytes | None = None) -> Any:
        """Write the fitted model to ``path`` without pickle (see :func:`fusekit.load`),
        replacing an existing file only once the new one is complete; ``key`` signs it.

        After a data-parallel fit only rank 0 writes (every rank holds the same weights); on the
        other ranks ``save`` writes nothing and returns ``path``."""
        if not data_parallel.writes_files(getattr(self, "net_", None)):
            return Path(path)
        return persistence.write(self._get_state(), path, key=key)

    # -- state for save / load ---------------------------------------------------------------
    def _get_state(self) -> persistence.ModelState:
        """What ``save`` stores: parameters, layout, standardisation, weights and the declared
        fitted attributes (:attr:`_fitted_attributes`) that are set."""
        check_is_fitted(self, "net_")
        network = self.module_
        return persistence.ModelState(
            estimator=type(self).__name__,
            params=self.get_params(deep=False),
            layout=self.layout_,
            standardizer=self.standardizer_,
            weights=network.state_dict(),
            plugins=self.plugins_,
            fitted={k: getattr(self, k) for k in self._fitted_attributes if hasattr(self, k)},
            encoders={m: e.state() for m, e in self.input_encoders_.items()},
            plugin_names=assemble.plugin_names(network),
        )

    @classmethod
    def _from_state(
        cls, state: persistence.ModelState, device: str | None = None
    ) -> _FusionEstimator:
        """A fitted estimator rebuilt from a :class:`~fusekit.persistence.ModelState`, on
        ``device`` (default: the fitted device if present here, else the CPU with a warning).

        The fitted attributes are set as they were stored; the stored parameters' components
        are resolved once (:func:`.assemble.resolve_choices`), their backbones make the input
        encoders the stored states go into, and the network is built from them with the stored
        weights, the skorch net around it with the stored ``lr_``, ``optimizer_`` and
        ``lr_schedule_``: nothing is resolved again (files of format 2 and earlier, which hold
        no settings, resolve them: :meth:`_settings_of_a_format_2_file`). The network is first
        built on the ``meta`` device (nothing allocated) and its weight shapes compared with the
        stored ones, so a document declaring a huge shape is refused before anything is
        allocated.
        """
        unknown = sorted(set(state.fitted) - set(cls._fitted_attributes))
        if unknown:
            raise ValueError(
                f"the model file holds the fitted attributes {unknown}, which a {cls.__name__} "
                f"does not have (it has {list(cls._fitted_attributes)})"
            )
        known = cls._get_param_names()
        nested = {k: v for k, v in state.params.items() if k not in known}
        _check_nested_names(cls.__name__, nested, known)  # no method is replaced by a parameter
        compilation.check_loadable(nested)  # a file never chooses programs to run
        estimator = cls(**state.params)
        estimator.layout_ = state.layout
        estimator.modalities_ = dict(state.layout.shapes)
        estimator.standardizer_ = state.standardizer
        resolution = assemble.resolve_choices(
            assemble.Choices.of(estimator.get_params(deep=False)), state.layout.names
        )
        estimator.input_encoders_ = raw_inputs.restore_encoders(
            resolution.backbones, state.layout.kinds, state.encoders
        )
        estimator.plugins_ = state.plugins
        for name, value in state.fitted.items():
            setattr(estimator, name, value)
        estimator.device_ = _loaded_device(estimator, state, device)
        n_outputs = estimator._loaded_outputs()

        def build() -> FusionNetwork:
            inputs = estimator._inputs()
            return assemble.build_resolved(resolution.copy(), n_outputs=n_outputs, **inputs)

        persistence.check_weights(build, state.weights)
        with devices.forked_rng(estimator.device_):
            network = build()
        network.load_state_dict(state.weights, strict=True)
        network.eval()
        if any(name in state.fitted for name in _SETTINGS):
            settings = estimator._stored_settings()
        else:
            settings = estimator._settings_of_a_format_2_file(n_outputs, network)
        estimator.net_ = estimator._make_net(assemble.Assembly(network, settings), None)
        estimator.net_.initialize()
        return estimator

    def _stored_settings(self) -> assemble.TrainingSettings:
        """The training settings a loaded model holds, checked, not resolved again."""
        self._check_loaded_settings()
        return assemble.TrainingSettings.stored(
            self.lr_, self.optimizer_, self.lr_schedule_, self.training_settings_
        )

    def _settings_of_a_format_2_file(
        self, n_outputs: int, network: FusionNetwork
    ) -> assemble.TrainingSettings:
        """Compatibility with files of format 2 and earlier, which stored no training settings:
        they are resolved from the stored parameters and ``network``'s components (the one
        thing loading resolves, and only for these files)."""
        return self._assemble(n_outputs, network=network).settings

    def _check_loaded_settings(self) -> None:
        """``ValueError`` unless a loaded model holds every training setting the net is built
        with, each of a kind ``fit`` resolves."""
        missing = [name for name in ("lr_", *_SETTINGS) if not hasattr(self, name)]
        if missing:
            raise ValueError(f"the model file holds some training settings but not {missing}")
        check_setting("lr", self.lr_, "the model file")
        check_setting("lr_schedule", self.lr_schedule_, "the model file")
        if not (isinstance(self.optimizer_, type) and issubclass(self.optimizer_, Optimizer)):
            raise ValueError(f"optimizer_ must be a torch optimizer class, got {self.optimizer_!r}")

    def _loaded_outputs(self) -> int:
        """The number of network outputs of a loaded model; ``ValueError`` unless its fitted
        attributes are as ``fit`` leaves them."""
        raise NotImplementedError

    @property
    def module_(self) -> FusionNetwork:
        """The trained :class:`FusionNetwork`."""
        check_is_fitted(self, "net_")
        return self.net_.module_

    def _logits(self, X: Any) -> torch.Tensor:
        check_is_fitted(self, "net_")
        with threads.limited(getattr(self, "n_jobs", None)):
            return self._checked_logits(X)

    def _checked_logits(self, X: Any) -> torch.Tensor:
        # standardised chunk by chunk in torch (one pass over cache-hot data, not two over all);
        # X stays on the CPU and goes to the device one chunk of predict_batch_size rows at a time
        prepared = self._prepare(X, reset=False, standardize=False)
        network = self.net_.module_
        network.eval()
        device = torch.device(self.device_)
        standardize = None
        if self.standardizer_ is not None:
            standardize = self.standardizer_.torch_transform(device)
        batch = self._batch(prepared, device="cpu")
        compilation.apply(network, self.compile, compilation.options_from(self._nested_params()))
        with autocast(self.precision, device):
            logits = network.predict_logits(
                batch, self.predict_batch_size, standardize, device=device
            )
        logits = logits.float().cpu()
        if not torch.isfinite(logits).all():
            rows = torch.nonzero(~torch.isfinite(logits).all(dim=1)).flatten()[:5].tolist()
            raise FloatingPointError(
                f"the network produced non-finite outputs for rows {rows} (fusion "
                f"{type(network.fusion).__name__}, calibration {type(network.calibration).__name__}"
                f", weighting {', '.join(type(w).__name__ for w in network.weightings)}). This is "
                "a bug in a plugin or a diverged model; refusing to return NaN predictions."
            )
        return logits

    def as_batch(self, X: Any) -> ModalityBatch:
        """``X`` as the fitted network sees it: validated against the fitted layout, encoded
        (text, categories) and standardised as in ``predict``, one
        :class:`~fusekit.plugin.ModalityBatch` of all its rows on the fitted device, for calling
        ``module_`` or a component directly (what :meth:`outputs` feeds the network)."""
        check_is_fitted(self, "net_")
        return self._batch(self._prepare(X, reset=False))

    @torch.no_grad()
    def outputs(self, X: Any, batch_size: int | None = None) -> Iterator[FusionOutput]:
        """The network's :class:`~fusekit.plugin.FusionOutput` for ``X``, chunk by chunk.

        Inputs are prepared and standardised as in ``predict``; the network runs in eval mode
        without gradients, ``batch_size`` rows at a time (default ``predict_batch_size``). For
        inspecting what a method computes: ``modality_weights``, ``unimodal_logits``,
        ``diagnostics``.
        """
        check_is_fitted(self, "net_")
        prepared = self._prepare(X, reset=False)
        batch = self._batch(prepared, device="cpu")
        network = self.net_.module_
        network.eval()
        size = batch_size or self.predict_batch_size
        for start in range(0, len(batch), size):
            chunk = batch.take(slice(start, start + size)).to(self.device_)
            with threads.limited(getattr(self, "n_jobs", None)):
                output = network(chunk)
            yield output

    def _fit_atomically(
        self, X: Any, y: Any, sample_weight: Any, partial: bool = False, classes: Any = None
    ) -> _FusionEstimator:
        """Check the parameters, then fit (``partial``: one ``partial_fit`` call); on any
        exception the estimator is left as it was."""
        with self._unchanged_on_error():
            self._check_params()
            if partial and not isinstance(X, StreamSource):
                self._check_partial_fit_params()
            self.device_ = devices.fit_device(self.device)
            if isinstance(X, StreamSource):  # out of core: fusekit.streaming
                with threads.limited(getattr(self, "n_jobs", None)):
                    _fit_streamed(self, X, y, sample_weight, partial)
                return self
            with threads.limited(getattr(self, "n_jobs", None)):
                self._fit_task(X, y, sample_weight, partial, classes)
        return self

    def _fit_task(
        self, X: Any, y: Any, sample_weight: Any, partial: bool = False, classes: Any = None
    ) -> None:
        """Validate ``X``, ``y`` and ``sample_weight`` and train (the task's part of ``fit`` and
        ``partial_fit``)."""
        raise NotImplementedError

    def _check_n_rows(self, prepared: PreparedInput, y: np.ndarray) -> None:
        if prepared.n_samples != len(y):
            raise ValueError(
                f"X has {prepared.n_samples} samples but y has {len(y)}: inconsistent numbers of "
                "samples. Pass one target per row of X."
            )
        if prepared.n_samples < 2:
            raise ValueError(
                f"{type(self).__name__} needs at least 2 samples to fit, got 1 sample "
                "(n_samples = 1)."
            )


class FusionClassifier(ClassifierMixin, _FusionEstimator):
    """Multimodal fusion classifier (cross-entropy on the fused logits).

    Parameters:
        backbone: per-modality encoder: a registered name (``fusekit plugins``), a class, an
            instance, or ``{modality: one of those}``. Nested: ``backbone__hidden=64`` (all),
            ``backbone__audio__hidden=64`` (one modality).
        calibration, fusion, weighting: the other plugin kinds, same forms; nested parameters
            ``calibration__*``, ``fusion__*``, ``weighting__*``.
        modalities: how to split a DataFrame (``{name: columns | regex | slice}``) or an array
            (``{name: width}``); ``None`` for mappings and ``name__column`` prefixed DataFrames.
        layout: how sequence modalities order their axes: ``None`` / ``"channels_last"``
            (``(n, T, d)``, rows ``(T_i, d)``) or ``"channels_first"`` (``(n, d, T)``, rows
            ``(d, T_i)``, aeon's and sktime's layout); one string for every sequence modality or
            ``{modality: layout}`` (:mod:`fusekit.sequences`).
        frozen_backbones: modalities whose backbones stay as built (no parameter trains, eval
            mode); fit encodes each training row once with them and reuses the outputs every
            epoch (:mod:`fusekit.engine.frozen_cache`).
        standardize: z-score each modality with statistics from the present training rows;
            ``True``, ``False`` or ``{modality: bool}`` (modalities left out: ``True``). Text and
            categorical modalities are never standardised.
        max_epochs, batch_size, train_split, callbacks (skorch), verbose.
        shuffle: shuffle the training rows every epoch (``partial_fit``: within the chunk).
        lr, optimizer, lr_schedule: ``"auto"`` (default): what the components recommend
            (``Component.recommended_params``; the fusion's first), else lr 0.01, Adam, constant
            lr. Or set: ``lr`` a positive float; ``optimizer`` ``"adam"``, ``"adamw"``, ``"sgd"``,
            ``"rmsprop"`` or a class (``optimizer__*`` nested); ``lr_schedule`` ``None``
            (constant) or a callable from training progress in [0, 1] to a factor on lr,
            stepped every batch (e.g. ``fusekit.plugin.WarmupCosine()``).
        early_stopping: hold out a stratified, shuffled, seeded ``validation_fraction`` of the
            training rows and stop when the validation loss has not improved by ``tol`` for
            ``n_iter_no_change`` consecutive epochs; the best epoch's weights are restored. Not
            combinable with ``train_split`` (skorch's default ``ValidSplit(5)`` is unshuffled).
        validation_fraction, n_iter_no_change, tol: see ``early_stopping``.
        warm_start: a second ``fit`` continues the fitted network for ``max_epochs`` more epochs
            (same modalities, shapes and classes, else ``ValueError``) instead of starting anew.
        class_weight: ``None``, ``"balanced"`` or ``{class: weight}``; multiplies the sample
            weights (``sklearn.utils.class_weight.compute_sample_weight``).
        predict_batch_size: rows per chunk at prediction.
        random_state: seeds initialisation, shuffling, dropout and the early-stopping split.
        device: torch device (``"cpu"``, ``"cuda:1"``...) or ``"auto"`` (CUDA when available,
            else the CPU); the fitted ``device_`` is the one used. Prediction moves one chunk of
            ``predict_batch_size`` rows at a time to it.
        n_jobs: torch's CPU threads during ``fit``, ``partial_fit`` and prediction (restored
            after): ``None`` one (scikit-learn's idiom, so parallel searches do not
            oversubscribe), ``-1`` every core, ``k`` that many (``docs/scaling.md``).
        precision: ``"32"`` (default), ``"bf16"`` (synonym ``"bf16-mixed"``: autocast to
            bfloat16, float32 weights) or ``"16-mixed"`` (autocast to float16 with a
            ``GradScaler``), in training and prediction (:mod:`fusekit.engine.precision`).
        compile: ``torch.compile`` the network for training and prediction; ``compile__*``
            options go to ``torch.compile`` (``compile__mode="reduce-overhead"``,
            ``compile__backend="aot_eager"``). Saved models hold the plain weights.
        distributed: ``"auto"`` (default): when the script runs on several processes under
            ``torchrun`` (or a ``torch.distributed`` process group is initialised), ``fit`` trains
            one model on all of them, data-parallel: each process a shard of every batch of
            ``batch_size`` rows (so ``batch_size x processes`` rows per step), gradients
            averaged; only rank 0 writes on ``save``. ``True``: the same, an error in a single
            process; ``False``: one independent model per process. See ``docs/scaling.md``.

    ``fit(X, y, sample_weight=None)``: the task loss of a batch is ``sum_i w_i l_i / sum_i w_i``
    over its rows (``LossContext.weighted_mean``), so a row of weight 2 counts as two equal rows
    in the same batch; the standardisation statistics are weighted too.

    ``partial_fit(X, y, classes=None, sample_weight=None)`` (out-of-core training, as
    scikit-learn's ``MLPClassifier.partial_fit``): one epoch over the chunk, whatever
    ``max_epochs`` and ``warm_start`` say, continuing the fitted model with its optimiser state
    (Adam's moments and step count), its plugins' state and its random streams; ``n_iter_``
    counts the epochs (one per call). ``classes`` (every label of every chunk) is required on the
    first call and may not change. The standardisation statistics (the inputs', and the
    regressor's target's) come from the first chunk and stay fixed: the network always sees its
    inputs scaled one way, where a running estimate would shift the scale under weights trained
    on the old one. Make the first chunk representative, or scale upstream (e.g.
    ``StandardScaler.partial_fit`` over the chunks) and pass ``standardize=False``. The lr stays
    constant (a schedule needs the length of training: an ``lr_schedule`` is refused and
    ``"auto"`` ignores a recommended one); ``early_stopping``, ``class_weight="balanced"`` and
    methods that need every training row at once (``needs_all_training_rows``: ``qmf``,
    ``gradient_blending``, ``btw``) are refused with a ``ValueError``. With ``shuffle=False`` and
    chunks of whole batches, k calls on k chunks train exactly as ``fit`` with ``max_epochs=1``
    on their concatenation.

    Fitted attributes: ``classes_``, ``modalities_`` (name -> per-sample shape), ``net_`` (the
    skorch net), ``module_`` (the network), ``n_features_in_`` for array/DataFrame input,
    ``n_iter_`` (epochs run), ``loss_curve_`` (training loss per epoch), ``validation_scores_``
    (minus the validation loss per epoch, or ``None`` without validation rows), ``best_epoch_``
    (1-based epoch whose weights early stopping restored, else ``None``), ``device_`` (the
    device the network is on: where it was fitted, recorded in the model file, or loaded).
    ``lr_``, ``optimizer_``, ``lr_schedule_`` (the settings used) and ``training_settings_``
    (``{name: {"value", "source"}}``, source ``"user"``, ``"default"`` or e.g. ``"fusion scfae"``).
    ``plugins_``: the registered plugins the network uses, ``{"kind", "name", "distribution",
    "version"}`` each (unregistered classes are left out).
    """

    _task = "classification"
    _parameter_constraints: dict = CLASSIFIER_CONSTRAINTS
    _fitted_attributes = (*_FusionEstimator._fitted_attributes, "classes_")

    def __init__(
        self,
        backbone: Any = "mlp",
        calibration: Any = "none",
        fusion: Any = "concat",
        weighting: Any = "none",
        *,
        modalities: dict | None = None,
        layout: str | dict | None = None,
        frozen_backbones: tuple[str, ...] | list[str] = (),
        standardize: bool | dict = True,
        max_epochs: int = 30,
        batch_size: int = 64,
        shuffle: bool = True,
        lr: float | str = "auto",
        optimizer: Any = "auto",
        lr_schedule: Any = "auto",
        train_split: Any = None,
        callbacks: list | None = None,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        tol: float = 1e-4,
        warm_start: bool = False,
        class_weight: dict | str | None = None,
        predict_batch_size: int = 1024,
        random_state: int | np.random.RandomState | None = None,
        device: str = "cpu",
        n_jobs: int | None = None,
        precision: str = "32",
        compile: bool = False,
        distributed: bool | str = "auto",
        verbose: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            backbone,
            calibration,
            fusion,
            weighting,
            modalities=modalities,
            layout=layout,
            frozen_backbones=frozen_backbones,
            standardize=standardize,
            max_epochs=max_epochs,
            batch_size=batch_size,
            shuffle=shuffle,
            lr=lr,
            optimizer=optimizer,
            lr_schedule=lr_schedule,
            train_split=train_split,
            callbacks=callbacks,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            tol=tol,
            warm_start=warm_start,
            predict_batch_size=predict_batch_size,
            random_state=random_state,
            device=device,
            n_jobs=n_jobs,
            precision=precision,
            compile=compile,
            distributed=distributed,
            verbose=verbose,
            **kwargs,
        )
        self.class_weight = class_weight

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> FusionClassifier:
        """Train on ``X``, ``y``; ``sample_weight`` ``(n,)`` weighs each row's loss (see the
        class docstring); with ``warm_start=True`` a fitted model continues training. ``X`` may
        be a streamed source holding the target (``fusekit.ParquetSource``, ``DaskSource``,
        ``ChunkSource``: see :mod:`fusekit.streaming`). A fit that raises leaves the estimator
        as it was."""
        return self._fit_atomically(X, y, sample_weight)

    def partial_fit(
        self, X: Any, y: Any, classes: Any = None, sample_weight: Any = None
    ) -> FusionClassifier:
        """One epoch over the chunk ``X``, ``y``, continuing the fitted model (see the class
        docstring); ``classes``, every label any chunk will hold, is required on the first call
        (``np.unique(y_all)``). A call that raises leaves the estimator as it was."""
        return self._fit_atomically(X, y, sample_weight, partial=True, classes=classes)

    def _fit_task(
        self, X: Any, y: Any, sample_weight: Any, partial: bool = False, classes: Any = None
    ) -> None:
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        warm = self._continues(partial)
        prepared = self._prepare(X, reset=not warm, standardize=False)
        y = column_or_1d(check_array(y, ensure_2d=False, dtype=None, input_name="y"), warn=True)
        self._check_n_rows(prepared, y)
        kind = type_of_target(y, input_name="y")
        if kind not in ("binary", "multiclass"):
            check_classification_targets(y)  # sklearn's message for continuous / unknown targets
            raise ValueError(f"FusionClassifier supports binary and multiclass y, got {kind}.")
        if partial:  # a chunk may hold some of the classes only
            classes, encoded = self._chunk_labels(y, classes)
        else:
            classes, encoded = self._fit_labels(y, warm)
        weights = self._sample_weight(sample_weight, len(y), y)
        prepared = self._standardize_training(prepared, weights, warm)
        self.classes_ = classes
        target = torch.as_tensor(encoded.reshape(-1), dtype=torch.long, device=self.device_)
        self._train(prepared, target, len(self.classes_), weights, encoded, partial)

    def _fit_labels(self, y: np.ndarray, warm: bool) -> tuple[np.ndarray, np.ndarray]:
        """``fit``'s classes (those of ``y``, at least 2; a warm start's unchanged) and ``y``
        encoded by them."""
        classes, encoded = np.unique(y, return_inverse=True)  # LabelEncoder's fit + transform
        if len(classes) < 2:
            raise ValueError(
                f"FusionClassifier needs samples of at least 2 classes in the data, but the data "
                f"contains only one class: {classes[0]!r}."
            )
        if warm and not np.array_equal(classes, self.classes_):
            raise ValueError(
                f"warm_start=True continues the fitted model, whose classes are "
                f"{self.classes_.tolist()}, but y has classes {classes.tolist()}. Pass y with the "
                "same classes, or set warm_start=False to train a new model."
            )
        return classes, encoded

    def _chunk_labels(self, y: np.ndarray, classes: Any) -> tuple[np.ndarray, np.ndarray]:
        """``partial_fit``'s classes and ``y`` encoded by them: ``classes`` is required on the
        first call, must not change later, and holds every label of ``y``."""
        owner = type(self).__name__
        fitted = getattr(self, "classes_", None)
        if classes is None and fitted is None:
            raise ValueError(
                f"{owner}.partial_fit needs classes on its first call: every label that any "
                "chunk will hold, e.g. classes=np.unique(y_all). Got classes=None."
            )
        if classes is not None:
            given = unique_labels(classes)
            if len(given) < 2:
                raise ValueError(
                    f"{owner}.partial_fit needs at least 2 classes, got classes={given.tolist()}."
                )
            if fitted is not None and not (len(given) == len(fitted) and (given == fitted).all()):
                raise ValueError(
                    f"{owner}.partial_fit got classes={given.tolist()}, but the model was fitted "
                    f"with classes {fitted.tolist()}. Pass the same classes (or none) on later "
                    "calls; to train on other classes, start anew with fit."
                )
            fitted = given
        try:
            known = np.isin(y, fitted)
        except TypeError:  # labels of another kind than the classes (str against int)
            known = np.zeros(len(y), dtype=bool)
        if not known.all():
            unseen = np.unique(y[~known]).tolist()
            raise ValueError(
                f"{owner}.partial_fit: y has labels {unseen} that are not in classes "
                f"{fitted.tolist()} (given on the first call). Every label of every chunk must "
                "be in classes."
            )
        return fitted, np.searchsorted(fitted, y)

    def _loaded_outputs(self) -> int:
        classes = getattr(self, "classes_", None)
        if not isinstance(classes, np.ndarray) or classes.ndim != 1 or len(classes) < 2:
            raise ValueError(
                f"a classifier has at least two class labels in classes_, the file holds "
                f"{classes!r}"
            )
        # fit stores np.unique's result; a relabelled file (reordered or duplicated labels) is not
        if not np.array_equal(np.unique(classes), classes):
            raise ValueError(
                f"the class labels {classes.tolist()!r} are not sorted and distinct as fit stores "
                "them: the classes were relabelled after saving"
            )
        return len(classes)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``(n, n_classes)`` from the fused logits."""
        logits = self._logits(X).numpy().astype(np.float64)  # (n, K); softmax in float64
        logits -= logits.max(axis=1, keepdims=True)
        np.exp(logits, out=logits)
        return logits / logits.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        return torch.log_softmax(self._logits(X).double(), dim=1).numpy()

    def decision_function(self, X: Any) -> np.ndarray:
        """Fused logits; for two classes the difference of the two logits, ``(n,)``."""
        logits = self._logits(X).double().numpy()
        return logits[:, 1] - logits[:, 0] if len(self.classes_) == 2 else logits

    def predict(self, X: Any) -> np.ndarray:
        winners = self._logits(X).argmax(dim=1).numpy()
        return self.classes_[winners]


class FusionRegressor(RegressorMixin, _FusionEstimator):
    """Multimodal fusion regressor (mean squared error on standardised targets).

    Same parameters as :class:`FusionClassifier` but ``class_weight`` (the early-stopping split is
    shuffled, not stratified; ``sample_weight`` also weighs the target standardisation). ``y``
    may be ``(n,)`` or ``(n, k)`` (multi-output); targets are standardised for training and
    mapped back at prediction.
    Fitted attributes: ``n_outputs_``, ``modalities_``, ``net_``, ``module_``, ``n_iter_``,
    ``loss_curve_``, ``validation_scores_``, ``best_epoch_``.
    """

    _task = "regression"
    #: ``_y_1d``: whether ``y`` was ``(n,)`` (predictions come back in that shape).
    _fitted_attributes = (
        *_FusionEstimator._fitted_attributes,
        "n_outputs_",
        "y_mean_",
        "y_scale_",
        "_y_1d",
    )

    def __sklearn_tags__(self):  # noqa: ANN204
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _loaded_outputs(self) -> int:
        n_outputs = getattr(self, "n_outputs_", None)
        if isinstance(n_outputs, bool) or not isinstance(n_outputs, int) or n_outputs < 1:
            raise ValueError(f"n_outputs_ must be a positive integer, the file holds {n_outputs!r}")
        shapes = {np.shape(getattr(self, name, None)) for name in ("y_mean_", "y_scale_")}
        if shapes != {(n_outputs,)}:
            raise ValueError(
                f"the target scaling has the shapes {sorted(shapes)} for {n_outputs} outputs"
            )
        if not isinstance(getattr(self, "_y_1d", None), bool):
            raise ValueError("the file does not say whether the target is one-dimensional")
        return n_outputs

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> FusionRegressor:
        """Train on ``X``, ``y``; ``sample_weight`` ``(n,)`` weighs each row's loss; with
        ``warm_start=True`` a fitted model continues training (same target standardisation).
        ``X`` may be a streamed source (see :meth:`FusionClassifier.fit`). A fit that raises
        leaves the estimator as it was."""
        return self._fit_atomically(X, y, sample_weight)

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> FusionRegressor:
        """One epoch over the chunk ``X``, ``y``, continuing the fitted model; the target
        standardisation comes from the first call's chunk (see :class:`FusionClassifier`). A
        call that raises leaves the estimator as it was."""
        return self._fit_atomically(X, y, sample_weight, partial=True)

    def _fit_task(
        self, X: Any, y: Any, sample_weight: Any, partial: bool = False, classes: Any = None
    ) -> None:
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        warm = self._continues(partial)
        prepared = self._prepare(X, reset=not warm, standardize=False)
        y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")
        if y.ndim > 2:
            raise ValueError(f"y must be (n,) or (n, k), got shape {y.shape}.")
        self._check_n_rows(prepared, y)
        y2 = y.reshape(len(y), -1)
        if warm and y2.shape[1] != self.n_outputs_:
            how = "partial_fit" if partial else "warm_start=True"
            raise ValueError(
                f"{how} continues the fitted model, which has {self.n_outputs_} "
                f"output(s), but y has {y2.shape[1]}. Pass y of the same width, or "
                f"{'use fit' if partial else 'set warm_start=False'} to train a new model."
            )
        weights = self._sample_weight(sample_weight, len(y))
        prepared = self._standardize_training(prepared, weights, warm)
        if warm:  # a continued model keeps the standardisation it was trained with
            mean, scale = self.y_mean_, self.y_scale_
        else:
            with np.errstate(over="ignore", invalid="ignore"):  # checked in _scaled_target
                if weights is None:
                    mean, scale = y2.mean(axis=0), y2.std(axis=0)
                else:  # rows count w_i times, as in the loss
                    mean, scale = (stat[0] for stat in weighted_mean_std(y2, weights, (0,)))
            scale = np.where(scale > 0, scale, 1.0)
        target = _scaled_target(y2, mean, scale)
        if not warm:
            self._y_1d = y.ndim == 1
            self.n_outputs_ = y2.shape[1]
            self.y_mean_, self.y_scale_ = mean, scale
        self._train(
            prepared,
            torch.from_numpy(target).to(self.device_),
            self.n_outputs_,
            weights,
            partial=partial,
        )

    def predict(self, X: Any) -> np.ndarray:
        outputs = self._logits(X).double().numpy() * self.y_scale_ + self.y_mean_
        return outputs.ravel() if self._y_1d else outputs


#: The largest standardised target whose squared error still fits float32.
_LARGEST_SCALED_TARGET = float(np.sqrt(np.finfo(np.float32).max))


def _scaled_target(y: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``(y - mean) / scale`` as float32, else a ValueError naming the outputs that do not fit:
    the mean or standard deviation overflows float64, or a scaled value is so large that its
    squared error overflows float32 (a continued fit scales by the first fit's statistics)."""
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = (y - mean) / scale
        bad = ~(np.abs(scaled) <= _LARGEST_SCALED_TARGET).all(axis=0)
    bad |= ~np.isfinite(scale) | ~np.isfinite(mean)
    if bad.any():
        outputs = np.flatnonzero(bad).tolist()
        raise ValueError(
            f"y cannot be standardised for training: output(s) {outputs} (largest |y| "
            f"{np.abs(y[:, bad]).max():.3g}) overflow float64 in the mean or standard deviation, "
            f"or exceed {_LARGEST_SCALED_TARGET:.3g} once scaled by the fitted mean and scale (the "
            "squared error would overflow float32). Rescale y (e.g. divide it by a power of ten) "
            "before fitting."
        )
    return scaled.astype(np.float32)


def _loaded_device(
    estimator: _FusionEstimator, state: persistence.ModelState, requested: str | None
) -> str:
    """Where a loaded model goes (sets ``estimator.device`` to it unless that is ``"auto"``):
    ``requested``, else the ``device`` parameter's device (``"auto"`` resolved here) when present,
    else the CPU with a warning. The file's ``device_`` (the device it was fitted on) must be a
    device string."""
    fitted = state.fitted.get("device_")
    if fitted is not None:
        devices.recorded_device(fitted)
    parameter = state.params.get("device", "cpu")
    if isinstance(parameter, str) and parameter == devices.AUTO:
        target = requested or devices.auto_device()
        if requested is not None:
            estimator.device = requested
        return target
    estimator.device = devices.load_device(parameter, requested)
    return estimator.device


def _carry_over(previous: FusionNet, net: FusionNet, lr: float) -> None:
    """Initialise ``net`` (around ``previous``'s network) with ``previous``'s history and, for the
    same optimiser class, its optimiser state (Adam's moments...) at learning rate ``lr``."""
    net.initialize()
    net.history = copy.deepcopy(previous.history)  # copies: ``previous`` stays as it was
    carry_over(previous, net)  # the loss scale of precision="16-mixed"
    if type(net.optimizer_) is type(previous.optimizer_):
        net.optimizer_.load_state_dict(copy.deepcopy(previous.optimizer_.state_dict()))
        for group in net.optimizer_.param_groups:
            group["lr"] = lr


def _fit_streamed(
    estimator: _FusionEstimator, source: StreamSource, y: Any, sample_weight: Any, partial: bool
) -> None:
    """``fit`` over a streamed source (:mod:`fusekit.streaming.fit`); ``partial_fit`` takes
    in-memory chunks only."""
    if partial:
        raise TypeError(
            f"{type(estimator).__name__}.partial_fit takes one in-memory chunk (X, y), got the "
            f"streamed source {source!r}. Call fit(source) to train on every chunk of it."
        )
    fit_stream(estimator, source, y, sample_weight)


def _check_chunkable(owner: str, network: FusionNetwork) -> None:
    """A ``ValueError`` naming the components that need every training row at once
    (``needs_all_training_rows``), which ``partial_fit`` cannot train one chunk per call."""
    refused = [network.label(c) for c in network.components() if c.needs_all_training_rows]
    if refused:
        raise ValueError(
            f"{owner}.partial_fit cannot train {', '.join(refused)}: it needs every training row "
            "at once (needs_all_training_rows: state per training row or a split of all rows), "
            "but partial_fit sees one chunk per call. Use fit, or a method that trains per chunk."
        )


def _check_nested_names(owner: str, params: dict[str, Any], known: Iterable[str] = ()) -> None:
    """Every ``**kwargs`` name is ``<prefix>__...``; otherwise a ``TypeError`` with a suggestion
    from the estimator's parameters ``known`` (``epochs`` -> ``max_epochs``)."""
    for key in params:
        prefix, _, rest = key.partition("__")
        if rest and prefix in NESTED_PREFIXES:
            continue
        if rest:
            close = difflib.get_close_matches(prefix, NESTED_PREFIXES, n=1)
            guess = [f"{close[0]}__{rest}"] if close else []
        else:
            guess = difflib.get_close_matches(key, sorted(known), n=1)
        hint = f" Did you mean {guess[0]!r}?" if guess else ""
        raise TypeError(
            f"{owner} got an unexpected parameter {key!r}.{hint} Nested parameters start with one "
            f"of {[p + '__' for p in NESTED_PREFIXES]}."
        )


def load(path: Any, key: str | bytes | None = None, device: str | None = None) -> _FusionEstimator:
    """Load an estimator written by ``save`` (signed with ``key``, if given) onto ``device``;
    raises ``ModelFileError`` on a bad file (see :func:`fusekit.load`)."""
    requested = devices.requested_device(device)
    state = persistence.read(path, key=key)
    classes = {"FusionClassifier": FusionClassifier, "FusionRegressor": FusionRegressor}
    try:
        return classes[state.estimator]._from_state(state, device=requested)
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise persistence.ModelFileError.mismatch(path, error) from None
