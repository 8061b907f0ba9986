"""Random small chain specs for the oracle tests, written as YAML text by hypothesis, with the brute
force that lists every assignment's outcome through `compute_plan`.

The brute force shares the plan calculator with the solver, so comparing the two tests the Z3
encoding and the enumeration, not the arithmetic: PyTorch is the oracle of the arithmetic
(`tests/test_solver_bruteforce.py`, `tests/test_dialects.py`)."""

from __future__ import annotations

import collections
import itertools
import math
from dataclasses import dataclass
from typing import Any

import yaml
from hypothesis import assume, event, note
from hypothesis import strategies as st

import planner
from planner.errors import InfeasibleError, SpecError
from planner.plan import compute_plan

MAX_ASSIGNMENTS = 120  # brute force (and the solver's enumeration) stay small
MAX_ASSIGNMENTS_TORCH = 400
MAX_ASSIGNMENTS_WIDE = 1200
MAX_CASES = 256  # planner.solver.encode lists at most this many stride x dilation cases per layer

LOWER = {"kernel": 1, "stride": 1, "dilation": 1, "padding": 0, "output_padding": 0, "size": 1}
KNOWN = {"kernel": (1, 4), "stride": (1, 3), "dilation": (1, 3), "padding": (0, 3), "output_padding": (0, 2)}
AXIS_PARAMS = ("kernel", "stride", "dilation", "output_padding")
MODES = ("valid", "same", "same_lower", "full")
VARIABLES = ("a", "b")
OPS = ("conv", "conv_transpose", "maxpool", "avgpool", "pad", "upsample")


# --- the spec text ------------------------------------------------------------------------------------


