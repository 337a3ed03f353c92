"""Guests: who an episode is with, from the feed's podcast:person tags, the title, the notes and the transcript.

Sources, most trusted first (a person found by several keeps the first source):

1. **feed** - `feed_people` rows with role guest (podcast:person).
2. **title** - "... with Mohamed Elgendy", "... w/ Orit Peleg - #590", "... with A and B - TWiML Talk #236",
   "Jennifer Prendki Interview - ...". In a Title Case title without a series number, a name after "with" needs
   the notes, transcript or speakers to name it too ("... Monetize with Online Courses"); "Name: Topic" always
   needs the notes or the transcript speakers to confirm it.
3. **notes** - conservative patterns: "In this episode, Jakob Graff — Director of ...", "my guest (today) is X",
   "X, co-founder of Y, joins (us)", "we talk with X".
4. **transcript** - a speaker who is not the host and speaks at least a tenth of the words. Transcripts often
   label people by first name (DataTalks.Club: "Jakob"): such a label is matched to a full name found in the
   title or notes; a lone first name that matches nothing is not recorded.

A candidate must look like a personal name: two to five words, each capitalised (initials and particles such as
"van", "de", "y" allowed), none a common topic word ("Deep Learning" is not a person).

The host: the feed's host people (item, else channel level); in the transcript, the speaker label matching a host
name, else the speaker whose sentences are most often questions, ties to the first speaker (see `identify_host`).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter

import sqlite_utils

from archive.db import write_transaction
from archive.passages import split_sentences
from archive.people import HONORIFICS, clean_name, name_tokens, normalise_name, upsert_person
from archive.records import PersonRef, Segment
from archive.studio import producer_fields

PARTICLES = {"van", "von", "der", "den", "de", "del", "della", "di", "da", "du", "la", "le", "y", "bin", "al",
             "el", "ten", "ter", "dos", "das", "st"}
# Capitalised words that appear in titles but never as a person's name.
TOPIC_WORDS = {
    "ai", "ml", "machine", "learning", "deep", "data", "science", "scientist", "engineering", "engineer", "model",
    "models", "neural", "network", "networks", "python", "spark", "cloud", "aws", "google", "amazon", "microsoft",
    "facebook", "meta", "openai", "intel", "nvidia", "apple", "ibm", "interview", "podcast", "episode", "part",
    "panel", "talk", "twiml", "live", "bonus", "special", "the", "a", "an", "and", "of", "for", "to", "in", "on",
    "at", "with", "from", "how", "why", "what", "when", "structured", "unstructured", "analytics", "research",
    "team", "teams", "learn", "reinforcement", "vision", "language", "nlp", "llm", "llms", "gpt", "pytorch",
    "tensorflow", "kubernetes", "mlops", "ops", "devops", "sql", "graph", "graphs", "health", "healthcare",
    "robotics", "robot", "robots", "systems", "system", "platform", "startup", "startups", "product", "products",
    "business", "enterprise", "industry", "labs", "lab", "university", "institute", "inc", "corp", "company",
    "series", "summit", "conference", "week", "news", "roundup", "update", "updates", "day", "year", "edition",
    "ethics", "policy", "privacy", "security", "fairness", "bias", "computer", "computing", "quantum", "hardware",
    "software", "chip", "chips", "edge", "mobile", "web", "apps", "app", "tools", "tool", "open", "source",
    "generative", "intelligence", "artificial", "automated", "automl", "autonomous", "vehicles", "cars", "self",
    "driving", "big", "small", "new", "future", "state", "art", "everything", "everyone", "friends", "guests",
    "community", "cohort", "nexus", "time", "transformers", "transformer", "attention", "rnns",
    "cnns", "gans", "bayesian", "optimization", "inference", "training", "scale", "scaling", "production",
    "applied", "practical", "modern", "real", "world", "us", "me", "you", "our", "my", "your", "host", "guest",
    "speaker", "unknown", "moderator", "audience", "q&a", "questions", "answers", "ceo", "cto", "founder",
    "online", "course", "courses", "career", "careers", "job", "jobs", "interviews", "skills", "tips", "guide",
}
NOT_A_SPEAKER = re.compile(r"^(?:speaker|spk|host|guest|interviewer|interviewee|unknown|narrator|voice|audience|"
                           r"moderator|announcer)\b[\s_#-]*\w*$", re.IGNORECASE)

_NAME_WORD = (r"(?:[A-ZÀ-ÖØ-Þ][a-zà-öø-ÿA-ZÀ-ÖØ-Þıł'’-]*[a-zà-öø-ÿıł]"  # Mohamed, Berger-Wolf, McDonald
              r"|[A-ZÀ-ÖØ-Þ]{2,}(?![a-z])"  # CJ, OUAZZA (looks_like_name wants one mixed-case word too)
              r"|[A-Z]\.(?:\s?[A-Z]\.)*)")  # J. or J. M.
_PARTICLE = r"(?:van|von|der|den|de|del|della|di|da|du|la|le|y|bin|al|el|ten|ter|dos|das)"
_HONORIFIC = r"(?:(?:Dr|Prof|Mr|Mrs|Ms)\.?\s+)"
NAME_PATTERN = rf"{_HONORIFIC}?{_NAME_WORD}(?:\s+(?:{_PARTICLE}\s+)*{_NAME_WORD}){{1,4}}(?:,?\s+(?:Jr|Sr)\.?)?"
_TITLE_SUFFIX = re.compile(
    r"\s*(?:[-–—|]\s*)?(?:\(?(?:TWi?ML(?: Talk)?|Talk|Ep(?:isode)?\.?)?\s*#?\s*\d+\)?)(?:\s*\(video\))?\s*$"
    r"|\s*[-–—]\s*(?:TWi?ML(?: Talk)?)?\s*(?:\.\.\.|…)$",  # a title cut short: "... with Stuart Reid -..."
    re.IGNORECASE)
_INTERVIEW_FIRST = re.compile(rf"^(?P<names>{NAME_PATTERN}(?:\s*(?:&|and)\s*{NAME_PATTERN})*)\s+Interview\b")
_WITH = re.compile(r"(?:^|\s)(?:with|w/|featuring|feat\.|ft\.)\s+", re.IGNORECASE)
_SPLIT_NAMES = re.compile(r"\s*(?:,\s*(?:and\s+)?|\s+and\s+|\s*&\s*)\s*")


def looks_like_name(text: str) -> bool:
    """Two to five capitalised words (particles and initials allowed), none of them a topic word."""
    text = clean_name(text)
    if not re.fullmatch(NAME_PATTERN, text):
        return False
    words = [w for w in text.split() if w.strip(".").lower() not in HONORIFICS]
    if len(words) < 2:
        return False
    # "Quoc Le": a particle ends no name, so a last word counts even when it could be one
    significant = [w.strip(".") for w in words[:-1] if w.lower() not in PARTICLES] + [words[-1].strip(".")]
    if any(w.lower() in TOPIC_WORDS for w in significant):
        return False
    if not any(re.search(r"[a-zà-öø-ÿ]", w) for w in significant):
        return False  # all capitals or initials: an acronym run, not a name
    return len(significant) >= 2  # "D. Sculley" is a name; "Deep Learning" was refused above


def names_from_title(title: str | None) -> list[str]:
    """Guest names in an episode title: after the last "with" / "w/" (suffixes like "- #12" removed), or before
    "Interview" ("Jennifer Prendki Interview - Agile ML"). Several names joined by "and", "&" or commas are all
    returned, or none when one of them does not look like a name."""
    if not title:
        return []
    text = re.sub(r"\s+", " ", unicodedata.normalize("NFKC", title)).strip()
    first = _INTERVIEW_FIRST.match(text)
    if first:
        tail = first.group("names")
    else:
        text = _TITLE_SUFFIX.sub("", text).strip(" -–—|")
        text = re.sub(r"\s*\((?:panel|part \d+|live)\)\s*$", "", text, flags=re.IGNORECASE)
        matches = list(_WITH.finditer(text))
        if not matches:
            return []
        tail = text[matches[-1].end():].strip(" .!?,")
    tail = re.sub(r"[,\s]*(?:\.\.\.|…)$", "", tail)
    names = [clean_name(part) for part in _SPLIT_NAMES.split(tail) if part.strip()]
    if not names or not all(looks_like_name(name) for name in names):
        return []
    return names


def name_before_colon(title: str | None) -> str | None:
    """"Mohamed Elgendy: ML testing" -> "Mohamed Elgendy" (needs confirming: "Deep Learning: ..." is not a name)."""
    if not title or ":" not in title:
        return None
    head = clean_name(title.split(":", 1)[0])
    head = re.sub(r"^(?:episode|ep\.?)\s*\d+\s*[-–—]?\s*", "", head, flags=re.IGNORECASE)
    return head if looks_like_name(head) else None


_NOTES_PATTERNS = [
    # "In this episode, Jakob Graff — Director ..." / "In this episode Tanya Berger-Wolf, a computational ..."
    re.compile(rf"\bIn this (?:episode|talk|conversation|interview),?\s+(?:we (?:explore [^,—–]{{0,80}}? )?"
               rf"(?:talk|speak|chat|sit down)?\s*(?:with\s+)?)?(?P<name>{NAME_PATTERN})(?=\s*(?:[,—–(]|-\s|"
               r"\s(?:is|joins|walks|shares|talks|explains|discusses|breaks|explores|describes|returns)\b))"),
    re.compile(rf"\bIn this (?:episode|talk|conversation|interview)[^.]{{0,120}}?\bwith\s+(?P<name>{NAME_PATTERN})"
               r"(?=\s*(?:[,—–(.]|-\s))"),
    re.compile(rf"\b(?:[Mm]y|[Oo]ur) guest(?: today| this week)? is\s+(?P<name>{NAME_PATTERN})"),
    re.compile(rf"(?:^|[.!?]\s+|<p>)(?P<name>{NAME_PATTERN}),[^.]{{0,140}}?\bjoins (?:us|me|the show)\b"),
    re.compile(rf"\b(?:[Ww]e|I) (?:talk|speak|chat|sit down)(?:ed)? with\s+(?P<name>{NAME_PATTERN})"
               r"(?=\s*(?:[,—–(.]|-\s|\s(?:about|on)\b))"),
]


def names_from_notes(notes: str | None) -> list[str]:
    """Guest names introduced by the notes' usual phrasings (see module doc); conservative."""
    if not notes:
        return []
    text = clean_name(re.sub(r"<[^>]+>", " ", notes))
    found: list[str] = []
    for pattern in _NOTES_PATTERNS:
        for match in pattern.finditer(text):
            name = clean_name(match.group("name"))
            if looks_like_name(name) and normalise_name(name) not in {normalise_name(n) for n in found}:
                found.append(name)
    return found


