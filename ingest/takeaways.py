"""Takeaways: the points of an episode worth remembering, each tied to the moment it is discussed.

Two sources:

* **notes** - when the show notes carry a takeaways section (Datacast's "Key Takeaways", then one heading per
  point such as "On Moving To The US" with paragraphs), `takeaways_from_notes` reads it and `place_takeaways`
  finds where each point is discussed by meaning: every takeaway (title + text) is embedded and matched to the
  passages by cosine similarity, keeping the notes' order unless the transcript clearly says otherwise
  (`align_in_order`).
* **generated** - otherwise `generate_takeaways` finds the episode's topic segments (ingest/topics.py) and picks
  in each the guest's most representative, informative statement (see `score_statements`; the host's passages
  are left out, see ingest.guests.identify_host), titled by its key phrases against the episode. Offline and
  deterministic. When the operator configures an OpenAI-compatible endpoint (PODARCHIVE_LLM_URL,
  PODARCHIVE_LLM_MODEL, PODARCHIVE_LLM_API_KEY; read by ingest.understand.UnderstandOptions), it writes the
  takeaways instead and they are placed like the notes' ones; any failure there falls back to the offline
  method with a logged warning.
"""

from __future__ import annotations

import json
import logging
import math
import re
import unicodedata
from dataclasses import dataclass, field

import numpy as np
import sqlite_utils

from archive.db import write_transaction
from archive.passages import split_sentences
from archive.records import Passage, Takeaway
from archive.settings import Settings
from archive.studio import producer_fields

from .topics import SPOKEN_STOPWORDS, TopicOptions, keyphrases, phrase_title, topic_segments

log = logging.getLogger(__name__)

# ---- reading takeaways from show notes -------------------------------------------------------------------------

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


# ---- placing takeaways on the transcript -------------------------------------------------------------------------

# How much better a passage must match for a takeaway to be placed out of the notes' order. On Episode 70 the
# full takeaways land right (11/11) with or without it; probed with one sentence of each takeaway, in-order
# placement lands 9-10 of 11 where the per-takeaway best match lands 7-9.
ORDER_PENALTY = 0.15


def align_in_order(similarity: np.ndarray, penalty: float = ORDER_PENALTY) -> list[int]:
    """Best passage for each takeaway (row), preferring the rows' order.

    Dynamic programming over the similarity matrix: the total similarity of the chosen passages is maximised,
    and each step back in time (a takeaway placed before the previous one) costs `penalty`. With penalty 0
    this is the per-row argmax; with a large one the placement is monotonic.
    """
    rows, cols = similarity.shape
    if rows == 0 or cols == 0:
        return []
    best = similarity[0].astype(np.float64).copy()
    back = np.zeros((rows, cols), dtype=np.int64)
    for row in range(1, rows):
        prefix_value = np.maximum.accumulate(best)
        prefix_index = _running_argmax(best)
        suffix_value = np.full(cols, -np.inf)
        suffix_index = np.zeros(cols, dtype=np.int64)
        running, running_index = -np.inf, cols - 1
        for col in range(cols - 1, -1, -1):
            suffix_value[col], suffix_index[col] = running, running_index  # strictly after col
            if best[col] > running:
                running, running_index = best[col], col
        stepping_back = suffix_value - penalty
        use_prefix = prefix_value >= stepping_back
        back[row] = np.where(use_prefix, prefix_index, suffix_index)
        best = similarity[row] + np.where(use_prefix, prefix_value, stepping_back)
    path = [int(np.argmax(best))]
    for row in range(rows - 1, 0, -1):
        path.append(int(back[row][path[-1]]))
    return path[::-1]


def _running_argmax(values: np.ndarray) -> np.ndarray:
    out = np.zeros(len(values), dtype=np.int64)
    best_index = 0
    for i, value in enumerate(values):
        if value > values[best_index]:
            best_index = i
        out[i] = best_index
    return out


