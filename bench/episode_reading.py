"""How Datacast Episode 70's page reads in a real browser (issue 14): at 1280 and 390 px, how many screens down
the transcript starts, and for every takeaway's time link: how far the page scrolls when it is clicked (the
jump), whether playback is within a second of the takeaway, and where the sentence being spoken is to be read:
in the transcript (its top as a fraction of the window below the sticky player bar, when it is on screen) and in
the sticky bar's live caption (narrow screens: shown, and holding the transcript's current sentence).

The archive is bench/out/datacast.db (the real pipeline's, see bench/datacast_sections.py; copied, never
changed), served on loopback with the fake embedder; Debian's headless chromium.

Run:  .venv/bin/python bench/episode_reading.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from screenshots import CHROMIUM, CHROMIUM_ARGS, datacast_site  # noqa: E402

AUDIO = "document.getElementById('player-audio')"
SIZES = {"1280 px": {"width": 1280, "height": 800}, "390 px": {"width": 390, "height": 844}}


def measure(base: str, episode_id: int) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for name, viewport in SIZES.items():
            context = browser.new_context(viewport=viewport, is_mobile=viewport["width"] < 500)
            page = context.new_page()
            page.goto(f"{base}/episodes/{episode_id}")
            page.wait_for_function(f"{AUDIO}.readyState >= 1")
            transcript_top = page.evaluate("document.getElementById('transcript').getBoundingClientRect().top")
            page_height = page.evaluate("document.documentElement.scrollHeight")
            print(f"{name}: transcript starts {transcript_top / viewport['height']:.1f} screens down; "
                  f"page {page_height / viewport['height']:.1f} screens long")
            links = page.locator(".takeaway a.timecode")
            jumps, lands, offsets, rows = [], [], [], []
            for index in range(links.count()):
                link = links.nth(index)
                link.scroll_into_view_if_needed()
                start = float(link.get_attribute("data-t"))
                before = page.evaluate("window.scrollY")
                link.click()
                page.wait_for_function(f"Math.abs({AUDIO}.currentTime - {start}) <= 1", timeout=15000)
                page.evaluate(f"{AUDIO}.pause()")
                page.wait_for_timeout(900)
                after, top, bar, caption, link_top = page.evaluate(
                    "[window.scrollY, document.querySelector('#transcript .s.is-current').getBoundingClientRect().top,"
                    " document.getElementById('episode-bar').getBoundingClientRect().bottom, (() => {"
                    "  const c = document.getElementById('now-playing'), s = document.querySelector('#transcript .s.is-current');"
                    "  if (!c || c.hidden || !c.offsetParent) return 'hidden';"
                    "  const r = c.getBoundingClientRect(), same = c.textContent.split(/\\s+/).join(' ').trim()"
                    "    .endsWith(s.textContent.split(/\\s+/).join(' ').trim());"
                    "  return (r.top >= 0 && r.bottom <= window.innerHeight ? 'on screen' : 'off screen')"
                    "    + (same ? ', current sentence' : ', OTHER TEXT'); })(),"
                    f" document.querySelectorAll('.takeaway a.timecode')[{index}].getBoundingClientRect().top]")
                offsets.append(abs(page.evaluate(f"{AUDIO}.currentTime") - start))
                jumps.append(after - before)
                land = (top - bar) / (viewport["height"] - bar)
                if 0 <= land <= 1:
                    lands.append(land)
                rows.append(f"    takeaway {index + 1} at {start:.0f} s: jump {after - before:+.0f} px; transcript sentence "
                            + (f"at {land:.2f} of the window below the bar" if 0 <= land <= 1 else "off screen")
                            + f"; caption {caption}; clicked link at y={link_top:.0f}")
            print(f"  {len(jumps)} takeaways: page jump per click max {max(abs(j) for j in jumps):.0f} px "
                  f"(screen {viewport['height']} px), mean {sum(abs(j) for j in jumps) / len(jumps):.0f} px; "
                  + (f"transcript sentence on screen for {len(lands)}, at {min(lands):.2f}..{max(lands):.2f} of the "
                     "window below the bar; " if lands else "transcript sentence on screen for none; ")
                  + f"playback off by at most {max(offsets):.2f} s")
            print("\n".join(rows))
            context.close()
        browser.close()


def main() -> None:
    with datacast_site() as (base, episode_id):
        measure(base, episode_id)


if __name__ == "__main__":
    main()
