"""The site in a real browser: Playwright driving Debian's headless chromium against a live server.

The archive holds Datacast episode 70 (11 minutes of real audio) with its audio stored (served by the site,
seekable) and its enclosure on a second local server, indexed for search with the fake embedder. Its transcript
is the read text timed by length (tests/web_fixtures.py `datacast_archive`); here each line also gets word
timings spread over it the same way (the fixture has none; Whisper's would come from the audio), so the page's
word highlight has something to follow, and three takeaways at known moments. A second episode has the same audio
and transcript without word timings (as Whisper's are by default, and a feed's always), whose words the player
estimates.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from archive.db import open_db
from archive.records import Word
from archive.transcript_store import encode_words
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
        # artwork on another host: shown only if the site's CSP allows it (then hidden by player.js if it fails)
        db.execute("UPDATE episodes SET image = 'https://img.invalid/ep70.jpg' WHERE id = ?", [archive["episode"]])
        db.execute("DELETE FROM takeaways WHERE episode_id = ?", [archive["episode"]])
        ArchiveBuilder(db).takeaways(archive["episode"], [
            {"title": f"Takeaway at {line.start:.0f} s", "text": f"{line.text}\n\nA second paragraph.",
             "start": line.start} for line in (line_near(archive["lines"], t) for t in (150, 400, 620))])
        for idx, line in enumerate(archive["lines"]):
            db.execute("UPDATE segments SET words = ? WHERE idx = ? AND transcript_id = (SELECT id FROM "
                       "transcripts WHERE episode_id = ?)", [encode_words(spread_words(line)), idx, archive["episode"]])
        build = ArchiveBuilder(db)
        archive["untimed"] = build.episode(archive["show"], "datacast-070-untimed", "Episode 70, no word timings",
                                           duration=702.0, enclosure_type="audio/mpeg")
        build.audio(archive["untimed"], DATACAST / "episode-070.mp3", f"{media_base}/episode-070.mp3")
        build.transcript(archive["untimed"], archive["lines"], source="whisper", fmt="whisper", model="tiny.en")
    db.conn.close()
    base, server = start_server(make_app(path, TESTING=False))
    yield base, archive
    server.shutdown()
    media_server.shutdown()
    media_server.server_close()


def line_near(lines, seconds: float):
    return min(lines, key=lambda line: abs(line.start - seconds))


def spread_words(line) -> list[Word]:
    """The line's words timed in proportion to their length (as its own time was)."""
    words, total, offset = line.text.split(), len(line.text), 0
    timed = []
    for word in words:
        start = line.start + (line.end - line.start) * offset / total
        offset += len(word) + 1
        end = line.start + (line.end - line.start) * min(offset, total) / total
        timed.append(Word(word, round(start, 3), round(end, 3)))
    return timed


@pytest.fixture
def page(browser):
    # Playwright's wait_for_function evaluates strings, which the site's CSP forbids (as it should); the
    # phone test below runs under the real policy.
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    yield page
    context.close()


AUDIO = "document.getElementById('player-audio')"
SIZES = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


def wait_for_time(page, seconds: float, tolerance: float = 1.0):
    page.wait_for_function(
        f"{AUDIO}.readyState >= 1 && Math.abs({AUDIO}.currentTime - {seconds}) <= {tolerance}", timeout=15000
    )


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_search_then_open_a_hit_plays_from_its_moment(browser, site, size):
    base, archive = site
    context = browser.new_context(viewport=SIZES[size], is_mobile=size == "phone", bypass_csp=True)
    page = context.new_page()
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
    page.evaluate(f"{AUDIO}.pause()")
    current = page.locator("#transcript .s.is-current")
    now = page.evaluate(f"{AUDIO}.currentTime")
    assert current.count() == 1 and float(current.get_attribute("data-start")) <= now + 0.05
    # the hit's #t anchor is on its sentence (spoken at that second), and that sentence is on screen
    anchored = page.evaluate(f"[document.getElementById('t{start}').closest('.s').dataset.start, "
                             f"document.getElementById('t{start}').closest('.s').dataset.end]")
    assert float(anchored[0]) < start + 1 and float(anchored[1]) >= start
    assert in_view(page, f"[id='t{start}']")
    context.close()


