"""Search on a small real archive (three DataTalks.Club transcripts, cut short) with the real embedder."""

from dataclasses import replace

import numpy as np
import pytest

from archive.db import open_db
from archive.embeddings import SentenceTransformerEmbedder
from archive.errors import SearchError
from archive.records import Segment
from archive.search import DEFAULT_TUNING, SearchTuning, fuse, Hit, search, search_many
from fakes import FakeEmbedder
from search_helpers import add_episode, add_person, add_segments, add_show, dtc_segments, index_all

pytestmark = pytest.mark.slow

EPISODES = {
    # guid: (show, slug, published)
    "dtc-ab": ("DataTalks.Club", "ab-testing-and-product-experimentation", "2022-02-27T12:00:00+00:00"),
    "dtc-elt": ("DataTalks.Club", "data-engineering-tools-modern-data-stack", "2022-09-04T12:00:00+00:00"),
    "dtc-freelance": ("Other Show", "freelancing-in-machine-learning", "2021-03-14T12:00:00+00:00"),
}


@pytest.fixture(scope="module")
def embedder():
    return SentenceTransformerEmbedder()


@pytest.fixture(scope="module")
def archive(tmp_path_factory, embedder):
    db = open_db(tmp_path_factory.mktemp("search") / "archive.db")
    shows = {title: add_show(db, title) for title in ("DataTalks.Club", "Other Show")}
    ids = {}
    for guid, (show, slug, published) in EPISODES.items():
        ids[guid] = add_episode(db, shows[show], guid, slug.replace("-", " "), published)
        add_segments(db, ids[guid], dtc_segments(slug, until=330))
    hostile = add_episode(db, shows["DataTalks.Club"], "dtc-hostile", "Hostile", "2023-01-01T00:00:00+00:00")
    add_segments(db, hostile, [Segment(0, 40, 'Our tracking <script>alert("x")</script> snippet & "quotes" '
                                              "broke the dashboard. <b>Bold</b> move.")])
    add_person(db, ids["dtc-freelance"], "Mikio Braun", "mikio-braun")
    add_person(db, ids["dtc-ab"], "Jakob Graff", "jakob-graff")
    index_all(db, embedder)
    db.ids = ids
    db.shows = shows
    return db


def guids(results):
    return [r.episode_guid for r in results]


def test_keyword_finds_the_moment_and_marks_the_words(archive, embedder):
    results = search(archive, "pizza dough", mode="keyword", embedder=embedder)
    assert results and results[0].episode_guid == "dtc-ab"
    top = results[0]
    assert top.kind == "passage" and top.start < 120
    assert "<mark>pizza</mark>" in top.snippet and "<mark>dough</mark>" in top.snippet
    assert top.url == f"/episodes/{archive.ids['dtc-ab']}?t={int(top.start)}"
    assert (top.show, top.show_id, top.episode_id) == ("DataTalks.Club", archive.shows["DataTalks.Club"],
                                                       archive.ids["dtc-ab"])
    assert top.published.startswith("2022-02-27") and top.speaker


def test_semantic_finds_meaning_without_the_words(archive, embedder):
    query = "university teacher turned independent advisor"
    results = search(archive, query, mode="semantic", embedder=embedder, limit=3)
    assert guids(results)[0] == "dtc-freelance"
    assert 0 < results[0].score <= 1 and results[0].score >= results[-1].score


def test_semantic_snippets_mark_query_words_present(archive, embedder):
    results = search(archive, "what is the difference between ETL and ELT", mode="semantic", embedder=embedder)
    assert guids(results)[0] == "dtc-elt"
    assert "<mark>ETL</mark>" in results[0].snippet or "<mark>ELT</mark>" in results[0].snippet


def test_hybrid_combines_both_rankings(archive, embedder):
    query = "extract load transform marketing data warehouse"
    keyword = {(r.episode_guid, r.start) for r in search(archive, query, mode="keyword", embedder=embedder)}
    semantic = {(r.episode_guid, r.start) for r in search(archive, query, mode="semantic", embedder=embedder)}
    hybrid = search(archive, query, mode="hybrid", embedder=embedder)
    assert guids(hybrid)[0] == "dtc-elt"
    assert {(r.episode_guid, r.start) for r in hybrid} <= keyword | semantic
    assert [r.score for r in hybrid] == sorted((r.score for r in hybrid), reverse=True)


