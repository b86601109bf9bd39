"""Exact version pins in text files that are neither requirement files nor Dockerfiles.

Two kinds of file are understood:

* ``pyproject.toml``: the requirement strings of ``[project] dependencies``,
  ``[project.optional-dependencies]`` and ``[dependency-groups]`` (PEP 735).
  ``tomllib`` decides what the strings are; a small scanner below only finds
  where each string sits in the raw text, so that a bump can rewrite the version
  and keep every other byte.
* anything else (CI workflows, shell scripts, hand-kept constraint files): each
  whitespace/quote-delimited word that ``packaging`` accepts as an exact pin.

Everything here is pure: text in, positions or text out.
"""

from __future__ import annotations

import itertools
import re
import string
from bisect import bisect_right
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Final

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name

from . import toml
from .edits import Span, version_span
from .errors import ParseError
from .reqfile import exact_pin

# A key path into the TOML document: table keys, or array indices for array items.
_Path = tuple[str | int, ...]
# Stands in for the index of an `[[array.of.tables]]` entry: no requirement table
# lives in one, so the scanner only has to keep such paths from colliding.
_AOT_INDEX: Final = -1

_TOML_ESCAPES: Final = {
    "b": "\b",
    "t": "\t",
    "n": "\n",
    "f": "\f",
    "r": "\r",
    '"': '"',
    "\\": "\\",
    "e": "\x1b",  # TOML 1.1, accepted by newer tomli
}
# Length of the hex digits after `\u`, `\U` and (TOML 1.1) `\x`.
_TOML_HEX_ESCAPES: Final = {"u": 4, "U": 8, "x": 2}
_BARE_KEY_CHARS: Final = frozenset(string.ascii_letters + string.digits + "_-")
# tomllib (<3.14) only reports the position inside its message.
_TOML_ERROR_LINE: Final = re.compile(r"\s*\(at line (\d+), column \d+\)")


@dataclass(frozen=True)
class TextPin:
    """One exact pin found in a text file.

    `start`/`end` is the column span of the version literal on physical line
    `line`, in characters of that line (a CRLF's `\\r` is never inside it).
    """

    file: PurePosixPath
    line: int
    start: int
    end: int
    name: NormalizedName
    operator: str
    version: str
    text: str
    where: str

    @property
    def span(self) -> Span:
        return Span(self.file, self.line, self.start, self.end, self.version)


@dataclass(frozen=True)
class PyprojectRequirement:
    """A pyproject requirement that is not an exact pin (a range, a bare name or a URL).

    A bump checks the new version against `specifier`, so that it does not move a
    pin out of a range another table of the same file insists on.
    """

    name: NormalizedName
    specifier: SpecifierSet
    line: int
    where: str
    text: str


# --------------------------------------------------------------------------- pins


def _exact_pin(req: Requirement) -> tuple[str, str] | None:
    """(operator, version) when `req` is one `==`/`===` specifier without wildcard."""
    spec = exact_pin(req.specifier)
    return (spec.operator, spec.version) if spec is not None else None


# --------------------------------------------------------------------------- lines


def _split_lines(text: str) -> list[str]:
    """Physical lines split on `\\n` only, so that a `\\r` stays with its line.

    `str.splitlines` would also split on form feeds and Unicode separators and
    then disagree with the line numbers an editor or a TOML parser shows.
    """
    return text.split("\n")


class _LineIndex:
    def __init__(self, text: str) -> None:
        self._lines = _split_lines(text)
        self._starts = list(
            itertools.accumulate((len(ln) + 1 for ln in self._lines[:-1]), initial=0)
        )

    def locate(self, offset: int) -> tuple[int, int]:
        """1-based line and 0-based column of a character offset."""
        index = max(bisect_right(self._starts, offset) - 1, 0)
        return index + 1, offset - self._starts[index]

    def text(self, line: int) -> str:
        if 1 <= line <= len(self._lines):
            return self._lines[line - 1].rstrip("\r")
        return ""

    @property
    def count(self) -> int:
        return len(self._lines)

    def error(self, path: PurePosixPath, line: int, reason: str) -> ParseError:
        return ParseError(path, line, self.text(line), reason)


# --------------------------------------------------------------------------- TOML scanner


