"""Screenshots of the episode page and the search page for docs/ (episode.png, episode-phone.png, search.png),
and of the studio (studio.png: a producer's list of episodes; studio-editor.png: the episode editor;
studio-phone.png: the editor at 390 px).

The archive is a realistic one made by the pipeline: the TWIML and DataTalks.Club corpora (bench/web_load.py's
archive, built if missing) plus the Datacast feed, whose episode 70 is 11 minutes of real audio transcribed
with Whisper tiny.en, with its notes' key takeaways and its guest. The site runs on loopback and headless
chromium photographs it.

The studio's pictures need no corpus: `--only studio` ingests Datacast's short feed (a 53-second clip, transcribed
with Whisper tiny.en), adds a hosted show with episodes in every state, and photographs a producer's studio.

The episode's and search's pictures alone: `--only episode` photographs Datacast episode 70 from
bench/out/datacast.db (the real pipeline's archive of the Datacast feed, bench/datacast_sections.py builds it once:
Whisper tiny.en, the notes' eleven takeaways, chapters) at 1280 px (episode.png; episode-moment.png: the transcript
at a moment, the sentence being spoken highlighted) and 390 px (episode-phone.png: the top of the page;
episode-phone-transcript.png: the page opened from a search hit's link), and a keyword search of it (search.png).

Run:  .venv/bin/python bench/screenshots.py [--db bench/out/web_load.db] [--embedder NAME] [--out docs]
      .venv/bin/python bench/screenshots.py --only studio [--out docs]
      .venv/bin/python bench/screenshots.py --only episode [--out docs]
"""

from __future__ import annotations

import argparse
import functools
import http.server
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import copy_archive  # noqa: E402
from archive.db import open_db  # noqa: E402
from fake_embedder import bench_embedder  # noqa: E402

DATACAST = ROOT.parent / "shared" / "fixtures" / "datacast"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic", "--autoplay-policy=no-user-gesture-required",
                 "--hide-scrollbars"]
SEARCH_QUERY = "testing machine learning models"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(directory: Path):
    handler = functools.partial(QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", server


def add_datacast(db_path: Path, media_dir: Path, embedder_name: str | None) -> int:
    """Ingest the Datacast feed (audio downloaded and transcribed with Whisper), index it with the archive's
    embedder; returns episode 70's id."""
    from ingest.index_run import build_index
    from ingest.pipeline import IngestOptions, ingest_sources

    base, server = serve(DATACAST)
    db = open_db(db_path)
    report = ingest_sources(db, [f"{base}/feed.xml"], IngestOptions(media_dir=media_dir, index=False, progress=True))
    index = build_index(db, embedder=bench_embedder(embedder_name), progress=True)
    for failure in report.failures + list(index.failures):
        print("ingest failure:", failure)
    episode_id = next(db.query("SELECT id FROM episodes WHERE guid NOT LIKE '%short%' AND show_id = "
                               "(SELECT id FROM shows WHERE title = 'Datacast') ORDER BY id LIMIT 1"))["id"]
    db.conn.close()
    server.shutdown()
    return episode_id


def start_site(db_path: Path, embedder_name: str | None):
    from werkzeug.serving import make_server

    from archive.web import create_app

    app = create_app({"DATABASE": str(db_path), "EMBEDDER": bench_embedder(embedder_name)})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", server


MOMENT = 95  # seconds: the moment the episode's pictures open at


AUDIO_READY = "document.getElementById('player-audio').readyState >= 1"
SENTENCE_SHOWN = "document.querySelector('#transcript .s.is-current') !== null"


def paused_shot(page, url: str, ready: str, then: str | None, wait: float, path: Path) -> None:
    """Open `url`, wait until `ready` holds, pause the player (then run the script `then`), give the page `wait`
    seconds to settle and photograph it."""
    page.goto(url)
    page.wait_for_function(ready)
    page.evaluate("document.getElementById('player-audio').pause()" + (f"; {then}" if then else ""))
    time.sleep(wait)
    page.screenshot(path=str(path))
    print("wrote", path)


def photograph(base: str, episode_id: int, out: Path, mode: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1100})
        phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
        top, moment = f"{base}/episodes/{episode_id}?t={MOMENT}", f"{base}/episodes/{episode_id}?t={MOMENT}#t{MOMENT}"
        for shot, url, ready, then, wait, path in (
            (page, top, AUDIO_READY, "window.scrollTo(0, 0)", 0.5, "episode.png"),
            (page, moment, SENTENCE_SHOWN, None, 0.8, "episode-moment.png"),  # a search hit's link: smooth scroll
            (phone, top, AUDIO_READY, None, 0.5, "episode-phone.png"),
            (phone, moment, SENTENCE_SHOWN, None, 0.8, "episode-phone-transcript.png"),
        ):
            paused_shot(shot, url, ready, then, wait, out / path)

        page.goto(f"{base}/search?q={SEARCH_QUERY.replace(' ', '+')}&mode={mode}")
        page.screenshot(path=str(out / "search.png"))
        print("wrote", out / "search.png")
        browser.close()


