"""What publishing costs: a producer's edit, `publish`, the searches right after, and the side-index refresh an
edit brings on a large archive.

Archives: the DataTalks.Club transcripts (/work/shared/fixtures/corpus/datatalksclub_podcast, real text cut into
the pipeline's passages), `--small` episodes of them (FTS5 and the exact vector search), and all 198 episodes
`--copies` times over for a large one (past archive.index_refresh.LARGE_ARCHIVE_PASSAGES: Tantivy and faiss IVF).
Vectors come from the deterministic FakeEmbedder (384 dimensions, as all-MiniLM-L6-v2): search speed depends on
their number and size, not their meaning. The draft is one more DataTalks episode with 2 KB of Markdown notes,
five takeaways and its transcript's passages; `--real-embedder` also times embedding those passages with the
default model (loaded and warmed up first) as a `publish(embedder=...)` of passages without vectors would.

    .venv/bin/python bench/studio_publish.py               # small (20 episodes) and large (2 x 198)
    .venv/bin/python bench/studio_publish.py --copies 0    # small only
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from archive import index_refresh, keyword_index, studio, vector_index  # noqa: E402
from archive.db import open_db  # noqa: E402
from archive.records import TranscriptSource  # noqa: E402
from archive.search import search  # noqa: E402
from fake_embedder import FakeEmbedder  # noqa: E402

DTC = ROOT.parent / "shared" / "fixtures" / "corpus" / "datatalksclub_podcast" / "transcripts"
OUT = ROOT / "bench" / "out"
QUERIES = ["feature store", "data engineering interview", "machine learning in production", "career advice",
           "a/b testing sample size", "kubernetes", "recommender systems", "mlops tools"]


class Producer:
    id, name = 1, "bench"


def transcripts() -> list[tuple[str, list]]:
    from ingest.transcript_files import parse_transcript

    return [(path.stem, parse_transcript(path.read_bytes(), "application/json"))
            for path in sorted(DTC.glob("*.json"))]


def build(path: Path, episodes: list[tuple[str, list]], copies: int, embedder) -> tuple[object, dict]:
    from archive.fts_tables import ensure_fts
    from archive.passages import make_passages, save_passages
    from archive.transcript_store import save_transcript
    from archive.vectors import ensure_embeddings

    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    shutil.rmtree(str(path) + ".index", ignore_errors=True)  # side indexes of an earlier run: versions restart
    index_refresh.forget()
    db = open_db(path)
    show = db["shows"].insert({"feed_url": "https://example.com/dtc.xml", "title": "DataTalks.Club"}).last_pk
    started = time.perf_counter()
    for copy in range(copies):
        for slug, segments in episodes:
            episode = db["episodes"].insert({"show_id": show, "guid": f"{slug}-{copy}",
                                             "title": slug.replace("-", " "), "published": "2022-01-01T00:00:00+00:00",
                                             "notes_text": f"Notes of {slug}"}).last_pk
            save_transcript(db, episode, segments, TranscriptSource(source="feed", format="json",
                                                                    content_hash=f"{slug}-{copy}"))
            save_passages(db, episode, make_passages(segments))
    rows = list(db.query("SELECT id, text, content_hash || '' AS content_hash FROM passages"))
    for row in rows:  # copies share their text: give each passage a vector of its own, as distinct text would have
        row["content_hash"] = f"{row['content_hash']}-{row['id']}"
    db.conn.executemany("UPDATE passages SET content_hash = ? WHERE id = ?",
                        [(r["content_hash"], r["id"]) for r in rows])
    db.conn.commit()
    ensure_embeddings(db, rows, embedder)
    ensure_fts(db)
    timings = {"passages": len(rows), "build_s": round(time.perf_counter() - started, 1),
               "large": index_refresh.is_large(db)}
    if timings["large"]:
        started = time.perf_counter()
        keyword_index.keyword_index(db)
        timings["keyword_index_s"] = round(time.perf_counter() - started, 2)
        started = time.perf_counter()
        vector_index.vector_index(db, embedder.name)
        timings["vector_index_s"] = round(time.perf_counter() - started, 2)
    return db, timings


def median_ms(db, mode: str, embedder, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        for query in QUERIES:
            started = time.perf_counter()
            search(db, query, mode=mode, embedder=embedder, limit=10)
            times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2)


NOTES = "\n\n".join(
    f"## Part {i}\n\nIn this part we talk about **feature stores**, [data contracts](https://example.com/{i}) and "
    f"why the team moved its batch jobs to streaming. Quote: *measure before you buy hardware.*" for i in range(8))


def measure(db, embedder, draft_segments, real_embedder=None) -> dict:
    from archive.passages import make_passages, save_passages
    from archive.transcript_store import save_transcript

    found: dict = {}
    for mode in ("keyword", "semantic"):
        search(db, "warm up", mode=mode, embedder=embedder)
        found[f"{mode}_ms_all_published"] = median_ms(db, mode, embedder)
    show = db.execute("SELECT id FROM shows").fetchone()[0]
    started = time.perf_counter()
    draft = studio.create_episode(db, show, {"title": "A producer's episode", "notes_markdown": NOTES,
                                             "takeaways": [{"title": f"Point {i}", "text": "Feature stores pay off "
                                                            "once three teams share features."} for i in range(5)]},
                                  Producer())
    found["create_episode_ms"] = round((time.perf_counter() - started) * 1000, 2)
    save_transcript(db, draft, draft_segments, TranscriptSource(source="feed", format="json", content_hash="draft"))
    save_passages(db, draft, make_passages(draft_segments))
    for mode in ("keyword", "semantic"):
        found[f"{mode}_ms_one_draft"] = median_ms(db, mode, embedder)
    started = time.perf_counter()
    studio.update_episode(db, draft, {"notes_markdown": NOTES + "\n\nOne more line."}, Producer())
    found["update_episode_ms"] = round((time.perf_counter() - started) * 1000, 2)
    if real_embedder is not None:
        passages = list(db.query("SELECT id, text, content_hash FROM passages WHERE episode_id = ?", [draft]))
        started = time.perf_counter()
        real_embedder.embed([p["text"] for p in passages])
        found["real_embedder_passages"] = len(passages)
        found["real_embedder_s"] = round(time.perf_counter() - started, 2)
    result = studio.publish(db, draft, Producer(), embedder=embedder)
    found["publish"] = result
    if index_refresh.is_large(db):
        started = time.perf_counter()
        keyword_index.keyword_index(db)  # what the site's background refresh does after the edit (text version moved)
        found["keyword_index_refresh_s"] = round(time.perf_counter() - started, 2)
        started = time.perf_counter()
        vector_index.vector_index(db, embedder.name)  # after the draft's vectors were added (vectors version moved)
        found["vector_index_refresh_s"] = round(time.perf_counter() - started, 2)
    for mode in ("keyword", "semantic"):
        found[f"{mode}_ms_after_publish"] = median_ms(db, mode, embedder)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=20, help="episodes in the small archive")
    parser.add_argument("--copies", type=int, default=2, help="copies of all 198 episodes in the large archive")
    parser.add_argument("--real-embedder", action="store_true")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    embedder = FakeEmbedder(dims=384)
    episodes = transcripts()
    draft_segments = episodes[-1][1]
    real = None
    if args.real_embedder:
        from archive.embeddings import SentenceTransformerEmbedder, warm_up

        real = SentenceTransformerEmbedder()
        warm_up(real)
    report = {}
    for name, chosen, copies in (("small", episodes[:args.small], 1), ("large", episodes, args.copies)):
        if copies < 1:
            continue
        db, timings = build(OUT / f"studio_{name}.db", chosen, copies, embedder)
        timings.update(measure(db, embedder, draft_segments, real))
        report[name] = timings
        print(name, json.dumps(timings, indent=2), flush=True)
        db.conn.close()
    (OUT / "studio_publish.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