def test_filters(archive, embedder):
    query = "machine learning"
    everything = set(guids(search(archive, query, mode="hybrid", embedder=embedder, limit=50)))
    assert {"dtc-ab", "dtc-freelance"} <= everything
    by_title = set(guids(search(archive, query, mode="hybrid", show="Other Show", embedder=embedder)))
    by_id = set(guids(search(archive, query, mode="keyword", show=str(archive.shows["Other Show"]))))
    assert by_title == by_id == {"dtc-freelance"}
    assert set(guids(search(archive, query, guest="mikio-braun", embedder=embedder))) == {"dtc-freelance"}
    assert set(guids(search(archive, query, guest="Jakob Graff", embedder=embedder))) == {"dtc-ab"}
    since = set(guids(search(archive, query, since="2022-01-01", embedder=embedder, limit=50)))
    assert "dtc-freelance" not in since and since
    assert set(guids(search(archive, query, until="2021-03-14", embedder=embedder))) == {"dtc-freelance"}
    window = search(archive, query, since="2022-02-27", until="2022-02-27", embedder=embedder, limit=50)
    assert set(guids(window)) == {"dtc-ab"}


@pytest.mark.parametrize("options", [
    {"since": "yesterday"}, {"until": "2024-13-01"}, {"since": "2024-02-01", "until": "2024-01-01"},
    {"show": "No Such Show"}, {"guest": "nobody-at-all"}, {"mode": "fuzzy"}, {"limit": 0}, {"limit": "ten"},
])
def test_bad_filters_raise_search_error(archive, options):
    with pytest.raises(SearchError):
        search(archive, "data", embedder=FakeEmbedder(), **{"mode": "keyword", **options})


def test_snippets_are_escaped(archive, embedder):
    for mode in ("keyword", "semantic", "hybrid"):
        results = search(archive, "tracking script dashboard", mode=mode, embedder=embedder, limit=3)
        hostile = [r for r in results if r.episode_guid == "dtc-hostile"]
        assert hostile, mode
        snippet = hostile[0].snippet
        assert "<script" not in snippet and "<b>" not in snippet
        text = snippet.replace("<mark>", "").replace("</mark>", "")
        assert "&lt;script&gt;alert(&quot;x&quot;)" in text and "&amp;" in text and "<" not in text


def test_empty_query_gives_nothing(archive, embedder):
    assert search(archive, "", embedder=embedder) == []
    assert search(archive, "   \n", mode="semantic", embedder=embedder) == []


def test_search_many_runs_each_query(archive, embedder):
    batches = search_many(archive, ["pizza dough", "", "ETL ELT"], mode="hybrid", embedder=embedder, limit=2)
    # "pizza dough" is said in one passage: the relevance floor drops the unrelated second one (issue 14)
    assert [len(b) for b in batches] == [1, 0, 2]
    assert batches[0][0].episode_guid == "dtc-ab" and batches[2][0].episode_guid == "dtc-elt"


def test_episode_notes_and_takeaways_contribute(archive):
    db = archive
    episode = db.ids["dtc-elt"]
    with db.conn:
        db["episodes"].update(episode, {"notes_text": "Airbyte connectors explained, with reverse ETL."})
        db["takeaways"].insert({"episode_id": episode, "idx": 0, "title": "Connectors",
                                "text": "Use a catalogue of zeppelin connectors", "start": 300.0, "end": 340.0,
                                "source": "notes"})
    results = search(db, "zeppelin connectors", mode="keyword")
    kinds = {r.kind: r for r in results}
    assert kinds["takeaway"].start == 300.0 and kinds["takeaway"].url.endswith("?t=300")
    assert "<mark>zeppelin</mark>" in kinds["takeaway"].snippet
    assert kinds["episode"].start == 0 and kinds["episode"].episode_guid == "dtc-elt"


