"""TIES, DARE-TIES and SLERP crossover through mergekit, extracted back to an adapter.

mergekit merges full weights, so each parent is given as ``base+adapter``; the merged
model is then turned back into a LoRA with ``mergekit-extract-lora`` (embeddings, norms
and lm_head excluded, so vLLM can hot-load it). This costs a full merge per child (tens
of seconds for a 135M model on CPU), against well under a second for ``linear``.
"""

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
import yaml

from acdc.population.base import BaseWeights
from acdc.population.lora import LoraDelta, read_adapter
from acdc.population.mergekit_cli import extract_lora, run_tool
from acdc.population.operators.registry import OperatorKind, Parent, register

MergeMethod = Literal["ties", "dare_ties", "slerp"]


@dataclass(frozen=True)
class MergekitCrossover:
    """A mergekit merge method applied to ``base+adapter`` parents."""

    kind: ClassVar[OperatorKind] = "crossover"
    paper: ClassVar[str] = "https://arxiv.org/abs/2403.13257"

    method: MergeMethod = "ties"
    density: float = 0.5
    t: float = 0.5
    extract_rank: int = 64

    @property
    def name(self) -> str:
        """The registered name is the merge method."""
        return self.method

    def apply(
        self, *, parents: Sequence[Parent], base: BaseWeights, generator: torch.Generator
    ) -> LoraDelta:
        """Merge the parents with mergekit and extract the result as LoRA factors."""
        if self.method == "slerp" and len(parents) != 2:
            raise ValueError(f"slerp merges exactly two parents, got {len(parents)}")
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        with tempfile.TemporaryDirectory(prefix="acdc-mergekit-") as tmp:
            work = Path(tmp)
            config = work / "merge.yaml"
            config.write_text(yaml.safe_dump(self.config(parents, base.folder)))
            run_tool(
                "mergekit-yaml",
                str(config),
                str(work / "merged"),
                "--lora-merge-cache",
                str(work / "lora-cache"),
                "--random-seed",
                str(seed),
                "--quiet",
            )
            extract_lora(work / "merged", base.folder, work / "adapter", self.extract_rank)
            return read_adapter(work / "adapter")

    def config(self, parents: Sequence[Parent], base_dir: Path) -> dict[str, Any]:
        """The mergekit YAML configuration for these parents."""
        refs = [
            str(base_dir) if p.adapter_dir is None else f"{base_dir}+{p.adapter_dir}"
            for p in parents
        ]
        if self.method == "slerp":
            return {
                "merge_method": "slerp",
                "base_model": refs[0],
                "models": [{"model": ref} for ref in refs],
                "parameters": {"t": self.t},
                "dtype": "float32",
            }
        params: dict[str, float] = {"weight": 1.0, "density": self.density}
        return {
            "merge_method": self.method,
            "base_model": str(base_dir),
            "models": [{"model": ref, "parameters": params} for ref in refs],
            "parameters": {"normalize": True},
            "dtype": "float32",
        }


for _method in ("ties", "dare_ties", "slerp"):
    register(_method, partial(MergekitCrossover, method=_method))
