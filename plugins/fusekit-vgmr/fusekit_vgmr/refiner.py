"""VGMR: Value-Gated Modality Refiner (pre-fusion contextual calibration).

Liu, Zheng, Zhang, Wang, Chen, "Before Fusion, Ask What to Keep: Contextual Calibration of
Multimodal Signals", arXiv 2606.02679 (2026), §3.

For each modality m with features X_m ``(B, T_m, d_m)`` (vectors are T = 1)::

    (2)  H_m = P_m(X_m)                                                   (B, T_m, d_p)
    (3)  s_m = φ_m([Avg_t(H_m); Max_t(H_m)])                              (B, d_p)
    (5)  u_m = mean_{o ∈ N_m} s_o                                         (B, d_p)
    (6)  a_{m,o} = s_m ⊙ s_o,   δ_{m,o} = |s_m − s_o|                     (B, d_p) each
    (8)  r_m = ψ_m([s_m; {s_o}; {a_{m,o}}; {δ_{m,o}}; u_m])     (B, (3K+2)·d_p) -> (B, d_p)
    (9)  z_m = η_m([s_m; r_m])                                            (B, d_p)
    (10) g_m = σ(w_gᵀ z_m + b_g),  p_m = σ(W_p z_m + b_p)                 (B, 1), (B, d_p)
    (C)  g'_m = 2 g_m − 1,  p'_m = 2 p_m − 1
    (11) G_m = σ(ρ^x(X_m) + ρ^h(H_m) + ρ^g(g'_m) + ρ^p(p'_m))             (B, T_m, d_m)
    (12) Ĝ_m = 1 + α (2 G_m − 1)
    (13) G̃_m = β + (1 − β) Ĝ_m      (closed form: 1 + α(1 − β)(2 G_m − 1))
    (R)  X̃_m = Dropout(LayerNorm(X_m ⊙ G̃_m))                              (B, T_m, d_m)

N_m is the other modalities in ``spec.names`` order (the paper leaves the order inside each
group of Eq. 8 open; we use the fixed modality order, identical in every call). The training
objective L_task + λ_v L_value + λ_r L_reg (§3.8) is in :mod:`fusekit_vgmr.objective`.

Choices where the paper is silent (all ours, see the package README):

- Missing modalities (paper: not discussed): absent modalities are excluded from u_m's mean
  (divide by the number present; u_m = 0 when none) and their s_o, a_{m,o}, δ_{m,o} slots are
  zeroed; an absent modality's refined output is zero. With every modality present this is
  exactly the paper's equations.
- Padded steps: Avg ignores them and Max fills them with −inf; the refined output at a padded
  step is zero.
- P_m, ρ^h, ρ^g, ρ^p are Linear layers; MLP hidden width = d_p, GELU; LayerNorm over d_m with
  affine; dropout 0.1; d_p = 128; PyTorch default initialisation (``gate_init="neutral"`` zeroes
  the ρ layers so that G̃ ≡ 1 at the start).
- Feature maps ``(C, H, W)`` are refined as H·W tokens of width C.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import torch
from torch import Tensor, nn

from fusekit.plugin import (
    BuildSpec,
    Calibration,
    FusionOutput,
    Interval,
    LossContext,
    StrOptions,
    masked_mean,
)
from fusekit_vgmr import objective
from fusekit_vgmr.branch import ACTIVATIONS, ModalityBranch
from fusekit_vgmr.signals import DIAGNOSTICS_KEY, RefinerSignals
from fusekit_vgmr.tokens import avg_max_pool, from_tokens, to_tokens, token_width


class ValueGatedModalityRefiner(Calibration):
    """VGMR: value-gated pre-fusion refinement of each modality (Liu et al., 2026).

    Parameters:
        latent_dim: d_p, the shared latent width (paper: unstated; default 128).
        hidden: hidden width of φ, ψ, η (None = d_p).
        alpha: α ∈ [0, 1], gate amplification (Eq. 12; paper default 0.5).
        beta: β ∈ [0, 1], residual retention (Eq. 13; paper default 0.2).
        dropout: Post_m dropout rate in [0, 1).
        activation: hidden activation of φ, ψ, η: "gelu", "relu", "tanh" or "silu".
        use_global_value, use_channel_value: keep the ρ^g / ρ^p terms of Eq. 11 (Table 3).
        use_agreement, use_discrepancy: keep the a / δ groups in ψ's input (Eq. 8, Table 3).
        post_norm: LayerNorm in Post_m (turn off for d_m = 1, where LayerNorm is constant).
        gate_init: "default" (PyTorch init) or "neutral" (ρ layers zeroed: G̃ ≡ 1 at step 0).
        lambda_value: λ_v, weight of L_value (needs a masked fusion pass per modality).
        lambda_reg: λ_r, weight of L_reg.
        value_temperature: τ > 0 in the value target σ(Δ_m / τ).
        value_target: "signed" (t = σ(Δ/τ), the paper's loss increase) or "abs"
            (t = tanh(|Δ| / 2τ), impact regardless of sign).
        reg_floor: γ ≥ 0, the batch-spread floor of L_reg's anti-collapse hinge.
    """

    #: Two modalities at least (the context u_m averages the others) is checked in ``build``.
    parameter_constraints = {
        "latent_dim": [Interval(Integral, 1, None, closed="left")],
        "hidden": [Interval(Integral, 1, None, closed="left"), None],
        "alpha": [Interval(Real, 0, 1, closed="both")],
        "beta": [Interval(Real, 0, 1, closed="both")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "use_global_value": ["boolean"],
        "use_channel_value": ["boolean"],
        "use_agreement": ["boolean"],
        "use_discrepancy": ["boolean"],
        "post_norm": ["boolean"],
        "gate_init": [StrOptions({"default", "neutral"})],
        "lambda_value": [Interval(Real, 0, None, closed="left")],
        "lambda_reg": [Interval(Real, 0, None, closed="left")],
        "value_temperature": [Interval(Real, 0, None, closed="neither")],
        "value_target": [StrOptions(set(objective.VALUE_TARGETS))],
        "reg_floor": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        latent_dim: int = 128,
        hidden: int | None = None,
        alpha: float = 0.5,
        beta: float = 0.2,
        dropout: float = 0.1,
        activation: str = "gelu",
        use_global_value: bool = True,
        use_channel_value: bool = True,
        use_agreement: bool = True,
        use_discrepancy: bool = True,
        post_norm: bool = True,
        gate_init: str = "default",
        lambda_value: float = 0.1,
        lambda_reg: float = 0.01,
        value_temperature: float = 1.0,
        value_target: str = "signed",
        reg_floor: float = 0.05,
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.alpha = alpha
        self.beta = beta
        self.dropout = dropout
        self.activation = activation
        self.use_global_value = use_global_value
        self.use_channel_value = use_channel_value
        self.use_agreement = use_agreement
        self.use_discrepancy = use_discrepancy
        self.post_norm = post_norm
        self.gate_init = gate_init
        self.lambda_value = lambda_value
        self.lambda_reg = lambda_reg
        self.value_temperature = value_temperature
        self.value_target = value_target
        self.reg_floor = reg_floor

    # -- construction ------------------------------------------------------------------------
    def build(self, spec: BuildSpec) -> None:
        if len(spec.names) < 2:
            raise ValueError(
                f"vgmr needs at least 2 modalities (the context u_m averages the others), got "
                f"{len(spec.names)}. Use calibration='none' for a single modality."
            )
        self.names = tuple(spec.names)
        latent = int(self.latent_dim)
        hidden = latent if self.hidden is None else int(self.hidden)
        widths = {name: token_width(spec.feature_shapes[name]) for name in self.names}
        if self.post_norm and any(width == 1 for width in widths.values()):
            ones = [name for name, width in widths.items() if width == 1]
            warnings.warn(
                f"vgmr: modalities {ones} have feature width 1, where LayerNorm returns a constant "
                "and erases the signal; pass calibration__post_norm=False.",
                stacklevel=2,
            )
        self.branches = nn.ModuleDict(
            {
                name: ModalityBranch(
                    width=widths[name],
                    latent=latent,
                    hidden=hidden,
                    n_others=len(self.names) - 1,
                    activation=self.activation,
                    dropout=float(self.dropout),
                    use_global_value=bool(self.use_global_value),
                    use_channel_value=bool(self.use_channel_value),
                    use_agreement=bool(self.use_agreement),
                    use_discrepancy=bool(self.use_discrepancy),
                    post_norm=bool(self.post_norm),
                )
                for name in self.names
            }
        )
        if self.gate_init == "neutral":
            with torch.no_grad():
                for branch in self.branches.values():
                    for layer in branch.gate_layers():
                        layer.weight.zero_()
                        layer.bias.zero_()

    # -- forward -----------------------------------------------------------------------------
    def _value_signals(
        self,
        projected: dict[str, Tensor],
        steps: dict[str, Tensor | None],
        mask: Tensor,
        signals: RefinerSignals,
    ) -> None:
        """Eq. 3–10: fill ``signals.summary/context/global_value/channel_value``."""
        summaries = torch.stack(
            [
                self.branches[m].summary_encoder(avg_max_pool(projected[m], steps[m]))
                for m in self.names
            ],
            dim=1,
        )  # s: (B, M, d_p)  Eq. 3
        summaries = summaries.masked_fill(~mask.unsqueeze(-1), 0.0)  # absent: no summary
        for position, m in enumerate(self.names):
            branch = self.branches[m]
            others = [j for j in range(len(self.names)) if j != position]
            target_summary = summaries[:, position]  # s_m (B, d_p)
            other_summaries = summaries[:, others]  # {s_o} (B, K, d_p), zero rows when absent
            others_present = mask[:, others]  # (B, K)
            context = masked_mean(other_summaries, others_present)  # u_m (B, d_p)  Eq. 5
            parts = [target_summary, other_summaries.flatten(start_dim=1)]  # (B, d_p), (B, K·d_p)
            if self.use_agreement:
                agreement = target_summary.unsqueeze(1) * other_summaries  # a (B, K, d_p) Eq. 6
                parts.append(agreement.flatten(start_dim=1))
            if self.use_discrepancy:
                discrepancy = (target_summary.unsqueeze(1) - other_summaries).abs()  # δ Eq. 6
                discrepancy = discrepancy * others_present.unsqueeze(-1).to(discrepancy.dtype)
                parts.append(discrepancy.flatten(start_dim=1))  # (B, K·d_p)
            parts.append(context)
            interaction = branch.interaction_encoder(torch.cat(parts, dim=1))  # r_m (B, d_p) Eq. 8
            value = branch.value_encoder(
                torch.cat([target_summary, interaction], dim=1)
            )  # z_m Eq.9
            signals.summary[m] = target_summary
            signals.context[m] = context
            if self.use_global_value:
                signals.global_value[m] = branch.global_value(value).sigmoid().squeeze(1)  # (B,)
            if self.use_channel_value:
                signals.channel_value[m] = branch.channel_value(value).sigmoid()  # (B, d_p)

    def forward(
        self, features: dict[str, Tensor], mask: Tensor, output: FusionOutput
    ) -> dict[str, Tensor]:
        alpha, beta = float(self.alpha), float(self.beta)
        tokens = {m: to_tokens(features[m]) for m in self.names}  # X_m (B, T_m, d_m)
        steps = {
            m: output.steps.get(m) if features[m].dim() == 3 else None for m in self.names
        }  # (B, T_m) real steps, or None when all are real
        projected = {m: self.branches[m].projection(tokens[m]) for m in self.names}  # H_m Eq. 2
        signals = RefinerSignals(mask=mask, steps=steps)
        if self.use_global_value or self.use_channel_value:
            self._value_signals(projected, steps, mask, signals)
        refined = {}
        for position, m in enumerate(self.names):
            global_value = signals.global_value.get(m)
            gate = self.branches[m].gate(
                tokens[m],
                projected[m],
                None if global_value is None else global_value.unsqueeze(1),  # (B, 1)
                signals.channel_value.get(m),  # (B, d_p) or None
            )  # G_m (B, T_m, d_m)  Eq. 11
            amplified = 1 + alpha * (2 * gate - 1)  # Ĝ_m  Eq. 12
            effective = beta + (1 - beta) * amplified  # G̃_m  Eq. 13
            result = self.branches[m].post(tokens[m] * effective)  # X̃_m (B, T_m, d_m)  Eq. R
            keep = mask[:, position].reshape(-1, 1, 1)  # (B, 1, 1)
            if steps[m] is not None:
                keep = keep & steps[m].unsqueeze(-1)  # (B, T_m, 1)
            result = torch.where(keep, result, torch.zeros_like(result))  # absent / padded -> 0
            refined[m] = from_tokens(result, features[m].shape)  # same shape as features[m]
            signals.gate[m] = gate
            signals.effective_gate[m] = effective
        output.diagnostics[DIAGNOSTICS_KEY] = signals
        return refined

    # -- training objective (§3.8) -----------------------------------------------------------
    def loss_terms(self, output: FusionOutput, ctx: LossContext) -> dict[str, Tensor]:
        """λ_v·L_value and λ_r·L_reg on training batches (validation loss is the task loss)."""
        signals = output.diagnostics.get(DIAGNOSTICS_KEY)
        if not ctx.training or signals is None:
            return {}
        terms = {}
        if self.lambda_value > 0 and (signals.global_value or signals.channel_value):
            contributions = objective.removal_contributions(output, ctx, self.names)  # Δ (B, M)
            targets = objective.value_targets(
                contributions, float(self.value_temperature), self.value_target
            )  # (B, M) in (0, 1)
            terms["vgmr_value"] = self.lambda_value * objective.value_loss(
                signals, targets, self.names
            )
        if self.lambda_reg > 0:
            terms["vgmr_reg"] = self.lambda_reg * objective.regularisation_loss(
                signals, self.names, float(self.reg_floor)
            )
        return terms
