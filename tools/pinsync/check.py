"""`check`: every kind of drift between sources, locks, and Dockerfiles.

The offline checks are pure functions of the loaded repository. Only locks that
cannot be vouched for by their stamp are re-resolved, in a stage, never in place.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from packaging.utils import NormalizedName

from .align import AlignGroup, alignment_groups, widen
from .compiler import CURRENT, toolchain
from .demands import (
    FIX_LOCK,
    Demand,
    check_sources,
    demands,
    installed_pins,
    noted_names,
    satisfies,
)
from .discovery import matches, site_kind, within
from .errors import InterpreterNotFound, PinsyncError
from .graph import Target
from .images import declared_contexts, installed_locks
from .lockfile import (
    UNSAFE,
    LockFile,
    inputs_digest,
    parse_lockfile,
    pcm_fresh,
    stamp_state,
    strip_stamp,
)
from .progress import InFlight
from .repo import Repo
from .report import Finding, FixCommands, Kind, Severity
from .reqfile import Entry, ReqFile, parse_requirements

if TYPE_CHECKING:
    # Imported where used: the common case, a stamped repository in sync, needs
    # neither pip-compile nor a Dockerfile parser, and CI pays their import per run.
    from .dockerfile import Dockerfile, RequirementInstall
    from .environments import Environment
    from .sites import SitePin

# The files that make a directory a Python project of its own.
PROJECT_FILES = frozenset({"pyproject.toml", "setup.py", "setup.cfg"})

FIX = FixCommands()  # the defaults; run_check respells them as CheckOptions.fix says


@dataclass(frozen=True)
class CheckOptions:
    offline: bool = False
    full: bool = False
    fix: FixCommands = FIX
    in_flight: InFlight | None = None  # shows re-resolutions that take a while


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


def _with_metadata(
    repo: Repo, target: Target
) -> tuple[Mapping[PurePosixPath, ReqFile], list[Finding]]:
    """The sources of `target`, a pyproject.toml or setup.cfg input read as pip-compile
    reads it: its dependencies and the extras its command names."""
    metadata = [p for p in target.inputs if p.name in ("pyproject.toml", "setup.cfg")]
    if not metadata:
        return repo.sources, []
    from .pyproject import compile_extras, metadata_source, setup_cfg_source

    extras, everything = compile_extras(target.args)
    sources = dict(repo.sources)
    notes = []
    for path in metadata:
        reader = metadata_source if path.name == "pyproject.toml" else setup_cfg_source
        read = reader(path, repo.read(path), extras, everything)
        sources[path] = read.requirements
        if read.unread:
            out = target.output.as_posix()
            notes.append(Finding(out, 1, None, "unverified", "info", f"{out}: {read.unread}"))
    return sources, notes


def check_pcm(target: Target, lock: LockFile, repo: Repo, options: CheckOptions) -> list[Finding]:
    """A pip-compile-multi output: what `pip-compile-multi verify` checks, then more.

    verify compares only the `# SHA1:` line with the `.in`; the lock's closure (its
    `-r base.txt` pins too) is also held against every requirement of its sources,
    which finds a base.in moved without its dependents recompiled.
    """
    out = target.output.as_posix()
    source = target.inputs[0]
    findings: list[Finding] = []
    sha1 = lock.header.sha1 if lock.header else None
    if source in repo.sources and not pcm_fresh(sha1, repo.read(source)):
        findings.append(
            Finding(
                out,
                1,
                None,
                "out-of-date",
                "error",
                f"{out} was not regenerated after changes in {source} (its `# SHA1:` line "
                f"no longer matches; `pip-compile-multi verify` fails too); run `{FIX_LOCK}`",
            )
        )
    findings.extend(check_sources(target, lock, repo.sources, installed_pins(repo, lock)))
    if not options.offline:
        findings.append(
            Finding(
                out,
                1,
                None,
                "unverified",
                "info",
                f"{out} was written by pip-compile-multi: checked against its `# SHA1:` line "
                "and its sources over what it installs (its -r files too), not re-resolved "
                "(its options are not all in its files; `lock` reruns pip-compile-multi)",
            )
        )
    return findings


# --- Dockerfiles ----------------------------------------------------------------


def check_dockerfile(
    df: Dockerfile,
    locks: Mapping[PurePosixPath, Mapping[NormalizedName, Entry]],
    resolved: Mapping[RequirementInstall, PurePosixPath] | None = None,
    context: PurePosixPath | None = None,
    asks: Mapping[PurePosixPath, Sequence[Demand]] = {},
) -> Iterator[Finding]:
    """Kinds 4 and 5 for one Dockerfile.

    `asks` holds what the sources of each lock require: an override that breaks one
    of them is the incident itself (a requirement the team wrote, not met where it
    is installed), so it is an error, not the stated intent of a warning.

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
        steps = [
            Step(i.lock, i.install.line, i.install.no_deps, i.install.command)
            for i in by_stage[stage.index]
        ]
        yield from judge_together(file, "this image", steps, locks, asks, reported)


