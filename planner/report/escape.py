"""How text that comes from a spec (names, file names, constraint text, messages that quote them)
is shown: one rule for every renderer, so that nothing a spec says reaches a terminal, a CI log,
a JSON document, an SVG or an exported Python file raw.

`visible(text)` writes every character that is not safe to show as a Python-style escape:

* control characters (C0, DEL, C1): `\\n`, `\\r`, `\\t`, else `\\xHH` (ESC is `\\x1b`);
* format characters (bidirectional overrides, zero-width marks, the BOM), line and paragraph
  separators (U+2028, U+2029) and code points that are not characters (U+FFFE, U+FFFF,
  unassigned ones): `\\uHHHH` or `\\UHHHHHHHH`;
* lone surrogates: a file name that is not UTF-8 reaches Python with each undecodable byte as a
  surrogate escape (U+DC80..U+DCFF, PEP 383); it is shown as that byte, `\\xHH`, as
  `os.fsencode(name).decode("utf-8", "backslashreplace")` would show it. Other lone surrogates
  are shown as `\\udHHH`.

Backslashes themselves are left as they are, so the function is idempotent: text already shown
is shown unchanged, and renderers may apply it to a whole line that holds pieces already shown.

`unicode_safe(text)` replaces only the lone surrogates, the same way: the result always encodes
to UTF-8. JSON output uses it (json escapes control characters itself, and a consumer gets
them back exactly).
"""

from __future__ import annotations

import re
import unicodedata

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_SHOWN_AS_IS = ("Zs", "Co")  # spaces other than U+0020 and private-use characters: harmless to show
_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape(ch: str) -> str:
    code = ord(ch)
    if ch in _NAMED:
        return _NAMED[ch]
    if 0xDC80 <= code <= 0xDCFF:  # one byte of a name that is not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _unsafe(ch: str) -> bool:
    return not ch.isprintable() and unicodedata.category(ch) not in _SHOWN_AS_IS


def visible(text: object) -> str:
    """`text` (made a str) with every character unsafe for a terminal written as an escape."""
    text = str(text)
    if text.isprintable():  # the usual case, and fast
        return text
    return "".join(_escape(ch) if _unsafe(ch) else ch for ch in text)


def unicode_safe(text: str) -> str:
    """`text` with its lone surrogates written as escapes, as `visible` writes them: valid UTF-8."""
    return _SURROGATE.sub(lambda m: _escape(m.group()), text)
