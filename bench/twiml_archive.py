"""The TWIML AI podcast archive the held-out search questions of bench/queries_heldout_twiml.json run on, built once
and cached under bench/out/.

The same steps as bench/datatalks_archive.py (its `build`), on the TWIML feed
(/work/shared/fixtures/corpus/twiml_whisper_transcripts/feed.xml, 537 Whisper-base WebVTT transcripts, read from
disk: the feed's percent-encoded relative transcript URLs resolve to files beside it): the real pipeline for shows,
episodes and transcripts with the index stage off, then passages (default 45 s) for every episode, an embedding
for every passage with the default embedder, and the FTS5 tables. The judged episodes are embedded first.
Rerunning resumes where a killed run stopped. The episodes have titles but no descriptions or notes.

With 537 episodes of about an hour cut into 45 s passages, this archive should be well over
index_refresh.LARGE_ARCHIVE_PASSAGES (20,000), so search uses the side indexes (Tantivy, faiss IVF) on it unless told
otherwise. Embedding every passage takes a long while on a few CPU cores.

    .venv/bin/python bench/twiml_archive.py      # build (or finish building) bench/out/twiml.db
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import datatalks_archive  # noqa: E402

FEED = datatalks_archive.SHARED / "corpus" / "twiml_whisper_transcripts" / "feed.xml"
ARCHIVE = datatalks_archive.OUT / "twiml.db"
QUERIES = ROOT / "bench" / "queries_heldout_twiml.json"


def build(path: Path = ARCHIVE, embedder=None, log=print, first: list[str] = ()):
    """Build or finish the TWIML archive; passages of the episodes with guids in `first` are embedded first."""
    return datatalks_archive.build(path, embedder, log, first, feed=FEED)


def judged_guids() -> list[str]:
    queries = json.loads(QUERIES.read_text())["queries"]
    return sorted({guid for q in queries for guid in q["episodes"]})


if __name__ == "__main__":
    build(first=judged_guids())
