"""`acdc seed --from-data`: malformed files are refused naming the line; good ones train."""

import json
import logging
from pathlib import Path

import pytest

from acdc.cli import main
from acdc.population.finetune import FinetuneSettings
from acdc.population.finetune_data import DataFileError, read_examples
from acdc.population.lora import read_adapter
from acdc.population.seed import SeedError, seed_from_data

GOOD = [{"instruction": f"What is {i} plus {i}?", "answer": f"Answer: {2 * i}"} for i in range(6)]


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def good_lines() -> list[str]:
    return [json.dumps(row) for row in GOOD]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["{not json"], r"data.jsonl:1: not JSON"),
        (
            [*good_lines()[:2], '{"instruction": "Hi"}', *good_lines()[2:]],
            r":3: missing field 'answer'",
        ),
        ([*good_lines()[:4], '{"answer": "x"}'], r":5: missing field 'instruction'"),
        (
            [*good_lines(), '{"instruction": "Hi", "answer": "  "}'],
            r":7: field 'answer' must be a non-empty",
        ),
        ([*good_lines(), '["instruction", "answer"]'], r":7: expected a JSON object, got list"),
        ([], r"data.jsonl: empty"),
        (["", "   "], r"data.jsonl: empty"),
        (good_lines()[:2], r"2 rows, too few to train on \(at least 4\)"),
    ],
    ids=[
        "not-json",
        "no-answer",
        "no-instruction",
        "blank-answer",
        "not-object",
        "empty",
        "blank-lines",
        "too-few",
    ],
)
def test_malformed_files_are_refused_naming_the_line(
    tmp_path: Path, lines: list[str], message: str
) -> None:
    path = write_lines(tmp_path / "data.jsonl", lines)
    with pytest.raises(DataFileError, match=message):
        read_examples(path)


def test_the_command_line_reports_a_malformed_file_and_exits_2(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_lines(tmp_path / "data.jsonl", [*good_lines(), "{oops"])
    with caplog.at_level(logging.ERROR), pytest.raises(SystemExit) as exit_info:
        main(["seed", "--from-data", str(path), "--name", "mine", "--cache-dir", str(tmp_path)])
    assert exit_info.value.code == 2
    assert f"{path}:7: not JSON" in caplog.text


def test_the_command_line_needs_both_options(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR), pytest.raises(SystemExit):
        main(["seed", "--name", "mine", "--cache-dir", str(tmp_path)])
    assert "--from-data FILE.jsonl and --name NAME" in caplog.text


def test_a_good_file_makes_a_reusable_seed_adapter_without_benchmark_questions(
    chat_base: Path, tmp_path: Path
) -> None:
    data = write_lines(tmp_path / "data.jsonl", good_lines())
    bench = write_lines(
        tmp_path / "bench.jsonl", [json.dumps({"question": "What is 5 plus 5?", "answer": "10"})]
    )
    settings = FinetuneSettings(steps=4, learning_rate=5e-3, rank=8)
    kwargs = {"settings": settings, "rank_cap": 16, "benchmark_files": [str(bench)], "seed": 0}
    folder = seed_from_data(data, "adder", chat_base, tmp_path / "seeds", **kwargs)
    assert folder == tmp_path / "seeds" / "adder"
    assert read_adapter(folder)  # a PEFT adapter the store and vLLM read
    training = json.loads((folder / "training.json").read_text())
    assert training["examples"] == 5 and training["dropped_as_benchmark"] == 1
    assert training["steps"] == 4
    weights = (folder / "adapter_model.safetensors").read_bytes()
    # Same file again: reused as it is; another file under the same name: refused.
    assert seed_from_data(data, "adder", chat_base, tmp_path / "seeds", **kwargs) == folder
    assert (folder / "adapter_model.safetensors").read_bytes() == weights
    other = write_lines(tmp_path / "other.jsonl", good_lines()[1:])
    with pytest.raises(SeedError, match="made from other data"):
        seed_from_data(other, "adder", chat_base, tmp_path / "seeds", **kwargs)
    with pytest.raises(SeedError, match="seed name"):
        seed_from_data(data, "../escape", chat_base, tmp_path / "seeds", **kwargs)
