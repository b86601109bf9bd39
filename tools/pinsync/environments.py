"""Environments outside Dockerfiles: the CI jobs and tox environments that install locks.

An environment is one place packages are installed into, with its installs in
order. A GitHub Actions job runs its steps in one runner, so every `run:` of a job
installs into the same interpreter; a GitLab CI job runs its `before_script` and
`script`; a tox environment installs its `deps`, then runs its commands. Two locks
installed into one environment must agree, as two locks installed into one image
stage must. Pure: paths and texts in, installs out.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Final

from .discovery import join

# `pip`, `pip3.11`, `python -m pip`, `python3 -m pip`, `uv pip`: then `install` or `sync`.
_PIP: Final = re.compile(r"pip[\d.]*")
_PYTHON: Final = re.compile(r"python[\d.]*")
_OPERATORS: Final = frozenset({"&&", "||", ";", "|"})


@dataclass(frozen=True)
class Install:
    """One requirement file installed into an environment, as written."""

    file: PurePosixPath  # where the command is written
    line: int
    path: PurePosixPath  # the requirement file, relative to the root
    no_deps: bool
    command: int  # installs of one command share it: pip resolves them together


@dataclass(frozen=True)
class Environment:
    """One place that packages are installed into: a CI job, a tox environment."""

    name: str  # `.github/workflows/ci.yml job test`, `tox.ini [testenv:docs]`
    file: PurePosixPath
    installs: tuple[Install, ...]


def installs_in(
    file: PurePosixPath, number: int, text: str, cwd: PurePosixPath, first: int
) -> list[Install]:
    """The requirement files one shell line installs, commands numbered from `first`."""
    try:
        words = shlex.split(text, comments=True)
    except ValueError:
        return []
    out: list[Install] = []
    command: list[str] = []
    count = first
    for word in [*words, ";"]:
        if word not in _OPERATORS:
            command.append(word)
            continue
        if command and command[0] == "cd" and len(command) > 1 and "$" not in command[1]:
            cwd = join(cwd, command[1])
        out.extend(_requirement_files(file, number, command, cwd, count))
        count += 1
        command = []
    return out


def _requirement_files(
    file: PurePosixPath, number: int, words: list[str], cwd: PurePosixPath, command: int
) -> Iterator[Install]:
    k = 0
    while k < len(words) and (
        ("=" in words[k] and not words[k].startswith("-")) or words[k] in ("sudo", "env")
    ):
        k += 1
    words = words[k:]
    if not words:
        return
    program = words[0].rsplit("/", 1)[-1]
    rest: list[str]
    if program == "pip-sync":
        rest, sync = words[1:], True
    elif program == "uv" and words[1:3] in (["pip", "install"], ["pip", "sync"]):
        rest, sync = words[3:], words[2] == "sync"
    elif _PYTHON.fullmatch(program) and words[1:4] == ["-m", "pip", "install"]:
        rest, sync = words[4:], False
    elif _PIP.fullmatch(program) and words[1:2] == ["install"]:
        rest, sync = words[2:], False
    else:
        return
    no_deps = "--no-deps" in rest
    paths: list[str] = []
    it = iter(rest)
    for word in it:
        if word in ("-r", "--requirement"):
            paths.append(next(it, ""))
        elif word.startswith("--requirement="):
            paths.append(word.partition("=")[2])
        elif word.startswith("-r") and len(word) > 2:
            paths.append(word[2:])
        elif sync and not word.startswith("-"):
            paths.append(word)  # pip-sync a.txt b.txt, uv pip sync a.txt
    for raw in paths:
        if not raw or "$" in raw or "{" in raw or raw.startswith("/"):
            continue  # a variable, or a path on the runner: not a file of this repository
        yield Install(file, number, join(cwd, raw), no_deps, command)


def _logical(lines: list[str], start: int) -> Iterator[tuple[int, str]]:
    """(line number, text) with backslash continuations joined."""
    k = start
    while k < len(lines):
        number, parts = k + 1, [lines[k]]
        while parts[-1].rstrip().endswith("\\") and k + 1 < len(lines):
            parts[-1] = parts[-1].rstrip()[:-1]
            k += 1
            parts.append(lines[k])
        yield number, " ".join(p.strip() for p in parts)
        k += 1


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def github_jobs(path: PurePosixPath, text: str) -> list[Environment]:
    """Each job of a GitHub Actions workflow: its `run:` steps in order, in one runner.

    A reading of the usual layout (`jobs:` at the top, a job per key, `run:` a
    string or a block), not a YAML parser: what it cannot place installs nothing.
    """
    lines = text.replace("\r\n", "\n").split("\n")
    try:
        top = next(i for i, x in enumerate(lines) if x.rstrip() == "jobs:")
    except StopIteration:
        return []
    jobs: list[Environment] = []
    job_indent: int | None = None
    name = ""
    installs: list[Install] = []
    workdir = PurePosixPath(".")
    k = top + 1
    count = 0
    while k < len(lines):
        line = lines[k]
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            k += 1
            continue
        indent = _indent(line)
        if indent == 0:
            break  # the next top-level key
        if job_indent is None:
            job_indent = indent
        if indent == job_indent and stripped.endswith(":"):
            if name:
                jobs.append(Environment(f"{path} job {name}", path, tuple(installs)))
            name, installs, workdir = stripped[:-1].strip("'\""), [], PurePosixPath(".")
            k += 1
            continue
        key = stripped.lstrip("- ").split(":", 1)[0].strip()
        value = stripped.lstrip("- ").split(":", 1)[1].strip() if ":" in stripped else ""
        if key == "working-directory" and value and "$" not in value:
            workdir = PurePosixPath(value.strip("'\"").removeprefix("./") or ".")
        if key == "run" and name:
            # Line numbers are 1-based: the block's first line is the one after `run:`.
            block: list[str] = []
            offset = k + 1
            if value in ("|", ">", "|-", ">-", "|+", ">+") or not value:
                k += 1
                while k < len(lines) and (not lines[k].strip() or _indent(lines[k]) > indent):
                    block.append(lines[k])
                    k += 1
            else:
                block, offset = [value], k
                k += 1
            if value.startswith(">") and block:
                # A folded block is one line of text: its lines joined by spaces.
                block = [" ".join(x.strip() for x in block if x.strip())]
            for number, command in _logical(block, 0):
                found = installs_in(path, offset + number, command, workdir, count)
                installs.extend(found)
                count += 1 + len(found)
            continue
        k += 1
    if name:
        jobs.append(Environment(f"{path} job {name}", path, tuple(installs)))
    return [j for j in jobs if j.installs]


def tox_environments(path: PurePosixPath, text: str) -> list[Environment]:
    """Each `[testenv...]` section's `deps` (`-r file`), then its `commands_pre` and
    `commands`, in order; tox runs them from the directory of tox.ini."""
    import configparser

    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    try:
        parser.read_string(text)
    except configparser.Error:
        return []
    here = path.parent
    lines = text.split("\n")
    envs = []
    for section in parser.sections():
        if not (section == "testenv" or section.startswith("testenv:")):
            continue
        installs: list[Install] = []
        count = 0
        for key in ("deps", "commands_pre", "commands"):
            value = parser.get(section, key, fallback="")
            for raw in value.split("\n"):
                entry = raw.strip().replace("{toxinidir}/", "")
                if not entry or entry.startswith("#"):
                    continue
                number = _line_of(lines, raw.strip())
                if key == "deps":
                    command = f"pip install {entry}" if entry.startswith(("-r", "--requirement")) else ""
                else:
                    command = entry
                found = installs_in(path, number, command, here, count) if command else []
                installs.extend(found)
                count += 1 + len(found)
        if installs:
            envs.append(Environment(f"{path} [{section}]", path, tuple(installs)))
    return envs


def _line_of(lines: list[str], text: str) -> int:
    return next((i + 1 for i, x in enumerate(lines) if text and text in x), 1)
