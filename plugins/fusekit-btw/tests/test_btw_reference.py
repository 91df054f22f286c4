"""BTW's unimodal reference models (Sec. 3.1, Eqs. 1–3; spec seed-004 §4.1) against a hand loop.

ŷ^m = f_m(x^m): f_m is the network being fitted (same backbones, calibration, fusion and head, same
initial weights) without its weighting, trained on the rows where m is present with every other
modality masked out, for ``epochs`` epochs of mini-batches of ``batch_size`` (order reshuffled each
epoch by ``torch.randperm`` with a generator seeded ``seed + position``), on the full training loss
(sample-weighted task loss plus every component's training-mode terms). The reference below is a
separately built network of the same initial weights trained by a loop written out here: the
cross-entropy, the sample-weighted mean and the fusion's training-only penalty by hand.
"""

import torch
from fusekit_btw.reference import only_modality, train_unimodal_models, unimodal_logits
from torch.nn import functional as F

from fusekit.builtin.concat_fusion import ConcatFusion
from fusekit.builtin.mlp_backbone import MLPBackbone
from fusekit.builtin.no_calibration import NoCalibration
from fusekit.builtin.no_weighting import NoWeighting
from fusekit.engine.network import FusionNetwork
from fusekit.plugin import ModalityBatch, TrainingData, Weighting

NAMES = ("a", "b", "c")
WIDTHS = {"a": 3, "b": 2, "c": 4}
MASK = torch.tensor(
    [[1, 1, 1], [1, 0, 1], [0, 1, 1], [1, 1, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]]
    + [[1, 0, 1], [0, 1, 1], [1, 1, 0]],
    dtype=torch.bool,
)
WEIGHTS = torch.tensor(
    [1.0, 2.0, 0.5, 1.5, 3.0, 1.0, 0.25, 2.0, 1.0, 4.0, 0.5], dtype=torch.float64
)
PENALTY = 0.05  # the fusion's training-only loss term: PENALTY · mean(logits²)
EPOCHS, BATCH_SIZE, SEED = 3, 3, 5


class Tripling(Weighting):
    """A weighting that changes the pass (×3 on every modality): the copies must not have it."""

    def reweight(self, features, mask, output):
        return {m: 3.0 * h for m, h in features.items()}


class PenalisedConcat(ConcatFusion):
    """Concat fusion with a loss term in training passes only (``ctx.training``)."""

    def loss_terms(self, output, ctx):
        return {"penalty": PENALTY * output.logits.pow(2).mean()} if ctx.training else {}


def _network(weighting):
    torch.manual_seed(0)
    network = FusionNetwork(
        {m: (w,) for m, w in WIDTHS.items()},
        {m: MLPBackbone(hidden=3) for m in NAMES},
        NoCalibration(),
        PenalisedConcat(),
        weighting,
        n_outputs=3,
        task="classification",
    )
    return network.double()


def _data():
    generator = torch.Generator().manual_seed(1)
    features = {
        m: torch.randn(11, w, generator=generator, dtype=torch.float64) * MASK[:, i, None]
        for i, (m, w) in enumerate(WIDTHS.items())
    }
    target = torch.randint(0, 3, (11,), generator=generator)
    return ModalityBatch(features, MASK, sample_weight=WEIGHTS), target


def _optimiser(parameters):
    return torch.optim.SGD(parameters, lr=0.4, momentum=0.5)


def _alone(features, position):
    """Every modality but ``position`` zeroed, mask column ``position`` only."""
    return {
        m: x if i == position else torch.zeros_like(x) for i, (m, x) in enumerate(features.items())
    }


