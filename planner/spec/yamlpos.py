"""YAML text -> plain data plus the line and column of every value and key.

PyYAML's parser gives the events; we read them straight into plain data (no node tree) so
every value keeps its ``start_mark``, and :meth:`Positioned.locate` walks a pydantic error
``loc`` back to the nearest node. Scalars resolve like YAML 1.2 core (``on``, ``yes``,
``2024-01-01``, ``1_000`` stay strings). Every problem is a :class:`SpecError` with one located :class:`Diagnostic`.

Events come from libyaml's C parser when PyYAML has it (six times faster on a 200-layer
spec), read under our guards (nesting, size, aliases): libyaml's own composer has no depth
hook and kills the interpreter (SIGSEGV) on deeply nested input such as 100 000 ``[``.
Text the C parser refuses is read again by the pure-Python parser, so every syntax message
is PyYAML's; text with tabs or control characters goes to it at once (libyaml is laxer
there: it reads `0<tab>` as 0).
"""

from __future__ import annotations

import codecs
import difflib
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import yaml
from yaml.events import AliasEvent, MappingEndEvent, ScalarEvent, SequenceEndEvent, SequenceStartEvent, StreamEndEvent
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.scanner import Scanner

from planner.errors import Diagnostic, SpecError

MAX_NODES = 100_000
MAX_BYTES = 8 * 2**20  # a spec file larger than this is refused unread (the YAML scanner reads ~2 MB/s)
MAX_DEPTH = 200
QUESTION_HINT = 'a bare ? is not a value in YAML (it starts a mapping key); write "?" in quotes'
EMPTY = "the file is empty; a spec needs at least `input` and `layers`"
TOO_DEEP = f"the YAML is nested more than {MAX_DEPTH} levels deep"
SECOND_DOCUMENT = "a spec is one YAML document, but a second one starts here"
TOO_BIG = f"the document has more than {MAX_NODES} values; a spec is far smaller"
_CORE = "tag:yaml.org,2002:"
_PLAIN = "planner:plain"  # the tag of a plain untagged scalar until `_Reader.scalar` resolves it
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
    """The fast parser met text it may read unlike PyYAML: the pure-Python parser reads it again."""


class _Problem(Exception):
    """A located problem (mark, code, message), raised before the file name is attached."""


class _Parser(Reader, Scanner, Parser):
    """PyYAML's pure-Python parser: the reference for every message."""

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)


_FastParser: type | None
try:
    from yaml.cyaml import CParser  # libyaml's parser, when PyYAML was built with it
except ImportError:  # PyYAML built without libyaml: the pure-Python parser reads everything
    _FastParser = None
else:
    _FastParser = CParser


def _describe(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return "null" if value is None else "true/false"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, (list, SequenceStartEvent)) else "a mapping"