def speaker_shares(segments: list[Segment]) -> Counter:
    """Characters spoken per speaker label (labels that are not names - long text, "Speaker 1" - left out)."""
    shares: Counter = Counter()
    for segment in segments:
        label = clean_name(segment.speaker or "").rstrip(".")
        if label and len(label) <= 40 and len(label.split()) <= 4 and not NOT_A_SPEAKER.match(label):
            shares[label] += len(segment.text)
    return shares


def _short_form_of(label: str, name: str) -> bool:
    """Whether `label` is `name` or a short form of it, a stricter test than archive.people.same_person (the
    search's): "Jakob" matches "Jakob Graff", "Juan Pablo" matches "Juan Pablo Murillo", "Swyx Wang" matches
    "Shawn Swyx Wang"; "Dr. Jakob Graff" matches "jakob graff"; "Graff" does not match "Jakob Graff"."""
    short, full = name_tokens(label), name_tokens(name)
    if not short or not full:
        return False
    if short == full:
        return True
    if len(short) == 1:
        return short[0] == full[0]
    return set(short) <= set(full) and (short[0] == full[0] or short[-1] == full[-1])


def identify_host(segments: list[Segment], host_names: list[str] = ()) -> str | None:
    """The host's speaker label in a transcript: the one matching a host name from the feed, else, among the
    speakers with a twentieth of the words or more, the one whose sentences are most often questions (guests ask
    questions too, but a smaller share of what they say); ties go to who spoke first. Diarization labels
    ("Speaker 1", "SPEAKER_00") count when fewer than two speakers are named. None without two speakers."""
    shares = speaker_shares(segments)
    if len(shares) < 2:
        shares = Counter()
        for segment in segments:
            label = clean_name(segment.speaker or "").rstrip(".")
            if label:
                shares[label] += len(segment.text)
    if len(shares) < 2:
        return None
    for label in shares:
        if any(_short_form_of(label, host) for host in host_names):
            return label
    total = sum(shares.values())
    regulars = {label for label, chars in shares.items() if chars / total >= 0.05}
    if len(regulars) < 2:
        regulars = set(shares)
    questions: Counter = Counter()
    sentences: Counter = Counter()
    first_seen: dict[str, int] = {}
    for index, segment in enumerate(segments):
        label = clean_name(segment.speaker or "").rstrip(".")
        if label not in regulars:
            continue
        first_seen.setdefault(label, index)
        said = split_sentences(segment.text)
        sentences[label] += len(said)
        questions[label] += sum(1 for s in said if s.rstrip().endswith("?"))
    return max(regulars, key=lambda label: (questions[label] / max(sentences[label], 1), -first_seen.get(label, 0)))


