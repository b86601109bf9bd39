"""`check`: every kind of drift between sources, locks, and Dockerfiles.

The offline checks are pure functions of the loaded repository. Only locks that
cannot be vouched for by their stamp are re-resolved, in a stage, never in place.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Literal

from packaging.markers import InvalidMarker, Marker
from packaging.utils import NormalizedName
from packaging.version import InvalidVersion, Version

from .compiler import CURRENT, pip_tools_version
from .discovery import matches
from .graph import Target
from .lockfile import (
    LockFile,
    inputs_digest,
    output_digest,
    parse_lockfile,
    strip_stamp,
    via_annotations,
)
from .repo import Repo
from .reqfile import Entry, ReqFile, parse_requirements

if TYPE_CHECKING:
    # Imported where used: the common case, a stamped repository in sync, needs
    # neither pip-compile nor a Dockerfile parser, and CI pays their import per run.
    from .dockerfile import Dockerfile, RequirementInstall

Severity = Literal["error", "warning"]
Kind = Literal[
    "stale-lock",
    "constraint-violated",
    "out-of-date",
    "dockerfile-pin",
    "co-installed-conflict",
    "layers-disagree",
    "wrong-python",
    "unverified",
    "annotations-differ",
]

FIX_LOCK = "nox -s lock"
UNSAFE = frozenset({"pip", "setuptools", "distribute"})


@dataclass(frozen=True)
class Finding:
    file: str
    line: int
    package: str | None
    kind: Kind
    severity: Severity
    message: str


@dataclass(frozen=True)
class CheckOptions:
    offline: bool = False
    full: bool = False


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
        out.extend(Demand(e, path, constraint) for e in parsed.entries if e.name)
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
    for demand in demands(target, sources):
        entry = demand.entry
        assert entry.name is not None
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
            if not demand.constraint and not unsafe_skipped:
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
    inputs = {f"-r {p.as_posix()}" for p in sources}
    for name, pin in pins.items():
        notes = vias.get(name, ())
        if name in asked or not notes:
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
                f"{name}: {out} pins {pin.pinned_version} as a top-level requirement of "
                f"{', '.join(n[3:] for n in notes)}, which no longer asks for it "
                f"({pin.pinned_version} → removed); run `{FIX_LOCK}`",
            )


# --- the stamp ----------------------------------------------------------------


def check_stamp(
    target: Target,
    lock: LockFile,
    repo: Repo,
) -> tuple[bool, list[Finding]]:
    """Kind 3 offline: (vouched for?, findings). A lock without a stamp is not vouched for."""
    out = target.output.as_posix()
    if lock.stamp is None:
        return False, []
    if lock.stamp.output != output_digest(lock.text):
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
    closure = [repo.sources[p] for p in repo.graph.closure[target.output] if p in repo.sources]
    digest = inputs_digest(target, closure, repo.config.pip_tools, pip_tools_version())
    if lock.stamp.inputs != digest:
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
    return True, []


# --- Dockerfiles ----------------------------------------------------------------


def match_install(path: str, candidates: Iterable[PurePosixPath]) -> PurePosixPath | None:
    """The lock a Dockerfile path names: the longest path-suffix match, if unique.

    Paths in Dockerfiles are relative to a build context, or absolute inside the
    image, so only their trailing components can be compared with the repository.
    """
    parts = [p for p in PurePosixPath(path).parts if p not in ("/", ".")]
    best: list[PurePosixPath] = []
    best_len = 0
    for cand in candidates:
        n = 0
        for a, b in zip(reversed(parts), reversed(cand.parts)):
            if a != b:
                break
            n += 1
        if n == 0:
            continue
        if n > best_len:
            best, best_len = [cand], n
        elif n == best_len:
            best.append(cand)
    return best[0] if len(best) == 1 else None


@dataclass(frozen=True)
class InstalledLock:
    install: RequirementInstall
    lock: PurePosixPath


def installed_locks(
    df: Dockerfile, stage: int, candidates: Sequence[PurePosixPath]
) -> list[InstalledLock]:
    out = []
    for index in reversed(df.lineage(stage)):
        for inst in df.installs:
            if inst.stage == index and inst.kind in ("-r", "sync"):
                match = match_install(inst.path, candidates)
                if match is not None:
                    out.append(InstalledLock(inst, match))
    return out


def check_dockerfile(
    df: Dockerfile,
    locks: Mapping[PurePosixPath, Mapping[NormalizedName, Entry]],
) -> Iterator[Finding]:
    """Kinds 4 and 5 for one Dockerfile."""
    file = df.path.as_posix()
    candidates = sorted(locks)
    by_stage = {s.index: installed_locks(df, s.index, candidates) for s in df.stages}
    for pin in df.pins:
        if pin.version is None:
            continue
        installed = [i.lock for i in by_stage[pin.stage]]
        compare = installed or [p for p in candidates if pin.name in locks[p]]
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
                f"`nox -s bump -- {pin.name} VERSION` to move both)",
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
                low, high = sorted((old, version))
                key = (name, low, high)
                if old == version or earlier.lock == item.lock or key in reported:
                    continue
                reported.add(key)
                yield Finding(
                    file,
                    item.install.line,
                    name,
                    "co-installed-conflict",
                    "error",
                    f"{name}: this image installs {earlier.lock} ({name}=={old}, line "
                    f"{earlier.install.line}) and {item.lock} ({name}=={version}); "
                    f"{old} → {version}: pip refuses them in one command, or the later "
                    "install silently wins. Align the locks",
                )


# --- layers ----------------------------------------------------------------------


def check_layers(
    repo: Repo, pins: Mapping[PurePosixPath, Mapping[NormalizedName, Entry]]
) -> Iterator[Finding]:
    """Kind 6: a lock and the lock of a layer it includes with -r pin a package differently."""
    severity: Severity = repo.config.layers_disagree
    for target in repo.graph.order():
        if target.output not in pins:
            continue
        for below in sorted(repo.graph.after[target.output]):
            if below not in pins:
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


# --- re-resolution -----------------------------------------------------------------


def _fingerprint(entry: Entry) -> tuple[object, ...]:
    # Extras are a set: pip-compile re-sorts and normalises them.
    return (entry.pinned_version, entry.url, frozenset(entry.hashes), entry.marker, entry.extras)


def compare_locks(path: PurePosixPath, old: LockFile, new: LockFile) -> Iterator[Finding]:
    """What pip would install differently from `old` and from a fresh compile `new`."""
    out = path.as_posix()
    a, b = old.pins(), new.pins()
    for name in sorted(a.keys() | b.keys()):
        before, after = a.get(name), b.get(name)
        if before is not None and after is not None and _fingerprint(before) == _fingerprint(after):
            continue
        line = before.line if before else 1
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


def reresolve(repo: Repo, targets: Sequence[Target]) -> list[Finding]:
    """Compile `targets` into a stage and compare with the repository's locks."""
    findings: list[Finding] = []
    selected = frozenset(t.output for t in targets)
    from .lock import LockRequest, compile_targets
    from .stage import Stage

    with Stage(repo.root, selected) as stage:
        compile_targets(stage, repo, selected, LockRequest(force=True), lambda _: None)
        for target in targets:
            old = repo.locks[target.output]
            fresh = stage.read(target.output) or ""
            new = parse_lockfile(target.output, fresh)
            diffs = list(compare_locks(target.output, old, new))
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


