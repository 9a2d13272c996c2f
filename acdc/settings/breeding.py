"""Settings of breeding: adapter rank, crossover, mutation, the specialize fine-tune."""

from dataclasses import dataclass, field
from typing import Literal

from acdc.settings.rules import (
    ConfigError,
    described,
    require_non_negative,
    require_positive,
)

SvdMethod = Literal["exact", "lowrank"]
VALID_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
"""Rank caps vLLM accepts for ``--max-lora-rank``."""


@dataclass(kw_only=True)
class BreedingSettings:
    """Breeding: the adapters' rank cap, crossover, mutation and the specialize fine-tune."""

    lora_rank: int = field(default=16, metadata=described("Rank cap of every expert adapter."))
    crossover: str = field(
        default="linear",
        metadata=described("Crossover operator: linear, ties, dare_ties, slerp."),
    )
    crossover_weight_std: float = field(
        default=0.1,
        metadata=described("Std of the linear crossover weights w_i ~ N(1, std^2)."),
    )
    mutation: str = field(default="svd_noise", metadata=described("Mutation operator."))
    mutation_sigma: float = field(
        default=1.0,
        metadata=described(
            "Std of the Gaussian noise on singular values (bench/diversity.py: 1.0 with keep "
            "rank 16 covers 3x the questions 0.25 with 4 did, no child rejected; 4.0 breaks "
            "every child)."
        ),
    )
    mutation_keep_rank: int = field(
        default=16,
        metadata=described(
            "Top-k singular values perturbed per weight matrix. The child is recompressed "
            "to lora_rank, which truncates part of a mutation as wide as the cap "
            "(expert.json records the recompression error); measured on the bundled seed, "
            "16 at rank 16 still gave the most diverse children."
        ),
    )
    mutation_svd: SvdMethod = field(
        default="lowrank",
        metadata=described("exact: full SVD; lowrank: randomized top-k SVD (much faster)."),
    )
    specialize_steps: int = field(
        default=24,
        metadata=described("specialize mutation (and seed --from-data): fine-tune steps."),
    )
    specialize_learning_rate: float = field(
        default=5e-4,
        metadata=described("specialize: AdamW learning rate of the LoRA fine-tune."),
    )
    specialize_rank: int = field(
        default=8,
        metadata=described(
            "specialize: rank of the trained LoRA, added to the child's delta before the "
            "recompression to lora_rank (keep it at or below lora_rank)."
        ),
    )
    specialize_batch_size: int = field(
        default=4, metadata=described("specialize: examples per fine-tune step.")
    )
    specialize_samples: int = field(
        default=4,
        metadata=described("specialize: answers sampled per niche task instance, before grading."),
    )
    specialize_temperature: float = field(
        default=0.7,
        metadata=described("specialize: sampling temperature of those answers (> 0)."),
    )
    specialize_max_examples: int = field(
        default=32,
        metadata=described("specialize: most graded answers one fine-tune trains on."),
    )
    specialize_min_examples: int = field(
        default=4,
        metadata=described(
            "specialize: fewest passing answers a niche needs; with fewer the child is "
            "mutated by svd_noise instead (logged)."
        ),
    )
    adapter_dtype: Literal["bfloat16", "float16", "float32"] = field(
        default="bfloat16", metadata=described("dtype of adapter weights on disk.")
    )
    sanity_check: bool = field(
        default=True,
        metadata=described("Reject children whose answers to fixed prompts are gibberish."),
    )

    def check(self) -> None:
        """Refuse a value out of range, naming the field."""
        require_positive(
            self,
            "lora_rank",
            "mutation_keep_rank",
            "specialize_steps",
            "specialize_learning_rate",
            "specialize_rank",
            "specialize_batch_size",
            "specialize_samples",
            "specialize_temperature",
            "specialize_max_examples",
            "specialize_min_examples",
        )
        require_non_negative(self, "mutation_sigma", "crossover_weight_std")
        if self.lora_rank not in VALID_LORA_RANKS:
            raise ConfigError(
                f"lora_rank must be one of {VALID_LORA_RANKS}, got {self.lora_rank}", "lora_rank"
            )
        if self.specialize_rank > self.lora_rank:
            raise ConfigError(
                f"specialize_rank must be at most lora_rank ({self.lora_rank}), "
                f"got {self.specialize_rank}",
                "specialize_rank",
            )
