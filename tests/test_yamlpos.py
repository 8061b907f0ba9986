"""Tests for planner.spec.yamlpos: YAML text -> plain data + exact positions."""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.errors import Diagnostic, SpecError
from planner.spec import yamlpos
from planner.spec.yamlpos import MAX_DEPTH, Mark, Positioned, load_yaml, load_yaml_file

SPEC = """\
name: unet
input:
  shape: [1, 3, "?", 64]
layers:
  - {name: enc1, op: conv, kernel: 3}
  - name: down1
    op: maxpool
    kernel: [2, 2]
    stride: &s 2
  - {op: relu, stride: *s}
"""


@pytest.fixture(scope="module")
def spec() -> Positioned:
    return load_yaml(SPEC, "spec.yaml")


def error_of(source: str | bytes) -> Diagnostic:
    with pytest.raises(SpecError) as info:
        load_yaml(source, "spec.yaml")
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.file == "spec.yaml"
    return diagnostic


def test_data_is_plain_and_ordered(spec: Positioned) -> None:
    assert spec.data == {
        "name": "unet",
        "input": {"shape": [1, 3, "?", 64]},
        "layers": [
            {"name": "enc1", "op": "conv", "kernel": 3},
            {"name": "down1", "op": "maxpool", "kernel": [2, 2], "stride": 2},
            {"op": "relu", "stride": 2},
        ],
    }
    assert list(spec.data) == ["name", "input", "layers"]
    assert list(spec.data["layers"][1]) == ["name", "op", "kernel", "stride"]


VALUE_MARKS = {
    (): (1, 1),
    ("name",): (1, 7),
    ("input",): (3, 3),
    ("input", "shape"): (3, 10),
    ("input", "shape", 0): (3, 11),
    ("input", "shape", 2): (3, 17),
    ("input", "shape", 3): (3, 22),
    ("layers",): (5, 3),
    ("layers", 0): (5, 5),
    ("layers", 0, "name"): (5, 12),
    ("layers", 0, "op"): (5, 22),
    ("layers", 0, "kernel"): (5, 36),
    ("layers", 1): (6, 5),
    ("layers", 1, "name"): (6, 11),
    ("layers", 1, "op"): (7, 9),
    ("layers", 1, "kernel"): (8, 13),
    ("layers", 1, "kernel", 1): (8, 17),
    ("layers", 1, "stride"): (9, 13),
    ("layers", 2, "stride"): (10, 24),  # the alias use, not the anchor
}


@pytest.mark.parametrize(("path", "expected"), VALUE_MARKS.items(), ids=str)
def test_value_marks(spec: Positioned, path: tuple, expected: tuple[int, int]) -> None:
    assert spec.value_marks[path] == Mark(*expected)


KEY_MARKS = {
    ("name",): (1, 1),
    ("input",): (2, 1),
    ("input", "shape"): (3, 3),
    ("layers",): (4, 1),
    ("layers", 0, "name"): (5, 6),
    ("layers", 0, "op"): (5, 18),
    ("layers", 0, "kernel"): (5, 28),
    ("layers", 1, "name"): (6, 5),
    ("layers", 1, "kernel"): (8, 5),
    ("layers", 2, "stride"): (10, 16),
}


@pytest.mark.parametrize(("path", "expected"), KEY_MARKS.items(), ids=str)
def test_key_marks(spec: Positioned, path: tuple, expected: tuple[int, int]) -> None:
    assert spec.key_marks[path] == Mark(*expected)


def test_marks_cover_exactly_the_data(spec: Positioned) -> None:
    assert set(spec.value_marks) == set(VALUE_MARKS) | {
        ("input", "shape", 1),
        ("layers", 1, "kernel", 0),
        ("layers", 2),
        ("layers", 2, "op"),
    }
    assert set(spec.key_marks) == {p for p in spec.value_marks if p and isinstance(p[-1], str)}


