"""Bootstrap a run's population: the base model, the expert store and the seed experts."""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acdc.context import Context
from acdc.population.base import BaseWeights
from acdc.population.breeding import DTYPES, Breeder, cap_rank
from acdc.population.experts import ExpertRecord, ExpertStore
from acdc.population.lora import read_adapter
from acdc.population.operators import registry
from acdc.population.seed import check_adapter_fits, extract_finetune, prepare_base
from acdc.population.server import serves_on_this_cpu
from acdc.rundir import RunDir
from acdc.torch_threads import apply_torch_threads
from acdc.types import ExpertId

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Population:
    """The shared base model and the run's experts on disk."""

    base_dir: Path
    base: BaseWeights
    store: ExpertStore
    seed_ids: list[ExpertId]


def bootstrap(ctx: Context) -> Population:
    """Prepare the base model and register the seed experts of ``ctx`` (idempotent).

    Also sets the process's torch thread count (``torch_threads``; automatic: one thread
    beside a CPU server) before any torch work: every process that breeds, fine-tunes or
    embeds prepares its population first.
    """
    apply_torch_threads(ctx.torch_threads, serves_on_this_cpu(ctx))
    cache = Path(ctx.cache_dir)
    base_dir = prepare_base(ctx.base_model or None, cache)
    base = BaseWeights(base_dir)
    store = ExpertStore(RunDir(ctx.run_dir, read_only=True).experts_dir)
    store.add_base(ctx.served_model_name, base.name)
    seed_ids = [ctx.served_model_name]
    sources = [Path(p).expanduser() for p in ctx.seed_adapters]
    sources += [
        extract_finetune(Path(p).expanduser(), base_dir, cache, ctx.lora_rank)
        for p in ctx.seed_finetunes
    ]
    for index, folder in enumerate(sources):
        seed_ids.append(_add_seed_adapter(ctx, store, base, folder, index))
    log.info("population ready: base %s, seeds %s", base_dir, ", ".join(seed_ids))
    return Population(base_dir=base_dir, base=base, store=store, seed_ids=seed_ids)


def _add_seed_adapter(
    ctx: Context, store: ExpertStore, base: BaseWeights, folder: Path, index: int
) -> ExpertId:
    if not folder.is_dir():
        raise FileNotFoundError(f"seed adapter {folder} does not exist or is not a folder")
    check_adapter_fits(folder, base.folder)
    record = ExpertRecord(
        id=f"seed{index}-{folder.name}"[:60],
        operators=[{"name": "seed", "params": {"source": str(folder.resolve())}}],
        base_model=str(base.folder.resolve()),
    )
    if not store.exists(record.id):
        delta, _ = cap_rank(read_adapter(folder), base, ctx.lora_rank)
        store.save(record, delta, DTYPES[ctx.adapter_dtype])
    return record.id


def make_breeder(ctx: Context, population: Population, crossover: str | None = None) -> Breeder:
    """The breeder configured by ``ctx`` (optionally with another crossover operator)."""
    name = crossover or ctx.crossover
    params = {"weight_std": ctx.crossover_weight_std} if name == "linear" else {}
    mutation = registry.create(ctx.mutation, "mutation", **mutation_params(ctx, ctx.mutation))
    return Breeder(
        store=population.store,
        base=population.base,
        crossover=registry.create(name, "crossover", **params),
        mutation=mutation,
        rank_cap=ctx.lora_rank,
        dtype=DTYPES[ctx.adapter_dtype],
    )


def mutation_params(ctx: Context, name: str) -> dict[str, Any]:
    """The Context settings of mutation ``name`` (specialize's examples come per child)."""
    if name == "specialize":
        return {
            "steps": ctx.specialize_steps,
            "learning_rate": ctx.specialize_learning_rate,
            "rank": ctx.specialize_rank,
            "batch_size": ctx.specialize_batch_size,
        }
    return {
        "sigma": ctx.mutation_sigma,
        "keep_rank": ctx.mutation_keep_rank,
        "svd": ctx.mutation_svd,
    }
