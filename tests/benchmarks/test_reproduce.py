"""Committed results files are reproducible: each reproduction script's cheapest configuration,
rerun now with the arguments the file records, gives exactly the raw values the file holds.

The expected values are the committed file's own records (written by an earlier, full run of the
script), never the run under test. A results file written before its script recorded raw values
has nothing to compare, and one written on another CPU model need not match to the last digit
(float32 kernels differ between CPUs): the test is skipped then, saying why, and fails instead
when ``FUSEKIT_REPRODUCE_STRICT=1`` (set it on the machine that regenerated every file).
"""

from __future__ import annotations

import contextlib
import io
import os
import runpy
import shlex
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import provenance  # noqa: E402

pytestmark = pytest.mark.reproduce

#: results file -> its script and the ``--only`` filter of its cheapest configuration (one fit,
#: or the one fit plus the reference it cannot run without).
SMOKE = {
    "plugins/fusekit-udml/benchmarks/results/table3_seeds.md": (
        "plugins/fusekit-udml/benchmarks/table3_seeds.py",
        ["seed=0", "weighting=none"],
    ),
    "plugins/fusekit-udml/benchmarks/results/fig1_noise_sweep.md": (
        "plugins/fusekit-udml/benchmarks/fig1_noise_sweep.py",
        ["seed=0", "weighting=none"],
    ),
    "plugins/fusekit-vgmr/benchmarks/balancing_results.md": (
        "plugins/fusekit-vgmr/benchmarks/balancing_seeds.py",
        ["views=fou+kar", "seed=0", "method=none"],
    ),
    "plugins/fusekit-vgmr/benchmarks/identity_results.md": (
        "plugins/fusekit-vgmr/benchmarks/identity_seeds.py",
        ["seed=0", "method=none"],
    ),
    "plugins/fusekit-btw/benchmarks/results.md": (
        "plugins/fusekit-btw/benchmarks/btw_claim.py",
        ["task=synthetic", "fold=0", "fusion=concat", "weighting=none"],
    ),
    "plugins/fusekit-btw/benchmarks/seeds_results.md": (
        "plugins/fusekit-btw/benchmarks/btw_seeds.py",
        ["seed=0", "task=synthetic", "weighting=none"],
    ),
    "plugins/fusekit-btw/benchmarks/seeds_results_clothing.md": (
        "plugins/fusekit-btw/benchmarks/btw_seeds.py",
        ["seed=0", "task=clothing", "weighting=none"],
    ),
    "plugins/fusekit-btw/benchmarks/seeds_results_30.md": (
        "plugins/fusekit-btw/benchmarks/btw_seeds.py",
        ["seed=0", "task=synthetic", "weighting=none"],
    ),
    "plugins/fusekit-mwam/benchmarks/image_results.md": (
        "plugins/fusekit-mwam/benchmarks/image_seeds.py",
        ["seed=0", "case=vector", "method=none"],
    ),
    "plugins/fusekit-mwam/benchmarks/image_paper_results.md": (
        "plugins/fusekit-mwam/benchmarks/image_seeds.py",
        ["seed=0", "case=vector", "method=none"],
    ),
    "plugins/fusekit-mwam/benchmarks/image_paper_lr005_results.md": (
        "plugins/fusekit-mwam/benchmarks/image_seeds.py",
        ["seed=0", "case=vector", "method=none"],
    ),
    "plugins/fusekit-mwam/benchmarks/same_kind_results.md": (
        "plugins/fusekit-mwam/benchmarks/same_kind_seeds.py",
        ["seed=0", "case=halves", "method=none"],
    ),
    "plugins/fusekit-mwam/benchmarks/same_kind_dropout_results.md": (
        "plugins/fusekit-mwam/benchmarks/same_kind_seeds.py",
        ["seed=0", "case=halves", "method=dropout"],
    ),
    "plugins/fusekit-scfae/benchmarks/results.md": (
        "plugins/fusekit-scfae/benchmarks/reproduction.py",
        ["data=unequal", "fold=0", "method=concat"],
    ),
    "plugins/fusekit-scfae/benchmarks/paper_schedule.md": (
        "plugins/fusekit-scfae/benchmarks/paper_schedule.py",
        ["seed=0", "fold=0", "method=concat"],
    ),
    "plugins/fusekit-scfae/benchmarks/lr_sweep.md": (
        "plugins/fusekit-scfae/benchmarks/lr_sweep.py",
        ["seed=0", "fold=0", "preset=linear_proj", "lr=0.01"],
    ),
    "plugins/fusekit-scfae/benchmarks/unequal_widths.md": (
        "plugins/fusekit-scfae/benchmarks/unequal_widths.py",
        ["task=synthetic", "seed=0", "fold=0", "input=pca", "model=concat"],
    ),
    "benchmarks/results/agm_alpha.md": (
        "benchmarks/balancing/agm_alpha.py",
        ["fold=0", "alpha=1.0"],
    ),
    "benchmarks/results/balancing_imbalance_generator.md": (
        "benchmarks/balancing/imbalance_generator.py",
        ["imbalance=8", "seed=0", "weighting=none"],
    ),
    "benchmarks/results/balancing_table.md": (
        "benchmarks/balancing/table.py",
        ["data=generator", "fold=0", "method=none"],
    ),
    "benchmarks/results/balancing_uci.md": (
        "benchmarks/balancing/uci_weightings.py",
        ["weighting=none", "fold=0"],
    ),
    "plugins/fusekit-vgmr/benchmarks/controls_results.md": (
        "plugins/fusekit-vgmr/benchmarks/controls_seeds.py",
        ["seed=0", "model=concat"],
    ),
    "benchmarks/text_tabular/results.md": (
        "benchmarks/text_tabular/clothing_reviews.py",
        ["fold=1", "config=ref_logistic"],
    ),
    "plugins/fusekit-vgmr/benchmarks/results.md": (
        "plugins/fusekit-vgmr/benchmarks/reproduce.py",
        ["dataset=basic_motions", "fold=0", "model=concat"],
    ),
    "plugins/fusekit-mwam/benchmarks/RESULTS.md": (
        "plugins/fusekit-mwam/benchmarks/missing_modality.py",
        ["dataset=basic_motions", "fold=0", "optimizer=sgd", "weighting=none"],
    ),
    "benchmarks/results/weightings_noisy_modality.md": (
        "benchmarks/weightings_noisy_modality.py",
        ["noise=1", "weighting=none", "seed=0"],
    ),
}


