"""Settings that end a run: generations, tokens, dollars, and the prices dollars come from."""

from dataclasses import dataclass, field

from acdc.settings.rules import described, prices, require_non_negative, require_positive


@dataclass(kw_only=True)
class BudgetSettings:
    """What ends the run: generations, tokens or dollars (with each role's prices)."""

    generations: int = field(default=10, metadata=described("Generations to run (the budget)."))
    token_budget: int = field(
        default=0,
        metadata=described("Stop after this many generated tokens, all roles together (0 = none)."),
    )
    cost_budget_usd: float = field(
        default=0.0,
        metadata=described(
            "Stop starting role calls when spent plus in-flight USD would pass this, let "
            "those in flight finish and end the run, resumable with a larger budget "
            "(0 = none; costs from the <role>_price fields)."
        ),
    )
    scientist_price: list[float] = field(
        default_factory=list,
        metadata=described(
            "USD per million input and output tokens of the scientist model ([] = free)."
        ),
    )
    judge_price: list[float] = field(
        default_factory=list,
        metadata=described(
            "USD per million input and output tokens of the judge model ([] = free)."
        ),
    )
    curator_price: list[float] = field(
        default_factory=list,
        metadata=described(
            "USD per million input and output tokens of the curator model ([] = free)."
        ),
    )

    def check(self) -> None:
        """Refuse a value out of range, naming the field; prices become floats."""
        require_positive(self, "generations")
        require_non_negative(self, "token_budget", "cost_budget_usd")
        self.scientist_price = prices("scientist_price", self.scientist_price)
        self.judge_price = prices("judge_price", self.judge_price)
        self.curator_price = prices("curator_price", self.curator_price)
