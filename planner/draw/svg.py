"""The SVG primitives both figures are built from: elements, attribute values, the document.

Every text and attribute value is XML-escaped, after `escape.visible` has shown each character
XML 1.0 forbids or that is unsafe to show (NUL, ESC, lone surrogates from a file name that is not
UTF-8, U+FFFE, bidirectional overrides, ...) as an escape (`\\x1b`, `\\xff`, `\\ufffe`): the file is
always well-formed, whatever the spec's names and file name hold.
"""

from __future__ import annotations

import math
import re
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from planner.report.escape import visible

FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"


def attrs(values: dict[str, Any]) -> str:
    """Attributes as markup, each value shown and quoted; `class_` is `class`, `text_anchor` is `text-anchor`,
    and a value of None is left out."""
    return "".join(
        f" {key.rstrip('_').replace('_', '-')}={quoteattr(visible(num(value)))}"
        for key, value in values.items()
        if value is not None
    )


def xml(text: str, *, lines: bool = False) -> str:
    """Character data: shown (`visible`) and XML-escaped; with `lines`, its newlines are kept as line breaks."""
    if lines:
        return "\n".join(escape(visible(line)) for line in text.split("\n"))
    return escape(visible(text))


def xml_id(key: str) -> str:
    """`key` in ASCII letters, digits, `_` and `-` (a valid id after a prefix): any other character as
    `-hex-`, so distinct keys keep distinct ids."""
    return re.sub(r"[^A-Za-z0-9_]", lambda m: f"-{ord(m.group()):x}-", key)


def num(value: object) -> str:
    """A number as an attribute value: floats with one decimal at most, and no trailing zeros."""
    if isinstance(value, float):
        return f"{value:.1f}".rstrip("0").rstrip(".")
    return str(value)


def el(tag: str, text: str | None = None, *, children: str = "", lines: bool = False, **values: Any) -> str:
    """One element; `text` is shown and escaped (see `xml`), `children` is markup."""
    if text is None and not children:
        return f"<{tag}{attrs(values)}/>"
    return f"<{tag}{attrs(values)}>{xml(text or '', lines=lines)}{children}</{tag}>"


def document(width: float, height: float, style: str, body: list[str], title: str) -> str:
    """The SVG file: its title, the `style` sheet, a background and `body`, sized to hold them."""
    head = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{math.ceil(width)}" '
        f'height="{math.ceil(height)}" viewBox="0 0 {math.ceil(width)} {math.ceil(height)}" '
        f"font-family={quoteattr(FONT)}>"
    )
    return (
        "\n".join(
            [
                head,
                el("title", title),
                f"<style>{style}</style>",
                el("rect", class_="background", x=0, y=0, width=math.ceil(width), height=math.ceil(height)),
                *body,
                "</svg>",
            ]
        )
        + "\n"
    )
