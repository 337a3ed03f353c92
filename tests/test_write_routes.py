"""Every route that can change something refuses requests that lack credentials or a CSRF token, and the
archive is byte for byte the same afterwards.

The routes are read from the app's URL map, so a write route added later is tried without touching this file:
each rule that takes a method other than GET, HEAD and OPTIONS gets, for each such method,
  (a) an anonymous request with no CSRF token,
  (b) an anonymous request with a valid CSRF token (from a fresh session), and
  (c) a request with the session of a producer allowed everything (an admin) but no CSRF token,
and under /api/studio/ (bearer tokens only, no CSRF) instead (a) no Authorization header, (b) a malformed and an
unknown bearer token, and (c) an admin's session cookie without a token. A refusal is 400, 401 or 403, or a
redirect to the login page; never a 2xx, a redirect elsewhere, or a 404 (a 404 would mean the view looked in the
archive before asking who is there).
"""

import hashlib
import re
from pathlib import Path

import pytest

from archive import producers
from archive.db import connect, open_db
from web_fixtures import make_app, sample_archive

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
TOKEN_API = "/api/studio/"
REFUSED = {400, 401, 403}


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    path = tmp_path_factory.mktemp("write-routes") / "archive.db"
    db = open_db(path)
    ids = sample_archive(db).ids
    producers.add_producer(db, "boss", "boss password", admin=True)
    producers.add_producer(db, "alice", "alice password", shows=[ids["datacast"]])
    producers.create_token(db, "alice")  # a real token exists: a bad one must still fail
    db.conn.close()
    return path, ids


@pytest.fixture(scope="module")
def app(archive):
    return make_app(archive[0])  # CSRF protection on, as in production


def archive_state(path: Path) -> str:
    """A hash of the archive's bytes: the file and its write-ahead log (a missing log counts as empty)."""
    digest = hashlib.sha256(path.read_bytes())
    wal = path.with_name(path.name + "-wal")
    digest.update(wal.read_bytes() if wal.exists() else b"")
    return digest.hexdigest()


def settle(path: Path) -> str:
    """Fold the log into the file, so closing a reader later has nothing to fold; then the state and a dump."""
    db = connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    dump = "\n".join(db.conn.iterdump())
    db.conn.close()
    return archive_state(path) + hashlib.sha256(dump.encode()).hexdigest()


def unchanged(path: Path) -> str:
    db = connect(path, readonly=True)
    dump = "\n".join(db.conn.iterdump())
    db.conn.close()
    return archive_state(path) + hashlib.sha256(dump.encode()).hexdigest()


def sample_value(name: str, converter: str, ids: dict, db) -> str:
    """A plausible value for a URL variable: an existing id for an int, a real slug for a person."""
    if converter == "int":
        known = {"show_id": ids["datacast"], "episode_id": ids["ep70"]}
        if name in known:
            return str(known[name])
        table = name[:-3] + "s" if name.endswith("_id") else None
        if table and table in db.table_names():
            row = db.execute(f"SELECT MIN(rowid) FROM [{table}]").fetchone()
            if row and row[0] is not None:
                return str(row[0])
        return "1"
    if converter == "float":
        return "1.0"
    if name == "slug":
        return "mohamed-elgendy"
    return "x"


def write_requests(app, ids, db) -> list[tuple[str, str]]:
    """(method, url) for every rule and method that may write."""
    found = []
    for rule in app.url_map.iter_rules():
        methods = sorted((rule.methods or set()) - SAFE_METHODS)
        if not methods:
            continue

        def fill(match):
            return sample_value(match.group("name"), match.group("converter") or "default", ids, db)

        url = re.sub(r"<(?:(?P<converter>\w+)(?:\([^)]*\))?:)?(?P<name>\w+)>", fill, rule.rule)
        found.extend((method, url) for method in methods)
    return found


@pytest.fixture(scope="module")
def routes(app, archive):
    db = open_db(archive[0])
    found = write_requests(app, archive[1], db)
    db.conn.close()
    return found


def refused(response) -> bool:
    if response.status_code in REFUSED:
        return True
    return response.status_code in (301, 302, 303, 307, 308) and \
        response.headers.get("Location", "").split("?")[0].endswith("/login")


def fresh_csrf_token(app):
    client = app.test_client()
    html = client.get("/login").get_data(as_text=True)
    return client, re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def logged_in(app, name="boss", password="boss password"):
    client, token = fresh_csrf_token(app)
    response = client.post("/login", data={"username": name, "password": password, "csrf_token": token})
    assert response.status_code == 302 and "You are logged in" in client.get("/logout").get_data(as_text=True)
    return client


def test_write_routes_are_found(routes):
    urls = {url for _, url in routes}
    assert {"/login", "/logout"} <= urls, routes
    assert all(not url.startswith("/static") for url in urls)


def test_anonymous_requests_without_csrf_token_are_refused(app, archive, routes):
    before = settle(archive[0])
    for method, url in routes:
        client = app.test_client()
        for kwargs in ({}, {"data": {"title": "changed", "notes": "changed"}}, {"json": {"title": "changed"}}):
            response = client.open(url, method=method, **kwargs)
            assert refused(response), (method, url, kwargs, response.status_code)
    assert unchanged(archive[0]) == before


def test_anonymous_requests_with_a_valid_csrf_token_are_refused(app, archive, routes):
    before = settle(archive[0])
    for method, url in routes:
        if url.startswith(TOKEN_API):
            continue
        client, token = fresh_csrf_token(app)
        for kwargs in ({"data": {"csrf_token": token}},
                       {"data": {"csrf_token": token, "title": "changed", "notes": "changed"}},
                       {"headers": {"X-CSRFToken": token}}):
            response = client.open(url, method=method, **kwargs)
            assert refused(response), (method, url, kwargs, response.status_code)
    assert unchanged(archive[0]) == before


def test_bad_bearer_tokens_are_refused(app, archive, routes):
    before = settle(archive[0])
    bad = ["pa_" + "A" * 43, "not-a-token", "", "pa_"]
    for method, url in routes:
        if not url.startswith(TOKEN_API):
            continue
        client = app.test_client()
        for token in bad:
            for scheme in ("Bearer", "Basic", "Token"):
                response = client.open(url, method=method, headers={"Authorization": f"{scheme} {token}"},
                                       json={"title": "changed"})
                assert response.status_code == 401, (method, url, scheme, token, response.status_code)
    assert unchanged(archive[0]) == before


def test_logged_in_requests_without_csrf_token_are_refused(app, archive, routes):
    clients = [logged_in(app), logged_in(app, "alice", "alice password")]
    before = settle(archive[0])
    for method, url in routes:
        for client in clients:
            for kwargs in ({}, {"data": {"title": "changed", "notes": "changed"}}, {"json": {"title": "changed"}},
                           {"data": {"csrf_token": "forged"}}):
                response = client.open(url, method=method, **kwargs)
                if url.startswith(TOKEN_API):  # a session counts for nothing there: no bearer token, no entry
                    assert response.status_code == 401, (method, url, response.status_code)
                else:
                    assert response.status_code == 400, (method, url, kwargs, response.status_code)
    assert unchanged(archive[0]) == before
    for client in clients:  # and the sessions were good all along
        assert "You are logged in" in client.get("/logout").get_data(as_text=True)
