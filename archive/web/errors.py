"""Errors as pages for people and as JSON for programs (everything under /api/).

The public API answers `{"error": {"status", "title", "message"}}`; the studio API (/api/studio/, see
studio_api.py) answers `{"error": "<message>"}`, plus `field` when a value given was not acceptable."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError, NotFound

from archive.errors import NotFoundError

log = logging.getLogger(__name__)


STUDIO_API_PREFIX = "/api/studio/"


def wants_json() -> bool:
    return request.path.startswith("/api/")


def error_response(error: HTTPException):
    code = error.code or 500
    if request.path.startswith(STUDIO_API_PREFIX):
        response = jsonify(studio_error(error.description or error.name, getattr(error, "field", None)))
    elif wants_json():
        body = {"error": {"status": code, "title": error.name, "message": error.description}}
        response = jsonify(body)
    else:
        response = render_template("error.html", error=error, code=code)
    return response, code


def studio_error(message: str, field: str | None = None) -> dict:
    return {"error": message} if field is None else {"error": message, "field": field}


def handle_http_error(error: HTTPException):
    return error_response(error)


def handle_not_found(error: NotFoundError):
    return error_response(NotFound(description=f"{str(error)[:1].upper()}{str(error)[1:]}."))


def handle_unexpected(error: InternalServerError):
    original = getattr(error, "original_exception", None)
    if original is not None:
        log.error("error on %s %s", request.method, request.path, exc_info=original)
    return error_response(InternalServerError(
        description="Something went wrong on our side while making this page. It has been logged."
    ))


def init_app(app: Flask) -> None:
    app.register_error_handler(NotFoundError, handle_not_found)
    app.register_error_handler(InternalServerError, handle_unexpected)
    app.register_error_handler(HTTPException, handle_http_error)
