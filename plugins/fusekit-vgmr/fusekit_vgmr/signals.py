"""What one VGMR pass hands its auxiliary losses: :class:`RefinerSignals`, kept in
``FusionOutput.diagnostics[DIAGNOSTICS_KEY]``.

A module of its own so that the refiner (which fills them) and the objective (which reads them)
both import it and neither imports the other's module back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor

#: Key of :class:`RefinerSignals` in ``FusionOutput.diagnostics``.
DIAGNOSTICS_KEY = "vgmr"


@dataclass
class RefinerSignals:
    """The intermediate signals of one VGMR pass (not detached: the auxiliary losses use them).

    All dicts are keyed by modality; gates are in token layout ``(B, T_m, d_m)``.
    """

    mask: Tensor  # (B, M) presence mask the pass ran with
    summary: dict[str, Tensor] = field(default_factory=dict)  # s_m (B, d_p), zero when absent
    context: dict[str, Tensor] = field(default_factory=dict)  # u_m (B, d_p)
    global_value: dict[str, Tensor] = field(default_factory=dict)  # g_m (B,)
    channel_value: dict[str, Tensor] = field(default_factory=dict)  # p_m (B, d_p)
    gate: dict[str, Tensor] = field(default_factory=dict)  # G_m (B, T_m, d_m)
    effective_gate: dict[str, Tensor] = field(default_factory=dict)  # G̃_m (B, T_m, d_m)
    steps: dict[str, Tensor | None] = field(default_factory=dict)  # (B, T_m) real steps or None
