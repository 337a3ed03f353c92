"""Search the archive: keyword (BM25), semantic (sentence embeddings) or hybrid (both, fused).

Results are moments: passages mainly, plus takeaways (at the time they were placed) and episodes whose title or
notes match (at the start). Each ranked list (keyword passages, takeaways, episodes; semantic: passages with the
takeaways and episode notes of archive/note_vectors.py in one list by cosine, `merge_notes`, so an episode with
notes and no transcript is found by meaning too) is fused by reciprocal rank fusion (k=60), plus episode evidence:
each list also ranks episodes (at their first hit), and a hit gains a quarter of its episode's fused score. The
semantic scores are read in context: each passage and takeaway gains half its episode's notes cosine
(`SearchTuning.context_weight`). The defaults were chosen on bench/search_quality.py's tuning questions and are
reported on held-out ones; the README has the figures and what lost.

Keyword ranking uses FTS5 in small archives and a Tantivy index in large ones (archive/keyword_index.py),
semantic ranking an exact matrix product or a faiss IVF index (archive/vector_index.py). User queries go through
archive/fts.py, so nothing a user types is ever read as FTS5 syntax; filters are archive/search_filters.py's,
snippets archive/snippets.py's, the query embedder archive/query_embedding.py's. The relevance floor (a query about
nothing here finds nothing; weak moments are dropped), what "all the words" found, and grouping by episode are
archive/search_relevance.py's; this module gathers their evidence. This module loads no model until a semantic or
hybrid search needs one, and imports nothing from the ingest pipeline.

Only published episodes are searched (`episodes.state`, see archive/studio.py). The indexes hold drafts too, so
publishing needs no rebuild: FTS5 queries join on the episode's state, and the side indexes drop the few
documents of unpublished episodes (`unpublished_episodes`, archive/search_filters.py) from a slightly longer
ranking, or, past a few thousand, leave them out by a filter.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace

import numpy as np
import sqlite_utils

from . import index_refresh, keyword_index, note_vectors, vector_index
from .embeddings import Embedder, embed_query, warm_up
from .errors import SearchError
from .fts import ParsedQuery, fts5_match, normalise, parse_query, tantivy_clause
from .query_embedding import get_embedder, one_torch_thread
from .records import SearchResult
from .search_filters import (PUBLISHED, Filters, SpokenBy, allowed_episodes, resolve_filters, spoken_only,
                             unpublished_episodes)
from .search_relevance import ClosestEpisode, Evidence, SearchResults, apply_floor, relevant
from .snippets import QueryTerms, snippet

MODES = ("hybrid", "keyword", "semantic")
MAX_LIMIT = 1000


@dataclass(frozen=True)
class SearchTuning:
    """How rankings are made and fused. The defaults are what bench/search_quality.py chose."""

    fusion: str = "rrf"  # "rrf": sum of weight / (rrf_k + rank); "weighted": sum of weight * min-max score
    rrf_k: int = 60
    semantic_weight: float = 0.5  # share of the semantic list in "weighted" fusion
    kind_weights: tuple[tuple[str, float], ...] = (("passage", 1.0), ("takeaway", 0.5), ("episode", 0.5))
    keyword_operator: str = "AND"  # "AND": all words, topped up with an OR query when too few; "OR": any word
    or_below: int | None = None  # an AND list with fewer hits than this (default: the limit) is topped up
    depth: int = 50  # candidates taken from each ranked list (at least twice the limit)
    # Episode evidence: each list also ranks episodes (by their first hit in it); a hit gains this share of its
    # episode's reciprocal rank fusion, so the moments of an episode both rankings agree on come first.
    episode_weight: float = 0.25
    # Added to the cosine of takeaways and episode notes where the semantic ranking merges them with passages
    # (`merge_notes`); notes score lower than passages anyway (a lower median best cosine on the DataTalks.Club
    # questions). On bench/search_quality.py's tuning questions, 0 made hybrid search on the side indexes worse
    # (a lower episode MRR), -0.1 gained nothing in semantic search, and -0.05 left every hybrid figure as it was
    # while semantic search gained; held out, it left no figure of either mode worse (figures in the README).
    note_offset: float = -0.05
    # An episode ranks in each list by its first `episode_hits` hits (the sum of their reciprocal ranks). Three
    # gained on bench/search_quality.py's tuning questions (long interviews), but let a long episode's many weak
    # hits outvote one short episode's exact match, so the episode's first hit alone stands for it.
    episode_hits: int = 1
    # Semantic scores in context: every passage and takeaway gains this share of its episode's notes cosine (the
    # best chunk of title + notes, archive/note_vectors.py), an episode hit of its own share; passages are
    # re-ranked so from `context_pool` times the depth of candidates. What a passage says is read with what its
    # episode is about, as a listener would (README, "Search quality", has what it gained).
    context_weight: float = 0.5
    context_pool: int = 4
    # The relevance floor (archive/search_relevance.py; chosen by bench/search_floor.py --calibrate on the tuning
    # halves of the judged and the off-topic queries, all-MiniLM-L6-v2): fused scores are ranks, so the floor
    # reads each candidate's own cosine to the query and whether the keyword ranking found all the query's words
    # in it. A query none of whose candidates has all its words or reaches `floor_query` finds nothing (the
    # midpoint between the best off-topic query, 0.412, and the worst judged one, 0.435); otherwise a moment
    # without all the words is dropped below `floor_moment` (found by meaning alone: the lowest judged-relevant
    # moment, 0.330, less 0.02, rounded down) or `floor_some_words` (some of the words: 0.129 less 0.02). A query
    # whose best candidate also has some of the query's words passes at `floor_worded`: a paraphrase in a small
    # archive (tests/test_search.py's "university teacher turned independent advisor", 0.364) is about what
    # it finds, where keyboard mash and off-topic queries (bench/queries_offtopic.json) mostly have no word in
    # their best candidate. 0.28, not 0.35: on Datacast Episode 70 (bench/datacast_sections.py, questions never
    # used here), Whisper's transcript of synthetic speech gives real questions best cosines of 0.30-0.33 ("writing
    # a book for Manning"), which 0.35 emptied; 0.28 lets 5 more of the 60 off-topic (query, archive) pairs
    # through (bench/search_floor.py). None: no
    # floor (the bench's "before"). Cosines are the model's own: the thresholds hold for the `floor_models` they
    # were calibrated on; with any other embedder (a test's fake, a model a site chose) there is no cosine floor,
    # and a query none of whose words occurs in the archive finds nothing. Keyword mode embeds nothing: it keeps
    # what has the words, each result saying whether it has all of them (`extra["all_words"]`).
    floor_query: float | None = 0.42
    floor_moment: float | None = 0.30
    floor_some_words: float | None = 0.10
    floor_worded: float | None = 0.28
    floor_models: tuple[str, ...] = ("all-MiniLM-L6-v2",)

    def calibrated(self, model: str | None) -> bool:
        """Whether the cosine floor was calibrated on `model` (a name or path; its last part, any case)."""
        name = (model or "").rstrip("/").rsplit("/", 1)[-1].lower()
        return bool(name) and name in {m.lower() for m in self.floor_models}

    def weight(self, kind: str) -> float:
        return dict(self.kind_weights).get(kind, 1.0)


DEFAULT_TUNING = SearchTuning()


@dataclass(frozen=True)
class Hit:
    kind: str  # passage, takeaway, episode
    ref: int  # row id in its table
    score: float


# -- public ------------------------------------------------------------------------------------------------

def search(db: sqlite_utils.Database, query: str, mode: str = "hybrid", show=None, guest=None, since=None,
           until=None, limit: int = 10, embedder: Embedder | None = None,
           tuning: SearchTuning | None = None, speaker=None, episode=None) -> SearchResults:
    """Search passages, takeaways and episode notes. Raises SearchError for a bad mode, limit or filter.
    `guest` keeps the episodes a person appears in; `speaker` keeps only what they said there (passages with
    their speaker label, or with none: see `SpokenBy`); `episode` (an id) searches one episode.
    An empty query (or one with no word in it) gives no results; so does one below the relevance floor
    (`SearchTuning.floor_query`), whose results then offer the closest episodes (`SearchResults.closest`)."""
    if mode not in MODES:
        raise SearchError(f"unknown search mode {mode!r}: use one of {', '.join(MODES)}")
    limit = _check_limit(limit)
    tuning = tuning or DEFAULT_TUNING
    filters = resolve_filters(db, show, guest, since, until, speaker, episode)
    parsed = parse_query(query if isinstance(query, str) else "")
    if parsed.empty:
        return SearchResults()
    depth = max(tuning.depth, 2 * limit)
    allowed = allowed_episodes(db, filters)
    if allowed is not None and not len(allowed):
        return SearchResults(words=parsed.words())
    hidden = unpublished_episodes(db) if allowed is None else None
    lists: list[tuple[str, list[Hit]]] = []
    some_words: set[tuple[str, int]] = set()
    if mode in ("keyword", "hybrid"):
        lists.extend(keyword_rankings(db, parsed, filters, allowed, depth, tuning, limit, hidden, some_words))
    vector, model, cosines, context = None, None, {}, {}
    if mode in ("semantic", "hybrid") and (text := semantic_text(query)):
        embedder = embedder or get_embedder()
        with one_torch_thread():
            vector = embed_query(embedder, text)
        model = embedder.name
        lists.append(("semantic", semantic_hits(db, vector, model, allowed, depth, filters.speaker,
                                                hidden, tuning, cosines, context)))
    episode_of = episodes_of_hits(db, lists)
    fused = fuse(lists, tuning, episode_of)
    keyword_found = {(h.kind, h.ref) for name, hits in lists if name != "semantic" for h in hits}
    evidence = {(h.kind, h.ref): Evidence(cosines.get((h.kind, h.ref)),
                                          None if (h.kind, h.ref) not in keyword_found
                                          else (h.kind, h.ref) not in some_words) for h in fused}
    if vector is not None and mode == "hybrid":
        fill_cosines(db, vector, model, evidence, context)
    best = max((e.cosine for e in evidence.values() if e.cosine is not None), default=None)
    probe = FloorProbe(db, parsed, filters, allowed, hidden, tuning, vector, model, mode)
    fused, dropped = apply_floor(fused, evidence, tuning, vector is not None, tuning.calibrated(model),
                                 probe.words_known, probe.worded, probe.about_archive)
    results = materialise(db, fused[:limit], parsed, evidence)
    results.mode, results.below_floor, results.best_cosine = mode, dropped, best
    if not results and vector is not None:
        results.closest = closest_episodes(db, context, allowed, evidence, episode_of)
    return results


def search_many(db: sqlite_utils.Database, queries, **options) -> list[list[SearchResult]]:
    """Run several queries with the same options; the embedder is loaded (and traced) once, for
    `podarchive search -`."""
    if options.get("mode", "hybrid") != "keyword":
        options["embedder"] = options.get("embedder") or get_embedder()
        warm_up(options["embedder"])
    return [search(db, query, **options) for query in queries]


def _check_limit(limit) -> int:
    try:
        limit = int(limit)
    except (TypeError, ValueError):
        raise SearchError(f"limit must be a whole number, not {limit!r}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise SearchError(f"limit must be between 1 and {MAX_LIMIT}")
    return limit


# -- keyword -----------------------------------------------------------------------------------------------

def keyword_rankings(db, parsed: ParsedQuery, filters: Filters, allowed, depth: int,
                     tuning: SearchTuning, limit: int = 10, hidden=None,
                     some_words: set | None = None) -> list[tuple[str, list[Hit]]]:
    """One ranked list per kind (passage, takeaway, episode), best first. With the AND operator, a list with
    fewer hits than the limit is topped up by the same words joined with OR. Only published episodes are ranked
    (`hidden`: the unpublished ones, when `allowed` is None). `some_words` collects the (kind, ref) of the hits
    that have only some of the query's words (the OR top-up, or every hit of an OR query of several words)."""
    if index_refresh.is_large(db):
        ranker = _tantivy_ranker(db, parsed, allowed, hidden)
    else:
        ranker = _fts5_ranker(db, parsed, filters)

    def rank(kind: str, operator: str, depth: int) -> list[Hit]:
        return spoken_only(db, lambda k: ranker(kind, operator, k), filters.speaker, depth)

    lists = []
    or_below = limit if tuning.or_below is None else tuning.or_below
    kinds = keyword_index.KINDS if filters.speaker is None else ("passage",)
    for kind in kinds:
        operator = tuning.keyword_operator
        hits = rank(kind, operator, depth)
        several = len(parsed.required()) > 1
        if operator != "AND" and several and some_words is not None:
            some_words.update((h.kind, h.ref) for h in hits)
        if operator == "AND" and len(hits) < or_below and several:
            seen = {h.ref for h in hits}
            extra = [h for h in rank(kind, "OR", depth) if h.ref not in seen][:depth - len(hits)]
            if some_words is not None:
                some_words.update((h.kind, h.ref) for h in extra)
            hits += extra
        lists.append((kind, hits))
    return lists


