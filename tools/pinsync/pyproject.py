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
import posixpath
import re
from bisect import bisect_right
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Final

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name

from . import toml
from .edits import version_span
from .errors import ParseError
from .reqfile import Entry, ReqFile, exact_pin, requirement_entry
from .sites import KeyPath, TextPin, requirement_lists

# A key path into the TOML document: table keys, or array indices for array items.

# tomllib (<3.14) only reports the position inside its message.
_TOML_ERROR_LINE: Final = re.compile(r"\s*\(at line (\d+), column \d+\)")


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


# --------------------------------------------------------------------------- pyproject


class _LocateError(Exception):
    """tomllib accepted the document but tomlkit could not say where a value is."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _locate(text: str, keys: Sequence[KeyPath]) -> dict[KeyPath, tuple[int, str]]:
    """Where the value at each key path starts in `text`, with its raw TOML text.

    tomlkit keeps every byte of a document it parsed, so each value is swapped for
    a unique marker string, the document is written once, and each marker's offset
    there, less what the markers before it added, is the value's offset here.
    """
    import tomlkit  # only a bump that edits a pyproject pays for it
    from tomlkit.exceptions import TOMLKitError

    try:
        doc = tomlkit.parse(text)
    except TOMLKitError as exc:
        raise _LocateError(str(exc).splitlines()[0]) from None
    swapped: list[tuple[KeyPath, str, str]] = []  # key path, old raw text, marker's raw text
    for n, key in enumerate(keys):
        parent: Any = doc
        for part in key[:-1]:
            parent = parent[part]
        raw = parent[key[-1]].as_string()
        parent[key[-1]] = tomlkit.string(f"pinsync-marker-{n}-{len(text)}")
        swapped.append((key, raw, parent[key[-1]].as_string()))
    written = tomlkit.dumps(doc)
    found = sorted((written.index(marker), key, raw, marker) for key, raw, marker in swapped)
    out: dict[KeyPath, tuple[int, str]] = {}
    shift = 0
    for at, key, raw, marker in found:
        offset = at - shift
        if text[offset : offset + len(raw)] != raw:
            # Better to refuse than to edit the wrong bytes later.
            raise _LocateError(f"cannot locate {'.'.join(map(str, key))}")
        out[key] = (offset, raw)
        shift += len(marker) - len(raw)
    return out


@dataclass(frozen=True)
class _PyprojectEntry:
    requirement: Requirement
    value: str  # the string as TOML decodes it
    raw: str  # the string as written, quotes included
    offset: int  # where `raw` starts in the file
    line: int
    where: str


def _first_line(exc: Exception) -> str:
    """packaging explains a bad requirement over several lines; one is enough here."""
    lines = str(exc).splitlines()
    return lines[0] if lines else type(exc).__name__


def _toml_error_line(exc: toml.TOMLDecodeError, lines: _LineIndex) -> int:
    # The end of the document is as close as the parser gets for an unclosed value;
    # the last line with text is where to look, whichever parser (tomllib, tomli) says so.
    last = lines.count
    while last > 1 and not lines.text(last).strip():
        last -= 1
    lineno = getattr(exc, "lineno", None)
    if isinstance(lineno, int):
        return min(lineno, last)
    found = _TOML_ERROR_LINE.search(str(exc))
    return min(int(found.group(1)), last) if found else last


def _toml_error_reason(exc: toml.TOMLDecodeError) -> str:
    message = getattr(exc, "msg", None)
    if isinstance(message, str):
        return f"invalid TOML: {message}"
    return "invalid TOML: " + _TOML_ERROR_LINE.sub("", str(exc)).strip()


def _pyproject_entries(path: PurePosixPath, text: str) -> list[_PyprojectEntry]:
    lines = _LineIndex(text)
    try:
        data = toml.loads(text)
    except toml.TOMLDecodeError as exc:
        line = _toml_error_line(exc, lines)
        raise lines.error(path, line, _toml_error_reason(exc)) from None

    def locate(keys: Sequence[KeyPath]) -> dict[KeyPath, tuple[int, str]]:
        try:
            return _locate(text, keys)
        except _LocateError as exc:
            raise lines.error(path, 1, f"cannot follow TOML here: {exc.reason}") from None

    lists = list(requirement_lists(data))
    for key, _, value, _ in lists:
        if not isinstance(value, list):
            # A table of lists (optional-dependencies, dependency-groups) or a list.
            what = (
                "a table"
                if key in (("project", "optional-dependencies"), ("dependency-groups",))
                else "an array"
                if key[0] == "dependency-groups"
                else "an array of strings"
            )
            line = lines.locate(locate([key])[key][0])[0]
            raise lines.error(path, line, f"{'.'.join(map(str, key))} must be {what}")
    checked = [(k, where, v, t) for k, where, v, t in lists if isinstance(v, list)]
    item_keys: list[KeyPath] = [
        (*key, index)
        for key, _, items, tables_allowed in checked
        for index, item in enumerate(items)
        if not (tables_allowed and isinstance(item, dict))
    ]
    where_of = {key: (where, items) for key, where, items, _ in checked}
    found = locate(item_keys) if item_keys else {}
    entries: list[_PyprojectEntry] = []
    for item_key in item_keys:
        key, index = item_key[:-1], item_key[-1]
        assert isinstance(index, int)
        where, items = where_of[key]
        item = items[index]
        offset, raw = found[item_key]
        line = lines.locate(offset)[0]
        if not isinstance(item, str):
            raise lines.error(path, line, f"{where} item {index + 1} is not a string")
        try:
            req = Requirement(item)
        except InvalidRequirement as exc:
            reason = f"invalid requirement in {where}: {_first_line(exc)}"
            raise lines.error(path, line, reason) from None
        entries.append(_PyprojectEntry(req, item, raw, offset, line, where))
    entries.sort(key=lambda e: e.offset)
    return entries


def _raw_version_span(raw: str, value: str, operator: str, version: str) -> tuple[int, int] | None:
    """Where the version sits in a TOML string as written (`raw`, quotes included).

    Plainly written, the pin reads the same in `raw`; where an escape sits before
    the version (`a\\u003d=1.0`), the version is the plain text that everything
    after it in `value` follows. An escape inside the version itself is refused.
    """
    plain = version_span(raw, operator, version)
    if plain is not None:
        return plain
    within = version_span(value, operator, version)
    if within is None:
        return None
    tail = value[within[1] :]
    at = raw.rfind(version)
    while at >= 0:
        after = raw[at + len(version) :]
        if after[: len(tail)] == tail and after[len(tail) :] in ('"', "'", '"""', "'''"):
            return at, at + len(version)
        at = raw.rfind(version, 0, at)
    return None


