"""planner: convolution arithmetic as a solver.

import planner
result = planner.solve("specs/dcgan_generator.yaml", max_solutions=3)
for plan in result.plans:
    print(plan.layer("up1").params["stride"], plan.layer("up1").output_shape)
"""

from __future__ import annotations

from planner.api import load, loads, solve, verify
from planner.errors import Diagnostic, PlannerError, SpecError
from planner.executor.run import run_plan
from planner.executor.verify import Verification
from planner.graph import Network
from planner.plan import LayerPlan, Plan
from planner.solver.solve import SolveResult, Status

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
