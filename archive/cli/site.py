"""`podarchive serve`: the web site, with its background worker in a child process."""

from __future__ import annotations

import os
import sys

import click

from .common import db_option, open_archive


@click.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=5000, show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Server processes (gunicorn). Default: one per CPU core, at least 2; 1 = werkzeug's threaded "
                   "server in this process.")
@click.option("--no-worker", is_flag=True,
              help="Do not start the background worker (run `podarchive work` elsewhere, or nothing gets "
                   "transcribed or published on schedule).")
def serve(db_path, host, port, workers, no_worker):
    """Serve the archive's web site, with one background worker for what producers publish."""
    from pathlib import Path

    from ..web import create_app

    open_archive(db_path).conn.close()
    config = {"DATABASE": str(Path(db_path).resolve())}
    workers = workers or max(2, os.cpu_count() or 1)
    if not no_worker:
        start_background_worker(config["DATABASE"])
    click.echo(f"Serving {db_path} at http://{host}:{port}/ with {workers} worker(s)  (Ctrl+C to stop)")
    if workers == 1:
        from werkzeug.serving import run_simple

        run_simple(host, port, create_app(config), threaded=True, use_reloader=False)
        return
    from ..web.server import run_gunicorn

    run_gunicorn(lambda: create_app(config), host, port, workers)


def start_background_worker(db_path: str) -> None:
    """`podarchive work` in a child process that ends with this one (at exit, or by itself when orphaned)."""
    import atexit
    import subprocess

    child = subprocess.Popen([sys.executable, "-m", "archive.cli", "work", "--db", db_path,
                              "--parent-pid", str(os.getpid())])
    click.echo(f"Background worker started (pid {child.pid}).")

    def stop():
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()

    atexit.register(stop)
