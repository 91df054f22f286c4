"""On-the-fly Gradient Modulation with Generalisation Enhancement (OGM-GE).

Peng, Wei, Deng, Wang, Hu, "Balanced Multimodal Learning via On-the-fly Gradient Modulation",
CVPR 2022, arXiv:2203.15332. Official code: GeWu-Lab/OGM-GE_CVPR2022 ``main.py``.

Per training batch, with unimodal logits z_m ``(B, K)`` and labels y:

    (9)   s_m = Σ_i softmax(z_m,i)[y_i]                   (discrepancy score of modality m)
          ρ_m = s_m / s_other                              (two modalities)
    (10)  k_m = 1 − tanh(α · ρ_m)  if ρ_m > 1,  else 1
    (11)  θ_m ← θ_m − η · (k_m · g(θ_m) + h(θ_m)),  h ~ N(0, std(g(θ_m))²)   (GE, ``noise=True``)

k_m multiplies the gradients of modality m's encoder only (``network.modality_parameters(m)``),
between backward and the optimiser step, for epochs ``start_epoch ≤ epoch ≤ end_epoch``
(``end_epoch=None``: to the end). Fusion, head and unimodal probes are never modulated.

Choices, following the official code and BalanceMM (``OGM_trainer.py``) where the paper is silent:

* M > 2: ρ_m = mean over the other modalities j of s_m / s_j (BalanceMM); every modality with
  ρ_m > 1 is slowed down.
* Missing modalities: s_m is the *mean* of softmax(z_m,i)[y_i] over the samples where m is present
  (with complete data the ratio of means equals the paper's ratio of sums). A modality absent from
  the whole batch keeps k = 1 and is left out of the others' ratios.
* The GE noise is added to every modulated modality's gradients in the window, also when k = 1,
  as the official code does. The code modulates only 4-D (conv kernel) gradients; here every
  encoder parameter with at least ``min_param_dim`` dimensions (2: weights, not biases/norms).
* Data-parallel (``docs/scaling.md``): s_m is taken over the global batch, and the GE noise is
  the same in every process (the processes' N(0, 1) draws summed and divided by √W), so k and the
  edited gradients agree across processes. The modulation runs in ``on_grad_computed``, after
  backward, i.e. on the gradients already averaged over the processes.
* Unimodal logits: ``unimodal="split_head"`` computes them as the code does, by splitting the
  concat fusion's linear head, z_m = v_m · W[:, block_m]ᵀ + b / M; ``"heads"`` trains linear probes
  on detached features (so, as in the code, unimodal losses never reach the encoders); ``"auto"``
  splits when the fusion is ``concat`` with a linear head and uses probes otherwise (the probe
  heads are built in ``auto`` mode and stay unused when it splits). With ``concat(indicators=True)``
  the mask column of modality m is part of its block.
"""

from __future__ import annotations

from numbers import Integral, Real

import torch
from torch import Tensor
from torch.nn import functional as F

from fusekit.plugin import (
    BuildSpec,
    FusionOutput,
    Interval,
    LossContext,
    NetworkView,
    StrOptions,
    TrainingContext,
    Weighting,
    as_vector,
    check_window,
    global_present_mean,
    hookimpl,
    present_mean,
)

_UNIMODAL = ("auto", "split_head", "heads")


def modulation_coefficients(scores: Tensor, available: Tensor, alpha: float) -> Tensor:
    """Eq. (10) per modality: ``(M,)`` scores and availability -> ``(M,)`` coefficients k_m."""
    n = scores.shape[0]
    safe = scores.clamp(min=1e-8)
    ratios = safe.unsqueeze(1) / safe.unsqueeze(0)  # (M, M): s_m / s_j
    others = available.unsqueeze(0) & ~torch.eye(n, dtype=torch.bool, device=scores.device)
    counts = others.sum(dim=1)  # (M,)
    rho = (ratios * others).sum(dim=1) / counts.clamp(min=1)  # (M,) mean one-to-others ratio
    dominant = available & (counts > 0) & (rho > 1)
    return torch.where(dominant, 1 - torch.tanh(alpha * rho), torch.ones_like(rho))


def split_head_logits(network: NetworkView, output: FusionOutput) -> dict[str, Tensor]:
    """Unimodal logits from the concat head's column blocks, z_m = v_m W_mᵀ + b / M ``(B, K)``."""
    weight, bias = network.head.weight, network.head.bias  # (K, F), (K,)
    n_modalities = len(output.calibrated)
    logits, start = {}, 0
    for position, (name, h) in enumerate(output.calibrated.items()):
        vector = as_vector(h, output.steps.get(name))  # (B, D_m)
        block = weight[:, start : start + vector.shape[1]]  # (K, D_m)
        logits[name] = vector @ block.T + bias / n_modalities
        if getattr(
            network.fusion, "indicators", False
        ):  # the mask column of modality m belongs to it too
            column = weight[:, weight.shape[1] - n_modalities + position]  # (K,)
            logits[name] = logits[name] + output.mask[:, [position]].to(vector.dtype) * column
        start += vector.shape[1]
    return logits


