"""Honest search results: a relevance floor, what "all the words" found, the closest episodes when nothing
matches, and results grouped by episode with near-duplicate neighbours collapsed.

Fused scores (reciprocal rank fusion) are ranks, not relevance: a query of keyboard mash still has a first
result. The floor therefore reads each moment's underlying evidence (`Evidence`): its own cosine similarity to
the query (the embedder's, before any lift from its episode's notes) and whether the keyword ranking found it
with every word of the query (an AND match) or with some (the OR top-up). archive/search.py gathers the
evidence and applies `apply_floor`; the thresholds are `SearchTuning.floor_query` and `floor_moment`, chosen by
bench/search_floor.py on judged questions and on nonsense and off-topic ones (bench/queries_offtopic.json).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .records import SearchResult


@dataclass(frozen=True)
class Evidence:
    """What supports one moment, whatever its fused score: `cosine` to the query (None: not embedded, or a
    keyword search that embeds nothing) and `all_words` (True: the keyword ranking matched every word; False:
    only some; None: the keyword ranking did not find it)."""

    cosine: float | None = None
    all_words: bool | None = None


@dataclass
class ClosestEpisode:
    """An episode offered when nothing matches: the nearest by its title and notes or its best passage (cosine
    `similarity`), not a match."""

    episode_id: int
    title: str
    show: str
    show_id: int
    published: str | None
    similarity: float
    url: str


class SearchResults(list):
    """The results of one search (a list of SearchResult, best first), with what the page, API and CLI say
    about them:

    * `words`: the words every moment should have for an all-words match (stopwords left out);
    * `some_words`: how many results have only some of the words (the keyword ranking's top-up when too few
      have all; each result says which in `extra["all_words"]`); keyword mode ("exact words") says so
      (`fallback_note`), never silently;
    * `below_floor`: candidates dropped by the relevance floor;
    * `closest`: when nothing passed the floor in a search by meaning, the episodes nearest the query (not
      matches: by their notes or their best passage);
    * `evidence`: each result's `Evidence`, in the results' order, and `best_cosine`: the best cosine of any
      candidate, floor or not (for bench/search_floor.py and the tests)."""

    def __init__(self, results=(), *, words=(), some_words: int = 0, below_floor: int = 0, closest=(),
                 evidence=()):
        super().__init__(results)
        self.words: tuple[str, ...] = tuple(words)
        self.some_words = some_words
        self.below_floor = below_floor
        self.closest: list[ClosestEpisode] = list(closest)
        self.evidence: list[Evidence] = list(evidence)
        self.best_cosine: float | None = None
        self.mode: str | None = None

    @property
    def all_words_missing(self) -> bool:
        """True when results were found but none has all the query's words (a fallback to any word)."""
        return bool(self) and self.some_words == len(self) and len(self.words) > 1

    def fallback_note(self) -> str | None:
        """In keyword mode ("exact words"), the sentence that says some results lack some of the words; None when
        every result has them all (or in another mode, where meaning counts too)."""
        if self.mode != "keyword" or not self.some_words or len(self.words) < 2:
            return None
        words = " ".join(self.words)
        if self.all_words_missing:
            return f"No moment has all of: {words}. Showing moments with some of them."
        have = len(self) - self.some_words
        return (f"Only {have} moment{'s' * (have != 1)} {'have' if have != 1 else 'has'} all of: {words}. "
                f"The other {self.some_words} (marked “some words”) have some of them.")


def passes(evidence: Evidence, floor_moment: float, floor_some_words: float) -> bool:
    """A moment stays when the keyword ranking found every word in it, or when its own cosine reaches the floor:
    `floor_some_words` when it has some of the words (they are evidence too), else `floor_moment`."""
    if evidence.all_words:
        return True
    floor = floor_some_words if evidence.all_words is False else floor_moment
    return evidence.cosine is not None and evidence.cosine >= floor


def query_passes(evidence: list[Evidence], floor_query: float) -> bool:
    """A query finds anything only if some candidate has all its words, or a cosine at the query floor (or,
    archive/search.py `apply_floor`, its best candidate has some of its words and reaches
    `SearchTuning.floor_worded`): an off-topic query has weak candidates only, and none of them is shown."""
    return any(e.all_words or (e.cosine is not None and e.cosine >= floor_query) for e in evidence)


