"""Screenshots of the episode page and the search page for docs/ (episode.png, episode-phone.png, search.png).

The archive is a realistic one made by the pipeline: the TWIML and DataTalks.Club corpora (bench/web_load.py's
archive, built if missing) plus the Datacast feed, whose episode 70 is 11 minutes of real audio transcribed
with Whisper tiny.en, with its notes' key takeaways and its guest. The site runs on loopback and headless
chromium photographs it.

Run:  .venv/bin/python bench/screenshots.py [--db bench/out/web_load.db] [--embedder NAME] [--out docs]
"""

from __future__ import annotations

import argparse
import functools
import http.server
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from archive.db import open_db  # noqa: E402

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
    from archive.web.searching import make_embedder
    from ingest.index import build_index
    from ingest.pipeline import IngestOptions, ingest_sources

    base, server = serve(DATACAST)
    db = open_db(db_path)
    report = ingest_sources(db, [f"{base}/feed.xml"], IngestOptions(media_dir=media_dir, index=False, progress=True))
    index = build_index(db, embedder=make_embedder(embedder_name), progress=True)
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

    app = create_app({"DATABASE": str(db_path), "EMBEDDER": embedder_name})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", server


def transcript_anchor(page) -> int:
    """The whole second the transcript line spoken at 95 s starts at (the page's own #t anchor)."""
    return int(page.evaluate(
        "Math.floor(parseFloat(document.querySelector('#transcript .line.is-current').dataset.start))"))


def photograph(base: str, episode_id: int, out: Path, mode: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1100})
        page.goto(f"{base}/episodes/{episode_id}?t=95")
        page.wait_for_function("document.getElementById('player-audio').readyState >= 1")
        page.evaluate("document.getElementById('player-audio').pause(); window.scrollTo(0, 0)")
        time.sleep(0.5)
        page.screenshot(path=str(out / "episode.png"))
        print("wrote", out / "episode.png")
        page.goto(f"{base}/episodes/{episode_id}?t=95#t{transcript_anchor(page)}")
        page.wait_for_function("document.querySelector('#transcript .line.is-current') !== null")
        page.evaluate("document.getElementById('player-audio').pause();"
                      "document.querySelector('#transcript .line.is-current').scrollIntoView({block: 'center'})")
        time.sleep(0.5)
        page.screenshot(path=str(out / "episode-moment.png"))
        print("wrote", out / "episode-moment.png")

        phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
        phone.goto(f"{base}/episodes/{episode_id}?t=95")
        phone.wait_for_function("document.getElementById('player-audio').readyState >= 1")
        phone.evaluate("document.getElementById('player-audio').pause()")
        time.sleep(0.5)
        phone.screenshot(path=str(out / "episode-phone.png"))
        print("wrote", out / "episode-phone.png")

        page.goto(f"{base}/search?q={SEARCH_QUERY.replace(' ', '+')}&mode={mode}")
        page.screenshot(path=str(out / "search.png"))
        print("wrote", out / "search.png")
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=ROOT / "bench" / "out" / "web_load.db",
                        help="archive with the corpora (built by bench/web_load.py's build step if missing)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument("--embedder", default=None,
                        help="the archive's embedding model ('fake' for bench/web_load.py --embedder fake's archive)")
    args = parser.parse_args()
    if not args.db.exists():
        from web_load import build_archive

        build_archive(args.db, args.embedder)
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "archive.db"
        source = open_db(args.db)
        source.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        source.conn.close()
        shutil.copy(args.db, db_path)
        if Path(f"{args.db}.index").exists():
            shutil.copytree(f"{args.db}.index", f"{db_path}.index")
        episode_id = add_datacast(db_path, Path(tmp) / "media", args.embedder)
        base, server = start_site(db_path, args.embedder)
        args.out.mkdir(parents=True, exist_ok=True)
        # The test embedder's vectors mean nothing: photograph keyword search then, not a meaningless fusion.
        photograph(base, episode_id, args.out, "keyword" if args.embedder == "fake" else "hybrid")
        server.shutdown()


if __name__ == "__main__":
    main()