_FTS5_SQL = {
    # kind: (fts table, row table, bm25 weights, episode id expression)
    "passage": ("passages_fts", "passages", "", "r.episode_id"),
    "takeaway": ("takeaways_fts", "takeaways", ", 2.0, 1.0", "r.episode_id"),
    "episode": ("episodes_fts", "episodes", ", 2.0, 1.0", "r.id"),
}


def _fts5_ranker(db, parsed: ParsedQuery, filters: Filters):
    def rank(kind: str, operator: str, depth: int) -> list[Hit]:
        match = fts5_match(parsed, operator)
        if not match:
            return []
        fts, table, weights, episode = _FTS5_SQL[kind]
        where = f" AND {PUBLISHED}" + (f" AND {filters.sql}" if filters.active else "")
        params = [match, *filters.params]
        sql = (
            f"SELECT r.id, bm25({fts}{weights}) AS score FROM {fts} JOIN {table} r ON r.rowid = {fts}.rowid "
            f"JOIN episodes e ON e.id = {episode} WHERE {fts} MATCH ?{where} ORDER BY score LIMIT ?"
        )
        rows = db.execute(sql, [*params, depth]).fetchall()
        return [Hit(kind, int(r[0]), -float(r[1])) for r in rows]

    return rank


def _tantivy_ranker(db, parsed: ParsedQuery, allowed, hidden=None):
    index = keyword_index.keyword_index(db)
    clauses = [tantivy_clause(c) for c in parsed.required()]

    def rank(kind: str, operator: str, depth: int) -> list[Hit]:
        return [Hit(kind, ref, score)
                for ref, score in index.search(clauses, kind, depth, operator, allowed, excluded_episodes=hidden)]

    return rank


