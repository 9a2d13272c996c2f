"""Tasks and their instances: the pydantic data model, validation, and JSON files."""

import ast
import math
import re
from fractions import Fraction
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from acdc import atomic, safe_files

Grading = Literal["exact", "choice", "numeric", "regex", "rubric", "python"]
Adaptation = Literal["seed", "create", "harder", "easier", "novel"]
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
"""Option letters: ``options[i]`` is answered by ``LETTERS[i]``."""

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"  # ids name files and vector-store entries
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


class TaskError(ValueError):
    """A task file is missing, unreadable or invalid; the message names the file."""


def parse_reference_number(text: str) -> float:
    """Parse a numeric reference: ``12``, ``-3.5``, ``1e3`` or a fraction ``2/3``.

    References are written by the task author, so this is strict; the numeric grader's
    lenient parsing of subject answers lives with the graders.

    Raises:
        ValueError: ``text`` is not one number or fraction.
    """
    parts = [p.strip() for p in text.strip().split("/")]
    if len(parts) > 2 or not all(_NUMBER.fullmatch(p) for p in parts):
        raise ValueError(f"{text!r} is not a number (like 12, -3.5, 1e3 or 2/3)")
    if len(parts) == 2 and Fraction(parts[1]) == 0:
        raise ValueError(f"{text!r} divides by zero")
    value = Fraction(parts[0]) / Fraction(parts[1]) if len(parts) == 2 else Fraction(parts[0])
    return float(value)


class TaskInstance(BaseModel):
    """One concrete question of a task."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=_ID, description="Unique within the task.")
    instruction: str = Field(min_length=1, description="What the subject is asked.")
    reference: str | None = Field(default=None, description="The reference answer, if any.")
    options: list[str] | None = Field(
        default=None, description="Answer options of a choice task; letter A is options[0]."
    )
    wrong_answer: str | None = Field(
        default=None,
        description="A plausible wrong answer the grader must fail (checked at admission).",
    )


class Task(BaseModel):
    """A skill probe: 3-5 instances graded one way (DESIGN.md section 3)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=_ID)
    name: str = Field(min_length=1)
    description: str = Field(min_length=1)
    capability: str = Field(min_length=1, description="Short skill label.")
    subject: str = Field(min_length=1, description="Subject area.")
    difficulty: int = Field(ge=1, le=5)
    instances: list[TaskInstance] = Field(min_length=3, max_length=5)
    grading: Grading
    rubric: str = Field(default="", description="Grading guidance for the judge.")
    tolerance: float = Field(default=1e-6, ge=0.0, description="Numeric: abs or rel tolerance.")
    pattern: str | None = Field(default=None, description="Regex: matched by the grader.")
    score_code: str | None = Field(
        default=None,
        description="Python: source defining score(instance: dict, submission: str) -> float.",
    )
    parent_id: str | None = None
    adaptation: Adaptation | None = None
    generation: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _check(self) -> Self:
        problems = _problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _problems(task: Task) -> list[str]:
    """Everything wrong with ``task`` beyond field types, in one list for one message."""
    problems: list[str] = []
    ids = [inst.id for inst in task.instances]
    if len(set(ids)) != len(ids):
        problems.append(f"instance ids must be unique, got {ids}")
    if not math.isfinite(task.tolerance):
        problems.append("tolerance must be a finite number")
    if task.parent_id is not None and task.parent_id == task.id:
        problems.append("a task cannot be its own parent")
    if task.adaptation in ("harder", "easier") and task.parent_id is None:
        problems.append(f"a {task.adaptation!r} adaptation needs a parent_id")
    if task.adaptation == "seed" and task.parent_id is not None:
        problems.append("a seed task has no parent_id")
    for field, used_by in (("pattern", "regex"), ("score_code", "python")):
        if getattr(task, field) is not None and task.grading != used_by:
            problems.append(f"{field} is only used by {used_by} grading, not {task.grading}")
    for inst in task.instances:
        if inst.options is not None and task.grading != "choice":
            problems.append(f"instance {inst.id}: options are only used by choice grading")
        problems += [f"instance {inst.id}: {p}" for p in _instance_problems(task, inst)]
    if task.grading == "rubric" and not task.rubric.strip():
        problems.append("rubric grading needs a non-empty rubric")
    if task.grading == "regex":
        problems += _regex_problems(task)
    if task.grading == "python":
        problems += _code_problems(task.score_code)
    return problems


