"""Loading a target repository into the model shared by `lock`, `check` and `bump`.

This is the I/O layer: it reads files and hands pure functions their text.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from packaging.utils import NormalizedName

from .config import Config, load_config
from .discovery import (
    REAL_DIRS,
    SiteKind,
    checked_path,
    dockerfile_paths,
    inside,
    is_compose_file,
    leaves_root,
    list_files,
    matches,
    read_text,
    resolves_inside,
    site_kind,
)
from .errors import GraphError, PinsyncError
from .graph import Graph, Target, build_graph
from .lockfile import PCM_SHA1, Header, LockFile, parse_header, parse_lockfile
from .reqfile import ReqFile
from .targets import find_targets, lock_once, parse_once

if TYPE_CHECKING:
    from .dockerfile import Dockerfile
    from .environments import Environment, Install
    from .sites import SitePin

_REQUIREMENT_SUFFIXES = {".in", ".txt"}


@dataclass(frozen=True)
class Repo:
    root: Path
    config: Config
    files: tuple[PurePosixPath, ...]  # every file of the repository, ignored ones left out
    sources: Mapping[PurePosixPath, ReqFile]  # every requirement file a compile reads
    locks: Mapping[PurePosixPath, LockFile]  # the outputs that exist today
    graph: Graph
    # Files pinsync found but does not compile, and why (sample .in files, locks
    # whose sources cannot be found); the reports show them as information.
    unmanaged: tuple[tuple[PurePosixPath, str], ...]

    def read(self, path: PurePosixPath) -> str:
        return read_text(self.root, path)

    def sites(self, names: Collection[NormalizedName] | None = None) -> list[SitePin]:
        """Every pin of every other file that names versions (pyproject, CI, tox, ...).

        With `names`, commands that pin none of them may be left unread (see find_sites).
        """
        skipped = set(self.config.skip_sites)
        chosen: list[tuple[SiteKind, PurePosixPath]] = []
        for path in self.files:
            kind: SiteKind | None = site_kind(path)
            if kind is None or kind in skipped:
                # `pin-sites` globs add files, read word by word, even of a skipped kind.
                kind = "pin-sites" if matches(path, self.config.pin_sites) else None
            if kind is not None and not matches(path, self.config.exclude):
                chosen.append((kind, path))
        if not chosen:
            return []
        # Imported here: a repository with no such file never pays for the finders.
        from .sites import find_sites

        found: list[SitePin] = []
        for kind, path in chosen:
            try:
                text = self.read(path)
            except PinsyncError:
                continue  # not text: holds no pin anyone edits by hand
            found.extend(find_sites(kind, path, text, self.pip_wrappers, names))
        return found

    @cached_property  # read by alignment and by the check in one run: once
    def environments(self) -> list[Environment]:
        """Every environment outside Dockerfiles that installs requirement files: CI
        jobs (GitHub, GitLab), tox environments, nox sessions, Makefile targets and
        shell scripts, a line that runs a script of the repository following it."""
        kinds = {p: k for p in self.files if (k := _environment_kind(p)) is not None}
        if not kinds:
            return []  # nothing to read: not even the readers' import is paid
        from .environments import (
            Environment,
            compose_services,
            github_jobs,
            gitlab_jobs,
            make_targets,
            nox_sessions,
            script_installs,
            tox_environments,
        )

        readers = {
            "github": github_jobs,
            "gitlab": gitlab_jobs,
            "tox": tox_environments,
            "nox": nox_sessions,
            "make": make_targets,
            "compose": compose_services,
        }
        found: list[Environment] = []
        scripts = {}
        for path, kind in kinds.items():
            if kind == "script" and not matches(path, self.config.exclude):
                try:
                    scripts[path] = script_installs(path, self.read(path))
                except PinsyncError:
                    continue
        found.extend(Environment(p.as_posix(), p, tuple(i)) for p, i in scripts.items())
        for path, kind in kinds.items():
            if kind == "script" or matches(path, self.config.exclude):
                continue
            try:
                found.extend(readers[kind](path, self.read(path), scripts))
            except PinsyncError:
                continue
        return [replace(e, installs=tuple(self._projects_read(e.installs))) for e in found]

    def _projects_read(self, installs: Iterable[Install]) -> Iterator[Install]:
        """Installs, with `pip install -e .[dev]` replaced by the requirement files the
        project's build config plainly reads into those extras (setuptools' dynamic
        `file =`, hatch-requirements-txt): pip installs what they pin. A project that
        reads none installs nothing that a lock could disagree with."""
        from packaging.utils import canonicalize_name

        from .pyproject import metadata_extras

        for install in installs:
            if install.extras is None:
                yield install
                continue
            pyproject = install.path / "pyproject.toml"
            if leaves_root(pyproject) or pyproject not in self.files:
                continue
            try:
                files = metadata_extras(pyproject, self.read(pyproject))
            except PinsyncError:
                continue
            wanted = [None, *(canonicalize_name(e) for e in install.extras)]
            for path in dict.fromkeys(f for key in wanted for f in files.get(key, ())):
                yield replace(install, path=path, extras=None)

    def dockerfiles(self) -> list[Dockerfile]:
        """Every Dockerfile the config's globs name, parsed."""
        paths = dockerfile_paths(self.files, self.config.dockerfiles)
        if not paths:
            return []
        # Imported here: a repository without Dockerfiles never pays for the parser.
        from .dockerfile import parse_dockerfile

        wrappers = self.pip_wrappers
        return [parse_dockerfile(p, self.read(p), pip_wrappers=wrappers) for p in paths]

    @cached_property
    def pip_wrappers(self) -> tuple[str, ...]:
        """Commands that behave like `pip install`: the config's `pip-wrappers`, and the
        scripts of the repository that hand their arguments to it (warehouse's
        `bin/docker/pip-install`, copied onto the image's PATH and run by name)."""
        found = dict.fromkeys(self.config.pip_wrappers)
        for path in self.files:
            if path.suffix not in ("", ".sh", ".bash") or path.name in found:
                continue
            if matches(path, self.config.exclude):
                continue
            try:
                full = inside(self.root, path)
                if full.stat().st_size > 64 * 1024:
                    continue  # not a wrapper of a line or two
                with open(full, "rb") as fh:
                    if fh.read(2) != b"#!":
                        continue
                text = self.read(path)
            except (OSError, PinsyncError):
                continue
            from .environments import forwards_to_pip  # a script: its reader is needed

            if forwards_to_pip(text):
                found[path.name] = None
        return tuple(found)


