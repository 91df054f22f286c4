"""The per-modality layers of VGMR: every one exists once per modality, none shared (paper §3.5).

Layer inventory for modality m (paper symbol -> attribute):

=========  ==========================  ==================================================
P_m        ``projection``              Linear d_m -> d_p, per step (Eq. 2)
φ_m        ``summary_encoder``         two-layer MLP 2·d_p -> hidden -> d_p (Eq. 3)
ψ_m        ``interaction_encoder``     two-layer MLP (3K+2)·d_p -> hidden -> d_p (Eq. 8)
η_m        ``value_encoder``           two-layer MLP 2·d_p -> hidden -> d_p (Eq. 9)
w^g, b^g   ``global_value``            Linear d_p -> 1, then sigmoid (Eq. 10)
W^p, b^p   ``channel_value``           Linear d_p -> d_p, then sigmoid (Eq. 10)
ρ^x_m      ``gate_from_input``         Linear d_m -> d_m, per step (Eq. 11)
ρ^h_m      ``gate_from_projection``    Linear d_p -> d_m, per step (Eq. 11)
ρ^g_m      ``gate_from_global_value``  Linear 1 -> d_m, broadcast over T (Eq. 11)
ρ^p_m      ``gate_from_channel_value`` Linear d_p -> d_m, broadcast over T (Eq. 11)
Post_m     ``post``                    LayerNorm(d_m) then Dropout (Eq. R, §3.7)
=========  ==========================  ==================================================

φ, ψ, η are built only when a value signal is used; w^g/ρ^g only with the global value and
W^p/ρ^p only with the channel value (the Table 3 ablations), so every built parameter is used.
"""

from __future__ import annotations

from torch import Tensor, nn

ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "tanh": nn.Tanh, "silu": nn.SiLU}


def two_layer_mlp(width_in: int, hidden: int, width_out: int, activation: str) -> nn.Sequential:
    """Linear -> activation -> Linear (the paper's "lightweight two-layer MLP")."""
    return nn.Sequential(
        nn.Linear(width_in, hidden), ACTIVATIONS[activation](), nn.Linear(hidden, width_out)
    )


class ModalityBranch(nn.Module):
    """All of modality m's VGMR layers."""

    def __init__(
        self,
        width: int,
        latent: int,
        hidden: int,
        n_others: int,
        activation: str,
        dropout: float,
        use_global_value: bool,
        use_channel_value: bool,
        use_agreement: bool,
        use_discrepancy: bool,
        post_norm: bool,
    ) -> None:
        super().__init__()
        self.projection = nn.Linear(width, latent)  # P_m: d_m -> d_p
        if use_global_value or use_channel_value:
            cue_groups = 1 + int(use_agreement) + int(use_discrepancy)  # {s_o}, {a_mo}, {δ_mo}
            interaction_width = (2 + cue_groups * n_others) * latent  # (3K+2)·d_p when all on
            self.summary_encoder = two_layer_mlp(2 * latent, hidden, latent, activation)  # φ_m
            self.interaction_encoder = two_layer_mlp(
                interaction_width, hidden, latent, activation
            )  # ψ_m
            self.value_encoder = two_layer_mlp(2 * latent, hidden, latent, activation)  # η_m
        if use_global_value:
            self.global_value = nn.Linear(latent, 1)  # w^g_m, b^g_m
            self.gate_from_global_value = nn.Linear(1, width)  # ρ^g_m
        if use_channel_value:
            self.channel_value = nn.Linear(latent, latent)  # W^p_m, b^p_m
            self.gate_from_channel_value = nn.Linear(latent, width)  # ρ^p_m
        self.gate_from_input = nn.Linear(width, width)  # ρ^x_m (affine, dimension-preserving)
        self.gate_from_projection = nn.Linear(latent, width)  # ρ^h_m
        self.post = nn.Sequential(
            nn.LayerNorm(width) if post_norm else nn.Identity(), nn.Dropout(dropout)
        )  # Post_m

    def gate_layers(self) -> list[nn.Linear]:
        """The ρ mappings of Eq. 11 that this branch has."""
        names = (
            "gate_from_input",
            "gate_from_projection",
            "gate_from_global_value",
            "gate_from_channel_value",
        )
        return [getattr(self, name) for name in names if hasattr(self, name)]

    def gate(
        self,
        tokens: Tensor,
        projected: Tensor,
        global_value: Tensor | None,
        channel_value: Tensor | None,
    ) -> Tensor:
        """G_m of Eq. 11 (with the centring before it): ``(B, T_m, d_m)`` in (0, 1).

        tokens X_m ``(B, T, d_m)``; projected H_m ``(B, T, d_p)``; global_value g_m ``(B, 1)``;
        channel_value p_m ``(B, d_p)``.
        """
        logits = self.gate_from_input(tokens) + self.gate_from_projection(projected)  # (B, T, d_m)
        if global_value is not None:
            centred_global = 2 * global_value - 1  # g'_m (B, 1)
            logits = logits + self.gate_from_global_value(centred_global).unsqueeze(1)  # (B,1,d_m)
        if channel_value is not None:
            centred_channel = 2 * channel_value - 1  # p'_m (B, d_p)
            logits = logits + self.gate_from_channel_value(centred_channel).unsqueeze(1)
        return logits.sigmoid()  # G_m (B, T, d_m)

    def forward(self, tokens: Tensor) -> Tensor:  # pragma: no cover - use the named steps
        raise NotImplementedError("ModalityBranch is driven by ValueGatedModalityRefiner")
