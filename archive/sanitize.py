"""Make what feeds say safe to re-publish: HTML and search snippets in a page, URLs and ids anywhere.

Show notes are third-party HTML: scripts, styles, event handlers and `javascript:`/`data:` URLs never survive,
links open nothing but http(s) and mailto and carry rel="nofollow noopener". Images are dropped too, so a page
loads nothing from outside the site but the episode's audio.

A URL a feed gives (a link, an image, an enclosure, a person's href) is re-published only when it is an absolute
http(s) URL (`public_url`): never `javascript:`, `data:`, `vbscript:` or `file:`, nor a path on the machine that
ingested the feed.
"""

from __future__ import annotations

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
