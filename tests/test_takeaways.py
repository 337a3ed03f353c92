import http.server
import json
import logging
import re
import threading

import numpy as np
import pytest
from conftest import SHARED

from archive.embeddings import SentenceTransformerEmbedder
from archive.passages import make_passages, split_sentences
from archive.records import Passage, Segment, Takeaway
from fakes import FakeEmbedder
from ingest.chapters import generate_chapters
from ingest.topics import TopicOptions
from ingest.guests import identify_host
from ingest.notes_sections import clean_heading, takeaways_from_notes
from ingest.takeaways import (
    MOMENT_LEAD, LLMOptions, Statement, TakeawayOptions, _candidates, _expand, _sentences, align_in_order, generate_takeaways,
    informativeness, is_host, offline_takeaways, parse_llm_takeaways, pick_ranges, place_takeaways, save_takeaways,
    takeaway_count,
)

DATACAST = SHARED / "datacast"
EPISODE_70_TITLES = [
    "On Studying Biomedical Engineering in Egypt", "On Moving To The US", "On Becoming A First-Time Author",
    "On Being an Engineering Manager at Twilio", "On Amazon Culture and Leadership Principles",
    "On The Benefits of Teaching", "On Building Computer Vision System at Synapse", "On Data Labeling Challenges",
    "On Incubating Kolena", "On ML Testing Infrastructure", "On Writing “Deep Learning For Vision Systems”",
]


def datacast_notes_html() -> str:
    feed = (DATACAST / "feed.xml").read_text(encoding="utf-8")
    return re.search(r"<content:encoded><!\[CDATA\[(.*?)\]\]>", feed, re.S).group(1)


# ---- notes ---------------------------------------------------------------------------------------------------

def test_datacast_html_notes_give_eleven_takeaways():
    items = takeaways_from_notes(datacast_notes_html())
    assert [title for title, _ in items] == EPISODE_70_TITLES
    assert all("\xa0" not in title for title, _ in items)
    text = dict(items)
    assert text["On Studying Biomedical Engineering in Egypt"].startswith("Originally from Egypt")
    assert "On its own, teaching (or writing)" in text["On The Benefits of Teaching"]  # a paragraph, not a heading
    assert "Evaluation metrics are fine." in text["On ML Testing Infrastructure"]  # list items belong to the section
    assert text["On Writing “Deep Learning For Vision Systems”"].endswith("implementing research papers.")
    assert "Datacast features" not in " ".join(text.values())


def test_datacast_plain_text_page_gives_the_same_takeaways():
    page = (DATACAST / "episode-070-page.txt").read_text(encoding="utf-8")
    assert takeaways_from_notes(page) == takeaways_from_notes(datacast_notes_html())


def test_headings_are_cleaned():
    unclosed = "On Writing “Deep Learning For Vision\xa0Systems"
    assert clean_heading(unclosed) == "On Writing “Deep Learning For Vision Systems”"
    assert clean_heading('On "Quotes  ') == 'On "Quotes"'
    assert clean_heading("On Moving To The\u00a0US:") == "On Moving To The US"


def test_other_shows_layouts():
    h2_h4 = """<h2>Summary</h2><p>About the episode.</p>
      <h2>Key takeaways</h2><h4>Hire early</h4><p>Hire a data engineer first.</p>
      <h4>Empty one</h4><h4>Measure</h4><p>Track one metric.</p><p>Then a second.</p>
      <h2>Links</h2><h4>Not a takeaway</h4><p>https://example.com</p>"""
    assert takeaways_from_notes(h2_h4) == [("Hire early", "Hire a data engineer first."),
                                           ("Measure", "Track one metric.\n\nThen a second.")]
    bold_list = """<p>Great chat.</p><p><strong>Takeaways:</strong></p>
      <ul><li><strong>Start small:</strong> ship one model before a platform.</li>
      <li>Talk to users every week because they know what breaks.</li></ul>"""
    assert takeaways_from_notes(bold_list) == [
        ("Start small", "ship one model before a platform."),
        ("Talk to users every week because they know what breaks",
         "Talk to users every week because they know what breaks.")]
    markdown = "# Notes\n\nIntro text.\n\n## Highlights\n\n### On hiring\n\nHire slowly.\n\n## Resources\n\n- a link"
    assert takeaways_from_notes(markdown) == [("On hiring", "Hire slowly.")]


