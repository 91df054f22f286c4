"""SCFAE's forward pass (Eq. 3-6) against a per-sample reference written from the spec.

The reference below reads the fusion's weights but recomputes everything else itself, one sample
at a time, from spec §4.2-4.8 (``specs/seed-001-scfae.md``): P(x) = GELU(W x + c) with GELU from
erf, SwiGLU(x) = W3 (SiLU(W1 x + c1) ⊙ (W2 x + c2)) + c3 with SiLU = x σ(x), the split point
s = ⌊b n l + 1/2⌋, the cyclic partner k = (i + 1) mod M and the three missing-partner rules, the
branch masks, and L_recon = (1/B) Σ_i Σ_m mask_im (1 − cos) (or the MSE / InfoNCE variants).
Everything runs in float64, so the comparison is tight.
"""

import math
from types import SimpleNamespace

import pytest
import torch
from fusekit_scfae import SCFAEFusion
from fusekit_scfae.blocks import GeluLinear, SwiGLU

from fusekit import BuildSpec, FusionOutput, ModalityBatch
from fusekit.builtin.mlp_backbone import MLPBackbone
from fusekit.builtin.no_calibration import NoCalibration
from fusekit.builtin.no_weighting import NoWeighting
from fusekit.engine.network import FusionNetwork

WIDTHS = {"t": 5, "a": 4, "v": 6}  # given order t, a, v; l* = 4
ORDER = [
    "a",
    "t",
    "v",
]  # a takes t's shared part, t takes v's, v takes a's (not a rotation of t, a, v)
#: every presence pattern of three modalities, and a row with none (all in given order t, a, v)
MASK = [
    [True, True, True],
    [True, False, True],
    [False, True, True],
    [True, True, False],
    [True, False, False],
    [False, True, False],
    [False, False, True],
    [False, False, False],
]


def _gelu(y: torch.Tensor) -> torch.Tensor:
    return 0.5 * y * (1.0 + torch.erf(y / math.sqrt(2.0)))


def _p(block: GeluLinear, x: torch.Tensor, activation: str = "gelu") -> torch.Tensor:
    """P(x) = act(W x + c) on one sample ``(in,) -> (out,)``."""
    y = block.linear.weight @ x + block.linear.bias
    return _gelu(y) if activation == "gelu" else y


def _swiglu(block, x: torch.Tensor, on: bool = True) -> torch.Tensor:
    """W3 (SiLU(W1 x + c1) ⊙ (W2 x + c2)) + c3 on one sample; the identity for ``on=False``."""
    if not on:
        return x
    assert isinstance(block, SwiGLU)
    gate = block.gate.weight @ x + block.gate.bias
    value = block.value.weight @ x + block.value.bias
    return block.out.weight @ (gate * torch.sigmoid(gate) * value) + block.out.bias


def _source(i: int, present: list[bool], rule: str) -> int:
    """The cycle position whose shared slice target i takes (spec §4.8)."""
    count = len(present)
    partner = (i + 1) % count
    if rule == "zero":
        return partner
    if rule == "self":
        return partner if present[partner] else i
    for step in range(1, count):  # next_present: walk the cycle to the first present one
        if present[(i + step) % count]:
            return (i + step) % count
    return i


