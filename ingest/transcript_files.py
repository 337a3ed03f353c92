"""Transcript files that feeds offer (podcast:transcript): pick the richest one, fetch it and parse it into segments.

Formats, per the Podcasting 2.0 transcript spec: WebVTT, SRT, JSON, HTML and plain text.

- The format is decided from the declared type (the feed's `type` attribute or an HTTP Content-Type), else from
  the URL's extension. The file's own signature (a `WEBVTT` header, a JSON object with `segments`, SRT cue
  timings, an HTML document) wins over a declared type, because servers often send `text/plain` for all of them.
- Speakers: `<v Name>` voice spans in WebVTT, a `Name:` prefix on an SRT cue or a text paragraph, `speaker` in
  JSON, `<cite>Name:</cite>` in HTML. As the spec asks writers to name a speaker only when the speaker changes,
  an unnamed WebVTT or SRT cue keeps the previous cue's speaker.
- Word-level JSON (one word per segment, as in the spec's example) is merged into sentence-sized segments of one
  speaker; the words are kept as `Word` records.
- Plain text and HTML without `<time>` carry no timing. Each paragraph becomes a segment whose start and end are
  estimated from the word count at an average speaking rate (150 words a minute), scaled to the episode's
  duration when the caller knows it. Estimated times keep `?t=` links roughly right; the transcript's format
  ("text" or "html") tells readers that the times are estimates. A paragraph that begins with a timestamp
  (`[00:01:02]` or `1:02`, as `to_text()` writes) uses it.
- WebVTT cue text loses its tags and entities, SRT its formatting tags (<i>, <b>, <u>, <font>, {\\an8}); JSON
  bodies are plain text. Whitespace is collapsed and empty cues are dropped. A file that
  is empty or holds no cue raises `TranscriptFormatError` saying why.
"""

from __future__ import annotations

import codecs
import html
import json
import mimetypes
import re
from html.parser import HTMLParser
from typing import Iterable, Protocol
from urllib.parse import urlparse

import httpx
import srt
import webvtt
from webvtt.errors import MalformedCaptionError, MalformedFileError

from archive.errors import PodarchiveError, TranscriptFetchError, TranscriptFormatError
from archive.records import Segment, Word

from . import http, trust

VTT, SRT, JSON, HTML, TEXT = "vtt", "srt", "json", "html", "text"
FORMATS = (VTT, SRT, JSON, HTML, TEXT)

# Richest first. JSON and WebVTT both carry speakers and times; JSON may carry word timings too.
FORMAT_RANK = {JSON: 0, VTT: 1, SRT: 2, HTML: 3, TEXT: 4}

FORMAT_BY_MIME = {
    "application/json": JSON,
    "text/json": JSON,
    "text/vtt": VTT,
    "application/x-subrip": SRT,
    "application/srt": SRT,
    "application/x-srt": SRT,
    "text/srt": SRT,
    "text/x-srt": SRT,
    "text/html": HTML,
    "application/xhtml+xml": HTML,
    "text/plain": TEXT,
}
FORMAT_BY_EXTENSION = {
    ".json": JSON,
    ".vtt": VTT,
    ".webvtt": VTT,
    ".srt": SRT,
    ".html": HTML,
    ".htm": HTML,
    ".txt": TEXT,
}

WORDS_PER_SECOND = 2.5  # 150 words a minute: the estimate for files without times
MERGE_MAX_GAP = 1.5  # seconds of silence that end a merged sentence
MERGE_MAX_WORDS = 60

# "Sarah:", "Speaker 1:", "Dr. Jane Smith:", "Gillian Ó Brien:" at the start of a cue or paragraph: up to four
# words, each capitalised (or a number), the first one capitalised.
SPEAKER_PREFIX = re.compile(r"^\s*([^\W_][\w'.\-]*(?: [^\W_][\w'.\-]*){0,3})\s?:\s+(?=\S)")
TIMESTAMP_PREFIX = re.compile(r"^\s*\[?((?:\d{1,2}:)?\d{1,2}:\d{2}(?:[.,]\d{1,3})?)\]?\s+")
SRT_SIGNATURE = re.compile(r"\A\s*\d+\s*\n\s*\d+:\d{2}:\d{2}[,.]\d{1,3}\s*-->")
HTML_SIGNATURE = re.compile(r"\A\s*(?:<\?xml[^>]*>\s*)?<(?:!doctype\s+html|html)\b", re.IGNORECASE)
TAG = re.compile(r"<[^>\n]*>")
SRT_TAG = re.compile(r"</?(?:i|b|u|s|font)\b[^>\n]*>|\{\\[^}\n]*\}", re.IGNORECASE)  # <i>, <font ...>, {\an8}


class TranscriptLinkLike(Protocol):
    url: str
    type: str | None


# ---------------------------------------------------------------------------------------------------------
# Choosing a file


