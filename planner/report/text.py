"""Plain-text rendering: diagnostics GNU-style, plans as tables.

Every line goes through `escape.visible` on its way out: a control character that a spec put into
a file name, a layer name or a message is shown escaped (ESC as `\\x1b`, a newline as `\\n`,
a byte of a file name that is not UTF-8 as `\\xff`), never sent to the terminal raw.
"""

from __future__ import annotations

import os
from typing import Any

from planner.plan import LayerPlan, Plan
from planner.receptive import plan_fields, show_field
from planner.report.escape import visible
from planner.solver.solve import SolveResult, Status
from planner.spec.models import field_default

PARAM_ORDER = (
    "kernel",
    "stride",
    "padding",
    "dilation",
    "output_padding",
    "groups",
    "out_channels",
    "in_features",
    "out_features",
    "ceil_mode",
    "count_include_pad",
    "output_size",
    "scale_factor",
    "size",
    "value",
)


DEFAULT_COLUMNS = 100


def columns() -> int:
    """The width text output fits: $COLUMNS when it is a sensible number, else 100."""
    try:
        width = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        return DEFAULT_COLUMNS
    return width if 40 <= width <= 1000 else DEFAULT_COLUMNS


def render(result: SolveResult, *, with_count: bool = False, verbose: bool = False, width: int | None = None) -> str:
    """The report: diagnostics, then each plan as a table that fits `width` columns (default: `columns()`);
    a layer's parameters show only what differs from the spec format's defaults, unless `verbose`."""
    width = width or columns()
    lines = [str(d) for d in result.diagnostics]
    if result.status is not Status.SOLVED:
        if result.status is not Status.INVALID:
            lines.append(f"{result.spec}: {result.status.value}")
        return _text(lines)
    head = f"{result.spec}: solved"
    if with_count and result.count is not None:
        head += f", {result.count:,} plan{'s' if result.count != 1 else ''} in all"
    lines.append(head)
    for number, plan in enumerate(result.plans, 1):
        lines.append("")
        lines.extend(render_plan(plan, number if len(result.plans) > 1 else None, verbose=verbose, width=width))
    return _text(lines)


def _text(lines: list[str]) -> str:
    """The report: one line each, every one shown safely (`visible` leaves shown text as it is)."""
    return "\n".join(visible(line) for line in lines) + "\n"


def render_plan(
    plan: Plan, number: int | None = None, *, verbose: bool = False, width: int = DEFAULT_COLUMNS
) -> list[str]:
    title = f"plan {number}" if number is not None else "plan"
    if plan.objective is not None:
        title += f" (objective {plan.objective:,})"
    if plan.assignment:
        title += ": " + ", ".join(f"{k}={v}" for k, v in plan.assignment.items())
    if plan.for_all:
        title += " [holds for every for_all input size; shapes shown at the smallest]"
    fields = plan_fields(plan)
    rows: list[tuple[str, ...]] = [("layer", "op", "input", "output", "rf", "parameters (* solved)")]
    rows.append(("input", "", "", _shape(plan.input_shape), "1", ""))
    rows += [
        (ly.name, ly.op, _shape(ly.input_shape), _shape(ly.output_shape), _field(fields[ly.name]), _params(ly, verbose))
        for ly in plan.layers
    ]
    rows = [tuple(visible(cell) for cell in row) for row in rows]  # shown before measured, so columns line up
    widths = [max(len(r[c]) for r in rows) for c in range(5)]
    indent = 2 + sum(w + 2 for w in widths)
    out = _wrapped(visible(title), width, "  ")
    for row in rows:
        lead = "  " + "  ".join(cell.ljust(w) for cell, w in zip(row[:5], widths, strict=True)) + "  "
        if indent + 20 <= width or not row[5]:  # the parameters wrap under their own column
            out += _wrapped(lead + row[5], width, " " * indent)
        else:  # too narrow for a column of parameters: they go on lines of their own below the row
            out += [lead.rstrip(), *_wrapped("      " + row[5], width, "      ")]
    totals = plan.totals
    out += _wrapped(
        f"  totals: {totals['params']:,} params, {totals['macs']:,} MACs (FLOPs = 2 x MACs), "
        f"{totals['activations_mb']:,} MB of activations",
        width,
        "    ",
    )
    if plan.verification:
        shown = visible(plan.verification)
        out += _wrapped(f"  verified: {shown}" if plan.verified else f"  NOT verified: {shown}", width, "    ")
    return [line.rstrip() for line in out]


def _wrapped(line: str, width: int, indent: str) -> list[str]:
    """`line` broken at its last single spaces into lines of at most `width` columns (a word longer than
    that stays whole), continued on lines that start with `indent`; what comes before the last run of two
    spaces (a table row's aligned columns) is never broken."""
    if len(line) <= width:
        return [line]
    cut = line.rfind("  ") + 2 if "  " in line.strip() else len(line) - len(line.lstrip())
    out, current = [], line[:cut]
    for word in line[cut:].split(" "):
        if len(current) + len(word) > width and current.strip() and current != line[:cut]:
            out.append(current.rstrip())
            current = indent
        current += word + " "
    out.append(current.rstrip())
    return out


def _field(field) -> str:
    """The receptive field, once when it is the same on every axis."""
    if field is None:
        return ""
    sizes = [show_field(r) for r in field[0]]
    return sizes[0] if len(set(sizes)) == 1 else "x".join(sizes)


def _shape(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def _params(layer: LayerPlan, verbose: bool = False) -> str:
    parts = []
    for key in sorted(layer.params, key=lambda k: PARAM_ORDER.index(k) if k in PARAM_ORDER else len(PARAM_ORDER)):
        solved = key in layer.solved
        if not (verbose or solved) and _value(layer.params[key]) == _value(_default(layer, key)):
            continue
        parts.append(f"{key}={_value(layer.params[key])}{'*' if solved else ''}")
    return " ".join(parts)


def _default(layer: LayerPlan, key: str) -> Any:
    """What the spec format gives `key` when a layer leaves it out, normalised as the plan reports it
    (pooling's stride defaults to its kernel); a sentinel when there is no default."""
    default = field_default(layer.op, key)
    if key == "stride" and default is None:
        return layer.params.get("kernel")
    if key == "padding" and default == 0:
        return tuple((0, 0) for _ in layer.params[key])
    return default


def _value(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        if value and all(v == value[0] for v in value):  # the same on every axis
            return _value(value[0])
        return "[" + ",".join(_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
