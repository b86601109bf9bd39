"""`check`: every kind of drift between sources, locks, and Dockerfiles.

The offline checks are pure functions of the loaded repository. Only locks that
cannot be vouched for by their stamp are re-resolved, in a stage, never in place.
"""

from __future__ import annotations

import platform
import posixpath
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from packaging.markers import InvalidMarker, Marker
from packaging.utils import InvalidName, NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from .align import AlignGroup, alignment_groups, widen
from .compiler import CURRENT, toolchain
from .discovery import matches, site_kind, within
from .errors import CompileError, InterpreterNotFound, PinsyncError
from .graph import Target
from .images import InstalledLock, declared_contexts, installed_locks
from .lockfile import (
    UNSAFE,
    LockFile,
    inputs_digest,
    parse_lockfile,
    stamp_state,
    strip_stamp,
    via_annotations,
)
from .progress import InFlight
from .repo import Repo
from .report import Finding, FixCommands, Kind, Severity
from .reqfile import Entry, ReqFile, parse_requirements

if TYPE_CHECKING:
    # Imported where used: the common case, a stamped repository in sync, needs
    # neither pip-compile nor a Dockerfile parser, and CI pays their import per run.
    from .dockerfile import Dockerfile, RequirementInstall
    from .sites import SitePin

# The files that make a directory a Python project of its own.
PROJECT_FILES = frozenset({"pyproject.toml", "setup.py", "setup.cfg"})

FIX = FixCommands()  # the defaults; run_check respells them as CheckOptions.fix says
FIX_LOCK = FIX.lock


@dataclass(frozen=True)
class CheckOptions:
    offline: bool = False
    full: bool = False
    fix: FixCommands = FIX
    in_flight: InFlight | None = None  # shows re-resolutions that take a while


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


def _satisfies(entry: Entry, version: str | None) -> bool:
    if entry.url or version is None or not entry.specifier:
        return True
    try:
        return entry.specifier.contains(Version(version), prereleases=True)
    except InvalidVersion:
        return any(s.operator == "===" and s.version == version for s in entry.specifier)


def check_sources(
    target: Target, lock: LockFile, sources: Mapping[PurePosixPath, ReqFile]
) -> Iterator[Finding]:
    """Kinds 1 and 2: what the inputs ask for against what the lock pins."""
    pins = lock.pins()
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
        pin = pins.get(entry.name)
        if pin is None:
            # pip-compile leaves pip and setuptools out unless --allow-unsafe.
            options = (*target.args, *(lock.header.options if lock.header else ()))
            unsafe_skipped = entry.name in UNSAFE and "--allow-unsafe" not in options
            if demand.constraint or unsafe_skipped or entry.name in target.omit:
                continue
            if noted is None:
                noted = _noted_names(lock)
            if entry.name in noted:
                # The lock's own annotations name it, so pip-compile did pin it and a
                # step after it (Open edX's `sed '/^django==/d'`) took it out.
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
        if not _satisfies(entry, pin.pinned_version):
            kind: Kind = "constraint-violated" if demand.constraint else "stale-lock"
            what = "constrains" if demand.constraint else "requires"
            yield Finding(
                out,
                pin.line,
                entry.name,
                kind,
                "error",
                f"{entry.name}: {where} {what} {entry.specifier} but {out} pins "
                f"{pin.pinned_version} ({pin.pinned_version} → {entry.specifier}); run `{FIX_LOCK}`",
            )
    vias = via_annotations(lock)
    run_dir = target.invocation.cwd.as_posix() if target.invocation else "."
    # `# via -r` paths are relative to where the compile ran.
    inputs = {f"-r {posixpath.relpath(p.as_posix(), run_dir)}" for p in sources}
    for name, pin in pins.items():
        notes = vias.get(name, ())
        if name in asked or not notes or (pin.url and _url_key(pin.url) in asked_urls):
            continue
        # A constraint asks for nothing; only -r notes make a pin top-level.
        asks = [n for n in notes if not n.startswith("-c ")]
        if asks and all(n in inputs for n in asks):
            yield Finding(
                out,
                pin.line,
                name,
                "stale-lock",
                "error",
                f"{name}: {out} pins {pin.pinned_version or pin.url} as a top-level requirement "
                f"of {', '.join(n[3:] for n in notes)}, which no longer asks for it "
                f"({pin.pinned_version or pin.url} → removed); run `{FIX_LOCK}`",
            )


