"""`planner check`: every spec file under the given paths, loaded, solved and verified.

Independent specs are checked in parallel across cores. Each spec gets a time budget;
a solver give-up is reported as `unknown`, never as a failure of the spec.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from planner.errors import Diagnostic
from planner.solver.solve import Status

SPEC_SUFFIXES = (".yaml", ".yml")
DEFAULT_TIMEOUT = 60.0


@dataclass(frozen=True)
class CheckResult:
    """The outcome for one spec file, small enough to cross process boundaries."""

    spec: str
    status: Status
    diagnostics: tuple[Diagnostic, ...]
    report: dict  # the JSON object of `planner solve --format json`

    @property
    def passed(self) -> bool:
        return self.status is Status.SOLVED


def spec_files(paths: list[str]) -> tuple[list[str], list[Diagnostic]]:
    """The spec files under `paths` (directories searched recursively, sorted), and diagnostics for bad paths."""
    files, problems = [], []
    for path in paths:
        if os.path.isdir(path):
            found = sorted(os.path.join(root, name) for root, _, names in os.walk(path) for name in names
                           if name.endswith(SPEC_SUFFIXES))
            files += found
            if not found:
                problems.append(Diagnostic(path, 1, 1, "io", "no *.yaml or *.yml spec files in this directory",
                                           severity="warning"))
        else:
            files.append(path)  # a missing or unreadable file is reported by the loader, located at 1:1
    return files, problems


def check_file(path: str, timeout: float | None = DEFAULT_TIMEOUT) -> CheckResult:
    from planner.api import solve  # imported here so worker processes import it once, lazily

    try:
        result = solve(path, timeout=timeout)
    except Exception as e:  # a bug in planner: say which spec met it, and let the other specs be checked
        bug = Diagnostic(path, 1, 1, "internal", f"internal error in planner: {type(e).__name__}: {e}")
        return CheckResult(path, Status.INVALID, (bug,), {"spec": path, "status": "invalid", "solutions": [],
                                                          "diagnostics": [bug.to_dict()]})
    return CheckResult(result.spec, result.status, tuple(result.diagnostics), result.to_dict())


def check(paths: list[str], *, timeout: float | None = DEFAULT_TIMEOUT, jobs: int | None = None) -> list[CheckResult]:
    """Check every spec under `paths`, in the order of the files, in parallel when there are several."""
    files, _ = spec_files(paths)
    jobs = min(jobs or os.cpu_count() or 1, len(files))
    if jobs <= 1:
        return [check_file(f, timeout) for f in files]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(check_file, files, [timeout] * len(files)))