def _info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE of paired rows, with logsumexp."""
    a = a / a.norm(dim=1, keepdim=True)
    b = b / b.norm(dim=1, keepdim=True)
    logits = a @ b.T / temperature
    rows = (torch.logsumexp(logits, dim=1) - logits.diagonal()).mean()
    columns = (torch.logsumexp(logits, dim=0) - logits.diagonal()).mean()
    return 0.5 * (rows + columns)


def reference(fusion, vectors, mask, settings):
    """Fused rows ``(B, Σ(l_m + l*))``, L_recon and the per-sample intermediate values."""
    names = list(vectors)
    cycle = settings.get("modality_order") or names
    n, b = settings.get("n", 2), settings.get("b", 0.5)
    rule = settings.get("missing_shared", "zero")
    branch = settings.get("branch", "both")
    recon = settings.get("recon", "cos")
    batch = mask.shape[0]
    fused, loss = [], torch.zeros((), dtype=torch.float64)
    kept = {key: {m: [] for m in names} for key in ("z_specific", "z_shared", "z", "recon")}
    own_rows, sources = [], []
    for row in range(batch):
        present = [bool(mask[row, names.index(m)]) for m in cycle]
        v = [vectors[m][row] * float(present[i]) for i, m in enumerate(cycle)]  # absent: zeros
        swiglu = settings.get("swiglu", True)
        u = [_swiglu(fusion.pre[m], v[i], swiglu) for i, m in enumerate(cycle)]
        if settings.get("structure", "split") == "split":
            own, specific = [], []
            for i, m in enumerate(cycle):
                expanded = _p(fusion.expand[m], u[i])  # (n·l,)
                cut = math.floor(b * n * len(v[i]) + 0.5)
                own.append(_p(fusion.shared[m], expanded[:cut]))  # (l*,)
                specific.append(_p(fusion.specific[m], expanded[cut:]))  # (l,)
            shared = [own[_source(i, present, rule)] for i in range(len(cycle))]
            by_column = [0] * len(names)  # in mask-column order: the column of the source
            for i, m in enumerate(cycle):
                by_column[names.index(m)] = names.index(cycle[_source(i, present, rule)])
            sources.append(by_column)
        else:
            codes = [_p(fusion.linear[m], u[i]) for i, m in enumerate(cycle)]  # (l + l*,)
            specific = [z[: len(v[i])] for i, z in enumerate(codes)]
            shared = own = [z[len(v[i]) :] for i, z in enumerate(codes)]
        own_rows.append(own)
        posts = {}
        for i, m in enumerate(cycle):
            z = torch.cat([specific[i], shared[i]])
            z_sp = specific[i] * (branch != "shared")
            z_sh = shared[i] * (branch != "specific")
            post = _swiglu(fusion.post[m], torch.cat([z_sp, z_sh]), swiglu)
            if settings.get("zero_absent_outputs", False):
                post = post * float(present[i])
            posts[m] = post
            source = z if settings.get("recon_from", "z") == "z" else post
            v_hat = _p(fusion.reconstruct[m], source, settings.get("recon_act", "gelu"))
            for key, value in (
                ("z_specific", specific[i]),
                ("z_shared", shared[i]),
                ("z", z),
                ("recon", v_hat),
            ):
                kept[key][m].append(value)
            if present[i] and recon == "cos":
                norms = (v[i].norm() * v_hat.norm()).clamp(min=1e-8)
                loss = loss + 1.0 - (v[i] @ v_hat) / norms
            elif present[i] and recon == "mse":
                loss = loss + ((v[i] - v_hat) ** 2).mean()
        fused.append(torch.cat([posts[m] for m in names]))
    loss = loss / batch
    if recon == "contrastive":
        count, loss = len(cycle), torch.zeros((), dtype=torch.float64)
        pairs = [(0, 1)] if count == 2 else [(i, (i + 1) % count) for i in range(count)]
        for first, second in pairs:
            rows = [
                r
                for r in range(batch)
                if mask[r, names.index(cycle[first])] and mask[r, names.index(cycle[second])]
            ]
            if len(rows) >= 2:
                a = torch.stack([own_rows[r][first] for r in rows])
                c = torch.stack([own_rows[r][second] for r in rows])
                loss = loss + _info_nce(a, c, settings.get("temperature", 0.07))
    stacked = {key: {m: torch.stack(rows) for m, rows in d.items()} for key, d in kept.items()}
    return torch.stack(fused), loss, stacked, sources


def build(widths, settings, shapes=None):
    shapes = shapes or {m: (w,) for m, w in widths.items()}
    spec = BuildSpec(
        names=tuple(widths),
        input_shapes=shapes,
        feature_shapes=shapes,
        n_outputs=2,
        task="classification",
    )
    torch.manual_seed(0)
    fusion = SCFAEFusion(**settings)
    fusion.width_ = fusion.build(spec)
    with torch.no_grad():  # biases away from 0 so that a dropped bias changes the value
        for parameter in fusion.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    return fusion.double()


def features(widths, batch, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return {
        m: torch.randn(batch, w, generator=generator, dtype=torch.float64) + 0.5
        for m, w in widths.items()
    }


SETTINGS = [
    {"modality_order": ORDER},
    {"modality_order": ORDER, "missing_shared": "self", "recon": "mse", "recon_from": "post"},
    {"missing_shared": "next_present", "recon_act": "identity", "branch": "shared", "lam": 0.3},
    {"modality_order": ORDER, "branch": "specific", "zero_absent_outputs": True, "n": 3, "b": 0.3},
    {"modality_order": ORDER, "missing_shared": "next_present", "swiglu": False, "b": 0.7},
    {"structure": "linear", "recon_from": "post"},
    {"modality_order": ORDER, "recon": "contrastive", "temperature": 0.5, "lam": 2.0},
    {"modality_order": ORDER, "missing_shared": "self", "recon": "contrastive"},
]


@pytest.mark.parametrize("settings", SETTINGS, ids=range(len(SETTINGS)))
def test_forward_matches_the_per_sample_reference(settings):
    fusion = build(WIDTHS, settings)
    mask = torch.tensor(MASK * 2)  # B = 16, every presence pattern twice
    vectors = features(WIDTHS, len(mask))
    inputs = {m: v * mask[:, i : i + 1] for i, (m, v) in enumerate(vectors.items())}
    output = FusionOutput(mask=mask)
    fused = fusion(inputs, mask, output)
    expected, loss, kept, sources = reference(fusion, vectors, mask, settings)
    torch.testing.assert_close(fused, expected, rtol=1e-10, atol=1e-12)
    diag = output.diagnostics["scfae"]
    lam = settings.get("lam", 1.0)
    torch.testing.assert_close(diag["recon_loss"], loss, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(output.aux_losses["scfae_recon"], lam * loss, rtol=1e-10, atol=0)
    for key, values in kept.items():
        for m in WIDTHS:
            torch.testing.assert_close(diag[key][m], values[m], rtol=1e-10, atol=1e-12)
    for m in WIDTHS:
        torch.testing.assert_close(diag["inputs"][m], inputs[m])
    if settings.get("structure", "split") == "split":
        assert diag["shared_source"].tolist() == sources
    else:
        assert "shared_source" not in diag


def test_absent_rows_are_zeroed_inside_the_fusion_and_two_modalities_swap():
    widths = {"a": 4, "b": 7}
    fusion = build(widths, {})
    mask = torch.tensor([[True, True], [True, False], [False, True], [True, True]])
    vectors = features(widths, 4, seed=2)  # absent rows hold values: the fusion must zero them
    output = FusionOutput(mask=mask)
    fused = fusion(vectors, mask, output)
    expected, loss, kept, sources = reference_two(fusion, vectors, mask)
    torch.testing.assert_close(fused, expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(output.diagnostics["scfae"]["recon_loss"], loss, rtol=1e-10, atol=0)
    assert sources == [[1, 0]] * 4


def reference_two(fusion, vectors, mask):
    """M = 2 wrapper of :func:`reference` (its l* check is for the three-modality widths)."""
    names = list(vectors)
    rows, loss = [], torch.zeros((), dtype=torch.float64)
    for row in range(mask.shape[0]):
        present = [bool(mask[row, i]) for i in range(2)]
        v = [vectors[m][row] * float(present[i]) for i, m in enumerate(names)]
        own, specific = [], []
        for i, m in enumerate(names):
            expanded = _p(fusion.expand[m], _swiglu(fusion.pre[m], v[i]))
            cut = math.floor(0.5 * 2 * len(v[i]) + 0.5)
            own.append(_p(fusion.shared[m], expanded[:cut]))
            specific.append(_p(fusion.specific[m], expanded[cut:]))
        out = []
        for i, m in enumerate(names):
            z = torch.cat([specific[i], own[1 - i]])  # M = 2: a plain swap
            out.append(_swiglu(fusion.post[m], z))
            v_hat = _p(fusion.reconstruct[m], z)
            if present[i]:
                loss = loss + 1.0 - (v[i] @ v_hat) / (v[i].norm() * v_hat.norm())
        rows.append(torch.cat(out))
    return torch.stack(rows), loss / mask.shape[0], None, [[1, 0]] * mask.shape[0]


def test_sequence_modalities_are_pooled_over_their_real_steps():
    widths = {"s": 4, "x": 5}
    shapes = {"s": (3, 4), "x": (5,)}  # s: T = 3 steps of width 4
    fusion = build(widths, {}, shapes)
    generator = torch.Generator().manual_seed(3)
    sequence = torch.randn(4, 3, 4, generator=generator, dtype=torch.float64)
    steps = torch.tensor([[1, 1, 1], [1, 0, 0], [1, 1, 0], [0, 1, 1]], dtype=torch.bool)
    vector = torch.randn(4, 5, generator=generator, dtype=torch.float64)
    mask = torch.ones(4, 2, dtype=torch.bool)
    output = FusionOutput(mask=mask, steps={"s": steps})
    fused = fusion({"s": sequence, "x": vector}, mask, output)
    pooled = torch.stack([sequence[i][steps[i]].mean(dim=0) for i in range(4)])  # (B, 4)
    expected, loss, _, _ = reference_two(fusion, {"s": pooled, "x": vector}, mask)
    torch.testing.assert_close(fused, expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(output.diagnostics["scfae"]["recon_loss"], loss, rtol=1e-10, atol=0)


@pytest.mark.parametrize("detach_target", [False, True])
def test_gradients_equal_the_references_with_and_without_a_detached_target(detach_target):
    """∂(r·fused + λ L_recon) on the inputs and every parameter equals the reference's."""
    settings = {"modality_order": ORDER, "detach_target": detach_target, "lam": 0.6}
    fusion = build(WIDTHS, settings)
    mask = torch.tensor(MASK[:7])
    vectors = {m: v.requires_grad_() for m, v in features(WIDTHS, 7, seed=4).items()}
    weights = torch.randn(7, fusion.width_, generator=torch.Generator().manual_seed(5)).double()
    wrt = [*vectors.values(), *fusion.parameters()]

    output = FusionOutput(mask=mask)
    fused = fusion(vectors, mask, output)
    total = (weights * fused).sum() + output.aux_losses["scfae_recon"]
    got = torch.autograd.grad(total, wrt, allow_unused=True)

    expected_fused, _, _, _ = reference(fusion, vectors, mask, settings)
    targets = {m: v.detach() if detach_target else v for m, v in vectors.items()}
    loss = _reference_loss(fusion, vectors, targets, mask)
    want = torch.autograd.grad(
        (weights * expected_fused).sum() + 0.6 * loss, wrt, allow_unused=True
    )
    for g, w in zip(got, want, strict=True):
        if w is None:
            assert g is None or not g.abs().sum() > 0
        else:
            torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-12)


