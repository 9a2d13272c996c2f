"""The pass rule: when a score counts as a pass, written once.

An expert passes a task when its mean instance score reaches the run's
``pass_threshold``; a sampled answer counts as a good example, and an archive member
as solving one instance, by the same rule on that one instance's score. Every skill
vector, fitness, coverage, diversity figure, report and task force rests on this rule,
so it lives here alone: a second copy (``>`` for ``>=``, or a missing score read as a
pass) would let two figures of one run disagree on the same cell.

A score that was never produced (a cell not evaluated yet) is not a pass here; the
callers that must tell it from a fail mask it (``archive.known_matrix``).
"""

LABEL_THRESHOLD = 0.5
"""The bar where no run setting applies: a judge's grade of a labelled right or wrong
answer (``agents/calibration.py``), a grader's score of a task's own wrong answer
(``agents/verify.py``)."""


def passes(score: float | None, threshold: float) -> bool:
    """Whether ``score`` (in [0, 1]; None: never evaluated) reaches ``threshold``."""
    return score is not None and score >= threshold
