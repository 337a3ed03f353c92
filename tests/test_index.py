"""The index stage: embeddings keyed by model and content hash, FTS5 tables, the side indexes and build_index."""

import json
import time

import numpy as np
import pytest

from archive import index_refresh, keyword_index, vector_index
from archive.db import open_db
from archive.errors import StageError
from archive.fts_tables import ensure_fts, rebuild_fts
from archive.records import Segment
from archive.vectors import ensure_embeddings
from fakes import FakeEmbedder
from ingest.index_run import build_index, understand_episode
from ingest.understand import UnderstandOptions
from search_helpers import add_episode, add_segments, add_show, index_all


class CountingEmbedder(FakeEmbedder):
    def __init__(self, name="fake-hash-embedder", dims=64, fail_after_calls=None):
        super().__init__(dims)
        self.name = name
        self.texts: list[str] = []
        self.calls = 0
        self.fail_after_calls = fail_after_calls

    def embed(self, texts):
        if self.fail_after_calls is not None and self.calls >= self.fail_after_calls:
            raise KeyboardInterrupt("killed")
        self.calls += 1
        self.texts.extend(texts)
        return super().embed(texts)


def rows(*texts):
    import hashlib

    return [{"content_hash": hashlib.sha256(t.encode()).hexdigest(), "text": t} for t in texts]


def test_embeddings_are_normalised_in_row_order_and_stored(db):
    embedder = CountingEmbedder()
    batch = rows("feature stores", "kubernetes operators", "feature stores")
    vectors = ensure_embeddings(db, batch, embedder)
    assert vectors.dtype == np.float32 and vectors.shape == (3, 64)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1)
    assert np.array_equal(vectors[0], vectors[2])
    assert np.allclose(vectors[1], FakeEmbedder().embed(["kubernetes operators"])[0])
    assert embedder.texts == ["feature stores", "kubernetes operators"]  # the duplicate embedded once
    assert db["embeddings"].count == 2


def test_embeddings_are_not_recomputed_on_rerun(db):
    embedder = CountingEmbedder()
    first = ensure_embeddings(db, rows("a b", "c d"), embedder)
    embedder.texts.clear()
    again = ensure_embeddings(db, rows("c d", "a b", "e f"), embedder)
    assert embedder.texts == ["e f"]
    assert np.array_equal(again[0], first[1]) and np.array_equal(again[1], first[0])


def test_a_changed_model_embeds_again(db):
    ensure_embeddings(db, rows("a b", "c d"), CountingEmbedder())
    other = CountingEmbedder(name="other-model", dims=32)
    vectors = ensure_embeddings(db, rows("a b", "c d"), other)
    assert other.texts == ["a b", "c d"] and vectors.shape == (2, 32)
    assert {r["model"] for r in db["embeddings"].rows} == {"fake-hash-embedder", "other-model"}


def test_a_killed_run_keeps_finished_batches(db):
    texts = [f"text number {i}" for i in range(10)]
    killed = CountingEmbedder(fail_after_calls=2)
    with pytest.raises(KeyboardInterrupt):
        ensure_embeddings(db, rows(*texts), killed, batch_size=3)
    assert db["embeddings"].count == 6
    resumed = CountingEmbedder()
    ensure_embeddings(db, rows(*texts), resumed, batch_size=3)
    assert resumed.texts == texts[6:]


def test_no_rows_embed_nothing(db):
    embedder = CountingEmbedder()
    assert ensure_embeddings(db, [], embedder).shape[0] == 0
    assert embedder.calls == 0


def fts_rowids(db, table, match):
    return [r[0] for r in db.execute(f"SELECT rowid FROM {table}_fts WHERE {table}_fts MATCH ?", [match])]


def test_fts_is_idempotent_and_kept_current_by_triggers(db):
    show = add_show(db, "Show")
    episode = add_episode(db, show, "g1", "Kubernetes operators", notes="We discuss feature stores")
    add_segments(db, episode, [Segment(0, 30, "Monitoring models in production."), Segment(30, 70, "Drift.")])
    assert ensure_fts(db) == ["passages_fts", "episodes_fts", "takeaways_fts", "people_fts"]
    ensure_fts(db)  # again: nothing changes, nothing breaks
    assert fts_rowids(db, "episodes", '"feature" AND "stores"') == [episode]
    assert len(fts_rowids(db, "passages", '"monitoring"')) == 1
    add_segments(db, episode, [Segment(0, 40, "Now it is all about vector databases.")])  # passages replaced
    assert fts_rowids(db, "passages", '"monitoring"') == []
    assert len(fts_rowids(db, "passages", '"vector"')) == 1
    db.execute("DELETE FROM passages_fts")  # e.g. a broken index
    rebuild_fts(db)
    assert len(fts_rowids(db, "passages", '"vector"')) == 1


