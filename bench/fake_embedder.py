"""The benches' deterministic embedder, for archives built quickly where vectors need not mean anything.

The site ships no fake: a bench that serves an archive indexed with it hands the object to `create_app`
(bench/web_load.py, bench/screenshots.py, bench/web_output.py).
"""

from __future__ import annotations

import hashlib

import numpy as np


class FakeEmbedder:
    """Bag-of-words hashing (the tests' one, tests/fakes.py): shared words give similar vectors."""

    name = "fake-hash-embedder"

    def __init__(self, dims: int = 64):
        self.dims = dims

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dims), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                word = word.strip(".,;:!?\"'()[]")
                if not word:
                    continue
                digest = hashlib.sha256(word.encode()).digest()
                out[row, int.from_bytes(digest[:4], "little") % self.dims] += 1.0
            norm = np.linalg.norm(out[row])
            if norm:
                out[row] /= norm
        return out


def bench_embedder(name: str | None):
    """A bench's --embedder: 'fake' for the FakeEmbedder; else the named sentence-transformers model (None: the
    default) as the site's EMBEDDER setting makes it (one instance a process, loaded on first use)."""
    if name == "fake":
        return FakeEmbedder()
    from archive.web.searching import make_embedder

    return make_embedder(name)
