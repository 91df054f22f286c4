"""Sample-level modality valuation and re-sampling, sample or modality level ("sample_valuation").

Wei, Feng, Wang, Hu, "Enhancing Multimodal Cooperation via Sample-level Modality Valuation",
CVPR 2024, arXiv:2309.06255. Official code: GeWu-Lab/Valuate-and-Enhance-Multimodal-Cooperation
(``code/sample_level.py``: ``execute_modulation``, ``train_epoch``;
``code/modality_level.py``: ``execute_modulation``, ``--part_ratio``, ``--alpha``;
``code/datasets/dataloader.py``: ``AV_KS_Dataset_sample_level``,
``AV_KS_Dataset_modality_level``; ``code/models/models.py``: ``AVClassifier.forward`` with
``drop``, ``exec_drop``). Also read: GeWu-Lab/BalanceBenchmark
(``balancemm/trainer/Sample_trainer.py``; ``Calculate_Shapley_Sample`` in
``balancemm/evaluation/modalitys.py``; ``create_dataset_sample_level`` and
``create_dataset_modality_level`` in ``balancemm/datasets/__init__.py``;
``configs/trainer_config.yaml``). Only the paper's abstract was available to us, so the
equations are labelled (S1)-(S6), written from the two codes.

Per training sample i, a Shapley value says how much each modality contributes to a correct
prediction; a sample whose modality m contributes little is re-sampled with only m present, so m
is trained more on the samples where it lags (a data-level method). With N the modalities,
ŷ(S)_i the fused prediction when only the modalities in S are present (the others' features
zeroed), y_i the label and M = |N|:

    (S1)  v_i(S) = |S| · 1[ŷ(S)_i = y_i],   v_i(∅) = 0                    value of a coalition
    (S2)  φ_i,m = Σ_{S ⊆ N∖{m}} |S|! (M − |S| − 1)! / M! · (v_i(S ∪ {m}) − v_i(S))   ``(n, M)``
          (two modalities: φ_a = (v(a) + v(ab) − v(b)) / 2, the official code's formula)
    (S3)  c_i,m = 1 if 0.4 < φ_i,m < 1;  2 if −0.1 < φ_i,m < 0.4;  3 if φ_i,m < −0.1;  else 0
          extra copies of sample i with only modality m present                      ``(n, M)``
    (S4)  the next epoch trains on the training set plus those copies (plain cross-entropy)

That is the sample-level method (``level="sample"``, default). The paper's coarser, cheaper
modality-level method (``level="modality"``) replaces (S3) by one re-sampling rate for the whole
set, from the mean contributions on a random part Z of the rows (the official
``modality_level.py``):

    (S5)  φ̄_m = mean_{i∈Z} φ_i,m,  g_m = 1 − φ̄_m;  Z: ⌊ρ n⌋ rows drawn uniformly with
          replacement (ρ = ``part_ratio``, the official ``np.random.choice``)          ``(M,)``
    (S6)  s = α · 2/3 · Σ_{j<l} |g_j − g_l| / (M − 1)   (two modalities: α · 2/3 · |g_a − g_v|);
          ⌊s n⌋ rows drawn uniformly with replacement, each drawn row one copy with only the
          modality of the largest gap m* = argmax_m g_m present: c_i,m* = times drawn ``(n, M)``

then (S4) as above. Shapes: n valued rows, M modalities.

φ and c are computed in evaluation mode on every training row at the start of each epoch from
``warmup_epochs`` on (the code: at the end of each epoch from ``warmup − 1``, for the next one:
the same model); before that, training is plain.

How (S4) is expressed here, the one departure in kind: fusekit's loop trains on the fit's rows,
and a weighting does not change them, so the copies become a loss term on the rows they copy.
For a training batch of B rows with calibrated features h, mask and sample weights w:

    L = L_task + Σ_i w_i Σ_m c_i,m CE(v_θ({m})_i, y_i) / Σ_i w_i

with v_θ({m}) the fusion-and-head pass (``network.fuse``) on h with only m present, with
gradient (the code zeroes the other modalities' encoder outputs of a copy: the same pass). Summed
over an epoch, the gradient is that of one epoch over the re-sampled set (every copy's loss once,
divided by the batch size) but in the |D|/B steps of the original set instead of |D'|/B: each
original row and its copies meet in one step, where the code shuffles them apart, and a copy
shares the row's dropout and augmentation draws. Without per-row data (``ctx.data``) nothing can
be valued, so the method declares ``needs_all_training_rows`` (``partial_fit`` and streamed fits
refuse it).

Choices, and where the two codes differ:

* (S1): the official code values the full set at 2 and a single modality at 1 when right, i.e.
  |S| · 1[correct]; BalanceBenchmark uses 1[correct] for every coalition (``value="correct"``).
  Default ``value="count"``, the authors'. The thresholds of (S3) are the codes' (both).
* (S2) for M > 2: BalanceBenchmark's exact Shapley sum over subsets (the official code has two
  modalities). BalanceBenchmark caches the coalition results by subset only, so every batch after
  the first reuses the first batch's correctness (and reads ``model.pridiction``, a name its
  models do not set); here every row is valued on its own. Cost: 2^M − 1 prediction passes over
  the training rows per epoch.
* (S3): the official code writes ``0.4 < φ < 1`` with the comment ``#0.5``: two-modality values
  are multiples of 0.5, so a modality that contributes 1 or more (right on its own and needed)
  is not re-sampled, and one of exactly 0.4 or −0.1 (possible only for M ≥ 5) is not either.
* Warm-up: the official default is 5 epochs (of 60), BalanceBenchmark's ``modulation_starts`` 1;
  default ``warmup_epochs=1``, BalanceBenchmark's, for fusekit's shorter fits.
* Modality level: the official code (two modalities, ``func="linear"``; its ``tanh`` and
  ``square`` variants are not offered) is followed; α = ``alpha`` (official default 1) and
  ρ = 0.2 (both codes). BalanceBenchmark's ``create_dataset_modality_level`` differs: it ignores
  its config's α, sums |g_m − g_j| over ordered pairs (twice the official rate for M = 2), and
  gives every drawn row one copy per modality m with the modalities of smaller gap than m's
  zeroed (for M = 2 an m*-only copy and an unmasked one); it draws from the first
  ``n − n mod 64`` rows. The pick is the authors' code; for M > 2 (the official code has two)
  (S6)'s pair mean, which equals it at M = 2, and copies of m* alone (ties: the first in
  ``spec.names`` order). Z and the re-sampled rows come from torch's generator (seeded by the
  estimator's ``random_state``), Z first. Missing modalities: φ̄_m averages over the rows of Z
  where m is present; a modality present in none of them is left out of (S6) and of the
  argmax, with fewer than two left there are no copies; copies of m* only where m* is present.
* Missing modalities (neither code has them): v_i(S) counts and uses only the modalities present
  in row i (|S ∩ present_i|), so an absent modality is a null player with φ = 0, and it gets no
  copies (it has nothing to train on); the other modalities' values are those of the game over
  the present ones. A row with nothing present gets none. Rows held out for validation
  (``ctx.train_rows``) are not valued.
* Classification only (correctness of a class prediction); regression is refused at ``build``.
* Data-parallel: not declared safe; the values are per training row.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

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
    hookimpl,
)

VALUES = ("count", "correct")
LEVELS = ("sample", "modality")


def coalition_masks(n_modalities: int) -> Tensor:
    """``(2^M, M)`` bool: row s is the coalition whose bit p is set for modality p."""
    codes = torch.arange(2**n_modalities)
    return (codes[:, None] >> torch.arange(n_modalities)) & 1 == 1


def shapley_values(values: Tensor) -> Tensor:
    """(S2) from coalition values ``(n, 2^M)`` (column s as in :func:`coalition_masks`, column 0
    the empty set): ``(n, M)`` Shapley values."""
    n_modalities = int(math.log2(values.shape[1]))
    coalitions = coalition_masks(n_modalities)
    phi = values.new_zeros(values.shape[0], n_modalities)
    for position in range(n_modalities):
        bit = 1 << position
        for code in range(values.shape[1]):
            if code & bit:
                continue
            size = int(coalitions[code].sum())
            weight = (
                math.factorial(size)
                * math.factorial(n_modalities - size - 1)
                / math.factorial(n_modalities)
            )
            phi[:, position] += weight * (values[:, code | bit] - values[:, code])
    return phi


def resample_copies(phi: Tensor, present: Tensor) -> Tensor:
    """(S3): extra copies ``(n, M)`` (float) per row and modality; none where m is absent."""
    copies = torch.zeros_like(phi)
    copies = torch.where((phi > 0.4) & (phi < 1.0), torch.ones_like(phi), copies)
    copies = torch.where((phi > -0.1) & (phi < 0.4), torch.full_like(phi, 2.0), copies)
    copies = torch.where(phi < -0.1, torch.full_like(phi, 3.0), copies)
    return copies * present.to(phi.dtype)


def modality_resample_rate(gap: Tensor, alpha: float) -> float:
    """(S6): s = α · 2/3 · Σ_{j<l} |g_j − g_l| / (M − 1) from the gaps ``(M,)`` (M >= 2)."""
    pairs = (gap[:, None] - gap[None, :]).abs().sum() / 2  # Σ_{j<l}
    return float(alpha * 2 / 3 * pairs / (gap.numel() - 1))


def modality_level_copies(phi: Tensor, present: Tensor, part_ratio: float, alpha: float) -> Tensor:
    """(S5)-(S6): extra copies ``(n, M)`` (float) from the Shapley values ``phi`` ``(n, M)`` and
    the presence ``present`` ``(n, M)``; the draws (Z, then the re-sampled rows) from torch's
    generator."""
    n = phi.shape[0]
    copies = torch.zeros_like(phi)
    n_part = int(n * part_ratio)
    if n_part == 0:
        return copies
    part = torch.randint(n, (n_part,), device=phi.device)  # Z, with replacement
    weights = present[part].to(phi.dtype)  # (|Z|, M)
    counts = weights.sum(dim=0)
    seen = counts > 0
    if int(seen.sum()) < 2:
        return copies
    gap = 1 - (phi[part] * weights).sum(dim=0) / counts.clamp(min=1)  # g = 1 − φ̄ (S5)
    n_copies = int(modality_resample_rate(gap[seen], alpha) * n)  # ⌊s n⌋ (S6)
    if n_copies == 0:
        return copies
    lagging = int(torch.where(seen, gap, torch.full_like(gap, -torch.inf)).argmax())  # m*
    drawn = torch.randint(n, (n_copies,), device=phi.device)
    times = torch.bincount(drawn, minlength=n).to(phi.dtype)
    copies[:, lagging] = times * present[:, lagging].to(phi.dtype)
    return copies


@torch.no_grad()
def coalition_values(
    network: NetworkView, inputs: ModalityBatch, target: Tensor, batch_size: int, value: str
) -> Tensor:
    """(S1) ``(n, 2^M)``: v_i(S) for every coalition, from eval-mode passes with S's mask."""
    coalitions = coalition_masks(inputs.mask.shape[1]).to(inputs.mask.device)
    size = batch_size if batch_size > 0 else len(inputs)
    columns = [torch.zeros(len(inputs), device=inputs.mask.device)]  # v(∅) = 0
    with network.evaluating():
        for coalition in coalitions[1:]:
            mask = inputs.mask & coalition  # (n, M): S ∩ present
            chunks = []
            for start in range(0, len(inputs), size):
                chunk = inputs.take(slice(start, start + size))
                chunk = chunk.with_mask(mask[start : start + size])
                chunks.append(network(chunk).logits.argmax(dim=1))
            correct = (torch.cat(chunks) == target).float() * mask.any(dim=1).float()
            weight = mask.sum(dim=1).float() if value == "count" else 1.0
            columns.append(correct * weight)
    return torch.stack(columns, dim=1)


