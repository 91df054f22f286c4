"""The grid, the units and the parsing of command-line specs."""

import numpy as np
import pytest

from fusekit.bench.aliases import dealias
from fusekit.bench.cli import parse_sweep
from fusekit.bench.config import BenchConfig, Sweep, expand, grid, plan, quick_config
from fusekit.bench.data import from_arrays, parse_dataset_name
from fusekit.engine.registry import available
from fusekit.plugin import Weighting


def test_product_grid_is_every_combination():
    config = BenchConfig(fusion=["concat", "late"], weighting=["none", "modality_dropout"])
    combos = grid(config)
    assert len(combos) == 4
    assert {(c["fusion"], c["weighting"]) for c in combos} == {
        ("concat", "none"),
        ("concat", "modality_dropout"),
        ("late", "none"),
        ("late", "modality_dropout"),
    }


def test_axes_design_varies_one_axis_around_the_first_values():
    config = BenchConfig(
        fusion=["concat", "late", "mean"], weighting=["none", "modality_dropout"], design="axes"
    )
    combos = [(c["fusion"], c["weighting"]) for c in grid(config)]
    assert combos == [
        ("concat", "none"),
        ("late", "none"),
        ("mean", "none"),
        ("concat", "modality_dropout"),
    ]


def test_all_expands_to_every_installed_name():
    combos = grid(BenchConfig(fusion="all"))
    assert [c["fusion"] for c in combos] == available("fusion")


def test_unknown_name_is_a_clear_error():
    with pytest.raises(ValueError, match=r"unknown fusion \['nope'\]; installed"):
        grid(BenchConfig(fusion=["concat", "nope"]))


def test_bad_settings_name_the_parameter():
    with pytest.raises(ValueError, match="folds must be an integer >= 2, got 1"):
        BenchConfig(folds=1).validate()
    with pytest.raises(ValueError, match="design must be one of"):
        BenchConfig(design="random").validate()


def test_units_cover_every_fold_and_ids_are_stable_and_distinct(toy):
    data = [from_arrays("toy", *toy, {})]
    config = BenchConfig(
        datasets=(), fusion=["concat", "late"], folds=3, repeats=2, references=False
    )
    units = plan(config, data)
    assert len(units) == 2 * 3 * 2
    assert len({u.unit_id for u in units}) == len(units)
    assert [u.unit_id for u in plan(config, data)] == [u.unit_id for u in units]
    for unit in units[:6]:  # each repeat's test folds partition the rows
        assert not set(unit.train) & set(unit.test)
    tests = np.sort(np.concatenate([u.test for u in units[:3]]))
    np.testing.assert_array_equal(tests, np.arange(len(toy[1])))
    # the same fold of two configurations: same split, same seed (a paired comparison)
    concat, late = units[0], units[6]
    assert concat.fold == late.fold and concat.repeat == late.repeat
    np.testing.assert_array_equal(concat.test, late.test)
    assert concat.fit_seed == late.fit_seed
    # anything that changes the numbers changes the id
    longer = plan(
        BenchConfig(
            datasets=(),
            fusion=["concat", "late"],
            folds=3,
            repeats=2,
            max_epochs=11,
            references=False,
        ),
        data,
    )
    assert longer[0].unit_id != units[0].unit_id


def test_quick_suite_has_every_distinct_fusion_and_weighting_once():
    config, dropped = dealias(quick_config())
    combos = grid(config)
    fusions = set(available("fusion")) - set(dropped.get("fusion", {}))
    weightings = set(available("weighting")) - set(dropped.get("weighting", {}))
    assert {c["fusion"] for c in combos} == fusions
    assert {c["weighting"] for c in combos} == weightings
    assert len(combos) == len(fusions) + len(weightings) - 1
    assert len(config.datasets) >= 2  # the cross-data-set ranking appears


class RenamedNoWeighting(Weighting):
    """The plain weighting under another name: an alias the grid must drop."""


class ScaledLoss(Weighting):
    """A weighting that does change training (halves the task loss)."""

    def task_loss(self, output, ctx):
        return 0.5 * super().task_loss(output, ctx)


def test_a_component_that_is_another_under_a_new_name_is_dropped():
    config, dropped = dealias(BenchConfig(weighting=[RenamedNoWeighting, "none", ScaledLoss]))
    assert config.weighting == ["none", ScaledLoss]  # the estimator's default is kept
    assert dropped == {"weighting": {RenamedNoWeighting: "none"}}
    assert [c["weighting"] for c in grid(config)] == ["none", ScaledLoss]