def test_notes_without_takeaways():
    assert takeaways_from_notes(None) == []
    assert takeaways_from_notes("") == []
    assert takeaways_from_notes("<p>In this episode we talk about data.</p><h3>Links</h3><p>x</p>") == []


# ---- placement -------------------------------------------------------------------------------------------------

def test_align_in_order_prefers_the_notes_order():
    similarity = np.array([
        [0.9, 0.1, 0.1, 0.1],
        [0.1, 0.50, 0.1, 0.55],  # slightly better late: order wins
        [0.1, 0.1, 0.8, 0.1],
        [0.95, 0.1, 0.1, 0.2],  # much better early: the transcript wins
    ])
    assert align_in_order(similarity, penalty=0.15) == [0, 1, 2, 0]
    assert align_in_order(similarity, penalty=0.0) == [0, 3, 2, 0]
    assert align_in_order(similarity, penalty=10) == [0, 1, 2, 3]  # monotonic
    assert align_in_order(np.zeros((0, 3))) == []


def reference_transcript() -> tuple[list[Segment], list[tuple[str, float, float]]]:
    """The text read for episode-070.mp3 as sentences timed in proportion to length over its 702 s, and the time
    span of each "On ..." section."""
    lines = [line.strip() for line in (DATACAST / "episode-070-audio-reference.txt").read_text().splitlines()]
    lines = [line if re.search(r"[.!?:]$", line) else line + "." for line in lines if line]
    total = sum(len(line) for line in lines)
    segments, sections, clock = [], [], 0.0
    for line in lines:
        if line.startswith("On ") and len(line.split()) <= 10:
            sections.append([line, clock, 702.0])
        for sentence in split_sentences(line):
            seconds = 702.0 * len(sentence) / total
            segments.append(Segment(clock, clock + seconds, sentence))
            clock += seconds
    for current, following in zip(sections, sections[1:]):
        current[2] = following[1]
    return segments, [tuple(s) for s in sections]


@pytest.fixture(scope="module")
def minilm():
    return SentenceTransformerEmbedder()


@pytest.mark.slow
def test_episode_70_notes_land_where_they_are_read(minilm):
    segments, sections = reference_transcript()
    passages = make_passages(segments)
    vectors = minilm.embed([p.text for p in passages])
    placed = place_takeaways(takeaways_from_notes(datacast_notes_html()), passages, vectors, minilm)
    assert len(placed) == 11 and all(t.source == "notes" for t in placed)
    starts = [t.start for t in placed]
    assert starts == sorted(starts)
    in_window = sum(
        1 for t, (_, start, end) in zip(placed, sections)
        if min(t.end, end) - max(t.start, start) >= min(t.end - t.start, end - start) / 3
    )
    assert in_window >= 10
    # with the transcript's sentences, each starts where its section starts being read: within 5 s before it
    at_sentences = place_takeaways(takeaways_from_notes(datacast_notes_html()), passages, vectors, minilm,
                                   segments=segments)
    early = [start - t.start for t, (_, start, _) in zip(at_sentences, sections)]
    assert all(0 <= e <= 5 for e in early), early


def test_a_placed_takeaway_starts_at_the_sentence_that_opens_it_not_at_its_passage():
    said = ["Welcome to the show.", "Today we talk about many things.", "Let us begin with our sponsors.",
            "Now about drift detection in production models.", "Drift detection needs reference windows.",
            "Monitoring alerts fire on drift.", "Next we cover hiring.", "Hiring data engineers early matters.",
            "Hire before the data scientists arrive."]
    segments = [Segment(i * 5.0, i * 5.0 + 5.0, text, "Guest") for i, text in enumerate(said)]
    passages = [Passage(0.0, 30.0, " ".join(said[:6]), speaker="Guest"),
                Passage(30.0, 45.0, " ".join(said[6:]), speaker="Guest")]
    fake = FakeEmbedder()
    items = [("On drift detection", "Drift detection in production models needs reference windows."),
             ("On hiring data engineers", "Hiring data engineers early matters.")]
    placed = place_takeaways(items, passages, fake.embed([p.text for p in passages]), fake, segments=segments)
    assert [t.start for t in placed] == [15.0 - MOMENT_LEAD, 30.0 - MOMENT_LEAD]  # the sentences, heard from their start
    assert [t.end for t in placed] == [30.0, 45.0]
    without = place_takeaways(items, passages, fake.embed([p.text for p in passages]), fake)
    assert without[0].start > 0  # without segments: the passages' sentences, times shared out by length