LOCATE = [  # (pydantic-style loc, key, expected)
    ((), False, (1, 1)),
    (("layers", 0, "conv", "kernel"), False, (5, 36)),
    (("layers", 0, "conv", "kernel"), True, (5, 28)),
    (("layers", 1, "maxpool", "kernel", 1), False, (8, 17)),
    (("layers", 1, "function-after[check(), MaxPool]", "op"), False, (7, 9)),
    (("input", "shape", 2, "function-after[size(), union[int,str]]", "str"), False, (3, 17)),
    (("input", "shape", "list[union[int,str]]", 3, "int"), False, (3, 22)),
    (("layers", 0, "conv", "out_channels"), False, (5, 5)),  # missing field: the layer
    (("layers", 0, "conv", "out_channels"), True, (5, 5)),  # list item: no key, value mark
    (("layers", 1, "maxpool", "kernle"), True, (6, 5)),
    (("layers", 2, "relu", "stride"), True, (10, 16)),
    (("layers", 7, "conv"), False, (5, 3)),  # index out of range
    (("layers", -1), False, (5, 3)),
    (("layers", "0"), False, (5, 3)),  # a str is no list index
    (("layers", True), False, (5, 3)),  # nor is a bool
    (("input", "shape"), True, (3, 3)),
    (("nope", "input"), False, (3, 3)),
    (("input", "shape", 0, 0), False, (3, 11)),  # cannot descend into a scalar
]


@pytest.mark.parametrize(("loc", "key", "expected"), LOCATE, ids=str)
def test_locate_pydantic_locs(spec: Positioned, loc: tuple, key: bool, expected: tuple) -> None:
    assert spec.locate(loc, key=key) == Mark(*expected)


def test_diagnostic(spec: Positioned) -> None:
    loc = ["layers", 0, "conv", "kernel"]
    diagnostic = spec.diagnostic(loc, "domain", "kernel must be odd", layer="enc1")
    assert diagnostic == Diagnostic("spec.yaml", 5, 36, "domain", "kernel must be odd", layer="enc1")
    assert str(diagnostic) == "spec.yaml:5:36: error: kernel must be odd [domain]"
    assert spec.diagnostic(loc, "x", "m", key=True).column == 28


def test_alias_subtree_keeps_anchor_marks() -> None:
    p = load_yaml("a: &m\n  q: 1\nb: *m\n", "f")
    assert p.data == {"a": {"q": 1}, "b": {"q": 1}}
    assert p.data["a"] is not p.data["b"]
    assert p.value_marks[("b",)] == Mark(3, 4)
    assert p.value_marks[("b", "q")] == Mark(2, 6)


def test_bom_and_crlf_positions() -> None:
    p = load_yaml(b"\xef\xbb\xbfa: 1\r\nb:\r\n  c: x\r\n", "f")
    assert p.data == {"a": 1, "b": {"c": "x"}}
    assert p.value_marks[("b", "c")] == Mark(3, 6)
    assert p.key_marks[("a",)] == Mark(1, 1)


def test_columns_count_characters_not_bytes() -> None:
    p = load_yaml("é: [ü, x]\n".encode(), "f")
    assert p.value_marks[("é", 1)] == Mark(1, 8)


SCALARS = [  # YAML 1.2 core; PyYAML's default (1.1) would turn most of the strings into bools/dates
    ("on", "on"),
    ("off", "off"),
    ("yes", "yes"),
    ("No", "No"),
    ("y", "y"),
    ("2024-01-01", "2024-01-01"),
    ("2001-12-14t21:59:43.10-05:00", "2001-12-14t21:59:43.10-05:00"),
    ("1_000", "1_000"),
    ("12:30", "12:30"),
    ("0b101", "0b101"),
    ("=", "="),
    ("0x10", 16),
    ("0o17", 15),
    ("010", 10),
    ("-7", -7),
    ("+12", 12),
    ("123456789012345678901234567890", 123456789012345678901234567890),
    ("'3'", "3"),
    ('"true"', "true"),
    ("'null'", "null"),
    ("!!str 3", "3"),
    ("!!float 1", 1.0),
    ("true", True),
    ("FALSE", False),
    ("True", True),
    ("null", None),
    ("NULL", None),
    ("~", None),
    ("", None),
    ("1.5", 1.5),
    ("-.5", -0.5),
    ("2.", 2.0),
    ("1e3", 1000.0),
    ("6.02E+23", 6.02e23),
    (".inf", math.inf),
    ("-.Inf", -math.inf),
    ("+.INF", math.inf),
    ("1.5.2", "1.5.2"),
    ("0x", "0x"),
    ("?x", "?x"),
    ("'?'", "?"),
]


@pytest.mark.parametrize(("text", "expected"), SCALARS, ids=[repr(t) for t, _ in SCALARS])
def test_scalars_resolve_like_yaml_1_2(text: str, expected: object) -> None:
    value = load_yaml(f"v: {text}\n", "f").data["v"]
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("text", [".nan", ".NaN", ".NAN"])
def test_nan(text: str) -> None:
    assert math.isnan(load_yaml(f"v: {text}", "f").data["v"])