# -- semantic ----------------------------------------------------------------------------------------------

def semantic_text(query: str) -> str:
    """The query as a sentence for the embedder: search syntax (quotes, stars) dropped, spacing tidied."""
    return re.sub(r"\s+", " ", normalise(query).replace('"', " ").replace("*", " ")).strip()


def semantic_ranking(db, vector: np.ndarray, model: str, allowed, depth: int,
                     speaker: SpokenBy | None = None, hidden=None) -> list[Hit]:
    """Passages by cosine similarity, best first, of the `allowed` episodes (None: all), never of the `hidden`
    ones: a search for k more than the hidden episodes' passages, those dropped; when they are many, a search
    of every other episode instead."""
    index = vector_index.vector_index(db, model)
    if not len(index):
        return []
    exact = index.kind == "exact"
    left_out: set[int] = set()
    if allowed is None and hidden is not None and len(hidden):
        left_out = set(index.ids[index.rows_of(hidden)].tolist())
        if len(left_out) > HIDDEN_PASSAGES_DROPPED:
            allowed, left_out = np.setdiff1d(np.unique(index.episodes), hidden), set()

    def rank(k: int) -> list[Hit]:
        found = index.search(vector, k + len(left_out), allowed)
        hits = [Hit("passage", int(i), float(s)) for i, s in zip(found.ids, found.scores)]
        return [h for h in hits if h.ref not in left_out][:k] if left_out else hits

    # An approximate index gives REFINE_FACTOR times the candidates; the speaker's are kept before re-scoring.
    hits = spoken_only(db, rank, speaker, depth if exact else depth * vector_index.REFINE_FACTOR)
    if exact or not hits:
        return hits
    found = vector_index.refine(db, model, vector,
                                vector_index.VectorHits(np.array([h.ref for h in hits], dtype=np.int64),
                                                        np.array([h.score for h in hits], np.float32)), depth)
    return [Hit("passage", int(i), float(s)) for i, s in zip(found.ids, found.scores)]