def dockerfiles(repo: Repo) -> list[Dockerfile]:
    paths = [
        p
        for p in repo.files
        if matches(p, repo.config.dockerfiles) and not p.name.endswith(".dockerignore")
    ]
    if not paths:
        return []
    from .dockerfile import parse_dockerfile

    return [parse_dockerfile(p, repo.read(p)) for p in paths]


def run_check(repo: Repo, options: CheckOptions) -> list[Finding]:
    findings: list[Finding] = []
    to_resolve: list[Target] = []
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
        vouched, stamp_findings = check_stamp(target, lock, repo)
        findings.extend(stamp_findings)
        if not vouched or options.full:
            # A vouched lock is pip-compile's own output for exactly these inputs, so
            # comparing it with them again could only find pip-compile's bugs.
            findings.extend(check_sources(target, lock, repo.sources))
        if (vouched or stamp_findings) and not options.full:
            continue
        header_python = lock.header.python if lock.header else None
        if header_python and header_python != CURRENT:
            findings.append(
                Finding(
                    out,
                    1,
                    None,
                    "wrong-python",
                    "warning",
                    f"{out} was compiled for Python {header_python} and this run is on {CURRENT}; "
                    f"not re-resolved (run the check under Python {header_python})",
                )
            )
        elif options.offline:
            findings.append(
                Finding(
                    out,
                    1,
                    None,
                    "unverified",
                    "warning",
                    f"{out} has no pinsync stamp, so --offline cannot tell whether it is what "
                    f"`{FIX_LOCK}` would write; run without --offline, or `{FIX_LOCK} -- --force` "
                    "to stamp it",
                )
            )
        else:
            to_resolve.append(target)
    lock_pins = {path: lock.pins() for path, lock in repo.locks.items()}
    images = dockerfiles(repo)
    if images:
        # Images also install hand-kept requirement files; those count as locks here.
        any_pins = dict(lock_pins)
        for path in repo.files:
            if path.suffix == ".txt" and path not in any_pins:
                try:
                    any_pins[path] = parse_requirements(path, repo.read(path)).pins()
                except ValueError:
                    continue
        for df in images:
            findings.extend(check_dockerfile(df, any_pins))
    findings.extend(check_layers(repo, lock_pins))
    if to_resolve:
        findings.extend(reresolve(repo, to_resolve))
    return sorted(set(findings), key=lambda f: (f.file, f.line, f.package or "", f.kind, f.message))