class _ScanError(Exception):
    """The scanner met something tomllib accepted but it does not understand."""

    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(reason)
        self.offset = offset
        self.reason = reason


@dataclass(frozen=True)
class _TomlString:
    """A string value as found in the raw text.

    `spans[i]` is the raw [start, end) of decoded character `i`: an escape such as
    `\\u0041` is one decoded character spanning six raw ones.
    """

    value: str
    spans: tuple[tuple[int, int], ...]
    offset: int  # where the opening quote is


class _TomlScanner:
    """Walks a TOML document that tomllib already accepted, noting where values are.

    Only enough of TOML to follow key paths is implemented; validation stays with
    tomllib, so malformed input may be scanned loosely.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.strings: dict[_Path, _TomlString] = {}
        self.offsets: dict[_Path, int] = {}

    # -- entry point

    def scan(self) -> None:
        table: _Path = ()
        while True:
            self._skip_blank()
            if self.pos >= len(self.text):
                return
            start = self.pos
            if self.text.startswith("[[", self.pos):
                self.pos += 2
                key = self._key()
                self._expect("]]")
                table = (*key, _AOT_INDEX)
                self.offsets.setdefault(key, start)
            elif self.text[self.pos] == "[":
                self.pos += 1
                table = self._key()
                self._expect("]")
                self.offsets.setdefault(table, start)
            else:
                self._key_value(table)

    # -- lexical helpers

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _skip_ws(self) -> None:
        while self._peek() in (" ", "\t"):
            self.pos += 1

    def _skip_blank(self) -> None:
        """Whitespace, newlines and comments, as allowed between array items."""
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch in " \t\r\n":
                self.pos += 1
            elif ch == "#":
                newline = self.text.find("\n", self.pos)
                self.pos = len(self.text) if newline < 0 else newline
            else:
                return

    def _expect(self, token: str) -> None:
        self._skip_ws()
        if not self.text.startswith(token, self.pos):
            raise _ScanError(self.pos, f"expected {token!r}")
        self.pos += len(token)
        self._skip_ws()

    def _key(self) -> tuple[str, ...]:
        parts: list[str] = []
        while True:
            self._skip_ws()
            ch = self._peek()
            if ch in ('"', "'"):
                parts.append(self._string().value)
            else:
                start = self.pos
                while self._peek() and self._peek() in _BARE_KEY_CHARS:
                    self.pos += 1
                if self.pos == start:
                    raise _ScanError(self.pos, "expected a key")
                parts.append(self.text[start : self.pos])
            self._skip_ws()
            if self._peek() != ".":
                return tuple(parts)
            self.pos += 1

    # -- values

    def _key_value(self, table: _Path) -> None:
        start = self.pos
        key = self._key()
        # `a.b.c = ...` makes tables `a` and `a.b` here, which an error may need to name.
        for end in range(1, len(key)):
            self.offsets.setdefault((*table, *key[:end]), start)
        self._expect("=")
        self._value((*table, *key))

    def _value(self, path: _Path) -> None:
        self._skip_ws()
        self.offsets[path] = self.pos
        ch = self._peek()
        if ch in ('"', "'"):
            self.strings[path] = self._string()
        elif ch == "[":
            self._array(path)
        elif ch == "{":
            self._inline_table(path)
        else:
            # Numbers, booleans and dates: nothing to find inside, so skip to where
            # the value must end (a local date-time may contain a space).
            while self._peek() and self._peek() not in ",]}#\r\n":
                self.pos += 1

    def _array(self, path: _Path) -> None:
        self.pos += 1
        index = 0
        while True:
            self._skip_blank()
            if self._peek() == "]":
                self.pos += 1
                return
            if not self._peek():
                raise _ScanError(self.pos, "unterminated array")
            self._value((*path, index))
            index += 1
            self._skip_blank()
            if self._peek() == ",":
                self.pos += 1

    def _inline_table(self, path: _Path) -> None:
        self.pos += 1
        while True:
            # Blank lines and comments are TOML 1.1 only; skipping them costs nothing.
            self._skip_blank()
            if self._peek() == "}":
                self.pos += 1
                return
            if not self._peek():
                raise _ScanError(self.pos, "unterminated inline table")
            self._key_value(path)
            self._skip_blank()
            if self._peek() == ",":
                self.pos += 1

    # -- strings

    def _string(self) -> _TomlString:
        quote = self.text[self.pos]
        if self.text.startswith(quote * 3, self.pos):
            return self._multiline_string(quote)
        start = self.pos
        self.pos += 1
        chars: list[str] = []
        spans: list[tuple[int, int]] = []
        while True:
            ch = self._peek()
            if not ch or ch == "\n":
                raise _ScanError(start, "unterminated string")
            if ch == quote:
                self.pos += 1
                return _TomlString("".join(chars), tuple(spans), start)
            if ch == "\\" and quote == '"':
                self._escape(chars, spans)
            else:
                chars.append(ch)
                spans.append((self.pos, self.pos + 1))
                self.pos += 1

    def _multiline_string(self, quote: str) -> _TomlString:
        start = self.pos
        self.pos += 3
        # A newline right after the opening delimiter is not part of the value.
        if self.text.startswith("\r\n", self.pos):
            self.pos += 2
        elif self.text.startswith("\n", self.pos):
            self.pos += 1
        chars: list[str] = []
        spans: list[tuple[int, int]] = []
        while True:
            ch = self._peek()
            if not ch:
                raise _ScanError(start, "unterminated string")
            if self.text.startswith(quote * 3, self.pos):
                run = 3
                while run < 5 and self.text.startswith(quote, self.pos + run):
                    run += 1
                # Up to two quotes right before the closing delimiter are content.
                for extra in range(run - 3):
                    chars.append(quote)
                    spans.append((self.pos + extra, self.pos + extra + 1))
                self.pos += run
                return _TomlString("".join(chars), tuple(spans), start)
            if ch == "\\" and quote == '"':
                if self._line_ending_backslash():
                    continue
                self._escape(chars, spans)
            elif self.text.startswith("\r\n", self.pos):
                # tomllib hands CRLF inside a multi-line string back as "\n".
                chars.append("\n")
                spans.append((self.pos, self.pos + 2))
                self.pos += 2
            else:
                chars.append(ch)
                spans.append((self.pos, self.pos + 1))
                self.pos += 1

    def _line_ending_backslash(self) -> bool:
        """Skip a `\\` that ends a line, with all whitespace after it; False if not one."""
        probe = self.pos + 1
        while probe < len(self.text) and self.text[probe] in " \t":
            probe += 1
        if not self.text.startswith(("\n", "\r\n"), probe):
            return False
        while probe < len(self.text) and self.text[probe] in " \t\r\n":
            probe += 1
        self.pos = probe
        return True

    def _escape(self, chars: list[str], spans: list[tuple[int, int]]) -> None:
        start = self.pos
        kind = self.text[self.pos + 1 : self.pos + 2]
        if kind in _TOML_ESCAPES:
            chars.append(_TOML_ESCAPES[kind])
            self.pos += 2
        elif kind in _TOML_HEX_ESCAPES:
            digits = self.text[self.pos + 2 : self.pos + 2 + _TOML_HEX_ESCAPES[kind]]
            try:
                chars.append(chr(int(digits, 16)))
            except ValueError:
                raise _ScanError(start, "invalid escape") from None
            self.pos += 2 + len(digits)
        else:
            raise _ScanError(start, "invalid escape")
        spans.append((start, self.pos))


# --------------------------------------------------------------------------- pyproject


@dataclass(frozen=True)
class _PyprojectEntry:
    requirement: Requirement
    string: _TomlString
    line: int
    where: str


def _first_line(exc: Exception) -> str:
    """packaging explains a bad requirement over several lines; one is enough here."""
    lines = str(exc).splitlines()
    return lines[0] if lines else type(exc).__name__


def _toml_error_line(exc: toml.TOMLDecodeError, lines: _LineIndex) -> int:
    lineno = getattr(exc, "lineno", None)
    if isinstance(lineno, int):
        return lineno
    message = str(exc)
    found = _TOML_ERROR_LINE.search(message)
    if found:
        return int(found.group(1))
    # "(at end of document)": the last line with text is as close as it gets.
    last = lines.count
    while last > 1 and not lines.text(last).strip():
        last -= 1
    return last


def _toml_error_reason(exc: toml.TOMLDecodeError) -> str:
    message = getattr(exc, "msg", None)
    if isinstance(message, str):
        return f"invalid TOML: {message}"
    return "invalid TOML: " + _TOML_ERROR_LINE.sub("", str(exc)).strip()


def _requirement_lists(
    path: PurePosixPath, data: Mapping[str, object], offsets: Mapping[_Path, int], lines: _LineIndex
) -> Iterator[tuple[_Path, str, Sequence[object], bool]]:
    """(key path, where, items, tables allowed) of every list of requirement strings."""

    def wrong_type(key: _Path, what: str) -> ParseError:
        line = lines.locate(offsets.get(key, 0))[0]
        return lines.error(path, line, f"{'.'.join(map(str, key))} must be {what}")

    project = data.get("project")
    if isinstance(project, dict):
        if "dependencies" in project:
            deps = project["dependencies"]
            key: _Path = ("project", "dependencies")
            if not isinstance(deps, list):
                raise wrong_type(key, "an array of strings")
            yield key, "project.dependencies", deps, False
        if "optional-dependencies" in project:
            extras = project["optional-dependencies"]
            if not isinstance(extras, dict):
                raise wrong_type(("project", "optional-dependencies"), "a table")
            for extra, deps in extras.items():
                key = ("project", "optional-dependencies", extra)
                if not isinstance(deps, list):
                    raise wrong_type(key, "an array of strings")
                yield key, f"project.optional-dependencies.{extra}", deps, False
    if "dependency-groups" in data:
        groups = data["dependency-groups"]
        if not isinstance(groups, dict):
            raise wrong_type(("dependency-groups",), "a table")
        for group, deps in groups.items():
            key = ("dependency-groups", group)
            if not isinstance(deps, list):
                raise wrong_type(key, "an array")
            # PEP 735: a table item is an `{include-group = ...}`, not a requirement.
            yield key, f"dependency-groups.{group}", deps, True


def _pyproject_entries(path: PurePosixPath, text: str) -> list[_PyprojectEntry]:
    lines = _LineIndex(text)
    try:
        data = toml.loads(text)
    except toml.TOMLDecodeError as exc:
        line = _toml_error_line(exc, lines)
        raise lines.error(path, line, _toml_error_reason(exc)) from None
    scanner = _TomlScanner(text)
    try:
        scanner.scan()
    except _ScanError as exc:
        line = lines.locate(exc.offset)[0]
        raise lines.error(path, line, f"cannot follow TOML here: {exc.reason}") from None

    entries: list[_PyprojectEntry] = []
    for key, where, items, tables_allowed in _requirement_lists(path, data, scanner.offsets, lines):
        for index, item in enumerate(items):
            item_key = (*key, index)
            line = lines.locate(scanner.offsets.get(item_key, scanner.offsets.get(key, 0)))[0]
            if isinstance(item, dict) and tables_allowed:
                continue
            if not isinstance(item, str):
                raise lines.error(path, line, f"{where} item {index + 1} is not a string")
            found = scanner.strings.get(item_key)
            if found is None or found.value != item:
                # tomllib and the scanner disagree: better to refuse than to edit the
                # wrong bytes later.
                raise lines.error(path, line, f"cannot locate {where} item {index + 1}")
            try:
                req = Requirement(item)
            except InvalidRequirement as exc:
                reason = f"invalid requirement in {where}: {_first_line(exc)}"
                raise lines.error(path, line, reason) from None
            entries.append(_PyprojectEntry(req, found, line, where))
    entries.sort(key=lambda e: e.string.offset)
    return entries


def find_pyproject_pins(path: PurePosixPath, text: str) -> tuple[TextPin, ...]:
    """Exact pins among the requirements of a pyproject.toml, in file order.

    Raises ParseError for invalid TOML or an invalid requirement string.
    """
    lines = _LineIndex(text)
    pins: list[TextPin] = []
    for entry in _pyproject_entries(path, text):
        pin = _exact_pin(entry.requirement)
        if pin is None:
            continue
        operator, version = pin
        value = entry.string.value
        span = version_span(value, operator, version)
        if span is None:
            raise lines.error(path, entry.line, f"cannot locate the version in {value!r}")
        raw_start = entry.string.spans[span[0]][0]
        raw_end = entry.string.spans[span[1] - 1][1]
        line, start = lines.locate(raw_start)
        if text[raw_start:raw_end] != version:
            # An escape or a line-ending backslash inside the version: rewriting it
            # would need TOML quoting rules, so refuse rather than miss the pin.
            raise lines.error(path, line, f"the version in {value!r} is not written plainly")
        end = start + len(version)
        pins.append(
            TextPin(
                file=path,
                line=line,
                start=start,
                end=end,
                name=canonicalize_name(entry.requirement.name),
                operator=operator,
                version=version,
                text=value,
                where=entry.where,
            )
        )
    return tuple(pins)


def find_pyproject_requirements(path: PurePosixPath, text: str) -> tuple[PyprojectRequirement, ...]:
    """The requirements of a pyproject.toml that are not exact pins, in file order.

    Raises ParseError like find_pyproject_pins.
    """
    return tuple(
        PyprojectRequirement(
            name=canonicalize_name(entry.requirement.name),
            specifier=entry.requirement.specifier,
            line=entry.line,
            where=entry.where,
            text=entry.string.value,
        )
        for entry in _pyproject_entries(path, text)
        if _exact_pin(entry.requirement) is None
    )


# --------------------------------------------------------------------------- generic


_QUOTES: Final = ("'", '"')


def _words(line: str) -> Iterator[tuple[int, str]]:
    """(column, text) of the shell-like words of one line, up to a comment.

    A quoted stretch keeps its spaces inside one word, but the quotes stay in the
    text: in a constraints file `a==1;python_version<"3.12"` has to keep them.
    Unlike shlex this never fails: a quote without a partner on the line is an
    ordinary character. A `#` starts a comment only at the start of a word, as in
    shell and YAML, so `pkg.tar.gz#sha256=...` survives.
    """
    pos = 0
    while pos < len(line):
        if line[pos].isspace():
            pos += 1
            continue
        if line[pos] == "#":
            return
        start = pos
        while pos < len(line) and not line[pos].isspace():
            close = line.find(line[pos], pos + 1) if line[pos] in _QUOTES else -1
            pos = close + 1 if close >= 0 else pos + 1
        yield start, line[start:pos]


def _trim(word: str) -> tuple[int, int]:
    """The [lo, hi) of `word` without surrounding quotes and trailing commas.

    The commas are those of YAML flow, JSON or TOML lists; a lone quote at either
    end is what is left of a string that started or ends on another line.
    """
    lo, hi = 0, len(word)
    changed = True
    while changed and hi > lo:
        changed = False
        while hi > lo and word[hi - 1] == ",":
            hi -= 1
            changed = True
        if hi - lo >= 2 and word[lo] in _QUOTES and word[hi - 1] == word[lo]:
            lo, hi, changed = lo + 1, hi - 1, True
            continue
        if hi > lo and word[lo] in _QUOTES and word.count(word[lo], lo, hi) % 2:
            lo, changed = lo + 1, True
        if hi > lo and word[hi - 1] in _QUOTES and word.count(word[hi - 1], lo, hi) % 2:
            hi, changed = hi - 1, True
    return lo, hi


def find_generic_pins(path: PurePosixPath, text: str) -> tuple[TextPin, ...]:
    """Exact pins written as words of any text file, in file order.

    Words that are not requirements are skipped, never reported as errors: most
    words of a workflow or script are not meant to be requirements at all.
    """
    pins: list[TextPin] = []
    for number, raw_line in enumerate(_split_lines(text), start=1):
        for column, word in _words(raw_line.rstrip("\r")):
            lo, hi = _trim(word)
            value = word[lo:hi]
            if "==" not in value:
                continue
            try:
                req = Requirement(value)
            except InvalidRequirement:
                continue
            pin = _exact_pin(req)
            span = version_span(value, *pin) if pin else None
            if pin is None or span is None:
                continue
            pins.append(
                TextPin(
                    file=path,
                    line=number,
                    start=column + lo + span[0],
                    end=column + lo + span[1],
                    name=canonicalize_name(req.name),
                    operator=pin[0],
                    version=pin[1],
                    text=value,
                    where="",
                )
            )
    return tuple(pins)