def _is_title_case(text: str) -> bool:
    words = [w for w in re.findall(r"[A-Za-z][A-Za-z'’-]*", text) if len(w) >= 4]
    return bool(words) and sum(w[0].isupper() for w in words) / len(words) >= 0.8


def _folded(text: str) -> str:
    return " " + " ".join(name_tokens(re.sub(r"<[^>]+>", " ", text or ""))) + " "


def _title_name_trusted(title: str, name: str, notes: str | None, segments: list[Segment], shares: Counter) -> bool:
    """A name after "with" is trusted when the title is numbered like an interview series ("- #12"), when
    capitals carry meaning (the title is not in Title Case), or when the notes, transcript or speakers name it:
    in a Title Case title, "with Online Courses" looks just like "with Orit Peleg"."""
    numbered = _TITLE_SUFFIX.search(title) or re.search(r"\bInterview\b", title)
    if numbered or not _is_title_case(title.split(" with ")[0]):
        return True
    key = f" {normalise_name(name)} "
    if key in _folded(notes or "") or any(_short_form_of(label, name) for label in shares):
        return True
    return key in _folded(" ".join(s.text for s in segments[:400]))


def _full_name_in_text(first_name: str, texts: list[str]) -> str | None:
    """A "First Last" in the texts whose first word is the speaker's label."""
    pattern = re.compile(rf"\b{re.escape(first_name)}\s+(?:{_PARTICLE}\s+)*{_NAME_WORD}(?:-{_NAME_WORD})?")
    for text in texts:
        for match in pattern.finditer(clean_name(re.sub(r"<[^>]+>", " ", text or ""))):
            if looks_like_name(match.group(0)):
                return clean_name(match.group(0))
    return None