def semantic_hits(db, vector: np.ndarray, model: str, allowed, depth: int, speaker: SpokenBy | None = None,
                  hidden=None, tuning: SearchTuning = DEFAULT_TUNING, cosines: dict | None = None,
                  context: dict[int, float] | None = None) -> list[Hit]:
    """The semantic ranking: passages, takeaways and episodes (by their notes, archive/note_vectors.py) in one
    list by cosine similarity (`merge_notes`), each lifted by its episode's notes (`SearchTuning.context_weight`);
    passages only for one speaker's words, as in keyword mode. `cosines` is filled with every candidate's own
    cosine ((kind, ref) -> cosine, before any lift: the relevance floor's evidence), `context` with every
    episode's best notes cosine."""
    context = {} if context is None else context
    found = note_vectors.ranked(db, vector, model, depth, allowed, hidden, context)
    weight = tuning.context_weight if context else 0.0
    pool = depth * tuning.context_pool if weight else depth
    passages = semantic_ranking(db, vector, model, allowed, pool, speaker, hidden)
    if cosines is not None:
        cosines.update(((h.kind, h.ref), h.score) for h in passages)
        cosines.update(((kind, ref), score) for kind in note_vectors.KINDS for ref, score in found[kind])
    if weight:
        passages = in_context(db, passages, context, weight)[:depth]
    if speaker is not None:
        return passages
    notes = [Hit(kind, ref, score + tuning.note_offset) for kind in note_vectors.KINDS for ref, score in found[kind]]
    if weight:
        notes = [Hit(h.kind, h.ref, h.score + weight * (h.score - tuning.note_offset)) if h.kind == "episode" else h
                 for h in notes]
        notes = [h for h in notes if h.kind == "episode"] + in_context(db, [h for h in notes if h.kind != "episode"],
                                                                       context, weight)
    return merge_notes(db, passages, notes, depth)


