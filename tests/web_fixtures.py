"""Archives for the web tests, written straight into the schema of archive/db.py with sqlite-utils.

`ArchiveBuilder` inserts shows, episodes, people, transcripts, chapters, takeaways and audio rows;
`sample_archive()` builds the small archive most web tests share: a Datacast episode with a transcript,
chapters, takeaways and hostile notes, older and undated episodes, a show with a hostile title, and one real
DataTalks.Club episode (its JSON transcript and chapters parsed with the project's own parser).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlite_utils

from archive.db import open_db, utcnow
from archive.people import normalise_name, slugify
from archive.records import Segment
from conftest import SHARED
from fakes import FakeEmbedder

DTC = SHARED / "corpus" / "datatalksclub_podcast"
DATACAST = SHARED / "datacast"

HOSTILE_NOTES = (
    '<p>Notes with <b>bold</b> and a <a href="https://example.com/page">link</a>.</p>'
    "<script>window.__pwned = 1</script>"
    '<img src="x" onerror="window.__pwned = 2">'
    '<p onclick="window.__pwned = 3">Click me</p>'
    '<a href="javascript:window.__pwned=4">bad link</a>'
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">data link</a>'
    '<iframe src="https://evil.example/"></iframe>'
    "<style>body{display:none}</style>"
)
HOSTILE_TITLE = 'Tom & Jerry <script>alert("t")</script> \x01\x0b "quotes" ]]> end'


class ArchiveBuilder:
    def __init__(self, db: sqlite_utils.Database):
        self.db = db

    def show(self, title: str, feed_url: str | None = None, **fields) -> int:
        row = {"feed_url": feed_url or f"https://example.com/{slugify(title)}.xml", "title": title,
               "created_at": utcnow(), "updated_at": utcnow(), **fields}
        if isinstance(row.get("people"), list):
            row["people"] = json.dumps(row["people"])
        return self.db["shows"].insert(row).last_pk

    def episode(self, show_id: int, guid: str, title: str, **fields) -> int:
        row = {"show_id": show_id, "guid": guid, "title": title, "created_at": utcnow(), "updated_at": utcnow(),
               **fields}
        return self.db["episodes"].insert(row).last_pk

    def person(self, name: str, **fields) -> int:
        key = normalise_name(name)
        existing = list(self.db.query("SELECT id FROM people WHERE name_key = ?", [key]))
        if existing:
            return existing[0]["id"]
        return self.db["people"].insert({"name": name, "name_key": key, "slug": slugify(name), **fields}).last_pk

    def credit(self, episode_id: int, name: str, role: str = "guest", source: str = "feed", **fields) -> int:
        person_id = self.person(name, **fields)
        self.db["episode_people"].insert(
            {"episode_id": episode_id, "person_id": person_id, "role": role, "source": source}, ignore=True
        )
        return person_id

    def transcript(self, episode_id: int, segments: list[Segment], source: str = "feed", fmt: str = "json",
                   **fields) -> int:
        transcript_id = self.db["transcripts"].insert({
            "episode_id": episode_id, "source": source, "format": fmt, "language": "en",
            "segment_count": len(segments), "created_at": utcnow(), **fields,
        }).last_pk
        self.db["segments"].insert_all(
            {"transcript_id": transcript_id, "idx": i, "start": s.start, "end": s.end, "text": s.text,
             "speaker": s.speaker}
            for i, s in enumerate(segments)
        )
        return transcript_id

    def chapters(self, episode_id: int, chapters: list[dict], source: str = "feed") -> None:
        self.db["chapters"].insert_all(
            {"episode_id": episode_id, "idx": i, "title": c["title"], "start": c["start"], "end": c.get("end"),
             "url": c.get("url"), "image": c.get("image"), "source": source}
            for i, c in enumerate(chapters)
        )

    def takeaways(self, episode_id: int, takeaways: list[dict], source: str = "notes") -> None:
        self.db["takeaways"].insert_all(
            {"episode_id": episode_id, "idx": i, "title": t["title"], "text": t["text"], "start": t.get("start"),
             "end": t.get("end"), "source": source}
            for i, t in enumerate(takeaways)
        )

    def audio(self, episode_id: int, path: Path, url: str, content_type: str = "audio/mpeg") -> None:
        self.db["audio"].insert({"episode_id": episode_id, "url": url, "path": str(path),
                                 "content_type": content_type, "bytes": path.stat().st_size,
                                 "downloaded_at": utcnow()})


def read_dtc_episode(slug: str) -> tuple[list[Segment], list[dict]]:
    """A DataTalks.Club episode's real transcript (parsed by ingest.transcript_files) and chapters."""
    from ingest.transcript_files import parse_transcript

    segments = parse_transcript((DTC / "transcripts" / f"{slug}.json").read_bytes(), "application/json")
    chapters_path = DTC / "chapters" / f"{slug}.json"
    chapters = []
    if chapters_path.exists():
        chapters = [{"title": c["title"], "start": c["startTime"], "end": c.get("endTime")}
                    for c in json.loads(chapters_path.read_text())["chapters"]]
    return segments, chapters


