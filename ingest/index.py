"""The index stage: embeddings by content hash, FTS5 tables, and the side indexes of large archives.

`build_index` runs `understand_episode` (passages, embeddings, chapters, takeaways, guests) for every episode
with a transcript, makes sure every passage has a vector, and every takeaway and episode's notes (transcribed or
not: archive/note_vectors.py), then brings the full-text tables up to date and, for a large archive, the vector
and keyword indexes beside it (see archive/indexes.py). Everything is keyed so that a rerun does no work twice:
embeddings by (model, sha256 of the text), stages by their input hash.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import sqlite_utils

from archive import indexes, note_vectors
from archive.db import write_transaction
from archive.embeddings import Embedder, default_embedder
from archive.errors import ModelLoadError, PodarchiveError

log = logging.getLogger(__name__)

EMBED_BATCH = 256
LOOKUP_CHUNK = 500

# Table -> columns searched. Each gets <table>_fts (FTS5, Porter stemming) kept current by triggers.
FTS_TABLES: dict[str, list[str]] = {
    "passages": ["text"],
    "episodes": ["title", "notes_text"],
    "takeaways": ["title", "text"],
    "people": ["name"],
}


# -- embeddings -------------------------------------------------------------------------------------------

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


def ensure_note_embeddings(db: sqlite_utils.Database, embedder: Embedder, episode_ids: list[int] | None = None,
                           chunk: int = 2_000) -> int:
    """Vectors for the takeaways and notes of these episodes (every episode: None), drafts included; only texts
    with no vector for the model are embedded. Returns how many documents they have."""
    rows = note_vectors.documents(db, episode_ids)
    for start in range(0, len(rows), chunk):  # a bounded matrix in memory, however many episodes
        ensure_embeddings(db, rows[start:start + chunk], embedder)
    return len(rows)


def count_embeddings(db: sqlite_utils.Database, model: str) -> int:
    return int(db.execute("SELECT count(*) FROM embeddings WHERE model = ?", [model]).fetchone()[0])


# -- full-text tables -------------------------------------------------------------------------------------

def ensure_fts(db: sqlite_utils.Database) -> list[str]:
    """Create the FTS5 tables and their triggers where missing (a no-op when they are as they should be).
    Returns the FTS table names."""
    for table, columns in FTS_TABLES.items():
        db[table].enable_fts(columns, create_triggers=True, tokenize="porter", replace=True)
    return [f"{table}_fts" for table in FTS_TABLES]


def rebuild_fts(db: sqlite_utils.Database) -> None:
    """Re-read every row into the FTS tables (after rows were written with the triggers missing)."""
    ensure_fts(db)
    for table in FTS_TABLES:
        db[table].rebuild_fts()


# -- the stage ------------------------------------------------------------------------------------------

@dataclass
class IndexOptions:
    """How the index stage runs. side_indexes: None builds the vector and keyword indexes beside the archive
    when it is large (archive.indexes.LARGE_ARCHIVE_PASSAGES or more passages), True always, False never."""

    episode_ids: list[int] | None = None  # only these episodes (default: every one with a transcript)
    side_indexes: bool | None = None
    understand: object | None = None  # ingest.understand.UnderstandOptions; None = defaults


@dataclass
class IndexReport:
    episodes: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0
    passages: int = 0
    notes: int = 0  # documents of takeaways and episode notes (see archive/note_vectors.py)
    embeddings_computed: int = 0
    side_indexes: bool = False
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # (what, stage, error)


def transcribed_episodes(db: sqlite_utils.Database, only: list[int] | None = None) -> list[dict]:
    sql = (
        "SELECT e.id, e.guid, e.title, s.title AS show FROM episodes e JOIN transcripts t ON t.episode_id = e.id "
        "JOIN shows s ON s.id = e.show_id ORDER BY e.show_id, e.published IS NULL, e.published, e.id"
    )
    rows = list(db.query(sql))
    if only is not None:
        wanted = set(only)
        rows = [row for row in rows if row["id"] in wanted]
    return rows


def _progress_callback(progress, total: int) -> tuple[Callable[[int, dict], None], Callable[[], None]]:
    """progress may be a callable (done, total, episode row) or a bool for a tqdm bar on stderr."""
    if callable(progress):
        return (lambda done, row: progress(done, total, row)), (lambda: None)
    from tqdm import tqdm

    bar = tqdm(total=total, desc="index", unit="episode", disable=not progress, dynamic_ncols=True)
    return (lambda done, row: bar.update(1)), bar.close


def build_index(db: sqlite_utils.Database, embedder: Embedder | None = None, options: IndexOptions | None = None,
                progress=None, client=None) -> IndexReport:
    """Bring every transcribed episode's understanding and the search indexes up to date.

    One episode's failure is recorded (in `stages` by understand_episode, and in the report) and the others go
    on; an embedding model that cannot load stops the stage (ModelLoadError), since nothing could be indexed.
    """
    from .passages import load_passage_rows
    from .understand import understand_episode

    options = options or IndexOptions()
    embedder = embedder or default_embedder()
    episodes = transcribed_episodes(db, options.episode_ids)
    report = IndexReport(episodes=len(episodes))
    before = count_embeddings(db, embedder.name)
    step, close = _progress_callback(progress, len(episodes))
    try:
        for n, episode in enumerate(episodes, start=1):
            try:
                summary = understand_episode(db, episode["id"], embedder, client, options.understand)
                ensure_embeddings(db, load_passage_rows(db, episode["id"]), embedder)
            except ModelLoadError:
                raise
            except PodarchiveError as exc:
                report.failed += 1
                report.failures.append((f"{episode['show']} / {episode['guid']}", "index", str(exc)))
                log.warning("index: episode %s failed: %s", episode["id"], exc)
            else:
                if summary and summary.get("ran"):
                    report.done += 1
                else:
                    report.skipped += 1
            step(n, episode)
    finally:
        close()
    report.notes = ensure_note_embeddings(db, embedder, options.episode_ids)  # new takeaways, untranscribed notes
    ensure_fts(db)
    report.passages = indexes.passage_count(db)
    report.embeddings_computed = count_embeddings(db, embedder.name) - before
    report.side_indexes = build_side_indexes(db, embedder.name, options.side_indexes)
    return report


def build_side_indexes(db: sqlite_utils.Database, model: str, wanted: bool | None = None) -> bool:
    """Build (or load, when fresh) the vector and keyword indexes of a large archive, so that the first search
    after an ingest does not pay for them. Returns whether they exist now."""
    large = indexes.is_large(db) if wanted is None else wanted
    if not large:
        return False
    indexes.vector_index(db, model, large=True)
    indexes.keyword_index(db)
    return True
