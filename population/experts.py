"""The expert store: one immutable folder per expert, adapter files plus metadata.

Layout: ``<run>/experts/<expert_id>/{adapter_config.json, adapter_model.safetensors,
expert.json}``. A folder appears in one rename once complete, is never changed after,
and its weights are checked against the recorded sha256 when read back. The base model
is an expert too (``is_base``): it has metadata but no adapter files.
"""

import datetime as dt
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, Field, ValidationError

from acdc import atomic
from acdc.population.lora import (
    ADAPTER_WEIGHTS,
    AdapterError,
    LoraDelta,
    read_adapter,
    write_adapter,
)
from acdc.types import ExpertId

METADATA = "expert.json"
_VALID_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class ExpertRecord(BaseModel):
    """Metadata of one expert: where it came from and which weights it has."""

    id: ExpertId
    parents: list[ExpertId] = Field(default_factory=list)
    operators: list[dict[str, Any]] = Field(
        default_factory=list, description="Operators applied, in order, with their parameters."
    )
    seed: int | None = None
    generation: int = 0
    rank: int = 0
    checksum: str = ""
    base_model: str = ""
    is_base: bool = False
    created_at: str = ""
    rank_cap_error: float | None = Field(
        default=None,
        description="Relative Frobenius error of recompressing the child to the rank cap.",
    )
    training: dict[str, Any] | None = Field(
        default=None,
        description="What a training operator did (specialize: niche, examples, steps, loss).",
    )


class CorruptExpertError(AdapterError):
    """An expert's files are missing or do not match their recorded checksum."""


class ExpertStore:
    """Experts of one run under ``root`` (usually ``<run>/experts``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        atomic.remove_stale_staging(root)

    def folder(self, expert_id: ExpertId) -> Path:
        """Folder of an expert (its adapter folder, which vLLM loads)."""
        return self.root / expert_id

    def exists(self, expert_id: ExpertId) -> bool:
        """Whether the expert was saved completely."""
        return (self.folder(expert_id) / METADATA).is_file()

    def ids(self) -> list[ExpertId]:
        """Ids of every saved expert, sorted."""
        return sorted(p.parent.name for p in self.root.glob(f"*/{METADATA}"))

    def add_base(self, expert_id: ExpertId, base_model: str) -> ExpertRecord:
        """Register the base model itself as an expert (no adapter); idempotent."""
        if self.exists(expert_id):
            return self.get(expert_id)
        record = ExpertRecord(id=expert_id, base_model=base_model, is_base=True, created_at=_now())
        with atomic.staged_dir(self.folder(expert_id)) as staging:
            atomic.write_json(staging / METADATA, record.model_dump())
        return record

    def save(self, record: ExpertRecord, delta: LoraDelta, dtype: torch.dtype) -> ExpertRecord:
        """Write a new expert atomically; an existing id is returned untouched."""
        _check_id(record.id)
        if self.exists(record.id):
            return self.get(record.id)
        with atomic.staged_dir(self.folder(record.id)) as staging:
            checksum = write_adapter(staging, delta, base_model=record.base_model, dtype=dtype)
            rank = max(a.shape[0] for a, _ in delta.values())
            record = record.model_copy(
                update={"checksum": checksum, "rank": max(rank, 1), "created_at": _now()}
            )
            atomic.write_json(staging / METADATA, record.model_dump())
        return record

    def get(self, expert_id: ExpertId) -> ExpertRecord:
        """Metadata of an expert; a clear error if it is unknown or unreadable."""
        path = self.folder(expert_id) / METADATA
        if not path.is_file():
            known = ", ".join(self.ids()[:20]) or "none"
            raise KeyError(f"no expert {expert_id!r} in {self.root} (known: {known})")
        try:
            return ExpertRecord.model_validate(json.loads(path.read_text()))
        except (ValueError, ValidationError) as err:
            raise CorruptExpertError(f"expert {expert_id}: unreadable {METADATA}: {err}") from err

    def adapter_dir(self, expert_id: ExpertId) -> Path | None:
        """The verified adapter folder of an expert, or None for the base model."""
        record = self.get(expert_id)
        if record.is_base:
            return None
        self.verify(record)
        return self.folder(expert_id)

    def verify(self, record: ExpertRecord) -> None:
        """Fail with CorruptExpertError unless the weights match the recorded checksum."""
        weights = self.folder(record.id) / ADAPTER_WEIGHTS
        if not weights.is_file():
            raise CorruptExpertError(f"expert {record.id}: {ADAPTER_WEIGHTS} is missing")
        digest = hashlib.sha256(weights.read_bytes()).hexdigest()
        if digest != record.checksum:
            raise CorruptExpertError(
                f"expert {record.id}: weights checksum {digest[:12]} does not match the "
                f"recorded {record.checksum[:12]}; the adapter file was changed or damaged"
            )

    def load(self, expert_id: ExpertId) -> LoraDelta:
        """The expert's verified LoRA factors (empty for the base model)."""
        folder = self.adapter_dir(expert_id)
        return {} if folder is None else read_adapter(folder)


def _check_id(expert_id: str) -> None:
    if not _VALID_ID.match(expert_id):
        raise ValueError(
            f"invalid expert id {expert_id!r}: use letters, digits, '.', '_' and '-' (max 100)"
        )


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