class SampleValuationWeighting(Weighting):
    """Sample-level valuation: re-train each sample's low-contribution modality on its own."""

    supported_tasks = ("classification",)

    needs_all_training_rows = True
    #: Not declared data-parallel safe: the values and copies are per training row.
    data_parallel_safe = False
    parameter_constraints = {
        "warmup_epochs": [Interval(Integral, 0, None, closed="left")],
        "value": [StrOptions(set(VALUES))],
        "level": [StrOptions(set(LEVELS))],
        "part_ratio": [Interval(Real, 0, 1, closed="right")],
        "alpha": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        warmup_epochs: int = 1,
        value: str = "count",
        level: str = "sample",
        part_ratio: float = 0.2,
        alpha: float = 1.0,
    ) -> None:
        super().__init__()
        self.warmup_epochs = warmup_epochs
        self.value = value
        self.level = level
        self.part_ratio = part_ratio
        self.alpha = alpha

    def build(self, spec: BuildSpec) -> None:
        if spec.task != "classification":
            raise ValueError(
                "sample_valuation: needs a classification task (the value of a coalition is "
                f"whether its prediction is right), got {spec.task}"
            )
        self.names = spec.names
        #: c of (S3) per training row, ``(N, M)``; training-only state.
        self.register_buffer("copies", torch.zeros(0, len(spec.names)), persistent=False)
        self._active = False
        #: ``(epoch, {modality: mean φ over the valued rows where it is present})`` per valuation.
        self.mean_contributions: list[tuple[int, dict[str, float]]] = []

    def on_train_begin(self, ctx: TrainingContext) -> None:
        if ctx.data is None or ctx.data.target is None:
            raise RuntimeError("sample_valuation: needs the training rows (ctx.data)")
        device = ctx.data.inputs.mask.device
        self.copies = torch.zeros(len(ctx.data), len(self.names), device=device)
        self._active = False
        self.mean_contributions = []

    def on_epoch_begin(self, ctx: TrainingContext) -> None:
        self._active = ctx.epoch >= int(self.warmup_epochs)
        if not self._active or ctx.data is None or len(self.copies) != len(ctx.data):
            self._active = False
            return
        inputs, target = ctx.data.inputs, ctx.data.target
        rows = None if ctx.train_rows is None else ctx.train_rows.to(target.device)
        if rows is not None:
            inputs, target = inputs.take(rows), target[rows]
        batch_size = ctx.batch_size if ctx.loop is not None else 0  # 0: one chunk
        values = coalition_values(ctx.network, inputs, target, batch_size, str(self.value))
        phi = shapley_values(values)  # (n, M)
        if self.level == "modality":
            copies = modality_level_copies(
                phi, inputs.mask, float(self.part_ratio), float(self.alpha)
            )  # (S5)-(S6)
        else:
            copies = resample_copies(phi, inputs.mask)  # (S3)
        copies = copies.to(self.copies.device)
        self.copies.zero_()
        if rows is None:
            self.copies.copy_(copies)
        else:
            self.copies[rows.to(self.copies.device)] = copies
        present = inputs.mask.float()
        means = (phi * present).sum(dim=0) / present.sum(dim=0).clamp(min=1.0)
        self.mean_contributions.append(
            (ctx.epoch, dict(zip(self.names, means.tolist(), strict=True)))
        )

    def loss_terms(self, output: FusionOutput, ctx: LossContext) -> dict[str, Tensor]:
        index = ctx.batch.index if ctx.batch is not None else None
        if not (ctx.training and self._active) or index is None or len(self.copies) == 0:
            return {}
        copies = self.copies.index_select(0, index.to(self.copies.device))  # (B, M)
        mask = output.mask
        total = None
        for position in range(len(self.names)):
            only = torch.zeros_like(mask)
            only[:, position] = mask[:, position]
            logits = ctx.network.fuse(output.calibrated, only, steps=output.steps)  # v_θ({m})
            term = copies[:, position].to(torch.float32) * ctx.per_sample_loss(logits)  # (B,)
            total = term if total is None else total + term
        return {"sample_valuation_copies": ctx.weighted_mean(total)}


@hookimpl
def fusekit_weightings() -> dict[str, type]:
    return {"sample_valuation": SampleValuationWeighting}
