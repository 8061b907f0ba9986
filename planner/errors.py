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


class SpecError(PlannerError):
    """The spec is invalid; carries one or more located diagnostics."""

    def __init__(self, diagnostics: list[Diagnostic] | Diagnostic):
        if isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics = list(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))


class InfeasibleError(SpecError):
    """The spec is well-formed, but no plan satisfies it; the diagnostics say where it breaks."""


class ExecutionError(PlannerError):
    """The NumPy executor could not run a layer with the parameters it was given."""


class InternalError(PlannerError):
    """A bug in planner: an invariant between its own stages did not hold."""