class _Reader:
    """Reads a parser's events straight into plain data (no node tree), recording the mark of every value
    and key, under the guards: nesting and size limits, anchors and aliases (each use of an alias keeps its
    own position), YAML 1.2 core scalars.

    An anchor's events are kept as they pass and read again at each use of its alias. With `lax` (libyaml's
    parser), events libyaml may place or read unlike PyYAML raise _Reread."""

    def __init__(self, parser: Any, text: str, lax: bool) -> None:
        self.parser = parser
        self.text = text
        self.lax = lax
        self.values: dict[tuple, Mark] = {}
        self.keys: dict[tuple, Mark] = {}
        self.count = 0
        self.anchors: dict[str, tuple[yaml.Mark, list | None]] = {}  # name -> (its mark, its events once read)
        self.recording: list[list] = []  # the events of the anchored collections being read
        self.next: Callable[[], Any] = self.parsed  # where the next event comes from: the parser or an anchor
        self.alias: Mark | None = None  # the outermost alias being expanded
        self.scalars: dict[tuple[str, str], Any] = {}  # (tag, text) -> value

    def parsed(self) -> Any:
        event = self.parser.get_event()
        for events in self.recording:
            events.append(event)
        return event

    def document(self) -> Any:
        """The one document of the stream, which must be a mapping."""
        self.next()  # the stream's start
        if type(self.next()) is StreamEndEvent:  # no document: nothing but comments
            raise _Problem(Mark(1, 1), "empty", EMPTY)
        root = self.next()
        data = self.value(root, ())
        self.next()  # the document's end
        if type(after := self.next()) is not StreamEndEvent:
            raise _Problem(Mark.of(after.start_mark), "yaml-syntax", SECOND_DOCUMENT)
        if data is None and type(root) is ScalarEvent and not root.value:
            raise _Problem(Mark(1, 1), "empty", EMPTY)
        if not isinstance(data, dict):
            mark = Mark.of(root.start_mark)
            raise _Problem(mark, "type", f"a spec must be a mapping (key: value), not {_describe(data)}")
        return data

    def met_scalar(self, event: Any) -> None:
        """A scalar event read from the text (a value or a key): libyaml's lax spots refused, its anchor noted."""
        if self.lax and not event.style and (not event.value or "?" in event.value):
            raise _Reread  # libyaml places empty values elsewhere and reads a ? in `[0?]`, `a b?`
        if event.anchor is not None:
            self.anchor(event, [event])

    def tick(self, mark: Mark) -> None:
        self.count += 1
        if self.count > MAX_NODES:
            if self.alias is not None:
                message = f"the document expands to more than {MAX_NODES} nodes through this alias (alias bomb?)"
                raise _Problem(self.alias, "yaml-alias", message)
            raise _Problem(mark, "yaml-size", TOO_BIG)

    def value(self, event: Any, path: tuple, depth: int = 0, mark: Mark | None = None) -> Any:
        """The value that starts with `event` (already read); a collection's other events are read here."""
        if mark is None:
            at = event.start_mark
            mark = Mark(at.line + 1, at.column + 1)
        kind = type(event)
        if kind is AliasEvent:
            return self.expand(event, path, depth, mark)
        self.tick(mark)
        self.values[path] = mark
        if kind is ScalarEvent:
            self.met_scalar(event)
            return self.scalar(event, mark)
        if depth >= MAX_DEPTH:  # before Python's recursion limit, through aliases too
            raise _Problem(self.alias or mark, "yaml-depth", TOO_DEEP)
        if event.tag not in (None, "!", _CORE + ("seq" if kind is SequenceStartEvent else "map")):
            raise _Problem(mark, "yaml-tag", f"unsupported tag {event.tag.replace(_CORE, '!!')}")
        events = None
        if event.anchor is not None:
            self.anchor(event, None)
            if self.alias is None:
                self.recording.append(events := [event])
        if kind is SequenceStartEvent:
            result: Any = []
            while type(item := self.next()) is not SequenceEndEvent:
                result.append(self.value(item, (*path, len(result)), depth + 1))
        else:
            result = self.mapping(event, path, depth)
        if events is not None:
            self.recording.pop()  # the innermost anchor being read: this one
            self.anchors[event.anchor] = (event.start_mark, events)
        return result

    def anchor(self, event: Any, events: list | None) -> None:
        """Note an anchor as it is defined (its events None while they are read); not again at its alias' uses."""
        if self.alias is not None:
            return
        if event.anchor in self.anchors:
            first = self.anchors[event.anchor][0].line + 1
            message = f"found duplicate anchor {event.anchor!r} (first defined at line {first})"
            raise _Problem(Mark.of(event.start_mark), "yaml-syntax", message)
        self.anchors[event.anchor] = (event.start_mark, events)

    def anchored(self, event: Any, mark: Mark) -> list:
        """The events of the anchor an alias names."""
        if event.anchor not in self.anchors:
            raise _Problem(mark, "yaml-syntax", f"found undefined alias {event.anchor!r}")
        events = self.anchors[event.anchor][1]
        if events is None:
            message = f"the alias *{event.anchor} is used inside its own anchor (recursive alias)"
            raise _Problem(mark, "yaml-alias", message)
        return events

    def expand(self, event: Any, path: tuple, depth: int, mark: Mark) -> Any:
        """An alias' value: its anchor's events read again, the value at the alias' mark."""
        events = iter(self.anchored(event, mark))
        outer_next, outer_alias = self.next, self.alias
        self.next, self.alias = events.__next__, self.alias or mark
        try:
            return self.value(next(events), path, depth, mark)
        finally:
            self.next, self.alias = outer_next, outer_alias

    def mapping(self, event: Any, path: tuple, depth: int) -> dict[str, Any]:
        start = event.start_mark.index  # `[1, ?]` is valid YAML: [1, {null: null}]
        question = self.text[start : start + 1] == "?"
        result: dict[str, Any] = {}
        while type(key_event := self.next()) is not MappingEndEvent:
            at = key_event.start_mark
            key_mark = Mark(at.line + 1, at.column + 1)
            if type(key_event) is AliasEvent:
                key_event = self.anchored(key_event, key_mark)[0]
            elif type(key_event) is ScalarEvent:
                self.met_scalar(key_event)
            self.tick(key_mark)
            key = self.scalar(key_event, key_mark) if type(key_event) is ScalarEvent else key_event
            if not isinstance(key, str):
                if question and not result and key is None and self.is_alone_null():
                    raise _Problem(Mark.of(event.start_mark), "yaml-syntax", QUESTION_HINT)
                raw = key_event.value if type(key_event) is ScalarEvent else None
                quote = f'; write "{raw}" in quotes' if raw else ""
                message = f"mapping keys must be plain names, not {_describe(key)}{quote}"
                raise _Problem(key_mark, "yaml-syntax", message)
            entry = (*path, key)
            if key in result:
                message = f"duplicate key {key!r} (first defined at line {self.keys[entry].line})"
                raise _Problem(key_mark, "duplicate-key", message)
            self.keys[entry] = key_mark
            result[key] = self.value(self.next(), entry, depth + 1)
        return result

    def is_alone_null(self) -> bool:
        """After a null first key: whether its value is null too and ends the mapping (`[1, ?]`)."""
        value = self.next()
        return (
            type(value) is ScalarEvent
            and _kind(self.tag(value), value.value) == "null"
            and type(self.next()) is MappingEndEvent
        )

    @staticmethod
    def tag(event: Any) -> str:
        """A scalar's tag; a plain untagged one's is found from its text later (`_kind`), a quoted one's is str."""
        if event.tag not in (None, "!"):
            return event.tag
        return _PLAIN if event.implicit[0] else _CORE + "str"

    def scalar(self, event: Any, mark: Mark) -> Any:
        """The scalar's value (YAML 1.2 core); scalars of the same tag and text, most of a spec's, resolved once."""
        key = (self.tag(event), event.value)
        if key in self.scalars:
            return self.scalars[key]
        value = self.scalars[key] = _resolve(*key, mark)
        return value


