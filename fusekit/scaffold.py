"""``fusekit new-plugin NAME --kind KIND``: write a ready-to-install plugin distribution.

The generated package implements a small, correct method of its kind (so its tests pass at once),
a docstring template for the paper, equations and shapes, the entry point, and a test file that
runs :mod:`fusekit.testing`'s contract checks.
"""

from __future__ import annotations

import keyword
import re
from pathlib import Path

from fusekit.plugin import COMPONENT_KINDS, KINDS

#: The hook of each kind a plugin can be generated for (the network components).
HOOKS = {kind: KINDS[kind].hook for kind in COMPONENT_KINDS}

PYPROJECT = """\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "fusekit-{dist}"
version = "0.1.0"
description = "{title}: a {kind} plugin for fusekit."
requires-python = ">=3.10"
dependencies = ["fusekit-learn"]

[project.entry-points.fusekit]
{name} = "{package}"

[tool.setuptools]
package-dir = {{"" = "."}}  # a plain .pth editable install (no meta-path finder, no warning)

[tool.setuptools.packages.find]
include = ["{package}*"]
"""

README = """\
# fusekit-{dist}

A `{kind}` plugin for [fusekit](https://pypi.org/project/fusekit-learn/), registered as `{name}`.

```bash
pip install -e .
fusekit plugins --kind {kind}          # lists '{name}'
pytest tests                           # runs the fusekit contract checks
```

```python
from fusekit import FusionClassifier
FusionClassifier({kind}="{name}").fit(X, y)
```

Replace the method in `{package}/__init__.py` with yours: keep the docstring's paper, equations
and shapes up to date, keep hyperparameters in `__init__` only and declare what each may be in
`parameter_constraints` (fusekit checks them when it resolves the {kind}, before `build`), build
layers in `build`.
"""

HEADER = '''\
"""{title}.

TODO: Authors, "Paper title", Venue Year.

Implements (equation numbers as in the paper):
{equations}
Mask rule: {mask_rule}
"""

from __future__ import annotations

{imports}

'''

