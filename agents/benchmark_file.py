"""Benchmark items as users have them: the common JSONL shapes read into one form.

Accepted, one JSON object per line:
- ``{"question", "answer"}``: an exact or numeric answer (a number is read as text);
- ``{"question", "options": [...], "answer"}``: ``answer`` is an option letter, an
  option's text, or an integer index from 0;
- ``options`` as a mapping ``{"A": "...", "B": "..."}``: ``answer`` is a key;
- labelled options (a mapping, ARC's ``label`` lists) with an integer ``answer``: the
  answer is the option *labelled* so when there is one (``2`` with labels ``1..4`` is
  label 2, the second option), else an index from 0; where both readings name an
  option and they differ, a note says which was taken.
- ``choices`` instead of ``options`` (MMLU: a list with an integer ``answer`` index);
- ``{"question", "choices": {"text": [...], "label": [...]}, "answerKey"}`` (ARC on the
  Hugging Face hub) and ``{"question": {"stem", "choices": [{"text", "label"}]},
  "answerKey"}`` (ARC's own files): ``answerKey`` is a label.
Multiple-choice answers come back as the option's letter (A, B, ...) in list order.

Rows that would score silently wrong are refused with the reason (with the file and
line): an answer that is NaN or infinite, or that has nothing to match once invisible
characters and decoration are dropped (``"."``, a zero-width space).

A ``BenchmarkItem`` is graded like a task, by the strict extractors of
``agents/answers.py``: an option letter for multiple choice; otherwise the normalized
final answer, or its number when the reference is a number. An answer cut at the token
limit counts only when it states an answer explicitly.
"""

import logging
import math
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acdc.agents.answers import choice_letter, final_answer, numeric_answer
from acdc.normal_form import normalize
from acdc.tasks import LETTERS, parse_reference_number
from acdc.vectorstore.contamination import BenchmarkFileError, benchmark_lines, item_question

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BenchmarkItem:
    """One question; ``answer`` is the option letter for multiple choice."""

    question: str
    answer: str
    options: tuple[str, ...] = ()

    def instruction(self) -> str:
        """The question as members and the judge see it, options lettered."""
        lines = [f"{LETTERS[i]}. {option}" for i, option in enumerate(self.options)]
        return "\n".join([self.question, *lines])

    def key(self, text: str, truncated: bool = False) -> str | None:
        """The answer ``text`` gives, in the form it is graded and voted on.

        ``truncated``: the answer was cut at the token limit, so only an explicit
        answer counts (no guess from the last line the reasoning reached).
        """
        if self.options:
            letter: str | None = choice_letter(text, list(self.options), truncated=truncated)
            return letter
        if _number(self.answer) is not None:
            value, _ = numeric_answer(text, truncated=truncated)
            return None if value is None else _number_key(value)
        found = final_answer(text, truncated=truncated)
        return normalize(found) if found is not None else None

    def correct(self, text: str, truncated: bool = False) -> bool:
        """Whether ``text`` answers this item right."""
        if self.options:
            return self.key(text, truncated) == self.answer
        reference = _number(self.answer)
        wanted = _number_key(reference) if reference is not None else normalize(self.answer)
        return self.key(text, truncated) == wanted


def _number(text: str) -> float | None:
    try:
        return parse_reference_number(text)
    except ValueError:
        return None


def _number_key(value: float) -> str:
    """A number as a vote: ``42`` and ``42.0`` are the same answer."""
    return format(value, ".10g")


def load_benchmark(path: Path, notes: list[str] | None = None) -> list[BenchmarkItem]:
    """The items of a benchmark JSONL file.

    ``notes`` receives one ``file:line: ...`` sentence per row read one way where the
    file allowed two (an integer answer that is both a label and an index).

    Raises:
        BenchmarkFileError: The path is a folder or unreadable, or a line is not an item
            (or not one that can be graded); the message names the file and line.
    """
    items: list[BenchmarkItem] = []
    for number, raw in benchmark_lines(path):
        row_notes: list[str] = []
        try:
            items.append(BenchmarkItem(*parse_item(raw, row_notes)))
        except ValueError as err:
            raise BenchmarkFileError(f"{path}:{number}: {err}") from None
        for note in row_notes:
            logger.warning("%s:%d: %s", path, number, note)
            if notes is not None:
                notes.append(f"{path}:{number}: {note}")
    if not items:
        raise BenchmarkFileError(f"{path} holds no questions")
    return items