@dataclass(frozen=True)
class PyprojectPins:
    """What a pyproject.toml pins exactly, and what else it requires, read in one parse."""

    pins: tuple[TextPin, ...]
    others: tuple[PyprojectRequirement, ...]


def read_pyproject(path: PurePosixPath, text: str) -> PyprojectPins:
    """The requirements of a pyproject.toml, in file order: exact pins with their spans,
    and the rest (ranges, bare names, URLs) for a bump to check a new version against.

    Raises ParseError for invalid TOML or an invalid requirement string.
    """
    lines = _LineIndex(text)
    pins: list[TextPin] = []
    others: list[PyprojectRequirement] = []
    for entry in _pyproject_entries(path, text):
        name = canonicalize_name(entry.requirement.name)
        spec = exact_pin(entry.requirement.specifier)
        if spec is None:
            others.append(
                PyprojectRequirement(
                    name, entry.requirement.specifier, entry.line, entry.where, entry.value
                )
            )
            continue
        operator, version = spec.operator, spec.version
        # Found in the raw text, quotes and all: where an escape or a line-ending
        # backslash sits inside the version, rewriting it would need TOML quoting
        # rules, so it is refused rather than missed.
        span = _raw_version_span(entry.raw, entry.value, operator, version)
        if span is None:
            raise lines.error(
                path, entry.line, f"the version in {entry.value!r} is not written plainly"
            )
        line, start = lines.locate(entry.offset + span[0])
        pins.append(
            TextPin(
                file=path,
                line=line,
                start=start,
                end=start + len(version),
                name=name,
                operator=operator,
                version=version,
                text=entry.value,
                where=entry.where,
            )
        )
    return PyprojectPins(tuple(pins), tuple(others))


# --------------------------------------------------------------------------- as a source


@dataclass(frozen=True)
class MetadataSource:
    """What a pyproject.toml given to pip-compile asks for, read without building it."""

    requirements: ReqFile
    # Why some of it cannot be read without the build backend (dynamic dependencies),
    # for one info line; None when the file says it all.
    unread: str | None


def metadata_source(
    path: PurePosixPath, text: str, extras: Collection[str], all_extras: bool
) -> MetadataSource:
    """`[project] dependencies`, plus the optional dependencies of the extras that
    pip-compile was given (`--extra`, `--all-extras`), as requirement entries.

    A requirement of the project on itself (`demo[test]`) is pip-compile's to expand;
    it names no pin of its own, so it is left out.
    """
    found = _pyproject_entries(path, text)  # invalid TOML: an error with its file:line
    project = toml.loads(text).get("project")
    if not isinstance(project, dict):
        return MetadataSource(ReqFile(path), f"{path} has no [project] table to read offline")
    own = canonicalize_name(str(project.get("name", "")))
    wanted = {canonicalize_name(e) for e in extras}
    dynamic = project.get("dynamic", [])
    unread = None
    if isinstance(dynamic, list) and {"dependencies", "optional-dependencies"} & set(dynamic):
        unread = (
            f"{path} declares its dependencies dynamic: only its build backend knows them, "
            "so they are checked by re-resolving, not offline"
        )
    entries = []
    for entry in found:
        where = entry.where
        if where.startswith("project.optional-dependencies."):
            extra = canonicalize_name(where.split(".", 2)[2])
            if not (all_extras or extra in wanted):
                continue
        elif where != "project.dependencies":
            continue
        if canonicalize_name(entry.requirement.name) == own:
            continue
        entries.append(requirement_entry(entry.value, entry.line))
    return MetadataSource(ReqFile(path, tuple(entries)), unread)


