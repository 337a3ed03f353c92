"""Producers' audio uploads (archive/uploads.py) and the studio API's `PUT /api/studio/episodes/<id>/audio`:
stored under a random name in the media folder's uploads/, sniffed as audio, cut off at the size cap with nothing
left behind; a request over STUDIO_MAX_UPLOAD_MB is refused before it is read."""

import hashlib
import io
import mimetypes
import re

import pytest

import archive.media_types
import ingest.audio
from archive import producers, studio
from archive.db import open_db
from archive.errors import UploadError, UploadTooLargeError
from archive.uploads import EXTENSIONS, clean_file_name, save_upload
from web_fixtures import make_app

MB = 1024 * 1024
MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 40


class Source(io.RawIOBase):
    """A request body: `size` bytes starting with `head` (endless when size is None), read in pieces of at most
    `piece` bytes. Counts what was read; `on_read` is called before each read."""

    def __init__(self, head: bytes = MP3, size: int | None = None, piece: int = 64 * 1024, on_read=None):
        self.head, self.size, self.piece, self.on_read = head, size, piece, on_read
        self.position = 0

    def readable(self):
        return True

    def readinto(self, buffer):
        if self.on_read:
            self.on_read(self)
        remaining = len(buffer) if self.size is None else min(len(buffer), self.size - self.position)
        count = max(0, min(remaining, self.piece))
        data = bytes(count)
        if self.position < len(self.head):
            start = self.head[self.position:self.position + count]
            data = start + data[len(start):]
        buffer[:count] = data
        self.position += count
        return count


def files_in(folder):
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# -- the library --------------------------------------------------------------------------------------------

def test_an_upload_is_stored_under_a_random_name(tmp_path):
    stored = save_upload(io.BytesIO(MP3), tmp_path / "media", 10 * MB, declared_name="../../etc/passwd")
    assert stored.path.parent == (tmp_path / "media" / "uploads").resolve()
    assert re.fullmatch(r"[0-9a-f]{32}\.mp3", stored.path.name)
    assert stored.path.read_bytes() == MP3 and stored.bytes == len(MP3)
    assert stored.sha256 == hashlib.sha256(MP3).hexdigest() and stored.content_type == "audio/mpeg"
    assert stored.declared_name == "passwd"
    again = save_upload(io.BytesIO(MP3), tmp_path / "media", 10 * MB)
    assert again.path != stored.path and again.declared_name is None
    assert files_in(tmp_path / "media") == sorted([stored.path.name, again.path.name])


@pytest.mark.parametrize("head,kind", [
    (b"OggS\x00\x02", "audio/ogg"), (b"fLaC\x00\x00\x00\x22", "audio/flac"),
    (b"RIFF\x24\x08\x00\x00WAVEfmt ", "audio/wav"), (b"FORM\x00\x00\x00\x00AIFF", "audio/aiff"),
    (b"\x00\x00\x00\x20ftypM4A ", "audio/mp4"), (b"\x1a\x45\xdf\xa3", "audio/webm"), (b"#!AMR\n", "audio/amr"),
    (b"\xff\xf1\x50\x80", "audio/aac"), (b"\xff\xfb\x90\x64", "audio/mpeg"),
])
def test_the_extension_comes_from_the_sniffed_type(tmp_path, head, kind):
    stored = save_upload(io.BytesIO(head + bytes(200)), tmp_path, MB)
    assert stored.content_type == kind and stored.path.suffix == EXTENSIONS[kind]
    guessed = mimetypes.guess_type(stored.path.name)[0] or ""
    assert guessed.startswith(("audio/", "video/")), guessed  # what the studio stores as the enclosure type


@pytest.mark.parametrize("data", [
    b"<!DOCTYPE html><script>alert(1)</script>" + bytes(100),
    b"\x89PNG\r\n\x1a\n" + bytes(100),
    b"PK\x03\x04" + bytes(100),
    b"#!/bin/sh\nrm -rf /\n",
    b"ID",  # too short to be anything
    b"",
])
def test_what_is_not_audio_is_refused_and_nothing_is_left(tmp_path, data):
    with pytest.raises(UploadError, match="not audio|empty"):
        save_upload(io.BytesIO(data), tmp_path / "media", MB)
    assert files_in(tmp_path / "media") == []


def test_not_audio_is_refused_before_it_is_all_read(tmp_path):
    source = Source(head=b"<html>" + bytes(100))
    with pytest.raises(UploadError, match="not audio"):
        save_upload(source, tmp_path, 100 * MB)
    assert source.position <= 64 * 1024  # the first piece only
    with pytest.raises(UploadError, match="must be audio, not text/html"):
        save_upload(source := Source(), tmp_path, MB, declared_type="text/html")
    assert source.position == 0 and files_in(tmp_path) == []


