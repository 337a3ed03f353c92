"""The search indexes kept beside the archive's tables, for the sizes where SQLite alone is too slow.

Small archives (below `LARGE_ARCHIVE_PASSAGES` passages, about 250 hours of audio) need nothing beside the
database file: keyword search ranks with FTS5's bm25 and semantic search multiplies the query vector with every
passage vector held in memory (exact). Both cost time in proportion to what matches, which at a million
passages is seconds for a common word. Large archives therefore get two side indexes in `<db>.index/`:

* vectors: a faiss IVF index of 4-bit product-quantised vectors scanned with SIMD ("fast scan", 2 bits a
  dimension: a sixteenth of float32's memory), searched in `nprobe` of its cells, its candidates re-scored with
  their float32 vectors from the database (`refine`); `bench/search_speed.py` reports its recall@10 against
  exact search.
* keywords: a Tantivy index (BM25 with block-max WAND: top-k without scoring every match) over passages,
  takeaways and episode titles and notes, searched with the clauses of `archive.fts` (prefixes included).
  FTS5 tables stay, for snippets and for datasette.

Every index records the `search_versions` counter it was built at (migration m007: triggers bump it on any
write to passages, embeddings, takeaways or episode titles and notes). A search that finds the counter moved on
rebuilds the index, and `build_index` rebuilds it at the end of ingest, so a site normally finds it fresh.
Both indexes hold drafts too (archive/studio.py): a search names the episodes to leave out, so publishing or
unpublishing needs no rebuild.
"""

from __future__ import annotations

import contextlib
import contextvars
import fcntl
import json
import logging
import math
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sqlite_utils

from .fts import tantivy_query

log = logging.getLogger(__name__)

# FTS5 ranking took 20 ms a query (three ranked lists) at 16k passages in bench/search_quality.py and grows with
# the archive; Tantivy took 3 ms. Above this many passages, the side indexes take over.
LARGE_ARCHIVE_PASSAGES = 20_000
# A filtered ANN search over at most this many allowed vectors probes every cell (a few cells could miss a small
# set): at 1M passages, ten episodes' 800 took 4 ms with re-scoring, recall@10 1.0.
EXACT_FILTERED_MAX = 2_000
# Cells an IVF search probes. Recall comes first: the default keeps recall@10 within 2% of exact search
# (RECALL_TARGET) on bench/search_speed.py, where 64 probes of 8-bit codes lost 11% (0.887 at 200,000 passages,
# 0.895 at 1,000,000, after re-scoring). Missed cells lost the neighbours, not the codes; questions far from every
# passage (TREC topics such as "roman empire" in a data podcast archive) lost most. Recall at a number of probes
# barely depends on the archive's size (cells grow as its square root). 512 probes of 8-bit codes reached 0.981
# at 1M in about 10 ms; 4-bit fast-scan codes scan about 4 times faster in a quarter of the memory and, re-scored,
# recall as well: at 768 probes 0.999 at 200k and 0.986 at 1M, 3.1 and 5.4 ms with re-scoring (1,024 probes
# gained nothing more at 1M: the 200 candidates re-scored are then the limit). More cells (4 sqrt(n)) or HNSW
# (efSearch 1024: 0.994 in 2.5 ms at 200k) did no better for their time and built 4-5 times slower; exact float32
# scoring took 16-24 ms at 200k and 53-88 ms at 1M.
DEFAULT_NPROBE = 768
RECALL_TARGET = 0.98  # recall@10 against exact search that the default must keep (bench/search_speed.py)
# A filtered search probes up to this many times as many cells, in proportion to the share of the archive it
# leaves out (a filter's nearest allowed passages lie further away, in more cells): at 1M passages, recall@10
# within one show's 2% went from 0.981 to 0.999 (6 to 10 ms with re-scoring).
FILTERED_PROBE_FACTOR = 2
PQ_MIN_VECTORS = 1_000  # fewer cannot train 4-bit product quantisers (16 centroids each): they get 8-bit codes
VECTOR_FORMAT = 2  # bump when the vector index's type changes: an index of another format is rebuilt
REFINE_FACTOR = 4  # an approximate search fetches this many times the candidates, re-scored with exact vectors
KINDS = ("passage", "takeaway", "episode")
# Up to this many documents of unpublished episodes, a keyword search asks for as many more hits and drops theirs;
# past it, a MustNot clause leaves them out (drafts are few: a draft is its passages, takeaways and notes).
EXCLUDED_DOCUMENTS_DROPPED = 2_000
FETCH_CHUNK = 20_000

