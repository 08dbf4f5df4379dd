"""The progress bar of ``stream(progress=True)``: tqdm in terminals and notebooks, nothing otherwise."""

from __future__ import annotations

import time


class ProgressBar:
    """A tqdm bar counting processed alerts (or a no-op when disabled).

    Updates are batched: tqdm's own ``update`` costs microseconds, too much per alert at LSST rates.
    """

    def __init__(self, enabled: bool, total: int | None = None, desc: str = "Alerts") -> None:
        self.total = total
        self._bar = None
        self._pending = 0
        self._flushed = time.monotonic()
        if enabled:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=" alerts", mininterval=0.5, smoothing=0.1)

    def update(self, n: int = 1) -> None:
        if self._bar is None:
            return
        self._pending += n
        now = time.monotonic()
        if now - self._flushed >= 0.2:
            self._flush(now)

    def _flush(self, now: float) -> None:
        assert self._bar is not None  # only an enabled bar has pending updates
        self._bar.update(self._pending)
        self._pending = 0
        self._flushed = now

    def set_total(self, total: int) -> None:
        self.total = total
        if self._bar is not None:
            self._bar.total = total
            self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._flush(time.monotonic())
            self._bar.close()
            self._bar = None
