"""Logging in and out of the studio, CSRF, cookies, the secret key file and the decorators other views use
(archive/web/auth.py). CSRF protection stays on here, as in production."""

import os
import re
import stat
import threading

import pytest
from flask import g, jsonify

from archive import producers
from archive.db import open_db
from archive.web import archive_secret_key, create_app
from archive.web.auth import local_path, login_required, require_show, token_required
from web_fixtures import ArchiveBuilder, make_app


def csrf_from(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


@pytest.fixture
def archive(db_path):
    db = open_db(db_path)
    build = ArchiveBuilder(db)
    ids = {"datacast": build.show("Datacast"), "other": build.show("Other Show")}
    producers.add_producer(db, "alice", "alice's password", shows=[ids["datacast"]])
    producers.add_producer(db, "boss", "boss password", admin=True)
    db.conn.close()
    return db_path, ids


def extra_views(app):
    """Views as the studio will write them, to try the decorators on."""

    @login_required
    def studio_page():
        return f"studio of {g.producer.name}"

    @login_required
    def edit_show(show_id):
        require_show(show_id)
        return f"editing {show_id}"

    @token_required
    def whoami():
        return jsonify(name=g.producer.name)

    @token_required
    def api_edit_show(show_id):
        require_show(show_id)
        return jsonify(ok=True)

    app.add_url_rule("/studio", view_func=studio_page, methods=["GET", "POST"])
    app.add_url_rule("/studio/shows/<int:show_id>", view_func=edit_show, methods=["GET", "POST"])
    app.add_url_rule("/api/studio/whoami", view_func=whoami, methods=["GET", "POST"])
    app.add_url_rule("/api/studio/shows/<int:show_id>", view_func=api_edit_show, methods=["POST"])
    return app


@pytest.fixture
def app(archive):
    return extra_views(make_app(archive[0]))


@pytest.fixture
def client(app):
    return app.test_client()


def log_in(client, name="alice", password="alice's password", next_url=None, **kwargs):
    token = csrf_from(client.get("/login").get_data(as_text=True))
    data = {"username": name, "password": password, "csrf_token": token}
    if next_url is not None:
        data["next"] = next_url
    return client.post("/login", data=data, **kwargs)


# --- logging in and out ---

def test_login_page(client):
    page = client.get("/login")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    html = page.get_data(as_text=True)
    assert 'name="username"' in html and 'type="password"' in html and csrf_from(html)
    home = client.get("/").get_data(as_text=True)
    assert 'href="/login"' in home and "Log out" not in home


def test_login_then_logout(client):
    response = log_in(client)
    assert response.status_code == 302 and response.headers["Location"] == "/studio"
    assert "Logged in as alice" in client.get("/studio").get_data(as_text=True)  # the real studio (studio.py)
    home = client.get("/").get_data(as_text=True)
    assert "Log out" in home and 'href="/studio"' in home
    assert client.get("/login").headers["Location"] == "/studio"  # already logged in
    confirm = client.get("/logout")
    assert confirm.status_code == 200 and "logged in as alice" in confirm.get_data(as_text=True)
    assert client.post("/logout").status_code == 400  # no CSRF token: refused, still logged in
    assert client.get("/studio").status_code == 200
    response = client.post("/logout", data={"csrf_token": csrf_from(home)})
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert client.get("/studio").status_code == 302
    assert "You are not logged in" in client.get("/logout").get_data(as_text=True)


def test_login_without_csrf_token_is_refused(client, archive):
    client.get("/login")
    response = client.post("/login", data={"username": "alice", "password": "alice's password"})
    assert response.status_code == 400 and "CSRF" in response.get_data(as_text=True)
    response = client.post("/login", data={"username": "alice", "password": "alice's password",
                                           "csrf_token": "forged"})
    assert response.status_code == 400
    assert client.get("/studio").status_code == 302
    assert open_db(archive[0]).execute("SELECT COUNT(*) FROM login_failures").fetchone()[0] == 0


def test_wrong_name_or_password_says_the_same(client, archive):
    wrong_password = log_in(client, password="nope")
    unknown_name = log_in(client, name="mallory", password="alice's password")
    for response in (wrong_password, unknown_name):
        assert response.status_code == 401
        assert "Wrong name or password." in response.get_data(as_text=True)
    assert wrong_password.get_data(as_text=True).replace("alice", "X") == \
        unknown_name.get_data(as_text=True).replace("mallory", "X").replace(
            csrf_from(unknown_name.get_data(as_text=True)), csrf_from(wrong_password.get_data(as_text=True)))
    assert log_in(client, name="", password="").status_code == 400
    assert open_db(archive[0]).execute("SELECT COUNT(*) FROM login_failures").fetchone()[0] == 2


def test_next_must_be_a_local_path(client):
    assert log_in(client, next_url="/episodes?page=2").headers["Location"] == "/episodes?page=2"
    for bad in ("//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)",
                "evil.example", "/\x00x", "http:/evil.example", " //evil.example"):
        client.post("/logout", data={"csrf_token": csrf_from(client.get("/logout").get_data(as_text=True))})
        assert log_in(client, next_url=bad).headers["Location"] == "/studio", bad
    assert local_path("/studio/shows/1?tab=notes#x") == "/studio/shows/1?tab=notes#x"


def test_login_required_sends_people_to_the_login_page_and_back(client, archive):
    response = client.get("/studio/shows/1?tab=notes")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/studio/shows/1?tab%3Dnotes"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'name="next" value="/studio/shows/1?tab=notes"' in page
    token = csrf_from(page)
    assert client.post("/studio", data={"csrf_token": token}).status_code == 401  # anonymous write: refused
    response = client.post("/login", data={"username": "alice", "password": "alice's password",
                                           "csrf_token": token, "next": "/studio/shows/1?tab=notes"})
    assert response.headers["Location"] == "/studio/shows/1?tab=notes"


def test_require_show(client, archive):
    ids = archive[1]
    log_in(client)
    assert client.get(f"/studio/shows/{ids['datacast']}").status_code == 200
    assert client.get(f"/studio/shows/{ids['other']}").status_code == 403
    client.post("/logout", data={"csrf_token": csrf_from(client.get("/logout").get_data(as_text=True))})
    log_in(client, "boss", "boss password")
    assert client.get(f"/studio/shows/{ids['other']}").status_code == 200


def test_logged_in_write_without_csrf_token_is_refused(client):
    log_in(client)
    assert client.post("/studio").status_code == 400
    token = csrf_from(client.get("/logout").get_data(as_text=True))
    assert client.post("/studio", data={"csrf_token": token}).status_code == 200
    assert client.post("/studio", headers={"X-CSRFToken": token}).status_code == 200


def test_new_password_ends_the_session(client, archive):
    log_in(client)
    assert client.get("/studio").status_code == 200
    producers.set_password(open_db(archive[0]), "alice", "another one")
    assert client.get("/studio").status_code == 302
    assert "Log in" in client.get("/").get_data(as_text=True)


def test_removed_producer_is_logged_out(client, archive):
    log_in(client)
    producers.remove_producer(open_db(archive[0]), "alice")
    assert client.get("/studio").status_code == 302


# --- throttling ---

def test_failed_logins_throttle_the_account(client, archive):
    for i in range(5):
        response = log_in(client, password=f"guess {i}", environ_base={"REMOTE_ADDR": f"198.51.100.{i}"})
        assert response.status_code == 401
    response = log_in(client, environ_base={"REMOTE_ADDR": "198.51.100.99"})  # right password, still refused
    assert response.status_code == 429
    assert "Too many failed logins" in response.get_data(as_text=True)
    assert 1 <= int(response.headers["Retry-After"]) <= 2
    assert client.get("/studio").status_code == 302
    db = open_db(archive[0])
    assert db.execute("SELECT COUNT(*) FROM login_failures").fetchone()[0] == 5  # a refusal is not a failure
    assert log_in(client, "boss", "boss password", environ_base={"REMOTE_ADDR": "198.51.100.99"}).status_code == 302


def test_failed_logins_throttle_the_address(client, archive):
    for i in range(5):
        assert log_in(client, name=f"user{i}", password="x", environ_base={"REMOTE_ADDR": "203.0.113.5"}) \
            .status_code == 401
    assert log_in(client, environ_base={"REMOTE_ADDR": "203.0.113.5"}).status_code == 429
    assert log_in(client, environ_base={"REMOTE_ADDR": "203.0.113.6"}).status_code == 302


def test_success_clears_the_account_failures(client, archive):
    for i in range(3):
        log_in(client, password="wrong")
    assert log_in(client).status_code == 302
    db = open_db(archive[0])
    assert db.execute("SELECT COUNT(*) FROM login_failures WHERE name = 'alice'").fetchone()[0] == 0


def test_trusted_proxies_take_the_address_from_x_forwarded_for(archive):
    client = make_app(archive[0], TRUSTED_PROXIES=1).test_client()
    for i in range(5):
        log_in(client, name=f"user{i}", password="x", headers={"X-Forwarded-For": "203.0.113.9"})
    assert log_in(client, headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 429
    assert log_in(client, headers={"X-Forwarded-For": "203.0.113.10"}).status_code == 302


# --- the studio API's bearer tokens ---

def test_token_required(client, archive):
    path, ids = archive
    db = open_db(path)
    _, token = producers.create_token(db, "alice")
    response = client.get("/api/studio/whoami")
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
    assert set(response.get_json()) == {"error"} and "Bearer" in response.get_json()["error"]  # studio API shape
    for header in ("Bearer pa_wrong", "Basic YWxpY2U6cHc=", "Bearer", token):
        response = client.get("/api/studio/whoami", headers={"Authorization": header})
        assert response.status_code == 401 and response.is_json, header
    ok = client.get("/api/studio/whoami", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200 and ok.get_json() == {"name": "alice"}
    # no CSRF token needed: the API takes no cookies
    assert client.post("/api/studio/whoami", headers={"Authorization": f"bearer {token}"}).status_code == 200
    response = client.post(f"/api/studio/shows/{ids['other']}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403 and response.get_json() == {"error": "You may not edit this show."}
    assert client.post(f"/api/studio/shows/{ids['datacast']}",
                       headers={"Authorization": f"Bearer {token}"}).status_code == 200
    producers.revoke_token(db, "alice", producers.list_tokens(db, "alice")[0].id)
    assert client.get("/api/studio/whoami", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_session_cookie_counts_for_nothing_on_the_studio_api(client):
    log_in(client)
    assert client.get("/studio").status_code == 200
    assert client.get("/api/studio/whoami").status_code == 401
    assert client.post("/api/studio/whoami").status_code == 401


# --- cookies and the secret key ---

def session_cookie(response) -> str:
    return next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("session="))


def test_cookie_flags(archive):
    cookie = session_cookie(log_in(make_app(archive[0]).test_client()))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    secure = make_app(archive[0], SESSION_COOKIE_SECURE=True)
    assert secure.config["REMEMBER_COOKIE_SECURE"] is True
    cookie = session_cookie(log_in(secure.test_client(), base_url="https://localhost"))
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_anonymous_pages_set_no_cookie(client):
    for path in ("/", "/episodes", "/api/shows"):
        response = client.get(path)
        assert response.status_code == 200 and not response.headers.getlist("Set-Cookie"), path
        assert "Cookie" not in response.headers.get("Vary", ""), path


def test_secret_key_file_is_shared_by_every_app_on_the_archive(archive, monkeypatch):
    monkeypatch.delenv("PODARCHIVE_SECRET_KEY", raising=False)
    path = archive[0]
    secret = path.with_name(path.name + ".secret")
    assert not secret.exists()
    first, second = make_app(path), make_app(path)
    assert secret.exists() and stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert first.secret_key == second.secret_key == secret.read_text().strip()
    assert len(first.secret_key) == 64
    client = first.test_client()
    log_in(client)
    cookie = client.get_cookie("session").value
    other = second.test_client()  # another worker: the same cookie is good there
    other.set_cookie("session", cookie)
    assert "Log out" in other.get("/").get_data(as_text=True)


def test_secret_key_from_the_environment_or_the_config(archive, monkeypatch):
    path = archive[0]
    monkeypatch.setenv("PODARCHIVE_SECRET_KEY", "from-the-environment")
    assert make_app(path).secret_key == "from-the-environment"
    assert make_app(path, SECRET_KEY="from-tests").secret_key == "from-tests"
    assert not path.with_name(path.name + ".secret").exists()
    assert create_app({"DATABASE": ":memory:", "SECRET_KEY": None}).secret_key  # random, no file


def test_secret_key_made_once_by_concurrent_starts(tmp_path):
    keys = []
    database = tmp_path / "a.db"
    threads = [threading.Thread(target=lambda: keys.append(archive_secret_key(database))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 8 and len(set(keys)) == 1
    assert os.listdir(tmp_path) == ["a.db.secret"]
