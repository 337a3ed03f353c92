"""Compressed responses (Flask-Compress: zstd, brotli, gzip or deflate, whichever the browser accepts).

Only what anyone may read is compressed: pages that carry a secret next to text a visitor chose (the login form's and
the studio's CSRF tokens, any response to a request with a session: a logged-in producer) go out as they are, because compressing a secret
beside reflected text lets an attacker guess it from response sizes (BREACH). Audio and other binary media are not
compressed (they are compressed already; Flask-Compress only touches the text types in COMPRESS_MIMETYPES).
"""

from __future__ import annotations

from flask import Flask, Response, current_app, request
from flask_compress import Compress

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
    """Whether the request may belong to a logged-in producer: it carries a session or remember-me cookie. Read from
    the cookies, not the session, so an anonymous page stays free of `Vary: Cookie` and cacheable."""
    names = (current_app.config.get("SESSION_COOKIE_NAME", "session"),
             current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token"))
    return any(name in request.cookies for name in names)
