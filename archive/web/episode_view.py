"""The parts of an episode's page made in Python: the readable transcript's HTML, the show notes trimmed of
what the page already shows, takeaways split for a short first view, the artwork and the soundbites.

The transcript is archive/transcript_reading.py's paragraphs of whole sentences. Every sentence carries its
start and end (data-start, data-end) and, where the transcript has word timings, every word its start, so the
player can highlight what is being spoken; every whole second has an id (`t<second>`) on the sentence that owns
it (or a marker before the word spoken then), so /episodes/1?t=619#t619 lands on its sentence without JavaScript.
That HTML is made once per version of the transcript and kept in the app (`transcript_view`, `TranscriptCache`):
a request marks its moment's sentence in it.
"""

from __future__ import annotations

import hashlib
import html
import re
import struct
import threading
from collections import OrderedDict

import lxml.html
from flask import url_for
from markupsafe import Markup, escape

from archive.passages import split_sentences
from archive.records import Segment
from archive.transcript_reading import Paragraph, last_anchor, reading_paragraphs
from archive.transcript_store import segment_rows, segments_from_rows

from .filters import timecode


class RenderedTranscript:
    """A transcript's readable HTML, made once (`render_transcript`) and shared by every request for it: each
    paragraph's opening and its sentences' HTML with nothing marked current, and where each second's anchor is.
    Nothing in it depends on the request (the ?t= moment is marked by `ReadingView.html`); tuples, as it is
    shared between threads."""

    __slots__ = ("heads", "sentences", "spans", "highest", "size")

    def __init__(self, heads: tuple[str, ...], sentences: tuple[tuple[str, ...], ...],
                 spans: tuple[tuple[int, int, int, int], ...], highest: int | None):
        self.heads = heads  # per paragraph: its HTML up to its sentences
        self.sentences = sentences  # per paragraph: each sentence's HTML
        self.spans = spans  # per sentence owning seconds: (first second, last second, paragraph, sentence)
        self.highest = highest  # the last second with an anchor (None without a transcript)
        # about the memory it holds, in bytes (the HTML is mostly ASCII: a byte a character, and each string's
        # and tuple's own size; an hour with word timings: 0.77 MB by this count, 0.81 MB by tracemalloc's)
        count = sum(len(parts) for parts in sentences)
        self.size = (sum(len(part) for part in heads) + sum(len(part) for parts in sentences for part in parts)
                     + 64 * count + 100 * (len(heads) + len(spans)))

    def __bool__(self) -> bool:
        return bool(self.heads)


EMPTY = RenderedTranscript((), (), (), None)
PARAGRAPH_OPEN, SENTENCE_OPEN = '<div class="para', '<span class="s'
PARAGRAPH_HTML = (
    PARAGRAPH_OPEN + '" id="p{number}" data-start="{start}">'
    '<p class="para__head"><a class="timecode" href="?t={second}#t{second}" data-t="{start}">{clock}</a>'
    '{speaker}</p><p class="para__text">'
)
PARAGRAPH_END = "</p></div>\n"
SENTENCE_HTML = SENTENCE_OPEN + '"{id} data-start="{start}" data-end="{end}">{body}</span>'
CURRENT = " is-current"  # the class added to the sentence spoken at the page's moment, and its paragraph


def render_transcript(segments: list[Segment], breaks: list[float] | None = None) -> RenderedTranscript:
    """The transcript's paragraphs (archive/transcript_reading.py) as HTML, nothing marked current.

    Written with format strings rather than a Jinja loop: an hour of speech is ten thousand words.
    """
    paragraphs: list[Paragraph] = reading_paragraphs(segments, breaks)
    heads, sentences, spans = [], [], []
    for p_index, paragraph in enumerate(paragraphs):
        heads.append(PARAGRAPH_HTML.format(
            number=p_index,
            start=round(paragraph.start, 3),
            second=int(paragraph.start),
            clock=timecode(paragraph.start),
            speaker=f' <span class="speaker">{escape(paragraph.speaker)}</span>' if paragraph.speaker_changed
            else "",
        ))
        sentences.append(tuple(SENTENCE_HTML.format(
            id=f' id="t{sentence.anchors[0]}"' if sentence.anchors else "",
            start=round(sentence.start, 3),
            end=round(sentence.end, 3),
            body=_sentence_body(sentence),
        ) for sentence in paragraph.sentences))
        spans.extend((sentence.anchors[0], sentence.anchors[-1], p_index, s_index)
                     for s_index, sentence in enumerate(paragraph.sentences) if sentence.anchors)
    return RenderedTranscript(tuple(heads), tuple(sentences), tuple(spans), last_anchor(paragraphs))


