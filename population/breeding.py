"""One breeding step: crossover, then mutation, then SVD recompression to the rank cap.

The child's id is derived from its parents, operators and seed, so breeding is
reproducible and idempotent: the same inputs give the same id and the same bytes, and
a step re-run after a crash finds the child already saved.
"""

import hashlib
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from acdc.population.base import BaseWeights
from acdc.population.experts import ExpertRecord, ExpertStore
from acdc.population.lora import LoraDelta, recompress_with_loss
from acdc.population.operators import registry
from acdc.population.operators.registry import Crossover, Mutation, Parent, TrainedDelta
from acdc.types import ExpertId

log = logging.getLogger(__name__)

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


@dataclass(frozen=True)
class Breeder:
    """Everything a breeding step needs besides the parents and the seed."""

    store: ExpertStore
    base: BaseWeights
    crossover: Crossover
    mutation: Mutation | None
    rank_cap: int
    dtype: torch.dtype = torch.bfloat16

    def child_id(self, parents: Sequence[ExpertId], seed: int, generation: int) -> ExpertId:
        """Deterministic id: generation plus a hash of what makes the child."""
        recipe = {
            "parents": list(parents),
            "operators": self._operators(),
            "seed": seed,
            "rank_cap": self.rank_cap,
            "dtype": str(self.dtype),
        }
        digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()
        return f"g{generation:03d}-{digest[:10]}"

    def breed(self, parents: Sequence[ExpertId], *, seed: int, generation: int) -> ExpertRecord:
        """Make (or find) the child of ``parents`` with random ``seed``."""
        if not parents:
            raise ValueError("breeding needs at least one parent")
        child = self.child_id(parents, seed, generation)
        if self.store.exists(child):
            return self.store.get(child)
        started = time.perf_counter()
        generator = torch.Generator().manual_seed(seed)
        views = [Parent(p, self.store.adapter_dir(p)) for p in parents]
        delta = self.crossover.apply(parents=views, base=self.base, generator=generator)
        if self.mutation is not None:
            delta = self.mutation.apply(delta=delta, base=self.base, generator=generator)
        training = delta.training if isinstance(delta, TrainedDelta) else None
        delta, loss = cap_rank(delta, self.base, self.rank_cap)
        record = ExpertRecord(
            id=child,
            parents=list(parents),
            operators=self._operators(),
            seed=seed,
            generation=generation,
            base_model=str(self.base.folder.resolve()),
            rank_cap_error=round(loss, 6),
            training=training,
        )
        record = self.store.save(record, delta, self.dtype)
        log.info(
            "bred %s from %s in %.1f s", child, ", ".join(parents), time.perf_counter() - started
        )
        return record

    def _operators(self) -> list[dict[str, object]]:
        ops = [registry.describe(self.crossover)]
        if self.mutation is not None:
            ops.append(registry.describe(self.mutation))
        return ops


def cap_rank(delta: LoraDelta, base: BaseWeights, rank_cap: int) -> tuple[LoraDelta, float]:
    """Recompress every module to at most ``rank_cap``; modules absent get a zero rank-1 term.

    Every base target module is present in the result, so all experts adapt the same
    modules and vLLM sees one uniform adapter layout. Also returns the relative Frobenius
    error of the recompression over all modules, ``||D - D_cap|| / ||D||``: near 1 means
    the rank cap truncated most of what crossover and mutation made.
    """
    capped: LoraDelta = {}
    dropped = total = 0.0
    for module in base.modules:
        if module in delta:
            capped[module], (lost, whole) = recompress_with_loss(*delta[module], rank_cap)
            dropped, total = dropped + lost, total + whole
        else:
            out_features, in_features = base.shape(module) or (0, 0)
            capped[module] = (torch.zeros(1, in_features), torch.zeros(out_features, 1))
    return capped, math.sqrt(dropped / total) if total > 0 else 0.0
