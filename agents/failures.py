"""Transient or final: whether a failed model call says anything about the answer.

A timeout, a refused connection, HTTP 408/429 or a 5xx means the server was busy or
away: the same request may well succeed later, so the (expert, task, instance) triple
it was for stays *missing* and a later evaluation pass (or a resumed run) asks again.
Anything else (a 400, a malformed or refused structured output) is final: asking again
at temperature 0 gives the same, so it is recorded once with its reason.
"""

import asyncio
import re

import httpx

from acdc.population.client import ServerUnreachableError
from acdc.population.server import ServerError

TRANSIENT_STATUS = frozenset({408, 429})
"""HTTP statuses below 500 that mean "try again later"."""

_STATUS_IN_TEXT = re.compile(r"\bHTTP (\d{3})\b")
_TRANSIENT_NAMES = ("Timeout", "Connection", "RateLimit", "InternalServer", "Unavailable")


def transient_status(status: int) -> bool:
    """Whether an HTTP status means the server may answer the same request later."""
    return status in TRANSIENT_STATUS or status >= 500


def is_transient(err: BaseException) -> bool:
    """Whether ``err`` is a busy or unreachable server rather than a bad request or answer.

    Providers raise their own exception types (openai's ``RateLimitError``,
    ``APITimeoutError``, ``InternalServerError``; httpx's transport errors; the
    population client's ``ServerError`` with the status in its message), so the check
    looks at types, a ``status_code`` where there is one, and the class name.
    """
    if isinstance(
        err,
        (
            ServerUnreachableError,
            asyncio.TimeoutError,
            TimeoutError,
            ConnectionError,
            httpx.TimeoutException,
            httpx.TransportError,
        ),
    ):
        return True
    status = getattr(err, "status_code", None)
    if status is None:
        status = getattr(getattr(err, "response", None), "status_code", None)
    if isinstance(status, int):
        return transient_status(status)
    if isinstance(err, ServerError):
        match = _STATUS_IN_TEXT.search(str(err))
        return match is not None and transient_status(int(match.group(1)))
    return any(name in type(err).__name__ for name in _TRANSIENT_NAMES)
