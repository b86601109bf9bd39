"""What a lock's sources ask for, what the lock installs, and where the two part.

pip-compile's own promise, checked without running it: every requirement of the
sources (through `-r`, and constraints through `-c`) is met by what `pip install -r
LOCK` installs (its `-r` files too), and no pin is left that nothing asks for.
"""

from __future__ import annotations

import platform
import posixpath
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from packaging.markers import InvalidMarker, Marker
from packaging.utils import InvalidName, NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from .errors import PinsyncError
from .graph import Target
from .lockfile import UNSAFE, LockFile, via_annotations
from .report import Finding, FixCommands, Kind
from .reqfile import Entry, ReqFile, parse_requirements
from .toolchain import CURRENT

if TYPE_CHECKING:
    from .repo import Repo

FIX_LOCK = FixCommands().lock


# --- what the sources ask for -------------------------------------------------


@dataclass(frozen=True)
class Demand:
    """A requirement or constraint that reaches a lock, with where it was written."""

    entry: Entry
    file: PurePosixPath
    constraint: bool


def demands(target: Target, sources: Mapping[PurePosixPath, ReqFile]) -> tuple[Demand, ...]:
    """Requirements reachable through `-r`, and constraints through `-c`, from the inputs."""
    out: list[Demand] = []
    seen: set[tuple[PurePosixPath, bool]] = set()

    def visit(path: PurePosixPath, constraint: bool) -> None:
        if (path, constraint) in seen or path not in sources:
            return
        seen.add((path, constraint))
        parsed = sources[path]
        out.extend(Demand(e, path, constraint) for e in parsed.entries if e.name or e.url)
        for inc in parsed.includes:
            visit(inc.target, constraint or inc.kind == "-c")

    for path in target.inputs:
        visit(path, False)
    return tuple(out)


def _applies(entry: Entry, python: str) -> bool:
    """Whether `entry`'s marker holds for the lock's Python (unknown markers count as true)."""
    if not entry.marker:
        return True
    try:
        marker = Marker(entry.marker)
        full = platform.python_version() if python == CURRENT else f"{python}.0"
        env = {"python_version": python, "python_full_version": full}
        return marker.evaluate(env)
    except (InvalidMarker, ValueError):
        return True


# The platforms a requirement and a pin are held against, where nothing fixes one:
# markers are compared only where both can hold (a pin for darwin says nothing of a
# requirement for linux).
_PLATFORMS: tuple[dict[str, str], ...] = (
    {
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "platform_machine": "x86_64",
    },
    {
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "platform_machine": "aarch64",
    },
    {
        "sys_platform": "darwin",
        "platform_system": "Darwin",
        "os_name": "posix",
        "platform_machine": "arm64",
    },
    {
        "sys_platform": "darwin",
        "platform_system": "Darwin",
        "os_name": "posix",
        "platform_machine": "x86_64",
    },
    {
        "sys_platform": "win32",
        "platform_system": "Windows",
        "os_name": "nt",
        "platform_machine": "AMD64",
    },
)


def _environments(python: str) -> list[dict[str, str]]:
    full = platform.python_version() if python == CURRENT else f"{python}.0"
    base = {
        "python_version": python,
        "python_full_version": full,
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
    }
    return [{**base, **p} for p in _PLATFORMS]


def _holds(marker: str | None, env: Mapping[str, str]) -> bool:
    if not marker:
        return True
    try:
        return Marker(marker).evaluate(dict(env))
    except (InvalidMarker, ValueError):
        return True  # a marker packaging cannot read excludes nothing


def meeting(
    entry: Entry, branches: Sequence[tuple[PurePosixPath, Entry]], python: str
) -> tuple[list[tuple[PurePosixPath, Entry]], bool]:
    """The pins of `branches` whose markers can hold together with `entry`'s, and
    whether `entry` holds on every platform (else a missing pin may be another
    platform's business: pip-compile resolves for the machine it runs on)."""
    envs = [e for e in _environments(python) if _holds(entry.marker, e)]
    everywhere = len(envs) == len(_PLATFORMS)
    chosen = [b for b in branches if any(_holds(b[1].marker, e) for e in envs)]
    return chosen, everywhere


def satisfies(entry: Entry, version: str | None) -> bool:
    if entry.url or version is None or not entry.specifier:
        return True
    try:
        return entry.specifier.contains(Version(version), prereleases=True)
    except InvalidVersion:
        return any(s.operator == "===" and s.version == version for s in entry.specifier)


# Every pin line of a name that a lock installs (several where markers split it),
# each with the file that holds it.
Installed = Mapping[NormalizedName, Sequence[tuple[PurePosixPath, Entry]]]