def in_context(db, hits: list[Hit], context: dict[int, float], weight: float) -> list[Hit]:
    """Passages or takeaways, each score raised by `weight` times its episode's notes cosine, best first."""
    if not hits:
        return hits
    kind = hits[0].kind
    table = "passages" if kind == "passage" else "takeaways"
    episode_of = dict(db.execute(f"SELECT id, episode_id FROM {table} WHERE id IN (SELECT value FROM json_each(?))",
                                 [json.dumps([h.ref for h in hits])]).fetchall())
    lifted = [Hit(h.kind, h.ref, h.score + weight * context.get(episode_of.get(h.ref), 0.0)) for h in hits]
    return sorted(lifted, key=lambda h: -h.score)


def merge_notes(db, passages: list[Hit], notes: list[Hit], depth: int) -> list[Hit]:
    """Passages, takeaways and episodes in one ranking by score, best first: one scale (cosine), so the notes of an
    episode without a transcript outrank passages that match the query less well, where ranks fused apart
    would have left it below every passage of a long list. An episode hit stands for its episode: where passages
    of that episode come later in the ranking, the best of them moves up to its place and score (a moment to
    listen to, rather than the episode's start); an episode with none keeps its notes hit. Passages alone on the
    DataTalks.Club questions scored lower on all four measures than with the notes lifting them so."""
    merged = sorted(passages + notes, key=lambda hit: -hit.score)  # stable: a passage first on a tie
    if not any(hit.kind == "episode" for hit in merged):
        return merged[:depth]
    episode_of = dict(db.execute("SELECT id, episode_id FROM passages WHERE id IN (SELECT value FROM json_each(?))",
                                 [json.dumps([hit.ref for hit in passages])]).fetchall())
    positions: dict[int, list[int]] = {}  # episode -> where its passages are in `merged`, best first
    for position, hit in enumerate(merged):
        if hit.kind == "passage" and hit.ref in episode_of:
            positions.setdefault(episode_of[hit.ref], []).append(position)
    ranked, moved = [], set()
    for position, hit in enumerate(merged):
        if position in moved:
            continue
        later = [p for p in positions.get(hit.ref, ()) if p > position and p not in moved] \
            if hit.kind == "episode" else []
        if later:
            moved.add(later[0])
            hit = Hit("passage", merged[later[0]].ref, hit.score)
        ranked.append(hit)
    return ranked[:depth]


