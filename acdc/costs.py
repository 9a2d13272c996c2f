"""Money spent on role models: prices, a ledger of spent and in-flight cost, the budget.

Hosted roles bill per token; local ones cost nothing. Each role model has a price per
million input and output tokens (``<role>_price`` in the Context, empty = free). Every
role call reserves its worst case before it starts (prompt characters / 3 as input
tokens, the role's ``max_tokens`` as output) and settles at the tokens the server
reports. With ``cost_budget_usd`` set, a call whose worst case does not fit beside
what is spent and in flight waits for the calls in flight to settle (they usually cost
far less than their worst case); when it still does not fit with nothing in flight, it
is refused, and so is every call after it. A phase thus stops starting calls, lets
those in flight finish (drains) and the run ends with the reason, never past the
budget; a resume with a larger budget continues where it stopped.

The ledger is kept in ``costs.json`` in the run folder (rewritten atomically after
every priced call), so a resumed run counts what earlier processes spent.
"""

import asyncio
import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acdc import atomic

log = logging.getLogger(__name__)

BUDGET_REFUSAL = "cost budget spent"
"""Start of the reason of a call the budget refused (never sent: not the item's fault)."""
CHARS_PER_TOKEN = 3
"""Prompt characters per input token in the worst-case estimate of a call in flight."""
WAIT_POLL = 0.05
"""Seconds between checks of a call waiting for calls in flight to settle."""


def is_budget_refusal(reason: str) -> bool:
    """Whether a role call failed only because the budget refused to start it."""
    return BUDGET_REFUSAL in reason  # also when a role wraps it ("review failed: ...")


class BudgetSpentError(RuntimeError):
    """The cost budget stopped the run after its calls in flight finished (resumable)."""


@dataclass(frozen=True)
class Price:
    """USD per million input and output tokens of one model (0, 0 = free)."""

    input_per_m: float = 0.0
    output_per_m: float = 0.0

    @classmethod
    def of(cls, values: list[float]) -> "Price":
        """From a Context ``<role>_price`` value: [] (free) or [input, output]."""
        return cls(*values) if values else cls()

    @property
    def free(self) -> bool:
        """Whether calls cost nothing."""
        return self.input_per_m == 0 and self.output_per_m == 0

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """USD of a call with these token counts."""
        return (input_tokens * self.input_per_m + output_tokens * self.output_per_m) / 1e6


@dataclass(frozen=True)
class Ticket:
    """A started call's reserved worst-case cost."""

    role: str
    reserved: float


class CostLedger:
    """Spent and in-flight cost of a run, by role and generation; thread-safe."""

    def __init__(self, budget_usd: float = 0.0, path: Path | None = None) -> None:
        self.budget = budget_usd
        self.path = path
        self.generation = 0
        """Generation the calls are charged to (set by the phase that makes them)."""
        self.by_generation: dict[int, dict[str, float]] = {}
        self.in_flight = 0.0
        self.refusals = 0
        self._lock = threading.Lock()
        if path is not None and path.is_file():
            saved = json.loads(path.read_text())
            self.by_generation = {
                int(g): {r: float(c) for r, c in roles.items()}
                for g, roles in saved.get("by_generation", {}).items()
            }

    def set_budget(self, budget_usd: float) -> None:
        """Apply a (possibly larger) budget; a new budget forgets earlier refusals."""
        with self._lock:
            if budget_usd != self.budget:
                self.budget, self.refusals = budget_usd, 0

    @property
    def spent(self) -> float:
        """USD spent so far, every role and generation."""
        return sum(sum(roles.values()) for roles in self.by_generation.values())

    def by_role(self, generation: int | None = None) -> dict[str, float]:
        """USD by role, of one generation or (None) of the whole run."""
        total: dict[str, float] = {}
        for g, roles in self.by_generation.items():
            if generation is None or g == generation:
                for role, usd in roles.items():
                    total[role] = total.get(role, 0.0) + usd
        return {role: round(usd, 6) for role, usd in sorted(total.items())}

    @property
    def exhausted(self) -> bool:
        """Whether the budget refused a call or is spent: the run must stop."""
        with self._lock:
            return self.budget > 0 and (self.refusals > 0 or self.spent >= self.budget)

    def reason(self) -> str:
        """Why the run stops, for the log and the terminal."""
        return (
            f"{BUDGET_REFUSAL} (${self.spent:.4f} of ${self.budget:.4f}); resume with a "
            f"larger --cost-budget-usd"
        )

    async def reserve(
        self, role: str, price: Price, prompt_chars: int, max_tokens: int
    ) -> Ticket | None:
        """Reserve a call's worst case; None when the budget refuses to start it.

        A call that does not fit yet waits for the calls in flight to settle.
        """
        worst = price.cost(prompt_chars // CHARS_PER_TOKEN + 1, max_tokens)
        while True:
            with self._lock:
                if self.budget <= 0 or (
                    not self.refusals and self.spent + self.in_flight + worst <= self.budget
                ):
                    self.in_flight += worst
                    return Ticket(role, worst)
                if self.refusals or self.in_flight == 0:
                    self.refusals += 1
                    return None
            await asyncio.sleep(WAIT_POLL)

    def settle(self, ticket: Ticket, price: Price, input_tokens: int, output_tokens: int) -> float:
        """Charge a finished call at the tokens its server reported; returns its USD."""
        usd = price.cost(input_tokens, output_tokens)
        with self._lock:
            self.in_flight = max(0.0, self.in_flight - ticket.reserved)
            if usd > 0:
                roles = self.by_generation.setdefault(self.generation, {})
                roles[ticket.role] = roles.get(ticket.role, 0.0) + usd
                snapshot = self._snapshot()
            else:
                snapshot = None
        if snapshot is not None and self.path is not None:
            atomic.write_json(self.path, snapshot)
        return usd

    def _snapshot(self) -> dict[str, Any]:
        return {
            "budget_usd": self.budget,
            "spent_usd": round(self.spent, 6),
            "by_generation": {
                str(g): {r: round(c, 8) for r, c in roles.items()}
                for g, roles in sorted(self.by_generation.items())
            },
        }


@dataclass(frozen=True)
class CostMeter:
    """One role's view of the ledger: its price and worst-case output tokens."""

    ledger: CostLedger
    role: str
    price: Price
    max_tokens: int

    async def reserve(self, prompt: str) -> Ticket | None:
        """Reserve a call of ``prompt``, or None when the budget refuses it."""
        return await self.ledger.reserve(self.role, self.price, len(prompt), self.max_tokens)

    def settle(self, ticket: Ticket, input_tokens: int, output_tokens: int) -> float:
        """Charge the finished call."""
        return self.ledger.settle(ticket, self.price, input_tokens, output_tokens)
