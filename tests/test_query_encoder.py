"""The light query encoder (archive/light_query_encoder.py) and the searches' embedder (archive/query_embedding.py):
the model's ONNX export run without torch gives the model's own vectors, is used only after it gave the stored
reference vectors, and everything else falls back to the model itself."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from archive import light_query_encoder, onnx_encoder
from archive.embeddings import DEFAULT_MODEL, SentenceTransformerEmbedder, bundled_model_path
from archive.light_query_encoder import LightQueryEncoder, pool
from archive.query_embedding import QueryEmbedder
from conftest import ROOT

QUERIES = [
    "how do you test machine learning models",
    "Feature Stores",
    "what did the guest say about GPUs, costs & the café's Wi-Fi?",
    "",
    "a question that goes on and on about transformers, attention and everything else " * 25,  # over 256 tokens
]


# -- without the model ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", light_query_encoder.POOLING_MODES)
def test_pooling_is_sentence_transformers_pooling(mode):
    import torch
    from sentence_transformers.sentence_transformer.modules import Pooling

    rng = np.random.default_rng(7)
    tokens = rng.normal(size=(3, 6, 8)).astype(np.float32)
    mask = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0]], dtype=np.float32)
    module = Pooling(8, pooling_mode=mode)
    expected = module({"token_embeddings": torch.from_numpy(tokens),
                       "attention_mask": torch.from_numpy(mask).long()})["sentence_embedding"].numpy()
    assert np.abs(pool(tokens, mask, mode) - expected).max() < 1e-6


def test_a_pooling_config_it_cannot_follow_is_refused(tmp_path):
    for config in ({"pooling_mode_mean_tokens": True, "pooling_mode_cls_token": True},
                   {"pooling_mode_weightedmean_tokens": True}, {}, {"pooling_mode": ["mean", "max"]},
                   {"pooling_mode": "lasttoken"}, {"pooling_mode": "mean", "include_prompt": False}):
        (tmp_path / "config.json").write_text(json.dumps(config))
        with pytest.raises(light_query_encoder.LightQueryEncoderUnavailable):
            light_query_encoder._pooling_mode(tmp_path)
    for config, mode in (({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}, "cls"),
                         ({"embedding_dimension": 384, "pooling_mode": "mean"}, "mean"),
                         ({"pooling_mode": ["max"]}, "max")):
        (tmp_path / "config.json").write_text(json.dumps(config))
        assert light_query_encoder._pooling_mode(tmp_path) == mode


def test_no_export_no_light_encoder(tmp_path):
    assert LightQueryEncoder.load(DEFAULT_MODEL, tmp_path / "empty cache") is None
    assert LightQueryEncoder.load("someone/hub-model", tmp_path) is None  # not a local folder


# -- with the model ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def model_vectors():
    return SentenceTransformerEmbedder(backend="torch").embed(QUERIES)


@pytest.fixture(scope="module")
def export_cache(tmp_path_factory):
    """A cache holding the default model's export and its reference vectors, made as indexing makes them."""
    cache = tmp_path_factory.mktemp("models")
    indexer = SentenceTransformerEmbedder(backend="onnx", cache_dir=cache)
    indexer.embed(["one text", "and another, as indexing embeds many"])
    assert indexer.backend_used == "onnx"
    return cache


def export_folder(cache: Path) -> Path:
    return onnx_encoder.export_path(bundled_model_path(), DEFAULT_MODEL, cache).parent


@pytest.mark.slow
def test_the_export_gets_the_models_reference_vectors(export_cache):
    texts, vectors = onnx_encoder.read_reference(export_folder(export_cache))
    assert texts == list(onnx_encoder.REFERENCE_TEXTS)
    expected = SentenceTransformerEmbedder(backend="torch").embed(texts)
    assert vectors.shape == expected.shape and np.abs(vectors - expected).max() <= 1e-6


@pytest.mark.slow
def test_the_light_encoder_gives_the_models_vectors(export_cache, model_vectors):
    embedder = QueryEmbedder(cache_dir=export_cache)
    one_by_one = np.stack([embedder.embed_query(query) for query in QUERIES])
    assert embedder.backend_used == "light" and embedder.model._model is None  # the model never loaded
    assert one_by_one.dtype == np.float32 and one_by_one.shape == model_vectors.shape == (len(QUERIES), 384)
    assert np.abs(one_by_one - model_vectors).max() <= onnx_encoder.TOLERANCE
    together = embedder.embed(QUERIES[::-1])
    assert np.abs(together - model_vectors[::-1]).max() <= onnx_encoder.TOLERANCE  # padded, order kept
    assert embedder.dims == 384 and embedder.embed([]).shape == (0, 384)


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["missing", "not json", "other vectors", "other texts"])
def test_a_missing_or_wrong_reference_falls_back_to_the_model_then_is_stored_again(
        damage, export_cache, model_vectors, tmp_path):
    cache = tmp_path / "cache"
    source = export_folder(export_cache)
    folder = cache / source.name
    folder.mkdir(parents=True)
    (folder / "model.onnx").symlink_to(source / "model.onnx")
    stored = json.loads((source / onnx_encoder.REFERENCE_FILE).read_text())
    reference = folder / onnx_encoder.REFERENCE_FILE
    if damage == "not json":
        reference.write_text("{\"texts\": [")
    elif damage == "other vectors":
        stored["vectors"][1][0] += 0.01
        reference.write_text(json.dumps(stored))
    elif damage == "other texts":
        stored["texts"][0] = "not the text these vectors are of"
        reference.write_text(json.dumps(stored))

    embedder = QueryEmbedder(cache_dir=cache)
    vectors = np.stack([embedder.embed_query(query) for query in QUERIES])
    assert embedder.backend_used == "torch"
    assert np.abs(vectors - model_vectors).max() < 1e-5
    assert json.loads(reference.read_text())["texts"] == list(onnx_encoder.REFERENCE_TEXTS)  # the model's, again
    again = QueryEmbedder(cache_dir=cache)  # the next process
    assert np.abs(again.embed(QUERIES) - model_vectors).max() <= onnx_encoder.TOLERANCE
    assert again.backend_used == "light"


