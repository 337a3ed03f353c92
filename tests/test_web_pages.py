"""The site's HTML pages through Flask's test client: content, order, filters, hostile input, errors, a11y basics."""

import re
from html.parser import HTMLParser

import pytest
from flask import url_for

from archive.db import open_db
from web_fixtures import DATACAST, HOSTILE_TITLE, ArchiveBuilder, app, client, ids, make_app, sample  # noqa: F401


class PageParser(HTMLParser):
    """Collects what the accessibility and safety checks look at."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.label_for: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "label" and attrs.get("for"):
            self.label_for.add(attrs["for"])

    def find(self, tag, **attrs):
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]


def parse(response) -> PageParser:
    parser = PageParser()
    parser.feed(response.get_data(as_text=True))
    return parser


def text(response) -> str:
    return response.get_data(as_text=True)


PAGES = ["/", "/episodes", "/episodes/{ep70}", "/episodes/{dtc_ab}", "/search", "/guests", "/guests/mohamed-elgendy",
         "/shows/{datacast}", "/episodes/{hostile_ep}", "/shows/{hostile_show}"]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_has_landmarks_labels_and_nothing_from_outside(client, ids, path):
    response = client.get(path.format(**ids))
    assert response.status_code == 200
    page = parse(response)
    assert page.find("html")[0].get("lang") == "en"
    assert page.find("meta", name="viewport")
    assert page.find("a", href="#main"), "skip link"
    assert page.find("main", id="main") and page.find("header") and page.find("footer") and page.find("nav")
    for tag, attrs in page.tags:
        if tag in ("input", "select", "textarea") and attrs.get("type") not in ("hidden", "submit", "radio"):
            assert attrs.get("id") in page.label_for or attrs.get("aria-label"), f"unlabelled {tag} {attrs}"
    for tag, attrs in page.tags:
        if tag in ("script", "link", "img", "iframe"):
            url = attrs.get("src") or attrs.get("href") or ""
            assert not re.match(r"^(https?:)?//", url), f"{tag} loads {url} from outside the site"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]


def test_home_lists_shows_latest_episodes_and_a_search_box(client, ids):
    page = text(client.get("/"))
    assert "Datacast" in page and "DataTalks.Club Podcast" in page
    assert "Machine Learning Testing with Mohamed Elgendy" in page
    assert 'action="/search"' in page and 'name="q"' in page


def test_episodes_newest_first_undated_last(client):
    page = text(client.get("/episodes"))
    order = [page.index(title) for title in (
        "Tom &amp; Jerry", "Product Analytics &amp; A/B Testing", "Machine Learning Testing", "Data Engineering at Scale",
        "Bonus: Listener Questions")]
    assert order == sorted(order)


def test_episodes_filters_by_show_guest_and_year(client, ids):
    by_show = text(client.get(f"/episodes?show={ids['dtc']}"))
    assert "Product Analytics" in by_show and "Machine Learning Testing" not in by_show
    by_guest = text(client.get("/episodes?guest=jane-doe"))
    assert "Data Engineering at Scale" in by_guest and "Machine Learning Testing" not in by_guest
    assert "Episodes with" in by_guest
    by_year = text(client.get("/episodes?year=2021"))
    assert "Machine Learning Testing" in by_year and "Data Engineering" not in by_year
    nothing = client.get("/episodes?year=1999")
    assert nothing.status_code == 200 and "No episodes match" in text(nothing)


def test_episodes_pagination(sample):
    client = make_app(sample[0], PER_PAGE=2).test_client()
    first, second, third = (text(client.get(f"/episodes?page={n}")) for n in (1, 2, 3))
    assert "Page 1 of 3" in first and 'rel="next" href="/episodes?page=2"' in first
    assert "Machine Learning Testing" in second and "Data Engineering" in second
    assert "Bonus: Listener Questions" in third and 'rel="prev"' in third
    beyond = client.get("/episodes?page=99")
    assert beyond.status_code == 200 and "There is no page 99" in text(beyond)
    filtered = text(client.get("/episodes?show=1&page=1"))
    assert 'href="/episodes?show=1&amp;page=2"' in filtered


@pytest.mark.parametrize("query", [
    "page=abc", "page=-1", "page=0", "page=1e9", "page=99999999999999", "year=20x1", "year=99999", "show=one",
    "show=1%00", "guest=%3Cscript%3E", "guest=" + "a" * 5000, "year=%00", "page=%F0%9F%98%80", "_external=1",
    "_scheme=javascript&page=2", "show=1&show=2", "page=2&page=x",
])
def test_episodes_hostile_params_give_a_page_never_a_500(client, query):
    response = client.get(f"/episodes?{query}")
    assert response.status_code in (200, 400)
    assert response.mimetype == "text/html"
    if response.status_code == 400:
        assert "Parameter" in text(response)


def test_episode_page_has_everything(client, ids):
    response = client.get(f"/episodes/{ids['ep70']}")
    page = text(response)
    assert "<h1" in page and "Machine Learning Testing with Mohamed Elgendy" in page
    assert 'datetime="2021-06-01T12:00:00+00:00"' in page and "1 Jun 2021" in page and "11 min" in page
    assert '<a href="/guests/mohamed-elgendy">Mohamed Elgendy</a>' in page
    assert "Hosted by" in page and '<a href="/guests/james-le">James Le</a>' in page
    assert "Notes with <b>bold</b>" in page
    # takeaways and chapters with real links to their moment
    assert 'href="?t=24#t24" data-t="24.0"' in page and "On silent failures" in page
    assert "A takeaway with no time." in page
    assert 'class="chapter" href="?t=36#t36"' in page and "Data drift" in page
    # the transcript: a paragraph per speaker turn with its time link, speakers shown when they change
    assert page.count('<div class="para') == 4 and len(re.findall(r'<span class="s[ "]', page)) == 7
    assert '<a class="timecode" href="?t=14#t14" data-t="14.0">0:14</a>' in page
    assert 'id="t14" data-start="14.0"' in page and '<span class="speaker">Mohamed Elgendy</span>' in page
    assert '<audio id="player-audio" controls preload="metadata"' in page
    assert 'src="https://cdn.example.com/datacast-070.mp3"' in page
    assert "/static/player.js" in page and 'id="share-button"' in page
    for fmt in ("vtt", "srt", "json", "txt"):
        assert f"/episodes/{ids['ep70']}/transcript.{fmt}" in page


def test_episode_page_opens_at_the_moment_given(client, ids):
    page = text(client.get(f"/episodes/{ids['ep70']}?t=30"))
    assert '<span class="s is-current" id="t24"' in page and '<div class="para is-current" id="p1"' in page
    assert 'src="https://cdn.example.com/datacast-070.mp3#t=30.0"' in page and 'data-start-at="30.0"' in page
    assert 'href="/episodes/%d?t=30#t30"' % ids["ep70"] in page, "link to this moment without JavaScript"
    assert 'data-start-at="125.0"' in text(client.get(f"/episodes/{ids['ep70']}?t=2:05"))


@pytest.mark.parametrize("t", ["abc", "-5", "1e309", "nan", "inf", "%00", "99999999999", "1:99:99:99", "<script>"])
def test_episode_page_ignores_a_bad_time(client, ids, t):
    response = client.get(f"/episodes/{ids['ep70']}?t={t}")
    assert response.status_code == 200
    assert 'data-start-at=""' in text(response) and "is-current" not in text(response)


def test_episode_without_audio_says_where_the_transcript_came_from(client, ids):
    page = text(client.get(f"/episodes/{ids['dtc_ab']}"))
    assert "No audio for this episode; transcript from the feed." in page
    assert "<audio" not in page
    assert page.count('<div class="para') > 50 and "Alexey" in page
    assert "Guest Background &amp; Career Transition" in page


def test_episode_without_transcript(client, ids):
    page = text(client.get(f"/episodes/{ids['ep69']}"))
    assert "No transcript yet" in page and "<audio" in page and "transcript.vtt" not in page


def test_hostile_titles_and_urls_are_escaped(client, ids):
    for path in (f"/episodes/{ids['hostile_ep']}", f"/shows/{ids['hostile_show']}", "/episodes", "/"):
        page = text(client.get(path))
        assert "Tom &amp; Jerry &lt;script&gt;alert(&#34;t&#34;)&lt;/script&gt;" in page
        assert "<script>alert" not in page and "javascript:" not in page
        assert "window.__pwned" not in page and "onerror" not in page
    guests = text(client.get("/guests"))
    assert "Eve &#34;&lt;b&gt;&#34; Hacker" in guests and "<b>" not in guests
    page = text(client.get(f"/episodes/{ids['hostile_ep']}"))
    assert "No audio for this episode; transcript from the feed." in page  # javascript: enclosure is not played


def test_guests_list_and_name_filter(client):
    page = text(client.get("/guests"))
    for name in ("Mohamed Elgendy", "Jane Doe", "Jakob Graff", "James Le"):
        assert name in page
    found = text(client.get("/guests?q=elg"))
    assert "Mohamed Elgendy" in found and "Jane Doe" not in found
    assert "Nobody called" in text(client.get("/guests?q=%25%25_%00zzz"))


def test_guest_page_lists_episodes_and_takeaways(client, ids):
    page = text(client.get("/guests/mohamed-elgendy"))
    assert "<h1>Mohamed Elgendy</h1>" in page
    assert f'href="/episodes/{ids["ep70"]}"' in page and "guest" in page
    assert "On silent failures" in page and f'href="/episodes/{ids["ep70"]}?t=24#t24"' in page
    assert 'action="/guests/mohamed-elgendy"' in page, "search within their words"


def test_show_page(client, ids):
    page = text(client.get(f"/shows/{ids['datacast']}"))
    assert "<h1>Datacast</h1>" in page and "3 episodes" in page
    assert f'href="/shows/{ids["datacast"]}/feed.xml"' in page
    assert "Data Engineering at Scale" in text(client.get(f"/shows/{ids['datacast']}?year=2020"))
    assert "Machine Learning Testing" not in text(client.get(f"/shows/{ids['datacast']}?year=2020"))
    assert client.get(f"/shows/{ids['datacast']}?year=abc").status_code == 400


@pytest.mark.parametrize("path", ["/episodes/999999", "/guests/nobody-here", "/shows/424242", "/no/such/page",
                                  "/episodes/abc", "/episodes/1/transcript.exe", "/guests/%00"])
def test_not_found_is_a_proper_page(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    page = text(response)
    assert "Not found" in page and 'href="#main"' in page and 'href="/search"' in page


def test_server_error_is_a_proper_page_and_json_under_api(sample):
    app = make_app(sample[0], TESTING=False)

    @app.get("/boom")
    def boom():
        raise RuntimeError("kaboom")

    @app.get("/api/boom")
    def api_boom():
        raise RuntimeError("kaboom")

    client = app.test_client()
    response = client.get("/boom")
    assert response.status_code == 500 and response.mimetype == "text/html"
    assert "Something broke" in text(response) and "kaboom" not in text(response)
    response = client.get("/api/boom")
    assert response.status_code == 500 and response.get_json()["error"]["status"] == 500


def test_archived_audio_is_served_from_the_site_with_ranges(tmp_path):
    db = open_db(tmp_path / "a.db")
    build = ArchiveBuilder(db)
    show = build.show("Datacast")
    episode = build.episode(show, "short", "Short", enclosure_url="https://cdn.example.com/short.mp3",
                            enclosure_type="audio/mpeg")
    build.audio(episode, DATACAST / "episode-070-short.mp3", "https://cdn.example.com/short.mp3")
    db.conn.close()
    client = make_app(tmp_path / "a.db").test_client()
    page = text(client.get(f"/episodes/{episode}"))
    assert f'src="/episodes/{episode}/audio"' in page
    whole = client.get(f"/episodes/{episode}/audio")
    assert whole.status_code == 200 and whole.mimetype == "audio/mpeg"
    assert len(whole.data) == (DATACAST / "episode-070-short.mp3").stat().st_size
    part = client.get(f"/episodes/{episode}/audio", headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206 and len(part.data) == 1000
    assert part.data == (DATACAST / "episode-070-short.mp3").read_bytes()[1000:2000]
    assert client.get("/episodes/999/audio").status_code == 404


def test_audio_route_is_404_without_a_stored_copy(client, ids):
    assert client.get(f"/episodes/{ids['ep70']}/audio").status_code == 404


def test_hostile_title_survives_in_the_title_tag(client, ids):
    page = text(client.get(f"/episodes/{ids['hostile_ep']}"))
    title = re.search(r"<title>(.*?)</title>", page, re.S).group(1)
    assert "&lt;script&gt;" in title and "<script" not in title
    assert HOSTILE_TITLE not in page


def test_every_route_answers(app, client, ids):
    """Each rule of the app, with real values, answers without a server error (new routes included)."""
    values = {"episode_id": ids["ep70"], "show_id": ids["datacast"], "slug": "mohamed-elgendy", "fmt": "vtt",
              "filename": "site.css", "digest": "0" * 64}
    expected = {"pages.episode_audio": 404,  # no stored copy of the audio in this archive
                "pages.artwork_image": 404,  # no such image stored (served: test_artwork_is_served_by_the_site_itself)
                "api.search": 400,  # no q
                "corrections.transcript": 302}  # the studio's: anonymous visitors go to the login page
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("studio."):  # the studio's pages (studio.py): anonymous visitors log in first
            expected.setdefault(rule.endpoint, 302)
        elif rule.endpoint.startswith("studio_api."):  # the studio API (studio_api.py): a bearer token or 401
            expected.setdefault(rule.endpoint, 401)
    seen = 0
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods:
            continue
        with app.test_request_context():
            url = url_for(rule.endpoint, **{name: values[name] for name in rule.arguments})
        response = client.get(url)
        assert response.status_code == expected.get(rule.endpoint, 200), url
        seen += 1
    assert seen >= 20


# --- the episode page for reading: takeaways, notes, soundbites, artwork, the transcript's anchors and words ---

DATACAST_NOTES = (
    "<h3>Episode Summary</h3><p>Mohamed Elgendy is a seasoned AI expert.</p>"
    "<h3>Episode Notes</h3><h3>Timestamps</h3><h3>People</h3>"
    "<h3>Key Takeaways</h3><p>Here are highlights from my conversation with Mohamed:</p>"
    "<h3>On Studying Biomedical Engineering in Egypt</h3>"
    "<p>Originally from Egypt, I joined an engineering-oriented university after high school. I picked "
    "biomedical because it focuses more on the applications.</p>"
    "<p>I had a great time learning how to think like an engineer.</p>"
    "<h3>About the show</h3><p>Datacast features long-form conversations with practitioners.</p>"
)


@pytest.fixture(scope="module")
def reading(tmp_path_factory):
    """An episode as Datacast's notes and Whisper leave it: notes whose takeaways section became the takeaways,
    empty headings, word timings, soundbites, artwork (the episode's; a second episode has only the show's)."""
    from archive.records import Segment, TranscriptSource, Word
    from archive.transcript_store import save_transcript

    path = tmp_path_factory.mktemp("reading") / "archive.db"
    db = open_db(path)
    build = ArchiveBuilder(db)
    show = build.show("Datacast", image="https://img.example.com/datacast.jpg")
    episode = build.episode(show, "dc-70", "Episode 70", published="2021-08-15T12:00:00+00:00",
                            notes_html=DATACAST_NOTES, image="https://img.example.com/ep70.jpg",
                            enclosure_url="https://cdn.example.com/70.mp3", enclosure_type="audio/mpeg")
    plain = build.episode(show, "dc-71", "Episode 71", published="2021-08-22T12:00:00+00:00",
                          image="javascript:alert(1)")
    build.takeaways(episode, [{
        "title": "On Studying Biomedical Engineering in Egypt", "start": 4.2, "source": "notes",
        "text": "Originally from Egypt, I joined an engineering-oriented university after high school. I picked "
                "biomedical because it focuses more on the applications.\n\n"
                "I had a great time learning how to think like an engineer.",
    }, {"title": "One line", "text": "Just this.", "start": 9.0}])
    words = [Word(" Originally", 0.0, 0.6), Word(" from", 0.6, 0.8), Word(" Egypt,", 0.8, 1.4),
             Word(" I", 1.5, 1.6), Word(" joined", 1.6, 2.2)]
    words2 = [Word(" an", 2.4, 2.5), Word(" engineering", 2.5, 3.2), Word(" university.", 3.2, 4.0),
              Word(" I", 4.2, 4.3), Word(" picked", 4.3, 4.8), Word(" biomedical", 4.8, 5.6),
              Word(" <b>engineering</b>.", 5.6, 6.5)]
    save_transcript(db, episode, [
        Segment(0.0, 2.3, "Originally from Egypt, I joined", "Mohamed Elgendy", words),
        Segment(2.3, 6.5, "an engineering university. I picked biomedical <b>engineering</b>.", "Mohamed Elgendy",
                words2),
        Segment(9.0, 12.0, "And then I moved to the US.", "Mohamed Elgendy"),
    ], TranscriptSource("whisper", model="tiny.en"))
    db["soundbites"].insert_all([
        {"episode_id": episode, "start": 2.4, "duration": 4.1, "title": "Why <i>biomedical</i>"},
        {"episode_id": episode, "start": 9.0, "duration": None, "title": None},
    ])
    art = {name: store_test_artwork(db, url, colour) for name, url, colour in (
        ("episode_art", "https://img.example.com/ep70.jpg", (200, 40, 40)),
        ("show_art", "https://img.example.com/datacast.jpg", (40, 40, 200)))}
    db.conn.commit()
    db.conn.close()
    return make_app(path).test_client(), {"episode": episode, "plain": plain, **art}


def store_test_artwork(db, url: str, colour: tuple) -> str:
    """Artwork as ingest/artwork.py stores it for `url`: a small image with transparency (kept as PNG)."""
    import io

    from PIL import Image

    from ingest.artwork import prepare_artwork, save_artwork

    buffer = io.BytesIO()
    Image.new("RGBA", (40, 40), colour + (128,)).save(buffer, format="PNG")
    prepared = prepare_artwork(buffer.getvalue())
    save_artwork(db, url, prepared)
    return prepared.sha256


def test_artwork_is_served_by_the_site_itself(reading):
    client, ids = reading
    page = text(client.get(f"/episodes/{ids['episode']}"))
    src = re.search(r'<img class="episode__art" src="([^"]+)"', page).group(1)
    assert src.startswith("/artwork/") and "img.example.com" not in page.split("<main")[1]
    image = client.get(src)
    assert image.status_code == 200 and image.mimetype == "image/png" and image.data.startswith(b"\x89PNG")
    assert "immutable" in image.headers["Cache-Control"] and image.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get(src, headers={"If-None-Match": image.headers["ETag"]}).status_code == 304
    assert client.get(f"/api/episodes/{ids['episode']}").get_json()["artwork_url"].endswith(src)
    assert client.get(f"/api/episodes/{ids['plain']}").get_json()["artwork_url"] is None  # its own is not stored
    assert client.get("/artwork/" + "0" * 64).status_code == 404
    assert client.get("/artwork/..%2F..%2Fetc%2Fpasswd").status_code == 404
    # the show's artwork on its page and on the home page
    assert 'class="show-header__art"' in text(client.get("/shows/1"))
    assert 'class="card__art"' in text(client.get("/"))


def test_episode_page_reads_well(reading):
    client, ids = reading
    response = client.get(f"/episodes/{ids['episode']}")
    page = text(response)
    # the notes keep what the page does not show elsewhere, without empty headings
    notes = page[page.index('class="notes__body'):page.index("</details>", page.index('class="notes__body'))]
    assert "seasoned AI expert" in notes and "Datacast features long-form" in notes
    for gone in ("Episode Notes", "Timestamps", "People", "Key Takeaways", "Here are highlights",
                 "Originally from Egypt", "think like an engineer", "On Studying"):
        assert gone not in notes, gone
    # a takeaway: its title and first sentence; the rest behind "More", its paragraphs kept
    assert ('<summary><span class="takeaway__lead">Originally from Egypt, I joined an engineering-oriented '
            'university after high school.</span>') in page
    assert "<p>I picked biomedical because it focuses more on the applications.</p>" in page
    assert "<p>I had a great time learning how to think like an engineer.</p>" in page
    assert '<p class="takeaway__lead">Just this.</p>' in page
    # the transcript: one sentence across two segments, word times on its words, escaped
    assert ('<span class="s" id="t0" data-start="0.0" data-end="4.0"><span class="w" data-start="0.0">Originally'
            '</span>') in page
    assert '<span class="w" data-start="5.6">&lt;b&gt;engineering&lt;/b&gt;.</span>' in page
    assert "<b>engineering" not in page
    # every second from 0 to the end has one id, on the sentence spoken then or a marker inside it
    seconds = [int(value) for value in re.findall(r'id="t(\d+)"', page)]
    assert sorted(seconds) == list(range(13))
    # soundbites: title, time, a play link that seeks (data-t) and stops at its end (data-end)
    assert '<h2 id="soundbites-title">Soundbites</h2>' in page
    assert 'href="?t=2#t2" data-t="2.4" data-end="6.5"' in page and "Why &lt;i&gt;biomedical&lt;/i&gt;" in page
    assert "Moment at 0:09" in page
    # artwork: the episode's own, as the archive stored it
    assert f'<img class="episode__art" src="/artwork/{ids["episode_art"]}"' in page
    # the player's controls (shown by player.js) and the quick jumps
    assert 'data-skip="-15"' in page and 'data-skip="15"' in page and 'id="player-controls" hidden' in page
    assert 'id="player-speed"' in page and '<option value="1" selected>' in page
    for target in ("#takeaways", "#soundbites", "#transcript-section", "#notes"):
        assert f'href="{target}"' in page
    # the show's artwork when the episode has none that is safe
    other = text(client.get(f"/episodes/{ids['plain']}"))
    assert f'<img class="episode__art" src="/artwork/{ids["show_art"]}"' in other
    assert "javascript:" not in other


def test_a_link_to_any_second_of_the_transcript_names_its_anchor(reading):
    client, ids = reading
    page = text(client.get(f"/episodes/{ids['episode']}?t=5"))
    assert f'href="/episodes/{ids["episode"]}?t=5#t5"' in page  # "Link to this moment"
    assert '<span class="s is-current" id="t4" data-start="4.2"' in page  # the sentence spoken at 5 s
    beyond = text(client.get(f"/episodes/{ids['episode']}?t=90"))
    assert f'href="/episodes/{ids["episode"]}?t=90#t12"' in beyond, "past the end: the last sentence"
