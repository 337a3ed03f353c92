"""A draft is seen by producers only: no page, API answer, feed, export, search (FTS5, or the Tantivy and faiss
side indexes of a large archive, or the vectors of its notes and takeaways) or CLI read command shows it, until
it is published; unpublished, it is gone again."""

import json
from dataclasses import dataclass

import pytest
from click.testing import CliRunner

from archive import index_refresh, keyword_index, note_vectors, queries, studio
from archive.cli import cli
from archive.db import open_db
from archive.fts_tables import ensure_fts
from archive.passages import make_passages, save_passages
from archive.records import Segment
from archive.search import search
from archive.search_filters import unpublished_episodes
from archive.transcript_store import load_segments
from archive.vectors import ensure_embeddings
from fakes import FakeEmbedder
from ingest.search_index import ensure_note_embeddings
from web_fixtures import ArchiveBuilder, make_app, sample_archive

WORD = "quokkaphile"  # in the draft's notes, a takeaway and its transcript; nowhere else
TITLE = "Secrets of the Island"
GUEST, GUEST_SLUG = "Zelda Quokka", "zelda-quokka"  # credited on the draft only


@dataclass(frozen=True)
class Producer:
    id: int
    name: str


ANN = Producer(1, "Ann")


@pytest.fixture(params=["small", "large"])
def archive(request, tmp_path, monkeypatch):
    """The web tests' sample archive plus a draft, indexed for search (the draft's notes and takeaway embedded
    too, as the index stage does); "large" searches it through the side indexes (Tantivy, faiss IVF) as an
    archive of 20,000 passages would."""
    if request.param == "large":
        monkeypatch.setattr(index_refresh, "LARGE_ARCHIVE_PASSAGES", 1)
    path = tmp_path / "archive.db"
    db = open_db(path)
    ids = sample_archive(db).ids
    draft = studio.create_episode(db, ids["datacast"], {
        "title": TITLE, "published": "2031-01-01", "guests": [GUEST], "audio_url": "https://cdn.example.com/q.mp3",
        "notes_markdown": f"Notes about the **{WORD}** and their island.",
        "takeaways": [{"title": f"On the {WORD}", "text": "They live on an island.", "start": 5}],
        "chapters": [{"title": "Arrival", "start": 0}, {"title": "The island", "start": 10}],
    }, ANN)
    build = ArchiveBuilder(db)
    build.transcript(draft, [Segment(0.0, 10.0, f"Welcome, fellow {WORD}, to the island of small marsupials."),
                             Segment(10.0, 20.0, "Rottnest Island has thousands of them.")])
    audio = tmp_path / "q.mp3"
    audio.write_bytes(b"ID3" + b"\0" * 64)
    build.audio(draft, audio, "https://cdn.example.com/q.mp3")
    for (episode_id,) in db.execute("SELECT episode_id FROM transcripts").fetchall():
        save_passages(db, episode_id, make_passages(load_segments(db, episode_id)))
    ensure_embeddings(db, list(db.query("SELECT id, text, content_hash FROM passages")), FakeEmbedder())
    ensure_note_embeddings(db, FakeEmbedder())
    ensure_fts(db)
    index_refresh.forget()
    yield db, path, ids, draft
    index_refresh.forget()
    db.conn.close()


