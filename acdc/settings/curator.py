"""Settings of the curator: its model and calls, and the novelty and contamination gates."""

from dataclasses import dataclass, field

from acdc.settings.rules import (
    ROLE_CONCURRENCY,
    ROLE_RETRIES,
    check_role_calls,
    described,
    require_positive,
    require_share,
)


@dataclass(kw_only=True)
class CuratorSettings:
    """The curator and novelty: its model, the similarity gates, the benchmark guard."""

    curator_model: str = field(
        default="",
        metadata=described(
            "Model of the curator's novelty check: '' = local base, or provider:model."
        ),
    )
    curator_base_url: str = field(
        default="",
        metadata=described(
            "OpenAI-compatible URL of the curator's novelty check model ('' = none)."
        ),
    )
    curator_temperature: float = field(default=0.0, metadata=described("Sampling temperature."))
    curator_max_tokens: int = field(default=512, metadata=described("Max new tokens per call."))
    curator_timeout: float = field(default=120.0, metadata=described("Seconds per call."))
    curator_retries: int = field(default=2, metadata=described(ROLE_RETRIES))
    curator_concurrency: int = field(default=0, metadata=described(ROLE_CONCURRENCY))
    novelty_threshold: float = field(
        default=0.7,
        metadata=described(
            "Cosine similarity at or above which an accepted task is shown to the LLM's "
            "'interestingly new' check of a new task."
        ),
    )
    duplicate_threshold: float = field(
        default=0.95,
        metadata=described(
            "Cosine similarity above which a new task is refused as near-identical, "
            "without asking the LLM (a harder/easier variant's own lineage excepted)."
        ),
    )
    novelty_neighbours: int = field(
        default=3,
        metadata=described("Nearest tasks shown to the scientist and the novelty check."),
    )
    contamination_threshold: float = field(
        default=0.9,
        metadata=described("Similarity to a benchmark question that rejects a task."),
    )
    benchmark_files: list[str] = field(
        default_factory=list,
        metadata=described("JSONL benchmark questions for the contamination gate."),
    )
    novel_related_share: float = field(
        default=0.8,
        metadata=described(
            "Share of 'novel' adaptations asking for a task related to its parent (the "
            "reference's 80 %); the rest ask for an unrelated task."
        ),
    )

    def check(self) -> None:
        """Refuse a value out of range, naming the field."""
        check_role_calls(self, "curator")
        require_positive(self, "novelty_neighbours")
        require_share(
            self,
            "novelty_threshold",
            "duplicate_threshold",
            "contamination_threshold",
            "novel_related_share",
        )
