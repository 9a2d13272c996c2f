"""What a previous run measured, for ``acdc plan --from-run``: tokens per call and rates.

Read from the run's ``metrics.jsonl``: subject and judge tokens per evaluation, tokens
per candidate task by role and the share admitted (fresh tasks and adaptations apart),
and how much of the pool each adaptation retired and how many admitted variants joined.
"""

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from acdc.rundir import RunDir


@dataclass
class Drafting:
    """Measured task writing of one kind: tokens per candidate by role, share admitted."""

    tokens_per_candidate: dict[str, float]
    acceptance: float | None


@dataclass
class Measured:
    """Means taken from a previous run's metrics (None: not measured, assumed)."""

    subject_tokens: float | None = None
    judge_tokens_per_evaluation: float | None = None
    drafting: dict[str, Drafting] = field(default_factory=dict)  # "create", "adapt"
    retired_share: float | None = None
    joining_share: float | None = None
    source: str = ""


DRAFTING_PHASES = {"seed_tasks": "create", "adapt_tasks": "adapt"}


def measure(run_dir: Path) -> Measured:
    """Means of a finished or stopped run, from its ``metrics.jsonl``.

    Subject and judge tokens per evaluation come from the evaluate phases; tokens per
    candidate and acceptance from the pool growth (``create``) and the adaptations
    (``adapt``) apart, since a fresh task costs the scientist more than a variant; the
    retired and joining shares from each adaptation's pool before (the last generation
    record) and after (the phase record).
    """
    path = RunDir(run_dir, read_only=True).metrics_file
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: give a run folder with metrics")
    calls, subject, judge = 0, 0.0, 0.0
    candidates: Counter[str] = Counter()
    accepted: Counter[str] = Counter()
    roles: dict[str, Counter[str]] = {kind: Counter() for kind in DRAFTING_PHASES.values()}
    before_total, retired_total, admitted_total, joined_total = 0, 0, 0, 0
    pool: int | None = None
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if record.get("event") == "generation" and "pool_size" in record:
            pool = int(record["pool_size"])
        if record.get("event") != "phase":
            continue
        tokens = record.get("tokens") or {}
        phase = record.get("phase")
        if phase in ("evaluate", "reevaluate") and record.get("calls"):
            calls += int(record["calls"])
            subject += float(tokens.get("subjects", 0))
            judge += float(tokens.get("judge", 0))
        elif phase in DRAFTING_PHASES and "accepted" in record and "rejected" in record:
            kind = DRAFTING_PHASES[phase]
            admitted = len(record["accepted"])
            candidates[kind] += admitted + sum(record["rejected"].values())
            accepted[kind] += admitted
            roles[kind].update({k: float(v) for k, v in tokens.items()})
            if kind == "adapt" and pool and "pool_size" in record:
                retired = record.get("retired") or {}
                impossible = int(retired.get("impossible", 0))
                kept = pool - impossible - int(retired.get("cap", 0))
                before_total += pool
                retired_total += impossible
                admitted_total += admitted
                joined_total += max(0, int(record["pool_size"]) - kept)
    found = Measured(source=str(run_dir))
    if calls:
        found.subject_tokens = subject / calls
        found.judge_tokens_per_evaluation = judge / calls
    for kind, count in candidates.items():
        if count:
            found.drafting[kind] = Drafting(
                {r: roles[kind][r] / count for r in roles[kind]},
                accepted[kind] / count if accepted[kind] else None,
            )
    if before_total:
        found.retired_share = retired_total / before_total
    if admitted_total:
        found.joining_share = min(1.0, joined_total / admitted_total)
    return found
