"""The task index: every task ever accepted, embedded, for novelty checks and context."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from chromadb import QueryResult, Where

from acdc.tasks import Task
from acdc.types import TaskId
from acdc.vectorstore.store import ChromaStore


def task_text(task: Task) -> str:
    """What represents a task in embedding space: its description and a first example.

    Used both to index and to query, so a candidate task and a stored one are compared
    on the same kind of text.
    """
    return f"{task.description}\n\n{task.instances[0].instruction}"


@dataclass(frozen=True)
class IndexedTask:
    """A task as stored: its metadata and the text that was embedded."""

    task_id: TaskId
    metadata: dict[str, Any]
    document: str


@dataclass(frozen=True)
class Neighbour(IndexedTask):
    """A stored task near a query; ``distance`` is ChromaDB's cosine distance."""

    distance: float

    @property
    def similarity(self) -> float:
        """Cosine similarity, ``1 - distance``: the scale the novelty threshold uses."""
        return 1.0 - self.distance


class TaskIndex(ChromaStore):
    """Tasks in a ChromaDB collection (default ``tasks``), keyed by task id.

    Metadata per task: ``id``, ``name``, ``capability``, ``subject``, ``generation``,
    ``status`` and ``parent_id`` (``""`` for none, as ChromaDB metadata cannot be null),
    so queries can filter, e.g. ``where={"status": "active"}``. Construction as for
    :class:`ChromaStore`.
    """

    default_collection = "tasks"

    def upsert(self, task: Task, status: str = "active") -> None:
        """Add ``task`` or replace its entry (text and metadata); idempotent by task id."""
        if not status:
            raise ValueError("status must be a non-empty string")
        metadata: dict[str, str | int] = {
            "id": task.id,
            "name": task.name,
            "capability": task.capability,
            "subject": task.subject,
            "generation": task.generation,
            "status": status,
            "parent_id": task.parent_id or "",
        }
        self._collection.upsert(ids=[task.id], documents=[task_text(task)], metadatas=[metadata])

    def set_status(self, task_id: TaskId, status: str) -> None:
        """Change a task's status only; its vector is kept, so nothing is re-embedded.

        Raises:
            KeyError: ``task_id`` is not in the index.
        """
        if not status:
            raise ValueError("status must be a non-empty string")
        if self.get(task_id) is None:
            raise KeyError(f"task {task_id!r} is not in the {self.name!r} index")
        self._collection.update(ids=[task_id], metadatas=[{"status": status}])

    def get(self, task_id: TaskId) -> IndexedTask | None:
        """The stored entry of ``task_id``, or None."""
        found = self._collection.get(ids=[task_id], include=["metadatas", "documents"])
        if not found["ids"]:
            return None
        return IndexedTask(
            task_id=found["ids"][0],
            metadata=dict((found["metadatas"] or [{}])[0] or {}),
            document=(found["documents"] or [""])[0] or "",
        )

    def embeddings(self, task_ids: Sequence[TaskId]) -> np.ndarray:
        """The stored vectors of ``task_ids`` that are in the index, in that order (n, dim)."""
        if not task_ids:
            return np.zeros((0, 0))
        found = self._collection.get(ids=list(task_ids), include=["embeddings"])
        stored = found["embeddings"]
        vectors = dict(zip(found["ids"], [] if stored is None else list(stored), strict=True))
        rows = [np.asarray(vectors[t], dtype=np.float64) for t in task_ids if t in vectors]
        return np.stack(rows) if rows else np.zeros((0, 0))

    def ids(self, status: str | None = None) -> list[TaskId]:
        """Ids of all tasks, or of those with ``status``, sorted."""
        found = self._collection.get(where={"status": status} if status else None, include=[])
        return sorted(found["ids"])

    def nearest(self, text: str, k: int, where: Where | None = None) -> list[Neighbour]:
        """The ``k`` stored tasks closest to ``text``, nearest first; [] when none match.

        Args:
            text: Query text; use :func:`task_text` for a task.
            k: How many neighbours at most.
            where: A ChromaDB metadata filter, e.g. ``{"status": "active"}``.
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        result = self._collection.query(
            query_texts=[text],
            n_results=k,
            where=where,
            include=["metadatas", "documents", "distances"],
        )
        return _neighbours(result)

    def nearest_to_task(self, task: Task, k: int, where: Where | None = None) -> list[Neighbour]:
        """The ``k`` stored tasks closest to ``task``, never ``task`` itself."""
        not_self = cast(Where, {"id": {"$ne": task.id}})  # mypy cannot narrow the literal
        return self.nearest(task_text(task), k, {"$and": [not_self, where]} if where else not_self)


def _neighbours(result: QueryResult) -> list[Neighbour]:
    """Unpack the first (only) query of a ChromaDB result."""
    ids = result["ids"][0]
    distances = (result["distances"] or [[]])[0]
    metadatas = (result["metadatas"] or [[]])[0]
    documents = (result["documents"] or [[]])[0]
    return [
        Neighbour(
            task_id=task_id,
            metadata=dict(metadata or {}),
            document=document or "",
            distance=float(distance),
        )
        for task_id, distance, metadata, document in zip(
            ids, distances, metadatas, documents, strict=True
        )
    ]
