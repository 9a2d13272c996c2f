"""A run's folder: config and prompts as used, evaluation records, archives, metrics.

Layout of ``<runs_dir>/<run_id>/``::

    config.yaml          the Context as used (rewritten on every start or resume)
    prompts/             the exact prompt files used, one per role action
    experts/             adapters + metadata (population.experts)
    tasks/, pool.json    task bodies and the pool's state (acdc.taskpool)
    evaluations.jsonl    append-only, keyed (expert, task, instance) records
    archive/gen-NNN.json survivors, scores and fitness after each generation
    metrics.jsonl        one line per phase and per generation
    summary.md           human-readable state of the run
    checkpoints.sqlite   LangGraph checkpoints (the CLI's default checkpointer)
    STOP                 create this file to stop gracefully after the current generation

Everything but the two JSONL logs is written whole and atomically; the logs are
append-only with one fsync per record, and a torn last line left by a killed process is
cut off when the log is opened again.
"""

import hashlib
import json
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from acdc import atomic, safe_files
from acdc.context import ConfigError, Context
from acdc.types import ExpertId, TaskId

EvalKey = tuple[ExpertId, TaskId, str]
"""(expert id, task id, instance id): what one evaluation record answers."""


class EvalRecord(BaseModel):
    """One expert's answer to one task instance, and its grade."""

    expert_id: ExpertId
    task_id: TaskId
    instance_id: str
    score: float
    response: str = ""
    grader: str = ""
    reasoning: str = ""
    error: str = ""
    """Why the item could not be graded (it then scores 0 and is never retried)."""
    tokens: int = 0
    judge_tokens: int = 0
    judge_seconds: float = 0.0
    seconds: float = 0.0

    @property
    def key(self) -> EvalKey:
        """The record's key in the store."""
        return (self.expert_id, self.task_id, self.instance_id)


def _open_log(path: Path, repair: bool) -> list[str]:
    """Lines of a JSONL log, without a torn last line (a writer killed mid-write).

    The torn line is cut off the file when ``repair``, else only skipped: a reader must
    not change a live run's file.
    """
    if not path.exists():
        return []
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        keep = data.rfind(b"\n") + 1
        if repair:
            with path.open("r+b") as handle:
                handle.truncate(keep)
                os.fsync(handle.fileno())
        data = data[:keep]
    return [line for line in data.decode().splitlines() if line.strip()]


class JsonlLog:
    """Append-only JSONL file, safe against a kill between two records."""

    def __init__(self, path: Path, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.lines = _open_log(path, repair=not read_only)
        self._lock = threading.Lock()

    def append(self, obj: dict[str, Any]) -> None:
        """Write one record and fsync it.

        Raises:
            PermissionError: The log was opened read-only.
        """
        if self.read_only:
            raise PermissionError(f"{self.path} was opened read-only")
        line = json.dumps(obj, sort_keys=True)
        with self._lock, self.path.open("a") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.lines.append(line)

    def records(self) -> list[dict[str, Any]]:
        """Every record, oldest first."""
        return [json.loads(line) for line in self.lines]


class EvaluationStore:
    """Evaluation records keyed by (expert, task, instance); each key is written once.

    ``read_only`` is for readers (reports, task forces) that may open a live run's store.
    """

    def __init__(self, path: Path, read_only: bool = False) -> None:
        self._log = JsonlLog(path, read_only)
        self._records: dict[EvalKey, EvalRecord] = {}
        for raw in self._log.records():
            record = EvalRecord.model_validate(raw)
            self._records.setdefault(record.key, record)

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, key: object) -> bool:
        return key in self._records

    def add(self, record: EvalRecord) -> bool:
        """Append ``record`` unless its key is already stored; True if written."""
        if record.key in self._records:
            return False
        self._log.append(record.model_dump())
        self._records[record.key] = record
        return True

    def missing(self, keys: Iterable[EvalKey]) -> list[EvalKey]:
        """The keys not evaluated yet, in the given order."""
        return [key for key in keys if key not in self._records]

    def mean_scores(
        self, experts: Sequence[ExpertId], tasks: Mapping[TaskId, Sequence[str]]
    ) -> dict[tuple[ExpertId, TaskId], float]:
        """Mean instance score of each (expert, task) whose instances are all evaluated."""
        means: dict[tuple[ExpertId, TaskId], float] = {}
        for expert in experts:
            for task_id, instances in tasks.items():
                found = [self._records.get((expert, task_id, i)) for i in instances]
                if instances and all(r is not None for r in found):
                    means[(expert, task_id)] = sum(r.score for r in found if r) / len(found)
        return means

    def records(self) -> list[EvalRecord]:
        """Every record, in the order written."""
        return list(self._records.values())