def test_clicking_a_transcript_line_moves_playback_there(page, site):
    base, archive = site
    page.goto(f"{base}/episodes/{archive['episode']}")
    page.wait_for_function(f"{AUDIO}.readyState >= 1")
    paragraph = page.locator("#transcript .para").nth(8)
    link = paragraph.locator("a.timecode")
    start = float(link.get_attribute("data-t"))
    link.click()
    wait_for_time(page, start)
    page.wait_for_function(f"!{AUDIO}.paused && {AUDIO}.currentTime > {start} + 0.3", timeout=15000)
    sentence = paragraph.locator(".s").first
    assert "is-current" in sentence.get_attribute("class") and sentence.get_attribute("aria-current") == "time"
    assert "is-current" in paragraph.get_attribute("class")
    assert page.url.endswith(f"?t={int(start)}#t{int(start)}")
    # the current word follows the audio (the words' own times, data-start on each)
    word = page.evaluate(
        f"[parseFloat(document.querySelector('#transcript .w.is-current').dataset.start), {AUDIO}.currentTime]")
    assert word[0] <= word[1] + 0.05
    # the highlight follows the audio into the next sentence
    following = page.locator("#transcript .s").nth(page.evaluate(
        "Array.from(document.querySelectorAll('#transcript .s'))"
        ".indexOf(document.querySelector('#transcript .s.is-current'))") + 1)
    page.evaluate(f"{AUDIO}.currentTime = {float(following.get_attribute('data-start')) + 0.2}")
    page.wait_for_function("document.querySelectorAll('#transcript .s.is-current').length === 1 && "
                           "document.querySelector('#transcript .s.is-current').dataset.start === "
                           f"{following.get_attribute('data-start')!r}")
    assert "is-current" not in sentence.get_attribute("class")


def test_without_word_timings_the_spoken_word_is_estimated_and_highlighted(page, site):
    base, archive = site
    page.goto(f"{base}/episodes/{archive['untimed']}")
    page.wait_for_function(f"{AUDIO}.readyState >= 1")
    assert page.locator("#transcript .w").count() == 0, "the page's HTML has no word spans"
    texts = page.evaluate("Array.from(document.querySelectorAll('#transcript .s')).map(s => s.innerHTML)")
    paragraph = page.locator("#transcript .para").nth(8)
    link = paragraph.locator("a.timecode")
    start = float(link.get_attribute("data-t"))
    link.click()
    page.wait_for_function(f"!{AUDIO}.paused && {AUDIO}.currentTime > {start} + 1.5", timeout=15000)
    playing = page.evaluate(f"""() => {{
        const now = {AUDIO}.currentTime, sentence = document.querySelector('#transcript .s.is-current');
        const words = Array.from(document.querySelectorAll('#transcript .w.is-current'));
        return {{now, paused: {AUDIO}.paused, count: words.length, inside: words.length === 1 && sentence.contains(words[0]),
                estimated: words.length === 1 && words[0].classList.contains('w-est'),
                start: words.length === 1 ? parseFloat(words[0].dataset.start) : null}};
    }}""")
    assert not playing["paused"] and playing["count"] == 1 and playing["inside"] and playing["estimated"]
    assert playing["start"] <= playing["now"] + 0.05 and playing["now"] - playing["start"] < 2
    # at a known time, the word is the one whose start (interpolated by character position across the
    # sentence's time, as the server does for untimed words) is the last at or before it
    page.evaluate(f"{AUDIO}.pause()")
    sentence = page.locator("#transcript .s.is-current")
    s_start, s_end = float(sentence.get_attribute("data-start")), float(sentence.get_attribute("data-end"))
    words = sentence.inner_text().split()
    total = sum(len(word) for word in words) + len(words) - 1
    offsets = [sum(len(word) + 1 for word in words[:k]) for k in range(len(words))]
    expected = [s_start + (s_end - s_start) * offset / total for offset in offsets]
    assert [round(float(t), 3) for t in sentence.locator(".w-est").evaluate_all(
        "ws => ws.map(w => w.dataset.start)")] == [round(t, 3) for t in expected]
    k = len(words) * 2 // 3
    page.evaluate(f"{AUDIO}.currentTime = {(expected[k] + expected[k + 1]) / 2}")
    page.wait_for_function("document.querySelector('#transcript .s.is-current .w.is-current') && "
                           f"document.querySelector('#transcript .s.is-current .w.is-current').dataset.start === "
                           f"{expected[k]:.3f}.toFixed(3)")
    assert page.locator("#transcript .w.is-current").count() == 1
    # wrapped lazily, only the sentences that have been current; their text and markup otherwise unchanged
    wrapped = page.evaluate("Array.from(document.querySelectorAll('#transcript .s')).filter(s => s.querySelector('.w-est')).length")
    assert 1 <= wrapped <= 4, wrapped
    after = page.evaluate("Array.from(document.querySelectorAll('#transcript .s')).map(s => "
                          "s.innerHTML.replace(/<span class=\"w w-est( is-current)?\" data-start=\"[0-9.]+\">([^<]*)<\\/span>/g, '$2'))")
    assert after == texts


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
    now, highlighted, starts = page.evaluate(
        f"[{AUDIO}.currentTime, parseFloat(document.querySelector('#transcript .s.is-current').dataset.start), "
        "Array.from(document.querySelectorAll('#transcript .s')).map(s => parseFloat(s.dataset.start))]")
    assert highlighted == max(start for start in starts if start <= now + 0.05)


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


