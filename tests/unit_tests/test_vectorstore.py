"""The vector store on real ChromaDB and the real bundled MiniLM; the endpoint on a stub."""

import hashlib
import json
import math
import socket
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from acdc.tasks import Task, load_tasks, seed_tasks_dir
from acdc.vectorstore.contamination import BenchmarkFileError, BenchmarkIndex, question_id
from acdc.vectorstore.embeddings import (
    EmbeddingError,
    MiniLMEmbeddingFunction,
    OpenAICompatibleEmbeddingFunction,
    make_embedding_function,
)
from acdc.vectorstore.store import VectorStoreError
from acdc.vectorstore.tasks import TaskIndex, task_text
from tests.stub_openai import LocalJsonServer

NUMBER_THEORY = "seed-math-number-theory"


@pytest.fixture(scope="module")
def seeds() -> list[Task]:
    return load_tasks(seed_tasks_dir())


@pytest.fixture
def index(seed_index: Path) -> Iterator[TaskIndex]:
    with TaskIndex(seed_index, embedding_function=MiniLMEmbeddingFunction()) as idx:
        yield idx


def variant(seeds: list[Task], task_id: str, new_id: str, description: str, first: str) -> Task:
    """A copy of a seed task with a new id, description and first instruction."""
    task = next(t for t in seeds if t.id == task_id)
    instances = [task.instances[0].model_copy(update={"instruction": first}), *task.instances[1:]]
    return task.model_copy(
        update={"id": new_id, "description": description, "instances": instances}
    )


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_minilm_embeds_unit_vectors_and_round_trips_its_config() -> None:
    ef = MiniLMEmbeddingFunction()
    vectors = ef(["greatest common divisor", "a haiku about autumn"])
    assert [len(v) for v in vectors] == [384, 384]
    assert all(math.isclose(float((v * v).sum()), 1.0, rel_tol=1e-4) for v in vectors)
    assert (
        MiniLMEmbeddingFunction.build_from_config(ef.get_config()).get_config() == ef.get_config()
    )


def test_paraphrase_is_nearest_and_unrelated_task_is_far(
    index: TaskIndex, seeds: list[Task]
) -> None:
    paraphrase = variant(
        seeds,
        NUMBER_THEORY,
        "paraphrase",
        "Questions on dividing small whole numbers: greatest common divisor, least common "
        "multiple, number of divisors, remainders and prime numbers.",
        "Find the greatest common divisor of 84 and 126.",
    )
    unrelated = variant(
        seeds,
        NUMBER_THEORY,
        "unrelated",
        "Identify a bird species from a description of its song, plumage and habitat.",
        "A small bird with a red breast sings at dawn in English gardens. Which bird is it?",
    )
    near = index.nearest_to_task(paraphrase, 3)
    assert near[0].task_id == NUMBER_THEORY
    assert near[0].similarity > 0.7
    assert near[0].similarity == pytest.approx(1.0 - near[0].distance)
    assert near[0].metadata["capability"] == "number theory"
    assert max(n.similarity for n in index.nearest_to_task(unrelated, 10)) < 0.7


def test_nearest_to_task_excludes_the_task_itself(index: TaskIndex, seeds: list[Task]) -> None:
    task = seeds[0]
    assert index.nearest(task_text(task), 1)[0].task_id == task.id
    near = index.nearest_to_task(task, 20)
    assert len(near) == len(seeds) - 1
    assert task.id not in [n.task_id for n in near]
    assert [n.distance for n in near] == sorted(n.distance for n in near)


def test_upsert_is_idempotent_and_updates_metadata(index: TaskIndex, seeds: list[Task]) -> None:
    task = seeds[0].model_copy(update={"generation": 7, "parent_id": "older"})
    index.upsert(task, status="retired")
    index.upsert(task, status="retired")
    assert index.count() == len(seeds)
    stored = index.get(task.id)
    assert stored is not None
    assert stored.document == task_text(task)
    assert stored.metadata == {
        "id": task.id,
        "name": task.name,
        "capability": task.capability,
        "subject": task.subject,
        "generation": 7,
        "status": "retired",
        "parent_id": "older",
    }
    other = index.get(seeds[1].id)
    assert other is not None and other.metadata["parent_id"] == ""


