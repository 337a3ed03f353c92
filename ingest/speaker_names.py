"""Names for the speakers the diarizer found ("Speaker 1", "Speaker 2", ...), from what the feed says.

Transcript stage: reads what the feed stage wrote (the episode's title and notes, `feed_people`, the show's
channel-level people) and nothing later; writes the lines' speakers (with the transcript) and `speaker_labels`.

* The host: the feed's `podcast:person` host (the item's, else the channel's; one host only) is the speaker who
  speaks first (a host opens the show).
* The guest: one name, from the item's `podcast:person` guest, else the title ("... with Mohamed Elgendy",
  "Mohamed Elgendy: topic" when the notes name them too), else the notes ("my guest is ...", "Mohamed Elgendy is
  a ..." opening the notes); given to the speaker, other than the first, who speaks most (a guest does most of
  the talking), when that speaker has at least MIN_GUEST_SHARE of the speech.
* A lone speaker is named the host only when the feed names a host and no guest. Everyone else stays
  "Speaker N". Several hosts or several guests: not guessed.

Each label's name, how it was made (`method`), its share of the speech and a confidence go to `speaker_labels`.
A producer's rename (archive/corrections.py) is replayed on every new transcript by `save_transcript`, after
these names: the producer's name wins and survives re-runs.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, replace

import sqlite_utils

from archive.db import write_transaction
from archive.people import HONORIFICS, clean_name, display_name, name_tokens
from archive.records import Segment

MIN_GUEST_SHARE = 0.1
UNNAMED_LABEL = re.compile(r"^Speaker \d+$")

# Words that are capitalised in titles but are no one's name (a light list: a wrong name is worse than none)
NOT_NAME_WORDS = {
    "ai", "ml", "machine", "learning", "deep", "data", "science", "engineering", "episode", "part", "podcast",
    "interview", "talk", "live", "special", "bonus", "the", "a", "an", "and", "of", "for", "to", "in", "on", "with",
    "online", "course", "courses", "testing", "vision", "models", "model", "systems", "show", "news", "week",
    "team", "teams", "friends", "guests", "everyone", "us", "me", "you", "our", "my", "your", "clip", "opening",
    "q&a", "panel", "intro", "introduction", "trailer", "update", "summit", "conference",
}
_WORD = r"[A-ZÀ-ÖØ-Þ][a-zà-öø-ÿ'’-]*[a-zà-öø-ÿ]|[A-Z]\."
_NAME = rf"(?:(?:Dr|Prof|Mr|Mrs|Ms)\.?\s+)?(?:{_WORD})(?:\s+(?:van|von|de|del|der|di|da|le|la|al|el|bin)?\s*(?:{_WORD})){{1,3}}"
_WITH = re.compile(rf"(?:^|\s)(?:with|w/|featuring|feat\.|ft\.)\s+(?P<names>{_NAME}(?:\s*(?:,|&|and)\s*{_NAME})*)"
                   r"\s*(?:$|[-–—|(#])")
_NOTES = [
    re.compile(rf"\b(?:[Mm]y|[Oo]ur) guest(?: today| this week)? is\s+(?P<name>{_NAME})"),
    re.compile(rf"\bIn this (?:episode|conversation|interview),?\s+(?:I (?:talk|speak|chat) with\s+)?(?P<name>{_NAME})"
               r"(?=\s*(?:[,—–(]|\s(?:is|joins|shares|talks|explains)\b))"),
    re.compile(rf"\b(?:[Ww]e|I) (?:talk|speak|chat)(?:ed)? with\s+(?P<name>{_NAME})(?=\s*[,—–(.])"),
    re.compile(rf"^(?P<name>{_NAME}) (?:is|was) (?:a|an|the)\b"),
]


@dataclass
class SpeakerLabel:
    label: str  # the diarizer's: "Speaker 1", ...
    name: str  # what the lines show: a person's name, or the label
    method: str  # "podcast:person host, first speaker", "title, most speech", ..., "unnamed"
    share: float  # of the speech (seconds of its lines over all lines')
    confidence: float | None = None  # 0..1, a rule of thumb (see `name_speakers`); None when unnamed


def _is_name(text: str) -> bool:
    words = [w for w in clean_name(text).split() if w.rstrip(".").lower() not in HONORIFICS]
    return 2 <= len(words) <= 4 and not any(w.strip(".").lower() in NOT_NAME_WORDS for w in words)


def _plain(text: str | None) -> str:
    text = re.sub(r"<[^>]+>", " ", text or "")
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip()


def title_guests(title: str | None, notes: str | None = None) -> list[str]:
    """Guest names in a title: "... with A (and B)" (an ending in brackets or after a dash left out), or "Name:
    topic" when the notes name them too."""
    title = _plain(title)
    text = re.sub(r"\s*\([^)]*\)\s*$", "", title)
    match = _WITH.search(text)
    if match:
        names = [clean_name(n) for n in re.split(r"\s*(?:,|&|\band\b)\s*", match.group("names")) if n.strip()]
        if names and all(_is_name(n) for n in names):
            return names
    head = clean_name(title.split(":", 1)[0]) if ":" in title else ""
    if head and re.fullmatch(_NAME, head) and _is_name(head) and _mentions(notes, head):
        return [head]
    return []


def notes_guests(notes: str | None) -> list[str]:
    text, found = _plain(notes), []
    for pattern in _NOTES:
        for match in pattern.finditer(text):
            name = clean_name(match.group("name"))
            if _is_name(name) and name_tokens(name) not in [name_tokens(n) for n in found]:
                found.append(name)
    return found


