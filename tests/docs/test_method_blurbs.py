"""A method's one-line blurb (``fusekit plugins``, README, method reference) names only parameters
that its class's ``__init__`` has.

A blurb names parameters as code spans, ``name``, or as a parenthesised list of bare identifiers,
``(hidden, depth, dropout)``; both forms are checked. Prose in parentheses ("(learned query,
softmax over present)", "(Liu et al., 2026)") is neither, so it is left alone.
"""

import inspect
import re

import pytest

from fusekit.builtin.conv1d_backbone import Conv1dBackbone
from fusekit.engine.registry import get_registry

CODE_SPAN = re.compile(r"``([^`]+)``")
IDENTIFIER_LIST = re.compile(r"\(([a-z_][a-z0-9_]*(?:, [a-z_][a-z0-9_]*)+)\)")
METHODS = sorted(
    (e for e in get_registry().entries() if e.kind != "dataset"), key=lambda e: (e.kind, e.name)
)


def named_parameters(blurb: str) -> set[str]:
    names = set(CODE_SPAN.findall(blurb))
    for group in IDENTIFIER_LIST.findall(blurb):
        names.update(group.split(", "))
    return names


def init_parameters(cls: type) -> set[str]:
    return set(inspect.signature(cls).parameters)


def test_both_forms_are_read_and_prose_is_not():
    assert named_parameters("Temporal CNN (kernel, depth, width); ``dropout`` too (LMF)") == {
        "kernel",
        "depth",
        "width",
        "dropout",
    }
    assert named_parameters(
        "Attention (learned query, softmax over present) (Liu et al., 2026)"
    ) == (set())


def test_the_old_conv1d_blurb_would_fail():
    old = "Temporal CNN for sequences (kernel, depth, width, dropout); keeps the time axis."
    assert named_parameters(old) - init_parameters(Conv1dBackbone) == {"kernel", "width"}


@pytest.mark.parametrize("entry", METHODS, ids=lambda e: f"{e.kind}-{e.name}")
def test_blurb_names_only_existing_parameters(entry):
    unknown = named_parameters(entry.description) - init_parameters(entry.obj)
    assert not unknown, (
        f"{entry.kind} {entry.name!r}: the blurb {entry.description!r} names {sorted(unknown)}, "
        f"which {entry.obj.__name__}.__init__ does not have "
        f"(parameters: {sorted(init_parameters(entry.obj))})"
    )
