"""Search quality on the DataTalks.Club archive: Recall@10 and MRR for keyword, semantic and hybrid search.

    .venv/bin/python bench/search_quality.py            # builds bench/out/datatalks.db on first use (long)
    .venv/bin/python bench/search_quality.py --verbose  # and the first hits of every query

Relevance judgements: bench/queries_datatalks.json (made by reading the transcripts, never by running search).
* episode level: a result counts for the episode it comes from. Recall@10 = share of a query's relevant episodes
  among the episodes of its first 10 results; MRR = 1 / rank of the first result from a relevant episode.
* minute level (where minutes are judged): a result counts when it comes from a judged episode and its time span,
  widened by 30 s on each side, overlaps a judged minute. Recall@10 = share of judged minutes covered by the
  first 10 results; MRR = 1 / rank of the first result that covers one.

Besides the three modes as shipped, the bench runs the variants the defaults were chosen from: reciprocal rank
fusion (k=60) against a weighted sum of min-max normalised scores (semantic share 0.5), with and without episode
evidence (and at other weights of it), and keyword queries that join words with AND (topped up with OR when too
few) against plain OR; then the three modes again on the side
indexes that large archives use (Tantivy, faiss IVF), forced on this archive.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from archive import indexes  # noqa: E402
from archive.search import DEFAULT_TUNING, get_embedder, search  # noqa: E402
from datatalks_archive import ARCHIVE, build, judged_guids  # noqa: E402

QUERIES = ROOT / "bench" / "queries_datatalks.json"
TOLERANCE = 30.0
K = 10

VARIANTS = {
    "keyword": ("keyword", DEFAULT_TUNING),
    "semantic": ("semantic", DEFAULT_TUNING),
    "hybrid": ("hybrid", DEFAULT_TUNING),
    "keyword OR": ("keyword", replace(DEFAULT_TUNING, keyword_operator="OR")),
    "hybrid rrf + OR": ("hybrid", replace(DEFAULT_TUNING, keyword_operator="OR")),
    "hybrid, no episode evidence": ("hybrid", replace(DEFAULT_TUNING, episode_weight=0.0)),
    "hybrid, episode weight 0.5": ("hybrid", replace(DEFAULT_TUNING, episode_weight=0.5)),
    "hybrid, episode weight 1": ("hybrid", replace(DEFAULT_TUNING, episode_weight=1.0)),
    "keyword, no episode evidence": ("keyword", replace(DEFAULT_TUNING, episode_weight=0.0)),
    "hybrid weighted": ("hybrid", replace(DEFAULT_TUNING, fusion="weighted")),
    "hybrid weighted + OR": ("hybrid", replace(DEFAULT_TUNING, fusion="weighted", keyword_operator="OR")),
}


def covers(result, minute: int) -> bool:
    low, high = minute * 60 - TOLERANCE, (minute + 1) * 60 + TOLERANCE
    return result.start < high and max(result.end, result.start) > low


def score_query(results, judged: dict) -> dict:
    relevant = set(judged["episodes"])
    minutes = {(guid, m) for guid, ms in judged.get("minutes", {}).items() for m in ms}
    top = results[:K]
    found = {r.episode_guid for r in top} & relevant
    first = next((rank for rank, r in enumerate(top, 1) if r.episode_guid in relevant), None)
    scores = {"recall": len(found) / len(relevant), "mrr": 1 / first if first else 0.0}
    if minutes:
        covered = {(g, m) for g, m in minutes for r in top if r.episode_guid == g and covers(r, m)}
        first_minute = next((rank for rank, r in enumerate(top, 1)
                             if any(r.episode_guid == g and covers(r, m) for g, m in minutes)), None)
        scores["minute_recall"] = len(covered) / len(minutes)
        scores["minute_mrr"] = 1 / first_minute if first_minute else 0.0
    return scores


def evaluate(db, queries, embedder, verbose: bool, variants=VARIANTS) -> dict:
    table = {}
    for name, (mode, tuning) in variants.items():
        per_query = []
        started = time.perf_counter()
        for judged in queries:
            results = search(db, judged["query"], mode=mode, limit=K, embedder=embedder, tuning=tuning)
            per_query.append(score_query(results, judged))
            if verbose and name in ("keyword", "semantic", "hybrid"):
                hits = " ".join(f"{'*' if r.episode_guid in judged['episodes'] else '.'}" for r in results)
                print(f"  {name:8} {hits:22} {judged['query'][:70]}")
        elapsed = time.perf_counter() - started
        table[name] = {metric: float(np.mean([q[metric] for q in per_query if metric in q]))
                       for metric in ("recall", "mrr", "minute_recall", "minute_mrr")}
        table[name]["ms_per_query"] = elapsed / len(queries) * 1000
    return table


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    queries = json.loads(QUERIES.read_text())["queries"]
    embedder = get_embedder()
    db = build(ARCHIVE, embedder, first=judged_guids())
    episodes, passages = (db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("transcripts", "passages"))
    print(f"archive: {ARCHIVE.relative_to(ROOT)}: {episodes} transcribed episodes, {passages} passages, "
          f"embedder {embedder.name}; {len(queries)} queries, "
          f"{sum(1 for q in queries if q.get('minutes'))} with judged minutes")
    table = evaluate(db, queries, embedder, args.verbose)
    # The same three modes on the indexes large archives use (Tantivy BM25, faiss IVF-SQ8), forced on this one.
    indexes.LARGE_ARCHIVE_PASSAGES = 0
    side = {f"{name} [side indexes]": VARIANTS[name] for name in ("keyword", "semantic", "hybrid")}
    table.update(evaluate(db, queries, embedder, False, side))
    print(f"\n{'variant':28} {'R@10 ep':>8} {'MRR ep':>8} {'R@10 min':>9} {'MRR min':>8} {'ms/query':>9}")
    for name, row in table.items():
        print(f"{name:28} {row['recall']:8.3f} {row['mrr']:8.3f} {row['minute_recall']:9.3f} "
              f"{row['minute_mrr']:8.3f} {row['ms_per_query']:9.1f}")


if __name__ == "__main__":
    main()
