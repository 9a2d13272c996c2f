"""A run's folder: :class:`RunDir` knows every file of it and how each is written."""

import hashlib
import json
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from acdc import atomic, safe_files
from acdc.context import ConfigError, Context
from acdc.runstore import EvaluationStore, JsonlLog


@dataclass
class RunDir:
    """The one place that knows the files of a run folder, ``<runs_dir>/<run_id>/``.

    Layout (A: written whole and atomically, ``acdc/atomic.py``; J: append-only JSONL,
    one fsync per record; the writing module in parentheses where it is not this one)::

        config.yaml              A  the settings as used, rewritten on every start or resume
                                    (record_config); read back by --resume and the report
        prompts/<name>.txt       A  the exact prompt files used, one per role action
        experts/<id>/            A  one folder per expert: adapter and expert.json, staged
                                    then renamed (population/experts.py)
        tasks/<id>.json          A  the body of every task ever admitted (acdc/taskpool.py)
        pool.json                A  the pool's state: active, retired, rejected counts,
                                    replacements (acdc/taskpool.py)
        rejected/<id>.json       A  a refused candidate task, its gate and reason
        growth/<phase>-gen-NNN.json  A  proposals a pool-growing phase made so far, so a
                                    resumed phase does not ask again
        review/pending.json      A  candidates awaiting a person's decision (review_tasks)
        review/edit-<id>.json       a candidate handed to a person to edit (plain write)
        evaluations.jsonl        J  keyed (expert, task, instance) evaluation records
        metrics.jsonl            J  one record per phase and per generation (log)
        archive/gen-NNN.json     A  survivors, scores and fitness after each generation
        snapshots/gen-NNN.json   A  the pool and the logs' lengths after each generation,
                                    what a fork needs (graphs/fork.py)
        costs.json               A  dollars spent by generation and role (acdc/costs.py)
        judge_calibration.json   A  the judge's agreement with labelled pairs
        summary.md               A  human-readable state of the run
        taskforce.json           A  the latest task force picked (population/taskforce.py)
        chroma/                     the embedded ChromaDB task (and benchmark) index
        checkpoints.sqlite          LangGraph checkpoints (SQLite, the CLI's checkpointer)
        logs/vllm.log               the population server's output (appended by vLLM)
        logs/vllm.pid               "<server pid> <owner pid>" of a server this run started
                                    (plain write, population/server.py)
        eval/answers.jsonl       J  cached benchmark answers of ``acdc eval coverage``
        eval/<benchmark>-n<N>.json  A  a benchmark evaluation's result
        eval/judge_calibration.json  A  the judge's calibration for that evaluation
        report/report.html, report/*.png  A  ``acdc report`` (the HTML last)
        STOP                        create it to stop after the current generation

    ``read_only`` is a reader's view (the report, a task force, a fork's source): the
    folder is neither created nor cleaned and the metrics log is not repaired. Otherwise
    the folder is created and staging leftovers of a killed writer are removed.
    """

    root: Path
    read_only: bool = False

    def __post_init__(self) -> None:
        if not self.read_only:
            self.root.mkdir(parents=True, exist_ok=True)
            atomic.remove_stale_staging(self.root)

    @cached_property
    def metrics(self) -> JsonlLog:
        """``metrics.jsonl``: one record per phase and generation, appended by :meth:`log`."""
        return JsonlLog(self.metrics_file, self.read_only)

    @property
    def metrics_file(self) -> Path:
        """``metrics.jsonl`` (:attr:`metrics` opens it)."""
        return self.root / "metrics.jsonl"

    @property
    def config_file(self) -> Path:
        """``config.yaml``: the settings as used, written atomically by :meth:`record_config`."""
        return self.root / "config.yaml"

    @property
    def prompts_dir(self) -> Path:
        """``prompts/``: the exact prompt files used, written by :meth:`record_prompts`."""
        return self.root / "prompts"

    @property
    def experts_dir(self) -> Path:
        """``experts/``: one folder per expert, staged then renamed by ``ExpertStore``."""
        return self.root / "experts"

    @property
    def tasks_dir(self) -> Path:
        """``tasks/``: one JSON body per task ever admitted, written atomically."""
        return self.root / "tasks"

    def task_file(self, task_id: str) -> Path:
        """``tasks/<id>.json``: the body of one task."""
        return self.tasks_dir / f"{task_id}.json"

    @property
    def pool_file(self) -> Path:
        """``pool.json``: the pool's state, rewritten atomically at each change."""
        return self.root / "pool.json"

    @property
    def rejected_dir(self) -> Path:
        """``rejected/``: one record per refused candidate task."""
        return self.root / "rejected"

    def rejected_file(self, task_id: str) -> Path:
        """``rejected/<id>.json``: a refused candidate, its gate and reason (atomic)."""
        return self.rejected_dir / f"{task_id}.json"

    def growth_file(self, phase: str, generation: int) -> Path:
        """``growth/<phase>-gen-NNN.json``: what a pool-growing phase made so far (atomic)."""
        return self.root / "growth" / f"{phase}-gen-{generation:03d}.json"

    @property
    def review_pending_file(self) -> Path:
        """``review/pending.json``: candidates awaiting a person's decision (atomic)."""
        return self.root / "review" / "pending.json"

    def review_edit_file(self, task_id: str) -> Path:
        """``review/edit-<id>.json``: a candidate a person edits on the terminal."""
        return self.root / "review" / f"edit-{task_id}.json"

    @property
    def evaluations_file(self) -> Path:
        """``evaluations.jsonl``: append-only keyed evaluation records."""
        return self.root / "evaluations.jsonl"

    def evaluations(self, read_only: bool = False) -> EvaluationStore:
        """The run's evaluation store (re-read from disk); ``read_only`` for readers."""
        return EvaluationStore(self.evaluations_file, read_only or self.read_only)

    @property
    def archive_dir(self) -> Path:
        """``archive/``: one ``gen-NNN.json`` per generation."""
        return self.root / "archive"

    def archive_file(self, generation: int) -> Path:
        """``archive/gen-NNN.json``: the archive after ``generation`` (atomic)."""
        return self.archive_dir / f"gen-{generation:03d}.json"

    @property
    def snapshots_dir(self) -> Path:
        """``snapshots/``: one ``gen-NNN.json`` per generation, what a fork needs."""
        return self.root / "snapshots"

    def snapshot_file(self, generation: int) -> Path:
        """``snapshots/gen-NNN.json``: the pool and the logs' lengths after ``generation``."""
        return self.snapshots_dir / f"gen-{generation:03d}.json"

    @property
    def costs_file(self) -> Path:
        """``costs.json``: dollars spent by generation and role, rewritten atomically."""
        return self.root / "costs.json"

    @property
    def calibration_file(self) -> Path:
        """``judge_calibration.json``: the judge's agreement with labelled pairs (atomic)."""
        return self.root / "judge_calibration.json"

    @property
    def summary_file(self) -> Path:
        """``summary.md``: the human-readable state, replaced by :meth:`write_summary`."""
        return self.root / "summary.md"

    @property
    def taskforce_file(self) -> Path:
        """``taskforce.json``: the latest task force picked, written atomically."""
        return self.root / "taskforce.json"

    @property
    def chroma_dir(self) -> Path:
        """``chroma/``: the embedded ChromaDB index of tasks and benchmark questions."""
        return self.root / "chroma"

    @property
    def checkpoints_file(self) -> Path:
        """``checkpoints.sqlite``: the run's LangGraph checkpoints (SQLite)."""
        return self.root / "checkpoints.sqlite"

    @property
    def server_log_file(self) -> Path:
        """``logs/vllm.log``: the population server's output, appended by vLLM."""
        return self.root / "logs" / "vllm.log"

    @property
    def server_pid_file(self) -> Path:
        """``logs/vllm.pid``: "<server pid> <owner pid>" of a server this run started."""
        return self.root / "logs" / "vllm.pid"

    @property
    def eval_dir(self) -> Path:
        """``eval/``: benchmark evaluations of the run's task force (``acdc eval``)."""
        return self.root / "eval"

    @property
    def eval_answers_file(self) -> Path:
        """``eval/answers.jsonl``: append-only cache of benchmark answers."""
        return self.eval_dir / "answers.jsonl"

    def eval_result_file(self, benchmark: str, n: int) -> Path:
        """``eval/<benchmark>-n<N>.json``: one evaluation's result, written atomically."""
        return self.eval_dir / f"{benchmark}-n{n}.json"

    @property
    def eval_calibration_file(self) -> Path:
        """``eval/judge_calibration.json``: the judge's calibration for ``acdc eval``."""
        return self.eval_dir / "judge_calibration.json"

    @property
    def report_dir(self) -> Path:
        """``report/``: the HTML report and its figures, each written atomically."""
        return self.root / "report"

    @property
    def report_file(self) -> Path:
        """``report/report.html``: the report page, written after its figures."""
        return self.report_dir / "report.html"

    @property
    def stop_file(self) -> Path:
        """``STOP``: touch it to end the run after the current generation."""
        return self.root / "STOP"

    def is_run(self) -> bool:
        """Whether the folder looks like a run's (it has a recorded config or metrics)."""
        return self.config_file.is_file() or self.metrics_file.is_file()

    def record_config(self, ctx: Context) -> None:
        """Write the configuration as used, so a resume or a reader sees the same values."""
        text = yaml.safe_dump(ctx.to_dict(), sort_keys=True)
        atomic.write_text(self.config_file, text)

    def record_prompts(self, prompts: dict[str, Path]) -> dict[str, str]:
        """Copy the exact prompt files used into ``prompts/``; returns name -> sha256."""
        digests: dict[str, str] = {}
        for name, path in sorted(prompts.items()):
            data = path.read_bytes()
            atomic.write_bytes(self.prompts_dir / f"{name}.txt", data)
            digests[name] = hashlib.sha256(data).hexdigest()
        return digests

    def log(self, event: str, **values: Any) -> None:
        """Append one metrics record with a wall-clock timestamp."""
        self.metrics.append({"event": event, "time": round(time.time(), 3), **values})

    def write_archive(self, generation: int, archive: dict[str, Any]) -> None:
        """Store the archive after ``generation``."""
        atomic.write_json(self.archive_file(generation), archive)

    def read_archive(self, generation: int) -> dict[str, Any] | None:
        """The archive stored after ``generation``, if any."""
        path = self.archive_file(generation)
        return json.loads(path.read_text()) if path.exists() else None

    def write_summary(self, text: str) -> None:
        """Replace the human-readable summary."""
        atomic.write_text(self.summary_file, text)


def load_run_config(run_dir: Path) -> dict[str, Any]:
    """The settings recorded by an earlier start of the run in ``run_dir``.

    Read with the caps of :mod:`acdc.safe_files`: a corrupt or hostile file is one
    error line naming it, and nothing in the run folder is touched.

    Raises:
        FileNotFoundError: ``run_dir`` holds no config.yaml.
        ConfigError: The file is unreadable, not YAML, over a cap, or not a mapping.
    """
    path = RunDir(run_dir, read_only=True).config_file
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


def recorded_settings(run_dir: Path) -> Context:
    """The settings the run in ``run_dir`` recorded, read as ``--resume`` reads them.

    No file or option goes on top: a reader (the report) sees the values the run used.

    Raises:
        FileNotFoundError: ``run_dir`` holds no config.yaml.
        ConfigError: The file is unreadable or holds a value the settings refuse.
    """
    base_name = str(RunDir(run_dir, read_only=True).config_file)
    return Context.load(base=load_run_config(run_dir), base_name=base_name)
