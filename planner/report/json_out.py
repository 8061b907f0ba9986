"""`--format json` (SPEC 2.1): one object on stdout; short lists stay on one line.

The output is strict JSON (RFC 8259) in ASCII, so it is valid UTF-8 whatever the spec holds:

* a string keeps every character it has (json escapes control characters, `\\u001b`), except
  lone surrogates, which no UTF-8 text can hold: a file name that is not UTF-8 reaches Python
  with each undecodable byte as a surrogate escape, and is written with that byte shown as
  `\\xHH` (`b"\\xff.yaml"` is `"\\\\xff.yaml"`), as the text output shows it (`escape.unicode_safe`);
* a number that is not finite (NaN, Infinity) has no JSON form; the spec loader refuses them, so
  one reaching a report is a bug in planner: `InternalError`, naming where it is (exit 3).
"""

from __future__ import annotations

import json
import math

from planner.errors import InternalError
from planner.report.escape import unicode_safe
from planner.solver.solve import SolveResult


def _flat(value: object) -> bool:
    """A list of numbers, or of lists of numbers (a shape, a kernel, padding pairs)."""
    return isinstance(value, list) and all(
        not isinstance(v, (dict, list)) or isinstance(v, list) and all(not isinstance(x, (dict, list)) for x in v)
        for v in value
    )


def strict(value: object, where: str = "$") -> object:
    """`value` made fit for strict JSON: strings valid Unicode, tuples lists; raises InternalError for
    a float that is not finite, or a value json cannot write."""
    if isinstance(value, str):
        return unicode_safe(value)
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InternalError(f"the JSON report would hold {value!r} at {where}, which JSON cannot write")
        return value
    if isinstance(value, dict):
        return {strict(k, where) if isinstance(k, str) else k: strict(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(v, f"{where}[{n}]") for n, v in enumerate(value)]
    raise InternalError(f"the JSON report would hold a {type(value).__name__} at {where}")


def dumps(value: object, indent: int = 0) -> str:
    """Indented strict JSON with shapes and per-axis parameters kept on one line."""
    return _dumps(strict(value), indent)


def _dumps(value: object, indent: int) -> str:
    pad, inner = " " * indent, " " * (indent + 2)
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(str(k))}: {_dumps(v, indent + 2)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list) and value and not _flat(value):
        return "[\n" + ",\n".join(inner + _dumps(v, indent + 2) for v in value) + f"\n{pad}]"
    return json.dumps(value, separators=(", ", ": "), allow_nan=False)


def render(result: SolveResult, *, with_count: bool = False) -> str:
    return dumps(result.to_dict(with_count=with_count)) + "\n"
