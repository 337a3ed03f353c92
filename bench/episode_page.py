"""How long the episode page takes for an hour-long transcript (issue 14), and where the time goes.

The archive is a copy (in a temporary folder, the original never changed) of one of the real pipeline's
archives in bench/out: by default bench/out/twiml.db (TWIML episodes, transcripts from the corpus' feed files),
the transcribed episode whose transcript is nearest an hour long; --db bench/out/datacast.db for Datacast
Episode 70 (Whisper tiny.en, 11 min 42 s of real audio). The feed transcripts have no word timings; with
--words each line gets Whisper-style word timings (its words spread over the line in proportion to their
length, the way archive/transcript_reading.py interpolates them; written into the copy's `segments.words`), so
the page writes a timed span per word, as it does for a transcript made with word timestamps.

The site is the app (create_app) with Flask's test client, in this process: the figures are the page's own work
(queries, the readable transcript, the template), not HTTP. Printed: the first request (nothing cached), then
the median and 95th percentile of --repeat requests of the plain page and of a moment (?t=...), and the parts
of a request: reading the lines and their key (all a request does when its transcript's rendering is cached,
archive/web/episode_view.py `transcript_view`), loading the segments, making the paragraphs, writing their HTML.
--no-cache gives the app a cache that keeps nothing: every request renders the transcript, as before the cache.
The script also runs on the code from before the cache (it then times the pages only), e.g. in a copy of commit
aaaf93f:  git archive aaaf93f | tar -x -C /tmp/before && cp bench/episode_page.py /tmp/before/bench/ &&
          (cd /tmp/before && /work/main/.venv/bin/python bench/episode_page.py --words)

Run:  .venv/bin/python bench/episode_page.py [--db bench/out/twiml.db] [--episode ID] [--words] [--repeat 30]
      [--no-cache]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from archive.db import connect, open_db  # noqa: E402

DEFAULT_DB = ROOT / "bench" / "out" / "twiml.db"


def copy_archive(source: Path, folder: Path) -> Path:
    """A copy of the archive (its WAL folded in first, read-only)."""
    target = folder / "archive.db"
    conn = connect(source, readonly=True)
    backup = connect(target)
    conn.conn.backup(backup.conn)
    conn.conn.close()
    backup.conn.close()
    return target


def hour_long_episode(db) -> int:
    row = db.execute(
        "SELECT t.episode_id FROM transcripts t JOIN segments s ON s.transcript_id = t.id GROUP BY t.id "
        "ORDER BY abs(max(s.end) - 3600) LIMIT 1").fetchone()
    return row[0]


def add_word_timings(db, episode_id: int) -> int:
    """Word timings for every line of the episode's transcript, spread over the line by the words' lengths."""
    rows = db.execute(
        "SELECT s.transcript_id, s.idx, s.start, s.end, s.text FROM segments s JOIN transcripts t "
        "ON t.id = s.transcript_id WHERE t.episode_id = ?", [episode_id]).fetchall()
    count = 0
    with db.conn:
        for transcript_id, idx, start, end, text in rows:
            texts = text.split()
            if not texts:
                continue
            total = sum(len(word) for word in texts) + len(texts) - 1
            words, offset = [], 0
            for word in texts:
                words.append({"word": " " + word, "start": round(start + (end - start) * offset / total, 2),
                              "end": round(start + (end - start) * (offset + len(word)) / total, 2),
                              "probability": 0.9})
                offset += len(word) + 1
            count += len(words)
            db.execute("UPDATE segments SET words = ? WHERE transcript_id = ? AND idx = ?",
                       [json.dumps(words), transcript_id, idx])
    return count


def timed(call, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def summary(times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"median {statistics.median(ordered):6.1f} ms  p95 {p95:6.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, default=DEFAULT_DB)
    parser.add_argument("--episode", type=int, help="default: the transcript nearest an hour long")
    parser.add_argument("--words", action="store_true", help="give every line word timings first")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--no-cache", action="store_true", help="render the transcript for every request")
    args = parser.parse_args()

    from archive.transcript_reading import reading_paragraphs
    from archive.transcript_store import load_segments
    from archive.web import create_app
    try:
        from archive.web.episode_view import TranscriptCache, render_transcript, transcript_view
    except ImportError:  # the code from before the cache: pages only
        TranscriptCache = None

    with tempfile.TemporaryDirectory() as tmp:
        path = copy_archive(args.db, Path(tmp))
        db = open_db(path)
        episode_id = args.episode or hour_long_episode(db)
        words = add_word_timings(db, episode_id) if args.words else 0
        segments = load_segments(db, episode_id)
        breaks = [row[0] for row in db.execute("SELECT start FROM chapters WHERE episode_id = ?", [episode_id])]
        length = max((segment.end for segment in segments), default=0)
        print(f"{args.db.name}, episode {episode_id}: {len(segments)} lines, {length / 60:.0f} min, "
              f"{sum(len(s.text.split()) for s in segments)} words" + (f" ({words} timed)" if words else ""))

        app = create_app({"DATABASE": str(path), "SECRET_KEY": "bench", "TESTING": True})
        if TranscriptCache is None:
            print("(the code from before the cache)")
        elif args.no_cache:
            app.extensions["podarchive.transcripts"] = TranscriptCache(max_bytes=0)
        client = app.test_client()
        page = f"/episodes/{episode_id}"
        moment = f"{page}?t={int(length * 0.6)}"
        started = time.perf_counter()
        response = client.get(page)
        first = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, response.status_code
        print(f"page {len(response.data) / 1e6:.2f} MB; first request {first:.1f} ms"
              + (" (no cache)" if args.no_cache else ""))
        print(f"  {page:<24} {summary(timed(lambda: client.get(page), args.repeat))}")
        print(f"  {moment:<24} {summary(timed(lambda: client.get(moment), args.repeat))}")
        if TranscriptCache is None:
            return
        cache = TranscriptCache()
        transcript_view(db, episode_id, breaks, cache)
        parts = {
            "lines + key, cached": lambda: transcript_view(db, episode_id, breaks, cache).html(),
            "load_segments": lambda: load_segments(db, episode_id),
            "reading_paragraphs": lambda: reading_paragraphs(segments, breaks),
            "render_transcript": lambda: render_transcript(segments, breaks),
        }
        print("parts:")
        for name, call in parts.items():
            print(f"  {name:<24} {summary(timed(call, max(5, args.repeat // 3)))}")
        db.conn.close()


if __name__ == "__main__":
    main()