@pytest.mark.slow
def test_episode_70_generated_takeaways_and_chapters(minilm):
    segments, sections = reference_transcript()
    passages = make_passages(segments)
    vectors = minilm.embed([p.text for p in passages])
    generated = offline_takeaways(passages, vectors, minilm, segments=segments)
    assert len(generated) == 12  # 702 s: one per 45 s, at most 12
    assert [t.start for t in generated] == sorted(t.start for t in generated)
    transcript = " ".join(s.text for s in segments)
    assert all(t.text in transcript and t.title for t in generated)  # the guest's own words, titled
    sentence_starts = {s.start for s in segments}  # here each segment is one sentence
    assert all(any(abs(t.start - s) < 1e-3 for s in sentence_starts) for t in generated)
    human = takeaways_from_notes(datacast_notes_html())
    similarity = minilm.embed([t.text for t in generated]) @ minilm.embed([f"{a}. {b}" for a, b in human]).T
    best = similarity.argmax(axis=1)
    covered = {int(j) for i, j in enumerate(best) if similarity[i, j] >= 0.5}
    assert len(covered) >= 9  # bench/takeaway_coverage.py reports the figure
    assert similarity.max(axis=1).min() >= 0.5  # every takeaway is one a human wrote
    first_match: dict[int, float] = {}
    for i, j in enumerate(best):
        if similarity[i, j] >= 0.5:
            first_match.setdefault(int(j), generated[i].start)
    assert sum(1 for j, start in first_match.items() if sections[j][1] <= start < sections[j][2]) >= 9  # in place

    chapters = generate_chapters(passages, vectors, duration=702.0, embedder=minilm)
    assert len(chapters) >= 4 and chapters[0].start == 0 and chapters[-1].end == 702.0
    for chapter in chapters:
        assert 3 <= len(chapter.title) <= 60 and chapter.title.split()[0].lower() not in {"the", "and", "so", "i"}


@pytest.mark.slow
def test_datatalks_takeaways_are_the_guests_words_at_their_sentences(minilm):
    from search_helpers import dtc_segments

    segments = dtc_segments("ab-testing-and-product-experimentation", until=1500)
    host = identify_host(segments)
    assert host == "Alexey"
    passages = make_passages(segments)
    vectors = minilm.embed([p.text for p in passages])
    generated = generate_takeaways(passages, vectors, minilm, host=host, segments=segments)
    assert 8 <= len(generated) <= 12  # 24 min: one per 45 s would be 32, at most 12 unless topics are more
    said_by_host = {s for seg in segments if seg.speaker == host for s in split_sentences(seg.text)}
    for takeaway in generated:
        assert not set(split_sentences(takeaway.text)) & said_by_host
        assert any(start - 1e-3 <= takeaway.start < end for start, end in
                   ((s.start, s.end) for s in segments if s.speaker != host))  # inside one of the guest's turns
    assert [t.start for t in generated] == sorted(t.start for t in generated)


def test_placement_without_times_keeps_takeaways_untimed():
    passages = [Passage(0, 0, "some text")]
    placed = place_takeaways([("Title", "text")], passages, FakeEmbedder().embed(["some text"]), FakeEmbedder())
    assert placed == [Takeaway("Title", "text", None, None, "notes")]


# ---- generated ---------------------------------------------------------------------------------------------

GUEST_TOPICS = [
    "We label x-ray images of knives and guns with an offshore labeling team. The labeling strategy changes as the "
    "model improves, so we relabel the data set again and again.",
    "Writing the book took two years of writing and six months of editing. Each chapter of the book explains one "
    "convolutional network from LeNet to ResNet with code.",
]
HOST_LINES = [
    "So tell me about labeling x-ray images of knives and guns with labeling teams? Labeling x-ray labeling images "
    "labeling knives guns labeling team labeling strategy.",
    "And the book? Book writing book chapter book editing book chapter convolutional network book.",
]


