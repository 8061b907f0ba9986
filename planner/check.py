"""`planner check`: every spec file under the given paths, loaded, solved and verified.

Independent specs are checked in parallel across cores. Each spec gets a time budget;
a solver give-up is reported as `unknown`, never as a failure of the spec.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass

from planner import signals
from planner.deadline import Deadline, alarm, alarm_inside
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
    """The spec files under `paths` (directories searched recursively, sorted), each once however often it
    is named, and diagnostics for bad paths."""
    files: list[str] = []
    problems: list[Diagnostic] = []
    for path in paths:
        if os.path.isdir(path):
            found = sorted(
                os.path.join(root, name)
                for root, _, names in os.walk(path)
                for name in names
                if name.endswith(SPEC_SUFFIXES)
            )
            files += found
            if not found:
                problems.append(
                    Diagnostic(path, 1, 1, "io", "no *.yaml or *.yml spec files in this directory", severity="warning")
                )
        else:
            files.append(path)  # a missing or unreadable file is reported by the loader, located at 1:1
    first: dict[str, str] = {}  # each file by the first name it is given under
    for f in files:
        first.setdefault(os.path.realpath(f), f)
    return list(first.values()), problems


def check_file(path: str, timeout: float | None = DEFAULT_TIMEOUT) -> CheckResult:
    """Load, solve and verify one spec within `timeout` seconds, all of it."""
    with signals.watched():  # around the except too: what the alarm cut short is freed inside
        return _check_file(path, timeout)


def _check_file(path: str, timeout: float | None) -> CheckResult:
    from planner.api import solve  # imported here so worker processes import it once, lazily

    deadline = Deadline(timeout)
    try:
        with alarm(deadline):
            result = solve(path, deadline=deadline)
    except Exception as e:  # a bug in planner: say which spec met it, and let the other specs be checked
        if (gave_up := alarm_inside(e)) is not None:  # the backstop alarm, between the API's own checks
            note = Diagnostic(path, 1, 1, "unknown", f"gave up ({gave_up.reason}); allow more time with --timeout")
            return CheckResult(
                path,
                Status.UNKNOWN,
                (note,),
                {"spec": path, "status": "unknown", "solutions": [], "diagnostics": [note.to_dict()]},
            )
        bug = Diagnostic(path, 1, 1, "internal", f"internal error in planner: {type(e).__name__}: {e}")
        return CheckResult(
            path,
            Status.INVALID,
            (bug,),
            {"spec": path, "status": "invalid", "solutions": [], "diagnostics": [bug.to_dict()]},
        )
    return CheckResult(result.spec, result.status, tuple(result.diagnostics), result.to_dict())


def check(
    paths: list[str],
    *,
    timeout: float | None = DEFAULT_TIMEOUT,
    jobs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[CheckResult]:
    """Check every spec under `paths`, in the order of the files, in parallel when there are several;
    `progress(done, total)` is called as each file's check ends."""
    files, _ = spec_files(paths)
    cores = os.cpu_count() or 1
    jobs = min(jobs or cores, cores, len(files))
    report = progress or (lambda done, total: None)
    if jobs <= 1:
        results = []
        for f in files:
            results.append(check_file(f, timeout))
            report(len(results), len(files))
        return results
    pool = ProcessPoolExecutor(max_workers=jobs, initializer=_worker_ignores_interrupts)
    try:
        futures = [pool.submit(check_file, f, timeout) for f in files]
        for done, _ in enumerate(as_completed(futures), 1):
            report(done, len(files))
        results = [future.result() for future in futures]
    except BaseException:  # Ctrl-C, SIGTERM: the workers end now, not after their specs
        _kill_workers(pool)
        raise
    pool.shutdown()
    return results


def _worker_ignores_interrupts() -> None:
    """Ctrl-C reaches the whole process group; the parent alone decides, and ends the workers."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _kill_workers(pool: ProcessPoolExecutor) -> None:
    workers = getattr(pool, "_processes", None) or {}  # no public way to kill them before Python 3.14
    for process in list(workers.values()):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            process.kill()
    pool.shutdown(wait=False, cancel_futures=True)
