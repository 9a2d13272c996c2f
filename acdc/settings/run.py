"""Settings of the run itself: its name, its randomness, how experts answer and pass."""

from dataclasses import dataclass, field

from acdc.settings.rules import described, require_non_negative, require_positive, require_share


@dataclass(kw_only=True)
class RunSettings:
    """The run: its name, its seed, the loop's size, how experts answer and pass."""

    run_id: str = field(default="default", metadata=described("Name of this run's folder."))
    random_seed: int = field(default=0, metadata=described("Seed of every random draw in the run."))
    children_per_generation: int = field(
        default=4, metadata=described("Children bred per generation.")
    )
    pass_threshold: float = field(
        default=0.5, metadata=described("Mean instance score at which an expert passes a task.")
    )
    instances_per_task: int = field(
        default=0,
        metadata=described(
            "Instances of each task the experts answer (0 = all; the official code scores "
            "only the first, all 3-5 give steadier skill vectors)."
        ),
    )
    subject_max_tokens: int = field(
        default=512,
        metadata=described("Max new tokens of an expert's answer to a task instance."),
    )
    subject_concurrency: int = field(
        default=0,
        metadata=described(
            "Expert answers in flight at once (0 = the population servers' capacity: "
            "max_num_seqs per engine)."
        ),
    )
    evaluation_passes: int = field(
        default=3,
        metadata=described(
            "Passes over the missing evaluations per phase: a transient failure (timeout, "
            "429, 5xx) leaves its item missing for the next pass, never a score of 0."
        ),
    )

    def check(self) -> None:
        """Refuse a value out of range, naming the field."""
        require_positive(self, "children_per_generation", "subject_max_tokens", "evaluation_passes")
        require_non_negative(self, "instances_per_task", "subject_concurrency")
        require_share(self, "pass_threshold")