def _reference_models(features, target):
    """f_m trained by hand: present rows of m, m alone, the loss written out."""
    models = []
    for position in range(len(NAMES)):
        model = _network(NoWeighting()).train()
        rows = torch.nonzero(MASK[:, position]).squeeze(1)
        alone = _alone({m: x[rows] for m, x in features.items()}, position)
        mask = torch.zeros(len(rows), len(NAMES), dtype=torch.bool)
        mask[:, position] = True
        y, w = target[rows], WEIGHTS[rows]
        optimiser = _optimiser(model.parameters())
        generator = torch.Generator().manual_seed(SEED + position)
        for _ in range(EPOCHS):
            order = torch.randperm(len(rows), generator=generator)
            for start in range(0, len(rows), BATCH_SIZE):
                chunk = order[start : start + BATCH_SIZE]
                batch = ModalityBatch({m: x[chunk] for m, x in alone.items()}, mask[chunk])
                logits = model(batch).logits
                ce = F.cross_entropy(logits, y[chunk], reduction="none")
                loss = (ce * w[chunk]).sum() / w[chunk].sum() + PENALTY * logits.pow(2).mean()
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
        models.append(model.eval())
    return models


def test_only_modality_masks_and_zeroes_every_other_modality():
    batch, _ = _data()
    for position, name in enumerate(NAMES):
        alone = only_modality(batch, position)
        expected_mask = MASK & (torch.arange(3) == position)
        assert torch.equal(alone.mask, expected_mask)
        for i, m in enumerate(NAMES):
            expected = batch.features[m] if i == position else torch.zeros_like(batch.features[m])
            assert torch.equal(alone.features[m], expected), (name, m)
        assert torch.equal(alone.sample_weight, WEIGHTS)


def test_each_copy_is_trained_on_its_modality_alone_as_the_hand_written_loop():
    network = _network(Tripling())
    batch, target = _data()
    reference = _reference_models(batch.features, target)
    untrained = _network(NoWeighting())
    assert all(  # the hand-built networks start from the fitted network's weights
        torch.equal(p, q) for p, q in zip(network.parameters(), untrained.parameters(), strict=True)
    )
    models = train_unimodal_models(
        network.view, TrainingData(batch, target), _optimiser, EPOCHS, BATCH_SIZE, SEED
    )
    assert len(models) == 3
    for model, expected in zip(models, reference, strict=True):
        assert not model.training
        assert not any(p.requires_grad for p in model.parameters())  # gradients off
        mine = list(model.parameters())
        assert len(mine) == len(list(expected.parameters()))
        for p, q in zip(mine, expected.parameters(), strict=True):
            torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12)
        assert any(  # and they did train
            not torch.allclose(p, q) for p, q in zip(mine, untrained.parameters(), strict=True)
        )
    assert all(p.requires_grad for p in network.parameters())  # the fitted network untouched

    logits = unimodal_logits(models, batch, batch_size=4)  # (B, M, K), chunks of 4 rows
    assert logits.shape == (11, 3, 3)
    for position, expected in enumerate(reference):
        alone = _alone(batch.features, position)
        mask = MASK & (torch.arange(3) == position)
        with torch.no_grad():
            want = expected(ModalityBatch(alone, mask)).logits
        torch.testing.assert_close(logits[:, position], want, rtol=1e-10, atol=1e-12)


def test_the_copies_do_not_depend_on_the_global_random_state():
    """Same seed, different global RNG state in between: the same models."""
    batch, target = _data()
    runs = []
    for global_seed in (0, 123):
        network = _network(Tripling())
        torch.manual_seed(global_seed)
        models = train_unimodal_models(
            network.view, TrainingData(batch, target), _optimiser, EPOCHS, BATCH_SIZE, SEED
        )
        runs.append([torch.cat([p.reshape(-1) for p in m.parameters()]) for m in models])
    for first, second in zip(*runs, strict=True):
        assert torch.equal(first, second)


def test_training_the_copies_leaves_the_fitted_networks_weights_alone():
    network = _network(Tripling())
    before = [p.detach().clone() for p in network.parameters()]
    batch, target = _data()
    train_unimodal_models(network.view, TrainingData(batch, target), _optimiser, 1, 4, 0)
    for p, q in zip(network.parameters(), before, strict=True):
        assert torch.equal(p, q)
