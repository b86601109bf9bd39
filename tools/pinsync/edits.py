"""Text edits: finders report spans, one splice applies them, one rule for a new version.

Every file pinsync rewrites in place (requirement sources, Dockerfiles, pyproject.toml,
workflows and scripts) is edited here, so that "change only the version bytes" is
one routine with one set of checks, whatever found the version.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

from packaging.specifiers import InvalidSpecifier, Specifier

from .errors import EditError

# What may be written in place of a version without quoting in any of those files:
# a shell word, a TOML string, a requirements line. `*`, quotes, `#`, `;` and blanks
# would each change what the surrounding text means.
_PLAIN_VERSION = re.compile(r"[A-Za-z0-9._+!-]+")
_BLANKS = " \t"


@dataclass(frozen=True)
class Span:
    """`old` at columns [start, end) of physical line `line` of `file`.

    Lines are counted on `\\n` only, so a CRLF's `\\r` stays at the end of its line
    and never inside a span.
    """

    file: PurePosixPath
    line: int
    start: int
    end: int
    old: str


def version_span(text: str, operator: str, version: str, start: int = 0) -> tuple[int, int] | None:
    """Columns of `version` where it follows `operator` (and blanks) in a pin's text.

    The first `operator` at or after `start` is the one: a name and its extras
    cannot hold `=`, a URL requirement has no specifier, markers come after it.
    """
    at = text.find(operator, start)
    if at < 0:
        return None
    pos = at + len(operator)
    while pos < len(text) and text[pos] in _BLANKS:
        pos += 1
    if not text.startswith(version, pos):
        return None
    return pos, pos + len(version)


def check_version(operator: str, new: str) -> None:
    """The one rule for what may replace a pinned version: a plain, valid exact version."""
    if not _PLAIN_VERSION.fullmatch(new):
        raise EditError(f"{new!r} cannot be written as an exact version")
    try:
        Specifier(f"{operator}{new}")
    except InvalidSpecifier:
        raise EditError(f"{operator}{new} is not a valid pin") from None


def splice(text: str, spans: Iterable[Span], new: str) -> str:
    """`text` with every span replaced by `new`, and every other byte kept.

    Each span must still hold its `old` text (else the file changed since it was
    read); the same span given twice (an ARG default shared by two pins) is edited
    once; spans that overlap are refused. Edits apply right to left on each line,
    so none shifts another.
    """
    lines = text.split("\n")
    by_line: dict[int, set[Span]] = {}
    for span in set(spans):
        found = (
            lines[span.line - 1][span.start : span.end] if 1 <= span.line <= len(lines) else None
        )
        if found != span.old:
            raise EditError(
                f"{span.file}:{span.line}: {span.old!r} is no longer where it was found"
            )
        by_line.setdefault(span.line, set()).add(span)
    for number, line_spans in sorted(by_line.items()):
        ordered = sorted(line_spans, key=lambda s: (s.start, s.end), reverse=True)
        line = lines[number - 1]
        previous_start = None
        for span in ordered:
            if previous_start is not None and span.end > previous_start:
                raise EditError(f"{span.file}:{number}: pins overlap")
            line = line[: span.start] + new + line[span.end :]
            previous_start = span.start
        lines[number - 1] = line
    return "\n".join(lines)
