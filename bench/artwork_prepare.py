"""How long ingest/artwork.py takes to decode, fit and re-encode one feed image (the CPU part of the artwork stage;
the download is the host's). A photo-like (noisy) image at the sizes podcast directories ask for and above.

Run:  .venv/bin/python bench/artwork_prepare.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from ingest.artwork import prepare_artwork  # noqa: E402


def noisy_image(side: int, fmt: str) -> bytes:
    pixels = (np.random.default_rng(side).random((side, side, 3)) * 255).astype("uint8")
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    for side, fmt in ((1400, "JPEG"), (3000, "JPEG"), (1400, "PNG")):
        data = noisy_image(side, fmt)
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            prepared = prepare_artwork(data)
            times.append(time.perf_counter() - started)
        print(f"{side} x {side} {fmt} ({len(data) / 1e6:.1f} MB) -> {prepared.width} x {prepared.height} "
              f"{prepared.content_type} ({len(prepared.data) / 1e3:.0f} KB): median "
              f"{statistics.median(times) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
