"""Renderers: a solve's result or a check's results as text, JSON, YAML or GitHub annotations.

The CLI picks one from a table by the name of `--format` (check-jsonschema's
`REPORTER_BY_NAME`); each renderer returns what goes to standard output and what goes to
standard error, and never decides an exit status.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from planner.report import github, json_out, text, yaml_out
from planner.report.escape import visible
from planner.solver.solve import Status

if TYPE_CHECKING:
    from planner.check import CheckResult
    from planner.errors import Diagnostic

# (result: SolveResult, with_count, verbose, table=None) -> stdout; `table` is text's --columns, which the others ignore
SolveReporter = Callable[..., str]
CheckReporter = Callable[[list["CheckResult"], list["Diagnostic"]], tuple[str, str]]


def _check_text(results: list[CheckResult], path_problems: list[Diagnostic], *, render=str) -> tuple[str, str]:
    lines = [render(d) for d in [*path_problems, *(d for r in results for d in r.diagnostics)]]
    lines += [visible(f"{r.spec}: infeasible") for r in results if r.status is Status.INFEASIBLE and not r.diagnostics]
    return "".join(f"{line}\n" for line in [*lines, check_summary(results)]), ""


def _check_json(results: list[CheckResult], path_problems: list[Diagnostic]) -> tuple[str, str]:
    return json_out.dumps([r.report for r in results]) + "\n", check_summary(results) + "\n"


def check_summary(results: list[CheckResult]) -> str:
    """'3 specs, 2 passed, 1 failed[, N unknown]'."""
    failed = sum(r.status in (Status.INVALID, Status.INFEASIBLE) for r in results)
    unknown = sum(r.status is Status.UNKNOWN for r in results)
    summary = f"{len(results)} specs, {len(results) - failed - unknown} passed, {failed} failed"
    return summary + (f", {unknown} unknown" if unknown else "")


SOLVE_REPORTER_BY_NAME: dict[str, SolveReporter] = {
    "text": lambda result, with_count, verbose, table=None: text.render(
        result, with_count=with_count, verbose=verbose, table=table
    ),
    "json": lambda result, with_count, verbose, table=None: json_out.render(result, with_count=with_count),
    "yaml": lambda result, with_count, verbose, table=None: yaml_out.render(result.network, result.plans),
}
CHECK_REPORTER_BY_NAME: dict[str, CheckReporter] = {
    "text": _check_text,
    "json": _check_json,
    "github": lambda results, problems: _check_text(results, problems, render=github.render_diagnostic),
}
