"""User queries never reach FTS5 (or Tantivy) as syntax, and still behave as a search box should."""

import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archive.fts import Clause, fts5_match, parse_query, tantivy_clause, tantivy_query
from archive.search import search
from fakes import FakeEmbedder
from search_helpers import add_episode, add_segments, add_show, index_all
from archive.records import Segment

HOSTILE = [
    "", " ", "\t\n  ", '"', '""', '"""', "'", "*", "**", "a*", "^", "^start", ":", "text:", "text:kubernetes",
    "passages_fts:data", "{text}: data", "-data", "+data", "(", ")", "((data", "data)", "(data OR", "AND", "OR",
    "NOT", "NEAR", "data AND", "OR data", "NOT data", "data NOT", "NEAR(data science, 3)", "NEAR(", "data NEAR/2",
    'unbalanced "quote', '"unbalanced quote', 'two "phrases" and "one more', "c++ c# .net", "ml-ops", "e.g.",
    "x" * 10_000, "data " * 2000, "🎙️🔥 podcasts", "🎙️", "مرحبا بالعالم", "שלום", "日本語の検索", "ñandú café",
    "nul\x00byte", "\x00", "\x01\x02", "back\\slash", "semi;colon", "percent%", "under_score", "'; DROP TABLE passages; --",
    "<script>alert(1)</script>", "data*science", "*data", "d*", "\ud800" if False else "\u200b", "\ufeffbom",
    "ⅷ ½ ²", "Ｆｕｌｌｗｉｄｔｈ", '"data" "science"', '"a" OR "b"', "rank:1", "rowid:1", "bm25(x)",
]


@pytest.fixture(scope="module")
def fts_db():
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE t USING fts5(text, tokenize='porter')")
    rows = [
        "machine learning models in production",
        "learning about machines and production lines",
        "data engineering pipelines with kubernetes",
        "we talk about data science careers",
        "the learner learned",
    ]
    conn.executemany("INSERT INTO t (text) VALUES (?)", [(r,) for r in rows])
    return conn


def matches(conn, query: str, operator: str = "AND") -> list[int]:
    expression = fts5_match(parse_query(query), operator)
    if not expression:
        return []
    return [r[0] for r in conn.execute("SELECT rowid FROM t WHERE t MATCH ? ORDER BY rowid", [expression])]


@pytest.mark.parametrize("query", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_queries_never_raise_in_fts5(fts_db, query):
    for operator in ("AND", "OR"):
        matches(fts_db, query, operator)


@pytest.fixture(scope="module")
def fake_archive():
    from archive.db import memory_db

    db = memory_db()
    show = add_show(db, "Show")
    episode = add_episode(db, show, "g1", "Kubernetes for data teams", "2024-01-01T00:00:00+00:00")
    add_segments(db, episode, [Segment(0, 40, "We run data pipelines on kubernetes. It is fine."),
                               Segment(40, 80, "Machine learning in production needs monitoring.")])
    index_all(db, FakeEmbedder())
    return db


@pytest.mark.parametrize("query", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_queries_never_raise_in_search(fake_archive, query):
    for mode in ("keyword", "semantic", "hybrid"):
        results = search(fake_archive, query, mode=mode, embedder=FakeEmbedder())
        assert isinstance(results, list)


def test_empty_queries_give_no_results(fake_archive):
    for query in ("", "   ", '""', "*", "^:()"):
        assert search(fake_archive, query, mode="hybrid", embedder=FakeEmbedder()) == []


def test_words_are_quoted_and_operators_are_words():
    parsed = parse_query('kubernetes AND NOT "feature store" NEAR(x')
    # words that say nothing about the topic ("and", "not") are left out
    assert fts5_match(parsed, "AND") == '"kubernetes" AND "feature store" AND "near" AND "x"'
    assert fts5_match(parsed, "OR") == '"kubernetes" OR "feature store" OR "near" OR "x"'


def test_only_stopwords_are_kept_when_there_is_nothing_else():
    assert fts5_match(parse_query("what is it"), "AND") == '"what" AND "is" AND "it"'
    assert fts5_match(parse_query("what is it"), "OR") == '"what" OR "is" OR "it"'


def test_phrases_keep_their_words_in_order(fts_db):
    assert matches(fts_db, '"machine learning"') == [1]
    assert matches(fts_db, "machine learning") == [1, 2]  # both words, anywhere (stemmed: machines, learning)


def test_prefixes_need_two_characters(fts_db):
    assert parse_query("kube*").clauses == (Clause(("kube",), prefix=True),)
    assert matches(fts_db, "kube*") == [3]
    assert parse_query("k*").clauses == (Clause(("k",)),)  # too short to be a prefix: the letter k
    assert matches(fts_db, "engin* pipe*") == [3]


def test_phrase_prefix(fts_db):
    clause = parse_query('"data sci*"').clauses[0]
    assert clause == Clause(("data", "sci"), prefix=True, phrase=True)
    assert matches(fts_db, '"data sci*"') == [4]
    assert tantivy_clause(clause) == '"data sci"*'


def test_unbalanced_quote_is_dropped():
    assert parse_query('"feature store').clauses == (Clause(("feature",)), Clause(("store",)))
    parsed = parse_query('"feature store" "mlops')
    assert parsed.clauses == (Clause(("feature", "store"), phrase=True), Clause(("mlops",)))


def test_column_filters_and_punctuation_are_plain_words():
    assert [c.words for c in parse_query("text:kubernetes ^data c++").clauses] == [
        ("text",), ("kubernetes",), ("data",), ("c",)]


def test_long_queries_are_capped():
    parsed = parse_query(" ".join(f"word{i}" for i in range(5000)))
    assert 0 < len(parsed.clauses) <= 24


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200)
       | st.lists(st.sampled_from(['"', "*", "(", ")", "AND", "OR", "NOT", "NEAR", ":", "^", "-", "+", "data",
                                   " ", "x", "\x00", "é", "🎙"]), max_size=30).map("".join))
