"""On-the-fly Prediction Modulation (OPM).

Wei, Hu, Du, Wen, "On-the-fly Modulation for Balanced Multimodal Learning", IEEE TPAMI 2024,
arXiv:2410.11582. Official code: GeWu-Lab/BML_TPAMI2024, ``code/models/Classifier.py``
(``calcu_q``, ``Modality_drop.execute_drop``, ``Classifier.forward``), ``code/main.py``
(``train``: warm-up) and ``code/scripts/train_opm.sh`` (defaults). The paper's text was not
available to us; the equations below are written from the official code, labelled (O1)-(O5)
rather than with the paper's numbers, and every choice where the code leaves a gap is listed.

Per training batch, with unimodal logits z_m ``(B, K)`` and labels y ``(B,)``:

    (O1)  s_m = Σ_i softmax(z_m,i)[y_i]                       (score of modality m, scalar)
    (O2)  ρ_m = s_m / s_other                                  (discrepancy ratio, scalar)
    (O3)  q_m = q_base · (1 + λ · tanh(ρ_m − 1))  if ρ_m > 1,  else 0;   q_m ← clip(q_m, 0, 1)
    (O4)  with probability p_exe for the batch:  k_{i,m} ~ Bernoulli(1 − q_m)    ``(B, M)``
    (O5)  θ = Σ_m d_m q_m / Σ_m d_m;   h̃_{i,m} = k_{i,m} · h_{i,m} / (1 − θ)    ``(B, *shape_m)``

q_m is the probability of dropping modality m's features: only the dominant modality (ρ > 1) has
q > 0, each sample draws its own k, and d_m is modality m's feature width. The fused prediction is
made from h̃ (the features are zeroed, the presence mask the fusion sees is unchanged, as in the
code). No modulation in the first ``warmup_epochs`` epochs (the code: epochs 0-5 of 100), in
evaluation, or in prediction. Defaults from ``train_opm.sh``: q_base=0.5, λ=0.5, p_exe=0.7.

Choices, following the code where it is explicit, and where it is silent:

* Unimodal logits: ``unimodal="split_head"`` computes them as the code does, by splitting the
  concat fusion's linear head with its weights detached, z_m = h_m · W[:, block_m]ᵀ + b / M;
  ``"heads"`` trains linear probes on detached features (their loss never reaches the encoders,
  as the code's unimodal losses are never back-propagated); ``"auto"`` splits when the fusion is
  ``concat`` with a linear head and uses probes otherwise.
* The scores are computed on the current batch before fusion, as in ``Classifier.forward``; the
  weighting reads the batch's labels in ``on_batch_begin`` and modulates only the pass over that
  batch (matched by row numbers), never a validation or prediction pass.
* M > 2: ρ_m = mean over the other modalities j of s_m / s_j (the generalisation used by OGM-GE
  here); the modality of lowest score always has ρ ≤ 1, so at least one modality keeps q = 0.
* Missing modalities: s_m is the *mean* of softmax(z_m,i)[y_i] over the rows where m is present
  (with complete data the ratio of means equals the code's ratio of sums). A modality absent from
  the whole batch is never dominant (q = 0) and is left out of the others' ratios; an absent row
  is never dropped (its features are zero already).
* The code removes from the loss the samples whose every modality was dropped
  (``update_flag``), which with two modalities never happens (the non-dominant one has q = 0).
  Here such a sample (possible with M > 2 and missing data) keeps all its features instead, so
  every row stays in the loss and the batch shape is unchanged.
* θ in (O5) sums over all modalities of the network (an absent one has q = 0), as the code does
  with its fixed ``dim_list``; the rescaling applies to every modality's features, as in the code.
* Data-parallel: s_m (so q) over the global batch and one p_exe draw for it (the first
  process's); each process draws its own rows' k, as one process draws each row's.
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
    broadcast,
    expand_mask,
    global_present_mean,
    hookimpl,
    present_mean,
    vector_size,
)

_UNIMODAL = ("auto", "split_head", "heads")


def discrepancy_ratios(scores: Tensor, available: Tensor) -> Tensor:
    """(O2) per modality: ``(M,)`` scores and availability -> ``(M,)`` mean ratios s_m / s_j.

    Unavailable modalities, and modalities with no available other, get 0 (never dominant).
    """
    n = scores.shape[0]
    safe = scores.clamp(min=1e-8)
    ratios = safe.unsqueeze(1) / safe.unsqueeze(0)  # (M, M): s_m / s_j
    others = available.unsqueeze(0) & ~torch.eye(n, dtype=torch.bool, device=scores.device)
    counts = others.sum(dim=1)  # (M,)
    rho = (ratios * others).sum(dim=1) / counts.clamp(min=1)
    return torch.where(available & (counts > 0), rho, torch.zeros_like(rho))


def drop_probabilities(ratios: Tensor, q_base: float, lam: float) -> Tensor:
    """(O3): ``(M,)`` ratios -> ``(M,)`` drop probabilities q_m in [0, 1] (0 unless ρ_m > 1)."""
    excess = torch.tanh(torch.relu(ratios - 1))
    q = torch.where(excess > 0, q_base * (1 + lam * excess), torch.zeros_like(excess))
    return q.clamp(0.0, 1.0)


def drop_rescale(q: Tensor, widths: Tensor) -> Tensor:
    """(O5): 1 / (1 − θ) with θ = Σ_m d_m q_m / Σ_m d_m, from ``(M,)`` q and widths (scalar)."""
    theta = (widths * q).sum() / widths.sum().clamp(min=1)
    return 1.0 / (1.0 - theta).clamp(min=1e-6)


def keep_matrix(q: Tensor, mask: Tensor, uniforms: Tensor) -> Tensor:
    """(O4) from uniform draws ``(B, M)`` in [0, 1): keep (True) with probability 1 − q_m.

    Absent entries are kept (nothing to drop); a row that would lose every present modality keeps
    all of them.
    """
    keep = (uniforms < (1 - q).unsqueeze(0)) | ~mask  # (B, M)
    emptied = ~(keep & mask).any(dim=1) & mask.any(dim=1)  # (B,)
    return keep | emptied.unsqueeze(1)


def uniform_draws(shape: tuple[int, ...], device: torch.device) -> Tensor:
    """U[0, 1) draws from torch's generator: the batch's p_exe draw and the (O4) masks."""
    return torch.rand(shape, device=device)


def split_head_logits(
    network: NetworkView, features: dict[str, Tensor], output: FusionOutput
) -> dict[str, Tensor]:
    """Unimodal logits from the concat head's column blocks, z_m = h_m W_mᵀ + b / M ``(B, K)``."""
    weight, bias = network.head.weight.detach(), network.head.bias.detach()  # (K, F), (K,)
    n_modalities = len(features)
    indicators = getattr(network.fusion, "indicators", False)
    logits, start = {}, 0
    for position, (name, h) in enumerate(features.items()):
        vector = as_vector(h, output.steps.get(name))  # (B, D_m)
        block = weight[:, start : start + vector.shape[1]]  # (K, D_m)
        logits[name] = vector @ block.T + bias / n_modalities
        if indicators:  # the mask column of modality m belongs to it too
            column = weight[:, weight.shape[1] - n_modalities + position]  # (K,)
            logits[name] = logits[name] + output.mask[:, [position]].to(vector.dtype) * column
        start += vector.shape[1]
    return logits