def interview_passages() -> list[Passage]:
    passages, clock = [], 0.0
    for topic, host in zip(GUEST_TOPICS, HOST_LINES):
        passages.append(Passage(clock, clock + 30, host, "Sam"))
        clock += 30
        for n in range(6):
            passages.append(Passage(clock, clock + 45, f"{topic} Story number {n}, yes.", "Clare"))
            clock += 45
    return passages


def test_informativeness():
    assert informativeness("Yeah, I mean, you know, it was like that.") == 0
    assert informativeness("What did you learn from relabeling the data set over and over again?") == 0
    assert informativeness("Short one.") == 0
    assert informativeness("The labeling strategy changes as the model improves, so we relabel the data.") > 0.4


def test_offline_takeaways_pick_the_guests_statements():
    passages = interview_passages()
    embedder = FakeEmbedder()
    vectors = embedder.embed([p.text for p in passages])
    # the two topics, one takeaway each (segmentation and counts are tested apart)
    options = TakeawayOptions(topics=TopicOptions(min_seconds=200), max_takeaways=2)
    takeaways = offline_takeaways(passages, vectors, embedder, host="Sam", options=options)
    assert len(takeaways) == 2
    assert all(t.source == "generated" for t in takeaways)
    assert "label" in takeaways[0].text.lower() and "book" in takeaways[1].text.lower()
    assert not any(t.text.rstrip().endswith("?") for t in takeaways)
    assert all(t.text not in " ".join(HOST_LINES) for t in takeaways)
    assert 30 <= takeaways[0].start < 300 and takeaways[1].start >= 300
    assert "label" in takeaways[0].title.lower()
    assert takeaways == offline_takeaways(passages, vectors, embedder, host="Sam", options=options)  # deterministic


def mixed_interview() -> list[Segment]:
    """Two topics; in each, the host (Sam) echoes the topic in a statement, not a question, before each answer,
    inside the guest's passages (too short a share to make them the host's)."""
    segments, clock = [], 0.0
    for topic, host in zip(GUEST_TOPICS, HOST_LINES):
        echo = host.split("? ")[1]
        for n in range(6):
            segments.append(Segment(clock, clock + 8, echo, "Sam"))
            first, second = split_sentences(topic)
            segments.append(Segment(clock + 8, clock + 28, f"{first} Story {n}.", "Clare"))
            segments.append(Segment(clock + 28, clock + 48, second, "Clare"))
            clock += 48
    return segments


def test_host_sentences_are_never_chosen_even_inside_the_guests_passages():
    segments = mixed_interview()
    passages = make_passages(segments)
    assert {p.speaker for p in passages} == {"Clare"}  # the host's lines hide in the guest's passages
    embedder = FakeEmbedder()
    vectors = embedder.embed([p.text for p in passages])
    options = TakeawayOptions(topics=TopicOptions(min_seconds=200))
    echoes = {s.text for s in segments if s.speaker == "Sam"}
    by_passage = offline_takeaways(passages, vectors, embedder, host="Sam", options=options)
    assert any(echo in t.text for t in by_passage for echo in echoes)  # the passages alone cannot tell
    takeaways = offline_takeaways(passages, vectors, embedder, host="Sam", options=options, segments=segments)
    assert len(takeaways) == len(by_passage) >= 2
    assert not any(echo in t.text for t in takeaways for echo in echoes)
    guest_starts = {s.start for s in segments if s.speaker == "Clare"}
    assert all(t.start in guest_starts for t in takeaways)  # a sentence's own start, not its passage's
    assert any(t.start not in {p.start for p in passages} for t in takeaways)
    assert takeaways == generate_takeaways(passages, vectors, embedder, host="Sam", options=options,
                                           segments=segments)


def test_is_host_compares_labels_as_identify_host_writes_them():
    assert is_host("Sam.", "Sam") and is_host("\u00a0Sam ", "Sam")
    assert not is_host("Sam", None) and not is_host(None, "Sam") and not is_host("Clare", "Sam")


def test_sentences_follow_the_segments_and_span_them():
    segments = [Segment(0, 4, "We built the first model", "Clare"),
                Segment(4, 10, "in six months. It worked.", "Clare"), Segment(10, 14, "Great, and then?", "Sam")]
    passages = make_passages(segments)
    statements = _sentences(passages, segments)
    assert [(s.text, s.speaker) for s in statements] == [
        ("We built the first model in six months.", "Clare"), ("It worked.", "Clare"), ("Great, and then?", "Sam")]
    assert statements[0].start == 0 and statements[0].end == pytest.approx(4 + 6 * 14 / 24)
    assert statements[2].start == 10