def _resolve(tag: str, text: str, mark: Mark) -> Any:
    kind = _kind(tag, text)
    if kind == "str":
        return text
    if kind not in _SCALARS:
        raise _Problem(mark, "yaml-tag", f"unsupported tag {tag.replace(_CORE, '!!')}")
    if tag != _PLAIN and not _SCALARS[kind].match(text):
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


def _kind(tag: str, text: str) -> str:
    """A scalar's YAML 1.2 core type: its tag's, or for a plain untagged one the first type its text reads as."""
    if tag == _PLAIN:
        found = _PLAIN_KINDS.match(text)
        return found.lastgroup if found and found.lastgroup else "str"
    return tag.removeprefix(_CORE)


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
        message = SECOND_DOCUMENT
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


def _read(text: str) -> tuple[Any, _Reader]:
    """The document of `text` and its reader: read by libyaml's parser where it reads like PyYAML's,
    else (and for every message but the guards') by PyYAML's."""
    if _FastParser is not None and not _LAX.search(text) and not Reader.NON_PRINTABLE.search(text):
        reader = _Reader(_FastParser(text), text, lax=True)
        try:
            return reader.document(), reader
        except (yaml.YAMLError, RecursionError, _Reread):
            pass  # read again below, for PyYAML's message and position
    parser = None
    try:
        parser = _Parser(text)
        reader = _Reader(parser, text, lax=False)
        return reader.document(), reader
    except yaml.reader.ReaderError as error:
        char = error.character if isinstance(error.character, int) else ord(error.character)
        what = "a NUL byte" if char == 0 else f"the control character U+{char:04X}"
        message = f"the file contains {what}; it looks like binary data, not YAML text"
        raise _Problem(_mark_at(text, error.position), "encoding", message) from None
    except yaml.MarkedYAMLError as error:
        raise _syntax_problem(error, text) from None
    except RecursionError:
        raise _Problem(Mark.of(parser.get_mark()) if parser else Mark(1, 1), "yaml-depth", TOO_DEEP) from None


def load_yaml(source: str | bytes, file: str) -> Positioned:
    """Return the one YAML document in `source`, a mapping, with the marks of its nodes."""
    if len(source) > MAX_BYTES:
        raise SpecError(
            Diagnostic(file, 1, 1, "io", f"the spec is larger than {MAX_BYTES // 2**20} MiB; a spec is a few kilobytes")
        )
    try:
        data, reader = _read(_decode(source))
    except _Problem as problem:
        mark, code, message = problem.args
        raise SpecError(Diagnostic(file, mark.line, mark.column, code, message)) from None
    return Positioned(data, file, reader.values, reader.keys)


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
