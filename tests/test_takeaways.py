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
from ingest.takeaways import (
    LLMOptions, TakeawayOptions, align_in_order, clean_heading, generate_takeaways, informativeness,
    offline_takeaways, parse_llm_takeaways, place_takeaways, save_takeaways, takeaways_from_notes,
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


@pytest.mark.slow
def test_episode_70_generated_takeaways_and_chapters(minilm):
    segments, sections = reference_transcript()
    passages = make_passages(segments)
    vectors = minilm.embed([p.text for p in passages])
    generated = offline_takeaways(passages, vectors, minilm)
    assert len(generated) >= 6
    assert [t.start for t in generated] == sorted(t.start for t in generated)
    transcript = " ".join(s.text for s in segments)
    assert all(t.text in transcript and t.title for t in generated)  # the guest's own words, titled
    human = takeaways_from_notes(datacast_notes_html())
    similarity = minilm.embed([t.text for t in generated]) @ minilm.embed([f"{a}. {b}" for a, b in human]).T
    covered = {int(j) for i, j in enumerate(similarity.argmax(axis=1)) if similarity[i, j] >= 0.5}
    assert len(covered) >= 6  # bench/takeaway_coverage.py reports the figure

    chapters = generate_chapters(passages, vectors, duration=702.0, embedder=minilm)
    assert len(chapters) >= 4 and chapters[0].start == 0 and chapters[-1].end == 702.0
    for chapter in chapters:
        assert 3 <= len(chapter.title) <= 60 and chapter.title.split()[0].lower() not in {"the", "and", "so", "i"}


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
    options = TakeawayOptions(topics=TopicOptions(min_seconds=200))  # the two topics; segmentation is tested apart
    takeaways = offline_takeaways(passages, vectors, embedder, host="Sam", options=options)
    assert len(takeaways) == 2
    assert all(t.source == "generated" for t in takeaways)
    assert "label" in takeaways[0].text.lower() and "book" in takeaways[1].text.lower()
    assert not any(t.text.rstrip().endswith("?") for t in takeaways)
    assert all(t.text not in " ".join(HOST_LINES) for t in takeaways)
    assert 30 <= takeaways[0].start < 300 and takeaways[1].start >= 300
    assert "label" in takeaways[0].title.lower()
    assert takeaways == offline_takeaways(passages, vectors, embedder, host="Sam", options=options)  # deterministic


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
