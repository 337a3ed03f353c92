"""The studio's pages (archive/web/studio.py) through the Flask test client, CSRF protection on as in production:
the list, the episode editor (create, edit, validation errors, preview without JavaScript, takeaway rows,
upload), publishing, history and restore, and who may do what.

Forms are posted as a browser would post them: `page_form` reads every field of the page's form (inputs,
textareas, checked boxes), a test changes a few and posts the lot."""

from __future__ import annotations

import datetime as dt
import io
import re
from html.parser import HTMLParser

import pytest

from archive import producers, studio, work_queue
from archive.db import open_db
from archive.records import Segment
from conftest import SHARED
from fakes import FakeEmbedder
from web_fixtures import ArchiveBuilder, make_app

JFK_MP3 = SHARED / "audio" / "jfk" / "jfk.mp3"
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def archive(db_path):
    from archive.fts_tables import ensure_fts

    db = open_db(db_path)
    build = ArchiveBuilder(db)
    ids = {"datacast": build.show("Datacast"), "other": build.show("Other Show")}
    ids["hosted"] = studio.create_show(db, "Hosted Show", "Made here.")
    ids["ep70"] = build.episode(
        ids["datacast"], "datacast-070", "Machine Learning Testing", published="2021-06-01T12:00:00+00:00",
        episode_number=70, season=2, duration=702.0, notes_html="<p>Feed notes about <b>testing</b>.</p>",
        enclosure_url="https://cdn.example.com/70.mp3", enclosure_type="audio/mpeg")
    build.credit(ids["ep70"], "Mohamed Elgendy")
    build.takeaways(ids["ep70"], [{"title": "On drift", "text": "Models fail silently.", "start": 24.37},
                                  {"title": "On tests", "text": "Write behavioural tests.", "start": None}])
    build.chapters(ids["ep70"], [{"title": "Intro", "start": 0.0}, {"title": "Drift", "start": 36.5}])
    build.transcript(ids["ep70"], [Segment(0.0, 5.0, "Welcome to Datacast.", "James Le")])
    ids["other_ep"] = build.episode(ids["other"], "other-1", "Another show's episode",
                                    published="2020-01-01T00:00:00+00:00")
    producers.add_producer(db, "alice", "alice password", shows=[ids["datacast"], ids["hosted"]])
    producers.add_producer(db, "boss", "boss password", admin=True)
    producers.add_producer(db, "carol", "carol password", shows=[ids["other"]])
    ensure_fts(db)
    db.conn.close()
    return db_path, ids


@pytest.fixture
def app(archive):
    return make_app(archive[0])  # CSRF on


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def ids(archive):
    return archive[1]


@pytest.fixture
def db(archive):
    db = open_db(archive[0])
    yield db
    db.conn.close()


class Producer:
    id, name, admin = 1, "alice", False


# -- helpers ------------------------------------------------------------------------------------------------------

def csrf_from(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def log_in(client, name="alice", password=None):
    token = csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"username": name, "password": password or f"{name} password",
                                           "csrf_token": token})
    assert response.status_code == 302
    return client


