"""Judge calibration: does the judge agree with people on labelled answers?

Rubric tasks are graded by the judge alone, so their scores are worth what the judge
is. Before a run trusts it, the judge grades labelled (question, reference, rubric,
response, label) pairs, by default the 40 of ``bench/data/judge_pairs.jsonl`` (half
right, half wrong answers). Its *agreement* is the share of pairs it grades as labelled
(pass = score >= 0.5; a pair it fails to grade counts as a disagreement), its
*false-pass rate* the share of wrong answers it passes. Passing everything agrees on
half the bundled pairs, so agreement below ``judge_min_agreement`` (0.75 by default)
means rubric grading is noise: the run then admits no rubric task and leaves existing
ones out of fitness, DNS and task forces, unless ``trust_judge`` overrides it.

At every start of a run (``graphs/phases.py``, ``record_run``) the judge is calibrated
(:func:`ensure_calibration`); the result goes to ``<run>/judge_calibration.json`` and is
printed. A resume with the same judge, prompt and pairs reuses the saved grades, but
applies the current bar and override. While the judge is not trusted, rubric tasks are
left out where scores are used (:func:`counted`, :func:`left_out`): evaluation, fitness
and DNS (``graphs/skill_matrix.py``), task forces (``graphs/taskforce_resources.py``) and the
report (``acdc/report.py``).
"""

import asyncio
import dataclasses
import hashlib
import json
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from acdc import atomic, safe_files
from acdc.agents.judge import Grade, Judge
from acdc.context import Context
from acdc.population.pass_rule import LABEL_THRESHOLD, passes
from acdc.progress import Progress
from acdc.rundir import RunDir
from acdc.taskpool import TaskPool
from acdc.tasks import Task, TaskInstance
from acdc.types import TaskId

BUNDLED_PAIRS = Path(__file__).resolve().parents[1] / "bench" / "data" / "judge_pairs.jsonl"
_FIELDS = ("instruction", "reference", "rubric", "response")


MAX_PAIRS = 10_000
"""Lines a labelled pairs file may hold: every pair is judged at each calibration."""


class PairsFileError(ValueError):
    """A labelled-pairs file is malformed; the message names the file and line."""


@dataclass(frozen=True)
class LabelledPair:
    """One answer to a question, labelled right (1) or wrong (0) by a person."""

    instruction: str
    reference: str
    rubric: str
    response: str
    label: int

    def task(self) -> Task:
        """A one-question rubric task holding the pair, as the judge sees run tasks."""
        reference = self.reference or None
        instances = [
            TaskInstance(id=f"i{n}", instruction=self.instruction, reference=reference)
            for n in range(3)
        ]
        return Task(
            id="calibration",
            name="Labelled question",
            description="A short question with a reference answer.",
            capability="general",
            subject="mixed",
            difficulty=1,
            grading="rubric",
            rubric=self.rubric,
            instances=instances,
        )


def pairs_path(name: str) -> Path:
    """The pairs file a setting names ('' = the bundled one)."""
    return Path(name) if name else BUNDLED_PAIRS


