"""What a sandboxed call produced: the supervisor's result line, checked as untrusted input.

The child (``agents/sandbox_child.py``) reports one JSON line on a pipe, marked with the
call's nonce. Although only its supervisor writes the line, the host reads it as it
reads any untrusted input (``agents/sandbox.py`` says why): the shape, the types, a
finite score inside [0, 1] (float noise clamped), a failure kind from the child's closed
list, a short detail, and valid UTF-8 throughout. A missing or forged line is the
sandbox's failure, or the code's when unisolated code could kill its supervisor.
"""

import json
import math
import signal
from dataclasses import dataclass
from typing import Literal

Isolation = Literal["unshare", "unshare-userns"]
FailureKind = Literal["timeout", "memory", "crashed", "bad_return", "not_isolated", "sandbox_error"]
CHILD_KINDS: tuple[FailureKind, ...] = (
    "timeout",
    "memory",
    "crashed",
    "bad_return",
    "sandbox_error",
)
"""Failures the child may report; ``not_isolated`` is decided by the host only."""
DETAIL_CHARS = 2000
"""Longest detail kept from the child (its end: a traceback's last lines say most)."""
SCORE_TOLERANCE = 1e-6
"""A score this far outside [0, 1] is clamped (float noise); further out it is a bad return."""


@dataclass(frozen=True)
class SandboxResult:
    """What one sandboxed call produced: a score in [0, 1], or why there is none.

    Attributes:
        score: The clamped score, or None when the call failed.
        failure: Why there is no score (None on success).
        detail: A human-readable explanation: the traceback, the limit hit, or a note
            that the score was clamped.
        isolation: The mechanism used, or None when the code ran unisolated (or not at all).
    """

    score: float | None
    failure: FailureKind | None
    detail: str
    isolation: Isolation | None

    @property
    def ok(self) -> bool:
        """True when the code returned a usable score."""
        return self.failure is None


def valid_text(text: str) -> str:
    """``text`` as valid UTF-8: lone surrogates (from JSON escapes) become U+FFFD.

    Every text from the sandbox passes here before it reaches a record, which a lone
    surrogate would break (``str.encode`` refuses it).
    """
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def interpret(raw: bytes, nonce: str, returncode: int, mode: Isolation | None) -> SandboxResult:
    """Turn the child's result line (or its absence) into a validated result.

    The line is checked as untrusted input (shape, types, a finite score, a kind from
    the child's closed list, a short detail) although only the supervisor writes it.
    Bytes that are not UTF-8 are replaced, never refused.
    """
    try:
        outcome = json.loads(raw.decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        outcome = None
    if not isinstance(outcome, dict) or outcome.get("nonce") != nonce:
        return _no_outcome(returncode, mode)
    ok = outcome.get("ok")
    if ok is False:
        kind, text = outcome.get("kind"), outcome.get("detail")
        if kind not in CHILD_KINDS or not isinstance(text, str):
            return SandboxResult(
                None, "sandbox_error", valid_text(f"malformed failure {str(kind)[:80]!r}"), mode
            )
        failure: FailureKind = kind
        return SandboxResult(None, failure, valid_text(text[-DETAIL_CHARS:]), mode)
    value = outcome.get("score")
    if ok is not True or isinstance(value, bool) or not isinstance(value, int | float):
        shown = valid_text(f"invalid score {str(value)[:80]!r}")
        return SandboxResult(None, "bad_return", shown, mode)
    try:
        number = float(value)
    except OverflowError:
        return SandboxResult(
            None, "bad_return", "invalid score: an integer too large for a float", mode
        )
    if not math.isfinite(number):
        return SandboxResult(None, "bad_return", f"invalid score {number}", mode)
    if not -SCORE_TOLERANCE <= number <= 1 + SCORE_TOLERANCE:
        return SandboxResult(None, "bad_return", f"score {number:g} is outside [0, 1]", mode)
    score = min(1.0, max(0.0, number))
    detail = "" if score == number else f"score {number!r} clamped to {score}"
    return SandboxResult(score, None, detail, mode)


def _no_outcome(returncode: int, mode: Isolation | None) -> SandboxResult:
    """No valid supervisor line: the sandbox failed, unless the code killed its supervisor.

    Isolated, the supervisor is pid 1 of its namespace and the code cannot end it, so
    this is the sandbox itself failing (e.g. unshare refused by the kernel). Unisolated,
    the code runs as the supervisor's user and can SIGKILL it: a death by a signal the
    host did not send is then the code's failure.
    """
    if mode is None and returncode < 0:
        name = _signal_name(-returncode)
        detail = f"the supervisor was killed by {name} (unisolated code can signal it)"
        return SandboxResult(None, "crashed", detail, mode)
    detail = f"the sandbox exited with status {returncode} without a valid result"
    return SandboxResult(None, "sandbox_error", detail, mode)


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
