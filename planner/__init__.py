"""planner: convolution arithmetic as a solver.

import planner
result = planner.solve("specs/dcgan_generator.yaml", max_solutions=3)
for plan in result.plans:
    print(plan.layer("up1").params["stride"], plan.layer("up1").output_shape)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

# Names load on first use (PEP 562), so `import planner` and loading a spec import neither NumPy
# nor the executor: they come with the first solve, verification or run.
_HOME = {
    "load": "planner.api",
    "loads": "planner.api",
    "solve": "planner.api",
    "verify": "planner.api",
    "Diagnostic": "planner.errors",
    "PlannerError": "planner.errors",
    "SpecError": "planner.errors",
    "run_plan": "planner.executor.run",
    "Verification": "planner.executor.verify",
    "Network": "planner.graph",
    "LayerPlan": "planner.plan",
    "Plan": "planner.plan",
    "SolveResult": "planner.solver.solve",
    "Status": "planner.solver.solve",
}

__all__ = [
    "Diagnostic",
    "LayerPlan",
    "Network",
    "Plan",
    "PlannerError",
    "SolveResult",
    "SpecError",
    "Status",
    "Verification",
    "load",
    "loads",
    "run_plan",
    "solve",
    "verify",
]

if TYPE_CHECKING:
    from planner.api import load, loads, solve, verify
    from planner.errors import Diagnostic, PlannerError, SpecError
    from planner.executor.run import run_plan
    from planner.executor.verify import Verification
    from planner.graph import Network
    from planner.plan import LayerPlan, Plan
    from planner.solver.solve import SolveResult, Status


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module 'planner' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_HOME[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOME])