def format_of(mime: str | None, url: str | None = None) -> str | None:
    """The transcript format a declared type (or else the URL's extension) names; None when unknown."""
    if mime:
        base = mime.split(";")[0].strip().lower()
        if base in FORMAT_BY_MIME:
            return FORMAT_BY_MIME[base]
        if base in FORMATS:
            return base
    if url:
        path = urlparse(url).path.lower()
        for extension, fmt in FORMAT_BY_EXTENSION.items():
            if path.endswith(extension):
                return fmt
    return None


def choose_transcript(links: Iterable[TranscriptLinkLike], language: str | None = None):
    """The richest transcript link we can read (JSON or VTT over SRT over HTML over text), or None.

    Among links of the same format, one in `language` (when given) is preferred, then the feed's order.
    """
    candidates = []
    for position, link in enumerate(links):
        fmt = format_of(getattr(link, "type", None), link.url)
        if fmt is None:
            continue
        link_language = (getattr(link, "language", None) or "").lower()
        language_miss = bool(language) and not link_language.startswith(language.lower()[:2])
        candidates.append((FORMAT_RANK[fmt], language_miss, position, link))
    if not candidates:
        return None
    return min(candidates, key=lambda c: c[:3])[3]


# ---------------------------------------------------------------------------------------------------------
# Fetching a file


def fetch_transcript_file(url: str, client: httpx.Client,
                          max_bytes: int = http.FetchRules.max_transcript_bytes,
                          policy: trust.FetchPolicy | None = None,
                          deadline: float = http.DEFAULT_DEADLINE_SECONDS) -> tuple[bytes, str | None]:
    """Download a transcript file: (bytes, content type). file:// URLs are read from disk when `policy` allows.

    `policy` is what the feed that named the URL may reach (default: the policy of the URL itself, as if the
    operator had named it). Raises TranscriptFetchError, with the trust rules' refusal as its cause.
    """
    policy = policy or http.feed_policy(url, client=client)
    try:
        trust.check_url(url, policy)
        if trust.is_file_url(url):
            path = trust.local_file(url, policy)
            return trust.read_local_file(url, policy, max_bytes, "transcript"), mimetypes.guess_type(path.name)[0]
        response = http.fetch_bytes(client, url, max_bytes=max_bytes, policy=policy, deadline=deadline,
                                    what="transcript")
    except httpx.HTTPError as exc:
        raise TranscriptFetchError(f"could not download transcript {url}: {exc}") from exc
    except PodarchiveError as exc:
        raise TranscriptFetchError(str(exc)) from exc
    if response.status_code >= 400:
        raise TranscriptFetchError(f"could not download transcript {url}: HTTP {response.status_code}")
    return response.content, response.headers.get("content-type")


# ---------------------------------------------------------------------------------------------------------
# Decoding and format detection


