"""Search latency, index build time, archive size and peak memory on a synthetic archive of N passages.

    .venv/bin/python bench/search_speed.py                     # 1,000,000 passages (builds once, ~15 min)
    .venv/bin/python bench/search_speed.py --passages 20000    # a quick run

How the archive is made (embedding a million passages on a CPU takes hours, so vectors are synthesised):
* text: real DataTalks.Club passages (bench/out/datatalks.db, see bench/datatalks_archive.py) recombined; each
  synthetic passage is the first sentences of one real passage followed by the last sentences of another;
* vector: the same mix of the two real passages' embeddings (weighted by their share of the text), plus gaussian
  noise (norm `--noise`), L2-normalised again;
* 80 passages an episode, 50 shows, publication dates spread over ten years.

Queries: the listener questions of bench/queries_datatalks.json plus the TREC 2020/2021 podcast track topics
(/work/shared/fixtures/retrieval_eval/trec_podcasts), each run once per mode in a fresh process after one warm-up
query: one pass in hybrid mode the first time each query is seen (its pages may not be cached yet), then each
mode over every query. The embedder is warmed up first, as the web server does (model loaded, traced for
queries). Hybrid and semantic latencies include embedding the query with the default embedder.

Recall (large archives): every query's exact top 10 by cosine, streamed over every vector, against the faiss index
searched as `semantic_ranking` searches it (the default nprobe, depth x REFINE_FACTOR candidates re-scored with
their float32 vectors), with no filter, within one show (2% of the archive), within ten episodes and within all
but 30 episodes (how unpublished episodes are left out once they have more passages than search drops one by
one); then without a filter over a sweep of nprobe, with and without re-scoring.

Goals (2 cores): keyword p95 <= 20 ms, hybrid p95 <= 50 ms, peak RSS <= 2 GB, and recall@10 against exact search
>= vector_index.RECALL_TARGET (0.98) at the default, filtered or not. The last lines printed check each goal.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from archive import index_refresh, keyword_index, vector_index  # noqa: E402
from archive.db import open_db  # noqa: E402

OUT = ROOT / "bench" / "out"
SOURCE = OUT / "datatalks.db"
TREC = ROOT.parent / "shared" / "fixtures" / "retrieval_eval" / "trec_podcasts"
PASSAGES_PER_EPISODE = 80
SHOWS = 50
CHUNK = 20_000


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss it is not inherited across fork + exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def dir_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def load_sources(model: str):
    """Real passages with their embeddings: (list of sentence lists, vectors)."""
    if not SOURCE.exists():
        sys.exit(f"{SOURCE} is missing: run bench/datatalks_archive.py first")
    db = open_db(SOURCE)
    rows = db.execute(
        "SELECT p.text, e.vector FROM passages p JOIN embeddings e ON e.model = ? AND e.content_hash = p.content_hash",
        [model]).fetchall()
    sentences = [re.split(r"(?<=[.!?])\s+", text) for text, _ in rows]
    vectors = np.frombuffer(b"".join(v for _, v in rows), dtype=np.float32).reshape(len(rows), -1)
    return sentences, vectors


def synthesise(count: int, sentences, vectors, noise: float, seed: int = 42):
    """Yield chunks of (texts, vectors) recombined from the real passages."""
    rng = np.random.default_rng(seed)
    dims = vectors.shape[1]
    for start in range(0, count, CHUNK):
        n = min(CHUNK, count - start)
        a, b = rng.integers(0, len(sentences), n), rng.integers(0, len(sentences), n)
        texts, share = [], np.empty(n, dtype=np.float32)
        for i in range(n):
            first, second = sentences[a[i]], sentences[b[i]]
            cut_a, cut_b = rng.integers(1, len(first) + 1), rng.integers(0, len(second))
            head, tail = " ".join(first[:cut_a]), " ".join(second[cut_b:])
            texts.append(f"{head} {tail}".strip())
            share[i] = len(head) / max(1, len(head) + len(tail))
        mixed = share[:, None] * vectors[a] + (1 - share[:, None]) * vectors[b]
        mixed += rng.normal(size=(n, dims)).astype(np.float32) * (noise / np.sqrt(dims))
        mixed /= np.linalg.norm(mixed, axis=1, keepdims=True)
        yield texts, mixed.astype(np.float32)


def build(path: Path, count: int, noise: float, model: str) -> dict:
    from archive.fts_tables import ensure_fts

    timings = {}
    sentences, vectors = load_sources(model)
    print(f"sources: {len(sentences)} real passages with {model} embeddings", flush=True)
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    shutil.rmtree(str(path) + ".index", ignore_errors=True)  # side indexes of the archive built before
    db = open_db(path)
    episodes = max(1, count // PASSAGES_PER_EPISODE)
    started = time.perf_counter()
    with db.conn:
        db.conn.executemany("INSERT INTO shows (id, feed_url, title) VALUES (?, ?, ?)",
                            [(s + 1, f"https://example.com/show{s}.xml", f"Show {s}") for s in range(SHOWS)])
        db.conn.executemany(
            "INSERT INTO episodes (id, show_id, guid, title, published, notes_text) VALUES (?, ?, ?, ?, ?, ?)",
            [(e + 1, e % SHOWS + 1, f"ep-{e}", f"Episode {e}",
              f"{2015 + (e * 10) // episodes}-{(e % 12) + 1:02d}-15T12:00:00+00:00", "") for e in range(episodes)])
    passage_id = 0
    for texts, chunk_vectors in synthesise(count, sentences, vectors, noise):
        rows, blobs = [], []
        for text, vector in zip(texts, chunk_vectors):
            episode = passage_id // PASSAGES_PER_EPISODE % episodes + 1
            content_hash = f"synthetic-{passage_id}"
            start = 45.0 * (passage_id % PASSAGES_PER_EPISODE)
            rows.append((passage_id + 1, episode, passage_id % PASSAGES_PER_EPISODE, start, start + 45, text,
                         content_hash))
            blobs.append((model, content_hash, len(vector), vector.tobytes()))
            passage_id += 1
        with db.conn:
            db.conn.executemany("INSERT INTO passages (id, episode_id, idx, start, end, text, content_hash) "
                                "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            db.conn.executemany("INSERT INTO embeddings (model, content_hash, dims, vector) VALUES (?, ?, ?, ?)",
                                blobs)
    timings["insert_s"] = time.perf_counter() - started
    print(f"inserted {count} passages and vectors in {timings['insert_s']:.0f} s", flush=True)
    started = time.perf_counter()
    ensure_fts(db)
    timings["fts5_s"] = time.perf_counter() - started
    print(f"FTS5 tables in {timings['fts5_s']:.0f} s", flush=True)
    if index_refresh.is_large(db):
        started = time.perf_counter()
        vector_index.vector_index(db, model)
        timings["vector_index_s"] = time.perf_counter() - started
        print(f"vector index (faiss {vector_index.vector_index(db, model).kind}) in {timings['vector_index_s']:.0f} s",
              flush=True)
        started = time.perf_counter()
        keyword_index.keyword_index(db)
        timings["keyword_index_s"] = time.perf_counter() - started
        print(f"keyword index (Tantivy) in {timings['keyword_index_s']:.0f} s", flush=True)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    timings["build_peak_rss_mb"] = peak_rss_mb()
    return timings


def queries() -> list[str]:
    listener = [q["query"] for q in json.loads((ROOT / "bench" / "queries_datatalks.json").read_text())["queries"]]
    trec = []
    for name in ("podcasts_2020_topics_train.xml", "podcasts_2020_topics_test.xml", "podcasts_2021_topics_test.xml"):
        path = TREC / name
        if path.exists():
            trec += re.findall(r"<query>(.*?)</query>", path.read_text())
    return listener + trec


def percentile(values, p) -> float:
    return float(np.percentile(np.array(values) * 1000, p))


def measure(path: Path, model: str, show_filter: bool) -> dict:
    """Run in a fresh process: load, warm up, time every query in every mode."""
    from archive.embeddings import warm_up
    from archive.query_embedding import get_embedder
    from archive.search import search

    db = open_db(path)
    embedder = get_embedder(model if model != "all-MiniLM-L6-v2" else None)
    started = time.perf_counter()
    warm_up(embedder)  # as the web server does: load the model and trace it for queries
    search(db, "warm up the model and the indexes", mode="hybrid", embedder=embedder)
    load_s = time.perf_counter() - started
    results = {"load_and_first_query_s": load_s, "queries": len(queries())}
    # The first time a query is seen its candidates' pages may not be in memory yet: timed apart, then the
    # three modes run warm, each over every query.
    times = []
    for query in queries():
        started = time.perf_counter()
        search(db, query, mode="hybrid", embedder=embedder)
        times.append(time.perf_counter() - started)
    results["hybrid_first_pass"] = {"p50_ms": percentile(times, 50), "p95_ms": percentile(times, 95),
                                    "max_ms": percentile(times, 100)}
    for mode in ("keyword", "semantic", "hybrid"):
        times = []
        for query in queries():
            started = time.perf_counter()
            search(db, query, mode=mode, embedder=embedder)
            times.append(time.perf_counter() - started)
        results[mode] = {"p50_ms": percentile(times, 50), "p95_ms": percentile(times, 95),
                         "max_ms": percentile(times, 100)}
    if show_filter:
        times = []
        for i, query in enumerate(queries()):
            started = time.perf_counter()
            search(db, query, mode="hybrid", show=str(i % SHOWS + 1), embedder=embedder)
            times.append(time.perf_counter() - started)
        results["hybrid_show_filter"] = {"p50_ms": percentile(times, 50), "p95_ms": percentile(times, 95)}
    results["search_peak_rss_mb"] = peak_rss_mb()
    return results


def exact_top(db, model: str, query_vectors: np.ndarray, filters: dict, k: int = 10) -> dict[str, list[list[int]]]:
    """Exact top-k of each query under each filter (name -> None, or each query's allowed episode ids), best
    first, streaming every vector once (float32 in chunks, so memory stays flat)."""
    best = {name: (np.full((len(query_vectors), k), -np.inf, dtype=np.float32),
                   np.zeros((len(query_vectors), k), dtype=np.int64)) for name in filters}
    for rows in vector_index._vector_rows(db, model):
        ids, episodes, vectors = vector_index._unpack(rows)
        chunk_scores = query_vectors @ vectors.T
        for name, allowed in filters.items():
            scores = chunk_scores
            if allowed is not None:
                scores = np.where(np.stack([np.isin(episodes, a) for a in allowed]), chunk_scores, -np.inf)
            best_scores, best_ids = best[name]
            all_scores = np.concatenate([best_scores, scores], axis=1)
            all_ids = np.concatenate([best_ids, np.broadcast_to(ids, scores.shape)], axis=1)
            top = np.argpartition(-all_scores, k, axis=1)[:, :k]
            best[name] = (np.take_along_axis(all_scores, top, axis=1), np.take_along_axis(all_ids, top, axis=1))
    return {name: [i[np.argsort(-s)][np.sort(s)[::-1] > -np.inf].tolist() for s, i in zip(*best[name])]
            for name in filters}


def recall_at(k: int, found: list[list[int]], truth: list[list[int]]) -> float:
    """The mean share of each exact top k (all of it, where a filter allows fewer) found in the top k."""
    return float(np.mean([len(set(f[:k]) & set(t[:k])) / max(1, len(t[:k])) for f, t in zip(found, truth)]))


def recall_filters(db, count: int) -> dict:
    """Each query's allowed episodes: none (no filter), one show's (as `measure` filters), ten (800 passages:
    few enough that every cell is searched, see EXACT_FILTERED_MAX), all but 30."""
    episodes = {show: np.array([r[0] for r in db.execute("SELECT id FROM episodes WHERE show_id = ?", [show])])
                for show in range(1, SHOWS + 1)}
    every = np.array([r[0] for r in db.execute("SELECT id FROM episodes ORDER BY id")])
    return {"no filter": None,
            "one show": [episodes[i % SHOWS + 1] for i in range(count)],
            "ten episodes": [every[(np.arange(10) * 97 + i * 13) % len(every)] for i in range(count)],
            "all but 30 episodes": [np.delete(every, np.arange(30) + (i * 37) % (len(every) - 30))
                                    for i in range(count)]}


def ann_recall(path: Path, model: str) -> dict:
    from archive.query_embedding import get_embedder
    from archive.search import DEFAULT_TUNING, semantic_text

    db = open_db(path)
    embedder = get_embedder(model if model != "all-MiniLM-L6-v2" else None)
    query_vectors = embedder.embed([semantic_text(q) for q in queries()])
    filters = recall_filters(db, len(query_vectors))
    depth = DEFAULT_TUNING.depth
    started = time.perf_counter()
    truth = exact_top(db, model, query_vectors, filters, k=depth)
    exact_s = time.perf_counter() - started
    index = vector_index.vector_index(db, model, large=True)
    if index.kind == "exact":
        return {"kind": "exact"}
    # The default, as semantic_ranking searches: depth x REFINE_FACTOR candidates, re-scored, the best depth kept.
    default = {}
    for name, allowed in filters.items():
        found, times = [], []
        for i, vector in enumerate(query_vectors):
            episodes = None if allowed is None else allowed[i]
            started = time.perf_counter()
            hits = vector_index.refine(db, model, vector,
                                       index.search(vector, depth * vector_index.REFINE_FACTOR, episodes), depth)
            times.append(time.perf_counter() - started)
            found.append(hits.ids.tolist())
        default[name] = {"recall_at_10": recall_at(10, found, truth[name]),
                         f"recall_at_{depth}": recall_at(depth, found, truth[name]),
                         "p50_ms": percentile(times, 50), "p95_ms": percentile(times, 95)}
    sweep = {}
    for nprobe in (64, 128, 256, 512, 768, 1024):
        index.nprobe = nprobe
        for refined in (False, True):
            started = time.perf_counter()
            if refined:  # as the default above
                found = [vector_index.refine(db, model, v, index.search(v, depth * vector_index.REFINE_FACTOR), depth)
                         .ids.tolist() for v in query_vectors]
            else:
                found = [index.search(v, 10).ids.tolist() for v in query_vectors]
            elapsed = (time.perf_counter() - started) / len(query_vectors)
            sweep[f"nprobe {nprobe}" + (" + exact re-scoring" if refined else "")] = {
                "recall_at_10": recall_at(10, found, truth["no filter"]), "ms_per_query": elapsed * 1000}
    return {"kind": index.kind, "cells": int(index.index.nlist), "default_nprobe": vector_index.DEFAULT_NPROBE,
            "candidates_rescored": depth * vector_index.REFINE_FACTOR, "target": vector_index.RECALL_TARGET,
            "default": default, "recall": sweep, "exact_truth_s": exact_s}


def summary(report: dict) -> list[str]:
    """One line per goal (see the docstring), each saying whether it was met."""
    def line(what: str, value: float, goal: float, unit: str, at_least: bool = False) -> str:
        met = value >= goal if at_least else value <= goal
        return f"{'met   ' if met else 'MISSED'} {what}: {value:.{3 if at_least else 1}f}{unit} " \
               f"({'>=' if at_least else '<='} {goal:g}{unit})"

    measured, recall = report["measure"], report["recall"]
    lines = [line("keyword p95", measured["keyword"]["p95_ms"], 20, " ms"),
             line("hybrid p95", measured["hybrid"]["p95_ms"], 50, " ms"),
             line("hybrid p95, first time each query is seen", measured["hybrid_first_pass"]["p95_ms"], 50, " ms"),
             line("peak RSS searching", measured["search_peak_rss_mb"], 2048, " MB")]
    for name, result in recall.get("default", {}).items():
        at_depth = next(f"{k[len('recall_at_'):]}: {v:.3f}" for k, v in result.items()
                        if k.startswith("recall_at_") and k != "recall_at_10")
        probes = min(recall["default_nprobe"], recall["cells"])
        lines.append(line(f"recall@10 vs exact, {name} ({recall['kind']}, nprobe {probes} of "
                          f"{recall['cells']} cells, {recall['candidates_rescored']} re-scored; recall@{at_depth}; "
                          f"{result['p50_ms']:.1f} / {result['p95_ms']:.1f} ms p50 / p95)",
                          result["recall_at_10"], recall["target"], "", at_least=True))
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passages", type=int, default=1_000_000)
    parser.add_argument("--noise", type=float, default=0.3, help="norm of the gaussian noise added to vectors")
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--rebuild", action="store_true", help="build the archive even when it exists")
    parser.add_argument("--step", choices=("all", "measure", "recall"), default="all")
    args = parser.parse_args()
    path = OUT / f"speed-{args.passages}.db"
    if args.step == "measure":
        print(json.dumps(measure(path, args.model, show_filter=True)))
        return
    if args.step == "recall":
        print(json.dumps(ann_recall(path, args.model)))
        return
    OUT.mkdir(parents=True, exist_ok=True)
    report = {"passages": args.passages, "noise": args.noise, "cores": os.cpu_count(),
              "load_average_at_start": os.getloadavg()}
    if args.rebuild or not path.exists():
        report["build"] = build(path, args.passages, args.noise, args.model)
    else:
        print(f"using the archive built before: {path} (--rebuild to build it again)")
    report["size_mb"] = {"database": dir_size(path) / 2**20,
                         "side_indexes": dir_size(Path(str(path) + ".index")) / 2**20}
    for step in ("measure", "recall"):
        done = subprocess.run([sys.executable, __file__, "--passages", str(args.passages), "--model", args.model,
                               "--step", step], capture_output=True, text=True)
        if done.returncode:
            sys.exit(done.stderr)
        report[step] = json.loads(done.stdout.strip().splitlines()[-1])
    report["load_average_at_end"] = os.getloadavg()
    print(json.dumps(report, indent=2))
    print("\n".join(summary(report)))


if __name__ == "__main__":
    main()
