"""``acdc plan``: validation without servers, call counts from the config, measured means."""

import json
import time
from pathlib import Path

import pytest

from acdc.cli import main
from acdc.context import Context
from acdc.planner import ASSUMED, plan
from acdc.planner_measure import measure
from acdc.tasks import load_tasks, seed_tasks_dir

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def run_plan(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    main(["plan", *args, "--json"])
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", ["smoke", "default", "paper"])
def test_each_bundled_config_validates_and_adds_up(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    data = run_plan(capsys, "--config", str(CONFIGS / f"{name}.yaml"), "--gpus", "8",
                    "--gpu-tokens-per-s", "2500")  # fmt: skip
    assert time.monotonic() - started < 20  # no server, no model load
    ctx = Context.load(CONFIGS / f"{name}.yaml")
    run, gens = data["run"], data["per_generation"]
    assert [g["generation"] for g in gens] == list(range(1, ctx.generations + 1))  # type: ignore[union-attr, index]
    for role in ("subjects", "judge", "scientist", "curator"):
        summed = sum(g["roles"][role]["calls"] for g in gens)  # type: ignore[union-attr, index]
        # Each generation is rounded on its own: allow a call per generation.
        assert abs(run[role]["calls"] - summed) <= ctx.generations, role  # type: ignore[index]
    assert data["adaptations"] == ctx.generations // ctx.adapt_every
    assert data["minutes"] > 0  # type: ignore[operator]


def test_smoke_counts_follow_the_loop(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_plan(capsys, "--config", str(CONFIGS / "smoke.yaml"))
    first, second = (g["roles"] for g in data["per_generation"][:2])  # type: ignore[index]
    seeds = len(load_tasks(seed_tasks_dir()))
    assert seeds > 8  # more bundled seed tasks than the smoke pool's target: no growth
    # 1 seed + 2 bred + 2 children answer the seed tasks x 3 instances, plus 3 sanity
    # prompts for each of the 4 bred experts; the next generation: the 2 children, then
    # (it adapts) the archive of 3 and the seed answer the 3 x 0.5 admitted variants.
    assert first["subjects"]["calls"] == 5 * seeds * 3 + 4 * 3
    assert second["subjects"]["calls"] == 2 * seeds * 3 + 2 * 3 + 4 * 1.5 * 3
    assert first["scientist"]["calls"] == 0
    assert second["scientist"]["calls"] == 3  # the drawn parents; the pool needs no refill
    assert "hours" not in data  # no throughput given


def test_paper_config_is_valid_on_a_cpu_machine_and_its_gpus_are_checked(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    paper = CONFIGS / "paper.yaml"
    data = run_plan(capsys, "--config", str(paper), "--gpus", "8", "--gpu-tokens-per-s", "3000")
    assert data["active_pool"] == 250  # initial_pool 300 is capped by pool_max
    too_big = tmp_path / "big.yaml"
    too_big.write_text(paper.read_text() + "data_parallel_size: 4\ntensor_parallel_size: 4\n")
    with pytest.raises(SystemExit) as stop:
        main(["plan", "--config", str(too_big), "--gpus", "8"])
    assert stop.value.code == 2


def test_a_bad_config_is_refused_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("crossover: average\n")
    with pytest.raises(SystemExit) as stop:
        main(["plan", "--config", str(bad)])
    assert stop.value.code == 2
    assert "crossover" in caplog.text


def test_a_previous_run_gives_the_tokens_per_call(tmp_path: Path) -> None:
    lines = [
        {"event": "phase", "phase": "evaluate", "calls": 100,
         "tokens": {"subjects": 4000, "judge": 3000}},
        {"event": "phase", "phase": "seed_tasks", "accepted": ["a", "b"],
         "rejected": {"duplicate": 6}, "tokens": {"scientist": 8000, "judge": 4000}},
        {"event": "generation", "generation": 1, "pool_size": 12},
        {"event": "phase", "phase": "adapt_tasks", "accepted": ["c"], "pool_size": 12,
         "rejected": {"verify": 1}, "retired": {"replaced": 1},
         "tokens": {"scientist": 600, "judge": 200}},
    ]  # fmt: skip
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(x) for x in lines))
    measured = measure(tmp_path)
    assert measured.subject_tokens == 40 and measured.judge_tokens_per_evaluation == 30
    create, adapt = measured.drafting["create"], measured.drafting["adapt"]
    assert create.acceptance == 0.25 and adapt.acceptance == 0.5
    assert create.tokens_per_candidate == {"scientist": 1000, "judge": 500}
    assert adapt.tokens_per_candidate == {"scientist": 300, "judge": 100}
    assert measured.retired_share == 0.0 and measured.joining_share == 0.0  # it replaced
    ctx = Context(generations=2, adapt_every=2, reflection_rounds=0, initial_pool=20, task_batch=8)
    result = plan(ctx, measured)
    first, second = (g.loads for g in result.generations)
    subjects = first["subjects"]
    sanity = (ctx.initial_population + ctx.children_per_generation) * ASSUMED["sanity_prompts"]
    assert subjects.completion_tokens == pytest.approx((subjects.calls - sanity) * 40 + sanity * 48)
    scientist = first["scientist"]
    drafts = (20 - len(load_tasks(seed_tasks_dir()))) / 0.25  # from the seed tasks to 20
    assert scientist.calls == drafts  # one call each
    assert scientist.prompt_tokens + scientist.completion_tokens == pytest.approx(drafts * 1000)
    # The adaptation's candidates cost what the measured adaptation's did.
    adapting = second["scientist"]
    assert adapting.calls == ctx.adapt_parents
    assert adapting.prompt_tokens + adapting.completion_tokens == pytest.approx(
        ctx.adapt_parents * 300
    )
    judge = second["judge"]
    drafts = ctx.adapt_parents * 100
    assert judge.prompt_tokens + judge.completion_tokens == pytest.approx(
        (second["subjects"].calls - sanity_of(ctx)) * 30 + drafts, rel=1e-6
    )


def test_a_pool_that_loses_its_tasks_is_refilled_within_the_adaptation_budget(
    tmp_path: Path,
) -> None:
    # A weak seed: 13 of 15 tasks retired at the adaptation, 2 admitted, both joining.
    lines = [
        {"event": "phase", "phase": "evaluate", "calls": 100, "tokens": {"subjects": 5000}},
        {"event": "generation", "generation": 1, "pool_size": 15},
        {"event": "phase", "phase": "adapt_tasks", "accepted": ["a", "b"], "pool_size": 4,
         "rejected": {"verify": 4}, "retired": {"impossible": 13}, "tokens": {"scientist": 6000}},
    ]  # fmt: skip
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(x) for x in lines))
    measured = measure(tmp_path)
    assert measured.retired_share == pytest.approx(13 / 15)
    assert measured.joining_share == 1.0
    base = {"generations": 4, "adapt_every": 2, "initial_pool": 15, "instances_per_task": 3}
    # 4 refill proposals at most: the pool comes back only part of the way.
    tight = Context(**base, adapt_parents=16, adapt_budget=20)  # type: ignore[arg-type]
    ample = Context(**base, adapt_parents=16, adapt_budget=64)  # type: ignore[arg-type]
    weak, refilled, kept = plan(tight, measured), plan(ample, measured), plan(tight)
    pools = [round(g.pool, 2) for g in weak.generations]
    # Generation 3 evaluates on what survived generation 2's adaptation and the refill.
    survived = 15 * (1 - 13 / 15) + 16 / 3
    assert pools[:3] == [15, 15, round(survived + 4 / 3, 2)]
    calls = 1 + tight.reflection_rounds  # scientist calls per proposal
    assert weak.generations[1].loads["scientist"].calls == 20 * calls
    later = [g.loads["subjects"].calls for g in weak.generations]
    sanity = tight.children_per_generation * ASSUMED["sanity_prompts"]
    evaluated_on = weak.generations[2].pool
    assert later[2] == pytest.approx(tight.children_per_generation * evaluated_on * 3 + sanity)
    # With room in the budget the pool is back at its target, at the proposals it takes.
    assert round(refilled.generations[2].pool, 2) == 15
    refills = (15 - survived) * 3
    scientist = refilled.generations[1].loads["scientist"].calls
    assert scientist == pytest.approx((16 + refills) * calls)
    # Assumed rates retire nothing: the same config keeps its pool (and costs more).
    assert [g.pool for g in kept.generations][2] > pools[2]
    assert kept.total["subjects"].calls > weak.total["subjects"].calls


