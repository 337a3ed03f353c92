"""Takeaways: the points of an episode worth remembering, each tied to the moment it is discussed.

Two sources:

* **notes** - when the show notes carry a takeaways section (Datacast's "Key Takeaways", then one heading per
  point such as "On Moving To The US" with paragraphs), `takeaways_from_notes` (ingest/notes_sections.py) reads it
  and `place_takeaways`
  finds where each point is discussed by meaning: every takeaway (title + text) is embedded and matched to the
  passages by cosine similarity, keeping the notes' order unless the transcript clearly says otherwise
  (`align_in_order`).
* **generated** - otherwise `generate_takeaways` finds the episode's topic segments (ingest/topics.py), cuts the
  longer ones again so that a takeaway stands for about 45 s of talk (12 at most, one per segment at least),
  and picks in each range the guest's most representative, informative sentence (see `score_statements`; the
  host's sentences are never chosen, see ingest.guests.identify_host), with its neighbours when it does not
  read on its own, titled by its key phrases against the episode. A takeaway starts when its first sentence
  does. Offline and deterministic. When the operator configures an OpenAI-compatible endpoint (PODARCHIVE_LLM_URL,
  PODARCHIVE_LLM_MODEL, PODARCHIVE_LLM_API_KEY; read by ingest.understand.UnderstandOptions), it writes the
  takeaways instead and they are placed like the notes' ones; any failure there falls back to the offline
  method with a logged warning.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass, field

import numpy as np
import sqlite_utils

from archive.db import write_transaction
from archive.passages import ends_sentence, split_sentences
from archive.people import clean_name
from archive.records import Passage, Segment, Takeaway
from archive.settings import Settings
from archive.studio import producer_fields

from .notes_sections import plain_spaces, short_title
from .topics import SPOKEN_STOPWORDS, TopicOptions, gap_similarities, keyphrases, phrase_title, topic_segments

log = logging.getLogger(__name__)

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
                    source: str = "notes", in_order: bool = True,
                    segments: list[Segment] | None = None) -> list[Takeaway]:
    """Tie each (title, text) to the passage that discusses it, then to the sentence where it starts
    (`_opening_sentence`): a takeaway starts where its point starts being said, not at its passage's start.

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
    starts = _opening_starts(items, chosen, _sentences(passages, segments), embedder)
    return [
        Takeaway(title=title, text=text, start=start if start is not None else passages[j].start,
                 end=passages[j].end, source=source)
        for (title, text), j, start in zip(items, chosen, starts)
    ]


# A placed takeaway starts this much before its sentence: a sentence's time inside a transcript segment is shared
# out by length, and can be a couple of seconds late; the listener should hear the point's first words, not miss them.
MOMENT_LEAD = 2.5


def _opening_starts(items: list[tuple[str, str]], chosen: list[int], statements: list[Statement],
                    embedder) -> list[float | None]:
    """For each takeaway placed on passage j, the start of the sentence in passages j-1..j+1 that reads most like
    its opening (its title and first sentence), kept after the previous takeaway's; None where no sentence is
    timed. A sentence is read with the one after it, so a short heading-like sentence is judged in context."""
    windows = [[i for i, s in enumerate(statements) if j - 1 <= s.passage <= j + 1] for j in chosen]
    wanted = sorted({i for window in windows for i in window})
    if not wanted:
        return [None] * len(items)
    texts = [" ".join(s.text for s in statements[i:i + 2]) for i in wanted]
    row = {i: k for k, i in enumerate(wanted)}
    sentence_vectors = embedder.embed(texts)
    openings = embedder.embed([f"{title}. {(split_sentences(text) or [text])[0]}" for title, text in items])
    starts: list[float | None] = []
    previous = float("-inf")
    for opening, window in zip(openings, windows):
        later = [i for i in window if statements[i].start > previous]
        if not later:
            starts.append(None)
            continue
        best = max(later, key=lambda i: float(sentence_vectors[row[i]] @ opening))
        floor = starts[-1] if starts and starts[-1] is not None else 0.0
        starts.append(round(max(statements[best].start - MOMENT_LEAD, floor, 0.0), 3))
        previous = statements[best].start
    return starts


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
    max_words: int = 60  # a takeaway's text: the chosen sentence and its neighbours while they fit
    seconds_per_takeaway: float = 45.0  # a point takes a passage's worth of talk or more: short episodes get fewer
    max_takeaways: int = 12  # the most the length alone earns; each topic segment still gets one
    passages_per_pick: int = 3  # only the most informative sentences of a pick's most central passages are
    sentences_per_pick: int | None = 3  # embedded and scored (None: all of those passages' sentences)
    topics: TopicOptions = field(default_factory=TopicOptions)
    llm: LLMOptions | None = None


