"""Typed records passed between pipeline stages and the store."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class Word:
    word: str
    start: float
    end: float
    probability: float | None = None


@dataclass
class Segment:
    """One timed line of a transcript."""

    start: float
    end: float
    text: str
    speaker: str | None = None
    words: list[Word] | None = None


@dataclass
class TranscriptSource:
    """Where a transcript came from: a feed file, or Whisper run on the audio."""

    source: str  # "feed" or "whisper"
    source_url: str | None = None
    format: str | None = None  # vtt, srt, json, html, text, whisper
    model: str | None = None
    options: dict | None = None
    language: str | None = None
    content_hash: str | None = None


@dataclass
class Passage:
    start: float
    end: float
    text: str
    speaker: str | None = None


@dataclass
class Takeaway:
    title: str
    text: str
    start: float | None
    end: float | None
    source: str  # notes or generated


@dataclass
class Chapter:
    title: str
    start: float
    end: float | None = None
    url: str | None = None
    image: str | None = None
    source: str = "feed"  # feed or generated


@dataclass
class PersonRef:
    name: str
    role: str = "guest"
    group: str | None = None
    href: str | None = None
    img: str | None = None
    source: str = "feed"  # feed, title, notes, transcript


@dataclass
class SearchResult:
    show: str
    episode_guid: str
    episode_title: str
    start: float
    end: float
    snippet: str
    score: float
    url: str
    kind: str = "passage"  # passage, takeaway, episode, guest
    speaker: str | None = None
    show_id: int | None = None
    episode_id: int | None = None
    published: str | None = None
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        """The result's fields with its extras lifted beside them (an extra never replaces a field): what
        `podarchive search --json` prints, and what the API gives with the snippet and guid made safe."""
        data = asdict(self)
        extra = data.pop("extra", None) or {}
        data.update({key: value for key, value in extra.items() if key not in data})
        return data


@dataclass
class TranscriptLink:
    """A transcript file an episode's feed offers (podcast:transcript)."""

    url: str
    type: str | None = None  # MIME type as the feed gives it: text/vtt, application/json, ...
    language: str | None = None
    rel: str | None = None  # "captions" when the file is timed captions
