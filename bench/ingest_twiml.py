"""Time to ingest the TWIML feed (537 WebVTT transcripts) over HTTP, then to re-ingest it unchanged.

Run: .venv/bin/python bench/ingest_twiml.py [--index]
Without --index it measures feed + transcript stages only (the index has its own benchmark,
bench/embedding_throughput.py). Prints wall time, peak memory (RSS) and archive size.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from archive.db import open_db  # noqa: E402
from ingest.pipeline import IngestOptions, ingest_sources  # noqa: E402

CORPUS = ROOT.parent / "shared" / "fixtures" / "corpus"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(directory: Path) -> tuple[str, http.server.ThreadingHTTPServer]:
    handler = functools.partial(QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", server


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed_ingest(db, feed_url: str, index: bool):
    start = time.perf_counter()
    report = ingest_sources(db, [feed_url], IngestOptions(index=index))
    return time.perf_counter() - start, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", action="store_true", help="include the index stage (embeddings, takeaways, ...)")
    args = parser.parse_args()
    base, server = serve(CORPUS)
    feed_url = f"{base}/twiml_whisper_transcripts/feed.xml"
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "twiml.db"
        db = open_db(db_path)
        first, report = timed_ingest(db, feed_url, args.index)
        segments = db["segments"].count
        print(f"first ingest:  {first:7.2f} s  episodes={db['episodes'].count} transcripts={db['transcripts'].count} "
              f"segments={segments} failures={len(report.failures)}")
        again, report2 = timed_ingest(db, feed_url, args.index)
        print(f"re-ingest:     {again:7.2f} s  feeds not modified={report2.feeds_not_modified} "
              f"transcripts made={report2.transcripts_made}")
        size = sum(p.stat().st_size for p in Path(tmp).iterdir()) / 1e6
        print(f"archive size:  {size:7.1f} MB (with WAL)   peak RSS: {peak_rss_mb():.0f} MB   index={args.index}")
    server.shutdown()


if __name__ == "__main__":
    main()
