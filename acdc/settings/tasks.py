"""Settings of the task pool and of the scientist, the role that writes its tasks."""

from dataclasses import dataclass, field

from acdc.settings.rules import (
    ROLE_CONCURRENCY,
    ROLE_RETRIES,
    ConfigError,
    check_role_calls,
    described,
    require_non_negative,
    require_positive,
    require_share,
)


@dataclass(kw_only=True)
class TaskSettings:
    """Tasks and the scientist: the pool's size and growth, adaptation, the scientist's model."""

    seed_tasks_dir: str = field(
        default="",
        metadata=described("Folder of hand-written seed task files ('' = the bundled tasks/seed)."),
    )
    initial_pool: int = field(
        default=40, metadata=described("Active tasks to reach before the first generation.")
    )
    pool_max: int = field(
        default=250, metadata=described("Most active tasks; oldest retire first.")
    )
    task_batch: int = field(default=8, metadata=described("Scientist proposals per micro-batch."))
    task_rounds: int = field(
        default=10,
        metadata=described("Most micro-batches per pool-growing phase (bounds the cost)."),
    )
    validate_tasks: bool = field(
        default=True,
        metadata=described("The judge checks every new task before the curator sees it."),
    )
    review_tasks: bool = field(
        default=False,
        metadata=described("Pause for a person to approve, edit or reject admitted tasks."),
    )
    adapt_every: int = field(
        default=5, metadata=described("Adapt the task pool every k generations.")
    )
    adapt_parents: int = field(
        default=16, metadata=described("Parent tasks drawn (with replacement) per adaptation.")
    )
    adapt_budget: int = field(
        default=48,
        metadata=described(
            "Most scientist proposals one adaptation makes: the drawn parents' first, then "
            "refill proposals until the active pool is back at its target (>= adapt_parents)."
        ),
    )
    harder_pass_rate: float = field(
        default=0.5, metadata=described("Archive pass rate above which a task is made harder.")
    )
    reflection_rounds: int = field(
        default=1, metadata=described("Self-reflection rounds of the scientist per task.")
    )
    # A role's model is "" (the population server's base model), an init_chat_model spec
    # "provider:model", or a model name served at the role's OpenAI-compatible URL.
    scientist_model: str = field(
        default="",
        metadata=described("Model of the task-scientist: '' = local base, or provider:model."),
    )
    scientist_base_url: str = field(
        default="",
        metadata=described("OpenAI-compatible URL of the task-scientist model ('' = none)."),
    )
    scientist_temperature: float = field(default=0.7, metadata=described("Sampling temperature."))
    scientist_max_tokens: int = field(default=2048, metadata=described("Max new tokens per call."))
    scientist_timeout: float = field(default=120.0, metadata=described("Seconds per call."))
    scientist_retries: int = field(default=2, metadata=described(ROLE_RETRIES))
    scientist_concurrency: int = field(default=0, metadata=described(ROLE_CONCURRENCY))

    def check(self) -> None:
        """Refuse a value out of range, naming the field."""
        require_positive(self, "pool_max", "task_batch", "task_rounds", "adapt_every")
        require_positive(self, "adapt_parents")
        require_non_negative(self, "initial_pool", "reflection_rounds")
        require_share(self, "harder_pass_rate")
        if self.adapt_budget < self.adapt_parents:
            raise ConfigError(
                f"adapt_budget ({self.adapt_budget}) must be at least adapt_parents "
                f"({self.adapt_parents}): the drawn parents are part of the budget",
                "adapt_budget",
            )
        check_role_calls(self, "scientist")
