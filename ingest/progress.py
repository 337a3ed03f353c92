"""Progress bars for long stages (tqdm), written to stderr; silent when disabled."""

from __future__ import annotations

from contextlib import contextmanager

from tqdm import tqdm


class Bar:
    def __init__(self, bar: tqdm):
        self._bar = bar

    def update(self, n: float = 1) -> None:
        self._bar.update(n)

    def bytes_callback(self, done: int, total: int | None) -> None:
        """For downloads: absolute bytes done out of total (None when the server does not say)."""
        if total and self._bar.total != total:
            self._bar.total = total
        self._bar.update(done - self._bar.n)

    def seconds_callback(self, done: float, total: float | None) -> None:
        """For transcription: audio seconds done out of the audio's duration."""
        if total and self._bar.total != total:
            self._bar.total = round(total, 1)
        self._bar.update(round(done - self._bar.n, 1))


class Progress:
    def __init__(self, enabled: bool = True):
        self.enabled = enabled

    @contextmanager
    def bar(self, total=None, desc: str = "", unit: str = "it", **kwargs):
        bar = tqdm(total=total, desc=desc, unit=unit, disable=not self.enabled, dynamic_ncols=True, **kwargs)
        try:
            yield Bar(bar)
        finally:
            bar.close()
