"""Search on the site and in the API: grouped results that open the episode at the moment, filters, modes,
hostile queries (never an error page), and the same results as `podarchive search --json`."""

import json
import re

import pytest
from click.testing import CliRunner

from archive.db import open_db
from archive.sanitize import clean_snippet
from fakes import FakeEmbedder
from web_fixtures import DATACAST_LINES, ArchiveBuilder, make_app, sample_archive


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    from ingest.index_run import build_index

    path = tmp_path_factory.mktemp("search") / "archive.db"
    db = open_db(path)
    built = sample_archive(db)
    build_index(db, embedder=FakeEmbedder())
    db.conn.close()
    return path, built.ids


@pytest.fixture(scope="module")
def app(indexed):
    return make_app(indexed[0])


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def ids(indexed):
    return indexed[1]


def text(response) -> str:
    return response.get_data(as_text=True)


def test_search_groups_moments_by_episode_with_highlights_and_time_links(client, ids):
    page = text(client.get("/search?q=data+drift"))
    assert re.search(r"\d+ moments? in \d+ episodes?", page)
    group = page[page.index('class="card hit-group"'):]
    assert "Machine Learning Testing with Mohamed Elgendy" in group
    assert "<mark>drift</mark>" in page.lower() or "<mark>data</mark>" in page.lower()
    links = re.findall(rf'href="/episodes/{ids["ep70"]}\?t=(\d+)#t(\d+)"', page)
    assert links and all(t == anchor for t, anchor in links)


@pytest.mark.parametrize("mode", ["hybrid", "keyword", "semantic"])
def test_every_mode_finds_the_episode(client, ids, mode):
    response = client.get(f"/search?q=data+drift+in+production&mode={mode}")
    assert response.status_code == 200
    assert f'href="/episodes/{ids["ep70"]}?t=' in text(response)
    assert f'value="{mode}" checked' in text(response)


def test_filters_narrow_the_search(client, ids):
    assert "Machine Learning Testing" not in text(client.get(f"/search?q=testing&show={ids['dtc']}"))
    everyone = text(client.get("/search?q=testing&mode=keyword"))
    assert "Machine Learning Testing" in everyone and "Product Analytics" in everyone
    with_guest = text(client.get("/search?q=testing&mode=keyword&guest=Mohamed+Elgendy"))
    assert "Machine Learning Testing" in with_guest and "Product Analytics" not in with_guest
    assert 'value="Mohamed Elgendy"' in with_guest
    by_slug = text(client.get("/search?q=testing&mode=keyword&guest=mohamed-elgendy"))
    assert "Machine Learning Testing" in by_slug and "Product Analytics" not in by_slug
    dated = text(client.get("/search?q=testing&mode=keyword&since=2022-01-01&until=2022-12"))
    assert "Product Analytics" in dated and "Machine Learning Testing" not in dated


def test_unknown_guest_is_reported_and_everyone_searched(client):
    page = text(client.get("/search?q=testing&mode=keyword&guest=Nobody+Known"))
    assert "No guest called “Nobody Known”" in page and "Machine Learning Testing" in page


def test_empty_query_gets_a_helpful_page(client):
    for path in ("/search", "/search?q=", "/search?q=+++", "/search?q=%00%01"):
        response = client.get(path)
        assert response.status_code == 200 and "Search every transcript at once" in text(response)


def test_no_results_suggests_what_to_try(client):
    page = text(client.get("/search?q=zyzzyva+quux&mode=keyword&show=1"))
    assert "Nothing found" in page and "Search without filters" in page and "Best of both" in page


HOSTILE_QUERIES = [
    '"unbalanced quote', '""', '"data" "drift"', "data NEAR drift", "NEAR(data drift, 2)", "data*", "*", "**",
    "(((", "data) OR (drift", "AND OR NOT", "-data", "^drift", "text:drift", "{data}", "drift:", "a" * 10_000,
    "data\x00drift", "\x00", "🎙️ podcasts 🤖", "' OR 1=1 --", "<script>alert(1)</script>", "%", "_", "\\",
    "data;DROP TABLE passages", "ünïcödé drift", "\u202e drift", "\ufeff", "NULL", "drift" * 2000,
]


@pytest.mark.parametrize("query", HOSTILE_QUERIES)
@pytest.mark.parametrize("mode", ["hybrid", "keyword"])
def test_hostile_queries_never_break_the_page(client, query, mode):
    response = client.get("/search", query_string={"q": query, "mode": mode})
    assert response.status_code in (200, 400)
    page = text(response)
    assert "<h1>Search</h1>" in page and "<script>alert" not in page
    if len(query) > 500:
        assert "shortened to 500 characters" in page