def installed_pins(
    repo: Repo, lock: LockFile
) -> dict[NormalizedName, list[tuple[PurePosixPath, Entry]]]:
    """What `pip install -r LOCK` installs: its own pins, then those of the files its
    `-r` lines read (pip-compile-multi's `-r base.txt`), each with the file pinning it."""
    out: dict[NormalizedName, list[tuple[PurePosixPath, Entry]]] = {}
    seen: set[PurePosixPath] = set()
    todo: list[tuple[PurePosixPath, ReqFile]] = [(lock.path, lock.body)]
    while todo:
        path, body = todo.pop(0)
        if path in seen:
            continue
        seen.add(path)
        here: dict[NormalizedName, list[tuple[PurePosixPath, Entry]]] = {}
        for entry in body.entries:
            if entry.name is not None:
                here.setdefault(entry.name, []).append((path, entry))
        for name, branches in here.items():
            out.setdefault(name, branches)  # the lock's own lines win over its -r files'
        for inc in body.includes:
            if inc.kind != "-r" or inc.target in seen:
                continue
            read = _read_lock_body(repo, inc.target)
            if read is not None:
                todo.append((inc.target, read))
    return out


def _read_lock_body(repo: Repo, path: PurePosixPath) -> ReqFile | None:
    if path in repo.locks:
        return repo.locks[path].body
    if path in repo.sources:
        return repo.sources[path]
    try:
        return parse_requirements(path, repo.read(path))
    except PinsyncError:
        return None  # missing or outside the root: the graph reports those


def check_sources(
    target: Target,
    lock: LockFile,
    sources: Mapping[PurePosixPath, ReqFile],
    installed: Installed | None = None,
) -> Iterator[Finding]:
    """Kinds 1 and 2: what the inputs ask for against what the lock installs.

    `installed` is the lock's closure (its `-r` files' pins too); by default, its own pins.
    """
    own = lock.pins()
    if installed is None:
        own_lines: dict[NormalizedName, list[tuple[PurePosixPath, Entry]]] = {}
        for e in lock.body.entries:
            if e.name is not None:
                own_lines.setdefault(e.name, []).append((lock.path, e))
        installed = own_lines
    pins = {n: b[-1][1] for n, b in installed.items() if b}
    out = target.output.as_posix()
    asked: set[NormalizedName] = set()
    noted: set[NormalizedName] | None = None  # every name the `# via` notes mention
    where_omit = f'[tool.pinsync.outputs."{out}"]'
    for name in sorted(target.omit & pins.keys()):
        yield Finding(
            out,
            pins[name].line,
            name,
            "stale-lock",
            "error",
            f"{name}: {where_omit} omits it, but {out} pins {pins[name].pinned_version} "
            f"({pins[name].pinned_version} → removed); run `{FIX_LOCK}`",
        )
    asked_urls: set[str] = set()
    omitted: set[NormalizedName] = set()
    for demand in demands(target, sources):
        entry = demand.entry
        if entry.name is None:
            # `git+https://…@v0.5.0` with no #egg: pip-compile names it from its metadata.
            if entry.url and not demand.constraint:
                asked_urls.add(_url_key(entry.url))
            continue
        if not _applies(entry, target.python):
            continue
        where = f"{demand.file}:{entry.line}"
        if not demand.constraint:
            asked.add(entry.name)
        branches, everywhere = meeting(entry, installed.get(entry.name, ()), target.python)
        if not branches and not everywhere:
            continue  # a platform's requirement, and a lock made for another platform
        failing = [b for b in branches if not satisfies(entry, b[1].pinned_version)]
        chosen = failing or branches
        holder_path, pin = chosen[0] if chosen else (target.output, None)
        if pin is None:
            # pip-compile leaves pip and setuptools out unless --allow-unsafe.
            options = (*target.args, *(lock.header.options if lock.header else ()))
            unsafe_skipped = entry.name in UNSAFE and "--allow-unsafe" not in options
            if demand.constraint or unsafe_skipped or entry.name in target.omit:
                continue
            if noted is None:
                noted = noted_names(lock)
            if entry.name in noted:
                # The lock's own annotations name it, so pip-compile did pin it and a
                # step after it (Open edX's `sed '/^django==/d'`) took it out. One
                # deletion, one finding, however many sources ask for the package.
                if entry.name in omitted:
                    continue
                omitted.add(entry.name)
                yield Finding(
                    out,
                    1,
                    entry.name,
                    "omitted-pin",
                    "warning",
                    f"{entry.name}: {where} requires {entry.text!r} but {out} has no pin for "
                    f"it, although its `# via` notes still name it: it was deleted after "
                    f'compiling. If that is intended, declare it: omit = ["{entry.name}"] in '
                    f"{where_omit}",
                )
            else:
                yield Finding(
                    out,
                    1,
                    entry.name,
                    "stale-lock",
                    "error",
                    f"{entry.name}: {where} requires {entry.text!r} but {out} has no pin for it "
                    f"(missing → {entry.text}); run `{FIX_LOCK}`",
                )
            continue
        if not satisfies(entry, pin.pinned_version):
            kind: Kind = "constraint-violated" if demand.constraint else "stale-lock"
            what = "constrains" if demand.constraint else "requires"
            holder = holder_path.as_posix()
            through = "" if holder == out else f" (through its -r {holder})"
            yield Finding(
                holder,
                pin.line,
                entry.name,
                kind,
                "error",
                f"{entry.name}: {where} {what} {entry.specifier} but {out}{through} pins "
                f"{pin.pinned_version} ({pin.pinned_version} → {entry.specifier}); run `{FIX_LOCK}`",
            )
    vias = via_annotations(lock)
    run_dir = target.invocation.cwd.as_posix() if target.invocation else "."
    # `# via -r` paths are relative to where the compile ran.
    inputs = {f"-r {posixpath.relpath(p.as_posix(), run_dir)}" for p in sources}
    kept = asked | target.omit | UNSAFE | (pins.keys() - own.keys())
    orphans = orphaned(own, vias, inputs, kept, asked_urls)
    for name, pin in own.items():
        asks = orphans.get(name)
        if asks is None:
            continue
        version = pin.pinned_version or pin.url
        sources_named = [n[3:] for n in asks if n in inputs]
        requirers = [n for n in asks if n not in inputs]
        if requirers:
            why = f"only for {', '.join(requirers)}, which {out} no longer needs" + (
                f" (nor does {', '.join(sources_named)} ask for it)" if sources_named else ""
            )
        else:
            why = (
                f"as a top-level requirement of {', '.join(sources_named)}, "
                "which no longer asks for it"
            )
        yield Finding(
            out,
            pin.line,
            name,
            "stale-lock",
            "error",
            f"{name}: {out} pins {version} {why} ({version} → removed); run `{FIX_LOCK}`",
        )


