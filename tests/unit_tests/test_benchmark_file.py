"""Benchmark files in the shapes users have; broken lines named by file and line.

Each test failed before issue 11: options as a mapping, ``choices`` with an integer
index and ``answerKey`` were refused or misread, and a line that is not UTF-8 or is
nested too deeply raised a bare UnicodeDecodeError / RecursionError.
"""

import json
from pathlib import Path

import pytest

from acdc.agents.benchmark_file import BenchmarkItem, load_benchmark
from acdc.vectorstore.contamination import BenchmarkFileError, benchmark_lines

SHAPES = {
    "options as a mapping": (
        {"question": "2 + 2?", "options": {"A": "3", "B": "4", "C": "5"}, "answer": "B"},
        BenchmarkItem("2 + 2?", "B", ("3", "4", "5")),
    ),
    "MMLU choices and an index": (
        {"question": "Largest?", "choices": ["1", "7", "3", "5"], "answer": 1},
        BenchmarkItem("Largest?", "B", ("1", "7", "3", "5")),
    ),
    "ARC on the hub": (
        {
            "question": "Which is a metal?",
            "choices": {"text": ["wood", "iron", "glass", "salt"], "label": ["1", "2", "3", "4"]},
            "answerKey": "2",
        },
        BenchmarkItem("Which is a metal?", "B", ("wood", "iron", "glass", "salt")),
    ),
    "ARC's own files": (
        {
            "question": {
                "stem": "Water boils at?",
                "choices": [{"text": "50 C", "label": "A"}, {"text": "100 C", "label": "B"}],
            },
            "answerKey": "B",
        },
        BenchmarkItem("Water boils at?", "B", ("50 C", "100 C")),
    ),
    "options list and option text": (
        {"question": "Red?", "options": ["blue", "red"], "answer": "Red"},
        BenchmarkItem("Red?", "B", ("blue", "red")),
    ),
    "exact numeric answer": ({"question": "6 x 7?", "answer": 42}, BenchmarkItem("6 x 7?", "42")),
}


@pytest.mark.parametrize(("raw", "item"), SHAPES.values(), ids=SHAPES.keys())
def test_common_benchmark_shapes_are_read(raw: dict[str, object], item: BenchmarkItem, tmp_path):
    path = tmp_path / "bench.jsonl"
    path.write_text(json.dumps(raw) + "\n")
    assert load_benchmark(path) == [item]


def test_a_line_that_is_not_utf8_names_the_file_and_line(tmp_path: Path):
    path = tmp_path / "bench.jsonl"
    path.write_bytes(b'{"question": "a?", "answer": "b"}\n{"question": "\xff\xfe"}\n')
    with pytest.raises(BenchmarkFileError, match=r"bench\.jsonl:2: not UTF-8"):
        load_benchmark(path)
    with pytest.raises(BenchmarkFileError, match=r"bench\.jsonl:2"):
        list(benchmark_lines(path))  # the contamination gate reads files the same way


def test_deep_nesting_names_the_file_and_line(tmp_path: Path):
    path = tmp_path / "bench.jsonl"
    deep = '{"question": "q", "answer": ' + "[" * 100_000 + "]" * 100_000 + "}"
    path.write_text('{"question": "a?", "answer": "b"}\n\n' + deep + "\n")
    with pytest.raises(BenchmarkFileError, match=r"bench\.jsonl:3: JSON nested too deeply"):
        load_benchmark(path)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"question": "q", "choices": ["a", "b"], "answer": 5}, "index 5"),
        ({"question": "q", "options": {"A": "x", "B": "y"}, "answer": "Z"}, "names no option"),
        ({"question": "q", "options": ["x", "y"], "answer": True}, "answer"),
        ({"question": "q", "options": "x, y", "answer": "A"}, "list or a mapping"),
    ],
)
def test_bad_items_name_the_file_line_and_reason(raw: dict[str, object], message: str, tmp_path):
    path = tmp_path / "bench.jsonl"
    path.write_text(json.dumps(raw) + "\n")
    with pytest.raises(BenchmarkFileError, match=rf"bench\.jsonl:1: .*{message}"):
        load_benchmark(path)
