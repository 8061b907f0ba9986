"""Verification: execute a plan in NumPy and compare every layer's shape with the plan.

Spatial sizes do not depend on channel counts, so by default a plan is executed at
batch 1 with its channels narrowed (never below what `groups` needs); the narrowed
network is planned with the same assignment, so every shape of it, channels and
features included, is still checked. `full_width=True` runs the plan as it is.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass

from planner import arithmetic as ar
from planner.deadline import Deadline
from planner.domains import Unknown
from planner.errors import DiagnosedError, GaveUp, PlannerError, TooBig
from planner.executor.run import run_plan
from planner.graph import Network
from planner.ops import OPS
from planner.plan import Plan, compute_plan
from planner.solver.search import sample_sizes

NARROW_TO = 16  # the widest layer's channel count after narrowing

# called with the 1-based number of each plan `verify_network_plan` starts executing (see `reporting_to`)
_progress: ContextVar[Callable[[int], None] | None] = ContextVar("verification_progress", default=None)
_started: ContextVar[int] = ContextVar("verifications_started", default=0)


@contextlib.contextmanager
def reporting_to(progress: Callable[[int], None]) -> Iterator[None]:
    """Within the block, `progress(n)` is called as `verify_network_plan` starts the n-th plan: the CLI's
    progress line for `solve`, which verifies each plan the API returns."""
    tokens = _progress.set(progress), _started.set(0)
    try:
        yield
    finally:
        _started.reset(tokens[1])
        _progress.reset(tokens[0])


@dataclass(frozen=True)
class Verification:
    ok: bool
    how: str  # what was run, e.g. "executed in NumPy at batch 1, channels narrowed 64x"
    mismatches: tuple[str, ...] = ()
    executed: bool = True  # False: too big to execute here, so not verified (not a mismatch)


MAX_ELEMENTS = 2**27  # the largest tensor or weight verification allocates (512 MiB of float32)


def largest_tensor(plan: Plan) -> int:
    """Elements of the largest activation or weight the plan executes at batch 1."""
    sizes = [math.prod(plan.input_shape[1:])]
    for layer in plan.layers:
        sizes.append(math.prod(layer.output_shape[1:]))
        if "kernel" in layer.params and "out_channels" in layer.params:
            sizes.append(layer.input_shape[1] * layer.params["out_channels"] * math.prod(layer.params["kernel"]))
        if "padding" in layer.params:
            padded = [
                ar.padded_size(i, b, e)
                for i, (b, e) in zip(layer.input_shape[2:], layer.params["padding"], strict=True)
            ]
            sizes.append(layer.input_shape[1] * math.prod(padded))
        if "out_features" in layer.params:
            sizes.append(layer.params["in_features"] * layer.params["out_features"])
    return max(sizes)


def verify_plan(
    plan: Plan,
    *,
    seed: int = 0,
    how: str = "executed in NumPy at batch 1, full width",
    deadline: Deadline | None = None,
) -> Verification:
    """Run the plan at batch 1 and compare every layer's shape with the plan's; raises TooBig, and GaveUp
    when the deadline passes."""
    if (size := largest_tensor(plan)) > MAX_ELEMENTS:
        raise TooBig(f"not executed: its largest tensor would hold {size:.3g} elements (more than {MAX_ELEMENTS:.3g})")
    runs = run_plan(plan, seed=seed, batch=1, deadline=deadline)
    mismatches = tuple(
        f"{layer.name}: planned {[1, *layer.output_shape[1:]]}, executed {list(run.shape)}"
        for layer, run in zip(plan.layers, runs, strict=True)
        if run.shape != (1, *layer.output_shape[1:])
    )
    return Verification(not mismatches, how, mismatches)


def narrow_network(network: Network, plan: Plan) -> tuple[Network, int]:
    """The network with every out_channels divided by a common factor (and the factor); 1 when already narrow.

    The widths and groups are read from `plan`, a plan of `network`; each op says how it narrows."""
    widest = max((ly.params["out_channels"] for ly in plan.layers if "out_channels" in ly.params), default=1)
    factor = max(1, widest // NARROW_TO)
    if factor == 1:
        return network, 1
    unit = math.lcm(*(OPS[ly.op].channel_unit(ly) for ly in plan.layers))
    nodes = []
    for node in network.nodes:
        # channel counts and features change; the full plan checked them
        update = {"expect": None, **OPS[node.op].narrowed(node.model, factor, unit)}
        nodes.append(dataclasses.replace(node, model=node.model.model_copy(update=update), expect=None))
    return dataclasses.replace(network, nodes=tuple(nodes), constraints=()), factor


def verify_network_plan(
    network: Network, plan: Plan, *, seed: int = 0, full_width: bool = False, deadline: Deadline | None = None
) -> Verification:
    """Execute a plan of `network`: narrowed unless `full_width`; a for_all plan at its smallest, a middle
    and its largest input sizes. A plan not executed in full by the deadline is not verified."""
    if not isinstance(network, Network):
        raise TypeError(f"verification takes the plan's Network, not {type(network).__name__}")
    if not isinstance(plan, Plan):
        raise TypeError(f"verification takes a Plan (one of SolveResult.plans), not {type(plan).__name__}")
    if [(ly.name, ly.op) for ly in plan.layers] != [(n.name, n.op) for n in network.nodes] or not {
        u.name for u in network.unknowns
    } <= set(plan.assignment):
        raise PlannerError(f"the plan is not a plan of the network of {network.file!r}: its layers or unknowns differ")
    if (progress := _progress.get()) is not None:
        _started.set(_started.get() + 1)
        progress(_started.get())
    assignment: dict[Unknown, int] = {u: plan.assignment[u.name] for u in network.unknowns}
    target, factor = (network, 1) if full_width else narrow_network(network, plan)
    size_sets = sample_sizes(network) if plan.for_all else [{}]
    try:
        runs = [
            plan if target is network and not sizes else compute_plan(target, {**assignment, **sizes})
            for sizes in size_sets
        ]
    except DiagnosedError:
        if target is network:
            raise
        # narrowed channels broke a rule the full widths keep (a slice of the channels past the narrowed
        # count, a layernorm over the channels, an input's channels against a layer's): run it as it is
        target, factor = network, 1
        runs = [plan if not sizes else compute_plan(network, {**assignment, **sizes}) for sizes in size_sets]
    how = "executed in NumPy at batch 1, " + (f"channels narrowed {factor}x" if factor > 1 else "full width")
    if plan.for_all:
        how += " at input sizes " + ", ".join("x".join(str(s[f]) for f in network.for_all) for s in size_sets)
    mismatches: list[str] = []
    for run in runs:
        try:
            mismatches += verify_plan(run, seed=seed, deadline=deadline).mismatches
        except TooBig as e:
            return Verification(False, str(e), (), executed=False)
        except GaveUp as e:
            return Verification(False, f"not executed in full: the time limit ran out ({e.reason})", (), executed=False)
    return Verification(not mismatches, how, tuple(mismatches))
