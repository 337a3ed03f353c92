"""The studio's publishing API (documented in docs/API.md, "Studio API"): scripts write, publish and unpublish
episodes with a producer's bearer token.

Every view is `@token_required` (auth.py): `Authorization: Bearer <token>` names the producer, a session cookie
counts for nothing and there is no CSRF token. A view checks the token, then that the producer may edit the
show (an episode that does not exist is 404), and only then reads the request's body. JSON in and out; an error is
`{"error": "<message>"}` (errors.py), with `field` for a value that is not acceptable (422).

Field names of the API: `number` is the studio's `episode_number`, `published_at` its `published`; the others
are the studio's own (archive/episode_fields.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from flask import Blueprint, current_app, g, jsonify, request
from werkzeug.exceptions import BadRequest, NotFound, RequestEntityTooLarge, UnprocessableEntity, UnsupportedMediaType
from werkzeug.http import parse_options_header

from archive import producers, studio
from archive.errors import NotEditableError, StudioError, UploadError, UploadTooLargeError, ValidationError
from archive.media_types import is_audio_type
from archive.sanitize import clean_notes, public_guid, public_url
from archive.settings import Settings
from archive.uploads import describe_size, save_upload

from . import max_upload_bytes
from .auth import require_show, token_required
from .db import get_db
from .errors import error_response
from .searching import get_embedder
from .urls import external_url

bp = Blueprint("studio_api", __name__, url_prefix="/api/studio")

# API field -> the studio's editable field.
API_FIELDS = {
    "title": "title", "number": "episode_number", "season": "season", "published_at": "published",
    "guests": "guests", "audio_url": "audio_url", "notes_markdown": "notes_markdown", "takeaways": "takeaways",
    "chapters": "chapters",
}
TO_API = {name: api for api, name in API_FIELDS.items()}
MAX_JSON_BYTES = 8 * 1024 * 1024  # a JSON body: 40 times the longest notes, room for hundreds of long takeaways


class FieldError(UnprocessableEntity):
    """422 naming the field (an API name) whose value is not acceptable."""

    def __init__(self, field: str, message: str):
        super().__init__(description=f"{field}: {message}")
        self.field = field


# -- errors from the library --------------------------------------------------------------------------------

@bp.errorhandler(ValidationError)
def invalid_value(error: ValidationError):
    return error_response(FieldError(api_field(error.field), error.message))


@bp.errorhandler(NotEditableError)
def not_editable(error: NotEditableError):
    return error_response(UnprocessableEntity(description=str(error)))


@bp.errorhandler(UploadTooLargeError)
def upload_too_large(error: UploadTooLargeError):
    return error_response(RequestEntityTooLarge(description=capitalised(error)))


@bp.errorhandler(UploadError)
def upload_refused(error: UploadError):
    return error_response(FieldError("audio", str(error)))


@bp.errorhandler(StudioError)
def studio_refused(error: StudioError):
    return error_response(UnprocessableEntity(description=capitalised(error)))


def capitalised(error: Exception) -> str:
    text = str(error)
    return f"{text[:1].upper()}{text[1:]}."


def api_field(name: str) -> str:
    """The studio's field name (maybe `takeaways[2].start`) as the API names it."""
    match = re.match(r"[a-z_]+", name or "")
    if match and match.group(0) in TO_API:
        return TO_API[match.group(0)] + name[match.end():]
    return name


# -- request bodies -----------------------------------------------------------------------------------------

def json_body(required: bool = True) -> dict:
    """The request's JSON object; 413 past MAX_JSON_BYTES, 400 when it is not a JSON object ({} for no body
    when not `required`)."""
    length = request.content_length
    if length is not None and length > MAX_JSON_BYTES:
        raise RequestEntityTooLarge(description=f"The JSON body is {describe_size(length)}; at most "
                                                f"{describe_size(MAX_JSON_BYTES)}.")
    data = read_at_most(request.stream, MAX_JSON_BYTES)
    if len(data) > MAX_JSON_BYTES:
        raise RequestEntityTooLarge(description=f"The JSON body is over {describe_size(MAX_JSON_BYTES)}.")
    if not data.strip():
        if required:
            raise BadRequest(description="Send a JSON object (Content-Type: application/json).")
        return {}
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise BadRequest(description=f"The body is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(value, dict):
        raise BadRequest(description=f"The body must be a JSON object, not {type(value).__name__}.")
    return value


def read_at_most(stream, limit: int) -> bytes:
    """Up to limit + 1 bytes of a stream (a short read is not its end)."""
    parts, size = [], 0
    while size <= limit:
        chunk = stream.read(min(1024 * 1024, limit + 1 - size))
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts)


