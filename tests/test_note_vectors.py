"""Search by meaning over takeaways and episode notes (archive/note_vectors.py): a published episode with notes and
no transcript is found by semantic and hybrid search, takeaways by what they say, drafts never; the index stage
and publishing embed each text once."""

from dataclasses import dataclass

import numpy as np
import pytest

from archive import index_refresh, note_vectors, studio
from archive.db import open_db
from archive.fts_tables import ensure_fts
from archive.records import Segment
from archive.search import search
from fakes import FakeEmbedder, RecordingEmbedder
from ingest.index_run import build_index
from search_helpers import add_episode, add_segments, add_show, index_all

WORD = "axolotlry"  # only in the notes of the episode without a transcript
TAKEAWAY_WORD = "pangolinism"  # only in one takeaway


@dataclass(frozen=True)
class Producer:
    id: int
    name: str


ANN = Producer(1, "Ann")


@pytest.fixture(params=["small", "large"])
def archive(request, tmp_path, monkeypatch):
    """Two transcribed episodes (over 50 passages: more than a ranked list holds) and a hosted show's episode
    with notes and a takeaway but no transcript, indexed by the index stage; "large" ranks passages through the
    side indexes (notes are ranked exactly either way)."""
    if request.param == "large":
        monkeypatch.setattr(index_refresh, "LARGE_ARCHIVE_PASSAGES", 1)
    db = open_db(tmp_path / "archive.db")
    show = add_show(db, "Data Show")
    for i, topic in enumerate(("relational databases and query planners", "feature stores for machine learning")):
        episode = add_episode(db, show, f"g{i}", f"Episode {i}", "2024-01-0{}".format(i + 1))
        add_segments(db, episode, [Segment(t, t + 30, f"Today we talk about {topic}, part {t}.")
                                   for t in range(0, 1500, 30)])
    hosted = studio.create_show(db, "Island Radio")
    episode = studio.create_episode(db, hosted, {
        "title": "Salamanders at home", "published": "2024-02-01",
        "notes_markdown": f"All about **{WORD}**: keeping salamanders in an aquarium.",
        "takeaways": [{"title": "Water first", "text": f"Good {TAKEAWAY_WORD} starts with clean water.",
                       "start": 95}],
    }, ANN)
    studio.publish(db, episode, ANN)
    embedder = RecordingEmbedder()
    build_index(db, embedder)
    index_refresh.forget()
    db.episode, db.embedder = episode, embedder
    yield db
    index_refresh.forget()
    db.conn.close()


def test_notes_are_cut_into_even_chunks_headed_by_the_title():
    assert note_vectors.chunks("Title", None) == ["Title"]
    assert note_vectors.chunks(None, "  a  b ") == ["a b"]
    assert note_vectors.chunks("Why?", "a b") == ["Why? a b"]
    notes = " ".join(f"w{i}" for i in range(170))
    pieces = note_vectors.chunks("Title", notes, words_per_chunk=160)
    assert [len(p.split()) for p in pieces] == [86, 86]  # "Title." + 85 words each
    assert all(p.startswith("Title. ") for p in pieces)
    assert " ".join(" ".join(p.split()[1:]) for p in pieces) == notes
    assert len(note_vectors.chunks("T", "word " * 10_000)) == note_vectors.MAX_CHUNKS


@pytest.mark.parametrize("mode", ["semantic", "hybrid"])
def test_an_episode_with_notes_and_no_transcript_is_found_by_meaning(archive, mode):
    results = search(archive, f"{WORD} salamanders", mode=mode, embedder=FakeEmbedder())
    assert results[0].episode_id == archive.episode and results[0].kind in ("episode", "takeaway")
    assert any(r.kind == "episode" and r.episode_id == archive.episode and r.start == 0 for r in results)


