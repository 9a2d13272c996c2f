"""`acdc config` shows each setting's value and source; each `--help` lists what it reads."""

import logging
from pathlib import Path

import pytest

from acdc.cli import main
from acdc.context import GROUPS, Context


def shown(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, tuple[str, str]]:
    """``acdc config argv`` as {setting: (value, source)}; fails if a setting is missing."""
    main(["config", *argv])
    settings = {}
    for line in capsys.readouterr().out.splitlines():
        if line and not line.startswith("#"):
            setting, rest = line.split(": ", 1)
            value, source = rest.split("  # ", 1)
            settings[setting] = (value.strip(), source)
    assert sorted(settings) == sorted(n for names in GROUPS.values() for n in names)
    return settings


def refusal(argv: list[str], caplog: pytest.LogCaptureFixture) -> str:
    """The one logged error line of ``acdc argv``, which must exit with status 2."""
    caplog.clear()
    with caplog.at_level(logging.ERROR), pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "\n" not in errors[0], errors
    return errors[0]


def test_each_source_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    for name in ("ACDC_LORA_RANK", "ACDC_GENERATIONS", "ACDC_ARCHIVE_SIZE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ACDC_MAX_LORAS", "4")
    config = tmp_path / "mine.yaml"
    config.write_text("generations: 3\narchive_size: 6\n")
    settings = shown(["--config", str(config), "--archive-size", "5"], capsys)
    assert settings["lora_rank"] == ("16", "default")
    assert settings["max_loras"] == ("4", "environment ACDC_MAX_LORAS")
    assert settings["generations"] == ("3", f"file {config}")
    assert settings["archive_size"] == ("5", "option --archive-size")


def test_a_resumed_run_shows_its_recorded_settings_under_the_file_and_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.delenv("ACDC_TASK_BATCH", raising=False)
    runs = tmp_path / "runs"
    (runs / "R").mkdir(parents=True)
    recorded = runs / "R" / "config.yaml"
    recorded.write_text("run_id: R\ntask_batch: 5\ngenerations: 2\ndns_k: 4\n")
    config = tmp_path / "more.yaml"
    config.write_text("generations: 6\n")
    argv = ["--resume", "R", "--runs-dir", str(runs), "--config", str(config), "--dns-k", "2"]
    settings = shown(argv, capsys)
    assert settings["task_batch"] == ("5", f"run {recorded}")
    assert settings["generations"] == ("6", f"file {config}")
    assert settings["dns_k"] == ("2", "option --dns-k")
    assert settings["run_id"] == ("R", "option --resume")


def test_the_printed_settings_load_back_as_a_config_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    main(["config", "--seed-adapters", "a,b", "--judge-model", "openai:x", "--dns-k", "2"])
    printed = tmp_path / "printed.yaml"
    printed.write_text(capsys.readouterr().out)
    expected = Context(seed_adapters=["a", "b"], judge_model="openai:x", dns_k=2)
    assert Context.load(printed) == expected


def test_bad_settings_are_one_line_and_status_2(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    assert "lora_rank" in refusal(["config", "--lora-rank", "12"], caplog)
    unknown = tmp_path / "typo.yaml"
    unknown.write_text("lora_rnak: 8\n")
    assert "lora_rnak" in refusal(["config", "--config", str(unknown)], caplog)
    assert "does not exist" in refusal(["config", "--config", str(tmp_path / "no")], caplog)
    runs = str(tmp_path / "runs")
    assert "config.yaml" in refusal(["config", "--resume", "gone", "--runs-dir", runs], caplog)


def help_text(command: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def test_each_subcommand_offers_the_settings_it_reads(capsys: pytest.CaptureFixture[str]):
    plan, evaluate = help_text("plan", capsys), help_text("eval", capsys)
    breed = help_text("breed", capsys)
    assert "--generations" in plan and "--generations" not in evaluate
    assert "--scientist-model" in plan and "--scientist-model" not in evaluate
    assert "--selector" in evaluate and "--selector" not in breed
    assert "breeding settings:" in breed and "judge settings:" not in breed
    assert "--config" not in help_text("report", capsys)
    run = help_text("run", capsys)
    for names in GROUPS.values():
        for name in names:
            assert f"--{name.replace('_', '-')} " in run, name


def test_an_option_the_subcommand_does_not_read_is_refused(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as exit_info:
        main(["breed", "--parents", "base", "--judge-model", "openai:x"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --judge-model" in capsys.readouterr().err
