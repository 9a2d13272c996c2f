"""ChromaDB-backed task index and embeddings."""
