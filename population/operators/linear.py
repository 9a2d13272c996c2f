"""Model-wise linear crossover, computed exactly in adapter space.

The child's weight change is ``sum_i w_i * delta_i / sum_i w_i`` with ``w_i ~ N(1, std^2)``
(AC/DC's default crossover, std = 0.1). With LoRA deltas ``B_i A_i`` the weighted sum is
exactly ``[w_1 B_1 | ... | w_n B_n] @ [A_1; ...; A_n] / sum w``: the ranks add up, and
the breeding step recompresses the result by SVD to the rank cap.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch

from acdc.population.base import BaseWeights
from acdc.population.lora import LoraDelta
from acdc.population.operators.registry import OperatorKind, Parent, register


@dataclass(frozen=True)
class LinearCrossover:
    """Weighted average of the parents' deltas with weights drawn around 1."""

    name: ClassVar[str] = "linear"
    kind: ClassVar[OperatorKind] = "crossover"
    paper: ClassVar[str] = "https://arxiv.org/abs/2604.14969"

    weight_std: float = 0.1

    def weights(self, count: int, generator: torch.Generator) -> torch.Tensor:
        """Normalized parent weights; redrawn (bounded) if their sum is not safely positive."""
        for _ in range(100):
            raw = 1.0 + self.weight_std * torch.randn(
                count, generator=generator, dtype=torch.float64
            )
            if raw.sum() > 0.1 * count:
                return raw / raw.sum()
        raise ValueError(f"weight_std {self.weight_std} is too large for stable weights")

    def apply(
        self, *, parents: Sequence[Parent], base: BaseWeights, generator: torch.Generator
    ) -> LoraDelta:
        """Concatenate the scaled parent factors module by module."""
        if not parents:
            raise ValueError("linear crossover needs at least one parent")
        weights = self.weights(len(parents), generator)
        child: LoraDelta = {}
        for module in sorted({m for p in parents for m in p.delta}):
            pieces = [
                (p.delta[module], w)
                for p, w in zip(parents, weights, strict=True)
                if module in p.delta
            ]
            a = torch.cat([factors[0] for factors, _ in pieces])
            b = torch.cat([factors[1] * float(w) for factors, w in pieces], dim=1)
            child[module] = (a, b)
        return child


register(LinearCrossover.name, LinearCrossover)
