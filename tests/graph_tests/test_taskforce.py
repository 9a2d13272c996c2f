"""Task forces from a synthetic run: the pick, its baselines, the graph, the web app, the eval.

The run folder is real (tasks, evaluations, experts, ChromaDB); the population server's
words come from tests/fake_stack (an expert solves a question by a fixed hash rule).
"""

import asyncio
import hashlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import openai
import pytest
import torch
import uvicorn
from fastapi.testclient import TestClient

from acdc.agents.benchmark_file import load_benchmark
from acdc.agents.selectors import majority
from acdc.cli import main
from acdc.context import Context
from acdc.graphs.taskforce import graph
from acdc.graphs.taskforce_resources import close_all, taskforce_resources
from acdc.graphs.webapp import create_app, pieces
from acdc.population.base import BaseWeights
from acdc.population.experts import ExpertRecord, ExpertStore
from acdc.population.lora import LoraDelta
from acdc.population.taskforce import choose_task_forces, route, run_skills, save_plan
from acdc.rundir import RunDir
from acdc.runstore import EvalRecord, EvaluationStore
from acdc.taskpool import TaskPool
from acdc.tasks import Task
from acdc.vectorstore.tasks import TaskIndex
from tests.fake_stack import FakePopulation, FakeRoles
from tests.stub_openai import StubOpenAI

BENCHMARK = Path(__file__).resolve().parents[2] / "bench" / "data" / "example_benchmark.jsonl"

TOPICS = {
    "t1": ("Capital cities", "Name the capital city of a country.", "What is the capital of {}?"),
    "t2": ("Addition", "Add two whole numbers.", "What is {} plus 17?"),
    "t3": ("Chemical symbols", "Give the symbol of an element.", "What is the symbol of {}?"),
    "t4": (
        "Note lengths",
        "Music theory: beats a note lasts.",
        "How many beats does a {} note last?",
    ),
}
# Tasks passed (mean score >= 0.5) by each expert, in t1..t4 order. e2 scores 1/3 on t3.
SKILLS = {"base": "1100", "e1": "1110", "e2": "1100", "e3": "0001"}


def task(task_id: str) -> Task:
    name, description, template = TOPICS[task_id]
    return Task(
        id=task_id,
        name=name,
        description=description,
        capability=name.lower(),
        subject="general",
        difficulty=1,
        grading="exact",
        instances=[
            {"id": f"i{k}", "instruction": template.format(k), "reference": "x"} for k in (1, 2, 3)
        ],
    )


def make_run(run_dir: Path, tiny_base: Path, random_delta: Callable[..., LoraDelta]) -> None:
    """Tasks t1..t4 (pool and ChromaDB index), experts e1..e3, and their evaluations."""
    pool = TaskPool.open(run_dir)
    with TaskIndex(run_dir / "chroma") as index:
        for task_id in TOPICS:
            pool.admit(task(task_id))
            index.upsert(task(task_id))
    pool.retire("t4", "trimmed")  # every task ever active counts, retired ones too
    base = BaseWeights(tiny_base)
    store = ExpertStore(run_dir / "experts")
    for seed, expert_id in enumerate(("e1", "e2", "e3")):
        delta = random_delta(base, 4, seed=seed)
        store.save(ExpertRecord(id=expert_id, base_model=str(tiny_base)), delta, torch.float32)
    evaluations = EvaluationStore(run_dir / "evaluations.jsonl")
    for expert_id, passed in SKILLS.items():
        for task_id, bit in zip(TOPICS, passed, strict=True):
            scores = [1.0, 1.0, 0.0] if bit == "1" else [0.0, 0.0, 0.0]
            if (expert_id, task_id) == ("e2", "t3"):
                scores = [1.0, 0.0, 0.0]
            for k, score in enumerate(scores, start=1):
                evaluations.add(EvalRecord(expert_id=expert_id, task_id=task_id,
                                           instance_id=f"i{k}", score=score))  # fmt: skip


