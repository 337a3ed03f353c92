"""User queries made safe for full-text search.

A query typed by a user is never handed to FTS5 (or Tantivy) as it is: quotes, AND/OR/NOT/NEAR, `*`, `^`, `:`,
column filters and parentheses all mean something there, and an unbalanced one is a syntax error. `parse_query`
tokenises the input into clauses that keep only what a user expects of a search box:

* "exact phrases" between balanced double quotes;
* prefix* : a trailing `*` on a word of at least two characters;
* every other word, as a plain term (operators are words like any other).

`fts5_match` then writes a MATCH expression where every clause is a quoted string, so nothing in it can be read
as syntax. `tantivy_clause` and `tantivy_query` do the same for the large-archive Tantivy index, where a one-word
prefix, which Tantivy's parser refuses, becomes a regex over the indexed (stemmed) terms, its metacharacters
escaped. Common English words are left out (they would narrow an AND query to passages that happen to say "the",
and make an OR query match nearly everything, slowly), unless the query has nothing else.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

MAX_QUERY_CHARS = 1000
MAX_CLAUSES = 24
MIN_PREFIX_CHARS = 2
# Tantivy drops tokens of 40 bytes or more before lower-casing and stemming, so no indexed term is much longer;
# a longer prefix matches nothing, and its regex could exceed the regex compiler's limit of 1000 states.
MAX_PREFIX_BYTES = 80

# Words that carry no topic in a listener's question ("what do they say about ...").
STOPWORDS = frozenset(
    """
    a about above after again against all also am an and any are aren as at be because been before being below
    between both but by can cannot could couldn did didn do does doesn doing don down during each few for from
    further get gets got had hadn has hasn have haven having he her here hers herself him himself his how i if in
    into is isn it its itself just let lets like me more most mustn my myself no nor not now of off on once only
    or other ought our ours ourselves out over own really s same say says she should shouldn so some such t talk
    talks talked tell than that the their theirs them themselves then there these they this those through to too
    under until up us very was wasn we were weren what when where which while who whom why will with won would
    wouldn you your yours yourself yourselves anyone someone something thing things discuss discussed episode
    episodes podcast mention mentioned
    """.split()
)

_PHRASE_OR_WORD = re.compile(r'"([^"]*)"|([^\s"]+)')
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_ONE_WORD_PREFIX = re.compile(r'"([^\s"]+)"\*')  # what tantivy_clause writes for a one-word prefix


@dataclass(frozen=True)
class Clause:
    """One searchable unit: a word, a phrase (several words in order), either possibly ending in a prefix."""

    words: tuple[str, ...]
    prefix: bool = False
    phrase: bool = False

    @property
    def is_stopword(self) -> bool:
        return not self.phrase and not self.prefix and self.words[0] in STOPWORDS


@dataclass(frozen=True)
class ParsedQuery:
    clauses: tuple[Clause, ...]

    @property
    def empty(self) -> bool:
        return not self.clauses

    def required(self) -> tuple[Clause, ...]:
        """The clauses an AND query needs: all but stopwords, or all when there is nothing else."""
        content = tuple(c for c in self.clauses if not c.is_stopword)
        return content or self.clauses

    def words(self) -> list[str]:
        """Every distinct word of the query (stopwords left out when anything else is there), for highlights."""
        seen: dict[str, None] = {}
        for clause in self.required():
            for word in clause.words:
                seen.setdefault(word, None)
        return list(seen)


def normalise(text: str) -> str:
    """NFKC, lower case, control characters (NUL included) turned into spaces, and no longer than we search."""
    text = unicodedata.normalize("NFKC", text or "")[:MAX_QUERY_CHARS]
    return "".join(" " if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") else ch for ch in text).lower()


def parse_query(text: str) -> ParsedQuery:
    """Tokenise a user's query into clauses; never raises, whatever the input."""
    text = normalise(text)
    if text.count('"') % 2:  # an unbalanced quote is a typo, not a phrase
        last = text.rfind('"')
        text = text[:last] + " " + text[last + 1:]
    clauses: list[Clause] = []
    for match in _PHRASE_OR_WORD.finditer(text):
        phrase, bare = match.groups()
        if phrase is not None:
            clauses.extend(_phrase_clauses(phrase))
        else:
            clauses.extend(_word_clauses(bare))
    unique = tuple(dict.fromkeys(clauses))
    return ParsedQuery(unique[:MAX_CLAUSES])