def seen(client, path, ids, draft) -> dict[str, bool]:
    """Where the draft shows, path by path."""
    def page(url):
        response = client.get(url)
        return response.status_code, response.get_data(as_text=True)

    def shows(url, *what):
        status, body = page(url)
        assert status in (200, 404), (url, status)
        return status == 200 and any(text in body for text in what or (TITLE, GUEST, WORD))

    def found(url):
        status, _ = page(url)
        assert status in (200, 404), (url, status)
        return status == 200

    def api(url):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        return response.get_json()

    show = ids["datacast"]
    found_in = {
        "home": shows("/"),
        "episodes": shows("/episodes"),
        "episodes of the year": shows("/episodes?year=2031"),
        "episodes with the guest": shows(f"/episodes?guest={GUEST_SLUG}"),
        "show page": shows(f"/shows/{show}"),
        "episode page": found(f"/episodes/{draft}"),
        "audio": found(f"/episodes/{draft}/audio"),
        "transcript.vtt": found(f"/episodes/{draft}/transcript.vtt"),
        "chapters.json": found(f"/episodes/{draft}/chapters.json"),
        "feed": shows(f"/shows/{show}/feed.xml"),
        "guests page": shows("/guests"),
        "guest page": found(f"/guests/{GUEST_SLUG}"),
        "api episode": found(f"/api/episodes/{draft}"),
        "api transcript": found(f"/api/episodes/{draft}/transcript"),
        "api guest": found(f"/api/guests/{GUEST_SLUG}"),
        "api episodes": draft in {e["id"] for e in api("/api/episodes?per_page=100")["episodes"]},
        "api guests": GUEST in {g["name"] for g in api("/api/guests")["guests"]},
        "api show count": api(f"/api/shows/{show}")["episode_count"] == 4,
    }
    for mode in ("keyword", "semantic", "hybrid"):
        found_in[f"search page {mode}"] = shows(f"/search?q={WORD}&mode={mode}", TITLE)  # the query is in the form
        results = api(f"/api/search?q={WORD}&mode={mode}")["results"]
        found_in[f"api search {mode}"] = any(r["episode_id"] == draft for r in results)
    return found_in


def cli_seen(path, guid) -> dict[str, bool]:
    runner = CliRunner()

    def ok(*args):
        return runner.invoke(cli, [*args, "--db", str(path)])

    result = ok("search", WORD, "--mode", "keyword", "--json")
    assert result.exit_code == 0, result.output
    return {
        "cli search": any(r["episode_guid"] == guid for r in json.loads(result.output)),
        "cli transcript": ok("transcript", guid).exit_code == 0,
        "cli takeaways": ok("takeaways", guid).exit_code == 0,
        "cli chapters": ok("chapters", guid).exit_code == 0,
    }


def library_seen(db, draft) -> dict[str, bool]:
    embedder = FakeEmbedder()
    found = {f"library search {mode}": any(r.episode_id == draft for r in search(db, WORD, mode=mode, limit=40,
                                                                                   embedder=embedder))
             for mode in ("keyword", "semantic", "hybrid")}
    found["library semantic notes"] = any(r.episode_id == draft and r.kind in ("takeaway", "episode") for r in
                                          search(db, WORD, mode="semantic", limit=40, embedder=embedder))
    found["library search by guest"] = bool(search(db, "island", mode="keyword", guest=GUEST_SLUG,
                                                   embedder=embedder))
    found["library years"] = 2031 in queries.episode_years(db)
    found["library count"] = queries.count_episodes(db) == 6
    return found


def test_a_draft_shows_nowhere_until_published_and_goes_again_when_unpublished(archive):
    db, path, ids, draft = archive
    guid = db["episodes"].get(draft)["guid"]
    app = make_app(path)
    client = app.test_client()

    def everywhere() -> dict[str, bool]:
        return {**seen(client, path, ids, draft), **cli_seen(path, guid), **library_seen(db, draft)}

    hidden = everywhere()
    assert not any(hidden.values()), [where for where, shown in hidden.items() if shown]

    result = studio.publish(db, draft, ANN, embedder=FakeEmbedder())
    assert result["state"] == "published"
    assert result["search"]["keyword"] == "fts5" and result["search"]["vectors_missing"] == 0
    assert result["search"]["side_indexes"] == ("filtered" if index_refresh.is_large(db) else None)
    assert unpublished_episodes(db) is None  # every episode published: searches run unfiltered again
    shown = everywhere()
    assert all(shown.values()), [where for where, visible in shown.items() if not visible]

    studio.unpublish(db, draft, ANN)
    again = everywhere()
    assert not any(again.values()), [where for where, visible in again.items() if visible]


