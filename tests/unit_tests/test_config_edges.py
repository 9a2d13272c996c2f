"""Bad input at the edges, tried as a new user would: each refusal names the file and
the field, exits with status 2 and prints no traceback.

Every case here passed validation, raised a traceback or created a folder before
issue 11.
"""

import logging
from pathlib import Path

import pytest

from acdc.cli import main
from acdc.context import ConfigError, Context

CASES = {
    "generations: 2.5\n": "generations",
    'sanity_check: "no"\n': "sanity_check",
    'seed_adapters: "org/x"\n': "seed_adapters",
    "chroma_port: -1\n": "chroma_port",
    "gpu_memory_utilization: 7.5\n": "gpu_memory_utilization",
    "judge_temperature: -2\n": "judge_temperature",
    "generations: two\n": "generations",
    "scientist_price: 0.5\n": "scientist_price",
    "judge_timeout: .nan\n": "judge_timeout",
}


def refusal(argv: list[str], caplog: pytest.LogCaptureFixture) -> str:
    """The logged refusal of ``acdc argv``; fails if it raised or exited otherwise."""
    caplog.clear()
    with caplog.at_level(logging.ERROR), pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    return "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)


@pytest.mark.parametrize(("text", "field"), CASES.items(), ids=CASES.values())
def test_a_wrong_type_or_range_in_a_config_file_names_file_and_field(
    text: str, field: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    message = refusal(["plan", "--config", str(config)], caplog)
    assert str(config) in message and field in message, message


def test_broken_yaml_names_the_file_and_line(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    config = tmp_path / "broken.yaml"
    config.write_text("generations: 3\nseed_adapters: [a, b\nlora_rank: 8\n")
    message = refusal(["plan", "--config", str(config)], caplog)
    assert str(config) in message and "line 3" in message and "YAML" in message, message


def test_resume_with_a_list_yaml_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    runs = tmp_path / "runs"
    (runs / "R").mkdir(parents=True)
    (runs / "R" / "config.yaml").write_text("run_id: R\ngenerations: 2\n")
    listed = tmp_path / "list.yaml"
    listed.write_text("- generations: 3\n- lora_rank: 8\n")
    argv = ["run", "--resume", "R", "--runs-dir", str(runs), "--config", str(listed)]
    message = refusal(argv, caplog)
    assert str(listed) in message and "mapping" in message, message


def test_a_bad_value_recorded_in_a_run_names_that_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    runs = tmp_path / "runs"
    (runs / "R").mkdir(parents=True)
    (runs / "R" / "config.yaml").write_text("run_id: R\ngenerations: 2.5\n")
    message = refusal(["run", "--resume", "R", "--runs-dir", str(runs)], caplog)
    assert str(runs / "R" / "config.yaml") in message and "generations" in message, message


def test_report_on_a_folder_that_is_not_a_run_refuses_and_creates_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    missing = tmp_path / "no-such-run"
    message = refusal(["report", str(missing)], caplog)
    assert "not an acdc run folder" in message
    assert not missing.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    refusal(["report", str(empty)], caplog)
    assert list(empty.iterdir()) == []


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"generations": 2.5}, "generations"),
        ({"generations": True}, "generations"),
        ({"sanity_check": "no"}, "sanity_check"),
        ({"seed_adapters": "org/x"}, "seed_adapters"),
        ({"seed_adapters": ["a", 3]}, "seed_adapters"),
        ({"run_id": 7}, "run_id"),
        ({"mutation_sigma": float("inf")}, "mutation_sigma"),
        ({"vllm_port": 0}, "vllm_port"),
        ({"curator_temperature": -0.5}, "curator_temperature"),
        ({"gpu_memory_utilization": 0.0}, "gpu_memory_utilization"),
    ],
)
def test_context_checks_each_field_type_and_range(values: dict[str, object], field: str):
    with pytest.raises(ConfigError, match=field) as err:
        Context(**values)  # type: ignore[arg-type]
    assert err.value.field == field


def test_good_values_still_load_and_paths_become_strings(tmp_path: Path):
    ctx = Context(runs_dir=tmp_path, judge_temperature=1, seed_adapters=("a",))  # type: ignore[arg-type]
    assert ctx.runs_dir == str(tmp_path) and ctx.judge_temperature == 1.0
    assert ctx.seed_adapters == ["a"]
