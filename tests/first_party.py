"""The repository's own plugin distributions: ``fusekit`` and each ``plugins/*/pyproject.toml``.

Tests that compare a generated listing (README's method table, docs/reference.md) with the live
registry keep to these entries: a user's or a plugin author's environment may hold more fusekit
plugins (a leftover scaffolded one, their own), and those are not the repository's business.
"""

from __future__ import annotations

import re
from pathlib import Path

import tomllib

import fusekit.engine.registry
from fusekit.builtin.concat_fusion import ConcatFusion
from fusekit.engine.registry import BUILTIN_DISTRIBUTION, PluginEntry, Registry
from fusekit.plugin import hookimpl

REPO = Path(__file__).resolve().parents[1]


def _canonical(name: str) -> str:
    """PEP 503 normalisation: ``Fusekit_BTW`` and ``fusekit-btw`` are one distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


#: First-party components that cannot be built from their defaults: they load a model the user
#: names (``path=``, a Hugging Face folder). The sweeps over every component with default
#: parameters leave them out; fusekit-transformers' own tests run every contract check, the
#: meta-device one included, and a bf16 prediction check on tiny random models saved in a
#: temporary folder.
NEEDS_A_USER_MODEL = frozenset({("backbone", "hf_text"), ("backbone", "hf_image")})


def first_party_distributions() -> frozenset[str]:
    """``fusekit`` and the ``[project] name`` of every distribution under ``plugins/``."""
    names = {BUILTIN_DISTRIBUTION}
    for pyproject in sorted(REPO.glob("plugins/*/pyproject.toml")):
        names.add(tomllib.loads(pyproject.read_text())["project"]["name"])
    return frozenset(_canonical(name) for name in names)


def first_party_entries(registry: Registry | None = None) -> list[PluginEntry]:
    """The entries of ``registry`` (default: the live one) that come from this repository."""
    registry = registry or fusekit.engine.registry.get_registry()
    ours = first_party_distributions()
    return [e for e in registry.entries() if _canonical(e.distribution) in ours]


class _SomeoneElsesPlugin:
    """What a user's plugin or a leftover scaffolded one adds to the registry."""

    @hookimpl
    def fusekit_fusions(self):
        class ElsewhereFusion(ConcatFusion):
            """A fusion from another distribution."""

        return {"elsewhere_fusion": ElsewhereFusion}


def registry_with_an_extra_plugin() -> Registry:
    """The live plugins (built-ins and entry points) plus one from a foreign distribution."""
    registry = Registry()
    registry.load()
    registry.register(_SomeoneElsesPlugin(), "fusekit-scaffolded-gen", "0.1")
    return registry
