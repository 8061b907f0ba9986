"""Nothing a spec says is executed or shown raw: names, file names and constraint text reach the
exported Python file, the SVG, the text, GitHub, JSON and YAML reports only escaped.

Hostile file names are made with bytes paths (Linux), so that a name may hold a newline, ESC or a
byte that is not UTF-8 (which Python gives as a surrogate escape).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import subprocess
import sys
import xml.dom.minidom
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from planner.errors import Diagnostic, InternalError
from planner.export import _checked, _identifiers
from planner.report import github, json_out
from tests.conftest import run

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="file names with any byte but / and NUL")

LAYERS = """\
input:
  shape: [1, 3, 8, 8]
layers:
  - {name: conv1, op: conv, out_channels: 4, kernel: "?", padding: 1}
  - {name: class, op: relu}
  - {name: forward, op: conv, out_channels: 2, kernel: 1, expect: [1, 2, 8, 8]}
"""
MARKER = "PWNED"
INJECTION = f"import pathlib; pathlib.Path({MARKER!r}).touch()"
# What may end a line of Python source, or end a comment, string or docstring early, or is not allowed there.
BREAKERS = {"lf": "\n", "cr": "\r", "crlf": "\r\n", "ls": "\u2028", "nel": "\x85", "ff": "\x0c", "vt": "\x0b"}
SHOWN = {
    "\n": "\\n",
    "\r": "\\r",
    "\r\n": "\\r\\n",
    "\u2028": "\\u2028",
    "\x85": "\\x85",
    "\x0c": "\\x0c",
    "\x0b": "\\x0b",
}
# Characters no renderer may write raw: controls (C0 but LF, DEL, C1), line and paragraph separators,
# bidirectional overrides and the BOM, surrogates, non-characters.
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff\ud800-\udfff\ufffe\uffff]")
HOSTILE_NAMES = {
    "triple-quotes": f'"""\n{INJECTION}\n"""',
    "single-triple-quotes": f"'''\n{INJECTION}\n'''",
    "backslash-newline": f"\\\n{INJECTION}\n#",
    "trailing-backslash": "net\\",
    "quote-at-the-end": 'net"',
    "cr": f"net\r{INJECTION}\r#",
    "line-separator": f"net\u2028{INJECTION}\u2028#",
    "nel": f"net\x85{INJECTION}\x85#",
    "nul": "net\x00evil",
    "esc": "\x1b[31mred\x1b[0m\x07",
    "bidi": "abc\u202edcb",
    "keyword": "class",
}


def spec_path(tmp_path: Path, raw_name: bytes, text: str) -> str:
    """A spec file named by the bytes `raw_name` in tmp_path, as Python names it (surrogate escapes)."""
    path = os.fsdecode(os.fsencode(str(tmp_path)) + b"/" + raw_name)
    Path(path).write_text(text, encoding="utf-8")
    return path


def named(name: str) -> str:
    return f"name: {json.dumps(name)}\n" + LAYERS  # a JSON string is a YAML double-quoted scalar


def no_raw_characters(text: str) -> None:
    bad = sorted({f"U+{ord(c):04X}" for c in RAW.findall(text)})
    assert not bad, f"raw {bad} in {text!r}"
    text.encode("utf-8")  # strict: no lone surrogate


def exported(path: str) -> str:
    code, out, err = run("export", path, "--to", "pytorch")
    assert code == 0, err
    return out


def import_exported(source: str, directory: Path, monkeypatch: pytest.MonkeyPatch):
    """Import the exported file from `directory` (the working directory, where an injected marker would land)."""
    monkeypatch.chdir(directory)
    file = directory / "exported_net.py"
    file.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("exported_net", file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_runs(module) -> None:
    torch = pytest.importorskip("torch")
    net = module.Net()
    assert tuple(net(torch.zeros(module.INPUT_SHAPE)).shape) == (1, 2, 8, 8)
    assert {name for name, _ in net.named_children()} == {"conv1", "class_", "forward_"}


def assert_only_expected_statements(source: str) -> None:
    """The file holds the torch imports, INPUT_SHAPE and classes, nothing else; Net only its docstring,
    __init__ and forward; and no line holds a raw control character (comments included)."""
    no_raw_characters(source)
    tree = ast.parse(source)
    kinds = [type(node).__name__ for node in tree.body]
    assert kinds[:2] == ["Import", "ImportFrom"] and kinds[2] == "Assign" and set(kinds[3:]) == {"ClassDef"}, kinds
    assert [
        alias.name for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names
    ] == ["torch", "nn"]
    net = next(node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "Net")
    assert [type(node).__name__ for node in net.body] == ["Expr", "FunctionDef", "FunctionDef"]
    assert isinstance(net.body[0].value, ast.Constant) and isinstance(net.body[0].value.value, str)
    comments = [line for line in source.split("\n") if line.lstrip().startswith("#")]
    assert comments and all(line.startswith("# ") for line in comments[:3]), comments


# --- export ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("breaker", list(BREAKERS.values()), ids=list(BREAKERS))
def test_export_of_a_spec_named_with_a_newline_holds_only_the_expected_statements(tmp_path: Path, breaker: str):
    raw = f"x{breaker}{INJECTION}{breaker}#.yaml".encode()
    source = exported(spec_path(tmp_path, raw, LAYERS))
    assert_only_expected_statements(source)
    header = " ".join(line for line in source.split("\n") if line.startswith("#"))
    assert f"x{SHOWN[breaker]}{INJECTION}{SHOWN[breaker]}#.yaml" in header, header


@pytest.mark.parametrize("breaker", list(BREAKERS.values()), ids=list(BREAKERS))
def test_export_of_a_spec_named_with_a_newline_runs_nothing(
    tmp_path: Path, breaker: str, monkeypatch: pytest.MonkeyPatch
):
    pytest.importorskip("torch")
    raw = f"x{breaker}{INJECTION}{breaker}#.yaml".encode()
    source = exported(spec_path(tmp_path, raw, LAYERS))
    module = import_exported(source, tmp_path, monkeypatch)
    assert not (tmp_path / MARKER).exists(), "the file name ran as code"
    assert_runs(module)


def test_export_of_a_spec_whose_file_name_is_not_utf8_imports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = spec_path(tmp_path, b"net\xff\xfe.yaml", LAYERS)
    source = exported(path)
    assert_only_expected_statements(source)
    assert "net\\xff\\xfe.yaml" in source.split("\n")[0]
    code, _, err = run("export", path, "--to", "pytorch", "--output", tmp_path / "net.py")
    assert code == 0, err
    (tmp_path / "net.py").read_bytes().decode("utf-8")  # the file written is UTF-8: Python can import it
    pytest.importorskip("torch")
    assert_runs(import_exported(source, tmp_path, monkeypatch))


@pytest.mark.parametrize("name", list(HOSTILE_NAMES.values()), ids=list(HOSTILE_NAMES))
def test_export_of_a_hostile_network_name_holds_only_the_expected_statements(tmp_path: Path, name: str):
    source = exported(spec_path(tmp_path, b"net.yaml", named(name)))
    assert_only_expected_statements(source)


@pytest.mark.parametrize("name", list(HOSTILE_NAMES.values()), ids=list(HOSTILE_NAMES))
def test_export_of_a_hostile_network_name_runs_nothing(tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch):
    pytest.importorskip("torch")
    source = exported(spec_path(tmp_path, b"net.yaml", named(name)))
    module = import_exported(source, tmp_path, monkeypatch)
    assert not (tmp_path / MARKER).exists(), "the network name ran as code"
    assert_runs(module)
    doc = module.Net.__doc__
    assert doc.endswith(": every layer of the plan, in data-flow order.") and not RAW.search(doc), doc


@pytest.mark.parametrize(
    "source",
    [
        "import torch\nimport os\n",
        "import torch\nINPUT_SHAPE = (1, __import__('os'))\n",
        "import torch\n# a\x1b[2J\n",
        "import torch\nclass Net:\n    pass\nprint(1)\n",
        'import torch\n"""\n',
    ],
    ids=["import", "call", "escape", "statement", "syntax"],
)
def test_export_refuses_to_return_a_source_with_anything_it_does_not_write(source: str) -> None:
    with pytest.raises(InternalError):
        _checked(source)


