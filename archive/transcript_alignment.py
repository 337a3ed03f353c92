"""Where a correction lands when the text under it changes: pure functions over lines and words, no database.

* A corrected line's word timings (`segments.words`), re-aligned to its new text (`realign_words`).
* A new machine transcript's lines that stand for the lines a correction changed (`line_for`), and its label for
  a renamed speaker (`renamed_label`): what archive/corrections.py `carry_over` replays corrections on.
"""

from __future__ import annotations

import difflib
import json

TIME_SLACK = 0.5  # seconds: a line of a new transcript stands for an old one when both ends are this close
UNMATCHED = object()  # `renamed_label`: no label of the new transcript stands for the renamed speaker


def realign_words(words_json: str | None, old_text: str, new_text: str) -> str | None:
    """`segments.words` for a line whose text changed from `old_text` to `new_text`: words left as they were keep
    their times and probability (a change of letter case included), new words share the span of the words they
    replace (a word inserted gets the time where it goes, no length). None when there were no words, or when they
    did not spell the old text (they could not be placed)."""
    if not words_json:
        return None
    try:
        words = [w for w in json.loads(words_json) if str(w.get("word", "")).strip()]
    except (ValueError, TypeError, AttributeError):
        return None
    old_tokens = [str(w["word"]).strip() for w in words]
    new_tokens = new_text.split()
    if not words or old_tokens != old_text.split() or not new_tokens:
        return None
    lead = " " if str(words[0]["word"]).startswith(" ") else ""
    matcher = difflib.SequenceMatcher(None, [t.lower() for t in old_tokens], [t.lower() for t in new_tokens],
                                      autojunk=False)
    out: list[dict] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            for k in range(i2 - i1):
                word = dict(words[i1 + k])
                word["word"] = (" " if str(word["word"]).startswith(" ") else "") + new_tokens[j1 + k]
                out.append(word)
        elif op in ("replace", "insert"):
            if i2 > i1:
                begin, finish = float(words[i1]["start"]), float(words[i2 - 1]["end"])
            else:
                begin = finish = float(words[i1 - 1]["end"] if i1 > 0 else words[0]["start"])
            tokens = new_tokens[j1:j2]
            total = sum(len(t) for t in tokens)
            cursor = begin
            for token in tokens:
                share = (finish - begin) * len(token) / total
                out.append({"word": lead + token, "start": round(cursor, 3), "end": round(cursor + share, 3),
                            "probability": None})
                cursor += share
    return json.dumps(out, ensure_ascii=False)


def _same_times(line: dict, change: dict) -> bool:
    return abs(line["start"] - change["start"]) <= TIME_SLACK and abs(line["end"] - change["end"]) <= TIME_SLACK


def _folded(text: str | None) -> str:
    return " ".join((text or "").split()).casefold()


def line_for(lines: list[dict], change: dict, same_text: bool) -> dict | None:
    """The line of a new transcript that stands for a line a correction changed: the same times (within
    TIME_SLACK) and, with `same_text`, the same machine text (letter case and spacing aside). None: no line."""
    for line in lines:
        if _same_times(line, change) and (not same_text or _folded(line["text"]) == _folded(change["machine"][0])):
            return line
    return None


def renamed_label(lines: list[dict], changes: list[dict], old: str | None) -> str | None | object:
    """The new transcript's label for the speaker renamed in `changes`: the one whose lines overlap most with the
    renamed lines (`old` itself in an untimed transcript); UNMATCHED when no line overlaps."""
    timed = any(line["end"] > 0 for line in lines) and any(c["end"] > 0 for c in changes)
    if old is None or not timed:
        return old if any((line["speaker"] or None) == old for line in lines) else UNMATCHED
    overlap: dict[str, float] = {}
    for line in lines:
        if not line["speaker"]:
            continue  # a transcript without speakers gives no one a name
        for change in changes:
            seconds = min(line["end"], change["end"]) - max(line["start"], change["start"])
            if seconds > 0:
                overlap[line["speaker"]] = overlap.get(line["speaker"], 0.0) + seconds
    if not overlap:
        return UNMATCHED
    best = max(overlap, key=overlap.get)
    return best if overlap[best] >= sum(overlap.values()) / 2 else UNMATCHED  # no clear match: lapse