class FormReader(HTMLParser):
    """The fields a browser would post for the form with this id (submit buttons apart)."""

    def __init__(self, form_id: str):
        super().__init__()
        self.form_id, self.inside, self.fields, self.textarea = form_id, False, [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.inside = attrs.get("id") == self.form_id
        if not self.inside or "name" not in attrs:
            return
        if tag == "input" and attrs.get("type") not in ("submit", "file", "checkbox"):
            self.fields.append((attrs["name"], attrs.get("value", "")))
        elif tag == "input" and attrs.get("type") == "checkbox" and "checked" in attrs:
            self.fields.append((attrs["name"], attrs.get("value", "on")))
        elif tag == "textarea":
            self.textarea = [attrs["name"], ""]

    def handle_data(self, data):
        if self.textarea is not None:
            self.textarea[1] += data

    def handle_endtag(self, tag):
        if tag == "textarea" and self.textarea is not None:
            value = self.textarea[1][1:] if self.textarea[1].startswith("\n") else self.textarea[1]
            self.fields.append((self.textarea[0], value))
            self.textarea = None
        if tag == "form":
            self.inside = False


def page_form(html: str, form_id: str = "episode-form") -> dict:
    reader = FormReader(form_id)  # converts character references, as a browser does
    reader.feed(html)
    return dict(reader.fields)


def editor(client, url: str) -> dict:
    response = client.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return page_form(response.get_data(as_text=True))


def post(client, url: str, form: dict, action: str = "save", **files):
    data = {**form, "action": action, **files}
    return client.post(url, data=data, content_type="multipart/form-data")


def text(response) -> str:
    return response.get_data(as_text=True)


def edit_url(episode_id: int) -> str:
    return f"/studio/episodes/{episode_id}"


def new_draft(db, show_id: int, **fields) -> int:
    return studio.create_episode(db, show_id, {"title": "A draft", **fields}, Producer())


# -- who may come in ------------------------------------------------------------------------------------------

def test_anonymous_visitors_are_sent_to_the_login_page(client, ids):
    for path in ("/studio", edit_url(ids["ep70"]), f"/studio/episodes/{ids['ep70']}/history",
                 f"/studio/shows/{ids['hosted']}/episodes/new"):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=/studio"), path
    token = csrf_from(text(client.get("/login")))
    for path in (edit_url(ids["ep70"]), f"/studio/episodes/{ids['ep70']}/unpublish", "/studio/preview",
                 "/studio/shows", f"/studio/episodes/{ids['ep70']}/history/1/restore"):
        assert client.post(path, data={"csrf_token": token, "title": "x"}).status_code == 401, path


def test_a_producer_without_the_show_gets_403(client, db, ids):
    log_in(client, "carol")
    token = csrf_from(text(client.get("/studio")))
    revision = studio.update_episode(db, ids["ep70"], {"title": "Edited"}, Producer())["last_change"]["revision_id"]
    before = studio.studio_episode(db, ids["ep70"])
    for path in (edit_url(ids["ep70"]), f"/studio/episodes/{ids['ep70']}/history",
                 f"/studio/shows/{ids['datacast']}/episodes/new", f"/studio?show={ids['datacast']}"):
        assert client.get(path).status_code == 403, path
    for path in (edit_url(ids["ep70"]), f"/studio/episodes/{ids['ep70']}/unpublish",
                 f"/studio/shows/{ids['datacast']}/episodes/new", "/studio/shows",
                 f"/studio/episodes/{ids['ep70']}/history/{revision}/restore"):
        response = client.post(path, data={"csrf_token": token, "title": "Hijacked", "action": "publish"})
        assert response.status_code == 403, path
    assert studio.studio_episode(db, ids["ep70"]) == before
    page = text(client.get("/studio"))
    assert "Other Show" in page and "Datacast" not in page and "New show" not in page


# -- the list -------------------------------------------------------------------------------------------------

def test_the_list_shows_my_shows_their_episodes_and_states(client, db, ids):
    draft = new_draft(db, ids["hosted"], title="Draft one")
    later = new_draft(db, ids["hosted"], title="Coming soon")
    when = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=3)).replace(microsecond=0)
    studio.publish(db, later, Producer(), at=when)
    failing = new_draft(db, ids["hosted"], title="Broken audio", audio_url="https://cdn.example.com/b.mp3")
    studio.publish(db, failing, Producer())
    db["stages"].insert({"episode_id": failing, "stage": "audio", "state": "failed",
                         "last_error": "HTTP 404 from cdn.example.com"}, alter=True)
    waiting = new_draft(db, ids["hosted"], title="Waiting", audio_url="https://cdn.example.com/w.mp3")
    studio.publish(db, waiting, Producer())
    assert work_queue.queue_entry(db, waiting) is not None
    log_in(client)
    response = client.get("/studio")
    page = text(response)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert "Datacast" in page and "Hosted Show" in page and "Other Show" not in page
    assert "New show" not in page  # admins only
    hosted = page[page.index("Hosted Show"):]
    assert hosted.index("Draft one") < hosted.index("Coming soon") < hosted.index("Waiting")  # drafts first
    scheduled = page[page.index('id="scheduled-title"'):page.index("Hosted Show")]
    assert "Coming soon" in scheduled and f"{when.day} {when:%b %Y, %H:%M} UTC" in scheduled
    assert "Broken audio" in page and "Failed" in page and "HTTP 404 from cdn.example.com" in page
    assert "Transcribing" in page and "waiting for the background worker" in page
    assert "Created by alice" in page
    assert f'href="/studio/episodes/{draft}"' in page and f'href="/studio/shows/{ids["hosted"]}/episodes/new"' in page


