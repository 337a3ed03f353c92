"""One archive connection per request, kept on `g` and closed on teardown (flaskr style)."""

from __future__ import annotations

import sqlite_utils
from flask import Flask, current_app, g

from archive.db import connect, open_db


def get_db() -> sqlite_utils.Database:
    if "db" not in g:
        g.db = connect(current_app.config["DATABASE"])
    return g.db


def close_db(exception: BaseException | None = None) -> None:
    db = g.pop("db", None)
    if db is not None:
        db.conn.close()


def init_app(app: Flask) -> None:
    """Bring the archive's schema up to date once, then hand out a connection per request."""
    open_db(app.config["DATABASE"]).conn.close()
    app.teardown_appcontext(close_db)
