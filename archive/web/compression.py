"""Compressed responses (Flask-Compress: zstd, brotli, gzip or deflate, whichever the browser accepts).

Only what anyone may read is compressed: pages that carry a secret next to text a visitor chose (the login form's and
the studio's CSRF tokens, anything shown to a logged-in producer) go out as they are, because compressing a secret
beside reflected text lets an attacker guess it from response sizes (BREACH). Audio and other binary media are not
compressed (they are compressed already; Flask-Compress only touches the text types in COMPRESS_MIMETYPES).
"""

from __future__ import annotations

from flask import Flask, Response, request
from flask_compress import Compress
from flask_login import current_user

PRIVATE_BLUEPRINTS = {"auth", "studio", "studio_api", "corrections"}


def init_app(app: Flask) -> None:
    app.config.setdefault("COMPRESS_REGISTER", False)  # our own after_request decides what is compressed
    app.config.setdefault("COMPRESS_MIN_SIZE", 1024)
    compress = Compress(app)

    @app.after_request
    def compress_public_responses(response: Response) -> Response:
        if request.blueprint in PRIVATE_BLUEPRINTS or _logged_in():
            return response
        return compress.after_request(response)


def _logged_in() -> bool:
    try:
        return bool(current_user and current_user.is_authenticated)
    except Exception:  # noqa: BLE001 - no login manager on this app: nobody is logged in
        return False