def _instance_problems(task: Task, inst: TaskInstance) -> list[str]:
    if task.grading in ("exact", "numeric", "choice") and not (inst.reference or "").strip():
        return [f"{task.grading} grading needs a reference answer"]
    if task.grading == "numeric":
        try:
            parse_reference_number(inst.reference or "")
        except ValueError as exc:
            return [f"numeric reference: {exc}"]
    if task.grading == "choice":
        options = inst.options or []
        if not 2 <= len(options) <= len(LETTERS):
            return [f"choice grading needs 2-{len(LETTERS)} options, got {len(options)}"]
        if any(not o.strip() for o in options) or len(set(options)) != len(options):
            return ["options must be non-empty and distinct"]
        letters = LETTERS[: len(options)]
        if inst.reference not in list(letters):  # a list: "AB" is in "ABCD" as a str
            return [f"choice reference must be one letter of {letters}, got {inst.reference!r}"]
    return []


def _regex_problems(task: Task) -> list[str]:
    if not task.pattern:
        return ["regex grading needs a pattern"]
    try:
        compiled = re.compile(task.pattern)
    except re.error as exc:
        return [f"pattern {task.pattern!r} does not compile: {exc}"]
    return [
        f"instance {inst.id}: reference {inst.reference!r} does not match the pattern"
        for inst in task.instances
        if inst.reference is not None and not compiled.fullmatch(inst.reference.strip())
    ]


def _code_problems(code: str | None) -> list[str]:
    """Check the score code parses and defines ``score``; never executes it."""
    if not code or not code.strip():
        return ["python grading needs score_code"]
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        return [f"score_code does not parse: {exc}"]
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "score":
            if len(node.args.posonlyargs) + len(node.args.args) >= 2 or node.args.vararg:
                return []
            return ["score_code's score() must take (instance, submission)"]
    return ["score_code must define a top-level function score(instance, submission)"]


def load_task(path: Path) -> Task:
    """Read and validate one task file.

    Raises:
        TaskError: The file is missing, over :data:`acdc.safe_files.MAX_JSON_BYTES`, not
            JSON (or nested too deeply), or not a valid task; names the file.
    """
    try:
        raw = safe_files.load_json(path, what="task file")
    except safe_files.InputFileError as exc:
        raise TaskError(str(exc)) from None
    try:
        return Task.model_validate(raw)
    except ValidationError as exc:
        raise TaskError(f"{path}: {exc}") from exc


def save_task(task: Task, path: Path) -> None:
    """Write ``task`` as JSON atomically, so a crash never leaves half a file."""
    atomic.write_json(Path(path), task.model_dump(mode="json"))


def load_tasks(folder: Path) -> list[Task]:
    """Load every ``*.json`` task in ``folder``, sorted by id.

    Raises:
        TaskError: A file is invalid, two files share a task id, or the folder is missing.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise TaskError(f"{folder}: not a folder of task files")
    seen: dict[str, Path] = {}
    tasks: list[Task] = []
    for path in sorted(folder.glob("*.json")):
        task = load_task(path)
        if task.id in seen:
            raise TaskError(f"{path}: task id {task.id!r} is also used by {seen[task.id]}")
        seen[task.id] = path
        tasks.append(task)
    return sorted(tasks, key=lambda t: t.id)


def seed_tasks_dir() -> Path:
    """The hand-written seed tasks shipped with the repository (``tasks/seed``)."""
    return Path(__file__).resolve().parents[1] / "tasks" / "seed"
