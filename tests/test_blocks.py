"""Blocks (docs/blocks.md): `blocks:` with `$param` placeholders, used in `layers` with `with`,
`first` and `repeat`, expanded before validation into the flat list of layers that every later
stage sees; every expanded value keeps the position of the text it was copied from, and a problem
inside a block is followed by notes naming the uses it comes from.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

import planner
from planner.errors import SpecError
from planner.schema import spec_schema
from planner.spec.blocks import expand_blocks
from planner.spec.load import load_spec, load_spec_text
from planner.spec.yamlpos import Mark, load_yaml
from tests.conftest import ROOT, run

RESNET = ROOT / "specs" / "resnet50.yaml"
RESNET_FLAT = ROOT / "tests" / "specs" / "networks" / "resnet50_flat.yaml"
ASPP = ROOT / "specs" / "deeplab_aspp.yaml"


def spec(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def expanded(text: str) -> list[dict[str, Any]]:
    """The layers of the spec once its blocks are expanded."""
    return load_spec_text(spec(text), "spec.yaml").source.data["layers"]


def problems(text: str) -> list[str]:
    """The diagnostics of a spec that does not load, as printed."""
    with pytest.raises(SpecError) as info:
        planner.loads(spec(text), "spec.yaml")
    return [str(d) for d in info.value.diagnostics]


def reads(text: str) -> dict[str, tuple[str, ...]]:
    """Each layer of the loaded network and the layers it reads."""
    return {node.name: node.inputs for node in planner.loads(spec(text), "spec.yaml").nodes}


UNIT = """
input:
  shape: [1, 8, 32, 32]
blocks:
  unit:
    params: {c: ~, k: 3, s: 1}
    layers:
      - {name: conv, op: conv, out_channels: "$c", kernel: "$k", stride: "$s", padding: 1}
      - {op: relu}
      - {name: out, op: add, inputs: [relu1, input]}
layers:
"""


KERNELS = """
input:
  shape: [1, 8, 32, 32]
blocks:
  pair:
    params: {k: ~}
    layers:
      - {name: a, op: conv, out_channels: 8, kernel: "$k"}
      - {name: b, op: conv, out_channels: 8, kernel: "$k"}
layers:
  - {block: pair, name: p, with: {k: K}, repeat: 2}
  - {name: head, op: conv, out_channels: 8, kernel: 1, expect: [1, 8, 20, 20]}