class OGMGEWeighting(Weighting):
    """OGM-GE: slow the dominant modality's encoder by 1 − tanh(α·ρ) and add gradient noise."""

    supported_tasks = ("classification",)
    parameter_constraints = {
        "alpha": [Interval(Real, 0, None, closed="neither")],
        "start_epoch": [Interval(Integral, 0, None, closed="left")],
        "end_epoch": [Interval(Integral, 0, None, closed="left"), None],
        "noise": ["boolean"],
        "unimodal": [StrOptions(set(_UNIMODAL))],
        "min_param_dim": [Interval(Integral, 0, None, closed="left")],
    }

    #: s_m over the global batch and the GE noise drawn alike in every process (see
    #: ``_standard_noise``); the modulation edits the averaged gradients after backward.
    data_parallel_safe = True

    def __init__(
        self,
        alpha: float = 0.5,
        start_epoch: int = 0,
        end_epoch: int | None = None,
        noise: bool = True,
        unimodal: str = "auto",
        min_param_dim: int = 2,
    ) -> None:
        super().__init__()
        self.alpha = alpha
        self.start_epoch = start_epoch
        self.end_epoch = end_epoch
        self.noise = noise
        self.unimodal = unimodal
        self.min_param_dim = min_param_dim
        self.needs_unimodal_heads = unimodal != "split_head"

    def build(self, spec: BuildSpec) -> None:
        if spec.task != "classification":
            raise ValueError(
                f"ogm_ge: needs a classification task (softmax scores), got {spec.task}"
            )
        check_window("ogm_ge", self.start_epoch, self.end_epoch)  # end_epoch >= start_epoch
        self.names = spec.names
        self.coefficients: Tensor | None = None  # (M,) from the last training batch
        self._split = self.unimodal == "split_head"

    def on_train_begin(self, ctx: TrainingContext) -> None:
        network = ctx.network
        splittable = network.fusion.concatenates and isinstance(network.head, torch.nn.Linear)
        if self.unimodal == "split_head" and not splittable:
            raise ValueError(
                "ogm_ge: unimodal='split_head' needs fusion='concat' (a linear head over the "
                f"concatenated features), got {type(network.fusion).__name__}. "
                "Use unimodal='heads'."
            )
        self._split = self.unimodal == "split_head" or (self.unimodal == "auto" and splittable)
        self.coefficients = None

    def _unimodal_logits(self, output: FusionOutput, ctx: LossContext) -> dict[str, Tensor]:
        if self._split:
            return split_head_logits(ctx.network, output)
        heads = ctx.network.unimodal_heads
        return {  # linear probes on detached features: their loss never reaches the encoders
            m: heads[m](as_vector(h.detach(), output.steps.get(m)))
            for m, h in output.calibrated.items()
        }

    def loss_terms(self, output: FusionOutput, ctx: LossContext) -> dict[str, Tensor]:
        logits = self._unimodal_logits(output, ctx)
        mask = output.mask  # (B, M)
        if ctx.training:
            with torch.no_grad():
                probabilities = torch.stack(
                    [
                        F.softmax(logits[name].float(), dim=1).gather(1, ctx.target[:, None])[:, 0]
                        for name in self.names
                    ],
                    dim=1,
                )  # (B, M)
                # over the global batch: the same k in every process of a data-parallel fit
                scores, available = global_present_mean(probabilities, mask)  # (M,), (M,)
                self.coefficients = modulation_coefficients(scores, available, float(self.alpha))
        if self._split:
            return {}  # the code computes unimodal losses but never back-propagates them
        probe = sum(
            present_mean(ctx.per_sample_loss(logits[name]), mask[:, position])
            for position, name in enumerate(self.names)
        )
        return {"ogm_probes": probe}

    @staticmethod
    def _standard_noise(ctx: TrainingContext, like: Tensor) -> Tensor:
        """N(0, 1) noise shaped as ``like``, the same in every process: the sum of the W
        processes' draws over √W (still N(0, 1); in one process, the draw itself)."""
        draw = torch.randn_like(like)
        if ctx.world_size == 1:
            return draw
        return ctx.all_reduce(draw, "sum") / ctx.world_size**0.5

    def in_window(self, epoch: int) -> bool:
        return int(self.start_epoch) <= epoch and (
            self.end_epoch is None or epoch <= int(self.end_epoch)
        )

    @torch.no_grad()
    def on_grad_computed(self, ctx: TrainingContext) -> None:
        if self.coefficients is None or not self.in_window(ctx.epoch):
            return
        for position, name in enumerate(self.names):
            coefficient = self.coefficients[position]
            for parameter in ctx.network.modality_parameters(name):
                if parameter.grad is None or parameter.dim() < int(self.min_param_dim):
                    continue
                gradient = parameter.grad
                modulated = gradient * coefficient  # Eq. (10)
                if self.noise:  # Eq. (11), std of the unmodulated gradient as in the code
                    std = gradient.std() if gradient.numel() > 1 else gradient.new_zeros(())
                    modulated = modulated + self._standard_noise(ctx, gradient) * (std + 1e-8)
                parameter.grad = modulated
        self.coefficients = None


@hookimpl
def fusekit_weightings() -> dict[str, type]:
    return {"ogm_ge": OGMGEWeighting}
