"""Names Whisper hears right: name recall and word error rate on Datacast Episode 70, with and without the
episode's vocabulary (ingest/vocabulary.py) given to Whisper as a prompt or as hotwords.

    .venv/bin/python bench/names.py [--variants none,prompt-400,...] [--beam-size 5]

The vocabulary is what the pipeline would give: the Datacast fixture feed (`feed.xml`: title, notes,
podcast:person) read into a scratch archive, then `episode_vocabulary()`. Name recall: the names of the reference
text (`names_in`: capitalised words that are not just a sentence's first word, acronyms, inner capitals) and how
many of their occurrences in the reference the transcript has (each name: min(reference count, transcript count),
whole words, any case), over all occurrences. Word error rate as in bench/_common.py. One model load; each variant
one transcription of the 11 min 42 s episode.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections import Counter

from _common import SHARED, word_error_rate

AUDIO = SHARED / "datacast" / "episode-070.mp3"
REFERENCE = SHARED / "datacast" / "episode-070-audio-reference.txt"
FEED = SHARED / "datacast" / "feed.xml"
VARIANTS = ("none", "prompt-200", "prompt-400", "prompt-800", "hotwords-400")
# Also measured: "-nocond" after any variant ("none-0-nocond", "prompt-200-nocond", "hotwords-100-nocond"): Whisper
# not conditioned on its own previous text (faster-whisper's condition_on_previous_text=False), run on the model
# directly since the pipeline does not offer it.


def vocabulary() -> list[str]:
    from archive.db import memory_db
    from ingest.pipeline import IngestOptions, ingest_sources
    from ingest.vocabulary import episode_vocabulary

    db = memory_db()
    ingest_sources(db, [str(FEED)], IngestOptions(metadata_only=True))
    episode_id = db.execute("SELECT id FROM episodes").fetchone()[0]
    return episode_vocabulary(db, episode_id)


def name_recall(reference: str, hypothesis: str) -> tuple[float, int, int, dict]:
    from ingest.vocabulary import names_in

    names = names_in(reference)
    found, total, missed = 0, 0, {}
    for name in names:
        wanted = len(re.findall(rf"(?<![\w-]){re.escape(name)}(?![\w-])", reference))
        got = len(re.findall(rf"(?<![\w-]){re.escape(name)}(?![\w-])", hypothesis, re.IGNORECASE))
        total += wanted
        found += min(wanted, got)
        if got < wanted:
            missed[name] = f"{got}/{wanted}"
    return (found / total if total else 1.0), found, total, missed


def options_for(variant: str, words: list[str], beam_size: int):
    from ingest.transcribe import TranscriptionOptions
    from ingest.vocabulary import whisper_prompt

    options = TranscriptionOptions(beam_size=beam_size)
    kind, _, size = variant.removesuffix("-nocond").partition("-")
    if kind == "none":
        return options
    text = whisper_prompt(words, int(size))
    if kind == "prompt":
        options.initial_prompt = text
    elif kind == "hotwords":
        options.hotwords = text
    else:
        raise SystemExit(f"unknown variant {variant}")
    return options


def unconditioned(model, options) -> list:
    """The episode transcribed with each window decoded without the previous window's text as its prompt."""
    from ingest.audio import load_audio

    segments, _ = model.transcribe(load_audio(AUDIO, 16000), language=options.language, beam_size=options.beam_size,
                                   initial_prompt=options.initial_prompt, hotwords=options.hotwords,
                                   condition_on_previous_text=False)
    return list(segments)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--beam-size", type=int, default=5)
    args = parser.parse_args()
    from ingest.transcribe import load_whisper, transcribe_file

    reference = REFERENCE.read_text()
    words = vocabulary()
    print(f"vocabulary ({len(words)}): {', '.join(words[:40])}{' ...' if len(words) > 40 else ''}")
    model = load_whisper()
    rows = []
    for variant in args.variants.split(","):
        options = options_for(variant, words, args.beam_size)
        started = time.perf_counter()
        if variant.endswith("-nocond"):
            segments = unconditioned(model, options)
        else:
            segments, _ = transcribe_file(AUDIO, options, model=model)
        seconds = time.perf_counter() - started
        text = " ".join(s.text for s in segments)
        recall, found, total, missed = name_recall(reference, text)
        wer = word_error_rate([reference], [text])
        rows.append({"variant": variant, "name_recall": round(recall, 3), "found": found, "total": total,
                     "wer": round(wer, 4), "seconds": round(seconds, 1), "missed": missed,
                     "prompt_chars": len(options.initial_prompt or options.hotwords or "")})
        print(f"{variant:14s} name recall {recall:.3f} ({found}/{total})  WER {wer:.2%}  {seconds:.0f} s  "
              f"missed: {', '.join(f'{k} {v}' for k, v in sorted(missed.items()))}", flush=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