"""


# --- expansion: order, names, references ---------------------------------------------------------


def test_a_repeat_expands_in_order_with_indexed_names_and_chains() -> None:
    layers = reads(UNIT + "  - {block: unit, name: stage, with: {c: 8}, repeat: 2}\n  - {op: relu}\n")
    assert layers == {
        "stage_0_conv": ("input",),
        "stage_0_relu1": ("stage_0_conv",),
        "stage_0_out": ("stage_0_relu1", "input"),
        "stage_1_conv": ("stage_0_out",),
        "stage_1_relu1": ("stage_1_conv",),
        "stage_1_out": ("stage_1_relu1", "stage_0_out"),
        "relu1": ("stage_1_out",),  # the default name counts written entries: it is the second
    }


def test_a_use_without_repeat_has_no_index_and_its_name_defaults_to_block_and_position() -> None:
    text = UNIT + "  - {op: conv, out_channels: 8, kernel: 1}\n  - {block: unit, with: {c: 8}}\n"
    assert list(reads(text)) == ["conv0", "unit1_conv", "unit1_relu1", "unit1_out"]


def test_a_use_name_means_its_output_and_input_means_the_blocks_input() -> None:
    text = UNIT + spec("""
          - {name: stem, op: conv, out_channels: 8, kernel: 1}
          - {block: unit, name: a, with: {c: 8}}
          - {block: unit, name: b, input: stem, with: {c: 8}}
          - {name: sum, op: add, inputs: [a, b]}
        """)
    layers = reads(text)
    assert layers["a_conv"] == ("stem",) and layers["a_out"] == ("a_relu1", "stem")
    assert layers["b_conv"] == ("stem",) and layers["b_out"] == ("b_relu1", "stem")
    assert layers["sum"] == ("a_out", "b_out")


def test_a_block_param_can_name_a_layer_and_a_block_and_an_empty_block_is_its_input() -> None:
    text = spec("""
        input:
          shape: [1, 8, 16, 16]
        blocks:
          nothing:
            layers: []
          proj:
            layers:
              - {name: conv, op: conv, out_channels: 8, kernel: 1}
          merge:
            params: {skip: ~, short: nothing}
            layers:
              - {name: conv, op: conv, out_channels: 8, kernel: 3, padding: 1}
              - {block: "$short", name: shortcut, input: input}
              - {name: cat, op: concat, inputs: [conv, shortcut, "$skip"]}
        layers:
          - {name: stem, op: conv, out_channels: 8, kernel: 1}
          - {name: mid, op: relu}
          - {block: merge, name: m1, with: {skip: stem}}
          - {block: merge, name: m2, with: {skip: input, short: proj}}
        """)
    layers = reads(text)
    assert layers["m1_cat"] == ("m1_conv", "mid", "stem")  # `nothing`: the shortcut is the block's input
    assert layers["m2_shortcut_conv"] == ("m1_cat",)
    assert layers["m2_cat"] == ("m2_conv", "m2_shortcut_conv", "input")  # `input` passed at the top: the network's


def test_blocks_nest_and_pass_their_params_on_and_values_keep_where_they_are_written() -> None:
    text = spec("""
        input:
          shape: [1, 8, 32, 32]
        blocks:
          unit:
            params: {c: ~, s: 1}
            layers:
              - {name: conv, op: conv, out_channels: "$c", kernel: 3, stride: "$s", padding: 1}
          stage:
            params: {width: ~}
            layers:
              - {block: unit, name: u, with: {c: "$width", s: 2}, repeat: 2}
        layers:
          - {block: stage, name: s, with: {width: 16}}
        """)
    source = load_spec_text(text, "spec.yaml").source
    assert [(ly["name"], ly["out_channels"], ly["stride"]) for ly in source.data["layers"]] == [
        ("s_u_0_conv", 16, 2),
        ("s_u_1_conv", 16, 2),
    ]
    at = ("layers", 1)
    assert source.value_marks[(*at, "out_channels")] == Mark(13, 43)  # the 16 of the top-level use
    assert source.key_marks[(*at, "out_channels")] == Mark(7, 32)  # the key in the block
    assert source.value_marks[(*at, "stride")] == Mark(11, 55)  # the 2 of the use in `stage`
    assert source.value_marks[(*at, "name")] == Mark(7, 16)  # the block's `conv`, renamed
    assert [str(n) for n in source.notes(at)] == [
        "spec.yaml:11:9: note: in block 'unit', used here as 's_u_1' [block-use]",
        "spec.yaml:13:5: note: in block 'stage', used here as 's' [block-use]",
    ]


def test_params_take_defaults_with_overrides_and_first_for_the_first_copy() -> None:
    layers = expanded(UNIT + "  - {block: unit, name: u, with: {c: 4, k: 5}, first: {s: 2, c: 6}, repeat: 3}\n")
    convs = [layer for layer in layers if layer["op"] == "conv"]
    assert [(c["out_channels"], c["kernel"], c["stride"]) for c in convs] == [(6, 5, 2), (4, 5, 1), (4, 5, 1)]


def test_substitution_replaces_whole_values_and_list_entries_never_text() -> None:
    text = spec("""
        input:
          shape: [1, 8, 16, 16]
        blocks:
          b:
            params: {k: 3, p: same, op: relu}
            layers:
              - {name: c, op: conv, out_channels: 8, kernel: ["$k", 1], padding: "$p"}
              - {name: a, op: "$op"}
              - {name: keep, op: conv, out_channels: 8, kernel: 1, padding: 0, expect: [1, 8, "?", "?"]}
        layers:
          - {block: b, name: x, with: {k: 5, op: tanh}}
        """)
    layers = expanded(text)
    assert layers[0]["kernel"] == [5, 1] and layers[0]["padding"] == "same"
    assert layers[1]["op"] == "tanh"
    assert layers[2]["expect"] == [1, 8, "?", "?"]
    longer = text.replace('"$k"', '"$k_2"').replace("k: 3,", "k: 3, k_2: 2,")  # a name, not a prefix of one
    assert expanded(longer)[0]["kernel"] == [2, 1]


def test_constraints_name_expanded_layers() -> None:
    text = spec(KERNELS.replace("K", '"?"')) + 'constraints:\n  - "p_0_a.kernel + 2 == p_1_b.kernel"\n'
    result = planner.solve(planner.loads(text), max_solutions=None, verify=False)
    assert [p.assignment for p in result.plans] == [{"$p_0_k": 3, "$p_1_k": 5}]


def test_a_spec_without_blocks_is_left_as_it_is() -> None:
    source = load_yaml("input: {shape: [1, 1, 4]}\nlayers: [{op: relu}]\n", "spec.yaml")
    assert expand_blocks(source) == (source, [])


def test_the_expanded_tree_has_a_mark_for_every_value_and_key() -> None:
    source = load_spec(RESNET).source
    paths: set[tuple] = set()

    def walk(value: Any, path: tuple) -> None:
        paths.add(path)
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for k, v in items:
            walk(v, (*path, k))

    walk(source.data, ())
    assert set(source.value_marks) == paths
    assert set(source.key_marks) == {p for p in paths if p and isinstance(p[-1], str)}
    assert "blocks" not in source.data


# --- unknowns through params -----------------------------------------------------------------------


def test_an_unknown_passed_to_a_param_is_one_unknown_per_copy_and_solves() -> None:
    result = planner.solve(planner.loads(spec(KERNELS.replace("K", '"?"'))), max_solutions=None, count=True)
    assert result.status is planner.Status.SOLVED and all(p.verified for p in result.plans)
    # 2 (k0 - 1) + 2 (k1 - 1) = 12 with each k in 1..7: the two convs of a copy share its unknown
    assert sorted((p.assignment["$p_0_k"], p.assignment["$p_1_k"]) for p in result.plans) == [
        (k, 8 - k) for k in range(1, 8)
    ]
    assert result.count == 7


def test_a_range_passed_to_a_param_keeps_its_domain() -> None:
    result = planner.solve(planner.loads(spec(KERNELS.replace("K", "{min: 2, max: 4}"))), max_solutions=None)
    assert [p.assignment for p in result.plans] == [{"$p_0_k": 4, "$p_1_k": 4}]  # k0 + k1 = 8 within 2..4


def test_a_spec_variable_passed_to_a_param_is_shared_across_repeats() -> None:
    text = spec(KERNELS.replace("K", '"$k"')).replace("expect: [1, 8, 20, 20]", "expect: [1, 8, 24, 24]")
    result = planner.solve(planner.loads(text), max_solutions=None, count=True)
    assert [p.assignment for p in result.plans] == [{"$k": 3}]  # 4 (k - 1) = 8


def test_a_solved_block_spec_prints_as_a_flat_spec_that_solves_again() -> None:
    from planner.report.yaml_out import render

    network = planner.loads(spec(KERNELS.replace("K", '"?"')))
    plan = planner.solve(network, verify=False).plans[0]
    printed = render(network, [plan])
    assert "blocks" not in printed and "p_1_b" in printed
    again = planner.solve(planner.loads(printed), verify=False).plans[0]
    assert [(ly.name, ly.params, ly.output_shape) for ly in again.layers] == [
        (ly.name, ly.params, ly.output_shape) for ly in plan.layers
    ]


# --- errors: located inside the block, and at the use -------------------------------------------


NESTED = """
input:
  shape: [1, 8, 32, 32]