BODIES = {
    "fusion": (
        "    z = Σ_m mask_m · W_m v_m / max(1, Σ_m mask_m),  v_m = as_vector(h_m)   (B, width)\n",
        "absent modalities are excluded from the mean; no modality present gives zeros.",
        '''\
class {cls}(Fusion):
    """Mean of per-modality projections over the present modalities."""

    parameter_constraints = {{"width": [Interval(Integral, 1, None, closed="left")]}}

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.width = width

    def build(self, spec: BuildSpec) -> int:
        self.projections = nn.ModuleDict(
            {{m: nn.Linear(vector_size(s), self.width) for m, s in spec.feature_shapes.items()}}
        )
        return self.width

    def forward(self, features: dict[str, Tensor], mask: Tensor, output: FusionOutput) -> Tensor:
        projected = torch.stack(
            [self.projections[m](as_vector(h, output.steps.get(m))) for m, h in features.items()],
            dim=1,
        )  # (B, M, width)
        weights = mask.unsqueeze(-1).to(projected.dtype)  # (B, M, 1)
        return (projected * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)  # (B, width)
''',
    ),
    "backbone": (
        "    h = ReLU(W x + b)   (B, d) -> (B, width);  (B, T, d) -> (B, T, width) per step\n",
        "the network zeroes absent rows after the backbone; nothing to do here.",
        '''\
class {cls}(Backbone):
    """One linear layer with ReLU, per time step for sequences."""

    input_kinds = ("vector", "sequence")
    parameter_constraints = {{"width": [Interval(Integral, 1, None, closed="left")]}}

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.width = width

    def build(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        self.layer = nn.Sequential(nn.Linear(input_shape[-1], self.width), nn.ReLU())
        return (*input_shape[:-1], self.width)

    def forward(self, x: Tensor) -> Tensor:  # (B, [T,] d) -> (B, [T,] width)
        return self.layer(x)
''',
    ),
    "calibration": (
        "    c_m = mean_{o ≠ m, present} P_o v_o   (B, dim)\n"
        "    h'_m = h_m ⊙ 2·sigmoid(G_m c_m)          (B, [T,] D_m), gate 1 when no context\n",
        "context uses present modalities only; absent modalities stay zero.",
        '''\
class {cls}(Calibration):
    """Gate each modality's channels with a context from the other present modalities."""

    parameter_constraints = {{"dim": [Interval(Integral, 1, None, closed="left")]}}

    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.dim = dim

    def build(self, spec: BuildSpec) -> None:
        self.context = nn.ModuleDict(
            {{m: nn.Linear(vector_size(s), self.dim) for m, s in spec.feature_shapes.items()}}
        )
        self.gates = nn.ModuleDict(
            {{m: nn.Linear(self.dim, s[-1] if len(s) < 3 else s[0])
             for m, s in spec.feature_shapes.items()}}
        )
        for gate in self.gates.values():
            nn.init.zeros_(gate.weight)
            nn.init.zeros_(gate.bias)

    def forward(
        self, features: dict[str, Tensor], mask: Tensor, output: FusionOutput
    ) -> dict[str, Tensor]:
        names = list(features)
        summaries = torch.stack(
            [self.context[m](as_vector(h, output.steps.get(m))) for m, h in features.items()], 1
        )  # (B, M, dim)
        present = mask.unsqueeze(-1).to(summaries.dtype)  # (B, M, 1)
        total = (summaries * present).sum(dim=1, keepdim=True)  # (B, 1, dim)
        others = (total - summaries * present) / (present.sum(1, keepdim=True) - present).clamp(
            min=1.0
        )  # (B, M, dim): mean over the other present modalities
        calibrated = {{}}
        for i, m in enumerate(names):
            gate = 2 * torch.sigmoid(self.gates[m](others[:, i]))  # (B, D_m)
            h = features[m]
            shape = (h.shape[0], 1, h.shape[-1]) if h.dim() == 3 else (h.shape[0], -1, 1, 1)
            gate = gate.reshape(shape) if h.dim() != 2 else gate
            calibrated[m] = h * gate * expand_mask(present[:, i, 0], h)
        return calibrated
''',
    ),
    "weighting": (
        "    w = softmax(θ / T) (M,), renormalised over present modalities;\n"
        "    h'_m = (Σ_o mask_o) · w_m · h_m   (learned global modality weights)\n",
        "weights are renormalised over the present modalities of each sample.",
        '''\
class {cls}(Weighting):
    """Learned global modality weights, renormalised over present modalities."""

    parameter_constraints = {{"temperature": [Interval(Real, 0, None, closed="neither")]}}

    def __init__(self, temperature: float = 1.0) -> None:
        super().__init__()
        self.temperature = temperature

    def build(self, spec: BuildSpec) -> None:
        self.logits = nn.Parameter(torch.zeros(len(spec.names)))

    def reweight(
        self, features: dict[str, Tensor], mask: Tensor, output: FusionOutput
    ) -> dict[str, Tensor]:
        weights = torch.softmax(self.logits / self.temperature, dim=0) * mask  # (B, M)
        weights = weights / weights.sum(dim=1, keepdim=True).clamp(min=1e-12)
        output.modality_weights = weights
        scale = weights * mask.sum(dim=1, keepdim=True)  # (B, M), 1 each when uniform
        return {{
            m: h * expand_mask(scale[:, i], h)
            for i, (m, h) in enumerate(features.items())
        }}
''',
    ),
}

FOOTER = """

@hookimpl
def {hook}() -> dict[str, type]:
    return {{"{name}": {cls}}}
"""

TEST = '''\
"""fusekit's contract checks on {name}, plus a run inside GridSearchCV."""

import numpy as np
import pytest
import torch
from fusekit import FusionClassifier, Modalities
from fusekit.testing import parametrize_with_checks
from sklearn.model_selection import GridSearchCV


@parametrize_with_checks("{kind}", ["{name}"])
def test_contract(plugin, check):
    check(plugin)


def test_grid_search_finds_it_by_name():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 90)
    X = Modalities(a=rng.normal(size=(90, 4)) + y[:, None], b=rng.normal(size=(90, 3)))
    grid = {{"{kind}": ["{default}", "{name}"]}}
    search = GridSearchCV(FusionClassifier(max_epochs=3), grid, cv=2)
    search.fit(X, y)
    assert len(search.cv_results_["params"]) == 2


def test_a_bad_parameter_is_refused_by_name_at_fit():
    rng = np.random.default_rng(0)
    X, y = Modalities(a=rng.normal(size=(20, 4)), b=rng.normal(size=(20, 3))), np.arange(20) % 2
    model = FusionClassifier({kind}="{name}", {kind}__{parameter}={bad!r})
    with pytest.raises(ValueError, match="The '{parameter}' parameter of {kind}"):
        model.fit(X, y)  # parameter_constraints, checked before anything is built
'''

