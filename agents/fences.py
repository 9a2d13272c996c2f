"""Untrusted text made safe to quote inside a prompt's tags: normalised, escaped, capped.

Threat model: everything a model or a user wrote (subject responses, task fields,
benchmark questions, task files) may try to end the prompt's ``<response>``-style fence
early and speak as the prompt, or to bloat the prompt. Defusing only the exact closing
tag is not enough: ``</response id="1">``, ``</response/>``, fullwidth or small-form
angle brackets, angle quotation marks, mathematical and CJK angle brackets, arrowheads,
zero-width characters inside the tag and homoglyph letters (a Cyrillic e, U+0435) all
read as a tag to a model. So the text is first normalised (NFKC, which folds fullwidth
and other compatibility forms; invisible format and control characters removed; every
character whose Unicode name makes it a left or right angle, arrowhead, pointing
triangle, less-than or greater-than shape folded to ``<`` or ``>``), then every ``<``
and ``>`` is escaped, whatever follows it: no tag of any spelling survives. Free text
gets HTML entities (``&lt;``), which models read as the character; JSON documents get
JSON's own ``u003c`` escapes, so the JSON still means exactly the same strings.

Caps count the text as it appears in the prompt, after escaping (``<`` costs 4
characters as ``&lt;``): :data:`RESPONSE_CHARS` for a response, :data:`FIELD_CHARS` for
any other fenced field (question, reference, rubric, name, a similar task) and for each
string of a fenced JSON document, :data:`DOCUMENT_CHARS` for the whole document. A
longer text keeps its head and tail around a ``[truncated N characters]`` marker.
"""

import functools
import json
import re
import unicodedata
from collections.abc import Callable
from typing import Any

RESPONSE_CHARS = 8000
"""Cap on a quoted response, in prompt characters after escaping."""
FIELD_CHARS = 4000
"""Cap on any other fenced field, and on each string of a fenced JSON document."""
DOCUMENT_CHARS = 24_000
"""Cap on a whole fenced JSON document (a task): its strings are cut shorter to fit."""
_MIN_FIELD_CHARS = 100

_KEEP_CONTROLS = {"\n", "\t"}
_BRACKET_SHAPES = (
    "ANGLE BRACKET",
    "ANGLE QUOTATION MARK",
    "POINTING ANGLE",
    "POINTING CURVED ANGLE",
    "POINTING TRIANGLE",
    "ARROWHEAD",
    "LESS-THAN",
    "GREATER-THAN",
)
_NOT_BRACKETS = {
    # Relations and arrows that merely contain the shape: math text keeps them.
    "NOT",
    "OR",
    "NOR",
    "EQUAL",
    "EQUIVALENT",
    "TILDE",
    "SIMILAR",
    "APPROXIMATE",
    "ABOVE",
    "BELOW",
    "BESIDE",
    "OVER",
    "ARROW",
    "TWO-HEADED",
    "UPWARDS",
    "DOWNWARDS",
    "UP-POINTING",
    "DOWN-POINTING",
}
_EXTRA_ANGLES = {0x1438: "<", 0x1433: ">"}  # Canadian syllabics PA and PO: named as letters


class _AngleFold(dict[int, int | str]):
    """``str.translate`` table folding every angle-bracket lookalike to ``<`` or ``>``.

    Filled on first sight of each code point from its Unicode name, so the whole
    repertoire is covered without a hand-kept list going stale.
    """

    def __missing__(self, code: int) -> int | str:
        folded = _EXTRA_ANGLES.get(code) or _angle_of(unicodedata.name(chr(code), ""))
        self[code] = folded or code
        return self[code]


def _angle_of(name: str) -> str:
    """``<`` or ``>`` when the character ``name`` draws a left or right angle, else ''."""
    if not any(shape in name for shape in _BRACKET_SHAPES):
        return ""
    words = set(name.split())
    if words & _NOT_BRACKETS:
        return ""
    left = any(w.startswith("LEFT") or w == "LESS-THAN" for w in words)
    right = any(w.startswith("RIGHT") or w == "GREATER-THAN" for w in words)
    if left == right:
        return ""
    return "<" if left else ">"


_ANGLES = _AngleFold()
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


def cut(text: str, limit: int, weight: Callable[[str], int] | None = None) -> str:
    """``text`` within ``limit``: its head (two thirds) and tail around a marker.

    ``weight`` is what one character costs once escaped (default 1), so the cap holds
    for the escaped text; the marker counts the characters of ``text`` left out.
    """
    if limit <= 0:
        return text
    costs = [1] * len(text) if weight is None else [weight(ch) for ch in text]
    if sum(costs) <= limit:
        return text
    head_budget = (limit * 2) // 3
    head = _fits(costs, head_budget)
    tail = _fits(costs[head:][::-1], limit - head_budget)
    marker = f"\n[truncated {len(text) - head - tail} characters]\n"
    return text[:head] + marker + text[len(text) - tail :]


def _fits(costs: list[int], budget: int) -> int:
    """How many of ``costs``, from the start, fit within ``budget``."""
    spent = 0
    for count, cost in enumerate(costs):
        spent += cost
        if spent > budget:
            return count
    return len(costs)


@functools.cache
def _entity_cost(ch: str) -> int:
    return len(ch.translate(_ESCAPES))


@functools.cache
def _json_cost(ch: str) -> int:
    return len(json.dumps(ch, ensure_ascii=False).translate(_JSON_ESCAPES)) - 2


def fence(text: str, limit: int = FIELD_CHARS) -> str:
    """Free text ready to quote between tags.

    Normalised, with every ``<`` and ``>`` written ``&lt;`` and ``&gt;``, and at most
    ``limit`` characters once escaped (0: no cap) besides the truncation marker.
    """
    return cut(normalise(text), limit, _entity_cost).translate(_ESCAPES)


def fence_json(
    value: Any, field_limit: int = FIELD_CHARS, total_limit: int = DOCUMENT_CHARS
) -> str:
    """``value`` as indented JSON ready to quote: strings normalised, ``<``/``>`` escaped.

    Strings are normalised before encoding (NFKC may turn a fullwidth quote into ``"``,
    which JSON must then escape). Valid JSON has ``<`` and ``>`` only inside strings,
    where the ``u003c`` and ``u003e`` escapes mean the same characters, so the text still
    parses to the same (normalised) value. Each string is cut to ``field_limit``
    characters as encoded; when the document still passes ``total_limit``, the strings
    are cut shorter (halving the cap, down to 100 characters) until it fits.
    """
    limit = field_limit
    while True:
        shown = json.dumps(_normalise_all(value, limit), indent=2, ensure_ascii=False)
        shown = shown.translate(_JSON_ESCAPES)
        if len(shown) <= total_limit or limit <= _MIN_FIELD_CHARS:
            return shown
        limit = max(_MIN_FIELD_CHARS, limit // 2)


def _normalise_all(value: Any, limit: int) -> Any:
    if isinstance(value, str):
        return cut(normalise(value), limit, _json_cost)
    if isinstance(value, dict):
        return {
            cut(normalise(str(k)), limit, _json_cost): _normalise_all(v, limit)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_normalise_all(v, limit) for v in value]
    return value