@dataclass(frozen=True)
class Step:
    """One lock installed into an environment: where, and how."""

    lock: PurePosixPath
    line: int
    no_deps: bool
    command: int  # the locks of one command are resolved together by pip
    file: str | None = None  # where it is written, when not in the environment's file


def judge_together(
    file: str,
    place: str,
    steps: Sequence[Step],
    locks: Mapping[PurePosixPath, Mapping[NormalizedName, Entry]],
    asks: Mapping[PurePosixPath, Sequence[Demand]],
    reported: set[tuple[NormalizedName, str, str]],
) -> Iterator[Finding]:
    """Locks installed one after another into one environment (`place`, an image stage
    or a CI job): a package they pin differently is a conflict, unless a later
    `--no-deps` command states an override, which is an error only where it breaks a
    requirement of a source of one of those locks."""
    first: dict[NormalizedName, tuple[Step, str]] = {}
    for item in steps:
        for name, entry in sorted(locks[item.lock].items()):
            version = entry.pinned_version
            if version is None:
                continue
            if name not in first:
                first[name] = (item, version)
                continue
            earlier, old = first[name]
            first[name] = (item, version)  # what the environment ends up with
            low, high = sorted((old, version))
            key = (name, low, high)
            if old == version or earlier.lock == item.lock or key in reported:
                continue
            reported.add(key)
            if item.no_deps and item.command != earlier.command:
                broken = next(
                    (
                        d
                        for i in steps
                        for d in asks.get(i.lock, ())
                        if d.entry.name == name and not satisfies(d.entry, version)
                    ),
                    None,
                )
                if broken is not None:
                    yield Finding(
                        item.file or file,
                        item.line,
                        name,
                        "override",
                        "error",
                        f"{name}: {item.lock}, installed with --no-deps after "
                        f"{earlier.lock} (line {earlier.line}), leaves {place} "
                        f"{name}=={version}, which breaks {broken.file}:{broken.entry.line} "
                        f"({broken.entry.text}) ({old} → {version}). Align the two locks, "
                        "or change that requirement",
                    )
                    continue
                # A later `pip install --no-deps -r overrides.txt` is how a team states
                # that these pins replace the earlier ones: intent, not an accident.
                yield Finding(
                    item.file or file,
                    item.line,
                    name,
                    "override",
                    "warning",
                    f"{name}: {item.lock}, installed with --no-deps after {earlier.lock} "
                    f"(line {earlier.line}), overrides its pin: {place} gets "
                    f"{name}=={version}, not {old} ({old} → {version}). If that is not "
                    "intended, align the two locks",
                )
                continue
            yield Finding(
                item.file or file,
                item.line,
                name,
                "co-installed-conflict",
                "error",
                f"{name}: {place} installs {earlier.lock} ({name}=={old}, line "
                f"{earlier.line}) and {item.lock} ({name}=={version}); "
                f"{old} → {version}: pip refuses them in one command, or the later "
                f"install silently wins. Run `{FIX_LOCK}` to align them",
            )


def check_environments(
    repo: Repo,
    locks: Mapping[PurePosixPath, Mapping[NormalizedName, Entry]],
    asks: Mapping[PurePosixPath, Sequence[Demand]],
) -> Iterator[Finding]:
    """The CI jobs (GitHub, GitLab), tox environments, nox sessions, Makefile targets
    and shell scripts that install locks (Repo.environments), judged like image stages."""
    for env in repo.environments:
        yield from _judge_environment(env, locks, asks)


