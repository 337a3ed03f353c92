"""Word error rate of the default Whisper set-up on real human speech (fixtures/audio).

    .venv/bin/python bench/wer.py [--model NAME_OR_FOLDER] [--beam-size N]

Sets and their references:
- ljspeech: 32 LJSpeech clips (one reader), reference = transcripts.psv (tacotron2's normalised text column).
- sonnets: 3 LibriVox readings of Shakespeare's sonnets, reference = the sonnet's lines in sonnet_p00N.xhtml.
  The reader announces the number first; the xhtml holds it as a roman numeral, so the reference begins with
  the number as spoken words ("sonnet" is not read), e.g. "one".
- jfk: the 11 s JFK clip, reference.txt.
- sense_and_sensibility: 5 LibriVox clips, reference = the *.txt beside each wav (lower case, no punctuation).
WER is corpus-level per set (all errors over all reference words), and pooled over every clip for "overall".
Normalisation: see bench/_common.py.
"""

from __future__ import annotations

import argparse
import html
import re
from pathlib import Path

from _common import SHARED, normalize, timed, word_error_rate

AUDIO = SHARED / "audio"
ROMAN = {"I": "one", "II": "two", "III": "three"}


def ljspeech() -> list[tuple[Path, str]]:
    folder = AUDIO / "ljspeech"
    lines = (folder / "transcripts.psv").read_text().splitlines()
    pairs = [line.split("|", 1) for line in lines if "|" in line]
    return [(folder / f"{clip}.mp3", text) for clip, text in pairs if (folder / f"{clip}.mp3").exists()]


def sonnets() -> list[tuple[Path, str]]:
    folder = AUDIO / "librivox_sonnets"
    clips = []
    for mp3 in sorted(folder.glob("sonnet_p*.mp3")):
        page = mp3.with_suffix(".xhtml").read_text()
        number = re.search(r"<h1>\s*<span[^>]*>([IVXLC]+)</span>", page).group(1)
        body = page[page.index('id="divSonnet"'):]
        lines = [html.unescape(re.sub(r"<[^>]+>", "", line)) for line in re.findall(r"<span[^>]*>(.*?)</span>", body)]
        clips.append((mp3, " ".join([ROMAN.get(number, number)] + lines)))
    return clips


def jfk() -> list[tuple[Path, str]]:
    folder = AUDIO / "jfk"
    return [(folder / "jfk.wav", (folder / "reference.txt").read_text())]


def sense_and_sensibility() -> list[tuple[Path, str]]:
    folder = AUDIO / "librivox_sense_and_sensibility"
    return [(wav, wav.with_suffix(".txt").read_text()) for wav in sorted(folder.glob("*.wav"))]


SETS = {"ljspeech": ljspeech, "sonnets": sonnets, "jfk": jfk, "sense_and_sensibility": sense_and_sensibility}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="Whisper model name or folder (default: bundled tiny.en)")
    parser.add_argument("--beam-size", type=int, default=None)
    parser.add_argument("--show", action="store_true", help="print each hypothesis next to its reference")
    args = parser.parse_args()

    from ingest.transcribe import TranscriptionOptions, load_whisper, transcribe_file

    options = TranscriptionOptions(model=args.model)
    if args.beam_size:
        options.beam_size = args.beam_size
    model = load_whisper(options)
    print(f"model: {options.model or 'bundled tiny.en'}, beam {options.beam_size}, {options.resolved().compute_type}")
    all_refs, all_hyps, audio_seconds = [], [], 0.0
    with timed() as elapsed:
        for name, clips in SETS.items():
            refs, hyps = [], []
            for path, reference in clips():
                segments, _ = transcribe_file(path, options, model=model)
                hypothesis = " ".join(s.text for s in segments)
                refs.append(reference)
                hyps.append(hypothesis)
                audio_seconds += segments[-1].end if segments else 0
                if args.show:
                    print(f"  {path.name}\n    ref: {normalize(reference)}\n    hyp: {normalize(hypothesis)}")
            words = sum(len(normalize(r).split()) for r in refs)
            print(f"{name:22} clips {len(refs):3}  words {words:5}  WER {word_error_rate(refs, hyps):.3f}", flush=True)
            all_refs += refs
            all_hyps += hyps
    words = sum(len(normalize(r).split()) for r in all_refs)
    print(f"{'overall':22} clips {len(all_refs):3}  words {words:5}  WER {word_error_rate(all_refs, all_hyps):.3f}")
    print(f"wall {elapsed():.1f} s for about {audio_seconds:.0f} s of speech")


if __name__ == "__main__":
    main()