def test_the_fts_migration_keeps_the_tables_an_older_index_made_and_fills_missing_ones(tmp_path, monkeypatch):
    """Before m012 the index stage made the FTS5 tables (sqlite-utils' enable_fts); an archive never indexed had
    none. Both migrate to the schema of a new archive, with every row searchable."""
    from archive import db as store
    from archive.fts_tables import FTS_TABLES

    names = [name for name, _ in store.MIGRATIONS]
    paths = {"indexed": tmp_path / "indexed.db", "never indexed": tmp_path / "never.db"}
    with monkeypatch.context() as before:
        before.setattr(store, "MIGRATIONS", store.MIGRATIONS[:names.index("m012_full_text_search")])
        for kind, path in paths.items():
            db = store.open_db(path)
            add_episode(db, add_show(db, "Show"), "g1", "Kubernetes operators", notes="We discuss feature stores")
            if kind == "indexed":
                for table, columns in FTS_TABLES.items():
                    db[table].enable_fts(columns, create_triggers=True, tokenize="porter", replace=True)
            db.conn.close()

    def schema(db):
        return db.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()

    for path in paths.values():
        db = store.open_db(path)
        assert schema(db) == schema(store.memory_db())
        assert fts_rowids(db, "episodes", '"feature" AND "stores"') == [1]
        add_episode(db, 1, "g2", "Vector databases")
        assert fts_rowids(db, "episodes", '"vector"') == [2]


def synthetic_vectors(count, dims=48, clusters=40, seed=7):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dims))
    vectors = centres[rng.integers(0, clusters, count)] + 0.6 * rng.normal(size=(count, dims))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def store_vectors(db, vectors, episodes=4, model="synthetic"):
    show = add_show(db, "Synthetic")
    episode_ids = [add_episode(db, show, f"e{i}", f"Episode {i}") for i in range(episodes)]
    passages, embeddings = [], []
    for i, vector in enumerate(vectors):
        passages.append({"episode_id": episode_ids[i % episodes], "idx": i // episodes, "start": 0, "end": 1,
                         "text": f"passage {i}", "content_hash": f"h{i}"})
        embeddings.append({"model": model, "content_hash": f"h{i}", "dims": len(vector), "vector": vector.tobytes()})
    with db.conn:
        db["passages"].insert_all(passages, batch_size=1000)
        db["embeddings"].insert_all(embeddings, batch_size=1000)
    return episode_ids


def test_ann_agrees_with_exact_search(db):
    vectors = synthetic_vectors(4000)
    episode_ids = store_vectors(db, vectors)
    exact = vector_index.vector_index(db, "synthetic", large=False)
    ann = vector_index.vector_index(db, "synthetic", large=True, rebuild=True)
    assert exact.kind == "exact" and ann.kind == "ivf-pq4fs" and len(ann) == len(exact) == 4000
    rng = np.random.default_rng(1)
    overlap = []
    for i in rng.choice(4000, 50, replace=False):
        query = vectors[i] + 0.1 * rng.normal(size=vectors.shape[1]).astype(np.float32)
        query /= np.linalg.norm(query)
        truth = set(exact.search(query, 10).ids.tolist())
        overlap.append(len(truth & set(top_10(db, ann, query).ids.tolist())) / 10)
    assert np.mean(overlap) >= 0.9
    # filtered: only passages of the allowed episodes, exact or ANN alike, whether the ANN index scores the few
    # allowed vectors one by one (one episode: 1,000) or searches its cells for them (three: 3,000)
    rows = dict(db.execute("SELECT id, episode_id FROM passages").fetchall())
    for allowed in (np.array(episode_ids[:1]), np.array(episode_ids[1:])):
        assert (len(allowed) * 1000 > vector_index.EXACT_FILTERED_MAX) == (len(allowed) == 3)
        truth = exact.search(vectors[0], 10, allowed)
        candidates = ann.search(vectors[0], 10 * vector_index.REFINE_FACTOR, allowed)
        for hits in (truth, candidates, top_10(db, ann, vectors[0], allowed)):
            assert {rows[int(i)] for i in hits.ids} <= set(allowed.tolist())
        assert set(top_10(db, ann, vectors[0], allowed).ids.tolist()) == set(truth.ids.tolist())