def test_scalars_are_yaml_1_2() -> None:
    data = load_yaml("v: [on, 2024-01-01, 0x10, '3', TRUE, ~, 1e3, !!str 5, !!int '7']", "f").data["v"]
    assert data == ["on", "2024-01-01", 16, "3", True, None, 1000.0, "5", 7]


def test_merge_key_is_a_plain_key() -> None:
    assert load_yaml("a: &a {x: 1}\nb: {<<: *a}\n", "f").data["b"] == {"<<": {"x": 1}}


ERRORS = [  # (id, source, line, column, code, part of the message)
    ("bare-?-block", "kernel: ?\n", 1, 9, "yaml-syntax", 'write "?" in quotes'),
    ("bare-?-flow-map", "layer: {kernel: ?}\n", 1, 17, "yaml-syntax", 'write "?" in quotes'),
    ("bare-?-flow-seq", "input:\n  shape: [1, 3, ?, ?]\n", 2, 17, "yaml-syntax", "a bare ?"),
    ("bare-?-block-seq", "stride:\n  - 1\n  - ?\n", 3, 5, "yaml-syntax", 'write "?"'),
    ("bare-?-document", "?\n", 1, 1, "yaml-syntax", 'write "?"'),
    (
        "duplicate-key",
        "a: 1\nkernel: 3\nkernel: 5\n",
        3,
        1,
        "duplicate-key",
        "duplicate key 'kernel' (first defined at line 2)",
    ),
    ("duplicate-key-flow", "l: [{k: 1, k: 2}]\n", 1, 12, "duplicate-key", "duplicate key 'k'"),
    ("duplicate-key-quoted", "a: 1\n'a': 2\n", 2, 1, "duplicate-key", "first defined at line 1"),
    ("int-key", "1: x\n", 1, 1, "yaml-syntax", "mapping keys must be plain names, not the number 1"),
    ("bool-key", "a:\n  true: x\n", 2, 3, "yaml-syntax", 'write "true" in quotes'),
    ("null-key", "~: x\n", 1, 1, "yaml-syntax", "mapping keys must be plain names, not null"),
    ("list-key", "? [a]\n: 1\n", 1, 3, "yaml-syntax", "mapping keys must be plain names, not a list"),
    ("alias-map-key", "a: &a {x: 1}\nb: {*a : 2}\n", 2, 5, "yaml-syntax", "not a mapping"),
    ("recursive-alias", "a: &a [1, *a]\n", 1, 11, "yaml-alias", "recursive alias"),
    ("undefined-alias", "a: *nope\n", 1, 4, "yaml-syntax", "undefined alias 'nope'"),
    ("duplicate-anchor", "a: &x 1\nb: &x 2\n", 2, 4, "yaml-syntax", "duplicate anchor 'x' (first defined at line 1)"),
    ("empty", "", 1, 1, "empty", "the file is empty; a spec needs at least `input` and `layers`"),
    ("only-comments", "# a spec\n\n# nothing\n", 1, 1, "empty", "the file is empty"),
    ("only-document-start", "---\n", 1, 1, "empty", "the file is empty"),
    ("two-documents", "a: 1\n---\nb: 2\n", 2, 1, "yaml-syntax", "a second one starts here"),
    ("two-explicit-documents", "--- \na: 1\n--- \nb: 2\n", 3, 1, "yaml-syntax", "one YAML document"),
    ("top-list", "- 1\n- 2\n", 1, 1, "type", "a spec must be a mapping (key: value), not a list"),
    ("top-string", "hello\n", 1, 1, "type", "not a string"),
    ("top-number", "# c\n  42\n", 2, 3, "type", "not the number 42"),
    ("top-null", "~\n", 1, 1, "type", "not null"),
    ("tab-indent", "a:\n\tb: 1\n", 2, 1, "yaml-syntax", "tab"),
    ("tab-later-line", "a:\n  b: 1\n\tc: 2\n", 3, 1, "yaml-syntax", "indent with spaces, not tabs"),
    ("unclosed-list", "a: [1, 2\n", 2, 1, "yaml-syntax", "expected ',' or ']'"),
    ("unclosed-quote", "a: 'x\n", 2, 1, "yaml-syntax", "unexpected end of stream"),
    ("bad-indent", "a:\n  b: 1\n c: 2\n", 3, 2, "yaml-syntax", "while parsing a block mapping at line 1"),
    ("value-after-value", "a: b: c\n", 1, 5, "yaml-syntax", "mapping values are not allowed here"),
    ("binary-tag", "a: !!binary aGk=\n", 1, 4, "yaml-tag", "unsupported tag !!binary"),
    ("custom-tag", "a: !conv {k: 1}\n", 1, 4, "yaml-tag", "unsupported tag !conv"),
    ("set-tag", "a: !!set {x}\n", 1, 4, "yaml-tag", "unsupported tag !!set"),
    ("bad-int-tag", "a: !!int x\n", 1, 4, "yaml-tag", "'x' is not a valid int"),
    ("huge-decimal", "a: " + "9" * 5000 + "\n", 1, 4, "yaml-number", "5000 digits"),
    ("control-char", "a: b\x01\n", 1, 5, "encoding", "U+0001"),
    ("nul-char", "a: 1\nb: \x00\n", 2, 4, "encoding", "NUL"),
    ("lone-surrogate", "a: \ud800\n", 1, 4, "encoding", "U+D800"),
]


