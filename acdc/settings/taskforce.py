"""Settings of task forces: who is in one, how its answer is chosen, how it is evaluated."""

from dataclasses import dataclass, field
from typing import Literal

from acdc import safe_files
from acdc.settings.rules import ConfigError, described, require_non_negative, require_positive


@dataclass(kw_only=True)
class TaskforceSettings:
    """Task forces: the members, the best-of-N selector, the answers and the evaluation."""

    taskforce_size: int = field(
        default=3,
        metadata=described("Experts in a task force (N of best-of-N and coverage)."),
    )
    taskforce_members: list[str] = field(
        default_factory=list,
        metadata=described(
            "Explicit task force expert ids ('' = pick N from the run by coverage)."
        ),
    )
    taskforce_required: list[str] = field(
        default_factory=list,
        metadata=described("Experts always in a picked task force, e.g. the instruct seed 'base'."),
    )
    complete_skills: bool = field(
        default=True,
        metadata=described(
            "Before a task force is picked, evaluate every candidate (and the seed) on "
            "every task ever active (missing triples only); false: mask the missing cells."
        ),
    )
    taskforce_router: bool = field(
        default=False,
        metadata=described(
            "Model 'taskforce' asks one member instead of best-of-N: the one passing the "
            "run's tasks nearest the question (ChromaDB task index)."
        ),
    )
    selector: Literal["judge", "majority", "tournament"] = field(
        default="judge",
        metadata=described(
            "Best-of-N selector: judge (picks one of N, shuffled), majority (vote on "
            "final answers), tournament (pairwise judge knockout)."
        ),
    )
    answer_max_tokens: int = field(
        default=256, metadata=described("Max new tokens of a task force member's answer.")
    )
    eval_max_tokens: int = field(
        default=0,
        metadata=described(
            "Max new tokens of a benchmark answer in acdc eval coverage (0 = "
            "subject_max_tokens, the limit the run's tasks were answered with)."
        ),
    )
    answer_temperature: float = field(
        default=0.0, metadata=described("Sampling temperature of task force members.")
    )
    seed_sample_temperature: float = field(
        default=0.7,
        metadata=described("Temperature of the baseline 'N samples of the seed' (must be > 0)."),
    )

    def check(self) -> None:
        """Refuse a value out of range, naming the field."""
        require_positive(self, "taskforce_size", "answer_max_tokens", "seed_sample_temperature")
        require_non_negative(self, "eval_max_tokens", "answer_temperature")
        if len(set(self.taskforce_required)) != len(self.taskforce_required):
            shown = safe_files.preview(self.taskforce_required)
            raise ConfigError(
                f"taskforce_required repeats an expert: {shown}", "taskforce_required"
            )
        if len(self.taskforce_required) > self.taskforce_size:
            raise ConfigError(
                f"taskforce_required names {len(self.taskforce_required)} experts, more than "
                f"taskforce_size {self.taskforce_size}",
                "taskforce_required",
            )