_cache: dict[tuple, object] = {}
_cache_lock = threading.Lock()  # held briefly, never while an index builds
_build_lock = threading.Lock()  # one build at a time in this process
_refreshing: set[tuple] = set()
_last_refresh: dict[tuple, float] = {}
_build_seconds: dict[tuple, float] = {}
STALE_REFRESH_SECONDS = 30.0  # a site under a busy ingest refreshes each index at most this often
# ... and rebuilds spend at most this share of one core: the next waits (1 / share) times as long as the last took.
# Measured under bench/web_load.py: a Tantivy + faiss rebuild of 43k passages took seconds of CPU, and rebuilding
# every 30 s in each server process was what pushed page latencies up on 2 cores.
REBUILD_CPU_SHARE = 0.1
_stale_ok = contextvars.ContextVar("podarchive_stale_ok", default=False)


@contextlib.contextmanager
def serving_stale():
    """Within this block a search that finds its index out of date uses the cached one and rebuilds it in a
    background thread (one at a time per index), instead of rebuilding while the caller waits. The web site
    searches this way, so an ingest writing to the archive never stalls page loads; the CLI and the library
    default to fresh indexes."""
    token = _stale_ok.set(True)
    try:
        yield
    finally:
        _stale_ok.reset(token)


def _serve_stale(db: sqlite_utils.Database, key: tuple, cached, rebuild: bool, build, load_newer=None) -> bool:
    """True when the caller may use `cached` while it is refreshed in the background: from a newer index another
    process saved (`load_newer(directory, version)`), else rebuilt, in a child process for an index saved to the
    index folder (`_build_in_child`), in this one for the others (`build(connection)`). One process builds at a
    time (a lock file in the index folder); the others pick up what it saved."""
    path = db_file(db)
    if cached is None or rebuild or not _stale_ok.get() or path is None:
        return False
    with _cache_lock:
        wait = max(STALE_REFRESH_SECONDS, _build_seconds.get(key, 0.0) / REBUILD_CPU_SHARE)
        if key in _refreshing or time.monotonic() - _last_refresh.get(key, -math.inf) < wait:
            return True
        _refreshing.add(key)

    def refresh():
        from .db import connect

        try:
            conn = connect(path, readonly=True)
            try:
                _refresh(conn, key, cached, build, load_newer)
            finally:
                conn.conn.close()
        except Exception:  # noqa: BLE001 - the next search tries again; the stale index keeps serving
            log.exception("background refresh of %s failed", key)
        finally:
            with _cache_lock:
                _last_refresh[key] = time.monotonic()
                _refreshing.discard(key)

    threading.Thread(target=refresh, name=f"podarchive-index-{key[1]}", daemon=True).start()
    return True


def _refresh(conn: sqlite_utils.Database, key: tuple, cached, build, load_newer) -> None:
    directory = _writable_dir(conn)
    if directory is None or load_newer is None:
        _timed(key, lambda: build(conn))
        return
    if _take_newer(key, directory, cached, load_newer):
        return
    with _index_lock(directory, exclusive=True, wait=False, name=".build.lock") as locked:
        if not locked:  # another process is building it: its index is taken on a later refresh
            return
        _timed(key, lambda: _build_in_child(db_file(conn), key))
    _take_newer(key, directory, cached, load_newer)


def _saved_index(db: sqlite_utils.Database, key: tuple, load_newer):
    """When serving stale, a process with nothing cached starts from whatever index was saved, however old,
    rather than building one while its first search waits."""
    directory = index_dir(db)
    if load_newer is None or not _stale_ok.get() or directory is None or not directory.is_dir():
        return None
    index = _load_saved(directory, -1, load_newer)
    if index is not None:
        with _cache_lock:
            _cache.setdefault(key, index)
    return index


