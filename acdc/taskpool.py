"""The run's task pool on disk: task bodies in ``tasks/``, the pool's state in ``pool.json``.

The pool, not the graph state, is the source of truth for which tasks are active: each
admission or retirement rewrites ``pool.json`` atomically right away, so a run killed in
the middle of growing the pool keeps every task it admitted and never counts one twice.
"""

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acdc import atomic
from acdc.rundir import RunDir
from acdc.tasks import Task, load_task, save_task
from acdc.types import TaskId


@dataclass
class TaskPool:
    """Active tasks in admission order, plus what was retired or rejected and why."""

    root: Path
    active: list[TaskId] = field(default_factory=list)
    retired: dict[TaskId, str] = field(default_factory=dict)
    rejected: Counter[str] = field(default_factory=Counter)
    """Rejected candidates counted by gate (contamination, duplicate, ...)."""
    replaced: dict[TaskId, TaskId] = field(default_factory=dict)
    """Harder or easier variant -> the parent it replaced in the active pool."""
    _tasks: dict[TaskId, Task] = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, run_dir: Path) -> "TaskPool":
        """Load the pool of ``run_dir`` (empty if the run has none yet)."""
        pool = cls(root=run_dir)
        path = pool.folder.pool_file
        if path.exists():
            state: dict[str, Any] = json.loads(path.read_text())
            pool.active = list(state["active"])
            pool.retired = dict(state["retired"])
            pool.rejected = Counter(state["rejected"])
            pool.replaced = dict(state.get("replaced", {}))
        return pool

    @property
    def folder(self) -> RunDir:
        """The run folder's paths (read-only view: the pool only writes its own files)."""
        return RunDir(self.root, read_only=True)

    @property
    def tasks_dir(self) -> Path:
        """Folder of the task bodies, one JSON file per task ever admitted."""
        return self.folder.tasks_dir

    def get(self, task_id: TaskId) -> Task:
        """A task body (active or retired)."""
        if task_id not in self._tasks:
            self._tasks[task_id] = load_task(self.folder.task_file(task_id))
        return self._tasks[task_id]

    def active_tasks(self) -> list[Task]:
        """Bodies of the active tasks, in admission order."""
        return [self.get(task_id) for task_id in self.active]

    def ever(self) -> list[TaskId]:
        """Every task ever admitted: active first, then retired."""
        return self.active + [t for t in self.retired if t not in self.active]

    def admit(self, task: Task) -> None:
        """Add ``task`` to the active pool (idempotent)."""
        if task.id in self.active:
            return
        save_task(task, self.folder.task_file(task.id))
        self._tasks[task.id] = task
        self.active.append(task.id)
        self.retired.pop(task.id, None)
        self._save()

    def retire(self, task_id: TaskId, reason: str) -> None:
        """Move a task out of the active pool, keeping its body and the reason."""
        if task_id in self.active:
            self.active.remove(task_id)
            self.retired[task_id] = reason
            self._save()

    def lineage(self, task: Task) -> list[Task]:
        """``task``'s parent, then the parent's ancestors, as far as the run holds them."""
        chain: list[Task] = []
        parent = task.parent_id
        while parent and parent not in {t.id for t in chain} and self.has(parent):
            chain.append(self.get(parent))
            parent = chain[-1].parent_id
        return chain

    def has(self, task_id: TaskId) -> bool:
        """Whether the run holds the body of ``task_id`` (active or retired)."""
        return task_id in self._tasks or self.folder.task_file(task_id).is_file()

    def replace(self, parent: TaskId, variant: Task) -> None:
        """Admit a harder/easier ``variant`` in place of ``parent`` (the reference's rule)."""
        self.admit(variant)
        if parent in self.active:
            self.replaced[variant.id] = parent
            self.retire(parent, f"replaced: by its {variant.adaptation} variant {variant.id}")

    def retire_impossible(self, task_id: TaskId, reason: str) -> TaskId | None:
        """Retire an impossible task; a variant that replaced its parent gives the parent back.

        Returns the parent put back into the active pool, if any.
        """
        self.retire(task_id, reason)
        parent = self.replaced.pop(task_id, None)
        if parent is None or parent in self.active:
            self._save()
            return None
        self.admit(self.get(parent))
        return parent

    def reject(self, gate: str) -> None:
        """Count a candidate refused at ``gate``."""
        self.rejected[gate] += 1
        self._save()

    def _save(self) -> None:
        atomic.write_json(
            self.folder.pool_file,
            {
                "active": self.active,
                "retired": self.retired,
                "rejected": dict(self.rejected),
                "replaced": self.replaced,
            },
        )
