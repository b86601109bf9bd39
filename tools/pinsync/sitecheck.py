"""The checks of pins written outside locks (pyproject, workflows, tox, scripts)
against the locks of the project they belong to."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from packaging.utils import NormalizedName

from .discovery import matches, within
from .report import FIX, Finding
from .reqfile import Entry

if TYPE_CHECKING:
    # Imported where used: the common case, a stamped repository in sync, needs
    # no Dockerfile parser, and CI pays its import per run.
    from .dockerfile import Dockerfile
    from .environments import Environment
    from .sites import SitePin


# The files that make a directory a Python project of its own.
PROJECT_FILES = frozenset({"pyproject.toml", "setup.py", "setup.cfg"})


def _scope(
    path: PurePosixPath,
    lock_paths: Iterable[PurePosixPath],
    projects: Collection[PurePosixPath] = frozenset(),
) -> PurePosixPath | None:
    """The service of a file: the nearest directory up from it that holds locks.

    A directory with its own project file (pyproject.toml, setup.py, setup.cfg) is a
    project of its own: when none of the locks lies inside it, the locks further up
    belong to other projects of a monorepo, and its pins are none of their business.
    """
    locks = list(lock_paths)
    for d in (path.parent, *path.parent.parents):
        if any(within(lock, d) for lock in locks):
            return d
        if d in projects:
            return None
    return None


def check_sites(
    sites: Sequence[SitePin],
    locks: Mapping[PurePosixPath, Mapping[NormalizedName, Entry]],
    images: Sequence[Dockerfile] = (),
    scopes: Sequence[tuple[str, PurePosixPath]] = (),
    projects: Collection[PurePosixPath] = frozenset(),
    environments: Sequence[Environment] = (),
    lookup: Callable[[PurePosixPath, NormalizedName], Entry | None] | None = None,
) -> Iterator[Finding]:
    """A pin in a pyproject, workflow, tox.ini, ... against the locks of its own service.

    A pin written in an environment that installs locks (`pip install black==24.1` in
    a CI job that installs requirements/lint.txt) meets exactly those locks: they are
    what it is judged by. Elsewhere it falls back to the project it belongs to:

    It is drift when it matches none of them: in a monorepo, a pin at the root that
    matches one service's lock is that service's, and no other lock is its business.
    A package that no lock of the service pins (a tool installed only in CI) is left
    alone: there is nothing to disagree with.
    """
    # Versions are looked up per (lock, name) a site asks about, and only in the locks
    # of its scope: a dozen site pins are compared, not the hundred thousand pins of a
    # thousand locks, and a vouched lock is not parsed for them (LockFile.pin).
    lookup = lookup or (lambda path, name: locks[path].get(name))
    own: dict[PurePosixPath, dict[NormalizedName, tuple[str, int]]] = {}
    for site in sites:
        if not site.editable and site.pin.version:  # uv.lock, pylock.toml: locks of their own
            own.setdefault(site.pin.file, {})[site.pin.name] = (site.pin.version, site.pin.line)
    lock_paths = [*locks, *(p for p in own if p not in locks)]
    cache: dict[tuple[PurePosixPath, NormalizedName], tuple[str, int] | None] = {}

    def pinned_at(path: PurePosixPath, name: NormalizedName) -> tuple[str, int] | None:
        if path in own:
            return own[path].get(name)
        if (path, name) not in cache:
            entry = lookup(path, name)
            pinned = entry.pinned_version if entry is not None else None
            cache[path, name] = (pinned, entry.line) if entry and pinned else None
        return cache[path, name]

    # Every place that names a version, for the findings to point at the ones that agree.
    places: list[tuple[PurePosixPath, int, NormalizedName, str | None]] = [
        (s.pin.file, s.pin.line, s.pin.name, s.pin.version) for s in sites if s.editable
    ]
    places.extend((p.file, p.line, p.name, p.version) for df in images for p in df.pins)
    for site in sites:
        if not site.editable:
            continue
        pin = site.pin
        env = next(
            (
                e
                for e in environments
                if e.file == pin.file
                and e.span[0] <= pin.line <= e.span[1]
                and any(i.path in locks for i in e.installs)
            ),
            None,
        )
        if env is not None:
            scope = pin.file.parent
            locked = {
                i.path: v
                for i in env.installs
                if (i.path in locks or i.path in own) and (v := pinned_at(i.path, pin.name))
            }
        else:
            # A configured scope wins: a root workflow that deploys one service.
            found = next((d for glob, d in scopes if matches(pin.file, [glob])), None)
            found = found or _scope(pin.file, lock_paths, projects)
            if found is None:
                continue
            scope = found
            locked = {
                path: v
                for path in lock_paths
                if within(path, scope) and (v := pinned_at(path, pin.name))
            }
        if not locked or any(v == pin.version for v, _ in locked.values()):
            continue
        # Name the lock nearest to the pin: most shared directories, then the shortest.
        nearest = min(
            locked,
            key=lambda p: (-len(_common(p.parent, pin.file.parent)), len(p.parts), p.as_posix()),
        )
        version, line = locked[nearest]
        where = pin.where or site.kind
        file = pin.file.as_posix()
        # The other places of this service that agree with the lock, so that one
        # finding names every file the fix touches.
        agreeing = sorted(
            {
                f"{path}:{number}"
                for path, number, name, pinned in places
                if name == pin.name
                and pinned == version
                and path != pin.file
                and within(path, scope)
            }
        )
        also = f"; so do {', '.join(agreeing[:3])}" if agreeing else ""
        yield Finding(
            file,
            pin.line,
            pin.name,
            "pin-site",
            "error",
            f"{pin.name}: {file}:{pin.line} ({where}) pins {pin.version} but {nearest}:{line} "
            f"pins {version}{also} ({pin.version} → {version} to match, or "
            f"`{FIX.bump} {pin.name} VERSION` to move both)",
            env.name if env is not None else None,
        )


def _common(a: PurePosixPath, b: PurePosixPath) -> tuple[str, ...]:
    shared = []
    for x, y in zip(a.parts, b.parts, strict=False):
        if x != y:
            break
        shared.append(x)
    return tuple(shared)
