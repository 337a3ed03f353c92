"""Transcripts and chapters as files podcast apps read: WebVTT, SRT, Podcasting 2.0 JSON, text, JSON chapters."""

from __future__ import annotations

import json

from flask import Blueprint, Response
from werkzeug.exceptions import NotFound

from archive import queries
from archive.sanitize import public_url
from archive.transcript_exports import to_json, to_srt, to_text, to_vtt
from archive.transcript_store import load_segments

from .db import get_db

bp = Blueprint("exports", __name__)

TRANSCRIPT_FORMATS = {
    "vtt": (to_vtt, "text/vtt; charset=utf-8"),
    "srt": (to_srt, "application/x-subrip; charset=utf-8"),
    "json": (to_json, "application/json"),
    "txt": (to_text, "text/plain; charset=utf-8"),
}
CHAPTERS_TYPE = "application/json+chapters"  # what the JSON chapters spec asks files to be served as
CHAPTERS_VERSION = "1.2.0"


def export_response(body: str, content_type: str, filename: str) -> Response:
    response = Response(body, content_type=content_type)
    response.headers["Content-Disposition"] = f'inline; filename="{filename}"'
    # Web players on other sites fetch transcripts and chapters named in the re-published feed.
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@bp.get("/episodes/<int:episode_id>/transcript.<any(vtt, srt, json, txt):fmt>")
def transcript(episode_id: int, fmt: str):
    db = get_db()
    queries.get_episode(db, episode_id)
    segments = load_segments(db, episode_id)
    if not segments:
        raise NotFound(description=f"Episode {episode_id} has no transcript yet.")
    render, content_type = TRANSCRIPT_FORMATS[fmt]
    return export_response(render(segments), content_type, f"episode-{episode_id}.{fmt}")


def chapters_document(episode: dict, chapters: list[dict]) -> dict:
    items = []
    for chapter in chapters:
        item = {"startTime": chapter["start"], "title": chapter["title"]}
        if chapter["end"] is not None:
            item["endTime"] = chapter["end"]
        if public_url(chapter["url"]):  # a chapter links and shows pictures only from the open web
            item["url"] = public_url(chapter["url"])
        if public_url(chapter["image"]):
            item["img"] = public_url(chapter["image"])
        items.append(item)
    document = {"version": CHAPTERS_VERSION, "chapters": items}
    if episode["title"]:
        document["title"] = episode["title"]
    if episode["show_title"]:
        document["podcastName"] = episode["show_title"]
    return document


@bp.get("/episodes/<int:episode_id>/chapters.json")
def chapters(episode_id: int):
    db = get_db()
    episode = queries.get_episode(db, episode_id)
    rows = queries.get_chapters(db, episode_id)
    if not rows:
        raise NotFound(description=f"Episode {episode_id} has no chapters.")
    body = json.dumps(chapters_document(episode, rows), ensure_ascii=False, indent=2) + "\n"
    return export_response(body, CHAPTERS_TYPE, f"episode-{episode_id}-chapters.json")