# Up to this many passages of unpublished episodes are dropped from a vector search's results (it asks for as many
# more); above it the search is filtered to the published episodes, as for a show or guest filter.
HIDDEN_PASSAGES_DROPPED = vector_index.EXACT_FILTERED_MAX


# -- fusion ------------------------------------------------------------------------------------------------

def fuse(lists: list[tuple[str, list[Hit]]], tuning: SearchTuning = DEFAULT_TUNING,
         episode_of: dict[tuple[str, int], int] | None = None) -> list[Hit]:
    """One ranking from several: reciprocal rank fusion, or a weighted sum of min-max normalised scores.
    Each list is weighted by its kind; in "weighted" fusion the semantic list gets `semantic_weight` and the
    keyword lists the rest. With `episode_of` ((kind, ref) -> episode id), RRF adds episode evidence
    (see SearchTuning.episode_weight)."""
    filled = [(name, hits) for name, hits in lists if hits]
    if len(filled) == 1:  # nothing to fuse: keep the list's own scores (cosine, BM25)
        return list(filled[0][1])
    totals: dict[tuple[str, int], float] = {}
    for name, hits in filled:
        for hit, value in zip(hits, _contributions(name, hits, tuning)):
            key = (hit.kind, hit.ref)
            totals[key] = totals.get(key, 0.0) + value
    if episode_of and tuning.fusion == "rrf" and tuning.episode_weight:
        episodes = _episode_fusion(filled, tuning, episode_of)
        totals = {key: value + tuning.episode_weight * episodes.get(episode_of.get(key), 0.0)
                  for key, value in totals.items()}
    ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    return [Hit(kind, ref, score) for (kind, ref), score in ranked]


def _list_weight(name: str, hits: list[Hit], tuning: SearchTuning) -> float:
    """A list weighs as its kind; the semantic list, passages with the takeaways and notes that outscore them, as
    passages."""
    return tuning.weight("passage" if name == "semantic" else hits[0].kind)


def _contributions(name: str, hits: list[Hit], tuning: SearchTuning) -> list[float]:
    weight = _list_weight(name, hits, tuning)
    if tuning.fusion == "rrf":
        return [weight / (tuning.rrf_k + rank) for rank in range(1, len(hits) + 1)]
    if tuning.fusion == "weighted":
        share = tuning.semantic_weight if name == "semantic" else 1 - tuning.semantic_weight
        return [weight * share * s for s in _min_max([h.score for h in hits])]
    raise SearchError(f"unknown fusion {tuning.fusion!r}")


def _episode_fusion(lists: list[tuple[str, list[Hit]]], tuning: SearchTuning,
                    episode_of: dict[tuple[str, int], int]) -> dict[int, float]:
    """Reciprocal rank fusion of episodes: in each list an episode ranks where its first hit is."""
    totals: dict[int, float] = {}
    for name, hits in lists:
        weight = _list_weight(name, hits, tuning)
        counted: dict[int, int] = {}
        for rank, hit in enumerate(hits, 1):
            episode = episode_of.get((hit.kind, hit.ref))
            if episode is None or counted.get(episode, 0) >= tuning.episode_hits:
                continue
            counted[episode] = counted.get(episode, 0) + 1
            totals[episode] = totals.get(episode, 0.0) + weight / (tuning.rrf_k + rank)
    return totals


_EPISODE_OF_SQL = {
    "passage": "SELECT id, episode_id FROM passages",
    "takeaway": "SELECT id, episode_id FROM takeaways",
    "episode": "SELECT id, id FROM episodes",
}


