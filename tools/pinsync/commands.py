"""Compile commands where a repository keeps them: Makefiles, tox, scripts, CI, pyproject.

A lock whose header shows only a custom command (`make upgrade`, a workflow's name)
does not say how pip-compile ran; the repository usually still does, in the recipe
or script behind that command. Reading it gives the exact options, so such a lock
can be re-resolved rather than checked against a guess. Pure: paths and texts in.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Final, Literal

from .environments import logical_lines
from .lockfile import parse_argv

CommandTool = Literal["pip-compile", "uv"]

# The compile commands pinsync replays: pip-compile, `python -m piptools compile`,
# `uv pip compile` (pip-compile-multi reads no options from its outputs' names).
_COMMAND: Final = re.compile(
    r"(?:(?<=[\s;&|(`\"'])|^)(?:[^\s\"'`;&|()]*/)?"
    r"(?P<tool>pip-compile(?![\w-])"
    r"|(?:python[\d.]*|\{envpython\}|\$\{?\w+\}?|\$\(\w+\))\s+-m\s+piptools\s+compile"
    r"|uv\s+pip\s+compile)"
)
# Where a command ends on its line.
_OPERATORS: Final = frozenset({"&&", "||", ";", "|", ">", ">>", "2>", "2>&1", ")", "&"})
# make's assignments: NAME = value, NAME := value, NAME ?= value, export NAME = value.
_MAKE_ASSIGNMENT: Final = re.compile(r"^(?:export\s+)?([A-Za-z_][\w.-]*)\s*[:?+]?=\s*(.*)$")
_MAKE_VARIABLE: Final = re.compile(r"\$[({]([A-Za-z_][\w.-]*)[)}]")


@dataclass(frozen=True)
class CompileCommand:
    """One compile command as written: where, and the argv it runs."""

    file: PurePosixPath
    line: int
    tool: CommandTool
    output: str | None  # `--output-file` as written
    sources: tuple[str, ...]
    options: tuple[str, ...]
    # Whether every option is known: a `$(OPTS)` no assignment explains may hide more.
    complete: bool


def find_commands(path: PurePosixPath, text: str) -> list[CompileCommand]:
    """Every compile command of one file, its lines joined where a backslash continues them."""
    if "compile" not in text:
        return []
    make = path.name in ("Makefile", "makefile", "GNUmakefile") or path.suffix == ".mk"
    variables = _make_variables(text) if make else {}
    found = []
    for number, line in logical_lines(text):
        if make:
            line = _expand_make(line, variables)
        for match in _COMMAND.finditer(line):
            command = _command(path, number, match.group("tool"), line[match.end() :])
            if command is not None:
                found.append(command)
    return found


def _make_variables(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for _, line in logical_lines(text):
        if line[:1] in ("\t", " ", "#"):
            continue
        match = _MAKE_ASSIGNMENT.match(line.strip())
        if match and ":" not in match.group(1):
            out[match.group(1)] = match.group(2).strip()
    return out


def _expand_make(line: str, variables: Mapping[str, str]) -> str:
    for _ in range(5):  # a variable may name another; make nests deeper, we need not
        expanded = _MAKE_VARIABLE.sub(lambda m: variables.get(m.group(1), m.group(0)), line)
        if expanded == line:
            break
        line = expanded
    return line.replace("$$", "$")


def _command(path: PurePosixPath, number: int, tool: str, rest: str) -> CompileCommand | None:
    try:
        words = shlex.split(rest, comments=True)
    except ValueError:
        return None
    argv: list[str] = []
    for word in words:
        if word in _OPERATORS or word.startswith((">", "2>")):
            break
        argv.append(word.replace("{toxinidir}/", ""))
    unknown = [w for w in argv if "$" in w or "`" in w or "{" in w]
    output, sources, options = parse_argv(argv)
    if output is not None and output in unknown:
        return None
    if any(s in unknown for s in sources):
        return None  # `$<`, `$$f`: a pattern or a loop, no one output
    name: CommandTool = "uv" if tool.startswith("uv") else "pip-compile"
    complete = not any(w in unknown for w in options)
    known = tuple(o for o in options if o not in unknown)
    return CompileCommand(path, number, name, output, tuple(sources), known, complete)


def nox_commands(path: PurePosixPath, text: str) -> list[CompileCommand]:
    """`session.run("pip-compile", ...)` (or `"uv", "pip", "compile"`, `"python", "-m",
    "piptools", "compile"`) in a noxfile, its arguments written as string literals."""
    import ast

    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        # Nesting too deep for Python's own parser: Python could not run it either.
        return []
    found = []
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "run"
        ):
            continue
        words = [
            a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)
        ]
        if len(words) != len(node.args):
            continue  # a computed argument: this reading cannot name it
        line = shlex.join(words)
        for match in _COMMAND.finditer(line):
            if match.start() == 0:
                command = _command(path, node.lineno, match.group("tool"), line[match.end() :])
                if command is not None:
                    found.append(command)
    return found
