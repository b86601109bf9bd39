"""How many examples the property tests draw, and a pytest plugin that counts them.

In CI (no PINSYNC_FUZZ_* variable set) every property keeps its small, fixed,
derandomized budget, so the suite runs the same examples every time in a minute or
two. `tools/fuzz.py` (`nox -s fuzz`) sets:

- PINSYNC_FUZZ_EXAMPLES: examples per repository property (tests/test_invariants.py,
  tests/test_invariants_equivalence.py);
- PINSYNC_FUZZ_PARSER_EXAMPLES: examples per reader (tests/test_parsers_on_any_text.py);
- PINSYNC_FUZZ_REPORT: a JSON file this plugin (`-p fuzz_profile`) writes per test:
  examples run, outcome, seconds.

Outside CI the examples are random, drawn from pytest's `--hypothesis-seed`, which the
runner always passes and prints, so that any run can be replayed.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest
from hypothesis import HealthCheck, settings

ENV_EXAMPLES = "PINSYNC_FUZZ_EXAMPLES"
ENV_PARSER_EXAMPLES = "PINSYNC_FUZZ_PARSER_EXAMPLES"
ENV_REPORT = "PINSYNC_FUZZ_REPORT"

_SUPPRESSED = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]


def fuzz_settings(kind: Literal["repo", "parser"], ci_examples: int) -> settings:
    """The settings of one property: `ci_examples` derandomized, unless fuzzing."""
    value = os.environ.get(ENV_EXAMPLES if kind == "repo" else ENV_PARSER_EXAMPLES, "")
    if value.isdigit() and int(value) > 0:
        return settings(
            max_examples=int(value),
            deadline=None,
            derandomize=False,  # the seed is pytest's --hypothesis-seed
            database=None,  # a fuzz run leaves nothing behind in the work tree
            suppress_health_check=_SUPPRESSED,
            print_blob=True,
        )
    return settings(
        max_examples=ci_examples,
        deadline=None,
        derandomize=True,  # the same examples on every run: CI stays deterministic
        database=None,
        suppress_health_check=_SUPPRESSED,
    )


# --- the counting plugin -------------------------------------------------------------

_current: list[str] = []
_counts: dict[str, int] = {}
_results: dict[str, dict[str, object]] = {}


def count() -> None:
    """Called first in the body of each property test: one example ran."""
    if _current:
        _counts[_current[-1]] = _counts.get(_current[-1], 0) + 1


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    _current.append(item.nodeid)
    started = time.monotonic()
    try:
        return (yield)
    finally:
        _current.pop()
        _results.setdefault(item.nodeid, {})["seconds"] = time.monotonic() - started


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or report.outcome != "passed":
        entry = _results.setdefault(report.nodeid, {})
        if report.when == "call" or "outcome" not in entry:
            entry["outcome"] = "xfailed" if hasattr(report, "wasxfail") else report.outcome


def pytest_runtest_logfinish(nodeid: str) -> None:
    _write_report()  # after each test: a run stopped by its time limit still reports


def pytest_sessionfinish(session: pytest.Session) -> None:
    _write_report()


def _write_report() -> None:
    target = os.environ.get(ENV_REPORT)
    if not target:
        return
    rows = {
        nodeid: {
            "examples": _counts.get(nodeid, 0),
            # No report of its call: the run was stopped while it ran.
            "outcome": entry.get("outcome", "stopped"),
            "seconds": round(float(str(entry.get("seconds", 0.0))), 2),
        }
        for nodeid, entry in _results.items()
    }
    Path(target).write_text(json.dumps(rows, indent=2) + "\n")