def _environment_kind(path: PurePosixPath) -> str | None:
    """Which reader of environments.py reads `path`, if any: `script` for a shell script."""
    name = path.name
    if path.suffix in (".sh", ".bash"):
        return "script"
    if path.parent.as_posix() == ".github/workflows" and name.endswith((".yml", ".yaml")):
        return "github"
    if name == ".gitlab-ci.yml":
        return "gitlab"
    if name == "tox.ini":
        return "tox"
    if name == "noxfile.py":
        return "nox"
    if name in ("Makefile", "makefile", "GNUmakefile") or name.endswith(".mk"):
        return "make"
    if is_compose_file(path):
        return "compose"
    return None


def load_repo(root: Path) -> Repo:
    if not root.is_dir():
        raise PinsyncError(f"{root}: not a directory")
    if root.resolve() == Path(root.resolve().anchor):
        raise PinsyncError(f"{root}: the filesystem root is not a repository; pass --root DIR")
    REAL_DIRS.clear()  # a directory may have been replaced since the last run
    config = load_config(root)
    files = list_files(root)
    on_disk = set(files)
    heads = {p: _read_head(root, p) for p in _maybe_locks(files)}
    headers = {p: h for p, (h, _) in heads.items() if h}
    parsed: dict[PurePosixPath, ReqFile] = {}
    # A lock is read once: the read that found its header read the rest of it too.
    lock_files = {p: parse_lockfile(p, t) for p, (h, t) in heads.items() if h and t is not None}
    targets, unmanaged = find_targets(root, config, files, headers, parsed, lock_files)
    sources = _parse_closure(root, targets, parsed)
    graph = build_graph(targets, sources, on_disk)
    locks = {
        t.output: lock_once(root, t.output, lock_files) for t in graph.order() if t.output in on_disk
    }
    return Repo(root, config, files, sources, locks, graph, tuple(unmanaged))


# Files beside an .in that are never its lock, whatever their header says.
_NOT_LOCKS = frozenset(
    {".in", ".py", ".toml", ".cfg", ".ini", ".md", ".rst", ".sh", ".yml", ".yaml"}
)


def _maybe_locks(files: Sequence[PurePosixPath]) -> list[PurePosixPath]:
    """The files whose header is worth reading: every `.txt`, and a file of any other
    extension beside an `.in` of its stem (a Makefile's `-o requirements/dev.pip`,
    pip-compile-multi's `--out-ext lock`); any output name pip-compile accepts."""
    # On the text: pathlib's with_suffix for every file was a fortieth of a check.
    stems = {p.as_posix()[:-3] for p in files if p.suffix == ".in"}
    found = []
    for p in files:
        suffix = p.suffix
        if suffix == ".txt" or (
            suffix and suffix not in _NOT_LOCKS and p.as_posix()[: -len(suffix)] in stems
        ):
            found.append(p)
    return found


def _read_head(root: Path, path: PurePosixPath) -> tuple[Header | None, str | None]:
    """The header of a file that may be a lock and, where it has one, its whole text
    (None where it is not UTF-8: reading it again says so). A file that leads out
    of the root through a link is not read at all: it is no lock of this repository."""
    full = os.path.join(root, path.as_posix())
    if not resolves_inside(root, full):
        return None, None
    with open(full, "rb") as fh:
        head = fh.read(4096)
        shown = head.decode("utf-8", "replace")
        if "autogenerated" not in shown and not shown.startswith(PCM_SHA1):
            return None, None
        header = parse_header(shown)
        if header is None:
            return None, None
        head += fh.read()
    try:
        # As read_text reads it: newline="" translates nothing.
        return header, head.decode("utf-8")
    except UnicodeDecodeError:
        return header, None


def _parse_closure(
    root: Path, targets: list[Target], parsed: dict[PurePosixPath, ReqFile]
) -> dict[PurePosixPath, ReqFile]:
    closure: dict[PurePosixPath, ReqFile] = {}
    outputs = {t.output for t in targets}
    todo = [p for t in targets for p in (*t.inputs, *t.constraints)]
    while todo:
        path = todo.pop()
        if path in closure or path.suffix not in _REQUIREMENT_SUFFIXES:
            continue
        if not os.path.isfile(checked_path(root, path)):
            continue
        closure[path] = parse_once(root, path, parsed)
        if closure[path].options:
            from .indexes import refuse_sources_outside

            refuse_sources_outside(
                root,
                path,
                ((o.name, o.value, o.line) for o in closure[path].options),
                compiled=path in outputs,
            )
        for inc in closure[path].includes:
            target = inc.target
            if leaves_root(target):
                # Refused before it is opened: its text must never reach an error.
                raise GraphError(
                    f"{path}:{inc.line}: {inc.kind} {inc.path}: outside the repository root; "
                    "pinsync reads nothing there"
                )
            todo.append(target)
    return closure