def in_view(page, selector: str) -> bool:
    """The element is inside the window, below the sticky player bar, and inside its scroll box's visible part."""
    return page.evaluate("""(selector) => {
        const el = document.querySelector(selector), r = el.getBoundingClientRect();
        const bar = document.getElementById('episode-bar');
        const top = bar ? Math.max(0, bar.getBoundingClientRect().bottom) : 0;
        const pane = el.closest('#transcript'), p = pane ? pane.getBoundingClientRect() : {top: -1e9, bottom: 1e9};
        return r.top >= Math.max(top, p.top) - 1 && r.top + 16 <= Math.min(window.innerHeight, p.bottom) + 1;
    }""", selector)


def assert_caption_shows_the_current_sentence(page):
    """The caption is on screen inside the sticky bar, its text is the transcript's current sentence, and its
    highlighted word is the transcript's current word, within the caption's visible lines."""
    state = page.evaluate("""() => {
        const caption = document.getElementById('now-playing'), box = document.getElementById('now-playing-text');
        const bar = document.getElementById('episode-bar').getBoundingClientRect(), r = caption.getBoundingClientRect();
        const sentence = document.querySelector('#transcript .s.is-current');
        const word = box.querySelector('.w.is-current'), spoken = sentence.querySelector('.w.is-current');
        const b = box.getBoundingClientRect(), w = word ? word.getBoundingClientRect() : null;
        return {top: r.top, bottom: r.bottom, barTop: bar.top, barBottom: bar.bottom, height: window.innerHeight,
                live: caption.getAttribute('aria-live'), text: box.textContent, sentence: sentence.textContent,
                word: word && word.textContent, spoken: spoken && spoken.textContent,
                wordShown: !!w && w.top >= b.top - 1 && w.bottom <= b.bottom + 1, ids: box.querySelectorAll('[id]').length};
    }""")
    assert 0 <= state["barTop"] <= state["top"] and state["bottom"] <= min(state["barBottom"], state["height"])
    assert state["barBottom"] - state["barTop"] < state["height"] / 4, "the bar with its caption stays small"
    assert " ".join(state["text"].split()) == " ".join(state["sentence"].split()) and state["text"].strip()
    assert state["word"] and state["word"] == state["spoken"] and state["wordShown"], state
    assert state["live"] in (None, "off", "polite") and state["ids"] == 0


