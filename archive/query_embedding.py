"""Embedding a search query: one embedder per model for the whole process, the model's ONNX export without torch
where it gives the model's vectors, and each query on one thread."""

from __future__ import annotations

import logging
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .embeddings import Embedder, SentenceTransformerEmbedder, embedding_model_name, model_location

log = logging.getLogger(__name__)
_embedders: dict[str, Embedder] = {}
_embedders_lock = threading.Lock()


def get_embedder(model: str | None = None) -> Embedder:
    """A process-wide embedder per model name (none: the PODARCHIVE_EMBEDDING_MODEL setting): a QueryEmbedder,
    which loads what it embeds with on the first embed."""
    model = embedding_model_name(model)
    with _embedders_lock:
        if model not in _embedders:
            _embedders[model] = QueryEmbedder(model)
        return _embedders[model]


class QueryEmbedder:
    """The embedder of searches (the CLI's and the site's, which also embeds the few texts a producer edits): the
    light encoder (archive/light_query_encoder.py: the model's ONNX export run by ONNX Runtime, no torch import,
    well under a second to load) when it loads and gives the model's own reference vectors, else the model itself
    (`model`: SentenceTransformerEmbedder on torch, traced for queries by `warm_up`). Either way the vectors are
    the model's, so `name` keys them. After falling back to the model, it stores the reference vectors beside an
    existing export that lacks them, so the next process can skip torch. `backend_used`: "light" or "torch", for
    the last embed (None before the first)."""

    def __init__(self, model: str | None = None, cache_dir: str | Path | None = None):
        self.name = embedding_model_name(model)
        self.cache_dir = Path(cache_dir) if cache_dir else None  # the ONNX export's cache (default: the setting)
        self.model = SentenceTransformerEmbedder(self.name, backend="torch")
        self.backend_used: str | None = None
        self._light = None  # None: not tried yet; False: cannot be used in this process
        self._light_lock = threading.Lock()
        self._reference_tried = False

    def light_encoder(self):
        """The LightQueryEncoder, loaded and checked on first use; None where it cannot be used."""
        if self._light is None:
            with self._light_lock:
                if self._light is None:
                    from .light_query_encoder import LightQueryEncoder

                    self._light = LightQueryEncoder.load(self.name, self.cache_dir) or False
        return self._light or None

    @property
    def dims(self) -> int:
        light = self.light_encoder()
        return light.dims if light else self.model.dims

    def embed(self, texts: list[str]) -> np.ndarray:
        texts = list(texts)
        vectors = self._light_embed(texts)
        if vectors is not None:
            return vectors
        vectors = self.model.embed(texts)
        self._model_used()
        return vectors

    def embed_query(self, text: str) -> np.ndarray:
        vectors = self._light_embed([text])
        if vectors is not None:
            return vectors[0]
        vector = self.model.embed_query(text)
        self._model_used()
        return vector

    def warm_up(self) -> None:
        """Load the light encoder, else the model (traced for queries). Raises ModelLoadError."""
        if not self.light_encoder():
            self.model.warm_up()
            self._model_used()

    def _light_embed(self, texts: list[str]) -> np.ndarray | None:
        light = self.light_encoder()
        if not light:
            return None
        try:
            vectors = light.encode(texts)
        except Exception as exc:  # noqa: BLE001 - the model itself still embeds
            log.info("the light query encoder failed (%r); queries use the embedding model itself", exc)
            self._light = False
            return None
        self.backend_used = "light"
        return vectors

    def _model_used(self) -> None:
        self.backend_used = "torch"
        with self._light_lock:
            if self._reference_tried:
                return
            self._reference_tried = True
        self._store_reference()

    def _store_reference(self) -> None:
        """Check an existing export of the model (none is made here: that takes the indexing path's time) with
        the model now loaded, which stores the model's reference vectors beside it (onnx_encoder.write_reference)."""
        location = model_location(self.name)
        if not Path(location).is_dir():
            return  # a hub model: the light encoder takes local folders only
        from .onnx_encoder import OnnxEncoder

        if OnnxEncoder.build(self.model._load(), location, self.cache_dir, threads=1, label=self.name,
                             runtime="onnx", make=False):
            log.info("stored the embedding model's reference vectors beside its ONNX export: later processes embed "
                     "queries without torch")


_threads = {"users": 0, "before": 1}
_threads_lock = threading.Lock()


@contextmanager
def one_torch_thread():
    """Embed one short query on one thread: a sentence gains next to nothing from intra-op threads, while on a
    busy machine every OpenMP barrier waits for a core (two threads under load made a query many times slower
    than one). The setting is restored once no search is embedding; a no-op until torch is imported."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    with _threads_lock:
        if _threads["users"] == 0:
            _threads["before"] = torch.get_num_threads()
            torch.set_num_threads(1)
        _threads["users"] += 1
    try:
        yield
    finally:
        with _threads_lock:
            _threads["users"] -= 1
            if _threads["users"] == 0:
                torch.set_num_threads(_threads["before"])
