"""The DataTalks.Club archive the search benchmarks run on, built once and cached under bench/out/.

The feed (/work/shared/fixtures/corpus/datatalksclub_podcast/feed.xml) goes through the real pipeline for shows,
episodes and transcripts (`ingest_sources` with the index stage off); then every episode gets its passages (the
pipeline's passages module, default 45 s), every passage its embedding with the default embedder, so does every
episode's notes (with its title: archive/note_vectors.py), and FTS5 its tables. Chapters, takeaways and guests are
left out: they cost much more than passages on a shared 2-core machine and search reads only passages and episode
notes from them. Rerunning resumes where a killed run stopped.

    .venv/bin/python bench/datatalks_archive.py      # build (or finish building) bench/out/datatalks.db
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from archive.db import open_db  # noqa: E402
from archive.embeddings import default_embedder  # noqa: E402
from archive.transcript_store import load_segments  # noqa: E402

SHARED = ROOT.parent / "shared" / "fixtures"
FEED = SHARED / "corpus" / "datatalksclub_podcast" / "feed.xml"
OUT = ROOT / "bench" / "out"
ARCHIVE = OUT / "datatalks.db"


def build(path: Path = ARCHIVE, embedder=None, log=print, first: list[str] = (), feed: Path = FEED):
    """Build or finish the archive of `feed` (a local feed file); passages of the episodes with guids in `first` are
    embedded first. bench/twiml_archive.py builds the TWIML archive with the same steps."""
    from archive.fts_tables import ensure_fts
    from archive.passages import make_passages, save_passages
    from archive.vectors import ensure_embeddings
    from ingest.search_index import ensure_note_embeddings
    from ingest.pipeline import IngestOptions, ingest_sources

    path.parent.mkdir(parents=True, exist_ok=True)
    db = open_db(path)
    embedder = embedder or default_embedder()
    if db.execute("SELECT count(*) FROM transcripts").fetchone()[0] == 0:
        started = time.perf_counter()
        report = ingest_sources(db, [str(feed)], IngestOptions(index=False))
        log(f"ingested feed: {report.episodes_new} episodes, {report.transcripts_made} transcripts, "
            f"{len(report.failures)} failures in {time.perf_counter() - started:.0f} s")
    episodes = [r[0] for r in db.execute(
        "SELECT t.episode_id FROM transcripts t WHERE NOT EXISTS "
        "(SELECT 1 FROM passages p WHERE p.episode_id = t.episode_id)").fetchall()]
    for episode_id in episodes:
        save_passages(db, episode_id, make_passages(load_segments(db, episode_id)))
    rows = list(db.query("SELECT p.id, p.text, p.content_hash, e.guid FROM passages p "
                         "JOIN episodes e ON e.id = p.episode_id ORDER BY p.id"))
    wanted = set(first)
    rows.sort(key=lambda row: row["guid"] not in wanted)  # stable: judged episodes first, then feed order
    started, chunk = time.perf_counter(), 512
    for start in range(0, len(rows), chunk):
        ensure_embeddings(db, rows[start:start + chunk], embedder)
        log(f"embeddings: {min(start + chunk, len(rows))}/{len(rows)} passages, "
            f"{time.perf_counter() - started:.0f} s")
    ensure_note_embeddings(db, embedder)  # episode notes (no takeaways here): a few hundred, skipped once made
    ensure_fts(db)
    return db


def judged_guids(files=("queries_datatalks.json", "queries_heldout_datatalks.json")) -> list[str]:
    """The guids of every judged episode in the query files (bench/<name>) that exist."""
    import json

    queries = [q for name in files if (ROOT / "bench" / name).exists()
               for q in json.loads((ROOT / "bench" / name).read_text())["queries"]]
    return sorted({guid for q in queries for guid in q["episodes"]})


if __name__ == "__main__":
    build(first=judged_guids())
