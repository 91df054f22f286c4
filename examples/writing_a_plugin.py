"""Writing a plugin: a new fusion method in thirty lines, checked and grid-searched.

    python examples/writing_a_plugin.py            # full run, every contract check (about 10 s)
    python examples/writing_a_plugin.py --quick    # a few seconds (also FUSEKIT_EXAMPLES_QUICK=1)

A fusion method is a ``fusekit.Fusion`` subclass: hyperparameters stored in ``__init__`` (nothing
else, as in scikit-learn), layers created in ``build`` once the shapes are known, and ``forward``
combining ``{modality: features}`` with the ``(B, M)`` presence mask. A class can be passed
straight to the estimator (``fusion=HadamardFusion``); to make it available *by name*
(``fusion="hadamard"``, ``fusekit plugins``, ``fusekit bench``) ship it as a distribution with an
entry point, as shown at the bottom of this file. ``fusekit new-plugin NAME --kind fusion``
writes such a distribution for you; the full guide is ``docs/plugins.md``.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from _quick import example_parser
from sklearn.model_selection import GridSearchCV
from torch import Tensor, nn

from fusekit import FusionClassifier
from fusekit.datasets import make_multimodal_classification
from fusekit.plugin import BuildSpec, Fusion, FusionOutput, as_vector, hookimpl, vector_size
from fusekit.testing import check_fusion
from fusekit.testing.checks import check_absent_finite, check_absent_invariance


class HadamardFusion(Fusion):
    """Element-wise product of tanh projections of the present modalities (multiplicative fusion).

    In the spirit of multiplicative interactions (Jayakumar et al., ICLR 2020):
    p_m = tanh(W_m v_m + b_m) ``(B, dim)``, z = Π_m [mask_m · p_m + (1 − mask_m)] ``(B, dim)``.
    An absent modality contributes the factor 1 (the identity of the product), so its values can
    never reach the output; a sample with nothing present gets z = 1.
    """

    def __init__(self, dim: int = 32) -> None:
        super().__init__()
        self.dim = dim  # stored untouched; validated in build (sklearn style)

    def build(self, spec: BuildSpec) -> int:
        if not (isinstance(self.dim, int) and self.dim > 0):
            raise ValueError(f"HadamardFusion: dim must be a positive int, got {self.dim!r}.")
        self.projections = nn.ModuleDict(
            {m: nn.Linear(vector_size(shape), self.dim) for m, shape in spec.feature_shapes.items()}
        )
        return self.dim  # the width of the fused vector; the shared head is built on it

    def forward(self, features: dict[str, Tensor], mask: Tensor, output: FusionOutput) -> Tensor:
        fused = torch.ones(mask.shape[0], self.dim, device=mask.device)  # (B, dim)
        for position, (m, h) in enumerate(features.items()):  # features in mask-column order
            projected = torch.tanh(self.projections[m](as_vector(h, output.steps.get(m))))
            present = mask[:, position : position + 1]  # (B, 1) bool
            fused = fused * torch.where(present, projected, torch.ones_like(projected))
        return fused  # (B, dim)


def parse_args() -> argparse.Namespace:
    parser = example_parser(
        __doc__.splitlines()[0],
        "a few contract checks, small data and few epochs, for the test suite",
    )
    return parser.parse_args()


def main(quick: bool) -> None:
    # 1. The contract: fusekit.testing checks every promise a fusion makes (shapes, absent
    #    modalities, gradients, determinism, clone/pickle/GridSearchCV, beats chance).
    if quick:  # the two missing-modality checks only
        check_absent_finite("fusion", HadamardFusion)
        check_absent_invariance("fusion", HadamardFusion)
        print("HadamardFusion passes the missing-modality contract checks")
    else:
        check_fusion(HadamardFusion)
        print("HadamardFusion passes every fusion contract check")

    # 2. Use the class like any built-in: as a class, an unbuilt instance, with nested params.
    X, y = make_multimodal_classification(
        n_samples=200 if quick else 600,
        n_features=[8, 12, 6],
        n_classes=3,
        missing_rate=0.2,  # 20 % of each modality absent (all-NaN rows)
        random_state=0,
    )
    search = GridSearchCV(
        FusionClassifier(max_epochs=3 if quick else 30, random_state=0),
        {"fusion": [HadamardFusion, HadamardFusion(dim=8), "concat"]},
        cv=2 if quick else 3,
    ).fit(X, y)
    results = search.cv_results_
    for params, score in zip(results["params"], results["mean_test_score"], strict=True):
        fusion = params["fusion"]
        label = fusion.__name__ if isinstance(fusion, type) else str(fusion)
        print(f"fusion={label:24s} cv accuracy {score:.3f}")
    model = FusionClassifier(fusion=HadamardFusion, fusion__dim=16, max_epochs=2, random_state=0)
    print("nested parameter reached the class:", model.fit(X, y).module_.fusion.dim)
    print("finite on a sample with nothing present:", bool(np.isfinite(
        model.predict_proba({m: np.full((1, *x.shape[1:]), np.nan) for m, x in X.items()})
    ).all()))  # fmt: skip


# 3. Registering the method by name: put the class in a package (say ``fusekit_hadamard``),
#    add a hook implementation there ...
@hookimpl
def fusekit_fusions() -> dict[str, type]:
    return {"hadamard": HadamardFusion}


# ... and declare the module in the package's pyproject.toml:
#
#     [project]
#     name = "fusekit-hadamard"
#     dependencies = ["fusekit-learn"]   # the distribution providing `fusekit`
#
#     [project.entry-points.fusekit]
#     hadamard = "fusekit_hadamard"      # the module holding the @hookimpl functions
#
# After ``pip install -e .`` the method works by name everywhere:
#     FusionClassifier(fusion="hadamard", fusion__dim=16)
#     GridSearchCV(FusionClassifier(), {"fusion": ["concat", "hadamard"]})
#     fusekit plugins --kind fusion        # lists hadamard and its distribution
# and its tests can reuse the contract checks:
#     @fusekit.testing.parametrize_with_checks("fusion", ["hadamard"])
#     def test_contract(plugin, check): check(plugin)
# plugins/fusekit-example/ in the fusekit repository is a complete distribution of this shape.

if __name__ == "__main__":
    main(parse_args().quick)