def _mentions(text: str | None, name: str) -> bool:
    return " ".join(name_tokens(name)) in " ".join(name_tokens(_plain(text)))


def feed_hosts_and_guests(db: sqlite_utils.Database, episode_id: int) -> tuple[list[str], list[tuple[str, str]]]:
    """The feed's hosts (item podcast:person, else channel) and the guest candidates with where each came from."""
    episode = db["episodes"].get(episode_id)
    people = list(db.query("SELECT name, role FROM feed_people WHERE episode_id = ?", [episode_id])) \
        if "feed_people" in db.table_names() else []
    hosts = [p["name"] for p in people if (p["role"] or "").lower() == "host"]
    if not hosts:
        row = db.execute("SELECT people FROM shows WHERE id = ?", [episode["show_id"]]).fetchone()
        try:
            channel = json.loads(row[0] or "[]") if row else []
        except (TypeError, ValueError):
            channel = []
        hosts = [p["name"] for p in channel if isinstance(p, dict) and p.get("name")
                 and (p.get("role") or "host").lower() == "host"]
    notes = " ".join(filter(None, [episode.get("description"), episode.get("notes_text")]))
    guests = [(p["name"], "podcast:person guest") for p in people if (p["role"] or "").lower() == "guest"]
    if not guests:
        guests = [(n, "title") for n in title_guests(episode.get("title"), notes)]
    if not guests:
        guests = [(n, "notes") for n in notes_guests(notes)]
    host_keys = {tuple(name_tokens(h)) for h in hosts}
    return hosts, [(n, how) for n, how in guests if tuple(name_tokens(n)) not in host_keys]


def name_speakers(segments: list[Segment], hosts: list[str], guests: list[tuple[str, str]]
                  ) -> tuple[list[Segment], list[SpeakerLabel]]:
    """The lines with the diarizer's labels replaced by names where the rules of the module doc allow, and how
    each label was named. Only labels of the form "Speaker N" are named. Confidence: 0.9 for the host when the
    first speaker also speaks less than the one named guest, else 0.7; 0.9 for the guest when they speak most of
    all, else 0.7; 0.5 for a lone speaker named the host."""
    seconds: dict[str, float] = {}
    for segment in segments:
        if segment.speaker:
            seconds[segment.speaker] = seconds.get(segment.speaker, 0.0) + max(segment.end - segment.start, 0.0)
    if not seconds or not all(UNNAMED_LABEL.match(label) for label in seconds):
        return segments, []
    total = sum(seconds.values()) or 1.0
    order = list(seconds)  # first appearance
    share = {label: seconds[label] / total for label in order}
    named: dict[str, tuple[str, str, float]] = {}
    host = display_name(hosts[0]) if len(set(map(lambda h: tuple(name_tokens(h)), hosts))) == 1 else None
    guest = (display_name(guests[0][0]), guests[0][1]) if len(guests) == 1 else None
    first = order[0]
    others = sorted(order[1:], key=lambda label: -seconds[label])
    guest_label = others[0] if others and guest and share[others[0]] >= MIN_GUEST_SHARE else None
    if guest_label:
        most = max(order, key=lambda label: seconds[label]) == guest_label
        named[guest_label] = (guest[0], f"{guest[1]}, most speech", 0.9 if most else 0.7)
    if host and len(order) > 1:
        quieter = guest_label is not None and seconds[first] < seconds[guest_label]
        named[first] = (host, "podcast:person host, first speaker", 0.9 if quieter else 0.7)
    elif host and not guests:
        named[first] = (host, "podcast:person host, only speaker", 0.5)
    labels = [SpeakerLabel(label, *(named[label] if label in named else (label, "unnamed", None))[:2],
                           round(share[label], 4), named[label][2] if label in named else None)
              for label in order]
    names = {item.label: item.name for item in labels}
    return [replace(s, speaker=names.get(s.speaker, s.speaker)) for s in segments], labels


def name_episode_speakers(db: sqlite_utils.Database, episode_id: int, segments: list[Segment]
                          ) -> tuple[list[Segment], list[SpeakerLabel]]:
    """`name_speakers` with the episode's feed hosts and guest candidates."""
    hosts, guests = feed_hosts_and_guests(db, episode_id)
    return name_speakers(segments, hosts, guests)


def name_and_record(db: sqlite_utils.Database, episode_id: int, segments: list[Segment]) -> list[Segment]:
    """The lines with their speakers named, `speaker_labels` written (in the caller's transaction, before the
    transcript is saved: see ingest/pipeline.py `save_whisper_transcript`, archive/transcription_tasks.py)."""
    segments, labels = name_episode_speakers(db, episode_id, segments)
    save_speaker_labels(db, episode_id, labels)
    return segments


def save_speaker_labels(db: sqlite_utils.Database, episode_id: int, labels: list[SpeakerLabel]) -> None:
    """Replace the episode's `speaker_labels` (inside the caller's transaction, if any)."""
    with write_transaction(db):
        db.execute("DELETE FROM speaker_labels WHERE episode_id = ?", [episode_id])
        for item in labels:
            db.execute("INSERT INTO speaker_labels (episode_id, label, name, method, share, confidence) "
                       "VALUES (?, ?, ?, ?, ?, ?)",
                       [episode_id, item.label, item.name, item.method, item.share, item.confidence])


def speaker_labels(db: sqlite_utils.Database, episode_id: int) -> list[dict]:
    return list(db.query("SELECT label, name, method, share, confidence FROM speaker_labels WHERE episode_id = ? "
                         "ORDER BY rowid", [episode_id]))