def _phrase_clauses(phrase: str) -> list[Clause]:
    words = tuple(_WORD.findall(phrase))
    if not words:
        return []
    prefix = phrase.rstrip().endswith("*") and len(words[-1]) >= MIN_PREFIX_CHARS
    return [Clause(words, prefix=prefix, phrase=len(words) > 1)]


def _word_clauses(token: str) -> list[Clause]:
    """A bare token may hold punctuation ("c++", "ml-ops", "NEAR(a"): its words become separate clauses, and a
    trailing `*` makes the last one a prefix."""
    words = _WORD.findall(token)
    if not words:
        return []
    prefix = token.endswith("*") and len(words[-1]) >= MIN_PREFIX_CHARS and token.rstrip("*").endswith(words[-1])
    clauses = [Clause((word,)) for word in words[:-1]]
    clauses.append(Clause((words[-1],), prefix=prefix))
    return clauses


def quote(words: tuple[str, ...] | list[str]) -> str:
    # Words hold letters and digits only, so a double quote never appears inside; doubling is belt and braces.
    return '"' + " ".join(words).replace('"', '""') + '"'


def fts5_clause(clause: Clause) -> str:
    return quote(clause.words) + (" *" if clause.prefix else "")


def fts5_match(query: ParsedQuery, operator: str = "AND") -> str:
    """A MATCH expression for FTS5: every clause quoted (stopwords dropped), joined by AND or OR.
    Returns "" for a query with nothing to search."""
    if operator not in ("AND", "OR"):
        raise ValueError(f"operator must be AND or OR, not {operator!r}")
    return f" {operator} ".join(fts5_clause(c) for c in query.required())


def tantivy_clause(clause: Clause) -> str:
    """The same clause in Tantivy's query language: a quoted phrase (its analyzer stems it), `*` for a prefix.
    Tantivy's parser refuses a one-word prefix ("data"*), so `tantivy_query` builds that one itself."""
    return tantivy_quote(clause.words) + ("*" if clause.prefix else "")


def tantivy_quote(words: tuple[str, ...] | list[str]) -> str:
    # Tantivy escapes with a backslash where FTS5 doubles quotes; words never hold either, this is belt and braces.
    return '"' + re.sub(r'([\\"])', r"\\\1", " ".join(words)) + '"'


def tantivy_query(index, clause_text: str, field: str):
    """The Tantivy query for one clause from `tantivy_clause`, searched in `field` of `index`."""
    word = _ONE_WORD_PREFIX.fullmatch(clause_text)
    if word is None:
        return index.parse_query(clause_text, [field])
    return _one_word_prefix_query(index, word.group(1), field)


def _one_word_prefix_query(index, word: str, field: str):
    """The indexed terms (stems) that begin with `word`, or the word itself as the parser stems it: stemming can
    cut a word short of its own prefix ("running" is stored as "run", which `running*` would otherwise miss).
    Tantivy gives every regex match the same score (1.0), so the whole word, scored by BM25, ranks above the
    other words that begin with it."""
    import tantivy

    whole_word = index.parse_query(tantivy_quote([word]), [field])
    prefix = word.lower()
    if len(prefix.encode()) > MAX_PREFIX_BYTES:
        return whole_word
    starts_with = tantivy.Query.regex_query(index.schema, field, _regex_literal(prefix) + ".*")
    return tantivy.Query.boolean_query([(tantivy.Occur.Should, whole_word), (tantivy.Occur.Should, starts_with)])


def _regex_literal(text: str) -> str:
    """`text` as a literal in Tantivy's (Rust) regex syntax: anything but a letter or digit as a \\x{...} escape."""
    return "".join(ch if ch.isalnum() else f"\\x{{{ord(ch):x}}}" for ch in text)
