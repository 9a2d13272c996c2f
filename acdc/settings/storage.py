"""Settings of where things live: run folders, caches, checkpoints, prompts, vectors."""

from dataclasses import dataclass, field

from acdc.settings.rules import described, require_port


@dataclass(kw_only=True)
class StorageSettings:
    """Where things live: run folders, the model cache, checkpoints, prompts, vectors."""

    runs_dir: str = field(default="runs", metadata=described("Folder holding one folder per run."))
    cache_dir: str = field(
        default=".cache/acdc",
        metadata=described(
            "Cache for prepared seed models (dequantized GGUF, extracted adapters)."
        ),
    )
    checkpointer_url: str = field(
        default="",
        metadata=described(
            "Postgres URL for LangGraph checkpoints ('' = SQLite in the run folder)."
        ),
    )
    prompts_dir: str = field(
        default="",
        metadata=described(
            "Folder of your own prompt files; a file there replaces the bundled one."
        ),
    )
    chroma_host: str = field(
        default="",
        metadata=described("ChromaDB server host ('' = embedded store in the run folder)."),
    )
    chroma_port: int = field(default=8000, metadata=described("ChromaDB server port."))
    embedding_base_url: str = field(
        default="",
        metadata=described("OpenAI-compatible embeddings URL ('' = bundled MiniLM)."),
    )
    embedding_model: str = field(default="", metadata=described("Embedding model at that URL."))

    def check(self) -> None:
        """Refuse a value out of range, naming the field."""
        require_port(self, "chroma_port")