def top_10(db, ann, query, allowed=None):
    """The approximate index's top 10 as search takes it: more candidates, re-scored with the exact vectors."""
    return vector_index.refine(db, "synthetic", query, ann.search(query, 10 * vector_index.REFINE_FACTOR, allowed), 10)


def test_a_filtered_ann_search_probes_more_cells_the_fewer_vectors_it_may_return(db, monkeypatch):
    store_vectors(db, synthetic_vectors(4000))
    ann = vector_index.vector_index(db, "synthetic", large=True, rebuild=True)
    assert ann.nprobe == vector_index.DEFAULT_NPROBE
    cells = ann.index.nlist
    monkeypatch.setattr(vector_index, "EXACT_FILTERED_MAX", 50)
    ann.nprobe = 4
    assert ann.filtered_nprobe(4000) == 4  # a filter that leaves nothing out probes as many cells as no filter
    assert ann.filtered_nprobe(3000) == 6  # 4 x 4/3, rounded up
    assert ann.filtered_nprobe(100) == 4 * vector_index.FILTERED_PROBE_FACTOR  # at most FILTERED_PROBE_FACTOR times
    assert ann.filtered_nprobe(50) == cells  # so few that every cell is searched: none of them can be missed
    ann.nprobe = cells
    assert ann.filtered_nprobe(100) == cells  # never more cells than there are


def test_side_indexes_are_saved_and_rebuilt_when_the_archive_changes(tmp_path, monkeypatch):
    db = open_db(tmp_path / "big.db")
    vectors = synthetic_vectors(1200)
    episode_ids = store_vectors(db, vectors)
    ensure_fts(db)
    monkeypatch.setattr(index_refresh, "LARGE_ARCHIVE_PASSAGES", 1000)
    built = vector_index.vector_index(db, "synthetic")
    keywords = keyword_index.keyword_index(db)
    assert built.kind == "ivf-pq4fs"
    assert (tmp_path / "big.db.index" / "vectors-synthetic.faiss").exists()
    assert (tmp_path / "big.db.index" / "keywords").is_dir()

    index_refresh.forget(db)  # a new process: loads what is on disk, builds nothing
    monkeypatch.setattr(vector_index.IVFVectorIndex, "build", lambda *a, **k: pytest.fail("rebuilt a fresh index"))
    monkeypatch.setattr(keyword_index.KeywordIndex, "build", lambda *a, **k: pytest.fail("rebuilt a fresh index"))
    loaded = vector_index.vector_index(db, "synthetic")
    assert loaded.version == built.version and loaded is not built
    assert keyword_index.keyword_index(db).version == keywords.version
    for allowed in (None, episode_ids[:1], episode_ids[1:]):  # loaded, it searches as built, filtered or not
        allowed = None if allowed is None else np.array(allowed)
        assert np.array_equal(loaded.search(vectors[0], 20, allowed).ids, built.search(vectors[0], 20, allowed).ids)
    monkeypatch.undo()
    monkeypatch.setattr(index_refresh, "LARGE_ARCHIVE_PASSAGES", 1000)

    new_vector = synthetic_vectors(1, seed=99)[0]
    episode = db.execute("SELECT min(id) FROM episodes").fetchone()[0]
    with db.conn:
        db["passages"].insert({"episode_id": episode, "idx": 9999, "start": 5, "end": 9,
                               "text": "zeppelin maintenance", "content_hash": "new"})
        db["embeddings"].insert({"model": "synthetic", "content_hash": "new", "dims": len(new_vector),
                                 "vector": new_vector.tobytes()})
    new_id = db.execute("SELECT id FROM passages WHERE content_hash = 'new'").fetchone()[0]
    rebuilt = vector_index.vector_index(db, "synthetic")
    assert rebuilt.version > built.version and len(rebuilt) == 1201
    assert new_id in rebuilt.search(new_vector, 5).ids.tolist()
    assert keyword_index.keyword_index(db).search(['"zeppelin"'], "passage", 5) == [(new_id, pytest.approx(
        keyword_index.keyword_index(db).search(['"zeppelin"'], "passage", 5)[0][1]))]
    index_refresh.forget(db)
    assert vector_index.vector_index(db, "synthetic").version == rebuilt.version  # saved again, loads


