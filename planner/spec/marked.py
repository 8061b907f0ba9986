"""The positioned tree blocks are expanded over: every value with the mark of the text it was copied
from, so that an expanded spec's errors still point at the lines that were written."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from planner.spec.models import Name
from planner.spec.yamlpos import Mark, Positioned

if TYPE_CHECKING:
    from planner.spec.blocks import _Scope


@dataclass(frozen=True, eq=False)
class Marked:
    """A value of the tree: a scalar, a list of Marked or a dict of key -> (key mark, Marked).

    `scope` is set on a value passed to a block: the layer names it holds resolve where it was written."""

    value: Any
    mark: Mark
    scope: _Scope | None = None  # a value passed to a block: its names resolve where it was written


Items = dict[str, tuple[Mark, Marked]]


def tree(source: Positioned, data: Any, path: tuple) -> Marked:
    mark = source.value_marks[path]
    if isinstance(data, dict):
        return Marked({k: (source.key_marks[(*path, k)], tree(source, v, (*path, k))) for k, v in data.items()}, mark)
    if isinstance(data, list):
        return Marked([tree(source, v, (*path, i)) for i, v in enumerate(data)], mark)
    return Marked(data, mark)


def flat(node: Marked, path: tuple, values: dict[tuple, Mark], keys: dict[tuple, Mark]) -> Any:
    """The plain data of `node`, recording the mark of every value and key under `path`."""
    values[path] = node.mark
    if isinstance(node.value, dict):
        result = {}
        for k, (key_mark, child) in node.value.items():
            keys[(*path, k)] = key_mark
            result[k] = flat(child, (*path, k), values, keys)
        return result
    if isinstance(node.value, list):
        return [flat(child, (*path, i), values, keys) for i, child in enumerate(node.value)]
    return node.value


def plain_data(node: Marked) -> Any:
    if isinstance(node.value, dict):
        return {k: plain_data(child) for k, (_, child) in node.value.items()}
    if isinstance(node.value, list):
        return [plain_data(child) for child in node.value]
    return node.value


def size_of(node: Marked) -> int:
    """How many values and keys `node` holds (the bound of MAX_NODES counts both)."""
    if isinstance(node.value, dict):
        return 1 + sum(1 + size_of(child) for _, child in node.value.values())
    if isinstance(node.value, list):
        return 1 + sum(size_of(child) for child in node.value)
    return 1


_NAME: TypeAdapter[str] = TypeAdapter(Name)


def is_name(value: Any) -> bool:
    try:
        _NAME.validate_python(value)
    except ValidationError:
        return False
    return True


def param_ref(value: Any) -> str | None:
    """`p` for a value written "$p", else None."""
    return value[1:] if isinstance(value, str) and value.startswith("$") and len(value) > 1 else None


def unknown_form(value: Any) -> bool:
    """Whether a value is an unknown of its own: "?", {min, max} or {one_of: [...]}."""
    return value == "?" or isinstance(value, dict)