def _reference_loss(fusion, vectors, targets, mask):
    """L_recon with the reconstruction from ``vectors`` and the target taken from ``targets``."""
    names = list(vectors)
    cycle = ORDER
    loss = torch.zeros((), dtype=torch.float64)
    for row in range(mask.shape[0]):
        present = [bool(mask[row, names.index(m)]) for m in cycle]
        v = [vectors[m][row] * float(present[i]) for i, m in enumerate(cycle)]
        own, specific = [], []
        for i, m in enumerate(cycle):
            expanded = _p(fusion.expand[m], _swiglu(fusion.pre[m], v[i]))
            cut = math.floor(0.5 * 2 * len(v[i]) + 0.5)
            own.append(_p(fusion.shared[m], expanded[:cut]))
            specific.append(_p(fusion.specific[m], expanded[cut:]))
        for i, m in enumerate(cycle):
            if not present[i]:
                continue
            v_hat = _p(fusion.reconstruct[m], torch.cat([specific[i], own[(i + 1) % 3]]))
            target = targets[m][row]
            loss = loss + 1.0 - (target @ v_hat) / (target.norm() * v_hat.norm())
    return loss / mask.shape[0]


def test_defaults_are_the_papers_settings():
    """Eq. 6 with λ = 1, n = 2, b = 0.5 (Sec. 5), nothing detached (A10), both branches."""
    fusion = SCFAEFusion()
    assert (fusion.n, fusion.b, fusion.lam, fusion.temperature) == (2, 0.5, 1.0, 0.07)
    assert (fusion.recon, fusion.recon_act, fusion.recon_from) == ("cos", "gelu", "z")
    assert (fusion.missing_shared, fusion.structure, fusion.branch) == ("zero", "split", "both")
    assert fusion.swiglu is True and fusion.modality_order is None
    assert fusion.detach_target is False and fusion.zero_absent_outputs is False
    assert fusion.gradient_diagnostics is False
    assert GeluLinear(2, 3).activation == "gelu"