def test_an_admin_sees_every_show_and_makes_a_hosted_one(client, db, ids):
    log_in(client, "boss")
    page = text(client.get("/studio"))
    assert "Other Show" in page and "Datacast" in page and "New show" in page
    token = csrf_from(page)
    refused = client.post("/studio/shows", data={"csrf_token": token, "title": "  "})
    assert refused.status_code == 400 and "Title is required" in text(refused)
    response = client.post("/studio/shows", data={"csrf_token": token, "title": "Brand New", "language": "en"})
    show_id = next(r["id"] for r in db.query("SELECT id FROM shows WHERE title = 'Brand New'"))
    assert response.status_code == 302 and response.headers["Location"] == f"/studio/shows/{show_id}/episodes/new"
    assert db["shows"].get(show_id)["hosted"] == 1
    alice = log_in(client.application.test_client(), "alice")
    assert alice.post("/studio/shows", data={"csrf_token": csrf_from(text(alice.get("/studio"))),
                                             "title": "Mine"}).status_code == 403


# -- writing an episode ---------------------------------------------------------------------------------------

def test_create_an_episode(client, db, ids):
    log_in(client)
    url = f"/studio/shows/{ids['hosted']}/episodes/new"
    form = editor(client, url)
    form.update({"title": "First Episode", "episode_number": "1", "season": "1", "published": "2024-05-01T09:30",
                 "guests": "Ada Lovelace, Grace Hopper\nAlan Turing", "guest_add": "Mohamed Elgendy",
                 "audio_url": "https://cdn.example.com/first.mp3", "notes_markdown": "Hello **world**",
                 "takeaways-0-title": "Point one", "takeaways-0-text": "Said first.", "takeaways-0-start": "1:05",
                 "takeaways-1-title": "Point two", "takeaways-1-text": "Said second.",
                 "chapters-0-title": "Later", "chapters-0-start": "10:00", "chapters-1-title": "Intro",
                 "chapters-1-start": "0"})
    response = post(client, url, form)
    assert response.status_code == 302, text(response)
    episode_id = int(response.headers["Location"].rsplit("/", 1)[1])
    got = studio.studio_episode(db, episode_id)
    fields = got["fields"]
    assert got["state"] == "draft" and got["show_id"] == ids["hosted"]
    assert fields["title"] == "First Episode" and fields["episode_number"] == 1 and fields["season"] == 1
    assert fields["published"] == "2024-05-01T09:30:00+00:00"
    assert sorted(fields["guests"]) == ["Ada Lovelace", "Alan Turing", "Grace Hopper", "Mohamed Elgendy"]
    assert fields["audio_url"] == "https://cdn.example.com/first.mp3"
    assert fields["takeaways"] == [{"title": "Point one", "text": "Said first.", "start": 65.0},
                                   {"title": "Point two", "text": "Said second.", "start": None}]
    assert [c["title"] for c in fields["chapters"]] == ["Intro", "Later"]
    page = text(client.get(response.headers["Location"]))
    assert "Saved." in page and 'value="First Episode"' in page and "<strong>world</strong>" in page
    assert 'value="1:05"' in page and "Save draft" in page and "Publish now" in page
    assert f'href="/studio/episodes/{episode_id}/transcript"' in page
    assert '<datalist id="people-names">' in page and '<option value="Mohamed Elgendy">' in page
    # the unchanged form saved again changes nothing
    revisions = len(studio.history(db, episode_id))
    assert post(client, edit_url(episode_id), editor(client, edit_url(episode_id))).status_code == 302
    assert len(studio.history(db, episode_id)) == revisions and studio.studio_episode(db, episode_id)["fields"] == fields