def episodes_of_hits(db, lists: list[tuple[str, list[Hit]]]) -> dict[tuple[str, int], int]:
    """(kind, ref) -> episode id for every hit in the lists; a hit whose row is gone is left out of fusion."""
    refs: dict[str, set[int]] = {}
    for _, hits in lists:
        for hit in hits:
            refs.setdefault(hit.kind, set()).add(hit.ref)
    found = {}
    for kind, ids in refs.items():
        marks = ",".join("?" * len(ids))
        for ref, episode in db.execute(f"{_EPISODE_OF_SQL[kind]} WHERE id IN ({marks})", sorted(ids)).fetchall():
            found[(kind, ref)] = episode
    return found


def _min_max(scores: list[float]) -> list[float]:
    low, high = min(scores), max(scores)
    if high - low < 1e-12:
        return [1.0 for _ in scores]
    return [(s - low) / (high - low) for s in scores]


# -- results -----------------------------------------------------------------------------------------------

_ROWS_SQL = {
    "passage": "SELECT r.id, r.start, r.end, r.speaker, r.text, r.episode_id FROM passages r",
    "takeaway": "SELECT r.id, r.start, r.end, NULL, r.title || ': ' || r.text, r.episode_id FROM takeaways r",
    "episode": "SELECT r.id, 0, 0, NULL, coalesce(r.notes_text, r.title, ''), r.id FROM episodes r",
}


def materialise(db, hits: list[Hit], parsed: ParsedQuery, evidence: dict | None = None) -> SearchResults:
    rows: dict[tuple[str, int], tuple] = {}
    terms = QueryTerms.of(parsed)
    for kind in keyword_index.KINDS:
        refs = [h.ref for h in hits if h.kind == kind]
        if not refs:
            continue
        marks = ",".join("?" * len(refs))
        for row in db.execute(f"{_ROWS_SQL[kind]} WHERE r.id IN ({marks})", refs).fetchall():
            rows[(kind, row[0])] = row
    episodes = _episode_info(db, {row[5] for row in rows.values()})
    results = SearchResults(words=parsed.words())
    for hit in hits:
        row = rows.get((hit.kind, hit.ref))
        if row is None:  # deleted since a side index was built
            continue
        _, start, end, speaker, text, episode_id = row
        info = episodes.get(episode_id)
        if info is None:  # not published (a ranking's filter is the rule; this is the guard)
            continue
        start = float(start or 0)
        results.append(SearchResult(
            show=info["show"], episode_guid=info["guid"], episode_title=info["title"] or "",
            start=start, end=float(end or start), snippet=snippet(text, terms),
            score=round(hit.score, 6), url=f"/episodes/{episode_id}?t={int(start)}", kind=hit.kind,
            speaker=speaker, episode_id=episode_id, show_id=info["show_id"], published=info["published"],
            extra={"all_words": (evidence or {}).get((hit.kind, hit.ref), Evidence()).all_words},
        ))
        found = (evidence or {}).get((hit.kind, hit.ref), Evidence())
        results.evidence.append(found)
        results.some_words += found.all_words is False
    return results


# -- relevance floor ---------------------------------------------------------------------------------------

def fill_cosines(db, vector: np.ndarray, model: str, evidence: dict[tuple[str, int], Evidence],
                 context: dict[int, float]) -> None:
    """The cosine of the candidates the semantic ranking did not reach (keyword hits), from their stored vectors:
    passages re-scored exactly (archive/vector_index.py `refine`), episodes by their best notes chunk
    (`context`), takeaways by their own vector."""
    missing = {kind: [ref for (k, ref), e in evidence.items() if k == kind and e.cosine is None]
               for kind in keyword_index.KINDS}
    found: dict[tuple[str, int], float] = {}
    if missing["passage"]:
        ids = np.array(missing["passage"], dtype=np.int64)
        scored = vector_index.refine(db, model, vector, vector_index.VectorHits(ids, np.zeros(len(ids), np.float32)),
                                     len(ids))
        found.update((("passage", int(i)), float(s)) for i, s in zip(scored.ids, scored.scores))
    found.update((("episode", ref), context[ref]) for ref in missing["episode"] if ref in context)
    if missing["takeaway"]:
        found.update((("takeaway", ref), score) for ref, score in note_vectors.takeaway_cosines(
            db, vector, model, missing["takeaway"]).items())
    for key, cosine in found.items():
        evidence[key] = Evidence(cosine, evidence[key].all_words)


