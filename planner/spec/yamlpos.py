"""YAML text -> plain data plus the line and column of every value and key.

PyYAML composes the node tree once; we convert it ourselves so every value keeps its
``start_mark``, and :meth:`Positioned.locate` walks a pydantic error ``loc`` back to the
nearest node. Scalars resolve like YAML 1.2 core (``on``, ``yes``, ``2024-01-01``, ``1_000``
stay strings). Every problem is a :class:`SpecError` with one located :class:`Diagnostic`.

Events come from libyaml's C parser when PyYAML has it (six times faster on a 200-layer
spec), composed by PyYAML's Python composer with our guards: libyaml's own composer has no
depth hook and kills the interpreter (SIGSEGV) on deeply nested input such as 100 000 ``[``.
Text the C parser refuses is read again by the pure-Python parser, so every syntax message
is PyYAML's; text with tabs or control characters goes to it at once (libyaml is laxer
there: it reads `0<tab>` as 0).
"""

from __future__ import annotations

import codecs
import difflib
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent, CollectionStartEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.reader import Reader
from yaml.resolver import Resolver

from planner.errors import Diagnostic, SpecError

MAX_NODES = 100_000
MAX_BYTES = 8 * 2**20  # a spec file larger than this is refused unread (the YAML scanner reads ~2 MB/s)
MAX_DEPTH = 200
QUESTION_HINT = 'a bare ? is not a value in YAML (it starts a mapping key); write "?" in quotes'
EMPTY = "the file is empty; a spec needs at least `input` and `layers`"
TOO_DEEP = f"the YAML is nested more than {MAX_DEPTH} levels deep"
TOO_BIG = f"the document has more than {MAX_NODES} values; a spec is far smaller"
_CORE = "tag:yaml.org,2002:"
_PLAIN = "planner:plain"  # the tag of a plain untagged scalar until `_Converter.scalar` resolves it
# where libyaml reads unlike PyYAML, in the text: tabs, tags, %, Unicode line breaks, a BOM
# past the start, block scalars (`|#`); and in the events: see `_Guarded.reread_lax`
_LAX = re.compile(r"[\t!%\x85\u2028\u2029\ufeff]|(?:^|[\s\[{,])[|>]", re.MULTILINE)
_BREAK = re.compile("\r\n|[\n\r\x85\u2028\u2029]")  # what PyYAML counts as a line break
_SCALARS = {  # YAML 1.2 core schema, in resolution order; every other plain scalar is a string
    "bool": re.compile(r"(?i:true|false)\Z"),
    "null": re.compile(r"(?:~|(?i:null)|)\Z"),
    "int": re.compile(r"(?:[-+]?[0-9]+|0x[0-9a-fA-F]+|0o[0-7]+)\Z"),
    "float": re.compile(
        r"(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?i:inf)|\.(?i:nan))\Z"
    ),
}
_BASES = {"0x": 16, "0o": 8}
# the core types in resolution order, one named group each: one match finds a plain scalar's type
_PLAIN_KINDS = re.compile("|".join(f"(?P<{kind}>{pattern.pattern})" for kind, pattern in _SCALARS.items()))


class Mark(NamedTuple):
    """A 1-based position in the source text (a named tuple: one is made for every node and key)."""

    line: int
    column: int

    @classmethod
    def of(cls, mark: yaml.Mark) -> Mark:
        return cls(mark.line + 1, mark.column + 1)


@dataclass(frozen=True)
class Note:
    """A place that explains a node of an expanded tree: the use of the block it was copied from."""

    mark: Mark
    message: str
    code: str = "block-use"


