"""The parts of an episode's page made in Python: the readable transcript's HTML, the show notes trimmed of
what the page already shows, takeaways split for a short first view, the artwork and the soundbites.

The transcript is archive/transcript_reading.py's paragraphs of whole sentences. Every sentence carries its
start and end (data-start, data-end) and, where the transcript has word timings, every word its start, so the
player can highlight what is being spoken; every whole second has an id (`t<second>`) on the sentence that owns
it (or a marker before the word spoken then), so /episodes/1?t=619#t619 lands on its sentence without JavaScript.
"""

from __future__ import annotations

import html
import re

import lxml.html
from markupsafe import Markup, escape

from archive.passages import split_sentences
from archive.records import Segment
from archive.sanitize import public_url
from archive.transcript_reading import Paragraph, anchor_second, reading_paragraphs, sentence_at

from .filters import timecode


class ReadingView:
    """The transcript as paragraphs for the page, and where a time lands in it."""

    def __init__(self, segments: list[Segment], breaks: list[float] | None = None):
        self.paragraphs: list[Paragraph] = reading_paragraphs(segments, breaks)

    def __bool__(self) -> bool:
        return bool(self.paragraphs)

    def anchor_for(self, seconds: float | None) -> str:
        """The fragment a link to `seconds` uses ('' without a transcript): every second has its anchor."""
        second = anchor_second(self.paragraphs, seconds)
        return "" if second is None else f"t{second}"

    PARAGRAPH_HTML = (
        '<div class="para{current}" id="p{number}" data-start="{start}">'
        '<p class="para__head"><a class="timecode" href="?t={second}#t{second}" data-t="{start}">{clock}</a>'
        '{speaker}</p><p class="para__text">{sentences}</p></div>\n'
    )
    SENTENCE_HTML = '<span class="s{current}"{id} data-start="{start}" data-end="{end}">{body}</span>'

    def html(self, current_seconds: float | None = None) -> Markup:
        """The paragraphs as HTML; the sentence spoken at `current_seconds` (and its paragraph) marked current.

        Written with format strings rather than a Jinja loop: an hour of speech is ten thousand words.
        """
        current = sentence_at(self.paragraphs, current_seconds) if current_seconds is not None else None
        parts = []
        for p_index, paragraph in enumerate(self.paragraphs):
            sentences = []
            for s_index, sentence in enumerate(paragraph.sentences):
                sentences.append(self.SENTENCE_HTML.format(
                    current=" is-current" if current == (p_index, s_index) else "",
                    id=f' id="t{sentence.anchors[0]}"' if sentence.anchors else "",
                    start=round(sentence.start, 3),
                    end=round(sentence.end, 3),
                    body=_sentence_body(sentence),
                ))
            second = int(paragraph.start)
            parts.append(self.PARAGRAPH_HTML.format(
                current=" is-current" if current and current[0] == p_index else "",
                number=p_index,
                start=round(paragraph.start, 3),
                second=second,
                clock=timecode(paragraph.start),
                speaker=f' <span class="speaker">{escape(paragraph.speaker)}</span>' if paragraph.speaker_changed
                else "",
                sentences=" ".join(sentences),
            ))
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

def remote_images_allowed() -> bool:
    """Whether the site's Content-Security-Policy lets a page show an image from another site (img-src https:).
    Feeds' artwork is a URL on the feed's host (never fetched by the archive): without that, a page would only
    log the browser's refusal."""
    from . import CONTENT_SECURITY_POLICY

    for directive in CONTENT_SECURITY_POLICY.split(";"):
        name, *sources = directive.split()
        if name == "img-src":
            return "https:" in sources or "*" in sources
    return False


def artwork(db, episode: dict) -> dict | None:
    """The episode's image, else its show's: {"url", "alt"}; None when neither is an http(s) URL, or when the
    site's CSP keeps pages from showing other sites' images (`remote_images_allowed`)."""
    if not remote_images_allowed():
        return None
    url = public_url(episode.get("image"))
    if url:
        return {"url": url, "alt": f"Artwork for {episode.get('title') or 'this episode'}"}
    row = db.execute("SELECT image, title FROM shows WHERE id = ?", [episode["show_id"]]).fetchone()
    url = public_url(row[0]) if row else None
    return {"url": url, "alt": f"Artwork for {row[1] or 'this show'}"} if url else None


def soundbites(db, episode_id: int) -> list[dict]:
    """The episode's soundbites (podcast:soundbite, ingest/feed_store.py) in time order: start, duration, title."""
    rows = db.execute("SELECT start, duration, title FROM soundbites WHERE episode_id = ? ORDER BY start",
                      [episode_id]).fetchall()
    return [{"start": start, "duration": duration, "end": start + duration if duration else None,
             "title": " ".join((title or "").split()) or None} for start, duration, title in rows]