@dataclass
class RunDir:
    """Paths and small writers of one run's folder."""

    root: Path
    metrics: JsonlLog = field(init=False)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        atomic.remove_stale_staging(self.root)
        self.metrics = JsonlLog(self.root / "metrics.jsonl")

    @property
    def checkpoints(self) -> Path:
        """SQLite file of the run's LangGraph checkpoints."""
        return self.root / "checkpoints.sqlite"

    @property
    def stop_file(self) -> Path:
        """Touch this file to end the run after the current generation."""
        return self.root / "STOP"

    def evaluations(self) -> EvaluationStore:
        """The run's evaluation store (re-read from disk)."""
        return EvaluationStore(self.root / "evaluations.jsonl")

    def record_config(self, ctx: Context) -> None:
        """Write the configuration as used, so a resume or a reader sees the same values."""
        text = yaml.safe_dump(ctx.to_dict(), sort_keys=True)
        atomic.write_text(self.root / "config.yaml", text)

    def record_prompts(self, prompts: dict[str, Path]) -> dict[str, str]:
        """Copy the exact prompt files used into ``prompts/``; returns name -> sha256."""
        digests: dict[str, str] = {}
        for name, path in sorted(prompts.items()):
            data = path.read_bytes()
            atomic.write_bytes(self.root / "prompts" / f"{name}.txt", data)
            digests[name] = hashlib.sha256(data).hexdigest()
        return digests

    def log(self, event: str, **values: Any) -> None:
        """Append one metrics record with a wall-clock timestamp."""
        self.metrics.append({"event": event, "time": round(time.time(), 3), **values})

    def write_archive(self, generation: int, archive: dict[str, Any]) -> None:
        """Store the archive after ``generation``."""
        atomic.write_json(self.root / "archive" / f"gen-{generation:03d}.json", archive)

    def read_archive(self, generation: int) -> dict[str, Any] | None:
        """The archive stored after ``generation``, if any."""
        path = self.root / "archive" / f"gen-{generation:03d}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def write_summary(self, text: str) -> None:
        """Replace the human-readable summary."""
        atomic.write_text(self.root / "summary.md", text)


def load_run_config(run_dir: Path) -> dict[str, Any]:
    """The settings recorded by an earlier start of the run in ``run_dir``.

    Read with the caps of :mod:`acdc.safe_files`: a corrupt or hostile file is one
    error line naming it, and nothing in the run folder is touched.

    Raises:
        FileNotFoundError: ``run_dir`` holds no config.yaml.
        ConfigError: The file is unreadable, not YAML, over a cap, or not a mapping.
    """
    path = run_dir / "config.yaml"
    if not path.exists():
        raise FileNotFoundError(f"{run_dir} holds no config.yaml: is it an acdc run folder?")
    try:
        loaded = safe_files.load_yaml(path, "recorded config")
    except safe_files.InputFileError as err:
        raise ConfigError(f"{err} (the run's recorded settings)", "config") from None
    if not isinstance(loaded, dict) or not all(isinstance(k, str) for k in loaded):
        raise ConfigError(
            f"{path}: the run's recorded settings are not a mapping of field: value "
            f"(got {type(loaded).__name__})",
            "config",
        )
    return loaded
