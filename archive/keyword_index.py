"""The Tantivy keyword index of a large archive: BM25 over passages, takeaways and episode titles and notes.

Tantivy ranks with block-max WAND (top-k without scoring every match), searched with the clauses of
`archive.fts` (prefixes included); FTS5 tables stay, for snippets, small archives and datasette. The index is
saved in `<db>.index/keywords` and kept fresh by archive/index_refresh.py. It holds drafts too
(archive/studio.py): a search names the episodes to leave out, so publishing or unpublishing needs no rebuild.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import sqlite_utils

from .fts import tantivy_query
from .index_refresh import (_build_lock, _cache, _index_lock, _read_meta, _saved_index, _serve_stale,
                            _writable_dir, _write_meta, cache_key, index_dir, search_version)

KINDS = ("passage", "takeaway", "episode")
# Up to this many documents of unpublished episodes, a keyword search asks for as many more hits and drops theirs;
# past it, a MustNot clause leaves them out (drafts are few: a draft is its passages, takeaways and notes).
EXCLUDED_DOCUMENTS_DROPPED = 2_000
KEYWORD_FORMAT = 2  # bump when the schema below changes: an index of another format is rebuilt


def _keyword_schema():
    """One text field per kind, so that an unfiltered query is a plain disjunction (or conjunction) of terms on
    one field, which Tantivy answers with block-max WAND instead of scoring every match."""
    import tantivy

    builder = tantivy.SchemaBuilder()
    for kind in KINDS:
        builder.add_text_field(f"text_{kind}", stored=False, tokenizer_name="en_stem", index_option="position")
    builder.add_integer_field("ref", stored=False, indexed=False, fast=True)
    builder.add_integer_field("episode", stored=False, indexed=True, fast=True)
    return builder.build()


def _keyword_documents(db: sqlite_utils.Database):
    """(kind, row id, episode id, text) of everything keyword search ranks."""
    yield from (("passage", *row) for row in db.execute("SELECT id, episode_id, text FROM passages"))
    yield from (("takeaway", *row) for row in db.execute(
        "SELECT id, episode_id, title || '. ' || coalesce(text, '') FROM takeaways"))
    yield from (("episode", *row) for row in db.execute(
        "SELECT id, id, coalesce(title, '') || '. ' || coalesce(notes_text, '') FROM episodes"))


class KeywordIndex:
    """Tantivy BM25 over passages, takeaways and episodes (title + notes); one ranked list per kind."""

    def __init__(self, index, version: int, path: Path | None = None):
        self.index, self.version, self.path = index, version, path
        self._counts: dict[frozenset, int] = {}  # documents of a set of excluded episodes
        self.index.reload()
        self.searcher = index.searcher()
        self.schema = index.schema

    @classmethod
    def build(cls, db, version: int, path: Path | None = None, progress=None) -> "KeywordIndex":
        import tantivy

        schema = _keyword_schema()
        if path is not None:
            path.mkdir(parents=True, exist_ok=True)
            index = tantivy.Index(schema, path=str(path), reuse=False)
        else:
            index = tantivy.Index(schema)
        writer = index.writer(heap_size=128_000_000, num_threads=2)
        for n, (kind, ref, episode, text) in enumerate(_keyword_documents(db), start=1):
            writer.add_document(tantivy.Document(**{f"text_{kind}": text or ""}, ref=int(ref), episode=int(episode)))
            if progress and n % 50_000 == 0:
                progress(n)
        writer.commit()
        writer.wait_merging_threads()
        return cls(index, version, path)

    def parse(self, clause_text: str, kind: str):
        return tantivy_query(self.index, clause_text, f"text_{kind}")

    def search(self, clauses: list[str], kind: str, k: int, operator: str = "AND",
               allowed_episodes: np.ndarray | None = None,
               excluded_episodes: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Ranked (row id, BM25 score) of one kind, of the allowed episodes (None: all) but the excluded ones;
        clauses are Tantivy query strings from archive.fts."""
        import tantivy

        if not clauses:
            return []
        occur = tantivy.Occur.Must if operator == "AND" else tantivy.Occur.Should
        query = tantivy.Query.boolean_query([(occur, self.parse(c, kind)) for c in clauses])
        if allowed_episodes is not None:
            if not len(allowed_episodes):
                return []
            query = tantivy.Query.boolean_query([
                (tantivy.Occur.Must, query),
                (tantivy.Occur.Must, tantivy.Query.term_set_query(
                    self.schema, "episode", [int(e) for e in allowed_episodes])),
            ])
        elif excluded_episodes is not None and len(excluded_episodes):
            excluded = tantivy.Query.term_set_query(self.schema, "episode", [int(e) for e in excluded_episodes])
            slack = self._documents_of(excluded_episodes, excluded)
            if slack <= EXCLUDED_DOCUMENTS_DROPPED:
                return self._search_without(query, k, slack, {int(e) for e in excluded_episodes})
            query = tantivy.Query.boolean_query([(tantivy.Occur.Must, query), (tantivy.Occur.MustNot, excluded)])
        result = self.searcher.search(query, k, count=False)
        if not result.hits:
            return []
        refs = self.searcher.fast_field_values("ref", [address for _, address in result.hits])
        return [(int(ref), float(score)) for (score, _), ref in zip(result.hits, refs)]

    def _documents_of(self, episodes: np.ndarray, query) -> int:
        """How many documents (of every kind) these episodes have in the index, counted once per set."""
        key = frozenset(int(e) for e in episodes)
        if key not in self._counts:
            if len(self._counts) > 64:
                self._counts.clear()
            self._counts[key] = self.searcher.search(query, 1, count=True).count
        return self._counts[key]

    def _search_without(self, query, k: int, slack: int, excluded: set[int]) -> list[tuple[int, float]]:
        """The top k of `query` outside the excluded episodes: the top k + slack (their documents), theirs
        dropped. A plain query keeps Tantivy's top-k pruning, which a MustNot clause would lose."""
        result = self.searcher.search(query, k + slack, count=False)
        if not result.hits:
            return []
        addresses = [address for _, address in result.hits]
        refs = self.searcher.fast_field_values("ref", addresses)
        episodes = self.searcher.fast_field_values("episode", addresses)
        kept = [(int(ref), float(score)) for (score, _), ref, episode in zip(result.hits, refs, episodes)
                if int(episode) not in excluded]
        return kept[:k]