def _judge_environment(
    env: Environment,
    locks: Mapping[PurePosixPath, Mapping[NormalizedName, Entry]],
    asks: Mapping[PurePosixPath, Sequence[Demand]],
) -> Iterator[Finding]:
    # A finding sits where its install is written: maybe a script the environment runs.
    steps = [
        Step(i.path, i.line, i.no_deps, i.command, i.file.as_posix())
        for i in env.installs
        if i.path in locks
    ]
    if len({s.lock for s in steps}) > 1:
        yield from judge_together(env.file.as_posix(), env.name, steps, locks, asks, set())


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
    """Kind 6: a lock and the lock of a layer it includes with -r pin a package differently.

    Only where the repository asks for it (layers-disagree): pip-compile resolves
    each layer on its own, so two layers that are never installed together may differ.
    """
    severity = repo.config.layers_disagree
    if severity is None:
        return
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
    noted: set[NormalizedName] | None = None
    for name in sorted(a.keys() | b.keys()):
        before, after = a.get(name), b.get(name)
        if before is not None and after is not None and _fingerprint(before) == _fingerprint(after):
            continue
        if before is None:
            noted = noted_names(old) if noted is None else noted
            if name in noted:
                # Compiled in and deleted afterwards (Open edX's `sed '/^django==/d'`):
                # the offline check reports it as omitted-pin, with the key to declare it.
                continue
        line = before.line if before else 1
        if not allow_unsafe and name in UNSAFE and (before is None or after is None):
            # Without --allow-unsafe pip-tools lists pip and setuptools as unsafe rather
            # than pin them; a lock that pins one anyway (treeherder's setuptools, pinned
            # and in the unsafe trailer) was edited after compiling, or written by a
            # pip-tools that pinned it. Which, the lock does not say: a warning.
            if before is not None:
                why = (
                    f"{out} pins it, but without --allow-unsafe pip-tools leaves it out (it "
                    "was added after compiling, or an older pip-tools pinned it)"
                )
            else:
                why = f"{out} leaves it out, but a fresh compile here pins it"
            yield Finding(
                out,
                line,
                name,
                "annotations-differ",
                "warning",
                f"{name}: {why}; add --allow-unsafe to pin it on purpose, or run "
                f"`{FIX_LOCK}`",
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
        request = LockRequest(force=True, keep_going=True)
        outcomes = compile_targets(
            stage, repo, selected, request, lambda _: None, groups, in_flight
        )
        broken: set[PurePosixPath] = set()
        for outcome in outcomes:
            if outcome.status not in ("failed", "skipped"):
                continue
            # One lock that cannot be compiled here must not hide what the others show.
            broken.add(outcome.output)
            why = (outcome.error or "").removeprefix(f"{outcome.output}: ")
            findings.append(
                Finding(
                    outcome.output.as_posix(),
                    1,
                    None,
                    "not-resolved",
                    "error",
                    f"{outcome.output} could not be re-resolved here: {why}",
                )
            )
        for target in targets:
            if target.output in broken:
                continue
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
    if target.guess is not None:
        return (
            "unverified",
            f"{out} was checked against its sources but not re-resolved: {target.guess}; "
            f"set python and compile-args in {where} to have it re-resolved",
        )
    if target.python != CURRENT:
        from .compiler import find_python

        try:
            find_python(target.python)
        except InterpreterNotFound as exc:
            # Not installed, or installed but unable to run pip-tools: say which.
            why = str(exc).split(" (looked on PATH", 1)[0].split("; install it", 1)[0]
            return (
                "wrong-python",
                f"{out} was compiled for Python {target.python}: {why}; checked against its "
                "sources but not re-resolved",
            )
    return None


def _check_images(
    repo: Repo,
    images: Sequence[Dockerfile],
    lock_pins: Mapping[PurePosixPath, Mapping[NormalizedName, Entry]],
    asks: Mapping[PurePosixPath, Sequence[Demand]],
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
        yield from check_dockerfile(df, any_pins, resolved, context, asks)


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
        if target.tool == "pip-compile-multi":
            findings.extend(check_pcm(target, lock, repo, options))
            continue
        vouched, stamp_findings = check_stamp(target, lock, repo)
        findings.extend(stamp_findings)
        if not vouched or options.full:
            # A vouched lock is pip-compile's own output for exactly these inputs, so
            # comparing it with them again could only find pip-compile's bugs.
            installed = installed_pins(repo, lock) if lock.body.includes else None
            sources, notes = _with_metadata(repo, target)
            findings.extend(notes)
            findings.extend(check_sources(target, lock, sources, installed))
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
    if images or repo.environments:
        # What each lock's sources require, for overrides; only where something
        # installs locks, so that a repository without either never computes it.
        asks = {
            t.output: [d for d in demands(t, repo.sources) if not d.constraint and d.entry.name]
            for t in repo.graph.order()
        }
        if images:
            findings.extend(_check_images(repo, images, lock_pins, asks))
        findings.extend(check_environments(repo, lock_pins, asks))
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