@dataclass(frozen=True)
class Positioned:
    """Loaded data and where each value and each mapping key starts, by path (a tuple).

    A tree whose blocks were expanded (`planner.spec.blocks`) keeps the marks of the text each
    value was copied from, and in `contexts` the notes of the nodes under a path: the block uses
    they were expanded from, innermost first."""

    data: Any
    file: str
    value_marks: dict[tuple, Mark]
    key_marks: dict[tuple, Mark]
    contexts: Mapping[tuple, tuple[Note, ...]] = field(default_factory=dict)

    def path_of(self, loc: Sequence) -> tuple:
        """The path of the deepest node `loc` reaches, skipping elements that are no key or index
        there (pydantic tags such as 'conv' or 'function-after[...]')."""
        node: Any = self.data
        path: tuple = ()
        for part in loc:
            if isinstance(node, dict) and isinstance(part, str) and part in node:
                node, path = node[part], (*path, part)
            elif isinstance(node, list) and type(part) is int and 0 <= part < len(node):
                node, path = node[part], (*path, part)
        return path

    def locate(self, loc: Sequence, *, key: bool = False) -> Mark:
        """Return the mark of the deepest node `loc` reaches (`path_of`); with `key`, the mark of
        that node's key if it is a mapping entry."""
        path = self.path_of(loc)
        return self.key_marks[path] if key and path in self.key_marks else self.value_marks[path]

    def diagnostic(
        self, loc: Sequence, code: str, message: str, *, key: bool = False, layer: str | None = None
    ) -> Diagnostic:
        """Return a Diagnostic located at `locate(loc, key=key)`."""
        mark = self.locate(loc, key=key)
        return Diagnostic(self.file, mark.line, mark.column, code, message, layer=layer)

    def notes(self, loc: Sequence) -> list[Diagnostic]:
        """The notes of the node `loc` reaches: where the blocks it was expanded from are used."""
        path = self.path_of(loc)
        found = next((self.contexts[path[:n]] for n in range(len(path), -1, -1) if path[:n] in self.contexts), ())
        return [Diagnostic(self.file, n.mark.line, n.mark.column, n.code, n.message, "note") for n in found]

    def with_notes(self, diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
        """Each diagnostic followed by the notes of the layer it names (`Diagnostic.layer`), when that
        layer comes from a block: for diagnostics made after loading (references, shapes, plans)."""
        diagnostics = list(diagnostics)
        layers = self.data.get("layers") if isinstance(self.data, dict) else None
        index = {
            layer["name"]: i
            for i, layer in enumerate(layers if isinstance(layers, list) else ())
            if isinstance(layer, dict) and isinstance(layer.get("name"), str)
        }
        result: list[Diagnostic] = []
        for d in diagnostics:
            result.append(d)
            if d.severity != "note" and d.layer in index:
                result.extend(n for n in self.notes(("layers", index[d.layer])) if n not in diagnostics)
        return result


class _Reread(Exception):
    """The fast loader met text it may read unlike PyYAML: the pure-Python loader reads it again."""


class _Problem(Exception):
    """A located problem (mark, code, message), raised before the file name is attached."""


@dataclass(eq=False)
class _Alias:
    """One use of an anchor (`*name`), kept apart so that the use has its own position."""

    target: Node
    name: str
    start_mark: yaml.Mark


class _Guarded:
    """The composer's guards: nesting and size limits, alias uses kept as _Alias; plain scalars left for
    `_Converter.scalar` to resolve (YAML 1.2 core), once."""

    yaml_implicit_resolvers: dict = {}
    depth = 0
    composed = 0  # nodes composed so far: the size bound holds while composing, not after
    reread_lax = False  # for libyaml's events: read again what libyaml may read unlike PyYAML

    def compose_node(self, parent: Node | None, index: Any) -> Any:
        event = self.peek_event()  # type: ignore[attr-defined]
        if isinstance(event, AliasEvent):
            return _Alias(super().compose_node(parent, index), event.anchor, event.start_mark)  # type: ignore[misc]
        self.composed += 1
        if self.composed > MAX_NODES:
            raise _Problem(Mark.of(event.start_mark), "yaml-size", TOO_BIG)
        if not isinstance(event, CollectionStartEvent):
            if self.reread_lax and not event.style and (not event.value or "?" in event.value):
                raise _Reread  # libyaml places empty values elsewhere and reads a ? in `[0?]`, `a b?`
            if event.anchor is None:  # PyYAML's compose_scalar_node without its calls: most nodes are these
                self.get_event()  # type: ignore[attr-defined]
                tag = (
                    event.tag if event.tag not in (None, "!") else self.resolve(ScalarNode, event.value, event.implicit)
                )
                return ScalarNode(tag, event.value, event.start_mark, event.end_mark, style=event.style)
            return super().compose_node(parent, index)  # type: ignore[misc]
        if self.depth >= MAX_DEPTH:  # before PyYAML's recursive composer hits RecursionError
            raise _Problem(Mark.of(event.start_mark), "yaml-depth", TOO_DEEP)
        self.depth += 1
        try:
            return super().compose_node(parent, index)  # type: ignore[misc]
        finally:
            self.depth -= 1

    def resolve(self, kind: type, value: str, implicit: tuple[bool, bool]) -> str:
        """The tag of an untagged node: a plain scalar's is found from its text later, a quoted one is a str."""
        if kind is ScalarNode:
            return _PLAIN if implicit[0] else _CORE + "str"
        return _CORE + ("seq" if kind is SequenceNode else "map")


class _Loader(_Guarded, yaml.SafeLoader):
    """PyYAML's pure-Python parser under the guards: the reference for every message."""


_FastLoader: type | None = None
try:
    from yaml.cyaml import CParser
except ImportError:  # PyYAML built without libyaml: the pure-Python parser reads everything
    pass
else:

    class _CLoader(_Guarded, Composer, CParser, SafeConstructor, Resolver):  # type: ignore[misc, valid-type]
        """libyaml's parser for the events, PyYAML's composer (not libyaml's) under the guards."""

        reread_lax = True

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)

    _FastLoader = _CLoader


