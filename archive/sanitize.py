"""Make what feeds say safe to re-publish: HTML and search snippets in a page, URLs and ids anywhere.

Show notes are third-party HTML: scripts, styles, event handlers and `javascript:`/`data:` URLs never survive,
links open nothing but http(s) and mailto and carry rel="nofollow noopener". Images are dropped too, so a page
loads nothing from outside the site but the episode's audio.

A URL a feed gives (a link, an image, an enclosure, a person's href) is re-published only when it is an absolute
http(s) URL (`public_url`): never `javascript:`, `data:`, `vbscript:` or `file:`, nor a path on the machine that
ingested the feed.
"""

from __future__ import annotations

import functools
import hashlib
import html
import re
from urllib.parse import urlsplit

import nh3

NOTES_TAGS = frozenset(nh3.ALLOWED_TAGS - {"img", "area", "map"})
NOTES_ATTRIBUTES = {tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items() if tag in NOTES_TAGS}
NOTES_URL_SCHEMES = frozenset({"http", "https", "mailto"})
DROPPED_WITH_CONTENT = frozenset({"script", "style", "template", "noscript", "iframe", "object", "textarea"})
LINK_REL = "nofollow noopener"


def clean_notes(notes: str | None) -> str:
    """Sanitised HTML for show notes; plain-text notes become escaped paragraphs."""
    if not notes or not notes.strip():
        return ""
    if "<" not in notes:
        return plain_text_paragraphs(notes)
    return nh3.clean(
        notes,
        tags=set(NOTES_TAGS),
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes=NOTES_ATTRIBUTES,
        url_schemes=set(NOTES_URL_SCHEMES),
        link_rel=LINK_REL,
        strip_comments=True,
    )


def plain_text_paragraphs(text: str) -> str:
    paragraphs = [part.strip() for part in text.replace("\r\n", "\n").split("\n\n") if part.strip()]
    return "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs)


def clean_snippet(snippet: str | None) -> str:
    """A search snippet keeps its <mark> highlights and nothing else."""
    if not snippet:
        return ""
    return nh3.clean(snippet, tags={"mark"}, attributes={}, clean_content_tags=set(DROPPED_WITH_CONTENT))


PUBLIC_SCHEMES = frozenset({"http", "https"})
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
LOCAL_PLACE = re.compile(r"^(?:[/\\~]|[A-Za-z]:[/\\]|(?:file|data|javascript|vbscript):)", re.IGNORECASE)


def public_url(value) -> str | None:
    """`value` if it is an absolute http(s) URL with a host (surrounding spaces trimmed, inner ones encoded),
    else None."""
    if not isinstance(value, str):
        return None
    url = value.strip().replace(" ", "%20")
    if not url or CONTROL.search(url) or "\\" in url:
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return None
    return url if parts.scheme.lower() in PUBLIC_SCHEMES and host else None


def public_guid(guid: str | None) -> str | None:
    """An episode's guid as it may be re-published: as the feed gave it, unless it names a local place or a
    script (a `file:` URL or a path, as a local feed without guids gets from its enclosures), which becomes
    `sha256:<hex>` of it: the same id everywhere, nothing of the path."""
    if guid and LOCAL_PLACE.match(guid.strip()):
        return f"sha256:{hashlib.sha256(guid.encode('utf-8')).hexdigest()}"
    return guid


def plain_text(value: str | None) -> str:
    """Text with any HTML markup removed (scripts and styles with their content), entities decoded."""
    if not value:
        return ""
    if "<" not in value and "&" not in value:
        return value
    return html.unescape(nh3.clean(value, tags=set(), attributes={}, clean_content_tags=set(DROPPED_WITH_CONTENT)))


# Producers' notes: Markdown, never raw HTML. C0/C1 control characters (NUL included; not tab or newline) and the
# bidirectional embedding, override and isolate controls (which make text read in another order than it is
# stored) are removed before rendering; zero-width joiners and marks stay (emoji and scripts need them).
UNSAFE_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_BLOCK_END = re.compile(r"(</(?:p|li|h[1-6]|blockquote|pre|tr|dd|dt)>|<br\s*/?>|<hr\s*/?>)", re.IGNORECASE)


def strip_unsafe_characters(text: str) -> str:
    """`text` without control characters (tab and newlines kept) and bidirectional override controls."""
    return UNSAFE_CHARACTERS.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


MARKDOWN_LINK = re.compile(r"^(?:https?://[^/\\\s]|mailto:[^/\\\s])", re.IGNORECASE)


@functools.cache
def _markdown():
    from markdown_it import MarkdownIt

    # CommonMark with raw HTML off (it comes out as text), plus tables and ~~strikethrough~~. A link is made only
    # to an absolute http(s) or mailto URL (as markdown-it normalised it: entities decoded, spaces encoded);
    # anything else stays text.
    md = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
    md.validateLink = lambda url: bool(MARKDOWN_LINK.match(url))
    return md


def render_markdown(text: str | None) -> str:
    """A producer's Markdown as sanitised HTML (the same rules as a feed's notes: `clean_notes`). Raw HTML in the
    source stays text; a link to anything but an absolute http(s) or mailto URL stays text; images are
    dropped."""
    if not text or not text.strip():
        return ""
    return clean_notes(_markdown().render(strip_unsafe_characters(text)))


def notes_plain_text(notes_html: str | None) -> str:
    """Plain text of sanitised notes for search: block ends become line breaks, so words of two paragraphs
    never run together."""
    text = plain_text(_BLOCK_END.sub(r"\1\n", notes_html or ""))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(line.strip() for line in text.split("\n"))).strip()