@pytest.fixture
def stack() -> Iterator[tuple[FakePopulation, StubOpenAI]]:
    references = {item.instruction(): item.answer for item in load_benchmark(BENCHMARK)}
    references["What is the capital city of Japan?"] = "Tokyo"
    always_first = '{"reasoning": "the first one", "best": 1}'
    with FakePopulation(references) as population, StubOpenAI([], default=always_first) as judge:
        yield population, judge
    close_all()


@pytest.fixture
def ctx(
    tmp_path: Path,
    tiny_base: Path,
    random_delta: Callable[..., LoraDelta],
    stack: tuple[FakePopulation, StubOpenAI],
) -> Context:
    population, judge = stack
    ctx = Context(
        runs_dir=str(tmp_path / "runs"),
        run_id="tf",
        cache_dir=str(tmp_path / "cache"),
        base_model=str(tiny_base),
        server_url=population.url.removesuffix("/v1"),
        judge_base_url=judge.url,
        judge_model="stub",
        judge_retries=0,
        request_retries=0,
        lora_rank=8,
    )
    make_run(ctx.run_dir, tiny_base, random_delta)
    RunDir(ctx.run_dir).record_config(ctx)
    return ctx


def test_greedy_pick_and_baselines_from_the_runs_skill_matrix(ctx: Context) -> None:
    skills = run_skills(ctx.run_dir, threshold=0.5)
    assert skills.experts == ["base", "e1", "e2", "e3"]
    assert skills.tasks == ["t1", "t2", "t3", "t4"]
    assert ["".join("1" if b else "0" for b in row) for row in skills.solved] == list(
        SKILLS.values()
    )
    first_only = run_skills(ctx.run_dir, threshold=0.5, instances_per_task=1)
    assert first_only.solved[2].tolist() == [True, True, True, False]  # e2 scored 1 on t3/i1
    plan = choose_task_forces(skills, 2, seed="base", random_seed=3, seed_temperature=0.7)
    forces = {f.name: f for f in plan.task_forces()}
    # Greedy: e1 covers 3 tasks; only e3 adds the 4th. Top fitness takes e1, then base
    # (equal to e2 in fitness, earlier), which adds nothing.
    assert (forces["greedy"].members, forces["greedy"].coverage) == (["e1", "e3"], 1.0)
    assert (forces["top_fitness"].members, forces["top_fitness"].coverage) == (["e1", "base"], 0.75)
    drawn = forces["random"].members
    assert len(set(drawn)) == 2 and set(drawn) <= set(SKILLS)
    bigger = choose_task_forces(skills, 3, seed="base", random_seed=3)
    assert bigger.baselines[1].members[:2] == drawn  # a smaller N is a prefix: no new answers
    assert forces["seed_samples"].members == ["base", "base"]
    assert forces["seed_samples"].temperature == 0.7 and forces["seed_samples"].coverage is None

    kept = choose_task_forces(skills, 2, seed="base", required=["e3"])
    assert kept.selected.members == ["e3", "e1"]
    with pytest.raises(ValueError, match="required member: .*'nobody' has no evaluations"):
        choose_task_forces(skills, 2, seed="base", required=["nobody"])

    path = save_plan(ctx.run_dir, plan)
    saved = json.loads(path.read_text())
    assert path.name == "taskforce.json" and saved["selected"]["members"] == ["e1", "e3"]
    assert [b["name"] for b in saved["baselines"]] == ["top_fitness", "random", "seed_samples"]


def test_route_prefers_the_member_passing_the_nearest_task(ctx: Context) -> None:
    skills = run_skills(ctx.run_dir, threshold=0.5)
    members = ["e1", "e3", "base"]
    assert members[route(skills, members, ["t4", "t1"])] == "e3"
    assert members[route(skills, members, ["t1", "t4"])] == "e1"  # e1 and base pass; e1 fitter
    assert route(skills, ["e2", "base"], ["t1"]) == 0  # equal in every way: the earlier one
    assert members[route(skills, members, [])] == "e1"


def expected_answers(population: FakePopulation, members: list[str], question: str) -> list[str]:
    return [population.answer(member, question) for member in members]