class OPMWeighting(Weighting):
    """OPM: drop the dominant modality's features per sample with a probability from ρ."""

    supported_tasks = ("classification",)
    parameter_constraints = {
        "q_base": [Interval(Real, 0, 1, closed="both")],
        "lam": [Interval(Real, 0, None, closed="left")],
        "p_exe": [Interval(Real, 0, 1, closed="both")],
        "warmup_epochs": [Interval(Integral, 0, None, closed="left")],
        "unimodal": [StrOptions(set(_UNIMODAL))],
    }

    #: Data-parallel: q from the global batch's scores, one p_exe draw for the global batch.
    data_parallel_safe = True

    def __init__(
        self,
        q_base: float = 0.5,
        lam: float = 0.5,
        p_exe: float = 0.7,
        warmup_epochs: int = 6,
        unimodal: str = "auto",
    ) -> None:
        super().__init__()
        self.q_base = q_base
        self.lam = lam
        self.p_exe = p_exe
        self.warmup_epochs = warmup_epochs
        self.unimodal = unimodal
        self.needs_unimodal_heads = unimodal != "split_head"

    def build(self, spec: BuildSpec) -> None:
        if spec.task != "classification":
            raise ValueError(f"opm: needs a classification task (softmax scores), got {spec.task}")
        self.names = spec.names
        self.register_buffer(
            "widths",
            torch.tensor([float(vector_size(spec.feature_shapes[m])) for m in spec.names]),
            persistent=False,
        )
        self.drop_probability: Tensor | None = None  # (M,) q of the last modulated batch
        self._split = self.unimodal == "split_head"
        self._network: NetworkView | None = None
        self._batch: tuple[Tensor | None, Tensor, int] | None = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_network"], state["_batch"] = None, None  # the fit's network and last labels
        return state

    def on_train_begin(self, ctx: TrainingContext) -> None:
        network = ctx.network
        splittable = network.fusion.concatenates and isinstance(network.head, torch.nn.Linear)
        if self.unimodal == "split_head" and not splittable:
            raise ValueError(
                "opm: unimodal='split_head' needs fusion='concat' (a linear head over the "
                f"concatenated features), got {type(network.fusion).__name__}. "
                "Use unimodal='heads'."
            )
        self._split = self.unimodal == "split_head" or (self.unimodal == "auto" and splittable)
        self._network = network
        self._batch = None
        self.drop_probability = None
        self.modulated_batches = 0  # training batches modulated in this fit (O4's p_exe draw)

    def on_batch_begin(self, ctx: TrainingContext) -> None:
        index = None if ctx.batch is None else ctx.batch.index
        self._batch = (index, ctx.target, ctx.epoch)

    def _target_of(self, output: FusionOutput, rows: int) -> Tensor | None:
        """The labels of this pass, if it is the training pass over the announced batch."""
        if self._batch is None or output.batch is None:
            return None
        index, target, epoch = self._batch
        if epoch < int(self.warmup_epochs) or target is None or target.shape[0] != rows:
            return None
        seen = output.batch.index
        if (index is None) != (seen is None):
            return None
        if index is not None and not torch.equal(index.to(seen.device), seen):
            return None
        return target

    def _unimodal_logits(
        self, features: dict[str, Tensor], output: FusionOutput
    ) -> dict[str, Tensor]:
        if self._split:
            return split_head_logits(self._network, features, output)
        heads = self._network.unimodal_heads
        return {m: heads[m](as_vector(h, output.steps.get(m))) for m, h in features.items()}

    def reweight(
        self, features: dict[str, Tensor], mask: Tensor, output: FusionOutput
    ) -> dict[str, Tensor]:
        if not self.training or self._network is None:
            return features
        target = self._target_of(output, mask.shape[0])
        if target is None:
            return features
        with torch.no_grad():
            logits = self._unimodal_logits(features, output)
            probabilities = torch.stack(
                [
                    F.softmax(logits[name].float(), dim=1).gather(1, target[:, None])[:, 0]
                    for name in self.names
                ],
                dim=1,
            )  # (B, M)
            # Eq. (O1) over the global batch: the same q in every process of a data-parallel fit
            scores, available = global_present_mean(probabilities, mask)  # (M,), (M,)
            ratios = discrepancy_ratios(scores, available)  # (M,) Eq. (O2)
            q = drop_probabilities(ratios, float(self.q_base), float(self.lam))  # (M,) Eq. (O3)
            self.drop_probability = q
            output.diagnostics["opm_scores"] = scores
            output.diagnostics["opm_drop_probability"] = q
            # one p_exe draw for the whole global batch (the first process's)
            if not bool(q.any()) or float(broadcast(uniform_draws((), q.device))) >= float(
                self.p_exe
            ):
                return features  # no dominant modality, or the batch is not modulated (O4)
            keep = keep_matrix(q, mask, uniform_draws(tuple(mask.shape), mask.device))  # (B, M)
            scale = drop_rescale(q, self.widths.to(q.device))  # Eq. (O5)
        self.modulated_batches += 1
        weights = keep.to(scale.dtype) * scale  # (B, M)
        output.modality_weights = weights
        output.diagnostics["opm_keep"] = keep
        return {
            name: h * expand_mask(weights[:, position].to(h.dtype), h)
            for position, (name, h) in enumerate(features.items())
        }

    def loss_terms(self, output: FusionOutput, ctx: LossContext) -> dict[str, Tensor]:
        if self._split or ctx.network.unimodal_heads is None:
            return {}  # the code computes unimodal losses but never back-propagates them
        heads = ctx.network.unimodal_heads
        mask = output.mask
        probe = sum(
            present_mean(
                ctx.per_sample_loss(heads[m](as_vector(h.detach(), output.steps.get(m)))),
                mask[:, position],
            )
            for position, (m, h) in enumerate(output.calibrated.items())
        )
        return {"opm_probes": probe}


@hookimpl
def fusekit_weightings() -> dict[str, type]:
    return {"opm": OPMWeighting}