def test_one_dim_shared_slice_is_accepted_and_an_empty_one_is_named_with_its_width():
    fusion = build({"big": 8, "tiny": 1}, {})  # tiny: s = ⌊0.5 · 2 · 1 + ½⌋ = 1 of 2 dims
    assert fusion.splits["tiny"] == 1 and fusion.specific["tiny"].linear.in_features == 1
    with pytest.raises(ValueError, match=r"modality 'a' has width 4; .* of 4 expanded dims"):
        build({"a": 4, "b": 6}, {"n": 1, "b": 0.05})  # s = ⌊0.2 + ½⌋ = 0


class _Loop:
    def __init__(self):
        self.rows = {}

    def record(self, key, value):
        self.rows[key] = value


def _network(fusion):
    torch.manual_seed(0)
    return FusionNetwork(
        {"a": (4,), "b": (6,)},
        {"a": MLPBackbone(hidden=5), "b": MLPBackbone(hidden=3)},
        NoCalibration(),
        fusion,
        NoWeighting(),
        n_outputs=3,
        task="classification",
    )


def _cosine_by_hand(network, batch, target):
    """cos(∂L_task/∂θ_enc, ∂(λ L_recon)/∂θ_enc) and ‖∂L_task/∂θ_enc‖ (Fig. 4A)."""
    params = [p for m in ("a", "b") for p in network.backbones[m].parameters()]
    output = network(batch)
    task = torch.nn.functional.cross_entropy(output.logits, target)
    aux = output.aux_losses["scfae_recon"]  # λ L_recon
    g_task = torch.autograd.grad(task, params, retain_graph=True)
    g_task = torch.cat([g.reshape(-1) for g in g_task])
    g_aux = torch.cat([g.reshape(-1) for g in torch.autograd.grad(aux, params)])
    return float(g_task @ g_aux / (g_task.norm() * g_aux.norm())), float(g_task.norm())