def _describe(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return "null" if value is None else "true/false"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, (list, SequenceNode)) else "a mapping"


class _Converter:
    """Turns composed nodes into plain data, recording the mark of every value and key."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.values: dict[tuple, Mark] = {}
        self.keys: dict[tuple, Mark] = {}
        self.count = 0
        self.open: set[int] = set()  # ids of the collections being converted: alias loops
        self.alias: Mark | None = None  # the outermost alias being expanded
        self.scalars: dict[tuple[str, str], Any] = {}  # (tag, text) -> value

    def tick(self, mark: Mark) -> None:
        self.count += 1
        if self.count > MAX_NODES:
            if self.alias is not None:
                message = f"the document expands to more than {MAX_NODES} nodes through this alias (alias bomb?)"
                raise _Problem(self.alias, "yaml-alias", message)
            raise _Problem(mark, "yaml-size", TOO_BIG)

    def value(self, node: Any, path: tuple, depth: int = 0, mark: Mark | None = None) -> Any:
        if mark is None:
            at = node.start_mark
            mark = Mark(at.line + 1, at.column + 1)
        if isinstance(node, _Alias):
            if id(node.target) in self.open:
                message = f"the alias *{node.name} is used inside its own anchor (recursive alias)"
                raise _Problem(mark, "yaml-alias", message)
            outer, self.alias = self.alias, self.alias or mark
            value = self.value(node.target, path, depth, mark)
            self.alias = outer
            return value
        self.tick(mark)
        self.values[path] = mark
        if isinstance(node, ScalarNode):
            return self.scalar(node, mark)
        if depth >= MAX_DEPTH:  # reachable through aliases only
            raise _Problem(self.alias or mark, "yaml-depth", TOO_DEEP)
        if node.tag not in (_CORE + "seq", _CORE + "map"):
            raise _Problem(mark, "yaml-tag", f"unsupported tag {node.tag.replace(_CORE, '!!')}")
        self.open.add(id(node))
        if isinstance(node, SequenceNode):
            result: Any = [self.value(v, (*path, i), depth + 1) for i, v in enumerate(node.value)]
        else:
            result = self.mapping(node, path, depth)
        self.open.discard(id(node))
        return result

    def mapping(self, node: MappingNode, path: tuple, depth: int) -> dict[str, Any]:
        start = node.start_mark.index  # `[1, ?]` is valid YAML: [1, {null: null}]
        if (
            self.text[start : start + 1] == "?"
            and len(node.value) == 1
            and all(isinstance(n, ScalarNode) and _kind(n) == "null" for n in node.value[0])
        ):
            raise _Problem(Mark.of(node.start_mark), "yaml-syntax", QUESTION_HINT)
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            at = key_node.start_mark
            key_mark = Mark(at.line + 1, at.column + 1)
            key_node = key_node.target if isinstance(key_node, _Alias) else key_node
            self.tick(key_mark)
            key = self.scalar(key_node, key_mark) if isinstance(key_node, ScalarNode) else key_node
            if not isinstance(key, str):
                raw = key_node.value if isinstance(key_node, ScalarNode) else None
                quote = f'; write "{raw}" in quotes' if raw else ""
                message = f"mapping keys must be plain names, not {_describe(key)}{quote}"
                raise _Problem(key_mark, "yaml-syntax", message)
            entry = (*path, key)
            if key in result:
                message = f"duplicate key {key!r} (first defined at line {self.keys[entry].line})"
                raise _Problem(key_mark, "duplicate-key", message)
            self.keys[entry] = key_mark
            result[key] = self.value(value_node, entry, depth + 1)
        return result

    def scalar(self, node: ScalarNode, mark: Mark) -> Any:
        """The scalar's value (YAML 1.2 core); scalars of the same tag and text, most of a spec's, resolved once."""
        key = (node.tag, node.value)
        if key in self.scalars:
            return self.scalars[key]
        value = self.scalars[key] = self._resolve(node, mark)
        return value

    def _resolve(self, node: ScalarNode, mark: Mark) -> Any:
        kind, text = _kind(node), node.value
        if kind == "str":
            return text
        if kind not in _SCALARS:
            raise _Problem(mark, "yaml-tag", f"unsupported tag {node.tag.replace(_CORE, '!!')}")
        if node.tag != _PLAIN and not _SCALARS[kind].match(text):
            raise _Problem(mark, "yaml-tag", f"{text!r} is not a valid {kind}")
        if kind in ("bool", "null"):
            return text.lower() == "true" if kind == "bool" else None
        if kind == "float":  # float() reads 'inf', '-INF', 'NaN' once the dot is gone
            special = text.lstrip("+-").lower() in (".inf", ".nan")
            return float(text.replace(".", "", 1) if special else text)
        base = _BASES.get(text[:2], 10)
        try:
            return int(text[2:] if base != 10 else text, base)
        except ValueError:  # Python refuses decimal strings longer than 4300 digits
            raise _Problem(mark, "yaml-number", f"an integer with {len(text)} digits") from None


def _kind(node: ScalarNode) -> str:
    """A scalar's YAML 1.2 core type: its tag's, or for a plain untagged one the first type its text reads as."""
    if node.tag == _PLAIN:
        found = _PLAIN_KINDS.match(node.value)
        return found.lastgroup if found and found.lastgroup else "str"
    return node.tag.removeprefix(_CORE)


def did_you_mean(word: str, choices: Any) -> str:
    """` (did you mean 'x'?)` for the choice closest to `word`, never `word` itself; else ''."""
    match = difflib.get_close_matches(str(word), [str(c) for c in choices if str(c) != str(word)], n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


def _mark_at(text: str, index: int) -> Mark:
    lines = _BREAK.split(text[:index])
    return Mark(len(lines), len(lines[-1]) + 1)


def _decode(source: str | bytes) -> str:
    if isinstance(source, str):
        return source.removeprefix("\ufeff")
    source = bytes(source).removeprefix(codecs.BOM_UTF8)
    try:
        return source.decode("utf-8")
    except UnicodeDecodeError as error:
        before = source[: error.start].decode("utf-8")
        message = f"the file is not UTF-8 text (byte 0x{source[error.start]:02x}); save it as UTF-8"
        raise _Problem(_mark_at(before, len(before)), "encoding", message) from None


def _syntax_problem(error: yaml.MarkedYAMLError, text: str) -> _Problem:
    at, context = error.problem_mark or error.context_mark, " ".join(str(error.context).split())
    char = text[at.index : at.index + 1] if at else ""
    if error.context == "expected a single document in the stream":
        message = "a spec is one YAML document, but a second one starts here"
    elif char == "?":
        message = QUESTION_HINT
    elif context.startswith("found duplicate anchor") and error.context_mark:
        message = f"{context.split(';')[0]} (first defined at line {error.context_mark.line + 1})"
    else:
        message = " ".join(str(error.problem or context).split())
        if error.problem and error.context and error.context_mark:
            message += f" ({context} at line {error.context_mark.line + 1})"
    line = _BREAK.split(text)[at.line] if at else ""
    if char == "\t" or "\t" in line[: len(line) - len(line.lstrip(" \t"))]:
        message = message.replace("character '\\t'", "a tab") + "; indent with spaces, not tabs"
    return _Problem(Mark.of(at) if at else Mark(1, 1), "yaml-syntax", message)


def _compose(text: str) -> Node | None:
    if _FastLoader is not None and not _LAX.search(text) and not Reader.NON_PRINTABLE.search(text):
        try:
            return _FastLoader(text).get_single_node()  # the guards' problems propagate as they are
        except (yaml.YAMLError, RecursionError, _Reread):
            pass  # read again below, for PyYAML's message and position
    loader = None
    try:
        loader = _Loader(text)
        return loader.get_single_node()
    except yaml.reader.ReaderError as error:
        char = error.character if isinstance(error.character, int) else ord(error.character)
        what = "a NUL byte" if char == 0 else f"the control character U+{char:04X}"
        message = f"the file contains {what}; it looks like binary data, not YAML text"
        raise _Problem(_mark_at(text, error.position), "encoding", message) from None
    except yaml.MarkedYAMLError as error:
        raise _syntax_problem(error, text) from None
    except RecursionError:
        mark = Mark.of(loader.get_mark()) if loader else Mark(1, 1)
        raise _Problem(mark, "yaml-depth", TOO_DEEP) from None
    finally:
        if loader is not None:
            loader.dispose()


def load_yaml(source: str | bytes, file: str) -> Positioned:
    """Return the one YAML document in `source`, a mapping, with the marks of its nodes."""
    if len(source) > MAX_BYTES:
        raise SpecError(
            Diagnostic(file, 1, 1, "io", f"the spec is larger than {MAX_BYTES // 2**20} MiB; a spec is a few kilobytes")
        )
    try:
        text = _decode(source)
        root = _compose(text)
        if root is None or (isinstance(root, ScalarNode) and _kind(root) == "null" and not root.value):
            raise _Problem(Mark(1, 1), "empty", EMPTY)
        converter = _Converter(text)
        if not isinstance(root, MappingNode):
            mark = Mark.of(root.start_mark)
            what = _describe(converter.scalar(root, mark) if isinstance(root, ScalarNode) else root)
            raise _Problem(mark, "type", f"a spec must be a mapping (key: value), not {what}")
        data = converter.value(root, ())
    except _Problem as problem:
        mark, code, message = problem.args
        raise SpecError(Diagnostic(file, mark.line, mark.column, code, message)) from None
    except RecursionError:
        raise SpecError(Diagnostic(file, 1, 1, "yaml-depth", TOO_DEEP)) from None
    return Positioned(data, file, converter.values, converter.keys)


def load_yaml_file(path: str | os.PathLike) -> Positioned:
    """Return the loaded file; diagnostics name it as the path was given."""
    file = os.fsdecode(path)
    try:
        if os.path.exists(path) and not os.path.isfile(path):  # a directory, a FIFO, /dev/zero
            what = "Is a directory" if os.path.isdir(path) else "not a regular file (a pipe or a device)"
            raise SpecError(Diagnostic(file, 1, 1, "io", f"cannot read the spec: {what}"))
        with open(path, "rb") as handle:
            source = handle.read(MAX_BYTES + 1)  # load_yaml refuses what is longer
    except OSError as error:
        reason = f"cannot read the file: {error.strerror or error}"
        raise SpecError(Diagnostic(file, 1, 1, "io", reason)) from None
    return load_yaml(source, file)
