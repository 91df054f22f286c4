"""Benchmark result files that their scripts write whole hold no hand-written reading (it lives
in the plugin READMEs, so rerunning a script never destroys it), and each script writes the
closing line that says so."""

from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
GENERATED = {
    "plugins/fusekit-btw/benchmarks/results.md": "plugins/fusekit-btw/benchmarks/btw_claim.py",
    "plugins/fusekit-scfae/benchmarks/results.md": (
        "plugins/fusekit-scfae/benchmarks/reproduction.py"
    ),
    "plugins/fusekit-scfae/benchmarks/lr_sweep.md": "plugins/fusekit-scfae/benchmarks/lr_sweep.py",
    "plugins/fusekit-scfae/benchmarks/paper_schedule.md": (
        "plugins/fusekit-scfae/benchmarks/paper_schedule.py"
    ),
    "plugins/fusekit-scfae/benchmarks/unequal_widths.md": (
        "plugins/fusekit-scfae/benchmarks/unequal_widths.py"
    ),
    "plugins/fusekit-vgmr/benchmarks/identity_results.md": (
        "plugins/fusekit-vgmr/benchmarks/identity_seeds.py"
    ),
    "plugins/fusekit-vgmr/benchmarks/balancing_results.md": (
        "plugins/fusekit-vgmr/benchmarks/balancing_seeds.py"
    ),
    "plugins/fusekit-vgmr/benchmarks/controls_results.md": (
        "plugins/fusekit-vgmr/benchmarks/controls_seeds.py"
    ),
    "plugins/fusekit-mwam/benchmarks/image_results.md": (
        "plugins/fusekit-mwam/benchmarks/image_seeds.py"
    ),
    "plugins/fusekit-mwam/benchmarks/image_paper_results.md": (
        "plugins/fusekit-mwam/benchmarks/image_seeds.py"
    ),
    "plugins/fusekit-mwam/benchmarks/image_paper_lr005_results.md": (
        "plugins/fusekit-mwam/benchmarks/image_seeds.py"
    ),
    "plugins/fusekit-mwam/benchmarks/same_kind_results.md": (
        "plugins/fusekit-mwam/benchmarks/same_kind_seeds.py"
    ),
    "plugins/fusekit-mwam/benchmarks/same_kind_dropout_results.md": (
        "plugins/fusekit-mwam/benchmarks/same_kind_seeds.py"
    ),
    "plugins/fusekit-btw/benchmarks/seeds_results.md": (
        "plugins/fusekit-btw/benchmarks/btw_seeds.py"
    ),
    "plugins/fusekit-btw/benchmarks/seeds_results_clothing.md": (
        "plugins/fusekit-btw/benchmarks/btw_seeds.py"
    ),
    "plugins/fusekit-udml/benchmarks/results/table3_seeds.md": (
        "plugins/fusekit-udml/benchmarks/table3_seeds.py"
    ),
    "benchmarks/results/agm_alpha.md": "benchmarks/balancing/agm_alpha.py",
    "benchmarks/results/balancing_table.md": "benchmarks/balancing/table.py",
    "benchmarks/results/cli_startup.md": "benchmarks/speed/cli_startup.py",
    "benchmarks/results/streaming.md": "benchmarks/speed/streaming.py",
    "benchmarks/text_tabular/results.md": "benchmarks/text_tabular/clothing_reviews.py",
}


@pytest.mark.parametrize("results, script", GENERATED.items())
def test_results_file_is_the_scripts_output_only(results, script):
    text = (ROOT / results).read_text()
    assert "by hand" not in text.lower(), f"{results} holds hand-written text; move it to README"
    source = (ROOT / script).read_text()
    assert Path(results).name in source
    if "lr_sweep" not in script:
        assert "this file is written entirely by" in text.lower()
        assert "this file is written entirely by" in source.lower()