@dataclass
class Statement:
    text: str
    start: float
    end: float
    passage: int  # index of the passage it was said in
    speaker: str | None = None


def _sentences(passages: list[Passage], segments: list[Segment] | None) -> list[Statement]:
    """Every sentence with its passage: from the segments the passages were made of when given (each sentence
    then has its own speaker, and its time shared out of its segment's), else from the passages (their speaker,
    times shared out of the passage's by length)."""
    if segments:
        pieces = [(text, start, end, segment.speaker) for segment in segments
                  for text, start, end in _timed_sentences(segment.text, segment.start or 0, segment.end or 0)]
        out, k = [], 0
        for index, passage in enumerate(passages):
            said = ""
            while k < len(pieces) and len(said) < len(passage.text):
                text, start, end, speaker = pieces[k]
                said = f"{said} {text}" if said else text
                last = out[-1] if out else None
                if last and last.passage == index and last.speaker == speaker and not ends_sentence(last.text):
                    last.text, last.end = f"{last.text} {text}", end  # a sentence over two segments
                else:
                    out.append(Statement(text, start, end, index, speaker))
                k += 1
            if said != passage.text:
                break  # passages made from another version of the transcript: read the passages
        else:
            if k == len(pieces):
                return out
        log.info("transcript segments do not match the passages; reading the passages' speakers and times")
    return [Statement(text, start, end, index, passage.speaker) for index, passage in enumerate(passages)
            for text, start, end in _timed_sentences(passage.text, passage.start, passage.end)]


def _timed_sentences(text: str, start: float, end: float) -> list[tuple[str, float, float]]:
    """The sentences of a timed text, its time shared out among them by length (as archive.passages does)."""
    sentences = split_sentences(text)
    total = sum(len(s) for s in sentences) or 1
    start, end = float(start), max(float(end), float(start))
    out, cursor = [], start
    for sentence in sentences:
        span = (end - start) * len(sentence) / total
        out.append((sentence, cursor, cursor + span))
        cursor += span
    return out


def is_host(speaker: str | None, host: str | None) -> bool:
    """Whether a transcript's speaker label is the host's (labels compared as ingest.guests.identify_host
    writes them)."""
    return bool(host and speaker) and clean_name(speaker).rstrip(".") == clean_name(host).rstrip(".")


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


# A sentence opening with one of these leans on the one before ("But the value of teaching is tremendous"): the
# takeaway then starts with that one, so it reads on its own.
LEANS_BACK = re.compile(r"^(?:and|but|so|or|also|because|which|then|plus|however|this|that|these|those|it|it's|"
                        r"it’s|they|there|he|she|as a result|on top of that)\b", re.IGNORECASE)


def _expand(statements: list[Statement], best: int, max_words: int, min_words: int,
            bounds: tuple[int, int]) -> tuple[int, int]:
    """The chosen sentence as a self-contained statement, (first, last) statement index: the one before it
    too when it leans on it, then the ones that follow while they fit in max_words; all said by the same
    speaker in a row, within `bounds` (lo, hi + 1: the other takeaways' sentences are not taken). A question,
    a short aside or a heading read aloud ends it; it does not end on a filler."""
    chosen = statements[best]
    first = last = best
    words = len(chosen.text.split())

    def joins(i: int) -> bool:  # a plain statement ("They don't tell you what to do next.") carries the point on
        size = len(statements[i].text.split()) if bounds[0] <= i < bounds[1] else 0
        return size >= min_words and statements[i].speaker == chosen.speaker and \
            not statements[i].text.rstrip().endswith("?") and words + size <= max_words

    if LEANS_BACK.match(chosen.text) and joins(best - 1):
        first -= 1
        words += len(statements[first].text.split())
    while joins(last + 1):
        last += 1
        words += len(statements[last].text.split())
    while last > best and not informativeness(statements[last].text, min_words):
        last -= 1
    return first, last


