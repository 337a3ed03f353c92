"""The studio in a real browser (Playwright driving Debian's headless chromium, as tests/test_browser.py), under
the site's real Content-Security-Policy: a producer logs in, writes an episode with the live preview, adds two
takeaways and publishes it; a visitor finds it through the search page and in the show's feed; the producer
unpublishes it and it is gone."""

from __future__ import annotations

import re

import pytest

from archive import producers, studio
from archive.db import open_db
from test_browser import browser, start_server  # noqa: F401  (the module's chromium, and the live server)
from web_fixtures import make_app

pytestmark = pytest.mark.browser

WORD = "quaggamussel"  # in the notes only: what the visitor searches for
TAKEAWAY_WORD = "okapistripes"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from archive.fts_tables import ensure_fts

    path = tmp_path_factory.mktemp("browser-studio") / "archive.db"
    db = open_db(path)
    show_id = studio.create_show(db, "Hosted Show", "Made in the studio.")
    producers.add_producer(db, "alice", "alice password", shows=[show_id])
    ensure_fts(db)  # an indexed archive: keyword search reads the FTS5 tables
    db.conn.close()
    base, server = start_server(make_app(path, TESTING=False))
    yield base, show_id, path
    server.shutdown()


def watch(page) -> list[str]:
    problems = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    return problems


def search_hits(page, base: str, query: str) -> list[str]:
    page.goto(f"{base}/search")
    page.fill("#q", query)
    page.check("input[name=mode][value=keyword]")
    page.click(".search-form button[type=submit], form[role=search] button[type=submit]")
    page.wait_for_load_state()
    return [link.get_attribute("href") for link in page.locator(".hit-group .card__title a").all()]


def test_write_preview_publish_find_and_unpublish(browser, site):  # noqa: F811
    base, show_id, path = site
    producer = browser.new_context()  # the site's CSP applies: studio.js must work under it
    page = producer.new_page()
    problems = watch(page)

    page.goto(f"{base}/studio")
    assert "/login" in page.url
    page.fill("#login-username", "alice")
    page.fill("#login-password", "alice password")
    page.click(".login__form button[type=submit]")
    page.wait_for_url(f"{base}/studio")
    page.click(f"a[href='/studio/shows/{show_id}/episodes/new']")
    page.wait_for_url(f"**/studio/shows/{show_id}/episodes/new")

    page.fill("#f-title", "Stripes of the savanna")
    page.fill("#f-guests", "Jane Goodall")
    editor_url = page.url
    page.fill("#f-notes", f"# About\n\nThe **{WORD}** and [a link](https://example.com/z).\n\n<script>alert(1)</script>")
    preview = page.locator("#notes-preview")
    preview.locator("strong", has_text=WORD).wait_for(timeout=10000)  # rendered by the site, no page load
    assert page.url == editor_url
    assert preview.locator("h1").inner_text() == "About"
    assert preview.locator("a").get_attribute("href") == "https://example.com/z"
    assert preview.locator("script").count() == 0 and "<script>alert(1)</script>" in preview.inner_text()

    rows = page.locator("[data-rows=takeaways] > li")
    before = rows.count()
    page.fill("#takeaways-0-title", "Second point")
    page.fill("#takeaways-0-text", "Said later.")
    page.fill("#takeaways-1-title", "First point")
    page.fill("#takeaways-1-text", f"The {TAKEAWAY_WORD} are real.")
    page.fill("#takeaways-1-start", "1:30")
    page.click("[data-rows=takeaways] > li:nth-child(2) button[data-move=up]")  # moved in place by studio.js
    assert page.input_value("#takeaways-1-position") == "1" and page.input_value("#takeaways-0-position") == "2"
    page.click("button[data-add-row=takeaways]")
    assert rows.count() == before + 1 and page.url == editor_url

    page.click("button[name=action][value=publish]")
    page.wait_for_url(re.compile(r".*/studio/episodes/\d+$"))
    assert "Published" in page.locator(".studio-flash").inner_text()
    episode_id = int(page.url.rsplit("/", 1)[1])
    db = open_db(path)
    got = studio.studio_episode(db, episode_id)
    db.conn.close()
    assert got["state"] == "published" and got["fields"]["guests"] == ["Jane Goodall"]
    assert [(t["title"], t["start"]) for t in got["fields"]["takeaways"]] == [("First point", 90.0),
                                                                            ("Second point", None)]

    visitor = browser.new_context()  # anonymous
    public = visitor.new_page()
    for query in (WORD, TAKEAWAY_WORD):
        assert f"/episodes/{episode_id}" in search_hits(public, base, query), query
    public.goto(f"{base}/episodes/{episode_id}")
    assert public.locator("#episode-title").inner_text() == "Stripes of the savanna"
    feed = visitor.request.get(f"{base}/shows/{show_id}/feed.xml")
    assert feed.ok and "Stripes of the savanna" in feed.text()

    page.click("button[form=unpublish-form]")
    page.wait_for_load_state()
    assert "Unpublished" in page.locator(".studio-flash").inner_text()
    assert f"/episodes/{episode_id}" not in search_hits(public, base, WORD)
    assert visitor.request.get(f"{base}/episodes/{episode_id}").status == 404
    feed = visitor.request.get(f"{base}/shows/{show_id}/feed.xml")
    assert "Stripes of the savanna" not in feed.text()
    assert not problems, problems
    visitor.close()
    producer.close()


def test_studio_pages_fit_a_phone(browser, site):  # noqa: F811
    base, show_id, path = site
    db = open_db(path)
    episode_id = studio.create_episode(db, show_id, {"title": "A draft with a rather long title to wrap " * 3,
                                                     "takeaways": [{"title": "One", "text": "Two"}]},
                                       producers.get_producer(db, "alice"))
    db.conn.close()
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    page = context.new_page()
    problems = watch(page)
    page.goto(f"{base}/login")
    page.fill("#login-username", "alice")
    page.fill("#login-password", "alice password")
    page.click(".login__form button[type=submit]")
    page.wait_for_url(f"{base}/studio")
    for url in ("/studio", f"/studio/episodes/{episode_id}", f"/studio/episodes/{episode_id}/history",
                f"/studio/shows/{show_id}/episodes/new"):
        page.goto(base + url)
        assert page.evaluate("document.documentElement.scrollWidth") <= 375, url
    assert not problems, problems
    context.close()
