"""Plain-text rendering: diagnostics GNU-style, plans as tables.

Every line goes through `escape.visible` on its way out: a control character that a spec put into
a file name, a layer name or a message is shown escaped (ESC as `\\x1b`, a newline as `\\n`,
a byte of a file name that is not UTF-8 as `\\xff`), never sent to the terminal raw.
"""

from __future__ import annotations

import os
from typing import Any

from planner.graph import Network
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


# --columns: torchinfo's column names (and today's table), each with the header it shows
COLUMNS_BY_NAME = {
    "op": "op",
    "input_size": "input",
    "output_size": "output",
    "num_params": "param #",
    "params_percent": "param %",
    "kernel_size": "kernel",
    "mult_adds": "mult-adds",
    "receptive_field": "rf",
    "parameters": "parameters (* solved)",
}
DEFAULT_TABLE = ("op", "input_size", "output_size", "receptive_field", "parameters")
_NUMERIC = frozenset({"num_params", "params_percent", "mult_adds"})  # right-aligned
_FREE = "parameters"  # the column of free text: always the last, wrapped under itself


def parse_columns(text: str) -> tuple[str, ...]:
    """The table's columns from `--columns a,b,...` (torchinfo's names); `layer` always comes first and
    `parameters`, which wraps, last. Raises ValueError naming the columns there are."""
    names = [name.strip() for name in text.split(",")]
    known = ", ".join(["layer", *COLUMNS_BY_NAME])
    if not any(names):
        raise ValueError(f"names no column; the columns are: {known}")
    chosen: list[str] = []
    for name in names:
        if name not in COLUMNS_BY_NAME and name != "layer":
            raise ValueError(f"{name!r} is not a column; the columns are: {known}")
        if name in chosen:
            raise ValueError(f"names {name!r} twice")
        chosen.append(name)
    chosen = [name for name in chosen if name != "layer"]
    return tuple(sorted(chosen, key=lambda name: name == _FREE))  # a stable sort: only `parameters` moves


def render(
    result: SolveResult,
    *,
    with_count: bool = False,
    verbose: bool = False,
    width: int | None = None,
    table: tuple[str, ...] | None = None,
) -> str:
    """The report: diagnostics, then each plan as a table that fits `width` columns (default: `columns()`);
    a layer's parameters show only what differs from the spec format's defaults, unless `verbose`.
    `table` names the columns after `layer` (default `DEFAULT_TABLE`; see `parse_columns`)."""
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
    found = inferred_params(result.network) if result.network is not None else {}
    for number, plan in enumerate(result.plans, 1):
        lines.append("")
        lines.extend(
            render_plan(
                plan,
                number if len(result.plans) > 1 else None,
                verbose=verbose,
                width=width,
                table=table,
                inferred=found,
            )
        )
    return _text(lines)


def inferred_params(network: Network) -> dict[str, frozenset[str]]:
    """Per layer, the parameters planner works out from the shapes when the spec leaves them out (a linear's
    `in_features`, a crop's `size` from `like`): those whose default in the spec format is "worked out"."""
    return {
        node.name: frozenset(
            key
            for key in type(node.model).model_fields
            if key not in node.model.model_fields_set and field_default(node.op, key) is None
        )
        for node in network.nodes
    }


def _text(lines: list[str]) -> str:
    """The report: one line each, every one shown safely (`visible` leaves shown text as it is)."""
    return "\n".join(visible(line) for line in lines) + "\n"


def render_plan(
    plan: Plan,
    number: int | None = None,
    *,
    verbose: bool = False,
    width: int = DEFAULT_COLUMNS,
    table: tuple[str, ...] | None = None,
    inferred: dict[str, frozenset[str]] | None = None,
) -> list[str]:
    """One plan: its title, its table (see `render`), its totals and how it was verified."""
    title = f"plan {number}" if number is not None else "plan"
    if plan.objective is not None:
        title += f" (objective {plan.objective:,})"
    if plan.assignment:
        title += ": " + ", ".join(f"{k}={v}" for k, v in plan.assignment.items())
    if plan.for_all:
        title += " [holds for every for_all input size; shapes shown at the smallest]"
    out = _wrapped(visible(title), width, "  ")
    out += _table(plan, table or DEFAULT_TABLE, verbose, width, inferred or {})
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