def apply_floor(fused: list, evidence: dict[tuple[str, int], Evidence], tuning,
                embedded: bool, calibrated: bool = True, words_known=lambda: True,
                worded=lambda hit: False, about_archive=lambda: False) -> tuple[list, int]:
    """The fused ranking less what is below the relevance floor, and how many were dropped. Nothing passes
    when the query is about nothing here (`relevant`; or, for a filtered search, `about_archive()`: nothing in
    the whole archive either); a moment passes on its own evidence (`passes`). Keyword mode (`embedded` False)
    has no cosine: every keyword hit stays, each saying whether it has all the words (`Evidence.all_words`).
    With a model the floor was not `calibrated` on, cosines say nothing absolute: a query passes whole when the
    keyword ranking found anything or `words_known()` (some word of it is in the archive), else nothing does."""
    if not embedded or tuning.floor_query is None or tuning.floor_moment is None:
        return fused, 0
    if not calibrated:
        if any(evidence[(h.kind, h.ref)].all_words is not None for h in fused) or (fused and words_known()):
            return fused, 0
        return [], len(fused)
    if not fused or not (relevant(fused, evidence, tuning, worded) or about_archive()):
        return [], len(fused)
    kept = [h for h in fused if passes(evidence[(h.kind, h.ref)], tuning.floor_moment,
                                       tuning.floor_some_words if tuning.floor_some_words is not None
                                       else tuning.floor_moment)]
    return kept, len(fused) - len(kept)


def relevant(hits: list, evidence: dict[tuple[str, int], Evidence], tuning, worded) -> bool:
    """Whether a query is about any of these candidates: one has all its words or reaches `floor_query`, or the
    best of them has some of its words (`worded(hit)`) and reaches `floor_worded`."""
    if query_passes([evidence[(h.kind, h.ref)] for h in hits], tuning.floor_query):
        return True
    best = max(hits, key=lambda h: _cosine(evidence[(h.kind, h.ref)]), default=None)
    return (best is not None and tuning.floor_worded is not None
            and _cosine(evidence[(best.kind, best.ref)]) >= tuning.floor_worded and worded(best))


def _cosine(evidence: Evidence) -> float:
    return -1.0 if evidence.cosine is None else evidence.cosine


# -- grouping ----------------------------------------------------------------------------------------------

NEAR_SECONDS = 15.0  # moments of one episode whose spans, widened by this each side, overlap are one moment
SHOWN_PER_EPISODE = 3


@dataclass
class EpisodeGroup:
    """One episode's moments in a search, best first, near-duplicates collapsed into the better one
    (`collapsed`: how many); `moments[:shown]` are shown, the rest behind "more from this episode"."""

    first: SearchResult
    moments: list[SearchResult] = field(default_factory=list)
    collapsed: int = 0

    @property
    def episode_id(self) -> int | None:
        return self.first.episode_id


def near(a: SearchResult, b: SearchResult, seconds: float = NEAR_SECONDS) -> bool:
    """Same episode and overlapping spans once each is widened by `seconds` (neighbouring passages, a takeaway
    placed on the passage it came from)."""
    if (a.episode_id, a.episode_guid) != (b.episode_id, b.episode_guid):
        return False
    return a.start - seconds < max(b.end, b.start) + seconds and b.start - seconds < max(a.end, a.start) + seconds


def group_by_episode(results: list[SearchResult], seconds: float = NEAR_SECONDS) -> list[EpisodeGroup]:
    """Episodes in order of their best moment; in each, its moments best first, a moment near a better one
    of the same episode collapsed into it."""
    groups: dict[object, EpisodeGroup] = {}
    for result in results:
        key = result.episode_id if result.episode_id is not None else result.episode_guid
        group = groups.get(key)
        if group is None:
            group = groups[key] = EpisodeGroup(result)
        if any(near(result, kept, seconds) for kept in group.moments):
            group.collapsed += 1
        else:
            group.moments.append(result)
    return list(groups.values())
