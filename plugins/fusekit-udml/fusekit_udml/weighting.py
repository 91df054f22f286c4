"""UDML: unbiased dynamic weighting of modalities.

"Unbiased Dynamic Multimodal Learning" (UDML), Sec. 3.2, code github.com/shicaiwei123/UDML; the
rebuilt equations and paper-vs-code choices are in ``specs/seed-002-udml.md``. The paper writes
M = 2; everything below holds for M ≥ 2 and for any presence mask.

Per modality m, on the calibrated encoder output h^m ``(B, *shape_m)``:

- (9)  probabilistic representation: μ^m = mean_head(h^m), Σ^m = exp(logvar_head(h^m)),
  σ_z^m = sqrt(Σ^m) ``(B, *shape_m)``; z^m = μ^m + ξ ⊙ σ_z^m (ξ ~ N(0, I)) in training, z^m = μ^m
  in evaluation. Heads are linear on the feature axis (1×1 convolutions for ``(C, H, W)``).
- (10, 11) noise-aware uncertainty estimator E_m (two-layer MLP, the code's Linear-Dropout-Linear)
  on the pooled σ_z^m **detached** (stop-gradient: L_est never reaches encoders or heads):
  σ̂_i^m = E_m(pool(σ_z^m)) ``(B,)`` (paper; the code reads E's output as a log-variance,
  σ̂ = exp(E/2)); u_i^m = σ̂_i^m. L_est = Σ_m mean_{i: m present} (σ̂_i^m − (σ_i^m + target_offset))²,
  σ_i^m the level ``perturb`` injected into x_i^m.
- (12, 13) modality-dependency calculator, through the network's own fusion and head (no copies):
  d^m = mean_{i: m present} ‖ℓ^f_i − ℓ^{−m}_i‖₁, α^m = M · d^m / Σ_k d^k ``(M,)``, measured without
  gradients on an *unweighted* pass (M·w ≡ 1; on the weighted pass α feeds back on itself and the
  weights oscillate, spec §10.4). Updated after every training step (used from the next one) and
  frozen in evaluation (a persistent buffer, so it survives pickling and ``predict``).
- (7)  w_i^m = (1 / (u_i^m · α^m)) / Σ_{k present} (1 / (u_i^k · α^k)) ``(B, M)``, zero when m is
  absent; exposed as ``output.modality_weights``.
- (3)  z̃_i^m = |P_i| · w_i^m · z_i^m fed to the fusion, |P_i| = modalities present for sample i
  (= M when all are: the paper's amplitude compensation).
- (14, 15) progressive optimisation: stage 1 (epochs < ⌊stage1_fraction · max_epochs⌋) trains
  L_task + L_uni on clean data with u ≡ 1; stage 2 perturbs the inputs (``perturb``, before the
  backbones) and adds L_est. L_uni = Σ_m CE(ℓ^{only m}), the keep-only-m logits of the shared
  fusion and head on z^m (for M = 2 the paper's "modality dropped" logits).

Choices where the paper is silent (spec §10, each a parameter): the norm of Eq. 12 is L1 averaged
over the samples where m is present, a batch without some modality keeps the previous α; noise is
relative to each feature's training std; the clean level has target 1 (``target_offset``) so u
stays away from 0 (and is floored at 1e-6 in Eq. 7); at inference u is used only if the estimator
was switched on during training (a fit that ends in stage 1 weights by α alone). In the paper
preset E is a pure noise regressor (``detach_weights=True``; Eq. 10 is its only objective) with
the identity link of Eq. 10 (σ̂ = E(·)). Measured on a synthetic two-view task (adam, lr 0.01): the
code's exp link (σ̂ = exp(E/2)) responds more sharply once trained, but extrapolates explosively
(σ̂ ≈ 350 at twice the largest training noise) and in short fits (10 stage-2 epochs) or with the
KL term it predicted the mean level or collapsed to σ̂ ≈ 0 (exp's vanishing gradient); the
identity link gave a monotone weight-vs-noise curve in every run tried.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from numbers import Integral, Real

import torch
from torch import Tensor, nn

from fusekit.plugin import (
    BuildSpec,
    FusionOutput,
    Interval,
    LossContext,
    ModalityBatch,
    NetworkView,
    Shape,
    StrOptions,
    TrainingContext,
    Weighting,
    all_reduce,
    as_vector,
    at_least_float32,
    expand_mask,
    global_present_mean,
    present_mean,
)
from fusekit.plugin.constraints import SequenceOf
from fusekit_udml.equations import (
    dependency_ratios,
    estimator_loss,
    gaussian_kl,
    scale_features,
    unbiased_weights,
)
from fusekit_udml.noise import corrupt, draw_levels
from fusekit_udml.presets import PRESETS, Settings, preset_settings

_ACTIVATIONS = {None: None, "relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}
_CHOICES = {
    "dependency_on": ("unweighted", "weighted"),
    "dependency_norm": ("l1", "l2"),
    "dependency_estimate": ("last_batch", "epoch_mean"),
    "uncertainty": ("estimator", "variance", "none"),
    "uni_head": ("shared", "separate"),
    "estimator_input": ("std", "logvar"),
    "uncertainty_transform": ("identity", "exp_half"),
}


@dataclass
class UDMLPass:
    """What one weighted forward pass leaves for the losses (``output.diagnostics["udml"]``)."""

    means: dict[str, Tensor]  # {m: (B, *shape_m)} μ^m
    stds: dict[str, Tensor]  # {m: (B, *shape_m)} σ_z^m
    embeddings: dict[str, Tensor]  # {m: (B, *shape_m)} z^m (sampled in training)
    scaled: dict[str, Tensor]  # {m: (B, *shape_m)} z̃^m, what the fusion received
    predicted_noise: Tensor  # (B, M) σ̂ (gradient reaches E only)
    levels: Tensor  # (B, M) injected noise levels σ (0 = clean)
    weights: Tensor  # (B, M) w
    mask: Tensor  # (B, M)


class _FeatureHead(nn.Module):
    """Linear map on the feature axis of ``(B, D)``, ``(B, T, D)``; 1×1 conv on ``(B, C, H, W)``."""

    def __init__(self, shape: Shape) -> None:
        super().__init__()
        width = shape[0] if len(shape) == 3 else shape[-1]
        self.layer = nn.Conv2d(width, width, 1) if len(shape) == 3 else nn.Linear(width, width)

    def forward(self, h: Tensor) -> Tensor:
        return self.layer(h)


def _pool(x: Tensor, steps: Tensor | None) -> Tensor:
    """``(B, D)``; ``(B, T, D)`` mean of real steps; ``(B, C, H, W)`` spatial mean -> ``(B, D)``."""
    return x.mean(dim=(2, 3)) if x.dim() == 4 else as_vector(x, steps)


def decide(
    network: NetworkView, features: dict[str, Tensor], mask: Tensor, steps: dict[str, Tensor]
) -> Tensor:
    """The network's own fusion and head on given features: ``(B, n_outputs)`` logits.

    UDML's modality-dropped passes reuse these modules (no parameters, no copies: Sec. 3.2.2) and
    must not go through the weighting again, so this skips ``NetworkView.fuse``'s reweighting
    (``NetworkView.decide``).
    """
    return network.decide(features, mask, steps)


class UDMLWeighting(Weighting):
    """Unbiased dynamic weighting: noise-aware uncertainty divided by modality dependency (UDML).

    Parameters:
        preset: ``"paper"`` (default) or ``"official_code"``; sets every ``None`` parameter below
            (see :mod:`fusekit_udml.presets`).
        stage1_fraction: share of ``max_epochs`` trained clean, without L_est (paper: 0.5).
        noise_levels: the discrete set P_σ of levels σ_k drawn in stage 2 (0 = clean).
        clean_fraction: share of stage-2 samples left clean on every modality (code: 0.5).
        noise_scale: noise std per level, in units of each feature's training std.
        full_corruption: at the top level replace the input by pure noise (code's σ = 11).
        target_offset: E's target is σ_k + target_offset (clean -> 1, as in the code).
        estimator_hidden, estimator_dropout, estimator_activation: E_m = Linear(D, hidden) ->
            [activation] -> Dropout -> Linear(hidden, 1) (code: 256, 0.1, no activation).
        est_weight, uni_weight, kl_weight: loss weights of L_est, L_uni and the code's KL term.
        uncertainty_power: u = σ̂^power (paper 1; code 2, inverse variance).
        residual: fuse (1 + |P|·w)·z (code) instead of |P|·w·z (Eq. 3).
        dependency_on: ``"unweighted"`` (Eq. 12 on an unweighted pass) or ``"weighted"`` (code:
            ‖ℓ^{only m}‖₁ on the weighted features, which also feed L_uni).
        dependency_norm: ``"l1"`` or ``"l2"`` over outputs in Eq. 12.
        dependency_estimate: ``"last_batch"`` (α from the last step) or ``"epoch_mean"`` (α from
            the mean d of the last epoch, set at epoch end).
        dependency: False is the −MC ablation (α ≡ 1).
        uncertainty: ``"estimator"`` (NUE), ``"variance"`` (−NUE ablation: u = mean σ_z) or
            ``"none"`` (u ≡ 1).
        uncertainty_warmup_epochs: epochs after the stage switch with u ≡ 1 (code: 10 of 100).
        estimate_in_stage1: also train E in stage 1, on clean targets (code).
        detach_weights: keep the task loss out of E (code: False, E also gets task gradients).
        uni_head: ``"shared"`` (paper: the network's fusion and head) or ``"separate"`` (L_uni on
            the network's per-modality unimodal heads).
    """

    #: Data-parallel: the dependency scores (so α) from the global batch; the input statistics
    #: from every training row, which every process holds; noise drawn per row.
    data_parallel_safe = True
    #: ``None``: the preset's value (:mod:`fusekit_udml.presets`).
    parameter_constraints = {
        "preset": [StrOptions(set(PRESETS))],
        "stage1_fraction": [Interval(Real, 0, 1, closed="both")],
        "noise_levels": [SequenceOf(Interval(Real, 0, None, closed="left"))],
        "clean_fraction": [Interval(Real, 0, 1, closed="both")],
        "noise_scale": [Interval(Real, 0, None, closed="left")],
        "full_corruption": ["boolean"],
        "target_offset": [Interval(Real, 0, None, closed="left")],
        "estimator_hidden": [Interval(Integral, 1, None, closed="left")],
        "estimator_dropout": [Interval(Real, 0, 1, closed="left")],
        "estimator_activation": [StrOptions({name for name in _ACTIVATIONS if name}), None],
        "estimator_input": [StrOptions(set(_CHOICES["estimator_input"]))],
        "est_weight": [Interval(Real, 0, None, closed="left")],
        "uni_weight": [Interval(Real, 0, None, closed="left"), None],
        "kl_weight": [Interval(Real, 0, None, closed="left"), None],
        "uncertainty_power": [Interval(Real, 0, None, closed="neither"), None],
        "residual": ["boolean", None],
        "dependency_on": [StrOptions(set(_CHOICES["dependency_on"])), None],
        "dependency_norm": [StrOptions(set(_CHOICES["dependency_norm"]))],
        "dependency_estimate": [StrOptions(set(_CHOICES["dependency_estimate"]))],
        "dependency": ["boolean"],
        "uncertainty": [StrOptions(set(_CHOICES["uncertainty"]))],
        "uncertainty_warmup_epochs": [Interval(Integral, 0, None, closed="left"), None],
        "estimate_in_stage1": ["boolean", None],
        "detach_weights": ["boolean", None],
        "uncertainty_transform": [StrOptions(set(_CHOICES["uncertainty_transform"])), None],
        "uni_head": [StrOptions(set(_CHOICES["uni_head"]))],
    }

    def __init__(
        self,
        preset: str = "paper",
        stage1_fraction: float = 0.5,
        noise_levels: tuple[float, ...] = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10),
        clean_fraction: float = 0.5,
        noise_scale: float = 0.2,
        full_corruption: bool = True,
        target_offset: float = 1.0,
        estimator_hidden: int = 256,
        estimator_dropout: float = 0.1,
        estimator_activation: str | None = None,
        estimator_input: str = "std",
        est_weight: float = 0.1,
        uni_weight: float | None = None,
        kl_weight: float | None = None,
        uncertainty_power: float | None = None,
        residual: bool | None = None,
        dependency_on: str | None = None,
        dependency_norm: str = "l1",
        dependency_estimate: str = "last_batch",
        dependency: bool = True,
        uncertainty: str = "estimator",
        uncertainty_warmup_epochs: int | None = None,
        estimate_in_stage1: bool | None = None,
        detach_weights: bool | None = None,
        uncertainty_transform: str | None = None,
        uni_head: str = "shared",
    ) -> None:
        super().__init__()
        self.preset = preset
        self.stage1_fraction = stage1_fraction
        self.noise_levels = noise_levels
        self.clean_fraction = clean_fraction
        self.noise_scale = noise_scale
        self.full_corruption = full_corruption
        self.target_offset = target_offset
        self.estimator_hidden = estimator_hidden
        self.estimator_dropout = estimator_dropout
        self.estimator_activation = estimator_activation
        self.estimator_input = estimator_input
        self.est_weight = est_weight
        self.uni_weight = uni_weight
        self.kl_weight = kl_weight
        self.uncertainty_power = uncertainty_power
        self.residual = residual
        self.dependency_on = dependency_on
        self.dependency_norm = dependency_norm
        self.dependency_estimate = dependency_estimate
        self.dependency = dependency
        self.uncertainty = uncertainty
        self.uncertainty_warmup_epochs = uncertainty_warmup_epochs
        self.estimate_in_stage1 = estimate_in_stage1
        self.detach_weights = detach_weights
        self.uncertainty_transform = uncertainty_transform
        self.uni_head = uni_head
        self.needs_unimodal_heads = uni_head == "separate"

    # -- construction --------------------------------------------------------------------------
    def _resolve(self) -> Settings:
        base = preset_settings(self.preset)
        chosen = {
            "uncertainty_power": self.uncertainty_power,
            "residual": self.residual,
            "dependency_on": self.dependency_on,
            "uni_weight": self.uni_weight,
            "kl_weight": self.kl_weight,
            "estimate_in_stage1": self.estimate_in_stage1,
            "detach_weights": self.detach_weights,
            "uncertainty_transform": self.uncertainty_transform,
        }
        return replace(base, **{k: v for k, v in chosen.items() if v is not None})

    def build(self, spec: BuildSpec) -> None:
        self.settings_ = self._resolve()
        if not self.noise_levels:  # each item: its declaration
            raise ValueError(
                f"udml: noise_levels must hold at least one level, got {self.noise_levels!r}."
            )
        self.names_ = spec.names
        activation = _ACTIVATIONS[self.estimator_activation]
        self.mean_heads = nn.ModuleDict()
        self.logvar_heads = nn.ModuleDict()
        self.estimators = nn.ModuleDict()
        for name, shape in spec.feature_shapes.items():
            width = shape[0] if len(shape) == 3 else shape[-1]
            self.mean_heads[name] = _FeatureHead(shape)
            self.logvar_heads[name] = _FeatureHead(shape)
            layers: list[nn.Module] = [nn.Linear(width, int(self.estimator_hidden))]
            if activation is not None:
                layers.append(activation())
            layers += [
                nn.Dropout(float(self.estimator_dropout)),
                nn.Linear(self.estimator_hidden, 1),
            ]
            self.estimators[name] = nn.Sequential(*layers)
        n_modalities = len(spec.names)
        self.register_buffer("dependency_ratio", torch.ones(n_modalities))  # α (M,)
        self.register_buffer("uses_uncertainty", torch.tensor(False))  # E switched on in training
        self.register_buffer("dependency_sum", torch.zeros(n_modalities), persistent=False)
        self.register_buffer("dependency_steps", torch.zeros(()), persistent=False)
        self.register_buffer(
            "level_values", torch.tensor([float(v) for v in self.noise_levels]), persistent=False
        )
        self.stage_ = 1
        self.uncertainty_on_ = False
        self.stage1_epochs_ = 0
        self.uncertainty_start_ = 0
        self.input_mean_: dict[str, Tensor] = {}
        self.input_std_: dict[str, Tensor] = {}
        self._levels: Tensor | None = None

    # -- training-loop hooks (progressive optimisation, Sec. 3.2.3) ----------------------------
    def on_train_begin(self, ctx: TrainingContext) -> None:
        max_epochs = ctx.max_epochs
        self.stage1_epochs_ = math.floor(float(self.stage1_fraction) * max_epochs)
        warmup = self.uncertainty_warmup_epochs
        if warmup is None:
            warmup = round(self.settings_.warmup_fraction * max_epochs)
        self.uncertainty_start_ = self.stage1_epochs_ + int(warmup)
        self.dependency_ratio.fill_(1.0)
        self.uses_uncertainty.fill_(False)
        if ctx.data is not None:
            inputs = ctx.data.inputs
            for position, name in enumerate(inputs.names):
                present = inputs.features[name][inputs.mask[:, position]]  # (N_m, *shape)
                self.input_mean_[name] = present.mean(dim=0)
                self.input_std_[name] = present.std(dim=0).nan_to_num(1.0).clamp(min=1e-6)

    def on_epoch_begin(self, ctx: TrainingContext) -> None:
        self.stage_ = 2 if ctx.epoch >= self.stage1_epochs_ else 1
        self.uncertainty_on_ = self.uncertainty != "none" and ctx.epoch >= self.uncertainty_start_
        if self.uncertainty_on_:
            self.uses_uncertainty.fill_(True)
        self.dependency_sum.zero_()
        self.dependency_steps.zero_()

    def on_epoch_end(self, ctx: TrainingContext) -> None:
        if self.dependency_estimate == "epoch_mean" and self.dependency_steps > 0:
            self.dependency_ratio.copy_(
                dependency_ratios(self.dependency_sum / self.dependency_steps)
            )

    # -- forward: perturbation (stage 2), probabilistic embedding and Eq. 7 / Eq. 3 --------------
    def perturb(self, batch: ModalityBatch) -> ModalityBatch:
        """Stage 2 only: x̃^m = x^m + ε, ε ~ N(0, (scale · σ · s_m)²); levels kept for L_est."""
        if self.stage_ == 1:
            self._levels = None
            return batch
        levels = draw_levels(batch.mask, self.level_values, float(self.clean_fraction))  # (B, M)
        top = float(self.level_values.max()) if self.full_corruption else None
        features = {}
        for position, (name, x) in enumerate(batch.features.items()):
            mean = self.input_mean_.get(name, torch.zeros((), device=x.device))
            std = self.input_std_.get(name, torch.ones((), device=x.device))
            features[name] = corrupt(
                x,
                levels[:, position],
                float(self.noise_scale),
                mean,
                std,
                top,
                batch.steps.get(name),
            )
        self._levels = levels
        return replace(batch, features=features)

    def reweight(
        self, features: dict[str, Tensor], mask: Tensor, output: FusionOutput
    ) -> dict[str, Tensor]:
        means, stds, embeddings, noise = {}, {}, {}, []
        for name, h in features.items():  # h: (B, *shape_m)
            # float32 (mixed precision): exp of the log-variance, the draw and the weights
            mean = at_least_float32(self.mean_heads[name](h))  # (B, *shape_m), Eq. 9's μ
            log_variance = at_least_float32(self.logvar_heads[name](h)).clamp(-20.0, 20.0)  # log Σ
            std = torch.exp(0.5 * log_variance)  # σ_z^m (B, *shape_m)
            sample = mean + torch.randn_like(mean) * std if self.training else mean
            means[name], stds[name], embeddings[name] = mean, std, sample
            spread = std if self.estimator_input == "std" else log_variance
            pooled = _pool(spread, output.steps.get(name)).detach()  # (B, D): stop-gradient
            estimate = at_least_float32(self.estimators[name](pooled).squeeze(-1))  # (B,)
            if self.settings_.uncertainty_transform == "exp_half":  # code: E predicts log σ̂²
                estimate = torch.exp(0.5 * estimate.clamp(-20.0, 20.0))
            noise.append(estimate)  # σ̂ (B,), Eq. 10/11
        predicted_noise = torch.stack(noise, dim=1)  # (B, M)
        weights = unbiased_weights(  # (B, M), Eq. 7
            self._uncertainty(predicted_noise, stds, output.steps),
            # a copy: α is updated in place after this pass, before backward
            self.dependency_ratio.clone()
            if self.dependency
            else torch.ones_like(self.dependency_ratio),
            mask,
            self.settings_.uncertainty_power,
        )
        scaled = scale_features(embeddings, weights, mask, self.settings_.residual)  # Eq. 3
        levels = self._levels if self.training else None
        if levels is None or levels.shape != mask.shape:
            levels = torch.zeros(mask.shape, device=mask.device)
        self._levels = None
        output.modality_weights = weights.detach()
        output.diagnostics["udml"] = UDMLPass(
            means, stds, embeddings, scaled, predicted_noise, levels, weights, mask
        )
        return scaled

    def _uncertainty(
        self, predicted_noise: Tensor, stds: dict[str, Tensor], steps: dict[str, Tensor]
    ) -> Tensor:
        """u ``(B, M)``: σ̂ (NUE), mean σ_z (−NUE), or 1 while uncertainty is off (stage 1)."""
        ones = torch.ones_like(predicted_noise)
        if self.uncertainty == "none" or (self.training and not self.uncertainty_on_):
            return ones
        if self.uncertainty == "variance":
            pooled = [_pool(std, steps.get(m)).mean(dim=1) for m, std in stds.items()]
            computed = torch.stack(pooled, dim=1).detach()  # (B, M)
        else:
            computed = (
                predicted_noise.detach() if self.settings_.detach_weights else predicted_noise
            )
        if self.training:
            return computed
        # evaluation: the fitted flag stays a tensor (torch.where, not bool()): no host read
        return torch.where(self.uses_uncertainty, computed, ones)

    # -- losses and the modality-dependency calculator -----------------------------------------
    def loss_terms(self, output: FusionOutput, ctx: LossContext) -> dict[str, Tensor]:
        state: UDMLPass | None = output.diagnostics.get("udml")
        if state is None or not ctx.training:
            return {}
        terms: dict[str, Tensor] = {}
        only_logits = self._keep_only_logits(state, ctx.network, output.steps)
        if self.settings_.uni_weight:
            terms["udml_uni"] = self.settings_.uni_weight * self._unimodal_loss(
                state, output, only_logits, ctx
            )
        if self.dependency:
            with torch.no_grad():
                scores = self._dependency_scores(state, ctx.network, output.steps, only_logits)
                self._update_dependency(scores, state.mask)
        targets = state.levels + float(self.target_offset)  # (B, M)
        estimating = self.stage_ == 2 or self.settings_.estimate_in_stage1
        if self.uncertainty == "estimator" and estimating and self.est_weight:
            terms["udml_est"] = float(self.est_weight) * estimator_loss(
                state.predicted_noise, targets, state.mask
            )
        if self.settings_.kl_weight:
            terms["udml_kl"] = self.settings_.kl_weight * self._kl(state, targets)
        return terms

    def _keep_only_logits(
        self, state: UDMLPass, network: NetworkView, steps: dict[str, Tensor]
    ) -> dict[str, Tensor]:
        """ℓ^{only m} ``{m: (B, C)}`` through the shared fusion and head, with gradients.

        Paper (``dependency_on="unweighted"``): on z^m itself (|P| = 1, w = 1); code: on the
        weighted z̃^m of the full pass.
        """
        source = state.embeddings if self.settings_.dependency_on == "unweighted" else state.scaled
        logits = {}
        for position, name in enumerate(self.names_):
            only = torch.zeros_like(state.mask)
            only[:, position] = state.mask[:, position]  # (B, M)
            kept = {m: z if m == name else torch.zeros_like(z) for m, z in source.items()}
            logits[name] = decide(network, kept, only, steps)  # (B, C)
        return logits

    def _unimodal_loss(
        self,
        state: UDMLPass,
        output: FusionOutput,
        only_logits: dict[str, Tensor],
        ctx: LossContext,
    ) -> Tensor:
        """L_uni = Σ_m mean_{i: m present} task_loss(ℓ^{only m}_i) (Eq. 14)."""
        heads = output.unimodal_logits if self.uni_head == "separate" else only_logits
        total = torch.zeros((), device=state.mask.device)
        for position, name in enumerate(self.names_):
            # the mean over present rows, 0 when none: no `if present.any():` host read
            losses = ctx.per_sample_loss(heads[name])  # (B,)
            total = total + present_mean(losses, state.mask[:, position])
        return total

    def _dependency_scores(
        self,
        state: UDMLPass,
        network: NetworkView,
        steps: dict[str, Tensor],
        only_logits: dict[str, Tensor],
    ) -> Tensor:
        """d ``(M,)``: Eq. 12 on an unweighted pass (paper) or ‖ℓ^{only m}‖ (code)."""
        order = 1 if self.dependency_norm == "l1" else 2
        if self.settings_.dependency_on == "weighted":
            changes = [only_logits[name].detach() for name in self.names_]  # each (B, C)
        else:
            unweighted = {  # M·w ≡ 1: z^m on present rows
                m: z.detach() * expand_mask(state.mask[:, i], z)
                for i, (m, z) in enumerate(state.embeddings.items())
            }
            full = decide(network, unweighted, state.mask, steps)  # ℓ^f (B, C)
            changes = []
            for position, name in enumerate(self.names_):
                dropped = state.mask.clone()
                dropped[:, position] = False
                kept = {m: torch.zeros_like(z) if m == name else z for m, z in unweighted.items()}
                changes.append(full - decide(network, kept, dropped, steps))  # ℓ^f − ℓ^{−m}
        norms = torch.stack([c.norm(p=order, dim=1) for c in changes], dim=1)  # (B, M)
        # over the present rows of the global batch (data-parallel: every process's rows)
        return global_present_mean(norms, state.mask)[0]  # (M,)

    def _update_dependency(self, scores: Tensor, mask: Tensor) -> None:
        """α ← Eq. 13, unless some modality is absent from the whole batch (α kept).

        The condition stays a tensor (``torch.where``, no ``if``): no host read every batch."""
        available = all_reduce(mask.any(dim=0).to(scores.dtype), "max") > 0  # global batch
        usable = available.all() & torch.isfinite(scores).all() & (scores.sum() > 0)
        if self.dependency_estimate == "epoch_mean":
            self.dependency_sum += torch.where(usable, scores, 0.0)
            self.dependency_steps += usable.to(self.dependency_steps.dtype)
        else:
            safe = torch.where(usable, scores, torch.ones_like(scores))
            kept = torch.where(usable, dependency_ratios(safe), self.dependency_ratio)
            self.dependency_ratio.copy_(kept)

    def _kl(self, state: UDMLPass, targets: Tensor) -> Tensor:
        """The code's β-term: Σ_m mean_{i present} KL(N(μ, σ_z²) ‖ N(0, (σ + offset)·I))."""
        total = torch.zeros((), device=targets.device)
        for position, name in enumerate(self.names_):
            prior = targets[:, position].clamp(min=1e-6)
            kl = gaussian_kl(state.means[name], state.stds[name], prior)  # (B,)
            total = total + present_mean(kl, state.mask[:, position])  # 0 when none present
        return total
