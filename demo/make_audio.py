"""Give the demo episodes that carry a transcript real audio, spoken by espeak-ng, one voice per speaker.

Each cue of episode-2.vtt and episode-3.srt is spoken by its speaker's voice; the cues follow each other with a
short pause, and the transcript's cue times (and episode 2's chapter times) are rewritten to where each cue is
really spoken, so the site plays a line at its moment. The MP3 files are committed: this script is only needed to
make them again (it needs espeak-ng and ffmpeg: `apt-get install espeak-ng ffmpeg`).

    .venv/bin/python demo/make_audio.py
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import wave
from pathlib import Path

import srt
import webvtt

DEMO = Path(__file__).resolve().parent
VOICES = {"Ada Field": ("en-us+f3", 165), "Lena Brandt": ("en-gb+f4", 160), "Tomas Reyes": ("en-us+m3", 155)}
PAUSE = 0.45  # seconds of silence between cues
RATE = 22050


def speak(text: str, voice: str, speed: int, out: Path) -> float:
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(out), text], check=True)
    with wave.open(str(out)) as w:
        return w.getnframes() / w.getframerate()


def render(lines: list[tuple[str, str]], mp3: Path) -> list[tuple[float, float]]:
    """Speak (speaker, text) lines into one MP3; returns each line's (start, end)."""
    times, files, at = [], [], 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for i, (speaker, text) in enumerate(lines):
            voice, speed = VOICES[speaker]
            path = Path(tmp) / f"{i:03d}.wav"
            length = speak(text, voice, speed, path)
            times.append((round(at, 3), round(at + length, 3)))
            files.append(path)
            at += length + PAUSE
        inputs = "".join(f"file '{f}'\nfile '{Path(tmp) / 'pause.wav'}'\n" for f in files)
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                        f"anullsrc=r={RATE}:cl=mono", "-t", str(PAUSE), str(Path(tmp) / "pause.wav")], check=True)
        (Path(tmp) / "list.txt").write_text(inputs)
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "concat", "-safe", "0", "-i",
                        str(Path(tmp) / "list.txt"), "-ar", str(RATE), "-ac", "1", "-b:a", "32k", str(mp3)],
                       check=True)
    return times


def vtt_episode() -> None:
    path = DEMO / "episode-2.vtt"
    captions = webvtt.read(str(path))
    lines = [(re.match(r"<v ([^>]+)>", c.raw_text).group(1), re.sub(r"<[^>]+>", "", c.raw_text).strip())
             for c in captions]
    old_starts = [c.start_in_seconds for c in captions]
    times = render(lines, DEMO / "episode-2.mp3")
    cues = [f"{clock(start, '.')} --> {clock(end, '.')}\n<v {speaker}>{text}\n"
            for (speaker, text), (start, end) in zip(lines, times)]
    path.write_text("WEBVTT\n\n" + "\n".join(cues))
    chapters_path = DEMO / "episode-2-chapters.json"
    chapters = json.loads(chapters_path.read_text())
    for chapter in chapters["chapters"]:  # a chapter starts where its first cue now starts
        chapter["startTime"] = times[old_starts.index(float(chapter["startTime"]))][0]
    chapters_path.write_text("{\n  \"version\": \"1.2.0\",\n  \"chapters\": [\n"
                             + ",\n".join(f"    {json.dumps(c)}" for c in chapters["chapters"]) + "\n  ]\n}\n")


def srt_episode() -> None:
    path = DEMO / "episode-3.srt"
    subtitles = list(srt.parse(path.read_text()))
    lines = [tuple(part.strip() for part in s.content.split(":", 1)) for s in subtitles]
    times = render(lines, DEMO / "episode-3.mp3")
    path.write_text("\n".join(f"{i}\n{clock(start, ',')} --> {clock(end, ',')}\n{speaker}: {text}\n"
                              for i, ((speaker, text), (start, end)) in enumerate(zip(lines, times), 1)))


def clock(seconds: float, mark: str) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}{mark}{ms % 1000:03d}"


if __name__ == "__main__":
    vtt_episode()
    srt_episode()