blocks:
  unit:
    params: {c: ~, k: 3}
    layers:
      - {name: conv, op: conv, out_channels: "$c", kernel: "$k", padding: 1}
      - {name: act, op: conv, out_channels: 8, kernel: 1, stirde: 2}
  stage:
    params: {c: ~}
    layers:
      - {block: unit, name: u, with: {c: "$c"}, repeat: 2}
layers:
  - {block: stage, name: s1, with: {c: 8}}
  - {block: stage, name: s2, with: {c: 8}}
"""


def test_an_error_in_a_block_points_at_its_line_with_a_note_per_use_level() -> None:
    assert problems(NESTED) == [
        "spec.yaml:8:59: error: unknown key 'stirde' (did you mean 'stride'?) [unknown-key]",
        "spec.yaml:12:9: note: in block 'unit', used here as 's1_u_0' [block-use]",
        "spec.yaml:14:5: note: in block 'stage', used here as 's1' [block-use]",
    ]


def test_a_wrong_value_passed_to_a_block_points_at_the_use() -> None:
    text = NESTED.replace(", stirde: 2", "").replace("s2, with: {c: 8}", 's2, with: {c: "?"}')
    assert problems(text) == [
        "spec.yaml:15:40: error: 'out_channels': input should be a valid integer, got '?' [type]",
        "spec.yaml:12:9: note: in block 'unit', used here as 's2_u_0' [block-use]",
        "spec.yaml:15:5: note: in block 'stage', used here as 's2' [block-use]",
    ]


USES = """
input:
  shape: [1, 8, 32, 32]
