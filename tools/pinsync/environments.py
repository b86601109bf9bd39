"""Environments outside Dockerfiles: the CI jobs and tox environments that install locks.

An environment is one place packages are installed into, with its installs in
order. A GitHub Actions job runs its steps in one runner, so every `run:` of a job
installs into the same interpreter; a GitLab CI job runs its `before_script` and
`script`; a tox environment installs its `deps`, then runs its commands. Two locks
installed into one environment must agree, as two locks installed into one image
stage must. Pure: paths and texts in, installs out.
"""

from __future__ import annotations

import ast
import re
import shlex
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import Final, TypeGuard

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
    # `pip install -e .[dev]`: `path` is then the project's directory, and what it
    # installs is known only from its build config (Repo.environments reads it).
    extras: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Environment:
    """One place that packages are installed into: a CI job, a tox environment."""

    name: str  # `.github/workflows/ci.yml job test`, `tox.ini [testenv:docs]`
    file: PurePosixPath
    installs: tuple[Install, ...]
    # The lines of `file` that define it, first and last: a pin written there
    # (`pip install black==24.1`) is installed into it.
    span: tuple[int, int] = (1, 1 << 30)
    # A compose service runs in an image: the Dockerfile it is built from, and the
    # stage (`target:`, else the last). What that stage installs comes first.
    image: tuple[PurePosixPath, str | None] | None = None


@dataclass(frozen=True)
class Step:
    """One requirement file installed into an environment, as a judge sees it:
    `Install`s of every reader (and image stages) come down to these."""

    lock: PurePosixPath
    line: int
    no_deps: bool
    command: int  # the locks of one command are resolved together by pip
    file: str | None = None  # where it is written, when not in the environment's file


@dataclass(frozen=True)
class Place:
    """One environment and the requirement files it installs, in order, as
    `check --environments` shows it."""

    name: str
    file: str  # where it is defined
    steps: tuple[Step, ...]


# The installs of each shell script of the repository, for the lines that run one.
Scripts = Mapping[PurePosixPath, Sequence[Install]]


def installs_in(
    file: PurePosixPath,
    number: int,
    text: str,
    cwd: PurePosixPath,
    first: int,
    scripts: Scripts | None = None,
) -> list[Install]:
    """The requirement files one shell line installs, commands numbered from `first`;
    a line that runs a script of the repository installs what that script installs."""
    if len(text) > _LONGEST_LINE:
        # shlex builds each word a character at a time, quadratic in its length; a
        # line this long is generated data (a base64 blob), not someone's install.
        return []
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
        called = _script_called(command, cwd, scripts or {})
        if called is not None:
            # Its installs keep their own file:line; their commands follow this one's.
            out.extend(replace(i, command=count + 1 + i.command) for i in called)
            count += 1 + len(called)
        out.extend(_requirement_files(file, number, command, cwd, count))
        count += 1
        command = []
    return out


def _script_called(
    words: Sequence[str], cwd: PurePosixPath, scripts: Scripts
) -> Sequence[Install] | None:
    if not words:
        return None
    if words[0] in ("bash", "sh", "source", ".") and len(words) > 1:
        target = words[1]
    elif words[0].endswith(".sh") or words[0].startswith("./"):
        target = words[0]
    else:
        return None
    return scripts.get(join(cwd, target))


def script_installs(path: PurePosixPath, text: str) -> list[Install]:
    """What a shell script installs, in order, run from the root (as CI runs it)."""
    out: list[Install] = []
    count = 0
    for number, line in logical_lines(text):
        found = installs_in(path, number, line, PurePosixPath("."), count)
        out.extend(found)
        count += 1 + len(found)
    return out


# What may stand before a command and still run it.
_PREFIXES: Final = frozenset({"sudo", "env", "exec", "nohup", "time", "command"})


