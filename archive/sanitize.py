"""Make HTML from feeds and search snippets safe to put in a page.

Show notes are third-party HTML: scripts, styles, event handlers and `javascript:`/`data:` URLs never survive,
links open nothing but http(s) and mailto and carry rel="nofollow noopener". Images are dropped too, so a page
loads nothing from outside the site but the episode's audio.
"""

from __future__ import annotations

import html

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
