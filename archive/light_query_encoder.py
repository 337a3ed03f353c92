"""A search query's vector without torch or sentence-transformers: the model's ONNX export run by ONNX Runtime.

Importing torch and sentence-transformers takes seconds of CPU, which a one-off `podarchive search` (or a fresh
web worker) would spend to embed one query. The indexing path exports the model's transformer to ONNX once
(archive/onnx_encoder.py) and stores, beside the export, the model's own vectors of a few reference texts.
`LightQueryEncoder` runs that export with ONNX Runtime, tokenises with the model folder's `tokenizer.json`
(the `tokenizers` library, cut at the model's `max_seq_length`), pools as the model's pooling module says and
L2-normalises, like the Embedder contract. It is used only after it gave the stored reference vectors itself, to
`onnx_encoder.TOLERANCE`: the vectors are the model's, so they keep the model's key. `load` gives None (the
caller then uses the model itself) when anything is missing, differs or fails: a fresh cache, an archive copied
from another machine, a hub model (not a local folder), a model with modules other than a transformer, pooling
and normalising.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from . import onnx_encoder
from .embeddings import model_location

log = logging.getLogger(__name__)

TRANSFORMER, POOLING, NORMALIZE = "Transformer", "Pooling", "Normalize"  # modules.json types (class names)
POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens")  # sentence-transformers' names for them
LEGACY_POOLING_FLAGS = {"pooling_mode_cls_token": "cls", "pooling_mode_max_tokens": "max",
                        "pooling_mode_mean_tokens": "mean", "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens"}


class LightQueryEncoderUnavailable(Exception):
    """Why the light encoder cannot stand in for the model (logged; the caller falls back to the model)."""


class LightQueryEncoder:
    """Embeds texts like `SentenceTransformer.encode(..., normalize_embeddings=True)` with ONNX Runtime and
    `tokenizers` only. Build it with `load`."""

    def __init__(self, session, tokenizer, pooling: str, path: Path):
        self.session, self.tokenizer, self.pooling, self.path = session, tokenizer, pooling, path
        self.inputs = tuple(i.name for i in session.get_inputs())
        self.dims = 0  # set by load's check

    @classmethod
    def load(cls, model: str, cache: Path | None = None) -> LightQueryEncoder | None:
        """The encoder for embedding model `model` (a name, as `embedding_model_name` gives it) from the export in
        `cache` (default: onnx_encoder.cache_root()), checked against the reference vectors stored beside it;
        None, logged, where it cannot be used."""
        try:
            encoder = cls._open(model, cache)
            encoder._check()
            return encoder
        except LightQueryEncoderUnavailable as exc:
            log.info("queries use the embedding model itself: %s", exc)
        except Exception as exc:  # noqa: BLE001 - a runtime or tokenizer error: the model itself still works
            log.info("queries use the embedding model itself: the light query encoder failed (%r)", exc)
        return None

    @classmethod
    def _open(cls, model: str, cache: Path | None) -> LightQueryEncoder:
        folder = Path(model_location(model))
        if not folder.is_dir():
            raise LightQueryEncoderUnavailable(f"{model!r} is not a local model folder")
        path = onnx_encoder.export_path(str(folder), model, cache)
        if not path.is_file():
            raise LightQueryEncoderUnavailable(f"no ONNX export at {path} (indexing makes it)")
        modules = _modules(folder)
        if [kind for kind, _ in modules if kind != NORMALIZE] != [TRANSFORMER, POOLING] or modules[0][1] != "":
            raise LightQueryEncoderUnavailable(f"modules {[kind for kind, _ in modules]} are not a transformer, "
                                               "pooling and normalising")
        if _default_prompt(folder):
            raise LightQueryEncoderUnavailable("the model puts a default prompt before every text")
        if not (folder / "tokenizer.json").is_file():
            raise LightQueryEncoderUnavailable(f"no tokenizer.json in {folder}")
        tokenizer = _tokenizer(folder)
        pooling = _pooling_mode(folder / modules[1][1])
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # one short query: threads only wait on each other (query_embedding.py)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return cls(session, tokenizer, pooling, path)

    def _check(self) -> None:
        """Raise LightQueryEncoderUnavailable unless this encoder gives the stored reference vectors, one text at
        a time (a query) and all together (padded, as `encode` batches)."""
        reference = onnx_encoder.read_reference(self.path.parent)
        if reference is None or reference[0] != list(onnx_encoder.REFERENCE_TEXTS):
            raise LightQueryEncoderUnavailable(f"no reference vectors of REFERENCE_TEXTS beside {self.path}")
        texts, expected = reference
        alone = np.concatenate([self._encode_batch([text]) for text in texts])
        together = self.encode(texts)
        for got in (alone, together):
            if got.shape != expected.shape or not np.abs(got - expected).max() <= onnx_encoder.TOLERANCE:
                difference = np.abs(got - expected).max() if got.shape == expected.shape else float("inf")
                raise LightQueryEncoderUnavailable(f"the export run by ONNX Runtime differs from the model's "
                                                   f"reference vectors (by {difference:.1e})")
        self.dims = int(expected.shape[1])

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """One float32, L2-normalised row per text, in order; batched longest first, like the model's encode."""
        texts = list(texts)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        rows: list[np.ndarray | None] = [None] * len(texts)
        for start in range(0, len(order), batch_size):
            chosen = order[start:start + batch_size]
            for i, vector in zip(chosen, self._encode_batch([texts[i] for i in chosen])):
                rows[i] = vector
        return np.stack(rows).astype(np.float32, copy=False) if rows else np.zeros((0, self.dims), np.float32)

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)  # set up once (`_tokenizer`), then only read: thread-safe
        features = {"input_ids": [e.ids for e in encodings], "attention_mask": [e.attention_mask for e in encodings],
                    "token_type_ids": [e.type_ids for e in encodings]}
        feed = {name: np.asarray(features[name], dtype=np.int64) for name in self.inputs}
        tokens = self.session.run(None, feed)[0]
        vectors = pool(tokens, np.asarray(features["attention_mask"], dtype=np.float32), self.pooling)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def pool(tokens: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """Sentence vectors from token vectors (batch, tokens, dims) and the attention mask (batch, tokens), as
    sentence-transformers' Pooling module does for `mode` (one of POOLING_MODES)."""
    if mode == "cls":
        return tokens[:, 0]
    if mode == "max":
        return np.where(mask[:, :, None] > 0, tokens, -1e9).max(axis=1)
    summed = (tokens * mask[:, :, None]).sum(axis=1)
    counts = np.clip(mask.sum(axis=1, keepdims=True), 1e-9, None)
    return summed / (np.sqrt(counts) if mode == "mean_sqrt_len_tokens" else counts)


def _modules(folder: Path) -> list[tuple[str, str]]:
    """(class name, path) of each module in the model folder's modules.json (the class name of a
    sentence-transformers module, wherever the library keeps it; another library's module keeps its full name)."""
    try:
        listed = json.loads((folder / "modules.json").read_text())
        kinds = [str(entry["type"]) for entry in listed]
        return [(kind.rpartition(".")[2] if kind.startswith("sentence_transformers.") else kind,
                 str(entry.get("path", ""))) for kind, entry in zip(kinds, listed)]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LightQueryEncoderUnavailable(f"cannot read {folder / 'modules.json'} ({exc})") from exc


def _default_prompt(folder: Path) -> str | None:
    """The prompt name sentence-transformers puts before every text by default (config_sentence_transformers.json)."""
    try:
        return json.loads((folder / "config_sentence_transformers.json").read_text()).get("default_prompt_name")
    except (OSError, ValueError, AttributeError):
        return None


def _max_seq_length(folder: Path) -> int:
    """The transformer module's max_seq_length (sentence_bert_config.json), within the tokenizer's model_max_length,
    as sentence-transformers takes it."""
    try:
        length = int(json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LightQueryEncoderUnavailable(f"no max_seq_length in {folder / 'sentence_bert_config.json'}") from exc
    try:
        limit = json.loads((folder / "tokenizer_config.json").read_text()).get("model_max_length")
    except (OSError, ValueError):
        limit = None
    return min(length, int(limit)) if isinstance(limit, (int, float)) and limit > 0 else length


def _tokenizer(folder: Path):
    """The model's fast tokenizer from tokenizer.json, cut at max_seq_length and padded to the longest text (the
    file's own truncation and fixed padding are what it was saved with, not what the model runs with)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    padding = tokenizer.padding or {}
    pad_token = padding.get("pad_token")
    if pad_token is None:
        try:
            pad_token = json.loads((folder / "tokenizer_config.json").read_text()).get("pad_token")
        except (OSError, ValueError):
            pad_token = None
        pad_token = pad_token if isinstance(pad_token, str) else "[PAD]"
    pad_id = tokenizer.token_to_id(pad_token)
    if pad_id is None:
        raise LightQueryEncoderUnavailable(f"the tokenizer has no padding token {pad_token!r}")
    tokenizer.no_padding()
    tokenizer.enable_padding(pad_id=pad_id, pad_token=pad_token, pad_type_id=padding.get("pad_type_id", 0))
    tokenizer.enable_truncation(max_length=_max_seq_length(folder))
    return tokenizer


def _pooling_mode(folder: Path) -> str:
    """The one pooling mode the model's Pooling module config (1_Pooling/config.json) names: `pooling_mode`
    (newer sentence-transformers) or the older `pooling_mode_<mode>` flags."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise LightQueryEncoderUnavailable(f"cannot read {folder / 'config.json'} ({exc})") from exc
    if "pooling_mode" in config:
        named = config["pooling_mode"]
        chosen = [named] if isinstance(named, str) else list(named)
    else:
        chosen = [mode for key, mode in LEGACY_POOLING_FLAGS.items() if config.get(key)]
        chosen += [key for key, value in config.items()
                   if key.startswith("pooling_mode_") and value and key not in LEGACY_POOLING_FLAGS]
    if len(chosen) != 1 or chosen[0] not in POOLING_MODES or config.get("include_prompt") is False:
        raise LightQueryEncoderUnavailable(f"pooling {chosen} is not one of {', '.join(POOLING_MODES)}")
    return chosen[0]
