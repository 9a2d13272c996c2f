"""A run's records: append-only JSONL logs and the keyed evaluation store.

A log is append-only with one fsync per record, and a torn last line left by a killed
process is cut off when the log is opened again for writing (only skipped when opened
read-only, by a reader of a live run). The evaluation store is one such log, keyed by
(expert, task, instance), so a resumed run never redoes or double-counts an answer.
Where each file lives in the run folder is :class:`acdc.rundir.RunDir`'s business.
"""

import json
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

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
