"""The public Python API: `load`, `solve`, `verify`. The CLI is built on these."""

from __future__ import annotations

import dataclasses
import os
from typing import Callable

from planner.errors import InternalError, SpecError
from planner.executor.verify import Verification, verify_network_plan, verify_plan
from planner.graph import Network, build_network
from planner.plan import Plan
from planner.solver.solve import SolveResult, Status, solve_network
from planner.spec.load import load_spec, load_spec_text


def load(path: str | os.PathLike) -> Network:
    """Read, validate and resolve a spec file into a `Network`; raises SpecError with located diagnostics."""
    return build_network(load_spec(path))


def loads(text: str, file: str = "<spec>") -> Network:
    """As `load`, from YAML text."""
    return build_network(load_spec_text(text, file))


def verify(plan: Plan, *, seed: int = 0, network: Network | None = None, full_width: bool = False) -> Verification:
    """Execute a plan in NumPy on random data and compare every layer's shape with the plan.

    With the plan's `network`, channels are narrowed unless `full_width` and a for_all plan
    runs at its smallest, a middle and its largest input sizes; without it, the plan runs as it is.
    """
    if network is None:
        return verify_plan(plan, seed=seed)
    return verify_network_plan(network, plan, seed=seed, full_width=full_width)


def solve(spec: str | os.PathLike | Network, *, max_solutions: int | None = 1, count: bool = False,
          timeout: float | None = None, verify: bool = True, seed: int = 0,
          full_width: bool = False, explain: bool = True,
          progress: Callable[[int], None] | None = None) -> SolveResult:
    """Solve a spec (a path or a loaded Network) for up to `max_solutions` plans (None: all).

    Spec problems come back as a result with status `invalid` and located diagnostics,
    not as exceptions. Each returned plan is executed in NumPy unless `verify=False`
    (channels narrowed unless `full_width`); a plan whose execution disagrees with its
    shapes raises InternalError (a bug).
    """
    if isinstance(spec, Network):
        network = spec
    else:
        try:
            network = load(spec)
        except SpecError as e:
            return SolveResult(os.fspath(spec), Status.INVALID, diagnostics=e.diagnostics)
    try:
        result = solve_network(network, max_solutions=max_solutions, count=count, timeout=timeout, explain=explain,
                               progress=progress)
    except SpecError as e:
        return SolveResult(network.file, Status.INVALID, diagnostics=e.diagnostics, network=network)
    if verify:
        result.plans = [_verified(network, plan, seed, full_width) for plan in result.plans]
        unverified = [p for p in result.plans if not p.verified]
        if unverified:
            result.diagnostics.append(network.diagnostic(
                ("input",), "not-verified", f"{len(unverified)} plan(s) {unverified[0].verification}; "
                "their shapes come from the arithmetic alone", severity="warning"))
    return result


def _verified(network: Network, plan: Plan, seed: int, full_width: bool) -> Plan:
    check = verify_network_plan(network, plan, seed=seed, full_width=full_width)
    if not check.executed:
        return dataclasses.replace(plan, verified=False, verification=check.how)
    if not check.ok:
        raise InternalError("a plan does not execute to the shapes it claims: " + "; ".join(check.mismatches))
    return dataclasses.replace(plan, verified=True, verification=check.how)
