"""Producers correcting a transcript: a line's text, a speaker's name, a misheard word across the episode.

The corrected text is written into `segments`, so every reader (the episode page, the exports, passages, search)
sees it. The machine's line is kept in `segment_originals` the first time a line is corrected, and every
correction is a row of `transcript_corrections`: who, when, what was asked, and each line it changed, before and
after. So `undo` takes one correction back (refused when a line it changed was changed again since: undo the
later one first), and `revert_line` brings a line back to the machine's text; both are corrections too.

Search is updated at once: a correction rebuilds the episode's passages from its segments (in the same
transaction; rows left as they were keep their ids, and the FTS5 triggers re-index the others), then embeds the
changed passages with the `embedder` the caller has (none given: `podarchive index` embeds them later).

Word timings (`segments.words`): a speaker change keeps them; an edited line's words are re-aligned to the new
text (archive/transcript_alignment.py: words left as they were keep their times, new words share the time of the
words they replace), or dropped when the stored words did not spell the line.

A new machine transcript (the feed's file changed, Whisper ran again) replaces the segments; `carry_over`
(called by `archive.transcript_store.save_transcript`, in its transaction) replays every correction still applied, in
order, on the new lines:

* replace everywhere: on the whole new transcript;
* a speaker renamed: the new transcript's label whose lines overlap most with the renamed lines (the same label
  in an untimed transcript);
* a line's edit: on the new line with the same times (within TIME_SLACK, archive/transcript_alignment.py) and the
  same machine text; a line's speaker, or a replace in chosen places: on the new line with the same times;
* a line brought back to the machine's text: that line of the new transcript, as the machine made it.

A correction that finds no place in the new transcript is kept as `lapsed`, with a note saying why, and shown
as such in the studio: nothing is dropped silently. Undone corrections and undos stay as history.

No Flask here, and no model: the embedder is the caller's.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Iterable

import sqlite_utils

from .db import utcnow, write_transaction
from .episode_fields import MAX_NAME_CHARS, check_text
from .errors import CorrectionError, NotFoundError, ValidationError
from .passages import make_passages, save_passages
from .timefmt import clock
from .transcript_alignment import UNMATCHED, line_for, realign_words, renamed_label

EDIT, SPEAKER, REPLACE, REVERT, UNDO = "edit", "speaker", "replace", "revert", "undo"
APPLIED, UNDONE, LAPSED = "applied", "undone", "lapsed"
MAX_LINE_CHARS = 5000
MAX_FIND_CHARS = 200
CONTEXT_CHARS = 60  # each side of a place in a preview
_KEEP = object()  # a line's field left as it is

__all__ = [
    "edit_line", "set_speaker", "rename_speaker", "preview_replace", "replace_in_transcript", "undo",
    "revert_line", "corrections", "correction", "transcript_lines", "speakers", "corrections_key", "carry_over",
]


# -- reading ------------------------------------------------------------------------------------------------

def _transcript_id(db: sqlite_utils.Database, episode_id: int) -> int:
    row = db.execute("SELECT id FROM transcripts WHERE episode_id = ?", [episode_id]).fetchone()
    if row is not None:
        return row[0]
    if db.execute("SELECT 1 FROM episodes WHERE id = ?", [episode_id]).fetchone() is None:
        raise NotFoundError(f"no episode with id {episode_id}")
    raise NotFoundError(f"episode {episode_id} has no transcript")


def _lines(db: sqlite_utils.Database, transcript_id: int) -> list[dict]:
    return list(db.query("SELECT idx, start, end, text, speaker, words FROM segments WHERE transcript_id = ? "
                         "ORDER BY idx", [transcript_id]))


def _line(db: sqlite_utils.Database, transcript_id: int, idx: int) -> dict:
    rows = list(db.query("SELECT idx, start, end, text, speaker, words FROM segments WHERE transcript_id = ? "
                         "AND idx = ?", [transcript_id, idx]))
    if not rows:
        raise NotFoundError(f"the transcript has no line {idx}")
    return rows[0]


def transcript_lines(db: sqlite_utils.Database, episode_id: int) -> list[dict]:
    """The transcript's lines as the studio edits them: idx, start, end, text, speaker, machine_text and
    machine_speaker (the machine's line, where it was ever corrected, else the line itself), corrected (whether
    the line differs from the machine's now). NotFoundError without a transcript."""
    transcript_id = _transcript_id(db, episode_id)
    lines = []
    for row in db.query(
            "SELECT s.idx, s.start, s.end, s.text, s.speaker, o.idx IS NOT NULL AS kept, o.text AS machine_text, "
            "o.speaker AS machine_speaker FROM segments s LEFT JOIN segment_originals o "
            "ON o.transcript_id = s.transcript_id AND o.idx = s.idx WHERE s.transcript_id = ? ORDER BY s.idx",
            [transcript_id]):
        kept = bool(row.pop("kept"))
        if not kept:
            row["machine_text"], row["machine_speaker"] = row["text"], row["speaker"]
        row["corrected"] = kept and (row["text"], row["speaker"]) != (row["machine_text"], row["machine_speaker"])
        lines.append(row)
    return lines


def speakers(db: sqlite_utils.Database, episode_id: int) -> list[dict]:
    """The speaker labels of the transcript in order of first appearance: {speaker (None: lines without one),
    lines (how many)}."""
    transcript_id = _transcript_id(db, episode_id)
    return list(db.query(
        "SELECT nullif(speaker, '') AS speaker, count(*) AS lines FROM segments WHERE transcript_id = ? "
        "GROUP BY nullif(speaker, '') ORDER BY min(idx)", [transcript_id]))


def corrections_key(db: sqlite_utils.Database, episode_id: int) -> str | None:
    """A digest of the lines that differ from the machine's (None when none does): the understand stages add it
    to their input hash, so a corrected transcript is understood again once, an uncorrected one never."""
    rows = db.execute(
        "SELECT s.idx, s.text, s.speaker FROM segments s JOIN transcripts t ON t.id = s.transcript_id "
        "JOIN segment_originals o ON o.transcript_id = s.transcript_id AND o.idx = s.idx "
        "WHERE t.episode_id = ? AND (s.text != o.text OR s.speaker IS NOT o.speaker) ORDER BY s.idx",
        [episode_id]).fetchall()
    if not rows:
        return None
    return hashlib.sha256(json.dumps(rows, ensure_ascii=False).encode()).hexdigest()


def _clock(seconds: float | None) -> str:
    return clock(seconds or 0, hours=True)


def _summary(row: dict, details: dict, changes: list[dict]) -> str:
    action, count = row["action"], len(changes)
    at = _clock(changes[0]["start"]) if changes else None
    if action == EDIT:
        return f"Edited the line at {at}" if at else "Edited a line"
    if action == SPEAKER and details.get("idx") is not None:
        return f"Set the speaker of the line at {at} to “{details.get('new') or 'nobody'}”"
    if action == SPEAKER:
        old = details.get("old") or "(no speaker)"
        return f"Renamed speaker “{old}” to “{details.get('new') or '(no speaker)'}” ({count} line{'s' * (count != 1)})"
    if action == REPLACE:
        places = details.get("places", count)
        return f"Replaced “{details.get('find')}” with “{details.get('replace')}” ({places} place{'s' * (places != 1)})"
    if action == REVERT:
        return f"Brought the line at {at} back to the machine's text" if at else "Brought a line back"
    if action == UNDO:
        return f"Undid correction #{details.get('correction')}"
    return action


def _correction_dict(row: dict, current_transcript: int | None) -> dict:
    details, changes = json.loads(row["details"]), json.loads(row["changes"])
    return {
        "id": row["id"], "episode_id": row["episode_id"], "transcript_id": row["transcript_id"],
        "at": row["at"], "producer_id": row["producer_id"], "producer_name": row["producer_name"],
        "action": row["action"], "details": details, "changes": changes, "lines": len(changes),
        "state": row["state"], "undoes": row["undoes"], "undone_by": row["undone_by"], "note": row["note"],
        "summary": _summary(row, details, changes),
        "undoable": row["state"] == APPLIED and row["action"] != UNDO and bool(changes)
                    and row["transcript_id"] == current_transcript,
    }


def corrections(db: sqlite_utils.Database, episode_id: int) -> list[dict]:
    """Every correction of the episode's transcript, newest first. Each a dict: id, at, producer_id,
    producer_name, action (edit, speaker, replace, revert, undo), details (what was asked), changes (each line:
    idx, start, end, machine [text, speaker], text [before, after], speaker [before, after]), lines, state
    (applied, undone, lapsed), undoes, undone_by, note, summary (one line for people), undoable."""
    row = db.execute("SELECT id FROM transcripts WHERE episode_id = ?", [episode_id]).fetchone()
    current = row[0] if row else None
    return [_correction_dict(r, current) for r in db.query(
        "SELECT * FROM transcript_corrections WHERE episode_id = ? ORDER BY id DESC", [episode_id])]


def correction(db: sqlite_utils.Database, episode_id: int, correction_id: int) -> dict:
    for item in corrections(db, episode_id):
        if item["id"] == correction_id:
            return item
    raise NotFoundError(f"episode {episode_id} has no correction {correction_id}")


# -- writing one line ---------------------------------------------------------------------------------------

def _who(producer) -> tuple[int | None, str | None]:
    return getattr(producer, "id", None), getattr(producer, "name", None)


def _machine(db, transcript_id: int, line: dict) -> dict:
    """The machine's line, kept on its first correction."""
    db.execute("INSERT OR IGNORE INTO segment_originals (transcript_id, idx, text, speaker, words) "
               "VALUES (?, ?, ?, ?, ?)", [transcript_id, line["idx"], line["text"], line["speaker"], line["words"]])
    row = db.execute("SELECT text, speaker, words FROM segment_originals WHERE transcript_id = ? AND idx = ?",
                     [transcript_id, line["idx"]]).fetchone()
    return {"text": row[0], "speaker": row[1], "words": row[2]}


def _write_line(db, transcript_id: int, line: dict, text=_KEEP, speaker=_KEEP, words=_KEEP) -> dict | None:
    """Change one line (inside the caller's transaction); returns its change record, or None when nothing
    changes."""
    new_text = line["text"] if text is _KEEP else text
    new_speaker = line["speaker"] if speaker is _KEEP else speaker
    if new_text == line["text"] and new_speaker == line["speaker"]:
        return None
    if words is _KEEP:
        words = line["words"] if new_text == line["text"] else realign_words(line["words"], line["text"], new_text)
    machine = _machine(db, transcript_id, line)
    db.execute("UPDATE segments SET text = ?, speaker = ?, words = ? WHERE transcript_id = ? AND idx = ?",
               [new_text, new_speaker, words, transcript_id, line["idx"]])
    change = {"idx": line["idx"], "start": line["start"], "end": line["end"],
              "machine": [machine["text"], machine["speaker"]],
              "text": [line["text"], new_text], "speaker": [line["speaker"], new_speaker]}
    if words != line["words"]:
        change["words"] = [line["words"], words]
    line.update(text=new_text, speaker=new_speaker, words=words)
    return change


def _record(db, episode_id: int, transcript_id: int, producer, action: str, details: dict, changes: list[dict],
            undoes: int | None = None) -> int:
    producer_id, producer_name = _who(producer)
    return db["transcript_corrections"].insert({
        "episode_id": episode_id, "transcript_id": transcript_id, "producer_id": producer_id,
        "producer_name": producer_name, "at": utcnow(), "action": action,
        "details": json.dumps(details, ensure_ascii=False), "changes": json.dumps(changes, ensure_ascii=False),
        "state": APPLIED, "undoes": undoes,
    }).last_pk


def _rebuild_passages(db, episode_id: int) -> None:
    """The episode's passages made again from its segments (rows left as they were keep their ids)."""
    from .transcript_store import load_segments

    save_passages(db, episode_id, make_passages(load_segments(db, episode_id)))


def _refresh_search(db, episode_id: int, embedder) -> dict:
    """Vectors for the changed passages (with `embedder`), and no cached index of a small archive left stale in
    this process (a large archive's side indexes are rebuilt in the background, as after any write)."""
    from . import index_refresh
    from .episode_indexing import index_for_search

    result = index_for_search(db, episode_id, embedder)
    if not index_refresh.is_large(db):
        index_refresh.forget(db)
    return result


def _commit(db, episode_id: int, transcript_id: int, producer, action: str, details: dict, changes: list[dict],
            undoes: int | None = None) -> int | None:
    """Record the correction and rebuild the passages (inside the caller's transaction)."""
    if not changes:
        return None
    correction_id = _record(db, episode_id, transcript_id, producer, action, details, changes, undoes)
    _rebuild_passages(db, episode_id)
    return correction_id


def _clean(value, what: str, limit: int, required: bool) -> str | None:
    try:
        return check_text(value, what, limit, required=required)
    except ValidationError as exc:
        raise CorrectionError(f"The {what} {exc.message}.") from exc


def _clean_speaker(value) -> str | None:
    return _clean(value, "speaker's name", MAX_NAME_CHARS, required=False)


def edit_line(db: sqlite_utils.Database, episode_id: int, idx: int, text: str, producer, *, speaker=_KEEP,
              embedder=None) -> int | None:
    """Correct the text of line `idx` (and its speaker, when `speaker` is given: None or "" for none). Returns the
    correction's id, or None when nothing changed. NotFoundError, CorrectionError (an empty or too long line)."""
    text = _clean(text, "line", MAX_LINE_CHARS, required=True)
    return _edit(db, episode_id, idx, text, speaker if speaker is _KEEP else _clean_speaker(speaker), producer,
                 embedder)


def set_speaker(db: sqlite_utils.Database, episode_id: int, idx: int, speaker: str | None, producer, *,
                embedder=None) -> int | None:
    """Set the speaker of one line (None or "" for none). Returns the correction's id, or None."""
    return _edit(db, episode_id, idx, _KEEP, _clean_speaker(speaker), producer, embedder)


def _edit(db, episode_id: int, idx: int, text, speaker, producer, embedder) -> int | None:
    with write_transaction(db):
        transcript_id = _transcript_id(db, episode_id)
        line = _line(db, transcript_id, idx)
        text_changes = text is not _KEEP and text != line["text"]
        change = _write_line(db, transcript_id, line, text, speaker)
        details = {"idx": idx}
        if text_changes:
            details["text"] = text
        if speaker is not _KEEP and change and change["speaker"][0] != change["speaker"][1]:
            details["new"] = speaker
        action = EDIT if text_changes else SPEAKER
        correction_id = _commit(db, episode_id, transcript_id, producer, action, details, [change] if change else [])
    if correction_id is not None:
        _refresh_search(db, episode_id, embedder)
    return correction_id


def rename_speaker(db: sqlite_utils.Database, episode_id: int, old: str | None, new: str | None, producer, *,
                   embedder=None) -> int | None:
    """Give every line spoken by `old` (a label such as "SPEAKER_1"; None or "" for the lines without a speaker)
    the speaker `new` (None or "": none). Returns the correction's id, or None when `new` is `old`.
    CorrectionError when no line has `old`."""
    old = old or None
    new = _clean_speaker(new)
    with write_transaction(db):
        transcript_id = _transcript_id(db, episode_id)
        lines = [line for line in _lines(db, transcript_id) if (line["speaker"] or None) == old]
        if not lines:
            raise CorrectionError(f"No line is spoken by “{old}”." if old else "Every line has a speaker.")
        changes = [c for c in (_write_line(db, transcript_id, line, speaker=new) for line in lines) if c]
        correction_id = _commit(db, episode_id, transcript_id, producer, SPEAKER, {"old": old, "new": new},
                                changes)
    if correction_id is not None:
        _refresh_search(db, episode_id, embedder)
    return correction_id


# -- find and replace ---------------------------------------------------------------------------------------

def _pattern(find: str, whole_words: bool, case_sensitive: bool) -> re.Pattern:
    find = _clean(find, "text to find", MAX_FIND_CHARS, required=True)
    body = r"\s+".join(re.escape(word) for word in find.split(" "))
    if whole_words:  # a word character at an end of `find` may not continue a word of the line
        body = (r"(?<!\w)" if re.match(r"\w", find[0]) else "") + body + (r"(?!\w)" if re.match(r"\w", find[-1]) else "")
    return re.compile(body, 0 if case_sensitive else re.IGNORECASE)


def _clean_replacement(replace: str | None) -> str:
    return _clean(replace, "replacement", MAX_FIND_CHARS, required=False) or ""


def _places(line: dict, pattern: re.Pattern, replace: str) -> list[re.Match]:
    """The matches on a line that change something."""
    return [m for m in pattern.finditer(line["text"]) if m.group(0) != replace]


def _substitute(text: str, matches: list[re.Match], replace: str) -> str:
    for match in sorted(matches, key=lambda m: m.start(), reverse=True):
        text = text[:match.start()] + replace + text[match.end():]
    return " ".join(text.split())


def _context(text: str, start: int, end: int) -> tuple[str, str]:
    lead, trail = text[max(0, start - CONTEXT_CHARS):start], text[end:end + CONTEXT_CHARS]
    if start > CONTEXT_CHARS:
        lead = "…" + lead.split(" ", 1)[-1] if " " in lead else "…" + lead
    if end + CONTEXT_CHARS < len(text):
        trail = trail.rsplit(" ", 1)[0] + "…" if " " in trail else trail + "…"
    return lead, trail


def _place_key(idx: int, offset: int) -> str:
    return f"{idx}:{offset}"


def preview_replace(db: sqlite_utils.Database, episode_id: int, find: str, replace: str, whole_words: bool = True,
                    case_sensitive: bool = False) -> list[dict]:
    """Each place replacing `find` with `replace` would change, in order: {place ("idx:offset", what
    `replace_in_transcript` takes to choose it), idx, start, end, speaker, offset, lead, old, new, trail, before
    (the context as it is), after (as it would be)}. Spaces in `find` match any run of spaces; `whole_words`:
    "ML on" is not found in "HTML on"."""
    pattern = _pattern(find, whole_words, case_sensitive)
    replace = _clean_replacement(replace)
    places = []
    for line in _lines(db, _transcript_id(db, episode_id)):
        for match in _places(line, pattern, replace):
            lead, trail = _context(line["text"], match.start(), match.end())
            places.append({
                "place": _place_key(line["idx"], match.start()), "idx": line["idx"], "start": line["start"],
                "end": line["end"], "speaker": line["speaker"], "offset": match.start(), "lead": lead,
                "old": match.group(0), "new": replace, "trail": trail, "before": lead + match.group(0) + trail,
                "after": lead + replace + trail,
            })
    return places


def _chosen(only_idx: Iterable | None) -> tuple[set[int], set[str]] | None:
    """`only_idx` as (line indexes, place keys); None: every place."""
    if only_idx is None:
        return None
    lines, places = set(), set()
    for item in only_idx:
        if isinstance(item, int) or (isinstance(item, str) and item.isdigit()):
            lines.add(int(item))
        elif isinstance(item, str) and re.fullmatch(r"\d+:\d+", item):
            places.add(item)
        else:
            raise CorrectionError(f"{item!r} is not a line or a place of the transcript.")
    return lines, places


def _replace_lines(db, transcript_id: int, lines: list[dict], pattern: re.Pattern, replace: str,
                   chosen: tuple[set[int], set[str]] | None) -> tuple[list[dict], int]:
    changes, count = [], 0
    for line in lines:
        matches = _places(line, pattern, replace)
        if chosen is not None:
            matches = [m for m in matches
                       if line["idx"] in chosen[0] or _place_key(line["idx"], m.start()) in chosen[1]]
        if not matches:
            continue
        text = _substitute(line["text"], matches, replace)
        if not text:
            raise CorrectionError(f"The line at {_clock(line['start'])} would be left empty: edit it instead.")
        change = _write_line(db, transcript_id, line, text)
        if change:
            changes.append(change)
            count += len(matches)
    return changes, count


def replace_in_transcript(db: sqlite_utils.Database, episode_id: int, find: str, replace: str, producer,
                          whole_words: bool = True, case_sensitive: bool = False, only_idx: Iterable | None = None,
                          *, embedder=None) -> int:
    """Replace `find` with `replace` everywhere in the transcript, or only in the places chosen: `only_idx` holds
    line indexes (every place on the line) and place keys from `preview_replace` ("idx:offset"; a place whose
    line changed since the preview is no longer there and is left alone). One correction; returns the number of
    places changed (0: nothing recorded)."""
    pattern = _pattern(find, whole_words, case_sensitive)
    replace = _clean_replacement(replace)
    chosen = _chosen(only_idx)
    with write_transaction(db):
        transcript_id = _transcript_id(db, episode_id)
        changes, count = _replace_lines(db, transcript_id, _lines(db, transcript_id), pattern, replace, chosen)
        details = {"find": " ".join(find.split()), "replace": replace, "whole_words": bool(whole_words),
                   "case_sensitive": bool(case_sensitive), "places": count,
                   "chosen": None if chosen is None else sorted(map(str, chosen[0])) + sorted(chosen[1])}
        correction_id = _commit(db, episode_id, transcript_id, producer, REPLACE, details, changes)
    if correction_id is not None:
        _refresh_search(db, episode_id, embedder)
    return count


# -- taking corrections back --------------------------------------------------------------------------------

def undo(db: sqlite_utils.Database, episode_id: int, correction_id: int, producer, *, embedder=None) -> int:
    """Take one correction back, as a new correction (action "undo"): each line it changed gets its text and
    speaker from before it. Refused (CorrectionError) for an undo, a correction undone or lapsed, or when a line it
    changed was changed again since (undo the later correction first). Returns the undo's id."""
    with write_transaction(db):
        transcript_id = _transcript_id(db, episode_id)
        rows = list(db.query("SELECT * FROM transcript_corrections WHERE id = ? AND episode_id = ?",
                             [correction_id, episode_id]))
        if not rows:
            raise NotFoundError(f"episode {episode_id} has no correction {correction_id}")
        row = rows[0]
        if row["action"] == UNDO:
            raise CorrectionError("An undo cannot be undone: make the correction again.")
        if row["state"] != APPLIED:
            raise CorrectionError(f"Correction #{correction_id} is {row['state']}: there is nothing to undo.")
        if row["transcript_id"] != transcript_id:
            raise CorrectionError(f"Correction #{correction_id} was made on an earlier transcript.")
        changes = json.loads(row["changes"])
        lines = {line["idx"]: line for line in _lines(db, transcript_id)}
        moved = [c for c in changes if c["idx"] not in lines
                 or (lines[c["idx"]]["text"], lines[c["idx"]]["speaker"]) != (c["text"][1], c["speaker"][1])]
        if moved:
            later = ", ".join(_clock(c["start"]) for c in moved[:5])
            raise CorrectionError(f"The line{'s' * (len(moved) > 1)} at {later} changed again after correction "
                                  f"#{correction_id}: undo the later correction first, or edit the line.")
        undone = []
        for change in changes:
            words = change["words"][0] if "words" in change else _KEEP
            undone.append(_write_line(db, transcript_id, lines[change["idx"]], change["text"][0],
                                      change["speaker"][0], words))
        undo_id = _record(db, episode_id, transcript_id, producer, UNDO, {"correction": correction_id},
                          [c for c in undone if c], undoes=correction_id)
        _rebuild_passages(db, episode_id)
        db.execute("UPDATE transcript_corrections SET state = ?, undone_by = ? WHERE id = ?",
                   [UNDONE, undo_id, correction_id])
    _refresh_search(db, episode_id, embedder)
    return undo_id


def revert_line(db: sqlite_utils.Database, episode_id: int, idx: int, producer, *, embedder=None) -> int:
    """Bring line `idx` back to the machine's text and speaker, as a correction (action "revert"). Returns its
    id; CorrectionError when the line is as the machine made it."""
    with write_transaction(db):
        transcript_id = _transcript_id(db, episode_id)
        line = _line(db, transcript_id, idx)
        row = db.execute("SELECT text, speaker, words FROM segment_originals WHERE transcript_id = ? AND idx = ?",
                         [transcript_id, idx]).fetchone()
        change = _write_line(db, transcript_id, line, row[0], row[1], row[2]) if row else None
        if change is None:
            raise CorrectionError(f"The line at {_clock(line['start'])} is as the machine made it.")
        correction_id = _commit(db, episode_id, transcript_id, producer, REVERT, {"idx": idx}, [change])
    _refresh_search(db, episode_id, embedder)
    return correction_id


# -- a new machine transcript -------------------------------------------------------------------------------

def _replay(db, transcript_id: int, lines: list[dict], row: dict) -> tuple[list[dict], str]:
    """One correction made again on a new transcript's lines: (changes, note)."""
    action, details, old_changes = row["action"], json.loads(row["details"]), json.loads(row["changes"])
    if action == REPLACE:
        pattern = _pattern(details["find"], details["whole_words"], details["case_sensitive"])
        if details.get("chosen") is None:
            changes, _ = _replace_lines(db, transcript_id, lines, pattern, details["replace"], None)
            return changes, f"“{details['find']}” is not in the new transcript"
        targets = [line for line in (line_for(lines, c, False) for c in old_changes) if line]
        changes, _ = _replace_lines(db, transcript_id, targets, pattern, details["replace"], None)
        return changes, f"no line of the new transcript at the chosen places has “{details['find']}”"
    if action == SPEAKER and details.get("idx") is None:
        label = renamed_label(lines, old_changes, details.get("old"))
        if label is UNMATCHED:
            return [], "no line of the new transcript is where the renamed speaker spoke"
        changes = [_write_line(db, transcript_id, line, speaker=details.get("new"))
                   for line in lines if (line["speaker"] or None) == label]
        return [c for c in changes if c], f"the new transcript has no lines of “{label}” to rename"
    changes = []
    for old in old_changes:
        if action == EDIT:
            line = line_for(lines, old, True)
            speaker = old["speaker"][1] if old["speaker"][0] != old["speaker"][1] else _KEEP  # the new labels
            change = line and _write_line(db, transcript_id, line, old["text"][1], speaker)
        elif action == SPEAKER:
            line = line_for(lines, old, False)
            change = line and _write_line(db, transcript_id, line, speaker=old["speaker"][1])
        else:  # REVERT: the new line as the machine made it
            line = line_for(lines, old, False)
            machine = line and _machine(db, transcript_id, line)
            change = machine and _write_line(db, transcript_id, line, machine["text"], machine["speaker"],
                                             machine["words"])
        if change:
            changes.append(change)
    notes = {EDIT: "the new transcript has no line with the same times and text",
             SPEAKER: "the new transcript has no line with the same times",
             REVERT: "nothing to bring back in the new transcript"}
    return changes, notes.get(action, "")


def carry_over(db: sqlite_utils.Database, episode_id: int, transcript_id: int) -> dict:
    """Replay the episode's applied corrections on its new machine transcript `transcript_id` (inside the
    caller's transaction: `save_transcript` calls it); see the module doc for the rules. Each keeps its id, who
    and when; it now names the new transcript and its changes, or is `lapsed`, with a note. Returns
    {"carried": n, "lapsed": n}. The passages are left to the index stage, which runs after a new transcript."""
    # A new transcript may get the id of the one it replaced (SQLite reuses the largest rowid): nothing of the
    # old one may stay under it, and every correction still applied was made on the old one.
    db.execute("DELETE FROM segment_originals WHERE transcript_id = ?", [transcript_id])
    rows = list(db.query(
        "SELECT * FROM transcript_corrections WHERE episode_id = ? AND state = ? AND action != ? ORDER BY id",
        [episode_id, APPLIED, UNDO]))
    result = {"carried": 0, "lapsed": 0}
    if not rows:
        return result
    lines = _lines(db, transcript_id)
    when = utcnow()
    for row in rows:
        try:
            with write_transaction(db):  # a savepoint: a replay that fails leaves nothing behind
                changes, reason = _replay(db, transcript_id, lines, row)
        except CorrectionError as exc:
            changes, reason = [], str(exc)
            lines = _lines(db, transcript_id)  # the rolled-back writes were made in these dicts too
        if changes:
            result["carried"] += 1
            db.execute("UPDATE transcript_corrections SET transcript_id = ?, changes = ?, note = ? WHERE id = ?",
                       [transcript_id, json.dumps(changes, ensure_ascii=False),
                        f"carried to a new transcript on {when}", row["id"]])
        else:  # its changes stay as they were made, on the old transcript
            result["lapsed"] += 1
            db.execute("UPDATE transcript_corrections SET state = ?, note = ? WHERE id = ?",
                       [LAPSED, f"lapsed on {when}, when a new transcript replaced the old: {reason}", row["id"]])
    return result