STUDIO_PRODUCER = ("maya", "a studio screenshot password")
EDITOR_NOTES = """In this episode Priya walks us through **a hundred hiring interviews** for data roles: what the
strongest candidates did differently, and what she would change about her own process.

## Mentioned
- [The interview rubric](https://example.com/rubric) she shares with every panel
- Her talk on *structured interviews*

> Ask for the work, not the résumé.
"""


def add_studio_content(db_path: Path) -> dict:
    """A producer granted Datacast and a hosted show whose episodes are in every state: a draft being written
    (the editor's picture), one scheduled, one published and waiting for its transcript, one whose audio failed;
    and a producer's edit of a Datacast episode. Returns the ids and the producer's login."""
    import datetime as dt

    from archive import producers, stages, studio

    db = open_db(db_path)
    datacast = next(db.query("SELECT id FROM shows WHERE title = 'Datacast'"))["id"]
    show = studio.create_show(db, "Data Careers Live", "Conversations about building a career in data.",
                              language="en", author="Maya Chen")
    producer = producers.add_producer(db, *STUDIO_PRODUCER, shows=[show, datacast])
    now = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0)
    published = studio.create_episode(db, show, {
        "title": "Shipping models on Fridays", "episode_number": 1, "season": 1, "guests": ["Tomás Okafor"],
        "audio_url": "https://cdn.example.com/data-careers/001.mp3",
        "notes_markdown": "Why the release day matters less than the rollback plan."}, producer)
    studio.publish(db, published, producer)
    failed = studio.create_episode(db, show, {
        "title": "Data contracts in practice", "episode_number": 2, "season": 1,
        "audio_url": "https://cdn.example.com/data-careers/002.mp3"}, producer)
    studio.publish(db, failed, producer)
    stages.mark_failed(db, failed, "audio", "HTTP 404 from cdn.example.com: the file is not there")
    scheduled = studio.create_episode(db, show, {"title": "Feature stores, revisited", "episode_number": 3,
                                                 "season": 1, "guests": ["Lena Fischer"]}, producer)
    studio.publish(db, scheduled, producer, at=now + dt.timedelta(days=3, hours=2))
    draft = studio.create_episode(db, show, {
        "title": "What we learned from 100 interviews", "episode_number": 4, "season": 1,
        "guests": ["Priya Raman"], "audio_url": "https://cdn.example.com/data-careers/004.mp3",
        "notes_markdown": EDITOR_NOTES,
        "takeaways": [
            {"title": "Ask for the work", "text": "A take-home that mirrors the job beats any puzzle.", "start": "4:10"},
            {"title": "Calibrate the panel", "text": "Every interviewer scores the same rubric, before they talk.",
             "start": "17:45"},
            {"title": "Say no quickly", "text": "Candidates remember a fast, kind rejection.", "start": None}],
        "chapters": [{"title": "Introductions", "start": 0}, {"title": "The rubric", "start": "12:30"},
                     {"title": "Questions from listeners", "start": "38:05"}]}, producer)
    episode = next(db.query("SELECT id, title FROM episodes WHERE show_id = ? ORDER BY id LIMIT 1", [datacast]))
    studio.update_episode(db, episode["id"], {"title": episode["title"].split(": ", 1)[-1]}, producer)
    db.conn.close()
    return {"show": show, "draft": draft, "datacast": datacast}