def decode_text(data: bytes, charset: str | None = None) -> str:
    """Bytes to text: a BOM decides, then a declared charset, then UTF-8, then UTF-16 by its zero bytes,
    then Windows-1252 / Latin-1."""
    for bom, encoding in (
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError as exc:
                raise TranscriptFormatError(f"the file starts with a {encoding} mark but is not {encoding}") from exc
    candidates = [charset] if charset else []
    candidates.append("utf-8")
    if len(data) >= 4 and data.count(0) > len(data) // 4:
        candidates.append("utf-16-le" if data[1] == 0 else "utf-16-be")
    candidates.append("cp1252")
    for encoding in candidates:
        try:
            return data.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
    return data.decode("latin-1")


def _charset(mime: str | None) -> str | None:
    match = re.search(r"charset=[\"']?([\w.:-]+)", mime or "", re.IGNORECASE)
    return match.group(1) if match else None


def sniff_format(text: str) -> str | None:
    """The format a file's content shows by itself, when it shows one clearly."""
    head = text.lstrip()[:2000]
    if head.startswith("WEBVTT"):
        return VTT
    if head.startswith("{") and '"segments"' in head:
        return JSON
    if SRT_SIGNATURE.match(head):
        return SRT
    if HTML_SIGNATURE.match(head):
        return HTML
    return None


def detect_format(data: bytes, fmt_or_mime: str | None, url: str | None = None) -> str:
    """The format `parse_transcript` reads `data` as: the file's own signature, else the declared type (a
    format name, a MIME type, or a URL / file name with an extension), else `url`'s extension, else text."""
    return _detect(decode_text(data, _charset(fmt_or_mime)), fmt_or_mime, url)


def _detect(text: str, fmt_or_mime: str | None, url: str | None) -> str:
    return sniff_format(text) or format_of(fmt_or_mime, url) or format_of(None, fmt_or_mime) or TEXT


# ---------------------------------------------------------------------------------------------------------
# Parsing


def parse_transcript(data: bytes, fmt_or_mime: str | None, *, url: str | None = None,
                     duration: float | None = None) -> list[Segment]:
    """Parse a transcript file into segments.

    `fmt_or_mime` is a format name (vtt, srt, json, html, text), a MIME type (charset honoured) or a URL or file
    name with an extension; `url` helps when the type is missing or odd; `duration` (seconds) scales the
    estimated times of untimed formats.
    """
    if not data or not data.strip():
        raise TranscriptFormatError("the transcript file is empty")
    text = decode_text(data, _charset(fmt_or_mime)).replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    if not text.strip():
        raise TranscriptFormatError("the transcript file is empty")
    fmt = _detect(text, fmt_or_mime, url)
    parser = {VTT: parse_vtt, SRT: parse_srt, JSON: parse_json, HTML: parse_html, TEXT: parse_text}[fmt]
    segments = parser(text, duration=duration) if fmt in (HTML, TEXT) else parser(text)
    if not segments:
        raise TranscriptFormatError(f"the {fmt} transcript holds no text")
    for segment in segments:  # machine transcripts sometimes carry a cue that ends before it starts
        segment.end = max(segment.end, segment.start)
    return segments


def cue_text(raw: str, markup: re.Pattern | None = TAG) -> str:
    """Cue text without markup or entities, whitespace collapsed."""
    if markup is not None:
        raw = html.unescape(markup.sub("", raw))
    return " ".join(raw.split())


def parse_vtt(text: str) -> list[Segment]:
    if not text.lstrip().startswith("WEBVTT") and "-->" in text:
        text = "WEBVTT\n\n" + text  # cues without the header line, as some tools write them
    try:
        captions = webvtt.from_string(text).captions
    except (MalformedFileError, MalformedCaptionError) as exc:
        raise TranscriptFormatError(f"not a readable WebVTT file: {exc}") from exc
    segments, speaker = [], None
    for caption in captions:
        speaker = _clean_speaker(caption.voice) or speaker
        body = cue_text(caption.raw_text)
        if body:
            segments.append(Segment(
                start=caption.start_time.in_milliseconds() / 1000,
                end=caption.end_time.in_milliseconds() / 1000,
                text=body,
                speaker=speaker,
            ))
    return segments


def parse_srt(text: str) -> list[Segment]:
    try:
        cues = list(srt.parse(text))
    except (srt.SRTParseError, ValueError) as exc:
        raise TranscriptFormatError(f"not a readable SRT file: {exc}") from exc
    segments, speaker = [], None
    for cue in cues:
        named, body = split_speaker(cue_text(cue.content, SRT_TAG))
        speaker = named or speaker
        if body:
            segments.append(Segment(cue.start.total_seconds(), cue.end.total_seconds(), body, speaker))
    return segments


def parse_json(text: str) -> list[Segment]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TranscriptFormatError(f"not valid JSON: {exc}") from exc
    items = document.get("segments") if isinstance(document, dict) else document
    if not isinstance(items, list):
        raise TranscriptFormatError("a JSON transcript needs a 'segments' list")
    segments = [segment for item in items if (segment := _json_segment(item)) is not None]
    segments.sort(key=lambda s: s.start)
    _fill_missing_ends(segments)
    if _is_word_level(segments):
        segments = merge_words(segments)
    return segments


def _json_segment(item) -> Segment | None:
    if not isinstance(item, dict):
        return None
    body = cue_text(str(item.get("body") or ""), markup=None)  # plain text by the spec
    start = _number(item.get("startTime"))
    if not body or start is None:
        return None
    end = _number(item.get("endTime"))
    return Segment(start=start, end=end if end is not None else -1.0, text=body,
                   speaker=_clean_speaker(item.get("speaker")))


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 0 and number == number and number != float("inf") else None


def _fill_missing_ends(segments: list[Segment]) -> None:
    """A segment without endTime ends where the next begins (the last one: where it begins)."""
    for current, following in zip(segments, segments[1:] + [None]):
        if current.end < current.start:
            current.end = max(current.start, following.start) if following else current.start


def _is_word_level(segments: list[Segment]) -> bool:
    if len(segments) < 2:
        return False
    counts = sorted(len(s.text.split()) for s in segments)
    return counts[len(counts) // 2] <= 1


def merge_words(segments: list[Segment]) -> list[Segment]:
    """Join word-level segments into sentences: same speaker, no long pause, until a sentence ends."""
    merged: list[Segment] = []
    for word in segments:
        current = merged[-1] if merged else None
        if (
            current is None
            or current.speaker != word.speaker
            or word.start - current.end > MERGE_MAX_GAP
            or current.text.endswith((".", "?", "!"))
            or len(current.words) >= MERGE_MAX_WORDS
        ):
            merged.append(Segment(word.start, word.end, "", word.speaker, []))
            current = merged[-1]
        current.text = f"{current.text} {word.text}".strip()
        current.end = max(current.end, word.end)
        current.words.append(Word(word.text, word.start, word.end))
    return merged


class _TranscriptHTML(HTMLParser):
    """Collects (speaker, time, paragraph) from <cite>, <time> and <p>."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.paragraphs: list[tuple[str | None, float | None, str]] = []
        self.speaker: str | None = None
        self.time: float | None = None
        self._inside: str | None = None
        self._skipping: str | None = None
        self._buffer: list[str] = []
        self.loose_text: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skipping = tag
        elif tag in ("cite", "time", "p"):
            self._flush()
            self._inside = tag
        elif tag == "br" and self._inside:
            self._buffer.append(" ")

    def handle_endtag(self, tag):
        if tag == self._skipping:
            self._skipping = None
        elif tag == self._inside:
            self._flush()

    def handle_data(self, data):
        if self._skipping:
            return
        (self._buffer if self._inside else self.loose_text).append(data)

    def _flush(self):
        content = " ".join("".join(self._buffer).split())
        if self._inside == "cite":
            self.speaker = _clean_speaker(content)
        elif self._inside == "time":
            self.time = parse_clock(content)
        elif self._inside == "p" and content:
            self.paragraphs.append((self.speaker, self.time, content))
            self.time = None
        self._inside, self._buffer = None, []

    def close(self):
        super().close()
        self._flush()


def parse_html(text: str, duration: float | None = None) -> list[Segment]:
    parser = _TranscriptHTML()
    try:
        parser.feed(text)
        parser.close()
    except AssertionError as exc:  # HTMLParser's way of failing on broken markup
        raise TranscriptFormatError(f"not readable HTML: {exc}") from exc
    if not parser.paragraphs:
        return parse_text("\n".join(parser.loose_text), duration=duration)
    return _timed_paragraphs(parser.paragraphs, duration)


def parse_text(text: str, duration: float | None = None) -> list[Segment]:
    """One segment per paragraph (blank-line separated; per line when the file has no blank lines)."""
    blocks = re.split(r"\n\s*\n", text.strip())
    if len(blocks) == 1:
        blocks = text.strip().split("\n")
    paragraphs, speaker = [], None
    for block in blocks:
        body = " ".join(block.split())
        start = None
        if match := TIMESTAMP_PREFIX.match(body):
            start, body = parse_clock(match.group(1)), body[match.end():]
        named, body = split_speaker(body)
        speaker = named or speaker
        if body:
            paragraphs.append((speaker, start, body))
    return _timed_paragraphs(paragraphs, duration)


def _timed_paragraphs(paragraphs, duration: float | None) -> list[Segment]:
    """Segments from (speaker, start|None, text): given starts are kept, missing ones estimated from word
    counts; each segment ends where the next begins."""
    word_counts = [len(text.split()) for _, _, text in paragraphs]
    spoken = sum(word_counts) / WORDS_PER_SECOND
    scale = duration / spoken if duration and spoken and not any(s is not None for _, s, _ in paragraphs) else 1.0
    starts, clock = [], 0.0
    for (_, start, _), count in zip(paragraphs, word_counts):
        clock = start if start is not None else clock
        starts.append(clock)
        clock += count / WORDS_PER_SECOND * scale
    segments = []
    for index, ((speaker, _, body), start) in enumerate(zip(paragraphs, starts)):
        estimated_end = start + word_counts[index] / WORDS_PER_SECOND * scale
        following = starts[index + 1] if index + 1 < len(starts) else None
        end = following if following is not None and following >= start else estimated_end
        segments.append(Segment(start=round(start, 3), end=round(end, 3), text=body, speaker=speaker))
    return segments


def parse_clock(value: str) -> float | None:
    """'1:02', '01:02:03', '00:15.920', '1:02,5' -> seconds; None when it is not a clock time."""
    match = re.fullmatch(r"\s*(?:(\d+):)?(\d{1,2}):(\d{1,2})(?:[.,](\d+))?\s*", value or "")
    if not match:
        return None
    hours, minutes, seconds, fraction = match.groups()
    total = int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds)
    return total + (float(f"0.{fraction}") if fraction else 0.0)


def split_speaker(text: str) -> tuple[str | None, str]:
    """'Sarah: In today's episode' -> ('Sarah', "In today's episode")."""
    match = SPEAKER_PREFIX.match(text)
    if not match or not all(word[0].isupper() or word[0].isdigit() for word in match.group(1).split()) \
            or not match.group(1)[0].isupper():
        return None, text.strip()
    return match.group(1).strip(), text[match.end():].strip()


def _clean_speaker(value) -> str | None:
    if not isinstance(value, str):
        return None
    name = " ".join(html.unescape(value).split()).rstrip(":").strip()
    return name or None
