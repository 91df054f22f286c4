"""The walk of one parameter, ``fusion=``, from ``FusionClassifier.fit`` to the fusion's forward.

Records the call stack at each point where the fusion is touched: every registry look-up for the
fusion kind (by name or by class), the read of its ``recommended_params`` (the training
settings), its ``build``, and its first ``forward``. A *hop* is a distinct fusekit function on
those stacks below ``fit`` (the training loop, skorch's and ``fusekit.engine.training``'s frames
down to ``infer``, counts as one);
also printed: the modules they live in, the registry visits, and how many times the path leaves
the estimator module for the engine (each distinct call out of ``fusekit/estimator.py``).

    python benchmarks/fusion_walk.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import fusekit
from fusekit import FusionClassifier, Modalities
from fusekit.builtin.concat_fusion import ConcatFusion
from fusekit.engine.registry import Registry

PACKAGE = Path(fusekit.__file__).parent
REGISTRY_METHODS = ("entry", "get", "name_of", "entry_of")


def _where(frame) -> str | None:
    """``module:qualname`` of a fusekit frame, ``"skorch"`` for skorch's loop, else None."""
    path = Path(frame.f_code.co_filename)
    if "skorch" in path.parts or path == PACKAGE / "engine" / "training.py":
        return "training loop (skorch, fusekit.engine.training)"
    try:
        relative = path.relative_to(PACKAGE.parent)
    except ValueError:
        return None
    module = ".".join(relative.with_suffix("").parts)
    return f"{module}:{frame.f_code.co_qualname}"


def _stack(skip: int) -> list[str]:
    """The fusekit frames from ``fit`` down to the caller ``skip`` levels up (outermost first)."""
    frames, frame = [], sys._getframe(skip)
    while frame is not None:
        where = _where(frame)
        if where is not None and not where.endswith(("<listcomp>", "<genexpr>", "<dictcomp>")):
            frames.append(where)
        frame = frame.f_back
    frames.reverse()
    start = next(i for i, w in enumerate(frames) if w.endswith("FusionClassifier.fit"))
    walk: list[str] = []
    for where in frames[start:]:
        if not (walk and walk[-1] == where):
            walk.append(where)
    return walk


def main() -> None:
    stacks: list[tuple[str, list[str]]] = []
    for method in REGISTRY_METHODS:
        original = getattr(Registry, method, None)
        if original is None:
            continue

        def spy(self, kind, *args, _original=original, _method=method, **kwargs):
            caller = _where(sys._getframe(1)) or ""
            if kind == "fusion" and not caller.startswith("fusekit.engine.registry:"):
                stacks.append((f"registry.{_method}", _stack(2)))
            return _original(self, kind, *args, **kwargs)

        setattr(Registry, method, spy)
    build, forward = ConcatFusion.build, ConcatFusion.forward

    def spy_build(self, spec):
        stacks.append(("build", _stack(2)))
        return build(self, spec)

    def spy_forward(self, *args, **kwargs):
        if not any(event == "forward" for event, _ in stacks):
            stacks.append(("forward", _stack(2)))
        return forward(self, *args, **kwargs)

    ConcatFusion.build, ConcatFusion.forward = spy_build, spy_forward
    recommended = ConcatFusion.recommended_params

    def spy_recommended(self):
        stacks.append(("recommended_params", _stack(2)))
        return recommended

    ConcatFusion.recommended_params = property(spy_recommended)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 16)
    X = Modalities(a=rng.normal(size=(16, 3)), b=rng.normal(size=(16, 2)))
    FusionClassifier(fusion="concat", max_epochs=1, random_state=0).fit(X, y)

    hops: list[str] = []
    exits: set[tuple[str, str]] = set()
    for _, stack in stacks:
        for caller, callee in zip(stack, stack[1:], strict=False):
            if caller.startswith("fusekit.estimator:") and not callee.startswith(
                "fusekit.estimator:"
            ):
                exits.add((caller, callee))
        for where in stack:
            if where not in hops:
                hops.append(where)
    hops = hops[1:]  # fit itself is where the walk starts
    modules = dict.fromkeys(where.split(":")[0] for where in hops)
    for event, stack in stacks:
        print(f"{event}: {' -> '.join(stack)}")
    print()
    for number, where in enumerate(hops, 1):
        print(f"{number:2d}. {where}")
    print(f"hops: {len(hops)} over {len(modules)} modules ({', '.join(modules)})")
    print(f"registry visits for the fusion: {sum(e.startswith('registry.') for e, _ in stacks)}")
    print(f"calls out of the estimator module on the path: {len(exits)}")
    for caller, callee in sorted(exits):
        print(f"    {caller} -> {callee}")


if __name__ == "__main__":
    main()
