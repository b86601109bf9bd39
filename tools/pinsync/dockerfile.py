"""Finding pip pins and requirement-file installs in Dockerfiles, with exact edit spans.

Pure: text in, dataclasses out; nothing is read, run or executed. The Dockerfile layer
(continuations, comments, heredocs, ARG/ENV scoping, exec form) and the shell words of a
RUN are lexed here, every character traced back to the physical line and column it was
written at, so that a version reached through `${VAR}` can still be edited where it is
defined. What a requirement token means is left to `packaging`.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import PurePosixPath

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name

from .edits import Span, version_span
from .errors import ParseError
from .reqfile import _INCLUDE_FLAGS, exact_pin


@dataclass(frozen=True)
class Stage:
    index: int
    name: str | None
    base: str
    line: int


@dataclass(frozen=True)
class PinSite:
    """`name==version` in a pip command. `edit_line` is 0 when no single literal holds the version."""

    file: PurePosixPath
    line: int
    stage: int
    name: NormalizedName
    raw: str
    operator: str
    version: str | None
    edit_line: int
    edit_start: int
    edit_end: int

    @property
    def span(self) -> Span | None:
        """Where to edit the version: None when no single literal holds it."""
        if self.edit_line == 0 or self.version is None:
            return None
        return Span(self.file, self.edit_line, self.edit_start, self.edit_end, self.version)


@dataclass(frozen=True)
class RequirementInstall:
    file: PurePosixPath
    line: int
    stage: int
    path: str  # as written; relative to `workdir` unless absolute
    kind: str
    no_deps: bool
    command: int = 0  # installs of one pip command share it; pip resolves them together
    workdir: str = "/"  # the image's WORKDIR when the command ran


@dataclass(frozen=True)
class Copy:
    """`COPY`/`ADD` from the build context (not `--from` another stage or image)."""

    stage: int
    line: int
    sources: tuple[str, ...]  # relative to the build context
    dest: str  # absolute in the image


@dataclass(frozen=True)
class Dockerfile:
    path: PurePosixPath
    stages: tuple[Stage, ...]
    pins: tuple[PinSite, ...]
    installs: tuple[RequirementInstall, ...]
    copies: tuple[Copy, ...] = ()

    def lineage(self, stage: int) -> tuple[int, ...]:
        """`stage`, then the stage it is built FROM, and so on, nearest first, within this file."""
        chain = [stage]
        parent = _parent(self.stages, self.stages[stage])
        while parent is not None and parent not in chain:
            chain.append(parent)
            parent = _parent(self.stages, self.stages[parent])
        return tuple(chain)


def _parent(stages: Sequence[Stage], stage: Stage) -> int | None:
    """The earlier stage `stage` is built FROM, by name (case-insensitive, as Docker does) or index."""
    for earlier in reversed(stages[: stage.index]):
        if earlier.name is not None and earlier.name.casefold() == stage.base.casefold():
            return earlier.index
    if stage.base.isascii() and stage.base.isdecimal() and int(stage.base) < stage.index:
        return int(stage.base)
    return None


def parse_dockerfile(
    path: PurePosixPath, text: str, *, pip_wrappers: Collection[str] = ()
) -> Dockerfile:
    """Find the pins and requirement-file installs of every RUN, per stage.

    `pip_wrappers` names extra commands that behave like `pip install` (a project's own
    `pip-install` helper script, say).
    """
    lines = _physical_lines(text)
    parser = _Parser(path, frozenset(pip_wrappers))
    for instruction in _instructions(lines, _escape_char(lines)):
        parser.feed(instruction)
    return Dockerfile(
        path, tuple(parser.stages), tuple(parser.pins), tuple(parser.installs), tuple(parser.copies)
    )


# --- Characters that remember where they were written -------------------------------------


@dataclass(frozen=True)
class _Src:
    line: int
    col: int
    unknown: bool = False  # part of a reference (or command substitution) with no known value


@dataclass(frozen=True)
class _Text:
    text: str
    src: tuple[_Src, ...]

    def slice(self, start: int, end: int | None = None) -> _Text:
        return _Text(self.text[start:end], self.src[start:end])


_EMPTY = _Text("", ())


@dataclass(frozen=True)
class _Word:
    value: _Text  # quotes removed, variables substituted where known
    raw: str  # quotes removed, variables as written
    line: int
    dynamic: bool = False  # holds $(...) or `...`, known only at build time

    @property
    def text(self) -> str:
        return self.value.text

    def tail(self, start: int) -> _Word:
        return replace(self, value=self.value.slice(start), raw=self.raw[start:])


@dataclass(frozen=True)
class _Instruction:
    keyword: str
    line: int
    args: _Text
    heredocs: tuple[_Text, ...]


def _physical_lines(text: str) -> list[str]:
    # Not str.splitlines: Docker breaks lines at \n only, and replace_version must agree.
    return [line.removesuffix("\r") for line in text.split("\n")]


# Docker skips a UTF-8 BOM; it stays in line 1 so that columns index the text replace_version edits.
_BLANK = " \t\ufeff"
_DIRECTIVE = re.compile(r"#\s*([A-Za-z][\w-]*)\s*=\s*(\S+)\s*")


def _escape_char(lines: Sequence[str]) -> str:
    for line in lines:
        match = _DIRECTIVE.fullmatch(line.lstrip(_BLANK))
        if match is None:
            break  # directives are only honoured before the first other line
        if match[1].lower() == "escape" and match[2] in ("\\", "`"):
            return match[2]
    return "\\"


_KEYWORD = re.compile(r"[ \t\ufeff]*(\S+)\s*")
_HEREDOC_MARKER = re.compile(r"<<(-?)([A-Za-z_][\w.-]*)")


def _instructions(lines: Sequence[str], escape: str) -> Iterator[_Instruction]:
    i = 0
    while i < len(lines):
        if _skippable(lines[i]):
            i += 1
            continue
        start = i
        chars: list[str] = []
        srcs: list[_Src] = []
        while i < len(lines):
            line = lines[i]
            trimmed = line.rstrip(" \t")
            continued = trimmed.endswith(escape)
            end = len(trimmed) - 1 if continued else len(line)
            chars.extend(line[:end])
            srcs.extend(_Src(i + 1, col) for col in range(end))
            i += 1
            if not continued:
                break
            # Docker drops comment and blank lines inside a continued instruction.
            while i < len(lines) and _skippable(lines[i]):
                i += 1
        logical = _Text("".join(chars), tuple(srcs))
        match = _KEYWORD.match(logical.text)
        if match is None:
            continue
        keyword = match[1].upper()
        args = logical.slice(match.end())
        heredocs: list[_Text] = []
        # Every heredoc marker holds a "<"; lexing each RUN just to look for one was
        # half the parse time of a long Dockerfile.
        if keyword in ("RUN", "COPY", "ADD") and "<" in args.text:
            for strip_tabs, marker in _heredoc_markers(args):
                body, i = _heredoc_body(lines, i, marker, strip_tabs)
                heredocs.append(body)
        yield _Instruction(keyword, start + 1, args, tuple(heredocs))


def _skippable(line: str) -> bool:
    content = line.lstrip(_BLANK)
    return not content or content.startswith("#")


def _heredoc_markers(args: _Text) -> Iterator[tuple[bool, str]]:
    # Markers are found among the words as written: a variable that expands to `<<x`
    # does not start a heredoc. (Quotes are already removed from `raw`, so `"<<x"`
    # counts as a marker here.)
    for word in _Lexer(args, {}, shell=False).words():
        match = _HEREDOC_MARKER.fullmatch(word.text)
        if match is not None and word.raw.startswith("<<"):
            yield match[1] == "-", match[2]


def _heredoc_body(lines: Sequence[str], i: int, marker: str, strip_tabs: bool) -> tuple[_Text, int]:
    chars: list[str] = []
    srcs: list[_Src] = []
    while i < len(lines):
        line = lines[i]
        i += 1
        if (line.lstrip("\t") if strip_tabs else line) == marker:
            break
        chars.extend(line + "\n")
        srcs.extend(_Src(i, col) for col in range(len(line) + 1))
    return _Text("".join(chars), tuple(srcs)), i


# --- Words -----------------------------------------------------------------------------------

_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+=?])(.*))?", re.DOTALL)
_SPECIAL_PARAMS = frozenset("0123456789@*#?$!-")


class _Lexer:
    """Splits text into words the way sh (or, without `shell`, Docker) would.

    With `shell` the text is a script: operators end commands, comments and redirections
    are dropped, and unquoted expansions are field-split. Without it the text is the
    argument list of ARG/ENV/FROM, which Docker expands but never splits or runs. With
    `split` off, whitespace is kept and at most one word results.
    """

    def __init__(
        self, text: _Text, env: Mapping[str, _Text | None], *, shell: bool, split: bool = True
    ) -> None:
        self.text = text
        self.env = env
        self.shell = shell
        self.split = split
        self.i = 0
        self.commands: list[list[_Word]] = []
        self.command: list[_Word] = []
        self.redirected = False
        self._reset_word()

    def _reset_word(self) -> None:
        self.chars: list[str] = []
        self.srcs: list[_Src] = []
        self.raw: list[str] = []
        self.start = -1  # where the current word began in the text; -1 between words
        self.dynamic = False

    def run(self) -> list[list[_Word]]:
        t = self.text.text
        while self.i < len(t):
            c = t[self.i]
            if self.split and c in " \t\n":
                self._end_word()
                if c == "\n" and self.shell:
                    self._end_command()
                self.i += 1
            elif self.shell and c in ";&|()":
                self._operator()
            elif self.shell and c in "<>":
                self._redirection()
            elif self.shell and c == "#" and self.start < 0:
                newline = t.find("\n", self.i)
                self.i = len(t) if newline < 0 else newline
            elif c == "\\":
                self._escaped()
            elif c == "'":
                self._single_quoted()
            elif c == '"':
                self._double_quoted()
            elif c == "$":
                self._dollar(quoted=False)
            elif c == "`" and self.shell:
                self._backquoted()
            else:
                self._add(c, self.text.src[self.i])
                self.i += 1
        self._end_command()
        return self.commands

    def words(self) -> list[_Word]:
        return [word for command in self.run() for word in command]

    def _add(self, ch: str, src: _Src, *, raw: bool = True) -> None:
        self._begin()
        self.chars.append(ch)
        self.srcs.append(src)
        if raw:
            self.raw.append(ch)

    def _begin(self) -> None:
        if self.start < 0:
            self.start = self.i

    def _end_word(self) -> None:
        if self.start >= 0 and self.redirected:
            self.redirected = False  # the word was a redirection target, not an argument
        elif self.start >= 0:
            value = _Text("".join(self.chars), tuple(self.srcs))
            line = self.text.src[self.start].line
            self.command.append(_Word(value, "".join(self.raw), line, self.dynamic))
        self._reset_word()

    def _end_command(self) -> None:
        self._end_word()
        if self.command:
            self.commands.append(self.command)
        self.command = []
        self.redirected = False

    def _operator(self) -> None:
        t = self.text.text
        if t.startswith("&>", self.i):
            self._redirection()
            return
        self._end_command()
        self.i += 2 if t[self.i : self.i + 2] in ("&&", "||", ";;", "|&") else 1

    def _redirection(self) -> None:
        t = self.text.text
        if self.start >= 0 and t[self.start : self.i].isdecimal():
            self._reset_word()  # `2>`: the digits name a file descriptor
        else:
            self._end_word()
        while self.i < len(t) and t[self.i] in "<>&|-":
            self.i += 1
        self.redirected = True

    def _escaped(self) -> None:
        t = self.text.text
        nxt = self.i + 1
        if nxt >= len(t):
            self._add("\\", self.text.src[self.i])
        elif t[nxt] != "\n":  # backslash-newline joins lines inside a heredoc script
            self._add(t[nxt], self.text.src[nxt])
        self.i += 2

    def _single_quoted(self) -> None:
        t = self.text.text
        end = t.find("'", self.i + 1)
        end = len(t) if end < 0 else end
        self._begin()
        for k in range(self.i + 1, end):
            self._add(t[k], self.text.src[k])
        self.i = end + 1

    def _double_quoted(self) -> None:
        t = self.text.text
        self._begin()
        self.i += 1
        while self.i < len(t) and t[self.i] != '"':
            c = t[self.i]
            if c == "\\" and t[self.i + 1 : self.i + 2] in ("$", "`", '"', "\\", "\n"):
                if t[self.i + 1] != "\n":
                    self._add(t[self.i + 1], self.text.src[self.i + 1])
                self.i += 2
            elif c == "$":
                self._dollar(quoted=True)
            elif c == "`" and self.shell:
                self._backquoted()
            else:
                self._add(c, self.text.src[self.i])
                self.i += 1
        self.i += 1

    def _backquoted(self) -> None:
        t = self.text.text
        end = t.find("`", self.i + 1)
        end = len(t) if end < 0 else end + 1
        self._unknown(self.i, end, dynamic=True)
        self.i = end

    def _dollar(self, *, quoted: bool) -> None:
        t = self.text.text
        i = self.i
        nxt = t[i + 1 : i + 2]
        name = _VAR_NAME.match(t, i + 1)
        if nxt == "{":
            end = _closing(t, i + 1) + 1
            braced = _BRACED.fullmatch(t, i + 2, end - 1)
            if braced is None:
                self._unknown(i, end)  # ${#V}, ${V%x}...: not worth evaluating
            else:
                self._braced(braced, end, quoted=quoted)
        elif nxt == "(" and self.shell:
            end = _closing(t, i + 1) + 1
            self._unknown(i, end, dynamic=True)
        elif name is not None:
            end = name.end()
            value = self.env.get(name[0])
            if value is None:
                self._unknown(i, end)
            else:
                self._emit(value, name[0], end, quoted=quoted)
        elif nxt and nxt in _SPECIAL_PARAMS and self.shell:
            end = i + 2
            self._unknown(i, end)
        else:
            end = i + 1
            self._add("$", self.text.src[i])
        self.i = end

    def _braced(self, match: re.Match[str], end: int, *, quoted: bool) -> None:
        name, op = match[1], match[2]
        value = self.env.get(name)
        if op is None or op.endswith("?"):
            if value is None:
                self._unknown(self.i, end)
            else:
                self._emit(value, name, end, quoted=quoted)
            return
        # An unknown variable counts as unset: the default is what a plain build uses.
        is_set = value is not None and (value.text != "" or not op.startswith(":"))
        word = _expand(self.text.slice(match.start(3), match.end(3)), self.env)
        if op.endswith("+"):
            chosen = word if is_set else _EMPTY
        else:
            chosen = value if value is not None and is_set else word
        self._emit(chosen, name, end, quoted=quoted)

    def _emit(self, value: _Text, name: str, end: int, *, quoted: bool) -> None:
        ref = self.text.text[self.i : end]
        for ch, src in zip(value.text, value.src):
            if self.shell and self.split and not quoted and ch in " \t\n":
                if self.start >= 0:
                    self.raw.append(ref)
                self._end_word()
            else:
                self._add(ch, src, raw=False)
        if self.start >= 0:
            self.raw.append(ref)

    def _unknown(self, start: int, end: int, *, dynamic: bool = False) -> None:
        for k in range(start, min(end, len(self.text.text))):
            self._add(self.text.text[k], replace(self.text.src[k], unknown=True))
        self.dynamic = self.dynamic or dynamic


def _closing(t: str, open_at: int) -> int:
    """Index of the bracket closing the one at `open_at` (len(t) if none), skipping quotes."""
    opener = t[open_at]
    closer = "}" if opener == "{" else ")"
    depth = 0
    k = open_at
    while k < len(t):
        c = t[k]
        if c == "\\":
            k += 2
            continue
        if c in "'\"":
            k = t.find(c, k + 1)
            if k < 0:
                return len(t)
        elif c == opener:
            depth += 1
        elif c == closer:
            depth -= 1
            if depth == 0:
                return k
        k += 1
    return len(t)


def _expand(text: _Text, env: Mapping[str, _Text | None]) -> _Text:
    words = _Lexer(text, env, shell=False, split=False).words()
    return words[0].value if words else _EMPTY


# --- Exec form ---------------------------------------------------------------------------------

_JSON_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"', re.DOTALL)
_HEX4 = re.compile(r"[0-9A-Fa-f]{4}")
_JSON_ESCAPES = {
    '"': '"',
    "\\": "\\",
    "/": "/",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
}


def _exec_words(body: _Text) -> list[_Word] | None:
    """The words of `["pip", "install", ...]`, or None when Docker would not take it as exec form."""
    try:
        value = json.loads(body.text)
    except ValueError:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        return None
    return _json_strings(body)


def _json_strings(body: _Text) -> list[_Word]:
    words: list[_Word] = []
    for match in _JSON_STRING.finditer(body.text):
        chars: list[str] = []
        srcs: list[_Src] = []
        k = match.start(1)
        while k < match.end(1):
            c = body.text[k]
            if c != "\\":
                chars.append(c)
                step = 1
            elif _HEX4.fullmatch(body.text, k + 2, k + 6) and body.text[k + 1] == "u":
                chars.append(chr(int(body.text[k + 2 : k + 6], 16)))
                step = 6
            else:
                chars.append(_JSON_ESCAPES.get(body.text[k + 1], body.text[k + 1]))
                step = 2
            # An escaped character maps to its backslash, so a span across it is never contiguous.
            srcs.append(body.src[k])
            k += step
        value = _Text("".join(chars), tuple(srcs))
        words.append(_Word(value, value.text, body.src[match.start()].line))
    return words


# --- pip commands --------------------------------------------------------------------------

_PIP = re.compile(r"pip\d*(?:\.\d+)?")
_PYTHON = re.compile(r"python\d*(?:\.\d+)?")
_SHELLS = frozenset({"sh", "bash", "dash", "ash", "zsh"})
_SHELL_C = re.compile(r"-[a-z]*c[a-z]*")
_PREFIX_WORDS = frozenset(
    {
        "if",
        "then",
        "elif",
        "else",
        "while",
        "until",
        "do",
        "!",
        "{",
        "time",
        "exec",
        "command",
        "nohup",
        "builtin",
    }
)
_PREFIX_VALUE_OPTIONS = frozenset({"-u", "-g", "-C", "-D", "-S"})  # of sudo and env
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_SHORT_VALUE = frozenset("rceiftCpPb")
_LONG_VALUE = frozenset({
    # pip install, and pip's general options
    "--requirement", "--constraint", "--editable", "--index-url", "--extra-index-url",
    "--find-links", "--target", "--prefix", "--root", "--platform", "--python-version",
    "--implementation", "--abi", "--only-binary", "--no-binary", "--trusted-host",
    "--cache-dir", "--progress-bar", "--src", "--upgrade-strategy", "--config-settings",
    "--global-option", "--install-option", "--report", "--root-user-action", "--use-feature",
    "--use-deprecated", "--log", "--log-file", "--proxy", "--retries", "--timeout",
    "--exists-action", "--cert", "--client-cert", "--keyring-provider", "--python", "--group",
    # uv pip install / sync, and uv's general options
    "--requirements", "--constraints", "--override", "--overrides", "--build-constraint",
    "--build-constraints", "--index", "--default-index", "--index-strategy", "--resolution",
    "--prerelease", "--link-mode", "--extra", "--upgrade-package", "--reinstall-package",
    "--no-build-isolation-package", "--no-build-package", "--no-binary-package",
    "--config-setting", "--python-platform", "--exclude-newer", "--refresh-package",
    "--directory", "--project", "--config-file", "--color", "--torch-backend",
    # pip-sync
    "--pip-args", "--python-executable",
})  # fmt: skip
# pip's include flags, plus the plural spellings uv also accepts.
_FILE_KINDS = {**_INCLUDE_FLAGS, "--requirements": "-r", "--constraints": "-c"}


def _basename(word: str) -> str:
    return word.rsplit("/", 1)[-1]


def _pip_invocation(
    words: Sequence[_Word], wrappers: Collection[str]
) -> tuple[str, Sequence[_Word]] | None:
    """("install" or "sync", the arguments after it) when `words` run pip, uv pip or pip-sync."""
    words = _without_prefixes(words)
    if not words:
        return None
    program = _basename(words[0].text)
    rest: Sequence[_Word] | None = words[1:]
    subcommands: tuple[str, ...] = ("install",)
    if program in wrappers:
        return "install", words[1:]
    if program == "pip-sync":
        return "sync", words[1:]
    if program == "uv":
        rest = _skip_options(words[1:])
        if not rest or rest[0].text != "pip":
            return None
        rest = rest[1:]
        subcommands = ("install", "sync")
    elif _PYTHON.fullmatch(program):
        rest = _after_dash_m_pip(words[1:])
    elif not _PIP.fullmatch(program):
        return None
    if rest is None:
        return None
    rest = _skip_options(rest)
    if rest and rest[0].text in subcommands:
        return rest[0].text, rest[1:]
    return None


def _without_prefixes(words: Sequence[_Word]) -> Sequence[_Word]:
    """Drop what may precede the program: shell keywords, `VAR=x`, `sudo -H`, `env -u X`."""
    k = 0
    while k < len(words):
        text = words[k].text
        if text in _PREFIX_WORDS or _ASSIGNMENT.match(text):
            k += 1
        elif text in ("sudo", "env"):
            k += 1
            while k < len(words) and (
                words[k].text.startswith("-") or _ASSIGNMENT.match(words[k].text)
            ):
                k += 2 if words[k].text in _PREFIX_VALUE_OPTIONS else 1
        else:
            break
    return words[k:]


def _after_dash_m_pip(words: Sequence[_Word]) -> Sequence[_Word] | None:
    """The words after `-m pip` of a python command line, or None if it runs something else."""
    k = 0
    while k < len(words):
        text = words[k].text
        if text == "-m":
            return words[k + 2 :] if k + 1 < len(words) and words[k + 1].text == "pip" else None
        if text == "-mpip":
            return words[k + 1 :]
        if not text.startswith("-") or text.startswith(("-c", "-m")) or text == "-":
            return None
        k += 2 if text in ("-X", "-W") else 1
    return None


def _skip_options(words: Sequence[_Word]) -> Sequence[_Word]:
    k = 0
    while k < len(words) and words[k].text.startswith("-") and words[k].text != "-":
        _, _, k = _option(words, k)
    return words[k:]


def _option(words: Sequence[_Word], k: int) -> tuple[str, _Word | None, int]:
    """The option at words[k]: its name, its value if it takes one, and the index after it."""
    word = words[k]
    text = word.text
    following = words[k + 1] if k + 1 < len(words) else None
    if text.startswith("--"):
        name, eq, _ = text.partition("=")
        if eq:
            return name, word.tail(len(name) + 1), k + 1
        if name in _LONG_VALUE:
            return name, following, k + 2
        return name, None, k + 1
    # Short options cluster the way optparse and clap allow: `-Ur file`, `-rfile`.
    for pos in range(1, len(text)):
        if text[pos] in _SHORT_VALUE:
            if pos + 1 < len(text):
                return "-" + text[pos], word.tail(pos + 1), k + 1
            return "-" + text[pos], following, k + 2
    return text, None, k + 1


def _probe(word: _Word) -> _Text:
    """`word` with each unknown reference collapsed to "0", which packaging accepts as a name or version."""
    chars: list[str] = []
    srcs: list[_Src] = []
    for k, (ch, src) in enumerate(zip(word.value.text, word.value.src)):
        if not src.unknown:
            chars.append(ch)
            srcs.append(src)
        elif k == 0 or not word.value.src[k - 1].unknown:
            chars.append("0")
            srcs.append(src)
    return _Text("".join(chars), tuple(srcs))


def _pin(path: PurePosixPath, word: _Word, stage: int) -> PinSite | None:
    if word.dynamic:
        return None
    probe = _probe(word)
    try:
        req = Requirement(probe.text)
    except InvalidRequirement:
        return None
    spec = exact_pin(req.specifier)
    if req.url or spec is None:
        return None
    name_at = probe.text.find(req.name)
    if name_at < 0 or any(src.unknown for src in probe.src[name_at : name_at + len(req.name)]):
        return None
    found = version_span(probe.text, spec.operator, spec.version, name_at + len(req.name))
    if found is None:
        return None
    srcs = probe.src[found[0] : found[1]]
    known = not any(src.unknown for src in srcs)
    edit_line, edit_start, edit_end = _span(srcs) if known else (0, 0, 0)
    return PinSite(
        file=path,
        line=word.line,
        stage=stage,
        name=canonicalize_name(req.name),
        raw=word.raw,
        operator=spec.operator,
        version=spec.version if known else None,
        edit_line=edit_line,
        edit_start=edit_start,
        edit_end=edit_end,
    )


def _span(srcs: Sequence[_Src]) -> tuple[int, int, int]:
    """(line, start, end) when the characters sit side by side on one line, else (0, 0, 0)."""
    first = srcs[0]
    if all(src.line == first.line and src.col == first.col + k for k, src in enumerate(srcs)):
        return first.line, first.col, first.col + len(srcs)
    return 0, 0, 0


# --- Instructions ----------------------------------------------------------------------------

_RUN_FLAGS = re.compile(r"\s*(?:--[A-Za-z][\w-]*(?:=\S*)?\s+)*")
_ONLY_HEREDOC = re.compile(r"<<-?([\"']?)[A-Za-z_][\w.-]*\1\s*")
_LEGACY_ENV = re.compile(r"\s*\S+[ \t]+")


def _assignments(words: Sequence[_Word]) -> Iterator[tuple[str, _Text | None]]:
    for word in words:
        name, eq, _ = word.text.partition("=")
        if name:
            yield name, word.value.slice(len(name) + 1) if eq else None


class _Parser:
    def __init__(self, path: PurePosixPath, wrappers: Collection[str]) -> None:
        self.path = path
        self.wrappers = wrappers
        # None: declared without a value we can know, e.g. a build arg with no default.
        self.global_args: dict[str, _Text | None] = {}
        self.envs: list[dict[str, _Text | None]] = []  # per stage, as of the current instruction
        self.stages: list[Stage] = []
        self.pins: list[PinSite] = []
        self.installs: list[RequirementInstall] = []
        self.copies: list[Copy] = []
        self.workdirs: list[str] = []  # per stage
        self.commands = 0

    def feed(self, ins: _Instruction) -> None:
        # Unknown instructions are fine: only these affect what pip installs.
        if ins.keyword == "FROM":
            self._from(ins)
        elif ins.keyword == "ARG":
            self._arg(ins)
        elif ins.keyword == "ENV" and self.envs:
            self._env(ins)
        elif ins.keyword == "RUN" and self.envs:
            self._run(ins)
        elif ins.keyword == "WORKDIR" and self.envs:
            words = _Lexer(ins.args, self.envs[-1], shell=False).words()
            if words:
                self.workdirs[-1] = posixpath.normpath(
                    posixpath.join(self.workdirs[-1], words[0].text)
                )
        elif ins.keyword in ("COPY", "ADD") and self.envs:
            self._copy(ins)

    def _copy(self, ins: _Instruction) -> None:
        exec_words = _exec_words(ins.args)
        words = (
            exec_words
            if exec_words is not None
            else _Lexer(ins.args, self.envs[-1], shell=False).words()
        )
        flags = [w.text for w in words if w.text.startswith("--")]
        paths = [w.text for w in words if not w.text.startswith("--")]
        if any(f.startswith("--from") for f in flags) or len(paths) < 2 or ins.heredocs:
            return  # from another stage or image, or a heredoc: not the build context
        dest = paths[-1]
        if not dest.startswith("/"):
            # A trailing "/" says "directory" and must survive the join.
            slash = "/" if dest.endswith("/") or dest in (".", "./") else ""
            dest = posixpath.normpath(posixpath.join(self.workdirs[-1], dest)) + slash
        self.copies.append(Copy(len(self.stages) - 1, ins.line, tuple(paths[:-1]), dest))

    def _from(self, ins: _Instruction) -> None:
        words = [
            w
            for w in _Lexer(ins.args, self.global_args, shell=False).words()
            if not w.text.startswith("--")
        ]
        if not words:
            return
        name = words[2].text if len(words) >= 3 and words[1].text.lower() == "as" else None
        stage = Stage(len(self.stages), name, words[0].text, ins.line)
        parent = _parent(self.stages, stage)
        # Leniently, a stage sees the global ARGs, and everything its parent stage declared.
        self.envs.append(dict(self.global_args if parent is None else self.envs[parent]))
        self.workdirs.append("/" if parent is None else self.workdirs[parent])
        self.stages.append(stage)

    def _arg(self, ins: _Instruction) -> None:
        scope = self.envs[-1] if self.envs else self.global_args
        for name, value in _assignments(_Lexer(ins.args, scope, shell=False).words()):
            if value is not None:
                scope[name] = value
            else:
                scope.setdefault(name, self.global_args.get(name))

    def _env(self, ins: _Instruction) -> None:
        env = self.envs[-1]
        words = _Lexer(ins.args, env, shell=False).words()
        if words and "=" not in words[0].text:
            legacy = _LEGACY_ENV.match(ins.args.text)  # `ENV NAME value with spaces`
            if legacy is not None:
                env[words[0].text] = _expand(
                    ins.args.slice(legacy.end(), len(ins.args.text.rstrip())), env
                )
            return
        for name, value in _assignments(words):
            if value is not None:
                env[name] = value

    def _run(self, ins: _Instruction) -> None:
        for command in self._commands(ins):
            invocation = _pip_invocation(command, self.wrappers)
            if invocation is not None:
                self._record(*invocation)

    def _commands(self, ins: _Instruction) -> list[list[_Word]]:
        env = self.envs[-1]
        flags = _RUN_FLAGS.match(ins.args.text)
        body = ins.args.slice(flags.end() if flags else 0)
        exec_words = _exec_words(body)
        if exec_words is not None:
            # Exec form runs no shell, so nothing is substituted, unless it runs one itself.
            if (
                len(exec_words) >= 3
                and _basename(exec_words[0].text) in _SHELLS
                and _SHELL_C.fullmatch(exec_words[1].text)
            ):
                return _Lexer(exec_words[2].value, env, shell=True).run()
            return [exec_words]
        self._check_not_broken_exec_form(ins, body)
        if ins.heredocs and _ONLY_HEREDOC.fullmatch(body.text):
            return _Lexer(ins.heredocs[0], env, shell=True).run()
        return _Lexer(body, env, shell=True).run()

    def _check_not_broken_exec_form(self, ins: _Instruction, body: _Text) -> None:
        # Docker would hand an unparsable JSON array to /bin/sh, where it can only fail.
        # When it was meant to run pip, saying so beats silently finding no pins in it.
        if (
            re.match(r'\[\s*"', body.text)
            and _pip_invocation(_json_strings(body), self.wrappers) is not None
        ):
            raise ParseError(
                self.path,
                ins.line,
                "RUN " + ins.args.text,
                "RUN is not a valid JSON array of strings",
            )

    def _record(self, subcommand: str, args: Sequence[_Word]) -> None:
        stage = len(self.stages) - 1
        files: list[tuple[str, int, _Word]] = []
        no_deps = False
        k = 0
        while k < len(args):
            word = args[k]
            if word.text.startswith("-") and word.text != "-":
                name, value, k = _option(args, k)
                no_deps = no_deps or name == "--no-deps"
                kind = _FILE_KINDS.get(name)
                if kind is not None and value is not None:
                    files.append((kind, word.line, value))
                continue
            if subcommand == "sync":
                files.append(("sync", word.line, word))
            elif (pin := _pin(self.path, word, stage)) is not None:
                self.pins.append(pin)
            k += 1
        self.commands += 1
        self.installs.extend(
            RequirementInstall(
                self.path,
                line,
                stage,
                value.text,
                kind,
                no_deps,
                self.commands,
                self.workdirs[stage],
            )
            for kind, line, value in files
        )