def keyword_index(db: sqlite_utils.Database, *, rebuild: bool = False, progress=None) -> KeywordIndex:
    """The Tantivy index, fresh for the archive as it is now (cache, `<db>.index/keywords`, or built)."""
    version = search_version(db, "text")
    key = (cache_key(db), "keywords")
    cached = _cache.get(key)
    if cached is not None and cached.version == version and not rebuild:
        return cached
    cached = cached or _saved_index(db, key, _open_newer_keywords)
    if _serve_stale(db, key, cached, rebuild, keyword_index, _open_newer_keywords):
        return cached
    with _build_lock:
        cached = _cache.get(key)
        if cached is not None and cached.version == version and not rebuild:
            return cached
        index = None
        directory = index_dir(db)
        if directory is not None and not rebuild and _saved_keywords_version(directory) == version:
            index = _open_keywords(directory / "keywords", version)
        if index is None:
            writable = _writable_dir(db)
            if writable is not None:
                tmp = Path(tempfile.mkdtemp(prefix=".keywords-", dir=writable))
                index = KeywordIndex.build(db, version, tmp, progress)
                target = writable / "keywords"
                old = writable / f".keywords-old-{os.getpid()}"
                with _index_lock(writable, exclusive=True):
                    if target.exists():
                        os.replace(target, old)
                    os.replace(tmp, target)
                    _write_meta(writable, "keywords", {"version": version, "format": KEYWORD_FORMAT})
                    index = _open_keywords(target, version)
                shutil.rmtree(old, ignore_errors=True)
            else:
                index = KeywordIndex.build(db, version, None, progress)
        _cache[key] = index
        return index


def _saved_keywords_version(directory: Path) -> int | None:
    """The version of the keyword index saved in `directory`, if one of this format is there."""
    meta = _read_meta(directory, "keywords")
    return meta.get("version") if meta and meta.get("format") == KEYWORD_FORMAT else None


def _open_newer_keywords(directory: Path, newer_than: int) -> KeywordIndex | None:
    version = _saved_keywords_version(directory)
    if version is None or version <= newer_than:
        return None
    return _open_keywords(directory / "keywords", version)


def _open_keywords(path: Path, version: int) -> KeywordIndex | None:
    import tantivy

    try:
        return KeywordIndex(tantivy.Index.open(str(path)), version, path)
    except (OSError, ValueError):
        return None