def recorded_arguments(text: str, script: str) -> list[str]:
    """The arguments of the file's ``command:`` line, without ``--out`` (a test never writes a
    committed file)."""
    line = next(
        (l for l in text.splitlines() if l.lstrip("- `").startswith("command: python ")), None
    )
    assert line is not None, f"no 'command: python ...' line in the results file of {script}"
    words = shlex.split(line.split("command: python ", 1)[1].strip("` "))
    assert words[0] == script, f"the file says it was written by {words[0]}, not {script}"
    arguments, skip = [], False
    for word in words[1:]:
        if skip:
            skip = False
        elif word == "--out":
            skip = True
        elif not word.startswith("--out="):
            arguments.append(word)
    return arguments


def run_script(script: str, arguments: list[str]) -> str:
    """Run a script in this process (its imports are already paid for) and return its stdout."""
    argv, path, threads = sys.argv, list(sys.path), torch.get_num_threads()
    sys.argv = [str(ROOT / script), *arguments]
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            runpy.run_path(str(ROOT / script), run_name="__main__")
    finally:
        sys.argv, sys.path[:] = argv, path
        torch.set_num_threads(threads)
    return out.getvalue()


@pytest.mark.parametrize("results", list(SMOKE))
def test_cheapest_configuration_gives_the_committed_values(results):
    script, only = SMOKE[results]
    text = (ROOT / results).read_text(encoding="utf-8")
    committed = provenance.parse_records(text)
    lines = [line.lstrip("- ") for line in text.splitlines()]
    machine = next((line for line in lines if line.startswith("machine: ")), "")
    here = provenance.machine_id()
    if not committed:
        _skip(f"{results} holds no raw records: regenerate it (make reproduce)")
    elif not machine.startswith(f"machine: {here},"):
        _skip(f"{results} was written on another CPU ({machine!r}); this one is {here}")
    arguments = recorded_arguments(text, script)
    output = run_script(script, [*arguments, *(f"--only={pair}" for pair in only)])
    rerun = provenance.parse_records(output)
    assert rerun, f"--only {only} matched no run of {script}"
    for line in rerun:
        config = " ".join(w for w in line.split() if w.split("=")[0] in _config_keys(only, line))
        same_config = [c for c in committed if c.startswith(config + " ")]
        assert same_config, f"{results} has no record for {config!r}"
        assert line in committed, (
            f"{results}: the rerun of {config!r} differs from the committed record\n"
            f"  committed: {same_config[0]}\n  rerun:     {line}"
        )


def _skip(message: str) -> None:
    if os.environ.get("FUSEKIT_REPRODUCE_STRICT") == "1":
        pytest.fail(message)
    pytest.skip(message)


def _config_keys(only: list[str], line: str) -> set[str]:
    """The configuration keys of a record: those before its first measured value, i.e. the keys
    the filter names plus any that precede the last of them."""
    keys = [w.split("=")[0] for w in line.split()]
    named = {pair.split("=")[0] for pair in only}
    last = max(i for i, key in enumerate(keys) if key in named)
    return set(keys[: last + 1])


def test_only_filter_and_records_round_trip():
    """The filter keeps a run whose named keys match (as strings) and ignores keys the run does
    not have; a block of records parses back to its lines."""
    only = provenance.Only(["seed=0", "method=none"])
    assert only.keeps(seed=0, method="none", views="fou+kar")
    assert not only.keeps(seed=1, method="none")
    assert only.keeps(seed=0)  # the outer loop of a script knows no method yet
    with pytest.raises(ValueError, match="KEY=VALUE"):
        provenance.Only(["seed"])
    records = provenance.Records()
    records.add({"seed": 0, "alpha": 2.5}, acc_0=0.9575, stable=True)
    text = "\n".join(["# title", "| a | b |", *records.block(), ""])
    assert provenance.parse_records(text) == ["seed=0 alpha=2.5 acc_0=0.957500 stable=True"]
    assert provenance.Only(["alpha=2.5"]).keeps(alpha=2.5)  # the record's string, matched
    with pytest.raises(ValueError, match="no spaces"):
        records.add({"method": "vgmr + concat"}, acc=1.0)