def _take_newer(key: tuple, directory: Path, cached, load_newer) -> bool:
    newer = _load_saved(directory, cached.version, load_newer)
    if newer is not None:
        with _cache_lock:
            _cache[key] = newer
    return newer is not None


def _load_saved(directory: Path, newer_than: int, load_newer):
    with _index_lock(directory, exclusive=False):  # waits while another process saves
        return load_newer(directory, newer_than)


def _timed(key: tuple, build) -> None:
    """Run `build`, recording the CPU seconds it took (the float `_build_in_child` returns, else this process's:
    a build in this process returns the index it cached, not a time)."""
    started = time.process_time()
    seconds = build()
    with _cache_lock:
        _build_seconds[key] = seconds if isinstance(seconds, float) else time.process_time() - started


def _build_in_child(path: str, key: tuple) -> float:
    """Build a side index in a child process at low priority and save it to the index folder. In the server's
    own process, Tantivy's commit and faiss' training hold the GIL for seconds, stalling every request thread
    (measured: p99 of 4 s in bench/web_load.py). Returns the child's CPU seconds."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "archive.indexes", path, *key[1:]]
    with tempfile.TemporaryFile() as errors:
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(child.pid, 0)  # wait4: the child's own CPU time
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode:
            errors.seek(0)
            message = errors.read().decode(errors="replace").strip()[-500:]
            raise RuntimeError(f"building the {key[1]} index failed: {message}")
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def _index_lock(directory: Path, exclusive: bool, wait: bool = True, name: str = ".lock"):
    """A lock in the index folder shared by every process of the archive; yields whether it was taken.
    `.lock`: exclusive while an index is saved, shared while one is read; `.build.lock`: held while building."""
    try:
        handle = open(directory / name, "a+")
    except OSError:  # a read-only folder: no process saves there, nothing to wait for
        yield True
        return
    with handle:
        mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | (0 if wait else fcntl.LOCK_NB)
        try:
            fcntl.flock(handle, mode)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# -- where and when -------------------------------------------------------------------------------------------

def db_file(db: sqlite_utils.Database) -> str | None:
    """The main database file's path, or None for an in-memory database."""
    for row in db.execute("PRAGMA database_list").fetchall():
        if row[1] == "main":
            return row[2] or None
    return None


def index_dir(db: sqlite_utils.Database) -> Path | None:
    path = db_file(db)
    return Path(path + ".index") if path else None


def cache_key(db: sqlite_utils.Database) -> str:
    """The file path; an in-memory database gets a token of its own in a TEMP table (ids of connections are
    reused once one is closed, and a connection takes no weak reference)."""
    path = db_file(db)
    if path:
        return path
    db.execute("CREATE TEMP TABLE IF NOT EXISTS podarchive_cache_token (token TEXT)")
    row = db.execute("SELECT token FROM temp.podarchive_cache_token").fetchone()
    if row is None:
        token = uuid.uuid4().hex
        db.execute("INSERT INTO temp.podarchive_cache_token VALUES (?)", [token])
        return f"memory:{token}"
    return f"memory:{row[0]}"


def search_version(db: sqlite_utils.Database, name: str) -> int:
    row = db.execute("SELECT version FROM search_versions WHERE name = ?", [name]).fetchone()
    return int(row[0]) if row else 0


def passage_count(db: sqlite_utils.Database) -> int:
    return int(db.execute("SELECT count(*) FROM passages").fetchone()[0])


def is_large(db: sqlite_utils.Database, threshold: int | None = None) -> bool:
    """Whether the archive has enough passages for the side indexes (counted once per version of the text)."""
    threshold = LARGE_ARCHIVE_PASSAGES if threshold is None else threshold
    key, version = (cache_key(db), "count"), search_version(db, "text")
    cached = _cache.get(key)
    if cached is None or cached[0] != version:
        cached = _cache[key] = (version, passage_count(db))
    return cached[1] >= threshold