def test_a_vector_index_saved_in_another_format_is_rebuilt(tmp_path, monkeypatch):
    db = open_db(tmp_path / "big.db")
    store_vectors(db, synthetic_vectors(1200))
    built = vector_index.vector_index(db, "synthetic", large=True)
    meta = tmp_path / "big.db.index" / "vectors-synthetic.json"
    saved = json.loads(meta.read_text())
    assert saved["format"] == vector_index.VECTOR_FORMAT and saved["kind"] == built.kind == "ivf-pq4fs"
    meta.write_text(json.dumps({**saved, "format": vector_index.VECTOR_FORMAT - 1}))  # as an older version saved it
    index_refresh.forget(db)
    builds = []
    original = vector_index.IVFVectorIndex.build.__func__
    monkeypatch.setattr(vector_index.IVFVectorIndex, "build",
                        classmethod(lambda *a, **k: builds.append(1) or original(*a, **k)))
    assert vector_index.vector_index(db, "synthetic", large=True).kind == "ivf-pq4fs" and builds == [1]
    assert json.loads(meta.read_text())["format"] == vector_index.VECTOR_FORMAT


def test_a_small_large_archive_gets_8_bit_codes(db):
    """Too few vectors to train 4-bit product quantisers (a large archive pruned, or a test's): 8-bit codes."""
    vectors = synthetic_vectors(vector_index.PQ_MIN_VECTORS - 1)
    store_vectors(db, vectors)
    ann = vector_index.vector_index(db, "synthetic", large=True)
    assert ann.kind == "ivf-sq8" and len(ann) == len(vectors)
    passage = db.execute("SELECT id FROM passages WHERE content_hash = 'h5'").fetchone()[0]
    assert int(ann.search(vectors[5], 1).ids[0]) == passage


def make_transcribed(db, count=3):
    show = add_show(db, "Show")
    ids = []
    for i in range(count):
        episode = add_episode(db, show, f"g{i}", f"Episode {i} about pipelines", "2024-01-0%dT00:00:00+00:00" % (i + 1))
        add_segments(db, episode, [Segment(t, t + 20, f"Sentence {t} of episode {i} about data pipelines.")
                                   for t in range(0, 200, 20)])
        ids.append(episode)
    return ids


def test_build_index_understands_every_episode_and_skips_unchanged_work(db):
    ids = make_transcribed(db)
    embedder = CountingEmbedder()
    seen = []
    report = build_index(db, embedder, progress=lambda done, total, row: seen.append((done, total, row["id"])))
    assert (report.episodes, report.done, report.skipped, report.failed) == (3, 3, 0, 0)
    assert report.passages == db["passages"].count > 0
    assert report.embeddings_computed == db["embeddings"].count >= report.passages
    assert seen == [(1, 3, ids[0]), (2, 3, ids[1]), (3, 3, ids[2])]
    assert "passages_fts" in db.table_names()
    embedder.texts.clear()
    again = build_index(db, embedder)
    assert (again.done, again.skipped, again.embeddings_computed) == (0, 3, 0)
    assert embedder.texts == []


def test_build_index_embeds_a_short_text_once_however_many_episodes_use_it(db):
    make_transcribed(db, count=4)  # the same words all through: the same key phrases in every episode
    embedder = CountingEmbedder()
    build_index(db, embedder)
    short = [text for text in embedder.texts if len(text) <= 80]
    assert short and len(short) == len(set(short))
    fresh = CountingEmbedder()
    for episode in transcribed_ids(db):  # episode by episode without the run's memo, phrases come again
        understand_episode(db, episode, fresh, options=UnderstandOptions(force=True))
    assert len([t for t in fresh.texts if len(t) <= 80]) > len(set(t for t in fresh.texts if len(t) <= 80))


def transcribed_ids(db):
    return [row["id"] for row in db.query("SELECT episode_id AS id FROM transcripts ORDER BY episode_id")]


def test_build_index_goes_on_after_a_failing_episode(db, monkeypatch):
    import ingest.index_run

    ids = make_transcribed(db)
    real = ingest.index_run.understand_episode

    def flaky(db, episode_id, *args, **kwargs):
        if episode_id == ids[1]:
            raise StageError("passages", ValueError("broken transcript"))
        return real(db, episode_id, *args, **kwargs)

    monkeypatch.setattr(ingest.index_run, "understand_episode", flaky)
    report = build_index(db, CountingEmbedder())
    assert (report.done, report.failed) == (2, 1)
    assert report.failures[0][0] == "Show / g1" and "broken transcript" in report.failures[0][2]