def load_pairs(path: Path, size: int = 0) -> list[LabelledPair]:
    """The labelled pairs of a JSONL file; ``size`` > 0 keeps a balanced first ``size``.

    Raises:
        PairsFileError: A line is not a pair, or the file holds no right or no wrong answer.
        OSError: The file cannot be read.
    """
    pairs: list[LabelledPair] = []
    try:
        numbered = list(safe_files.lines(path))
    except safe_files.InputFileError as err:
        raise PairsFileError(str(err)) from None
    if len(numbered) > MAX_PAIRS:
        raise PairsFileError(f"{path}: over {MAX_PAIRS:,} lines; calibration needs tens")
    for number, data in numbered:
        line = data.decode("utf-8", errors="replace")
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            values = {name: raw[name] for name in _FIELDS}
            label = raw["label"]
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise PairsFileError(f"{path}:{number}: not a labelled pair ({err})") from err
        values["reference"] = values["reference"] or ""  # null: the rubric alone decides
        if not all(isinstance(v, str) for v in values.values()) or label not in (0, 1):
            raise PairsFileError(f"{path}:{number}: fields must be strings and label 0 or 1")
        pairs.append(LabelledPair(**values, label=int(label)))
    if not pairs or len({p.label for p in pairs}) < 2:
        raise PairsFileError(f"{path}: needs right (label 1) and wrong (label 0) answers")
    if size:
        right = [p for p in pairs if p.label][: (size + 1) // 2]
        wrong = [p for p in pairs if not p.label][: size // 2]
        pairs = right + wrong
    return pairs


@dataclass(frozen=True)
class Calibration:
    """How a judge graded the labelled pairs, and whether the run trusts it with rubrics."""

    judge: str
    pairs_file: str
    pairs: int
    agreement: float
    false_pass_rate: float
    """Share of wrong answers (label 0) the judge passed."""
    false_fail_rate: float
    """Share of right answers (label 1) the judge failed."""
    ungraded: int
    """Pairs the judge returned no valid grade for (counted as disagreements)."""
    min_agreement: float
    trusted: bool
    """Agreement reached ``min_agreement`` (or the user overrode: ``overridden``)."""
    overridden: bool = False
    key: str = ""
    """Digest of what was calibrated (judge, prompt, pairs): a resume reuses a match."""

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as saved in the run folder."""
        return asdict(self)

    def line(self) -> str:
        """One line for the terminal, the summary and the report."""
        verdict = "trusted with rubric tasks" if self.trusted else "NOT trusted: rubric tasks off"
        if self.overridden:
            verdict = "trusted with rubric tasks by override (trust_judge)"
        return (
            f"judge calibration: agreement {self.agreement:.0%} on {self.pairs} labelled pairs "
            f"(bar {self.min_agreement:.0%}), false passes {self.false_pass_rate:.0%}, "
            f"{self.ungraded} ungraded; {verdict}"
        )


def calibration_key(judge: Judge, judge_spec: str, pairs: Sequence[LabelledPair]) -> str:
    """A digest of the judge's settings, its grading prompt and the pairs."""
    prompt = judge.prompts["judge_grade"].sha256
    blob = json.dumps([judge_spec, prompt, [asdict(p) for p in pairs]], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


async def calibrate(
    judge: Judge,
    pairs: Sequence[LabelledPair],
    *,
    judge_spec: str,
    pairs_file: str,
    min_agreement: float,
    override: bool = False,
) -> Calibration:
    """Grade every pair with ``judge`` (concurrently, its own limit paces the calls).

    A progress line shows pairs graded of all and the time per pair: with a small judge
    on a busy CPU the 40 bundled pairs take minutes at the start of every fresh run.
    """
    progress = Progress("judge calibration", len(pairs), unit="pair")
    progress.update(0)
    graded_so_far = 0

    async def grade(pair: LabelledPair) -> Grade:
        nonlocal graded_so_far
        verdict = await judge.grade(pair.task(), pair.task().instances[0], pair.response)
        graded_so_far += 1
        progress.update(graded_so_far)
        return verdict

    grades = await asyncio.gather(*(grade(p) for p in pairs))
    progress.finish()
    passed = [passes(g.score, LABEL_THRESHOLD) for g in grades]
    graded = [g.score is not None for g in grades]
    agree = sum(
        ok and hit == bool(p.label) for ok, hit, p in zip(graded, passed, pairs, strict=True)
    )
    wrong = [i for i, p in enumerate(pairs) if not p.label]
    right = [i for i, p in enumerate(pairs) if p.label]
    agreement = agree / len(pairs)
    return Calibration(
        judge=judge_spec,
        pairs_file=pairs_file,
        pairs=len(pairs),
        agreement=round(agreement, 4),
        false_pass_rate=round(sum(passed[i] for i in wrong) / max(len(wrong), 1), 4),
        false_fail_rate=round(
            sum(graded[i] and not passed[i] for i in right) / max(len(right), 1), 4
        ),
        ungraded=sum(not g for g in graded),
        min_agreement=min_agreement,
        trusted=agreement >= min_agreement or override,
        overridden=override and agreement < min_agreement,
        key=calibration_key(judge, judge_spec, pairs),
    )


def load_calibration(path: Path) -> Calibration | None:
    """The calibration saved at ``path`` (a run folder or the file), or None."""
    file = RunDir(path, read_only=True).calibration_file if path.is_dir() else path
    try:
        return Calibration(**json.loads(file.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def decide(calibration: Calibration, ctx: Context) -> Calibration:
    """``calibration`` judged by the current bar and override."""
    reached = calibration.agreement >= ctx.judge_min_agreement
    return dataclasses.replace(
        calibration,
        min_agreement=ctx.judge_min_agreement,
        trusted=reached or ctx.trust_judge,
        overridden=ctx.trust_judge and not reached,
    )


def rubric_off(run_dir: Path, ctx: Context | None = None) -> bool:
    """Whether the run's saved calibration keeps rubric tasks out (no calibration: no)."""
    saved = load_calibration(run_dir)
    if saved is None:
        return False
    return not (decide(saved, ctx) if ctx is not None else saved).trusted


def left_out(run_dir: Path, ctx: Context | None = None) -> list[TaskId]:
    """The run's rubric tasks (ever active) when its judge is not trusted, else none."""
    if not rubric_off(run_dir, ctx):
        return []
    pool = TaskPool.open(run_dir)
    return [t for t in pool.ever() if pool.get(t).grading == "rubric"]


def judge_spec(ctx: Context) -> str:
    """What identifies the judge: model, where it is served, sampling settings."""
    model = ctx.judge_model or f"{ctx.served_model_name} (population server)"
    where = f" at {ctx.judge_base_url}" if ctx.judge_base_url else ""
    return f"{model}{where}, T={ctx.judge_temperature:g}, max_tokens={ctx.judge_max_tokens}"


async def calibration_of(
    ctx: Context, judge: Judge, path: Path, reuse: Sequence[Path] = ()
) -> Calibration:
    """The judge's calibration, measured or reused, saved to ``path``.

    A saved calibration whose key matches (at ``path`` or ``reuse``) is taken as it is,
    under the current bar and override.

    Raises:
        PairsFileError: The labelled pairs file is malformed.
        OSError: It cannot be read.
    """
    # File work goes to a thread: this runs on an event loop, where blocking I/O stalls
    # every other coroutine (and `langgraph dev` refuses it outright).
    source = pairs_path(ctx.judge_pairs_file)
    pairs = await asyncio.to_thread(load_pairs, source, ctx.judge_calibration_size)
    spec = judge_spec(ctx)
    key = calibration_key(judge, spec, pairs)
    found = await asyncio.to_thread(lambda: [load_calibration(p) for p in [path, *reuse]])
    saved = [c for c in found if c is not None and c.key == key]
    if saved:
        result = decide(saved[0], ctx)
    else:
        result = await calibrate(
            judge,
            pairs,
            judge_spec=spec,
            pairs_file=str(source),
            min_agreement=ctx.judge_min_agreement,
            override=ctx.trust_judge,
        )
    await asyncio.to_thread(atomic.write_json, path, result.to_dict())
    return result


def ensure_calibration(
    ctx: Context,
    judge: Judge,
    path: Path,
    run_async: Callable[[Coroutine[Any, Any, Calibration]], Calibration],
) -> Calibration:
    """The run's judge calibration (``calibration_of``), printed with what it decides."""
    result = run_async(calibration_of(ctx, judge, path))
    print(result.line(), flush=True)
    if not result.trusted:
        print(
            "rubric tasks are not admitted and are left out of fitness, DNS and task forces "
            "(set trust_judge to override, or use a stronger judge)",
            flush=True,
        )
    return result


def counted(tasks: Iterable[Task], off: bool) -> list[Task]:
    """``tasks`` without the rubric ones when ``off``."""
    return [t for t in tasks if not (off and t.grading == "rubric")]