def test_axes_design_pivots_on_the_estimators_defaults_and_all_mixes_with_names():
    config = BenchConfig(
        fusion=["late", "concat", "mean"], weighting=["modality_dropout", "none"], design="axes"
    )
    combos = [(c["fusion"], c["weighting"]) for c in grid(config)]
    assert combos == [
        ("concat", "none"),
        ("late", "none"),
        ("mean", "none"),
        ("concat", "modality_dropout"),
    ]
    assert expand("fusion", ["concat", "all"]) == ["concat"] + [
        f for f in available("fusion") if f != "concat"
    ]


def test_parse_dataset_name_and_sweep():
    assert parse_dataset_name("mfeat:views=fou,kar") == ("mfeat", {"views": ["fou", "kar"]})
    assert parse_dataset_name("nutrimouse:target=genotype") == (
        "nutrimouse",
        {"target": "genotype"},
    )
    assert parse_sweep("gaussian") == Sweep("gaussian")
    assert parse_sweep("gaussian:fou+kar@0,0.5") == Sweep("gaussian", ("fou", "kar"), (0.0, 0.5))


def test_params_may_not_override_the_seed_or_the_grid():
    with pytest.raises(ValueError, match=r"params must not set \['random_state'\]"):
        BenchConfig(params={"random_state": 3}).validate()


def test_lr_is_left_to_the_recommendations_unless_given_or_equal_budget(toy):
    """Default: no lr/optimizer/lr_schedule passed (each method's recommended settings apply);
    ``lr`` given: that lr for all; ``equal_budget``: Adam at one lr, constant, for all."""
    data = [from_arrays("toy", *toy, {})]
    default = plan(BenchConfig(fusion=["concat"]), data)[0].params
    assert not {"lr", "optimizer", "lr_schedule"} & set(default)
    given = plan(BenchConfig(fusion=["concat"], lr=0.003), data)[0].params
    assert given["lr"] == 0.003 and "optimizer" not in given
    equal = plan(BenchConfig(fusion=["concat"], equal_budget=True), data)[0].params
    assert equal["lr"] == 0.01 and equal["optimizer"] == "adam" and equal["lr_schedule"] is None
    equal = plan(BenchConfig(fusion=["concat"], equal_budget=True, lr=0.002), data)[0].params
    assert equal["lr"] == 0.002


def test_planning_a_grid_trains_nothing(toy, monkeypatch):
    """``grid`` and ``plan`` take the axes as given: no probe model is fitted, and an alias
    stays on the axis until :func:`dealias` drops it."""
    from fusekit.bench import aliases
    from fusekit.estimator import FusionClassifier

    fits = []
    monkeypatch.setattr(aliases, "_CACHE", {})
    monkeypatch.setattr(FusionClassifier, "fit", lambda self, *a, **k: fits.append(self))
    config = BenchConfig(datasets=(), weighting=[RenamedNoWeighting, "none"], references=False)
    assert [c["weighting"] for c in grid(config)] == [RenamedNoWeighting, "none"]
    units = plan(config, [from_arrays("toy", *toy, {})])
    assert len(units) == 2 * config.folds
    assert fits == []


def test_a_bench_finds_its_aliases_once(toy, monkeypatch, tmp_path):
    """``run_bench`` fingerprints each candidate of an axis once (not once per look at the grid:
    the check of the names, the pre-flight checks, the plan, the leaderboard's note)."""
    from fusekit.bench import aliases, run_bench

    probed = []
    real = aliases.probe_fingerprint
    monkeypatch.setattr(aliases, "_CACHE", {})
    monkeypatch.setattr(
        aliases, "probe_fingerprint", lambda kind, spec: probed.append(spec) or real(kind, spec)
    )
    result = run_bench(
        data={"toy": toy},
        weighting=[RenamedNoWeighting, "none"],
        folds=2,
        max_epochs=1,
        references=False,
        backend="serial",
        out_dir=tmp_path,
        quiet=True,
    )
    assert sorted(map(str, probed)) == sorted(map(str, ["none", RenamedNoWeighting]))
    assert set(result.results["weighting"]) == {"none"}
    assert "weighting RenamedNoWeighting = none" in result.leaderboard


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('frozen_backbones=["review"]', ["review"]),  # a one-item list, not the text '["review"]'
        ('frozen_backbones=["review", "title"]', ["review", "title"]),
        ("frozen_backbones=review,", ["review"]),
        ("lr=0.5", 0.5),
        ("epochs=3", 3),
        ('backbone={"text": "hashed_text"}', {"text": "hashed_text"}),
        ("fusion=concat", "concat"),
    ],
)
def test_param_values_parse_as_json_lists_objects_numbers_or_text(text, expected):
    from fusekit.bench.cli import parse_param

    key, value = parse_param(text)
    assert (key, value) == (text.split("=", 1)[0], expected)


def test_a_bracket_that_is_not_json_is_refused_with_the_text():
    from fusekit.bench.parsing import parse_value

    with pytest.raises(ValueError, match=r"\['review'.*not JSON"):
        parse_value("['review'")