def test_merge_notes_puts_all_kinds_on_one_scale_and_lifts_an_episodes_best_passage(archive):
    from archive.search import Hit, merge_notes

    transcribed = [r[0] for r in archive.execute("SELECT id FROM passages WHERE episode_id = 1 ORDER BY id LIMIT 2")]
    passages = [Hit("passage", transcribed[0], 0.5), Hit("passage", 10_000, 0.4), Hit("passage", transcribed[1], 0.3)]
    notes = [Hit("episode", archive.episode, 0.9), Hit("takeaway", 7, 0.45), Hit("episode", 1, 0.42)]
    assert merge_notes(archive, passages, notes, 10) == [
        Hit("episode", archive.episode, 0.9),  # no transcript: its notes are the hit
        Hit("passage", transcribed[0], 0.5),
        Hit("takeaway", 7, 0.45),
        Hit("passage", transcribed[1], 0.42),  # episode 1's next passage takes its notes' place and score
        Hit("passage", 10_000, 0.4),
    ]
    assert merge_notes(archive, passages, notes, 2) == notes[:1] + passages[:1]
    assert merge_notes(archive, passages, [], 10) == passages


def test_a_takeaway_is_found_by_meaning_at_its_time(archive):
    results = search(archive, f"{TAKEAWAY_WORD} clean water", mode="semantic", embedder=FakeEmbedder())
    top = results[0]
    assert (top.kind, top.episode_id, top.start) == ("takeaway", archive.episode, 95.0)
    assert top.url.endswith("?t=95")


def test_semantic_mode_still_ranks_passages(archive):
    results = search(archive, "query planners relational databases", mode="semantic", embedder=FakeEmbedder())
    assert results[0].episode_guid == "g0" and "passage" in {r.kind for r in results}


def test_filters_apply_to_notes_and_a_speaker_filter_leaves_them_out(archive):
    show = archive.execute("SELECT show_id FROM episodes WHERE id = ?", [archive.episode]).fetchone()[0]
    other = archive.execute("SELECT id FROM shows WHERE id != ?", [show]).fetchone()[0]
    query, embedder = f"{WORD} salamanders", FakeEmbedder()
    assert search(archive, query, mode="semantic", show=show, embedder=embedder)[0].episode_id == archive.episode
    assert all(r.episode_id != archive.episode for r in search(archive, query, mode="semantic", show=other,
                                                                 embedder=embedder))
    assert all(r.episode_id != archive.episode for r in search(archive, query, mode="semantic", until="2024-01-31",
                                                                 embedder=embedder))
    person = archive["people"].insert({"name": "Sam Host", "name_key": "sam host", "slug": "sam-host"}).last_pk
    for episode_id in (archive.episode, 1):
        archive["episode_people"].insert({"episode_id": episode_id, "person_id": person, "role": "host",
                                          "source": "feed"})
    spoken = search(archive, query, mode="semantic", speaker="sam-host", embedder=embedder)
    assert spoken and {r.kind for r in spoken} == {"passage"}


def test_the_index_stage_embeds_takeaways_and_notes_once(archive):
    embedder = archive.embedder
    texts = set(embedder.texts)
    assert f"Salamanders at home. All about {WORD}: keeping salamanders in an aquarium." in texts
    assert f"Water first. Good {TAKEAWAY_WORD} starts with clean water." in texts
    assert {"Episode 0", "Episode 1"} <= texts  # title-only notes of the transcribed episodes
    embedder.texts.clear()
    report = build_index(archive, embedder)
    assert report.notes == len(note_vectors.documents(archive)) >= 4
    assert report.embeddings_computed == 0 and embedder.texts == []
    archive["episodes"].update(archive.episode, {"notes_text": "Newts, not salamanders."})
    build_index(archive, embedder)
    assert embedder.texts == ["Salamanders at home. Newts, not salamanders."]


def test_a_draft_is_never_found_by_its_notes_and_is_once_published(tmp_path):
    db = open_db(tmp_path / "archive.db")
    show = add_show(db, "Data Show")
    add_segments(db, add_episode(db, show, "g0", "Episode 0"), [Segment(0, 30, "Databases and salamanders.")])
    embedder = FakeEmbedder()
    index_all(db, embedder)
    draft = studio.create_episode(db, show, {"title": "Draft", "notes_markdown": f"{WORD} and more {WORD}",
                                             "takeaways": [{"title": WORD, "text": "Yes.", "start": 1}]}, ANN)
    build_index(db, embedder)  # the draft's notes have vectors: search must still leave them out
    for mode in ("semantic", "hybrid"):
        assert all(r.episode_id != draft for r in search(db, WORD, mode=mode, embedder=embedder, limit=50)), mode
    result = studio.publish(db, draft, ANN, embedder=embedder)
    assert result["search"]["notes"] == 2 and result["search"]["vectors_missing"] == 0
    for mode in ("semantic", "hybrid"):
        assert search(db, WORD, mode=mode, embedder=embedder)[0].episode_id == draft, mode
    studio.unpublish(db, draft, ANN)
    assert all(r.episode_id != draft for r in search(db, WORD, mode="semantic", embedder=embedder, limit=50))
    index_refresh.forget()


