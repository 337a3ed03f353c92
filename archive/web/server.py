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
            return make_app()

    Server().run()