def test_a_new_episode_needs_a_title(client, db, ids):
    log_in(client)
    url = f"/studio/shows/{ids['hosted']}/episodes/new"
    form = editor(client, url)
    form.update({"title": "", "notes_markdown": "Kept notes"})
    response = post(client, url, form)
    page = text(response)
    assert response.status_code == 400 and "Title is required" in page and "Kept notes</textarea>" in page
    assert db.execute("SELECT count(*) FROM episodes WHERE show_id = ?", [ids["hosted"]]).fetchone()[0] == 0


def test_saving_a_feed_episode_takes_over_only_the_fields_changed(client, db, ids):
    log_in(client)
    form = editor(client, edit_url(ids["ep70"]))
    assert form["takeaways-0-start"] == "0:24.37" and form["published"] == "2021-06-01T12:00"
    assert form["notes_markdown"] == "" and form["guests"] == "Mohamed Elgendy"
    page = text(client.get(edit_url(ids["ep70"])))
    assert "from the feed" in page and "Feed notes about <b>testing</b>" in page
    form["title"] = "Machine Learning Testing, revised"
    response = post(client, edit_url(ids["ep70"]), form)
    assert response.status_code == 302
    got = studio.studio_episode(db, ids["ep70"])
    assert got["producer_fields"] == ["title"]
    assert got["fields"]["takeaways"][0]["start"] == 24.37 and got["notes_html"].startswith("<p>Feed notes")
    page = text(client.get(edit_url(ids["ep70"])))
    title_label = page[page.index('for="f-title"'):page.index('id="f-title"')]
    assert "edited here" in title_label
    assert "from the feed" in page[page.index('for="f-season"'):page.index('id="f-season"')]


def test_validation_errors_are_shown_next_to_their_fields_with_the_values_kept(client, db, ids):
    log_in(client)
    before = studio.studio_episode(db, ids["ep70"])
    form = editor(client, edit_url(ids["ep70"]))
    form.update({"title": "A better title", "season": "two", "takeaways-1-start": "soon",
                 "takeaways-2-title": "", "takeaways-2-text": "A text without a title", "chapters-0-start": ""})
    response = post(client, edit_url(ids["ep70"]), form)
    page = text(response)
    assert response.status_code == 400
    assert 'value="A better title"' in page and 'value="two"' in page and 'value="soon"' in page
    assert "A text without a title</textarea>" in page
    season = page[page.index('id="f-season"'):]
    assert season.index('aria-invalid="true"') < season.index(">")
    assert 'id="error-season"' in page and "Season must be a whole number" in page
    assert 'id="error-takeaways-1-start"' in page and "Time must be seconds or a time like 1:02:03" in page
    assert 'id="error-takeaways-2-title"' in page and 'id="error-chapters-0-start"' in page
    assert studio.studio_episode(db, ids["ep70"]) == before  # nothing saved


def test_preview_without_javascript_keeps_the_form_and_saves_nothing(client, db, ids):
    log_in(client)
    before = studio.studio_episode(db, ids["ep70"])
    form = editor(client, edit_url(ids["ep70"]))
    notes = f"# Heading\n\nSome **bold** and a [link](https://example.com/x) and [bad](javascript:alert(1))\n\n{HOSTILE}"
    form.update({"title": "Changed but not saved", "notes_markdown": notes})
    response = post(client, edit_url(ids["ep70"]), form, action="preview")
    page = text(response)
    assert response.status_code == 200 and "This is a preview: nothing is saved yet." in page
    preview = page[page.index('id="notes-preview"'):page.index('id="takeaways"')]
    assert "<h1>Heading</h1>" in preview and "<strong>bold</strong>" in preview
    assert 'href="https://example.com/x"' in preview and "javascript:" not in preview.split("[bad]")[0]
    assert "<script>" not in page.replace('<script src="/static/studio.js" defer></script>', "")
    assert "<img" not in preview and "&lt;script&gt;" in page
    assert 'value="Changed but not saved"' in page
    assert page_form(page)["notes_markdown"].startswith("# Heading")
    assert studio.studio_episode(db, ids["ep70"]) == before


