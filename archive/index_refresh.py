"""Where and when the search side indexes live: the process cache, freshness, and rebuilds that never stall a site.

Small archives (below `LARGE_ARCHIVE_PASSAGES` passages, about 250 hours of audio) need nothing beside the
database file: keyword search ranks with FTS5's bm25 and semantic search multiplies the query vector with every
passage vector held in memory (exact). Both cost time in proportion to what matches, which at a million
passages is seconds for a common word. Large archives therefore get two side indexes in `<db>.index/`: vectors
(archive/vector_index.py) and keywords (archive/keyword_index.py).

Every index records the `search_versions` counter it was built at (migration m007: triggers bump it on any
write to passages, embeddings, takeaways or episode titles and notes). A search that finds the counter moved on
rebuilds the index, and `build_index` rebuilds it at the end of ingest, so a site normally finds it fresh. A site
serves stale indexes instead (`serving_stale`) and rebuilds them in a child process (`main`), one process at a
time, sharing what it saved through the index folder.
"""

from __future__ import annotations

import contextlib
import contextvars
import fcntl
import json
import logging
import math
import os
import tempfile
import threading
import time
import uuid
from pathlib import Path

import sqlite_utils

log = logging.getLogger(__name__)

# FTS5 ranking (three ranked lists) on bench/search_quality.py's archive was already several times slower than
# Tantivy's and grows with the archive. Above this many passages, the side indexes take over.
LARGE_ARCHIVE_PASSAGES = 20_000

_cache: dict[tuple, object] = {}
_cache_lock = threading.Lock()  # held briefly, never while an index builds
_build_lock = threading.Lock()  # one build at a time in this process
_refreshing: set[tuple] = set()
_last_refresh: dict[tuple, float] = {}
_build_seconds: dict[tuple, float] = {}
STALE_REFRESH_SECONDS = 30.0  # a site under a busy ingest refreshes each index at most this often
# ... and rebuilds spend at most this share of one core: the next waits (1 / share) times as long as the last took.
# Under bench/web_load.py (figures in the README, Benchmarks), a Tantivy + faiss rebuild took seconds of CPU, and
# rebuilding every 30 s in each server process was what pushed page latencies up on 2 cores.
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
    (bench/web_load.py's p99; figures in the README). Returns the child's CPU seconds."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "archive.index_refresh", path, *key[1:]]
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
    """`python -m archive.index_refresh DB keywords|vectors [MODEL]`: rebuild one side index and save it (how a
    server refreshes one without stalling its own requests)."""
    import sys

    from .db import connect
    from .keyword_index import keyword_index
    from .vector_index import _faiss_threads, vector_index

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
