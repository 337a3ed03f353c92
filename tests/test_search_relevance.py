"""archive/search_relevance.py: the floor's rules, what "exact words" says, and grouping by episode."""

from archive.records import SearchResult
from archive.search import DEFAULT_TUNING, Hit, SearchTuning, apply_floor
from archive.search_relevance import Evidence, SearchResults, group_by_episode, near, passes, query_passes


def moment(episode: int, start: float, end: float, kind: str = "passage") -> SearchResult:
    return SearchResult(show="S", episode_guid=f"g{episode}", episode_title=f"E{episode}", start=start, end=end,
                        snippet="", score=0.0, url=f"/episodes/{episode}?t={int(start)}", kind=kind,
                        episode_id=episode)


def test_a_moment_passes_on_all_its_words_or_its_own_cosine():
    assert passes(Evidence(cosine=0.01, all_words=True), 0.3, 0.1)
    assert passes(Evidence(cosine=0.35), 0.3, 0.1) and not passes(Evidence(cosine=0.25), 0.3, 0.1)
    assert passes(Evidence(cosine=0.15, all_words=False), 0.3, 0.1)  # some words: the lower floor
    assert not passes(Evidence(cosine=0.05, all_words=False), 0.3, 0.1)
    assert not passes(Evidence(), 0.3, 0.1)  # no evidence at all


def test_a_query_passes_only_when_some_candidate_is_strong():
    weak = [Evidence(cosine=0.39), Evidence(cosine=0.2, all_words=False)]
    assert not query_passes(weak, 0.42)
    assert query_passes(weak + [Evidence(cosine=0.5)], 0.42)
    assert query_passes(weak + [Evidence(cosine=0.1, all_words=True)], 0.42)
    assert not query_passes([], 0.42)


def test_the_floor_drops_weak_moments_and_keeps_the_order_of_the_rest():
    hits = [Hit("passage", n, 1.0 / n) for n in range(1, 6)]
    evidence = {("passage", 1): Evidence(0.6), ("passage", 2): Evidence(0.2), ("passage", 3): Evidence(0.05, True),
                ("passage", 4): Evidence(0.35, False), ("passage", 5): Evidence(0.31)}
    kept, dropped = apply_floor(hits, evidence, DEFAULT_TUNING, embedded=True)
    assert [h.ref for h in kept] == [1, 3, 4, 5] and dropped == 1
    off_topic = {key: Evidence(0.3) for key in evidence}
    assert apply_floor(hits, off_topic, DEFAULT_TUNING, embedded=True) == ([], 5)
    # keyword mode (nothing embedded) and no floor at all keep everything
    assert apply_floor(hits, off_topic, DEFAULT_TUNING, embedded=False) == (hits, 0)
    no_floor = SearchTuning(floor_query=None, floor_moment=None)
    assert apply_floor(hits, off_topic, no_floor, embedded=True) == (hits, 0)


def test_an_uncalibrated_model_finds_nothing_only_for_words_the_archive_lacks():
    hits = [Hit("passage", 1, 0.9)]
    semantic_only = {("passage", 1): Evidence(0.9)}
    assert apply_floor(hits, semantic_only, DEFAULT_TUNING, True, calibrated=False,
                       words_known=lambda: False) == ([], 1)
    assert apply_floor(hits, semantic_only, DEFAULT_TUNING, True, calibrated=False,
                       words_known=lambda: True) == (hits, 0)
    found_by_words = {("passage", 1): Evidence(0.01, all_words=False)}
    assert apply_floor(hits, found_by_words, DEFAULT_TUNING, True, calibrated=False,
                       words_known=lambda: False) == (hits, 0)
    assert DEFAULT_TUNING.calibrated("all-MiniLM-L6-v2")
    assert DEFAULT_TUNING.calibrated("sentence-transformers/all-minilm-l6-v2")
    assert not DEFAULT_TUNING.calibrated("fake-hash-embedder") and not DEFAULT_TUNING.calibrated(None)


def test_exact_words_say_when_they_fall_back():
    every = SearchResults([moment(1, 0, 30)], words=("feature", "store"), evidence=[Evidence(all_words=True)])
    every.mode = "keyword"
    assert every.fallback_note() is None
    some = SearchResults([moment(1, 0, 30), moment(2, 0, 30)], words=("feature", "store", "feast"), some_words=2)
    some.mode = "keyword"
    assert some.all_words_missing
    assert some.fallback_note() == "No moment has all of: feature store feast. Showing moments with some of them."
    mixed = SearchResults([moment(1, 0, 30), moment(2, 0, 30)], words=("feature", "store"), some_words=1)
    mixed.mode = "keyword"
    assert mixed.fallback_note().startswith("Only 1 moment has all of: feature store. The other 1")
    mixed.mode = "hybrid"  # meaning counts too: not a fallback
    assert mixed.fallback_note() is None
    one_word = SearchResults([moment(1, 0, 30)], words=("drift",), some_words=1)
    one_word.mode = "keyword"
    assert one_word.fallback_note() is None


def test_grouping_keeps_each_episode_once_and_collapses_neighbours():
    results = [moment(1, 100, 145), moment(2, 0, 40), moment(1, 145, 190), moment(1, 600, 640),
               moment(1, 130, 140, kind="takeaway"), moment(1, 300, 340), moment(1, 900, 940)]
    groups = group_by_episode(results)
    assert [g.episode_id for g in groups] == [1, 2]
    first = groups[0]
    assert [m.start for m in first.moments] == [100, 600, 300, 900]  # best first, neighbours gone
    assert first.collapsed == 2
    assert near(moment(1, 0, 30), moment(1, 40, 70)) and not near(moment(1, 0, 30), moment(1, 60, 90))
    assert not near(moment(1, 0, 30), moment(2, 0, 30))