@pytest.mark.parametrize("params", [
    {"q": "drift", "mode": "fuzzy"}, {"q": "drift", "since": "yesterday"}, {"q": "drift", "until": "2021-02-30"},
    {"q": "drift", "since": "2023-01-01", "until": "2020-01-01"}, {"q": "drift", "show": "abc"},
    {"q": "drift", "show": "999"}, {"q": "drift", "guest": "\x00<i>"}, {"q": "drift", "since": "0000-00-00"},
    {"q": "drift", "mode": "hybrid\x00semantic"}, {"q": "drift", "since": "9" * 100},
])
def test_bad_filters_are_explained_not_crashed_on(client, params):
    response = client.get("/search", query_string=params)
    assert response.status_code in (200, 400)
    assert 'class="notice"' in text(response)


def test_guest_page_searches_within_their_words(client, ids):
    page = text(client.get("/guests/mohamed-elgendy?q=drift&mode=keyword"))
    assert f'href="/episodes/{ids["ep70"]}?t=' in page
    assert "Product Analytics" not in page.split("Search what Mohamed Elgendy said")[1].split("<h2")[0]
    empty = text(client.get("/guests/jakob-graff?q=drift+silently&mode=keyword"))
    assert "Nothing found" in empty


def test_api_search_fields(client, ids):
    data = client.get("/api/search?q=data+drift").get_json()
    assert data["query"] == "data drift" and data["mode"] == "hybrid" and data["count"] == len(data["results"]) > 0
    first = data["results"][0]
    for field in ("show", "episode_guid", "episode_title", "start", "end", "snippet", "score", "url"):
        assert field in first
    assert first["url"] == f"/episodes/{first['episode_id']}?t={int(first['start'])}"
    assert "<script" not in json.dumps(data)


@pytest.mark.parametrize("query,message", [
    ("", "give the words"), ("q=" + "a" * 501, "longer than 500"), ("q=drift&mode=x", "mode"),
    ("q=drift&since=2021-13-01", "since"), ("q=drift&limit=0", "limit"), ("q=drift&show=999", "no show"),
    ("q=drift&guest=nobody", "no guest"), ("q=drift&since=2022-01-01&until=2021-01-01", "after"),
])
def test_api_search_errors_are_400_json(client, query, message):
    response = client.get(f"/api/search?{query}")
    assert response.status_code == 400
    assert message in response.get_json()["error"]["message"]


def test_api_search_matches_the_cli(indexed, app, monkeypatch):
    from archive import cli

    monkeypatch.setattr("archive.query_embedding.get_embedder", lambda *a, **k: FakeEmbedder())
    result = CliRunner().invoke(cli.cli, ["search", "data drift", "--db", str(indexed[0]), "--json", "--limit", "5"])
    assert result.exit_code == 0, result.output
    from_cli = json.loads(result.output)
    from_api = app.test_client().get("/api/search?q=data+drift&limit=5").get_json()["results"]
    for result in from_cli:  # the API re-sanitises snippets: the same HTML, serialised by nh3
        result["snippet"] = clean_snippet(result["snippet"])
    assert from_api == from_cli


DISTRACTOR_LINES = [
    (0.0, 20.0, "Today we talk about hiring your first analytics engineer and writing job descriptions.", "Host"),
    (20.0, 40.0, "Salary bands, interview loops and onboarding plans matter more than tools.", "Guest"),
]


@pytest.mark.slow
def test_search_with_the_real_default_embedder(tmp_path):
    """The site's default EMBEDDER (all-MiniLM-L6-v2, bundled) finds a passage by meaning."""
    from archive.embeddings import default_embedder
    from archive.records import Segment
    from ingest.index_run import build_index

    db = open_db(tmp_path / "real.db")
    build = ArchiveBuilder(db)
    show = build.show("Datacast")
    wanted = build.episode(show, "ep70", "Machine Learning Testing with Mohamed Elgendy",
                           published="2021-06-01T00:00:00+00:00")
    build.transcript(wanted, [Segment(*line) for line in DATACAST_LINES])
    other = build.episode(show, "ep71", "Hiring Analytics Engineers", published="2021-07-01T00:00:00+00:00")
    build.transcript(other, [Segment(*line) for line in DISTRACTOR_LINES])
    build_index(db, embedder=default_embedder())
    db.conn.close()
    app = make_app(tmp_path / "real.db", EMBEDDER=None)
    page = text(app.test_client().get("/search?q=catching+distribution+shift+before+customers+notice&mode=semantic"))
    first = page.index('class="card hit-group"')
    assert "Machine Learning Testing with Mohamed Elgendy" in page[first:first + 600]
    assert f'href="/episodes/{wanted}?t=0#t0"' in page