def test_side_index_search_matches_fts5_ranking(monkeypatch):
    """Tantivy (large archives) and FTS5 (small ones) find the same passages for the same query."""
    from archive.db import memory_db
    from archive.search import search

    db = memory_db()
    show = add_show(db, "Show")
    topics = ["kubernetes clusters", "feature stores", "career advice", "data pipelines", "model monitoring"]
    for i, topic in enumerate(topics):
        episode = add_episode(db, show, f"g{i}", f"Episode {i}")
        add_segments(db, episode, [Segment(t, t + 30, f"Part {t} is about {topic} and more {topic}. Also coffee.")
                                   for t in range(0, 300, 30)])
    index_all(db, FakeEmbedder())
    small = search(db, "feature stores", mode="keyword", limit=5)
    monkeypatch.setattr(index_refresh, "LARGE_ARCHIVE_PASSAGES", 0)
    large = search(db, "feature stores", mode="keyword", limit=5)
    assert {r.episode_guid for r in small} == {r.episode_guid for r in large} == {"g1"}
    assert [r.snippet.count("<mark>") > 0 for r in large] == [True] * len(large)


@pytest.fixture
def topics_archive(monkeypatch):
    """One short passage per episode (guids g0, g1, ...), searched through the large-archive side indexes."""
    from archive.db import memory_db

    db = memory_db()
    show = add_show(db, "Show")
    topics = ["relational databases", "data pipelines", "databases feeding pipelines", "running marathons"]
    for i, topic in enumerate(topics):
        episode = add_episode(db, show, f"g{i}", f"Episode {i}")
        add_segments(db, episode, [Segment(0, 30, f"Today: {topic}.")])
    index_all(db, FakeEmbedder())
    monkeypatch.setattr(index_refresh, "LARGE_ARCHIVE_PASSAGES", 0)
    yield db
    index_refresh.forget(db)


def keyword_guids(db, query: str) -> set[str]:
    from archive.search import search

    return {r.episode_guid for r in search(db, query, mode="keyword", limit=10)}


def passage_guids(db, found) -> set[str]:
    guids = dict(db.execute("SELECT p.id, e.guid FROM passages p JOIN episodes e ON e.id = p.episode_id"))
    return {guids[ref] for ref, _ in found}


def test_side_index_one_word_prefix_matches_words_that_begin_with_it(topics_archive):
    assert index_refresh.is_large(topics_archive)
    assert keyword_guids(topics_archive, "data") == {"g1"}
    assert keyword_guids(topics_archive, "data*") == {"g0", "g1", "g2"}  # "databases" is stored as "databas"
    assert keyword_guids(topics_archive, "DATABAS*") == {"g0", "g2"}
    assert keyword_guids(topics_archive, "running*") == {"g3"}  # stored as "run": found as the word, stemmed
    assert keyword_guids(topics_archive, "datab") == set()


def test_side_index_prefix_clauses_keep_and_or_semantics_and_the_episode_filter(topics_archive):
    index = keyword_index.keyword_index(topics_archive)
    clauses = ['"data"*', '"pipelines"']
    assert passage_guids(topics_archive, index.search(clauses, "passage", 10, "AND")) == {"g1", "g2"}
    assert passage_guids(topics_archive, index.search(['"databas"*', '"pipelines"'], "passage", 10, "AND")) == {"g2"}
    assert passage_guids(topics_archive, index.search(['"rel"*', '"marathons"'], "passage", 10, "OR")) == {"g0", "g3"}
    g0 = topics_archive.execute("SELECT id FROM episodes WHERE guid = 'g0'").fetchone()[0]
    assert passage_guids(topics_archive, index.search(['"data"*'], "passage", 10, "OR", np.array([g0]))) == {"g0"}


DATA_EPISODES = {"g0", "g1", "g2"}


