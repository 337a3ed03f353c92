"""`podarchive serve` with several processes: gunicorn, the app built in each worker after the fork.

One Python process serves one request at a time per core at most (the GIL); search pages cost tens of
milliseconds of CPU, so 20 concurrent readers need every core.
"""

from __future__ import annotations

from typing import Callable

from flask import Flask


def run_gunicorn(make_app: Callable[[], Flask], host: str, port: int, workers: int, threads: int = 4) -> None:
    from gunicorn.app.base import BaseApplication

    class Server(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", threads)
            self.cfg.set("timeout", 120)
            self.cfg.set("accesslog", None)

        def load(self):
            app = make_app()
            warm_up_in_background(app)
            return app

    Server().run()


def warm_up_in_background(app: Flask) -> None:
    """Load the embedding model while the worker already serves pages, so the first search by meaning does not
    wait seconds for it; a model that will not load is reported by that search, as without the warm-up."""
    import threading

    from .searching import loaded_embedder

    def warm_up():
        try:
            loaded_embedder(app)
        except Exception:  # noqa: BLE001 - the search that needs the model reports it
            pass

    threading.Thread(target=warm_up, name="podarchive-warm-up", daemon=True).start()