def takeaway_count(duration: float, segments: int, options: TakeawayOptions) -> int:
    """One takeaway per `seconds_per_takeaway` of the episode, at most `max_takeaways`, and at least one per
    topic segment."""
    by_length = int(duration // options.seconds_per_takeaway) if duration > 0 else 0
    return max(segments, min(options.max_takeaways, by_length))


def pick_ranges(segments: list[tuple[int, int]], count: int, starts: list[float], ends: list[float],
                adjacent: np.ndarray) -> list[tuple[int, int]]:
    """Passage ranges to pick one takeaway each from: the topic segments, the longer ones cut again so that
    `count` ranges share out the episode by length (D'Hondt: each extra pick goes to the segment with the most
    time per pick; untimed transcripts count passages), at the gaps inside where the talk changes most
    (`adjacent[g - 1]`: the similarity of passages g - 1 and g, the lowest first)."""
    timed = bool(ends) and max(ends) > 0
    sizes = [(ends[last - 1] - starts[first]) if timed else float(last - first) for first, last in segments]
    picks = [1] * len(segments)
    for _ in range(count - len(segments)):
        room = [size / (n + 1) if n < last - first else -1.0 for size, n, (first, last) in zip(sizes, picks, segments)]
        best = int(np.argmax(room))
        if room[best] < 0:
            break  # a pick per passage already
        picks[best] += 1
    ranges = []
    for (first, last), n in zip(segments, picks):
        cuts = sorted(range(first + 1, last), key=lambda gap: (adjacent[gap - 1], gap))[:n - 1]
        edges = [first, *sorted(cuts), last]
        ranges.extend(zip(edges, edges[1:]))
    return ranges


def _candidates(statements: list[Statement], allowed: list[int], passages: range, vectors: np.ndarray,
                centroid: np.ndarray, options: TakeawayOptions) -> list[int]:
    """The statements worth embedding for a pick: of the `allowed` ones said in its `passages`, those in the
    `passages_per_pick` passages closest to its centroid (passage vectors are already there), and of those the
    `sentences_per_pick` most informative. In document order."""
    spoken = {statements[i].passage for i in allowed if statements[i].passage in passages}
    central = set(sorted(spoken, key=lambda p: (-float(vectors[p] @ centroid), p))[:options.passages_per_pick])
    inside = [i for i in allowed if statements[i].passage in central]
    if options.sentences_per_pick:
        ranked = sorted(inside, key=lambda i: (-informativeness(statements[i].text, options.min_words), i))
        keep = set(ranked[:options.sentences_per_pick])
        inside = [i for i in inside if i in keep]
    return inside


def offline_takeaways(passages: list[Passage], vectors: np.ndarray, embedder, host: str | None = None,
                      options: TakeawayOptions | None = None,
                      segments: list[Segment] | None = None) -> list[Takeaway]:
    """Takeaways from the guest's own words: the episode's topic segments, the longer ones cut again where the
    talk changes most so that there is about one per `seconds_per_takeaway` (see `takeaway_count` and
    `pick_ranges`); in each such range, the most central, informative sentence (`score_statements`) of the
    few candidates `_candidates` gives, made self-contained (`_expand`; takeaways never share a sentence) and
    titled by its key phrases. The host's sentences are never chosen (`segments`, the transcript the passages
    were made of, tells each sentence's speaker; without them a passage's speaker stands for all its
    sentences). A takeaway starts when its first sentence does."""
    options = options or TakeawayOptions()
    if not passages:
        return []
    vectors = np.asarray(vectors, dtype=np.float32)
    starts, ends = [p.start for p in passages], [p.end for p in passages]
    topic_ranges = topic_segments(vectors, starts, ends, options.topics)
    timed = max(ends) > 0
    count = takeaway_count(ends[-1] - starts[0] if timed else 0.0, len(topic_ranges), options)
    adjacent = gap_similarities(vectors.astype(np.float64), 1)
    statements = _sentences(passages, segments)
    candidates = [i for i, s in enumerate(statements)
                  if not is_host(s.speaker, host) and informativeness(s.text, options.min_words)]
    plans = []  # (centroid, candidate statement indices) per pick
    for first, last in pick_ranges(topic_ranges, count, starts, ends, adjacent):
        centroid = vectors[first:last].mean(axis=0)
        plans.append((centroid, _candidates(statements, candidates, range(first, last), vectors, centroid, options)))
    wanted = sorted({i for _, chosen in plans for i in chosen})
    if not wanted:
        return []
    embedded = np.asarray(embedder.embed([statements[i].text for i in wanted]), dtype=np.float32)
    row = {i: n for n, i in enumerate(wanted)}
    bests = []
    for centroid, indices in plans:
        if indices:  # else only the host speaks here
            scores = score_statements([statements[i] for i in indices], embedded[[row[i] for i in indices]],
                                      centroid, options.min_words)
            bests.append(indices[int(np.argmax(scores))])
    chosen: list[tuple[str, float, float]] = []  # text, start, end
    spans: list[tuple[int, int]] = []  # the passages each takeaway was said in
    taken = -1  # the last sentence of the takeaway before
    for n, best in enumerate(bests):
        following = bests[n + 1] if n + 1 < len(bests) else len(statements)
        first, taken = _expand(statements, best, options.max_words, options.min_words, (taken + 1, following))
        said = statements[first:taken + 1]
        chosen.append((" ".join(s.text for s in said), said[0].start, said[-1].end))
        spans.append((said[0].passage, said[-1].passage))
    titles = _titles([text for text, _, _ in chosen], spans, passages, vectors, embedder)
    return [
        Takeaway(title=phrase_title(words) or short_title(text), text=text, start=round(start, 3) if timed else None,
                 end=round(end, 3) if timed else None, source="generated")
        for (text, start, end), words in zip(chosen, titles)
    ]


def _titles(texts: list[str], spans: list[tuple[int, int]], passages: list[Passage], vectors: np.ndarray,
            embedder) -> list[list[str]]:
    """Key phrases of each takeaway's text, with the episode's passages as the background that tells what is
    distinctive; re-ranked by closeness to the takeaway's meaning, read from the vectors of the passages it was
    said in (they are at hand: embedding the takeaways again would cost a model call each)."""
    if not texts:
        return []
    vectors = np.asarray(vectors)
    groups = [[text] for text in texts] + [[p.text for p in passages]]
    meanings = [vectors[first:last + 1].mean(axis=0) for first, last in spans]
    centroids = np.concatenate([np.stack(meanings), vectors.mean(axis=0, keepdims=True)])
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
                       options: TakeawayOptions | None = None, client=None,
                       segments: list[Segment] | None = None) -> list[Takeaway]:
    """Takeaways for an episode whose notes have none: from the LLM endpoint if configured, else offline.

    `host` is the transcript's speaker label for the host (see ingest.guests.identify_host): the host's
    sentences are not chosen; `segments`, the transcript the passages were made of, tells who said each
    sentence and when (see `offline_takeaways`).
    """
    options = options or TakeawayOptions()
    if options.llm is not None and passages:
        try:
            items = llm_takeaways(passages, options.llm, client)
            return place_takeaways(items, passages, vectors, embedder, source="generated")
        except _LLMFailure as exc:
            log.warning("LLM takeaways failed (%s); using the offline method", exc)
    return offline_takeaways(passages, vectors, embedder, host, options, segments)


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