def place_takeaways(items: list[tuple[str, str]], passages: list[Passage], passage_vectors: np.ndarray, embedder,
                    source: str = "notes", in_order: bool = True) -> list[Takeaway]:
    """Tie each (title, text) to the passage that discusses it; start/end are that passage's times.

    Without passages (or without times) the takeaways are kept with no time.
    """
    if not items:
        return []
    timed = bool(passages) and max(p.end for p in passages) > 0
    if not timed:
        return [Takeaway(title=t, text=x, start=None, end=None, source=source) for t, x in items]
    vectors = embedder.embed([f"{title}. {text}" for title, text in items])
    similarity = vectors @ np.asarray(passage_vectors).T
    chosen = align_in_order(similarity) if in_order else [int(i) for i in similarity.argmax(axis=1)]
    return [
        Takeaway(title=title, text=text, start=passages[j].start, end=passages[j].end, source=source)
        for (title, text), j in zip(items, chosen)
    ]


# ---- generating takeaways from the transcript --------------------------------------------------------------------

@dataclass
class LLMOptions:
    """An OpenAI-compatible chat completions endpoint the operator runs or pays for."""

    url: str
    model: str
    api_key: str | None = None
    timeout: float = 120.0
    max_chars: int = 60_000  # of transcript sent; longer transcripts are cut
    temperature: float = 0.0

    @classmethod
    def from_env(cls) -> LLMOptions | None:
        """The endpoint the PODARCHIVE_LLM_* settings name (archive/settings.py); None unless URL and model are."""
        settings = Settings.from_env()
        if not settings.llm_url or not settings.llm_model:
            return None
        return cls(url=settings.llm_url, model=settings.llm_model, api_key=settings.llm_api_key)

    @property
    def endpoint(self) -> str:
        base = self.url.rstrip("/")
        if base.endswith("/chat/completions"):
            return base
        if base.endswith("/v1"):
            return base + "/chat/completions"
        return base + "/v1/chat/completions"


@dataclass
class TakeawayOptions:
    min_words: int = 8  # a statement shorter than this says too little
    max_words: int = 60  # a takeaway's text: the best statement, plus the next while it fits
    topics: TopicOptions = field(default_factory=TopicOptions)
    llm: LLMOptions | None = None


@dataclass
class Statement:
    text: str
    start: float
    end: float
    passage: int  # index of the passage it was said in


def _statements(passages: list[Passage], indices: range, host: str | None) -> list[Statement]:
    out = []
    for index in indices:
        passage = passages[index]
        if host is not None and passage.speaker == host:
            continue
        sentences = split_sentences(passage.text)
        total = sum(len(s) for s in sentences) or 1
        cursor = passage.start
        for sentence in sentences:
            span = (passage.end - passage.start) * len(sentence) / total
            out.append(Statement(sentence, cursor, cursor + span, index))
            cursor += span
    return out


def informativeness(sentence: str, min_words: int = 8) -> float:
    """0..1: long enough, not a question, mostly content words (fillers and function words count against)."""
    words = re.findall(r"[A-Za-z0-9'’-]+", sentence)
    if len(words) < min_words or sentence.rstrip().endswith("?"):
        return 0.0
    content = sum(1 for w in words if w.lower().replace("’", "'") not in SPOKEN_STOPWORDS)
    density = content / len(words)
    length = min(1.0, math.log(len(words)) / math.log(25))
    too_long = 1.0 if len(words) <= 60 else 60 / len(words)
    return density * length * too_long


def score_statements(statements: list[Statement], vectors: np.ndarray, centroid: np.ndarray,
                     min_words: int) -> np.ndarray:
    """Centrality to the segment (cosine to its mean passage vector) weighted by informativeness."""
    centre = centroid / (np.linalg.norm(centroid) or 1.0)
    centrality = vectors @ centre
    info = np.asarray([informativeness(s.text, min_words) for s in statements])
    return np.where(info > 0, centrality * (0.5 + 0.5 * info), -1.0)


def _expand(statements: list[Statement], best: int, max_words: int, min_words: int) -> tuple[str, float, float]:
    """The best statement, plus the informative ones that follow it in the same passage while they fit in
    max_words (a question, a short aside or a heading read aloud ends it)."""
    chosen = statements[best]
    parts, end = [chosen.text], chosen.end
    words = len(chosen.text.split())
    for following in statements[best + 1:]:
        if following.passage != chosen.passage or not informativeness(following.text, min_words):
            break
        size = len(following.text.split())
        if words + size > max_words:
            break
        parts.append(following.text)
        words += size
        end = following.end
    return " ".join(parts), chosen.start, end