class FloorProbe:
    """What the floor may ask beyond a search's candidates, asked only when needed."""

    def __init__(self, db, parsed: ParsedQuery, filters: Filters, allowed, hidden, tuning: SearchTuning, vector,
                 model: str | None, mode: str):
        self.db, self.parsed, self.filters, self.allowed, self.hidden = db, parsed, filters, allowed, hidden
        self.tuning, self.vector, self.model, self.mode = tuning, vector, model, mode

    def words_known(self) -> bool:
        """Does any word of the query occur anywhere in the published archive? (Not only where a filter looks: a
        filtered search by meaning may find what is about a word said elsewhere.)"""
        anyword = replace(self.tuning, keyword_operator="OR")
        return any(hits for _, hits in keyword_rankings(self.db, self.parsed, Filters(), None, 1, anyword, 1,
                                                        unpublished_episodes(self.db)))

    def worded(self, hit: Hit) -> bool:
        """Does this candidate have some word of the query?"""
        row = self.db.execute(f"{_ROWS_SQL[hit.kind]} WHERE r.id = ?", [hit.ref]).fetchone()
        return row is not None and bool(QueryTerms.of(self.parsed).marks(" ".join((row[4] or "").split())))

    def about_archive(self) -> bool:
        """For a filtered search whose candidates are all weak: is the query about anything in the whole
        archive? Then the filtered moments that pass the moment floor are shown (a show's one weak mention of a
        topic the archive covers), where a query about nothing anywhere still finds nothing."""
        if self.allowed is None and self.filters.speaker is None:
            return False
        hidden, evidence, hits = unpublished_episodes(self.db), {}, []
        if self.mode == "hybrid":
            some: set = set()
            for _, found in keyword_rankings(self.db, self.parsed, Filters(), None, 1, self.tuning, 1, hidden, some):
                hits += [h for h in found if (h.kind, h.ref) not in some]
            evidence.update({(h.kind, h.ref): Evidence(None, True) for h in hits})
        top = semantic_ranking(self.db, self.vector, self.model, None, 1, None, hidden)
        notes = note_vectors.ranked(self.db, self.vector, self.model, 1, None, hidden)
        top += [Hit(kind, ref, score) for kind in note_vectors.KINDS for ref, score in notes[kind]]
        evidence.update({(h.kind, h.ref): Evidence(h.score) for h in top})
        return relevant(hits + top, evidence, self.tuning, self.worded)


CLOSEST_EPISODES = 3


def closest_episodes(db, context: dict[int, float], allowed=None, evidence=None, episode_of=None,
                     count: int = CLOSEST_EPISODES) -> list[ClosestEpisode]:
    """The published episodes nearest the query, offered when nothing matched: by their title and notes (best
    notes-chunk cosine; `context` is what the semantic ranking scored, the `allowed` episodes only), or, for
    episodes without notes, by their best candidate's own cosine (`evidence`, `episode_of`)."""
    scores = dict(context)
    for key, found in (evidence or {}).items():
        episode = (episode_of or {}).get(key)
        if episode is not None and found.cosine is not None and found.cosine > scores.get(episode, -1.0):
            scores[episode] = found.cosine
    best = sorted(scores.items(), key=lambda item: -item[1])[:count * 4]
    info = _episode_info(db, {episode for episode, _ in best})
    return [ClosestEpisode(episode, info[episode]["title"] or "", info[episode]["show"], info[episode]["show_id"],
                           info[episode]["published"], round(float(score), 4), f"/episodes/{episode}")
            for episode, score in best if episode in info][:count]


def _episode_info(db, episode_ids: set[int]) -> dict[int, dict]:
    if not episode_ids:
        return {}
    ids = sorted(episode_ids)
    sql = (
        "SELECT e.id, e.guid, e.title, e.published, s.id AS show_id, s.title AS show FROM episodes e "
        f"JOIN shows s ON s.id = e.show_id WHERE e.id IN ({','.join('?' * len(ids))}) AND {PUBLISHED}"
    )
    return {row["id"]: row for row in db.query(sql, ids)}
