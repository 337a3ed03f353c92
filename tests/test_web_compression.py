"""Compressed responses (archive/web/compression.py): public pages, the API and static files go out compressed when
the browser accepts it; the login form, the studio and every page a logged-in producer sees go out as they are
(their CSRF tokens must not be compressed beside reflected text); audio is never recompressed."""

from __future__ import annotations

import gzip
import json

import brotli

from web_fixtures import make_app, sample  # noqa: F401 - the module-scoped archive fixture

from test_studio_pages import archive, csrf_from, log_in  # noqa: F401 - its archive fixture has producers

GZIP = {"Accept-Encoding": "gzip"}


def test_public_pages_api_and_static_files_are_compressed(sample):  # noqa: F811
    client = make_app(sample[0]).test_client()
    for url in ("/", "/episodes", "/search?q=testing", "/api/episodes"):
        response = client.get(url, headers=GZIP)
        assert response.status_code == 200, url
        assert response.headers.get("Content-Encoding") == "gzip", url
        assert "Accept-Encoding" in response.headers.get("Vary", ""), url
        body = gzip.decompress(response.get_data())
        plain = client.get(url).get_data()  # without Accept-Encoding: as it was
        assert body == plain and len(response.get_data()) < len(plain), url
    assert json.loads(gzip.decompress(client.get("/api/episodes", headers=GZIP).get_data()))
    # files are streamed: brotli, which Flask-Compress streams (and every browser accepts)
    css = client.get("/static/site.css", headers={"Accept-Encoding": "gzip, deflate, br"})
    assert css.headers.get("Content-Encoding") == "br"
    assert brotli.decompress(css.get_data()) == client.get("/static/site.css").get_data()


def test_pages_with_secrets_are_not_compressed(archive):  # noqa: F811
    client = make_app(archive[0]).test_client()
    login = client.get("/login", headers=GZIP)
    assert login.status_code == 200 and "Content-Encoding" not in login.headers
    assert csrf_from(login.get_data(as_text=True))
    log_in(client)
    for url in ("/studio", "/", f"/episodes/{archive[1]['ep70']}"):
        response = client.get(url, headers=GZIP)
        assert response.status_code == 200, url
        assert "Content-Encoding" not in response.headers, url
