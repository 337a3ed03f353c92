"""The embeddings stage: a vector for every passage of the episode, after the passages stage and before understanding.

Order of the stages: feed -> transcript -> passages -> embeddings -> understanding -> search indexes. This one
reads `passages` and writes `embeddings` only, through archive/vectors.py: a vector is keyed by (model, sha256 of
the passage's text), so a rerun embeds only the passages whose text is new to the model, and it needs no row in
`stages`. Understanding (ingest/understand.py) reads the vectors it hands on: chapters and takeaways are placed
by meaning.
"""

from __future__ import annotations

import numpy as np

from archive.errors import ModelLoadError
from archive.vectors import ensure_embeddings

from .stages import EpisodeRun

EMBEDDINGS = "embeddings"


def embed_passages(run: EpisodeRun) -> bool:
    """Make sure every passage of the episode has its vector, and hand the vectors on (`run.vectors`, in passage
    order). Returns whether they are there; a ModelLoadError is raised, any other failure kept in the run."""
    try:
        rows = run.passage_rows()
        run.vectors = np.asarray(ensure_embeddings(run.db, rows, run.embedder)) if rows \
            else np.zeros((0, 1), dtype=np.float32)
    except ModelLoadError:
        raise
    except Exception as exc:  # noqa: BLE001 - any embedder's failure is this episode's, kept like a stage's
        run.fail(EMBEDDINGS, exc)
        return False
    return True