def _url_key(url: str) -> str:
    """A direct reference without its `#egg=` fragment, which pip-compile drops."""
    return url.split("#", 1)[0].removeprefix("git+").rstrip("/")


def _noted_names(lock: LockFile) -> set[NormalizedName]:

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


# --- the stamp ----------------------------------------------------------------


def check_stamp(
    target: Target,
    lock: LockFile,
    repo: Repo,
) -> tuple[bool, list[Finding]]:
    """Kind 3 offline: (vouched for?, findings). A lock without a stamp is not vouched for."""
    out = target.output.as_posix()

    def digest() -> str:
        closure = [repo.sources[p] for p in repo.graph.closure[target.output] if p in repo.sources]
        return inputs_digest(target, closure, repo.config.pip_tools, *toolchain(target.tool))

    state = stamp_state(lock, digest)
    if state == "edited":
        return False, [
            Finding(
                out,
                lock.header.line_count + 1 if lock.header else 1,
                None,
                "out-of-date",
                "error",
                f"{out} was edited by hand since pinsync wrote it (its stamp no longer matches); "
                f"run `{FIX_LOCK}`",
            )
        ]
    if state == "stale":
        changed = ", ".join(p.as_posix() for p in repo.graph.closure[target.output])
        return False, [
            Finding(
                out,
                1,
                None,
                "out-of-date",
                "error",
                f"{out} is older than its inputs ({changed}) or its compile options; run `{FIX_LOCK}`",
            )
        ]
    return state == "fresh", []


# --- Dockerfiles ----------------------------------------------------------------


def check_dockerfile(
    df: Dockerfile,
    locks: Mapping[PurePosixPath, Mapping[NormalizedName, Entry]],
    resolved: Mapping[RequirementInstall, PurePosixPath] | None = None,
    context: PurePosixPath | None = None,
) -> Iterator[Finding]:
    """Kinds 4 and 5 for one Dockerfile.

    A pin is compared with the locks its own image installs; with none, with the
    locks inside its build `context` (the whole repository when None).
    """
    file = df.path.as_posix()
    candidates = sorted(locks)
    by_stage = {s.index: installed_locks(df, s.index, candidates, resolved) for s in df.stages}
    nearby = [p for p in candidates if context is None or within(p, context)]
    for pin in df.pins:
        if pin.version is None:
            continue
        installed = [i.lock for i in by_stage[pin.stage]]
        compare = installed or [p for p in nearby if pin.name in locks[p]]
        for lock_path in compare:
            locked = locks[lock_path].get(pin.name)
            if locked is None or locked.pinned_version in (None, pin.version):
                continue
            yield Finding(
                file,
                pin.line,
                pin.name,
                "dockerfile-pin",
                "error",
                f"{pin.name}: {file}:{pin.line} installs {pin.version} but {lock_path} pins "
                f"{locked.pinned_version} ({pin.version} → {locked.pinned_version} to match, or "
                f"`{FIX.bump} {pin.name} VERSION` to move both)",
            )
    reported: set[tuple[NormalizedName, str, str]] = set()
    for stage in df.stages:
        together = by_stage[stage.index]
        first: dict[NormalizedName, tuple[InstalledLock, str]] = {}
        for item in together:
            for name, entry in sorted(locks[item.lock].items()):
                version = entry.pinned_version
                if version is None:
                    continue
                if name not in first:
                    first[name] = (item, version)
                    continue
                earlier, old = first[name]
                first[name] = (item, version)  # what the image ends up with
                low, high = sorted((old, version))
                key = (name, low, high)
                if old == version or earlier.lock == item.lock or key in reported:
                    continue
                reported.add(key)
                if item.install.no_deps and item.install.command != earlier.install.command:
                    # A later `pip install --no-deps -r overrides.txt` is how a team states
                    # that these pins replace the earlier ones: intent, not an accident.
                    yield Finding(
                        file,
                        item.install.line,
                        name,
                        "override",
                        "warning",
                        f"{name}: {item.lock}, installed with --no-deps after {earlier.lock} "
                        f"(line {earlier.install.line}), overrides its pin: the image gets "
                        f"{name}=={version}, not {old} ({old} → {version}). If that is not "
                        "intended, align the two locks",
                    )
                    continue
                yield Finding(
                    file,
                    item.install.line,
                    name,
                    "co-installed-conflict",
                    "error",
                    f"{name}: this image installs {earlier.lock} ({name}=={old}, line "
                    f"{earlier.install.line}) and {item.lock} ({name}=={version}); "
                    f"{old} → {version}: pip refuses them in one command, or the later "
                    f"install silently wins. Run `{FIX_LOCK}` to align them",
                )


