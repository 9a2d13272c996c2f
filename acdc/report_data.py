"""What the report shows, read from a run folder: logs, experts, archives, tasks, settings.

Read once and tolerantly, since a report may be made while the run goes on: unreadable
lines and files are skipped (a live run may be midway through writing one), and nothing
of the run is written. The figures and the page are ``acdc/report.py``'s.

The numbers that decide passes and task forces (``pass_threshold``, ``taskforce_size``,
``instances_per_task``) are the run's recorded settings, read as ``--resume`` reads them;
the report keeps no default of its own. A folder without a readable ``config.yaml`` gets
the settings a fresh run would start with, and the report says so. Rubric tasks are left
out as the run's saved judge calibration decided.
"""

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from acdc.agents.calibration import left_out
from acdc.context import ConfigError, Context
from acdc.population.coverage import greedy_task_force
from acdc.population.experts import METADATA
from acdc.population.taskforce import RunSkills, run_skills
from acdc.rundir import RunDir, recorded_settings

log = logging.getLogger(__name__)


@dataclass
class RunData:
    """What the report needs from a run folder, read once and tolerantly."""

    root: Path
    generations: list[dict[str, Any]]
    """``generation`` events of ``metrics.jsonl``, one per generation, in order."""
    experts: dict[str, dict[str, Any]]
    """``expert.json`` of each expert, by id."""
    archive: dict[str, Any]
    """The latest ``archive/gen-NNN.json`` (empty if none)."""
    tasks: dict[str, dict[str, Any]]
    """Bodies of the accepted tasks (``tasks/``), by id."""
    rejected: list[dict[str, Any]]
    """Records of rejected candidates (``rejected/``)."""
    settings: Context
    """The run's recorded settings (see the module)."""
    settings_source: str
    """Where ``settings`` came from: the recorded file, or why the defaults stand in."""


@dataclass(frozen=True)
class Skills:
    """Which expert passes which task (rows ``experts``, columns ``tasks``), and the task force."""

    experts: list[str]
    tasks: list[str]
    solved: np.ndarray
    fitness: np.ndarray
    """Share of ``tasks`` each expert passes."""
    seed: str
    """The base expert (``is_base``), or "" if the run has none."""
    members: list[str]
    """The greedy task force of the run's ``taskforce_size``, the seed first if evaluated."""
    missing: int = 0
    """Cells never evaluated: masked (neither pass nor fail); the report starts no server."""
    known: np.ndarray | None = None
    """Bool like ``solved``: True where evaluated; None means every cell was."""

    def rows(self, experts: Sequence[str]) -> list[int]:
        """Row indices of ``experts``."""
        return [self.experts.index(e) for e in experts]


def _read_json(path: Path) -> Any:
    """The JSON value in ``path``, or None when it is missing or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The objects of a JSONL file; lines that do not parse (a torn last one) are skipped."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    records: list[dict[str, Any]] = []
    for line in lines:
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            records.append(value)
    return records


def _json_files(folder: Path) -> list[Path]:
    """``*.json`` files of ``folder`` in name order, without hidden or staging files."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.json") if not p.name.startswith("."))


def _settings(run_dir: Path) -> tuple[Context, str]:
    """The run's recorded settings and where they came from (see the module)."""
    try:
        return recorded_settings(run_dir), str(RunDir(run_dir, read_only=True).config_file)
    except (FileNotFoundError, ConfigError) as err:
        log.warning("the report uses the default settings: %s", err)
        return Context(), f"defaults ({err})"


def load_run(run_dir: Path) -> RunData:
    """Read everything the report shows from ``run_dir``, skipping what cannot be read."""
    run = RunDir(run_dir, read_only=True)
    generations: dict[int, dict[str, Any]] = {}
    for record in _read_jsonl(run.metrics_file):
        if record.get("event") == "generation" and isinstance(record.get("generation"), int):
            generations[record["generation"]] = record  # a resumed run may log one again
    experts: dict[str, dict[str, Any]] = {}
    folders = sorted(run.experts_dir.iterdir()) if run.experts_dir.is_dir() else []
    for folder in folders:
        if folder.name.startswith("."):  # staging leftovers of a crashed writer
            continue
        record = _read_json(folder / METADATA)
        if isinstance(record, dict):
            experts[str(record.get("id", folder.name))] = record
    archives = {
        int(m.group(1)): p
        for p in _json_files(run.archive_dir)
        if (m := re.fullmatch(r"gen-(\d+)\.json", p.name))
    }
    archive = _read_json(archives[max(archives)]) if archives else None
    tasks = {p.stem: t for p in _json_files(run.tasks_dir) if isinstance(t := _read_json(p), dict)}
    rejected = [
        r
        for p in _json_files(run.rejected_dir)
        if isinstance(r := _read_json(p), dict) and isinstance(r.get("task"), dict)
    ]
    settings, source = _settings(run_dir)
    return RunData(
        root=run_dir,
        generations=[generations[g] for g in sorted(generations)],
        experts=experts,
        archive=archive if isinstance(archive, dict) else {},
        tasks=tasks,
        rejected=rejected,
        settings=settings,
        settings_source=source,
    )


def skills(data: RunData) -> Skills:
    """The run's skill matrix as task forces see it, the seed, and the task force.

    The matrix is ``population.taskforce.run_skills`` (every expert with evaluations and
    the seed, every task ever active, the run's pass rule), read without touching the live
    run's files. The report evaluates nothing: cells never evaluated are masked (fitness
    is the share of evaluated tasks passed) and counted. A run whose pool or evaluations
    cannot be read yet gives an empty matrix.
    """
    settings = data.settings
    seed = next((e for e, record in sorted(data.experts.items()) if record.get("is_base")), "")
    try:
        candidates = [seed] if seed else []
        leave_out = left_out(data.root)  # rubric tasks, as the run's saved calibration decided
        run = run_skills(
            data.root, settings.pass_threshold, settings.instances_per_task, candidates, leave_out
        )
    except (OSError, ValueError, KeyError) as err:
        log.warning("no skill matrix for the report: %s", err)
        empty = np.zeros((0, 0), dtype=bool)
        run = RunSkills([], [], empty, np.zeros(0), settings.pass_threshold)
    members: list[str] = []
    if run.experts:
        required = [run.row(seed)] if seed in run.experts else []
        fitness = [float(f) for f in run.fitness]
        picked = greedy_task_force(run.solved, settings.taskforce_size, fitness, required)
        members = [run.experts[i] for i in picked]
    return Skills(
        run.experts, run.tasks, run.solved, run.fitness, seed, members, run.missing, run.known
    )