class BrokenEmbedder:
    """Fails the way SentenceTransformerEmbedder does when its model folder is missing."""

    name = "broken-model"

    @property
    def dims(self):
        from archive.errors import ModelLoadError

        raise ModelLoadError("cannot load embedding model '/nonexistent/model-folder'")

    def embed(self, texts):
        return self.dims


def test_an_embedding_model_that_will_not_load_is_a_503_not_a_crash(indexed):
    app = make_app(indexed[0], EMBEDDER=BrokenEmbedder())
    client = app.test_client()
    page = client.get("/search?q=drift&mode=hybrid")
    assert page.status_code == 503 and "Exact words" in text(page)
    assert client.get("/api/search?q=drift").status_code == 503
    assert client.get("/search?q=drift&mode=keyword").status_code == 200


def test_api_search_by_speaker_keeps_their_words(client, ids):
    data = client.get("/api/search?q=drift&mode=keyword&speaker=mohamed-elgendy").get_json()
    assert data["filters"]["speaker"] == "mohamed-elgendy" and data["count"] > 0
    assert {r["speaker"] for r in data["results"]} <= {"Mohamed Elgendy", None}
    assert {r["kind"] for r in data["results"]} == {"passage"}
    unknown = client.get("/api/search?q=drift&speaker=nobody-at-all")
    assert unknown.status_code == 400


