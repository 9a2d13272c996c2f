"""The contamination gate: benchmark questions a generated task must not resemble."""

import hashlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from acdc import safe_files
from acdc.vectorstore.store import ChromaStore

log = logging.getLogger(__name__)

_BATCH = 256  # well under ChromaDB's max batch size, and one embedding call's worth


class BenchmarkFileError(ValueError):
    """A benchmark JSONL line is not an object with a question; names the file and line."""


def question_id(question: str) -> str:
    """A stable id from the question's words, so the same question is stored once.

    Hashing the text rather than a file position keeps ids stable when files are
    reordered, merged or loaded twice.
    """
    words = " ".join(question.split())
    return "q-" + hashlib.sha256(words.encode("utf-8")).hexdigest()[:24]


def benchmark_lines(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, decoded JSON value) of each non-blank line of a JSONL file.

    Benchmark files and seed data come from users and downloads: a line over
    :data:`acdc.safe_files.MAX_LINE_BYTES` is refused without being read whole.

    Raises:
        BenchmarkFileError: The path is a folder or unreadable, or a line is too long,
            not UTF-8, not JSON or nested too deeply; the message names the file (and
            the line).
    """
    try:
        for number, raw in safe_files.lines(path):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise BenchmarkFileError(
                    f"{path}:{number}: not UTF-8 text ({exc.reason})"
                ) from None
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as exc:
                raise BenchmarkFileError(f"{path}:{number}: not JSON: {exc}") from None
            except RecursionError:
                raise BenchmarkFileError(f"{path}:{number}: JSON nested too deeply") from None
    except safe_files.InputFileError as err:
        raise BenchmarkFileError(str(err)) from None


def item_question(item: Any) -> str | None:
    """The question text of a benchmark item, or None.

    ``question`` as a string, or its ``stem`` in the ARC layout
    ``{"question": {"stem": ..., "choices": [...]}}``.
    """
    question = item.get("question") if isinstance(item, dict) else None
    if isinstance(question, dict):
        question = question.get("stem")
    return question if isinstance(question, str) and question.strip() else None


def _read_items(path: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    """Items of a JSONL file by question id: (question, metadata); first copy wins."""
    items: dict[str, tuple[str, dict[str, Any]]] = {}
    for number, item in benchmark_lines(path):
        question = item_question(item)
        if question is None:
            raise BenchmarkFileError(f"{path}:{number}: needs a non-empty 'question' string")
        metadata = {
            "source": path.name,
            "line": number,
            "answer": "" if item.get("answer") is None else str(item["answer"])[:1000],
            "options": json.dumps(item["options"])[:4000] if item.get("options") else "",
        }
        items.setdefault(question_id(question), (question, metadata))
    return items


class BenchmarkIndex(ChromaStore):
    """Benchmark questions in a ChromaDB collection (default ``benchmarks``).

    Only the question is embedded: a generated task that copies a benchmark item usually
    rewords its question, while its options and answer appear in other forms. Options
    and answer are kept as metadata. Construction as for :class:`ChromaStore`.
    """

    default_collection = "benchmarks"

    def add_jsonl(self, path: str | Path) -> int:
        """Index every item of a JSONL file of ``{"question", "options"?, "answer"?}``.

        Idempotent: ids come from the question text, so loading a file again, or two
        files that share questions, adds nothing twice. The whole file is read before
        anything is indexed, so a bad line leaves the index as it was.

        Returns:
            The number of distinct questions in the file.

        Raises:
            BenchmarkFileError: A line is not JSON or has no question.
            OSError: The file cannot be read.
        """
        path = Path(path)
        items = _read_items(path)
        ids = list(items)
        for start in range(0, len(ids), _BATCH):
            batch = ids[start : start + _BATCH]
            self._collection.upsert(
                ids=batch,
                documents=[items[i][0] for i in batch],
                metadatas=[items[i][1] for i in batch],
            )
        log.info("indexed %d benchmark questions from %s", len(ids), path)
        return len(ids)

    def closest(self, text: str) -> tuple[float, str] | None:
        """(cosine similarity, question) of the benchmark question nearest ``text``.

        Returns:
            None when no benchmark is loaded.
        """
        result = self._collection.query(
            query_texts=[text], n_results=1, include=["documents", "distances"]
        )
        distances = (result["distances"] or [[]])[0]
        if not distances:
            return None
        question = (result["documents"] or [[""]])[0][0] or ""
        return 1.0 - float(distances[0]), question

    def is_contaminated(self, text: str, threshold: float) -> bool:
        """Whether ``text`` is at least ``threshold`` cosine-similar to a benchmark question.

        Raises:
            ValueError: ``threshold`` is not in (0, 1].
        """
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        found = self.closest(text)
        if found is None or found[0] < threshold:
            return False
        log.info("contamination: %.3f similar to benchmark question %r", found[0], found[1][:80])
        return True
