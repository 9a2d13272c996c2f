"""The form two texts are compared in exactly: decoration stripped, case folded, spaces collapsed.

Graders compare an answer with a reference in this form, majority votes count answers in
it, and the contamination rule looks for benchmark questions in training prompts in it,
so it sits below all of them (``agents/answers.py`` reads answers, ``population/``
trains).
"""

_EMPHASIS = "*_`\"' \t"
_TRAILING = ".,;:!?\u3002"


def strip_decoration(text: str) -> str:
    """Remove markdown emphasis, quotes and trailing punctuation around an answer."""
    text = text.strip().strip(_EMPHASIS)
    previous = None
    while previous != text:
        previous = text
        text = text.rstrip(_TRAILING).strip().strip(_EMPHASIS)
    return text


def normalize(text: str) -> str:
    """Case-fold, collapse whitespace and drop decoration, for exact comparison."""
    return " ".join(strip_decoration(text).casefold().split())
