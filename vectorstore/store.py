"""One ChromaDB collection in cosine space, embedded on disk or on a ChromaDB server."""

from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self, cast

import chromadb
import httpx
from chromadb import Collection, Documents, EmbeddingFunction
from chromadb.api import ClientAPI
from chromadb.api.types import Embeddable
from chromadb.config import Settings
from chromadb.errors import ChromaError

from acdc.vectorstore.embeddings import make_embedding_function


class VectorStoreError(RuntimeError):
    """ChromaDB is unreachable or holds a collection this code cannot use as asked."""


def _settings() -> Settings:
    """Fresh settings per client, since ChromaDB writes into them; telemetry off (offline)."""
    return Settings(anonymized_telemetry=False)


def connect(path: str | Path | None = None, host: str = "", port: int = 8000) -> ClientAPI:
    """An embedded client on ``path``, or an HTTP client when ``host`` is given.

    The embedded store is single-process; runs that share a store use ``chroma run``
    and a host (ENVIRONMENT.md).

    Raises:
        ValueError: Neither or both of ``path`` and ``host`` are given.
        VectorStoreError: The server at ``host:port`` does not answer.
    """
    if bool(host) == (path is not None):
        raise ValueError("give exactly one of a store path (embedded ChromaDB) or a host")
    if path is not None:
        Path(path).mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(path), settings=_settings())
    # ChromaDB's own HTTP client has no timeout, so a short probe fails fast and clearly.
    where = f"{host}:{port}"
    try:
        httpx.get(f"http://{where}/api/v2/heartbeat", timeout=5.0).raise_for_status()
        return chromadb.HttpClient(host=host, port=port, settings=_settings())
    except (httpx.HTTPError, ValueError) as exc:
        raise VectorStoreError(
            f"ChromaDB server {where} is unreachable ({exc}); start one with "
            f"`chroma run --path DIR --port {port}` or leave the host empty for the "
            "embedded store"
        ) from exc


def open_collection(
    client: ClientAPI, name: str, embedding_function: EmbeddingFunction[Documents]
) -> Collection:
    """Get or create ``name`` in cosine space, refusing one built for other embeddings.

    ChromaDB itself only compares embedding-function names on reopen; comparing the
    model too stops a run from mixing vectors of two models, whose distances mean nothing.

    Raises:
        VectorStoreError: The collection uses another distance, embedding function or
            embedding model.
    """
    try:
        collection = client.get_or_create_collection(
            name,
            configuration={"hnsw": {"space": "cosine"}},
            # ChromaDB's signature wants a function of documents *or* images; ours
            # embeds documents only, which is all these collections hold.
            embedding_function=cast(EmbeddingFunction[Embeddable], embedding_function),
        )
    except (ValueError, ChromaError) as exc:  # a bad name, another embedding function
        raise VectorStoreError(f"cannot open collection {name!r}: {exc}") from exc
    config: dict[str, Any] = collection.configuration_json or {}
    space = (config.get("hnsw") or {}).get("space", "cosine")
    if space != "cosine":
        raise VectorStoreError(f"collection {name!r} uses {space} distance, not cosine")
    stored = ((config.get("embedding_function") or {}).get("config") or {}).get("model")
    wanted = embedding_function.get_config().get("model")
    if stored is not None and stored != wanted:
        raise VectorStoreError(
            f"collection {name!r} holds embeddings of {stored!r}, not {wanted!r}; "
            "use another store or collection name"
        )
    return collection


class ChromaStore:
    """The connection and collection behind an index, closed with ``close`` or ``with``.

    Args:
        path: Folder of the embedded store (the default mode).
        host: ChromaDB server host instead of ``path``.
        port: ChromaDB server port.
        collection: Collection name; default the subclass's ``default_collection``.
        embedding_function: Embeds documents and queries; default the bundled MiniLM.
    """

    default_collection: ClassVar[str] = ""

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        host: str = "",
        port: int = 8000,
        collection: str = "",
        embedding_function: EmbeddingFunction[Documents] | None = None,
    ) -> None:
        self.name = collection or self.default_collection
        if not self.name:
            raise ValueError("a collection name is required")
        self._client = connect(path, host, port)
        try:
            ef = embedding_function or make_embedding_function()
            self._collection = open_collection(self._client, self.name, ef)
        except BaseException:
            self.close()  # else the embedded store stays locked by a client nobody holds
            raise

    def count(self) -> int:
        """Number of entries in the collection."""
        return self._collection.count()

    def close(self) -> None:
        """Release the client; the embedded store's files unlock when its last client closes."""
        close = getattr(self._client, "close", None)  # on Client, not on ClientAPI
        if close is not None:
            close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