def test_an_endless_upload_is_cut_at_the_cap_and_removed(tmp_path):
    cap, largest_part = 3 * MB, []

    def watch(_):
        largest_part.append(max([p.stat().st_size for p in tmp_path.glob("uploads/*.part")], default=-1))

    source = Source(size=None, on_read=watch)
    with pytest.raises(UploadTooLargeError, match="over the limit of 3 MB"):
        save_upload(source, tmp_path, cap)
    assert source.position == cap + 1  # read one byte past the cap, no more
    assert 0 < max(largest_part) <= cap  # the part file existed and never grew past the cap
    assert files_in(tmp_path) == []


def test_an_upload_of_exactly_the_cap_is_kept(tmp_path):
    stored = save_upload(Source(size=MB), tmp_path, MB)
    assert stored.bytes == MB and stored.path.stat().st_size == MB


def test_short_reads_are_not_the_end(tmp_path):
    stored = save_upload(Source(size=5000, piece=7), tmp_path, MB)
    assert stored.bytes == 5000 and stored.content_type == "audio/mpeg"
    assert stored.path.read_bytes()[:len(MP3)] == MP3[:5000]


class Broken(Source):
    def __init__(self, error):
        super().__init__(size=None)
        self.error = error

    def readinto(self, buffer):
        if self.position > MB:
            raise self.error
        return super().readinto(buffer)


def test_a_client_that_goes_away_leaves_nothing(tmp_path):
    from werkzeug.exceptions import ClientDisconnected

    with pytest.raises(ClientDisconnected):
        save_upload(Broken(ClientDisconnected()), tmp_path, 10 * MB)
    with pytest.raises(UploadError, match="could not store the upload"):
        save_upload(Broken(OSError(5, "Input/output error")), tmp_path, 10 * MB)
    assert files_in(tmp_path) == []


def test_a_cap_of_zero_refuses_every_upload(tmp_path):
    with pytest.raises(UploadError, match="switched off"):
        save_upload(io.BytesIO(MP3), tmp_path, 0)


@pytest.mark.parametrize("name,cleaned", [
    ("../../etc/passwd", "passwd"), ("C:\\Windows\\evil.mp3", "evil.mp3"), ("\x00\u202eevil\u202c.mp3", "evil.mp3"),
    ("..", None), ("dir/", None), ("", None), (None, None), ("a" * 1000, "a" * 255),
    ("Épisode 1.mp3", "Épisode 1.mp3"), ("bad\ud800.mp3", "bad?.mp3"),
])
def test_a_declared_file_name_is_metadata_only(name, cleaned):
    assert clean_file_name(name) == cleaned


def test_ingest_audio_still_exports_the_media_type_functions():
    for name in ("media_type", "sniff_audio", "accepted_audio_type", "is_audio_type", "SNIFF_BYTES",
                 "GENERIC_TYPES", "ALLOWED_TYPES", "AUDIO_APPLICATION_TYPES"):
        assert getattr(ingest.audio, name) is getattr(archive.media_types, name), name


# -- the setting ------------------------------------------------------------------------------------------

def test_max_content_length_comes_from_studio_max_upload_mb(tmp_path, monkeypatch):
    from archive.web import create_app

    database = str(tmp_path / "a.db")
    assert create_app({"DATABASE": database}).config["MAX_CONTENT_LENGTH"] == 2049 * MB
    assert create_app({"DATABASE": database, "STUDIO_MAX_UPLOAD_MB": 1}).config["MAX_CONTENT_LENGTH"] == 2 * MB
    monkeypatch.setenv("PODARCHIVE_STUDIO_MAX_UPLOAD_MB", "5")
    assert create_app({"DATABASE": database}).config["MAX_CONTENT_LENGTH"] == 6 * MB
    assert create_app({"DATABASE": database, "MAX_CONTENT_LENGTH": 123}).config["MAX_CONTENT_LENGTH"] == 123


# -- PUT /api/studio/episodes/<id>/audio ------------------------------------------------------------------

