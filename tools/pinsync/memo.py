"""What one process has parsed and digested, so that no file is worked on twice.

Discovery, stamps, freshness, alignment, compile and check each ask for the same
files: at a thousand locks, a no-op `lock` parsed every lock four times over and
digested each compile's inputs two or three times. A memo here is keyed by the
file's path and its content (the text itself: Python hashes it once per string and
compares it only on a hit), so a file rewritten in the stage is parsed afresh, and
one that did not change is never parsed again, whoever asks.

Each memo counts the work it did per path, so that tests can say "once" and mean it.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Hashable
from pathlib import PurePosixPath
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")
V = TypeVar("V")

# Enough for every file of a repository of thousands of locks, and the staged
# versions of them; past it the memo starts over (it is a cache, not a record).
LIMIT = 32768


class Memo(Generic[K, V]):
    """`make()`'s value per key, made once; `made[path]` counts how often it was made."""

    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self.made: Counter[PurePosixPath] = Counter()
        self._values: dict[K, V] = {}
        # Compiles run in threads: one parse at a time (they hold the GIL anyway), so
        # two threads asking for one file do not both parse it.
        self._lock = threading.Lock()

    def get(self, key: K, path: PurePosixPath, make: Callable[[], V]) -> V:
        try:
            return self._values[key]
        except KeyError:
            pass
        with self._lock:
            if key in self._values:
                return self._values[key]
            value = make()
            if len(self._values) >= self.limit:
                self._values.clear()
            self._values[key] = value
            self.made[path] += 1
            return value

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self.made.clear()


class ByIdentity(Generic[T, V]):
    """`make(obj)` per object, by identity: for objects that are shared as the same
    object (a parsed file, the config's table) and cost more to hash than to look up.
    Each object is held beside its value, so that its id stays its own."""

    def __init__(self, make: Callable[[T], V], limit: int = LIMIT) -> None:
        self.limit = limit
        self._make = make
        self._values: dict[int, tuple[T, V]] = {}

    def __call__(self, obj: T) -> V:
        held = self._values.get(id(obj))
        if held is not None and held[0] is obj:
            return held[1]
        value = self._make(obj)
        if len(self._values) >= self.limit:
            self._values.clear()  # a cache, as the memos are: it starts over
        self._values[id(obj)] = (obj, value)
        return value
