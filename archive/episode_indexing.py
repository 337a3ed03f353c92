"""One episode brought into the search indexes as soon as it is published, edited or corrected: only incremental,
cheap work (its passages' and notes' vectors), for the studio (archive/studio.py) and transcript corrections
(archive/corrections.py). The whole archive's indexes are the pipeline's (`podarchive index`).

No model here: the embedder is the caller's.
"""

from __future__ import annotations

import json

import sqlite_utils

from .embeddings import embedding_model_name
from .vectors import ensure_embeddings


def index_for_search(db: sqlite_utils.Database, episode_id: int, embedder=None) -> dict:
    """Make sure a published episode is in the search indexes; only incremental, cheap work. Returns:
    keyword: "fts5" (its notes and takeaways are in the FTS5 tables, which their triggers keep current);
    side_indexes: for a large archive, "filtered" (the
    episode shows at once; an edit of its text reaches the Tantivy index when it is next rebuilt, in the
    background on the site); passages; notes (its documents for search by meaning: takeaways and notes chunks,
    see archive/note_vectors.py); vectors_added, vectors_missing (of passages and notes, for `embedder`, or the
    default model's name when none is given: nothing is embedded then)."""
    from . import index_refresh, note_vectors

    rows = list(db.query("SELECT id, text, content_hash FROM passages WHERE episode_id = ? ORDER BY idx",
                         [episode_id]))
    notes = note_vectors.documents(db, [episode_id])
    model = embedder.name if embedder is not None else embedding_model_name()
    missing = _missing_vectors(db, model, rows + notes)
    added = 0
    if embedder is not None and missing:
        ensure_embeddings(db, rows + notes, embedder)
        added, missing = missing, _missing_vectors(db, model, rows + notes)
    return {"keyword": "fts5", "side_indexes": "filtered" if index_refresh.is_large(db) else None,
            "passages": len(rows), "notes": len(notes), "vectors_added": added, "vectors_missing": missing}


def index_if_published(db: sqlite_utils.Database, episode_id: int, embedder) -> None:
    """`index_for_search` for an episode just edited, when it is published and an embedder is given (a draft is
    indexed when it is published)."""
    if embedder is not None and db.execute("SELECT state FROM episodes WHERE id = ?",
                                           [episode_id]).fetchone()[0] == "published":
        index_for_search(db, episode_id, embedder)


def _missing_vectors(db, model: str, rows: list[dict]) -> int:
    if not rows:
        return 0
    hashes = json.dumps(sorted({row["content_hash"] for row in rows}))
    have = db.execute("SELECT count(*) FROM embeddings WHERE model = ? AND content_hash IN "
                      "(SELECT value FROM json_each(?))", [model, hashes]).fetchone()[0]
    return len(set(row["content_hash"] for row in rows)) - int(have)