# --- other pin sites ----------------------------------------------------------------


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
) -> Iterator[Finding]:
    """A pin in a pyproject, workflow, tox.ini, ... against the locks of its own service.

    It is drift when it matches none of them: in a monorepo, a pin at the root that
    matches one service's lock is that service's, and no other lock is its business.
    A package that no lock of the service pins (a tool installed only in CI) is left
    alone: there is nothing to disagree with.
    """
    versions: dict[PurePosixPath, dict[NormalizedName, tuple[str, int]]] = {
        path: {n: (e.pinned_version, e.line) for n, e in pins.items() if e.pinned_version}
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
        # A configured scope wins: a root workflow that deploys one service.
        scope = next((d for glob, d in scopes if matches(pin.file, [glob])), None)
        scope = scope or _scope(pin.file, versions, projects)
        if scope is None:
            continue
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
        )


def _common(a: PurePosixPath, b: PurePosixPath) -> tuple[str, ...]:
    shared = []
    for x, y in zip(a.parts, b.parts, strict=False):
        if x != y:
            break
        shared.append(x)
    return tuple(shared)


# --- layers ----------------------------------------------------------------------


def check_layers(
    repo: Repo, pins: Mapping[PurePosixPath, Mapping[NormalizedName, Entry]]
) -> Iterator[Finding]:
    """Kind 6: a lock and the lock of a layer it includes with -r pin a package differently."""
    severity: Severity = repo.config.layers_disagree
    for target in repo.graph.order():
        if target.output not in pins:
            continue
        for below in sorted(repo.graph.needs[target.output]):
            if below not in pins or repo.graph.targets[below].python != target.python:
                # Locks for two Pythons may pin differently by design (backports).
                continue
            for name, entry in sorted(pins[target.output].items()):
                other = pins[below].get(name)
                if other is None or other.pinned_version == entry.pinned_version:
                    continue
                if entry.pinned_version is None or other.pinned_version is None:
                    continue
                out = target.output.as_posix()
                yield Finding(
                    out,
                    entry.line,
                    name,
                    "layers-disagree",
                    severity,
                    f"{name}: {out} pins {entry.pinned_version} but the layer it includes, "
                    f"{below}, pins {other.pinned_version} ({other.pinned_version} → "
                    f"{entry.pinned_version}); run `{FIX_LOCK}`",
                )


# --- update bots -------------------------------------------------------------------


def check_bots(repo: Repo) -> Iterator[Finding]:
    """Headers Renovate cannot replay, where the repository has Renovate set up: for
    those locks its updates stop without a word (see bots.py)."""
    from .bots import RENOVATE_CONFIGS, renovate_problems

    if not any(p.as_posix() in RENOVATE_CONFIGS for p in repo.files):
        return
    for target in repo.graph.order():
        lock = repo.locks.get(target.output)
        if lock is None or lock.header is None or lock.header.command is None:
            continue
        if lock.header.tool != "pip-compile":
            continue  # Renovate replays uv headers by its own, different rules
        line = next(
            (i for i, text in enumerate(lock.text.splitlines(), 1) if lock.header.command in text),
            1,
        )
        out = target.output.as_posix()
        for problem in renovate_problems(lock.header.command):
            yield Finding(
                out,
                line,
                None,
                "bot-incompatible",
                "warning",
                f"{out}: Renovate cannot update it: {problem}",
            )


# --- re-resolution -----------------------------------------------------------------


def _fingerprint(entry: Entry) -> tuple[object, ...]:
    # Extras are a set: pip-compile re-sorts and normalises them.
    return (entry.pinned_version, entry.url, frozenset(entry.hashes), entry.marker, entry.extras)