def test_fusion_methods():
    keyword = [Hit("passage", 1, 9.0), Hit("passage", 2, 5.0), Hit("passage", 3, 1.0)]
    semantic = [Hit("passage", 3, 0.9), Hit("passage", 2, 0.8), Hit("passage", 4, 0.1)]
    rrf = fuse([("passage", keyword), ("semantic", semantic)])
    assert [(h.ref, h.score) for h in rrf] == [(3, pytest.approx(1 / 63 + 1 / 61)), (2, pytest.approx(2 / 62)),
                                               (1, pytest.approx(1 / 61)), (4, pytest.approx(1 / 63))]
    weighted = fuse([("passage", keyword), ("semantic", semantic)], SearchTuning(fusion="weighted"))
    assert {h.ref: round(h.score, 3) for h in weighted} == {1: 0.5, 2: 0.688, 3: 0.5, 4: 0.0}
    only = fuse([("semantic", semantic), ("passage", [])])
    assert [h.score for h in only] == [0.9, 0.8, 0.1]  # one list: its own scores


def test_episode_evidence_lifts_the_moments_of_the_episode_both_rankings_agree_on():
    # passage 1 (episode 10) tops the keyword list alone; episode 20 is second in both lists.
    keyword = [Hit("passage", 1, 9.0), Hit("passage", 2, 5.0), Hit("passage", 5, 1.0)]
    semantic = [Hit("passage", 4, 0.9), Hit("passage", 3, 0.8), Hit("passage", 1, 0.1)]
    episode_of = {("passage", 1): 10, ("passage", 2): 20, ("passage", 3): 20, ("passage", 4): 30,
                  ("passage", 5): 40}
    plain = fuse([("passage", keyword), ("semantic", semantic)], SearchTuning(episode_weight=0.0), episode_of)
    assert plain[0].ref == 1
    lifted = fuse([("passage", keyword), ("semantic", semantic)], SearchTuning(episode_weight=1.0), episode_of)
    assert [h.ref for h in lifted[:3]] == [1, 2, 3]
    assert lifted[1].score > plain[1].score
    # a hit whose row has gone (no episode) still ranks by its own contributions
    del episode_of[("passage", 5)]
    assert {h.ref for h in fuse([("passage", keyword), ("semantic", semantic)], episode_of=episode_of)} == {1, 2, 3, 4, 5}


def test_traced_query_path_gives_the_models_own_vectors(embedder):
    queries = ["testing machine learning models before deployment", "ELT?", "how do I price my work " * 40]
    embedder.warm_up()
    assert embedder._query_encoder, "the default model should trace"
    traced = np.stack([embedder.embed_query(q) for q in queries])
    assert np.abs(traced - embedder.embed(queries)).max() < 1e-5


def test_a_model_that_cannot_be_traced_keeps_the_eager_path(embedder, monkeypatch):
    from archive.embeddings import TracedQueryEncoder

    monkeypatch.setattr(TracedQueryEncoder, "_trace", classmethod(lambda cls, model: 1 / 0))
    fresh = SentenceTransformerEmbedder()
    fresh.warm_up()
    assert fresh._query_encoder is None
    assert np.allclose(fresh.embed_query("feature stores"), embedder.embed(["feature stores"])[0], atol=1e-5)


@pytest.fixture
def two_voices(monkeypatch):
    """A labelled interview (host Sam, guest Ada Byron) and an unlabelled one with the same guest."""
    from archive.db import memory_db

    db = memory_db()
    show = add_show(db, "Show")
    labelled = add_episode(db, show, "labelled", "Interview one")
    add_segments(db, labelled, [
        Segment(0, 40, "Sam here. I keep asking everyone about feature stores and offline evaluation.", "Sam"),
        Segment(40, 80, "Feature stores saved our team weeks: one place for training and serving features.",
                "Ada"),
        Segment(80, 120, "And what about monitoring drift in production systems for your models?", "Sam"),
    ])
    unlabelled = add_episode(db, show, "unlabelled", "Interview two")
    add_segments(db, unlabelled, [Segment(0, 40, "Drift monitoring and feature stores, both again today.")])
    other = add_episode(db, show, "other", "Without Ada")
    add_segments(db, other, [Segment(0, 40, "Nobody here says anything about feature stores at all.", "Sam")])
    add_person(db, labelled, "Ada Byron", "ada-byron")
    db["episode_people"].insert({"episode_id": unlabelled, "person_id": 1, "role": "guest", "source": "feed"})
    index_all(db, FakeEmbedder())
    return db