def find_guests(title: str | None, notes: str | None, feed_people: list[dict], segments: list[Segment],
                host_names: list[str] = (), min_share: float = 0.1) -> list[PersonRef]:
    """The episode's guests, most trusted source first, one entry per person (see the module doc)."""
    hosts = list(host_names) + [p["name"] for p in feed_people if (p.get("role") or "").lower() == "host"]
    guests: list[PersonRef] = []

    def add(name: str, source: str, href: str | None = None, img: str | None = None, role: str = "guest") -> None:
        key = normalise_name(name)
        if not key or any(_short_form_of(name, host) or normalise_name(host) == key for host in hosts):
            return
        for existing in guests:
            if _short_form_of(name, existing.name) or _short_form_of(existing.name, name):
                existing.href = existing.href or href
                existing.img = existing.img or img
                return
        guests.append(PersonRef(name=clean_name(name), role=role, group=None, href=href, img=img, source=source))

    for person in feed_people:
        if (person.get("role") or "guest").lower() == "guest":
            add(person["name"], "feed", person.get("href"), person.get("img"))
    shares = speaker_shares(segments)
    for name in names_from_title(title):
        if _title_name_trusted(title, name, notes, segments, shares):
            add(name, "title")
    notes_names = names_from_notes(notes)
    host_label = identify_host(segments, hosts)
    colon_name = name_before_colon(title)
    if colon_name and (any(_short_form_of(colon_name, n) for n in notes_names)
                       or any(_short_form_of(label, colon_name) for label in shares)):
        add(colon_name, "title")
    for name in notes_names:
        add(name, "notes")
    total = sum(shares.values()) or 1
    for label, chars in shares.most_common():
        if label == host_label or chars / total < min_share:
            continue
        known = next((g.name for g in guests if _short_form_of(label, g.name)), None)
        if known:
            continue
        if looks_like_name(label):
            add(label, "transcript")
        elif len(label.split()) == 1:
            full = _full_name_in_text(label, [title or "", notes or ""])
            if full:
                add(full, "transcript")
    return guests


