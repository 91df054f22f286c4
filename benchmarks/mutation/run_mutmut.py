"""Mutation testing of the equation code (balancing baselines, seed plugins), one module at a time.

For each module this writes a throw-away ``setup.cfg`` ([mutmut] section: the module to mutate and
only that module's test file), runs ``mutmut run`` (tests with ``-p no:xdist``), and prints the
score (killed / survived / total) and the diff of every surviving mutant. ``mutants/`` and the
``setup.cfg`` are removed afterwards (both are in .gitignore).

    .venv/bin/python benchmarks/mutation/run_mutmut.py agm ogm_ge      # some modules
    .venv/bin/python benchmarks/mutation/run_mutmut.py scfae udml mwam btw   # seed equations
    .venv/bin/python benchmarks/mutation/run_mutmut.py plugin_helpers   # fusekit/plugin helpers
    .venv/bin/python benchmarks/mutation/run_mutmut.py udml_noise scfae_diagnostics btw_reference
    .venv/bin/python benchmarks/mutation/run_mutmut.py                 # all of them

The report is ``benchmarks/results/mutation.md`` (written by hand from this output).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MUTMUT = str(ROOT / ".venv" / "bin" / "mutmut")

#: module -> (directory mutmut runs in, package dir copied, file mutated, test file(s))
BUILTIN = {
    "agm": ("agm_weighting", "tests/builtin/weightings/test_agm.py"),
    "ogm_ge": ("ogm_ge_weighting", "tests/builtin/weightings/test_ogm_ge.py"),
    "pmr": ("pmr_weighting", "tests/builtin/weightings/test_pmr.py"),
    "qmf": ("qmf_weighting", "tests/builtin/weightings/test_qmf.py"),
    "tmc": ("tmc_weighting", "tests/builtin/weightings/test_tmc.py"),
    "gradient_blending": (
        "gradient_blending_weighting",
        "tests/builtin/weightings/test_gradient_blending.py",
    ),
    "mmpareto": ("mmpareto_weighting", "tests/builtin/weightings/test_mmpareto.py"),
    "mla": ("mla_weighting", "tests/builtin/weightings/test_mla.py"),
    "energy": ("energy_weighting", "tests/builtin/weightings/test_energy.py"),
    "prob_embedding": (
        "prob_embedding_weighting",
        "tests/builtin/weightings/test_prob_embedding.py",
    ),
    "unimodal_aux": ("unimodal_aux_weighting", "tests/builtin/weightings/test_unimodal_aux.py"),
    "static": ("static_weighting", "tests/builtin/weightings/test_static.py"),
    "modality_dropout": ("modality_dropout", "tests/builtin/weightings/test_modality_dropout.py"),
    "amco": ("amco_weighting", "tests/builtin/weightings/test_amco.py"),
    "mbsd": ("mbsd_weighting", "tests/builtin/weightings/test_mbsd.py"),
    "lfm": ("lfm_weighting", "tests/builtin/weightings/test_lfm.py"),
    "reconboost": ("reconboost_weighting", "tests/builtin/weightings/test_reconboost.py"),
    "sample_valuation": (
        "sample_valuation_weighting",
        "tests/builtin/weightings/test_sample_valuation.py",
    ),
    "arl": ("arl_weighting", "tests/builtin/weightings/test_arl.py"),
}
MODULES = {
    name: (ROOT, "fusekit", f"fusekit/builtin/{module}.py", [tests])
    for name, (module, tests) in BUILTIN.items()
}
VGMR = ROOT / "plugins" / "fusekit-vgmr"
MODULES["vgmr"] = (
    VGMR,
    "fusekit_vgmr",
    "fusekit_vgmr/*.py",
    [
        "tests/test_vgmr_equations.py",
        "tests/test_vgmr_reference.py",
        "tests/test_vgmr_objective.py",
    ],
)

#: seed plugin -> (package, equation file(s) mutated, the tests of those files)
SEEDS = {
    "scfae": ("fusekit_scfae", ["fusekit_scfae/loss.py"], ["tests/test_scfae_loss.py"]),
    "udml": ("fusekit_udml", ["fusekit_udml/equations.py"], ["tests/test_udml_equations.py"]),
    "mwam": (
        "fusekit_mwam",
        ["fusekit_mwam/frm.py", "fusekit_mwam/allocation.py"],
        ["tests/test_mwam_frm.py", "tests/test_mwam_allocation.py"],
    ),
    "btw": ("fusekit_btw", ["fusekit_btw/equations.py"], ["tests/test_btw_equations.py"]),
}
for name, (package, files, tests) in SEEDS.items():
    MODULES[name] = (ROOT / "plugins" / f"fusekit-{name}", package, files, tests)

#: seed plugin modules that wire the equations into training -> (plugin, package, files, tests);
#: only fast tests (unit / equation / shape, no long training): mutmut reruns them per mutant
WIRING_MB = {
    "mwam_wiring": (
        "mwam",
        "fusekit_mwam",
        ["fusekit_mwam/weighting.py", "fusekit_mwam/dct.py"],
        [
            "tests/test_mwam_dct.py",
            "tests/test_mwam_frm.py",
            "tests/test_mwam_allocation.py",
            "tests/test_mwam_training.py",
            "tests/test_mwam_wiring.py",
        ],
    ),
    "btw_wiring": (
        "btw",
        "fusekit_btw",
        ["fusekit_btw/weighting.py", "fusekit_btw/moe_fusion.py"],
        ["tests/test_btw_wiring.py"]
        + [
            f"tests/test_btw_moe_fusion.py::{test}"
            for test in (
                "test_registered_as_moe",
                "test_each_token_uses_exactly_top_k_experts_with_gates_summing_to_one",
                "test_width_and_absent_tokens_are_zero_and_ignored",
                "test_balance_loss_added_in_training_only",
                "test_bad_parameters_raise",
                "test_fusion_contract",
            )
        ]
        + [
            f"tests/test_btw_weighting.py::{test}"
            for test in (
                "test_registered_as_btw_and_btw_local",
                "test_btw_adds_no_trainable_parameters",
                "test_multi_output_regressor_with_30_percent_missing",
                "test_stored_weights_are_the_recomputed_weights_when_alpha_is_one",
                "test_mi_weights_downweight_the_noise_modality",
                "test_weights_scale_the_embeddings_exactly_and_zero_weight_isolates",
                "test_alpha_moves_by_exactly_one_step_per_update",
                "test_predict_reads_no_label_and_is_row_independent",
                "test_predict_weights_modes",
                "test_same_seed_gives_identical_weights_and_predictions",
                "test_bad_parameters_raise_a_clear_error",
                "test_fitted_model_pickles_with_its_unimodal_models",
            )
        ],
    ),
}
for name, (plugin, package, files, tests) in WIRING_MB.items():
    MODULES[name] = (ROOT / "plugins" / f"fusekit-{plugin}", package, files, tests)

#: seed-plugin wiring (the modules that put the equations into training) -> (plugin directory,
#: package, file(s) mutated, fast tests of those files: unit, shape, gradient-routing, short fits)
WIRING_SU = {
    "scfae_fusion": (
        "fusekit-scfae",
        "fusekit_scfae",
        ["fusekit_scfae/fusion.py", "fusekit_scfae/blocks.py"],
        [
            "tests/test_scfae_shapes.py",
            "tests/test_scfae_missing.py",
            "tests/test_scfae_loss.py",
            "tests/test_scfae_wiring.py",
        ],
    ),
    "udml_weighting": (
        "fusekit-udml",
        "fusekit_udml",
        ["fusekit_udml/weighting.py"],
        ["tests/test_udml_weighting.py", "tests/test_udml_wiring.py"],
    ),
}
for name, (plugin, package, files, tests) in WIRING_SU.items():
    MODULES[name] = (ROOT / "plugins" / plugin, package, files, tests)

#: the fusekit/plugin helpers the weightings' equations call (mask-aware reductions, unimodal-head
#: losses, pooling, LossContext's sample weighting) -> (files mutated, their fast unit tests)
PLUGIN_HELPERS = {
    "plugin_helpers": (
        [
            "fusekit/plugin/masks.py",
            "fusekit/plugin/unimodal.py",
            "fusekit/plugin/nn.py",
            "fusekit/plugin/context.py",
        ],
        ["tests/plugin"],
    ),
}
for name, (files, tests) in PLUGIN_HELPERS.items():
    MODULES[name] = (ROOT, "fusekit", files, tests)

#: the seed plugins' remaining modules (UDML's Table 3 perturbation noise, SCFAE's Fig. 4 / Table 7
#: gradient diagnostics, BTW's unimodal reference models of Eqs. 1-3) -> (plugin, package, files,
#: fast tests: each file runs in a few seconds)
SEED_REST = {
    "udml_noise": (
        "udml",
        "fusekit_udml",
        ["fusekit_udml/noise.py"],
        [
            "tests/test_udml_noise.py",
            "tests/test_udml_wiring.py",
            "tests/test_udml_weighting.py::"
            "test_noise_std_is_level_times_noise_scale_times_the_feature_std",
        ],
    ),
    "scfae_diagnostics": (
        "scfae",
        "fusekit_scfae",
        ["fusekit_scfae/diagnostics.py"],
        [
            "tests/test_scfae_diagnostics.py",
            "tests/test_scfae_wiring.py",
            "tests/test_scfae_estimator.py::test_gradient_cosine_flips_sign_with_the_auxiliary_loss",
        ],
    ),
    "btw_reference": (
        "btw",
        "fusekit_btw",
        ["fusekit_btw/reference.py"],
        ["tests/test_btw_reference.py", "tests/test_btw_wiring.py"],
    ),
}
for name, (plugin, package, files, tests) in SEED_REST.items():
    MODULES[name] = (ROOT / "plugins" / f"fusekit-{plugin}", package, files, tests)

CONFIG = """[mutmut]
source_paths={source}
only_mutate=
{mutate}
also_copy=
{copy}
pytest_add_cli_args=-p no:xdist -p no:cacheprovider -q
pytest_add_cli_args_test_selection=
{tests}
"""


def indent(lines: list[str]) -> str:
    return "\n".join(f"    {line}" for line in lines)


def run(name: str) -> None:
    where, source, mutate, tests = MODULES[name]
    copy = (
        ["tests", "conftest.py", "pyproject.toml"] if where == ROOT else ["tests", "pyproject.toml"]
    )
    cfg = where / "setup.cfg"
    cfg.write_text(
        CONFIG.format(
            source=source,
            mutate=indent([mutate] if isinstance(mutate, str) else mutate),
            copy=indent(copy),
            tests=indent(tests),
        )
    )
    shutil.rmtree(where / "mutants", ignore_errors=True)
    try:
        subprocess.run([MUTMUT, "run"], cwd=where, check=False, capture_output=True)
        listing = subprocess.run(
            [MUTMUT, "results", "--all", "true"], cwd=where, capture_output=True, text=True
        ).stdout
        statuses = re.findall(r"^\s*(\S+): (\S+)", listing, flags=re.M)
        counts: dict[str, int] = {}
        for _, status in statuses:
            counts[status] = counts.get(status, 0) + 1
        print(
            f"## {name}: {counts.get('killed', 0)} killed / {counts.get('survived', 0)} "
            f"survived / {len(statuses)} total  {counts}"
        )
        for mutant, status in statuses:
            if status == "killed":
                continue
            diff = subprocess.run(
                [MUTMUT, "show", mutant], cwd=where, capture_output=True, text=True
            ).stdout
            changed = [
                line
                for line in diff.splitlines()
                if line[:1] in "+-" and not line.startswith(("+++", "---"))
            ]
            print(f"- `{mutant}` ({status})")
            for line in changed:
                print(f"      {line.strip()}")
    finally:
        cfg.unlink(missing_ok=True)
        shutil.rmtree(where / "mutants", ignore_errors=True)


if __name__ == "__main__":
    for name in sys.argv[1:] or list(MODULES):
        run(name)
