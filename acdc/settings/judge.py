"""Settings of the judge: its model and calls, and the calibration that decides its trust."""

from dataclasses import dataclass, field

from acdc.settings.rules import (
    ROLE_CONCURRENCY,
    ROLE_RETRIES,
    check_role_calls,
    described,
    require_non_negative,
    require_share,
)


@dataclass(kw_only=True)
class JudgeSettings:
    """The judge: its model and calls, and its calibration on labelled pairs."""

    judge_model: str = field(
        default="",
        metadata=described("Model of the judge: '' = local base, or provider:model."),
    )
    judge_base_url: str = field(
        default="", metadata=described("OpenAI-compatible URL of the judge model ('' = none).")
    )
    judge_temperature: float = field(default=0.0, metadata=described("Sampling temperature."))
    judge_max_tokens: int = field(default=768, metadata=described("Max new tokens per call."))
    judge_timeout: float = field(default=120.0, metadata=described("Seconds per call."))
    judge_retries: int = field(default=2, metadata=described(ROLE_RETRIES))
    judge_concurrency: int = field(default=0, metadata=described(ROLE_CONCURRENCY))
    judge_pairs_file: str = field(
        default="",
        metadata=described(
            "Labelled judge pairs (JSONL: instruction, reference, rubric, response, label) "
            "the judge is calibrated on at bootstrap ('' = bench/data/judge_pairs.jsonl)."
        ),
    )
    judge_calibration_size: int = field(
        default=0,
        metadata=described("Pairs graded in the calibration, half right, half wrong (0 = all)."),
    )
    judge_min_agreement: float = field(
        default=0.75,
        metadata=described(
            "Calibration agreement below which rubric tasks are not admitted and are left "
            "out of fitness, DNS and task forces."
        ),
    )
    trust_judge: bool = field(
        default=False,
        metadata=described("Use rubric tasks even when the judge's calibration is below the bar."),
    )

    def check(self) -> None:
        """Refuse a value out of range, naming the field."""
        check_role_calls(self, "judge")
        require_non_negative(self, "judge_calibration_size")
        require_share(self, "judge_min_agreement")
