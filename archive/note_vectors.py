"""Search by meaning over what is written about episodes: their takeaways, and their notes (with the title).

Semantic search ranks transcript passages (archive/vector_index.py); these documents make the rest of an episode
findable by meaning too, among them a published episode that has notes and no transcript yet (a hosted show's new
episode before the worker transcribes its audio). Each document is embedded like a passage, into the
`embeddings` table keyed by (model, sha256 of its text): the search-index stage (ingest/search_index.py) and
publishing (archive/episode_indexing.py `index_for_search`) make the vectors, and a document whose text did not
change keeps its vector.

* a takeaway is one document: its title and text;
* an episode's notes are one document of its title and notes when they fit the model's window (all-MiniLM-L6-v2
  reads 256 word pieces; with the title, most DataTalks.Club notes run past that and would be cut short), else
  `chunks` of at most NOTE_WORDS words, each headed by the title and of even length; an episode ranks by its
  best chunk. Past MAX_CHUNKS chunks the rest of very long notes (link lists, sponsors) is left out.

They are few beside passages (tens of thousands at most), so ranking is exact: one float32 matrix per model,
cached per archive like the exact vector index and rebuilt when the `search_versions` counters move on. The web
site serves a stale matrix while it is rebuilt in the background (`index_refresh.serving_stale`); what producers
changed since it was built (`episode_revisions`: an edit, a publish) is read and scored afresh on every search
meanwhile, so an episode published or edited in the studio is found by meaning as soon as the response returns,
whichever server process answers the next search.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading

import numpy as np
import sqlite_utils

from . import index_refresh, vector_index

KINDS = ("takeaway", "episode")
NOTE_WORDS = 160  # about 235 word pieces with the title: within all-MiniLM-L6-v2's 256
MAX_CHUNKS = 8


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chunks(title: str | None, notes: str | None, words_per_chunk: int = NOTE_WORDS,
           most: int = MAX_CHUNKS) -> list[str]:
    """An episode's notes as documents to embed: the title alone when there are no notes; else the notes in
    `ceil(words / words_per_chunk)` pieces of even length (at most `most`), each after the title."""
    words = (notes or "").split()[:words_per_chunk * most]
    if not words:
        return [title] if (title := _tidy(title)) else []
    count = math.ceil(len(words) / words_per_chunk)
    size = math.ceil(len(words) / count)
    return [_joined(title, " ".join(words[at:at + size])) for at in range(0, len(words), size)]


def takeaway_text(title: str | None, text: str | None) -> str:
    return _joined(title, text)


def _tidy(text: str | None) -> str:
    return " ".join((text or "").split())


def _joined(title: str | None, text: str | None) -> str:
    """"Title. Text" (no stop added after a title that ends a sentence already)."""
    title, text = _tidy(title), _tidy(text)
    if title and text:
        return f"{title}{'' if title.endswith(('.', '?', '!', ':')) else '.'} {text}"
    return title or text


def documents(db: sqlite_utils.Database, episode_ids=None) -> list[dict]:
    """What is embedded for these episodes (every episode: None), drafts included like the other indexes: dicts
    of kind ("takeaway" or "episode"), ref (the row's id), episode_id, text and content_hash, in id order."""
    where, params = "", []
    if episode_ids is not None:
        where, params = " WHERE {} IN (SELECT value FROM json_each(?))", [json.dumps([int(e) for e in episode_ids])]
    found = []
    for ref, episode, title, text in db.execute(
            f"SELECT id, episode_id, title, text FROM takeaways{where.format('episode_id')} ORDER BY id", params):
        if text := takeaway_text(title, text):
            found.append({"kind": "takeaway", "ref": ref, "episode_id": episode, "text": text,
                          "content_hash": content_hash(text)})
    for ref, title, notes in db.execute(
            f"SELECT id, title, notes_text FROM episodes{where.format('id')} ORDER BY id", params):
        for text in chunks(title, notes):
            found.append({"kind": "episode", "ref": ref, "episode_id": ref, "text": text,
                          "content_hash": content_hash(text)})
    return found


def _stored(db: sqlite_utils.Database, model: str, hashes: list[str]) -> dict[str, bytes]:
    if not hashes:
        return {}
    return dict(db.execute("SELECT content_hash, vector FROM embeddings WHERE model = ? AND content_hash IN "
                           "(SELECT value FROM json_each(?))", [model, json.dumps(sorted(set(hashes)))]).fetchall())


def last_revision(db: sqlite_utils.Database) -> int:
    return int(db.execute("SELECT coalesce(max(id), 0) FROM episode_revisions").fetchone()[0])


def search_version(db: sqlite_utils.Database) -> tuple[int, int]:
    """Moves on with any write to takeaways, episode titles and notes, or embeddings (and passages: m007)."""
    return index_refresh.search_version(db, "text"), index_refresh.search_version(db, "vectors")


class NoteIndex:
    """The vectors of every takeaway and notes chunk with one for the model: kinds (0 takeaway, 1 episode), row
    ids, episode ids and a float32 matrix, rows aligned; `revision`: the last studio revision when it was
    built."""

    def __init__(self, kinds: np.ndarray, refs: np.ndarray, episodes: np.ndarray, matrix: np.ndarray,
                 version, revision: int):
        self.kinds, self.refs, self.episodes, self.matrix = kinds, refs, episodes, matrix
        self.version, self.revision = version, revision
        self._episode_rows: vector_index.EpisodeRows | None = None

    @classmethod
    def build(cls, db: sqlite_utils.Database, model: str, version=None, episode_ids=None) -> "NoteIndex":
        revision = last_revision(db)  # before the documents: an edit made meanwhile is patched, not missed
        rows = documents(db, episode_ids)
        stored = _stored(db, model, [row["content_hash"] for row in rows])
        rows = [row for row in rows if row["content_hash"] in stored]
        if not rows:
            return cls(np.zeros(0, np.int8), np.zeros(0, np.int64), np.zeros(0, np.int64),
                       np.zeros((0, 1), np.float32), version, revision)
        kinds = np.fromiter((KINDS.index(row["kind"]) for row in rows), dtype=np.int8, count=len(rows))
        refs = np.fromiter((row["ref"] for row in rows), dtype=np.int64, count=len(rows))
        episodes = np.fromiter((row["episode_id"] for row in rows), dtype=np.int64, count=len(rows))
        blobs = [stored[row["content_hash"]] for row in rows]
        matrix = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), -1)
        return cls(kinds, refs, episodes, np.ascontiguousarray(matrix), version, revision)

    def __len__(self) -> int:
        return len(self.refs)

    def rows_of(self, episode_ids: np.ndarray) -> np.ndarray:
        if self._episode_rows is None:
            self._episode_rows = vector_index.EpisodeRows(self.episodes)
        return self._episode_rows.positions(episode_ids)

    def scores(self, query: np.ndarray, allowed=None, left_out=()) -> tuple[np.ndarray, np.ndarray]:
        """(row positions, cosine) of the rows of the `allowed` episodes (None: all); the rows of the
        `left_out` episodes score -inf."""
        if not len(self) or query.shape[-1] != self.matrix.shape[1]:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        if allowed is not None:
            positions = self.rows_of(allowed)
            scores = self.matrix[positions] @ query
        else:
            positions = np.arange(len(self))
            scores = self.matrix @ query
        for episodes in left_out:
            if episodes is None or not len(episodes):
                continue
            if allowed is None:
                scores[self.rows_of(episodes)] = -np.inf
            else:
                scores[np.isin(self.episodes[positions], episodes)] = -np.inf
        return positions, scores