def offline_takeaways(passages: list[Passage], vectors: np.ndarray, embedder, host: str | None = None,
                      options: TakeawayOptions | None = None) -> list[Takeaway]:
    """One takeaway per topic segment: its guest's most central, informative statement (see module doc),
    titled by its key phrases."""
    options = options or TakeawayOptions()
    if not passages:
        return []
    vectors = np.asarray(vectors)
    segments = topic_segments(vectors, [p.start for p in passages], [p.end for p in passages], options.topics)
    per_segment = []
    for first, last in segments:
        statements = _statements(passages, range(first, last), host)
        if host is not None and not any(informativeness(s.text, options.min_words) for s in statements):
            statements = _statements(passages, range(first, last), None)  # the host did all the talking
        per_segment.append(statements)
    all_statements = [s for group in per_segment for s in group]
    if not all_statements:
        return []
    statement_vectors = _embed_informative(all_statements, embedder, options.min_words)
    chosen: list[tuple[int, str, float, float]] = []  # passage index, text, start, end
    offset = 0
    for (first, last), statements in zip(segments, per_segment):
        block = statement_vectors[offset:offset + len(statements)]
        offset += len(statements)
        if not statements:
            continue
        scores = score_statements(statements, block, vectors[first:last].mean(axis=0), options.min_words)
        best = int(np.argmax(scores))
        if scores[best] >= 0:
            chosen.append((statements[best].passage, *_expand(statements, best, options.max_words, options.min_words)))
    titles = _titles([text for _, text, _, _ in chosen], passages, vectors, embedder)
    timed = max(p.end for p in passages) > 0
    return [
        Takeaway(title=phrase_title(words) or short_title(text), text=text, start=round(start, 3) if timed else None,
                 end=round(end, 3) if timed else None, source="generated")
        for (_, text, start, end), words in zip(chosen, titles)
    ]


def _embed_informative(statements: list[Statement], embedder, min_words: int) -> np.ndarray:
    """Vectors of the statements that can be chosen; zeros for the rest, which score_statements rules out
    whatever their vector (a third to a half of a transcript's sentences: short asides, questions)."""
    informative = [i for i, s in enumerate(statements) if informativeness(s.text, min_words)]
    if not informative:
        return np.zeros((len(statements), 1), dtype=np.float32)
    embedded = np.asarray(embedder.embed([statements[i].text for i in informative]), dtype=np.float32)
    vectors = np.zeros((len(statements), embedded.shape[1]), dtype=np.float32)
    vectors[informative] = embedded
    return vectors


def _titles(texts: list[str], passages: list[Passage], vectors: np.ndarray, embedder) -> list[list[str]]:
    """Key phrases of each takeaway's text, with the episode's passages as the background that tells what is
    distinctive; re-ranked by closeness to the takeaway's meaning."""
    if not texts:
        return []
    groups = [[text] for text in texts] + [[p.text for p in passages]]
    centroids = np.concatenate([embedder.embed(texts), np.asarray(vectors).mean(axis=0, keepdims=True)])
    return keyphrases(groups, embedder=embedder, centroids=centroids)[:len(texts)]


class _LLMFailure(Exception):
    """The endpoint did not give usable takeaways (caught here; the offline method takes over)."""


LLM_INSTRUCTIONS = (
    "You read podcast interview transcripts and write the key takeaways: the points worth remembering, "
    "mostly what the guest said. Reply with JSON only, in this form: "
    '{"takeaways": [{"title": "a short title of 2-8 words", "text": "two to four sentences"}]}. '
    "Give 5 to 12 takeaways in the order they come up in the conversation."
)


