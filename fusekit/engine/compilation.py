"""``torch.compile`` for the estimators' ``compile`` parameter and its ``compile__*`` options.

The network is compiled in place (``nn.Module.compile``): calling it runs the compiled forward
pass, for training, validation and prediction, while the module stays the plain
:class:`~fusekit.engine.network.FusionNetwork`: its ``state_dict`` has no ``_orig_mod.`` prefix
(a saved model loads with ``compile`` on or off), and its deep copies and pickles (warm starts,
``NetworkView.copy``, ``clone``) drop the compiled code and are compiled again where used.
Compilation happens at the first call, so building, saving and loading cost nothing extra.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import torch
from sklearn.utils._param_validation import StrOptions, validate_parameter_constraints

PREFIX = "compile__"
#: The keyword arguments of ``torch.compile`` (``compile__<name>`` passes one).
OPTION_NAMES = tuple(
    name for name in inspect.signature(torch.compile).parameters if name != "model"
)
#: Constraints of the options whose values torch documents (the others go to torch unchecked).
OPTION_CONSTRAINTS: dict[str, list[Any]] = {
    f"{PREFIX}fullgraph": ["boolean"],
    f"{PREFIX}dynamic": ["boolean", None],
    f"{PREFIX}backend": [str, callable],
    f"{PREFIX}mode": [
        StrOptions({"default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"}),
        None,
    ],
    f"{PREFIX}options": [dict, None],
    f"{PREFIX}disable": ["boolean"],
}


def options_from(nested: Mapping[str, Any]) -> dict[str, Any]:
    """The ``torch.compile`` keyword arguments among the estimator's nested parameters."""
    return {key[len(PREFIX) :]: value for key, value in nested.items() if key.startswith(PREFIX)}


def check_options(owner: str, nested: Mapping[str, Any]) -> None:
    """Every ``compile__*`` name is a ``torch.compile`` argument and the documented ones have
    values of the right kind, else an ``InvalidParameterError`` (``TypeError`` for a name)."""
    given = {key: value for key, value in nested.items() if key.startswith(PREFIX)}
    for key in given:
        if key[len(PREFIX) :] not in OPTION_NAMES:
            raise TypeError(
                f"{owner} got an unexpected parameter {key!r}: compile__* options are passed to "
                f"torch.compile, which accepts {[PREFIX + name for name in OPTION_NAMES]}."
            )
    validate_parameter_constraints(OPTION_CONSTRAINTS, given, caller_name=owner)


#: What a model file may set: options that pick among torch's own behaviours. The others are set
#: after loading (``set_params``): a file is data and must not choose programs to run, which
#: ``compile__options`` can (inductor's ``cpp.cxx`` names the C++ compiler) and a backend outside
#: torch's built-in ones would (it is looked up among installed entry points).
LOADABLE_OPTIONS = ("mode", "fullgraph", "dynamic", "backend")
BUILTIN_BACKENDS = ("inductor", "eager", "aot_eager", "cudagraphs")


def check_loadable(nested: Mapping[str, Any]) -> None:
    """A ``ValueError`` naming a ``compile__*`` entry of a model file that ``load`` refuses."""
    for name, value in options_from(nested).items():
        if name not in LOADABLE_OPTIONS:
            raise ValueError(
                f"the model file sets {PREFIX}{name}, which load does not take from a file (only "
                f"{[PREFIX + n for n in LOADABLE_OPTIONS]}); remove it before saving and set it "
                "with set_params after loading"
            )
        if name == "backend" and value not in BUILTIN_BACKENDS:
            raise ValueError(
                f"the model file sets {PREFIX}backend={value!r}; load accepts torch's built-in "
                f"backends {list(BUILTIN_BACKENDS)} only; set another with set_params after loading"
            )


def apply(network: torch.nn.Module, enabled: bool, options: Mapping[str, Any]) -> None:
    """Compile ``network`` in place with ``options`` when ``enabled`` (again if the options
    changed), or make it plain again when not (``set_params(compile=False)`` on a fitted or
    loaded model)."""
    compiled = network._compiled_call_impl is not None
    if enabled:
        if not compiled or network.__dict__.get("_compile_options") != dict(options):
            network.compile(**options)
            network.__dict__["_compile_options"] = dict(options)
    elif compiled:
        # torch has no public way back; nn.Module.__call__ runs _call_impl when this is None.
        network._compiled_call_impl = None
        network.__dict__.pop("_compile_options", None)