@pytest.fixture
def site(tmp_path):
    """An app whose uploads are capped at 1 MB; a draft of ann's show, and bob's token for another show."""
    path = tmp_path / "archive.db"
    db = open_db(path)
    show, other = studio.create_show(db, "Island Radio"), studio.create_show(db, "Other Show")
    episode = studio.create_episode(db, show, {"title": "A draft"}, None)
    producers.add_producer(db, "ann", "ann password", shows=[show])
    producers.add_producer(db, "bob", "bob password", shows=[other])
    tokens = {name: producers.create_token(db, name)[1] for name in ("ann", "bob")}
    db.conn.close()
    app = make_app(path, STUDIO_MAX_UPLOAD_MB=1)
    return app.test_client(), f"/api/studio/episodes/{episode}", tokens, tmp_path / "media"


def put(client, url, token, source=None, content_length=None, content_type="audio/mpeg", chunked=False):
    """PUT `source` as the body of `<url>/audio`, as a server hands it over: with CONTENT_LENGTH, or chunked
    (no length; the server marks the stream as ending by itself with wsgi.input_terminated)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if content_type:
        headers["Content-Type"] = content_type
    environ = {"wsgi.input": source if source is not None else io.BytesIO()}
    if content_length is not None:
        environ["CONTENT_LENGTH"] = str(content_length)
    if chunked:
        environ["wsgi.input_terminated"] = True
    return client.put(f"{url}/audio", headers=headers, environ_overrides=environ)


def test_an_upload_becomes_the_episodes_audio(site):
    client, url, tokens, media = site
    response = put(client, url, tokens["ann"], io.BytesIO(MP3), len(MP3))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert re.fullmatch(r"uploads/[0-9a-f]{32}\.mp3", body["audio_url"]) and body["sources"]["audio_url"] == "producer"
    assert body["upload"]["bytes"] == len(MP3) and body["upload"]["content_type"] == "audio/mpeg"
    assert (media / body["audio_url"]).read_bytes() == MP3
    assert client.get(url, headers={"Authorization": f"Bearer {tokens['ann']}"}).get_json()["audio_url"] == \
        body["audio_url"]


def test_a_request_over_the_cap_is_413_before_a_byte_is_read(site):
    client, url, tokens, media = site
    source = Source(size=5 * MB)
    response = put(client, url, tokens["ann"], source, 5 * MB)
    assert response.status_code == 413 and response.get_json() == {
        "error": "The upload is 5 MB; at most 1 MB (STUDIO_MAX_UPLOAD_MB)."}
    assert source.position == 0 and files_in(media) == []


def test_a_chunked_upload_over_the_cap_is_cut_off_and_removed(site):
    """No Content-Length (Transfer-Encoding: chunked, which the server marks with wsgi.input_terminated)."""
    client, url, tokens, media = site
    largest_part = []

    def watch(_):
        largest_part.append(max([p.stat().st_size for p in media.glob("uploads/*.part")], default=-1))

    source = Source(size=10 * MB, on_read=watch)
    response = put(client, url, tokens["ann"], source, chunked=True)
    assert response.status_code == 413 and response.get_json() == {"error": "The upload is over the limit of 1 MB."}
    assert source.position <= MB + 1 and 0 < max(largest_part) <= MB
    assert files_in(media) == []
    assert client.get(url, headers={"Authorization": f"Bearer {tokens['ann']}"}).get_json()["audio_url"] is None


@pytest.mark.parametrize("data,content_type,status,message", [
    (b"<html><script>alert(1)</script></html>" + bytes(100), "audio/mpeg", 422, "audio: the upload is not audio"),
    (MP3, "text/html", 415, "Send audio (Content-Type audio/*), not text/html."),
    (MP3, "audio/mpeg,text/html", 415, "Send audio"),
    (b"", "audio/mpeg", 422, "audio: the upload is empty"),
])
def test_what_is_not_audio_is_refused(site, data, content_type, status, message):
    client, url, tokens, media = site
    response = put(client, url, tokens["ann"], io.BytesIO(data), len(data), content_type=content_type)
    assert response.status_code == status and response.get_json()["error"].startswith(message), response.get_json()
    assert files_in(media) == []


def test_a_body_without_length_or_chunks_is_empty(site):
    client, url, tokens, media = site
    response = put(client, url, tokens["ann"], io.BytesIO(MP3))  # the server cannot know where it ends
    assert response.status_code == 422 and "empty" in response.get_json()["error"]


def test_no_token_or_another_shows_token_reads_nothing(site):
    client, url, tokens, media = site
    for token, status in ((None, 401), ("pa_" + "A" * 43, 401), (tokens["bob"], 403)):
        source = Source(size=MB // 2)
        response = put(client, url, token, source, MB // 2)
        assert response.status_code == status and set(response.get_json()) == {"error"}
        assert source.position == 0
    assert files_in(media) == []