def _transcript_for_llm(passages: list[Passage], max_chars: int) -> str:
    lines, size = [], 0
    for passage in passages:
        minutes, seconds = divmod(int(passage.start), 60)
        who = f"{passage.speaker}: " if passage.speaker else ""
        line = f"[{minutes:02d}:{seconds:02d}] {who}{passage.text}"
        if size + len(line) > max_chars:
            break
        lines.append(line)
        size += len(line) + 1
    return "\n".join(lines)


def parse_llm_takeaways(content: str) -> list[tuple[str, str]]:
    """(title, text) pairs from a model's reply: JSON, perhaps in a code fence or among other words."""
    text = re.sub(r"^```(?:json)?\s*|\s*```$", "", (content or "").strip())
    data = None
    for candidate in (text, _first_json(text)):
        if candidate is None:
            continue
        try:
            data = json.loads(candidate)
            break
        except ValueError:
            continue
    if isinstance(data, dict):
        data = data.get("takeaways") or data.get("items") or next(
            (v for v in data.values() if isinstance(v, list)), None)
    if not isinstance(data, list):
        raise _LLMFailure("reply holds no list of takeaways")
    items = []
    for entry in data:
        if isinstance(entry, dict):
            title = plain_spaces(str(entry.get("title") or ""))
            body = plain_spaces(str(entry.get("text") or entry.get("summary") or entry.get("takeaway") or ""))
        elif isinstance(entry, str):
            title, body = "", plain_spaces(entry)
        else:
            continue
        if body:
            items.append((title or short_title(body), body))
    if not items:
        raise _LLMFailure("reply holds no takeaway with text")
    return items


def _first_json(text: str) -> str | None:
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    if not starts:
        return None
    start = min(starts)
    end = max(text.rfind("}"), text.rfind("]"))
    return text[start:end + 1] if end > start else None


def llm_takeaways(passages: list[Passage], options: LLMOptions, client=None) -> list[tuple[str, str]]:
    """Ask the configured endpoint for takeaways. Raises _LLMFailure on any problem."""
    import httpx

    payload = {
        "model": options.model,
        "temperature": options.temperature,
        "messages": [
            {"role": "system", "content": LLM_INSTRUCTIONS},
            {"role": "user", "content": _transcript_for_llm(passages, options.max_chars)},
        ],
    }
    headers = {"Authorization": f"Bearer {options.api_key}"} if options.api_key else {}
    try:
        if client is None:
            with httpx.Client(timeout=options.timeout) as own_client:
                response = own_client.post(options.endpoint, json=payload, headers=headers)
        else:
            response = client.post(options.endpoint, json=payload, headers=headers, timeout=options.timeout)
        response.raise_for_status()
        content = response.json()["choices"][0]["message"]["content"]
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise _LLMFailure(f"{type(exc).__name__}: {exc}") from exc
    return parse_llm_takeaways(content)


def generate_takeaways(passages: list[Passage], vectors: np.ndarray, embedder, host: str | None = None,
                       options: TakeawayOptions | None = None, client=None) -> list[Takeaway]:
    """Takeaways for an episode whose notes have none: from the LLM endpoint if configured, else offline.

    `host` is the transcript's speaker label for the host (see ingest.guests.identify_host): the host's
    passages are not mined for statements.
    """
    options = options or TakeawayOptions()
    if options.llm is not None and passages:
        try:
            items = llm_takeaways(passages, options.llm, client)
            return place_takeaways(items, passages, vectors, embedder, source="generated")
        except _LLMFailure as exc:
            log.warning("LLM takeaways failed (%s); using the offline method", exc)
    return offline_takeaways(passages, vectors, embedder, host, options)


def save_takeaways(db: sqlite_utils.Database, episode_id: int, takeaways: list[Takeaway]) -> None:
    """Replace the episode's takeaways in one transaction; those a producer set (archive/studio.py) stay."""
    rows = [
        {"episode_id": episode_id, "idx": i, "title": t.title, "text": t.text, "start": t.start, "end": t.end,
         "source": t.source}
        for i, t in enumerate(takeaways)
    ]
    with write_transaction(db):
        if "takeaways" in producer_fields(db, episode_id):
            return
        db.execute("DELETE FROM takeaways WHERE episode_id = ?", [episode_id])
        if rows:
            db["takeaways"].insert_all(rows)