def episode_changes(body: dict) -> dict:
    """An API body's episode fields as the studio names them; 422 for any other key."""
    for key in body:
        if key not in API_FIELDS:
            raise FieldError(str(key)[:100], f"is not a field of an episode (fields: {', '.join(API_FIELDS)})")
    return {API_FIELDS[key]: value for key, value in body.items()}


def episode_show(episode_id: int) -> int:
    """The show of an episode the producer may edit: 404 when there is no such episode, 403 when it is another
    show's."""
    row = get_db().execute("SELECT show_id FROM episodes WHERE id = ?", [episode_id]).fetchone()
    if row is None:
        raise NotFound(description=f"No episode with id {episode_id}.")
    require_show(row[0])
    return row[0]


# -- responses ----------------------------------------------------------------------------------------------

def audio_url_json(value: str | None) -> str | None:
    """An episode's audio as the API gives it: an http(s) URL, or an upload as its path in the media folder
    (`uploads/<file>`, which the API takes back as `audio_url`); never another path on the server."""
    if not value:
        return None
    url = public_url(value)
    if url:
        return url
    folder = Settings.from_env().media_dir.resolve()
    path = Path(value).resolve()
    return path.relative_to(folder).as_posix() if path.is_relative_to(folder) else None


def fields_json(values: dict) -> dict:
    """The studio's editable fields (of an episode, or a revision's snapshot) by their API names."""
    found = {TO_API[name]: values[name] for name in API_FIELDS.values() if name in values}
    if "audio_url" in found:
        found["audio_url"] = audio_url_json(found["audio_url"])
    return found


def change_json(change: dict | None) -> dict | None:
    if change is None:
        return None
    return {**change, "changed": [api_field(name) for name in change["changed"]]}


def episode_json(episode: dict) -> dict:
    """`studio.studio_episode` as the API gives it."""
    return {
        "id": episode["id"],
        "show_id": episode["show_id"],
        "show_title": episode["show_title"],
        "guid": public_guid(episode["guid"]),
        "state": episode["state"],
        "publish_at": episode["publish_at"],
        **fields_json(episode["fields"]),
        "notes_html": clean_notes(episode["notes_html"]),
        "producer_fields": [api_field(name) for name in episode["producer_fields"]],
        "sources": {api_field(name): source for name, source in episode["sources"].items()},
        "duration": episode["duration"],
        "has_transcript": episode["has_transcript"],
        "pipeline": episode["pipeline"],
        "last_change": change_json(episode["last_change"]),
        "updated_at": episode["updated_at"],
        "url": external_url("pages.episode", episode_id=episode["id"]),
        "api_url": external_url("studio_api.episode", episode_id=episode["id"]),
    }


def listed_episode_json(row: dict) -> dict:
    """An item of `studio.list_studio_episodes` as the API gives it."""
    return {
        "id": row["id"], "show_id": row["show_id"], "title": row["title"], "state": row["state"],
        "status": row["status"], "errors": row["errors"], "publish_at": row["publish_at"],
        "published_at": row["published"], "has_transcript": row["has_transcript"],
        "producer_fields": [api_field(name) for name in row["producer_fields"]],
        "last_change": change_json(row["last_change"]), "updated_at": row["updated_at"],
        "api_url": external_url("studio_api.episode", episode_id=row["id"]),
    }


def revision_json(revision: dict) -> dict:
    """A revision of `studio.history` as the API gives it (API field names; no stored HTML)."""
    diff = {}
    for name, change in revision["diff"].items():
        if name == "audio_url":
            change = {"before": audio_url_json(change["before"]), "after": audio_url_json(change["after"])}
        diff[api_field(name)] = change
    snapshot = revision["snapshot"]
    return {
        **change_json(revision),
        "restored_from": revision["restored_from"],
        "diff": diff,
        "snapshot": {**fields_json(snapshot), "state": snapshot.get("state"),
                     "publish_at": snapshot.get("publish_at"),
                     "producer_fields": [api_field(name) for name in snapshot.get("producer_fields") or []]},
    }


# -- views --------------------------------------------------------------------------------------------------

@bp.get("/shows")
@token_required
def shows():
    """The shows this token's producer may edit, with how many episodes each has in each state."""
    db = get_db()
    rows = studio.list_studio_shows(db, producers.editable_show_ids(db, g.producer))
    return jsonify({
        "producer": {"id": g.producer.id, "name": g.producer.name, "admin": bool(g.producer.admin)},
        "shows": [{
            "id": row["id"], "title": row["title"], "hosted": row["hosted"],
            "episodes": {"total": row["episodes"], "draft": row["drafts"], "scheduled": row["scheduled"],
                         "published": row["published"]},
            "url": external_url("pages.show", show_id=row["id"]),
            "feed_url": external_url("show_feeds.show_feed", show_id=row["id"]),
            "episodes_url": external_url("studio_api.show_episodes", show_id=row["id"]),
        } for row in rows],
    })