def test_layer_names_become_distinct_identifiers_whatever_they_hold() -> None:
    names = [
        "class",
        "def",
        "None",
        "True",
        "self",
        "x",
        "forward",
        "__init__",
        "_private",
        "9lives",
        "",
        "a b",
        "a\nimport os",
        'a"""',
        "a\\",
        "a\u2028b",
        "a\x85b",
        "a\x00b",
        "é",
        "a_b",
        "a-b",
        "a.b",
        "match",
        "type",
    ]
    result = _identifiers(names)
    idents = list(result.values())
    assert len(set(idents)) == len(names), result
    for ident in idents:
        assert ident.isidentifier() and ident.isascii() and not ident.startswith("_"), ident
        assert ident not in {"class", "def", "None", "True", "self", "x", "forward", "type"}, ident


# --- SVG ---------------------------------------------------------------------------------------------------


def well_formed(svg: str) -> ET.Element:
    no_raw_characters(svg.replace("\n", ""))
    xml.dom.minidom.parseString(svg.encode("utf-8"))
    return ET.fromstring(svg.encode("utf-8"))


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (b"esc\x1b[31m\x07.yaml", "esc\\x1b[31m\\x07.yaml"),
        (b"bad\xff.yaml", "bad\\xff.yaml"),
        (b"nl\nx.yaml", "nl\\nx.yaml"),
        (b"amp&<lt>\"'.yaml", "amp&<lt>\"'.yaml"),
        ("bom\ufeff\u202e.yaml".encode(), "bom\\ufeff\\u202e.yaml"),
    ],
    ids=["esc-bel", "not-utf8", "newline", "markup", "bom-bidi"],
)
@pytest.mark.parametrize("layer", [None, "conv1"], ids=["network", "layer"])
def test_svg_of_a_hostile_file_name_is_well_formed(tmp_path: Path, raw: bytes, shown: str, layer: str | None) -> None:
    path = spec_path(tmp_path, raw, LAYERS)
    target = tmp_path / "out.svg"
    code, _, err = run("draw", path, "--output", target, *(["--layer", layer] if layer else []))
    assert code == 0, err
    svg = target.read_bytes().decode("utf-8")  # strict
    root = well_formed(svg)
    texts = "".join(root.itertext())
    assert f"{tmp_path}/{shown}" in texts, texts[:2000]


