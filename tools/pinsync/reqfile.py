"""Parsing requirement files (`.in` sources and compiled `.txt` locks) with line numbers.

Only the syntax pip accepts in requirement files is understood; the requirement
strings themselves are parsed by `packaging`, never by pip internals.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from pathlib import PurePosixPath
from sys import intern
from typing import Literal, NamedTuple

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import Specifier, SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name

from .discovery import join
from .errors import ParseError
from .memo import Memo

IncludeKind = Literal["-r", "-c"]

_INCLUDE_FLAGS: dict[str, IncludeKind] = {
    "-r": "-r",
    "--requirement": "-r",
    "-c": "-c",
    "--constraint": "-c",
}
_EDITABLE_FLAGS = ("-e", "--editable")
PIN_OPERATORS = ("==", "===")
# Options pip accepts on a line of their own in a requirements file.
_VALUE_OPTIONS = {
    "-i": "--index-url",
    "--index-url": "--index-url",
    "--extra-index-url": "--extra-index-url",
    "-f": "--find-links",
    "--find-links": "--find-links",
    "--trusted-host": "--trusted-host",
    "--only-binary": "--only-binary",
    "--no-binary": "--no-binary",
    "--use-feature": "--use-feature",
    "--config-settings": "--config-settings",
}
_FLAG_OPTIONS = {"--no-index", "--pre", "--prefer-binary", "--require-hashes"}
# Options pip accepts after a requirement on the same line.
_PER_REQUIREMENT_OPTIONS = {"--hash", "--config-settings", "--global-option"}


@dataclass(frozen=True)
class Include:
    """An `-r`/`-c` line: `path` as written, `target` resolved relative to the root."""

    kind: IncludeKind
    path: str
    target: PurePosixPath
    line: int


@dataclass(frozen=True)
class OptionLine:
    """An option line such as `--index-url URL` or `--no-index`."""

    name: str
    value: str | None
    line: int


@dataclass(frozen=True)
class Entry:
    """One requirement line.

    `name` is canonical (None only for an editable or URL with no name to find);
    `raw_name` keeps the spelling of the file so that edits can preserve it.
    """

    name: NormalizedName | None
    raw_name: str | None
    specifier: SpecifierSet
    extras: frozenset[NormalizedName]
    marker: str | None
    url: str | None
    editable: bool
    hashes: tuple[str, ...]
    line: int
    end_line: int
    text: str

    @cached_property  # asked for thousands of times by an offline check
    def pinned_version(self) -> str | None:
        """The version of an exact `==`/`===` pin without wildcard, else None."""
        spec = exact_pin(self.specifier)
        return spec.version if spec is not None else None


def exact_pin(specifier: SpecifierSet) -> Specifier | None:
    """The specifier when `specifier` is one `==`/`===` without wildcard, else None."""
    specs = list(specifier)
    if len(specs) == 1 and specs[0].operator in PIN_OPERATORS and "*" not in specs[0].version:
        return specs[0]
    return None


@dataclass(frozen=True)
class ReqFile:
    path: PurePosixPath
    entries: tuple[Entry, ...] = ()
    includes: tuple[Include, ...] = ()
    options: tuple[OptionLine, ...] = ()
    comments: tuple[tuple[int, str], ...] = field(default=(), repr=False)

    def pins(self) -> dict[NormalizedName, Entry]:
        """Entries by canonical name; the last one wins, as in pip. Do not mutate."""
        return self._pins

    @cached_property  # check, lock and bump each ask for one file's pins several times
    def _pins(self) -> dict[NormalizedName, Entry]:
        return {e.name: e for e in self.entries if e.name is not None}


class LogicalLine(NamedTuple):
    """One line as pip reads it (continuations joined), and the comment cut off it.

    A tuple, not a dataclass: a lock of a big repository has tens of thousands of
    lines, and a frozen dataclass costs four times as much to build."""

    line: int
    end_line: int
    text: str
    comment: str


def logical_lines(text: str) -> Iterator[LogicalLine]:
    """Join `\\` continuations and split off comments, keeping physical line numbers."""
    physical = text.splitlines()
    i = 0  # the next physical line to read
    while i < len(physical):
        ll, i = _logical_line(physical, i)
        yield ll


def _logical_line(physical: list[str], i: int) -> tuple[LogicalLine, int]:
    """The logical line that starts at physical line `i`, and the index after it."""
    start = i
    raw = physical[i]
    i += 1
    if "#" not in raw and not raw.endswith("\\"):  # most lines: nothing to join or cut
        return LogicalLine(i, i, raw.strip(), ""), i
    if raw.lstrip(" \t").startswith("#"):
        # A line that is all comment: half of a lock is `# via` notes, and a `#`
        # after blanks only ends the line (no continuation), whatever follows it.
        return LogicalLine(i, i, "", raw[raw.index("#") + 1 :].strip()), i
    parts: list[str] = []
    comment = ""
    while True:
        code, sep, note = _split_comment(raw) if "#" in raw else (raw, False, "")
        if sep:
            comment = note
            parts.append(code)
            # pip drops the rest of a line after `#`, continuation included.
            break
        if not code.endswith("\\"):
            parts.append(code)
            break
        parts.append(code[:-1])
        if i == len(physical):
            break
        raw = physical[i]
        i += 1
    return LogicalLine(start + 1, i, " ".join([p.strip() for p in parts]).strip(), comment), i


def _split_comment(raw: str) -> tuple[str, bool, str]:
    """pip's rule: `#` starts a comment at the line start or after whitespace."""
    pos = raw.find("#")
    while pos >= 0:
        if pos == 0 or raw[pos - 1] in " \t":
            return raw[:pos], True, raw[pos + 1 :].strip()
        pos = raw.find("#", pos + 1)
    return raw, False, ""