def test_statuses_filter_ids_and_queries(index: TaskIndex, seeds: list[Task]) -> None:
    retired = seeds[2]
    index.set_status(retired.id, "retired")
    assert index.ids() == sorted(t.id for t in seeds)
    assert index.ids("retired") == [retired.id]
    assert retired.id not in index.ids("active")
    only = index.nearest("anything at all", 5, where={"status": "retired"})
    assert [n.task_id for n in only] == [retired.id]
    stored = index.get(retired.id)
    assert stored is not None and stored.metadata["capability"] == retired.capability
    assert index.count() == len(seeds)
    with pytest.raises(KeyError, match="no-such-task"):
        index.set_status("no-such-task", "retired")


def test_empty_index_answers_empty(tmp_path: Path) -> None:
    with TaskIndex(tmp_path / "empty", embedding_function=MiniLMEmbeddingFunction()) as idx:
        assert idx.count() == 0
        assert idx.nearest("what is 2 + 2?", 5) == []
        assert idx.get("missing") is None
        assert idx.ids() == []
        with pytest.raises(ValueError, match="k must be"):
            idx.nearest("x", 0)


def test_reopened_store_finds_its_data_without_warnings(tmp_path: Path, seeds: list[Task]) -> None:
    path = tmp_path / "chroma"
    with TaskIndex(path, embedding_function=MiniLMEmbeddingFunction()) as idx:
        for task in seeds[:3]:
            idx.upsert(task)
        idx.set_status(seeds[0].id, "retired")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with TaskIndex(path, embedding_function=MiniLMEmbeddingFunction()) as idx:
            assert idx.count() == 3
            assert idx.ids("retired") == [seeds[0].id]
            assert idx.nearest(task_text(seeds[1]), 1)[0].task_id == seeds[1].id


@pytest.fixture
def benchmark_file(tmp_path: Path) -> Path:
    items = [
        {
            "question": "What is the boiling point of water at sea level in degrees Celsius?",
            "options": ["90", "100", "110", "120"],
            "answer": "B",
        },
        {"question": "Who wrote the play Romeo and Juliet?", "answer": "William Shakespeare"},
        {"question": "How many legs does a spider have?", "answer": 8},
        {"question": "Who wrote the play  Romeo and Juliet?"},  # a duplicate, spaced apart
    ]
    path = tmp_path / "bench.jsonl"
    path.write_text(
        "\n".join(json.dumps(i) for i in items[:2])
        + "\n\n"
        + "\n".join(json.dumps(i) for i in items[2:])
        + "\n"
    )
    return path


def test_contamination_gate_flags_a_paraphrase_only(tmp_path: Path, benchmark_file: Path) -> None:
    with BenchmarkIndex(tmp_path / "chroma", embedding_function=MiniLMEmbeddingFunction()) as idx:
        assert idx.closest("anything") is None
        assert idx.add_jsonl(benchmark_file) == 3
        assert idx.add_jsonl(benchmark_file) == 3
        assert idx.count() == 3
        found = idx.closest("At sea level, water boils at what temperature in Celsius?")
        assert found is not None
        assert found[1].startswith("What is the boiling point")
        assert idx.is_contaminated("At sea level, water boils at what temperature in Celsius?", 0.7)
        assert not idx.is_contaminated("Write a haiku about autumn leaves.", 0.7)
        with pytest.raises(ValueError, match="threshold"):
            idx.is_contaminated("x", 0.0)


def test_benchmark_ids_are_stable_and_bad_lines_named(tmp_path: Path) -> None:
    assert question_id("How  many legs?") == question_id("How many legs?\n")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "ok?"}\n{"prompt": "no question"}\n')
    with BenchmarkIndex(tmp_path / "chroma", embedding_function=MiniLMEmbeddingFunction()) as idx:
        with pytest.raises(BenchmarkFileError, match=r"bad\.jsonl:2"):
            idx.add_jsonl(bad)
        assert idx.count() == 0


def test_unreachable_chroma_server_names_host_and_port() -> None:
    port = closed_port()
    with pytest.raises(VectorStoreError, match=f"127.0.0.1:{port}"):
        TaskIndex(host="127.0.0.1", port=port)
    with pytest.raises(ValueError, match="exactly one"):
        TaskIndex("somewhere", host="127.0.0.1")


def test_bad_collection_name_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(VectorStoreError, match="cannot open collection 'x'"):
        TaskIndex(tmp_path / "chroma", collection="x", embedding_function=MiniLMEmbeddingFunction())


