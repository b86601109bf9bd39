"""What is compiling right now, for a person waiting on a long run.

Only compiles that outlast `quiet_for` seconds are shown, so a fast run prints
nothing extra. On a terminal it is one line redrawn in place; elsewhere (CI logs)
a plain line every `every` seconds, since a redrawn line there is noise. It goes to
stderr: stdout carries reports (`--format json`) that must stay parseable.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import PurePosixPath
from typing import TextIO


class InFlight:
    def __init__(self, stream: TextIO, *, tty: bool, quiet_for: float, every: float) -> None:
        self.stream = stream
        self.tty = tty
        self.quiet_for = quiet_for
        self.every = every
        self.start = time.monotonic()
        self.running: dict[PurePosixPath, float] = {}
        self.shown = False  # a redrawn line is on screen and must be cleared first
        self.lock = threading.Lock()
        self.stopped = threading.Event()

    def started(self, output: PurePosixPath) -> None:
        with self.lock:
            self.running[output] = time.monotonic()

    def finished(self, output: PurePosixPath) -> None:
        with self.lock:
            self.running.pop(output, None)

    def clear(self) -> None:
        """Wipe the redrawn line before other output is written under it."""
        with self.lock:
            self._clear()

    def _clear(self) -> None:
        if self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.shown = False

    def line(self, now: float) -> str | None:
        slow = sorted(p.as_posix() for p, t in self.running.items() if now - t >= self.quiet_for)
        if not slow:
            return None
        shown = ", ".join(slow[:3]) + (f" and {len(slow) - 3} more" if len(slow) > 3 else "")
        return f"compiling {shown} ({now - self.start:.0f}s elapsed)"

    def _run(self) -> None:
        last = 0.0
        while not self.stopped.wait(0.5 if self.tty else 1.0):
            now = time.monotonic()
            with self.lock:
                text = self.line(now)
                if text is None:
                    self._clear()
                elif self.tty:
                    self.stream.write("\r\033[K" + text)
                    self.stream.flush()
                    self.shown = True
                elif now - last >= self.every:
                    self.stream.write(text + "\n")
                    self.stream.flush()
                    last = now

    @contextmanager
    def shown_while_running(self) -> Iterator[InFlight]:
        thread = threading.Thread(target=self._run, name="pinsync-progress", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.stopped.set()
            thread.join()
            self.clear()