CONFTEST = '''\
"""Test set-up: one torch thread, and fusekit's ``seeded`` mark and ``train_seed`` fixture.

The contract checks that train a model carry the ``seeded`` mark (``FUSEKIT_TEST_SEED=3 pytest
-m seeded`` reruns them under another seed); this registers it unless a conftest above did.
"""

import pytest
import torch

torch.set_num_threads(1)

SEEDS_PLUGIN = "fusekit.testing.seeds"


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin(SEEDS_PLUGIN):
        config.pluginmanager.import_plugin(SEEDS_PLUGIN)
'''

# Everything a plugin needs is in fusekit.plugin (the contract); plugins import nothing else.
IMPORTS = {
    "fusion": "from numbers import Integral\n\n"
    "import torch\n"
    "from fusekit.plugin import BuildSpec, Fusion, FusionOutput, Interval, as_vector, hookimpl\n"
    "from fusekit.plugin import vector_size\n"
    "from torch import Tensor, nn",
    "backbone": "from numbers import Integral\n\n"
    "from fusekit.plugin import Backbone, Interval, hookimpl\nfrom torch import Tensor, nn",
    "calibration": "from numbers import Integral\n\n"
    "import torch\n"
    "from fusekit.plugin import BuildSpec, Calibration, FusionOutput, Interval, as_vector\n"
    "from fusekit.plugin import expand_mask, hookimpl, vector_size\n"
    "from torch import Tensor, nn",
    "weighting": "from numbers import Real\n\n"
    "import torch\n"
    "from fusekit.plugin import BuildSpec, FusionOutput, Interval, Weighting, expand_mask\n"
    "from fusekit.plugin import hookimpl\n"
    "from torch import Tensor, nn",
}

#: A parameter of each template and a value its declaration refuses (the generated test's).
BAD_PARAMETER = {
    "fusion": ("width", 0),
    "backbone": ("width", 0),
    "calibration": ("dim", 0),
    "weighting": ("temperature", 0.0),
}

DEFAULTS = {kind: KINDS[kind].default for kind in COMPONENT_KINDS}


def _identifier(name: str) -> str:
    identifier = re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower()
    if not identifier or identifier[0].isdigit() or keyword.iskeyword(identifier):
        raise ValueError(
            f"plugin name {name!r} does not make a Python identifier; use letters, digits, '-' "
            "or '_', starting with a letter."
        )
    if not re.fullmatch(r"[a-z][a-z0-9]*(?:[_-][a-z0-9]+)*", name):
        raise ValueError(
            f"plugin name {name!r} must be lower-case letters and digits separated by '_' or '-' "
            f"(it names the distribution fusekit-NAME and the package fusekit_NAME as given); "
            f"did you mean {identifier!r}?"
        )
    return identifier


def new_plugin(name: str, kind: str, directory: Path | str = ".") -> Path:
    """Write ``fusekit-NAME/`` under ``directory`` and return its path."""
    if kind not in COMPONENT_KINDS:
        raise ValueError(f"kind must be one of {COMPONENT_KINDS}, got {kind!r}")
    method = _identifier(name)
    dist = method.replace("_", "-")
    package = f"fusekit_{method}"
    cls = "".join(part.title() for part in method.split("_")) + kind.title()
    title = " ".join(part.title() for part in method.split("_")) + f" {kind}"
    root = Path(directory) / f"fusekit-{dist}"
    if root.exists():
        raise FileExistsError(f"{root} exists; choose another name or directory")
    equations, mask_rule, body = BODIES[kind]
    module = (
        HEADER.format(title=title, equations=equations, mask_rule=mask_rule, imports=IMPORTS[kind])
        + "\n"
        + body.format(cls=cls)
        + FOOTER.format(hook=HOOKS[kind], name=method, cls=cls)
    )
    (root / package).mkdir(parents=True)
    (root / "tests").mkdir()
    (root / package / "__init__.py").write_text(module)
    (root / "pyproject.toml").write_text(
        PYPROJECT.format(dist=dist, title=title, kind=kind, name=method, package=package)
    )
    (root / "README.md").write_text(
        README.format(dist=dist, kind=kind, name=method, package=package)
    )
    (root / "tests" / "conftest.py").write_text(CONFTEST)
    (root / "tests" / f"test_{method}.py").write_text(
        TEST.format(
            kind=kind,
            name=method,
            default=DEFAULTS[kind],
            parameter=BAD_PARAMETER[kind][0],
            bad=BAD_PARAMETER[kind][1],
        )
    )
    return root
