"""Training examples from files, and the rule that none of them is a benchmark question.

A user's file for ``acdc seed --from-data`` is JSONL, one ``{"instruction": ...,
"answer": ...}`` object per line. Every fine-tune (that seed, and the ``specialize``
mutation) drops examples whose prompt contains a question of the benchmark files given
to the contamination gate (``benchmark_files``): training on the held-out questions
would make every coverage figure a lie.
"""

from collections.abc import Iterable, Sequence
from pathlib import Path

from acdc.normal_form import normalize
from acdc.population.finetune import Example
from acdc.vectorstore.contamination import BenchmarkFileError, benchmark_lines, item_question

MIN_EXAMPLES = 4
"""Fewest rows a data file needs: fewer cannot teach anything and hint at a wrong file."""
FIELDS = ("instruction", "answer")


class DataFileError(ValueError):
    """A training data file is malformed; the message names the file and the line."""


def read_examples(path: Path) -> list[Example]:
    """The examples of a JSONL file of ``{"instruction", "answer"}`` objects.

    Raises:
        DataFileError: The file is missing, a line is not a JSON object with both fields
            as non-empty strings, or it holds fewer than MIN_EXAMPLES rows.
    """
    if not path.is_file():
        raise DataFileError(f"{path}: no such file")
    examples = []
    try:
        for number, row in benchmark_lines(path):
            examples.append(_example(path, number, row))
    except BenchmarkFileError as err:  # not UTF-8 or not JSON, with file and line
        raise DataFileError(str(err)) from None
    if not examples:
        raise DataFileError(f"{path}: empty (expected one JSON object per line with {FIELDS})")
    if len(examples) < MIN_EXAMPLES:
        raise DataFileError(
            f"{path}: {len(examples)} rows, too few to train on (at least {MIN_EXAMPLES})"
        )
    return examples


def _example(path: Path, number: int, row: object) -> Example:
    if not isinstance(row, dict):
        raise DataFileError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
    for name in FIELDS:
        value = row.get(name)
        if value is None:
            raise DataFileError(f"{path}:{number}: missing field {name!r} (need {FIELDS})")
        if not isinstance(value, str) or not value.strip():
            raise DataFileError(f"{path}:{number}: field {name!r} must be a non-empty string")
    return Example(prompt=row["instruction"], answer=row["answer"])


def benchmark_questions(files: Iterable[str | Path]) -> list[str]:
    """Normalized question texts of the contamination gate's benchmark files."""
    questions = []
    for file in files:
        for _, item in benchmark_lines(Path(file)):
            question = item_question(item)
            if question is not None:
                questions.append(normalize(question))
    return questions


def drop_benchmark(examples: Sequence[Example], questions: Sequence[str]) -> list[Example]:
    """``examples`` without those whose prompt contains one of ``questions`` (normalized)."""
    return [e for e in examples if not any(q and q in normalize(e.prompt) for q in questions)]
