"""A sentence-transformers model's transformer run by OpenVINO or ONNX Runtime, for embedding many texts on CPU.

The `openvino` and `onnx` backends of archive/embeddings.py. The transformer (the model's first module) is
exported once with PyTorch's ONNX exporter into a cache folder, keyed by the model's files and the library
versions (offline: the export reads the local weights, nothing is fetched), and run by OpenVINO (compiled from
that file, float32) or ONNX Runtime; tokenising and the modules after the transformer (pooling, normalising) stay
the model's own. `OnnxEncoder.build` checks the session
against the model itself on texts of several lengths, padded together, and gives None when any vector differs by
more than `TOLERANCE`: the vectors are the torch backend's (to float rounding), so they keep the model's key.

Why not sentence-transformers' own `backend="onnx"`/`"openvino"`: they need `optimum` / `optimum-intel`, whose
releases pin older `transformers` than this project's.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import json
import logging
import os
import re
import tempfile
import threading
import warnings
from pathlib import Path

import numpy as np

from .settings import Settings

log = logging.getLogger(__name__)

TOLERANCE = 1e-5  # largest difference from the torch backend's vectors the export may make
CHECK_TEXTS = (
    "warm up",
    "a longer text to check that the exported model follows the length of its input and its padding, whatever "
    "they are, and gives the same vector as the model it was exported from did",
    "and a third one, of middling length, in the same batch",
)
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
REFERENCE_FILE = "reference.json"  # the model's own vectors of REFERENCE_TEXTS, beside the export
REFERENCE_TEXTS = (
    *CHECK_TEXTS,
    "Capitals, ACCENTS (café, naïve, Ångström), digits 1984 & punctuation: does the tokenizer normalise them?",
    "one text longer than the model's window, which must be cut where the model cuts it " * 24,
)


def cache_root() -> Path:
    """Where exports are kept: the PODARCHIVE_MODEL_CACHE setting, else ~/.cache/podarchive/models (or under
    XDG_CACHE_HOME)."""
    configured = Settings.from_env().model_cache
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "podarchive" / "models"


def export_key(location: str, backend: str = "onnx") -> str:
    """A digest of what the export depends on: the model folder's files (name, size, mtime), the format, and the
    torch and transformers versions. A changed model or library makes a new export. Imports neither library (the
    versions are their installed distributions'), so a process that only runs the export can find it."""
    folder = Path(location)
    files = sorted((str(p.relative_to(folder)), p.stat().st_size, int(p.stat().st_mtime))
                   for p in folder.rglob("*") if p.is_file() and "onnx" not in p.parts) if folder.is_dir() else []
    parts = [str(folder.resolve()) if folder.is_dir() else location, files, backend, _version("torch"),
             _version("transformers")]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def _version(library: str) -> str:
    """The installed version of `library` (the same string as its `__version__`), without importing it."""
    try:
        return importlib.metadata.version(library)
    except importlib.metadata.PackageNotFoundError:
        return importlib.import_module(library).__version__


def export_path(location: str, label: str = "model", cache: Path | None = None) -> Path:
    """Where the export of the model at `location` is (or goes): `cache`/<label>-<export_key>/model.onnx."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("._") or "model"
    return (cache or cache_root()) / f"{slug}-{export_key(location)}" / "model.onnx"


def write_reference(model, folder: Path) -> None:
    """Store the model's own vectors of REFERENCE_TEXTS in `folder`/REFERENCE_FILE (kept when it already holds
    them, to TOLERANCE): a process that runs the export without the model (archive/light_query_encoder.py)
    checks itself against them. A cache it cannot write to only costs that process its shortcut."""
    temporary = None
    try:
        vectors = model.encode(list(REFERENCE_TEXTS), normalize_embeddings=True, convert_to_numpy=True,
                               show_progress_bar=False).astype(np.float32)
        stored = read_reference(folder)
        if stored is not None and stored[0] == list(REFERENCE_TEXTS) and stored[1].shape == vectors.shape \
                and np.abs(stored[1] - vectors).max() <= TOLERANCE:
            return
        handle, temporary = tempfile.mkstemp(dir=folder, suffix=".json.part")
        with os.fdopen(handle, "w") as out:
            json.dump({"texts": list(REFERENCE_TEXTS), "vectors": vectors.tolist()}, out)
        os.replace(temporary, folder / REFERENCE_FILE)
    except Exception as exc:  # noqa: BLE001 - the export itself is fine: only the shortcut is lost
        log.info("cannot store the embedding model's reference vectors in %s (%s)", folder, exc)
    finally:
        if temporary:
            Path(temporary).unlink(missing_ok=True)


def read_reference(folder: Path) -> tuple[list[str], np.ndarray] | None:
    """(texts, the model's float32 vectors of them) from `folder`/REFERENCE_FILE; None when missing or unreadable."""
    try:
        stored = json.loads((folder / REFERENCE_FILE).read_text())
        texts, vectors = [str(text) for text in stored["texts"]], np.asarray(stored["vectors"], dtype=np.float32)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.debug("no reference vectors in %s (%s)", folder, exc)
        return None
    return (texts, vectors) if vectors.ndim == 2 and len(texts) == len(vectors) else None


def _tokenize(model, texts: list[str]) -> dict:
    tokenize = getattr(model, "preprocess", None) or model.tokenize
    return tokenize(list(texts))


def _inner(model):
    return getattr(model[0], "model", None) or model[0].auto_model


def export(model, path: Path) -> None:
    """Write the model's transformer as ONNX to `path` (atomically: another process may be reading the cache)."""
    import torch
    from transformers.utils import logging as transformers_logging

    from .embeddings import _last_hidden_state

    features = _tokenize(model, list(CHECK_TEXTS[:2]))
    keys = tuple(k for k in INPUTS if k in features)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".onnx.part")
    os.close(handle)
    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer and deprecation notices: build() checks the result instead
            axes = {key: {0: "batch", 1: "tokens"} for key in (*keys, "token_embeddings")}
            torch.onnx.export(_last_hidden_state(_inner(model), keys).eval(), tuple(features[k] for k in keys),
                              temporary, input_names=list(keys), output_names=["token_embeddings"],
                              dynamic_axes=axes, opset_version=17, dynamo=False)
        os.replace(temporary, path)
    finally:
        transformers_logging.set_verbosity(verbosity)
        Path(temporary).unlink(missing_ok=True)