def test_gradient_diagnostics_record_the_epochs_mean_cosine_and_task_norm():
    network = _network(SCFAEFusion(gradient_diagnostics=True, lam=0.5))
    fusion, loop = network.fusion, _Loop()
    generator = torch.Generator().manual_seed(9)
    batches = [
        (
            ModalityBatch(
                {
                    "a": torch.randn(6, 4, generator=generator),
                    "b": torch.randn(6, 6, generator=generator),
                },
                torch.ones(6, 2, dtype=torch.bool),
            ),
            torch.randint(0, 3, (6,), generator=generator),
        )
        for _ in range(3)
    ]
    fusion.on_epoch_begin(SimpleNamespace(loop=loop))
    measured = []
    for batch, target in batches:
        measured.append(_cosine_by_hand(network, batch, target))
        fusion.on_batch_begin(SimpleNamespace(network=network, batch=batch, target=target))
    fusion.on_batch_begin(SimpleNamespace(network=network, batch=None, target=None))  # skipped
    fusion.on_epoch_end(SimpleNamespace(loop=loop))
    cosines = [c for c, _ in measured]
    assert set(loop.rows) == {"scfae_grad_cos", "scfae_grad_neg", "scfae_task_grad_norm"}
    assert loop.rows["scfae_grad_cos"] == pytest.approx(sum(cosines) / 3, rel=1e-4, abs=1e-6)
    assert loop.rows["scfae_grad_neg"] == pytest.approx(sum(c < 0 for c in cosines) / 3)
    norm = sum(n for _, n in measured) / 3
    assert loop.rows["scfae_task_grad_norm"] == pytest.approx(norm, rel=1e-4)
    fusion.on_epoch_begin(SimpleNamespace(loop=loop))  # a new epoch starts from an empty log
    loop.rows.clear()
    fusion.on_epoch_end(SimpleNamespace(loop=loop))
    assert loop.rows == {}


@pytest.mark.parametrize("params", [{"gradient_diagnostics": False}, {"lam": 0.0}])
def test_no_gradient_diagnostics_without_the_switch_or_without_the_auxiliary_loss(params):
    network = _network(SCFAEFusion(**{"gradient_diagnostics": True, **params}))
    fusion, loop = network.fusion, _Loop()
    batch = ModalityBatch(
        {"a": torch.randn(6, 4), "b": torch.randn(6, 6)}, torch.ones(6, 2, dtype=torch.bool)
    )
    fusion.on_epoch_begin(SimpleNamespace(loop=loop))
    fusion.on_batch_begin(
        SimpleNamespace(network=network, batch=batch, target=torch.zeros(6).long())
    )
    fusion.on_epoch_end(SimpleNamespace(loop=loop))
    assert loop.rows == {}