@pytest.mark.parametrize(
    "name",
    [*HOSTILE_NAMES.values(), "\ud7ff\ue000\ufffd\U0010ffff ok", "]]>&amp;<b>"],
    ids=[*HOSTILE_NAMES, "edges-of-xml", "markup"],
)
def test_svg_of_a_hostile_network_name_is_well_formed(tmp_path: Path, name: str) -> None:
    path = spec_path(tmp_path, b"net.yaml", named(name))
    for layer in (None, "conv1", "forward"):
        target = tmp_path / "out.svg"
        code, _, err = run("draw", path, "--output", target, *(["--layer", layer] if layer else []))
        assert code == 0, err
        root = well_formed(target.read_text(encoding="utf-8"))
        texts = "".join(root.itertext())
        assert ("\\x1b[31mred\\x1b[0m\\x07" in texts) == ("\x1b" in name), texts[:2000]
        ids = [el.get("id") for el in root.iter() if el.get("id")]
        assert len(ids) == len(set(ids)) and all(re.fullmatch(r"[A-Za-z][\w-]*", i) for i in ids), ids


# --- text and GitHub output --------------------------------------------------------------------------------

CONSTRAINT = LAYERS + 'constraints:\n  - "conv1.kernel == 3 \\e[2J\\e]0;owned\\a"\n'