def test_live_preview_endpoint(client):
    log_in(client)
    token = csrf_from(text(client.get("/studio")))
    response = client.post("/studio/preview", data={"notes_markdown": f"*hi* {HOSTILE}"},
                           headers={"X-CSRFToken": token})
    assert response.status_code == 200 and response.is_json
    html = response.get_json()["html"]
    assert "<em>hi</em>" in html and "<script" not in html and "<img" not in html
    assert client.post("/studio/preview", data={"notes_markdown": "x"}).status_code == 400  # no CSRF token
    too_long = client.post("/studio/preview", data={"notes_markdown": "x" * 200_001}, headers={"X-CSRFToken": token})
    assert too_long.status_code == 400 and "at most" in too_long.get_json()["error"]


def test_takeaways_are_added_reordered_and_removed(client, db, ids):
    log_in(client)
    episode = new_draft(db, ids["hosted"], takeaways=[{"title": "A", "text": "first"}, {"title": "B", "text": "second"},
                                                      {"title": "C", "text": "third", "start": 30}])
    url = edit_url(episode)
    form = editor(client, url)
    assert [form[f"takeaways-{i}-position"] for i in range(5)] == ["1", "2", "3", "4", "5"]  # 3 rows + 2 blank
    # reorder by position numbers, remove B, add D in a blank row
    form.update({"takeaways-0-position": "3", "takeaways-2-position": "1", "takeaways-1-remove": "1",
                 "takeaways-3-title": "D", "takeaways-3-text": "added", "takeaways-3-start": "1:02:03"})
    assert post(client, url, form).status_code == 302
    takeaways = studio.studio_episode(db, episode)["fields"]["takeaways"]
    assert [(t["title"], t["start"]) for t in takeaways] == [("C", 30.0), ("A", None), ("D", 3723.0)]
    # the ↑ ↓ buttons without JavaScript: the page comes back in the new order, not saved until Save
    form = editor(client, url)
    moved = post(client, url, form, action="move:takeaways:0:down")
    assert moved.status_code == 200 and "Save to keep the new order" in text(moved)
    form = page_form(text(moved))
    assert [form[f"takeaways-{i}-title"] for i in range(3)] == ["A", "C", "D"]
    assert [t["title"] for t in studio.studio_episode(db, episode)["fields"]["takeaways"]] == ["C", "A", "D"]
    assert post(client, url, form).status_code == 302
    assert [t["title"] for t in studio.studio_episode(db, episode)["fields"]["takeaways"]] == ["A", "C", "D"]
    # "Add more" without JavaScript: more blank rows
    more = post(client, url, editor(client, url), action="add:takeaways")
    assert more.status_code == 200 and "takeaways-7-title" in text(more)


def test_a_stale_form_is_not_saved_over_a_newer_change(client, db, ids):
    log_in(client)
    form = editor(client, edit_url(ids["ep70"]))
    studio.update_episode(db, ids["ep70"], {"title": "Bob's title"}, type("Bob", (), {"id": 9, "name": "bob"})())
    form["season"] = "3"
    response = post(client, edit_url(ids["ep70"]), form)
    assert response.status_code == 400 and "bob changed this episode" in text(response)
    assert studio.studio_episode(db, ids["ep70"])["fields"]["season"] == 2
    again = page_form(text(response))  # saving again keeps the producer's values
    assert post(client, edit_url(ids["ep70"]), again).status_code == 302
    fields = studio.studio_episode(db, ids["ep70"])["fields"]
    assert fields["season"] == 3 and fields["title"] == "Machine Learning Testing"