DATACAST_LINES = [
    (0.0, 6.5, "Welcome to Datacast, the show about the people who work with data.", "James Le"),
    (6.5, 14.0, "Today my guest is Mohamed Elgendy, who builds tools for testing machine learning models.", "James Le"),
    (14.0, 24.0, "Thanks for having me. Testing machine learning systems is different from testing software.",
     "Mohamed Elgendy"),
    (24.0, 36.0, "A model can pass every unit test and still fail silently on data drift in production.",
     "Mohamed Elgendy"),
    (36.0, 45.0, "So how do you catch data drift before your customers do?", "James Le"),
    (45.0, 52.0, "You monitor the inputs, write behavioural tests, and keep a human in the loop.", "Mohamed Elgendy"),
]


@dataclass
class SampleArchive:
    db: sqlite_utils.Database
    ids: dict = field(default_factory=dict)


def sample_archive(db: sqlite_utils.Database, audio_url: str = "https://cdn.example.com/datacast-070.mp3",
                   audio_path: Path | None = None) -> SampleArchive:
    """The archive most web tests use; ids of what it holds are in `.ids`."""
    build = ArchiveBuilder(db)
    ids: dict = {}
    ids["datacast"] = build.show(
        "Datacast", link="https://datacast.simplecast.com/", description="Conversations with data people.",
        language="en", author="James Le", people=[{"name": "James Le", "role": "host"}],
    )
    ids["ep70"] = build.episode(
        ids["datacast"], "datacast-070", "Machine Learning Testing with Mohamed Elgendy",
        published="2021-06-01T12:00:00+00:00", duration=702.0, season=2, episode_number=70,
        description="Mohamed Elgendy on testing machine learning systems.", notes_html=HOSTILE_NOTES,
        enclosure_url=audio_url, enclosure_type="audio/mpeg", link="https://datacast.example.com/70",
    )
    build.credit(ids["ep70"], "Mohamed Elgendy", "guest")
    build.credit(ids["ep70"], "James Le", "host")
    build.transcript(ids["ep70"], [Segment(*line) for line in DATACAST_LINES], source="whisper", fmt="whisper",
                     model="tiny.en")
    build.chapters(ids["ep70"], [
        {"title": "Introduction", "start": 0.0, "end": 14.0},
        {"title": "Testing ML systems", "start": 14.0, "end": 36.0, "url": "https://example.com/testing"},
        {"title": "Data drift", "start": 36.0},
    ])
    build.takeaways(ids["ep70"], [
        {"title": "On silent failures", "text": "Models fail silently when the data drifts.", "start": 24.0,
         "end": 36.0},
        {"title": "On catching drift", "text": "Monitor inputs and write behavioural tests.", "start": 45.0,
         "end": 52.0},
        {"title": "On careers", "text": "A takeaway with no time.", "start": None},
    ])
    if audio_path is not None:
        build.audio(ids["ep70"], audio_path, audio_url)

    ids["ep69"] = build.episode(
        ids["datacast"], "datacast-069", "Data Engineering at Scale", published="2020-03-05T08:00:00+00:00",
        duration=3600.0, episode_number=69, description="An older episode without a transcript.",
        enclosure_url="https://cdn.example.com/datacast-069.mp3", enclosure_type="audio/mpeg",
    )
    build.credit(ids["ep69"], "Jane Doe", "guest")
    ids["undated"] = build.episode(ids["datacast"], "datacast-bonus", "Bonus: Listener Questions",
                                   description="No date on this one.")

    ids["dtc"] = build.show("DataTalks.Club Podcast", description="Data science conversations.", language="en")
    segments, chapters = read_dtc_episode("ab-testing-and-product-experimentation")
    ids["dtc_ab"] = build.episode(
        ids["dtc"], "dtc-ab-testing-and-product-experimentation",
        "Product Analytics & A/B Testing: Causality, Metrics, Power Analysis, A/A Tests",
        published="2022-02-27T12:00:00+00:00", duration=3817.0, season=7, episode_number=6,
        notes_html="<p>How do you design product experiments that truly establish causality?</p>",
    )
    build.credit(ids["dtc_ab"], "Jakob Graff", "guest", source="title")
    build.credit(ids["dtc_ab"], "Alexey Grigorev", "host", source="transcript")
    build.transcript(ids["dtc_ab"], segments, source="feed", fmt="json")
    build.chapters(ids["dtc_ab"], chapters)

    ids["hostile_show"] = build.show(HOSTILE_TITLE, description="<b>bold</b> & <i>odd</i>")
    ids["hostile_ep"] = build.episode(ids["hostile_show"], "hostile-1", HOSTILE_TITLE,
                                      published="2023-01-01T00:00:00+00:00", description=HOSTILE_TITLE,
                                      notes_html=HOSTILE_NOTES, enclosure_url="javascript:alert(1)")
    build.credit(ids["hostile_ep"], 'Eve "<b>" Hacker', "guest")
    build.transcript(ids["hostile_ep"], [Segment(0.0, 3.0, "<script>alert(1)</script> & more", "Eve <b>")])
    return SampleArchive(db, ids)


