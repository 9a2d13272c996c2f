"""``acdc plan``: validation without servers, call counts from the config, measured means."""

import json
import time
from pathlib import Path

import pytest

from acdc.cli import main
from acdc.context import Context
from acdc.planner import ASSUMED, measure, plan

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
    run, first, later, adapt = (data[k] for k in ("run", "first_generation",
                                                  "later_generation", "adaptation"))  # fmt: skip
    for role in ("subjects", "judge", "scientist", "curator"):
        expected = (
            first[role]["calls"]  # type: ignore[index]
            + (ctx.generations - 1) * later[role]["calls"]  # type: ignore[index]
            + data["adaptations"] * adapt[role]["calls"]  # type: ignore[index, operator]
        )
        # Each stretch is rounded on its own: allow a call per stretch repeated.
        slack = 1 + ctx.generations + data["adaptations"]  # type: ignore[operator]
        assert abs(run[role]["calls"] - expected) <= slack, role  # type: ignore[index]
    assert data["adaptations"] == ctx.generations // ctx.adapt_every
    assert data["minutes"] > 0  # type: ignore[operator]


def test_smoke_counts_follow_the_loop(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_plan(capsys, "--config", str(CONFIGS / "smoke.yaml"))
    # 1 seed + 2 bred + 2 children answer 12 tasks x 3 instances, plus 3 sanity prompts
    # for each of the 4 bred experts; later generations: the 2 children only.
    assert data["first_generation"]["subjects"]["calls"] == 5 * 12 * 3 + 4 * 3  # type: ignore[index]
    assert data["later_generation"]["subjects"]["calls"] == 2 * 12 * 3 + 2 * 3  # type: ignore[index]
    # The pool grows from 10 seed tasks to 12: 2 / 0.5 acceptance = 4 scientist calls.
    assert data["first_generation"]["scientist"]["calls"] == 4  # type: ignore[index]
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
        {"event": "generation", "generation": 1},
    ]  # fmt: skip
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(x) for x in lines))
    measured = measure(tmp_path)
    assert measured.subject_tokens == 40 and measured.judge_tokens_per_evaluation == 30
    assert measured.acceptance == 0.25
    assert measured.role_tokens_per_candidate == {"scientist": 1000, "judge": 500}
    ctx = Context(generations=1, reflection_rounds=0, initial_pool=20, task_batch=8)
    result = plan(ctx, measured)
    subjects = result.first["subjects"]
    sanity = (ctx.initial_population + ctx.children_per_generation) * ASSUMED["sanity_prompts"]
    assert subjects.completion_tokens == pytest.approx((subjects.calls - sanity) * 40 + sanity * 48)
    scientist = result.first["scientist"]
    assert scientist.calls == 40  # (20 - 10) / 0.25 candidates, one call each
    assert scientist.prompt_tokens + scientist.completion_tokens == pytest.approx(40 * 1000)
    judge = result.later["judge"]
    assert judge.prompt_tokens + judge.completion_tokens == pytest.approx(
        result.later["subjects"].calls * 30 - sanity_of(ctx) * 30, rel=1e-6
    )


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
