"""`constraints:` expressions (SPEC 1.5): parsed with Python's `ast` against an allow-list,
never evaluated by Python. One evaluator serves Z3 terms and ints alike.

    enc2.kernel == up1.kernel            up1.shape[2] == enc1.shape[2]
    input.shape[2] % 32 == 0 and enc1.padding[0][1] <= 2
    input.shape[-1] == 64                (a negative index counts from the end, as in Python)

The language is bounded: an expression is at most MAX_LENGTH characters and nests at most
MAX_DEPTH levels (each operator, comparison, `not`, index and name is a level; `x and y and z`
and `a < b < c` are one level, a sum of n terms is n levels), brackets, `not`s and signs
counted before Python's parser sees the text; an int literal fits in int64.

`//` and `%` are Python's floor division and modulo, for divisors of either sign. A literal
zero divisor is an error; a plan under which a divisor is zero does not satisfy the constraint
(where Python would raise). `and`, `or` and chained comparisons short-circuit as in Python:
`b == 3 or a // (b - 3) > 1` holds for b = 3.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import z3

from planner import arithmetic as ar
from planner.arithmetic import INT64_MAX, Num
from planner.errors import ConstraintError

PARAMS = (
    "kernel",
    "stride",
    "padding",
    "dilation",
    "output_padding",
    "groups",
    "out_channels",
    "in_features",
    "out_features",
)
FIELDS = ("rf", "jump")  # receptive field and jump, per axis
MAX_LENGTH = 1000  # characters of one constraint, whitespace runs counted as one
MAX_DEPTH = 100  # nesting levels of one constraint
_COMPARE = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_SYMBOL = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.FloorDiv: "//", ast.Mod: "%"}
_NOT = re.compile(r"(?<![A-Za-z0-9_])not(?![A-Za-z0-9_])")
LANGUAGE = "use ints, <layer>.<param>, <layer>.shape[i], + - * // %, comparisons, and, or, not"


@dataclass(frozen=True)
class Ref:
    """`layer.attr[i][j]`: a layer's parameter or output shape, or `input.shape[i]`."""

    layer: str
    attr: str
    index: tuple[int, ...]

    def __str__(self) -> str:
        return f"{self.layer}.{self.attr}" + "".join(f"[{i}]" for i in self.index)


Expr = int | Ref | tuple  # tuples: ("arith", symbol, a, b), ("not", None, a), ("bool", "and"|"or", a, ...),
#                                ("compare", (fn, ...), a, b, ...)


@dataclass(frozen=True)
class Constraint:
    text: str
    position: int  # index in `constraints:`
    expr: Expr

    def refs(self) -> list[Ref]:
        return list(refs_of(self.expr))


def shown(text: str, limit: int = 60) -> str:
    """`text` fit to be quoted in a message: one line, printable, at most `limit` characters."""
    text = " ".join(text.split())
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse(text: str) -> Expr:
    """Parse one constraint; raises ConstraintError naming what is not allowed."""
    text = " ".join(text.split())  # a YAML block may break an expression over lines
    _check_size(text)
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as e:
        raise ConstraintError(f"not a valid expression: {_syntax_message(e)}") from None
    except (RecursionError, MemoryError):  # unreachable within the limits above, kept as a guard
        raise ConstraintError(f"the expression nests more than {MAX_DEPTH} levels deep") from None
    except ValueError as e:  # e.g. a NUL character
        raise ConstraintError(f"not a valid expression: {shown(str(e))}") from None
    if _depth(tree.body) > MAX_DEPTH:
        raise ConstraintError(f"the expression nests more than {MAX_DEPTH} levels deep")
    expr = _convert(tree.body)
    if not _is_bool(expr):
        raise ConstraintError("a constraint must be a comparison or a boolean combination of comparisons")
    return expr


def _check_size(text: str) -> None:
    """Refuse, before parsing, what Python's parser could only answer with RecursionError or MemoryError."""
    if len(text) > MAX_LENGTH:
        raise ConstraintError(f"the expression is {len(text)} characters long; the limit is {MAX_LENGTH}")
    depth = deepest = 0
    for char in text:
        if char in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")]}":
            depth -= 1
    nots = len(_NOT.findall(text))
    signs = max((len(m.replace(" ", "")) for m in re.findall(r"[-+~](?: ?[-+~])*", text)), default=0)
    if deepest > MAX_DEPTH or nots > MAX_DEPTH or signs > MAX_DEPTH:
        raise ConstraintError(f"the expression nests more than {MAX_DEPTH} levels deep")


