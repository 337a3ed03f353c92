"""Cheap requests stay cheap: a search filtered by a speaker who is in every episode, and a big show feed.

A synthetic archive (bench/out/web_output.db, made again with --rebuild): one show of --episodes episodes
(default 1,000, the show feed's size); the first --transcribed of them (default 300) have --passages passages
each (default 100) of words drawn from a fixed vocabulary, half of them labelled "Ada Byron", who hosts every
episode, the rest "Sam Guest" or unlabelled. Indexed with the deterministic test embedder (64 dimensions), so
building takes seconds; an archive of 30,000 passages is "large" and searched with the Tantivy and vector side
indexes, as a real one of that size is (--small searches it with FTS5 and the exact matrix product instead).

Measured through the Flask test client (no sockets), each figure the median of --repeat runs after one
warm-up run:
- /api/search for a set of queries, per mode, plain and with speaker=ada-byron (the speaker in every episode);
- /shows/<id>/feed.xml uncached (the cache emptied before each request), cached, and answered 304 to
  If-None-Match.

Run:  .venv/bin/python bench/web_output.py [--rebuild] [--repeat 5] [--small]
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from archive.db import open_db, utcnow  # noqa: E402
from fake_embedder import FakeEmbedder  # noqa: E402

OUT = ROOT / "bench" / "out"
QUERIES = ["feature stores", "data drift monitoring", "hiring engineers", "model evaluation metrics",
           "streaming pipelines", "career advice", "causal inference experiments", "vector databases"]
TOPIC_WORDS = " ".join(QUERIES).split()
SPEAKERS = ("Ada Byron", "Ada Byron", "Sam Guest", None)


def vocabulary(size: int = 3000, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(3, 9))) for _ in range(size)]


def build(path: Path, episodes: int, transcribed: int, passages: int) -> None:
    from archive.fts_tables import ensure_fts
    from archive.vectors import ensure_embeddings
    from ingest.search_index import build_side_indexes

    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    db = open_db(path)
    rng, words = random.Random(42), vocabulary()
    with db.conn:
        show = db["shows"].insert({"feed_url": "https://example.com/bench.xml", "title": "Bench Show",
                                   "description": "A show of many episodes.", "created_at": utcnow(),
                                   "updated_at": utcnow()}).last_pk
        ada = db["people"].insert({"name": "Ada Byron", "name_key": "ada byron", "slug": "ada-byron"}).last_pk
        sam = db["people"].insert({"name": "Sam Guest", "name_key": "sam guest", "slug": "sam-guest"}).last_pk
        for number in range(1, episodes + 1):
            episode = db["episodes"].insert({
                "show_id": show, "guid": f"bench-{number}", "title": f"Episode {number}",
                "published": f"{2000 + number // 365:04d}-{number % 12 + 1:02d}-{number % 28 + 1:02d}T12:00:00+00:00",
                "duration": 3600.0, "description": f"Episode {number} of the bench show.",
                "notes_html": f"<p>Notes of episode {number}: <a href='https://example.com/{number}'>link</a>.</p>",
                "enclosure_url": f"https://cdn.example.com/{number}.mp3", "enclosure_type": "audio/mpeg",
                "created_at": utcnow(), "updated_at": utcnow(),
            }).last_pk
            db["episode_people"].insert({"episode_id": episode, "person_id": ada, "role": "host", "source": "feed"})
            if number % 3 == 0:
                db["episode_people"].insert({"episode_id": episode, "person_id": sam, "role": "guest",
                                             "source": "feed"})
            if number > transcribed:
                continue
            rows = []
            for idx in range(passages):
                text = " ".join(rng.choice(TOPIC_WORDS) if rng.random() < 0.03 else rng.choice(words)
                                for _ in range(90))
                rows.append({"episode_id": episode, "idx": idx, "start": idx * 40.0, "end": idx * 40.0 + 40,
                             "speaker": SPEAKERS[idx % len(SPEAKERS)], "text": text,
                             "content_hash": hashlib.sha256(text.encode()).hexdigest()})
            db["passages"].insert_all(rows)
    embedder = FakeEmbedder()
    ensure_embeddings(db, list(db.query("SELECT id, text, content_hash FROM passages ORDER BY id")), embedder)
    ensure_fts(db)
    build_side_indexes(db, embedder.name)
    db.conn.close()


def median_ms(action, repeat: int) -> float:
    action()  # warm-up: side indexes loaded, caches filled
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def search_figures(client, repeat: int) -> None:
    title = f"search (median ms per set of {len(QUERIES)} queries)"
    print(f"{title:<44}{'plain':>10}{'speaker':>10}{'ratio':>8}")
    for mode in ("keyword", "semantic", "hybrid"):
        def run(extra: str) -> None:
            for query in QUERIES:
                response = client.get(f"/api/search?q={query}&mode={mode}{extra}")
                assert response.status_code == 200, response.get_data(as_text=True)

        plain = median_ms(lambda: run(""), repeat)
        filtered = median_ms(lambda: run("&speaker=ada-byron"), repeat)
        print(f"  {mode:<42}{plain:>10.1f}{filtered:>10.1f}{filtered / plain:>8.2f}")


def feed_figures(app, client, show_id: int, repeat: int) -> None:
    from archive.web import show_feeds

    url = f"/shows/{show_id}/feed.xml"

    def uncached() -> None:
        show_feeds.forget_feeds(app)
        assert client.get(url).status_code == 200

    first = client.get(url)
    etag, size = first.headers.get("ETag"), len(first.data)
    episodes = first.data.count(b"<item>")
    print(f"show feed of {episodes} episodes ({size / 1e6:.1f} MB)      median ms")
    print(f"  uncached (rendered)                     {median_ms(uncached, repeat):>10.1f}")
    print(f"  cached                                  {median_ms(lambda: client.get(url), repeat):>10.1f}")
    not_modified = median_ms(lambda: client.get(url, headers={"If-None-Match": etag}), repeat)
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    print(f"  304 (If-None-Match)                     {not_modified:>10.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, default=OUT / "web_output.db")
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--transcribed", type=int, default=300)
    parser.add_argument("--passages", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--small", action="store_true", help="search with FTS5 and the exact matrix product")
    args = parser.parse_args()
    if args.rebuild or not args.db.exists():
        start = time.perf_counter()
        build(args.db, args.episodes, args.transcribed, args.passages)
        print(f"built {args.db} in {time.perf_counter() - start:.0f} s")
    if args.small:
        from archive import index_refresh

        index_refresh.LARGE_ARCHIVE_PASSAGES = 10**9
    from archive.web import create_app

    app = create_app({"DATABASE": str(args.db), "EMBEDDER": FakeEmbedder(), "TESTING": True})
    client = app.test_client()
    db = open_db(args.db)
    passages = db.execute("SELECT count(*) FROM passages").fetchone()[0]
    show_id = db.execute("SELECT id FROM shows").fetchone()[0]
    db.conn.close()
    print(f"archive: {args.episodes} episodes, {passages} passages; Ada Byron hosts every episode"
          f" ({'FTS5 + exact vectors' if args.small else 'Tantivy + vector side indexes'})")
    search_figures(client, args.repeat)
    feed_figures(app, client, show_id, args.repeat)


if __name__ == "__main__":
    main()
