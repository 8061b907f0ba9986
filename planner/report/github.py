"""`--format github`: GitHub Actions workflow commands, one per diagnostic."""

from __future__ import annotations

from planner.errors import Diagnostic

_LEVEL = {"error": "error", "warning": "warning", "note": "notice"}


def _escape(text: str, *, property_value: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if property_value else text


def render_diagnostic(d: Diagnostic) -> str:
    where = f"file={_escape(d.file, property_value=True)},line={d.line},col={d.column}"
    return f"::{_LEVEL[d.severity]} {where}::{_escape(d.message)} [{d.code}]"
