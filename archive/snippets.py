"""Search snippets: the part of a result's text with the most query words, HTML-escaped, those words marked.

A word is marked when its stem is a query word's stem, by the Snowball stemmer of Tantivy's English analyzer (the
one its index uses), or when it starts with a query prefix (`data*`).
"""

from __future__ import annotations

import functools
import html
import re
from dataclasses import dataclass

from .fts import ParsedQuery

SNIPPET_CHARS = 260  # about 40 words
PLAIN_SNIPPET_CHARS = 240


@dataclass(frozen=True)
class QueryTerms:
    """What a snippet marks: words whose stem is a query word's stem, or that start with a query prefix."""

    stems: frozenset[str]
    prefixes: tuple[str, ...]

    @classmethod
    def of(cls, parsed: ParsedQuery) -> "QueryTerms":
        stems, prefixes = set(), []
        for clause in parsed.required():
            words = list(clause.words)
            if clause.prefix:
                prefixes.append(words.pop())
            for word in words:
                stems.update(_analyzer().analyze(word))
        return cls(frozenset(stems), tuple(prefixes))

    @functools.cached_property
    def candidates(self) -> re.Pattern | None:
        """Words that may be marked: those beginning like a stem (its last letter dropped, as the stemmer may
        have changed it: "studi" from "study") or a prefix. `marks` checks each one's stem."""
        starts = {stem[:-1] if len(stem) > 3 else stem for stem in self.stems if stem} | set(self.prefixes)
        if not starts:
            return None
        alternatives = "|".join(re.escape(start) for start in sorted(starts, key=len, reverse=True))
        return re.compile(rf"(?<![^\W_])(?:{alternatives})[^\W_]*", re.IGNORECASE)

    def marks(self, text: str) -> list[tuple[int, int]]:
        """Character spans of the words to mark in `text`."""
        if self.candidates is None:
            return []
        spans = []
        for match in self.candidates.finditer(text):
            word = match.group().lower()
            if _stem(word) in self.stems or (self.prefixes and word.startswith(self.prefixes)):
                spans.append(match.span())
        return spans


_analyzers: list = []


def _analyzer():
    """Tantivy's English analyzer (lower case + Snowball stemmer), the one its index uses."""
    if not _analyzers:
        import tantivy

        _analyzers.append(tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
                          .filter(tantivy.Filter.lowercase()).filter(tantivy.Filter.stemmer("english")).build())
    return _analyzers[0]


_stems: dict[str, str] = {}


def _stem(word: str) -> str:
    """The index's stem of one lower-case word, remembered: snippets meet the same words again and again."""
    stem = _stems.get(word)
    if stem is None:
        if len(_stems) > 200_000:
            _stems.clear()
        analysed = _analyzer().analyze(word)
        stem = _stems[word] = analysed[0] if analysed else ""
    return stem


def snippet(text: str | None, terms: QueryTerms, window: int = SNIPPET_CHARS) -> str:
    """The part of `text` (about `window` characters, cut between words) with the most query words, HTML-escaped,
    the words in <mark>."""
    text = " ".join((text or "").split())
    spans = terms.marks(text)
    if not spans:
        return plain_snippet(text)
    best, count, j = spans[0][0], 0, 0
    for i, (first, _) in enumerate(spans):  # the window starting at a marked word that holds the most of them
        while j < len(spans) and spans[j][1] <= first + window:
            j += 1
        if j - i > count:
            best, count = first, j - i
    start = max(0, text.rfind(" ", 0, max(0, best - window // 4)) + 1)
    end = text.find(" ", start + window)
    end = len(text) if end < 0 else end
    pieces, cursor = ["…" if start else ""], start
    for word_start, word_end in spans:
        if start <= word_start and word_end <= end:
            pieces.append(html.escape(text[cursor:word_start]))
            pieces.append("<mark>" + html.escape(text[word_start:word_end]) + "</mark>")
            cursor = word_end
    pieces.append(html.escape(text[cursor:end]))
    pieces.append("…" if end < len(text) else "")
    return "".join(pieces)


def plain_snippet(text: str | None) -> str:
    text = " ".join((text or "").split())
    if len(text) > PLAIN_SNIPPET_CHARS:
        text = text[:PLAIN_SNIPPET_CHARS].rsplit(" ", 1)[0] + "…"
    return html.escape(text)
