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
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from .errors import ParseError
from .pipcommand import (
    FILE_KINDS,
    SHELL_C,
    SHELLS,
    PinSite,
    basename,
    option,
    pin_site,
    pip_invocation,
)
from .shell import Lexer, Src, Text, Word, exec_words, expand, json_strings


@dataclass(frozen=True)
class BuildStage:
    index: int
    name: str | None
    base: str
    line: int


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


# --- Instructions ----------------------------------------------------------------------------

_RUN_FLAGS = re.compile(r"\s*(?:--[A-Za-z][\w-]*(?:=\S*)?\s+)*")
_ONLY_HEREDOC = re.compile(r"<<-?([\"']?)[A-Za-z_][\w.-]*\1\s*")
_LEGACY_ENV = re.compile(r"\s*\S+[ \t]+")


def _reads_script_from_stdin(command: Sequence[Word]) -> bool:
    """A shell given only option flags (no `-c`, no script file) runs what stdin holds."""
    if not command or basename(command[0].text) not in SHELLS:
        return False
    flags = command[1:]
    return all(w.text.startswith(("-", "+")) and not SHELL_C.fullmatch(w.text) for w in flags)


def _scripts(
    commands: list[list[Word]], env: Mapping[str, Text | None], depth: int = 0
) -> list[list[Word]]:
    """`commands`, with each `sh -c SCRIPT` replaced by the commands of SCRIPT."""
    out: list[list[Word]] = []
    for command in commands:
        script = _shell_c_script(command)
        if script is None or depth > 3:  # deeper nesting is not worth following
            out.append(command)
        else:
            out.extend(_scripts(Lexer(script.value, env, shell=True).run(), env, depth + 1))
    return out


def _shell_c_script(command: Sequence[Word]) -> Word | None:
    if not command or basename(command[0].text) not in SHELLS:
        return None
    for i, word in enumerate(command[1:-1], start=1):
        if SHELL_C.fullmatch(word.text):
            return command[i + 1]
        if not word.text.startswith(("-", "+")):
            return None  # a script file: `sh install.sh -c x` passes -c to the script
    return None


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
            invocation = pip_invocation(command, self.wrappers)
            if invocation is not None:
                self._record(*invocation)

    def _commands(self, ins: _Instruction) -> list[list[Word]]:
        env = self.envs[-1]
        flags = _RUN_FLAGS.match(ins.args.text)
        body = ins.args.slice(flags.end() if flags else 0)
        exec_form = exec_words(body)
        if exec_form is not None:
            # Exec form runs no shell, so nothing is substituted, unless it runs one itself.
            return _scripts([exec_form], env)
        self._check_not_broken_exec_form(ins, body)
        if ins.heredocs and _ONLY_HEREDOC.fullmatch(body.text):
            return _scripts(Lexer(ins.heredocs[0], env, shell=True).run(), env)
        commands = Lexer(body, env, shell=True).run()
        if len(ins.heredocs) == 1 and len(commands) == 1 and _reads_script_from_stdin(commands[0]):
            # `RUN <<EOT bash` and `RUN bash -e <<EOT`: the heredoc is the shell's script.
            commands = Lexer(ins.heredocs[0], env, shell=True).run()
        return _scripts(commands, env)

    def _check_not_broken_exec_form(self, ins: _Instruction, body: Text) -> None:
        # Docker would hand an unparsable JSON array to /bin/sh, where it can only fail.
        # When it was meant to run pip, saying so beats silently finding no pins in it.
        if (
            re.match(r'\[\s*"', body.text)
            and pip_invocation(json_strings(body), self.wrappers) is not None
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
                name, value, k = option(args, k)
                no_deps = no_deps or name == "--no-deps"
                kind = FILE_KINDS.get(name)
                if kind is not None and value is not None:
                    files.append((kind, word.line, value))
                continue
            if subcommand == "sync":
                files.append(("sync", word.line, word))
            elif (pin := pin_site(self.path, word, stage)) is not None:
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
