"""Topic segmentation over passage embeddings, TextTiling style (Hearst 1997, with embeddings for word counts).

For each gap between two passages, compare the mean vector of the `window` passages before it with the mean of
the `window` after it; a topic shift shows as a valley in that similarity. A gap's depth is how far its similarity
lies below the highest similarity reached by climbing to each side. Gaps are taken deepest first while their depth
clears a cut-off (mean - std/2 of all depths, as in TextTiling, and at least `min_depth`) and every segment stays
at least `min_seconds` long, up to `max_segments`. Deterministic: ties go to the earlier gap.

The minimum length adapts to the episode: a fifteenth of it, kept between 45 s and 5 min, so an hour's interview
gets segments of 4 min or more and a ten-minute one can still have several.

`keyphrases` and `phrase_title` give a segment (or a takeaway) a short title made of its most distinctive phrases.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

from archive.fts import STOPWORDS


@dataclass
class TopicOptions:
    window: int = 2
    min_seconds: float | None = None  # None: from the episode's length (see default_min_seconds)
    max_segments: int = 24
    min_passages: int = 2  # the minimum length for transcripts without times
    min_depth: float = 0.05  # below this a valley is noise (real topic shifts score far deeper with MiniLM)


def default_min_seconds(duration: float) -> float:
    return float(min(300.0, max(45.0, duration / 15.0)))


def gap_similarities(vectors: np.ndarray, window: int) -> np.ndarray:
    """Similarity across each gap i (between passage i-1 and i), for i in 1..n-1."""
    n = len(vectors)
    sims = np.zeros(max(n - 1, 0), dtype=np.float64)
    for gap in range(1, n):
        left = vectors[max(0, gap - window):gap].mean(axis=0)
        right = vectors[gap:gap + window].mean(axis=0)
        denom = np.linalg.norm(left) * np.linalg.norm(right)
        sims[gap - 1] = float(left @ right / denom) if denom else 0.0
    return sims


def depth_scores(sims: np.ndarray) -> np.ndarray:
    depths = np.zeros_like(sims)
    for i, value in enumerate(sims):
        left_peak = value
        for j in range(i - 1, -1, -1):
            if sims[j] < left_peak:
                break
            left_peak = sims[j]
        right_peak = value
        for j in range(i + 1, len(sims)):
            if sims[j] < right_peak:
                break
            right_peak = sims[j]
        depths[i] = (left_peak - value) + (right_peak - value)
    return depths


def _long_enough(starts: list[float], ends: list[float], boundaries: list[int], timed: bool,
                 min_seconds: float, min_passages: int) -> bool:
    edges = sorted(boundaries) + [len(starts)]
    previous = 0
    for edge in edges:
        if edge <= previous:
            return False
        if timed:
            if ends[edge - 1] - starts[previous] < min_seconds:
                return False
        elif edge - previous < min_passages:
            return False
        previous = edge
    return True


def topic_boundaries(vectors: np.ndarray, starts: list[float], ends: list[float],
                     options: TopicOptions | None = None) -> list[int]:
    """Indices of the passages that open a topic segment; always starts with 0 (empty for no passages)."""
    options = options or TopicOptions()
    n = len(vectors)
    if n == 0:
        return []
    if n < 2:
        return [0]
    timed = bool(ends) and max(ends) > 0
    duration = (ends[-1] - starts[0]) if timed else 0.0
    min_seconds = options.min_seconds if options.min_seconds is not None else default_min_seconds(duration)
    depths = depth_scores(gap_similarities(np.asarray(vectors, dtype=np.float64), options.window))
    cutoff = depths.mean() - depths.std() / 2
    chosen: list[int] = []
    for gap in sorted(range(len(depths)), key=lambda g: (-depths[g], g)):
        if depths[gap] < max(cutoff, options.min_depth) or len(chosen) + 1 >= options.max_segments:
            break
        candidate = chosen + [gap + 1]
        if _long_enough(starts, ends, candidate, timed, min_seconds, options.min_passages):
            chosen = candidate
    return [0] + sorted(chosen)


def topic_segments(vectors: np.ndarray, starts: list[float], ends: list[float],
                   options: TopicOptions | None = None) -> list[tuple[int, int]]:
    """(first, last + 1) passage indices of each topic segment, in order."""
    bounds = topic_boundaries(vectors, starts, ends, options)
    return [(b, bounds[i + 1] if i + 1 < len(bounds) else len(vectors)) for i, b in enumerate(bounds)]


# ---- keyphrases: short titles for topic segments ---------------------------------------------------------------

# The query-side English stopwords (archive/fts.py) plus the fillers of spoken English and their contractions; a
# keyphrase neither starts nor ends with one and holds none.
SPOKEN_STOPWORDS = STOPWORDS | frozenset("""
across actually afterwards ago ah almost alone along already although always among another anybody anyhow anything
anyway anyways anywhere aren't around ask asked asking away back bad basically became become becomes behind beside
besides best better beyond big bit can't certainly come comes coming couldn't day days didn't different doesn't
don't done easy either else enough especially even ever every everybody everyone everything exactly example fact
far feel fine first found getting give given go goes going gone good gotten great guess guy guys hadn't happen
happened hasn't haven't he's hear heard hello hey hi honestly however huh i'd i'll i'm i've idea important indeed
instead interesting isn't it's keep kind knew know known last later least less let's likely literally little long
look looking lot lots made main make makes making many may maybe mean means meant might mind mine mostly much must
need needed needs never new next nice nobody none nothing often oh ok okay old one ones onto others otherwise part
particular people perhaps point pretty probably put quite rather right said saw saying see seem seemed seems seen
shouldn't show since somebody somehow sometimes somewhat sort start started still stuff super sure take taken
talking thank thanks that's there's they're think thinking though thought time times today together took toward
towards tried true try trying um uh understand upon use used using usually via wait want wanted wants wasn't way
ways we'll we're we've well went weren't what's whatever whether whole whose within without won't work worked
working wouldn't wow yeah year years yes yet you'd you'll you're you've welcome question questions answer today's
gives gave giving learned learnt increases increased decided helps helped helping finished reached picked joined
moved realized realised believe believed noticed knows taught
""".split())
# Words that say nothing as (part of) a title, though they may matter in a statement.
TITLE_STOPWORDS = SPOKEN_STOPWORDS | frozenset("""
thoughts idea ideas whoever whatever throughout everything everyone everybody honestly obviously literally
definitely certainly exactly totally necessarily especially particularly
""".split())

_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’+#./-]*[A-Za-z0-9+#]|[A-Za-z]")
_CLAUSE = re.compile(r"[.,;:!?()\[\]\"“”—–]+")
_SENTENCE_END = re.compile(r"[.!?]+[\"”’)]*\s+")
SENTENCE_START = "\x00"
_PAST_PARTICIPLE = re.compile(r"\w{3}[^e]ed$")
_ADVERB = re.compile(r"\w{3}(?:ally|ively|ently|antly|ously|ibly|ably|ingly|fully|edly|ately)$")


def _candidate_phrases(text: str, max_words: int = 3) -> list[tuple[str, str]]:
    """(key, surface) of every 1-3 word run of content words in text, clause by clause. A run that opens a
    sentence gets its surface marked with SENTENCE_START and its first word in lower case, since grammar, not
    spelling, capitalised it ("Testing is hard"); `_display_form` uses such forms only when there is no other."""
    out = []
    for sentence in _SENTENCE_END.split(text):
        opening = True  # until the sentence's first word
        for clause in _CLAUSE.split(sentence):
            words = [w.replace("’", "'") for w in _WORD.findall(clause)]
            for i in range(len(words)):
                out.extend(_runs_from(words, i, max_words, opens_sentence=opening and i == 0))
            opening = opening and not words
    return out


def _runs_from(words: list[str], i: int, max_words: int, opens_sentence: bool) -> list[tuple[str, str]]:
    """(key, surface) of the runs of content words starting at words[i], up to max_words long."""
    out = []
    for run in (words[i:i + size] for size in range(1, min(max_words, len(words) - i) + 1)):
        keys = [w.lower() for w in run]
        if any(k in TITLE_STOPWORDS or k.isdigit() or len(k) < 2 or _ADVERB.search(k) for k in keys):
            break
        if _PAST_PARTICIPLE.search(keys[-1]):  # "materials pushed": a noun phrase ends in a noun
            continue
        surface = " ".join(run)
        if opens_sentence:
            surface = SENTENCE_START + _uncapitalise(run[0]) + surface[len(run[0]):]
        out.append((" ".join(keys), surface))
    return out


def _uncapitalise(word: str) -> str:
    return word[0].lower() + word[1:] if re.fullmatch(r"[A-Z][a-z][\w'-]*", word) else word


def keyphrases(segment_passages: list[list[str]], top: int = 3, embedder=None,
               centroids: np.ndarray | None = None) -> list[list[str]]:
    """For each topic segment (given as its passages' texts), its most distinctive phrases.

    Candidates are 1-3 word runs of content words, scored by TF-IDF: count in the segment times the inverse of
    the share of the episode's passages that use them, so words used all through the episode do not title one
    part of it; longer phrases count for more, phrases seen once in a long segment are ignored. With an embedder
    and the segments' centroid vectors, the best candidates are re-ranked by closeness to the segment's meaning
    with maximal marginal relevance (as KeyBERT does), so the title says what the segment is about rather than
    what it repeats. A phrase sharing a word with a chosen one is skipped.
    """
    passage_counts = [[_phrase_counts(text) for text in passages] for passages in segment_passages]
    words = [sum(len(text.split()) for text in passages) for passages in segment_passages]
    return rank_by_tfidf(passage_counts, words, top, embedder, centroids)


def rank_by_tfidf(passage_counts: list[list[tuple[Counter, dict[str, Counter]]]], words: list[int], top: int = 3,
                  embedder=None, centroids: np.ndarray | None = None, length_weight: float = 0.6,
                  display=None) -> list[list[str]]:
    """Each segment's `top` best phrases that share no word, from its passages' (phrase counts, phrase -> spelling
    counts): TF-IDF over all the passages (a phrase seen once in a segment of over 150 words is ignored; longer
    phrases weigh `length_weight` more per word), then, with an embedder and the segments' centroids, re-ranked by
    meaning. `display(spellings)` picks the spelling shown (default `_display_form`)."""
    n_passages = sum(len(p) for p in passage_counts) or 1
    doc_freq: Counter = Counter()
    for passages in passage_counts:
        for counts, _ in passages:
            doc_freq.update(counts.keys())
    ranked_lists, surface_maps = [], []
    for passages, n_words in zip(passage_counts, words):
        counts: Counter = Counter()
        surfaces: dict[str, Counter] = {}
        for passage_count, passage_surfaces in passages:
            counts.update(passage_count)
            for key, forms in passage_surfaces.items():
                surfaces.setdefault(key, Counter()).update(forms)
        min_count = 2 if n_words > 150 else 1
        scored = []
        for key, count in counts.items():
            if count < min_count:
                continue
            idf = math.log(n_passages / doc_freq[key]) + 1
            size = key.count(" ") + 1 if count > 1 else 1  # a phrase said once is no better for being long
            scored.append((count * idf * (1 + length_weight * (size - 1)), key))
        scored.sort(key=lambda item: (-item[0], item[1]))
        ranked_lists.append(scored)
        surface_maps.append(surfaces)
    if embedder is not None and centroids is not None:
        ranked = _rerank_by_meaning(ranked_lists, np.asarray(centroids, dtype=np.float32), embedder)
    else:
        ranked = [[key for _, key in scored] for scored in ranked_lists]
    return [_distinct(keys, surfaces, top, display or _display_form) for keys, surfaces in zip(ranked, surface_maps)]


def _phrase_counts(text: str) -> tuple[Counter, dict[str, Counter]]:
    counts: Counter = Counter()
    surfaces: dict[str, Counter] = {}
    for key, surface in _candidate_phrases(text):
        counts[key] += 1
        surfaces.setdefault(key, Counter())[surface] += 1
    return counts, surfaces


def _rerank_by_meaning(ranked_lists: list[list[tuple[float, str]]], centroids: np.ndarray, embedder,
                       candidates: int = 20, diversity: float = 0.3) -> list[list[str]]:
    """Re-rank each segment's best candidates: close to this segment, not to the whole episode (its theme would
    otherwise title every segment), and not a near-repeat of a phrase already taken."""
    unique = sorted({key for scored in ranked_lists for _, key in scored[:candidates]})
    if not unique:
        return [[] for _ in ranked_lists]
    vectors = dict(zip(unique, embedder.embed(unique)))
    theme = centroids.mean(axis=0)
    theme = theme / (np.linalg.norm(theme) or 1.0)
    out = []
    for scored, centroid in zip(ranked_lists, centroids):
        top = scored[:candidates]
        if not top:
            out.append([])
            continue
        keys = [key for _, key in top]
        matrix = np.stack([vectors[key] for key in keys])
        centre = centroid / (np.linalg.norm(centroid) or 1.0)
        tfidf = np.asarray([score for score, _ in top]) / top[0][0]
        relevance = matrix @ centre - 0.5 * (matrix @ theme) + 0.2 * tfidf
        out.append([keys[i] for i in _mmr_order(matrix, relevance, diversity)])
    return out


def _mmr_order(matrix: np.ndarray, relevance: np.ndarray, diversity: float) -> list[int]:
    order: list[int] = []
    remaining = list(range(len(relevance)))
    while remaining:
        def mmr(i: int) -> float:
            redundancy = max((float(matrix[i] @ matrix[j]) for j in order), default=0.0)
            return (1 - diversity) * float(relevance[i]) - diversity * redundancy

        best = max(remaining, key=lambda i: (mmr(i), -i))
        order.append(best)
        remaining.remove(best)
    return order


def _distinct(ranked: list[str], surfaces: dict[str, Counter], top: int, display=None) -> list[str]:
    chosen: list[str] = []
    used: set[str] = set()
    for key in ranked:
        words = set(key.split())
        if words & used:
            continue
        chosen.append((display or _display_form)(surfaces[key]))
        used |= words
        if len(chosen) == top:
            break
    return chosen


def _display_form(surfaces: Counter) -> str:
    """The spelling to show: the most common one, lower-cased unless it is a name or acronym mid-sentence; a
    phrase only ever seen opening a sentence keeps the case it has after `_candidate_phrases`."""
    inside = Counter({form: count for form, count in surfaces.items() if not form.startswith(SENTENCE_START)})
    if not inside:
        return max(surfaces.items(), key=lambda item: (item[1], item[0]))[0][len(SENTENCE_START):]
    surface = max(inside.items(), key=lambda item: (item[1], item[0]))[0]
    lower = surface.lower()
    if lower in inside:
        return lower
    return surface


def phrase_title(phrases: list[str], max_chars: int = 60) -> str:
    """"Data labeling and X-ray machines": the best phrase, and the second when the two fit in max_chars and the
    second is a phrase or a name (a lone common word there is too often a verb or a filler); first letter upper
    case."""
    if not phrases:
        return ""
    title = phrases[0]
    if len(phrases) > 1:
        second = phrases[1]
        if (" " in second or second != second.lower()) and len(title) + len(second) + 5 <= max_chars:
            title = f"{title} and {second}"
    return title[:1].upper() + title[1:]