def model_slug(model: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("_") or "model"


def _read_meta(directory: Path, name: str) -> dict | None:
    try:
        return json.loads((directory / f"{name}.json").read_text())
    except (OSError, ValueError):
        return None


def _write_meta(directory: Path, name: str, meta: dict) -> None:
    tmp = directory / f".{name}.json.tmp"
    tmp.write_text(json.dumps(meta))
    os.replace(tmp, directory / f"{name}.json")


def _writable_dir(db: sqlite_utils.Database) -> Path | None:
    directory = index_dir(db)
    if directory is None:
        return None
    try:
        directory.mkdir(exist_ok=True)
    except OSError:
        return None
    return directory if os.access(directory, os.W_OK) else None


# -- vectors --------------------------------------------------------------------------------------------------

def _vector_rows(db: sqlite_utils.Database, model: str, where: str = "", params: tuple = ()):
    """(passage id, episode id, vector bytes) for every passage embedded with `model`, in passage id order.
    CROSS JOIN keeps passages the outer loop: left to itself SQLite may walk every embedding of the model first
    (measured at a million passages: 22 s instead of 3 ms for 40 ids)."""
    sql = (
        "SELECT p.id, p.episode_id, e.vector FROM passages p "
        "CROSS JOIN embeddings e ON e.model = ? AND e.content_hash = p.content_hash "
        f"{where} ORDER BY p.id"
    )
    cursor = db.execute(sql, (model, *params))
    while True:
        rows = cursor.fetchmany(FETCH_CHUNK)
        if not rows:
            return
        yield rows


def _unpack(rows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    episodes = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
    vectors = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32).reshape(len(rows), -1)
    return ids, episodes, vectors


@dataclass
class VectorHits:
    ids: np.ndarray  # passage ids, best first
    scores: np.ndarray  # cosine similarity (approximate for the quantised index)


class EpisodeRows:
    """Which rows belong to a set of episodes: binary search over the rows sorted by episode, made on first use
    (np.isin over a million rows took 30 ms a filtered search)."""

    def __init__(self, episodes: np.ndarray):
        self.episodes = episodes
        self.order = np.argsort(episodes, kind="stable")
        self.sorted = episodes[self.order]

    def positions(self, allowed_episodes: np.ndarray) -> np.ndarray:
        wanted = np.unique(np.asarray(allowed_episodes, dtype=self.sorted.dtype))
        low = np.searchsorted(self.sorted, wanted, "left")
        lengths = np.searchsorted(self.sorted, wanted, "right") - low
        total = int(lengths.sum())
        if total > len(self.sorted) // 8 and min(wanted[0], self.sorted[0]) >= 0:
            # most rows (every episode but the unpublished ones): a mask over the rows, in order, took 3 ms at
            # 1M rows where gathering and sorting their positions took 11 ms
            keep = np.zeros(int(max(wanted[-1], self.sorted[-1])) + 1, dtype=bool)
            keep[wanted] = True
            return np.flatnonzero(keep[self.episodes])
        offsets = np.repeat(low - (np.cumsum(lengths) - lengths), lengths)
        return np.sort(self.order[offsets + np.arange(total)])


class _ByEpisode:
    """Mixin for indexes with an `episodes` array aligned with their rows."""

    _episode_rows: EpisodeRows | None = None

    def rows_of(self, allowed_episodes: np.ndarray) -> np.ndarray:
        if self._episode_rows is None:
            self._episode_rows = EpisodeRows(self.episodes)
        return self._episode_rows.positions(allowed_episodes)


class ExactVectorIndex(_ByEpisode):
    """Every passage vector in one float32 matrix: a matrix-vector product per query."""

    kind = "exact"

    def __init__(self, ids: np.ndarray, episodes: np.ndarray, matrix: np.ndarray, version: int):
        self.ids, self.episodes, self.matrix, self.version = ids, episodes, matrix, version

    @classmethod
    def build(cls, db, model: str, version: int) -> "ExactVectorIndex":
        parts = [_unpack(rows) for rows in _vector_rows(db, model)]
        if not parts:
            return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 1), np.float32), version)
        ids, episodes, vectors = (np.concatenate(p) for p in zip(*parts))
        return cls(ids, episodes, np.ascontiguousarray(vectors), version)

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, query: np.ndarray, k: int, allowed_episodes: np.ndarray | None = None) -> VectorHits:
        if not len(self.ids) or query.shape[-1] != self.matrix.shape[1]:
            return VectorHits(np.zeros(0, np.int64), np.zeros(0, np.float32))
        positions = None
        if allowed_episodes is not None:
            positions = self.rows_of(allowed_episodes)
            scores = self.matrix[positions] @ query
        else:
            scores = self.matrix @ query
        top = _top_k(scores, k)
        picked = top if positions is None else positions[top]
        return VectorHits(self.ids[picked], scores[top])


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    if len(scores) <= k:
        return np.argsort(-scores, kind="stable")
    part = np.argpartition(-scores, k)[:k]
    return part[np.argsort(-scores[part], kind="stable")]


