"""The JSON API: shapes, filters, pagination, errors as JSON, and every field documented in docs/API.md."""

import re

import pytest

from archive.web import SETTINGS
from conftest import ROOT
from web_fixtures import DATACAST_LINES, app, client, ids, make_app, sample  # noqa: F401

API_DOC = (ROOT / "docs" / "API.md").read_text()


def documented(field: str) -> bool:
    """Named in docs/API.md as `field`, `parent.field`, "field" or inside a {a, b} field list."""
    name = re.escape(field)
    return re.search(rf'`{name}`|`[\w.]+\.{name}`|"{name}"|[{{,] ?{name}[,}}?]', API_DOC) is not None


def all_keys(value, found=None) -> set[str]:
    found = set() if found is None else found
    if isinstance(value, dict):
        for key, item in value.items():
            found.add(key)
            all_keys(item, found)
    elif isinstance(value, list):
        for item in value:
            all_keys(item, found)
    return found


def test_every_field_of_every_endpoint_is_documented(client, ids):
    responses = [client.get(path.format(**ids)).get_json() for path in (
        "/api/shows", "/api/shows/{datacast}", "/api/episodes", "/api/episodes/{ep70}",
        "/api/episodes/{ep70}/transcript", "/api/guests", "/api/guests/mohamed-elgendy", "/api/episodes?page=x",
        "/api/search?q=data+drift", "/api/search?q=drift+flurbogast&mode=keyword", "/api/search?q=xqzvbnm+wibbly",
    )]
    missing = sorted(key for key in all_keys(responses) if not documented(key))
    assert not missing, f"fields missing from docs/API.md: {missing}"


def test_every_setting_is_documented():
    for setting in SETTINGS:
        assert f"`{setting.name}`" in API_DOC, setting.name


def test_episode_list(client, ids):
    data = client.get("/api/episodes").get_json()
    assert data["total"] == 5 and data["page"] == 1 and data["per_page"] == 25 and data["pages"] == 1
    assert data["next"] is None and data["prev"] is None
    titles = [e["title"] for e in data["episodes"]]
    assert titles[-1] == "Bonus: Listener Questions" and titles[-2] == "Data Engineering at Scale"
    first = next(e for e in data["episodes"] if e["id"] == ids["ep70"])
    assert first["guid"] == "datacast-070" and first["show_title"] == "Datacast" and first["duration"] == 702.0
    assert first["url"] == f"http://localhost/episodes/{ids['ep70']}"
    assert first["api_url"] == f"http://localhost/api/episodes/{ids['ep70']}"


def test_episode_list_pages_and_filters(client, ids):
    page = client.get(f"/api/episodes?per_page=1&page=2&show={ids['datacast']}").get_json()
    assert page["total"] == 3 and page["pages"] == 3 and [e["guid"] for e in page["episodes"]] == ["datacast-069"]
    assert page["next"] == f"http://localhost/api/episodes?page=3&per_page=1&show={ids['datacast']}"
    assert page["prev"] == f"http://localhost/api/episodes?page=1&per_page=1&show={ids['datacast']}"
    assert [e["guid"] for e in client.get("/api/episodes?guest=jane-doe").get_json()["episodes"]] == ["datacast-069"]
    assert [e["guid"] for e in client.get("/api/episodes?year=2022").get_json()["episodes"]] == [
        "dtc-ab-testing-and-product-experimentation"]
    assert client.get("/api/episodes?guest=nobody").get_json()["total"] == 0


@pytest.mark.parametrize("query", ["page=0", "page=abc", "per_page=0", "per_page=101", "per_page=x", "show=x",
                                   "year=1", "guest=%3Cb%3E", "page=1%002", "year=" + "9" * 40])
def test_bad_parameters_are_json_400(client, query):
    response = client.get(f"/api/episodes?{query}")
    assert response.status_code == 400 and response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert error["status"] == 400 and error["title"] == "Bad Request" and "Parameter" in error["message"]


