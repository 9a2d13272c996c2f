"""Untrusted text made safe to quote inside a prompt's tags: normalised, escaped, capped.

Everything a model or a user wrote (subject responses, task fields, benchmark
questions) is data inside the prompts' ``<response>``-style fences. Defusing only the
exact closing tag is not enough: ``</response id="1">``, ``</response/>``, fullwidth
angle brackets (U+FF1C, U+FF1E), zero-width characters inside the tag and homoglyph
letters (a Cyrillic e, U+0435) all read as a tag to a model. So the text is first
normalised (NFKC, which folds fullwidth and other compatibility forms; invisible
format and control characters removed; angle-bracket lookalikes folded to ``<`` and
``>``), then every ``<`` and ``>`` is escaped, whatever follows it: no tag of any
spelling survives. Free text gets HTML entities (``&lt;``), which models read as the
character; JSON documents get JSON's own ``u003c`` escapes, so the JSON still means
exactly the same strings.
"""

import json
import re
import unicodedata
from typing import Any

RESPONSE_CHARS = 8000
"""Default cap on a quoted response: longer ones keep their head and tail."""

_KEEP_CONTROLS = {"\n", "\t"}
_ANGLES = str.maketrans(
    {
        "\u2039": "<",  # single left-pointing angle quotation mark
        "\u203a": ">",
        "\u2329": "<",  # angle brackets (NFKC folds these two to U+3008/9)
        "\u232a": ">",
        "\u3008": "<",
        "\u3009": ">",
        "\u27e8": "<",  # mathematical angle brackets
        "\u27e9": ">",
        "\u02c2": "<",  # modifier letter arrowheads
        "\u02c3": ">",
        "\u1438": "<",  # Canadian syllabics that look like < and >
        "\u1433": ">",
        "\u276e": "<",  # heavy angle quotation ornaments
        "\u276f": ">",
    }
)
_ESCAPES = str.maketrans({"<": "&lt;", ">": "&gt;"})
_JSON_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e"})
_BLANK_RUNS = re.compile(r"\n{4,}")


def normalise(text: str) -> str:
    """NFKC, without invisible characters, with angle-bracket lookalikes folded.

    Removed: Unicode format characters (category Cf: zero-width space and joiners,
    bidi overrides, the BOM, soft hyphens), control characters other than newline
    and tab, and unassigned or private-use code points.
    """
    folded = unicodedata.normalize("NFKC", str(text)).replace("\r\n", "\n").replace("\r", "\n")
    kept = "".join(
        ch
        for ch in folded
        if ch in _KEEP_CONTROLS or unicodedata.category(ch) not in ("Cf", "Cc", "Cn", "Co", "Cs")
    )
    return _BLANK_RUNS.sub("\n\n\n", kept.translate(_ANGLES))


def cut(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters: its head and tail around a marker."""
    if limit <= 0 or len(text) <= limit:
        return text
    marker = f"\n[truncated {len(text) - limit} characters]\n"
    head = (limit * 2) // 3
    return text[:head] + marker + text[len(text) - (limit - head) :]


def fence(text: str, limit: int = 0) -> str:
    """Free text ready to quote between tags.

    Normalised, cut to ``limit`` characters (0: no cap), with every ``<`` and ``>``
    written ``&lt;`` and ``&gt;``.
    """
    return cut(normalise(text), limit).translate(_ESCAPES)


def fence_json(value: Any) -> str:
    """``value`` as indented JSON ready to quote: strings normalised, ``<``/``>`` escaped.

    Strings are normalised before encoding (NFKC may turn a fullwidth quote into ``"``,
    which JSON must then escape). Valid JSON has ``<`` and ``>`` only inside strings,
    where the ``u003c`` and ``u003e`` escapes mean the same characters, so the text still
    parses to the same (normalised) value.
    """
    return json.dumps(_normalise_all(value), indent=2, ensure_ascii=False).translate(_JSON_ESCAPES)


def _normalise_all(value: Any) -> Any:
    if isinstance(value, str):
        return normalise(value)
    if isinstance(value, dict):
        return {normalise(str(k)): _normalise_all(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalise_all(v) for v in value]
    return value