@pytest.mark.parametrize("mode", ["keyword", "semantic", "hybrid"])
@pytest.mark.parametrize("large", [False, True])
def test_speaker_keeps_only_what_that_person_said(two_voices, mode, large, monkeypatch):
    from archive import index_refresh

    if large:
        monkeypatch.setattr(index_refresh, "LARGE_ARCHIVE_PASSAGES", 0)
    try:
        everyone = search(two_voices, "feature stores", mode=mode, embedder=FakeEmbedder(), limit=20)
        theirs = search(two_voices, "feature stores", mode=mode, embedder=FakeEmbedder(), limit=20, speaker="Ada Byron")
    finally:
        index_refresh.forget(two_voices)
    assert {r.episode_guid for r in everyone} == {"labelled", "unlabelled", "other"}
    assert {(r.episode_guid, r.speaker) for r in theirs} == {("labelled", "Ada"), ("unlabelled", None)}
    assert all(r.kind == "passage" for r in theirs)


def test_speaker_must_be_someone_in_the_archive(two_voices):
    with pytest.raises(SearchError, match="no guest"):
        search(two_voices, "drift", mode="keyword", speaker="Nobody Atall")


@pytest.mark.parametrize("label, name, same", [
    ("Ada", "Ada Byron", True), ("Dr. Ada Byron (guest)", "Ada Byron", True), ("ADA BYRON", "Ada Byron", True),
    ("Sam", "Ada Byron", False), ("", "Ada Byron", False), ("SPEAKER_01", "Ada Byron", False),
    ("Byron", "Ada Byron", True), ("Ada Lovelace", "Ada Byron", False),
])
def test_same_person(label, name, same):
    from archive.people import same_person

    assert same_person(label, name) is same


def test_episode_evidence_counts_an_episodes_first_hits():
    # episode 10 has the first hit alone; episode 20 has the next three in both lists.
    keyword = [Hit("passage", 1, 9.0), Hit("passage", 2, 5.0), Hit("passage", 3, 4.0), Hit("passage", 4, 3.0)]
    semantic = [Hit("passage", 1, 0.9), Hit("passage", 3, 0.8), Hit("passage", 4, 0.7), Hit("passage", 2, 0.6)]
    episode_of = {("passage", 1): 10, ("passage", 2): 20, ("passage", 3): 20, ("passage", 4): 20}
    lists = [("passage", keyword), ("semantic", semantic)]
    first_only = fuse(lists, SearchTuning(episode_weight=1.0, episode_hits=1), episode_of)
    several = fuse(lists, SearchTuning(episode_weight=1.0, episode_hits=3), episode_of)
    assert first_only[0].ref == 1
    assert several[0].ref in (2, 3, 4) and several[-1].ref == 1


def _context_archive(embedder):
    """Two episodes with the same passage; only one's title and notes are about what the passage says."""
    from archive.db import memory_db
    from ingest.search_index import ensure_note_embeddings

    db = memory_db()
    show = add_show(db, "Show")
    text = "We rebuilt the feature store so training and serving read the same features."
    cooking = add_episode(db, show, "cooking", "Sourdough at home", notes="Bread, flour and patience.")
    features = add_episode(db, show, "features", "Feature stores in production",
                           notes="Why a feature store keeps training and serving features the same.")
    for episode in (cooking, features):
        add_segments(db, episode, [Segment(0, 40, text), Segment(40, 80, "Thanks for having me on the show.")])
    index_all(db, embedder)
    ensure_note_embeddings(db, embedder)
    return db