@pytest.mark.parametrize("query, guids", [
    ("a.b*", set()), ("(x*", set()), ("c++*", set()), ("da$*", set()), ("(da)*", set()), ("data.*", {"g1"}),
    ("[da*", DATA_EPISODES), ("\\da*", DATA_EPISODES), ("über*", set()), ("日本*", set()), ("ǅa*", set()),
    ("🎙️*", set()), ("é" * 900 + "*", set()),
])
def test_side_index_prefix_of_regex_syntax_or_odd_unicode_never_raises(topics_archive, query, guids):
    assert keyword_guids(topics_archive, query) == guids


@pytest.mark.parametrize("clause", ['"a.b"*', '"(x"*', '"c++"*', '"da|ta"*', '"\\"*', '"[*"*', '"🎙"*'])
def test_side_index_escapes_regex_syntax_in_a_prefix_clause(topics_archive, clause):
    """parse_query leaves only letters and digits in a word; the index does not rely on it."""
    assert keyword_index.keyword_index(topics_archive).search([clause], "passage", 5) == []


def test_the_site_searches_a_stale_index_while_it_rebuilds_in_the_background(tmp_path):
    db = open_db(tmp_path / "stale.db")
    show = db["shows"].insert({"feed_url": "file:///x", "title": "S"}).last_pk
    episode = db["episodes"].insert({"show_id": show, "guid": "g", "title": "E"}).last_pk
    embedder = FakeEmbedder()

    def add_passage(idx, text):
        import hashlib

        h = hashlib.sha256(text.encode()).hexdigest()
        db["passages"].insert({"episode_id": episode, "idx": idx, "start": idx * 40.0, "end": idx * 40.0 + 40,
                               "text": text, "content_hash": h})
        db["embeddings"].insert({"model": embedder.name, "content_hash": h, "dims": embedder.dims,
                                 "vector": embedder.embed([text])[0].tobytes()}, replace=True)

    add_passage(0, "testing machine learning models")
    first = vector_index.vector_index(db, embedder.name)
    assert len(first) == 1
    add_passage(1, "feature stores and data pipelines")
    with index_refresh.serving_stale():
        served = vector_index.vector_index(db, embedder.name)
    assert served is first  # no rebuild while the caller waits
    deadline = time.monotonic() + 20
    key = (index_refresh.cache_key(db), "vectors", embedder.name)
    while time.monotonic() < deadline and (len(index_refresh._cache[key]) != 2 or key in index_refresh._refreshing):
        time.sleep(0.05)
    assert isinstance(index_refresh._build_seconds[key], float)  # the CPU time it took, not the index it made
    add_passage(2, "streaming with kafka")
    with index_refresh.serving_stale():  # stale again: the refresh waits in proportion to that time
        assert len(vector_index.vector_index(db, embedder.name)) == 2
    assert len(vector_index.vector_index(db, embedder.name)) == 3
    index_refresh.forget(db)


def large_archive(path, monkeypatch, topics=("relational databases",)):
    """An archive on disk searched through the side indexes, and a function that adds one more episode."""
    db = open_db(path)
    show = add_show(db, "Show")
    for i, topic in enumerate(topics):
        add_segments(db, add_episode(db, show, f"g{i}", f"Episode {i}"), [Segment(0, 30, f"Today: {topic}.")])
    embedder = FakeEmbedder()
    index_all(db, embedder)
    monkeypatch.setattr(index_refresh, "LARGE_ARCHIVE_PASSAGES", 0)

    def add_marathons():
        add_segments(db, add_episode(db, show, "new", "New episode"), [Segment(0, 30, "Today: running marathons.")])
        index_all(db, embedder)

    return db, embedder, add_marathons


