"""The public Python API: `load`, `solve`, `verify`. The CLI is built on these."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from planner.collector import paused
from planner.deadline import Deadline, alarm_inside
from planner.errors import Diagnostic, GaveUp, InternalError, SpecError
from planner.graph import Network, build_network
from planner.plan import Plan
from planner.signals import ending_inside
from planner.solver.solve import SolveResult, Status, solve_network
from planner.spec.load import LoadedSpec, load_spec, load_spec_text

if TYPE_CHECKING:  # the executor (NumPy) is imported when a plan is verified, not to load a spec
    from planner.executor.verify import Verification


@paused
def load(path: str | os.PathLike) -> Network:
    """Read, validate and resolve a spec file into a `Network`; raises SpecError with located diagnostics."""
    return _network(load_spec(path))


@paused
def loads(text: str, file: str = "<spec>") -> Network:
    """As `load`, from YAML text."""
    if not isinstance(text, (str, bytes)):
        raise TypeError(f"loads() takes the spec's YAML text (str or bytes), not {type(text).__name__}")
    return _network(load_spec_text(text, file))


def _network(loaded: LoadedSpec) -> Network:
    """The network, or SpecError whose diagnostics about a layer from a block note where it is used."""
    try:
        return build_network(loaded)
    except SpecError as e:
        raise SpecError(loaded.source.with_notes(e.diagnostics)) from None


def verify(plan: Plan, *, seed: int = 0, network: Network | None = None, full_width: bool = False) -> Verification:
    """Execute a plan in NumPy on random data and compare every layer's shape with the plan.

    With the plan's `network`, channels are narrowed unless `full_width` and a for_all plan
    runs at its smallest, a middle and its largest input sizes; without it, the plan runs as it is.
    """
    from planner.executor.verify import verify_network_plan, verify_plan

    if not isinstance(plan, Plan):
        raise TypeError(f"verify() takes a Plan (one of SolveResult.plans), not {type(plan).__name__}")
    if network is None:
        return verify_plan(plan, seed=seed)
    return verify_network_plan(network, plan, seed=seed, full_width=full_width)


@paused
def solve(
    spec: str | os.PathLike | Network,
    *,
    max_solutions: int | None = 1,
    count: bool = False,
    sample: int | None = None,
    timeout: float | None = None,
    verify: bool = True,
    seed: int = 0,
    full_width: bool = False,
    explain: bool = True,
    progress: Callable[[int], None] | None = None,
    deadline: Deadline | None = None,
) -> SolveResult:
    """Solve a spec (a path or a loaded Network) for up to `max_solutions` plans (None: all), or for
    `sample` distinct plans drawn uniformly at random (`seed` fixes the draw and the executor's weights).
    `max_solutions=0` with `count=True` counts the plans and lists none (the count alone is cheaper).

    Spec problems come back as a result with status `invalid` and located diagnostics,
    not as exceptions. `timeout` (seconds) bounds the whole call: reading, solving,
    explaining and verifying (or pass a `deadline` shared with other work); a give-up is
    status `unknown`, and a plan not executed in time is returned not verified. Each
    returned plan is executed in NumPy unless `verify=False` (channels narrowed unless
    `full_width`); a plan whose execution disagrees with its shapes raises InternalError (a bug).
    """
    _check_arguments(spec, max_solutions, count, timeout, seed, sample)
    deadline = deadline or Deadline(timeout)
    file = spec.file if isinstance(spec, Network) else os.fsdecode(spec)
    try:
        network = spec if isinstance(spec, Network) else load(spec)
    except SpecError as e:
        return SolveResult(file, Status.INVALID, diagnostics=e.diagnostics)
    except Exception as e:
        if (ending := ending_inside(e)) is not None:  # Ctrl-C or SIGTERM, wrapped by the call it interrupted
            raise ending from e
        if (gave_up := alarm_inside(e)) is None:
            raise
        return SolveResult(file, Status.UNKNOWN, diagnostics=[_gave_up(file, gave_up, "reading the spec")])
    try:
        result = solve_network(
            network,
            max_solutions=max_solutions,
            count=count,
            sample=sample,
            seed=seed,
            deadline=deadline,
            explain=explain,
            progress=progress,
        )
    except SpecError as e:
        return SolveResult(network.file, Status.INVALID, diagnostics=e.diagnostics, network=network)
    except Exception as e:
        if (ending := ending_inside(e)) is not None:  # Ctrl-C or SIGTERM, wrapped by the call it interrupted
            raise ending from e
        if (gave_up := alarm_inside(e)) is None:
            raise
        return SolveResult(
            network.file, Status.UNKNOWN, diagnostics=[_gave_up(file, gave_up, "solving")], network=network
        )
    result.diagnostics[:0] = input_shape_warnings(network)
    result.diagnostics = network.loaded.source.with_notes(result.diagnostics)
    if verify and result.status is Status.SOLVED:  # after a give-up the time is gone: its plans stay unverified
        result.plans = [_verified(network, plan, seed, full_width, deadline) for plan in result.plans]
        unverified = [p for p in result.plans if not p.verified]
        if unverified:
            result.diagnostics.append(
                network.diagnostic(
                    ("input",),
                    "not-verified",
                    f"{len(unverified)} plan(s) {unverified[0].verification}; "
                    "their shapes come from the arithmetic alone",
                    severity="warning",
                )
            )
    return result


def input_shape_warnings(network: Network) -> list[Diagnostic]:
    """A warning when a 1-D input shape reads like an image with its batch axis forgotten ([3, 224, 224]:
    N=3, C=224, one axis of 224) or written channels-last ([224, 224, 3])."""
    shape = [v for v in network.input_shape if isinstance(v, int)]
    if len(shape) != 3 or len(network.input_shape) != 3:
        return []
    n, c, size = shape
    if c == size and c >= 8 and n <= 4:
        hint = f"if it is a {n}-channel {c}x{size} image, add the batch axis: [1, {n}, {c}, {size}]"
    elif n == c and n >= 8 and size <= 4:
        hint = f"if it is a {size}-channel {n}x{c} image written channels-last, write [1, {size}, {n}, {c}]"
    else:
        return []
    message = f"input shape {list(shape)} reads as batch {n}, {c} channels and one spatial axis of {size}; {hint}"
    return [network.diagnostic(("input", "shape"), "input-rank", message, severity="warning")]


def _check_arguments(
    spec: object, max_solutions: object, count: object, timeout: object, seed: object, sample: object
) -> None:
    """Misuse of `solve` is a TypeError or ValueError that says what was expected, never an outcome."""
    if not isinstance(spec, (str, os.PathLike, Network)):
        raise TypeError(f"solve() takes a spec path or a Network, not {type(spec).__name__}")
    if max_solutions is not None and (not isinstance(max_solutions, int) or isinstance(max_solutions, bool)):
        raise TypeError(f"max_solutions must be an int or None (every plan), not {type(max_solutions).__name__}")
    if max_solutions is not None and max_solutions < 0:
        raise ValueError(f"max_solutions must be at least 0 (or None for every plan), not {max_solutions}")
    if max_solutions == 0 and not count:
        raise ValueError("max_solutions=0 lists no plan: it goes with count=True, which counts them")
    if sample is not None and (not isinstance(sample, int) or isinstance(sample, bool) or sample < 1):
        raise ValueError(f"sample must be a positive int (how many random plans) or None, not {sample!r}")
    if timeout is not None and not (isinstance(timeout, (int, float)) and 0 < timeout < math.inf):
        raise ValueError(f"timeout must be a positive finite number of seconds or None, not {timeout!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, not {seed!r}")


def _gave_up(file: str, e: GaveUp, doing: str) -> Diagnostic:
    return Diagnostic(file, 1, 1, "unknown", f"gave up while {doing} ({e.reason}); allow more time with --timeout")


def _verified(network: Network, plan: Plan, seed: int, full_width: bool, deadline: Deadline) -> Plan:
    from planner.executor.verify import verify_network_plan

    check = verify_network_plan(network, plan, seed=seed, full_width=full_width, deadline=deadline)
    if not check.executed:
        return dataclasses.replace(plan, verified=False, verification=check.how)
    if not check.ok:
        raise InternalError("a plan does not execute to the shapes it claims: " + "; ".join(check.mismatches))
    return dataclasses.replace(plan, verified=True, verification=check.how)