# --- pytest fixtures (import them into a test module: `from web_fixtures import app, client, sample, ids`) ---

def make_app(database: Path, **config):
    from archive.web import create_app

    return create_app({"DATABASE": str(database), "TESTING": True, "EMBEDDER": FakeEmbedder(), **config})


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> tuple[Path, dict]:
    """A file archive holding sample_archive(), built once per test module; (path, ids)."""
    path = tmp_path_factory.mktemp("web") / "archive.db"
    db = open_db(path)
    built = sample_archive(db)
    db.conn.close()
    return path, built.ids


@pytest.fixture
def ids(sample) -> dict:
    return sample[1]


@pytest.fixture(scope="module")
def app(sample):
    """One app per module: the archive is read-only to these tests, and an app compiles its templates once."""
    return make_app(sample[0])


@pytest.fixture
def client(app):
    return app.test_client()


def reference_lines(text: str, duration: float) -> list[Segment]:
    """Sentences of a read-aloud text as transcript lines, their times spread over the audio by length."""
    import re

    sentences = [s for s in re.split(r"(?<=[.!?])\s+|\n+", text) if s.strip()]
    total = sum(len(s) for s in sentences)
    lines, start = [], 0.0
    for sentence in sentences:
        end = start + duration * len(sentence) / total
        lines.append(Segment(round(start, 2), round(end, 2), sentence.strip()))
        start = end
    return lines


def datacast_archive(db: sqlite_utils.Database, enclosure_url: str) -> dict:
    """Datacast episode 70: 11 min 42 s of real audio, stored in the archive as the audio stage leaves it
    (the site serves it, seekable), with a transcript made from the text that was read for it: its sentences
    timed in proportion to their length, so a line is within seconds of where it is spoken."""
    build = ArchiveBuilder(db)
    show = build.show("Datacast", author="James Le")
    episode = build.episode(
        show, "datacast-070", "Machine Learning Testing with Mohamed Elgendy",
        published="2021-08-15T12:00:00+00:00", duration=702.0, episode_number=70,
        enclosure_url=enclosure_url, enclosure_type="audio/mpeg",
        notes_html="<p>Mohamed Elgendy on his path from biomedical engineering to ML testing.</p>",
    )
    build.credit(episode, "Mohamed Elgendy", "guest")
    build.audio(episode, DATACAST / "episode-070.mp3", enclosure_url)
    text = (DATACAST / "episode-070-audio-reference.txt").read_text()
    lines = reference_lines(text, 701.0)
    for line in lines:
        line.speaker = "Mohamed Elgendy"
    build.transcript(episode, lines, source="whisper", fmt="whisper", model="tiny.en")
    return {"show": show, "episode": episode, "lines": lines}


def heading_chapters(lines: list[Segment]) -> list[dict]:
    """Chapters at the reference text's section headings ("On ...")."""
    return [{"title": line.text, "start": line.start} for line in lines
            if line.text.startswith("On ") and not line.text.endswith(".")]
