import json

import numpy as np
import pytest
from conftest import SHARED

from archive.errors import ChaptersError
from archive.records import Chapter, Passage
from fakes import FakeEmbedder
from ingest.chapter_titles import NounPhraseTitler, noun_phrase_title, rank_phrases
from ingest.chapters import (WORD_RUNS, ChapterOptions, chapter_segments, fetch_chapters, fill_ends,
                             generate_chapters, paced_boundaries, parse_chapters_json, save_chapters)
from ingest.http import make_client
from ingest.topics import TopicOptions, default_min_seconds, keyphrases, phrase_title, topic_boundaries

CHAPTERS = SHARED / "chapters"

TOPICS = [
    "Our data labeling pipeline sends images to annotators. Labeling quality depends on clear labeling guidelines "
    "and every annotator reviews labels twice.",
    "The airport security scanner finds knives in x-ray images. Each x-ray scanner runs the detection model on the "
    "device because airport checkpoints have no internet.",
    "Writing the book took two years. Each book chapter explains one convolutional network and the book ends "
    "with chapter exercises for readers.",
]


def topic_passages(per_topic: int = 8, seconds: float = 40.0) -> list[Passage]:
    passages = []
    for topic in TOPICS:
        for n in range(per_topic):
            start = len(passages) * seconds
            passages.append(Passage(start, start + seconds, f"{topic} Part {n} of the story."))
    return passages


def test_parse_chapters_example():
    chapters = parse_chapters_json((CHAPTERS / "podcast-namespace_example.json").read_bytes())
    assert [c.title for c in chapters][:3] == ["Intro", "Hearing Aids", "Progress Report"]
    assert chapters[1].image == "https://example.com/images/hearing_aids.jpg"
    assert chapters[3].url == "https://github.com/Podcastindex-org/podcast-namespace"
    assert [(c.start, c.end) for c in chapters[:2]] == [(0, 168), (168, 260)]
    assert chapters[-1].end is None and all(c.source == "feed" for c in chapters)


def test_parse_chapters_skips_silent_entries():
    chapters = parse_chapters_json((CHAPTERS / "podcast-namespace_exampleComplex.json").read_bytes())
    assert 4826 not in [c.start for c in chapters]  # toc: false
    assert "Played song by artist" in [c.title for c in chapters]
    donations = next(c for c in chapters if c.title == "Donations")
    assert donations.end == 5510  # the silent marker does not end the visible chapter


def test_parse_chapters_sorts_fills_and_names():
    data = json.dumps({"version": "1.2.0", "chapters": [
        {"startTime": 60, "title": " Second "}, {"startTime": 0}, {"startTime": 120, "endTime": 150, "title": "Last"},
    ]}).encode()
    chapters = parse_chapters_json(data)
    assert [(c.title, c.start, c.end) for c in chapters] == [
        ("Chapter 1", 0, 60), ("Second", 60, 120), ("Last", 120, 150)]
    assert fill_ends([Chapter("a", 0), Chapter("b", 10)], duration=30)[-1].end == 30


@pytest.mark.parametrize("data", [b"not json", b"[]", b'{"chapters": [{"title": "no start"}]}',
                                  b'{"chapters": [{"startTime": "soon"}]}', b'{"chapters": [{"startTime": -5}]}'])
def test_bad_chapters_files(data):
    with pytest.raises(ChaptersError):
        parse_chapters_json(data)


def test_fetch_chapters_from_file_and_http(serve):
    path = CHAPTERS / "podcast-namespace_example.json"
    assert len(fetch_chapters(path.as_uri(), client=None)) == 9
    base = serve(CHAPTERS)
    with make_client() as client:
        assert len(fetch_chapters(f"{base}/podcast-namespace_example.json", client)) == 9
        with pytest.raises(ChaptersError, match="404"):
            fetch_chapters(f"{base}/missing.json", client)
    with pytest.raises(ChaptersError):
        fetch_chapters((CHAPTERS / "missing.json").as_uri(), client=None)


def test_topic_boundaries_find_the_shifts():
    passages = topic_passages()
    vectors = FakeEmbedder().embed([p.text for p in passages])
    bounds = topic_boundaries(vectors, [p.start for p in passages], [p.end for p in passages])
    assert bounds == [0, 8, 16]
    again = topic_boundaries(vectors, [p.start for p in passages], [p.end for p in passages])
    assert again == bounds


def test_topic_segments_respect_minimum_length():
    passages = topic_passages(per_topic=3)  # topics last 120 s
    vectors = FakeEmbedder().embed([p.text for p in passages])
    starts, ends = [p.start for p in passages], [p.end for p in passages]
    assert topic_boundaries(vectors, starts, ends, TopicOptions(min_seconds=200)) == [0]
    assert topic_boundaries(vectors, starts, ends, TopicOptions(min_seconds=100)) == [0, 3, 6]
    assert default_min_seconds(3600) == 240 and default_min_seconds(600) == 45
    assert topic_boundaries(np.zeros((0, 4)), [], []) == []


