"""The embedder's backends: the setting that picks one, the ONNX export and its cache, and that every backend
(openvino, onnx) gives the torch vectors (so they share the model's key)."""

from __future__ import annotations

import numpy as np
import pytest

from archive import onnx_encoder
from archive.db import open_db
from archive.embeddings import MemoEmbedder, SentenceTransformerEmbedder, embedding_backend
from archive.errors import SettingError
from archive.vectors import ensure_embeddings, stored_vectors
from fakes import FakeEmbedder, RecordingEmbedder

TEXTS = [
    "so today we're talking about feature stores and why teams build them",
    "yeah",
    "the model was trained on about two hundred thousand labelled examples, and then we evaluated it on a held "
    "out set from a different hospital, which is where the interesting failures showed up " * 4,
    "gradient boosting still wins on tabular data more often than people expect",
    "",
    "a long pause, then: transformers, attention, and the rest of it " * 30,  # over 256 tokens: truncated
]


def test_the_backend_comes_from_the_argument_else_the_setting(monkeypatch):
    monkeypatch.delenv("PODARCHIVE_EMBEDDING_BACKEND", raising=False)
    assert embedding_backend() == "openvino"
    monkeypatch.setenv("PODARCHIVE_EMBEDDING_BACKEND", "torch")
    assert embedding_backend() == "torch"
    assert embedding_backend("ONNX") == "onnx"
    with pytest.raises(SettingError):
        embedding_backend("tensorflow")


def test_the_key_of_the_vectors_does_not_depend_on_the_backend():
    names = {SentenceTransformerEmbedder(backend=backend).name for backend in ("openvino", "onnx", "torch")}
    assert names == {"all-MiniLM-L6-v2"}
    assert SentenceTransformerEmbedder(backend="onnx").backend == "onnx"
    assert SentenceTransformerEmbedder(backend="onnx", device="cuda").backend == "torch"  # ONNX is the CPU path


def test_the_export_key_follows_the_model_files(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    first = onnx_encoder.export_key(str(tmp_path))
    assert onnx_encoder.export_key(str(tmp_path)) == first
    (tmp_path / "onnx").mkdir()  # an export saved inside the model folder is not part of the model
    (tmp_path / "onnx" / "model.onnx").write_bytes(b"export")
    assert onnx_encoder.export_key(str(tmp_path)) == first
    (tmp_path / "model.safetensors").write_bytes(b"other weights")
    assert onnx_encoder.export_key(str(tmp_path)) != first
    assert onnx_encoder.export_key(str(tmp_path), backend="openvino") != onnx_encoder.export_key(str(tmp_path))


def test_the_cache_folder_comes_from_the_setting(monkeypatch, tmp_path):
    monkeypatch.setenv("PODARCHIVE_MODEL_CACHE", str(tmp_path / "models"))
    assert onnx_encoder.cache_root() == tmp_path / "models"
    monkeypatch.delenv("PODARCHIVE_MODEL_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert onnx_encoder.cache_root() == tmp_path / "xdg" / "podarchive" / "models"


def test_large_batches_keep_row_order_and_vectors(tmp_path):
    db = open_db(tmp_path / "a.db")
    rows = [{"content_hash": f"h{i}", "text": f"passage {i} about topic {i % 7} " * (1 + i % 5)} for i in range(40)]
    one_by_one = np.stack([FakeEmbedder().embed([row["text"]])[0] for row in rows])
    vectors = ensure_embeddings(db, rows, FakeEmbedder(), batch_size=1024)
    assert np.allclose(vectors, one_by_one)
    stored = stored_vectors(db, FakeEmbedder.name, [row["content_hash"] for row in rows])
    assert np.allclose(np.stack([stored[row["content_hash"]] for row in rows]), one_by_one)


def test_the_memo_gives_the_wrapped_vectors_in_order_and_embeds_a_short_text_once():
    inner = RecordingEmbedder()
    memo = MemoEmbedder(inner, max_chars=20)
    long = "a passage far longer than twenty characters"
    first = memo.embed(["data pipelines", "feature stores", "data pipelines", long])
    second = memo.embed(["feature stores", long, "model drift"])
    assert np.allclose(first, FakeEmbedder().embed(["data pipelines", "feature stores", "data pipelines", long]))
    assert np.allclose(second, FakeEmbedder().embed(["feature stores", long, "model drift"]))
    assert inner.texts == ["data pipelines", "feature stores", long, long, "model drift"]  # long texts: not kept
    assert memo.name == inner.name and memo.dims == inner.dims
    assert memo.embed([]).shape == (0, inner.dims)


def test_the_memo_stays_bounded():
    inner = RecordingEmbedder()
    memo = MemoEmbedder(inner, max_entries=3)
    for word in ("one", "two", "three", "four", "one"):
        memo.embed([word])
    assert len(memo._memo) <= 3 and inner.texts.count("one") == 2


@pytest.fixture(scope="module")
def torch_vectors():
    return SentenceTransformerEmbedder(backend="torch").embed(TEXTS)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["openvino", "onnx"])
def test_a_backend_gives_the_torch_vectors_and_caches_its_export(backend, tmp_path, torch_vectors, monkeypatch):
    embedder = SentenceTransformerEmbedder(backend=backend, cache_dir=tmp_path, batch_size=2)
    one = embedder.embed(TEXTS[:1])  # one text (a query): the model itself, no export
    assert embedder.backend_used == "torch" and not list(tmp_path.iterdir())
    assert np.abs(one - torch_vectors[:1]).max() < 1e-5
    vectors = embedder.embed(TEXTS)
    assert embedder.backend_used == backend
    assert vectors.dtype == np.float32 and vectors.shape == torch_vectors.shape
    assert np.abs(vectors - torch_vectors).max() < 1e-5
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert np.abs(embedder.embed(TEXTS[::-1]) - torch_vectors[::-1]).max() < 1e-5  # order kept, any batching
    exports = list(tmp_path.glob("all-MiniLM-L6-v2-*/model.onnx"))
    assert len(exports) == 1

    def no_export(*args):
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_encoder, "export", no_export)  # a second process loads the cached export
    again = SentenceTransformerEmbedder(backend=backend, cache_dir=tmp_path)
    assert np.abs(again.embed(TEXTS[:2]) - torch_vectors[:2]).max() < 1e-5 and again.backend_used == backend


@pytest.mark.slow
def test_an_export_that_differs_or_fails_falls_back_to_torch(tmp_path, torch_vectors, monkeypatch):
    monkeypatch.setattr(onnx_encoder, "TOLERANCE", -1.0)  # no export can pass the check
    differs = SentenceTransformerEmbedder(backend="openvino", cache_dir=tmp_path)
    assert np.abs(differs.embed(TEXTS) - torch_vectors).max() < 1e-5 and differs.backend_used == "torch"
    monkeypatch.undo()

    def broken(*args):
        raise RuntimeError("exporter missing")

    monkeypatch.setattr(onnx_encoder, "export", broken)
    fails = SentenceTransformerEmbedder(backend="onnx", cache_dir=tmp_path / "empty")
    assert np.abs(fails.embed(TEXTS[:3]) - torch_vectors[:3]).max() < 1e-5 and fails.backend_used == "torch"
