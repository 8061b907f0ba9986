"""Python's cyclic garbage collector paused while planner reads and solves a spec.

A 200-layer solve makes some 15 000 short-lived containers (YAML values, models, states) and
almost no cycles: reference counting frees them, but the collector still walks them as they
pass, and those alive at a walk are promoted, which brings the full walks of the whole heap
(49-74 ms measured in a process with NumPy, Z3, pydantic and OR-tools loaded) around sooner. Paused, the work
leaves nothing but its result and the few cycles it made, collected at the next walk after
it. Mercurial pauses its collector the same way (`util.nogc`) around its allocation bursts.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def paused(function: Callable[P, R]) -> Callable[P, R]:
    """`function` run with the collector paused, and resumed after it if it was running before."""

    @functools.wraps(function)
    def run_paused(*args: P.args, **kwargs: P.kwargs) -> R:
        if not gc.isenabled():  # paused already: by the caller, or by another thread's call
            return function(*args, **kwargs)
        gc.disable()
        try:
            return function(*args, **kwargs)
        finally:
            gc.enable()

    return run_paused
