r"""Strict answer extraction: the one place graders, majority votes and benchmarks read answers.

Subjects are asked to end with a line ``Answer: <answer>``. Extraction first finds the
*deciding region* of a response, in this order: the last ``Answer:`` line (the last
explicit answer wins over everything written before it), a LaTeX ``\boxed{}``, the last
"the answer is ..." sentence, and only for a response with none of those, its last line.
It then reads the answer from that region alone, and refuses rather than guesses:

- a region naming more than one distinct option (``(A) or (C)``, ``A, B, C``) picks none;
- a negated region (``the answer is not London``) picks none;
- a response that ends by echoing the options (``...\nC) Rome\nD) Berlin``) with no
  answer marker picks none;
- a number is the last number of the region (after its last ``=``), with units,
  currency, percent and thousands separators handled; a bare list of numbers
  (``1, 2``) is no answer.

A response cut at its token limit (``truncated``) has no last-line fallback: without an
explicit answer marker it is unanswered, not graded on whatever the reasoning reached.
Extraction is pure string work, easy to test on its own.
"""

import re

from acdc.normal_form import normalize, strip_decoration
from acdc.tasks import LETTERS

_ANSWER_LINE = re.compile(
    r"(?:^[\s>#*_`-]*|[.!?]\s+[*_]*)(?:final\s+)?answer[\s*_]*[:\uff1a]\s*(.*?)\s*$",
    re.IGNORECASE | re.MULTILINE,
)
_BOXED = re.compile(r"\\boxed\{((?:[^{}]|\{[^{}]*\})*)\}")
_STATED = re.compile(
    r"\b(?:final\s+|correct\s+)?(?:answer|option|choice)\s+"
    r"(?:is|must\s+be|would\s+be|should\s+be|will\s+be)\b\s*[:\uff1a]?\s*([^\n]+)",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"(?<=[^\s.!?])[.!?](?=\s+[A-Z(\[])")
_GROUPED = r"\d{1,3}(?:(?:,|[ \u00a0\u2009\u202f'_])\d{3})+(?![\d])"
_NUMBER = re.compile(
    r"(?<![\w.^])(?P<sign>[-+\u2212]?)\s?\$?"
    rf"(?P<num>{_GROUPED}(?:\.\d+)?|\d+\.\d*|\d+|\.\d+)"
    r"(?:[eE](?P<exp>[-+]?\d+))?(?:\s*/\s*(?P<den>\d+(?:\.\d+)?))?"
)
_LATEX_FRAC = re.compile(r"\\[dt]?frac\{\s*(-?[\d.]+)\s*\}\{\s*(-?[\d.]+)\s*\}")
_NEGATION = re.compile(
    r"\b(?:not|never|neither|nor|none|wrong|incorrect|false|except|cannot|can't)\b|n't\b",
    re.IGNORECASE,
)
_STATEMENT = re.compile(r"^.+\s(?:is|are|was|were)\s+(?P<value>[^\s].*)$", re.IGNORECASE)
_ALTERNATIVES = re.compile(r"\b(?:or|and)\b|[,;/]", re.IGNORECASE)
_NUMBER_LIST = re.compile(
    r"^\W*[-+\u2212]?\$?\d[\d.,]*%?(?:(?:\s*[,;]\s+|\s+(?:or|and)\s+)[-+\u2212]?\$?\d[\d.,]*%?)+\W*$",
    re.IGNORECASE,
)
_OPTION_LINE = re.compile(r"^\s*[*_`]*\(?([A-Z])[).:\]]\s+\S", re.MULTILINE)


def answer_line(text: str) -> str | None:
    """The value of the last ``Answer:`` line, decoration removed; None if there is none.

    An empty ``Answer:`` line followed by the answer on the next line counts too.
    """
    matches = list(_ANSWER_LINE.finditer(text))
    if not matches:
        return None
    last = matches[-1]
    value = last.group(1)
    if not strip_decoration(value):
        rest = [line for line in text[last.end() :].splitlines() if line.strip()]
        value = rest[0] if rest else ""
    return strip_decoration(value) or None


def _first_sentence(text: str) -> str:
    """``text`` up to its first sentence end: "(B). A is wrong" decides on "(B)".

    A sentence ends at ``.``, ``!`` or ``?`` followed by a capital or a bracket, so
    "approx. 5" and "3.5" stay whole.
    """
    match = _SENTENCE_END.search(text)
    return text[: match.start()] if match else text


def deciding_region(text: str, *, truncated: bool = False) -> tuple[str | None, str]:
    """The part of a response that states its answer, and where it came from.

    Returns:
        ``(region, source)``; source is ``line``, ``boxed``, ``stated``, ``last_line``
        or ``none`` (region None: no answer stated, or cut before one when ``truncated``).
    """
    found = answer_line(text)
    if found is not None:
        return found, "line"
    boxed = _BOXED.findall(text)
    if boxed:
        return (strip_decoration(boxed[-1]) or None), "boxed"
    stated = _STATED.findall(text)
    if stated:
        return (strip_decoration(_first_sentence(stated[-1])) or None), "stated"
    lines = [line for line in text.splitlines() if line.strip()]
    if truncated or not lines:
        return None, "none"
    return (strip_decoration(lines[-1]) or None), "last_line"


def has_answer(text: str) -> bool:
    """Whether ``text`` states an answer explicitly (``Answer:`` line, boxed, "answer is")."""
    return deciding_region(text, truncated=True)[0] is not None