def test_text_report_shows_an_escape_in_the_file_name_escaped(tmp_path: Path) -> None:
    path = spec_path(tmp_path, b"esc\x1b[2J\r.yaml", LAYERS)
    code, out, err = run("solve", path, "--no-verify")
    assert code == 0, err
    no_raw_characters(out)
    assert (
        out.splitlines()[0] == os.fsencode(path).decode().replace("\x1b", "\\x1b").replace("\r", "\\r") + ": solved"
    ), out


def test_text_report_shows_a_file_name_that_is_not_utf8_as_its_bytes(tmp_path: Path) -> None:
    path = spec_path(tmp_path, b"bad\xff.yaml", LAYERS)
    code, out, err = run("solve", path, "--no-verify")
    assert code == 0, err
    no_raw_characters(out)
    assert out.splitlines()[0] == f"{tmp_path}/bad\\xff.yaml: solved", out


@pytest.mark.parametrize("fmt", ["text", "json", "yaml"])
def test_diagnostics_show_control_characters_of_a_constraint_escaped(tmp_path: Path, fmt: str) -> None:
    path = spec_path(tmp_path, b"net.yaml", CONSTRAINT)
    code, out, err = run("solve", path, "--format", fmt)
    assert code == 1, (out, err)
    for stream in (out, err):
        assert "\x1b" not in stream and "\x07" not in stream, stream
    if fmt == "json":
        assert "[2J" in strict_json(out)["diagnostics"][0]["message"]
        assert "\\x1b[2J" in err  # the diagnostics on stderr, shown
    else:
        assert "\\x1b[2J" in (out + err)


def test_check_shows_control_characters_escaped(tmp_path: Path) -> None:
    path = spec_path(tmp_path, b"net\x1b.yaml", CONSTRAINT)
    code, out, err = run("check", path, "--jobs", "1")
    assert code == 1, (out, err)
    assert "\x1b" not in out + err and "net\\x1b.yaml:" in out and "\\x1b[2J" in out, out


def test_diagnostic_is_one_line_with_control_characters_escaped() -> None:
    d = Diagnostic("a\nb\udcff.yaml", 3, 4, "constraint", "bad \x1b[31m\r\nnext\u2028line\x85\x00\u202e", "warning")
    assert str(d) == "a\\nb\\xff.yaml:3:4: warning: bad \\x1b[31m\\r\\nnext\\u2028line\\x85\\x00\\u202e [constraint]"


def test_github_annotation_escapes_workflow_command_characters() -> None:
    d = Diagnostic("dir,x:y%z\r\n.yaml", 12, 5, "infeasible", "100% of it,: broken\r\n::error::forged \x1b[0m")
    line = github.render_diagnostic(d)
    assert line == (
        "::error file=dir%2Cx%3Ay%25z\\r\\n.yaml,line=12,col=5::"
        "100%25 of it,: broken\\r\\n::error::forged \\x1b[0m [infeasible]"
    )
    assert "\n" not in line and "\r" not in line


def test_check_github_format_for_a_hostile_file_name(tmp_path: Path) -> None:
    path = spec_path(tmp_path, b"a,b:c%d\n::error::x\x1b.yaml", CONSTRAINT)
    code, out, _ = run("check", path, "--format", "github", "--jobs", "1")
    assert code == 1
    annotations = [line for line in out.splitlines() if line.startswith("::")]
    assert annotations and len(annotations) == len(out.splitlines()) - 1, out  # and the summary line
    for annotation in annotations:
        match = re.fullmatch(r"::error file=((?:[^,:%\r\n]|%25|%2C|%3A)*),line=\d+,col=\d+::(.*)", annotation)
        assert match, annotation
        assert match[1].endswith("a%2Cb%3Ac%25d\\n%3A%3Aerror%3A%3Ax\\x1b.yaml"), match[1]
    assert "\x1b" not in out


# --- JSON --------------------------------------------------------------------------------------------------


