"""Judge calibration: agreement with labelled pairs decides whether rubric tasks count.

The judge's words come from stub OpenAI-compatible servers: one passes everything (the
bundled 135M judge's behaviour, 50 % agreement), one grades as the labels say.
"""

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from acdc.agents.calibration import (
    BUNDLED_PAIRS,
    PairsFileError,
    ensure_calibration,
    load_pairs,
    rubric_off,
)
from acdc.agents.judge import Judge
from acdc.agents.scientist import Proposal, Scientist
from acdc.agents.structured import caller_for
from acdc.agents.task_pipeline import TaskPipeline
from acdc.context import Context
from tests.stub_openai import StubOpenAI

PAIRS = load_pairs(BUNDLED_PAIRS)
ALWAYS_PASS = json.dumps({"reasoning": "looks fine", "score": 1.0})


def as_labelled(body: dict[str, Any]) -> str:
    """A judge that agrees with the people who labelled the pairs."""
    prompt = body["messages"][-1]["content"]
    shown = [p for p in PAIRS if p.instruction in prompt and p.response in prompt]
    label = max(shown, key=lambda p: len(p.response)).label
    return json.dumps({"reasoning": "checked", "score": float(label)})


def settings(stub: StubOpenAI, **over: Any) -> Context:
    return Context(judge_base_url=stub.url, judge_model="stub", judge_retries=0, **over)


def measure(stub: StubOpenAI, path: Path, **over: Any):
    ctx = settings(stub, **over)
    judge = Judge(caller_for(ctx, "judge", stub.url))
    return ensure_calibration(ctx, judge, path, asyncio.run)


def test_the_bundled_pairs_are_half_right_half_wrong_and_a_sample_stays_balanced():
    assert len(PAIRS) == 40 and sum(p.label for p in PAIRS) == 20
    sample = load_pairs(BUNDLED_PAIRS, size=10)
    assert len(sample) == 10 and sum(p.label for p in sample) == 5


def test_a_malformed_pairs_file_names_its_line(tmp_path: Path):
    path = tmp_path / "pairs.jsonl"
    path.write_text(BUNDLED_PAIRS.read_text().splitlines()[0] + '\n{"instruction": "x"}\n')
    with pytest.raises(PairsFileError, match=r"pairs.jsonl:2"):
        load_pairs(path)


def test_a_pairs_file_with_a_huge_line_or_too_many_lines_is_refused_by_name(tmp_path: Path):
    # Before: read whole into memory, then every line judged at each calibration.
    first = BUNDLED_PAIRS.read_text().splitlines()[0]
    long_line = tmp_path / "long.jsonl"
    long_line.write_text(first + "\n" + "x" * (2 * 1024**2) + "\n")
    with pytest.raises(PairsFileError, match=r"long.jsonl:2: line over the cap"):
        load_pairs(long_line)
    many = tmp_path / "many.jsonl"
    many.write_text((first + "\n") * 10_001)
    with pytest.raises(PairsFileError, match=r"many.jsonl: over 10,000 lines"):
        load_pairs(many)


def test_a_judge_passing_everything_is_not_trusted_with_rubric_tasks(tmp_path: Path, capsys):
    path = tmp_path / "judge_calibration.json"
    with StubOpenAI([], default=ALWAYS_PASS) as stub:
        result = measure(stub, path)
    assert result.agreement == 0.5 and result.false_pass_rate == 1.0
    assert result.false_fail_rate == 0.0 and result.ungraded == 0 and not result.trusted
    saved = json.loads(path.read_text())
    assert saved["agreement"] == 0.5 and saved["trusted"] is False
    printed = capsys.readouterr().out
    assert "agreement 50% on 40 labelled pairs (bar 75%), false passes 100%" in printed
    assert "rubric tasks are not admitted" in printed
    assert rubric_off(tmp_path)


def test_a_judge_agreeing_with_the_labels_is_trusted(tmp_path: Path):
    with StubOpenAI([], default=as_labelled) as stub:
        result = measure(stub, tmp_path / "judge_calibration.json")
    assert result.agreement == 1.0 and result.false_pass_rate == 0.0 and result.trusted
    assert not rubric_off(tmp_path)


def test_a_saved_calibration_is_reused_under_the_current_bar_and_override(tmp_path: Path):
    path = tmp_path / "judge_calibration.json"
    with StubOpenAI([], default=ALWAYS_PASS) as stub:
        measure(stub, path)
        asked = len(stub.requests)
        lowered = measure(stub, path, judge_min_agreement=0.5)
        overridden = measure(stub, path, trust_judge=True)
        assert len(stub.requests) == asked == 40  # graded once
    assert lowered.trusted and not lowered.overridden
    assert overridden.trusted and overridden.overridden
    assert "by override (trust_judge)" in overridden.line()
    ctx = Context(trust_judge=True)
    assert not rubric_off(tmp_path, ctx)


def test_a_judge_that_cannot_grade_agrees_with_nobody(tmp_path: Path):
    with StubOpenAI([], default="no JSON") as stub:
        result = measure(stub, tmp_path / "judge_calibration.json", judge_calibration_size=4)
    assert result.pairs == 4 and result.ungraded == 4 and result.agreement == 0.0


def test_an_uncalibrated_judge_refuses_rubric_candidates_before_any_other_check():
    rubric_task = PAIRS[0].task()
    proposal = Proposal(task=rubric_task, reason="", reflections=0, tokens=7)
    with StubOpenAI([], default=ALWAYS_PASS) as stub:
        ctx = settings(stub)
        judge = Judge(caller_for(ctx, "judge", stub.url))
        caller = caller_for(ctx, "scientist", stub.url)
        scientist = Scientist(caller, reflection_rounds=0)
        refusing = TaskPipeline(scientist, judge, None, validate=False, rubric=False)  # type: ignore[arg-type]
        refused = asyncio.run(refusing._check(proposal, None))
        allowed = TaskPipeline(scientist, judge, None, validate=False)  # type: ignore[arg-type]
        checked = asyncio.run(allowed._check(proposal, None))
        assert not stub.requests  # no model call for either
    assert refused.stage == "judge_uncalibrated" and "calibrated judge" in refused.reason
    assert checked.stage != "judge_uncalibrated"
