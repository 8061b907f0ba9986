"""YAML text -> positioned tree -> pydantic `Spec`, with every error located."""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from planner.errors import Diagnostic, SpecError
from planner.spec.models import OP_NAMES, Defaults, InputSpec, Objective, Spec, fields_of
from planner.spec.yamlpos import Positioned, load_yaml, load_yaml_file


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
    try:
        spec = Spec.model_validate(source.data)
    except ValidationError as e:
        errors = _without_missing_typos(e.errors())
        diagnostics = sorted({_diagnostic(source, err) for err in errors}, key=lambda d: (d.line, d.column))
        raise SpecError(diagnostics) from None
    return LoadedSpec(spec, source)


def _without_missing_typos(errors: list[dict]) -> list[dict]:
    """Drop 'missing key' errors whose key is the did-you-mean of an unknown key beside it (`kernal:`)."""
    typos = {(e["loc"][:-1], m) for e in errors if e["type"] == "extra_forbidden"
             for m in difflib.get_close_matches(str(e["loc"][-1]), [str(x["loc"][-1]) for x in errors
                                                                    if x["type"] == "missing"], n=1, cutoff=0.6)}
    return [e for e in errors if not (e["type"] == "missing" and (e["loc"][:-1], str(e["loc"][-1])) in typos)]


_PATTERNS = {
    "^\\$": "a variable is written \"$\" followed by its name, e.g. \"$k\"",
    "^[A-Za-z_]": "a name is letters, digits and _, not starting with a digit",
}


def did_you_mean(word: str, choices: Any) -> str:
    match = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


def _data_at(data: Any, loc: tuple) -> tuple[Any, list]:
    """Walk a pydantic loc through the data, skipping discriminator tags; return the node and the real path."""
    path: list = []
    for part in loc:
        if isinstance(data, dict) and part in data or isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
            path.append(part)
    return data, path


def _keys_allowed(source: Positioned, path: list) -> tuple[str, ...]:
    if not path:
        return tuple(Spec.model_fields)
    if path[0] == "layers" and len(path) == 2:
        layer = source.data["layers"][path[1]]
        return fields_of(layer.get("op") if isinstance(layer, dict) else None)
    return {
        ("input",): tuple(InputSpec.model_fields),
        ("defaults",): tuple(Defaults.model_fields),
        ("objective",): tuple(Objective.model_fields),
    }.get(tuple(path), ("min", "max", "multiple_of", "one_of", "for_all"))


def _layer_name(source: Positioned, path: list) -> str | None:
    if len(path) >= 2 and path[0] == "layers":
        layer = source.data["layers"][path[1]]
        if isinstance(layer, dict):
            return str(layer.get("name") or f"{layer.get('op', 'layer')}{path[1]}")
    return None


def _diagnostic(source: Positioned, err: dict) -> Diagnostic:
    loc = tuple(err["loc"])
    value, path = _data_at(source.data, loc)
    layer = _layer_name(source, path)
    kind = err["type"]
    if kind == "extra_forbidden":
        key = path[-1]
        hint = did_you_mean(key, _keys_allowed(source, path[:-1]))
        return source.diagnostic(path, "unknown-key", f"unknown key {_show(key)}{hint}", key=True, layer=layer)
    if kind == "missing":
        key = loc[-1]
        where = f" in this {value['op']} layer" if isinstance(value, dict) and "op" in value else ""
        return source.diagnostic(path, "missing-key", f"missing required key '{key}'{where}", key=True, layer=layer)
    if kind == "unknown_op":
        if not isinstance(value, dict) or "op" not in value:
            return source.diagnostic(path, "missing-key", "every layer needs an 'op'", layer=layer)
        op = value["op"]
        return source.diagnostic(
            [*path, "op"], "unknown-op", f"unknown op {_show(op)}{did_you_mean(op, OP_NAMES)}; ops are: {', '.join(OP_NAMES)}",
            layer=layer,
        )
    field = next((p for p in reversed(path) if isinstance(p, str)), None)
    prefix = f"'{field}': " if field else ""
    msg = err["msg"]
    if kind == "string_pattern_mismatch":
        pattern = err.get("ctx", {}).get("pattern", "")
        msg = next((text for start, text in _PATTERNS.items() if pattern.startswith(start)), msg)
    if kind in ("value_form", "int_type", "bool_type", "string_type", "literal_error", "float_type", "list_type",
                "dict_type", "model_type", "int_from_float", "string_pattern_mismatch", "model_attributes_type"):
        return source.diagnostic(path, "type", f"{prefix}{msg[0].lower()}{msg[1:]}, got {_show(value)}", layer=layer)
    return source.diagnostic(path, "value", f"{prefix}{msg[0].lower()}{msg[1:]}, got {_show(value)}", layer=layer)


def _show(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value).replace("True", "true").replace("False", "false")
    return text if len(text) <= 60 else text[:57] + "..."