def test_a_passage_ranks_in_the_context_of_its_episodes_notes():
    embedder = FakeEmbedder()
    db = _context_archive(embedder)
    query = "feature store for training and serving"
    plain = search(db, query, mode="semantic", embedder=embedder, tuning=SearchTuning(context_weight=0.0))
    tied = [r for r in plain if r.kind == "passage" and r.start == 0]
    assert [r.episode_guid for r in tied] == ["cooking", "features"]  # the same text: a tie, broken by row order
    assert tied[0].score == pytest.approx(tied[1].score)
    lifted = [r for r in search(db, query, mode="semantic", embedder=embedder) if r.kind == "passage"]
    assert lifted[0].episode_guid == "features" and lifted[0].start == 0
    assert lifted[0].score > tied[0].score


OFF_TOPIC = ("xqzvbnm flurbogast wibbly", "knitting patterns for a baby blanket", "football transfer rumours")


@pytest.mark.parametrize("query", OFF_TOPIC)
def test_nonsense_and_off_topic_queries_find_nothing_by_meaning(archive, embedder, query):
    """The relevance floor, with the real model it was calibrated on: nothing, and the closest episodes offered."""
    for mode in ("semantic", "hybrid"):
        results = search(archive, query, mode=mode, embedder=embedder, limit=40)
        assert results == [] and results.below_floor > 0, mode
        assert results.best_cosine < DEFAULT_TUNING.floor_query
        assert len(results.closest) == 3 and all(c.url == f"/episodes/{c.episode_id}" for c in results.closest)
        assert results.closest[0].similarity >= results.closest[-1].similarity
    keyword = search(archive, query, mode="keyword", embedder=embedder)
    assert not any(e.all_words for e in keyword.evidence)  # none has every word: said so, never silently
    assert keyword == [] or keyword.fallback_note().startswith("No moment has all of:")


def test_the_floor_keeps_what_the_query_is_about_and_drops_the_weakest(archive, embedder):
    query = "what is the difference between ETL and ELT"
    unfloored = search(archive, query, mode="semantic", embedder=embedder, limit=200,
                       tuning=replace(DEFAULT_TUNING, floor_query=None, floor_moment=None, floor_some_words=None,
                                      floor_worded=None))
    floored = search(archive, query, mode="semantic", embedder=embedder, limit=200)
    assert floored and guids(floored)[0] == "dtc-elt" and floored.best_cosine >= DEFAULT_TUNING.floor_query
    assert len(floored) < len(unfloored) and floored.below_floor == len(unfloored) - len(floored)
    kept = [(r.kind, r.episode_guid, r.start) for r, e in zip(unfloored, unfloored.evidence)
            if e.cosine >= DEFAULT_TUNING.floor_moment]
    assert [(r.kind, r.episode_guid, r.start) for r in floored] == kept  # the same order, the weakest gone
    assert floored.closest == []


def test_exact_words_mark_the_moments_with_only_some_of_them(archive, embedder):
    results = search(archive, "pizza dough flurbogast", mode="keyword", embedder=embedder)
    assert results and results.all_words_missing and {r.extra["all_words"] for r in results} == {False}
    assert results.fallback_note() == ("No moment has all of: pizza dough flurbogast. "
                                       "Showing moments with some of them.")
    exact = search(archive, "pizza dough", mode="keyword", embedder=embedder)
    assert exact[0].extra["all_words"] is True and exact.words == ("pizza", "dough")


def test_one_episode_can_be_searched_alone(archive, embedder):
    everywhere = search(archive, "machine learning", mode="hybrid", embedder=embedder, limit=50)
    alone = search(archive, "machine learning", mode="hybrid", embedder=embedder, limit=50,
                   episode=archive.ids["dtc-ab"])
    assert set(guids(alone)) == {"dtc-ab"} and len(alone) >= sum(g == "dtc-ab" for g in guids(everywhere[:10]))
    with pytest.raises(SearchError):
        search(archive, "machine learning", mode="keyword", episode=999999)
