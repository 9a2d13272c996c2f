"""Hostile and careless files and numbers: each ends as one error line with exit status 2.

YAML alias bombs, integers out of reason, corrupt recorded configs, a folder given as a
file, oversized lines and benchmark rows that would score silently wrong. Each test
here failed before issue 20 (checked by running it against the code before the fix):
a hang, a traceback, a multi-megabyte error line, or a row accepted and misread.
"""

import dataclasses
import json
import logging
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from acdc import safe_files, setting_bounds
from acdc.agents.benchmark_file import BenchmarkItem, load_benchmark
from acdc.cli import main
from acdc.context import ConfigError, Context
from acdc.population.finetune_data import DataFileError, read_examples
from acdc.tasks import TaskError, load_task, seed_tasks_dir
from acdc.vectorstore.contamination import BenchmarkFileError

ACDC = [sys.executable, "-c", "from acdc.cli import main; main()"]


def refusal(argv: list[str], caplog: pytest.LogCaptureFixture) -> str:
    """The one logged error line of ``acdc argv``; fails on a traceback or another exit."""
    caplog.clear()
    with caplog.at_level(logging.ERROR), pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert "\n" not in errors[0] and len(errors[0]) < 1000, errors[0][:2000]
    return errors[0]


def bomb(levels: int, width: int, field: str = "seed_adapters") -> str:
    """A YAML alias bomb in one setting: each level a list of ``width`` aliases of the last."""
    layers = [f"&l0 [{','.join(['lol'] * width)}]"]
    for level in range(1, levels):
        layers.append(f"&l{level} [{','.join([f'*l{level - 1}'] * width)}]")
    return f"{field}: [{', '.join(layers)}]\n"


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
    }


# --- YAML: size, alias expansion, nesting --------------------------------------------