_faiss_threads = {"count": 1}


def _faiss():
    """faiss, on one OpenMP thread unless a process building indexes asked for more (`main`). faiss-cpu and
    torch each bring their own OpenMP runtime; in a process that also runs torch, faiss' thread pool is the
    known trigger of intermittent crashes (faiss issues #2555, #4273), and a single query gains little from
    it."""
    import faiss

    if faiss.omp_get_max_threads() != _faiss_threads["count"]:
        faiss.omp_set_num_threads(_faiss_threads["count"])
    return faiss


class IVFVectorIndex(_ByEpisode):
    """faiss IVF with 4-bit product quantisation and fast scan (8-bit scalar quantisation below PQ_MIN_VECTORS);
    inner product = cosine on L2-normalised vectors. Its scores are approximate: search re-scores its candidates
    (`refine`)."""

    def __init__(self, index, ids: np.ndarray, episodes: np.ndarray, version: int, nprobe: int = DEFAULT_NPROBE):
        self.index, self.ids, self.episodes, self.version, self.nprobe = index, ids, episodes, version, nprobe
        self.kind = "ivf-pq4fs" if isinstance(index, _faiss().IndexIVFPQFastScan) else "ivf-sq8"

    def __len__(self) -> int:
        return len(self.ids)

    @staticmethod
    def cells_for(count: int) -> int:
        # about 2 sqrt(n) cells, each trained on at least 39 vectors (faiss's floor)
        return int(max(1, min(16384, round(2 * math.sqrt(count)), count // 39)))

    @classmethod
    def build(cls, db, model: str, version: int, nprobe: int = DEFAULT_NPROBE, progress=None) -> "IVFVectorIndex":
        faiss = _faiss()

        count = int(db.execute(
            "SELECT count(*) FROM passages p CROSS JOIN embeddings e ON e.model = ? AND e.content_hash = p.content_hash",
            [model],
        ).fetchone()[0])
        if count == 0:
            raise ValueError("no passage has a vector for this model")
        cells = cls.cells_for(count)
        sample = _training_sample(db, model, count, cells * 50)
        dims = sample.shape[1]
        quantizer = faiss.IndexFlatIP(dims)
        if count >= PQ_MIN_VECTORS and dims % 2 == 0:  # one 4-bit code for every two dimensions
            index = faiss.IndexIVFPQFastScan(quantizer, dims, cells, dims // 2, 4, faiss.METRIC_INNER_PRODUCT)
        else:
            index = faiss.IndexIVFScalarQuantizer(quantizer, dims, cells, faiss.ScalarQuantizer.QT_8bit,
                                                  faiss.METRIC_INNER_PRODUCT)
        index.train(sample)
        del sample
        all_ids, all_episodes = [], []
        for rows in _vector_rows(db, model):
            ids, episodes, vectors = _unpack(rows)
            index.add_with_ids(vectors, ids)
            all_ids.append(ids)
            all_episodes.append(episodes)
            if progress:
                progress(sum(len(i) for i in all_ids), count)
        return cls(index, np.concatenate(all_ids), np.concatenate(all_episodes), version, nprobe)

    def search(self, query: np.ndarray, k: int, allowed_episodes: np.ndarray | None = None) -> VectorHits:
        faiss = _faiss()

        if query.shape[-1] != self.index.d:
            return VectorHits(np.zeros(0, np.int64), np.zeros(0, np.float32))
        query = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        params = faiss.SearchParametersIVF(nprobe=self.nprobe)
        if allowed_episodes is not None:
            allowed = self.ids[self.rows_of(allowed_episodes)]
            if not len(allowed):
                return VectorHits(np.zeros(0, np.int64), np.zeros(0, np.float32))
            bitmap = self._bitmap(allowed)  # referenced until the search returns: the selector only points at it
            selector = faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap))
            params = faiss.SearchParametersIVF(nprobe=self.filtered_nprobe(len(allowed)), sel=selector)
        scores, ids = self.index.search(query, k, params=params)
        keep = ids[0] >= 0
        return VectorHits(ids[0][keep], scores[0][keep])

    def filtered_nprobe(self, allowed: int) -> int:
        """Cells probed by a search restricted to `allowed` of the index's vectors: every cell for a few (see
        EXACT_FILTERED_MAX), else more than unfiltered (see FILTERED_PROBE_FACTOR)."""
        if allowed <= EXACT_FILTERED_MAX:
            return int(self.index.nlist)
        factor = min(FILTERED_PROBE_FACTOR, len(self.ids) / allowed)
        return int(min(self.index.nlist, math.ceil(self.nprobe * factor)))

    def _bitmap(self, allowed: np.ndarray) -> np.ndarray:
        """The allowed passage ids as faiss' IDSelectorBitmap reads them (bit i of byte i // 8 is id i). Its test
        is one bit; IDSelectorBatch hashed every allowed id for each query: for all but 30 episodes at 1M
        passages it took 56 ms to build and 74 ms to search, the bitmap 1 ms and 12 ms (8-bit codes, 512 probes)."""
        bits = np.zeros(int(self.ids.max()) + 1, dtype=bool)
        bits[allowed] = True
        return np.packbits(bits, bitorder="little")

    def save(self, directory: Path, model: str) -> None:
        faiss = _faiss()

        stem = directory / f"vectors-{model_slug(model)}"
        faiss.write_index(self.index, str(stem) + ".faiss.tmp")
        np.savez(str(stem) + ".tmp.npz", ids=self.ids, episodes=self.episodes)
        os.replace(str(stem) + ".faiss.tmp", str(stem) + ".faiss")
        os.replace(str(stem) + ".tmp.npz", str(stem) + ".npz")
        _write_meta(directory, f"vectors-{model_slug(model)}", {"model": model, "version": self.version,
                                                               "count": len(self.ids), "kind": self.kind,
                                                               "format": VECTOR_FORMAT})

    @classmethod
    def load(cls, directory: Path, model: str, version: int, nprobe: int = DEFAULT_NPROBE):
        faiss = _faiss()

        stem = directory / f"vectors-{model_slug(model)}"
        meta = _read_meta(directory, f"vectors-{model_slug(model)}")
        if (not meta or meta.get("version") != version or meta.get("model") != model
                or meta.get("format", 1) != VECTOR_FORMAT):
            return None
        try:
            index = faiss.read_index(str(stem) + ".faiss")
            arrays = np.load(str(stem) + ".npz")
        except (OSError, RuntimeError, ValueError):
            return None
        return cls(index, arrays["ids"], arrays["episodes"], version, nprobe)

    @classmethod
    def load_newer(cls, directory: Path, model: str, newer_than: int, nprobe: int = DEFAULT_NPROBE):
        """The saved index if it is newer than `newer_than` (another process built it), else None."""
        meta = _read_meta(directory, f"vectors-{model_slug(model)}")
        if (not meta or meta.get("model") != model or meta.get("version", -1) <= newer_than
                or meta.get("format", 1) != VECTOR_FORMAT):
            return None
        return cls.load(directory, model, meta["version"], nprobe)


def refine(db: sqlite_utils.Database, model: str, query: np.ndarray, hits: VectorHits, k: int) -> VectorHits:
    """Re-score approximate hits with their exact float32 vectors (4-bit codes blur close scores) and keep the
    best k."""
    if not len(hits.ids):
        return hits
    ids = [int(i) for i in hits.ids]
    rows = []
    for at in range(0, len(ids), FETCH_CHUNK):  # within SQLite's limit on parameters
        chunk = ids[at:at + FETCH_CHUNK]
        rows += db.execute(
            "SELECT p.id, e.vector FROM passages p CROSS JOIN embeddings e ON e.model = ? AND e.content_hash = p.content_hash "
            f"WHERE p.id IN ({','.join('?' * len(chunk))})", [model, *chunk]).fetchall()
    if not rows:
        return VectorHits(np.zeros(0, np.int64), np.zeros(0, np.float32))
    found = np.array([r[0] for r in rows], dtype=np.int64)
    vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
    scores = vectors @ query
    top = _top_k(scores, k)
    return VectorHits(found[top], scores[top])


def _training_sample(db, model: str, count: int, size: int) -> np.ndarray:
    """A random sample of about `size` vectors, enough to train the IVF cells."""
    step = max(1, count // max(size, 1))
    parts = [_unpack(rows)[2] for rows in _vector_rows(db, model, "WHERE abs(random() % ?) = 0", (step,))]
    if not parts:
        parts = [_unpack(next(_vector_rows(db, model)))[2]]
    return np.ascontiguousarray(np.concatenate(parts))


def vector_index(db: sqlite_utils.Database, model: str, *, large: bool | None = None, rebuild: bool = False,
                 nprobe: int = DEFAULT_NPROBE, progress=None):
    """The vector index for `model`, fresh for the archive as it is now: from the process cache, from
    `<db>.index/`, or built (and saved there when the folder is writable)."""
    version = search_version(db, "vectors")
    key = (cache_key(db), "vectors", model)
    cached = _cache.get(key)
    if cached is not None and cached.version == version and not rebuild:
        return cached
    saved = cached.kind != "exact" if cached is not None else _stale_ok.get() and is_large(db)
    load_newer = (lambda directory, newer_than: IVFVectorIndex.load_newer(directory, model, newer_than, nprobe)
                  ) if saved else None
    cached = cached or _saved_index(db, key, load_newer)
    if _serve_stale(db, key, cached, rebuild, lambda conn: vector_index(conn, model, large=large, nprobe=nprobe),
                    load_newer):
        return cached
    with _build_lock:
        cached = _cache.get(key)
        if cached is not None and cached.version == version and not rebuild:
            return cached
        if large is None:
            large = is_large(db)
        index = None
        if large:
            directory = index_dir(db)
            if directory is not None and not rebuild:
                index = IVFVectorIndex.load(directory, model, version, nprobe)
            if index is None:
                index = IVFVectorIndex.build(db, model, version, nprobe, progress)
                directory = _writable_dir(db)
                if directory is not None:
                    with _index_lock(directory, exclusive=True):
                        index.save(directory, model)
        else:
            index = ExactVectorIndex.build(db, model, version)
        _cache[key] = index
        return index


# -- keywords (large archives) ------------------------------------------------------------------------------

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


def forget(db: sqlite_utils.Database | None = None) -> None:
    """Drop cached indexes (of one archive, or all): the next search loads or builds them again."""
    with _cache_lock:
        if db is None:
            _cache.clear()
            return
        key = cache_key(db)
        for cached in [k for k in _cache if k[0] == key]:
            del _cache[cached]


def main(argv: list[str] | None = None) -> None:
    """`python -m archive.indexes DB keywords|vectors [MODEL]`: rebuild one side index and save it (how a
    server refreshes one without stalling its own requests)."""
    import sys

    from .db import connect

    path, what, *model = argv if argv is not None else sys.argv[1:]
    os.nice(10)  # the server's requests come first
    _faiss_threads["count"] = os.cpu_count() or 1  # no torch in this process: faiss may train on every core
    db = connect(path, readonly=True)
    if what == "keywords":
        keyword_index(db, rebuild=True)
    else:
        vector_index(db, model[0], large=True, rebuild=True)


if __name__ == "__main__":
    main()