class ReadingView:
    """The transcript as paragraphs for the page, and where a time lands in it."""

    def __init__(self, rendered: RenderedTranscript = EMPTY):
        self.rendered = rendered

    def __bool__(self) -> bool:
        return bool(self.rendered)

    def _second(self, seconds: float | None) -> int | None:
        """The whole second a link to `seconds` names, within the anchored range (transcript_reading's
        `anchor_second`)."""
        if seconds is None or self.rendered.highest is None:
            return None
        return min(max(0, int(seconds)), self.rendered.highest)

    def anchor_for(self, seconds: float | None) -> str:
        """The fragment a link to `seconds` uses ('' without a transcript): every second has its anchor."""
        second = self._second(seconds)
        return "" if second is None else f"t{second}"

    def current(self, seconds: float | None) -> tuple[int, int] | None:
        """(paragraph, sentence) of the sentence whose anchors hold `seconds` (transcript_reading's
        `sentence_at`)."""
        second = self._second(seconds)
        if second is not None:
            for first, last, p_index, s_index in self.rendered.spans:
                if first <= second <= last:
                    return p_index, s_index
        return None

    def html(self, current_seconds: float | None = None) -> Markup:
        """The paragraphs as HTML; the sentence spoken at `current_seconds` (and its paragraph) marked current."""
        rendered, current = self.rendered, self.current(current_seconds)
        parts = []
        for p_index, head in enumerate(rendered.heads):
            sentences = rendered.sentences[p_index]
            if current and current[0] == p_index:
                head = PARAGRAPH_OPEN + CURRENT + head[len(PARAGRAPH_OPEN):]
                marked = sentences[current[1]]
                sentences = list(sentences)
                sentences[current[1]] = SENTENCE_OPEN + CURRENT + marked[len(SENTENCE_OPEN):]
            parts.append(head)
            parts.append(" ".join(sentences))
            parts.append(PARAGRAPH_END)
        return Markup("".join(parts))


def _sentence_body(sentence) -> str:
    """The sentence's words, each timed word in a span; a marker (id t<second>) before the word spoken at each
    further second the sentence owns."""
    markers = list(sentence.anchors[1:])
    words = []
    for word in sentence.words:
        prefix = ""
        while markers and markers[0] < word.end:
            prefix += f'<a id="t{markers.pop(0)}"></a>'
        text = html.escape(word.text)
        words.append(prefix + (f'<span class="w" data-start="{round(word.start, 3)}">{text}</span>' if word.timed
                               else text))
    return " ".join(words) + "".join(f'<a id="t{second}"></a>' for second in markers)


# ---- the cache of rendered transcripts ---------------------------------------------------------------------------

class TranscriptCache:
    """Rendered transcripts by key, least recently used dropped first: at most `max_entries` of them, holding at
    most `max_bytes` in all (`RenderedTranscript.size`; one bigger than that is rendered for its request, not
    kept). An hour-long transcript with word timings is about 0.8 MB: the default keeps about 80 of them. One per
    app (`transcript_cache`), shared by its threads; each process of a server has its own."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024, max_entries: int = 256):
        self.max_bytes, self.max_entries = max_bytes, max_entries
        self.bytes = 0
        self._entries: OrderedDict[str, RenderedTranscript] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> RenderedTranscript | None:
        with self._lock:
            rendered = self._entries.get(key)
            if rendered is not None:
                self._entries.move_to_end(key)
            return rendered

    def put(self, key: str, rendered: RenderedTranscript) -> None:
        if rendered.size > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self.bytes -= old.size
            self._entries[key] = rendered
            self.bytes += rendered.size
            while self.bytes > self.max_bytes or len(self._entries) > self.max_entries:
                _, dropped = self._entries.popitem(last=False)
                self.bytes -= dropped.size


def transcript_cache(app) -> TranscriptCache:
    """The app's cache of rendered transcripts."""
    from . import app_extension

    return app_extension(app, "podarchive.transcripts", TranscriptCache)


_ROW = struct.Struct("<qdd")


def transcript_key(rows: list[tuple], breaks: list[float]) -> str:
    """A digest of everything a rendered transcript is made of: the transcript's id and every line as stored
    (times, text, speaker, word timings) in order, and the topic breaks. A correction, a speaker renamed, a new
    transcript (even one given the old one's id, which SQLite reuses once the old row is deleted) or a chapter
    moved gives another key, so a cached rendering is never served for text that has changed."""
    digest = hashlib.blake2b(digest_size=20)
    points = repr(list(breaks)).encode()
    digest.update(len(points).to_bytes(8, "little"))
    digest.update(points)
    for transcript_id, start, end, *texts in rows:
        digest.update(_ROW.pack(transcript_id, start, end))
        for text in texts:  # text, speaker, words: length-prefixed, None apart from ''
            data = b"" if text is None else text.encode()
            digest.update((-1 if text is None else len(data)).to_bytes(8, "little", signed=True))
            digest.update(data)
    return digest.hexdigest()