def parse_item(raw: Any, notes: list[str] | None = None) -> tuple[str, str, tuple[str, ...]]:
    """``(question, answer, options)`` of one benchmark item.

    ``answer`` is the option's letter when there are options. When an integer answer
    could be read both as a label and as an index and the two differ, a sentence
    saying which reading was taken is appended to ``notes``.

    Raises:
        ValueError: The item has none of the accepted shapes, or an answer that cannot
            be graded (NaN, infinite, or empty once invisible characters are dropped);
            the message says why.
    """
    question = item_question(raw)
    if question is None:
        raise ValueError("an item is an object with a non-empty 'question' string")
    answer = raw.get("answerKey", raw.get("answer"))
    if answer is None or isinstance(answer, bool) or not _visible(str(answer)):
        raise ValueError("an item needs a non-empty 'answer' (or 'answerKey')")
    if isinstance(answer, float) and not math.isfinite(answer):
        raise ValueError(f"answer {answer} is not a finite number")
    labels, options = _options(raw)
    if not options:
        if not isinstance(answer, str | int | float):
            raise ValueError(f"'answer' must be text or a number, got {type(answer).__name__}")
        if not normalize(_visible(str(answer))):
            raise ValueError(f"answer {str(answer)[:40]!r} has nothing a response could match")
        return question.strip(), str(answer).strip(), ()
    position = _position(answer, labels, options, notes if notes is not None else [])
    return question.strip(), LETTERS[position], tuple(options)


def _visible(text: str) -> str:
    """``text`` without invisible characters (format, control) and outer whitespace."""
    kept = (ch for ch in text if unicodedata.category(ch) not in ("Cf", "Cc", "Zl", "Zp"))
    return "".join(kept).strip()


def _options(raw: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(labels, texts) of the item's options, in order; ([], []) when it has none."""
    found = raw.get("options", raw.get("choices"))
    if found is None and isinstance(raw.get("question"), dict):
        found = raw["question"].get("choices")
    if found is None:
        return [], []
    if isinstance(found, dict) and isinstance(found.get("text"), list):
        texts = found["text"]
        labels = found.get("label") if isinstance(found.get("label"), list) else None
    elif isinstance(found, dict):
        labels, texts = list(found), list(found.values())
    elif isinstance(found, list) and all(isinstance(o, dict) for o in found):
        texts = [o.get("text") for o in found]
        labels = [o.get("label") for o in found] if all("label" in o for o in found) else None
    elif isinstance(found, list):
        texts, labels = found, None
    else:
        raise ValueError("'options' (or 'choices') must be a list or a mapping")
    if not 2 <= len(texts) <= len(LETTERS):
        raise ValueError(f"an item needs 2 to {len(LETTERS)} options, got {len(texts)}")
    if not all(isinstance(t, str | int | float) and str(t).strip() for t in texts):
        raise ValueError("every option must be non-empty text")
    names = [str(label).strip() for label in (labels or LETTERS[: len(texts)])]
    if len(names) != len(texts) or len({n.upper() for n in names}) != len(names):
        raise ValueError("option labels must be distinct, one per option")
    return names, [str(t).strip() for t in texts]


def _position(answer: Any, labels: list[str], options: list[str], notes: list[str]) -> int:
    """Which option ``answer`` names: a label, an index, a letter, or an option's text."""
    if isinstance(answer, int):
        return _integer_position(answer, labels, options, notes)
    text = str(answer).strip()
    for i, label in enumerate(labels):
        if label.upper() == text.upper():
            return i
    letters = LETTERS[: len(options)]
    if len(text) == 1 and text.upper() in letters:
        return letters.index(text.upper())
    named = [i for i, option in enumerate(options) if normalize(option) == normalize(text)]
    if len(named) != 1:
        raise ValueError(f"answer {text!r} names no option (a label, letter or option's text)")
    return named[0]


def _integer_position(answer: int, labels: list[str], options: list[str], notes: list[str]) -> int:
    """An integer answer: the option labelled ``answer`` if there is one, else an index.

    Lists without labels get letters, which no integer matches, so MMLU's indices read
    as before; labels ``1..4`` make ``2`` the option labelled 2, not the third.
    """
    labelled = [i for i, label in enumerate(labels) if label == str(answer)]
    index_ok = 0 <= answer < len(options)
    if labelled:
        if index_ok and answer != labelled[0]:
            notes.append(
                f"answer {answer} read as the label {str(answer)!r} (option "
                f"{LETTERS[labelled[0]]}), not as the index {answer} (option {LETTERS[answer]})"
            )
        return labelled[0]
    if not index_ok:
        raise ValueError(
            f"answer index {answer} is not in 0..{len(options) - 1} and no option is "
            f"labelled {answer}"
        )
    return answer