def test_a_stale_site_takes_the_index_another_process_saved_instead_of_building(tmp_path, monkeypatch):
    db, embedder, add_marathons = large_archive(tmp_path / "shared.db", monkeypatch,
                                                ["relational databases", "data pipelines"])
    ours = {"keywords": keyword_index.keyword_index(db), "vectors": vector_index.vector_index(db, embedder.name)}
    add_marathons()
    # Another server process rebuilds and saves; this one still holds the old indexes in memory.
    keyword_index.keyword_index(db, rebuild=True)
    vector_index.vector_index(db, embedder.name, rebuild=True)
    keys = {"keywords": (index_refresh.cache_key(db), "keywords"),
            "vectors": (index_refresh.cache_key(db), "vectors", embedder.name)}
    for name, key in keys.items():
        index_refresh._cache[key] = ours[name]
        index_refresh._last_refresh.pop(key, None)
    monkeypatch.setattr(keyword_index.KeywordIndex, "build", classmethod(lambda *a, **k: 1 / 0))
    monkeypatch.setattr(vector_index.IVFVectorIndex, "build", classmethod(lambda *a, **k: 1 / 0))
    with index_refresh.serving_stale():
        assert keyword_index.keyword_index(db) is ours["keywords"]
        assert vector_index.vector_index(db, embedder.name) is ours["vectors"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(index_refresh._cache[k] is ours[n] for n, k in keys.items()):
        time.sleep(0.05)
    assert len(index_refresh._cache[keys["vectors"]]) == 3
    assert index_refresh._cache[keys["keywords"]].search(['"marathons"'], "passage", 5)
    index_refresh.forget(db)


def test_background_rebuilds_wait_in_proportion_to_how_long_the_last_one_took(tmp_path, monkeypatch):
    db = open_db(tmp_path / "duty.db")
    key = ("k", "keywords")
    started = []
    index_refresh._build_seconds[key] = 10.0  # the last build took 10 s of CPU: the next waits 100 s
    index_refresh._last_refresh[key] = time.monotonic() - 60
    with index_refresh.serving_stale():
        assert index_refresh._serve_stale(db, key, object(), False, started.append)
    assert started == [] and key not in index_refresh._refreshing
    index_refresh._build_seconds[key] = 1.0  # 10 s: due
    with index_refresh.serving_stale():
        assert index_refresh._serve_stale(db, key, object(), False, started.append)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not started:
        time.sleep(0.05)
    assert len(started) == 1
    for table in (index_refresh._build_seconds, index_refresh._last_refresh):
        table.pop(key, None)


def test_a_stale_large_index_is_rebuilt_in_a_child_process(tmp_path, monkeypatch):
    db, embedder, add_marathons = large_archive(tmp_path / "child.db", monkeypatch)
    first = keyword_index.keyword_index(db)
    add_marathons()
    key = (index_refresh.cache_key(db), "keywords")
    index_refresh._last_refresh.pop(key, None)
    built_here = []
    monkeypatch.setattr(keyword_index.KeywordIndex, "build", classmethod(lambda *a, **k: built_here.append(1)))
    with index_refresh.serving_stale():
        assert keyword_index.keyword_index(db) is first
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and index_refresh._cache[key] is first:
        time.sleep(0.1)
    assert index_refresh._cache[key].version == index_refresh.search_version(db, "text")
    assert index_refresh._cache[key].search(['"marathons"'], "passage", 5) and not built_here
    assert index_refresh._build_seconds[key] > 0
    index_refresh.forget(db)


def test_a_new_server_process_starts_from_the_saved_index_however_old(tmp_path, monkeypatch):
    db, embedder, add_marathons = large_archive(tmp_path / "restart.db", monkeypatch)
    saved = {"keywords": keyword_index.keyword_index(db).version,
             "vectors": vector_index.vector_index(db, embedder.name).version}
    add_marathons()
    index_refresh.forget(db)  # as in a process that has not searched yet
    monkeypatch.setattr(index_refresh, "STALE_REFRESH_SECONDS", 3600.0)  # no background refresh in this test
    for key in [(index_refresh.cache_key(db), "keywords"), (index_refresh.cache_key(db), "vectors", embedder.name)]:
        index_refresh._last_refresh[key] = time.monotonic()
    monkeypatch.setattr(keyword_index.KeywordIndex, "build", classmethod(lambda *a, **k: 1 / 0))
    monkeypatch.setattr(vector_index.IVFVectorIndex, "build", classmethod(lambda *a, **k: 1 / 0))
    with index_refresh.serving_stale():
        assert keyword_index.keyword_index(db).version == saved["keywords"]
        assert vector_index.vector_index(db, embedder.name).version == saved["vectors"]
    for key in list(index_refresh._last_refresh):
        index_refresh._last_refresh.pop(key)
    index_refresh.forget(db)


@pytest.mark.parametrize("allowed", [[3, 7, 7, 49], [100], [], [0], list(range(50)), list(range(1, 60, 2))])
def test_episode_rows_are_the_rows_of_those_episodes(allowed):
    episodes = np.random.default_rng(0).integers(0, 50, 1000)
    wanted = np.asarray(allowed, dtype=np.int64)
    assert np.array_equal(vector_index.EpisodeRows(episodes).positions(wanted),
                          np.flatnonzero(np.isin(episodes, wanted)))
