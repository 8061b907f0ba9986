"""`--plan N` for export, draw and run (the N-th plan, as `solve --max-solutions N` orders them),
and `planner schema`, the JSON Schema of the spec format, against the example and golden specs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

import planner
from planner import export
from planner.draw import draw_network
from planner.schema import spec_schema
from tests.conftest import EXAMPLES, ROOT, run, write

DCGAN = ROOT / "specs" / "dcgan_generator.yaml"
GUIDE = ROOT / "specs" / "guide_transposed.yaml"
VALID = sorted((ROOT / "tests" / "specs" / "valid").glob("*.yaml"))
FORM_ERRORS = [
    "unknown_key",
    "unknown_top_key",
    "unknown_op",
    "wrong_type",
    "wrong_type_channels",
    "missing_key",
    "variable_without_name",
    "unknown_dialect",
]


@pytest.fixture(scope="module")
def dcgan_plans() -> tuple[planner.Network, list[planner.Plan]]:
    network = planner.load(DCGAN)
    plans = planner.solve(network, max_solutions=3, verify=False).plans
    assert len(plans) == 3 and len({json.dumps(p.assignment, sort_keys=True) for p in plans}) == 3
    return network, plans


@pytest.mark.parametrize("n", [1, 2, 3])
def test_export_plan_n_is_the_nth_plan_of_solve(dcgan_plans, n: int) -> None:
    network, plans = dcgan_plans
    code, out, err = run("export", DCGAN, "--to", "pytorch", "--plan", n)
    assert code == 0, err
    assert out == export.export_pytorch(network, plans[n - 1])
    others = [export.export_pytorch(network, p) for i, p in enumerate(plans) if i != n - 1]
    assert out not in others, "another plan's module"


def test_draw_plan_n_is_the_nth_plan_of_solve(tmp_path: Path, dcgan_plans) -> None:
    network, plans = dcgan_plans
    code, _, err = run("draw", DCGAN, "--plan", 2, "--output", tmp_path / "two.svg")
    assert code == 0, err
    assert (tmp_path / "two.svg").read_text() == draw_network(network, plans[1])


def test_run_plan_n_runs_the_nth_plan(dcgan_plans) -> None:
    _, plans = dcgan_plans
    code, out, err = run("run", DCGAN, "--plan", 3)
    assert code == 0, err
    shapes = [line.split()[2:6] for line in out.splitlines()[1:-1]]
    assert [" ".join(s) for s in shapes] == [" ".join(str(list(ly.output_shape)).split()) for ly in plans[2].layers]


def test_a_plan_beyond_the_count_is_a_usage_error() -> None:
    code, out, err = run("export", GUIDE, "--to", "pytorch", "--plan", 2)
    assert code == 2 and out == ""
    assert err == f"planner: --plan 2: {GUIDE} has only 1 plan\n"


def _validator():
    jsonschema = pytest.importorskip("jsonschema")
    schema = spec_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("path", EXAMPLES + VALID, ids=lambda p: p.stem)
def test_every_valid_spec_satisfies_the_schema(path: Path) -> None:
    errors = list(_validator().iter_errors(yaml.safe_load(path.read_text())))
    assert not errors, [e.message for e in errors]


@pytest.mark.parametrize("name", FORM_ERRORS)
def test_a_spec_with_a_form_error_breaks_the_schema(name: str) -> None:
    data = yaml.safe_load((ROOT / "tests" / "specs" / "invalid" / f"{name}.yaml").read_text())
    assert list(_validator().iter_errors(data)), f"{name} passes the schema"


def test_schema_command_writes_the_schema(tmp_path: Path) -> None:
    code, out, err = run("schema")
    assert code == 0 and err == ""
    assert json.loads(out) == spec_schema()
    assert json.loads(out)["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    target = write(tmp_path, "spec.schema.json", "old\n")
    code, out, err = run("schema", "--output", target)
    assert code == 0 and out == "" and json.loads(target.read_text()) == spec_schema()
