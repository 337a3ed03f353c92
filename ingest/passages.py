"""The passages stage, the first after the transcript: the episode's transcript grouped into passages.

Order of the stages: feed -> transcript -> passages -> embeddings -> understanding -> search indexes. This one
reads the transcript's `segments` as the producer corrected them, groups them by archive/passages.py's rules and
writes `passages` (and its row in `stages`) only. Its input hash is the transcript's text key and the passage
sizes, so a rerun on unchanged input writes nothing. Next: the embeddings stage (ingest/passage_vectors.py).
"""

from __future__ import annotations

from archive.passages import make_passages, save_passages

from .stages import EpisodeRun

PASSAGES = "passages"


def make_episode_passages(run: EpisodeRun, target: float = 45, min_seconds: float = 30,
                          max_seconds: float = 60) -> bool:
    """Bring the episode's passages up to date. Returns whether they are (False: the stage failed, and the run
    keeps why)."""
    digest = run.digest(PASSAGES, run.text_key, target, min_seconds, max_seconds)
    if not run.needed(PASSAGES, digest):
        run.summary.passages = len(run.passage_rows())
        return True
    with run.stage(PASSAGES, digest):
        passages = make_passages(run.segments, target, min_seconds, max_seconds)
        run.set_passage_rows(save_passages(run.db, run.episode_id, passages))
        run.summary.passages = len(passages)
        return True
    return False
