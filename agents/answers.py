r"""Pull the final answer out of a free-form response: an answer line, a letter, a number.

Subjects are asked to end with a line ``Answer: <answer>``. Small models often don't, or
decorate it (``**Answer:** (B)``), so every extractor prefers the last answer line and
then falls back to weaker evidence: a LaTeX ``\boxed{}``, "the answer is ...", the last
line, the last number. Extraction is pure string work, easy to test on its own.
"""

import re

from acdc.tasks import LETTERS

_ANSWER_LINE = re.compile(
    r"^[\s>#*_`-]*(?:final\s+)?answer[\s*_]*[:\uff1a]\s*(.*?)\s*$", re.IGNORECASE | re.MULTILINE
)
_BOXED = re.compile(r"\\boxed\{((?:[^{}]|\{[^{}]*\})*)\}")
_ANSWER_IS = re.compile(r"\b(?:final\s+)?answer\s+is\s*[:\uff1a]?\s*([^\n]+)", re.IGNORECASE)
_EMPHASIS = "*_`\"' \t"
_TRAILING = ".,;:!?\u3002"
_NUMBER = re.compile(
    r"(?<![\w.])(?P<sign>[-+\u2212]?)\s?\$?(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+\.\d*|\d+|\.\d+)"
    r"(?:[eE](?P<exp>[-+]?\d+))?(?:\s*/\s*(?P<den>\d+(?:\.\d+)?))?"
)
_LATEX_FRAC = re.compile(r"\\[dt]?frac\{\s*(-?[\d.]+)\s*\}\{\s*(-?[\d.]+)\s*\}")


def strip_decoration(text: str) -> str:
    """Remove markdown emphasis, quotes and trailing punctuation around an answer."""
    text = text.strip().strip(_EMPHASIS)
    previous = None
    while previous != text:
        previous = text
        text = text.rstrip(_TRAILING).strip().strip(_EMPHASIS)
    return text


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


def final_answer(text: str) -> str | None:
    """Best guess at the final answer: answer line, boxed, "answer is", last line."""
    found = answer_line(text)
    if found is not None:
        return found
    boxed = _BOXED.findall(text)
    if boxed:
        return strip_decoration(boxed[-1]) or None
    stated = _ANSWER_IS.findall(text)
    if stated:
        return strip_decoration(stated[-1]) or None
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return None
    return strip_decoration(lines[-1]) or None


def normalize(text: str) -> str:
    """Case-fold, collapse whitespace and drop decoration, for exact comparison."""
    return " ".join(strip_decoration(text).casefold().split())


def parse_number(text: str, *, last: bool = False) -> float | None:
    r"""The first (or last) number in ``text``, tolerant of how people write numbers.

    Handles ``1,234.5``, ``-3``, a Unicode minus, ``$12``, ``45%``, ``1e3``, ``2/3`` and
    ``\frac{2}{3}``; units and words around the number are ignored. Thousands commas
    need groups of three digits, so ``1, 2`` are two numbers.
    """
    text = _LATEX_FRAC.sub(r"\1/\2", text)
    matches = list(_NUMBER.finditer(text))
    if not matches:
        return None
    match = matches[-1] if last else matches[0]
    digits = match["num"].replace(",", "")
    # Through float, not Fraction: "1e999999" must become inf at once, not a huge int.
    value = float(f"{digits}e{match['exp']}" if match["exp"] else digits)
    if match["den"]:
        denominator = float(match["den"])
        if denominator == 0:
            return None
        value /= denominator
    return -value if match["sign"] in ("-", "\u2212") else value


def numeric_answer(text: str) -> tuple[float | None, str | None]:
    """The number a response gives as its answer, and the text it was read from.

    From an answer line (after its last ``=``, so ``3 * 4 = 12`` gives 12) or a boxed
    or stated answer, take the first number; with none of those, the last number in
    the whole response, since reasoning usually ends on the result.
    """
    found = answer_line(text)
    if found is None:
        boxed = _BOXED.findall(text)
        stated = _ANSWER_IS.findall(text)
        found = boxed[-1] if boxed else (stated[-1] if stated else None)
    if found is not None:
        region = found.rsplit("=", 1)[-1]
        return parse_number(region), found
    value = parse_number(text, last=True)
    return value, None if value is None else str(value)


def choice_letter(text: str, options: list[str]) -> str | None:
    """The option letter a response picks, or None when it does not clearly pick one.

    Accepts ``B``, ``(B)``, ``B)``, ``**B**``, ``Answer: b``, ``The answer is (B).``,
    ``B) London`` and the option text itself. A lower-case letter inside prose is only
    taken when nothing follows it (``the answer is b.``), since ``a`` is also a word.
    """
    letters = LETTERS[: len(options)]
    found = answer_line(text)
    regions = [found] if found is not None else []
    stated = _ANSWER_IS.findall(text)
    if stated:
        regions.append(stated[-1])
    lines = [line for line in text.splitlines() if line.strip()]
    if lines:
        regions.append(lines[-1])
    for region in regions:
        letter = _letter_in(region, letters, options)
        if letter is not None:
            return letter
    return None


def _letter_in(region: str, letters: str, options: list[str]) -> str | None:
    bare = strip_decoration(region).strip("()[]")
    if len(bare) == 1 and bare.upper() in letters:
        return bare.upper()
    upper = "[" + letters + "]"
    lower = "[" + letters.lower() + "]"
    keyword = r"(?i:answer|option|choice)\s*(?i:is|:)?\s*\(?"
    # Letters are matched case-sensitively on purpose: "the answer is a bird" picks nothing.
    patterns = (
        rf"^\W*\(?({upper})[).:\]]\s*\S",  # "B) London", "(B) London", "B. London"
        rf"{keyword}({upper})\b\)?",  # "option C", "answer: (C)"
        rf"{keyword}({lower})\)?\W*$",  # "the answer is c." with nothing after the letter
        rf"\(({upper})\)",  # "... so (B)"
    )
    for pattern in patterns:
        match = re.search(pattern, region)
        if match:
            return match.group(1).upper()
    wanted = normalize(region)
    named = [i for i, option in enumerate(options) if normalize(option) == wanted]
    if len(named) == 1:
        return letters[named[0]]
    contained = [
        i for i, o in enumerate(options) if re.search(rf"\b{re.escape(normalize(o))}\b", wanted)
    ]
    return letters[contained[0]] if len(contained) == 1 else None