@pytest.mark.parametrize(
    ("source", "line", "column", "code", "part"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
def test_errors(source: str, line: int, column: int, code: str, part: str) -> None:
    diagnostic = error_of(source)
    assert (diagnostic.line, diagnostic.column, diagnostic.code) == (line, column, code)
    assert part in diagnostic.message
    assert "\n" not in diagnostic.message


def test_bare_question_mark_message_in_full() -> None:
    assert str(error_of("kernel: ?\n")) == (
        "spec.yaml:1:9: error: a bare ? is not a value in YAML (it starts a mapping key); "
        'write "?" in quotes [yaml-syntax]'
    )


BYTES = [  # (id, source, line, column, part of the message)
    ("invalid-byte", b"a: \xff\n", 1, 4, "not UTF-8"),
    ("after-multibyte", b"a: 1\nb: \xc3\xa9\xe9\n", 2, 5, "byte 0xe9"),
    ("after-bom", b"\xef\xbb\xbfa: 1\nb: \xff", 2, 4, "not UTF-8"),
    ("latin-1", "a: café\n".encode("latin-1"), 1, 7, "save it as UTF-8"),
    ("utf-16", "a: 1\n".encode("utf-16"), 1, 1, "not UTF-8"),
    ("png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 1, 1, "not UTF-8"),
    ("nul-bytes", b"\x00\x01\x02\x03binary", 1, 1, "NUL"),
    ("nul-inside", b"a: 1\nb: 2\x00\x00\n", 2, 5, "binary data"),
]


@pytest.mark.parametrize(("source", "line", "column", "part"), [b[1:] for b in BYTES], ids=[b[0] for b in BYTES])
def test_binary_and_non_utf8(source: bytes, line: int, column: int, part: str) -> None:
    diagnostic = error_of(source)
    assert (diagnostic.line, diagnostic.column, diagnostic.code) == (line, column, "encoding")
    assert part in diagnostic.message


def test_utf8_bytes_and_bom_load() -> None:
    assert load_yaml("\ufeffa: é\n", "f").data == {"a": "é"}
    assert load_yaml(b"\xef\xbb\xbfa: \xc3\xa9\n", "f").data == {"a": "é"}


def test_alias_bomb_is_bounded() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        name, prev = chr(ord("a") + i), chr(ord("a") + i - 1)
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    start = time.perf_counter()
    diagnostic = error_of("\n".join(lines) + "\n")
    assert time.perf_counter() - start < 2
    assert diagnostic.code == "yaml-alias"
    assert "more than 100000 nodes" in diagnostic.message
    assert (diagnostic.line, diagnostic.column) == (5, 36)  # 8th *d: the alias that overflows


def test_moderate_alias_use_is_fine() -> None:
    source = "d: &d {kernel: 3, stride: 1}\n" + "".join(f"l{i}: *d\n" for i in range(1000))
    assert load_yaml(source, "f").data["l999"] == {"kernel": 3, "stride": 1}


def nested(levels: int) -> str:
    """A mapping holding `levels - 1` nested flow lists: `levels` collections in all."""
    return "x: " + "[" * (levels - 1) + "]" * (levels - 1) + "\n"


def test_depth_limit_is_inclusive() -> None:
    assert load_yaml(nested(MAX_DEPTH), "f").data["x"] is not None
    diagnostic = error_of(nested(MAX_DEPTH + 1))
    assert (diagnostic.line, diagnostic.column, diagnostic.code) == (1, 4 + MAX_DEPTH - 1, "yaml-depth")
    assert "nested more than 200 levels" in diagnostic.message


@pytest.mark.parametrize(
    "source",
    ["[" * 100_000, "x: " + "{a: " * 50_000, "".join("  " * i + "a:\n" for i in range(300)), "- " * 5000],
    ids=["flow-lists", "flow-maps", "block-maps", "block-seqs"],
)
def test_absurd_nesting(source: str) -> None:
    start = time.perf_counter()
    assert error_of(source).code == "yaml-depth"
    assert time.perf_counter() - start < 2


def test_depth_through_aliases() -> None:
    source = "a: &a " + "[" * 150 + "]" * 150 + "\nb: " + "[" * 100 + "*a" + "]" * 100 + "\n"
    diagnostic = error_of(source)
    assert (diagnostic.line, diagnostic.column, diagnostic.code) == (2, 104, "yaml-depth")


def test_recursion_error_from_pyyaml_is_a_depth_error() -> None:
    limit = sys.getrecursionlimit()
    depth = len(__import__("inspect").stack())
    sys.setrecursionlimit(depth + 60)
    try:
        diagnostic = error_of(nested(60))
    finally:
        sys.setrecursionlimit(limit)
    assert diagnostic.code == "yaml-depth"


def test_load_yaml_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "spec.yaml").write_bytes(b"a:\n  b: [1, 2]\nc: ?\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpecError) as info:
        load_yaml_file("spec.yaml")
    assert str(info.value).startswith("spec.yaml:3:4: error: a bare ?")
    (tmp_path / "ok.yaml").write_text("a: 1\n")
    loaded = load_yaml_file(tmp_path / "ok.yaml")
    assert (loaded.data, loaded.file) == ({"a": 1}, str(tmp_path / "ok.yaml"))


def io_error(path: str | os.PathLike) -> Diagnostic:
    with pytest.raises(SpecError) as info:
        load_yaml_file(path)
    (diagnostic,) = info.value.diagnostics
    assert (diagnostic.file, diagnostic.line, diagnostic.column, diagnostic.code) == (os.fspath(path), 1, 1, "io")
    return diagnostic


def test_io_missing(tmp_path: Path) -> None:
    assert "No such file or directory" in io_error(tmp_path / "missing.yaml").message


def test_io_directory(tmp_path: Path) -> None:
    assert "Is a directory" in io_error(tmp_path).message


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads anything")
def test_io_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "secret.yaml"
    path.write_text("a: 1\n")
    path.chmod(0)
    assert "Permission denied" in io_error(path).message


def check_loads_or_spec_error(source: str | bytes) -> None:
    try:
        loaded = load_yaml(source, "fuzz.yaml")
    except SpecError as error:
        (diagnostic,) = error.diagnostics
        assert diagnostic.line >= 1 and diagnostic.column >= 1 and diagnostic.code
        return
    assert isinstance(loaded.data, dict)
    for path, mark in loaded.value_marks.items():
        assert loaded.locate(path) == mark


YAMLISH = st.text(alphabet="[]{}:,-?&*!|>'\"#%@`~ \n\t\\ab01.xe\x85\u2028\ufeff\x00é", max_size=60)


@settings(deadline=None, max_examples=400)
@given(st.one_of(st.text(max_size=80), YAMLISH, st.binary(max_size=80)))
def test_arbitrary_input_loads_or_raises_spec_error(source: str | bytes) -> None:
    check_loads_or_spec_error(source)


class CoreDumper(yaml.SafeDumper):
    """Quotes exactly the strings that YAML 1.2 core would read as something else."""

    yaml_implicit_resolvers: dict = {}


for _kind, _pattern in yamlpos._SCALARS.items():
    CoreDumper.add_implicit_resolver("tag:yaml.org,2002:" + _kind, _pattern, None)


# PyYAML's emitter mangles control characters and line separators in plain keys; leave them out
TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=8)
LEAVES = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT


@settings(deadline=None, max_examples=200)
@given(
    st.recursive(
        LEAVES,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
        max_leaves=20,
    )
)
def test_dumped_data_round_trips_with_marks(value: object) -> None:
    text = yaml.dump({"root": value}, Dumper=CoreDumper, allow_unicode=True)
    loaded = load_yaml(text, "f")
    assert loaded.data == {"root": value}
    for path, mark in loaded.value_marks.items():
        assert loaded.locate(path) == mark


def outcome(source: str | bytes) -> object:
    """What load_yaml makes of `source`: the data with every mark, or the diagnostic."""
    try:
        loaded = load_yaml(source, "f.yaml")
    except SpecError as error:
        return error.diagnostics
    return loaded.data, loaded.value_marks, loaded.key_marks


def pure_python_outcome(source: str | bytes) -> object:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(yamlpos, "_FastParser", None)
        return outcome(source)


CORPUS = sorted((Path(__file__).parent.parent / "specs").glob("*.yaml")) + sorted(
    (Path(__file__).parent / "specs").rglob("*.yaml")
)
needs_libyaml = pytest.mark.skipif(yamlpos._FastParser is None, reason="PyYAML without libyaml")


@needs_libyaml
@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_libyaml_events_load_like_pure_python(path: Path) -> None:
    source = path.read_bytes()
    assert outcome(source) == pure_python_outcome(source)


@needs_libyaml
def test_plain_specs_take_the_libyaml_path(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("read by the pure-Python loader")

    monkeypatch.setattr(yamlpos._Parser, "__init__", refuse)
    for name in ("unet_same.yaml", "resnet50.yaml", "dcgan_generator.yaml"):
        assert load_yaml((Path(__file__).parent.parent / "specs" / name).read_text(), name).data["layers"]


@st.composite
def mutated_specs(draw: st.DrawFn) -> str:
    """A spec of the corpus with a few characters deleted, inserted or replaced: near-valid text."""
    text = list(draw(st.sampled_from(CORPUS)).read_text())
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text) - 1))
        how = draw(st.sampled_from(["delete", "insert", "replace"]))
        char = draw(st.sampled_from(list("[]{}:,-?&*!|>'\"#%@`~ \n\\ab01.xé") + ['"?"']))
        if how == "delete":
            del text[at]
        else:
            text[at : at + (how == "replace")] = [char]
    return "".join(text)


