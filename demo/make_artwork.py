"""Make the demo show's artwork (cover.png) and Episode 2's (episode-2.png): drawn here, for the project.

Run from the project root:  .venv/bin/python demo/make_artwork.py
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

HERE = Path(__file__).resolve().parent
SIZE = 1400  # the size podcast directories ask for; the archive stores it fitted into 600 px


def cover(path: Path, title: str, subtitle: str, background: tuple, accent: tuple) -> None:
    image = Image.new("RGB", (SIZE, SIZE), background)
    draw = ImageDraw.Draw(image)
    for n in range(9):  # a waveform: the sound the archive turns into text
        height = (180, 420, 640, 300, 760, 520, 260, 600, 340)[n]
        x = 230 + n * 118
        draw.rounded_rectangle((x, 560 - height // 2, x + 64, 560 + height // 2), radius=32, fill=accent)
    draw.text((SIZE // 2, 1060), title, font=ImageFont.load_default(size=130), fill="white", anchor="mm")
    draw.text((SIZE // 2, 1210), subtitle, font=ImageFont.load_default(size=72), fill=accent, anchor="mm")
    image.save(path, optimize=True)


if __name__ == "__main__":
    cover(HERE / "cover.png", "Demo Show", "a podarchive demo", (24, 42, 66), (255, 183, 77))
    cover(HERE / "episode-2.png", "Episode 2", "search by meaning", (38, 70, 53), (144, 238, 144))