def compile_extras(args: Sequence[str]) -> tuple[tuple[str, ...], bool]:
    """The extras a pip-compile command line asks for: (`--extra` values, `--all-extras`)."""
    extras: list[str] = []
    everything = False
    it = iter(args)
    for arg in it:
        name, sep, value = arg.partition("=")
        if name == "--extra":
            extras.extend(v for v in (value if sep else next(it, "")).split(",") if v)
        elif name == "--all-extras":
            everything = True
    return tuple(extras), everything


def _table(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    """`data[k1][k2]...` where each is a table, else an empty one: a repository's TOML
    may put anything anywhere."""
    for key in keys:
        value = data.get(key)
        if not isinstance(value, dict):
            return {}
        data = value
    return data


def metadata_files(path: PurePosixPath, text: str) -> tuple[PurePosixPath, ...]:
    """The requirement files a build backend reads into the project's own metadata:
    setuptools' `[tool.setuptools.dynamic]` `file =` and hatch-requirements-txt's
    `files`, relative to the pyproject.toml. Such a file is an input of the package,
    not of a lock. Invalid TOML names none (the checks that need it say why)."""
    return tuple(f for files in metadata_extras(path, text).values() for f in files)


def metadata_extras(
    path: PurePosixPath, text: str
) -> dict[str | None, tuple[PurePosixPath, ...]]:
    """The files of `metadata_files`, by what installs them: None for the project's
    own dependencies (`pip install .`), else the extra (`pip install .[dev]`)."""
    try:
        data = toml.loads(text)
    except toml.TOMLDecodeError:
        return {}
    named: list[tuple[str | None, object]] = []
    dynamic = _table(data, "tool", "setuptools", "dynamic")
    if dynamic:
        deps = dynamic.get("dependencies")
        if isinstance(deps, dict):
            named.append((None, deps.get("file")))
        extras = dynamic.get("optional-dependencies")
        if isinstance(extras, dict):
            named.extend((k, e.get("file")) for k, e in extras.items() if isinstance(e, dict))
    hook = _table(data, "tool", "hatch", "metadata", "hooks", "requirements_txt")
    if hook:
        named.append((None, hook.get("files")))
        extras = hook.get("optional-dependencies")
        if isinstance(extras, dict):
            named.extend(extras.items())
    out: dict[str | None, tuple[PurePosixPath, ...]] = {}
    for extra, item in named:
        files = [item] if isinstance(item, str) else item if isinstance(item, list) else []
        key = None if extra is None else canonicalize_name(str(extra))
        out[key] = out.get(key, ()) + tuple(
            PurePosixPath(posixpath.normpath((path.parent / name).as_posix()))
            for name in files
            if isinstance(name, str)
        )
    return out


def setup_cfg_source(
    path: PurePosixPath, text: str, extras: Collection[str], all_extras: bool
) -> MetadataSource:
    """`[options] install_requires` and the `[options.extras_require]` extras asked for,
    read as setuptools reads a setup.cfg: one requirement per line, `;` markers and
    all. A `file:` or `attr:` directive names what only setuptools resolves."""
    import configparser

    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(text)
    except configparser.Error as exc:
        return MetadataSource(
            ReqFile(path), f"{path} is not a valid setup.cfg ({_first_line(exc)})"
        )
    lines = text.splitlines()
    wanted = {canonicalize_name(e) for e in extras}
    values: list[str] = [parser.get("options", "install_requires", fallback="")]
    if parser.has_section("options.extras_require"):
        for extra, value in parser.items("options.extras_require"):
            if all_extras or canonicalize_name(extra) in wanted:
                values.append(value)
    entries: list[Entry] = []
    unread = None
    for value in values:
        if value.strip().startswith(("file:", "attr:")):
            unread = (
                f"{path} names its requirements with `{value.strip().split(':')[0]}:`, which "
                "only setuptools resolves: they are checked by re-resolving, not offline"
            )
            continue
        for raw in value.splitlines():
            item = raw.split(" #", 1)[0].strip()
            if not item or item.startswith("#"):
                continue
            number = next((i + 1 for i, x in enumerate(lines) if item in x), 1)
            try:
                entries.append(requirement_entry(item, number))
            except InvalidRequirement:
                continue  # setuptools itself will say what is wrong with it
    return MetadataSource(ReqFile(path, tuple(entries)), unread)