def feed_people_rows(db: sqlite_utils.Database, episode_id: int) -> list[dict]:
    if "feed_people" not in db.table_names():
        return []
    return list(db.query("SELECT * FROM feed_people WHERE episode_id = ?", [episode_id]))


def channel_hosts(db: sqlite_utils.Database, show_id: int) -> list[dict]:
    """Channel-level podcast:person entries with role host (shows.people JSON)."""
    rows = list(db.query("SELECT people FROM shows WHERE id = ?", [show_id]))
    try:
        people = json.loads(rows[0]["people"] or "[]") if rows else []
    except (ValueError, TypeError):
        return []
    return [p for p in people if isinstance(p, dict) and p.get("name")
            and (p.get("role") or "host").lower() == "host"]


def episode_hosts(db: sqlite_utils.Database, episode_id: int, show_id: int) -> list[PersonRef]:
    """The feed's hosts of an episode: item-level podcast:person hosts, else the channel's."""
    item = [p for p in feed_people_rows(db, episode_id) if (p["role"] or "").lower() == "host"]
    people = item or channel_hosts(db, show_id)
    return [PersonRef(name=p["name"], role="host", group=p.get("person_group") or p.get("group"),
                      href=p.get("href"), img=p.get("img"), source="feed") for p in people]


def save_guests(db: sqlite_utils.Database, episode_id: int, people: list[PersonRef]) -> list[int]:
    """Replace the episode's episode_people rows with `people` (hosts and guests), creating person records as
    needed. Feed-tagged people of other roles (podcast:person role="cohost", "producer", ...) are kept too, and
    so are the guests a producer set (archive/studio.py): the guests found are then left out.
    Returns the person ids in order."""
    others = [p for p in feed_people_rows(db, episode_id) if (p["role"] or "").lower() not in ("host", "guest")]
    refs = list(people) + [PersonRef(name=p["name"], role=p["role"].lower(), group=p["person_group"], href=p["href"],
                                     img=p["img"], source="feed") for p in others]
    ids = []
    with write_transaction(db):
        if "guests" in producer_fields(db, episode_id):
            refs = [ref for ref in refs if (ref.role or "guest").lower() != "guest"]
            db.execute("DELETE FROM episode_people WHERE episode_id = ? AND role != 'guest'", [episode_id])
        else:
            db.execute("DELETE FROM episode_people WHERE episode_id = ?", [episode_id])
        for ref in refs:
            try:
                person_id = upsert_person(db, ref.name, href=ref.href, img=ref.img)
            except ValueError:
                continue
            db["episode_people"].insert(
                {"episode_id": episode_id, "person_id": person_id, "role": (ref.role or "guest").lower(),
                 "person_group": ref.group, "source": ref.source},
                pk=("episode_id", "person_id", "role"), replace=True,
            )
            ids.append(person_id)
    return ids