def transcript_view(db, episode_id: int, breaks: list[float], cache: TranscriptCache | None = None) -> ReadingView:
    """The episode's transcript for its page, rendered once per version of it (`transcript_key`) when `cache`
    is given: a request reads the stored lines and hashes them (about a millisecond for an hour) rather than
    making the paragraphs and their HTML again."""
    rows = segment_rows(db, episode_id)
    if not rows:
        return ReadingView()
    key = transcript_key(rows, breaks) if cache is not None else None
    rendered = cache.get(key) if cache is not None else None
    if rendered is None:
        rendered = render_transcript(segments_from_rows(rows), breaks)
        if cache is not None:
            cache.put(key, rendered)
    return ReadingView(rendered)


# ---- takeaways ---------------------------------------------------------------------------------------------------

def takeaway_parts(text: str | None) -> dict:
    """A takeaway's text as its first sentence (the short view) and its paragraphs (the full one)."""
    paragraphs = [" ".join(part.split()) for part in re.split(r"\n\s*\n|\n", text or "") if part.strip()]
    if not paragraphs:
        return {"lead": "", "rest": [], "paragraphs": []}
    sentences = split_sentences(paragraphs[0])
    lead = sentences[0] if sentences else paragraphs[0]
    rest = [" ".join(sentences[1:])] if len(sentences) > 1 else []
    return {"lead": lead, "rest": rest + paragraphs[1:], "paragraphs": paragraphs}


# ---- notes -------------------------------------------------------------------------------------------------------

HEADINGS = {f"h{n}": n for n in range(1, 7)}


def _words(text: str) -> str:
    return " ".join(re.findall(r"\w+", (text or "").lower()))


def trim_notes(notes_html: str, takeaways: list[dict]) -> str:
    """Sanitised notes without what the page shows already or what says nothing: paragraphs and items that
    repeat a takeaway's text, headings that are a takeaway's title, then (repeatedly) an introduction ending in
    ':' with nothing after it and headings with nothing under them. Works on the top-level blocks only."""
    if not notes_html.strip():
        return notes_html
    fragments = lxml.html.fragments_fromstring(notes_html)
    if not fragments or isinstance(fragments[0], str):
        return notes_html  # plain text first: leave it as it is
    shown = [_words(item.get("title")) for item in takeaways] + [_words(item.get("text")) for item in takeaways]
    shown = [text for text in shown if text]
    shown_text = "\n".join(shown)

    def repeated(block) -> bool:
        text = _words(block.text_content())
        return bool(text) and len(text) >= 12 and text in shown_text or bool(text) and text in shown

    blocks = [block for block in fragments if not repeated(block)]
    changed = True
    while changed:
        changed = False
        for index, block in enumerate(blocks):
            following = blocks[index + 1] if index + 1 < len(blocks) else None
            ends_section = following is None or (following.tag in HEADINGS and (
                block.tag not in HEADINGS or HEADINGS[following.tag] <= HEADINGS[block.tag]))
            empty_heading = block.tag in HEADINGS and ends_section
            dangling_intro = (block.tag not in HEADINGS and ends_section
                              and block.text_content().strip().endswith(":"))
            blank = block.tag not in HEADINGS and not block.text_content().strip() and not len(block)
            if empty_heading or dangling_intro or blank:
                del blocks[index]
                changed = True
                break
    return "".join(lxml.html.tostring(block, encoding="unicode") for block in blocks)


# ---- artwork and soundbites --------------------------------------------------------------------------------------

def artwork(db, episode: dict) -> dict | None:
    """The episode's artwork, else its show's, as the site serves it (ingest/artwork.py stored it at ingest):
    {"url", "alt", "width", "height"}; None when neither image is stored."""
    found = stored_artwork(db, episode.get("image"))
    if found:
        return {**found, "alt": f"Artwork for {episode.get('title') or 'this episode'}"}
    row = db.execute("SELECT image, title FROM shows WHERE id = ?", [episode["show_id"]]).fetchone()
    return show_artwork(db, {"image": row[0], "title": row[1]}) if row else None


def show_artwork(db, show: dict) -> dict | None:
    """A show's stored artwork as `artwork` gives it; None when none is stored."""
    found = stored_artwork(db, show.get("image"))
    return {**found, "alt": f"Artwork for {show.get('title') or 'this show'}"} if found else None


def stored_artwork(db, url: str | None) -> dict | None:
    if not url:
        return None
    row = db.execute("SELECT sha256, width, height FROM artwork WHERE url = ? AND sha256 IS NOT NULL",
                     [url]).fetchone()
    if row is None:
        return None
    return {"url": url_for("pages.artwork_image", digest=row[0]), "digest": row[0], "width": row[1], "height": row[2]}


def soundbites(db, episode_id: int) -> list[dict]:
    """The episode's soundbites (podcast:soundbite, ingest/feed_store.py) in time order: start, duration, title."""
    rows = db.execute("SELECT start, duration, title FROM soundbites WHERE episode_id = ? ORDER BY start",
                      [episode_id]).fetchall()
    return [{"start": start, "duration": duration, "end": start + duration if duration else None,
             "title": " ".join((title or "").split()) or None} for start, duration, title in rows]
