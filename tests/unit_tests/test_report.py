"""The HTML report on a small synthetic run folder, with a stand-in embedding function."""

import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import matplotlib.image
import numpy as np
import pytest

from acdc import cli
from acdc.context import Context
from acdc.report import lineage_nodes, write_report
from acdc.report_data import load_run, skills
from acdc.rundir import RunDir
from acdc.tasks import Task
from acdc.vectorstore.tasks import task_text

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FIGURES = ["progress.png", "taskforce_radar.png", "task_pool.png", "lineage.png", "roles.png"]
FIGURES += ["dynamics.png"]
CAPABILITIES = {"t1": "math", "t2": "math", "t3": "coding", "t4": "coding"}
CAPABILITIES |= {"t5": "writing", "t6": "writing"}
PASSES = {"seed": {"t1", "t2"}, "a1": {"t3", "t4"}, "a2": {"t5", "t6"}, "b1": {"t6"}, "b2": set()}
"""Which tasks each expert passes; greedy with the seed required picks seed, a1, a2."""


class FakeEmbed:
    """Deterministic 16-d vectors from a text's hash; remembers what it was asked."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def __call__(self, texts: list[str]) -> list[list[float]]:
        self.texts += texts
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
            rows.append(list(np.random.default_rng(seed).normal(size=16)))
        return rows


def _task(task_id: str, capability: str, generation: int) -> dict[str, Any]:
    task = Task(
        id=task_id,
        name=f"task {task_id}",
        description=f"A {capability} task named {task_id}.",
        capability=capability,
        subject=capability,
        difficulty=2,
        instances=[
            {"id": f"i{k}", "instruction": f"{task_id} question {k}", "reference": "1"}
            for k in range(3)
        ],
        grading="exact",
        adaptation="seed" if generation == 0 else "create",
        generation=generation,
    )
    return task.model_dump()


def _write(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def _expert(run: Path, expert_id: str, generation: int, parents: list[str], op: str) -> None:
    operators = [{"name": op, "params": {}}] if op else []
    record = {
        "id": expert_id,
        "parents": parents,
        "operators": operators,
        "seed": 1,
        "generation": generation,
        "rank": 8,
        "checksum": "",
        "base_model": "tiny",
        "is_base": expert_id == "seed",
        "created_at": "",
    }
    _write(run / "experts" / expert_id / "expert.json", record)


def _generation(number: int, **values: Any) -> dict[str, Any]:
    return {"event": "generation", "time": 1.0, "generation": number, **values}


def make_run(folder: Path) -> Path:
    """Two generations: 6 tasks in 3 capabilities, 5 experts plus one outside the lineage."""
    run = folder / "run-1"
    for task_id, capability in CAPABILITIES.items():
        _write(run / "tasks" / f"{task_id}.json", _task(task_id, capability, int(task_id[1]) // 2))
    dup = _task("t7", "math", 2) | {"description": "A duplicate of t1."}
    _write(
        run / "rejected" / "t7.json",
        {"task": dup, "stage": "duplicate", "reason": "like t1", "generation": 2},
    )
    _write(
        run / "pool.json",
        {
            "active": ["t1", "t2", "t3", "t4", "t5"],
            "retired": {"t6": "easy"},
            "rejected": {"duplicate": 1},
        },
    )
    _expert(run, "seed", 0, [], "")
    _expert(run, "a1", 1, ["seed"], "lora_init")
    _expert(run, "a2", 1, ["seed"], "lora_init")
    _expert(run, "b1", 2, ["a1", "a2"], "ties_merge")
    _expert(run, "b2", 2, ["a1"], "mutate")
    _expert(run, "c9", 2, ["a2"], "mutate")  # bred but not kept: not in the lineage
    _write(run / "experts" / ".tmp-half" / "expert.json", {"id": "half", "is_base": True})
    _write(run / "archive" / "gen-001.json", {"generation": 1, "survivors": ["a1", "a2", "seed"]})
    _write(run / "archive" / "gen-002.json", {"generation": 2, "survivors": ["b1", "b2", "seed"]})
    records = []
    for expert, passed in PASSES.items():
        for task_id in CAPABILITIES:
            for k in range(3):
                score = 1.0 if task_id in passed else (1.0 if k == 0 else 0.0)  # 1/3 < 0.5
                records.append(
                    {
                        "expert_id": expert,
                        "task_id": task_id,
                        "instance_id": f"i{k}",
                        "score": score,
                        "tokens": 10,
                    }
                )
    lines = [json.dumps(r) for r in records]
    (run / "evaluations.jsonl").write_text("\n".join(lines) + '\n{"expert_id": "a1", "ta')
    metrics = [
        {"event": "phase", "phase": "bootstrap", "generation": 0, "seconds": 3.0},
        _generation(
            1,
            archive_size=3,
            best_expert="a1",
            best_fitness=1 / 3,
            pool_size=5,
            coverage=0.5,
            tasks_accepted=4,
            tasks_rejected={"duplicate": 1, "novelty": 1},
            tokens_by_role={"author": 1000, "judge": 500},
            seconds_by_phase={"breed": 10.0, "evaluate": 2.5},
            tokens_total=1500,
            cost_usd_by_role={"scientist": 0.25, "judge": 0.0125},
            utilization_by_phase={"evaluate": {"busy_share": 0.75, "tokens_per_s": 120.0}},
        ),
        _generation(
            2,
            archive_size=3,
            best_expert="b1",
            best_fitness=0.5,
            pool_size=5,
            coverage=0.875,
            tasks_accepted=2,
            tasks_rejected={},
            tokens_by_role={"author": 300, "subjects": 2000},
            seconds_by_phase={"evaluate": 4.0},
            tokens_total=3800,
            extra_key=[1],
        ),
    ]
    text = "\n".join(json.dumps(m) for m in metrics) + '\n{"event": "generation", "gen'
    (run / "metrics.jsonl").write_text(text)
    return run


@pytest.fixture
def run(tmp_path: Path) -> Path:
    return make_run(tmp_path)


def _table_rows(page: str) -> list[list[str]]:
    table = re.search(r'<table id="generations">(.*?)</table>', page, re.S)
    assert table
    rows = [re.findall(r"<td>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", table[1])]
    return [cells for cells in rows if cells]  # the header row has <th> only


def _snapshot(run: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


def test_report_embeds_six_valid_pngs_that_are_also_written(run: Path) -> None:
    path = write_report(run, embed=FakeEmbed())
    assert path == RunDir(run, read_only=True).report_file
    page = path.read_text()
    embedded = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(embedded) == len(FIGURES)
    for name, data in zip(FIGURES, embedded, strict=True):
        png = (RunDir(run, read_only=True).report_dir / name).read_bytes()
        assert png.startswith(PNG_SIGNATURE)
        assert len(png) > 10_000, name
        assert base64.b64decode(data) == png, name
        image = matplotlib.image.imread(RunDir(run, read_only=True).report_dir / name)
        assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 500
        assert image.std() > 0.01, f"{name} is blank"


def test_generation_table_lists_each_generation_once(run: Path) -> None:
    page = write_report(run, embed=FakeEmbed()).read_text()
    assert _table_rows(page) == [
        [
            "1",
            "3",
            "-",
            "-",
            "-",
            "-",
            "a1",
            "0.333",
            "50.0%",
            "5",
            "4",
            "2 (duplicate 1, novelty 1)",
            "1,500",
            "1,500",
            "12.5",
            "0.2625 (judge 0.0125, scientist 0.2500)",
            "evaluate 75%",
            "-",
            "-",
        ],
        ["2", "3", "-", "-", "-", "-", "b1", "0.500", "87.5%", "5", "2", "0", "2,300", "3,800"]
        + ["4.0", "0", ""]
        + ["-"] * 2,
    ]


def test_task_force_is_greedy_with_the_seed_and_named_in_the_overview(run: Path) -> None:
    skill = skills(load_run(run))
    assert skill.seed == "seed"
    assert skill.members == ["seed", "a1", "a2"]
    assert skill.tasks == ["t1", "t2", "t3", "t4", "t5", "t6"]  # active first, then retired
    assert skill.solved[skill.experts.index("b1")].tolist() == [False] * 5 + [True]
    page = write_report(run, embed=FakeEmbed()).read_text()
    assert "<th>task force</th><td>seed, a1, a2</td>" in page
    assert "<th>task force coverage</th><td>100.0%</td>" in page
    assert "<th>seed coverage</th><td>33.3%</td>" in page


def test_task_map_embeds_accepted_and_rejected_tasks_as_the_index_does(run: Path) -> None:
    embed = FakeEmbed()
    write_report(run, embed=embed)
    expected = {
        task_text(Task.model_validate(json.loads(p.read_text())))
        for p in (run / "tasks").glob("*.json")
    }
    expected.add(
        task_text(
            Task.model_validate(json.loads((run / "rejected" / "t7.json").read_text())["task"])
        )
    )
    assert sorted(embed.texts) == sorted(expected)
    assert len(embed.texts) == 7


def test_lineage_holds_the_survivors_and_their_ancestors_only(run: Path) -> None:
    nodes = lineage_nodes(load_run(run))
    assert set(nodes) == {"b1", "b2", "seed", "a1", "a2"}
    assert nodes["b1"].parents == ["a1", "a2"]
    assert nodes["b1"].operators == ["ties_merge"]
    assert nodes["seed"].is_base and nodes["seed"].generation == 0


def test_report_leaves_the_run_folder_untouched(run: Path) -> None:
    before = _snapshot(run)
    write_report(run, embed=FakeEmbed())
    after = _snapshot(run)
    report = str(RunDir(run, read_only=True).report_dir)
    assert {k: v for k, v in after.items() if not k.startswith(report)} == before


def test_a_failing_embedding_model_costs_only_the_task_map(run: Path) -> None:
    def broken(texts: list[str]) -> list[list[float]]:
        raise RuntimeError("model files missing")

    page = write_report(run, embed=broken).read_text()
    assert page.count('<img src="data:image/png;base64,') == len(FIGURES)
    assert len(_table_rows(page)) == 2


@pytest.mark.parametrize("generations", [0, 1])
def test_a_run_that_just_started_still_renders(tmp_path: Path, generations: int) -> None:
    run = tmp_path / "young"
    run.mkdir()
    lines = [{"event": "phase", "phase": "bootstrap", "generation": 0, "seconds": 1.0}]
    if generations:
        lines.append(
            _generation(
                1, archive_size=1, best_expert="seed", best_fitness=0.0, coverage=0.0, pool_size=0
            )
        )
    (run / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    embed = FakeEmbed()
    page = write_report(run, embed=embed).read_text()
    assert page.count('<img src="data:image/png;base64,') == len(FIGURES)
    assert len(_table_rows(page)) == generations
    assert ("No generation finished yet." in page) == (generations == 0)
    assert embed.texts == []  # no tasks, nothing to embed
    for name in FIGURES:
        assert matplotlib.image.imread(RunDir(run, read_only=True).report_dir / name).ndim == 3


def test_cli_report_writes_the_report_and_prints_its_path(
    run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import acdc.report

    real = acdc.report.write_report
    monkeypatch.setattr(acdc.report, "write_report", lambda path: real(path, embed=FakeEmbed()))
    cli.main(["report", str(run)])
    out = capsys.readouterr().out
    assert f"report: {RunDir(run, read_only=True).report_file} (" in out
    assert (RunDir(run, read_only=True).report_file).is_file()


def test_cells_never_evaluated_are_masked_and_counted_not_failed(run: Path) -> None:
    record = {"expert_id": "late", "task_id": "t1", "score": 1.0, "tokens": 10}
    lines = [json.dumps({**record, "instance_id": f"i{k}"}) for k in range(3)]
    path = run / "evaluations.jsonl"
    whole = path.read_text().rsplit("\n", 1)[0]  # drop the fixture's torn last line
    path.write_text(whole + "\n" + "\n".join(lines) + "\n")
    skill = skills(load_run(run))
    late = skill.experts.index("late")
    assert skill.solved[late].tolist() == [True] + [False] * 5
    assert skill.fitness[late] == 1.0  # one task evaluated, passed: not 1/6
    assert skill.missing == 5
    page = write_report(run, embed=FakeEmbed()).read_text()
    cells = skill.solved.size
    assert f"<th>skill cells not evaluated (masked)</th><td>5 of {cells}</td>" in page


def test_the_global_figures_come_first_and_no_gain_shows_on_an_unpassed_pool(run: Path) -> None:
    latest = _generation(
        3,
        archive_size=3,
        global_tasks=6,
        global_coverage=0.5,
        global_best_fitness=0.4,
        seed_global_fitness=1 / 3,
        global_pass_rate=0.25,
        best_expert="b1",
        best_fitness=0.0,
        pool_size=2,
        pool_target=12,
        coverage=0.0,
        coverage_gains=[0.17],
    )
    with (run / "metrics.jsonl").open("a") as log:
        log.write("\n" + json.dumps(latest) + "\n")
    page = write_report(run, embed=FakeEmbed()).read_text()
    facts = re.findall(r"<tr><th>(.*?)</th><td>(.*?)</td></tr>", page)
    assert facts[:6] == [
        ("latest generation", "3"),
        ("global coverage (6 tasks ever active)", "50.0%"),
        ("global best fitness", "0.400"),
        ("seed global fitness", "0.333"),
        ("global pass rate", "0.25"),
        ("active pool coverage (2 tasks)", "0.0%"),
    ]
    row = _table_rows(page)[-1]
    assert row[:10] == ["3", "3", "6", "50.0%", "0.400", "0.333", "b1", "0.000", "0.0%", "2 / 12"]
    assert row[-1] == "none (no active task is passed)"  # not "+17%" on a pool nobody passes


def test_the_report_reads_the_runs_recorded_settings(run: Path) -> None:
    recorded = Context(
        runs_dir=str(run.parent), run_id=run.name, pass_threshold=0.3, taskforce_size=2
    )
    RunDir(run).record_config(recorded)
    skill = skills(load_run(run))
    assert skill.solved.all()  # a third of every task's instances reaches 0.3
    assert skill.members[0] == "seed" and len(skill.members) == 2  # before: 3 members
    page = write_report(run, embed=FakeEmbed()).read_text()
    assert "<th>pass threshold</th><td>0.3</td>" in page
    assert "<th>task force size</th><td>2</td>" in page
    assert "by the 2 experts picked by greedy coverage" in page
    assert f"<th>settings</th><td>{RunDir(run).config_file}</td>" in page


def test_a_run_without_recorded_settings_says_the_defaults_stand_in(run: Path) -> None:
    page = write_report(run, embed=FakeEmbed()).read_text()
    assert re.search(r"<th>settings</th><td>defaults \(.*config\.yaml", page), page
    assert f"<th>task force size</th><td>{Context().taskforce_size}</td>" in page