def test_a_400_byte_alias_bomb_is_refused_in_seconds_by_acdc_plan(tmp_path: Path):
    config = tmp_path / "bomb.yaml"
    config.write_text(bomb(9, 9))
    assert len(config.read_bytes()) < 450  # 9**9 = 387,420,489 strings once expanded
    started = time.monotonic()
    done = subprocess.run(
        [*ACDC, "plan", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    # Before: over 120 s and 1 GB, then a gigantic error line.
    assert time.monotonic() - started < 30
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert str(config) in done.stderr and "100,000 nodes" in done.stderr
    assert len(done.stderr) < 2000


@pytest.mark.timeout(60)
def test_a_small_alias_bomb_gives_one_short_line(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    config = tmp_path / "small.yaml"
    config.write_text(bomb(5, 12, "generations"))  # 12**5 = 248,832 strings in 290 bytes
    message = refusal(["plan", "--config", str(config)], caplog)  # before: a 1.7 MB line
    assert str(config) in message and "refused" in message


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("generations: &a [1, *a]\n", "refers to itself"),
        ("generations: " + "[" * 200 + "]" * 200 + "\n", "nested"),
        ("generations: " + "9" * 5000 + "\n", "unusable YAML value"),
        ("run_id: '" + "x" * (2 * 1024**2) + "'\n", "cap of 1,048,576 bytes"),
    ],
    ids=["recursive alias", "deep nesting", "5000-digit integer", "2 MiB file"],
)
def test_other_hostile_yaml_is_one_line_naming_the_file(
    text: str, why: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    config = tmp_path / "hostile.yaml"
    config.write_text(text)
    message = refusal(["plan", "--config", str(config)], caplog)
    assert str(config) in message and why in message, message


def test_a_folder_given_as_the_config_names_it(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    message = refusal(["plan", "--config", str(tmp_path)], caplog)
    assert str(tmp_path) in message and "is a folder" in message, message


# --- integer settings: an upper bound on each ------------------------------------------


def int_fields() -> list[str]:
    return [f.name for f in dataclasses.fields(Context) if f.type in (int, "int")]


@pytest.mark.parametrize("name", int_fields())
def test_every_integer_setting_has_an_upper_bound(name: str):
    bound = setting_bounds.int_max(name)
    assert bound < 10**20
    with pytest.raises(ConfigError, match=f"{name} must be at most"):
        Context(**{name: bound + 1})


def float_fields() -> list[str]:
    return [f.name for f in dataclasses.fields(Context) if f.type in (float, "float")]


@pytest.mark.parametrize("name", float_fields())
def test_every_float_setting_is_bounded_by_its_range_or_an_upper_bound(name: str):
    # Before: 1e308 was accepted for timeouts, temperatures, the budget and the operators.
    with pytest.raises(ConfigError, match=name):
        Context(**{name: 1e308})
    bound = setting_bounds.float_max(name)
    if bound is not None:
        Context(**{name: bound})  # the bound itself is a valid setting


@pytest.mark.timeout(120)
def test_plan_refuses_generations_of_ten_to_the_26_at_once(tmp_path: Path):
    env = {**os.environ, "ACDC_GENERATIONS": str(10**26)}
    done = subprocess.run(
        [*ACDC, "plan"], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env
    )
    assert done.returncode == 2, done.stderr[-2000:]  # before: hung
    assert "ACDC_GENERATIONS" in done.stderr and "at most 100,000" in done.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["plan", "--gpus", str(10**26)],
        ["eval", "coverage", "--run", "R", "--benchmark", "b.jsonl", "--n", str(10**26)],
        ["taskforce", "serve", "--run", "R", "--port", "70000"],
    ],
    ids=["--gpus", "--n", "--port"],
)
def test_the_commands_own_integer_options_are_bounded(
    argv: list[str], capsys: pytest.CaptureFixture[str]
):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "must be in" in capsys.readouterr().err


# --- a run folder's recorded config, a folder as the benchmark -------------------------


def run_folder(tmp_path: Path, recorded: bytes) -> Path:
    run = tmp_path / "runs" / "R"
    run.mkdir(parents=True)
    (run / "config.yaml").write_bytes(recorded)
    (run / "metrics.jsonl").write_text('{"event": "start"}\n')
    return run


CORRUPT = {
    "broken YAML": b"run_id: R\ngenerations: [3\n",
    "not UTF-8": b"run_id: R\n\xff\xfe\x00garbage\n",
    "alias bomb": bomb(6, 9, "lora_rank").encode(),
    "a list": b"- run_id\n- R\n",
}


@pytest.mark.parametrize("recorded", CORRUPT.values(), ids=CORRUPT.keys())
@pytest.mark.parametrize("command", ["resume", "eval"])
def test_a_corrupt_recorded_config_is_one_line_and_changes_nothing(
    recorded: bytes, command: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    run = run_folder(tmp_path, recorded)
    bench = tmp_path / "bench.jsonl"
    bench.write_text('{"question": "2 + 2?", "answer": "4"}\n')
    before = snapshot(tmp_path)
    argv = (
        ["run", "--resume", "R", "--runs-dir", str(run.parent)]
        if command == "resume"
        else ["eval", "coverage", "--run", str(run), "--benchmark", str(bench)]
    )
    message = refusal(argv, caplog)
    assert str(run / "config.yaml") in message, message
    assert snapshot(tmp_path) == before


def test_a_folder_as_the_benchmark_is_one_line_and_changes_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    run = run_folder(tmp_path, b"run_id: R\n")
    folder = tmp_path / "bench"
    folder.mkdir()
    before = snapshot(tmp_path)
    message = refusal(["eval", "coverage", "--run", str(run), "--benchmark", str(folder)], caplog)
    assert str(folder) in message and "is a folder" in message, message
    assert snapshot(tmp_path) == before


# --- benchmark rows that lie -----------------------------------------------------------


def bench_file(tmp_path: Path, *rows: object) -> Path:
    path = tmp_path / "bench.jsonl"
    path.write_text("".join(json.dumps(r, allow_nan=True) + "\n" for r in rows))
    return path


def test_an_integer_answer_with_numeric_labels_means_the_label_and_says_so(tmp_path: Path):
    row = {
        "question": "Which is a metal?",
        "choices": {"text": ["wood", "iron", "glass", "salt"], "label": ["1", "2", "3", "4"]},
        "answer": 2,
    }
    notes: list[str] = []
    items = load_benchmark(bench_file(tmp_path, {"question": "1 + 1?", "answer": "2"}, row), notes)
    assert items[1] == BenchmarkItem("Which is a metal?", "B", ("wood", "iron", "glass", "salt"))
    assert len(notes) == 1 and "bench.jsonl:2:" in notes[0], notes  # before: read as C, silently
    assert "label '2'" in notes[0] and "index 2" in notes[0]


def test_an_integer_answer_outside_the_labels_is_still_an_index(tmp_path: Path):
    row = {"question": "q", "options": {"1": "a", "2": "b", "3": "c"}, "answer": 0}
    notes: list[str] = []
    assert load_benchmark(bench_file(tmp_path, row), notes)[0].answer == "A"
    assert notes == []


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (math.nan, "not a finite number"),
        (math.inf, "not a finite number"),
        (".", "nothing a response could match"),
        ("\u200b", "non-empty 'answer'"),
    ],
    ids=["NaN", "infinity", "a lone dot", "a zero-width space"],
)
def test_an_answer_no_response_can_match_is_a_row_error(answer: object, why: str, tmp_path: Path):
    path = bench_file(
        tmp_path, {"question": "a?", "answer": "b"}, {"question": "q", "answer": answer}
    )
    with pytest.raises(BenchmarkFileError, match=f"bench.jsonl:2: .*{why}"):
        load_benchmark(path)