def test_a_judge_that_graded_nothing_is_planned_to_grade_nothing(tmp_path: Path) -> None:
    # An uncalibrated judge refuses rubric tasks: the measured run has no judge tokens.
    line = {"event": "phase", "phase": "evaluate", "calls": 50,
            "tokens": {"subjects": 900, "judge": 0}}  # fmt: skip
    (tmp_path / "metrics.jsonl").write_text(json.dumps(line))
    ctx = Context(generations=3, validate_tasks=False, judge_calibration_size=0)
    later = plan(ctx, measure(tmp_path)).generations[2].loads
    assert later["subjects"].calls > 0 and later["judge"].calls == 0
    assert plan(ctx).generations[2].loads["judge"].calls > 0  # assumed: a share is graded


def sanity_of(ctx: Context) -> float:
    return ctx.children_per_generation * ASSUMED["sanity_prompts"]


def test_prices_give_dollars_and_hosted_roles_use_no_gpu_time() -> None:
    local = Context(generations=3)
    hosted = Context(generations=3, judge_model="openai:gpt-4o-mini", judge_price=[0.15, 0.6])
    local_plan, hosted_plan = plan(local), plan(hosted)
    judge = hosted_plan.total["judge"]
    expected = (judge.prompt_tokens * 0.15 + judge.completion_tokens * 0.6) / 1e6
    assert hosted_plan.dollars(hosted) == {"judge": pytest.approx(expected)}
    assert local_plan.dollars(local) == {}
    saved = judge.completion_tokens / 1000 / 3600
    assert local_plan.hours(1, 1000, local) - hosted_plan.hours(1, 1000, hosted) == pytest.approx(
        saved
    )
