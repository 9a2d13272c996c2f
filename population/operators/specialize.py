"""Mutation by specialization: a short LoRA fine-tune of the child on one niche.

SVD noise makes children that answer almost like their parents. This operator makes
a child *better than its parent on one niche*: the breed phase picks a capability the
parent passes (more often than the archive does), samples the parent's answers to those
tasks at temperature > 0, keeps only the answers the task's grader passes, and hands
them over as ``examples`` (``graphs/niche_data.py``). The operator trains a LoRA on them
over ``base + delta`` (``population/finetune.py``) and appends it to the delta; the
breeder recompresses to the rank cap as for every operator.

The examples are parameters of the operator instance, so they are part of the child's
id and of ``expert.json``: the child can be remade exactly from its record.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from acdc.population.base import BaseWeights
from acdc.population.finetune import Example, FinetuneSettings, finetune
from acdc.population.lora import LoraDelta
from acdc.population.operators.registry import OperatorKind, TrainedDelta, register
from acdc.population.scoreboard import pass_rates


@dataclass(frozen=True)
class Specialize:
    """Fine-tune the child on graded answers of one niche (``examples``: (prompt, answer))."""

    name: ClassVar[str] = "specialize"
    kind: ClassVar[OperatorKind] = "mutation"
    paper: ClassVar[str] = "https://arxiv.org/abs/2106.09685"

    niche: str = ""
    examples: tuple[tuple[str, str], ...] = ()
    steps: int = 24
    learning_rate: float = 5e-4
    rank: int = 8
    batch_size: int = 4

    def apply(
        self, *, delta: LoraDelta, base: BaseWeights, generator: torch.Generator
    ) -> LoraDelta:
        """The delta plus a LoRA trained on the niche's examples (rank adds up)."""
        if not self.examples:
            raise ValueError(
                "specialize needs examples of a niche; the breed phase supplies them "
                "(graphs/niche_data.py), or use another mutation"
            )
        settings = FinetuneSettings(
            steps=self.steps,
            learning_rate=self.learning_rate,
            rank=self.rank,
            batch_size=self.batch_size,
        )
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        pairs = [Example(prompt, answer) for prompt, answer in self.examples]
        result = finetune(base.folder, delta, pairs, settings, seed)
        child: LoraDelta = dict(delta)
        for module, (a, b) in result.delta.items():
            if module in child:
                old_a, old_b = child[module]
                child[module] = (torch.cat([old_a, a]), torch.cat([old_b, b], dim=1))
            else:
                child[module] = (a, b)
        training = {"niche": self.niche, "examples": len(pairs), **result.report()}
        return TrainedDelta(child, training)


def choose_niche(
    solved: np.ndarray, capabilities: Sequence[str], row: int, known: np.ndarray | None = None
) -> str | None:
    """The capability expert ``row`` passes most beyond the mean of all rows; None if none.

    The margin of a capability is ``row``'s passes on its tasks minus the sum over those
    tasks of the share of the rows evaluated on the task that pass it (with a complete
    matrix: minus the mean row's passes). A cell never evaluated is not a fail.

    Args:
        solved: Bool array ``(n_experts, n_tasks)``, the experts' skill matrix.
        capabilities: Capability label of each task (column).
        row: The expert whose niche is wanted.
        known: Bool array like ``solved``, True where evaluated; None means all.
    """
    known = np.ones(solved.shape, dtype=bool) if known is None else known
    rates = np.nan_to_num(pass_rates(solved, known, range(solved.shape[0])))
    best: tuple[float, int, str] | None = None
    labels = np.asarray(capabilities, dtype=object)
    for label in sorted(set(capabilities)):
        columns = labels == label
        own = int(solved[row, columns].sum())
        if own == 0:
            continue
        margin = own - float(rates[columns].sum())
        key = (margin, own, label)
        if best is None or key[:2] > best[:2]:
            best = key
    return None if best is None else best[2]


register(Specialize.name, Specialize)