@bp.get("/shows/<int:show_id>/episodes")
@token_required
def show_episodes(show_id: int):
    """Every episode of a show, drafts first (as the studio lists them)."""
    require_show(show_id)
    db = get_db()
    if db.execute("SELECT 1 FROM shows WHERE id = ?", [show_id]).fetchone() is None:
        raise NotFound(description=f"No show with id {show_id}.")
    return jsonify({"show_id": show_id,
                    "episodes": [listed_episode_json(row) for row in studio.list_studio_episodes(db, [show_id])]})


@bp.post("/shows/<int:show_id>/episodes")
@token_required
def create_episode(show_id: int):
    """A new draft in the show: 201 with the episode."""
    require_show(show_id)
    changes = episode_changes(json_body())
    db = get_db()
    episode_id = studio.create_episode(db, show_id, changes, g.producer)
    response = jsonify(episode_json(studio.studio_episode(db, episode_id)))
    response.status_code = 201
    response.headers["Location"] = external_url("studio_api.episode", episode_id=episode_id)
    return response


@bp.get("/episodes/<int:episode_id>")
@token_required
def episode(episode_id: int):
    episode_show(episode_id)
    return jsonify(episode_json(studio.studio_episode(get_db(), episode_id)))


@bp.patch("/episodes/<int:episode_id>")
@token_required
def update_episode(episode_id: int):
    """Change some fields (null clears one); the others are left as they are."""
    episode_show(episode_id)
    changes = episode_changes(json_body())
    return jsonify(episode_json(studio.update_episode(get_db(), episode_id, changes, g.producer,
                                                      embedder=get_embedder())))


@bp.post("/episodes/<int:episode_id>/publish")
@token_required
def publish(episode_id: int):
    """Publish now (searchable before the response), or schedule with `{"at": ISO 8601}`."""
    episode_show(episode_id)
    body = json_body(required=False)
    for key in body:
        if key != "at":
            raise FieldError(str(key)[:100], "is not an option of publish (options: at)")
    db = get_db()
    result = studio.publish(db, episode_id, g.producer, at=body.get("at"), embedder=get_embedder())
    return jsonify({**episode_json(studio.studio_episode(db, episode_id)), "publish": {
        "search": result.get("search"), "transcription_queued": result["needs_transcript"],
        "seconds": result["seconds"],
    }})


@bp.post("/episodes/<int:episode_id>/unpublish")
@token_required
def unpublish(episode_id: int):
    """A draft again: gone from the site, the feeds and search."""
    episode_show(episode_id)
    db = get_db()
    studio.unpublish(db, episode_id, g.producer)
    return jsonify(episode_json(studio.studio_episode(db, episode_id)))


@bp.get("/episodes/<int:episode_id>/history")
@token_required
def history(episode_id: int):
    episode_show(episode_id)
    return jsonify({"episode_id": episode_id,
                    "revisions": [revision_json(revision) for revision in studio.history(get_db(), episode_id)]})


@bp.post("/episodes/<int:episode_id>/restore")
@token_required
def restore(episode_id: int):
    """Bring back the fields of a revision (`{"revision_id": N}`), as a new revision."""
    episode_show(episode_id)
    body = json_body()
    revision_id = body.get("revision_id")
    if isinstance(revision_id, bool) or not isinstance(revision_id, int):
        raise FieldError("revision_id", "must be the id of one of the episode's revisions (see its history)")
    return jsonify(episode_json(studio.restore(get_db(), episode_id, revision_id, g.producer,
                                               embedder=get_embedder())))


@bp.put("/episodes/<int:episode_id>/audio")
@token_required
def upload_audio(episode_id: int):
    """The request body (raw bytes, Content-Type audio/*) becomes the episode's audio."""
    episode_show(episode_id)
    cap = max_upload_bytes(current_app)
    length = request.content_length
    if length is not None and length > cap:  # refused before a byte is read
        raise RequestEntityTooLarge(description=f"The upload is {describe_size(length)}; at most "
                                                f"{describe_size(cap)} (STUDIO_MAX_UPLOAD_MB).")
    declared_type = request.headers.get("Content-Type")
    if declared_type and not is_audio_type(declared_type):
        raise UnsupportedMediaType(description=f"Send audio (Content-Type audio/*), not {declared_type[:100]}.")
    _, disposition = parse_options_header(request.headers.get("Content-Disposition", ""))
    stored = save_upload(request.stream, Settings.from_env().media_dir, cap, declared_name=disposition.get("filename"),
                         declared_type=declared_type)
    try:
        episode = studio.update_episode(get_db(), episode_id, {"audio_url": str(stored.path)}, g.producer)
    except BaseException:
        stored.path.unlink(missing_ok=True)
        raise
    return jsonify({**episode_json(episode), "upload": {
        "name": stored.declared_name, "content_type": stored.content_type, "bytes": stored.bytes,
        "sha256": stored.sha256,
    }})