def test_factory_picks_minilm_or_endpoint() -> None:
    assert isinstance(make_embedding_function(), MiniLMEmbeddingFunction)
    endpoint = make_embedding_function("http://127.0.0.1:1/v1", "e5")
    assert isinstance(endpoint, OpenAICompatibleEmbeddingFunction)
    with pytest.raises(ValueError, match="embedding_model is required"):
        make_embedding_function("http://127.0.0.1:1/v1")
    with pytest.raises(ValueError, match="needs embedding_base_url"):
        make_embedding_function("", "e5")


# ---- the OpenAI-compatible option, against a stub server with fake vectors -------------


def fake_vector(text: str) -> list[float]:
    """Bag of hashed words in 16 dimensions: equal texts, equal vectors."""
    vector = [0.0] * 16
    for word in text.lower().split():
        vector[hashlib.md5(word.encode()).digest()[0] % 16] += 1.0
    return vector


class StubEmbeddings(LocalJsonServer):
    """``POST /v1/embeddings`` on 127.0.0.1; ``fail_first`` requests answer HTTP 503."""

    def __init__(self, fail_first: int = 0, status: int = 200) -> None:
        self.fail_first = fail_first
        self.status = status
        super().__init__()

    def respond(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if len(self.requests) <= self.fail_first or self.status != 200:
            return (503 if self.status == 200 else self.status), {"error": "scripted"}
        data = [
            {"object": "embedding", "index": i, "embedding": fake_vector(text)}
            for i, text in enumerate(body["input"])
        ]
        return 200, {"object": "list", "data": data[::-1], "model": body["model"]}


@pytest.fixture
def stub() -> Iterator[Callable[..., StubEmbeddings]]:
    started: list[StubEmbeddings] = []

    def start(**kwargs: Any) -> StubEmbeddings:
        started.append(StubEmbeddings(**kwargs))
        return started[-1]

    yield start
    for server in started:
        server.close()


def endpoint(url: str, **kwargs: Any) -> OpenAICompatibleEmbeddingFunction:
    options: dict[str, Any] = {"api_key_env": "ACDC_TEST_EMBED_KEY", "backoff": 0.01}
    return OpenAICompatibleEmbeddingFunction(url, "stub-embed", **(options | kwargs))


def test_endpoint_embeds_in_order_with_key_and_batches(
    stub: Callable[..., StubEmbeddings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACDC_TEST_EMBED_KEY", "sk-test")
    server = stub()
    vectors = endpoint(server.url, batch_size=2)(["alpha beta", "gamma", "alpha beta"])
    assert len(vectors) == 3 and len(vectors[0]) == 16
    assert float((vectors[0] * vectors[0]).sum()) == pytest.approx(1.0)
    assert vectors[0].tolist() == vectors[2].tolist() != vectors[1].tolist()
    assert [len(body["input"]) for body in server.requests] == [2, 1]
    pairs = zip(server.requests, server.headers, strict=True)
    assert {(body["model"], head.get("Authorization", "")) for body, head in pairs} == {
        ("stub-embed", "Bearer sk-test")
    }


def test_endpoint_retries_server_errors_then_gives_a_clear_error(
    stub: Callable[..., StubEmbeddings],
) -> None:
    flaky = stub(fail_first=2)
    assert len(endpoint(flaky.url, retries=2)(["x"])) == 1
    assert len(flaky.requests) == 3
    refusing = stub(status=404)
    with pytest.raises(EmbeddingError, match="HTTP 404"):
        endpoint(refusing.url, retries=3)(["x"])
    assert len(refusing.requests) == 1  # a client error is not retried
    url = f"http://127.0.0.1:{closed_port()}/v1"
    with pytest.raises(EmbeddingError, match=rf"{url}/embeddings failed after 2 attempts"):
        endpoint(url, retries=1, timeout=2.0)(["x"])


def test_task_index_on_the_endpoint_and_a_model_change_is_refused(
    stub: Callable[..., StubEmbeddings], tmp_path: Path, seeds: list[Task]
) -> None:
    server = stub()
    path = tmp_path / "chroma"
    with TaskIndex(path, embedding_function=endpoint(server.url)) as idx:
        for task in seeds:
            idx.upsert(task)
        assert idx.nearest(task_text(seeds[3]), 1)[0].similarity == pytest.approx(1.0, abs=1e-5)
    other = OpenAICompatibleEmbeddingFunction(server.url, "another-model")
    with pytest.raises(VectorStoreError, match="another-model"):
        TaskIndex(path, embedding_function=other)
