"""The studio's transcript page: producers correct an episode's transcript (archive/corrections.py).

GET /studio/episodes/<id>/transcript shows every line (an Edit link opens one line's form), the speakers with a
rename form, find and replace (its Preview lists each place it would change, with a checkbox, then Apply), and
every correction: who, when, what, with Undo. The page works without JavaScript.

Every view is `@login_required` and asks `require_show(...)` of the episode's show before it reads or writes;
every write is a POST with the CSRF token auth.py checks, then a redirect back to the page (a refused edit shows
the page again, with the text typed and the reason, as 400). Each correction updates search at once, with the
site's embedder for the passages it changed.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for

from archive import corrections
from archive.errors import CorrectionError, NotFoundError

from .auth import login_required, require_show
from .db import get_db
from .filters import parse_iso
from .searching import get_embedder

bp = Blueprint("corrections", __name__, url_prefix="/studio/episodes/<int:episode_id>/transcript")

MAX_PLACES_SHOWN = 500  # a preview lists at most this many places (apply them, then preview again for the rest)


@bp.after_request
def private(response):
    """Studio pages hold drafts and CSRF tokens: never stored by a cache, never indexed."""
    response.headers["Cache-Control"] = "no-store"
    response.headers.setdefault("X-Robots-Tag", "noindex")
    return response


def editable_episode(episode_id: int) -> dict:
    """The episode (id, show_id, title, state), once g.producer may edit its show; 404 for no such episode."""
    rows = list(get_db().query("SELECT id, show_id, guid, title, state FROM episodes WHERE id = ?", [episode_id]))
    if not rows:
        abort(404, description=f"No episode with id {episode_id}.")
    require_show(rows[0]["show_id"])
    return rows[0]


def when_text(value: str | None) -> str:
    parsed = parse_iso(value)
    return f"{parsed.day} {parsed:%b %Y, %H:%M} UTC" if parsed else ""


def replace_options(values) -> dict:
    """find, replace, whole_words, case_sensitive from a query string or a form (whole words unless the form
    was sent without it)."""
    sent = "find" in values
    return {"find": values.get("find", ""), "replace": values.get("replace", ""),
            "whole_words": (values.get("whole_words") == "1") if sent else True,
            "case_sensitive": values.get("case_sensitive") == "1"}


def page(episode: dict, *, status: int = 200, edit: int | None = None, edit_values: dict | None = None,
         error: str | None = None):
    db = get_db()
    episode_id = episode["id"]
    try:
        lines = corrections.transcript_lines(db, episode_id)
    except NotFoundError:
        lines = None
    options = replace_options(request.args)
    places, preview_error = None, None
    if lines and request.args.get("find", "").strip():
        try:
            places = corrections.preview_replace(db, episode_id, options["find"], options["replace"],
                                                 options["whole_words"], options["case_sensitive"])
        except CorrectionError as exc:
            preview_error = str(exc)
    history = corrections.corrections(db, episode_id)
    for item in history:
        item["when"] = when_text(item["at"])
    response = render_template(
        "studio/transcript.html", episode=episode, lines=lines or [], has_transcript=lines is not None,
        speakers=corrections.speakers(db, episode_id) if lines else [], history=history, options=options,
        places=places, places_shown=(places or [])[:MAX_PLACES_SHOWN], preview_error=preview_error,
        edit=edit if edit is not None else request.args.get("edit", type=int), edit_values=edit_values or {},
        error=error,
    )
    return response, status


def back(episode_id: int, anchor: str | None = None, **args):
    return redirect(url_for("corrections.transcript", episode_id=episode_id, _anchor=anchor, **args), code=303)


# -- views --------------------------------------------------------------------------------------------------

@bp.get("")
@login_required
def transcript(episode_id: int):
    return page(editable_episode(episode_id))


@bp.post("/lines/<int:idx>")
@login_required
def edit_line(episode_id: int, idx: int):
    episode = editable_episode(episode_id)
    text, speaker = request.form.get("text", ""), request.form.get("speaker", "")
    try:
        correction_id = corrections.edit_line(get_db(), episode_id, idx, text, g.producer, speaker=speaker,
                                              embedder=get_embedder(current_app))
    except CorrectionError as exc:
        return page(episode, status=400, edit=idx, edit_values={"text": text, "speaker": speaker}, error=str(exc))
    flash("The line is corrected; search has it now." if correction_id else "Nothing changed on that line.")
    return back(episode_id, f"line-{idx}")


@bp.post("/lines/<int:idx>/revert")
@login_required
def revert_line(episode_id: int, idx: int):
    editable_episode(episode_id)
    try:
        corrections.revert_line(get_db(), episode_id, idx, g.producer, embedder=get_embedder(current_app))
    except CorrectionError as exc:
        flash(str(exc))
    else:
        flash("The line is back to the machine's text.")
    return back(episode_id, f"line-{idx}")


@bp.post("/speakers")
@login_required
def rename_speaker(episode_id: int):
    editable_episode(episode_id)
    old, new = request.form.get("old", ""), request.form.get("new", "")
    try:
        correction_id = corrections.rename_speaker(get_db(), episode_id, old or None, new, g.producer,
                                                   embedder=get_embedder(current_app))
    except CorrectionError as exc:
        flash(str(exc))
    else:
        flash(f"Renamed “{old or '(no speaker)'}” to “{new.strip() or '(no speaker)'}”." if correction_id
              else "That speaker already has that name.")
    return back(episode_id, "speakers")


@bp.post("/replace")
@login_required
def replace(episode_id: int):
    editable_episode(episode_id)
    db = get_db()
    options = replace_options(request.form)
    chosen = request.form.getlist("place")
    preview_args = {"find": options["find"], "replace": options["replace"],
                    "whole_words": "1" if options["whole_words"] else "0",
                    "case_sensitive": "1" if options["case_sensitive"] else "0"}
    try:
        if not chosen:
            raise CorrectionError("Choose at least one place to change.")
        now = {place["place"] for place in corrections.preview_replace(
            db, episode_id, options["find"], options["replace"], options["whole_words"], options["case_sensitive"])}
        everywhere = set(chosen) == now and request.form.get("shown") == str(len(now))
        count = corrections.replace_in_transcript(
            db, episode_id, options["find"], options["replace"], g.producer, options["whole_words"],
            options["case_sensitive"], None if everywhere else chosen, embedder=get_embedder(current_app))
    except CorrectionError as exc:
        flash(str(exc))
        return back(episode_id, "replace", **preview_args)
    if count:
        flash(f"Replaced “{options['find'].strip()}” with “{options['replace'].strip()}” in {count} "
              f"place{'s' * (count != 1)}; search has it now.")
    else:
        flash("Nothing changed: the transcript changed since the preview. Preview again.")
        return back(episode_id, "replace", **preview_args)
    return back(episode_id, "corrections")


@bp.post("/corrections/<int:correction_id>/undo")
@login_required
def undo(episode_id: int, correction_id: int):
    editable_episode(episode_id)
    try:
        corrections.undo(get_db(), episode_id, correction_id, g.producer, embedder=get_embedder(current_app))
    except CorrectionError as exc:
        flash(str(exc))
    else:
        flash(f"Correction #{correction_id} is undone.")
    return back(episode_id, "corrections")
