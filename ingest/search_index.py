"""The search-index stage, the last: what search reads beside the passages' vectors, brought up to date.

Order of the stages: feed -> transcript -> passages -> embeddings -> understanding -> search indexes. This one runs
once for the archive after the others ran for each episode (ingest/index_run.py): vectors for every takeaway and
episode's notes (transcribed or not: archive/note_vectors.py), through archive/vectors.py, and, for a large
archive, the vector and keyword indexes beside it (archive/vector_index.py, archive/keyword_index.py; when:
archive/index_refresh.py). The FTS5 tables need nothing here: migration m012 made them and their triggers keep
them current (archive/fts_tables.py). Writes `embeddings` and the side-index folder only; a rerun embeds only
texts new to the model and loads side indexes that are fresh.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from archive import index_refresh, keyword_index, note_vectors, vector_index
from archive.embeddings import Embedder
from archive.vectors import ensure_embeddings


@dataclass
class SearchIndexes:
    notes: int  # documents of takeaways and episode notes (see archive/note_vectors.py)
    side_indexes: bool  # whether the vector and keyword indexes beside the archive exist now


def update_search_indexes(db: sqlite_utils.Database, embedder: Embedder, episode_ids: list[int] | None = None,
                          side_indexes: bool | None = None) -> SearchIndexes:
    """Note vectors for these episodes (every one: None), then the side indexes (None: when the archive is large,
    True: always, False: never)."""
    notes = ensure_note_embeddings(db, embedder, episode_ids)
    return SearchIndexes(notes, build_side_indexes(db, embedder.name, side_indexes))


def ensure_note_embeddings(db: sqlite_utils.Database, embedder: Embedder, episode_ids: list[int] | None = None,
                           chunk: int = 2_000) -> int:
    """Vectors for the takeaways and notes of these episodes (every episode: None), drafts included; only texts
    with no vector for the model are embedded. Returns how many documents they have."""
    rows = note_vectors.documents(db, episode_ids)
    for start in range(0, len(rows), chunk):  # a bounded matrix in memory, however many episodes
        ensure_embeddings(db, rows[start:start + chunk], embedder)
    return len(rows)


def build_side_indexes(db: sqlite_utils.Database, model: str, wanted: bool | None = None) -> bool:
    """Build (or load, when fresh) the vector and keyword indexes of a large archive, so that the first search
    after an ingest does not pay for them. Returns whether they exist now."""
    large = index_refresh.is_large(db) if wanted is None else wanted
    if not large:
        return False
    vector_index.vector_index(db, model, large=True)
    keyword_index.keyword_index(db)
    return True