@needs_libyaml
@settings(deadline=None, max_examples=1500)
@given(st.one_of(YAMLISH, st.text(max_size=80), mutated_specs()))
def test_libyaml_events_agree_on_arbitrary_text(source: str) -> None:
    assert outcome(source) == pure_python_outcome(source)


def test_empty_values_and_bare_question_marks_are_placed_like_pyyaml() -> None:
    for source in ("a:\nb: [1, ?]\n", "a: {k: , s: 2}\n", "? a\n", "a: [0?]\n", 'a: b  "?"\n'):
        assert outcome(source) == pure_python_outcome(source)


def test_non_ascii_marks() -> None:
    source = "name: é€😀\nx: [é, ok]\n"
    assert load_yaml(source, "f.yaml").value_marks[("x", 1)] == Mark(2, 8)
    assert outcome(source) == pure_python_outcome(source)


@st.composite
def shared_trees(draw: st.DrawFn) -> object:
    """Nested lists and mappings in which some collections appear more than once: PyYAML dumps each
    repeat as an alias of its first appearance, anchored, nested anchors and aliases of them included."""
    leaves = st.one_of(
        st.integers(-5, 5), st.sampled_from(["a", "b c", "?", "1.5", "on", ""]), st.booleans(), st.none()
    )
    pool: list[object] = []

    def tree(depth: int) -> object:
        if depth == 0 or draw(st.integers(0, 3)) == 0:
            return draw(st.sampled_from(pool)) if pool and draw(st.booleans()) else draw(leaves)
        size = draw(st.integers(0, 3))
        value: object = (
            [tree(depth - 1) for _ in range(size)]
            if draw(st.booleans())
            else {f"k{i}": tree(depth - 1) for i in range(size)}
        )
        pool.append(value)
        return value

    return {"a": tree(4), "b": tree(4), "c": tree(2)}


@settings(deadline=None, max_examples=300)
@given(shared_trees(), st.booleans())
def test_dumped_trees_with_anchors_and_aliases_read_back_as_they_were(tree: object, flow: bool) -> None:
    text = yaml.dump(tree, Dumper=yaml.SafeDumper, default_flow_style=flow)
    assert load_yaml(text, "f.yaml").data == tree
    assert pure_python_outcome(text) == outcome(text)
