"""A one-line progress bar on stderr for long commands, drawn only on a terminal.

No dependency: a carriage return and the line redrawn at most a few times a second. Nothing is
drawn before `after_s` (a short run stays silent) or when the stream is not a terminal (a pipe
or a file gets no control characters), and `clear` erases the line so the next line printed,
such as a command's JSON summary, starts clean.
"""

from __future__ import annotations

import time
from typing import TextIO

WIDTH = 30


class Progress:
    def __init__(
        self,
        stream: TextIO,
        *,
        started: float | None = None,
        after_s: float = 2.0,
        every_s: float = 0.2,
    ) -> None:
        try:
            self.live = stream.isatty()
        except (AttributeError, ValueError):
            self.live = False
        self.stream = stream
        self.started = time.perf_counter() if started is None else started
        self.after_s = after_s
        self.every_s = every_s
        self.drawn_at: float | None = None

    def update(self, phase: str, done: int, total: int) -> None:
        """Redraws the bar (phase, percent, done/total) when due."""
        if not self.live:
            return
        now = time.perf_counter()
        if now - self.started < self.after_s:
            return
        if self.drawn_at is not None and now - self.drawn_at < self.every_s and done < total:
            return
        share = min(max(done / total, 0.0), 1.0) if total > 0 else 0.0
        filled = round(share * WIDTH)
        bar = "#" * filled + "-" * (WIDTH - filled)
        line = f"\r{phase:<10} [{bar}] {share:4.0%} {done:,}/{total:,}  {now - self.started:.0f} s"
        self.stream.write(line + "\x1b[K")
        self.stream.flush()
        self.drawn_at = now

    def clear(self) -> None:
        """Erases the bar if one was drawn."""
        if self.drawn_at is not None:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.drawn_at = None
