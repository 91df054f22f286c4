"""umt: uni-modal teachers trained first (U1), features distilled into the encoders (U2).

Expected values come from numpy or from the networks' modules called directly in the test, never
from the weighting's own output.
"""

import numpy as np
import pytest
import torch
from balancing_helpers import build_network, loss_context, make_batch, make_data, training_context

from fusekit import FusionClassifier
from fusekit.builtin.umt_weighting import UMTWeighting, feature_distance, train_teacher
from fusekit.plugin import NetworkView, TrainingData

SHAPES = {"a": (6,), "b": (6,)}


def test_feature_distance_by_hand():
    """Rows 0 and 2 present: mean of (1 + 4)/2 and (0 + 9)/2 = (2.5 + 4.5) / 2 = 3.5."""
    teacher = torch.tensor([[1.0, 2.0], [5.0, 5.0], [0.0, 3.0]])
    student = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    present = torch.tensor([True, False, True])
    torch.testing.assert_close(feature_distance(teacher, student, present), torch.tensor(3.5))
    sequences = torch.ones(2, 3, 2)  # (B, T, D): the mean runs over every entry of a row
    torch.testing.assert_close(
        feature_distance(sequences, torch.zeros(2, 3, 2), torch.tensor([True, True])),
        torch.tensor(1.0),
    )


def test_loss_terms_match_the_backbones_called_directly():
    """Teacher: identity backbones (t_m = x_m); student: MLP backbones. Expected
    s · Σ_m mean over present rows of mean((x_m − MLP_m(x_m))²), from the modules."""
    torch.manual_seed(0)
    weighting = UMTWeighting(scaling=2.5)
    network = build_network(weighting, shapes=SHAPES)
    teacher = NetworkView(build_network(shapes=SHAPES, identity=True))
    weighting.teachers = {"a": teacher, "b": teacher}
    mask = torch.tensor([[True, True], [True, False], [False, True], [True, True]])
    batch = make_batch(SHAPES, n=4, mask=mask)
    network.train()
    output = network(batch)
    terms = weighting.loss_terms(output, loss_context(network, batch, torch.zeros(4).long()))
    expected = 0.0
    with torch.no_grad():
        for position, name in enumerate(SHAPES):
            x = batch.features[name].numpy()
            h = network.backbones[name](batch.features[name]).numpy()
            rows = mask[:, position].numpy()
            expected += ((x - h) ** 2).mean(axis=1)[rows].mean()
    torch.testing.assert_close(terms["umt_distillation"], torch.tensor(2.5 * expected))
    terms["umt_distillation"].backward()  # the distillation trains the student's encoders
    assert all(p.grad is not None for p in network.backbones["a"].parameters())


def test_a_teacher_predicts_from_its_own_modality_and_learns():
    torch.manual_seed(0)
    X, y = make_data(2, n=120)
    network = build_network(shapes={"a": (6,), "b": (5, 3)})
    inputs = make_batch({"a": (6,), "b": (5, 3)}, n=120, seed=1)
    target = torch.as_tensor(y[:120]).long()
    inputs.features["a"][:, 0] += 3.0 * target  # 'a' tells the class
    before = [p.detach().clone() for p in network.parameters()]
    view = NetworkView(network)
    teacher = train_teacher(view, inputs, target, "a", 15, 32, torch.optim.Adam, 0.01)
    for old, new in zip(before, network.parameters(), strict=True):  # the student is untouched
        torch.testing.assert_close(old, new)
    changed_b = inputs.take(slice(0, 120))
    changed_b.features["b"] = changed_b.features["b"] + 5.0
    only_a = inputs.without(["b"])
    with torch.no_grad():
        logits = teacher(only_a).logits
        same = teacher(changed_b.without(["b"])).logits
    torch.testing.assert_close(logits, same)
    accuracy = (logits.argmax(dim=1) == target).float().mean()
    assert accuracy > 0.8  # it learnt the class from 'a' alone (chance is 1/3)
    assert not any(p.requires_grad for p in teacher.parameters())


def test_teachers_are_trained_on_the_training_rows_where_their_modality_is_present():
    torch.manual_seed(0)
    weighting = UMTWeighting(teacher_epochs=1)
    shapes = {"a": (6,), "b": (6,), "c": (6,)}
    network = build_network(weighting, shapes=shapes)
    mask = torch.ones(10, 3, dtype=torch.bool)
    mask[:, 2] = False  # 'c' never present: no teacher
    data = TrainingData(make_batch(shapes, n=10, mask=mask), torch.zeros(10).long())

    class Loop:
        max_epochs, batch_size, lr, optimizer_class = 3, 4, 0.01, torch.optim.SGD

    ctx = training_context(network, data=data)
    ctx.loop = Loop()
    weighting.on_train_begin(ctx)
    assert set(weighting.teachers) == {"a", "b"}


def test_nothing_outside_training_or_the_window():
    weighting = UMTWeighting(start_epoch=1, end_epoch=1)
    network = build_network(weighting, shapes=SHAPES)
    weighting.teachers = {"a": NetworkView(build_network(shapes=SHAPES, identity=True))}
    batch = make_batch(SHAPES, n=4)
    output = network(batch)
    target = torch.zeros(4).long()
    for epoch, training, expected in [(0, True, False), (1, True, True), (2, True, False),
                                      (1, False, False)]:  # fmt: skip
        weighting.on_epoch_begin(training_context(network, epoch=epoch))
        terms = weighting.loss_terms(output, loss_context(network, batch, target, training))
        assert bool(terms) is expected, (epoch, training)


def test_distillation_pulls_the_encoders_towards_the_teachers(train_seed):
    """The same fit with s = 10 and with s = 0 (whose distance is still measured): on the last
    training batch the encoders sit closer to the teachers with distillation. Teachers trained
    for 30 epochs, so they move away from the initial weights they share with the student: the
    ratio was 0.44-0.48 over seeds 0-2 (threshold 0.7)."""
    X, y = make_data(2, n=150, seed=train_seed)
    distances = {}
    for scaling in (10.0, 0.0):
        model = FusionClassifier(
            weighting="umt",
            weighting__scaling=scaling,
            weighting__teacher_epochs=30,
            max_epochs=6,
            random_state=train_seed,
        ).fit(X, y)
        distances[scaling] = float(model.module_.weighting.last_distance)
    assert distances[10.0] < 0.7 * distances[0.0], distances


def test_pickling_drops_the_teachers_and_predicts_the_same():
    import pickle

    X, y = make_data(2)
    model = FusionClassifier(weighting="umt", max_epochs=2, random_state=0).fit(X, y)
    assert model.module_.weighting.teachers
    restored = pickle.loads(pickle.dumps(model))
    assert restored.module_.weighting.teachers == {}
    np.testing.assert_allclose(restored.predict_proba(X), model.predict_proba(X), rtol=1e-6)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"scaling": -1.0}, "The 'scaling' parameter of weighting umt must be"),
        ({"teacher_epochs": 0}, "The 'teacher_epochs' parameter of weighting umt must be"),
        ({"start_epoch": 2, "end_epoch": 1}, "umt: end_epoch must be None or >= start_epoch"),
    ],
)
def test_bad_parameters_name_themselves(params, message):
    X, y = make_data(2)
    model = FusionClassifier(
        weighting="umt", max_epochs=1, **{f"weighting__{k}": v for k, v in params.items()}
    )
    with pytest.raises(ValueError, match=message):
        model.fit(X, y)