def _install_arguments(words: list[str]) -> tuple[list[str], bool] | None:
    """(the arguments, whether it syncs) when `words` install with pip, uv or pip-sync."""
    k = 0
    while k < len(words) and (
        ("=" in words[k] and not words[k].startswith("-")) or words[k] in _PREFIXES
    ):
        k += 1
    words = words[k:]
    if not words:
        return None
    program = words[0].rsplit("/", 1)[-1]
    if program == "pip-sync":
        return words[1:], True
    if program == "uv" and words[1:3] in (["pip", "install"], ["pip", "sync"]):
        return words[3:], words[2] == "sync"
    if _PYTHON.fullmatch(program) and words[1:4] == ["-m", "pip", "install"]:
        return words[4:], False
    if _PIP.fullmatch(program):
        # pip's general options may come first: `pip --disable-pip-version-check install`.
        k = 1
        while k < len(words) and words[k].startswith("-") and "=" not in words[k]:
            k += 1
        if words[k : k + 1] == ["install"]:
            return words[k + 1 :], False
    return None


def forwards_to_pip(text: str) -> bool:
    """Whether a script hands its own arguments to `pip install` (warehouse's
    bin/docker/pip-install: `pip install --no-compile "$@"`): running it installs."""
    for _, line in logical_lines(text):
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            continue
        command: list[str] = []
        for word in [*words, ";"]:
            if word not in _OPERATORS:
                command.append(word)
                continue
            found = _install_arguments(command)
            if found is not None and any(w in ("$@", "$*") for w in found[0]):
                return True
            command = []
    return False


def _requirement_files(
    file: PurePosixPath, number: int, words: list[str], cwd: PurePosixPath, command: int
) -> Iterator[Install]:
    arguments = _install_arguments(words)
    if arguments is None:
        return
    rest, sync = arguments
    no_deps = "--no-deps" in rest
    paths: list[str] = []
    projects: list[str] = []
    it = iter(rest)
    for word in it:
        if word in ("-e", "--editable"):
            projects.append(next(it, ""))
        elif word.startswith("--editable="):
            projects.append(word.partition("=")[2])
        elif not sync and not word.startswith("-") and _PROJECT.fullmatch(word):
            projects.append(word)
        elif word in ("-r", "--requirement") or re.fullmatch(r"-[a-zA-Z]+r", word):
            paths.append(next(it, ""))  # `-qr file`: short options combine
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
    for raw in projects:
        found = _PROJECT.fullmatch(raw)
        if found is None or "$" in raw or raw.startswith("/"):
            continue
        directory, extras = found.group(1), found.group(2) or ""
        names = tuple(e.strip() for e in extras.strip("[]").split(",") if e.strip())
        yield Install(file, number, join(cwd, directory), no_deps, command, names)


# Longer shell lines are not read for installs (see installs_in).
_LONGEST_LINE: Final = 16 * 1024

# A project directory pip installs (`.`, `./svc[dev,test]`): a path, not a name on an
# index (those have no `.` or `/` in front), and no URL.
_PROJECT: Final = re.compile(r"(\.{1,2}(?:/[\w.-]+)*/?|[\w.-]+(?:/[\w.-]+)+/?)(\[[\w, -]*\])?")


def logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, text) of a script, Makefile or workflow, with backslash
    continuations joined. Read by this module and by commands.py alike."""
    return _logical(text.replace("\r\n", "\n").split("\n"))


def _logical(lines: list[str]) -> Iterator[tuple[int, str]]:
    k = 0
    while k < len(lines):
        number, parts = k + 1, [lines[k].rstrip("\r")]
        # Only a backslash that ends the line continues it, as in sh and make: one
        # followed by a space escapes the space.
        while parts[-1].endswith("\\") and k + 1 < len(lines):
            parts[-1] = parts[-1][:-1]
            k += 1
            parts.append(lines[k].rstrip("\r"))
        # The first line keeps its indentation: a Makefile's tab says "recipe".
        yield number, " ".join([parts[0].rstrip(), *(p.strip() for p in parts[1:])])
        k += 1


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def github_jobs(
    path: PurePosixPath, text: str, scripts: Scripts | None = None
) -> list[Environment]:
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
    start = 0
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
                jobs.append(Environment(f"{path} job {name}", path, tuple(installs), (start, k)))
            name, installs, workdir = stripped[:-1].strip("'\""), [], PurePosixPath(".")
            start = k + 1
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
            for number, command in _logical(block):
                found = installs_in(path, offset + number, command, workdir, count, scripts)
                installs.extend(found)
                count += 1 + len(found)
            continue
        k += 1
    if name:
        jobs.append(Environment(f"{path} job {name}", path, tuple(installs), (start, k)))
    return [j for j in jobs if j.installs]


def compose_services(
    path: PurePosixPath, text: str, scripts: Scripts | None = None
) -> list[Environment]:
    """Each service of a compose file whose `command:` or `entrypoint:` installs
    requirement files (`sh -c "pip install -r requirements/dev.txt && ..."`).

    The string, block (`|`, `>`) and list forms compose documents are read; a list is
    the words of one command, as compose passes them. Paths are relative to the
    compose file's directory, where `docker compose` is run and volumes usually mount.
    """
    lines = text.replace("\r\n", "\n").split("\n")
    try:
        top = next(i for i, x in enumerate(lines) if x.rstrip() == "services:")
    except StopIteration:
        return []
    cwd = path.parent
    found: list[Environment] = []
    service_indent: int | None = None
    name = ""
    first = 0
    image: tuple[PurePosixPath, str | None] | None = None
    installs: list[Install] = []
    count = 0
    k = top + 1
    while k < len(lines):
        line = lines[k]
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            k += 1
            continue
        indent = _indent(line)
        if indent == 0:
            break
        if service_indent is None:
            service_indent = indent
        if indent == service_indent and stripped.endswith(":"):
            if name and installs:
                found.append(
                    Environment(f"{path} service {name}", path, tuple(installs), (first, k), image)
                )
            name, installs, first = stripped[:-1].strip("'\""), [], k + 1
            image = None
            k += 1
            continue
        key, _, value = stripped.partition(":")
        value = value.strip()
        if key == "build" and name:
            image, k = _compose_build(lines, k, cwd)
            continue
        if key not in ("command", "entrypoint") or not name:
            k += 1
            continue
        start = k + 1
        k += 1
        block: list[str] = []
        while k < len(lines) and (not lines[k].strip() or _indent(lines[k]) > indent):
            block.append(lines[k].strip())
            k += 1
        if value.startswith("[") or (not value and block and block[0].startswith("- ")):
            # The exec form: each item is one word of the command.
            items = value.strip("[]").split(",") if value else [b[2:] for b in block if b]
            command = shlex.join(_unquoted(x.strip()) for x in items if x.strip())
            number = start if value else start + 1
        elif value in ("|", ">", "|-", ">-", "|+", ">+") or not value:
            command, number = " ".join(b for b in block if b), start + 1
        else:
            command, number = _unquoted(value), start
        words = shlex.split(command) if _quotes_balanced(command) else []
        if len(words) >= 3 and words[-2] == "-c" and words[0].rsplit("/", 1)[-1] in _SHELLS:
            command = words[-1]  # `sh -c "..."`: the script is the last word
        found_here = installs_in(path, number, command, cwd, count, scripts)
        installs.extend(found_here)
        count += 1 + len(found_here)
    if name and installs:
        found.append(
            Environment(f"{path} service {name}", path, tuple(installs), (first, k), image)
        )
    return found


def _compose_build(
    lines: list[str], k: int, cwd: PurePosixPath
) -> tuple[tuple[PurePosixPath, str | None] | None, int]:
    """A service's `build:` (`build: DIR`, or a block of `context:`, `dockerfile:` and
    `target:`): the Dockerfile and stage, and the index of the line after it."""
    line = lines[k]
    indent = _indent(line)
    value = _unquoted(line.split(":", 1)[1].split(" #", 1)[0].strip())
    context, dockerfile, target = value, None, None
    k += 1
    while k < len(lines) and (not lines[k].strip() or _indent(lines[k]) > indent):
        key, _, rest = lines[k].strip().partition(":")
        rest = _unquoted(rest.split(" #", 1)[0].strip())
        if key == "context":
            context = rest
        elif key == "dockerfile":
            dockerfile = rest
        elif key == "target":
            target = rest or None
        k += 1
    if "://" in context or context.startswith("git@") or "$" in context:
        return None, k  # a remote or computed context: nothing of this repository
    directory = join(cwd, context or ".")
    return (join(directory, dockerfile) if dockerfile else directory / "Dockerfile", target), k


_SHELLS: Final = frozenset({"sh", "bash", "ash", "dash", "zsh"})


def _unquoted(value: str) -> str:
    """A YAML scalar's text: quotes around the whole of it are YAML's, not the shell's."""
    if len(value) >= 2 and value[0] in "'\"" and value[-1] == value[0]:
        return value[1:-1]
    return value


