"""The benches' deterministic embedder, for archives built quickly where vectors need not mean anything.

The site ships no fake: a bench that serves an archive indexed with it hands the object to `create_app`
(bench/web_load.py, bench/screenshots.py, bench/web_output.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: its tests/ folder

from tests.fakes import FakeEmbedder  # noqa: E402  (the tests' own: the same vectors in benches and tests)

__all__ = ["FakeEmbedder", "bench_embedder"]


def bench_embedder(name: str | None):
    """A bench's --embedder: 'fake' for the FakeEmbedder; else the named sentence-transformers model (None: the
    default) as the site's EMBEDDER setting makes it (one instance a process, loaded on first use)."""
    if name == "fake":
        return FakeEmbedder()
    from archive.web.searching import make_embedder

    return make_embedder(name)