def test_search_page_shows_a_first_page_and_links_to_more(client, monkeypatch):
    monkeypatch.setitem(client.application.config, "SEARCH_PAGE_RESULTS", 2)
    first = client.get("/search?q=testing&mode=keyword")
    page = text(first)
    assert "2 moments in" in page and "More moments" in page
    more_url = re.search(r'<p class="more-results"><a href="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert "more=1" in more_url and "q=testing" in more_url and "mode=keyword" in more_url
    everything = text(client.get(more_url))
    assert "More moments" not in everything
    assert int(re.search(r"(\d+) moments? in", everything).group(1)) > 2
    odd = client.get("/search?q=testing&mode=keyword&more=")  # an empty flag is no flag, and no error
    assert odd.status_code == 200 and "More moments" in text(odd)


NONSENSE = "xqzvbnm flurbogast wibbly"


@pytest.mark.parametrize("mode", ["hybrid", "keyword", "semantic"])
def test_nonsense_finds_nothing_on_the_page_the_api_and_the_cli(indexed, client, mode, monkeypatch):
    from archive import cli

    page = text(client.get(f"/search?q={NONSENSE.replace(' ', '+')}&mode={mode}"))
    assert "Nothing found" in page and 'class="card hit-group"' not in page
    if mode != "keyword":  # searched by meaning: the nearest episodes are offered, said not to be matches
        closest = page[page.index('class="closest"'):]
        assert "not a match" in closest and re.search(r'<li><a href="/episodes/\d+">', closest)
    data = client.get(f"/api/search?q={NONSENSE}&mode={mode}").get_json()
    assert data["count"] == 0 and data["results"] == [] and data["groups"] == []
    assert bool(data["closest"]) == (mode != "keyword")
    monkeypatch.setattr("archive.query_embedding.get_embedder", lambda *a, **k: FakeEmbedder())
    result = CliRunner().invoke(cli.cli, ["search", NONSENSE, "--db", str(indexed[0]), "--mode", mode])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Nothing found") and " 1. " not in result.output
    assert ("Closest episodes (not a match" in result.output) == (mode != "keyword")
    as_json = CliRunner().invoke(cli.cli, ["search", NONSENSE, "--db", str(indexed[0]), "--mode", mode, "--json"])
    assert json.loads(as_json.output) == []


def test_exact_words_say_so_when_no_moment_has_them_all(indexed, client, monkeypatch):
    from archive import cli

    page = text(client.get("/search?q=drift+flurbogast&mode=keyword"))
    assert "No moment has all of: drift flurbogast. Showing moments with some of them." in page
    assert 'class="card hit-group"' in page and "some words</span>" in page
    data = client.get("/api/search?q=drift+flurbogast&mode=keyword").get_json()
    assert data["count"] > 0 and data["all_words"]["some_words"] == data["count"]
    assert data["all_words"]["words"] == ["drift", "flurbogast"]
    assert data["all_words"]["note"].startswith("No moment has all of: drift flurbogast.")
    assert {r["all_words"] for r in data["results"]} == {False}
    every = client.get("/api/search?q=drift&mode=keyword").get_json()
    assert every["all_words"]["note"] is None and {r["all_words"] for r in every["results"]} == {True}
    mixed = client.get("/api/search?q=data+drift&mode=keyword").get_json()  # all words first, topped up
    flags = [r["all_words"] for r in mixed["results"]]
    assert True in flags and False in flags and mixed["all_words"]["some_words"] == flags.count(False)
    assert mixed["all_words"]["note"].startswith(f"Only {flags.count(True)} moment")
    page = text(client.get("/search?q=data+drift&mode=keyword"))
    assert "No moment has all of" not in page and "have some of them" in page
    monkeypatch.setattr("archive.query_embedding.get_embedder", lambda *a, **k: FakeEmbedder())
    result = CliRunner().invoke(cli.cli, ["search", "drift flurbogast", "--db", str(indexed[0]), "--mode", "keyword"])
    assert "No moment has all of: drift flurbogast. Showing moments with some of them." in result.output
    assert " 1. " in result.output


LONG_EPISODE = [(30.0 * n, 30.0 * n + 30, f"Part {n}: we keep talking about data drift and how monitoring catches "
                 f"it, story number {n}.", "Host") for n in range(22)]


@pytest.fixture(scope="module")
def long_episode(tmp_path_factory):
    """An eleven-minute episode that speaks of drift in every passage, and a short one beside it."""
    from archive.records import Segment
    from ingest.index_run import build_index

    path = tmp_path_factory.mktemp("long") / "archive.db"
    db = open_db(path)
    build = ArchiveBuilder(db)
    show = build.show("Datacast")
    long_id = build.episode(show, "long", "Drift All Along", published="2021-06-01T00:00:00+00:00")
    build.transcript(long_id, [Segment(*line) for line in LONG_EPISODE])
    short_id = build.episode(show, "short", "A Short One", published="2021-07-01T00:00:00+00:00")
    build.transcript(short_id, [Segment(*line) for line in DATACAST_LINES])
    build_index(db, embedder=FakeEmbedder())
    passages = db.execute("SELECT count(*) FROM passages WHERE episode_id = ?", [long_id]).fetchone()[0]
    db.conn.close()
    return make_app(path), long_id, passages


@pytest.mark.parametrize("mode", ["hybrid", "keyword", "semantic"])
def test_a_long_episode_shows_its_best_moments_and_links_to_the_rest(long_episode, mode):
    app, long_id, passages = long_episode
    client = app.test_client()
    page = text(client.get(f"/search?q=data+drift+monitoring&mode={mode}"))
    assert passages > 6
    groups = page.split('class="card hit-group"')[1:]
    assert sum("Drift All Along" in group for group in groups) == 1
    long_group = next(group for group in groups if "Drift All Along" in group)
    assert long_group.count('class="hit"') == 3
    more = re.search(r'class="more-hits"><a href="([^"]+)"', long_group).group(1).replace("&amp;", "&")
    assert f"episode={long_id}" in more and "q=data+drift+monitoring" in more and f"mode={mode}" in more
    one = text(client.get(more))
    assert "In one episode: <strong>Drift All Along</strong>" in one and "A Short One" not in one
    shown = one.count('class="hit"')
    assert 3 < shown < passages  # every moment of the episode, neighbours collapsed
    data = client.get(f"/api/search?q=data+drift+monitoring&mode={mode}").get_json()
    assert data["count"] == len(data["results"]) >= shown  # the flat list is as before: every moment found
    grouped = {group["episode_title"]: group for group in data["groups"]}
    assert len(grouped["Drift All Along"]["moments"]) == 3 and grouped["Drift All Along"]["more"] > 0
    assert f"episode={long_id}" in grouped["Drift All Along"]["more_url"]
    assert all(group["more_url"] is None for group in data["groups"] if not group["more"])
    within = client.get(f"/api/search?q=data+drift+monitoring&mode={mode}&episode={long_id}").get_json()
    assert within["filters"]["episode"] == long_id and {r["episode_title"] for r in within["results"]} == {
        "Drift All Along"}
    assert client.get("/api/search?q=drift&episode=99999").status_code == 400
