"""Embedding a search query: one embedder per model for the whole process, and each query on one torch thread."""

from __future__ import annotations

import sys
import threading
from contextlib import contextmanager

from .embeddings import Embedder, SentenceTransformerEmbedder, embedding_model_name

_embedders: dict[str, Embedder] = {}
_embedders_lock = threading.Lock()


def get_embedder(model: str | None = None) -> Embedder:
    """A process-wide embedder per model name (none: the PODARCHIVE_EMBEDDING_MODEL setting); the model itself
    loads on the first embed."""
    model = embedding_model_name(model)
    with _embedders_lock:
        if model not in _embedders:
            _embedders[model] = SentenceTransformerEmbedder(model, backend="torch")  # queries: the traced model
        return _embedders[model]


_threads = {"users": 0, "before": 1}
_threads_lock = threading.Lock()


@contextmanager
def one_torch_thread():
    """Embed one short query on one thread: a sentence gains next to nothing from intra-op threads, while on a
    busy machine every OpenMP barrier waits for a core (two threads under load made a query many times slower
    than one). The setting is restored once no search is embedding; a no-op until torch is imported."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    with _threads_lock:
        if _threads["users"] == 0:
            _threads["before"] = torch.get_num_threads()
            torch.set_num_threads(1)
        _threads["users"] += 1
    try:
        yield
    finally:
        with _threads_lock:
            _threads["users"] -= 1
            if _threads["users"] == 0:
                torch.set_num_threads(_threads["before"])
