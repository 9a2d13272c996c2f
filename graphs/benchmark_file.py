"""Benchmark items as users have them: the common JSONL shapes read into one form.

Accepted, one JSON object per line:
- ``{"question", "answer"}``: an exact or numeric answer (a number is read as text);
- ``{"question", "options": [...], "answer"}``: ``answer`` is an option letter, an
  option's text, or an integer index from 0;
- ``options`` as a mapping ``{"A": "...", "B": "..."}``: ``answer`` is a key;
- ``choices`` instead of ``options`` (MMLU: a list with an integer ``answer`` index);
- ``{"question", "choices": {"text": [...], "label": [...]}, "answerKey"}`` (ARC on the
  Hugging Face hub) and ``{"question": {"stem", "choices": [{"text", "label"}]},
  "answerKey"}`` (ARC's own files): ``answerKey`` is a label.
Multiple-choice answers come back as the option's letter (A, B, ...) in list order.
"""

from typing import Any

from acdc.agents.answers import normalize
from acdc.tasks import LETTERS
from acdc.vectorstore.contamination import item_question


def parse_item(raw: Any) -> tuple[str, str, tuple[str, ...]]:
    """``(question, answer, options)`` of one benchmark item.

    ``answer`` is the option's letter when there are options.

    Raises:
        ValueError: The item has none of the accepted shapes; the message says why.
    """
    question = item_question(raw)
    if question is None:
        raise ValueError("an item is an object with a non-empty 'question' string")
    answer = raw.get("answerKey", raw.get("answer"))
    if answer is None or isinstance(answer, bool) or not str(answer).strip():
        raise ValueError("an item needs a non-empty 'answer' (or 'answerKey')")
    labels, options = _options(raw)
    if not options:
        if not isinstance(answer, str | int | float):
            raise ValueError(f"'answer' must be text or a number, got {type(answer).__name__}")
        return question.strip(), str(answer).strip(), ()
    return question.strip(), LETTERS[_position(answer, labels, options)], tuple(options)


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


def _position(answer: Any, labels: list[str], options: list[str]) -> int:
    """Which option ``answer`` names: an index, a label, a letter, or an option's text."""
    if isinstance(answer, int):
        if not 0 <= answer < len(options):
            raise ValueError(f"answer index {answer} is not in 0..{len(options) - 1}")
        return answer
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