def _syntax_message(e: SyntaxError) -> str:
    message = e.msg or "invalid syntax"
    if "integer string conversion" in message:
        return "an integer literal with too many digits"
    return shown(message, 100)


def _depth(root: ast.AST) -> int:
    """The nesting depth of the tree, without recursion."""
    deepest = 0
    stack: list[tuple[ast.AST, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            break
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.expr_context, ast.operator, ast.boolop, ast.cmpop, ast.unaryop)):
                continue
            stack.append((child, depth + 1))
    return deepest


def _is_bool(expr: Expr) -> bool:
    return isinstance(expr, tuple) and expr[0] in ("bool", "compare", "not")


def _number(node: ast.AST) -> Expr:
    expr = _convert(node)
    if _is_bool(expr):
        raise ConstraintError(
            f"'{_unparse(node)}' is a comparison, not a number; + - * // % and comparisons take numbers"
        )
    return expr


def _condition(node: ast.AST) -> Expr:
    expr = _convert(node)
    if not _is_bool(expr):
        raise ConstraintError(f"'{_unparse(node)}' is a number, not a comparison; and, or, not combine comparisons")
    return expr


def _unparse(node: ast.AST) -> str:
    try:
        return shown(ast.unparse(node))
    except (ValueError, RecursionError):
        return "..."


def _literal(value: int) -> int:
    if abs(value) > INT64_MAX:
        raise ConstraintError(
            f"the integer {shown(str(value), 30)} is out of range: no framework holds an integer "
            "beyond int64 (2**63 - 1)",
            "size-range",
        )
    return value


def _convert(node: ast.AST) -> Expr:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return _literal(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _SYMBOL:
        left, right = _number(node.left), _number(node.right)
        if isinstance(node.op, (ast.FloorDiv, ast.Mod)) and _constant(right) == 0:
            raise ConstraintError(f"'{_unparse(node)}' divides by zero")
        return ("arith", _SYMBOL[type(node.op)], left, right)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = _number(node.operand)
        if isinstance(node.op, ast.UAdd):
            return operand
        return -operand if isinstance(operand, int) else ("arith", "-", 0, operand)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return ("not", None, _condition(node.operand))
    if isinstance(node, ast.BoolOp):
        return ("bool", "and" if isinstance(node.op, ast.And) else "or", *(_condition(v) for v in node.values))
    if isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
        operands = [_number(node.left), *(_number(c) for c in node.comparators)]
        return ("compare", tuple(_COMPARE[type(op)] for op in node.ops), *operands)
    if isinstance(node, (ast.Attribute, ast.Subscript)):
        return _ref(node)
    what = type(node).__name__ if not isinstance(node, ast.Constant) else shown(repr(node.value), 30)
    raise ConstraintError(f"'{_unparse(node)}' is not allowed here ({what}); {LANGUAGE}")


def _constant(expr: Expr) -> int | None:
    """The value of an expression without references, else None."""
    if isinstance(expr, Ref) or (isinstance(expr, tuple) and any(True for _ in refs_of(expr))):
        return None
    defined, value = _evaluate(expr, lambda ref: 0)
    return value if defined is True else None


def _index(node: ast.AST) -> int | None:
    """A literal int index, negative ones included (`shape[-1]`: the last dim, as in Python)."""
    sign = 1
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        sign = -1 if isinstance(node.op, ast.USub) else 1
        node = node.operand
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return sign * node.value
    return None


def _ref(node: ast.AST) -> Ref:
    index: list[int] = []
    while isinstance(node, ast.Subscript):
        i = _index(node.slice)
        if i is None:
            raise ConstraintError(f"'{_unparse(node)}': an index must be a literal int")
        index.insert(0, i)
        node = node.value
    if not (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)):
        raise ConstraintError(f"'{_unparse(node)}' is not <layer>.<param> or <layer>.shape[i]")
    layer, attr = node.value.id, node.attr
    if attr == "shape" and len(index) != 1:
        raise ConstraintError(f"'{_unparse(node)}': write {layer}.shape[i] with one index")
    if attr in FIELDS and len(index) != 1:
        raise ConstraintError(f"'{_unparse(node)}': write {layer}.{attr}[axis] with one index")
    if attr not in ("shape", *FIELDS) and (layer == "input" or attr not in PARAMS):
        raise ConstraintError(
            f"'{shown(layer, 30)}.{shown(attr, 30)}' is not something a constraint can use; "
            f"use <layer>.shape[i] or one of {', '.join(PARAMS)}"
        )
    return Ref(layer, attr, tuple(index))