def test_keyphrases_are_distinctive_and_clean():
    phrases = keyphrases([[TOPICS[0]] * 3, [TOPICS[1]] * 3, [TOPICS[2]] * 3])
    assert "labeling" in " ".join(phrases[0])
    assert any("x-ray" in p or "airport" in p or "scanner" in p for p in phrases[1])
    assert any("book" in p for p in phrases[2])
    for group in phrases:
        for phrase in group:
            assert phrase.split()[0].lower() not in {"the", "and", "our", "each", "of"}


@pytest.mark.parametrize("options", [ChapterOptions(titles=WORD_RUNS), ChapterOptions(boundaries="topics",
                                                                                    titles=WORD_RUNS)])
def test_generate_chapters(options):
    passages = topic_passages()
    vectors = FakeEmbedder().embed([p.text for p in passages])
    chapters = generate_chapters(passages, vectors, duration=1000, options=options)
    assert [c.start for c in chapters] == [0, 320, 640]
    assert [c.end for c in chapters] == [320, 640, 1000]
    assert all(c.source == "generated" for c in chapters)
    assert "labeling" in chapters[0].title.lower()
    assert "book" in chapters[2].title.lower()
    assert all(c.title[0].isupper() and len(c.title) <= 60 for c in chapters)


def test_generate_chapters_without_times_gives_none():
    passages = [Passage(0, 0, p.text) for p in topic_passages()]
    assert generate_chapters(passages, FakeEmbedder().embed([p.text for p in passages])) == []


def test_save_chapters_replaces(db):
    show = db["shows"].insert({"feed_url": "file:///feed.xml"}).last_pk
    episode = db["episodes"].insert({"show_id": show, "guid": "g1"}).last_pk
    save_chapters(db, episode, [Chapter("A", 0, 10), Chapter("B", 10, 20)])
    save_chapters(db, episode, [Chapter("Only", 0, 30, url="https://example.com", source="generated")])
    rows = list(db.query("SELECT idx, title, start, end, url, source FROM chapters"))
    assert rows == [{"idx": 0, "title": "Only", "start": 0, "end": 30, "url": "https://example.com",
                     "source": "generated"}]


@pytest.mark.parametrize("phrases, title", [
    (["airport security checkpoints", "computer vision"], "Airport security checkpoints and computer vision"),
    (["teaching", "discuss"], "Teaching"),  # a lone common word second is too often a verb or a filler
    (["chapter", "ConvNets"], "Chapter and ConvNets"),
    (["a rather long phrase about data labeling", "another long phrase here"], "A rather long phrase about data labeling"),
    ([], ""),
])
def test_phrase_title(phrases, title):
    assert phrase_title(phrases) == title


def test_a_sentence_opening_capital_is_not_a_name():
    text = ("Testing is hard. We keep testing. Amazon builds it. They sell at Amazon. Kubernetes runs it. "
            "We love Kubernetes. Honestly, throughout it all the models pushed. Feature stores helped.")
    phrases = keyphrases([[text]], top=10)[0]
    assert "testing" in phrases and "Amazon" in phrases and "Kubernetes" in phrases
    assert not {"honestly", "throughout", "pushed", "Testing", "amazon"} & set(phrases)


# ---- paced boundaries ------------------------------------------------------------------------------------------

def test_paced_boundaries_find_the_shifts_and_skip_shallow_valleys():
    passages = topic_passages()  # 960 s: the pace asks for 5 chapters, the transcript has 3 topics
    vectors = FakeEmbedder().embed([p.text for p in passages])
    assert paced_boundaries(vectors, passages) == [0, 8, 16]
    # without the depth floor the pace fills its count, no chapter under 90 s
    bounds = paced_boundaries(vectors, passages, ChapterOptions(min_depth=0.0))
    assert len(bounds) == 5 and {8, 16} <= set(bounds)
    assert min(passages[b].start - passages[a].start for a, b in zip(bounds, bounds[1:])) >= 90


def test_paced_boundaries_count_follows_the_length():
    passages = topic_passages()
    vectors = FakeEmbedder().embed([p.text for p in passages])
    assert paced_boundaries(vectors, passages, ChapterOptions(seconds_per_chapter=480)) == [0, 8]  # the deepest
    dense = paced_boundaries(vectors, passages, ChapterOptions(seconds_per_chapter=60))
    assert len(dense) > 3 and {8, 16} <= set(dense)
    assert min(passages[b].start - passages[a].start for a, b in zip(dense, dense[1:])) >= 30
    assert paced_boundaries(vectors[:1], passages[:1]) == [0] and paced_boundaries(vectors[:0], []) == []


def gradual_shift(speakers: bool) -> tuple[list[Passage], np.ndarray]:
    """Twelve 30 s passages, topic a then b, passage 5 half of each: the gaps before and after it are as deep."""
    a, b, mixed = [1.0, 0.0], [0.0, 1.0], [0.5 ** 0.5, 0.5 ** 0.5]
    vectors = np.array([a] * 5 + [mixed] + [b] * 6, dtype=np.float32)
    passages = [Passage(i * 30.0, i * 30.0 + 30, "So what came next?" if i == 6 else "Some talk.",
                        ("host" if i == 6 else "guest") if speakers else None) for i in range(12)]
    return passages, vectors