def strict_json(text: str):
    def refuse(constant: str):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_json_for_a_spec_file_named_with_byte_0xff_is_strict_utf8(tmp_path: Path) -> None:
    spec_path(tmp_path, b"\xff.yaml", LAYERS)
    proc = subprocess.run(
        [sys.executable, "-m", "planner", "solve", b"\xff.yaml", "--format", "json"],
        cwd=tmp_path,
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    report = strict_json(proc.stdout.decode("utf-8"))  # strict UTF-8
    assert report["spec"] == "\\xff.yaml" and report["status"] == "solved"
    assert not re.search(rb"\\ud[89a-f]", proc.stdout, re.I), "no lone surrogate, escaped or raw"


def test_json_for_a_check_of_a_file_not_utf8_is_strict_utf8(tmp_path: Path) -> None:
    path = spec_path(tmp_path, b"bad\xfe.yaml", CONSTRAINT)
    code, out, _ = run("check", path, "--format", "json", "--jobs", "1")
    assert code == 1
    out.encode("utf-8")
    [report] = strict_json(out)
    assert report["spec"].endswith("bad\\xfe.yaml") and report["diagnostics"][0]["file"].endswith("bad\\xfe.yaml")


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_json_never_holds_nan_or_infinity(tmp_path: Path, value: str) -> None:
    spec = f"input:\n  shape: [1, 3, 8, 8]\nlayers:\n  - {{name: p, op: pad, padding: 1, value: {value}}}\n"
    code, out, err = run("solve", spec_path(tmp_path, b"nan.yaml", spec), "--format", "json", "--no-verify")
    assert code in (1, 3), (code, out, err)  # refused by the loader (1), or a bug the renderer will not hide (3)
    assert "NaN" not in out and "Infinity" not in out, out
    if out:
        strict_json(out)


def test_json_renderer_refuses_what_json_cannot_write() -> None:
    for value in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(InternalError, match=r"at \$\.solutions\[0\]\.objective"):
            json_out.dumps({"solutions": [{"objective": value}]})
    text = json_out.dumps({"spec": "a\udcff\ud800.yaml", "k\udc80": ["\x1b", 1.5, True, None]})
    text.encode("utf-8")
    assert strict_json(text) == {"spec": "a\\xff\\ud800.yaml", "k\\x80": ["\x1b", 1.5, True, None]}


# --- YAML --------------------------------------------------------------------------------------------------

YAML_NAMES = {
    **HOSTILE_NAMES,
    "nel-alone": "a\x85b",
    "ls-alone": "a\u2028b",
    "tab": "a\tb",
    "null": "null",
    "yes": "yes",
    "dash": "- x",
    "comment": "#c",
    "colon": "a: b",
    "tilde": "~",
    "anchor": "&a",
    "alias": "*a",
    "tag": "!t",
    "directive": "%YAML",
    "flow": "{a: [1]}",
    "spaces": "  a  ",
    "quotes": "'\"",
    "number": "1e3",
    "zero-width": "a\u200bb",
    "bom": "\ufeffa",
}


@pytest.mark.parametrize("name", list(YAML_NAMES.values()), ids=list(YAML_NAMES))
def test_yaml_output_round_trips_a_hostile_network_name(tmp_path: Path, name: str) -> None:
    path = spec_path(tmp_path, b"net.yaml", named(name))
    code, out, err = run("solve", path, "--format", "yaml", "--no-verify")
    assert code == 0, err
    no_raw_characters(out.replace("\n", ""))
    data = yaml.safe_load(out)
    assert data["name"] == name
    assert [layer["name"] for layer in data["layers"]] == ["conv1", "class", "forward"]
    assert data["layers"][0]["kernel"] == 3


def test_yaml_output_of_a_hostile_name_solves_again_to_the_same_plan(tmp_path: Path) -> None:
    name = HOSTILE_NAMES["triple-quotes"] + "\x85\u2028\x1b\u202e"
    code, first, err = run("solve", spec_path(tmp_path, b"net.yaml", named(name)), "--format", "yaml", "--no-verify")
    assert code == 0, err
    again = tmp_path / "again.yaml"
    again.write_text(first, encoding="utf-8")
    code, second, err = run("solve", again, "--format", "yaml", "--no-verify")
    assert code == 0, err
    assert second == first
