"""Finding pip pins and requirement-file installs in Dockerfiles, with exact edit spans.

Pure: text in, dataclasses out; nothing is read, run or executed. The Dockerfile layer
(continuations, comments, heredocs, ARG/ENV scoping, exec form) and the shell words of a
RUN are lexed here, every character traced back to the physical line and column it was
written at, so that a version reached through `${VAR}` can still be edited where it is
defined. What a requirement token means is left to `packaging`.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name

from .edits import Span, version_span
from .errors import ParseError
from .reqfile import _INCLUDE_FLAGS, exact_pin
from .shell import Lexer, Src, Text, Word, exec_words, expand, json_strings


@dataclass(frozen=True)
class BuildStage:
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
    stages: tuple[BuildStage, ...]
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


def _parent(stages: Sequence[BuildStage], stage: BuildStage) -> int | None:
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


@dataclass(frozen=True)
class _Instruction:
    keyword: str
    line: int
    args: Text
    heredocs: tuple[Text, ...]


def _physical_lines(text: str) -> list[str]:
    # Not str.splitlines: Docker breaks lines at \n only, and edits.splice must agree.
    return [line.removesuffix("\r") for line in text.split("\n")]


# Docker skips a UTF-8 BOM; it stays in line 1 so that columns index the text edits.splice edits.
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
        srcs: list[Src] = []
        while i < len(lines):
            line = lines[i]
            trimmed = line.rstrip(" \t")
            continued = trimmed.endswith(escape)
            end = len(trimmed) - 1 if continued else len(line)
            chars.extend(line[:end])
            srcs.extend(Src(i + 1, col) for col in range(end))
            i += 1
            if not continued:
                break
            # Docker drops comment and blank lines inside a continued instruction.
            while i < len(lines) and _skippable(lines[i]):
                i += 1
        logical = Text("".join(chars), tuple(srcs))
        match = _KEYWORD.match(logical.text)
        if match is None:
            continue
        keyword = match[1].upper()
        args = logical.slice(match.end())
        heredocs: list[Text] = []
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


def _heredoc_markers(args: Text) -> Iterator[tuple[bool, str]]:
    # Markers are found among the words as written: a variable that expands to `<<x`
    # does not start a heredoc. (Quotes are already removed from `raw`, so `"<<x"`
    # counts as a marker here.)
    for word in Lexer(args, {}, shell=False).words():
        match = _HEREDOC_MARKER.fullmatch(word.text)
        if match is not None and word.raw.startswith("<<"):
            yield match[1] == "-", match[2]


def _heredoc_body(lines: Sequence[str], i: int, marker: str, strip_tabs: bool) -> tuple[Text, int]:
    chars: list[str] = []
    srcs: list[Src] = []
    while i < len(lines):
        line = lines[i]
        i += 1
        if (line.lstrip("\t") if strip_tabs else line) == marker:
            break
        chars.extend(line + "\n")
        srcs.extend(Src(i, col) for col in range(len(line) + 1))
    return Text("".join(chars), tuple(srcs)), i


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
    words: Sequence[Word], wrappers: Collection[str]
) -> tuple[str, Sequence[Word]] | None:
    """("install" or "sync", the arguments after it) when `words` run pip, uv pip or pip-sync."""
    words = _without_prefixes(words)
    if not words:
        return None
    program = _basename(words[0].text)
    rest: Sequence[Word] | None = words[1:]
    subcommands: tuple[str, ...] = ("install",)
    if program in wrappers:
        return "install", words[1:]
    if program == "pip-sync":
        return "sync", words[1:]
    if program == "pipx":  # `pipx install tox==4.11.0`: an application, pinned all the same
        rest = _skip_options(words[1:])
        return ("install", rest[1:]) if rest and rest[0].text == "install" else None
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


def _without_prefixes(words: Sequence[Word]) -> Sequence[Word]:
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


def _after_dash_m_pip(words: Sequence[Word]) -> Sequence[Word] | None:
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


def _skip_options(words: Sequence[Word]) -> Sequence[Word]:
    k = 0
    while k < len(words) and words[k].text.startswith("-") and words[k].text != "-":
        _, _, k = _option(words, k)
    return words[k:]


def _option(words: Sequence[Word], k: int) -> tuple[str, Word | None, int]:
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


def _probe(word: Word) -> Text:
    """`word` with each unknown reference collapsed to "0", which packaging accepts as a name or version."""
    chars: list[str] = []
    srcs: list[Src] = []
    for k, (ch, src) in enumerate(zip(word.value.text, word.value.src, strict=True)):
        if not src.unknown:
            chars.append(ch)
            srcs.append(src)
        elif k == 0 or not word.value.src[k - 1].unknown:
            chars.append("0")
            srcs.append(src)
    return Text("".join(chars), tuple(srcs))


def _pin(path: PurePosixPath, word: Word, stage: int) -> PinSite | None:
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


def _span(srcs: Sequence[Src]) -> tuple[int, int, int]:
    """(line, start, end) when the characters sit side by side on one line, else (0, 0, 0)."""
    first = srcs[0]
    if all(src.line == first.line and src.col == first.col + k for k, src in enumerate(srcs)):
        return first.line, first.col, first.col + len(srcs)
    return 0, 0, 0


# --- Instructions ----------------------------------------------------------------------------

_RUN_FLAGS = re.compile(r"\s*(?:--[A-Za-z][\w-]*(?:=\S*)?\s+)*")
_ONLY_HEREDOC = re.compile(r"<<-?([\"']?)[A-Za-z_][\w.-]*\1\s*")
_LEGACY_ENV = re.compile(r"\s*\S+[ \t]+")


def _assignments(words: Sequence[Word]) -> Iterator[tuple[str, Text | None]]:
    for word in words:
        name, eq, _ = word.text.partition("=")
        if name:
            yield name, word.value.slice(len(name) + 1) if eq else None


class _Parser:
    def __init__(self, path: PurePosixPath, wrappers: Collection[str]) -> None:
        self.path = path
        self.wrappers = wrappers
        # None: declared without a value we can know, e.g. a build arg with no default.
        self.global_args: dict[str, Text | None] = {}
        self.envs: list[dict[str, Text | None]] = []  # per stage, as of the current instruction
        self.stages: list[BuildStage] = []
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
            words = Lexer(ins.args, self.envs[-1], shell=False).words()
            if words:
                self.workdirs[-1] = posixpath.normpath(
                    posixpath.join(self.workdirs[-1], words[0].text)
                )
        elif ins.keyword in ("COPY", "ADD") and self.envs:
            self._copy(ins)

    def _copy(self, ins: _Instruction) -> None:
        exec_form = exec_words(ins.args)
        words = (
            exec_form
            if exec_form is not None
            else Lexer(ins.args, self.envs[-1], shell=False).words()
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
            for w in Lexer(ins.args, self.global_args, shell=False).words()
            if not w.text.startswith("--")
        ]
        if not words:
            return
        name = words[2].text if len(words) >= 3 and words[1].text.lower() == "as" else None
        stage = BuildStage(len(self.stages), name, words[0].text, ins.line)
        parent = _parent(self.stages, stage)
        # Leniently, a stage sees the global ARGs, and everything its parent stage declared.
        self.envs.append(dict(self.global_args if parent is None else self.envs[parent]))
        self.workdirs.append("/" if parent is None else self.workdirs[parent])
        self.stages.append(stage)

    def _arg(self, ins: _Instruction) -> None:
        scope = self.envs[-1] if self.envs else self.global_args
        for name, value in _assignments(Lexer(ins.args, scope, shell=False).words()):
            if value is not None:
                scope[name] = value
            else:
                scope.setdefault(name, self.global_args.get(name))

    def _env(self, ins: _Instruction) -> None:
        env = self.envs[-1]
        words = Lexer(ins.args, env, shell=False).words()
        if words and "=" not in words[0].text:
            legacy = _LEGACY_ENV.match(ins.args.text)  # `ENV NAME value with spaces`
            if legacy is not None:
                env[words[0].text] = expand(
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

    def _commands(self, ins: _Instruction) -> list[list[Word]]:
        env = self.envs[-1]
        flags = _RUN_FLAGS.match(ins.args.text)
        body = ins.args.slice(flags.end() if flags else 0)
        exec_form = exec_words(body)
        if exec_form is not None:
            # Exec form runs no shell, so nothing is substituted, unless it runs one itself.
            if (
                len(exec_form) >= 3
                and _basename(exec_form[0].text) in _SHELLS
                and _SHELL_C.fullmatch(exec_form[1].text)
            ):
                return Lexer(exec_form[2].value, env, shell=True).run()
            return [exec_form]
        self._check_not_broken_exec_form(ins, body)
        if ins.heredocs and _ONLY_HEREDOC.fullmatch(body.text):
            return Lexer(ins.heredocs[0], env, shell=True).run()
        return Lexer(body, env, shell=True).run()

    def _check_not_broken_exec_form(self, ins: _Instruction, body: Text) -> None:
        # Docker would hand an unparsable JSON array to /bin/sh, where it can only fail.
        # When it was meant to run pip, saying so beats silently finding no pins in it.
        if (
            re.match(r'\[\s*"', body.text)
            and _pip_invocation(json_strings(body), self.wrappers) is not None
        ):
            raise ParseError(
                self.path,
                ins.line,
                "RUN " + ins.args.text,
                "RUN is not a valid JSON array of strings",
            )

    def _record(self, subcommand: str, args: Sequence[Word]) -> None:
        stage = len(self.stages) - 1
        files: list[tuple[str, int, Word]] = []
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


# --- pip commands outside Dockerfiles ----------------------------------------------------------


def command_pins(
    path: PurePosixPath, lines: Sequence[tuple[int, int, str]], wrappers: Collection[str] = ()
) -> list[PinSite]:
    """Pins of the pip commands in a shell text given as (line, column, text) pieces.

    The pieces are joined into one script, each character remembering where it was
    written, and read with the same shell-word and pip logic as a Dockerfile's RUN;
    a CI step, a Makefile recipe or a script line is a RUN without the Dockerfile.
    """
    chars: list[str] = []
    srcs: list[Src] = []
    for number, column, text in lines:
        if chars:
            chars.append(" ")
            srcs.append(Src(number, column))
        chars.extend(text)
        srcs.extend(Src(number, column + k) for k in range(len(text)))
    pins: list[PinSite] = []
    for command in Lexer(Text("".join(chars), tuple(srcs)), {}, shell=True).run():
        invocation = _pip_invocation(command, wrappers)
        if invocation is None or invocation[0] != "install":
            continue
        args = invocation[1]
        k = 0
        while k < len(args):
            if args[k].text.startswith("-") and args[k].text != "-":
                _, _, k = _option(args, k)
                continue
            pin = _pin(path, args[k], 0)
            if pin is not None:
                pins.append(pin)
            k += 1
    return pins