def compare_locks(
    path: PurePosixPath, old: LockFile, new: LockFile, allow_unsafe: bool = True
) -> Iterator[Finding]:
    """What pip would install differently from `old` and from a fresh compile `new`."""
    out = path.as_posix()
    a, b = old.pins(), new.pins()
    for name in sorted(a.keys() | b.keys()):
        before, after = a.get(name), b.get(name)
        if before is not None and after is not None and _fingerprint(before) == _fingerprint(after):
            continue
        line = before.line if before else 1
        if not allow_unsafe and name in UNSAFE and (before is None or after is None):
            # Without --allow-unsafe, whether pip-tools pins pip or setuptools at all has
            # changed between its versions (treeherder's lock has setuptools both pinned
            # and in the unsafe trailer): a difference of tool versions, not of sources.
            had = "pins it" if before is not None else "leaves it out"
            yield Finding(
                out,
                line,
                name,
                "annotations-differ",
                "warning",
                f"{name}: {out} {had} but a fresh compile here does not; without "
                "--allow-unsafe, pip-tools versions disagree on whether to pin it (add "
                f"--allow-unsafe to pin it on purpose, or run `{FIX_LOCK}`)",
            )
            continue
        if before is None:
            assert after is not None
            what = f"missing → {after.pinned_version or after.url}"
        elif after is None:
            what = f"{before.pinned_version or before.url} → not needed"
        elif before.pinned_version != after.pinned_version:
            what = f"{before.pinned_version} → {after.pinned_version}"
        elif frozenset(before.hashes) != frozenset(after.hashes):
            what = "hashes differ"
        else:
            what = "marker, extras or URL differ"
        yield Finding(
            out,
            line,
            name,
            "out-of-date",
            "error",
            f"{name}: {out} differs from a fresh compile ({what}); run `{FIX_LOCK}`",
        )
    opts_old = sorted((o.name, o.value) for o in old.body.options)
    opts_new = sorted((o.name, o.value) for o in new.body.options)
    if opts_old != opts_new:
        yield Finding(
            out,
            1,
            None,
            "out-of-date",
            "error",
            f"{out}: index options differ from a fresh compile; run `{FIX_LOCK}`",
        )


def reresolve(
    repo: Repo,
    targets: Sequence[Target],
    groups: tuple[AlignGroup, ...] = (),
    in_flight: InFlight | None = None,
) -> list[Finding]:
    """Compile `targets` into a stage (with their groups, as `lock` would) and compare
    with the repository's locks."""
    findings: list[Finding] = []
    selected = widen(repo.graph, (t.output for t in targets), groups)
    from .recompile import LockRequest, compile_targets
    from .stage import Stage

    with Stage(repo.root, selected) as stage:
        request = LockRequest(force=True)
        outcomes = compile_targets(
            stage, repo, selected, request, lambda _: None, groups, in_flight
        )
        for outcome in outcomes:
            if outcome.status == "failed":  # a group whose sources cannot agree
                raise CompileError(f"{outcome.output}: {outcome.error}")
        for target in targets:
            old = repo.locks[target.output]
            fresh = stage.read(target.output) or ""
            new = parse_lockfile(target.output, fresh)
            unsafe = "--allow-unsafe" in target.args or bool(
                repo.config.pip_tools and repo.config.pip_tools.get("allow-unsafe")
            )
            diffs = list(compare_locks(target.output, old, new, unsafe))
            findings.extend(diffs)
            if not diffs and strip_stamp(old.text) != strip_stamp(fresh):
                findings.append(
                    Finding(
                        target.output.as_posix(),
                        1,
                        None,
                        "annotations-differ",
                        "warning",
                        f"{target.output}: same pins as a fresh compile, but its header or "
                        f"annotations differ; run `{FIX_LOCK}` to refresh them",
                    )
                )
    return findings


# --- the whole check ------------------------------------------------------------------


def _why_not_reresolved(target: Target, options: CheckOptions) -> tuple[Kind, str] | None:
    """Why an unstamped lock is checked only offline, or None when it can be re-resolved."""
    out = target.output.as_posix()
    where = f'[tool.pinsync.outputs."{out}"]'
    if options.offline:
        return (
            "unverified",
            f"{out} has no pinsync stamp, so --offline cannot tell whether it is what "
            f"`{FIX_LOCK}` would write; run without --offline, or `{FIX.lock_force}` to "
            "stamp it",
        )
    if target.inferred is not None:
        # Options read off the text are a guess; a fresh compile on a guess would
        # report every difference as drift.
        return (
            "unverified",
            f"{out} was checked against its sources but not re-resolved: its header does not "
            f"show how {target.tool} was run; set compile-args in {where} to have it re-resolved",
        )
    if target.python != CURRENT:
        from .compiler import find_python

        try:
            find_python(target.python)
        except InterpreterNotFound:
            return (
                "wrong-python",
                f"{out} was compiled for Python {target.python}, which is not installed here; "
                f"checked against its sources but not re-resolved (install Python "
                f"{target.python} to have it re-resolved)",
            )
    return None


