"""The neutral graph both readers produce: one `Node` per source op, already in planner's terms.

A reader (`torch_graph`, `onnx_graph`) maps each op of its source to a node with a planner op
(`conv`, `add`, ...) and planner's keys, per-axis tuples for kernel, stride, dilation and
output_padding, `(begin, end)` pairs for padding, its inputs by id and its traced output shape.
Shape-only plumbing (views, reshapes, transposes, flattens) is the op `RESHAPE`; the `simplify`
pass decides what it becomes. Aliases (clone, contiguous, getitem of a single result, ONNX
Identity) never become nodes: a reader maps them to what they alias.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from planner.errors import PlannerError
from planner.report.escape import visible

INPUT = "input"  # the id (and the spec's name) of the network's input
RESHAPE = "<reshape>"  # shape-only plumbing, resolved by simplify.collapse_plumbing
Shape = tuple[int, ...]


@dataclass(frozen=True)
class Node:
    """One op of the source: `id` is unique in the source, `label` how the source names the op
    (`attn.softmax`, `/attn/Softmax`), `scope` the module path that ran it (`layer1.0.conv1`; ''
    at the top), `source_op` its op there (`aten.conv2d.default`, `Conv`)."""

    id: str
    label: str
    scope: str
    op: str
    source_op: str
    params: dict[str, Any]
    inputs: tuple[str, ...]
    shape: Shape
    where: str | None = None  # `file.py:12`, the source line that ran it, when known
    moves_data: bool = False  # plumbing that reorders elements (transpose, permute), not only a view


@dataclass(frozen=True)
class Graph:
    """A network read from a source: its input shape, its nodes in execution order, its output's id."""

    source: str  # what the user named: `net.onnx`, `nets.py:make`
    name: str
    dialect: str
    input_shape: Shape
    nodes: tuple[Node, ...]
    output: str
    like: dict[str, str] = field(default_factory=dict)  # upsample id -> the id whose size it takes, when known


class ImportFailed(PlannerError):
    """The model cannot be read, traced or expressed in planner's ops: a located message, exit 1."""

    def __init__(self, where: str, code: str, message: str):
        super().__init__(message)
        self.where, self.code, self.message = where, code, message

    def __str__(self) -> str:
        return visible(f"{self.where}: error: {self.message} [{self.code}]")


def cannot_import(where: str, label: str, source_op: str, why: str) -> ImportFailed:
    """The error for a node planner cannot express, naming the node and its op."""
    return ImportFailed(where, "import-unsupported-op", f"cannot import node '{label}' ({source_op}): {why}")


# --- parameters in planner's per-axis form ------------------------------------------------------


def per_axis(value: Any, rank: int) -> tuple[int, ...]:
    """`3` or `[3]` -> `(3, 3)` for two axes; a list of `rank` entries as it is."""
    if isinstance(value, (list, tuple)):
        values = tuple(int(v) for v in value)
        return values * rank if len(values) == 1 else values
    return (int(value),) * rank


def symmetric(pads: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    """Per-axis padding `(p0, p1)` -> `((p0, p0), (p1, p1))`."""
    return tuple((p, p) for p in pads)


# --- names ---------------------------------------------------------------------------------------

_NOT_NAME = re.compile(r"[^A-Za-z0-9_]")


def sanitise(text: str) -> str:
    """A spec name for a source name: every character a name cannot hold becomes `_`
    (`layer1.0.conv1` -> `layer1_0_conv1`); a leading digit gets a `_` before it (`0.conv` -> `_0_conv`)."""
    name = _NOT_NAME.sub("_", text).strip("_") or "layer"
    return f"_{name}" if name[0].isdigit() else name


def layer_names(nodes: list[Node]) -> dict[str, str]:
    """A unique spec name per node, from its module path: the path alone for the one op of a leaf
    module (`layer1.0.conv1`), the path and a counter for a module called more than once
    (`layer1.0.relu`, `layer1.0.relu_1`), the path and the op for the ops of a module's own forward
    (`se.mul` -> `se_mul`), the op alone at the top level (`concat`, `flatten_1`)."""
    by_scope: dict[str, list[Node]] = {}
    for node in nodes:
        by_scope.setdefault(node.scope, []).append(node)
    parents = {scope.rsplit(".", n)[0] for scope in by_scope for n in range(1, scope.count(".") + 1)}
    wanted: dict[str, str] = {}
    for scope, members in by_scope.items():
        leaf = scope and scope not in parents and len({m.op for m in members}) == 1
        for m in members:
            wanted[m.id] = (
                sanitise(scope) if leaf else sanitise(f"{scope}.{_op_word(m.op)}" if scope else _op_word(m.op))
            )
    taken: set[str] = {INPUT}
    names: dict[str, str] = {}
    for node in nodes:  # in execution order, so counters follow the forward pass
        names[node.id] = _fresh(wanted[node.id], taken)
    return names


def _op_word(op: str) -> str:
    return "identity" if op == RESHAPE else op


def _fresh(name: str, taken: set[str]) -> str:
    candidate, n = name, 0
    while candidate in taken:
        n += 1
        candidate = f"{name}_{n}"
    taken.add(candidate)
    return candidate