def log_in(page, base: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#login-username", STUDIO_PRODUCER[0])
    page.fill("#login-password", STUDIO_PRODUCER[1])
    page.click(".login__form button[type=submit]")
    page.wait_for_url(f"{base}/studio")


def photograph_studio(base: str, ids: dict, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        log_in(page, base)
        page.goto(f"{base}/studio")
        time.sleep(0.3)
        page.screenshot(path=str(out / "studio.png"))
        print("wrote", out / "studio.png")
        page.set_viewport_size({"width": 1280, "height": 1100})  # the whole editor: full_page below
        page.goto(f"{base}/studio/episodes/{ids['draft']}")
        page.locator("#f-notes").press("Control+End")  # the live preview follows the typing
        page.keyboard.type("\n\nRecorded in *Lisbon*.")
        page.locator("#notes-preview em", has_text="Lisbon").wait_for()
        page.evaluate("window.scrollTo(0, 0)")
        time.sleep(0.3)
        page.screenshot(path=str(out / "studio-editor.png"), full_page=True)
        print("wrote", out / "studio-editor.png")
        phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
        log_in(phone, base)
        phone.goto(f"{base}/studio/episodes/{ids['draft']}")
        time.sleep(0.3)
        phone.screenshot(path=str(out / "studio-phone.png"))
        print("wrote", out / "studio-phone.png")
        browser.close()


def studio_only(out: Path, embedder_name: str | None) -> None:
    """The studio's pictures from a small archive: Datacast's short feed and a hosted show."""
    from ingest.index_run import build_index
    from ingest.pipeline import IngestOptions, ingest_sources

    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "archive.db"
        base, server = serve(DATACAST)
        db = open_db(db_path)
        report = ingest_sources(db, [f"{base}/feed-short.xml"],
                                IngestOptions(media_dir=Path(tmp) / "media", index=False, progress=True))
        build_index(db, embedder=bench_embedder(embedder_name or "fake"))
        for failure in report.failures:
            print("ingest failure:", failure)
        db.conn.close()
        server.shutdown()
        ids = add_studio_content(db_path)
        site, site_server = start_site(db_path, embedder_name or "fake")
        out.mkdir(parents=True, exist_ok=True)
        photograph_studio(site, ids, out)
        site_server.shutdown()


@contextmanager
def datacast_site():
    """Datacast Episode 70's archive (bench/out/datacast.db, built first if missing), copied into a temporary
    folder (the original is never changed) and served on loopback with the fake embedder: yields (base URL,
    episode id)."""
    from datacast_sections import ARCHIVE, build

    if not ARCHIVE.exists():
        build().conn.close()
    with tempfile.TemporaryDirectory() as tmp:
        db_path = copy_archive(ARCHIVE, Path(tmp))
        db = open_db(db_path)
        episode_id = next(db.query("SELECT id FROM episodes ORDER BY id LIMIT 1"))["id"]
        db.conn.close()
        base, server = start_site(db_path, "fake")
        try:
            yield base, episode_id
        finally:
            server.shutdown()


def episode_only(out: Path) -> None:
    """The episode's and search's pictures from bench/out/datacast.db."""
    with datacast_site() as (base, episode_id):
        out.mkdir(parents=True, exist_ok=True)
        photograph(base, episode_id, out, "keyword")  # the fake embedder's vectors mean nothing: keyword search


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=ROOT / "bench" / "out" / "web_load.db",
                        help="archive with the corpora (built by bench/web_load.py's build step if missing)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument("--embedder", default=None,
                        help="the archive's embedding model ('fake' for bench/web_load.py --embedder fake's archive)")
    parser.add_argument("--only", choices=("all", "studio", "episode"), default="all",
                        help="studio: only the studio's pictures (a small archive of their own, no corpus needed); "
                             "episode: only the episode's and search's (Datacast episode 70, bench/out/datacast.db)")
    args = parser.parse_args()
    if args.only == "studio":
        studio_only(args.out, args.embedder)
        return
    if args.only == "episode":
        episode_only(args.out)
        return
    if not args.db.exists():
        from web_load import build_archive

        build_archive(args.db, args.embedder)
    with tempfile.TemporaryDirectory() as tmp:
        db_path = copy_archive(args.db, Path(tmp))
        episode_id = add_datacast(db_path, Path(tmp) / "media", args.embedder)
        base, server = start_site(db_path, args.embedder)
        args.out.mkdir(parents=True, exist_ok=True)
        # The test embedder's vectors mean nothing: photograph keyword search then, not a meaningless fusion.
        photograph(base, episode_id, args.out, "keyword" if args.embedder == "fake" else "hybrid")
        ids = add_studio_content(db_path)
        photograph_studio(base, ids, args.out)
        server.shutdown()


if __name__ == "__main__":
    main()