def refs_of(expr: Expr):
    if isinstance(expr, Ref):
        yield expr
    elif isinstance(expr, tuple):
        for operand in expr[2:]:
            yield from refs_of(operand)


def evaluate(expr: Expr, lookup: Callable[[Ref], Num]) -> Any:
    """The expression's value (Num or Bool), with every Ref replaced by lookup(ref).

    A constraint (a Bool) whose evaluation divides by zero is false, as the division would
    raise in Python; `and`, `or` and chained comparisons short-circuit as in Python."""
    defined, value = _evaluate(expr, lookup)
    if defined is True:
        return value
    return ar.all_of(defined, value) if _is_bool(expr) else value


def _evaluate(expr: Expr, lookup: Callable[[Ref], Num]) -> tuple[Any, Any]:
    """(defined, value): `defined` is a Bool that is false where Python would divide by zero."""
    if isinstance(expr, int):
        return True, expr
    if isinstance(expr, Ref):
        return True, lookup(expr)
    kind, how, *operands = expr
    if kind == "not":
        defined, value = _evaluate(operands[0], lookup)
        return defined, ar.negate(value)
    if kind == "arith":
        (da, a), (db, b) = _evaluate(operands[0], lookup), _evaluate(operands[1], lookup)
        defined = _and(da, db)
        if how in ("//", "%"):
            defined = _and(defined, b != 0)
            if defined is False:
                return False, 0
            q = _floor_div(a, b)
            return defined, q if how == "//" else a - b * q
        return defined, {"+": operator.add, "-": operator.sub, "*": operator.mul}[how](a, b)
    if kind == "bool":  # x and rest: defined if x is, and, unless x decides, rest is
        results = [_evaluate(o, lookup) for o in operands]
        values = [v for _, v in results]
        defined = results[-1][0]
        for d, v in reversed(results[:-1]):
            decides = ar.negate(v) if how == "and" else v
            defined = _and(d, _or(decides, defined))
        return defined, (ar.all_of if how == "and" else ar.any_of)(*values)
    results = [_evaluate(o, lookup) for o in operands]  # a < b < c: c is evaluated only when a < b
    holds = [compare(a, b) for compare, (_, a), (_, b) in zip(how, results, results[1:], strict=False)]
    defined = results[-1][0]
    for (d, _), h in reversed(list(zip(results[1:-1], holds[:-1], strict=True))):
        defined = _and(d, _or(ar.negate(h), defined))
    defined = _and(results[0][0], defined)
    return defined, ar.all_of(*holds)


def _floor_div(a: Num, b: Num) -> Num:
    """Python's floor(a / b) for b != 0 of either sign. Z3's division is Euclidean: floor only for b > 0."""
    if ar.is_int(a, b):
        return a // b if b != 0 else 0
    if isinstance(b, int):
        return a / b if b > 0 else (-a) / (-b)
    return z3.If(b > 0, a / b, (-a) / (-b))


def _and(a: Any, b: Any) -> Any:
    if a is True or b is False:
        return b
    if b is True or a is False:
        return a
    return ar.all_of(a, b)


def _or(a: Any, b: Any) -> Any:
    if a is True or b is False:
        return a
    if b is True or a is False:
        return b
    return ar.any_of(a, b)


def lookup_in(params: dict[str, Any], shape: tuple, ref: Ref, field: tuple | None = None) -> Num:
    """Resolve a Ref against a layer's reported params, output shape and receptive field; raises ConstraintError.

    A negative index counts from the end, as in Python: `shape[-1]` is the last dim."""
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