def orphaned(
    own: Mapping[NormalizedName, Entry],
    vias: Mapping[NormalizedName, tuple[str, ...]],
    inputs: Collection[str],
    kept: Collection[NormalizedName],
    asked_urls: Collection[str] = frozenset(),
) -> dict[NormalizedName, tuple[str, ...]]:
    """Pins that nothing asks for any more, with the `# via` notes that once did.

    A pin lives while one of its notes does: an input it does not name by `-r` (a
    package's own metadata, a file pinsync does not know), or a package that lives.
    `-r INPUT` notes live only while that input still asks for it (then the pin is in
    `kept`, as are packages outside this lock's own pins); so a package that base.txt
    dropped, and every package of the lock pinned only for it, is found at a fixpoint.
    """
    candidates: dict[NormalizedName, tuple[str, ...]] = {}
    for name, pin in own.items():
        notes = vias.get(name, ())
        # A constraint asks for nothing; only -r notes and packages make a pin.
        asks = tuple(n for n in notes if not n.startswith("-c "))
        if name in kept or not asks or (pin.url and _url_key(pin.url) in asked_urls):
            continue
        candidates[name] = asks
    alive: set[NormalizedName] = set()

    def keeps(note: str) -> bool:
        if note in inputs:
            return False
        if note.startswith("-") or "(" in note:
            return True  # a file it does not know, or a project's own metadata
        try:
            requirer = canonicalize_name(note.split()[0], validate=True)
        except (InvalidName, IndexError):
            return True
        # A requirer missing from the lock was taken out after compiling (awx strips
        # its git requirements, Open edX `sed`s Django out): it still explains its pins.
        return requirer not in candidates or requirer in alive

    changed = True
    while changed:
        changed = False
        for name, asks in candidates.items():
            if name not in alive and any(keeps(n) for n in asks):
                alive.add(name)
                changed = True
    return {n: a for n, a in candidates.items() if n not in alive}


def _url_key(url: str) -> str:
    """A direct reference without its `#egg=` fragment, which pip-compile drops."""
    return url.split("#", 1)[0].removeprefix("git+").rstrip("/")


def noted_names(lock: LockFile) -> set[NormalizedName]:

    names: set[NormalizedName] = set()
    for notes in via_annotations(lock).values():
        for note in notes:
            if note.startswith("-"):
                continue
            try:
                names.add(canonicalize_name(note.split()[0], validate=True))
            except (InvalidName, IndexError):
                continue
    return names