def test_a_new_speakers_question_opens_the_chapter():
    options = ChapterOptions(window=1)
    assert paced_boundaries(*reversed(gradual_shift(speakers=False)), options) == [0, 5]  # a tie: the earlier gap
    assert paced_boundaries(*reversed(gradual_shift(speakers=True)), options) == [0, 6]  # the host's question
    no_bonus = ChapterOptions(window=1, turn_bonus=0.0, question_bonus=0.0)
    assert paced_boundaries(*reversed(gradual_shift(speakers=True)), no_bonus) == [0, 5]


def test_unknown_methods_are_refused():
    passages = topic_passages()
    vectors = FakeEmbedder().embed([p.text for p in passages])
    with pytest.raises(ChaptersError, match="boundaries"):
        chapter_segments(passages, vectors, ChapterOptions(boundaries="random"))
    with pytest.raises(ChaptersError, match="titles"):
        generate_chapters(passages, vectors, options=ChapterOptions(titles="llm"))


# ---- noun-phrase titles -----------------------------------------------------------------------------------------

def test_rank_phrases_prefers_what_sets_a_segment_apart():
    labeling = [("data labeling", "data labeling"), ("data", "data"), ("annotator", "annotators")]
    books = [("book chapter", "book chapter"), ("data", "data"), ("annotator", "annotator")]
    per_segment = [[labeling, labeling], [books, books, books]]
    ranked = rank_phrases(per_segment, words=[100, 100])
    assert ranked[0][0] == "data labeling" and ranked[1][0] == "book chapter"
    assert "data" not in ranked[0]  # shares a word with the phrase taken first
    assert ranked[1] == ["book chapter", "annotator", "data"]  # "data" is in every passage: worth least
    assert rank_phrases([[[]]], words=[0]) == [[]]


@pytest.mark.parametrize("phrases, title", [
    (["federated learning", "distributed computing"], "Federated learning and distributed computing"),
    (["teaching", "community"], "Teaching and community"),  # noun phrases both: no check on the second
    (["iPhone apps", "ML"], "iPhone apps and ML"),
    (["a rather long phrase about data labeling", "another long phrase here"],
     "A rather long phrase about data labeling"),
    (["book"], "Book"),
    ([], ""),
])
def test_noun_phrase_title(phrases, title):
    assert noun_phrase_title(phrases) == title


def test_titles_fall_back_to_word_runs_without_spacy(caplog):
    passages = topic_passages()
    vectors = FakeEmbedder().embed([p.text for p in passages])
    missing = NounPhraseTitler("no_such_spacy_pipeline")
    with caplog.at_level("WARNING"):
        chapters = generate_chapters(passages, vectors, duration=1000, titler=missing)
        again = generate_chapters(passages, vectors, duration=1000, titler=missing)
    assert not missing.available and missing.titles([["text"]]) is None
    word_runs = generate_chapters(passages, vectors, duration=1000, options=ChapterOptions(titles=WORD_RUNS))
    assert [c.title for c in chapters] == [c.title for c in again] == [c.title for c in word_runs]
    assert sum("no_such_spacy_pipeline" in r.getMessage() for r in caplog.records) == 1  # warned once


@pytest.mark.slow
def test_noun_phrase_titles_with_spacy():
    titler = NounPhraseTitler()
    phrases = titler.phrases([[TOPICS[0]] * 3, [TOPICS[1]] * 3, [TOPICS[2]] * 3])
    assert titler.available
    assert any("labeling" in p for p in phrases[0])
    assert any("x-ray" in p or "airport" in p or "scanner" in p for p in phrases[1])
    assert any("book" in p for p in phrases[2])
    for group in phrases:
        for phrase in group:  # trimmed: no article, pronoun or filler opens a phrase
            assert phrase.split()[0].lower() not in {"the", "our", "each", "every", "a", "my", "whole"}
    # noun chunks lose their determiners and fillers, -ing forms keep their object, names keep their case
    text = ("We rebuilt our whole data pipeline last year. Honestly, building data pipelines at Spotify is hard. "
            "My first real job was at Spotify.")
    found = titler.phrases([[text] * 2, ["Something else entirely about cooking pasta."] * 2], top=5)[0]
    assert "data pipeline" in found or "data pipelines" in found
    assert "Spotify" in found and "spotify" not in found
    titles = titler.titles([[TOPICS[0]] * 3, [TOPICS[2]] * 3])
    assert all(t and t[0].isupper() and len(t) <= 60 for t in titles)
    passages = topic_passages()
    chapters = generate_chapters(passages, FakeEmbedder().embed([p.text for p in passages]), duration=1000)
    assert "labeling" in chapters[0].title.lower() and "book" in chapters[2].title.lower()
