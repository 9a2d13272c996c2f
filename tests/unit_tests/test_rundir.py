"""RunDir: the names of a run's files stay those of existing runs, and a reader changes nothing."""

import inspect
from pathlib import Path

from acdc.rundir import RunDir

NAMES = {
    "config_file": "config.yaml",
    "metrics_file": "metrics.jsonl",
    "evaluations_file": "evaluations.jsonl",
    "checkpoints_file": "checkpoints.sqlite",
    "stop_file": "STOP",
    "pool_file": "pool.json",
    "costs_file": "costs.json",
    "calibration_file": "judge_calibration.json",
    "summary_file": "summary.md",
    "taskforce_file": "taskforce.json",
    "prompts_dir": "prompts",
    "experts_dir": "experts",
    "tasks_dir": "tasks",
    "rejected_dir": "rejected",
    "archive_dir": "archive",
    "snapshots_dir": "snapshots",
    "chroma_dir": "chroma",
    "eval_dir": "eval",
    "report_dir": "report",
    "review_pending_file": "review/pending.json",
    "server_log_file": "logs/vllm.log",
    "server_pid_file": "logs/vllm.pid",
    "eval_answers_file": "eval/answers.jsonl",
    "eval_calibration_file": "eval/judge_calibration.json",
    "report_file": "report/report.html",
}
"""Every path property and the name runs written before RunDir existed use for it."""


def test_every_file_keeps_the_name_existing_runs_use(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run", read_only=True)
    paths = {
        name: value
        for name, value in inspect.getmembers(RunDir)
        if isinstance(value, property) and name.endswith(("_file", "_dir"))
    }
    assert set(paths) == set(NAMES), "a new path of the run folder: add it to NAMES"
    for name, expected in NAMES.items():
        assert getattr(run, name) == run.root / expected, name
    assert run.task_file("t1") == run.root / "tasks" / "t1.json"
    assert run.rejected_file("t1") == run.root / "rejected" / "t1.json"
    assert run.archive_file(3) == run.root / "archive" / "gen-003.json"
    assert run.snapshot_file(3) == run.root / "snapshots" / "gen-003.json"
    assert run.growth_file("seed_tasks", 0) == run.root / "growth" / "seed_tasks-gen-000.json"
    assert run.review_edit_file("t1") == run.root / "review" / "edit-t1.json"
    assert run.eval_result_file("arc", 3) == run.root / "eval" / "arc-n3.json"


def test_the_layout_lists_every_file() -> None:
    layout = RunDir.__doc__ or ""
    for expected in NAMES.values():
        assert expected in layout, expected
    for pattern in ("tasks/<id>.json", "archive/gen-NNN.json", "growth/<phase>-gen-NNN.json"):
        assert pattern in layout, pattern


def test_a_reader_creates_cleans_and_repairs_nothing(tmp_path: Path) -> None:
    missing = RunDir(tmp_path / "absent", read_only=True)
    assert missing.metrics.records() == [] and not missing.root.exists()
    folder = tmp_path / "live"
    folder.mkdir()
    torn = b'{"event": "start"}\n{"event": "gen'
    (folder / "metrics.jsonl").write_bytes(torn)
    (folder / ".tmp-staging").mkdir()
    reader = RunDir(folder, read_only=True)
    assert reader.metrics.records() == [{"event": "start"}]
    assert (folder / "metrics.jsonl").read_bytes() == torn  # a live writer may finish it
    assert (folder / ".tmp-staging").is_dir()
    RunDir(folder).log("resume")  # the writer cleans up and cuts the torn line
    assert not (folder / ".tmp-staging").exists()
    assert [r["event"] for r in RunDir(folder, read_only=True).metrics.records()] == [
        "start",
        "resume",
    ]
