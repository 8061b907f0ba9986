"""YAML text -> positioned tree -> pydantic `Spec`, with every error located."""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from planner.errors import Diagnostic, SpecError
from planner.spec.blocks import expand_blocks
from planner.spec.models import (
    FORM_KEYS,
    LAYER_MODELS,
    OP_NAMES,
    Block,
    BlockUse,
    Defaults,
    InputSpec,
    Objective,
    Spec,
    fields_of,
    form_of,
    is_block_use,
    ops_of,
)
from planner.spec.yamlpos import Positioned, did_you_mean, load_yaml, load_yaml_file

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # int64: no framework holds an integer or an element count beyond it


@dataclass(frozen=True)
class LoadedSpec:
    """A validated spec with the positions of its YAML nodes."""

    spec: Spec
    source: Positioned

    @property
    def file(self) -> str:
        return self.source.file


def load_spec(path: str | os.PathLike) -> LoadedSpec:
    """Read and validate a spec file; raises SpecError with located diagnostics."""
    return validate_spec(load_yaml_file(path))


def load_spec_text(text: str | bytes, file: str = "<spec>") -> LoadedSpec:
    return validate_spec(load_yaml(text, file))


def validate_spec(source: Positioned) -> LoadedSpec:
    """The validated spec; raises SpecError with every problem found, located.

    Blocks are expanded first (`planner.spec.blocks`): the spec validated, and `LoadedSpec.source`,
    is the expanded tree, whose values keep the positions of the text they were copied from; a
    problem inside a block is followed by notes naming the uses it comes from.

    An integer beyond int64 is refused where it is written ([size-range]), except in a `one_of`
    list, whose members are candidates: one that no framework can hold is never chosen. A known
    input shape whose element count is beyond int64 is refused at `input.shape`."""
    source, expansion = expand_blocks(source)
    ranged = _out_of_range(source)
    try:
        spec = Spec.model_validate(source.data)
    except ValidationError as e:
        errors = _without_missing_typos(e.errors())
        if expansion:  # uses that could not be expanded are left out: an empty `layers` says nothing more
            errors = [err for err in errors if not (tuple(err["loc"]) == ("layers",) and err["type"] == "too_short")]
        unknown = [_data_at(source.data, tuple(err["loc"]))[1] for err in errors if err["type"] == "extra_forbidden"]
        ranged = [(path, d) for path, d in ranged if not any(path[: len(u)] == u for u in unknown)]
        marks = {(d.line, d.column) for _, d in ranged}
        found: dict[Diagnostic, list] = {}
        for err in errors:  # the first of equal diagnostics (copies of one block) gives its notes
            found.setdefault(_diagnostic(source, err), _data_at(source.data, tuple(err["loc"]))[1])
        groups = [[d, *source.notes(path)] for d, path in found.items() if (d.line, d.column) not in marks]
        groups += [[d, *source.notes(path)] for path, d in ranged]
        raise SpecError(_reported([*groups, *_grouped(expansion)])) from None
    if ranged or expansion:
        raise SpecError(_reported([*([d, *source.notes(path)] for path, d in ranged), *_grouped(expansion)]))
    shape = spec.input.shape
    if all(isinstance(size, int) for size in shape) and _product(shape) > INT64_MAX:
        message = (
            f"the input shape {_show(list(shape))} has {_product(shape):.3g} elements, more than int64 holds "
            "(2**63 - 1); no framework can hold it"
        )
        raise SpecError(source.diagnostic(["input", "shape"], "size-range", message))
    return LoadedSpec(spec, source)


def _grouped(diagnostics: list[Diagnostic]) -> list[list[Diagnostic]]:
    """Diagnostics as groups: each error or warning with the notes after it."""
    groups: list[list[Diagnostic]] = []
    for d in diagnostics:
        if d.severity == "note" and groups:
            groups[-1].append(d)
        else:
            groups.append([d])
    return groups


def _reported(groups: list[list[Diagnostic]]) -> list[Diagnostic]:
    """The groups in the order of the text, each problem once: a block's text copied many times
    is wrong once (the notes of its first copy say where it is used)."""
    seen: set[tuple] = set()
    result: list[Diagnostic] = []
    for head, *notes in sorted(groups, key=lambda g: (g[0].line, g[0].column)):
        key = (head.line, head.column, head.code, head.message)
        if key not in seen:
            seen.add(key)
            result += [head, *notes]
    return result


def _product(values: Any) -> int:
    result = 1
    for v in values:
        result *= v
    return result


