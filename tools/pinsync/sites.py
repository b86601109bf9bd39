"""Pin sites beyond requirement files and Dockerfiles: every other place a version is named.

Each kind of file has a finder that returns the exact pins it holds, with the span of
each version, so that `check` can compare them with the locks of their service and
`bump` can move them through the one splice. `uv.lock` and `pylock.toml` are read as
locks of their own (never rewritten). Pure: paths and texts in, pins out.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import Final

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name

from . import toml
from .discovery import SiteKind
from .edits import Span, version_span
from .reqfile import exact_pin

# A key path into a TOML document: table keys, or array indices for array items.
KeyPath = tuple[str | int, ...]
# Kinds whose pins are locks of their own: compared against, never edited.
LOCK_KINDS: frozenset[SiteKind] = frozenset({"uv-lock", "pylock"})

_PATH = r"[^\s\"'`;&|()]*"  # a directory before the program: /opt/venv/bin/, $(VENV)/
_PIP_COMMAND = re.compile(
    r"(?:(?<=[\s;&|(`\"'])|^)(?:sudo\s+(?:-\S+\s+)*)?"
    rf"(?:{_PATH}python[\d.]*\s+(?:-\S+\s+)*-m\s*pip|{_PATH}uv\s+pip|{_PATH}pipx|{_PATH}pip[\d.]*)"
    r"\s+install\b"
)
# Words that may stand before a command on its line: YAML's `- run:`, shell keywords,
# prefixes. Anything else makes the `pip install` an argument (`echo pip install`).
_BEFORE_COMMAND = frozenset({"-", "then", "do", "else", "exec", "time", "nohup", "env", "!"})


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
class SitePin:
    kind: SiteKind
    pin: TextPin

    @property
    def editable(self) -> bool:
        return self.kind not in LOCK_KINDS


def find_sites(
    kind: SiteKind,
    path: PurePosixPath,
    text: str,
    wrappers: Collection[str] = (),
    names: Collection[NormalizedName] | None = None,
) -> list[SitePin]:
    """The exact pins of one file of `kind`, in file order.

    With `names`, a shell command is read only when it may pin one of them: a check
    only compares packages its locks pin, and most CI steps install tools.
    """
    if kind == "pyproject":
        pins: Sequence[TextPin] = pyproject_pins(path, text)
    elif kind in ("setup-cfg", "tox"):
        pins = _ini_pins(path, text, kind)
    elif kind == "pre-commit":
        pins = _pre_commit_pins(path, text)
    elif kind in LOCK_KINDS:
        pins = _toml_lock_pins(path, text, "package" if kind == "uv-lock" else "packages")
    elif kind == "pin-sites":
        pins = find_generic_pins(path, text)
    else:
        pins = _command_pins(path, text, wrappers, names, make=kind == "makefile")
    return [SitePin(kind, p) for p in pins]


# --- pyproject.toml ------------------------------------------------------------------------


def requirement_lists(
    data: Mapping[str, object],
) -> Iterator[tuple[KeyPath, str, object, bool]]:
    """(key path, where, value, tables allowed) of every list of requirement strings.

    The one rule for where a pyproject.toml keeps requirements; values are as TOML
    read them, unchecked (`pyproject.read_pyproject` says what is wrong with them).
    """
    project = data.get("project")
    if isinstance(project, dict):
        if "dependencies" in project:
            yield (
                ("project", "dependencies"),
                "project.dependencies",
                project["dependencies"],
                False,
            )
        if "optional-dependencies" in project:
            extras = project["optional-dependencies"]
            if not isinstance(extras, dict):
                yield ("project", "optional-dependencies"), "", extras, False
            else:
                for extra, deps in extras.items():
                    key: KeyPath = ("project", "optional-dependencies", extra)
                    yield key, f"project.optional-dependencies.{extra}", deps, False
    tool = data.get("tool")
    uv = tool.get("uv") if isinstance(tool, dict) else None
    if isinstance(uv, dict):
        for uv_key in ("constraint-dependencies", "override-dependencies", "dev-dependencies"):
            if uv_key in uv:
                yield ("tool", "uv", uv_key), f"tool.uv.{uv_key}", uv[uv_key], False
    if "dependency-groups" in data:
        groups = data["dependency-groups"]
        if not isinstance(groups, dict):
            yield ("dependency-groups",), "", groups, True
        else:
            for group, deps in groups.items():
                # PEP 735: a table item is an `{include-group = ...}`, not a requirement.
                yield ("dependency-groups", group), f"dependency-groups.{group}", deps, True


def pyproject_pins(path: PurePosixPath, text: str) -> list[TextPin]:
    """Exact pins of a pyproject.toml, each with the span of its version.

    tomllib tells whether there is any pin at all (most files have none, and a check
    reads every pyproject of a monorepo); only then is the version located in the
    text, by searching each requirement string as written.
    """
    try:
        data = toml.loads(text)
    except toml.TOMLDecodeError:
        return []  # not this check's business; a bump that must edit it says why
    found: list[TextPin] = []
    lines = text.split("\n")
    strings = [
        (where, value)
        for _, where, values, _ in requirement_lists(data)
        if isinstance(values, list)
        for value in values
        if isinstance(value, str)
    ]
    for where, value in strings:
        pin = _pin_of(value)
        if pin is None:
            continue
        located = _locate_string(lines, value, pin[2])
        if located is not None:
            line, start = located
            found.append(
                TextPin(
                    path, line, start, start + len(pin[2]), pin[0], pin[1], pin[2], value, where
                )
            )
    return sorted(found, key=lambda p: (p.line, p.start))


def _pin_of(value: str) -> tuple[NormalizedName, str, str] | None:
    try:
        req = Requirement(value)
    except InvalidRequirement:
        return None
    spec = exact_pin(req.specifier)
    if spec is None or req.url:
        return None
    return canonicalize_name(req.name), spec.operator, spec.version


def _locate_string(lines: Sequence[str], value: str, version: str) -> tuple[int, int] | None:
    """(line, column of the version) of the first quoted `value` written plainly."""
    for quote in ('"', "'"):
        needle = f"{quote}{value}{quote}"
        for number, line in enumerate(lines, start=1):
            at = line.find(needle)
            if at >= 0:
                return number, at + 1 + value.rfind(version)
    return None


# --- INI files: setup.cfg, tox.ini ----------------------------------------------------------


def _ini_wanted(kind: SiteKind, section: str, key: str) -> bool:
    if kind == "setup-cfg":
        return (section == "options" and key == "install_requires") or (
            section == "options.extras_require"
        )
    return section.startswith("testenv") and key == "deps"


def _ini_pins(path: PurePosixPath, text: str, kind: SiteKind) -> list[TextPin]:
    """Pins in the requirement values of an INI file (values may continue, indented)."""
    pins: list[TextPin] = []
    section = ""
    wanted = False
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", ";")):
            continue
        if line[0] not in " \t":
            wanted = False
            if stripped.startswith("["):
                section = stripped.strip("[]").strip()
                continue
            key, sep, value = line.partition("=")
            if not sep:
                continue
            wanted = _ini_wanted(kind, section, key.strip())
            if not wanted or not value.strip():
                continue
            column = len(key) + 1
        elif wanted:
            value, column = line, 0
        else:
            continue
        pins.extend(_shifted(find_generic_pins(path, value), number, column))
    return pins


def _shifted(pins: Sequence[TextPin], line: int, column: int) -> list[TextPin]:
    """Pins found in one piece of a line, moved to where that piece sits in the file."""
    return [replace(p, line=line, start=p.start + column, end=p.end + column) for p in pins]


# --- .pre-commit-config.yaml ---------------------------------------------------------------


def _pre_commit_pins(path: PurePosixPath, text: str) -> list[TextPin]:
    """Pins in `additional_dependencies`, as a block list or an inline one."""
    pins: list[TextPin] = []
    block_indent: int | None = None
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        indent = len(line) - len(line.lstrip())
        if block_indent is not None:
            if line.strip() and (indent <= block_indent and not line.lstrip().startswith("-")):
                block_indent = None
            elif line.strip():
                pins.extend(_shifted(find_generic_pins(path, line), number, 0))
                continue
        at = line.find("additional_dependencies:")
        if at >= 0:
            rest = line[at + len("additional_dependencies:") :]
            if rest.strip():
                column = at + len("additional_dependencies:")
                # A flow list: its brackets are not part of the first and last words.
                flat = rest.replace("[", " ").replace("]", " ")
                pins.extend(_shifted(find_generic_pins(path, flat), number, column))
            else:
                block_indent = indent
    return pins


# --- CI workflows, Makefiles, scripts, compose command lines --------------------------------


def _command_pins(
    path: PurePosixPath,
    text: str,
    wrappers: Collection[str],
    names: Collection[NormalizedName] | None,
    *,
    make: bool,
) -> list[TextPin]:
    """Pins of `pip install` (pip, python -m pip, uv pip, pipx) commands, line by line.

    A command continues over lines ending in a backslash; what precedes it on its
    first line (a YAML key, a list dash, a make target's tab) is not part of it.
    """
    if "install" not in text:
        return []
    from .pipcommand import command_pins

    lines = text.split("\n")
    pins: list[TextPin] = []
    k = 0
    while k < len(lines):
        line = lines[k].rstrip("\r")
        match = _PIP_COMMAND.search(line)
        while match is not None and not _starts_command(line[: match.start()]):
            match = _PIP_COMMAND.search(line, match.end())
        if match is None:
            k += 1
            continue
        end = len(line)
        if match.start() > 0 and line[match.start() - 1] in "\"'":
            # `sh -c "pip install ..."`: the command ends where its quote closes.
            close = line.find(line[match.start() - 1], match.start())
            end = close if close >= 0 else end
        pieces = [(k + 1, match.start(), line[match.start() : end])]
        while pieces[-1][2].endswith("\\") and k + 1 < len(lines):
            number, column, piece = pieces[-1]
            pieces[-1] = (number, column, piece[:-1])
            k += 1
            nxt = lines[k].rstrip("\r")
            pieces.append((k + 1, 0, nxt))
        if names is not None and not _may_pin(" ".join(p for _, _, p in pieces), names):
            k += 1
            continue
        if make:
            # `$$` is make's escape for the shell's `$`; a `$(VAR)` stays unknown.
            pieces = [(n, c, p.replace("$$", "$")) for n, c, p in pieces]
        for site in command_pins(path, pieces, wrappers):
            span = site.span
            if span is None:
                continue
            pins.append(
                TextPin(
                    path,
                    span.line,
                    span.start,
                    span.end,
                    site.name,
                    site.operator,
                    span.old,
                    site.raw,
                    "",
                )
            )
        k += 1
    return pins


_NAME_BEFORE_PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*==")


def _may_pin(command: str, names: Collection[NormalizedName]) -> bool:
    """Whether a command names one of `names` right before `==` (a cheap first look)."""
    return any(canonicalize_name(m[1]) in names for m in _NAME_BEFORE_PIN.finditer(command))


def _starts_command(before: str) -> bool:
    """Whether a command may start after `before`, the text before it on its line."""
    segment = re.split(r"&&|\|\||[;|&(`]|\$\(", before)[-1]
    words = segment.split()
    if not words:
        return True
    last = words[-1]
    # `$(PYTHON) -m pip install`: an interpreter only make knows; pip is the program.
    # `sh -c "pip install ..."`: the quote opens the script of another shell.
    quoted = last in ('"', "'") and len(words) > 1 and words[-2] == "-c"
    return last.endswith(":") or last in _BEFORE_COMMAND or "=" in last or last == "-m" or quoted


# --- uv.lock, pylock.toml ------------------------------------------------------------------


def _toml_lock_pins(path: PurePosixPath, text: str, table: str) -> list[TextPin]:
    """(name, version) of each package of a uv.lock or pylock.toml, at its version line."""
    try:
        data = toml.loads(text)
    except toml.TOMLDecodeError:
        return []
    packages = data.get(table)
    if not isinstance(packages, list):
        return []
    versions = {
        canonicalize_name(p["name"]): p["version"]
        for p in packages
        if isinstance(p, dict)
        and isinstance(p.get("name"), str)
        and isinstance(p.get("version"), str)
    }
    pins: list[TextPin] = []
    current: NormalizedName | None = None
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip()
        if line.startswith("[["):
            current = None
        elif line.startswith("name = ") and current is None:
            current = canonicalize_name(line[len("name = ") :].strip().strip('"'))
        elif line.startswith("version = ") and current in versions:
            version = versions[current]
            start = raw.find(version)
            pins.append(
                TextPin(
                    path,
                    number,
                    start,
                    start + len(version),
                    current,
                    "==",
                    version,
                    f"{current}=={version}",
                    "",
                )
            )
            current = None
    return pins


# --- any text file: words that are exact pins ----------------------------------------------


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
    for number, raw_line in enumerate(text.split("\n"), start=1):
        for column, word in _words(raw_line.rstrip("\r")):
            lo, hi = _trim(word)
            value = word[lo:hi]
            if "==" not in value:
                continue
            try:
                req = Requirement(value)
            except InvalidRequirement:
                continue
            spec = exact_pin(req.specifier)
            span = version_span(value, spec.operator, spec.version) if spec else None
            if spec is None or span is None:
                continue
            pins.append(
                TextPin(
                    file=path,
                    line=number,
                    start=column + lo + span[0],
                    end=column + lo + span[1],
                    name=canonicalize_name(req.name),
                    operator=spec.operator,
                    version=spec.version,
                    text=value,
                    where="",
                )
            )
    return tuple(pins)