@pytest.mark.slow
def test_no_export_falls_back_to_the_model_and_makes_none(tmp_path, model_vectors):
    embedder = QueryEmbedder(cache_dir=tmp_path / "cache")
    assert np.abs(embedder.embed(QUERIES[:2]) - model_vectors[:2]).max() < 1e-5
    assert embedder.backend_used == "torch" and not (tmp_path / "cache").exists()


@pytest.mark.slow
def test_a_model_folder_without_tokenizer_json_falls_back(export_cache, model_vectors, tmp_path):
    folder = tmp_path / "model"  # the default model's files, linked, under another name
    for path in Path(bundled_model_path()).rglob("*"):
        if path.is_file():
            (folder / path.relative_to(bundled_model_path())).parent.mkdir(parents=True, exist_ok=True)
            (folder / path.relative_to(bundled_model_path())).symlink_to(path)
    source = export_folder(export_cache)

    def cached_export():
        target = onnx_encoder.export_path(str(folder), str(folder), tmp_path / "cache").parent
        target.mkdir(parents=True, exist_ok=True)
        for name in ("model.onnx", onnx_encoder.REFERENCE_FILE):
            (target / name).unlink(missing_ok=True)
            (target / name).symlink_to(source / name)

    cached_export()
    linked = QueryEmbedder(str(folder), cache_dir=tmp_path / "cache")
    assert np.abs(linked.embed(QUERIES) - model_vectors).max() <= onnx_encoder.TOLERANCE
    assert linked.backend_used == "light"

    (folder / "tokenizer.json").unlink()  # the key changes with the files: the same export under the new key
    cached_export()
    without = QueryEmbedder(str(folder), cache_dir=tmp_path / "cache")
    assert np.abs(without.embed(QUERIES[:2]) - model_vectors[:2]).max() < 1e-5
    assert without.backend_used == "torch"


@pytest.mark.slow
def test_an_error_while_embedding_falls_back_to_the_model(export_cache, model_vectors, monkeypatch):
    embedder = QueryEmbedder(cache_dir=export_cache)
    light = embedder.light_encoder()
    assert light is not None

    def broken(*args, **kwargs):
        raise RuntimeError("the runtime fell over")

    monkeypatch.setattr(light, "session", type("Broken", (), {"run": broken})())
    assert np.abs(embedder.embed_query(QUERIES[0]) - model_vectors[0]).max() < 1e-5
    assert embedder.backend_used == "torch" and embedder.light_encoder() is None


SEARCH_IN_A_FRESH_PROCESS = """
import json, sys
from archive.db import open_db
from archive.query_embedding import get_embedder
from archive.search import search
search(open_db(sys.argv[1]), "how do you test machine learning models", mode="hybrid")
embedder = get_embedder()
print(json.dumps({"backend": embedder.backend_used, "vector": embedder.embed_query(sys.argv[2]).tolist(),
                  "loaded": sorted(m for m in ("torch", "sentence_transformers", "transformers") if m in sys.modules)}))
"""


@pytest.mark.slow
def test_a_search_in_a_fresh_process_does_not_import_torch(export_cache, model_vectors, tmp_path, db_path):
    environment = {"PODARCHIVE_MODEL_CACHE": str(export_cache), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                   "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", SEARCH_IN_A_FRESH_PROCESS, str(db_path), QUERIES[2]],
                          cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120, check=True)
    report = json.loads(done.stdout)
    assert report["backend"] == "light" and report["loaded"] == []
    assert np.abs(np.asarray(report["vector"]) - model_vectors[2]).max() <= onnx_encoder.TOLERANCE

    environment["PODARCHIVE_MODEL_CACHE"] = str(tmp_path / "no exports here")  # a fresh cache: the model itself
    done = subprocess.run([sys.executable, "-c", SEARCH_IN_A_FRESH_PROCESS, str(db_path), QUERIES[2]],
                          cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300, check=True)
    report = json.loads(done.stdout)
    assert report["backend"] == "torch" and "torch" in report["loaded"]
    assert np.abs(np.asarray(report["vector"]) - model_vectors[2]).max() < 1e-5
