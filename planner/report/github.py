"""`--format github`: GitHub Actions workflow commands, one per diagnostic.

Text from the spec is first shown as the terminal sees it (`escape.visible`: no control character
reaches the log raw), then escaped by GitHub's workflow-command rules: `%`, CR and LF in the
message; those and `:` and `,` in a property value (`file=`).
"""

from __future__ import annotations

from planner.errors import Diagnostic
from planner.report.escape import visible

_LEVEL = {"error": "error", "warning": "warning", "note": "notice"}


def _escape(text: str, *, property_value: bool = False) -> str:
    text = visible(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if property_value else text


def render_diagnostic(d: Diagnostic) -> str:
    where = f"file={_escape(d.file, property_value=True)},line={int(d.line)},col={int(d.column)}"
    return f"::{_LEVEL.get(d.severity, 'error')} {where}::{_escape(f'{d.message} [{d.code}]')}"
