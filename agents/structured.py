"""Structured calls to a role model: bounded retries, and failures returned as data.

A malformed, schema-invalid or refused answer, a timeout or an unreachable server is
retried up to the role's limit and then returned as a rejection with its reason; it
never raises out of a role, so one bad item cannot crash a run. With a cost meter,
each call reserves its worst-case cost before it starts and is charged at the tokens
the server reports; a call the budget refuses fails at once with that reason.
"""

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage
from pydantic import BaseModel

from acdc.agents.failures import is_transient
from acdc.context import Context
from acdc.costs import BUDGET_REFUSAL, CostLedger, CostMeter, Price
from acdc.models import Role, RoleSettings, load_chat_model

log = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """The parsed answer of a structured call, or why there is none."""

    value: T | None
    reason: str
    attempts: int
    raw: str
    tokens: int
    transient: bool = False
    """The last attempt failed for a busy or unreachable server (timeout, 429, 5xx), so
    the same call may succeed later; False for a malformed or refused answer."""

    @property
    def ok(self) -> bool:
        """Whether a schema-valid value came back."""
        return self.value is not None


class StructuredCaller:
    """Calls one role model for pydantic outputs, with a concurrency limit."""

    def __init__(
        self,
        model: BaseChatModel,
        *,
        retries: int,
        concurrency: int,
        local: bool,
        meter: CostMeter | None = None,
    ):
        self.model = model
        self.retries = retries
        self.local = local
        self.meter = meter
        self._limit = asyncio.Semaphore(concurrency)

    async def call(self, schema: type[T], prompt: str) -> Outcome[T]:
        """Ask for ``schema``; JSON-schema guided decoding on OpenAI-compatible servers."""
        method = "json_schema" if self.local else None
        kwargs: dict[str, Any] = {"include_raw": True}
        if method:
            kwargs["method"] = method
        runnable = self.model.with_structured_output(schema, **kwargs)
        reason, raw, tokens, transient = "", "", 0, False
        for attempt in range(1, self.retries + 2):
            try:
                async with self._limit:
                    ticket = await self.meter.reserve(prompt) if self.meter else None
                    if self.meter and ticket is None:
                        reason = f"{BUDGET_REFUSAL}: the call was not started"
                        return Outcome(None, reason, attempt - 1, raw, tokens)
                    try:
                        result = await runnable.ainvoke([HumanMessage(prompt)])
                    except BaseException:
                        if self.meter and ticket:
                            self.meter.settle(ticket, 0, 0)  # unknown usage: nothing reported
                        raise
            except ValueError as err:  # the client's schema or JSON check of the reply
                reason, transient = f"malformed output: {str(err)[:300]}", False
                continue
            except Exception as err:  # providers raise many types; every one becomes data
                kind = "malformed output" if "Length" in type(err).__name__ else "call failed"
                reason = f"{kind}: {type(err).__name__}: {str(err)[:300]}"
                transient = is_transient(err)
                continue
            if not isinstance(result, dict):  # include_raw=True always answers a dict
                raise TypeError(f"{schema.__name__}: expected a dict, got {type(result).__name__}")
            message = result.get("raw")
            raw = str(getattr(message, "content", "") or "")
            usage = getattr(message, "usage_metadata", None) or {}
            tokens += int(usage.get("total_tokens", 0))
            if self.meter and ticket:
                self.meter.settle(
                    ticket, int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))
                )
            parsed = result.get("parsed")
            if isinstance(parsed, schema):
                return Outcome(parsed, "", attempt, raw, tokens)
            error = result.get("parsing_error")
            reason = f"malformed output: {str(error)[:300]}" if error else "no structured output"
            transient = False
        log.warning(
            "%s rejected after %d attempt(s): %s", schema.__name__, self.retries + 1, reason
        )
        return Outcome(None, reason, self.retries + 1, raw, tokens, transient)


def caller_for(
    ctx: Context, role: Role, server_url: str, ledger: CostLedger | None = None
) -> StructuredCaller:
    """The structured caller of ``role`` as configured in ``ctx``; ``ledger`` counts cost."""
    settings = RoleSettings.of(ctx, role)
    model = load_chat_model(settings, server_url, ctx.served_model_name)
    meter = None
    if ledger is not None:
        price = Price.of(getattr(ctx, f"{role}_price"))
        meter = CostMeter(ledger, role, price, settings.max_tokens)
    return StructuredCaller(
        model,
        retries=settings.retries,
        concurrency=settings.concurrency,
        local=settings.local,
        meter=meter,
    )
