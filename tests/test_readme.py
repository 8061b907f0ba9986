"""The README stays true: its opening commands (CI runs them), its synopsis against the CLI's own
parser, its example specs against the loader, the console examples that are cheap to run against
what planner prints now, and its code blocks within 100 columns."""

from __future__ import annotations

import argparse
import re
import shlex

import pytest

import planner
from planner.commands import _parser
from tests.conftest import ROOT, run

README = (ROOT / "README.md").read_text(encoding="utf-8")

OPENING = """\
```sh
pip install . && planner solve specs/dcgan_generator.yaml
pip install -e '.[test]' && python -m pytest
```
"""


def blocks(language: str | None = None) -> list[str]:
    """The fenced code blocks of the README (of one language, when given), without their fences."""
    found = []
    for match in re.finditer(r"^( *)```(\w*)\n(.*?)^\1```$", README, re.M | re.S):
        indent, lang, body = match.groups()
        if language is None or lang == language:
            found.append("\n".join(line[len(indent) :] for line in body.splitlines()))
    return found


def section(title: str) -> str:
    start = README.index(f"\n## {title}")
    end = README.find("\n## ", start + 1)
    return README[start : end if end >= 0 else len(README)]


def test_the_opening_keeps_the_title_and_the_two_commands_ci_runs():
    assert README.startswith("# planner\n\n")
    head = README[: README.index("\n## ")]
    assert OPENING in head


def test_code_blocks_keep_within_100_columns():
    long = [line for body in blocks() for line in body.splitlines() if len(line) > 100]
    assert long == []


def test_the_speed_table_marker_is_on_its_own_line():
    assert "\n<!-- speed-table -->\n" in section("Speed")


def test_the_synopsis_names_every_command_and_option_of_the_parser():
    synopsis = blocks("")[0]
    entries: dict[str, str] = {}
    for line in synopsis.splitlines():
        if line.startswith("planner "):
            command = line.split()[1]
            entries[command] = line
        else:
            entries[command] += " " + line.strip()
    commands = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert set(commands.choices) <= set(entries), set(commands.choices) - set(entries)
    for name, sub in commands.choices.items():
        options = {s for a in sub._actions for s in a.option_strings if s.startswith("--") and s != "--help"}
        missing = {o for o in options if not re.search(re.escape(o) + r"\b", entries[name])}
        assert not missing, f"planner {name}: {sorted(missing)} not in the README's synopsis"


def test_every_example_spec_in_the_readme_loads():
    specs = [body for body in blocks("yaml") if re.search(r"^layers:", body, re.M)]
    assert len(specs) >= 3
    for text in specs:
        planner.loads(text, "readme.yaml")


def test_the_contributing_steps_name_registries_that_exist():
    steps = section("Contributing: adding an op")
    assert [int(n) for n in re.findall(r"^(\d)\. ", steps, re.M)] == [1, 2, 3, 4, 5]
    from planner.draw.figures import FIGURES
    from planner.executor.run import LAYERS
    from planner.export.layers import EXPORTS
    from planner.ops import OPS
    from planner.spec.models import LAYER_MODELS

    for name in ("LAYER_MODELS", "_ALL", "LAYERS", "@exports", "FIGURES", "tests/test_contributing.py"):
        assert name in steps
    assert LAYER_MODELS and OPS.keys() <= LAYERS.keys() and "silu" in EXPORTS and FIGURES


def console_examples() -> dict[str, str]:
    """Each `$ planner ...` line of a console block (with its continuation lines) -> what follows it."""
    examples: dict[str, str] = {}
    for body in blocks("console"):
        command: str | None = None
        for line in body.splitlines():
            if line.startswith("$ "):
                command = line[2:]
                examples[command] = ""
            elif command is not None and command.endswith("\\") and not examples[command]:
                del examples[command]
                command = command[:-1].rstrip() + " " + line.strip()
                examples[command] = ""
            elif command is not None:
                examples[command] += line + "\n"
    return examples


CHEAP = [
    "planner solve specs/guide_transposed.yaml",
    "planner solve specs/lenet5.yaml --columns num_params,params_percent,mult_adds,kernel_size,parameters",
    "planner sizes specs/unet_original.yaml",
    "planner sizes specs/vgg_classifier.yaml",
    "planner sizes unet1d.yaml",
]


@pytest.mark.parametrize("command", CHEAP)
def test_console_examples_print_what_the_readme_shows(command, tmp_path, monkeypatch):
    examples = console_examples()
    assert command in examples, sorted(examples)
    unet1d = next(body for body in blocks("yaml") if body.startswith("input: {shape: [1, 1, 101]}"))
    (tmp_path / "unet1d.yaml").write_text(unet1d + "\n")
    monkeypatch.chdir(ROOT if "specs/" in command else tmp_path)
    monkeypatch.setenv("COLUMNS", "100")
    code, out, _ = run(*shlex.split(command)[1:])
    assert code == 0
    assert out == examples[command]
