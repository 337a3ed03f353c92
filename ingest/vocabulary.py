"""An episode's vocabulary for Whisper: the names and terms a listener will search for, so Whisper hears them right.

Whisper takes a text prompt as if it were the transcript so far (faster-whisper's `initial_prompt`); a prompt that
names "Rakuten", "Kolena" and "Amazon" makes the model write those words where it would otherwise hear "ML on".
The names come from what the feed already says: the episode's title and notes, its `podcast:person` entries, the
show's title and people, and the titles of the show's earlier episodes. They are ranked (people first, then
what the title and the notes name most often) and cut to a budget: a long prompt leaves less room for the
transcript's own context and, past a point, makes Whisper repeat it (bench/names.py; figures in the README).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import sqlite_utils

# Capitalised words that are ordinary words at the start of a sentence or heading, not names.
COMMON_WORDS = set("""
a about after again all also an and another any are as at back be because before being both but by can could
did do does doing during each even every few for from further had has have having he her here hers him his how
however i if in initially instead into is it its just key let like many may me more most my next no nor not now
of off on once one only or other our out over own part same she should since so some still such than that the
their them then there these they this those through to too under until up very was we well were what when where
which while who why will with within would yes yet you your episode episodes show podcast takeaways takeaway
notes season interview today guest host welcome thanks thank listen subscribe links resources
""".split())
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9'’.+&-]*[A-Za-z0-9+]|[A-Z]")
_SENTENCE_END = re.compile(r"[.!?:;\n\"“”]\s*$")


@dataclass(frozen=True)
class VocabularyOptions:
    max_chars: int = 400  # about 100 tokens; bench/names.py compares lengths (figures in the README)
    earlier_episodes: int = 20  # titles of the show's latest earlier episodes that may lend names


def names_in(text: str) -> Counter:
    """Names and terms in a text, with how often each occurs: capitalised words that are not just the first word
    of a sentence ("Rakuten", "Elgendy"), acronyms ("NLP") and inner capitals ("TensorFlow") anywhere. A
    possessive counts as the name ("Amazon's" -> "Amazon")."""
    found: Counter = Counter()
    for line in re.split(r"\n+", text or ""):
        for match in _WORD.finditer(line):
            word = re.sub(r"['’]s$", "", match.group()).strip(".'’-&")
            sentence_start = not line[:match.start()].strip() or bool(_SENTENCE_END.search(line[:match.start()]))
            if _is_name(word, sentence_start):
                found[word] += 1
    return found


def _is_name(word: str, sentence_start: bool) -> bool:
    if len(word) < 2 or not word[0].isupper() or word.lower() in COMMON_WORDS:
        return False
    if word.isupper() or any(c.isupper() for c in word[1:]):  # NLP, TensorFlow, MLOps
        return True
    return not sentence_start


def episode_vocabulary(db: sqlite_utils.Database, episode_id: int, options: VocabularyOptions | None = None) -> list[str]:
    """The names and terms of an episode, most useful first."""
    options = options or VocabularyOptions()
    episode = db.execute("SELECT show_id, title, notes_text, description FROM episodes WHERE id = ?",
                         [episode_id]).fetchone()
    if episode is None:
        return []
    show_id, title, notes, description = episode
    people = [row[0] for row in db.execute(
        "SELECT name FROM feed_people WHERE episode_id = ? ORDER BY role = 'host', name", [episode_id])]
    show_title = db.execute("SELECT title FROM shows WHERE id = ?", [show_id]).fetchone()[0]
    counts = names_in(notes or description or "")
    for name in names_in(title or ""):
        counts[name] += 3  # what the title names is what the episode is about
    earlier = Counter()
    for (other_title,) in db.execute(
            "SELECT title FROM episodes WHERE show_id = ? AND id != ? AND title IS NOT NULL "
            "ORDER BY published DESC, id DESC LIMIT ?", [show_id, episode_id, options.earlier_episodes]):
        earlier.update(names_in(other_title))
    ranked = [*people, *(name for name, _ in counts.most_common()), *(name for name, _ in earlier.most_common())]
    if show_title:
        ranked.insert(len(people), show_title)
    return _distinct(ranked)


def _distinct(names: list[str]) -> list[str]:
    seen, kept = set(), []
    for name in names:
        key = name.casefold()
        if key not in seen:
            seen.add(key)
            kept.append(name)
    return kept


def whisper_prompt(vocabulary: list[str], max_chars: int = VocabularyOptions.max_chars) -> str | None:
    """The vocabulary as a prompt Whisper reads as earlier transcript: names separated by commas, cut to the
    budget at a name boundary. None when there is nothing to say."""
    kept, size = [], 0
    for name in vocabulary:
        if size + len(name) + 2 > max_chars:
            break
        kept.append(name)
        size += len(name) + 2
    return ", ".join(kept) + "." if kept else None