def test_episode_detail(client, ids):
    data = client.get(f"/api/episodes/{ids['ep70']}").get_json()
    assert [g["slug"] for g in data["guests"]] == ["mohamed-elgendy"] and data["guests"][0]["role"] == "guest"
    assert [h["name"] for h in data["hosts"]] == ["James Le"]
    assert data["guests"][0]["url"] == "http://localhost/guests/mohamed-elgendy"
    assert [c["title"] for c in data["chapters"]] == ["Introduction", "Testing ML systems", "Data drift"]
    assert data["chapters"][1] == {"title": "Testing ML systems", "start": 14.0, "end": 36.0,
                                   "url": "https://example.com/testing", "image": None, "source": "feed"}
    assert data["chapters_url"] == f"http://localhost/episodes/{ids['ep70']}/chapters.json"
    assert data["takeaways"][0] == {"title": "On silent failures", "text": "Models fail silently when the data drifts.",
                                    "start": 24.0, "end": 36.0, "source": "notes"}
    assert data["takeaways"][2]["start"] is None
    assert data["transcript"]["source"] == "whisper" and data["transcript"]["segment_count"] == 6
    assert data["transcript"]["exports"]["vtt"] == f"http://localhost/episodes/{ids['ep70']}/transcript.vtt"
    assert "<script" not in data["notes_html"] and "javascript:" not in data["notes_html"]
    assert 'rel="nofollow noopener"' in data["notes_html"]
    no_transcript = client.get(f"/api/episodes/{ids['ep69']}").get_json()
    assert no_transcript["transcript"] is None and no_transcript["chapters"] == [] and no_transcript["chapters_url"] is None


def test_transcript_segments(client, ids):
    data = client.get(f"/api/episodes/{ids['ep70']}/transcript").get_json()
    assert data["episode_id"] == ids["ep70"] and data["source"] == "whisper"
    assert [(s["start"], s["end"], s["text"], s["speaker"]) for s in data["segments"]] == DATACAST_LINES
    missing = client.get(f"/api/episodes/{ids['ep69']}/transcript")
    assert missing.status_code == 404 and "no transcript" in missing.get_json()["error"]["message"]


@pytest.mark.parametrize("path", ["/api/episodes/999", "/api/episodes/999/transcript", "/api/guests/nobody",
                                  "/api/shows/999", "/api/nothing-here"])
def test_missing_things_are_json_404(client, path):
    response = client.get(path)
    assert response.status_code == 404 and response.get_json()["error"]["status"] == 404


def test_guests(client, ids):
    people = client.get("/api/guests").get_json()["guests"]
    names = [p["name"] for p in people]
    assert names == sorted(names, key=str.lower)
    jane = next(p for p in people if p["slug"] == "jane-doe")
    assert jane["episode_count"] == 1 and jane["roles"] == ["guest"]
    assert [p["slug"] for p in client.get("/api/guests?q=elgendy").get_json()["guests"]] == ["mohamed-elgendy"]
    person = client.get("/api/guests/mohamed-elgendy").get_json()
    assert person["name"] == "Mohamed Elgendy"
    assert [(e["id"], e["role"]) for e in person["episodes"]] == [(ids["ep70"], "guest")]
    assert [t["title"] for t in person["takeaways"]] == ["On silent failures", "On catching drift", "On careers"]


def test_shows(client, ids):
    shows = client.get("/api/shows").get_json()["shows"]
    datacast = next(s for s in shows if s["id"] == ids["datacast"])
    assert datacast["episode_count"] == 3 and datacast["source_feed_url"] == "https://example.com/datacast.xml"
    assert datacast["feed_url"] == f"http://localhost/shows/{ids['datacast']}/feed.xml"
    assert client.get(f"/api/shows/{ids['dtc']}").get_json()["title"] == "DataTalks.Club Podcast"


def test_per_page_limit_follows_the_setting(sample):
    client = make_app(sample[0], MAX_PER_PAGE=2).test_client()
    assert client.get("/api/episodes?per_page=2").status_code == 200
    assert client.get("/api/episodes?per_page=3").status_code == 400