_building = threading.Lock()


def note_index(db: sqlite_utils.Database, model: str, version=None) -> NoteIndex:
    """The cached index of `model`, fresh unless the caller serves stale indexes (then it is rebuilt in the
    background, see `index_refresh.serving_stale`, and `ranked` patches it)."""
    version = version or search_version(db)
    key = (index_refresh.cache_key(db), "notes", model)
    cached = index_refresh._cache.get(key)
    if cached is not None and cached.version == version:
        return cached
    if index_refresh._serve_stale(db, key, cached, False, lambda conn: note_index(conn, model)):
        return cached
    with _building:
        cached = index_refresh._cache.get(key)
        if cached is None or cached.version != version:
            cached = index_refresh._cache[key] = NoteIndex.build(db, model, version)
        return cached


def edited_since(db: sqlite_utils.Database, revision: int) -> np.ndarray:
    """The episodes producers changed (edit, publish, restore...) after `revision`."""
    rows = db.execute("SELECT DISTINCT episode_id FROM episode_revisions WHERE id > ?", [revision]).fetchall()
    return np.array([r[0] for r in rows], dtype=np.int64)


def ranked(db: sqlite_utils.Database, query: np.ndarray, model: str, depth: int, allowed=None,
           hidden=None, context: dict[int, float] | None = None) -> dict[str, list[tuple[int, float]]]:
    """The best `depth` takeaways and episodes (by their best notes chunk) by cosine similarity to `query`:
    kind -> [(row id, cosine)], best first; of the `allowed` episodes (None: all), never of the `hidden` ones.
    With a stale index (served while it is rebuilt), the episodes producers changed since it was built are
    scored from the archive as it is now. A `context` dict is filled with every scored episode's best notes-chunk
    cosine (episode id -> cosine): what the episode as a whole has to do with the query."""
    version = search_version(db)
    index = note_index(db, model, version)
    parts = [index]
    changed = edited_since(db, index.revision) if index.version != version else np.zeros(0, np.int64)
    wanted = changed if allowed is None else np.intersect1d(changed, allowed)
    if len(wanted):
        parts.append(NoteIndex.build(db, model, version, wanted.tolist()))
    kinds, refs, scores = [], [], []
    for n, part in enumerate(parts):
        positions, found = part.scores(query, allowed, (hidden, changed if n == 0 else None))
        kinds.append(part.kinds[positions])
        refs.append(part.refs[positions])
        scores.append(found)
    kinds, refs, scores = np.concatenate(kinds), np.concatenate(refs), np.concatenate(scores)
    if context is not None:
        notes = np.flatnonzero((kinds == KINDS.index("episode")) & np.isfinite(scores))
        order = notes[np.argsort(scores[notes], kind="stable")]  # ascending: each episode's best is written last
        context.update(zip(refs[order].tolist(), scores[order].tolist()))
    result = {}
    for code, kind in enumerate(KINDS):
        rows = np.flatnonzero((kinds == code) & np.isfinite(scores))
        top = rows[vector_index._top_k(scores[rows], depth * (MAX_CHUNKS if kind == "episode" else 1))]
        hits, seen = [], set()
        for row in top:  # best first: an episode's first row is its best chunk
            ref = int(refs[row])
            if ref not in seen:
                seen.add(ref)
                hits.append((ref, float(scores[row])))
        result[kind] = hits[:depth]
    return result


def takeaway_cosines(db: sqlite_utils.Database, query: np.ndarray, model: str, refs: list[int]) -> dict[int, float]:
    """The cosine of each of the takeaways `refs` to `query` (those with a vector in the index): the relevance
    floor's evidence for takeaways the keyword ranking found (archive/search.py `fill_cosines`)."""
    index = note_index(db, model)
    if not len(index) or query.shape[-1] != index.matrix.shape[1]:
        return {}
    rows = np.flatnonzero((index.kinds == KINDS.index("takeaway")) & np.isin(index.refs, np.asarray(refs)))
    return dict(zip(index.refs[rows].tolist(), (index.matrix[rows] @ query).tolist()))