# Every parse of this process, by path and text: discovery, stamps, freshness,
# alignment, compile and check share one parse of each file (see memo.py).
# The strings a parse keeps (a pin's line, its hashes, `# via` notes) are interned:
# the locks of one repository repeat the same few hundred of them thousands of
# times, and a thousand locks held them all once per lock (a third of a check's RSS).
PARSED: Memo[tuple[PurePosixPath, str], ReqFile] = Memo()


def parse_requirements(path: PurePosixPath, text: str) -> ReqFile:
    """Parse the text of the requirement file at `path` (relative to the root).

    The result is shared by everyone who parses the same text at the same path, so
    it must not be changed (it is frozen, and its pins() says so).
    """
    return PARSED.get((path, text), path, lambda: _parse_text(path, text))


def _parse_text(path: PurePosixPath, text: str) -> ReqFile:
    entries: list[Entry] = []
    includes: list[Include] = []
    options: list[OptionLine] = []
    comments: list[tuple[int, str]] = []
    physical = text.splitlines()
    i = 0
    while i < len(physical):
        raw = physical[i]
        if "#" in raw and raw.lstrip(" \t").startswith("#"):
            # All comment (the `# via` half of a lock): no logical line to build.
            i += 1
            comment = raw[raw.index("#") + 1 :].strip()
            if comment:
                comments.append((i, intern(comment)))
            continue
        ll, i = _logical_line(physical, i)
        if not ll.text:
            if ll.comment:
                comments.append((ll.line, intern(ll.comment)))
            continue
        if ll.comment:
            comments.append((ll.line, intern(ll.comment)))
        if ll.text.startswith("-"):
            read = _flag_line(path, ll)
            if isinstance(read, Include):
                includes.append(read)
            elif isinstance(read, OptionLine):
                options.append(read)
            else:
                entries.append(read)
            continue
        entries.append(_parse_entry(path, ll))
    return ReqFile(path, tuple(entries), tuple(includes), tuple(options), tuple(comments))


def _flag_line(path: PurePosixPath, ll: LogicalLine) -> Include | OptionLine | Entry:
    """A logical line that starts with `-`: an include, an editable, or an option."""
    flag, value = _split_flag(ll.text)
    if flag in _INCLUDE_FLAGS:
        if not value:
            raise ParseError(path, ll.line, ll.text, f"{flag} needs a file name")
        return Include(_INCLUDE_FLAGS[flag], value, join(path.parent, value), ll.line)
    if flag in _EDITABLE_FLAGS:
        if not value:
            raise ParseError(path, ll.line, ll.text, f"{flag} needs a path or URL")
        return _parse_url_entry(path, ll, value, editable=True)
    if flag in _VALUE_OPTIONS:
        if not value:
            raise ParseError(path, ll.line, ll.text, f"{flag} needs a value")
        return OptionLine(_VALUE_OPTIONS[flag], value, ll.line)
    if flag in _FLAG_OPTIONS and not value:
        return OptionLine(flag, None, ll.line)
    raise ParseError(path, ll.line, ll.text, "unknown option")