def _quotes_balanced(text: str) -> bool:
    try:
        shlex.split(text)
    except ValueError:
        return False
    return True


def tox_environments(
    path: PurePosixPath, text: str, scripts: Scripts | None = None
) -> list[Environment]:
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
                    command = (
                        f"pip install {entry}" if entry.startswith(("-r", "--requirement")) else ""
                    )
                else:
                    command = entry
                found = installs_in(path, number, command, here, count, scripts) if command else []
                installs.extend(found)
                count += 1 + len(found)
        if installs:
            envs.append(
                Environment(f"{path} [{section}]", path, tuple(installs), _ini_span(lines, section))
            )
    return envs


def _ini_span(lines: list[str], section: str) -> tuple[int, int]:
    """The lines of `[section]`: from its header to the line before the next header."""
    first = next((i + 1 for i, x in enumerate(lines) if x.strip() == f"[{section}]"), 1)
    last = next(
        (i for i in range(first, len(lines)) if lines[i].lstrip().startswith("[")), len(lines)
    )
    return first, last


def _line_of(lines: list[str], text: str) -> int:
    return next((i + 1 for i, x in enumerate(lines) if text and text in x), 1)


def nox_sessions(
    path: PurePosixPath, text: str, scripts: Scripts | None = None
) -> list[Environment]:
    """Each `@nox.session` function's `session.install(...)` calls, in order: the
    `-r FILE` arguments written as string literals, relative to the noxfile."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        # Nesting too deep for Python's own parser: Python could not run it either.
        return []
    envs = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef) or not any(
            _is_session(d) for d in node.decorator_list
        ):
            continue
        installs: list[Install] = []
        for count, call in enumerate(
            sorted(
                (c for c in ast.walk(node) if _is_install(c)),
                key=lambda c: (c.lineno, c.col_offset),
            )
        ):
            words = [
                a.value
                for a in call.args
                if isinstance(a, ast.Constant) and isinstance(a.value, str)
            ]
            if len(words) != len(call.args):
                continue  # a computed argument: not a file this reading can name
            command = shlex.join(["pip", "install", *words])
            installs.extend(installs_in(path, call.lineno, command, path.parent, count))
        if installs:
            span = (node.lineno, node.end_lineno or node.lineno)
            envs.append(Environment(f"{path} session {node.name}", path, tuple(installs), span))
    return envs


def _is_session(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return isinstance(target, ast.Attribute) and target.attr == "session"


def _is_install(node: ast.AST) -> TypeGuard[ast.Call]:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "install"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "session"
    )


# GitLab CI keys that are not jobs, and the keys of a job whose commands run in it.
_GITLAB_RESERVED: Final = frozenset(
    {
        "stages",
        "variables",
        "default",
        "include",
        "workflow",
        "image",
        "services",
        "cache",
        "before_script",
        "after_script",
    }
)
_GITLAB_SCRIPTS: Final = ("before_script", "script")


def gitlab_jobs(
    path: PurePosixPath, text: str, scripts: Scripts | None = None
) -> list[Environment]:
    """Each job of a `.gitlab-ci.yml`: its `before_script` then `script` lines, in order
    (list items, or a block under one). Hidden jobs (`.template`) are templates."""
    lines = text.replace("\r\n", "\n").split("\n")
    envs: list[Environment] = []
    k = 0
    while k < len(lines):
        line = lines[k]
        if not line or line[0] in " #\t-" or not line.rstrip().endswith(":"):
            k += 1
            continue
        name = line.rstrip()[:-1].strip("'\"")
        k += 1
        body: list[tuple[int, str]] = []
        while k < len(lines) and (not lines[k].strip() or lines[k][:1] in (" ", "\t", "#")):
            body.append((k + 1, lines[k]))
            k += 1
        if name in _GITLAB_RESERVED or name.startswith("."):
            continue
        installs: list[Install] = []
        count = 0
        for key in _GITLAB_SCRIPTS:
            for number, command in _yaml_list(body, key):
                found = installs_in(path, number, command, PurePosixPath("."), count, scripts)
                installs.extend(found)
                count += 1 + len(found)
        if installs:
            span = (body[0][0] - 1 if body else k, body[-1][0] if body else k)
            envs.append(Environment(f"{path} job {name}", path, tuple(installs), span))
    return envs


def _yaml_list(body: list[tuple[int, str]], key: str) -> Iterator[tuple[int, str]]:
    """The items of `key:` in a job's body: `- cmd` lines (folded `- >` blocks joined)."""
    start = next((i for i, (_, x) in enumerate(body) if x.strip() == f"{key}:"), None)
    if start is None:
        return
    indent = _indent(body[start][1])
    i = start + 1
    while i < len(body):
        number, line = body[i]
        if line.strip() and _indent(line) <= indent:
            break
        item = line.strip()
        if item.startswith("- "):
            text = item[2:].strip()
            if text in ("|", ">", "|-", ">-"):
                block = []
                i += 1
                while i < len(body) and (
                    not body[i][1].strip() or _indent(body[i][1]) > _indent(line)
                ):
                    block.append(body[i][1].strip())
                    i += 1
                joiner = " " if text.startswith(">") else "\n"
                for offset, part in enumerate(joiner.join(block).split("\n")):
                    yield number + 1 + offset, part
                continue
            yield number, text.strip("'\"")
        i += 1