def _check_images(
    repo: Repo,
    images: Sequence[Dockerfile],
    lock_pins: Mapping[PurePosixPath, Mapping[NormalizedName, Entry]],
) -> Iterator[Finding]:
    from .buildcontext import contexts_for, directories_of, resolve_installs

    # Images also install hand-kept requirement files; those count as locks here.
    any_pins = dict(lock_pins)
    for path in repo.files:
        if path.suffix == ".txt" and path not in any_pins:
            try:
                any_pins[path] = parse_requirements(path, repo.read(path)).pins()
            except PinsyncError:  # not a requirements file after all (or not text)
                continue
    declared = declared_contexts(repo)
    on_disk, directories = set(repo.files), directories_of(repo.files)
    for df in images:
        resolved = resolve_installs(df, df.installs, declared, on_disk, directories)
        guesses = contexts_for(df.path, declared)
        # With no install of its own, a pin is compared with the locks of its context:
        # the declared one, else the nearest directory (upwards) that holds a lock.
        context = next(
            (c for c in guesses if any(within(p, c) for p in lock_pins)),
            guesses[-1],
        )
        yield from check_dockerfile(df, any_pins, resolved, context)


def run_check(repo: Repo, options: CheckOptions) -> list[Finding]:
    findings: list[Finding] = [
        Finding(path.as_posix(), 1, None, "not-managed", "info", f"{path}: {why}")
        for path, why in repo.unmanaged
    ]
    to_resolve: list[Target] = []
    images = repo.dockerfiles()
    groups = alignment_groups(repo, images)
    for target in repo.graph.order():
        out = target.output.as_posix()
        lock = repo.locks.get(target.output)
        if lock is None:
            findings.append(
                Finding(
                    out,
                    1,
                    None,
                    "stale-lock",
                    "error",
                    f"{out} does not exist yet (missing → compiled from "
                    f"{', '.join(p.as_posix() for p in target.inputs)}); run `{FIX_LOCK}`",
                )
            )
            continue
        where = f'[tool.pinsync.outputs."{out}"]'
        if target.inferred is not None:
            shown = lock.header.command if lock.header else None
            findings.append(
                Finding(
                    out,
                    1,
                    None,
                    "inferred-options",
                    "info",
                    f"{out}: its header shows only {shown!r}; options read off the lock: "
                    f"{' '.join(target.inferred) or 'none'}. If it was compiled otherwise, "
                    f"set compile-args in {where}",
                )
            )
        vouched, stamp_findings = check_stamp(target, lock, repo)
        findings.extend(stamp_findings)
        if not vouched or options.full:
            # A vouched lock is pip-compile's own output for exactly these inputs, so
            # comparing it with them again could only find pip-compile's bugs.
            findings.extend(check_sources(target, lock, repo.sources))
        if (vouched or stamp_findings) and not options.full:
            continue
        why_not = _why_not_reresolved(target, options)
        if why_not is None:
            to_resolve.append(target)
        else:
            severity: Severity = "warning" if why_not[0] == "wrong-python" else "info"
            findings.append(Finding(out, 1, None, why_not[0], severity, why_not[1]))
    findings.extend(check_bots(repo))
    lock_pins = {path: lock.pins() for path, lock in repo.locks.items()}
    if images:
        findings.extend(_check_images(repo, images, lock_pins))
    # Only packages some lock pins can disagree with one; a uv.lock or pylock.toml is
    # a lock too, whose names are known only once read, so then everything is read.
    uv_locks = any(site_kind(p) in ("uv-lock", "pylock") for p in repo.files)
    sites = repo.sites(None if uv_locks else {n for pins in lock_pins.values() for n in pins})
    if sites:
        projects = frozenset(p.parent for p in repo.files if p.name in PROJECT_FILES)
        findings.extend(check_sites(sites, lock_pins, images, repo.config.site_scopes, projects))
    findings.extend(check_layers(repo, lock_pins))
    if to_resolve:
        findings.extend(reresolve(repo, to_resolve, groups, options.in_flight))
    if options.fix != FIX:
        findings = [replace(f, message=options.fix.respell(f.message)) for f in findings]
    return sorted(set(findings), key=lambda f: (f.file, f.line, f.package or "", f.kind, f.message))
