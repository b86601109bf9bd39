"""Progress for long compiles: which outputs are in flight, and for how long."""

from __future__ import annotations

import io
import time
from pathlib import PurePosixPath as P

import pytest

from pinsync.progress import InFlight

# (running outputs and how long ago each started, expected line)
LINES = [
    pytest.param({}, None, id="nothing-running"),
    pytest.param({"a.txt": 0.5}, None, id="too-fresh-to-show"),
    pytest.param({"a.txt": 3.0, "b.txt": 0.5}, "compiling a.txt (10s elapsed)", id="only-the-slow"),
    pytest.param(
        {f"{n}.txt": 5.0 for n in "edcba"},
        "compiling a.txt, b.txt, c.txt and 2 more (10s elapsed)",
        id="many-abbreviated",
    ),
]


@pytest.mark.parametrize(("running", "expected"), LINES)
def test_line(running: dict[str, float], expected: str | None) -> None:
    shown = InFlight(io.StringIO(), tty=False, quiet_for=2.0, every=5.0)
    now = shown.start + 10.0
    for name, ago in running.items():
        shown.running[P(name)] = now - ago
    assert shown.line(now) == expected


@pytest.mark.parametrize(
    ("tty", "expected_start", "cleared"),
    [
        pytest.param(False, "compiling slow.txt (", False, id="ci-plain-lines"),
        pytest.param(True, "\r\x1b[Kcompiling slow.txt (", True, id="tty-one-redrawn-line"),
    ],
)
def test_a_slow_compile_is_shown_while_it_runs(
    tty: bool, expected_start: str, cleared: bool
) -> None:
    stream = io.StringIO()
    shown = InFlight(stream, tty=tty, quiet_for=0.0, every=0.0)
    with shown.shown_while_running():
        shown.started(P("slow.txt"))
        time.sleep(1.6)
        shown.finished(P("slow.txt"))
    text = stream.getvalue()
    assert text.startswith(expected_start), repr(text)
    assert ("\n" in text) is not tty
    # On a terminal the line is wiped once nothing is running, so that what is printed
    # next starts on a clean line.
    assert text.endswith("\r\x1b[K") is cleared