def final_answer(text: str, *, truncated: bool = False) -> str | None:
    """The final answer's text: answer line, boxed, "answer is", else the last line.

    A last line that is one plain statement, ``The capital of Australia is Canberra.``,
    gives what it states (``Canberra``): small models answer in sentences.
    """
    region, source = deciding_region(text, truncated=truncated)
    if region is not None and source == "last_line":
        return stated_value(region) or region
    return region


def stated_value(sentence: str) -> str | None:
    """What one ``<subject> is <value>`` sentence states, or None.

    None for anything else: more than one sentence, a negation (``is not Canberra``), or
    a value naming alternatives (``Sydney or Canberra``).
    """
    sentence = strip_decoration(sentence)
    if _SENTENCE_END.search(sentence) or _NEGATION.search(sentence):
        return None
    match = _STATEMENT.match(sentence)
    if match is None or _ALTERNATIVES.search(match["value"]):
        return None
    return strip_decoration(match["value"]) or None


def parse_number(text: str, *, last: bool = False) -> float | None:
    r"""The first (or last) number in ``text``, tolerant of how people write numbers.

    Handles ``1,234.5``, ``1 234``, ``-3``, a Unicode minus, ``$12``, ``45%``, ``1e3``,
    ``2/3`` and ``\frac{2}{3}``; units and words around the number are ignored, and so
    is a unit's exponent (``m^2``). Thousands separators need groups of three digits,
    so ``1, 2`` are two numbers.
    """
    text = _LATEX_FRAC.sub(r"\1/\2", text)
    matches = list(_NUMBER.finditer(text))
    if not matches:
        return None
    match = matches[-1] if last else matches[0]
    digits = re.sub(r"[,\s'_\u00a0\u2009\u202f]", "", match["num"])
    # Through float, not Fraction: "1e999999" must become inf at once, not a huge int.
    value = float(f"{digits}e{match['exp']}" if match["exp"] else digits)
    if match["den"]:
        denominator = float(match["den"])
        if denominator == 0:
            return None
        value /= denominator
    return -value if match["sign"] in ("-", "\u2212") else value


def numeric_answer(text: str, *, truncated: bool = False) -> tuple[float | None, str | None]:
    """The number a response gives as its answer, and the region it was read from.

    The last number of the deciding region's first sentence, after its last ``=``
    (``3 * 4 = 12`` gives 12, ``In 2 hours she earns 30`` gives 30). A negated region
    or a bare list of numbers gives None.
    """
    region, _ = deciding_region(text, truncated=truncated)
    if region is None:
        return None, None
    part = _first_sentence(region).rsplit("=", 1)[-1]
    if _NEGATION.search(part) or _NUMBER_LIST.match(part):
        return None, region
    return parse_number(part, last=True), region


def choice_letter(text: str, options: list[str], *, truncated: bool = False) -> str | None:
    """The option letter a response picks, or None when it does not pick exactly one.

    Accepts ``B``, ``(B)``, ``B)``, ``**B**``, ``Answer: b``, ``The answer is (B).``,
    ``B) London`` and an option's text. Upper-case letters are options wherever they
    stand in the region; a lower-case one only alone or in brackets, since ``a`` is
    also a word.
    """
    letters = LETTERS[: len(options)]
    region, source = deciding_region(text, truncated=truncated)
    if region is None:
        return None
    if source == "last_line" and _OPTION_LINE.match(region) and _echoes_options(text, letters):
        return None
    if source == "line":
        region = _first_sentence(region)
    return _letter_in(region, letters, options)


def _echoes_options(text: str, letters: str) -> bool:
    """Whether the response lists two or more options on their own lines.

    Only asked when the response *ends* on an option line and states no answer: a
    response that merely discusses the options line by line, then answers, is fine.
    """
    return len({m for m in _OPTION_LINE.findall(text) if m in letters}) >= 2


def _option_pattern(option: str) -> re.Pattern[str]:
    words = [re.escape(w) for w in option.split()]
    return re.compile(r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)", re.IGNORECASE)


def _letter_in(region: str, letters: str, options: list[str]) -> str | None:
    bare = strip_decoration(region).strip("()[]").strip()
    if len(bare) == 1 and bare.upper() in letters:
        return bare.upper()
    wanted = normalize(region)
    exact = [i for i, option in enumerate(options) if normalize(option) == wanted]
    if len(exact) == 1:
        return letters[exact[0]]
    named: set[int] = set()
    rest = region
    # Longest option texts first, each masked once found, so "Paris, Texas" is not
    # also read as "Paris", and letters inside an option's text are not letters.
    for i in sorted(range(len(options)), key=lambda i: -len(options[i])):
        pattern = _option_pattern(options[i].strip())
        if options[i].strip() and pattern.search(rest):
            named.add(i)
            rest = pattern.sub(" ", rest)
    upper = rf"(?<![\w'\u2019])([{letters}])(?![\w'\u2019])"
    lower = rf"\(([{letters.lower()}])\)|^\W*([{letters.lower()}])[).\]]"
    for match in re.finditer(upper, rest):
        named.add(letters.index(match.group(1)))
    for match in re.finditer(lower, rest):
        named.add(letters.index((match.group(1) or match.group(2)).upper()))
    if len(named) != 1 or _NEGATION.search(rest):
        return None
    return letters[named.pop()]