# Where str.splitlines ends a line, besides "\n"; and a `#` on a line that ends in
# `\`, whose continuation pip's comment rule may cut. Text with neither (every lock
# pip-compile writes) has its logical lines told apart by the newlines alone.
OTHER_LINE_BREAKS = re.compile("[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_ASCII_LINE_BREAKS = "\r\x0b\x0c\x1c\x1d\x1e"


def has_other_line_breaks(text: str) -> bool:
    """Whether `text` has a line break besides `\n`. An ASCII text (every lock
    pip-compile writes; `isascii` is free) is searched a character at a time, which
    is twenty times faster than the regular expression's class of nine."""
    if text.isascii():
        return any(c in text for c in _ASCII_LINE_BREAKS)
    return OTHER_LINE_BREAKS.search(text) is not None
_COMMENT_CONTINUED = re.compile(r"#[^\n]*\\\n")
# A line that starts with `-` (after blanks), or holds only a `\` (its logical
# line starts on the next): at the start of the text, or after a newline that no
# `\` escapes. (A literal first: the engine then jumps from newline to newline.)
_FIRST_LINE_OPTION = re.compile(r"[^\S\n]*(?:-|\\\n)")
_OPTION_START = re.compile(r"\n(?<!\\\n)[^\S\n]*(?:-|\\\n)")


def _option_lines_fast(path: PurePosixPath, text: str) -> tuple[OptionLine, ...]:
    """option_lines for text of `\n` lines only: a regular expression finds the lines
    that start an option, and only those are read as the parser reads them."""
    out: list[OptionLine] = []
    starts = [m.start() + 1 for m in _OPTION_START.finditer(text)]
    if _FIRST_LINE_OPTION.match(text):
        starts.insert(0, 0)
    physical = text.splitlines() if starts else []
    for start in starts:
        ll, _ = _logical_line(physical, text.count("\n", 0, start))
        out.extend(_option_of(path, ll))
    return tuple(out)


def _option_of(path: PurePosixPath, ll: LogicalLine) -> tuple[OptionLine, ...]:
    """The option a logical line holds, as the parser reads it: none for a
    requirement, an include or an editable."""
    if not ll.text.startswith("-"):
        return ()
    read = _flag_line(path, ll)
    return (read,) if isinstance(read, OptionLine) else ()


def option_lines(path: PurePosixPath, text: str) -> tuple[OptionLine, ...]:
    """`parse_requirements(path, text).options`, without parsing the requirements.

    A lock's index lines are read for every lock of a run, fresh ones included, and
    the requirements around them are nine tenths of its text. The logical lines are
    the parser's own: a line that starts with `-` after a `\\` is a continuation
    (a `--hash`), not an option, and a `#` ends a line where pip says it does.
    """
    if not has_other_line_breaks(text) and _COMMENT_CONTINUED.search(text) is None:
        return _option_lines_fast(path, text)
    out: list[OptionLine] = []
    physical = text.splitlines()
    i, n = 0, len(physical)
    while i < n:
        raw = physical[i]
        if "#" in raw and raw.lstrip(" \t").startswith("#"):  # the parser's comment line
            i += 1
            continue
        # strip() as the parser's: any whitespace. A line of only `\` starts the
        # logical line on the next.
        if raw.lstrip().startswith("-") or raw.strip() == "\\":
            ll, i = _logical_line(physical, i)
            out.extend(_option_of(path, ll))
            continue
        # Not an option: step over this logical line, continuations and all. A `#`
        # anywhere in it leaves the joining to the parser's rule.
        j = i
        while True:
            raw = physical[j]
            j += 1
            if "#" in raw:
                j = _logical_line(physical, i)[1]
                break
            if not raw.endswith("\\") or j == n:
                break
        i = j
    return tuple(out)


def _split_flag(text: str) -> tuple[str, str]:
    if text.startswith("--"):
        head, sep, rest = text.partition("=")
        if sep and " " not in head:
            return head, rest.strip()
        head, _, rest = text.partition(" ")
        return head, rest.strip()
    # Short options may be glued to their value: `-rbase.in`.
    if len(text) > 2 and text[2] not in " =":
        return text[:2], text[2:].strip()
    return text[:2], text[2:].lstrip(" =").strip()


def _split_requirement_options(path: PurePosixPath, ll: LogicalLine) -> tuple[str, tuple[str, ...]]:
    """Separate `req --hash=...` into the requirement and its hashes (pip's rule: options start at ` --`)."""
    text = ll.text
    cut = text.find(" --")
    if cut < 0:
        return text, ()
    head, tail = text[:cut].strip(), text[cut:]
    hashes: list[str] = []
    if "'" in tail or '"' in tail or "\\" in tail:
        try:
            tokens = shlex.split(tail)
        except ValueError as exc:
            raise ParseError(path, ll.line, ll.text, f"bad quoting ({exc})") from None
    else:  # what compiled locks hold: shlex is ~100x slower and this path is hot in check
        tokens = tail.split()
    it = iter(tokens)
    for tok in it:
        name, sep, value = tok.partition("=")
        if name not in _PER_REQUIREMENT_OPTIONS:
            raise ParseError(path, ll.line, ll.text, f"unknown option {name}")
        if not sep:
            value = next(it, "")
        if name == "--hash":
            if ":" not in value:
                raise ParseError(path, ll.line, ll.text, "a hash must look like sha256:<hex>")
            hashes.append(intern(value))
    return head, tuple(hashes)


def _looks_like_url_or_path(text: str) -> bool:
    head = text.split(";", 1)[0].strip()
    return "://" in head or head.startswith((".", "/", "~", "file:"))


@dataclass(frozen=True)
class _Parsed:
    name: NormalizedName
    raw_name: str
    specifier: SpecifierSet
    extras: frozenset[NormalizedName]
    marker: str | None
    url: str | None


@lru_cache(maxsize=8192)
def _parse_requirement(text: str) -> _Parsed:
    # The locks of one repository repeat the same `name==version` lines many times
    # over; parsing each distinct one once halves an offline check.
    req = Requirement(text)
    return _Parsed(
        canonicalize_name(req.name),
        req.name,
        req.specifier,
        frozenset(canonicalize_name(e) for e in req.extras),
        str(req.marker) if req.marker else None,
        req.url,
    )


def _parse_entry(path: PurePosixPath, ll: LogicalLine) -> Entry:
    text, hashes = _split_requirement_options(path, ll)
    try:
        req = _parse_requirement(text)
    except InvalidRequirement as exc:
        if _looks_like_url_or_path(text):
            entry = _parse_url_entry(path, ll, text, editable=False)
            return replace(entry, hashes=hashes)
        reason = str(exc).splitlines()[0] if str(exc) else "not a valid requirement"
        raise ParseError(path, ll.line, ll.text, f"invalid requirement ({reason})") from None
    return _entry(req, intern(ll.text), ll.line, ll.end_line, hashes)


def requirement_entry(requirement: str, line: int, text: str | None = None) -> Entry:
    """The entry of one PEP 508 string written elsewhere (a pyproject or setup.cfg
    list) at `line`; raises InvalidRequirement. `text` is the line as written."""
    return _entry(_parse_requirement(requirement), text or requirement, line, line, ())


def _entry(req: _Parsed, text: str, line: int, end_line: int, hashes: tuple[str, ...]) -> Entry:
    return Entry(
        name=req.name,
        raw_name=req.raw_name,
        specifier=req.specifier,
        extras=req.extras,
        marker=req.marker,
        url=req.url,
        editable=False,
        hashes=hashes,
        line=line,
        end_line=end_line,
        text=text,
    )


def _parse_url_entry(path: PurePosixPath, ll: LogicalLine, value: str, editable: bool) -> Entry:
    """`-e ./pkg`, `-e git+...#egg=name`, a bare URL: the name comes from `#egg=` when present."""
    url, _, marker = value.partition(" ;")
    if not marker:
        url, _, marker = value.partition("; ")
    url = url.strip()
    name: NormalizedName | None = None
    raw_name: str | None = None
    extras: frozenset[NormalizedName] = frozenset()
    specifier = SpecifierSet()
    if " @ " in url:
        try:
            req = Requirement(url)
        except InvalidRequirement as exc:
            raise ParseError(path, ll.line, ll.text, f"invalid requirement ({exc})") from None
        name, raw_name, url = canonicalize_name(req.name), req.name, req.url or ""
        extras = frozenset(canonicalize_name(e) for e in req.extras)
    else:
        _, _, fragment = url.partition("#")
        for part in fragment.split("&"):
            key, _, egg = part.partition("=")
            if key == "egg" and egg:
                try:
                    req = Requirement(egg)
                except InvalidRequirement:
                    raise ParseError(path, ll.line, ll.text, "invalid #egg= name") from None
                name, raw_name, specifier = canonicalize_name(req.name), req.name, req.specifier
                extras = frozenset(canonicalize_name(e) for e in req.extras)
    if not url:
        raise ParseError(path, ll.line, ll.text, "missing URL or path")
    return Entry(
        name=name,
        raw_name=raw_name,
        specifier=specifier,
        extras=extras,
        marker=marker.strip() or None,
        url=url,
        editable=editable,
        hashes=(),
        line=ll.line,
        end_line=ll.end_line,
        text=ll.text,
    )
