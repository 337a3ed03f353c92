"""The notes' takeaways section: the points a producer wrote under a heading such as "Key Takeaways" (Datacast's
"On Moving To The US" sections), read from HTML, Markdown or plain text (`takeaways_from_notes`).

Understanding stage: pure functions over the notes the feed stage stored; ingest/takeaways.py places the points on
the transcript and ingest/notes_chapters.py makes chapters of them.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from archive.passages import split_sentences

TAKEAWAYS_HEADING = re.compile(
    r"^(?:the |my |our |\d+ )?(?:key |main |top |big |biggest )?"
    r"(?:take-?aways?|highlights|key (?:points|insights|lessons|learnings|ideas)|lessons(?: learned| learnt)?)"
    r"(?:\s+from\b.*)?\s*:?$",
    re.IGNORECASE,
)
END_HEADING = re.compile(
    r"^(?:links?|resources|mentioned|(?:episode )?transcript(?:ion)?|about|credits|sponsors?|subscribe|"
    r"timestamps|(?:show |episode )?notes|contact|follow|references|further reading|books|people|chapters)\b",
    re.IGNORECASE,
)
BLOCK_TAGS = {"p", "li", "blockquote", "dd", "dt", "pre"}
HEADING_TAGS = {f"h{n}": n for n in range(1, 7)}
BOLD_LEVEL = 7  # a bold line, or a heading guessed in plain text, ranks below every <hN>
MAX_HEADING_WORDS = 14


@dataclass
class _Block:
    kind: str  # heading, text, item
    text: str
    level: int = BOLD_LEVEL
    in_item: bool = False  # a heading made of a list item's bold lead


def plain_spaces(text: str) -> str:
    """Non-breaking and odd spaces to plain spaces, runs of whitespace to one."""
    text = unicodedata.normalize("NFKC", text or "")
    return re.sub(r"\s+", " ", text).strip()


def clean_heading(text: str) -> str:
    """Trim a heading and close a quote it leaves open (`On Writing “Deep Learning` -> `... Learning”`)."""
    text = plain_spaces(text).rstrip(":").strip()
    if text.count("“") > text.count("”"):
        text += "”"
    if text.count('"') % 2:
        text += '"'
    return text


def _html_blocks(html: str) -> list[_Block]:
    import lxml.html

    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div")
    except Exception:  # lxml raises several types for hopeless markup; treat it as text then
        return _text_blocks(re.sub(r"<[^>]+>", "\n", html))
    blocks: list[_Block] = []
    _walk(root, blocks)
    return blocks


def _add_text(blocks: list[_Block], text: str | None, kind: str = "text") -> None:
    text = plain_spaces(text or "")
    if text:
        blocks.append(_Block(kind, text))


def _walk(element, blocks: list[_Block]) -> None:
    _add_text(blocks, element.text)
    for child in element:
        tag = child.tag if isinstance(child.tag, str) else ""
        if tag in HEADING_TAGS:
            blocks.append(_Block("heading", plain_spaces(child.text_content()), HEADING_TAGS[tag]))
        elif tag in BLOCK_TAGS:
            _block_element(child, blocks, "item" if tag == "li" else "text")
        elif tag in ("strong", "b") and len(plain_spaces(child.text_content()).split()) <= MAX_HEADING_WORDS:
            blocks.append(_Block("heading", plain_spaces(child.text_content())))
        elif tag in ("script", "style"):
            pass
        elif tag == "br" or not tag:
            pass
        else:
            _walk(child, blocks)
        _add_text(blocks, child.tail)


def _block_element(element, blocks: list[_Block], kind: str) -> None:
    """A paragraph or list item; a short bold lead (`<strong>Title</strong>: text`) is a heading of its own."""
    full = plain_spaces(element.text_content())
    if not full:
        return
    first = element[0] if len(element) else None
    lead_is_bold = (
        first is not None and first.tag in ("strong", "b") and not plain_spaces(element.text or "")
        and len(plain_spaces(first.text_content()).split()) <= MAX_HEADING_WORDS
    )
    if lead_is_bold:
        lead = plain_spaces(first.text_content())
        rest = plain_spaces(full[len(lead):]).lstrip(":.–—- ").strip()
        blocks.append(_Block("heading", lead, in_item=kind == "item"))
        if rest:
            blocks.append(_Block(kind, rest))
        return
    blocks.append(_Block(kind, full))


_LIST_ITEM = re.compile(r"^\s*(?:[-*•–]|\d{1,2}[.)])\s+")


def _looks_like_heading(line: str) -> bool:
    words = line.split()
    if not words or len(words) > MAX_HEADING_WORDS or len(line) > 100:
        return False
    if TAKEAWAYS_HEADING.match(line):
        return True
    return not re.search(r"[.!?;,:]$", line) and (line[0].isupper() or line[0] in "“\"'‘" or line[0].isdigit())


def _text_blocks(text: str) -> list[_Block]:
    blocks = []
    for raw in (text or "").splitlines():
        line = plain_spaces(raw)
        if not line:
            continue
        markdown = re.match(r"^(#{1,6})\s+(.*)$", line)
        bold = re.match(r"^\*\*(.+?)\*\*:?$", line)
        if markdown:
            blocks.append(_Block("heading", markdown.group(2), len(markdown.group(1))))
        elif bold:
            blocks.append(_Block("heading", bold.group(1)))
        elif _LIST_ITEM.match(line):
            blocks.append(_Block("item", _LIST_ITEM.sub("", line)))
        elif _looks_like_heading(line):
            blocks.append(_Block("heading", line))
        else:
            blocks.append(_Block("text", line))
    return blocks


def _looks_like_html(notes: str) -> bool:
    return bool(re.search(r"<(?:p|h[1-6]|div|ul|ol|li|br|strong|b)\b[^>]*>", notes, re.IGNORECASE))


def short_title(text: str, max_chars: int = 60) -> str:
    """The first sentence of text, cut at a word boundary to max_chars."""
    sentences = split_sentences(text)
    first = sentences[0].rstrip(".!?") if sentences else text
    if len(first) <= max_chars:
        return first
    return first[:max_chars].rsplit(" ", 1)[0].rstrip(",;:–— ") + "…"


def takeaways_from_notes(notes: str | None) -> list[tuple[str, str]]:
    """(title, text) of each point under the notes' takeaways heading; [] when the notes have none.

    Works on HTML (headings <h1>-<h6>, or bold lines, introduce the points; paragraphs and list items are their
    text) and on plain or Markdown text (a short line without final punctuation is a heading). The section starts
    at a heading such as "Key Takeaways", "Takeaways" or "Highlights" and ends at a heading of higher rank or one
    that opens another part of the notes ("Links", "Transcript", "About ..."). Points without text are skipped.
    Without sub-headings, each paragraph or list item after the heading is a point of its own.
    """
    if not notes or not notes.strip():
        return []
    blocks = _html_blocks(notes) if _looks_like_html(notes) else _text_blocks(notes)
    start = next((i for i, b in enumerate(blocks) if b.kind == "heading" and TAKEAWAYS_HEADING.match(b.text)), None)
    if start is None:
        return []
    level = blocks[start].level
    sections: list[tuple[str, list[str]]] = []
    loose: list[str] = []  # paragraphs and items before any sub-heading
    item_points = False  # the points are list items with bold leads: an item without one is a point too
    for block in blocks[start + 1:]:
        if block.kind == "heading":
            if block.level < level or END_HEADING.match(block.text) or TAKEAWAYS_HEADING.match(block.text):
                break
            sections.append((clean_heading(block.text), []))
            item_points = block.in_item
        elif block.kind == "item" and item_points and sections and sections[-1][1]:
            sections.append((short_title(block.text), [block.text]))
        elif sections:
            sections[-1][1].append(block.text)
        else:
            loose.append(block.text)
    if sections:
        return [(title, "\n\n".join(texts)) for title, texts in sections if title and texts]
    points = [text for text in loose if not text.endswith(":")]  # "Here are the highlights:" introduces them
    return [(short_title(text), text) for text in points]