def _table(
    plan: Plan, columns: tuple[str, ...], verbose: bool, width: int, inferred: dict[str, frozenset[str]]
) -> list[str]:
    """The rows of the plan's table, the header first. The fixed columns are aligned; when they do not fit
    `width`, the columns that do not fit continue on a line of their own under the row, as the header does.
    The parameters wrap under their own column while it keeps 20 columns, else go on lines below the row."""
    fixed = [c for c in columns if c != _FREE]
    cells = _cells(plan, fixed, verbose, inferred, with_params=_FREE in columns)
    cells = [tuple(visible(cell) for cell in row) for row in cells]  # shown before measured, so columns line up
    widths = [max(len(row[c]) for row in cells) for c in range(len(fixed) + 2)]  # the parameters last
    right = [False, *(c in _NUMERIC for c in fixed)]
    groups, starts = _groups(widths, width)
    out = []
    for row in cells:
        lines = [
            " " * start + "  ".join(row[c].rjust(widths[c]) if right[c] else row[c].ljust(widths[c]) for c in group)
            for group, start in zip(groups, starts, strict=True)
        ]
        lead, free = lines.pop() + "  ", row[-1]
        indent = starts[-1] + sum(widths[c] + 2 for c in groups[-1])
        if indent + 20 <= width or not free:  # the parameters wrap under their own column
            lines += _wrapped(lead + free, width, " " * indent)
        else:  # too narrow for a column of parameters: they go on lines of their own below the row
            lines += [lead.rstrip(), *_wrapped("      " + free, width, "      ")]
        out += [lines[0], *(line for line in lines[1:] if line.strip())]  # a continuation may have nothing to show
    return out


def _groups(widths: list[int], width: int) -> tuple[list[list[int]], list[int]]:
    """The fixed columns split into lines that fit `width` (the first line starts at 2, the next ones under
    the second column), and where each line starts."""
    groups, starts = [[0]], [2]
    follow = 2 + widths[0] + 2 if 2 + widths[0] + 2 + max(widths[1:-1], default=0) <= width else 6
    end = 2 + widths[0]
    for c in range(1, len(widths) - 1):
        if end + 2 + widths[c] > width and groups[-1] != []:
            groups.append([])
            starts.append(follow)
            end = follow - 2
        groups[-1].append(c)
        end += 2 + widths[c]
    return groups, starts


def _cells(
    plan: Plan, fixed: list[str], verbose: bool, inferred: dict[str, frozenset[str]], *, with_params: bool
) -> list[tuple[str, ...]]:
    """The table as text: the header, the input, then one row per layer; each row holds the layer, the
    fixed columns and the parameters (empty when not shown)."""
    fields = plan_fields(plan) if "receptive_field" in fixed else {}
    total = int(plan.totals["params"])
    header = ("layer", *(COLUMNS_BY_NAME[c] for c in fixed), COLUMNS_BY_NAME[_FREE] if with_params else "")
    start = {"output_size": _shape(plan.input_shape), "receptive_field": "1"}
    rows = [header, ("input", *(start.get(c, "") for c in fixed), "")]
    for layer in plan.layers:
        values = {
            "op": layer.op,
            "input_size": _shape(layer.input_shape),
            "output_size": _shape(layer.output_shape),
            "num_params": f"{layer.params_count:,}" if layer.params_count else "--",
            "params_percent": _percent(layer.params_count, total),
            "kernel_size": "x".join(map(str, layer.params["kernel"])) if "kernel" in layer.params else "--",
            "mult_adds": f"{layer.macs:,}" if layer.macs else "--",
            "receptive_field": _field(fields.get(layer.name)),
        }
        params = _params(layer, verbose, inferred.get(layer.name, frozenset())) if with_params else ""
        rows.append((layer.name, *(values[c] for c in fixed), params))
    return rows


def _percent(part: int, total: int) -> str:
    """A layer's share of the parameters, as torchinfo's params_percent: `--` for none."""
    if not part or not total:
        return "--"
    share = 100 * part / total
    return f"{share:.2f}%" if share >= 0.005 else "<0.01%"


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


def _params(layer: LayerPlan, verbose: bool = False, inferred: frozenset[str] = frozenset()) -> str:
    """The layer's parameters that differ from their defaults (all with `verbose`), `*` on those planner
    found: solved for, or inferred from the shapes (`inferred`: the keys it may have inferred)."""
    parts = []
    for key in sorted(layer.params, key=lambda k: PARAM_ORDER.index(k) if k in PARAM_ORDER else len(PARAM_ORDER)):
        one = key not in NOT_PER_AXIS
        shown, default = _value(layer.params[key], one), _value(_default(layer, key), one)
        found = key in layer.solved or (key in inferred and shown != default)  # a pool's stride is its kernel
        if not (verbose or found) and shown == default:
            continue
        parts.append(f"{key}={shown}{'*' if found else ''}")
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


NOT_PER_AXIS = frozenset({"sizes", "shape", "dims", "axes", "normalized_shape"})  # lists shown whole


def _value(value: Any, one_for_all: bool = True) -> str:
    """A parameter as text; a per-axis value the same on every axis as one value (`one_for_all`)."""
    if isinstance(value, (tuple, list)):
        if one_for_all and value and all(v == value[0] for v in value):  # the same on every axis
            return _value(value[0])
        return "[" + ",".join(_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
