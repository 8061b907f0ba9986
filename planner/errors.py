"""Exceptions and the located Diagnostic record.

Errors are data with a place: the core collects `Diagnostic`s and raises a
`SpecError` carrying them; reporters render them; the CLI maps them to exit codes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from planner.report.escape import visible

Severity = Literal["error", "warning", "note"]


@dataclass(frozen=True)
class Diagnostic:
    """One located message about a spec, printed GNU-style (1-based line and column)."""

    file: str
    line: int
    column: int
    code: str
    message: str
    severity: Severity = "error"
    layer: str | None = None

    def __str__(self) -> str:
        """One line, with whatever the spec put into the file name or the message shown escaped."""
        return visible(f"{self.file}:{self.line}:{self.column}: {self.severity}: {self.message} [{self.code}]")

    def to_dict(self) -> dict:
        return asdict(self)


class PlannerError(Exception):
    """Base class of every error planner raises on purpose."""


class DiagnosedError(PlannerError):
    """An error that carries one or more located diagnostics."""

    def __init__(self, diagnostics: list[Diagnostic] | Diagnostic):
        if isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics = list(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))


class SpecError(DiagnosedError):
    """The spec is invalid (status `invalid`); the diagnostics say where."""


class InfeasibleError(DiagnosedError):
    """No plan: an outcome (status `infeasible`), raised by the plan calculator and turned into a result
    by the solver; not a SpecError, since the spec itself is well-formed."""


class LayerError(PlannerError):
    """A structural problem with one layer (rank, missing key), independent of unknowns."""

    def __init__(self, code: str, message: str, param: str | None = None):
        super().__init__(message)
        self.code, self.message, self.param = code, message, param


class ConstraintError(PlannerError):
    """A constraint outside the allowed language, or naming something that does not exist."""

    def __init__(self, message: str, code: str = "constraint"):
        super().__init__(message)
        self.code = code


class FieldUnsupported(PlannerError):
    """A receptive field that cannot be written over Z3 terms (a division by an unknown)."""


class GaveUp(PlannerError):
    """The time ran out, or Z3 answered unknown (a non-linear give-up): status `unknown`, never infeasible."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class OptimizerStuck(GaveUp):
    """Z3 made no progress on one step of an optimisation: the plans are then ranked by enumeration."""


class TooBig(PlannerError):
    """A plan too large to execute here: it is reported not verified, not wrong."""


class UsageError(PlannerError):
    """planner was asked for something it cannot do as asked (an unknown layer, a bad argument): exit 2."""


class UnknownLayer(KeyError, UsageError):
    """A layer name that the plan does not have."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ExecutionError(PlannerError):
    """The NumPy executor could not run a layer with the parameters it was given."""


class InternalError(PlannerError):
    """A bug in planner: an invariant between its own stages did not hold (raised `from` its cause)."""