def test_the_graph_fans_out_to_every_member_and_selects(
    ctx: Context, stack: tuple[FakePopulation, StubOpenAI]
) -> None:
    population, _ = stack
    question = "What is the capital city of Japan?"
    result = asyncio.run(graph.ainvoke({"question": question, "selector": "majority"}, context=ctx))
    assert result["members"] == ["e1", "e3", "base"]  # greedy, then the fitter of base/e2
    assert Counter(population.chats) == Counter((m, question) for m in result["members"])
    texts = expected_answers(population, result["members"], question)
    assert [a["text"] for a in result["answers"]] == texts
    want = majority(texts)
    assert (
        result["winner"] == result["members"][want.index] and result["answer"] == texts[want.index]
    )
    assert result["decided_by"] == "majority" and result["why"] == want.why
    assert result["tokens"] == 3 * 8 and result["error"] == ""
    assert json.loads((ctx.run_dir / "taskforce.json").read_text())["n"] == 3


def test_the_judge_selector_falls_back_to_majority_when_the_judge_writes_no_selection(
    ctx: Context, stack: tuple[FakePopulation, StubOpenAI]
) -> None:
    population, _ = stack
    members = ["e1", "e3", "base"]
    question = next(
        q for q in population.references if len(set(expected_answers(population, members, q))) > 1
    )
    with FakeRoles({}) as roles:  # answers "{}" to a Selection request: malformed
        judged = Context(**{**ctx.to_dict(), "judge_base_url": roles.url})
        result = asyncio.run(graph.ainvoke({"question": question}, context=judged))
    texts = expected_answers(population, members, question)
    assert result["decided_by"] == "majority" and result["why"].startswith("judge failed")
    assert result["answer"] == texts[majority(texts).index]


def test_the_graph_asks_one_member_by_id_and_refuses_unknown_ids(
    ctx: Context, stack: tuple[FakePopulation, StubOpenAI]
) -> None:
    population, _ = stack
    result = asyncio.run(graph.ainvoke({"question": "Hi?", "model": "e3"}, context=ctx))
    assert (result["winner"], result["decided_by"]) == ("e3", "single")
    assert population.chats == [("e3", "Hi?")]
    with pytest.raises(ValueError, match="unknown model 'e2'"):
        asyncio.run(graph.ainvoke({"question": "Hi?", "model": "e2"}, context=ctx))


def test_the_router_sends_a_question_to_the_member_of_the_nearest_task(
    ctx: Context, stack: tuple[FakePopulation, StubOpenAI]
) -> None:
    population, _ = stack
    routed = Context(**{**ctx.to_dict(), "taskforce_router": True})
    question = "How many beats does a half note last in 4/4 time?"
    result = asyncio.run(graph.ainvoke({"question": question}, context=routed))
    assert result["winner"] == "e3" and population.chats == [("e3", question)]
    assert result["why"].startswith("routed to e3 by the nearest tasks (Note lengths")


def test_the_web_app_speaks_openai_chat_completions(
    ctx: Context, stack: tuple[FakePopulation, StubOpenAI]
) -> None:
    population, judge = stack
    question = next(
        q
        for q in population.references
        if len(set(expected_answers(population, ["e1", "e3", "base"], q))) > 1
    )
    client = TestClient(create_app(ctx))
    models = [m["id"] for m in client.get("/v1/models").json()["data"]]
    assert models == ["taskforce", "e1", "e3", "base"]
    messages = [{"role": "user", "content": question}]
    reply = client.post("/v1/chat/completions", json={"model": "taskforce", "messages": messages})
    assert reply.status_code == 200
    body = reply.json()
    texts = expected_answers(population, ["e1", "e3", "base"], question)
    assert body["object"] == "chat.completion" and body["model"] == "taskforce"
    assert body["choices"][0]["message"]["content"] in texts
    assert body["acdc"]["decided_by"] == "judge" and len(judge.requests) == 1
    assert [a["text"] for a in body["acdc"]["answers"]] == texts
    assert body["usage"]["completion_tokens"] == 3 * 8 + 15  # members, then the judge
    alone = client.post("/v1/chat/completions", json={"model": "e1", "messages": messages})
    assert alone.json()["acdc"]["winner"] == "e1"
    missing = client.post("/v1/chat/completions", json={"model": "gpt-4", "messages": messages})
    assert missing.status_code == 404 and "does not exist" in missing.json()["error"]["message"]
    bad = client.post("/v1/chat/completions", json={"model": "taskforce", "messages": []})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"