def test_sentences_fall_back_to_the_passages_when_segments_differ(caplog):
    segments = [Segment(0, 10, "One thing. Another thing.", "Clare")]
    passages = [Passage(0, 10, "One thing. A corrected thing.", "Clare")]
    with caplog.at_level(logging.INFO, logger="ingest.takeaways"):
        statements = _sentences(passages, segments)
    assert [s.text for s in statements] == ["One thing.", "A corrected thing."]
    assert "do not match" in caplog.text


def test_a_leaning_sentence_takes_the_one_before():
    texts = ["We relabel the whole data set every month with the offshore labeling team.",
             "But the cost of relabeling is small next to the accuracy the model gains.",
             "The labeling team also writes down every hard case for the engineers.",
             "Yeah.", "What did the engineers do with those hard cases then?"]
    statements = [Statement(text, 10.0 * i, 10.0 * i + 9, 0, "Clare") for i, text in enumerate(texts)]
    assert _expand(statements, 1, 60, 8, (0, 5)) == (0, 2)  # then on to the next, not into the aside or question
    assert _expand(statements, 1, 60, 8, (1, 5)) == (1, 2)  # the one before belongs to another takeaway
    assert _expand(statements, 1, 30, 8, (0, 5)) == (0, 1)  # max_words
    statements[0].speaker = "Sam"
    assert _expand(statements, 1, 60, 8, (0, 5)) == (1, 2)  # nor someone else's
    assert _expand(statements, 2, 60, 8, (0, 5)) == (2, 2)  # "The labeling team" reads on its own


def test_only_the_central_passages_most_informative_sentences_are_candidates():
    statements = [Statement("Relabel the x-ray images of knives every month with the labeling team.", 0, 5, 0),
                  Statement("Yes, yes, it is what it is, you know, and so on and so on.", 5, 9, 0),
                  Statement("The labeling team marks knives and guns in the x-ray images.", 10, 15, 1),
                  Statement("The book chapter explains convolutional networks from LeNet to ResNet.", 20, 25, 2)]
    vectors = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]], dtype=np.float32)
    centroid = np.array([1.0, 0.1])
    allowed = [0, 1, 2, 3]
    options = TakeawayOptions(passages_per_pick=1, sentences_per_pick=None)
    assert _candidates(statements, allowed, range(0, 2), vectors, centroid, options) == [0, 1]
    options = TakeawayOptions(passages_per_pick=1, sentences_per_pick=1)
    assert _candidates(statements, allowed, range(0, 2), vectors, centroid, options) == [0]
    options = TakeawayOptions(passages_per_pick=2, sentences_per_pick=None)
    assert _candidates(statements, allowed, range(0, 2), vectors, centroid, options) == [0, 1, 2]
    assert _candidates(statements, [2, 3], range(0, 3), vectors, centroid, options) == [2, 3]  # others not allowed


def test_takeaway_count_scales_with_the_episode():
    options = TakeawayOptions()
    assert takeaway_count(702, 9, options) == 12  # Datacast 70: one per 45 s, at most 12
    assert takeaway_count(300, 3, options) == 6
    assert takeaway_count(3600, 15, options) == 15  # never fewer than the topic segments
    assert takeaway_count(0, 4, options) == 4  # untimed: the topic segments


def test_pick_ranges_cut_the_longest_segments_where_the_talk_changes_most():
    starts = [0, 50, 100, 200, 300, 400]
    ends = [50, 100, 200, 300, 400, 500]
    adjacent = np.array([0.9, 0.9, 0.7, 0.2, 0.5])  # adjacent[g - 1]: passages g - 1 and g
    segments = [(0, 2), (2, 6)]  # 100 s and 400 s
    assert pick_ranges(segments, 2, starts, ends, adjacent) == [(0, 2), (2, 6)]
    assert pick_ranges(segments, 3, starts, ends, adjacent) == [(0, 2), (2, 4), (4, 6)]
    assert pick_ranges(segments, 4, starts, ends, adjacent) == [(0, 2), (2, 4), (4, 5), (5, 6)]
    assert len(pick_ranges(segments, 20, starts, ends, adjacent)) == 6  # one per passage at most


