"""`constraints:` expressions (SPEC 1.5): parsed with Python's `ast` against an allow-list,
never evaluated by Python. One evaluator serves Z3 terms and ints alike.

    enc2.kernel == up1.kernel            up1.shape[2] == enc1.shape[2]
    input.shape[2] % 32 == 0 and enc1.padding[0][1] <= 2
"""

from __future__ import annotations

import ast
import operator
from dataclasses import dataclass
from typing import Any, Callable, Union

from planner import arithmetic as ar
from planner.arithmetic import Num

PARAMS = ("kernel", "stride", "padding", "dilation", "output_padding", "groups", "out_channels", "in_features",
          "out_features")
FIELDS = ("rf", "jump")  # receptive field and jump, per axis
_ARITH = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.FloorDiv: ar.floor_div,
          ast.Mod: operator.mod}
_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
            ast.Gt: operator.gt, ast.GtE: operator.ge}


class ConstraintError(ValueError):
    """An expression outside the allowed language, or naming something that does not exist."""


@dataclass(frozen=True)
class Ref:
    """`layer.attr[i][j]`: a layer's parameter or output shape, or `input.shape[i]`."""

    layer: str
    attr: str
    index: tuple[int, ...]

    def __str__(self) -> str:
        return f"{self.layer}.{self.attr}" + "".join(f"[{i}]" for i in self.index)


Expr = Union[int, Ref, tuple]  # tuples: ("op", fn, operands...)


@dataclass(frozen=True)
class Constraint:
    text: str
    position: int  # index in `constraints:`
    expr: Expr

    def refs(self) -> list[Ref]:
        return list(refs_of(self.expr))


def parse(text: str) -> Expr:
    """Parse one constraint; raises ConstraintError naming what is not allowed."""
    try:
        tree = ast.parse(" ".join(text.split()), mode="eval")  # a YAML block may break an expression over lines
    except SyntaxError as e:
        raise ConstraintError(f"not a valid expression: {e.msg}") from None
    expr = _convert(tree.body)
    if isinstance(expr, (int, Ref)) or expr[0] not in ("bool", "compare", "not"):
        raise ConstraintError("a constraint must be a comparison or a boolean combination of comparisons")
    return expr


def _convert(node: ast.AST) -> Expr:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITH:
        return ("arith", _ARITH[type(node.op)], _convert(node.left), _convert(node.right))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = _convert(node.operand)
        return ("arith", operator.sub, 0, operand) if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return ("not", None, _convert(node.operand))
    if isinstance(node, ast.BoolOp):
        combine = ar.all_of if isinstance(node.op, ast.And) else ar.any_of
        return ("bool", combine, *(_convert(v) for v in node.values))
    if isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
        operands = [_convert(node.left), *(_convert(c) for c in node.comparators)]
        return ("compare", tuple(_COMPARE[type(op)] for op in node.ops), *operands)
    if isinstance(node, (ast.Attribute, ast.Subscript)):
        return _ref(node)
    what = type(node).__name__ if not isinstance(node, ast.Constant) else repr(node.value)
    raise ConstraintError(f"'{ast.unparse(node)}' is not allowed here ({what}); use ints, <layer>.<param>, "
                          "<layer>.shape[i], + - * // %, comparisons, and, or, not")


def _ref(node: ast.AST) -> Ref:
    index: list[int] = []
    while isinstance(node, ast.Subscript):
        if not (isinstance(node.slice, ast.Constant) and type(node.slice.value) is int):
            raise ConstraintError(f"'{ast.unparse(node)}': an index must be a literal int")
        index.insert(0, node.slice.value)
        node = node.value
    if not (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)):
        raise ConstraintError(f"'{ast.unparse(node)}' is not <layer>.<param> or <layer>.shape[i]")
    layer, attr = node.value.id, node.attr
    if attr == "shape" and len(index) != 1:
        raise ConstraintError(f"'{ast.unparse(node)}': write {layer}.shape[i] with one index")
    if attr in FIELDS and len(index) != 1:
        raise ConstraintError(f"'{ast.unparse(node)}': write {layer}.{attr}[axis] with one index")
    if attr not in ("shape", *FIELDS) and (layer == "input" or attr not in PARAMS):
        raise ConstraintError(f"'{layer}.{attr}' is not something a constraint can use; "
                              f"use <layer>.shape[i] or one of {', '.join(PARAMS)}")
    return Ref(layer, attr, tuple(index))


def refs_of(expr: Expr):
    if isinstance(expr, Ref):
        yield expr
    elif isinstance(expr, tuple):
        for operand in expr[2:]:
            yield from refs_of(operand)


def evaluate(expr: Expr, lookup: Callable[[Ref], Num]) -> Any:
    """The expression's value (Num or Bool), with every Ref replaced by lookup(ref)."""
    if isinstance(expr, int):
        return expr
    if isinstance(expr, Ref):
        return lookup(expr)
    kind, fn, *operands = expr
    values = [evaluate(o, lookup) for o in operands]
    if kind == "arith":
        return fn(*values)
    if kind == "not":
        return ar.negate(values[0])
    if kind == "bool":
        return fn(*values)
    return ar.all_of(*(compare(a, b) for compare, a, b in zip(fn, values, values[1:])))


def lookup_in(params: dict[str, Any], shape: tuple, ref: Ref, field: tuple | None = None) -> Num:
    """Resolve a Ref against a layer's reported params, output shape and receptive field; raises ConstraintError."""
    if ref.attr in FIELDS:
        if field is None:
            raise ConstraintError(f"layer '{ref.layer}' has no spatial axes, so no '{ref.attr}'")
        value: Any = field[FIELDS.index(ref.attr)]
    elif ref.attr == "shape":
        value = shape
    elif ref.attr in params:
        value = params[ref.attr]
    else:
        raise ConstraintError(f"layer '{ref.layer}' has no '{ref.attr}'")
    index = ref.index
    if ref.attr != "shape" and isinstance(value, tuple) and not index:
        index = (0, 0) if ref.attr == "padding" else (0,)  # a parameter shared by all axes
    for i in index:
        if not isinstance(value, tuple) or not -len(value) <= i < len(value):
            raise ConstraintError(f"'{ref}' is out of range")
        value = value[i]
    if isinstance(value, tuple):
        raise ConstraintError(f"'{ref}' is a list; add an index")
    return value
