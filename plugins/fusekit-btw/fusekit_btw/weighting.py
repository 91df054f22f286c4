"""BTW: Beyond Two-modality Weighting (bi-level KL/MI modality weights).

Hou, Wang, Wang, "BTW: A Non-Parametric Variance Stabilization Framework for Multimodal Model
Integration", Findings of EMNLP 2025, arXiv 2508.18551. Equations rebuilt in
``specs/seed-004-btw.md`` §4; their code is in :mod:`fusekit_btw.equations`.

Algorithm (per fit):

1. Reference predictions ŷ^m (Eqs. 1–3). ``unimodal="separate"`` (default, the paper's protocol):
   one copy of the network per modality trained on that modality alone before the main training
   (:mod:`fusekit_btw.reference`); its predictions stay fixed. ``unimodal="heads"`` (cheap, a
   deviation): the network's per-modality linear heads on the calibrated features, trained by a
   loss term on *detached* features (so the fused model's loss and gradients are the paper's), and
   re-read at every update.
2. After every ``update_every`` epochs: predict ŷ^MM on all training rows with the current model
   and current weights (eval, no grad); instance KL (Eq. 5 classification, Eq. 6 regression with
   σ = |y − ŷ|), sum-normalised per sample over present modalities; modality MI (Eq. 7:
   ``mutual_info_score`` on argmax classes, ``mutual_info_regression`` k = 3 on outputs),
   floored at 1e-5 and sum-normalised; ŵ by Eq. 8 (``level="local"``), Eq. 9 (``"bi"``) or the
   Sec. 6.1 ablations (``"global_kl"``, ``"global_mi"``).
3. EMA (Eq. 10) into the stored per-sample weights W ``(N, M)``, W^{(0)} = 1, absent = 0. α starts
   at ``alpha`` and moves by ``alpha_step`` after each update from the second on: up when the
   monitored metric reached a new best (the paper's prose; the authors' MAE code moves it the
   other way, available as ``alpha_on_improve="decrease"``), down otherwise. Monitored: skorch's
   ``valid_loss`` when a validation split exists, else macro-F1 (classification) or MAE
   (regression) of ŷ^MM on the training rows — never test data.
4. Application (Sec. 3.4): h_m <- W[i, m] · h_m on the calibrated features, before fusion,
   broadcast over every non-batch axis ``(B, D)``, ``(B, T, D)``, ``(B, C, H, W)`` (the core's
   ``reweight`` slot; with ``calibration="none"`` these are the backbone outputs, the paper's
   projected embeddings). The fused loss is unchanged; W is a buffer, not a parameter: BTW adds
   no trainable parameter.

Prediction never reads labels (the authors' code computes test weights from test labels, with
the same per-epoch EMA, which needs the test set during training). ``predict_weights="mean"``
(default): each present modality gets its mean training weight (mean of W over the training rows
where it is present). ``"recompute"`` (the spec's per-instance suggestion): a first pass with
those mean weights gives ŷ^MM, then ŵ from Eq. 5 (classification) or Eq. 6 with the pooled
training RMS residuals σ_m, σ_MM in place of per-sample |y − ŷ| (regression), with the training Ĩ;
the EMA is unrolled as if the sample's ŵ had been the same at every update:
w = (1 − Π_t(1 − α_t)) ŵ + Π_t(1 − α_t) (for the global levels: the same as "mean").
``"ones"``: 1 for every present modality.
Why ``"mean"``: a single ŵ is far more extreme than the epoch-averaged W the model was trained
with (one instance's KL̃ jumps between ~0 and ~1 as ŷ^MM moves), so "recompute" shifts the input
distribution at test time. Measured (``benchmarks/predict_weights.py``, 3-fold CV, 400 rows):
classification accuracy none 0.798, btw mean 0.788, btw recompute 0.598; regression R²
none 0.518, btw mean 0.523, btw recompute 0.406.

Choices where the paper is silent: K regression outputs are independent Gaussians (KL summed,
MI averaged); weights are computed on all rows skorch trains on (with a ``train_split``, the
validation rows are weighted too); σ is floored at 1e-3 (targets are standardised). The paper
finds MI unreliable with missing modalities (Table 7): prefer ``btw_local`` then.

Core workaround: ``reweight`` is not given the batch (its row indices for W, its raw inputs for
the separate unimodal models at predict), so a forward pre-hook on the network, installed at
``on_train_begin``, prepares each pass's weights.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import numpy as np
import torch
from torch import Tensor

from fusekit.plugin import (
    BuildSpec,
    FusionOutput,
    Interval,
    LossContext,
    ModalityBatch,
    NetworkView,
    StrOptions,
    TrainingContext,
    Weighting,
    expand_mask,
)
from fusekit_btw import equations
from fusekit_btw.reference import train_unimodal_models, unimodal_logits

UNIMODAL = ("separate", "heads")
PREDICT_WEIGHTS = ("recompute", "mean", "ones")
RESCALE = ("none", "mean_one")
ON_IMPROVE = ("increase", "decrease")
STD_FLOOR = 1e-3


class BTW(Weighting):
    """BTW bi-level weighting: instance KL × modality MI weights on the modality embeddings."""

    #: W holds one weight per training row, recomputed from the rows each process trains on: the
    #: processes would each hold a different part of it.
    data_parallel_safe = False

    needs_all_training_rows = True  # W has one row per training row, updated between epochs
    parameter_constraints = {
        "level": [StrOptions(set(equations.LEVELS))],
        "unimodal": [StrOptions(set(UNIMODAL))],
        "unimodal_epochs": [Interval(Integral, 1, None, closed="left"), None],
        "alpha": [Interval(Real, 0, 1, closed="both")],
        "alpha_step": [Interval(Real, 0, 1, closed="both")],
        "alpha_on_improve": [StrOptions(set(ON_IMPROVE))],
        "update_every": [Interval(Integral, 1, None, closed="left")],
        "predict_weights": [StrOptions(set(PREDICT_WEIGHTS))],
        "rescale": [StrOptions(set(RESCALE))],
    }

    def __init__(
        self,
        level: str = "bi",
        unimodal: str = "separate",
        unimodal_epochs: int | None = None,
        alpha: float = 0.5,
        alpha_step: float = 0.05,
        alpha_on_improve: str = "increase",
        update_every: int = 1,
        predict_weights: str = "mean",
        rescale: str = "none",
    ) -> None:
        super().__init__()
        self.level = level
        self.unimodal = unimodal
        self.unimodal_epochs = unimodal_epochs
        self.alpha = alpha
        self.alpha_step = alpha_step
        self.alpha_on_improve = alpha_on_improve
        self.update_every = update_every
        self.predict_weights = predict_weights
        self.rescale = rescale
        self.needs_unimodal_heads = unimodal == "heads"

    # -- set-up ------------------------------------------------------------------------------
    def build(self, spec: BuildSpec) -> None:
        self.spec = spec
        n_modalities = len(spec.names)
        self.register_buffer("weights_", torch.ones(0, n_modalities))  # W: (N, M)
        self.register_buffer("mi_", torch.full((n_modalities,), 1.0 / n_modalities))  # Ĩ: (M,)
        self.register_buffer("mean_weights_", torch.ones(n_modalities))  # (M,)
        self.register_buffer("unimodal_std_", torch.ones(n_modalities, spec.n_outputs))  # (M, K)
        self.register_buffer("multimodal_std_", torch.ones(spec.n_outputs))  # (K,)
        self.history_mass_ = 1.0  # Π_t (1 − α_t): share of W^{(0)} = 1 left in W
        self.alpha_ = float(self.alpha)
        self.history_: list[dict[str, Any]] = []
        self._unimodal_models: list[NetworkView] = []
        self._reference: Tensor | None = None  # separate protocol: ŷ^m logits (N, M, K)
        self._pass_weights: Tensor | None = None  # weights for the pass in progress (B, M)
        self._inside = False
        self._best: float | None = None
        self._seed = 0

    def on_train_begin(self, ctx: TrainingContext) -> None:
        if ctx.data is None or ctx.data.target is None:
            raise ValueError("btw: training needs the training rows and their target")
        network, inputs = ctx.network, ctx.data.inputs
        if not network.has_forward_pre_hook(self._capture):
            network.register_forward_pre_hook(self._capture)
        self.weights_ = inputs.mask.to(torch.float32).clone()  # W^{(0)} = 1, absent 0
        self.mi_.fill_(1.0 / len(self.spec.names))
        self.mean_weights_.fill_(1.0)
        self.history_mass_, self.alpha_, self.history_ = 1.0, float(self.alpha), []
        self._best = None
        self._seed = int(torch.initial_seed() % (2**31 - 1))
        self._unimodal_models, self._reference = [], None
        if self.unimodal == "separate":
            self._unimodal_models = train_unimodal_models(
                network,
                ctx.data,
                ctx.loop.new_optimizer,
                self.unimodal_epochs or ctx.max_epochs,
                ctx.batch_size,
                self._seed,
            )
            self._reference = unimodal_logits(self._unimodal_models, inputs, _chunk(ctx))

    # -- forward -----------------------------------------------------------------------------
    def _capture(self, network: Any, args: tuple[Any, ...]) -> None:
        """Forward pre-hook: the weights ``(B, M)`` for the pass about to run on ``args[0]``."""
        if self._inside:
            return
        batch: ModalityBatch = args[0]
        if batch.index is not None and len(self.weights_) > 0:
            self._pass_weights = self.weights_[batch.index]  # training rows: stored W
        else:
            self._pass_weights = self._label_free_weights(network, batch)

    def reweight(
        self, features: dict[str, Tensor], mask: Tensor, output: FusionOutput
    ) -> dict[str, Tensor]:
        weights = self._pass_weights
        if weights is None or weights.shape != mask.shape:
            weights = self.mean_weights_.expand(mask.shape)  # a pass not through forward
        weights = weights.to(mask.device) * mask  # (B, M), absent 0
        output.modality_weights = weights
        return {
            name: h * expand_mask(weights[:, position], h)  # (B, *shape_m)
            for position, (name, h) in enumerate(features.items())
        }

    def loss_terms(self, output: FusionOutput, ctx: LossContext) -> dict[str, Tensor]:
        """``unimodal="heads"``: the unimodal heads' loss on detached features (present only)."""
        if self.unimodal != "heads":
            return {}
        detached = {name: h.detach() for name, h in output.calibrated.items()}
        logits = ctx.network.unimodal(detached, output.steps)
        losses = torch.stack([ctx.per_sample_loss(logits[m]) for m in self.spec.names], 1)
        present = output.mask.to(losses.dtype)  # (B, M)
        return {"btw_unimodal_heads": (losses * present).sum() / present.sum().clamp(min=1.0)}

    # -- weights -----------------------------------------------------------------------------
    def _hat_weights(
        self, unimodal: Tensor, multimodal: Tensor, mask: Tensor, target: Tensor | None
    ) -> Tensor:
        """ŵ ``(B, M)`` from ŷ^m ``(B, M, K)``, ŷ^MM ``(B, K)`` (Eqs. 5–9).

        With ``target`` (training) the MI and the pooled stds are re-estimated and stored; without
        it (predict) the stored ones are used.
        """
        uni = unimodal.detach().double().cpu().numpy()
        multi = multimodal.detach().double().cpu().numpy()
        present = mask.cpu().numpy()
        if self.spec.task == "classification":
            uni_probs = _softmax(uni)  # (B, M, C)
            multi_probs = _softmax(multi)  # (B, C)
            kl = equations.instance_kl_classification(uni_probs, multi_probs, present)
            if target is not None and self.level in ("bi", "global_mi"):
                mi = equations.modality_mi_classification(uni.argmax(-1), multi.argmax(-1), present)
                self.mi_.copy_(torch.from_numpy(equations.normalise_mi(mi)))
        else:
            if target is not None:
                y = target.detach().double().cpu().numpy().reshape(multi.shape)  # (B, K)
                uni_std, multi_std = np.abs(y[:, None, :] - uni), np.abs(y - multi)
                self._store_pooled_stds(uni_std, multi_std, present)
                if self.level in ("bi", "global_mi"):
                    mi = equations.modality_mi_regression(uni, multi, present, self._seed)
                    self.mi_.copy_(torch.from_numpy(equations.normalise_mi(mi)))
            else:
                uni_std = self.unimodal_std_.double().cpu().numpy()[None]  # (1, M, K)
                multi_std = self.multimodal_std_.double().cpu().numpy()[None]  # (1, K)
            kl = equations.instance_kl_regression(
                uni, multi, uni_std, multi_std, present, STD_FLOOR
            )
        kl_normalised = equations.normalise_rows(kl, present)  # KL̃: (B, M)
        hat = equations.combine(kl_normalised, self.mi_.double().cpu().numpy(), present, self.level)
        if self.rescale == "mean_one":
            hat = hat * present.sum(axis=1, keepdims=True)
        return torch.from_numpy(hat).to(torch.float32)

    def _store_pooled_stds(
        self, unimodal_std: np.ndarray, multimodal_std: np.ndarray, present: np.ndarray
    ) -> None:
        """σ_m, σ_MM for predict: RMS training residuals over rows where m is present."""
        counts = np.maximum(present.sum(axis=0), 1)[:, None]  # (M, 1)
        squared = (unimodal_std**2 * present[:, :, None]).sum(axis=0) / counts  # (M, K)
        self.unimodal_std_.copy_(torch.from_numpy(np.sqrt(squared)))
        self.multimodal_std_.copy_(torch.from_numpy(np.sqrt((multimodal_std**2).mean(axis=0))))

    @torch.no_grad()
    def _label_free_weights(self, network: Any, batch: ModalityBatch) -> Tensor:
        """Predict-time weights ``(B, M)``; reads no label (see the module docstring)."""
        mask = batch.mask
        if self.predict_weights == "ones":
            return mask.to(torch.float32)
        mean = self.mean_weights_.expand(mask.shape) * mask
        if self.predict_weights == "mean" or self.history_mass_ >= 1.0 or "global" in self.level:
            return mean  # global levels: W holds one constant per modality, its mean
        self._inside, self._pass_weights = True, mean
        try:
            first = network(batch)  # ŷ^MM with the mean training weights
        finally:
            self._inside = False
        if self.unimodal == "heads":
            unimodal = torch.stack([first.unimodal_logits[m] for m in self.spec.names], 1)
        else:
            unimodal = unimodal_logits(self._unimodal_models, batch, len(batch))
        hat = self._hat_weights(unimodal, first.logits, mask, target=None).to(mask.device)
        return ((1.0 - self.history_mass_) * hat + self.history_mass_) * mask

    # -- epoch update (Eq. 10) ---------------------------------------------------------------
    def on_epoch_end(self, ctx: TrainingContext) -> None:
        if (ctx.epoch + 1) % self.update_every == 0:
            self.update(ctx)

    @torch.no_grad()
    def update(self, ctx: TrainingContext) -> None:
        """Recompute ŵ on the training rows, EMA it into W, then move α."""
        network, inputs, target = ctx.network, ctx.data.inputs, ctx.data.target
        was_training = network.training
        network.eval()
        multimodal, heads = [], []
        for start in range(0, len(inputs), _chunk(ctx)):
            output = network(inputs.take(slice(start, start + _chunk(ctx))))
            multimodal.append(output.logits)
            if self.unimodal == "heads":
                heads.append(torch.stack([output.unimodal_logits[m] for m in self.spec.names], 1))
        network.train(was_training)
        multimodal_logits = torch.cat(multimodal)  # ŷ^MM: (N, K)
        unimodal = torch.cat(heads) if self.unimodal == "heads" else self._reference  # (N, M, K)
        hat = self._hat_weights(unimodal, multimodal_logits, inputs.mask, target)  # (N, M)
        hat = hat.to(self.weights_.device) * inputs.mask
        self.weights_ = equations.ema(self.weights_, hat, self.alpha_)
        self.history_mass_ *= 1.0 - self.alpha_
        counts = inputs.mask.sum(dim=0).clamp(min=1)
        self.mean_weights_.copy_(self.weights_.sum(dim=0) / counts)
        self._move_alpha(ctx, multimodal_logits, target)
        self.history_.append(
            {
                "epoch": ctx.epoch,
                "alpha": self.alpha_,
                "mi": self.mi_.tolist(),
                "mean_weights": self.mean_weights_.tolist(),
            }
        )

    def _move_alpha(self, ctx: TrainingContext, multimodal_logits: Tensor, target: Tensor) -> None:
        """α ± step: ``valid_loss`` if skorch has one, else training macro-F1 / MAE of ŷ^MM."""
        last = ctx.loop.last_epoch() if ctx.loop is not None else {}
        if "valid_loss" in last:
            score = -float(last["valid_loss"])
        elif self.spec.task == "classification":
            predicted = multimodal_logits.argmax(dim=1).cpu().numpy()
            from sklearn.metrics import f1_score  # here: registering the plugin stays light

            score = f1_score(target.cpu().numpy(), predicted, average="macro")
        else:
            error = (multimodal_logits - target.reshape(multimodal_logits.shape)).abs()
            score = -float(error.mean())
        if self._best is not None:
            improved = score > self._best
            self.alpha_ = equations.next_alpha(
                self.alpha_, improved, float(self.alpha_step), self.alpha_on_improve
            )
        self._best = score if self._best is None else max(self._best, score)


class BTWLocal(BTW):
    """BTW-local (KL): instance-level KL weights only (Eq. 8)."""

    def __init__(
        self,
        level: str = "local",
        unimodal: str = "separate",
        unimodal_epochs: int | None = None,
        alpha: float = 0.5,
        alpha_step: float = 0.05,
        alpha_on_improve: str = "increase",
        update_every: int = 1,
        predict_weights: str = "mean",
        rescale: str = "none",
    ) -> None:
        super().__init__(
            level,
            unimodal,
            unimodal_epochs,
            alpha,
            alpha_step,
            alpha_on_improve,
            update_every,
            predict_weights,
            rescale,
        )


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _chunk(ctx: TrainingContext) -> int:
    return max(int(ctx.batch_size), 256)