def make_targets(
    path: PurePosixPath, text: str, scripts: Scripts | None = None
) -> list[Environment]:
    """Each Makefile target's recipe, run from the Makefile's directory: a developer's
    one environment (`make install` into the active virtualenv)."""
    lines = text.replace("\r\n", "\n").split("\n")
    envs: list[Environment] = []
    name: str | None = None
    installs: list[Install] = []
    count = 0
    span = [0, 0]

    def close() -> None:
        if name is not None and installs:
            envs.append(
                Environment(f"{path} target {name}", path, tuple(installs), (span[0], span[1]))
            )

    for number, line in _logical(lines):
        if line.startswith("\t"):
            if name is not None:
                command = line.strip().lstrip("@-+").replace("$$", "$")
                found = installs_in(path, number, command, path.parent, count, scripts)
                installs.extend(found)
                count += 1 + len(found)
            continue
        head = line.split("#", 1)[0]
        span[1] = number - 1  # a recipe ends where a line that is not one begins
        if ":" in head and "=" not in head.split(":", 1)[0] and not head.startswith((" ", ".")):
            close()
            name, installs, count = head.split(":", 1)[0].strip(), [], 0
            span[:] = [number, number]
        elif head.strip():
            close()
            name, installs = None, []
    span[1] = len(lines)
    close()
    return envs
