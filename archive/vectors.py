"""Vectors stored by content: one row of `embeddings` per (model, sha256 of the text), made once, read by anyone.

The embeddings stage (ingest/passage_vectors.py), the search-index stage (notes and takeaways, ingest/search_index.py)
and publishing in the studio (archive/studio.py) all embed through `ensure_embeddings`: a text whose hash already
has a vector for the model is never embedded again, whoever embedded it first. The embedder is the caller's;
nothing here loads a model.
"""

from __future__ import annotations

import numpy as np
import sqlite_utils

from .db import write_transaction
from .embeddings import Embedder
from .errors import ModelLoadError

EMBED_BATCH = 256
LOOKUP_CHUNK = 500


def _normalised(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


def stored_vectors(db: sqlite_utils.Database, model: str, hashes: list[str]) -> dict[str, np.ndarray]:
    """The vectors already stored for `model`, by content hash."""
    found: dict[str, np.ndarray] = {}
    unique = list(dict.fromkeys(hashes))
    for start in range(0, len(unique), LOOKUP_CHUNK):
        chunk = unique[start:start + LOOKUP_CHUNK]
        marks = ",".join("?" * len(chunk))
        sql = f"SELECT content_hash, vector FROM embeddings WHERE model = ? AND content_hash IN ({marks})"
        for content_hash, blob in db.execute(sql, [model, *chunk]).fetchall():
            found[content_hash] = np.frombuffer(blob, dtype=np.float32)
    return found


def ensure_embeddings(db: sqlite_utils.Database, rows: list[dict], embedder: Embedder,
                      batch_size: int = EMBED_BATCH) -> np.ndarray:
    """Vectors (float32, L2-normalised) for `rows` (dicts with `content_hash` and `text`), in row order.

    Only texts whose hash has no vector for `embedder.name` are embedded, each once, in batches; every batch is
    stored in its own transaction, so a run killed half-way keeps what it finished.
    """
    if not rows:
        return np.zeros((0, 0), dtype=np.float32)
    hashes = [row["content_hash"] for row in rows]
    vectors = stored_vectors(db, embedder.name, hashes)
    missing = {row["content_hash"]: row["text"] for row in rows if row["content_hash"] not in vectors}
    pending = list(missing.items())
    for start in range(0, len(pending), batch_size):
        batch = pending[start:start + batch_size]
        embedded = _normalised(embedder.embed([text for _, text in batch]))
        if embedded.shape[0] != len(batch):
            raise ModelLoadError(f"embedder {embedder.name!r} returned {embedded.shape[0]} vectors for "
                                 f"{len(batch)} texts")
        records = [
            {"model": embedder.name, "content_hash": content_hash, "dims": int(vector.shape[0]),
             "vector": vector.tobytes()}
            for (content_hash, _), vector in zip(batch, embedded)
        ]
        with write_transaction(db):
            db["embeddings"].insert_all(records, pk=("model", "content_hash"), replace=True)
        vectors.update({content_hash: vector for (content_hash, _), vector in zip(batch, embedded)})
    return np.stack([vectors[h] for h in hashes]).astype(np.float32, copy=False)


def count_embeddings(db: sqlite_utils.Database, model: str) -> int:
    return int(db.execute("SELECT count(*) FROM embeddings WHERE model = ?", [model]).fetchone()[0])
