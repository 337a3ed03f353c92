"""Search quality on held-out and tuning questions: Recall@10, MRR and Hit@10 for keyword, semantic and hybrid
search, beside plain baselines.

    .venv/bin/python bench/search_quality.py                # DataTalks.Club; builds bench/out/datatalks.db on first use
    .venv/bin/python bench/search_quality.py --corpus all   # and TWIML; builds bench/out/twiml.db on first use (long)
    .venv/bin/python bench/search_quality.py --corpus twiml
    .venv/bin/python bench/search_quality.py --modes-only   # the three modes and the baselines, no variants
    .venv/bin/python bench/search_quality.py --verbose      # and the first hits of every query
    .venv/bin/python bench/search_quality.py --json bench/out/search_quality.json

Questions and relevance judgements (made by grepping and reading the transcripts, never by running search):
* bench/queries_datatalks.json: 37 questions over DataTalks.Club, split by a hash of their text (metrics.query_set)
  into 19 "tuning" and 18 "heldout" ones (field `set`);
* bench/queries_heldout_datatalks.json: 24 more DataTalks.Club questions, all held out;
* bench/queries_heldout_twiml.json: 25 questions over the TWIML AI podcast (Whisper transcripts), all held out;
  they need the TWIML archive (bench/twiml_archive.py);
* bench/queries_tuning_datatalks.json, bench/queries_tuning_twiml.json: 25 more questions each, written after the
  held-out ones and judged the same way, all "tuning".
Defaults may be chosen on the tuning questions only (those shipped before the split saw all 37, so only the two
held-out files are wholly unseen). Every figure is reported per set, held-out first: DataTalks
held-out (18 + 24), TWIML held-out, both held-out sets pooled (when both archives ran), then DataTalks tuning.

Measures (bench/metrics.py):
* episode level: a result counts for the episode it comes from. Recall@10 = share of a query's relevant episodes
  among the episodes of its first 10 results; MRR = 1 / rank of the first result from a relevant episode.
* minute level (where minutes are judged): a result counts when it comes from a judged episode and its time span,
  widened by 30 s on each side, overlaps a judged minute. Recall@10 = share of judged minutes covered by the
  first 10 results; MRR = 1 / rank of the first result that covers one.
* Hit@10 (moments, "the right passage ±90 s"): share of queries where any of the first 10 results comes from a
  judged episode and its span, widened by 90 s on each side, overlaps a judged minute.

Plain baselines (rows named "baseline ..."), made here from the archive's rows with nothing from archive/search.py,
so they stay fixed while search changes; queries go through archive/fts.py only to be made safe for FTS5 (stopwords
dropped, words ORed):
* "MiniLM title+desc [ep]": the embedder (all-MiniLM-L6-v2 by default) over each episode's title + description,
  cosine ranking of episodes; episode level only (no minute figures);
* "BM25 title+desc [ep]": FTS5 bm25 (Porter stemming, in a private in-memory table) over title + description;
  episode level;
* "BM25 passages", "MiniLM passages": FTS5 bm25 over passage text (in memory too) and cosine over the passages'
  stored embeddings, each alone;
* "RRF BM25+MiniLM passages": reciprocal rank fusion (k=60) of those two passage lists (top 100 of each), scored at
  episode and minute level like the modes.
TWIML episodes have no description, so their title+desc baselines see titles only.

Besides the three modes as shipped, the bench runs the variants the defaults were chosen from: reciprocal rank
fusion (k=60) against a weighted sum of min-max normalised scores (semantic share 0.5), with and without episode
evidence (and at other weights of it), and keyword queries that join words with AND (topped up with OR when too
few) against plain OR; semantic scores with and without the episode's notes as context (archive/search.py
`context_weight`), an episode counted by its first three hits instead of its first, takeaways weighing as passages; then the three modes again on the other kind of index, forced: on a small archive the side
indexes that large archives use (Tantivy, faiss IVF), on a large one (TWIML) FTS5 and the exact vector product.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import datatalks_archive  # noqa: E402
import twiml_archive  # noqa: E402
from archive import index_refresh  # noqa: E402
from archive.embeddings import embed_query  # noqa: E402
from archive.fts import fts5_match, parse_query  # noqa: E402
from archive.query_embedding import get_embedder  # noqa: E402
from archive.search import DEFAULT_TUNING, search  # noqa: E402
from metrics import K, METRICS, SETS, by_set, mean_scores, rrf, score_query  # noqa: E402

QUERIES = ROOT / "bench" / "queries_datatalks.json"
HELDOUT_DATATALKS = ROOT / "bench" / "queries_heldout_datatalks.json"
HELDOUT_TWIML = ROOT / "bench" / "queries_heldout_twiml.json"
TUNING_DATATALKS = ROOT / "bench" / "queries_tuning_datatalks.json"
TUNING_TWIML = ROOT / "bench" / "queries_tuning_twiml.json"
BASELINE_DEPTH = 100  # candidates from each passage list fused by the RRF baseline

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
    "hybrid, no notes context": ("hybrid", replace(DEFAULT_TUNING, context_weight=0.0)),
    "hybrid, notes context 0.3": ("hybrid", replace(DEFAULT_TUNING, context_weight=0.3)),
    "semantic, no notes context": ("semantic", replace(DEFAULT_TUNING, context_weight=0.0)),
    "hybrid, three hits per episode": ("hybrid", replace(DEFAULT_TUNING, episode_hits=3)),
    "hybrid, takeaways weigh 1": ("hybrid", replace(DEFAULT_TUNING, kind_weights=(("passage", 1.0), ("takeaway", 1.0),
                                                                                 ("episode", 0.5)))),
    "hybrid as before issue 10": ("hybrid", replace(DEFAULT_TUNING, context_weight=0.0, episode_hits=1,
                                                    kind_weights=(("passage", 1.0), ("takeaway", 0.5),
                                                                  ("episode", 0.5)))),
}
MODES = ("keyword", "semantic", "hybrid")
SET_NAMES = {"heldout": "held-out", "tuning": "tuning"}


@dataclass
class Corpus:
    name: str
    archive: Path
    build: Callable
    judged_guids: Callable[[], list[str]]
    files: tuple[Path, ...]


CORPORA = {
    "datatalks": Corpus("DataTalks.Club", datatalks_archive.ARCHIVE, datatalks_archive.build,
                        datatalks_archive.judged_guids, (QUERIES, HELDOUT_DATATALKS, TUNING_DATATALKS)),
    "twiml": Corpus("TWIML", twiml_archive.ARCHIVE, twiml_archive.build, twiml_archive.judged_guids,
                    (HELDOUT_TWIML, TUNING_TWIML)),
}


def load_queries(files) -> list[dict]:
    """Every judged query of `files`, each with its `set` (required) and the `file` it came from."""
    queries = []
    for path in files:
        for judged in json.loads(Path(path).read_text())["queries"]:
            if judged.get("set") not in SETS:
                raise SystemExit(f"{Path(path).name}: {judged['query']!r} has no set (one of {', '.join(SETS)})")
            queries.append({**judged, "file": Path(path).name})
    return queries


# -- baselines ---------------------------------------------------------------------------------------------

class Moment(NamedTuple):
    episode_guid: str
    start: float | None  # None: an episode-level result
    end: float | None


class Baselines:
    """Plain rankings of episodes and passages, built once per archive from its rows (see the module notes)."""

    def __init__(self, db, embedder):
        self.db, self.embedder = db, embedder
        self.model = "MiniLM" if "minilm" in embedder.name.lower() else embedder.name
        episodes = db.execute("SELECT id, guid, coalesce(title, ''), coalesce(description, '') FROM episodes "
                              "ORDER BY id").fetchall()
        self.episode_guids = [row[1] for row in episodes]
        self.episode_index = {row[0]: i for i, row in enumerate(episodes)}
        self.episode_vectors = embedder.embed([f"{title}. {description}".strip(" .") or guid
                                               for _, guid, title, description in episodes])
        # BM25 tables live in a private in-memory database: nothing is written to (or locked in) the archive.
        self.text = sqlite3.connect(":memory:")
        self.text.execute("CREATE VIRTUAL TABLE bench_episode_text USING fts5(title, description, tokenize='porter')")
        self.text.executemany("INSERT INTO bench_episode_text (rowid, title, description) VALUES (?, ?, ?)",
                              [(row[0], row[2], row[3]) for row in episodes])
        passages = db.execute("SELECT p.id, e.guid, p.start, p.end, p.text FROM passages p "
                              "JOIN episodes e ON e.id = p.episode_id ORDER BY p.id").fetchall()
        self.passages = {row[0]: Moment(row[1], float(row[2] or 0), float(row[3] or row[2] or 0)) for row in passages}
        self.text.execute("CREATE VIRTUAL TABLE bench_passage_text USING fts5(text, tokenize='porter')")
        self.text.executemany("INSERT INTO bench_passage_text (rowid, text) VALUES (?, ?)",
                              [(row[0], row[4] or "") for row in passages])
        self.text.commit()
        rows = db.execute("SELECT p.id, v.vector FROM passages p JOIN embeddings v "
                          "ON v.model = ? AND v.content_hash = p.content_hash ORDER BY p.id",
                          [embedder.name]).fetchall()
        self.passage_ids = np.array([row[0] for row in rows], dtype=np.int64)
        self.passage_vectors = (np.frombuffer(b"".join(row[1] for row in rows), dtype=np.float32)
                                .reshape(len(rows), -1) if rows else np.zeros((0, 1), np.float32))

    def runners(self) -> dict[str, Callable[[str], tuple[list, bool]]]:
        return {
            f"baseline {self.model} title+desc [ep]": lambda text: (self.episode_semantic(text), False),
            "baseline BM25 title+desc [ep]": lambda text: (self.episode_bm25(text), False),
            "baseline BM25 passages": lambda text: ([self.passages[i] for i in self.passage_bm25(text, K)], True),
            f"baseline {self.model} passages": lambda text: ([self.passages[i] for i in self.passage_semantic(text, K)],
                                                    True),
            f"baseline RRF BM25+{self.model} passages": lambda text: (self.passage_rrf(text), True),
        }

    def _vector(self, text: str) -> np.ndarray:
        return embed_query(self.embedder, text)

    def episode_semantic(self, text: str) -> list[Moment]:
        scores = self.episode_vectors @ self._vector(text)
        return [Moment(self.episode_guids[i], None, None) for i in np.argsort(-scores, kind="stable")[:K]]

    def _bm25(self, table: str, text: str, depth: int) -> list[int]:
        match = fts5_match(parse_query(text), "OR")
        if not match:
            return []
        rows = self.text.execute(f"SELECT rowid FROM {table} WHERE {table} MATCH ? ORDER BY bm25({table}), rowid "
                                 "LIMIT ?", [match, depth]).fetchall()
        return [int(row[0]) for row in rows]

    def episode_bm25(self, text: str) -> list[Moment]:
        return [Moment(self.episode_guids[self.episode_index[i]], None, None)
                for i in self._bm25("bench_episode_text", text, K)]

    def passage_bm25(self, text: str, depth: int) -> list[int]:
        return self._bm25("bench_passage_text", text, depth)

    def passage_semantic(self, text: str, depth: int) -> list[int]:
        if not len(self.passage_ids):
            return []
        scores = self.passage_vectors @ self._vector(text)
        top = np.argsort(-scores, kind="stable")[:depth]
        return [int(i) for i in self.passage_ids[top]]

    def passage_rrf(self, text: str) -> list[Moment]:
        fused = rrf([self.passage_bm25(text, BASELINE_DEPTH), self.passage_semantic(text, BASELINE_DEPTH)])
        return [self.passages[i] for i in fused[:K]]


# -- runs --------------------------------------------------------------------------------------------------

def mode_runners(db, embedder, variants) -> dict[str, Callable[[str], tuple[list, bool]]]:
    def runner(mode, tuning):
        return lambda text: (search(db, text, mode=mode, limit=K, embedder=embedder, tuning=tuning), True)

    return {name: runner(mode, tuning) for name, (mode, tuning) in variants.items()}


def evaluate(queries, runners: dict, verbose: bool = False, shown=()) -> dict[str, list[dict]]:
    """variant -> one score dict per query (the metrics.score_query measures and `ms`, its time)."""
    table = {}
    for name, run in runners.items():
        per_query = []
        for judged in queries:
            started = time.perf_counter()
            results, minute_level = run(judged["query"])
            elapsed = (time.perf_counter() - started) * 1000
            per_query.append({**score_query(results, judged, minute_level=minute_level), "ms": elapsed})
            if verbose and name in shown:
                hits = " ".join("*" if r.episode_guid in judged["episodes"] else "." for r in results[:K])
                print(f"  {name[:30]:30} {judged['set'][:4]} {hits:20} {judged['query'][:70]}")
        table[name] = per_query
    return table


@contextmanager
def forced_indexes(db, large: bool):
    """The archive searched with the other kind of index than its size picks (`large`: the size it has). The
    cached indexes are dropped on the way in and out: a vector index built for one size would otherwise be
    served for the other."""
    saved = index_refresh.LARGE_ARCHIVE_PASSAGES
    index_refresh.LARGE_ARCHIVE_PASSAGES = 10**15 if large else 0
    index_refresh.forget(db)
    try:
        yield
    finally:
        index_refresh.LARGE_ARCHIVE_PASSAGES = saved
        index_refresh.forget(db)


def run_corpus(key: str, embedder, args) -> tuple[list[dict], dict[str, list[dict]]]:
    corpus = CORPORA[key]
    queries = load_queries(corpus.files)
    db = corpus.build(corpus.archive, embedder, first=corpus.judged_guids())
    episodes, passages = (db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("transcripts", "passages"))
    counts = ", ".join(f"{sum(q['set'] == s for q in queries)} {SET_NAMES[s]}" for s in SETS)
    print(f"\n{corpus.name}: {corpus.archive.relative_to(ROOT)}: {episodes} transcribed episodes, {passages} passages, "
          f"embedder {embedder.name}; {len(queries)} queries ({counts}), "
          f"{sum(1 for q in queries if q.get('minutes'))} with judged minutes")
    large = index_refresh.is_large(db)
    variants = {name: VARIANTS[name] for name in MODES} if args.modes_only else VARIANTS
    started = time.perf_counter()
    baselines = Baselines(db, embedder)
    print(f"  baselines ready in {time.perf_counter() - started:.1f} s "
          f"({len(baselines.passage_ids)} of {passages} passages embedded)")
    runners = {**mode_runners(db, embedder, {name: variants[name] for name in MODES}), **baselines.runners(),
               **mode_runners(db, embedder, {n: v for n, v in variants.items() if n not in MODES})}
    shown = (*MODES, f"baseline RRF BM25+{baselines.model} passages")
    table = evaluate(queries, runners, args.verbose, shown)
    if not args.modes_only:
        label = "[FTS5 + exact]" if large else "[side indexes]"
        with forced_indexes(db, large):
            other = evaluate(queries, mode_runners(db, embedder, {f"{name} {label}": VARIANTS[name] for name in MODES}))
        table.update(other)
    return queries, table


def summarise(queries: list[dict], table: dict[str, list[dict]]) -> dict[str, dict[str, dict]]:
    """set -> variant -> mean measures and ms per query."""
    out: dict[str, dict[str, dict]] = {}
    for name, per_query in table.items():
        for set_name, rows in by_set(queries, per_query).items():
            row = mean_scores(rows)
            row["ms_per_query"] = float(np.mean([r["ms"] for r in rows]))
            out.setdefault(set_name, {})[name] = row
    return out


def print_table(title: str, rows: dict[str, dict]) -> None:
    def cell(value, width):
        return f"{value:{width}.3f}" if value is not None else f"{'-':>{width}}"

    first = next(iter(rows.values()))
    print(f"\n== {title}: {first['queries']} queries")
    print(f"{'variant':38} {'R@10 ep':>8} {'MRR ep':>8} {'R@10 min':>9} {'MRR min':>8} {'Hit@10±90s':>11} "
          f"{'ms/query':>9}")
    for name, row in rows.items():
        print(f"{name[:38]:38} {cell(row['recall'], 8)} {cell(row['mrr'], 8)} {cell(row['minute_recall'], 9)} "
              f"{cell(row['minute_mrr'], 8)} {cell(row['hit'], 11)} {row['ms_per_query']:9.1f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--verbose", action="store_true", help="print the first hits of every query")
    parser.add_argument("--corpus", choices=("datatalks", "twiml", "all"), default="datatalks",
                        help="which archive's questions to run (default: datatalks; twiml builds bench/out/twiml.db "
                             "on first use, which takes long)")
    parser.add_argument("--modes-only", action="store_true",
                        help="only the three modes as shipped and the baselines: no variants, no forced indexes")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every table to PATH as JSON")
    args = parser.parse_args(argv)
    keys = ("datatalks", "twiml") if args.corpus == "all" else (args.corpus,)
    embedder = get_embedder()
    results = {key: run_corpus(key, embedder, args) for key in keys}
    summaries = {key: summarise(*results[key]) for key in keys}
    tables: dict[str, dict[str, dict]] = {}
    for key in keys:  # held-out first
        if "heldout" in summaries[key]:
            tables[f"{CORPORA[key].name} held-out"] = summaries[key]["heldout"]
    if len(keys) > 1:
        pooled_queries = [q for key in keys for q in results[key][0]]
        names = [n for n in results[keys[0]][1] if all(n in results[k][1] for k in keys)]
        pooled = {name: [row for key in keys for row in results[key][1][name]] for name in names}
        if "heldout" in (pooled_summary := summarise(pooled_queries, pooled)):
            tables["all held-out (both archives)"] = pooled_summary["heldout"]
    for key in keys:
        if "tuning" in summaries[key]:
            tables[f"{CORPORA[key].name} tuning"] = summaries[key]["tuning"]
    for title, rows in tables.items():
        print_table(title, rows)
    if "twiml" not in keys:
        print("\n(TWIML held-out questions not run: --corpus all, which builds bench/out/twiml.db on first use)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"measures": list(METRICS), "tables": tables}, indent=1))


if __name__ == "__main__":
    main()
