"""Artwork (ingest/artwork.py): fetched under the trust rules, re-encoded within bounds, stored once per URL, and
never a reason for an ingest to fail."""

from __future__ import annotations

import functools
import http.server
import io
import threading
from pathlib import Path

import pytest
from PIL import Image

from archive.db import open_db
from archive.errors import ArtworkError
from ingest import trust
from ingest.artwork import ArtworkOptions, prepare_artwork, store_artwork
from ingest.http import make_client
from ingest.pipeline import IngestOptions, ingest_sources


def image_bytes(size=(64, 48), mode="RGB", fmt="PNG", colour=(10, 120, 200), **save) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, colour).save(buffer, format=fmt, **save)
    return buffer.getvalue()


# ---- the image ---------------------------------------------------------------------------------------------------

def test_a_large_photo_is_fitted_and_re_encoded_without_its_metadata():
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0)}  # GPS
    source = image_bytes((1800, 1200), fmt="JPEG", exif=exif.tobytes())
    prepared = prepare_artwork(source)
    assert (prepared.width, prepared.height) == (600, 400) and prepared.content_type == "image/jpeg"
    assert b"SecretCam" not in prepared.data and prepared.data != source
    assert not Image.open(io.BytesIO(prepared.data)).getexif()


def test_transparency_is_kept_as_png_and_an_animation_keeps_its_first_frame():
    assert prepare_artwork(image_bytes(mode="RGBA", colour=(0, 0, 0, 0))).content_type == "image/png"
    frames = [Image.new("RGB", (30, 30), colour) for colour in ((255, 0, 0), (0, 255, 0))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    prepared = prepare_artwork(buffer.getvalue())
    assert Image.open(io.BytesIO(prepared.data)).convert("RGB").getpixel((15, 15))[0] > 200  # red, the first


@pytest.mark.parametrize("data, reason", [
    (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "not a JPEG"),
    (b"<html>not found</html>", "not a JPEG"),
    (image_bytes(fmt="JPEG")[:200], "could not be decoded"),
    (image_bytes(fmt="BMP"), "not a JPEG"),
])
def test_anything_but_a_whole_jpeg_png_gif_or_webp_is_refused(data, reason):
    with pytest.raises(ArtworkError, match=reason):
        prepare_artwork(data)


def test_a_decompression_bomb_is_refused_before_it_is_decoded():
    bomb = image_bytes((6000, 6000), mode="1", colour=0)  # a few KB that would decode to 36 million pixels
    assert len(bomb) < 100_000
    with pytest.raises(ArtworkError, match="over the limit"):
        prepare_artwork(bomb, ArtworkOptions(max_pixels=10_000_000))


# ---- the stage, over HTTP and local files ------------------------------------------------------------------------

class CountingHandler(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def do_GET(self):
        self.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def image_server(tmp_path):
    folder = tmp_path / "site"
    folder.mkdir()
    requests: list[str] = []
    handler = functools.partial(type("Handler", (CountingHandler,), {"requests": requests}), directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", folder, requests
    server.shutdown()
    server.server_close()


def feed_xml(show_image: str, episode_images: list[str]) -> str:
    items = "".join(
        f"<item><title>Episode {n}</title><guid>ep-{n}</guid><itunes:image href=\"{image}\"/></item>"
        for n, image in enumerate(episode_images, start=1))
    return ('<?xml version="1.0"?><rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">'
            f"<channel><title>Art show</title><itunes:image href=\"{show_image}\"/>{items}</channel></rss>")


def artwork_rows(db) -> dict[str, dict]:
    return {row["url"]: row for row in db.query("SELECT url, sha256, content_type, error, retry, attempts FROM artwork")}


def test_ingest_stores_each_image_once_and_records_why_others_are_missing(image_server, tmp_path):
    base, folder, requests = image_server
    (folder / "show.jpg").write_bytes(image_bytes((1400, 1400), fmt="JPEG"))
    (folder / "ep.png").write_bytes(image_bytes())
    (folder / "page.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    unreachable = "http://127.0.0.1:9"  # nothing listens on the discard port
    images = [f"{base}/ep.png", f"{base}/show.jpg", f"{base}/missing.jpg", f"{base}/page.svg",
              f"{unreachable}/a.jpg", f"{unreachable}/b.jpg"]
    (folder / "feed.xml").write_text(feed_xml(f"{base}/show.jpg", images))
    db = open_db(tmp_path / "archive.db")
    options = IngestOptions(index=False, media_dir=tmp_path / "media")

    report = ingest_sources(db, [f"{base}/feed.xml"], options)
    assert report.ok, report.failures  # artwork never fails an ingest
    assert (report.artwork_stored, report.artwork_failed) == (2, 3)
    rows = artwork_rows(db)
    assert rows[f"{base}/show.jpg"]["content_type"] == "image/jpeg" and rows[f"{base}/ep.png"]["sha256"]
    assert "HTTP 404" in rows[f"{base}/missing.jpg"]["error"] and rows[f"{base}/missing.jpg"]["retry"] == 0
    assert "not a JPEG" in rows[f"{base}/page.svg"]["error"] and rows[f"{base}/page.svg"]["retry"] == 0
    assert "could not reach" in rows[f"{unreachable}/a.jpg"]["error"] and rows[f"{unreachable}/a.jpg"]["retry"] == 1
    assert f"{unreachable}/b.jpg" not in rows, "an unreachable host is not asked again in the same run"
    assert requests.count("/show.jpg") == 1, "the show's image, shared by an episode, is fetched once"

    requests.clear()
    again = ingest_sources(db, [f"{base}/feed.xml"], options)
    assert again.ok and again.artwork_stored == 0
    assert [path for path in requests if path != "/feed.xml"] == [], "stored and refused images are not fetched"
    assert artwork_rows(db)[f"{unreachable}/a.jpg"]["attempts"] == 2, "a passing failure is tried on the next run"


def test_a_public_feed_cannot_lead_the_artwork_fetch_to_a_private_address(tmp_path):
    db = open_db(tmp_path / "archive.db")
    show_id = db["shows"].insert({"feed_url": "https://feeds.example.com/feed.xml", "title": "Public",
                                  "image": "http://10.1.2.3/art.jpg"}).last_pk

    def resolver(host, port):
        return ["93.184.216.34"] if host == "feeds.example.com" else trust.system_resolver(host, port)

    policy = trust.policy_for_source("https://feeds.example.com/feed.xml", resolver=resolver)
    with make_client(resolver=resolver) as client:
        report = store_artwork(db, [show_id], client, lambda _: policy)
    row = artwork_rows(db)["http://10.1.2.3/art.jpg"]
    assert report.failed == 1 and "a private address" in row["error"] and row["retry"] == 0


def test_a_local_feed_may_name_images_inside_its_folder_only(tmp_path):
    folder = tmp_path / "feed"
    folder.mkdir()
    (folder / "cover.png").write_bytes(image_bytes())
    (tmp_path / "outside.png").write_bytes(image_bytes())
    (folder / "feed.xml").write_text(feed_xml("cover.png", ["../outside.png", "/etc/hostname"]))
    db = open_db(tmp_path / "archive.db")
    report = ingest_sources(db, [str(folder / "feed.xml")], IngestOptions(index=False, media_dir=tmp_path / "m"))
    assert report.ok and report.artwork_stored == 1
    rows = artwork_rows(db)
    assert rows[(folder / "cover.png").as_uri()]["sha256"]
    assert "outside the feed's folder" in rows[(tmp_path / "outside.png").as_uri()]["error"]
    assert "outside the feed's folder" in rows[Path("/etc/hostname").as_uri()]["error"]


def test_metadata_only_fetches_no_artwork(image_server, tmp_path):
    base, folder, requests = image_server
    (folder / "feed.xml").write_text(feed_xml(f"{base}/show.jpg", []))
    db = open_db(tmp_path / "archive.db")
    ingest_sources(db, [f"{base}/feed.xml"], IngestOptions(metadata_only=True, media_dir=tmp_path / "m"))
    assert requests == ["/feed.xml"] and not artwork_rows(db)


def test_an_image_over_the_byte_cap_is_refused_without_reading_it_all(image_server, tmp_path):
    base, folder, _ = image_server
    (folder / "huge.png").write_bytes(image_bytes((800, 800), mode="RGB", colour=(1, 2, 3)) + b"\0" * 200_000)
    db = open_db(tmp_path / "archive.db")
    show_id = db["shows"].insert({"feed_url": f"{base}/feed.xml", "title": "Big", "image": f"{base}/huge.png"}).last_pk
    policy = trust.policy_for_source(f"{base}/feed.xml")
    with make_client() as client:
        report = store_artwork(db, [show_id], client, lambda _: policy, ArtworkOptions(max_bytes=100_000))
    row = artwork_rows(db)[f"{base}/huge.png"]
    assert report.failed == 1 and "over the limit" in row["error"] and row["retry"] == 0 and row["sha256"] is None


def test_a_shows_artwork_gets_a_time_budget_a_run_and_the_rest_waits(image_server, tmp_path):
    base, folder, requests = image_server
    for n in range(3):
        (folder / f"{n}.png").write_bytes(image_bytes(colour=(n, n, n)))
    db = open_db(tmp_path / "archive.db")
    show_id = db["shows"].insert({"feed_url": f"{base}/feed.xml", "title": "Many", "image": f"{base}/0.png"}).last_pk
    db["episodes"].insert_all([{"show_id": show_id, "guid": f"g{n}", "image": f"{base}/{n}.png"} for n in (1, 2)])
    policy = trust.policy_for_source(f"{base}/feed.xml")
    with make_client() as client:
        first = store_artwork(db, [show_id], client, lambda _: policy, ArtworkOptions(seconds_per_show=0.0001))
        assert (first.stored, first.deferred) == (1, 2), "the first image spends the budget; the rest wait"
        second = store_artwork(db, [show_id], client, lambda _: policy)
    assert (second.stored, second.deferred) == (2, 0) and len(requests) == 3