def test_offline_takeaways_without_passages():
    assert offline_takeaways([], np.zeros((0, 8)), FakeEmbedder()) == []


# ---- optional LLM backend (a fake OpenAI-compatible server: this is a protocol test) -----------------------------

class FakeChatServer:
    def __init__(self, reply: bytes, status: int = 200):
        self.requests: list[dict] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append({"path": self.path, "headers": dict(self.headers), "json": json.loads(body)})
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def chat_reply(content: str) -> bytes:
    return json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()


@pytest.fixture
def chat_server():
    servers = []

    def start(reply: bytes, status: int = 200) -> FakeChatServer:
        servers.append(FakeChatServer(reply, status))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_llm_takeaways_are_requested_and_placed(chat_server):
    content = "```json\n" + json.dumps({"takeaways": [
        {"title": "Relabel as you learn", "text": "The labeling strategy changes as the model improves."},
        {"title": "Books take years", "text": "Writing the book took two years and six months of editing."},
    ]}) + "\n```"
    server = chat_server(chat_reply(content))
    passages = interview_passages()
    embedder = FakeEmbedder()
    options = TakeawayOptions(llm=LLMOptions(url=server.url, model="tiny-model", api_key="secret"))
    takeaways = generate_takeaways(passages, embedder.embed([p.text for p in passages]), embedder, host="Sam",
                                   options=options)
    assert [t.title for t in takeaways] == ["Relabel as you learn", "Books take years"]
    assert takeaways[0].start < 300 <= takeaways[1].start
    request = server.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer secret"
    assert request["json"]["model"] == "tiny-model"
    assert "Clare: We label x-ray images" in request["json"]["messages"][1]["content"]


@pytest.mark.parametrize("reply,status", [
    (chat_reply("I cannot help with that."), 200),
    (b"not json at all", 200),
    (json.dumps({"error": "overloaded"}).encode(), 503),
    (chat_reply('{"takeaways": [{"title": "no text"}]}'), 200),
])
def test_llm_failure_falls_back_to_offline(chat_server, caplog, reply, status):
    server = chat_server(reply, status)
    passages = interview_passages()
    embedder = FakeEmbedder()
    vectors = embedder.embed([p.text for p in passages])
    options = TakeawayOptions(llm=LLMOptions(url=server.url + "/v1", model="m"))
    with caplog.at_level(logging.WARNING, logger="ingest.takeaways"):
        takeaways = generate_takeaways(passages, vectors, embedder, host="Sam", options=options)
    assert takeaways == offline_takeaways(passages, vectors, embedder, host="Sam")
    assert "offline method" in caplog.text
    assert server.requests and server.requests[0]["path"] == "/v1/chat/completions"


def test_llm_options_from_environment(monkeypatch):
    monkeypatch.delenv("PODARCHIVE_LLM_URL", raising=False)
    assert LLMOptions.from_env() is None
    monkeypatch.setenv("PODARCHIVE_LLM_URL", "http://localhost:8080/")
    monkeypatch.setenv("PODARCHIVE_LLM_MODEL", "llama")
    options = LLMOptions.from_env()
    assert options.endpoint == "http://localhost:8080/v1/chat/completions" and options.api_key is None


def test_parse_llm_reply_variants():
    assert parse_llm_takeaways('Here you go: [{"title": "A", "text": "B."}] Enjoy!') == [("A", "B.")]
    assert parse_llm_takeaways('{"items": ["Just a sentence."]}') == [("Just a sentence", "Just a sentence.")]


def test_save_takeaways_replaces(db):
    show = db["shows"].insert({"feed_url": "file:///feed.xml"}).last_pk
    episode = db["episodes"].insert({"show_id": show, "guid": "g1"}).last_pk
    save_takeaways(db, episode, [Takeaway("A", "a", 0, 10, "notes"), Takeaway("B", "b", 10, 20, "notes")])
    save_takeaways(db, episode, [Takeaway("C", "c", None, None, "generated")])
    assert list(db.query("SELECT idx, title, start, source FROM takeaways")) == [
        {"idx": 0, "title": "C", "start": None, "source": "generated"}]