@pytest.mark.parametrize("size", SIZES)
def test_a_takeaway_plays_its_moment_and_brings_its_paragraph_into_view_without_a_long_jump(browser, site, size):
    base, archive = site
    context = browser.new_context(viewport=SIZES[size], is_mobile=size == "phone", bypass_csp=True)
    page = context.new_page()
    page.goto(f"{base}/episodes/{archive['episode']}")
    page.wait_for_function(f"{AUDIO}.readyState >= 1")
    page.locator("#takeaways").scroll_into_view_if_needed()
    for index in (1, 2):  # the second and third takeaways: well into the transcript
        link = page.locator(".takeaway a.timecode").nth(index)
        start = float(link.get_attribute("data-t"))
        before = page.evaluate("window.scrollY")
        link.click()
        wait_for_time(page, start)
        page.evaluate(f"{AUDIO}.pause()")
        page.wait_for_timeout(1200)  # the smooth scroll settles
        after, height, now = page.evaluate(f"[window.scrollY, window.innerHeight, {AUDIO}.currentTime]")
        assert abs(after - before) <= height, f"the page jumped {after - before} px"
        current = float(page.locator("#transcript .s.is-current").get_attribute("data-start"))
        assert current <= now + 0.05 and now - current < 30
        if size == "desktop":  # the transcript beside the takeaways: its box brings the sentence into view
            assert page.locator("#now-playing").is_hidden()
            assert in_view(page, "#transcript .s.is-current")
        else:  # the reader stays at the takeaway; the sticky bar's caption shows the sentence being spoken
            assert in_view(page, f"#takeaway-{index + 1} a.timecode"), "the clicked takeaway is still on screen"
            assert_caption_shows_the_current_sentence(page)
            assert page.evaluate("!document.getElementById('episode-bar').contains(document.activeElement) && "
                                 "!document.getElementById('transcript').contains(document.activeElement)")
            page.click("#now-playing")  # a tap on the caption goes to the sentence in the transcript
            page.wait_for_timeout(1200)
            assert in_view(page, "#transcript .s.is-current")
        page.locator("#takeaways").scroll_into_view_if_needed()
    # a takeaway shows its first sentence; the rest opens on request, its paragraphs kept
    first = page.locator(".takeaway").first
    assert first.locator(".takeaway__lead").is_visible() and not first.locator("details p").first.is_visible()
    first.locator("summary").click()
    assert first.locator("details p").last.inner_text() == "A second paragraph."
    context.close()


@pytest.mark.parametrize("size", SIZES)
def test_without_javascript_a_hit_link_lands_on_its_sentence(browser, site, size):
    base, archive = site
    context = browser.new_context(viewport=SIZES[size], java_script_enabled=False)
    page = context.new_page()
    line = line_near(archive["lines"], 500)
    second = int(line.start) + 1  # a second inside a sentence, not only at its start
    page.goto(f"{base}/episodes/{archive['episode']}?t={second}#t{second}")
    page.wait_for_timeout(300)
    assert page.evaluate("window.scrollY") > 0, "the page opened at its moment, not at the top"
    assert in_view(page, f"[id='t{second}']")
    sentence = page.evaluate(f"[document.getElementById('t{second}').closest('.s').dataset.start, "
                             f"document.getElementById('t{second}').closest('.s').dataset.end]")
    assert float(sentence[0]) <= second + 1 and float(sentence[1]) >= second
    context.close()


def test_phone_player_has_skip_buttons_speed_and_a_usable_seek_bar(browser, site):
    base, archive = site
    context = browser.new_context(viewport=SIZES["phone"], is_mobile=True)  # under the site's real CSP
    page = context.new_page()
    page.goto(f"{base}/episodes/{archive['episode']}")
    page.wait_for_function("document.getElementById('player-audio').readyState >= 1")
    audio = page.locator("#player-audio").bounding_box()
    share = page.locator("#share-button").bounding_box()
    assert audio["width"] >= 300, "the seek bar has the row to itself"
    assert share["y"] >= audio["y"] + audio["height"] - 1, "Share wraps below the audio"
    page.click("button[data-skip='15']")
    page.wait_for_function("document.getElementById('player-audio').currentTime >= 14.9")
    page.click("button[data-skip='-15']")
    page.wait_for_function("document.getElementById('player-audio').currentTime <= 0.1")
    page.select_option("#player-speed", "1.5")
    assert page.evaluate("document.getElementById('player-audio').playbackRate") == 1.5
    page.wait_for_function("(img => !img || img.hidden || img.naturalWidth > 0)(document.querySelector('.episode__art'))")
    bar = page.locator("#episode-bar").bounding_box()
    page.evaluate("window.scrollTo(0, 3000)")
    assert page.locator("#episode-bar").bounding_box()["y"] == 0 and bar["height"] < 844 / 4, "the bar stays, small"
    context.close()