def test_hostile_text_is_escaped_everywhere(client, db, ids):
    log_in(client)
    episode = new_draft(db, ids["hosted"], title=f"Title {HOSTILE}", guests=["Eve <b>Hacker</b>"],
                        takeaways=[{"title": HOSTILE, "text": HOSTILE}], notes_markdown=HOSTILE)
    studio.update_episode(db, episode, {"title": f"New {HOSTILE}"}, Producer())
    for path in ("/studio", edit_url(episode), f"/studio/episodes/{episode}/history"):
        page = text(client.get(path)).replace('<script src="/static/studio.js" defer></script>', "")
        assert "<script>alert" not in page and "<img src=x" not in page and "<b>Hacker" not in page, path
        assert "&lt;script&gt;" in page, path


# -- publishing -----------------------------------------------------------------------------------------------

def test_publish_unpublish_and_schedule(client, db, ids):
    log_in(client)
    episode = new_draft(db, ids["hosted"], title="Zebra crossings explained",
                        notes_markdown="All about the **quagga** mussel.",
                        takeaways=[{"title": "Stripes", "text": "Okapis have stripes too."}])
    url = edit_url(episode)
    anonymous = client.application.test_client()
    assert anonymous.get(f"/episodes/{episode}").status_code == 404
    form = editor(client, url)
    form["title"] = "Zebra crossings, explained"
    response = post(client, url, form, action="publish")
    assert response.status_code == 302
    got = studio.studio_episode(db, episode)
    assert got["state"] == "published" and got["fields"]["title"] == "Zebra crossings, explained"
    assert "Published" in text(client.get(url)) and "Unpublish" in text(client.get(url))
    assert anonymous.get(f"/episodes/{episode}").status_code == 200
    assert "Zebra crossings, explained" in text(anonymous.get(f"/shows/{ids['hosted']}/feed.xml"))
    for query in ("quagga", "okapis"):
        found = text(anonymous.get(f"/search?q={query}&mode=keyword"))
        assert f"/episodes/{episode}" in found, query
    # unpublish
    token = csrf_from(text(client.get(url)))
    response = client.post(f"/studio/episodes/{episode}/unpublish", data={"csrf_token": token})
    assert response.status_code == 302 and studio.studio_episode(db, episode)["state"] == "draft"
    assert anonymous.get(f"/episodes/{episode}").status_code == 404
    assert f"/episodes/{episode}" not in text(anonymous.get("/search?q=quagga&mode=keyword"))
    # schedule: in the past is refused, in the future is kept
    form = editor(client, url)
    form["publish_at"] = "2001-01-01T00:00"
    refused = post(client, url, form, action="schedule")
    assert refused.status_code == 400 and "must be in the future" in text(refused)
    when = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)).replace(second=0, microsecond=0)
    form["publish_at"] = when.strftime("%Y-%m-%dT%H:%M")
    response = post(client, url, form, action="schedule")
    assert response.status_code == 302
    got = studio.studio_episode(db, episode)
    assert got["state"] == "scheduled" and got["publish_at"] == when.isoformat()
    page = text(client.get(url))
    assert "Scheduled for" in page and "Cancel the schedule" in page
    assert anonymous.get(f"/episodes/{episode}").status_code == 404


def test_publish_embeds_with_the_apps_embedder(client, db, ids, monkeypatch):
    seen = []
    real = studio.publish
    monkeypatch.setattr(studio, "publish", lambda *a, **k: seen.append(k.get("embedder")) or real(*a, **k))
    log_in(client)
    episode = new_draft(db, ids["hosted"])
    assert post(client, edit_url(episode), editor(client, edit_url(episode)), action="publish").status_code == 302
    assert len(seen) == 1 and isinstance(seen[0], FakeEmbedder)


# -- history ---------------------------------------------------------------------------------------------------

