"""Optional human review of admitted tasks: a LangGraph interrupt the user answers.

The candidates of one micro-batch are saved to ``review/pending.json`` before the
interrupt, because LangGraph re-runs the whole node on resume: the re-run finds them
there instead of asking the scientist again, so the person decides on exactly what they
were shown. The answer (from Studio or ``acdc run``) is a mapping::

    {"approve": [ids], "reject": [ids], "edit": {id: task JSON}}

where ids not mentioned are approved; ``true``/``null`` approves all, ``false`` rejects all.
An edited task is verified again (``agents/verify.py``) before it is admitted: the
candidate passed verification as the scientist wrote it, not as the person changed it.
"""

from pathlib import Path
from typing import Any

from langgraph.types import interrupt
from pydantic import ValidationError

from acdc import atomic, safe_files
from acdc.agents.verify import verify_task
from acdc.rundir import RunDir
from acdc.tasks import Task

MAX_PENDING_BYTES = 64 * safe_files.MAX_JSON_BYTES
"""A micro-batch of candidates, each within a task file's cap."""


def pending_path(run_root: Path) -> Path:
    """Where the candidates awaiting a decision are kept."""
    return RunDir(run_root, read_only=True).review_pending_file


def load_pending(run_root: Path) -> list[Task] | None:
    """Candidates saved before an interrupt, if a review is under way."""
    path = pending_path(run_root)
    if not path.exists():
        return None
    saved = safe_files.load_json(path, limit=MAX_PENDING_BYTES, what="review file")
    return [Task.model_validate(t) for t in saved]


def review(run_root: Path, tasks: list[Task]) -> tuple[list[Task], dict[str, str]]:
    """Ask a person about ``tasks``; returns (tasks to admit, rejected id -> reason)."""
    if not tasks:
        return [], {}
    atomic.write_json(pending_path(run_root), [t.model_dump(mode="json") for t in tasks])
    answer = interrupt(
        {
            "kind": "task_review",
            "instructions": (
                "Answer with {'approve': [ids], 'reject': [ids], 'edit': {id: task}}; "
                "ids not mentioned are approved."
            ),
            "candidates": [t.model_dump(mode="json") for t in tasks],
        }
    )
    admitted, rejected = apply_decision(tasks, answer)
    pending_path(run_root).unlink(missing_ok=True)
    return admitted, rejected


def apply_decision(tasks: list[Task], answer: Any) -> tuple[list[Task], dict[str, str]]:
    """Turn a person's answer into admitted tasks and rejections with reasons."""
    if answer is None or answer is True:
        return list(tasks), {}
    if answer is False:
        return [], {t.id: "rejected by the reviewer" for t in tasks}
    if not isinstance(answer, dict):
        raise ValueError(f"a review answer must be a mapping or true/false, got {answer!r}")
    rejected_ids = set(answer.get("reject") or [])
    edits: dict[str, Any] = answer.get("edit") or {}
    known = {t.id for t in tasks}
    unknown = (rejected_ids | set(edits) | set(answer.get("approve") or [])) - known
    if unknown:
        raise ValueError(f"the review names unknown task ids: {sorted(unknown)}")
    admitted: list[Task] = []
    rejected: dict[str, str] = {}
    for task in tasks:
        if task.id in rejected_ids:
            rejected[task.id] = "rejected by the reviewer"
        elif task.id in edits:
            try:
                edited = {**task.model_dump(mode="json"), **edits[task.id], "id": task.id}
                revised = Task.model_validate(edited)
            except ValidationError as err:
                rejected[task.id] = f"the reviewer's edit is not a valid task: {err}"[:500]
                continue
            verification = verify_task(revised)  # an edit can break what was verified
            if verification.ok:
                admitted.append(revised)
            else:
                rejected[task.id] = f"the reviewer's edit fails verification: {verification.reason}"
        else:
            admitted.append(task)
    return admitted, rejected