def _out_of_range(source: Positioned) -> list[tuple[list, Diagnostic]]:
    """(path, diagnostic) of every integer in the data beyond int64, `one_of` members aside."""
    found = []
    stack: list[tuple[list, Any]] = [([], source.data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            stack.extend(([*path, k], v) for k, v in value.items())
        elif isinstance(value, list) and not (path and path[-1] == "one_of"):
            stack.extend(([*path, i], v) for i, v in enumerate(value))
        elif type(value) is int and not INT64_MIN <= value <= INT64_MAX:
            field = next((p for p in reversed(path) if isinstance(p, str)), None)
            prefix = f"'{field}': " if field else ""
            message = (
                f"{prefix}the integer {_digits(value)} is out of range: no framework holds an integer beyond "
                f"int64 ({'-2**63' if value < 0 else '2**63 - 1'})"
            )
            found.append((path, source.diagnostic(path, "size-range", message, layer=_layer_name(source, path))))
    return found


def _digits(value: int) -> str:
    text = str(value)
    digits = len(text.lstrip("-"))
    return text if digits <= 24 else f"{text[:13]}...{text[-4:]} ({digits} digits)"


def _without_missing_typos(errors: list[Any]) -> list[Any]:
    """Drop 'missing key' errors whose key is the did-you-mean of an unknown key beside it (`kernal:`)."""
    typos = {
        (e["loc"][:-1], m)
        for e in errors
        if e["type"] == "extra_forbidden"
        for m in difflib.get_close_matches(
            str(e["loc"][-1]), [str(x["loc"][-1]) for x in errors if x["type"] == "missing"], n=1, cutoff=0.6
        )
    }
    return [e for e in errors if not (e["type"] == "missing" and (e["loc"][:-1], str(e["loc"][-1])) in typos)]


_PATTERNS = {
    "^\\$": 'a variable is written "$" followed by its name, e.g. "$k"',
    "^[A-Za-z_]": "a name is letters, digits and _, not starting with a digit",
}


def _data_at(data: Any, loc: tuple) -> tuple[Any, list]:
    """Walk a pydantic loc through the data, skipping discriminator tags; return the node and the real path."""
    path: list = []
    for part in loc:
        if (
            isinstance(data, dict)
            and part in data
            or isinstance(data, list)
            and isinstance(part, int)
            and 0 <= part < len(data)
        ):
            data = data[part]
            path.append(part)
    return data, path


def _keys_allowed(source: Positioned, path: list) -> tuple[str, ...]:
    if not path:
        return tuple(Spec.model_fields)
    if path[0] == "layers" and len(path) == 2:
        layer = source.data["layers"][path[1]]
        if is_block_use(layer):
            return tuple(f.alias or key for key, f in BlockUse.model_fields.items())
        return fields_of(layer.get("op") if isinstance(layer, dict) else None)
    if path[0] == "blocks" and len(path) == 2:
        return tuple(Block.model_fields)
    return {
        ("input",): tuple(InputSpec.model_fields),
        ("defaults",): tuple(Defaults.model_fields),
        ("objective",): tuple(Objective.model_fields),
    }.get(tuple(path), _form_keys(source, path))


def _form_keys(source: Positioned, path: list) -> tuple[str, ...]:
    """The keys of the value form written at `path`: {one_of}, {for_all} or {min, max, multiple_of}."""
    mapping, _ = _data_at(source.data, tuple(path))
    return FORM_KEYS.get(form_of(mapping) or "", ()) or FORM_KEYS["range"]


def _layer_name(source: Positioned, path: list) -> str | None:
    if len(path) >= 2 and path[0] == "layers":
        layer = source.data["layers"][path[1]]
        if isinstance(layer, dict):
            kind = layer.get("block" if is_block_use(layer) else "op", "layer")
            return str(layer.get("name") or f"{kind}{path[1]}")
    return None


def _diagnostic(source: Positioned, err: dict) -> Diagnostic:
    loc = tuple(err["loc"])
    value, path = _data_at(source.data, loc)
    layer = _layer_name(source, path)
    kind = err["type"]
    if kind == "extra_forbidden":
        return source.diagnostic(path, "unknown-key", _unknown_key(source, path), key=True, layer=layer)
    if loc and loc[-1] == "[key]":  # a mapping key that breaks the key's rule: a variable's name
        name = path[-1] if path else loc[-2]
        what = _KEY_KINDS.get((str(path[0]) if path else "", len(path)), "key")
        what = "parameter name" if path[-2:-1] in (["params"], ["with"], ["first"]) else what
        rule = _PATTERNS.get("^[A-Za-z_]") if kind == "string_pattern_mismatch" else err["msg"]
        return source.diagnostic(path, "type", f"{what} {_show(name)} is not a name: {rule}", key=True, layer=layer)
    if kind == "missing":
        key = loc[-1]
        where = f" in this {value['op']} layer" if isinstance(value, dict) and "op" in value else ""
        return source.diagnostic(path, "missing-key", f"missing required key '{key}'{where}", key=True, layer=layer)
    if kind == "unknown_op":
        if not isinstance(value, dict) or "op" not in value:
            return source.diagnostic(path, "missing-key", "every layer needs an 'op'", layer=layer)
        op = value["op"]
        return source.diagnostic(
            [*path, "op"],
            "unknown-op",
            f"unknown op {_show(op)}{did_you_mean(op, OP_NAMES)}; ops are: {', '.join(OP_NAMES)}",
            layer=layer,
        )
    field = next((p for p in reversed(path) if isinstance(p, str)), None)
    prefix = f"'{field}': " if field else ""
    msg = err["msg"]
    if kind == "string_pattern_mismatch":
        pattern = err.get("ctx", {}).get("pattern", "")
        msg = next((text for start, text in _PATTERNS.items() if pattern.startswith(start)), msg)
    if kind in (
        "value_form",
        "int_type",
        "bool_type",
        "string_type",
        "literal_error",
        "float_type",
        "list_type",
        "dict_type",
        "model_type",
        "int_from_float",
        "string_pattern_mismatch",
        "model_attributes_type",
    ):
        return source.diagnostic(path, "type", f"{prefix}{msg[0].lower()}{msg[1:]}, got {_show(value)}", layer=layer)
    return source.diagnostic(path, "value", f"{prefix}{msg[0].lower()}{msg[1:]}, got {_show(value)}", layer=layer)


def _unknown_key(source: Positioned, path: list) -> str:
    """What is wrong with an unknown key: a key of another value form or op, or a typo."""
    key, where = path[-1], path[:-1]
    allowed = _keys_allowed(source, where)
    mapping, _ = _data_at(source.data, tuple(where))
    layer_level = len(where) == 2 and where[0] == "layers"
    if not layer_level and where not in ([], ["input"], ["defaults"], ["objective"]) and isinstance(mapping, dict):
        form = form_of(mapping)
        if form in ("one_of", "for_all") and key in {k for keys in FORM_KEYS.values() for k in keys}:
            if form == "one_of":
                return (
                    f"unknown key {_show(key)} beside 'one_of': a value is either {{one_of: [...]}} or "
                    "{min, max, multiple_of}, not both"
                )
            return (
                f"unknown key {_show(key)} beside 'for_all': the range goes inside it, "
                "{for_all: {min, max, multiple_of}}"
            )
    if layer_level and isinstance(mapping, dict) and isinstance(mapping.get("op"), str):
        owners = [op for m in LAYER_MODELS if key in m.model_fields for op in ops_of(m)]
        if owners:
            return (
                f"unknown key {_show(key)}: a {mapping['op']} layer has no {_show(key)} "
                f"({_listed(owners)} {'has' if len(owners) == 1 else 'have'} one)"
            )
    if key in _EXAMPLES and (layer_level or where in (["defaults"], ["input"])):
        if key == "for_all" or where == ["input"]:
            return (
                f"unknown key {_show(key)}: an input size's domain is written in the shape, e.g. "
                f"shape: [1, 3, {_EXAMPLES[key]}, 32]"
            )
        if where == ["defaults"]:
            return (
                f"unknown key {_show(key)}: defaults give one domain per kind ({', '.join(allowed)}), "
                f"e.g. kernel: {_EXAMPLES[key]}"
            )
        return f"unknown key {_show(key)}: a domain is the value of a parameter, e.g. kernel: {_EXAMPLES[key]}"
    return f"unknown key {_show(key)}{did_you_mean(key, allowed)}"


_KEY_KINDS = {("variables", 2): "variable name", ("blocks", 2): "block name"}  # (top key, path length)
_EXAMPLES = {
    "one_of": "{one_of: [3, 5]}",
    "min": "{min: 1, max: 5}",
    "max": "{min: 1, max: 5}",
    "multiple_of": "{min: 16, max: 64, multiple_of: 16}",
    "for_all": "{for_all: {min: 16, max: 64}}",
}


def _listed(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _show(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value).replace("True", "true").replace("False", "false")
    return text if len(text) <= 60 else text[:57] + "..."
