"""SCFAE fusion: the Self-Consistent Field Autoencoder block.

Xiong et al., "Multimodal Fusion via Self-Consistent Task-Gradient Fields", arXiv:2410.15475v2,
Sec. 4 and App. A (implementation spec: ``specs/seed-001-scfae.md``).

Per modality m (vectors V^(m) ``(B, l_m)``; sequences are pooled with ``fusekit.plugin.as_vector``),
with l* = min_m l_m and the split point s_m = floor(b·n·l_m + 1/2):

    U^(m)      = SwiGLU_pre^(m)(V^(m))                                   (B, l_m)
    (3) Ẑ^(m)  = P_expand^(m) U^(m),  Ẑ_sh = Ẑ[:, :s_m], Ẑ_sp = Ẑ[:, s_m:]  (B, n·l_m)
    (4) Z_sh^(m) = P_shared^(src=k) Ẑ_sh^(k),  k = (m + 1) mod M            (B, l*)
        Z_sp^(m) = P_specific^(m) Ẑ_sp^(m)                                 (B, l_m)
        Z^(m)    = [Z_sp^(m); Z_sh^(m)]                                    (B, l_m + l*)
    O^(m)      = SwiGLU_post^(m)(Z^(m))                                  (B, l_m + l*)
    fused      = [O^(1); ...; O^(M)]  (modality order as given)         (B, Σ_m (l_m + l*))
    (5) V̂^(m)  = P_recon^(m) Z^(m)                                       (B, l_m)
    (6) Φ = L_task + λ L_recon, L_recon = (1/B) Σ_i Σ_m mask_im (1 − cos(V_i^(m), V̂_i^(m)))

Every P is GELU(W x + c) (App. A); the SwiGLUs (Table 12) have hidden width round(8d/3). The
reconstruction loss is added with ``output.add_loss("scfae_recon", lam * L_recon)``; its sign is
the *distance* 1 − cos, not the printed similarity of Eq. (5), which minimised would push V̂ away
from V (spec §4.5). Choices where the paper is silent or ambiguous (spec §9):

- P_shared is indexed by its *source* modality (input s_src, output l*); equivalent to Eq. (4) up
  to relabelling (A3) and needed when the partner can change per sample (``missing_shared``).
- The cycle follows the modalities' order as given, or ``modality_order`` (A4).
- SwiGLU_pre sits before P_expand, SwiGLU_post after Z (A5); ``swiglu=False`` drops both.
- ``recon_from="z"`` (Eq. 5 literally) or ``"post"`` (reconstruct from O^(m), A8);
  ``recon_act="gelu"`` (faithful) or ``"identity"`` (for zero-mean features, A6).
- Nothing is detached (A10); ``detach_target=True`` stops the gradient through the target V.
- Absent modalities (§4.8): their rows are zeros (re-zeroed here, so no value of an absent
  modality can leak), their reconstruction terms are skipped. ``missing_shared`` decides where the
  shared part of m comes from when its partner k is absent: ``"zero"`` (default, paper-faithful:
  the zero-filled partner's constant output), ``"self"`` (m's own shared slice) or
  ``"next_present"`` (walk the cycle k, k+1, ... to the first present modality, else m itself).
  ``zero_absent_outputs=True`` also zeroes O^(m) of absent modalities before the head.
- ``branch="shared"``/``"specific"`` zeroes the other half of Z^(m) before SwiGLU_post
  (Table 14's branch masking; set it on the fitted module for inference-only masking).
- Ablation switches (Table 8/9): ``structure="linear"`` replaces expand/split/swap by one
  projection Z^(m) = P_linear^(m) U^(m) ``(B, l_m + l*)``; ``recon="mse"`` (Table 9);
  ``recon="contrastive"`` replaces L_recon by symmetric InfoNCE between the projected shared
  slices of cycle partners (temperature ``temperature``).
- ``gradient_diagnostics=True`` records, per epoch in skorch's history, the cosine between the
  task-loss and auxiliary-loss gradients on the encoder (Fig. 4A, Table 7): ``scfae_grad_cos``
  (mean), ``scfae_grad_neg`` (fraction < 0) and ``scfae_task_grad_norm``; see ``diagnostics``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from fusekit.plugin import (
    BuildSpec,
    Fusion,
    FusionOutput,
    Interval,
    StrOptions,
    TrainingContext,
    as_vector,
    vector_size,
)
from fusekit_scfae.blocks import GeluLinear, SwiGLU
from fusekit_scfae.diagnostics import GradientLog, encoder_gradient_cosine
from fusekit_scfae.loss import contrastive_loss, reconstruction_loss
from fusekit_scfae.settings import SWEPT_LR

_CHOICES = {
    "recon": ("cos", "mse", "contrastive"),
    "recon_act": ("gelu", "identity"),
    "recon_from": ("z", "post"),
    "missing_shared": ("zero", "self", "next_present"),
    "structure": ("split", "linear"),
    "branch": ("both", "shared", "specific"),
}


def split_point(n: int, b: float, width: int) -> int:
    """s_m = b·n·l_m rounded half up: the number of expanded dims that form the shared slice."""
    return int(math.floor(b * n * width + 0.5))


def source_positions(present: Tensor, rule: str) -> Tensor:
    """Cycle position of the modality whose shared slice each target takes, ``(B, M)`` long.

    ``present`` ``(B, M)`` is in cycle order. The default partner of target i is (i + 1) mod M.
    """
    batch, count = present.shape
    targets = torch.arange(count, device=present.device)  # (M,)
    sources = ((targets + 1) % count).expand(batch, count)  # (B, M)
    if rule == "zero":
        return sources
    own = targets.expand(batch, count)  # (B, M)
    if rule == "self":
        return torch.where(present[:, (targets + 1) % count], sources, own)
    offsets = torch.arange(1, count, device=present.device)  # (M-1,)
    candidates = (targets[:, None] + offsets[None, :]) % count  # (M, M-1)
    candidate_present = present[:, candidates]  # (B, M, M-1)
    first = candidate_present.to(torch.int8).argmax(dim=2, keepdim=True)  # (B, M, 1)
    chosen = candidates.expand(batch, count, count - 1).gather(2, first).squeeze(2)  # (B, M)
    return torch.where(candidate_present.any(dim=2), chosen, own)


class SCFAEFusion(Fusion):
    """SCFAE: expand, split, cyclic shared swap, project, reconstruct (Xiong et al.).

    Recommends its lr (used where the estimator's ``lr`` is ``"auto"``): the committed sweep's
    best, :data:`fusekit_scfae.settings.SWEPT_LR`.
    """

    recommended_params: ClassVar[Mapping[str, Any]] = {"lr": SWEPT_LR["scfae"]}
    #: What needs the data (two modalities at least, ``modality_order`` naming each once, a
    #: shared slice of >= 1 dim per modality) is checked in ``build``.
    parameter_constraints: ClassVar[Mapping[str, list[Any]]] = {
        "n": [Interval(Integral, 1, None, closed="left")],
        "b": [Interval(Real, 0, 1, closed="neither")],
        "lam": [Interval(Real, 0, math.inf, closed="left")],  # finite
        **{name: [StrOptions(set(allowed))] for name, allowed in _CHOICES.items()},
        "detach_target": ["boolean"],
        "modality_order": ["array-like", None],
        "swiglu": ["boolean"],
        "zero_absent_outputs": ["boolean"],
        "temperature": [Interval(Real, 0, None, closed="neither")],
        "gradient_diagnostics": ["boolean"],
    }

    def __init__(
        self,
        n: int = 2,
        b: float = 0.5,
        lam: float = 1.0,
        recon: str = "cos",
        recon_act: str = "gelu",
        recon_from: str = "z",
        missing_shared: str = "zero",
        detach_target: bool = False,
        modality_order: Sequence[str] | None = None,
        swiglu: bool = True,
        structure: str = "split",
        branch: str = "both",
        zero_absent_outputs: bool = False,
        temperature: float = 0.07,
        gradient_diagnostics: bool = False,
    ) -> None:
        super().__init__()
        self.n = n
        self.b = b
        self.lam = lam
        self.recon = recon
        self.recon_act = recon_act
        self.recon_from = recon_from
        self.missing_shared = missing_shared
        self.detach_target = detach_target
        self.modality_order = modality_order
        self.swiglu = swiglu
        self.structure = structure
        self.branch = branch
        self.zero_absent_outputs = zero_absent_outputs
        self.temperature = temperature
        self.gradient_diagnostics = gradient_diagnostics

    # ----------------------------------------------------------------------------- build
    #: Data-parallel: the reconstruction losses are per-sample means, safe. The contrastive
    #: ablation's InfoNCE draws its negatives from the batch, which data parallelism cuts into
    #: per-process shards (each row would see 1/W of the negatives): ``build`` refuses it there.
    data_parallel_safe = True

    def build(self, spec: BuildSpec) -> int:
        if len(spec.names) < 2:
            raise ValueError(
                f"scfae needs at least 2 modalities (its shared parts are swapped between "
                f"modalities), got {len(spec.names)}: {list(spec.names)}. Use fusion='concat'."
            )
        if self.modality_order is not None and sorted(self.modality_order) != sorted(spec.names):
            raise ValueError(
                f"scfae: modality_order={list(self.modality_order)} must list each modality once; "
                f"the modalities are {list(spec.names)}."
            )
        self.data_parallel_safe = self.recon != "contrastive"
        self.names = tuple(spec.names)
        order = tuple(self.modality_order) if self.modality_order is not None else self.names
        self.cycle = order  # cycle order: modality i takes the shared part of i + 1
        self.cycle_columns = [self.names.index(name) for name in order]  # mask columns
        self.widths = {name: vector_size(spec.feature_shapes[name]) for name in self.names}
        self.shared_width = min(self.widths.values())  # l*
        self.splits = {}
        for name, width in self.widths.items():
            if self.structure == "split":
                self.splits[name] = split_point(int(self.n), float(self.b), width)
                if not 1 <= self.splits[name] <= self.n * width - 1:
                    raise ValueError(
                        f"scfae: modality {name!r} has width {width}; n={self.n}, b={self.b} "
                        f"gives a shared slice of {self.splits[name]} of {self.n * width} "
                        f"expanded dims, but both slices need >= 1 dim. Raise n or change b."
                    )

        def per_modality(make) -> nn.ModuleDict:  # noqa: ANN001 - small local factory
            return nn.ModuleDict({name: make(name, self.widths[name]) for name in self.names})

        star = self.shared_width
        self.pre = per_modality(lambda m, w: SwiGLU(w) if self.swiglu else nn.Identity())
        if self.structure == "split":
            self.expand = per_modality(lambda m, w: GeluLinear(w, int(self.n) * w))
            self.shared = per_modality(lambda m, w: GeluLinear(self.splits[m], star))
            self.specific = per_modality(
                lambda m, w: GeluLinear(int(self.n) * w - self.splits[m], w)
            )
        else:
            self.linear = per_modality(lambda m, w: GeluLinear(w, w + star))
        self.post = per_modality(lambda m, w: SwiGLU(w + star) if self.swiglu else nn.Identity())
        self.reconstruct = per_modality(lambda m, w: GeluLinear(w + star, w, self.recon_act))
        self._gradient_log = GradientLog()
        return sum(width + star for width in self.widths.values())

    # --------------------------------------------------------------------------- forward
    def forward(self, features: dict[str, Tensor], mask: Tensor, output: FusionOutput) -> Tensor:
        present = mask[:, self.cycle_columns]  # (B, M) bool, cycle order
        inputs = []  # V^(m): (B, l_m), cycle order, absent rows re-zeroed
        for position, name in enumerate(self.cycle):
            vector = as_vector(features[name], output.steps.get(name))  # (B, l_m)
            inputs.append(vector * present[:, position : position + 1].to(vector.dtype))
        lifted = [self.pre[name](v) for name, v in zip(self.cycle, inputs, strict=True)]  # (B, l_m)

        if self.structure == "split":
            specific, shared, own_shared, sources = self._split_and_swap(lifted, present)
        else:
            specific, shared = [], []
            for name, u in zip(self.cycle, lifted, strict=True):
                z = self.linear[name](u)  # (B, l_m + l*)
                specific.append(z[:, : self.widths[name]])  # (B, l_m)
                shared.append(z[:, self.widths[name] :])  # (B, l*)
            own_shared, sources = shared, None

        codes = [torch.cat(pair, dim=1) for pair in zip(specific, shared, strict=True)]  # Z^(m)
        posts = []  # O^(m): (B, l_m + l*)
        for position, (name, z_sp, z_sh) in enumerate(
            zip(self.cycle, specific, shared, strict=True)
        ):
            if self.branch == "shared":
                z_sp = torch.zeros_like(z_sp)
            elif self.branch == "specific":
                z_sh = torch.zeros_like(z_sh)
            post = self.post[name](torch.cat([z_sp, z_sh], dim=1))  # (B, l_m + l*)
            if self.zero_absent_outputs:
                post = post * present[:, position : position + 1].to(post.dtype)
            posts.append(post)

        decoder_inputs = codes if self.recon_from == "z" else posts
        recons = [
            self.reconstruct[name](z) for name, z in zip(self.cycle, decoder_inputs, strict=True)
        ]  # V̂^(m): (B, l_m)
        targets = [v.detach() for v in inputs] if self.detach_target else inputs
        if self.recon == "contrastive":
            aux = contrastive_loss(own_shared, present, float(self.temperature))
        else:
            aux = reconstruction_loss(targets, recons, present, self.recon)
        if self.lam:
            output.add_loss("scfae_recon", float(self.lam) * aux)
        self._record(output, inputs, specific, shared, codes, recons, aux, sources)

        by_name = dict(zip(self.cycle, posts, strict=True))
        return torch.cat([by_name[name] for name in self.names], dim=1)  # (B, Σ l_m + M·l*)

    def _split_and_swap(
        self, lifted: list[Tensor], present: Tensor
    ) -> tuple[list[Tensor], list[Tensor], list[Tensor], Tensor]:
        """Eq. (3)-(4): expand, split at s_m, project, substitute the partner's shared part."""
        specific, own_shared = [], []
        for name, u in zip(self.cycle, lifted, strict=True):
            expanded = self.expand[name](u)  # Ẑ^(m): (B, n·l_m)
            cut = self.splits[name]
            own_shared.append(self.shared[name](expanded[:, :cut]))  # (B, s_m) -> (B, l*)
            specific.append(self.specific[name](expanded[:, cut:]))  # (B, n·l_m - s_m) -> (B, l_m)
        sources = source_positions(present, self.missing_shared)  # (B, M) cycle positions
        stacked = torch.stack(own_shared, dim=1)  # (B, M, l*)
        index = sources.unsqueeze(-1).expand(-1, -1, stacked.shape[-1])  # (B, M, l*)
        swapped = stacked.gather(1, index)  # (B, M, l*): row i = shared part of source(i)
        return specific, list(swapped.unbind(dim=1)), own_shared, sources

    def _record(self, output, inputs, specific, shared, codes, recons, aux, sources) -> None:  # noqa: ANN001
        """Expose Z_sp, Z_sh, Z, V̂, the unweighted auxiliary loss and the shared sources."""
        detached = {
            key: {name: t.detach() for name, t in zip(self.cycle, tensors, strict=True)}
            for key, tensors in (
                ("inputs", inputs),
                ("z_specific", specific),
                ("z_shared", shared),
                ("z", codes),
                ("recon", recons),
            )
        }
        if sources is not None:  # mask-column index of each modality's shared source
            columns = torch.as_tensor(self.cycle_columns, device=sources.device)
            by_column = torch.empty_like(sources)
            by_column[:, columns] = columns[sources]
            detached["shared_source"] = by_column  # (B, M), columns in modality order
        output.diagnostics["scfae"] = {
            **detached,
            "recon_loss": aux.detach(),  # unweighted L_recon (or contrastive loss)
            "aux_loss": aux,  # the same, still in the graph (for gradient diagnostics)
        }

    # ---------------------------------------------------------------- training-loop hooks
    def on_epoch_begin(self, ctx: TrainingContext) -> None:
        self._gradient_log.reset()

    def on_batch_begin(self, ctx: TrainingContext) -> None:
        # Measured before the batch's own step: the parameters are those its gradients see.
        if self.gradient_diagnostics and self.lam and ctx.batch is not None:
            self._gradient_log.add(*encoder_gradient_cosine(ctx.network, ctx.batch, ctx.target))

    def on_epoch_end(self, ctx: TrainingContext) -> None:
        if self.gradient_diagnostics and self._gradient_log:
            for key, value in self._gradient_log.summary().items():
                ctx.loop.record(key, value)