def test_any_text_is_a_valid_fts5_query(fts_db, text):
    parsed = parse_query(text)
    for operator in ("AND", "OR"):
        expression = fts5_match(parsed, operator)
        if expression:
            fts_db.execute("SELECT count(*) FROM t WHERE t MATCH ?", [expression]).fetchone()


@pytest.fixture(scope="module")
def tantivy_index():
    import tantivy

    builder = tantivy.SchemaBuilder()
    builder.add_text_field("text", stored=False, tokenizer_name="en_stem", index_option="position")
    index = tantivy.Index(builder.build())
    writer = index.writer(heap_size=15_000_000, num_threads=1)
    writer.add_document(tantivy.Document(text="machine learning models in production"))
    writer.commit()
    index.reload()
    return index


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=120))
def test_any_text_is_a_valid_tantivy_query(tantivy_index, text):
    searcher = tantivy_index.searcher()
    for clause in parse_query(text).clauses:
        searcher.search(tantivy_query(tantivy_index, tantivy_clause(clause), "text"), 5, count=False)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Zs", "Zl", "Zp", "Cc"),
                                      exclude_characters='"'), min_size=1, max_size=300)
       | st.text(alphabet=".*+?()[]{}|^$\\-&~#/:!ab", min_size=1, max_size=20))
def test_one_word_prefix_clauses_escape_regex_syntax(tantivy_index, word):
    """parse_query leaves only letters and digits in a word; tantivy_query does not rely on it."""
    clause = f'"{word}"*'
    tantivy_index.searcher().search(tantivy_query(tantivy_index, clause, "text"), 5, count=False)


def prefix_hits(index, query: str) -> int:
    clauses = parse_query(query).clauses
    return index.searcher().search(tantivy_query(index, tantivy_clause(clauses[0]), "text"), 5).count


@pytest.mark.parametrize("text", ["00*", "data*", "über*", "x*", "é" * 900 + "*"])
def test_one_word_prefixes_are_valid_tantivy_queries(tantivy_index, text):
    assert prefix_hits(tantivy_index, text) == 0


def test_one_word_prefixes_match_the_stemmed_terms_they_begin(tantivy_index):
    assert tantivy_clause(parse_query("mach*").clauses[0]) == '"mach"*'
    assert prefix_hits(tantivy_index, "mach*") == 1  # "machine", stored as "machin"
    assert prefix_hits(tantivy_index, "productions*") == 1  # no term begins with it: the word, stemmed
    assert prefix_hits(tantivy_index, "MODEL*") == 1
    assert prefix_hits(tantivy_index, "mod") == 0