def test_publish_and_edit_embed_the_notes_the_stale_index_of_a_site_has_not_seen(tmp_path, monkeypatch):
    """A site serves a stale index while it is rebuilt in the background; the episodes producers published or
    edited since it was built are scored from the archive, so they are found at once in every process."""
    db = open_db(tmp_path / "archive.db")
    show = add_show(db, "Data Show")
    add_segments(db, add_episode(db, show, "g0", "Episode 0"), [Segment(0, 30, "Databases and salamanders.")])
    ensure_fts(db)
    embedder = FakeEmbedder()
    index_all(db, embedder)
    episode = studio.create_episode(db, show, {"title": "Fresh", "notes_markdown": f"About {WORD}."}, ANN)
    stale = note_vectors.note_index(db, embedder.name)
    assert episode not in stale.episodes
    # as if refreshed just now: the stale index keeps serving, with no rebuild in the background
    monkeypatch.setitem(index_refresh._last_refresh, (index_refresh.cache_key(db), "notes", embedder.name),
                        float("inf"))
    try:
        studio.publish(db, episode, ANN, embedder=embedder)
        with index_refresh.serving_stale():
            assert note_vectors.note_index(db, embedder.name) is stale
            assert search(db, WORD, mode="semantic", embedder=embedder)[0].episode_id == episode
            studio.update_episode(db, episode, {"notes_markdown": "About newts."}, ANN, embedder=embedder)
            results = search(db, "newts", mode="semantic", embedder=embedder)
            assert results[0].episode_id == episode and "newts" in results[0].snippet
            assert note_vectors.ranked(db, embedder.embed([WORD])[0], embedder.name, 10)["episode"][0][1] < 0.5
    finally:
        index_refresh.forget()


def test_ranked_gives_each_episode_once_at_its_best_chunk(tmp_path, monkeypatch):
    db = open_db(tmp_path / "archive.db")
    show = add_show(db, "Show")
    long_notes = " ".join(["filler"] * 400 + [WORD] * 20)  # three chunks of 140 words
    episode = add_episode(db, show, "g", "Long notes", notes=long_notes)
    embedder = FakeEmbedder()
    build_index(db, embedder)
    docs = note_vectors.documents(db, [episode])
    assert len(docs) == 3 and {d["kind"] for d in docs} == {"episode"}
    found = note_vectors.ranked(db, embedder.embed([WORD])[0], embedder.name, 10)
    best = max(float(np.dot(embedder.embed([d["text"]])[0], embedder.embed([WORD])[0])) for d in docs)
    assert found["episode"] == [(episode, pytest.approx(best, abs=1e-5))] and found["takeaway"] == []
    assert note_vectors.ranked(db, embedder.embed([WORD])[0], embedder.name, 10, hidden=np.array([episode])) == {
        "takeaway": [], "episode": []}
    index_refresh.forget()


def test_ranked_gives_each_episodes_best_notes_chunk_as_context():
    from archive.db import memory_db
    from ingest.search_index import ensure_note_embeddings

    embedder = FakeEmbedder()
    db = memory_db()
    show = add_show(db, "Show")
    near = add_episode(db, show, "near", "Vector search", notes=" ".join(["vector search recall"] * 200))
    far = add_episode(db, show, "far", "Gardening", notes="tomatoes and roses")
    ensure_note_embeddings(db, embedder)
    query = embedder.embed(["vector search recall"])[0]
    context: dict[int, float] = {}
    found = note_vectors.ranked(db, query, embedder.name, 1, context=context)
    assert set(context) == {near, far} and context[near] > context[far]
    assert found["episode"] == [(near, pytest.approx(context[near]))]  # the best chunk, as the ranking has it
