"""Recognising pip commands in shell words: `pip install`, `python -m pip`, `uv pip`, `pipx`.

A Dockerfile's RUN, a CI step, a Makefile recipe and a script line are all shell; once
their words are lexed (`shell.py`), this says which of them run pip, what they install
and where each exact pin's version was written. Pure: words in, pins out.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name

from .edits import Span, version_span
from .reqfile import _INCLUDE_FLAGS, exact_pin
from .shell import Lexer, Src, Text, Word


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


# --- pip commands --------------------------------------------------------------------------

_PIP = re.compile(r"pip\d*(?:\.\d+)?")
_PYTHON = re.compile(r"python\d*(?:\.\d+)?")
SHELLS = frozenset({"sh", "bash", "dash", "ash", "zsh"})
SHELL_C = re.compile(r"-[a-z]*c[a-z]*")
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
FILE_KINDS = {**_INCLUDE_FLAGS, "--requirements": "-r", "--constraints": "-c"}


def basename(word: str) -> str:
    return word.rsplit("/", 1)[-1]


def pip_invocation(
    words: Sequence[Word], wrappers: Collection[str], *, pipx: bool = False
) -> tuple[str, Sequence[Word]] | None:
    """("install" or "sync", the arguments after it) when `words` run pip, uv pip or pip-sync.

    With `pipx`, `pipx install` counts too: it pins a tool (a CI step's), though in an
    image it installs into an environment of its own that no lock describes.
    """
    words = _without_prefixes(words)
    if not words:
        return None
    program = basename(words[0].text)
    rest: Sequence[Word] | None = words[1:]
    subcommands: tuple[str, ...] = ("install",)
    if program in wrappers:
        return "install", words[1:]
    if program == "pip-sync":
        return "sync", words[1:]
    if program == "pipx" and pipx:
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
        _, _, k = option(words, k)
    return words[k:]


def option(words: Sequence[Word], k: int) -> tuple[str, Word | None, int]:
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


def pin_site(path: PurePosixPath, word: Word, stage: int) -> PinSite | None:
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
        invocation = pip_invocation(command, wrappers, pipx=True)
        if invocation is None or invocation[0] != "install":
            continue
        args = invocation[1]
        k = 0
        while k < len(args):
            if args[k].text.startswith("-") and args[k].text != "-":
                _, _, k = option(args, k)
                continue
            pin = pin_site(path, args[k], 0)
            if pin is not None:
                pins.append(pin)
            k += 1
    return pins