def flow(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()


def spec_text(spec: dict) -> str:
    """The spec as YAML, one line per layer, so a failing example reads like a spec file."""
    lines = [f"dialect: {spec['dialect']}", f"input: {flow(spec['input'])}", f"defaults: {flow(spec['defaults'])}"]
    if spec.get("variables"):
        lines.append(f"variables: {flow(spec['variables'])}")
    lines.append("layers:")
    lines += [f"  - {flow(layer)}" for layer in spec["layers"]]
    return "\n".join(lines) + "\n"


def members(form: Any) -> list[int]:
    """The values a domain form of SPEC 1.1/1.2 stands for (an independent reading of the spec)."""
    if isinstance(form, int):
        return [form]
    if "one_of" in form:
        return sorted(set(form["one_of"]))
    step = form.get("multiple_of", 1)
    return [v for v in range(form["min"], form["max"] + 1) if v % step == 0]


def layer_name(layer: dict, index: int) -> str:
    return layer.get("name") or f"{layer['op']}{index}"


def axis_terms(value: Any, key: str, name: str, rank: int) -> list[tuple[Any, str]]:
    """(form, unknown name) per spatial axis of kernel/stride/dilation/output_padding."""
    if isinstance(value, list):
        return [(v, f"{name}.{key}[{a}]") for a, v in enumerate(value)]
    return [(value, f"{name}.{key}")] * rank


def padding_terms(value: Any, name: str, rank: int) -> str | list[tuple[tuple[Any, str], tuple[Any, str]]]:
    """A padding mode, or ((form, unknown name) of begin, of end) per spatial axis."""
    if isinstance(value, str) and value in MODES:
        return value
    if not isinstance(value, list):
        return [((value, f"{name}.padding"),) * 2] * rank
    pairs = []
    for a, entry in enumerate(value):
        if isinstance(entry, list):
            pairs.append(tuple((v, f"{name}.padding[{a}][{side}]") for side, v in enumerate(entry)))
        else:
            pairs.append(((entry, f"{name}.padding[{a}]"),) * 2)
    return pairs


def terms_of(spec: dict) -> list[tuple[Any, str, str]]:
    """Every (form, kind, unknown name) written in the spec, each name once."""
    rank = len(spec["input"]["shape"]) - 2
    terms = [(value, "size", f"input.shape[{axis}]") for axis, value in enumerate(spec["input"]["shape"][2:], start=2)]
    for index, layer in enumerate(spec["layers"]):
        name = layer_name(layer, index)
        for key in AXIS_PARAMS:
            if key in layer:
                terms += [(form, key, u) for form, u in axis_terms(layer[key], key, name, rank)]
        if "padding" in layer:
            pairs = padding_terms(layer["padding"], name, rank)
            if not isinstance(pairs, str):
                terms += [(form, "padding", u) for pair in pairs for form, u in pair]
    return list({u: (form, kind, u) for form, kind, u in terms}.values())


def variable_kinds(spec: dict) -> dict[str, set[str]]:
    kinds: dict[str, set[str]] = {}
    for form, kind, _ in terms_of(spec):
        if isinstance(form, str) and form.startswith("$"):
            kinds.setdefault(form[1:], set()).add(kind)
    return kinds


def bounded_only(spec: dict) -> set[str]:
    """Undeclared variables of several kinds whose defaults are not all plain ranges: planner keeps only the
    bounds of all but one kind's default there (see test_variable_of_two_kinds_takes_only_shared_default_values)."""
    return {
        f"${var}"
        for var, kinds in variable_kinds(spec).items()
        if len(kinds) > 1
        and spec.get("variables", {}).get(var, "?") == "?"
        and any("one_of" in spec["defaults"][k] or "multiple_of" in spec["defaults"][k] for k in kinds)
    }


def expected_unknowns(spec: dict) -> dict[str, list[int]]:
    """Name -> members of every unknown the spec writes: SPEC 1.1/1.2 read without planner's code.

    A `"$name"` used as several kinds without a declared domain takes the values that
    every kind's default allows (and each kind's lower bound)."""
    found: dict[str, list[int]] = {}
    for form, kind, name in terms_of(spec):
        if isinstance(form, int) or (isinstance(form, str) and form.startswith("$")):
            continue
        found[name] = members(spec["defaults"][kind] if form == "?" else form)
    for var, kinds in variable_kinds(spec).items():
        declared = spec.get("variables", {}).get(var, "?")
        if isinstance(declared, int):
            continue
        if declared == "?":
            values = set.intersection(*(set(members(spec["defaults"][k])) for k in kinds))
        else:
            values = set(members(declared))
        found[f"${var}"] = sorted(v for v in values if v >= max(LOWER[k] for k in kinds))
    return found


# --- hypothesis: random chain specs ---------------------------------------------------------------------


def range_forms(kind: str) -> st.SearchStrategy:
    lower = LOWER[kind]
    return st.builds(lambda lo, width: {"min": lo, "max": lo + width}, st.integers(lower, lower + 2), st.integers(0, 2))


def one_of_forms(kind: str) -> st.SearchStrategy:
    """Unsorted, duplicates allowed."""
    return st.lists(st.integers(LOWER[kind], LOWER[kind] + 3), min_size=1, max_size=3).map(lambda v: {"one_of": v})


def domain_forms(kind: str) -> st.SearchStrategy:
    return st.one_of(range_forms(kind), one_of_forms(kind))


@st.composite
def size_domains(draw) -> dict:
    lo = draw(st.integers(1, 6))
    form = {"min": lo, "max": lo + draw(st.integers(0, 6))}
    step = draw(st.sampled_from([None, None, 2, 3]))
    if step and members({**form, "multiple_of": step}):
        form["multiple_of"] = step
    return form


@st.composite
def scalars(draw, kind: str) -> Any:
    """One value form shared by all axes (SPEC 1.1), mostly a known int."""
    form = draw(st.sampled_from(["int", "int", "int", "?", "range", "one_of", "var"]))
    if form == "int":
        return draw(st.integers(*KNOWN[kind]))
    if form == "?":
        return "?"
    if form == "var":
        return "$" + draw(st.sampled_from(VARIABLES))
    return draw(range_forms(kind) if form == "range" else one_of_forms(kind))


@st.composite
def axis_values(draw, kind: str, rank: int) -> Any:
    if draw(st.integers(0, 4)) == 0:
        return [draw(scalars(kind)) for _ in range(rank)]
    return draw(scalars(kind))


@st.composite
def paddings(draw, rank: int, modes: bool = True) -> Any:
    form = draw(st.sampled_from(["scalar", "scalar", "axes"] + (["mode", "mode"] if modes else [])))
    if form == "mode":
        return draw(st.sampled_from(MODES))
    if form == "scalar":
        return draw(scalars("padding"))
    return [
        [draw(scalars("padding")), draw(scalars("padding"))] if draw(st.booleans()) else draw(scalars("padding"))
        for _ in range(rank)
    ]


@st.composite
def layers(draw, rank: int) -> dict:
    op = draw(st.sampled_from(OPS))
    layer: dict[str, Any] = {"op": op}
    if draw(st.integers(0, 5)) == 0:
        layer["name"] = draw(st.sampled_from(["enc", "mid", "up_1", "head2"]))
    if op in ("conv", "conv_transpose"):
        layer["out_channels"] = draw(st.integers(1, 2))
        layer["kernel"] = draw(axis_values("kernel", rank))
        optional = ["stride", "padding", "dilation"] + (["output_padding"] if op == "conv_transpose" else [])
    elif op in ("maxpool", "avgpool"):
        layer["kernel"] = draw(axis_values("kernel", rank))
        optional = ["stride", "padding"] + (["dilation"] if op == "maxpool" else [])
        layer["ceil_mode"] = draw(st.booleans())
        if op == "avgpool" and draw(st.booleans()):
            layer["count_include_pad"] = draw(st.booleans())
    elif op == "pad":
        layer["padding"] = draw(paddings(rank, modes=False))
        optional = []
    else:
        if draw(st.integers(0, 3)) == 0:
            layer["size"] = draw(
                st.one_of(st.integers(1, 6), st.lists(st.integers(1, 6), min_size=rank, max_size=rank))
            )
        else:
            layer["scale_factor"] = draw(st.integers(1, 2))
        optional = []
    for key in optional:
        if draw(st.booleans()):
            layer[key] = draw(paddings(rank)) if key == "padding" else draw(axis_values(key, rank))
    return layer


@st.composite
def specs(
    draw, dialects: tuple[str, ...] = ("pytorch",), wide: bool = False, max_assignments: int = MAX_ASSIGNMENTS_TORCH
) -> dict:
    """A random chain spec; `wide` gives one layer stride and dilation domains too large for the encoding to
    list case by case (more than MAX_CASES), so Z3 gets them as non-linear terms."""
    rank = draw(st.integers(1, 2))
    sizes = [draw(st.one_of(st.integers(1, 12), st.just("?"), size_domains())) for _ in range(rank)]
    spec: dict[str, Any] = {
        "dialect": draw(st.sampled_from(dialects)),
        "input": {"shape": [1, draw(st.integers(1, 2)), *sizes]},
        "defaults": {**{kind: draw(domain_forms(kind)) for kind in KNOWN}, "size": draw(size_domains())},
        "layers": [],
    }
    names = {""}
    for _ in range(draw(st.integers(1, 3))):
        layer = draw(layers(rank))
        if layer.get("name") in names:
            del layer["name"]
        names.add(layer.get("name", ""))
        spec["layers"].append(layer)
    if wide:
        index = draw(st.integers(0, len(spec["layers"]) - 1))
        layer = spec["layers"][index]
        if layer["op"] not in ("conv", "conv_transpose", "maxpool"):
            kernel = draw(axis_values("kernel", rank))
            layer = spec["layers"][index] = {"op": "conv", "out_channels": 1, "kernel": kernel}
        strides = draw(st.integers(12, 20))
        layer["stride"] = {"min": 1, "max": strides}
        layer["dilation"] = {"min": 1, "max": MAX_CASES // strides + draw(st.integers(1, 2))}
    variables = {}
    for var, kinds in variable_kinds(spec).items():  # declare some of the variables used, within every kind's bounds
        lower = max(LOWER[k] for k in kinds)
        choice = draw(st.sampled_from(["none", "none", "int", "?", "domain"]))
        if choice == "int":
            variables[var] = draw(st.integers(lower, lower + 2))
        elif choice == "?":
            variables[var] = "?"
        elif choice == "domain":
            variables[var] = draw(domain_forms("kernel" if lower else "padding"))
    if variables:
        spec["variables"] = variables
    assume(all(expected_unknowns(spec).values()))  # an empty domain is a load error, tested elsewhere
    assume(math.prod(len(m) for m in expected_unknowns(spec).values()) <= max_assignments)
    return spec


# --- brute force --------------------------------------------------------------------------------------


@dataclass
class Outcome:
    assignment: dict[str, int]  # unknown name -> value
    plan: planner.Plan | None
    error: SpecError | InfeasibleError | None


def brute_force(network: planner.Network) -> list[Outcome]:
    """compute_plan on every assignment of the network's unknowns."""
    outcomes = []
    for values in itertools.product(*(u.domain.members() for u in network.unknowns)):
        assignment = dict(zip(network.unknowns, values, strict=True))
        named = {u.name: v for u, v in assignment.items()}
        try:
            outcomes.append(Outcome(named, compute_plan(network, assignment), None))
        except (SpecError, InfeasibleError) as e:
            outcomes.append(Outcome(named, None, e))
    return outcomes


def frozen(assignment: dict[str, int]) -> frozenset:
    return frozenset(assignment.items())


def load(spec: dict, data: st.DataObject, max_assignments: int) -> tuple[planner.Network, dict]:
    """Load the spec; sometimes add an `expect` to its last layer, from a plan (feasible) or at random."""
    network = planner.loads(spec_text(spec), "random.yaml")
    assume(math.prod(u.domain.size() for u in network.unknowns) <= max_assignments)
    choice = data.draw(st.sampled_from(["none", "none", "from a plan", "random"]), label="expect")
    if choice != "none":
        plans = [o.plan for o in brute_force(network) if o.plan is not None]
        if choice == "from a plan" and plans:
            shape = list(data.draw(st.sampled_from(plans), label="plan").layers[-1].output_shape)
            for axis in range(2, len(shape)):
                if data.draw(st.booleans(), label=f"expect[{axis}] is '?'"):
                    shape[axis] = "?"
        else:
            rank = len(spec["input"]["shape"]) - 2
            shape = [
                1,
                data.draw(st.integers(1, 2)),
                *data.draw(st.lists(st.one_of(st.integers(1, 10), st.just("?")), min_size=rank, max_size=rank)),
            ]
        spec = {**spec, "layers": [*spec["layers"][:-1], {**spec["layers"][-1], "expect": shape}]}
        network = planner.loads(spec_text(spec), "random.yaml")
    note(spec_text(spec))
    event(f"{len(network.unknowns)} unknowns")
    for form in forms_in(spec):
        event(form)
    return network, spec


def forms_in(spec: dict) -> set[str]:
    """Which of the interesting value forms a spec writes (for hypothesis' statistics)."""
    forms = set()
    uses = collections.Counter(form for form, _, _ in terms_of(spec) if isinstance(form, str) and "$" in form)
    if any(n > 1 for n in uses.values()):
        forms.add("form: shared $variable")
    if any(not isinstance(v, int) for v in spec["input"]["shape"][2:]):
        forms.add("form: unknown input size")
    for layer in spec["layers"]:
        padding = layer.get("padding")
        if padding in MODES:
            forms.add(f"form: padding {padding}")
        if isinstance(padding, list) and any(isinstance(e, list) for e in padding):
            forms.add("form: padding [begin, end]")
        if any(isinstance(layer.get(key), list) for key in AXIS_PARAMS):
            forms.add("form: per-axis list")
        if layer.get("ceil_mode"):
            forms.add(f"form: {layer['op']} ceil_mode")
        if "expect" in layer:
            forms.add("form: expect")
    return forms