def test_a_10_mb_question_is_refused_by_line_without_loading_it(tmp_path: Path):
    path = tmp_path / "bench.jsonl"
    with path.open("w") as out:
        out.write('{"question": "a?", "answer": "b"}\n')
        out.write('{"question": "' + "x" * 10_000_000 + '", "answer": "b"}\n')
    with pytest.raises(BenchmarkFileError, match=r"bench\.jsonl:2: line over the cap"):
        load_benchmark(path)


# --- task files and seed data ----------------------------------------------------------


def test_a_task_file_over_the_cap_is_refused(tmp_path: Path):
    task = json.loads((seed_tasks_dir() / "seed-writing-open.json").read_text())
    task["description"] = "x" * (safe_files.MAX_JSON_BYTES + 1)
    path = tmp_path / "big.json"
    path.write_text(json.dumps(task))
    with pytest.raises(TaskError, match="big.json: the task file is over the cap"):
        load_task(path)


def test_a_task_file_nested_too_deeply_is_a_task_error(tmp_path: Path):
    path = tmp_path / "deep.json"
    path.write_text('{"rubric": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(TaskError, match="deep.json: JSON nested too deeply"):
        load_task(path)


def test_a_seed_data_line_over_the_cap_names_the_line(tmp_path: Path):
    path = tmp_path / "data.jsonl"
    row = json.dumps({"instruction": "Say hi.", "answer": "hi"})
    huge = json.dumps({"instruction": "x" * (safe_files.MAX_LINE_BYTES + 10), "answer": "hi"})
    path.write_text(f"{row}\n{row}\n{huge}\n")
    with pytest.raises(DataFileError, match=r"data\.jsonl:3: line over the cap"):
        read_examples(path)


@pytest.mark.timeout(120)
def test_a_report_on_a_run_with_a_bombed_recorded_config_uses_the_defaults(tmp_path: Path):
    run = run_folder(tmp_path, bomb(6, 9, "pass_threshold").encode())
    main(["report", str(run)])  # before: a traceback (float() of the expanded list)
    assert (run / "report" / "report.html").is_file()


# --- files a person may edit between runs ----------------------------------------------


def test_a_corrupt_review_file_is_refused_with_its_path(tmp_path: Path):
    from acdc.graphs.review import load_pending, pending_path

    path = pending_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text('[{"id": "t1", ')  # cut off mid-write by an editor
    # Before: a bare JSONDecodeError that named no file.
    with pytest.raises(safe_files.InputFileError, match=r"pending.json: not valid JSON"):
        load_pending(tmp_path)
