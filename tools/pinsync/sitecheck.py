"""The checks of pins written outside locks (pyproject, workflows, tox, scripts)
against the locks of the project they belong to."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
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
    # Versions only of the names some site pins: a dozen site pins are compared, not
    # the hundred thousand pins of a thousand locks. Every lock stays a key, since a
    # site's scope is where locks are, whatever they pin.
    named = {s.pin.name for s in sites if s.editable}
    versions: dict[PurePosixPath, dict[NormalizedName, tuple[str, int]]] = {
        path: {
            n: (e.pinned_version, e.line)
            for n in named
            if (e := pins.get(n)) is not None and e.pinned_version
        }
        for path, pins in locks.items()
    }
    for site in sites:
        if not site.editable:  # uv.lock, pylock.toml: locks of their own
            versions.setdefault(site.pin.file, {})[site.pin.name] = (
                site.pin.version,
                site.pin.line,
            )
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
                i.path: versions[i.path][pin.name]
                for i in env.installs
                if pin.name in versions.get(i.path, {})
            }
        else:
            # A configured scope wins: a root workflow that deploys one service.
            found = next((d for glob, d in scopes if matches(pin.file, [glob])), None)
            found = found or _scope(pin.file, versions, projects)
            if found is None:
                continue
            scope = found
            locked = {
                path: pins[pin.name]
                for path, pins in versions.items()
                if pin.name in pins and within(path, scope)
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