def _onnx_runner(path: Path, threads: int):
    """(input names, a call from inputs to token embeddings) with ONNX Runtime."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return tuple(i.name for i in session.get_inputs()), (lambda feed: session.run(None, feed)[0])


def _openvino_runner(path: Path, threads: int):
    """(input names, a call from inputs to token embeddings) with OpenVINO, in float32 (never bf16, which some
    CPUs would pick by default and which changes the vectors)."""
    import openvino

    compiled = openvino.Core().compile_model(str(path), "CPU", {
        "INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"})
    lock = threading.Lock()  # one infer request: one call at a time

    def run(feed):
        with lock:
            return np.array(compiled(feed)[0])

    return tuple(port.get_any_name() for port in compiled.inputs), run


class OnnxEncoder:
    """Embeds texts like `model.encode(..., normalize_embeddings=True)`, the transformer run by OpenVINO or ONNX
    Runtime (`runtime`)."""

    def __init__(self, model, runner, keys: tuple[str, ...], path: Path, runtime: str = "onnx"):
        self.model, self.runner, self.keys, self.path, self.runtime = model, runner, keys, path, runtime

    @classmethod
    def build(cls, model, location: str, cache: Path | None = None, threads: int | None = None,
              label: str = "model", runtime: str = "onnx", make: bool = True) -> OnnxEncoder | None:
        """Load (exporting first when the cache has none and `make`: into `cache`/<label>-<export_key>/) and check
        against `model`; None when the export or the check fails (the caller then uses the model itself). A
        checked export gets the model's reference vectors beside it (`write_reference`)."""
        try:
            import torch

            path = export_path(location, label, cache)
            if not path.exists() and not make:
                return None
            if not path.exists():
                log.info("exporting the embedding model to ONNX in %s (once)", path.parent)
                export(model, path)
            make = _openvino_runner if runtime == "openvino" else _onnx_runner
            keys, runner = make(path, threads or torch.get_num_threads())
            encoder = cls(model, runner, keys, path, runtime)
            expected = model.encode(list(CHECK_TEXTS), normalize_embeddings=True, convert_to_numpy=True,
                                    show_progress_bar=False)
            got = np.concatenate([encoder.encode(list(CHECK_TEXTS)), encoder.encode([CHECK_TEXTS[1]])])
            expected = np.concatenate([expected, expected[1:2]])
            if got.shape == expected.shape and np.abs(got - expected).max() <= TOLERANCE:
                write_reference(model, path.parent)
                return encoder
            log.warning("the embedding model run by %s differs from the model (by %.1e); using torch", runtime,
                        float(np.abs(got - expected).max()) if got.shape == expected.shape else float("inf"))
        except Exception as exc:  # noqa: BLE001 - a runtime not installed, an architecture the exporter cannot take
            log.warning("cannot run the embedding model with %s (%s); using torch", runtime, exc)
        return None

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """One float32, L2-normalised row per text, in order; texts are batched longest first, like encode."""
        import torch

        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        rows: list[np.ndarray | None] = [None] * len(texts)
        for start in range(0, len(order), batch_size):
            chosen = order[start:start + batch_size]
            features = _tokenize(self.model, [texts[i] for i in chosen])
            output = self.runner({k: features[k].numpy() for k in self.keys})
            features["token_embeddings"] = torch.from_numpy(output)
            with torch.no_grad():
                for module in list(self.model)[1:]:
                    features = module(features)
                vectors = torch.nn.functional.normalize(features["sentence_embedding"], dim=1).numpy()
            for i, vector in zip(chosen, vectors):
                rows[i] = vector
        return np.stack(rows).astype(np.float32, copy=False)
