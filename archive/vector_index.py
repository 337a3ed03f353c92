"""Passage vectors searched by cosine: every vector in one matrix for a small archive, a faiss IVF index for a
large one.

The IVF index holds 4-bit product-quantised vectors scanned with SIMD ("fast scan", 2 bits a dimension: a
sixteenth of float32's memory), searched in `nprobe` of its cells, its candidates re-scored with their float32
vectors from the database (`refine`); `bench/search_speed.py` reports its recall@10 against exact search. It is
saved in `<db>.index/` and kept fresh by archive/index_refresh.py. It holds drafts too (archive/studio.py): a
search names the episodes to leave out, so publishing or unpublishing needs no rebuild.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sqlite_utils

from .index_refresh import (_build_lock, _cache, _index_lock, _read_meta, _saved_index, _serve_stale, _stale_ok,
                            _writable_dir, _write_meta, cache_key, index_dir, is_large, search_version)

# A filtered ANN search over at most this many allowed vectors probes every cell (a few cells could miss a small
# set): at a million passages, ten episodes' passages stayed fast with re-scoring and lost no recall@10.
EXACT_FILTERED_MAX = 2_000
# Cells an IVF search probes. Recall comes first: the default keeps recall@10 within 2% of exact search
# (RECALL_TARGET) on bench/search_speed.py, where 64 probes of 8-bit codes fell well short of it, even after
# re-scoring. Missed cells lost the neighbours, not the codes; questions far from every passage (TREC topics such
# as "roman empire" in a data podcast archive) lost most. Recall at a number of probes barely depends on the
# archive's size (cells grow as its square root). 8-bit codes needed 512 probes to reach the target at 1M;
# 4-bit fast-scan codes scan faster in a quarter of the memory and, re-scored, recall as well: 768 probes reach
# it at 200k and 1M in less time (1,024 probes gained nothing more at 1M: the 200 candidates re-scored are then
# the limit). More cells (4 sqrt(n)) or HNSW did no better for their time and built several times slower; exact
# float32 scoring is many times slower (bench/search_speed.py; figures in the README, Benchmarks).
DEFAULT_NPROBE = 768
RECALL_TARGET = 0.98  # recall@10 against exact search that the default must keep (bench/search_speed.py)
# A filtered search probes up to this many times as many cells, in proportion to the share of the archive it
# leaves out (a filter's nearest allowed passages lie further away, in more cells): at 1M passages, recall@10
# within one show's 2% rose from just above the target to nearly exact, for a few ms more with re-scoring.
FILTERED_PROBE_FACTOR = 2
PQ_MIN_VECTORS = 1_000  # fewer cannot train 4-bit product quantisers (16 centroids each): they get 8-bit codes
VECTOR_FORMAT = 2  # bump when the vector index's type changes: an index of another format is rebuilt
REFINE_FACTOR = 4  # an approximate search fetches this many times the candidates, re-scored with exact vectors
FETCH_CHUNK = 20_000


def model_slug(model: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("_") or "model"


def _vector_rows(db: sqlite_utils.Database, model: str, where: str = "", params: tuple = ()):
    """(passage id, episode id, vector bytes) for every passage embedded with `model`, in passage id order.
    CROSS JOIN keeps passages the outer loop: left to itself SQLite may walk every embedding of the model first
    (at a million passages, seconds instead of milliseconds for a few ids)."""
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
    (np.isin over a million rows cost every filtered search tens of milliseconds)."""

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
            # most rows (every episode but the unpublished ones): a mask over the rows, in order, was several
            # times faster at 1M rows than gathering and sorting their positions
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
        passages it was many times slower to build and to search (bench/search_speed.py; figures in the README)."""
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