def test_many_unpublished_documents_are_filtered_rather_than_dropped(archive, monkeypatch):
    """Past HIDDEN_PASSAGES_DROPPED passages (EXCLUDED_DOCUMENTS_DROPPED documents) of unpublished episodes, a
    vector search is filtered to the published episodes (a keyword search excludes the others) instead of asking
    for that many more results."""
    import archive.search as search_module

    db, _, _, draft = archive
    monkeypatch.setattr(search_module, "HIDDEN_PASSAGES_DROPPED", 0)
    monkeypatch.setattr(keyword_index, "EXCLUDED_DOCUMENTS_DROPPED", 0)
    for mode in ("semantic", "keyword"):
        results = search(db, f"{WORD} island testing data", mode=mode, embedder=FakeEmbedder(), limit=50)
        assert results and all(r.episode_id != draft for r in results), mode


def test_a_scheduled_episode_is_hidden_until_its_time(archive):
    db, path, ids, draft = archive
    studio.publish(db, draft, ANN, at="2999-01-01T00:00:00Z")
    client = make_app(path).test_client()
    assert client.get(f"/episodes/{draft}").status_code == 404
    assert studio.publish_due(db, now="2999-01-01T00:00:01Z") == [draft]
    assert client.get(f"/episodes/{draft}").status_code == 200


@pytest.mark.parametrize("archive", ["large"], indirect=True)
@pytest.mark.parametrize("dropped", [2_000, 0])
def test_the_side_indexes_themselves_leave_the_draft_out(archive, monkeypatch, dropped):
    """Below the result guard (search.materialise): the Tantivy ranking and the vector ranking never return a
    draft's documents, by dropping them from a longer list or (past the limits) by a filter."""
    import numpy as np

    import archive.search as search_module
    from archive.fts import parse_query, tantivy_clause

    db, _, _, draft = archive
    assert index_refresh.is_large(db)
    monkeypatch.setattr(keyword_index, "EXCLUDED_DOCUMENTS_DROPPED", dropped)
    monkeypatch.setattr(search_module, "HIDDEN_PASSAGES_DROPPED", dropped)
    hidden = np.array([draft])
    episode_of = {("passage", r[0]): r[1] for r in db.execute("SELECT id, episode_id FROM passages")}
    episode_of |= {("takeaway", r[0]): r[1] for r in db.execute("SELECT id, episode_id FROM takeaways")}
    episode_of |= {("episode", r[0]): r[0] for r in db.execute("SELECT id FROM episodes")}
    keywords = keyword_index.keyword_index(db)
    clauses = [tantivy_clause(c) for c in parse_query(f"{WORD} island testing").required()]
    for kind in keyword_index.KINDS:
        everything = {episode_of[(kind, ref)] for ref, _ in keywords.search(clauses, kind, 50, "OR")}
        kept = {episode_of[(kind, ref)] for ref, _ in keywords.search(clauses, kind, 50, "OR",
                                                                        excluded_episodes=hidden)}
        assert draft in everything and draft not in kept and kept == everything - {draft}, kind
    vector = FakeEmbedder().embed([f"{WORD} island"])[0]
    model = FakeEmbedder().name
    every = search_module.semantic_ranking(db, vector, model, None, 200)
    kept = search_module.semantic_ranking(db, vector, model, None, 200, hidden=hidden)
    assert draft in {episode_of[("passage", h.ref)] for h in every}
    assert draft not in {episode_of[("passage", h.ref)] for h in kept}
    assert [h.ref for h in kept] == [h.ref for h in every if episode_of[("passage", h.ref)] != draft][:len(kept)]
    every_note = note_vectors.ranked(db, vector, model, 200)  # takeaways and notes: exact, the same either way
    kept_note = note_vectors.ranked(db, vector, model, 200, hidden=hidden)
    for kind in note_vectors.KINDS:
        assert draft in {episode_of[(kind, ref)] for ref, _ in every_note[kind]}, kind
        assert [ref for ref, _ in kept_note[kind]] == [ref for ref, _ in every_note[kind]
                                                        if episode_of[(kind, ref)] != draft], kind