blocks:
  unit:
    params: {c: ~, k: 3}
    layers:
      - {name: conv, op: conv, out_channels: "$c", kernel: "$k", padding: 1}
layers:
  - USE
"""


@pytest.mark.parametrize(
    ("use", "expected"),
    [
        (
            "{block: unti, with: {c: 8}}",
            "spec.yaml:9:13: error: no block named 'unti' (did you mean 'unit'?); blocks are: unit [unknown-block]",
        ),
        (
            "{block: unit, with: {k: 5}}",
            "spec.yaml:9:5: error: block 'unit' needs the parameter 'c', which has no default; give it in `with:` "
            "[missing-param]",
        ),
        (
            "{block: unit, with: {c: 8, kk: 5}}",
            "spec.yaml:9:32: error: block 'unit' has no parameter 'kk' (did you mean 'k'?); its parameters are: c, k "
            "[unknown-param]",
        ),
        (
            "{block: unit, with: {c: 8}, repeat: 0}",
            "spec.yaml:9:41: error: 'repeat': input should be greater than or equal to 1, got 0 [value]",
        ),
        (
            "{block: unit, with: {c: 8}, times: 2}",
            "spec.yaml:9:33: error: unknown key 'times' [unknown-key]",
        ),
        (
            "{block: unit, name: input, with: {c: 8}}",
            "spec.yaml:9:25: error: 'input' names the network's input; pick another name [duplicate-name]",
        ),
    ],
    ids=["unknown-block", "missing-param", "unknown-param", "repeat-0", "unknown-key", "input"],
)
def test_each_mistake_in_a_use_has_its_located_error(use: str, expected: str) -> None:
    assert problems(USES.replace("USE", use))[0] == expected


def test_a_cycle_of_blocks_is_reported_at_the_use_that_closes_it() -> None:
    text = spec("""
        input:
          shape: [1, 8, 8]
        blocks:
          a:
            layers:
              - {block: b}
          b:
            layers:
              - {op: relu}
              - {block: a}
        layers:
          - {block: a, name: top}
        """)
    assert problems(text) == [
        "spec.yaml:10:17: error: block 'a' uses itself: a -> b -> a [block-cycle]",
        "spec.yaml:6:9: note: in block 'b', used here as 'top_b0' [block-use]",
        "spec.yaml:12:5: note: in block 'a', used here as 'top' [block-use]",
    ]


def test_names_that_clash_after_expansion_are_reported() -> None:
    text = USES.replace("USE", "{block: unit, name: u, with: {c: 8}}\n  - {name: u_conv, op: relu}")
    assert problems(text) == [
        "spec.yaml:10:12: error: after expansion, the layer name 'u_conv' is already used by the layer at line 7, "
        "in block 'unit' used as 'u' [duplicate-name]",
    ]


def test_a_reference_inside_a_block_resolves_there_first() -> None:
    text = USES.replace("USE", "{block: unit, name: u, with: {c: 8}}").replace(
        "padding: 1}", "padding: 1}\n      - {name: act, op: relu, input: cnov}"
    )
    assert problems(text) == [
        "spec.yaml:8:38: error: no layer named 'cnov' in block 'unit' or before its use (did you mean 'conv'?) "
        "[unknown-layer]",
        "spec.yaml:10:5: note: in block 'unit', used here as 'u' [block-use]",
    ]


def test_a_misspelt_param_in_a_block_is_not_taken_for_a_spec_variable() -> None:
    text = USES.replace("USE", "{block: unit, with: {c: 8}}").replace('kernel: "$k"', 'kernel: "$kk"')
    assert problems(text)[0] == (
        "spec.yaml:7:60: error: '$kk' is neither a parameter of block 'unit' nor a declared variable "
        "(did you mean '$k'?) [unknown-param]"
    )


def test_a_block_that_is_not_well_formed_is_reported_by_the_spec_model() -> None:
    text = USES.replace("USE", "{block: unit, with: {c: 8}}").replace("    layers:\n", "    layer:\n")
    assert problems(text) == ["spec.yaml:6:5: error: unknown key 'layer' (did you mean 'layers'?) [unknown-key]"]


def test_expansion_is_bounded() -> None:
    assert problems(USES.replace("USE", "{block: unit, with: {c: 8}, repeat: 1000000000}")) == [
        "spec.yaml:9:41: error: 'repeat': more copies than a spec holds values (100000) [block-size]"
    ]
    assert problems(USES.replace("USE", "{block: unit, with: {c: 8}, repeat: 50000}")) == [
        "spec.yaml:9:5: error: this use expands the spec to more than 100000 values; a spec is far smaller [block-size]"
    ]
    empty = USES.replace("layers:\n      - {name: conv", "layers: []\n  unused:\n    layers:\n      - {name: conv")
    assert problems(empty.replace("USE", "{block: unit, with: {c: 8}, repeat: 99999}\n  - {op: relu}")) == [
        "spec.yaml:12:5: error: this use expands the spec to more than 100000 values; a spec is far smaller "
        "[block-size]"
    ]


def test_errors_found_after_loading_get_their_notes_from_the_layer_they_name() -> None:
    """graph and the solver locate by path and name the layer; `with_notes` adds the uses."""
    text = spec(USES.replace("USE", "{block: unit, name: u, with: {c: 8, k: [3, 3, 3]}}"))
    with pytest.raises(SpecError) as info:
        planner.loads(text, "spec.yaml")
    source = load_spec_text(text, "spec.yaml").source
    assert [str(d) for d in source.with_notes(info.value.diagnostics)] == [
        "spec.yaml:9:44: error: 'kernel' has 3 entries but the input has 2 spatial axes [rank]",
        "spec.yaml:9:5: note: in block 'unit', used here as 'u' [block-use]",
    ]


# --- ResNet-50: blocks against the same network written out, and against PyTorch -----------------


STAGES = [(64, 256, 3, 1), (128, 512, 4, 2), (256, 1024, 6, 2), (512, 2048, 3, 2)]  # c, out, blocks, stride


def flat_resnet50() -> str:
    """tests/specs/networks/resnet50_flat.yaml: torchvision's resnet50 written out layer by layer,
    with the names the blocks of specs/resnet50.yaml expand to."""
    lines = [
        "# ResNet-50 written out: the fixture specs/resnet50.yaml (blocks) must equal once solved.",
        "# Written by tests/test_blocks.py (flat_resnet50); a test checks that it still is.",
        "name: resnet50",
        "input:",
        "  shape: [1, 3, 224, 224]",
        "layers:",
    ]

    def layer(**keys: Any) -> None:
        lines.append("  - {" + ", ".join(f"{k}: {_yaml(v)}" for k, v in keys.items()) + "}")

    layer(name="conv1", op="conv", out_channels=64, kernel=7, stride=2, padding=3, bias=False)
    layer(name="bn1", op="batchnorm")
    layer(name="relu", op="relu")
    layer(name="maxpool", op="maxpool", kernel=3, stride=2, padding=1)
    previous = "maxpool"
    for stage, (c, out, blocks, stride) in enumerate(STAGES, 1):
        for i in range(blocks):
            p, s = f"layer{stage}_{i}_", stride if i == 0 else 1
            layer(name=p + "conv1", op="conv", out_channels=c, kernel=1, input=previous, bias=False)
            layer(name=p + "bn1", op="batchnorm")
            layer(name=p + "relu1", op="relu")
            layer(name=p + "conv2", op="conv", out_channels=c, kernel=3, stride=s, padding=1, bias=False)
            layer(name=p + "bn2", op="batchnorm")
            layer(name=p + "relu2", op="relu")
            layer(name=p + "conv3", op="conv", out_channels=out, kernel=1, bias=False)
            layer(name=p + "bn3", op="batchnorm")
            shortcut = previous
            if i == 0:
                layer(
                    name=p + "downsample_conv",
                    op="conv",
                    out_channels=out,
                    kernel=1,
                    stride=s,
                    input=previous,
                    bias=False,
                )
                layer(name=p + "downsample_bn", op="batchnorm")
                shortcut = p + "downsample_bn"
            layer(name=p + "add", op="add", inputs=[p + "bn3", shortcut])
            layer(name=p + "relu", op="relu")
            previous = p + "relu"
    layer(name="avgpool", op="adaptive_avgpool", output_size=1)
    layer(name="flatten", op="flatten")
    layer(name="fc", op="linear", out_features=1000)
    return "\n".join(lines) + "\n"


def _yaml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(map(_yaml, value)) + "]"
    return str(value)


def test_the_flat_fixture_is_what_the_script_writes() -> None:
    assert RESNET_FLAT.read_text(encoding="utf-8") == flat_resnet50()


def _solution(path: Path) -> dict[str, Any]:
    code, out, err = run("solve", path, "--format", "json")
    assert code == 0, err
    return json.loads(out)["solutions"][0]


def test_resnet50_with_blocks_solves_to_the_plan_of_the_flat_resnet50() -> None:
    blocks, flat = _solution(RESNET), _solution(RESNET_FLAT)
    assert len(blocks["layers"]) == 175 and blocks["verified"] is True
    assert blocks["layers"] == flat["layers"]
    assert blocks["totals"] == flat["totals"]
    assert blocks["totals"]["params"] == 25_557_032  # torchvision's resnet50


def test_resnet50_with_blocks_has_the_shapes_of_a_pytorch_resnet50() -> None:
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class Projection(nn.Module):
        def __init__(self, cin: int, out: int, stride: int) -> None:
            super().__init__()
            self.conv = nn.Conv2d(cin, out, 1, stride, bias=False)
            self.bn = nn.BatchNorm2d(out)

        def forward(self, x: Any) -> Any:
            return self.bn(self.conv(x))

    class Bottleneck(nn.Module):  # torchvision's, with one module per ReLU so that each has a name
        def __init__(self, cin: int, c: int, out: int, stride: int) -> None:
            super().__init__()
            self.conv1, self.bn1, self.relu1 = nn.Conv2d(cin, c, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU()
            self.conv2 = nn.Conv2d(c, c, 3, stride, 1, bias=False)
            self.bn2, self.relu2 = nn.BatchNorm2d(c), nn.ReLU()
            self.conv3, self.bn3 = nn.Conv2d(c, out, 1, bias=False), nn.BatchNorm2d(out)
            self.downsample = Projection(cin, out, stride) if stride != 1 or cin != out else None
            self.relu = nn.ReLU()

        def forward(self, x: Any) -> Any:
            y = self.bn3(self.conv3(self.relu2(self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x))))))))
            return self.relu(y + (x if self.downsample is None else self.downsample(x)))

    class ResNet50(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.bn1, self.relu = nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU()
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            cin = 64
            for stage, (c, out, blocks, stride) in enumerate(STAGES, 1):
                layers = [Bottleneck(cin if i == 0 else out, c, out, stride if i == 0 else 1) for i in range(blocks)]
                setattr(self, f"layer{stage}", nn.Sequential(*layers))
                cin = out
            self.avgpool, self.flatten, self.fc = nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2048, 1000)

        def forward(self, x: Any) -> Any:
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(self.flatten(self.avgpool(x)))

    with torch.device("meta"):
        net = ResNet50()
        shapes: dict[str, list[int]] = {}

        def record(key: str) -> Any:
            return lambda _module, _inputs, out: shapes.__setitem__(key, list(out.shape))

        for name, module in net.named_modules():
            if name and not list(module.children()):  # `layer1.0.conv1` is planned as `layer1_0_conv1`
                module.register_forward_hook(record(name.replace(".", "_")))
        net(torch.empty(1, 3, 224, 224))
    planned = {layer["name"]: layer for layer in _solution(RESNET)["layers"]}
    assert shapes == {name: planned[name]["output_shape"] for name in shapes}
    assert set(planned) - set(shapes) == {n for n, layer in planned.items() if layer["op"] == "add"}
    assert sum(layer["params_count"] for layer in planned.values()) == sum(p.numel() for p in net.parameters())


def test_planner_solve_resnet50_exits_0() -> None:
    code, out, err = run("solve", RESNET)
    assert (code, err) == (0, "")
    assert out.startswith(f"{RESNET}: solved") and "layer4_2_relu" in out


# --- DeepLab's ASPP: one block used with different dilations ---------------------------------------


def test_aspp_finds_the_padding_of_each_dilated_branch() -> None:
    result = planner.solve(str(ASPP), count=True)
    assert result.status is planner.Status.SOLVED and result.count == 1
    (plan,) = result.plans
    assert plan.verified
    assert {f"aspp{i}_conv": plan.layer(f"aspp{i}_conv").params["padding"] for i in range(4)} == {
        f"aspp{i}_conv": ((rate, rate), (rate, rate)) for i, rate in enumerate([0, 6, 12, 18])
    }
    assert plan.layer("cat").output_shape == (1, 1280, 33, 33)


# --- the schema ------------------------------------------------------------------------------------


def test_the_schema_describes_blocks_and_their_uses() -> None:
    schema = spec_schema()
    defs = schema["$defs"]
    assert "blocks" in schema["properties"] and {"Block", "BlockUse"} <= set(defs)
    assert set(defs["BlockUse"]["properties"]) == {"block", "name", "input", "with", "first", "repeat"}
    assert defs["BlockUse"]["additionalProperties"] is False
    layers = json.dumps(schema["properties"]["layers"])
    assert "BlockUse" in layers


# --- more mistakes, each located -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layers", "expected"),
    [
        (
            "  - {block: unit, name: u, first: {c: 8}, repeat: 2}",
            [
                "spec.yaml:9:5: error: block 'unit' needs the parameter 'c', which has no default; give it in `with:` "
                "(`first` gives it to the first copy only) [missing-param]"
            ],
        ),
        (
            "  - {name: early, op: relu, input: u}\n  - {block: unit, name: u, with: {c: 8}}",
            ["spec.yaml:9:36: error: 'u' is defined after 'early'; a layer can only read earlier layers [order]"],
        ),
        (
            "  - {name: u, op: relu}\n  - {block: unit, name: u, with: {c: 8}}",
            [
                "spec.yaml:10:25: error: the name 'u' is already used by the entry at line 9 in `layers` "
                "[duplicate-name]"
            ],
        ),
        (
            '  - {block: "$unit", with: {c: 8}}',
            [
                "spec.yaml:9:13: error: '$unit' is not a parameter here; `block:` names a block, or a parameter of "
                "the block around it [unknown-param]"
            ],
        ),
    ],
    ids=["first-only", "order", "clash", "dollar-block"],
)
def test_more_mistakes_in_uses(layers: str, expected: list[str]) -> None:
    assert problems(USES.replace("  - USE", layers)) == expected


def test_a_param_written_without_its_dollar_is_suggested() -> None:
    text = spec("""
        input:
          shape: [1, 8, 8]
        blocks:
          join:
            params: {skip: ~}
            layers:
              - {name: cat, op: concat, inputs: [input, skip]}
        layers:
          - {block: join, name: j, with: {skip: input}}
        """)
    assert problems(text) == [
        "spec.yaml:7:49: error: no layer named 'skip' in block 'join' or before its use (did you mean '$skip'?) "
        "[unknown-layer]",
        "spec.yaml:9:5: note: in block 'join', used here as 'j' [block-use]",
    ]


def test_a_use_inside_a_block_that_is_not_well_formed_is_reported_with_its_notes() -> None:
    text = NESTED.replace(", stirde: 2", "").replace("repeat: 2}", "repeat: 2, times: 3}")
    assert problems(text) == [
        "spec.yaml:12:60: error: unknown key 'times' [unknown-key]",
        "spec.yaml:14:5: note: in block 'stage', used here as 's1' [block-use]",
    ]


def test_the_json_output_lists_the_expanded_layers_and_notes_are_diagnostics(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(spec(UNIT) + "  - {block: unit, name: u, with: {c: 8}, repeat: 2}\n", encoding="utf-8")
    code, out, _ = run("solve", good, "--format", "json")
    assert code == 0
    names = [layer["name"] for layer in json.loads(out)["solutions"][0]["layers"]]
    assert names == ["u_0_conv", "u_0_relu1", "u_0_out", "u_1_conv", "u_1_relu1", "u_1_out"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(spec(NESTED), encoding="utf-8")
    code, out, _ = run("solve", bad, "--format", "json")
    diagnostics = json.loads(out)["diagnostics"]
    assert code == 1 and [(d["severity"], d["code"], d["line"]) for d in diagnostics] == [
        ("error", "unknown-key", 8),
        ("note", "block-use", 12),
        ("note", "block-use", 14),
    ]


def test_an_unknown_parameter_whose_variable_name_is_taken_is_reported() -> None:
    text = spec(KERNELS.replace("K", '"?"'))
    text = text.replace("layers:\n  - {block", "variables: {p_0_k: 3}\nlayers:\n  - {block")
    assert problems(text) == [
        "spec.yaml:11:38: error: this unknown becomes the variable '$p_0_k', which `variables` declares too; "
        "rename one of them [duplicate-name]",
        "spec.yaml:11:5: note: in block 'pair', used here as 'p_0' [block-use]",
    ]
