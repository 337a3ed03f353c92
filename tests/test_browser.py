"""The site in a real browser: Playwright driving Debian's headless chromium against a live server.

The archive holds Datacast episode 70 (11 minutes of real audio) with its audio stored (served by the site,
seekable) and its enclosure on a second local server, indexed for search with the fake embedder.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from archive.db import open_db
from conftest import serve_directory
from fakes import FakeEmbedder
from web_fixtures import DATACAST, ArchiveBuilder, datacast_archive, heading_chapters, make_app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic", "--autoplay-policy=no-user-gesture-required"]

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM}: install Debian's chromium to run the browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def start_server(app):
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", server


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from ingest.index_run import build_index

    media_base, media_server = serve_directory(DATACAST)
    path = tmp_path_factory.mktemp("browser") / "archive.db"
    db = open_db(path)
    archive = datacast_archive(db, f"{media_base}/episode-070.mp3")
    build_index(db, embedder=FakeEmbedder())
    with db.conn:  # the feed's chapters, in place of the ones the index stage generated
        db.execute("DELETE FROM chapters WHERE episode_id = ?", [archive["episode"]])
        ArchiveBuilder(db).chapters(archive["episode"], heading_chapters(archive["lines"]))
    db.conn.close()
    base, server = start_server(make_app(path, TESTING=False))
    yield base, archive
    server.shutdown()
    media_server.shutdown()
    media_server.server_close()


@pytest.fixture
def page(browser):
    # Playwright's wait_for_function evaluates strings, which the site's CSP forbids (as it should); the
    # phone test below runs under the real policy.
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    yield page
    context.close()


AUDIO = "document.getElementById('player-audio')"


def wait_for_time(page, seconds: float, tolerance: float = 1.0):
    page.wait_for_function(
        f"{AUDIO}.readyState >= 1 && Math.abs({AUDIO}.currentTime - {seconds}) <= {tolerance}", timeout=15000
    )


def test_search_then_open_a_hit_plays_from_its_moment(page, site):
    base, archive = site
    page.goto(base + "/")
    page.fill("#home-q", "data labeling challenges")
    page.press("#home-q", "Enter")
    page.wait_for_selector(".hit a.timecode")
    hit = page.locator(".hit[data-kind=passage] a.timecode").first
    start = int(hit.get_attribute("href").split("t=")[1].split("#")[0])
    assert start > 60, "the topic is well into the episode"
    hit.click()
    page.wait_for_url(f"**/episodes/{archive['episode']}?t={start}#t{start}")
    wait_for_time(page, start)
    current = page.locator("#transcript .line.is-current")
    assert current.count() == 1 and float(current.get_attribute("data-start")) <= start + 1


def test_clicking_a_transcript_line_moves_playback_there(page, site):
    base, archive = site
    page.goto(f"{base}/episodes/{archive['episode']}")
    page.wait_for_function(f"{AUDIO}.readyState >= 1")
    line = page.locator("#transcript .line").nth(40)
    start = float(line.get_attribute("data-start"))
    line.locator("a.timecode").click()
    wait_for_time(page, start)
    page.wait_for_function(f"!{AUDIO}.paused && {AUDIO}.currentTime > {start} + 0.3", timeout=15000)
    assert "is-current" in line.get_attribute("class") and line.get_attribute("aria-current") == "time"
    assert page.url.endswith(f"?t={int(start)}#t{int(start)}")
    # the highlight follows the audio into the next line
    following = page.locator("#transcript .line").nth(41)
    page.evaluate(f"{AUDIO}.currentTime = {float(following.get_attribute('data-start')) + 0.2}")
    page.wait_for_function("document.querySelectorAll('#transcript .line')[41].classList.contains('is-current')")
    assert "is-current" not in line.get_attribute("class")


def test_chapter_and_share_this_moment(page, site):
    base, archive = site
    page.goto(f"{base}/episodes/{archive['episode']}")
    chapter = page.locator(".chapter").nth(1)
    chapter.click()
    start = float(chapter.get_attribute("data-t"))
    wait_for_time(page, start)
    page.evaluate(f"{AUDIO}.pause()")
    assert page.locator("#moment-link").is_hidden()
    page.click("#share-button")
    url = page.input_value("#share-url")
    moment = int(page.evaluate(f"{AUDIO}.currentTime"))
    assert url.startswith(f"{base}/episodes/{archive['episode']}?t=") and abs(int(url.split("t=")[1].split("#")[0]) - moment) <= 1
    assert page.locator("#share-status").inner_text() != ""


def test_a_link_with_t_opens_the_page_at_that_moment(page, site):
    base, archive = site
    page.goto(f"{base}/episodes/{archive['episode']}?t=300")
    wait_for_time(page, 300)
    page.evaluate(f"{AUDIO}.pause()")
    page.wait_for_timeout(300)
    now, highlighted = page.evaluate(
        f"[{AUDIO}.currentTime, parseFloat(document.querySelector('#transcript .line.is-current').dataset.start)]")
    assert highlighted == max(line.start for line in archive["lines"] if line.start <= now + 0.05)


def test_enclosure_from_another_server_plays(page, site):
    """An episode without a stored copy plays its enclosure; this checks chromium decodes the mp3."""
    base, archive = site
    page.goto(f"{base}/episodes/{archive['episode']}")
    enclosure = page.evaluate("document.querySelector('.downloads a[rel~=nofollow]').href")
    page.evaluate(f"{AUDIO}.src = {enclosure!r}; {AUDIO}.play()")
    page.wait_for_function(f"{AUDIO}.currentTime > 0.5 && {AUDIO}.duration > 700", timeout=15000)


def test_phone_layout_has_no_sideways_scroll_and_keyboard_reaches_the_skip_link(browser, site):
    base, archive = site
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    page = context.new_page()
    problems = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    for path in (f"/episodes/{archive['episode']}", "/search?q=engineering", "/", "/episodes", "/guests"):
        page.goto(base + path)
        assert page.evaluate("document.documentElement.scrollWidth") <= 375, path
    page.goto(f"{base}/episodes/{archive['episode']}")
    assert page.locator("#share-button").is_visible(), "player.js runs under the site's CSP"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.getAttribute('href')") == "#main"
    assert page.locator(".skip-link").is_visible()
    assert not problems, problems
    context.close()