def test_the_web_app_streams_like_an_openai_server(
    ctx: Context, stack: tuple[FakePopulation, StubOpenAI]
) -> None:
    population, _ = stack
    members = ["e1", "e3", "base"]
    question = next(
        q for q in population.references if len(set(expected_answers(population, members, q))) > 1
    )
    web = uvicorn.Server(
        uvicorn.Config(create_app(ctx), host="127.0.0.1", port=0, log_level="warning")
    )
    thread = threading.Thread(target=web.run, daemon=True)
    thread.start()
    try:
        while not web.started:
            time.sleep(0.05)
        port = web.servers[0].sockets[0].getsockname()[1]
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="-", timeout=60)
        stream = client.chat.completions.create(
            model="taskforce",
            messages=[{"role": "user", "content": question}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
        quiet = client.chat.completions.create(
            model="e1", messages=[{"role": "user", "content": question}], stream=True
        )
        alone = list(quiet)
    finally:
        web.should_exit = True
        thread.join(timeout=30)
    assert {c.object for c in chunks} == {"chat.completion.chunk"} and len(
        {c.id for c in chunks}
    ) == 1
    with_choices = [c for c in chunks if c.choices]
    assert with_choices[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in with_choices)
    final = with_choices[-1]
    assert final.choices[0].finish_reason == "stop"
    details = (final.model_extra or {})["acdc"]
    assert details["members"] == members and details["decided_by"] == "judge"
    texts = expected_answers(population, members, question)
    assert text == texts[members.index(details["winner"])]
    assert len(with_choices) >= 3  # the role, the answer, the end
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 3 * 8 + 15
    assert alone[-1].usage is None and alone[-1].choices[0].finish_reason == "stop"
    assert "".join(c.choices[0].delta.content or "" for c in alone) == texts[0]


def test_stream_pieces_join_back_to_the_text() -> None:
    text = "Answer: the capital of Japan is Tokyo, and " + "x" * 70 + " end"
    parts = pieces(text, 16)
    assert "".join(parts) == text and all(0 < len(p) <= 64 for p in parts) and len(parts) > 3


def solves(expert_id: str, instruction: str) -> bool:
    """FakePopulation's rule: the right answer when this hash is even (base: divisible by 3)."""
    digest = int(hashlib.sha256(f"{expert_id}|{instruction}".encode()).hexdigest(), 16)
    return digest % 3 == 0 if expert_id == "base" else digest % 2 == 0


def test_eval_coverage_reports_and_caches_every_answer(
    ctx: Context, stack: tuple[FakePopulation, StubOpenAI], capsys: pytest.CaptureFixture[str]
) -> None:
    population, judge = stack
    items = load_benchmark(BENCHMARK)
    assert len(items) == 20 and sum(1 for i in items if i.options) == 10
    args = ["eval", "coverage", "--run", str(ctx.run_dir), "--benchmark", str(BENCHMARK)]
    main([*args, "--n", "3"])
    printed = capsys.readouterr().out
    result = json.loads((ctx.run_dir / "eval" / "example_benchmark-n3.json").read_text())
    right = {e: [solves(e, i.instruction()) for i in items] for e in SKILLS}
    for expert_id, accuracy in result["members"].items():
        assert accuracy == sum(right[expert_id]) / 20
        assert f"{expert_id:<40} {accuracy:.3f}" in printed
    seed_alone = sum(right["base"]) / 20
    assert result["seed"] == {
        "expert_id": "base",
        "temperature": 0.0,
        "accuracy": seed_alone,
        "unanswered": 0,
    }
    # Benchmark answers get the subjects' token limit, not the endpoint's shorter one.
    limits = {r["max_tokens"] for r in population.requests if "messages" in r}
    assert limits == {ctx.subject_max_tokens} and ctx.subject_max_tokens > ctx.answer_max_tokens
    assert f"{'base':<40} {seed_alone:.3f}" in printed.split("seed alone (T=0):")[1]
    forces = result["task_forces"]
    assert set(forces) == {"greedy", "top_fitness", "random", "seed_samples"}
    assert forces["greedy"]["run_coverage"] == 1.0 and result["pool_tasks"] == 4
    assert f"coverage {forces['greedy']['coverage']:.3f}  pool 1.000" in printed
    assert f"coverage {forces['seed_samples']['coverage']:.3f}  pool   -  " in printed
    assert forces["greedy"]["members"] == ["e1", "e3", "base"]
    assert forces["seed_samples"]["members"] == ["base"] * 3
    for name, force in forces.items():
        covered = [any(right[m][q] for m in force["members"]) for q in range(20)]
        assert force["coverage"] == sum(covered) / 20
        assert f"{name:<13} coverage {force['coverage']:.3f}  pool" in printed
        # Three voters never tie. A wrong answer ("something else") names no option and no
        # number, so it does not vote there; on the four word answers it needs two of three.
        votes = [sum(right[m][q] for m in force["members"]) for q in range(20)]
        words = [not i.options and not i.answer.isdigit() for i in items]
        assert sum(words) == 4
        wins = [v >= 2 if words[q] else v > 0 for q, v in enumerate(votes)]
        assert force["best_of_n"]["majority"] == sum(wins) / 20
        assert 0 <= force["best_of_n"]["judge"] <= force["coverage"]
        assert 0 <= force["best_of_n"]["tournament"] <= force["coverage"]
        assert force["judge_fallbacks"] == 0
    # Seven answer sources (four experts, three seed samples) x 20 questions, each once.
    assert result["answers"] == {"generated": 140, "cached": 0}
    cache = (ctx.run_dir / "eval" / "answers.jsonl").read_text().splitlines()
    assert len(cache) == len(population.chats) == 140

    main([*args, "--n", "2"])
    printed = capsys.readouterr().out
    assert len(population.chats) == 140  # a smaller N reuses every answer
    assert "0 generated" in printed
    smaller = json.loads((ctx.run_dir / "eval" / "example_benchmark-n2.json").read_text())
    assert smaller["task_forces"]["greedy"]["members"] == ["e1", "e3"]
    assert smaller["answers"] == {"generated": 0, "cached": 100}

    # A judge that never answers in JSON: each pick among differing answers falls back to
    # majority, and the result counts them (a failing judge is not a judge picking badly).
    judge.default = "no JSON here"
    main([*args, "--n", "2"])
    printed = capsys.readouterr().out
    failing = json.loads((ctx.run_dir / "eval" / "example_benchmark-n2.json").read_text())
    for force in failing["task_forces"].values():
        answers = [expected_answers(population, force["members"], i.instruction()) for i in items]
        assert force["judge_fallbacks"] == sum(len(set(texts)) > 1 for texts in answers)
    assert failing["task_forces"]["greedy"]["judge_fallbacks"] > 0
    assert "the judge failed on" in printed

    # The seed alone answers even where no task force holds it at the members' temperature.
    (ctx.run_dir / "eval" / "answers.jsonl").unlink()
    main([*args, "--n", "1"])
    single = json.loads((ctx.run_dir / "eval" / "example_benchmark-n1.json").read_text())
    held = {(m, f["temperature"]) for f in single["task_forces"].values() for m in f["members"]}
    assert ("base", 0.0) not in held
    assert single["seed"]["accuracy"] == seed_alone > 0


def test_eval_coverage_counts_answers_cut_before_their_answer_line_as_unanswered(
    ctx: Context, stack: tuple[FakePopulation, StubOpenAI], capsys: pytest.CaptureFixture[str]
) -> None:
    population, _ = stack
    population.truncate = {"e3"}  # its reasoning names the right answer, then the cut
    args = ["eval", "coverage", "--run", str(ctx.run_dir), "--benchmark", str(BENCHMARK)]
    main([*args, "--n", "3"])
    printed = capsys.readouterr().out
    result = json.loads((ctx.run_dir / "eval" / "example_benchmark-n3.json").read_text())
    assert result["members"]["e3"] == 0.0 and result["unanswered"]["e3"] == 20
    assert result["unanswered"]["e1"] == 0 and result["members"]["e1"] > 0
    assert f"{'e3':<40} 0.000  unanswered 20" in printed
    assert result["task_forces"]["greedy"]["unanswered"] == 20
    assert "20 member answers cut before an answer (counted wrong)" in printed
    cached = [json.loads(line) for line in (ctx.run_dir / "eval" / "answers.jsonl").open()]
    assert {r["finish_reason"] for r in cached if r["expert_id"] == "e3"} == {"length"}
    # The selectors' judge is calibrated on the labelled pairs too (this stub writes no
    # verdicts: every pair ungraded).
    calibration = result["judge_calibration"]
    assert calibration["pairs"] == 40 and calibration["ungraded"] == 40
    assert calibration["agreement"] == 0.0 and not calibration["trusted"]
    assert "judge of the judge and tournament selectors" in printed
    assert (ctx.run_dir / "eval" / "judge_calibration.json").is_file()


def admit_late_task(ctx: Context, population: FakePopulation) -> list[str]:
    """Task t5, admitted late: only e1 was evaluated on it (passing). Its instructions."""
    late = Task(
        id="t5",
        name="Planet order",
        description="Which planet is where.",
        capability="astronomy",
        subject="general",
        difficulty=1,
        grading="exact",
        instances=[
            {"id": f"i{k}", "instruction": f"Which planet is number {k} from the sun?",
             "reference": "x"} for k in (1, 2, 3)
        ],
    )  # fmt: skip
    TaskPool.open(ctx.run_dir).admit(late)
    evaluations = EvaluationStore(ctx.run_dir / "evaluations.jsonl")
    for instance in late.instances:
        population.references[instance.instruction] = "x"
        evaluations.add(EvalRecord(expert_id="e1", task_id="t5", instance_id=instance.id,
                                   score=1.0))  # fmt: skip
    return [i.instruction for i in late.instances]


def test_task_forces_are_picked_from_a_completed_skill_matrix(
    ctx: Context, stack: tuple[FakePopulation, StubOpenAI]
) -> None:
    population, _ = stack
    instructions = admit_late_task(ctx, population)
    res = taskforce_resources(ctx)
    plan = res.plan(ctx)
    skills = res.skills()
    asked = [(m, p) for m, p in population.chats if p.startswith("Which planet")]
    assert sorted(m for m, _ in asked) == sorted(["base", "e2", "e3"] * 3)  # missing ones only
    assert skills.missing == 0 and plan.missing_cells == 0
    column = skills.tasks.index("t5")
    for expert_id in ("base", "e2", "e3"):
        share = sum(solves(expert_id, q) for q in instructions) / 3
        assert skills.solved[skills.row(expert_id), column] == (share >= 0.5)
    store = EvaluationStore(ctx.run_dir / "evaluations.jsonl")
    assert {r.expert_id for r in store.records() if r.task_id == "t5"} == {"base", "e1", "e2", "e3"}
    close_all()
    taskforce_resources(ctx).plan(ctx)  # a second pick evaluates nothing again
    assert len([p for _, p in population.chats if p.startswith("Which planet")]) == 9


def test_without_completion_a_missing_cell_is_masked_never_a_fail(
    ctx: Context, stack: tuple[FakePopulation, StubOpenAI]
) -> None:
    population, _ = stack
    admit_late_task(ctx, population)
    ctx.complete_skills = False
    skills = taskforce_resources(ctx).skills()
    assert not [p for _, p in population.chats if p.startswith("Which planet")]
    column = skills.tasks.index("t5")
    assert skills.known is not None and skills.missing == 3  # base, e2, e3 on t5
    assert not skills.known[skills.row("e3"), column] and skills.known[skills.row("e1"), column]
    # e3 passes t4 of the four tasks it was asked: 1/4, not 1/5 as if t5 were a fail.
    assert skills.fitness[skills.row("e3")] == pytest.approx(1 / 4)
    assert skills.fitness[skills.row("e1")] == pytest.approx(4 / 5)