def test_history_shows_who_changed_what_and_restores(client, db, ids):
    log_in(client)
    url = edit_url(ids["ep70"])
    for title in ("Second title", "Third title"):
        form = editor(client, url)
        form["title"] = title
        assert post(client, url, form).status_code == 302
    page = text(client.get(f"/studio/episodes/{ids['ep70']}/history"))
    assert page.count('class="card revision"') == 3
    assert "From the feed" in page and "Edited by alice" in page
    newest = page[page.index('class="card revision"'):]
    newest = newest[:newest.index("</li>")]
    assert "Second title" in newest and "Third title" in newest and "Restore this version" not in newest
    revisions = studio.history(db, ids["ep70"])
    first_edit = revisions[1]["revision_id"]
    token = csrf_from(page)
    response = client.post(f"/studio/episodes/{ids['ep70']}/history/{first_edit}/restore", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == url
    assert studio.studio_episode(db, ids["ep70"])["fields"]["title"] == "Second title"
    assert "Restored" in text(client.get(f"/studio/episodes/{ids['ep70']}/history"))
    missing = client.post(f"/studio/episodes/{ids['ep70']}/history/99999/restore", data={"csrf_token": token})
    assert missing.status_code == 404


# -- audio -----------------------------------------------------------------------------------------------------

def test_upload_audio(client, db, ids, tmp_path):
    log_in(client)
    episode = new_draft(db, ids["hosted"])
    url = edit_url(episode)
    form = editor(client, url)
    response = post(client, url, form, audio_file=(io.BytesIO(JFK_MP3.read_bytes()), "jfk speech.mp3", "audio/mpeg"))
    assert response.status_code == 302, text(response)
    audio = studio.studio_episode(db, episode)["fields"]["audio_url"]
    stored = tmp_path / "media" / "uploads"
    assert audio.startswith(str(stored)) and audio.endswith(".mp3")
    assert (stored / audio.rsplit("/", 1)[1]).read_bytes() == JFK_MP3.read_bytes()
    page = text(client.get(url))
    assert "uploaded file" in page and 'value="' + audio not in page  # the server's path is not put in a field
    # saving the form again keeps the upload
    assert post(client, url, editor(client, url)).status_code == 302
    assert studio.studio_episode(db, episode)["fields"]["audio_url"] == audio


def test_an_upload_kept_across_a_validation_error(client, db, ids):
    log_in(client)
    episode = new_draft(db, ids["hosted"])
    url = edit_url(episode)
    form = editor(client, url)
    form["season"] = "x"
    response = post(client, url, form, audio_file=(io.BytesIO(JFK_MP3.read_bytes()), "jfk.mp3", "audio/mpeg"))
    assert response.status_code == 400 and "Uploaded: <code>jfk.mp3</code>" in text(response)
    form = page_form(text(response))
    form["season"] = "1"
    assert post(client, url, form).status_code == 302
    assert studio.studio_episode(db, episode)["fields"]["audio_url"].endswith(".mp3")
    forged = page_form(text(client.get(url)))
    forged.update({"audio_upload": "forged", "audio_upload_name": "x.mp3"})
    refused = post(client, url, forged)
    assert refused.status_code == 400 and "upload it once more" in text(refused)


def test_uploads_that_are_not_audio_or_too_large_are_refused(archive, db, ids, tmp_path):
    client = make_app(archive[0], STUDIO_MAX_UPLOAD_MB=0.05).test_client()  # 51 KiB: the 75 KiB mp3 is too large
    log_in(client)
    episode = new_draft(db, ids["hosted"])
    url = edit_url(episode)
    form = editor(client, url)
    for upload, expected in (((io.BytesIO(b"%PDF-1.4 not audio at all" * 50), "notes.mp3", "audio/mpeg"), "not audio"),
                             ((io.BytesIO(JFK_MP3.read_bytes()), "jfk.mp3", "audio/mpeg"), "over the limit"),
                             ((io.BytesIO(b"<html></html>"), "page.html", "text/html"), "must be audio")):
        response = post(client, url, form, audio_file=upload)
        page = text(response)
        assert response.status_code == 400 and 'id="error-audio_url"' in page and expected in page, expected
    assert studio.studio_episode(db, episode)["fields"]["audio_url"] is None
    uploads = tmp_path / "media" / "uploads"
    assert not uploads.exists() or not any(uploads.iterdir())
