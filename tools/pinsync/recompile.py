"""Recompiling outputs in a stage, in graph order, independent ones in parallel.

The engine under `lock`, `bump` and a re-resolving `check`; it writes only into
the stage it is given, never into the repository.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal, NoReturn

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name

from .align import (
    AlignGroup,
    by_output,
    disagreeing_requests,
    downstream,
    joint_source,
    joint_target,
    seed,
    seed_text,
)
from .compiler import (
    CompileRun,
    find_python,
    find_uv,
    mirror,
    run_compile,
    stop_compiles,
    toolchain,
)
from .errors import CompileError, InterpreterNotFound, PinsyncError
from .graph import Target
from .indexes import index_urls
from .lockfile import (
    PinChange,
    inputs_digest,
    parse_lockfile,
    pin_changes,
    stamp_state,
    strip_mirror,
    strip_omitted,
    strip_stamp,
    with_stamp,
)
from .progress import InFlight
from .repo import Repo
from .reqfile import ReqFile, parse_requirements
from .stage import Stage

# "restamped": the same pins and text, only the stamp line rewritten.
Status = Literal["created", "updated", "unchanged", "restamped", "fresh", "failed", "skipped"]


@dataclass(frozen=True)
class LockRequest:
    files: tuple[str, ...] = ()
    upgrade: bool = False
    upgrade_packages: tuple[str, ...] = ()
    force: bool = False
    # Stamp locks that are unchanged but were compiled by plain pip-compile (lock --force).
    restamp: bool = False
    dry_run: bool = False
    jobs: int | None = None


@dataclass(frozen=True)
class Outcome:
    output: PurePosixPath
    status: Status
    pins_changed: int
    seconds: float
    error: str | None = None  # why a "failed" or "skipped" output was not compiled
    moved: tuple[PinChange, ...] = ()  # of an updated lock: name, old, new
    aligned_with: tuple[PurePosixPath, ...] = ()  # the rest of its alignment group


Progress = Callable[[Outcome], None]


def upgrade_names(specs: Iterable[str]) -> frozenset[NormalizedName]:
    """Validate `NAME[==VER]` arguments before anything runs."""
    names = set()
    for spec in specs:
        try:
            req = Requirement(spec)
        except InvalidRequirement:
            raise PinsyncError(
                f"--upgrade-package {spec!r}: expected NAME or NAME==VERSION"
            ) from None
        if (
            req.url
            or req.marker
            or req.extras
            or len(req.specifier) > 1
            or any(s.operator not in ("==", "===") for s in req.specifier)
        ):
            raise PinsyncError(f"--upgrade-package {spec!r}: expected NAME or NAME==VERSION")
        names.add(canonicalize_name(req.name))
    return frozenset(names)


def _closure(stage: Stage, repo: Repo, target: Target) -> list[ReqFile]:
    """Parse what the compile of `target` reads, as the stage holds it now."""
    out = []
    for path in repo.graph.closure[target.output]:
        if path.suffix not in (".in", ".txt"):
            continue
        if path not in stage.writable and path in repo.sources:
            # The stage links it to the file load_repo already parsed.
            out.append(repo.sources[path])
            continue
        text = stage.read(path)
        if text is not None:
            out.append(parse_requirements(path, text))
    return out


def _indexes(repo: Repo, target: Target) -> tuple[str, ...]:
    lines = [
        (option.name, option.value)
        for path in repo.graph.closure[target.output]
        if path in repo.sources
        for option in repo.sources[path].options
    ]
    return index_urls(target.args, repo.config.pip_tools, lines)


def _digest(stage: Stage, repo: Repo, target: Target) -> str:
    return inputs_digest(
        target, _closure(stage, repo, target), repo.config.pip_tools, *toolchain(target.tool)
    )


def _is_fresh(
    stage: Stage,
    repo: Repo,
    target: Target,
    request: LockRequest,
    upgrades: frozenset[NormalizedName],
) -> bool:
    """The lock's stamp vouches for it and nothing asked for a recompile anyway."""
    existing = stage.read(target.output)
    if existing is None or request.force or request.upgrade:
        return False
    old_lock = parse_lockfile(target.output, existing)
    if upgrades & old_lock.pins().keys():
        return False
    return stamp_state(old_lock, lambda: _digest(stage, repo, target)) == "fresh"


JointPins = dict[NormalizedName, str]


@dataclass(frozen=True)
class Joint:
    """What a group's locks start from: one version per package, and the locks that
    were already compiled against it (by the shortcut in `resolve_group`)."""

    pins: JointPins
    compiled: dict[PurePosixPath, tuple[str, float]]  # staged text, seconds


def _agreeing(locks: Iterable[Mapping[NormalizedName, str]]) -> JointPins | None:
    """The union of `locks`, or None when two of them pin a package differently."""
    out: JointPins = {}
    for pins in locks:
        for name, version in pins.items():
            if out.setdefault(name, version) != version:
                return None
    return out


def _pins_in(output: PurePosixPath, text: str | None) -> JointPins:
    pins = parse_lockfile(output, text).pins() if text is not None else {}
    return {n: e.pinned_version for n, e in pins.items() if e.pinned_version is not None}


def _pinned(stage: Stage, output: PurePosixPath) -> JointPins:
    return _pins_in(output, stage.read(output))


def _shortcut(
    stage: Stage,
    repo: Repo,
    members: Sequence[Target],
    stale: Sequence[Target],
    request: LockRequest,
    later: frozenset[PurePosixPath],
    jobs: int,
) -> Joint | None:
    """The group's pins without a joint resolution, when it can be had cheaper.

    Compile each stale lock on its own, starting from its own pins and those the
    fresh locks agree on: when only one leaf was edited (the usual case) that is one
    compile, and when every lock is stale (a first lock, `--force`) the layers of a
    tree whose layers never cap each other agree anyway. If every result agrees,
    that is the group's joint result; the joint resolution, which reads every source
    of the group, runs only when they do not. They compile in parallel, `jobs` at a
    time.
    """
    if request.upgrade or request.upgrade_packages:
        return None
    if any(t.output in later for t in stale):
        return None  # it must be compiled against its upstream lock's new pins: below
    fresh = [t for t in members if t not in stale]
    agreed = _agreeing(_pinned(stage, t.output) for t in fresh)
    if agreed is None:
        return None
    start = agreed

    def alone(target: Target) -> tuple[str, float] | None:
        existing = stage.read(target.output)
        stage.write(target.output, seed_text({**_pinned(stage, target.output), **start}))
        try:
            run = run_compile(
                stage.path,
                target,
                find_python(target.python),
                timeout=repo.config.compile_timeout,
                indexes=_indexes(repo, target),
            )
            return stage.read(target.output) or "", run.seconds
        except CompileError:
            return None  # said in its own words when compile_one runs it again
        finally:
            stage.put_back(target.output, existing)

    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(stale)))) as pool:
        results = list(pool.map(alone, stale))
    compiled: dict[PurePosixPath, tuple[str, float]] = {}
    for target, result in zip(stale, results, strict=True):
        if result is None:
            return None
        merged = _agreeing([agreed, _pins_in(target.output, result[0])])
        if merged is None:
            return None
        agreed = merged
        compiled[target.output] = result
    return Joint(agreed, compiled)


def resolve_group(
    stage: Stage,
    repo: Repo,
    group: AlignGroup,
    selected: frozenset[PurePosixPath],
    request: LockRequest,
    upgrades: frozenset[NormalizedName],
    jobs: int = 1,
) -> Joint | None:
    """The joint pins of `group`, or None when every lock of it is fresh.

    A lock's stamp covers its own sources only: a change elsewhere in the group
    shows up here, as a joint pin that the lock does not have.
    """
    members = [repo.graph.targets[o] for o in group.outputs if o in selected]
    stale = [t for t in members if not _is_fresh(stage, repo, t, request, upgrades)]
    if not stale:
        return None
    later = downstream(group, repo.graph)
    shortcut = _shortcut(stage, repo, members, stale, request, later, jobs)
    if shortcut is not None:
        return shortcut
    joint = joint_target(group, repo.graph)
    stage.write_scratch(joint.inputs[0], joint_source(group, repo.graph))
    current = []
    for out in group.outputs:
        text = stage.read(out)
        if text is not None:
            current.append(parse_lockfile(out, text).pins())
    # The members' pins, as existing pins of the joint lock: what agrees stays put.
    stage.write_scratch(joint.output, seed_text(seed(current)))
    try:
        run_compile(
            stage.path,
            joint,
            find_python(joint.python),
            upgrade=request.upgrade,
            upgrade_packages=request.upgrade_packages,
            timeout=repo.config.compile_timeout,
            indexes=_indexes(repo, members[0]),
        )
    except CompileError as exc:
        upstream = [t for t in members if t.output not in later]
        _explain_joint_failure(stage, repo, group, upstream, request, exc)
    return Joint(_pinned(stage, joint.output), {})


def _explain_joint_failure(
    stage: Stage,
    repo: Repo,
    group: AlignGroup,
    members: Sequence[Target],
    request: LockRequest,
    exc: CompileError,
) -> NoReturn:
    """Raise what is wrong: a lock that fails on its own says so in its own words (a
    missing version, a bad line); only when each resolves alone is it their disagreement."""
    for target in members:
        existing = stage.read(target.output)
        try:
            run_compile(
                stage.path,
                target,
                find_python(target.python),
                upgrade=request.upgrade,
                upgrade_packages=request.upgrade_packages,
                timeout=repo.config.compile_timeout,
                indexes=_indexes(repo, target),
            )
        finally:
            stage.put_back(target.output, existing)
    why = str(exc).split(": ", 1)[-1].rstrip(".")
    asked = disagreeing_requests(group, repo.graph, repo.sources, why)
    detail = f"; the requirements that cannot agree: {', '.join(asked)}" if asked else ""
    raise CompileError(f"cannot align {group.describe()}: {why}{detail}") from None


def compile_one(
    stage: Stage,
    repo: Repo,
    target: Target,
    request: LockRequest,
    upgrades: frozenset[NormalizedName],
    group: AlignGroup | None = None,
    joint: Joint | None = None,
) -> Outcome:
    """Compile one lock; in a group whose joint pins are `joint`, starting from them."""
    existing = stage.read(target.output)
    digest = _digest(stage, repo, target)
    old_lock = parse_lockfile(target.output, existing) if existing is not None else None
    stamp = old_lock.stamp if old_lock is not None else None
    others = tuple(o for o in group.outputs if o != target.output) if group else ()
    old_pins = old_lock.pins() if old_lock is not None else {}
    pins = joint.pins if joint is not None else {}
    if _is_fresh(stage, repo, target, request, upgrades) and all(
        e.pinned_version is None or pins.get(n, e.pinned_version) == e.pinned_version
        for n, e in old_pins.items()
    ):
        return Outcome(target.output, "fresh", 0, 0.0)
    upgrade, upgrade_packages = request.upgrade, request.upgrade_packages
    if joint is not None:
        # The joint pins as this lock's existing pins: pip-compile keeps each one, since
        # the joint result satisfies this lock's sources; the joint compile already
        # applied --upgrade, which would now discard them.
        kept = {n: e.pinned_version for n, e in old_pins.items() if e.pinned_version}
        stage.write(target.output, seed_text({**kept, **pins}))
        upgrade, upgrade_packages = False, ()
    try:
        if joint is not None and target.output in joint.compiled:
            # Compiled from these very pins while the group was resolved: not twice.
            text, seconds = joint.compiled[target.output]
            stage.write(target.output, text)
            run = CompileRun(seconds)
        else:
            run = run_compile(
                stage.path,
                target,
                find_python(target.python),
                upgrade=upgrade,
                upgrade_packages=upgrade_packages,
                timeout=repo.config.compile_timeout,
                indexes=_indexes(repo, target),
            )
    except BaseException:
        if joint is not None:  # no seed may pass for this lock
            stage.put_back(target.output, existing)
        raise
    compiled = strip_mirror(target.output, stage.read(target.output) or "", mirror())
    # pip makes a relative --find-links of a -c lock absolute, and pip-tools writes it
    # out: the path is the repository's, as in a plain run there, not the stage's,
    # which changes every run.
    compiled = compiled.replace(f"{stage.path}{os.sep}", f"{repo.root}{os.sep}")
    new = strip_omitted(target.output, compiled, target.omit)
    if existing is not None and strip_stamp(existing) == new:
        written = existing
        if stamp is not None or request.restamp:
            # (Else compiled by plain pip-compile and in sync: left byte-identical.)
            written = with_stamp(new, digest)
        stage.write(target.output, written)
        same: Status = "unchanged" if written == existing else "restamped"
        return Outcome(target.output, same, 0, run.seconds, aligned_with=others)
    stage.write(target.output, with_stamp(new, digest))
    status: Status = "created" if existing is None else "updated"
    moved = pin_changes(old_pins, parse_lockfile(target.output, new).pins())
    return Outcome(target.output, status, len(moved), run.seconds, None, moved, others)


def compile_targets(
    stage: Stage,
    repo: Repo,
    selected: frozenset[PurePosixPath],
    request: LockRequest,
    progress: Progress,
    groups: tuple[AlignGroup, ...] = (),
    in_flight: InFlight | None = None,
) -> tuple[Outcome, ...]:
    """Compile `selected` in graph order, independent ones in parallel; report in order.

    The locks of each alignment group in `groups` (see align.widen for the selection)
    are compiled from the group's joint resolution, which the first of them runs.
    """
    upgrades = upgrade_names(request.upgrade_packages)  # a bad argument fails before anything
    group_of = by_output(groups)
    joints: dict[str, Joint | None] = {}

    def task(target: Target) -> Outcome:
        if in_flight is not None:
            in_flight.started(target.output)
        try:
            group = group_of.get(target.output)
            if group is None:
                return compile_one(stage, repo, target, request, upgrades)
            if group.key not in joints:  # the first selected member; the rest wait for it
                joints[group.key] = resolve_group(
                    stage, repo, group, selected, request, upgrades, jobs
                )
            return compile_one(stage, repo, target, request, upgrades, group, joints[group.key])
        finally:
            if in_flight is not None:
                in_flight.finished(target.output)

    order = [t for t in repo.graph.order() if t.output in selected]
    results: dict[PurePosixPath, Outcome] = {}
    for target in order:
        # A missing interpreter costs only the outputs that need it (and what is
        # compiled from them), found before any compile starts.
        try:
            if target.tool == "uv":
                find_uv()
            find_python(target.python)
        except InterpreterNotFound as exc:
            results[target.output] = Outcome(target.output, "failed", 0, 0.0, str(exc))
    for out in repo.graph.dependents(results) - results.keys():
        if out in selected:
            why = "not compiled: it reads an output that could not be compiled"
            results[out] = Outcome(out, "skipped", 0, 0.0, why)
    jobs = request.jobs or repo.config.jobs or os.cpu_count() or 1
    waiting = {
        t.output: set(repo.graph.needs[t.output]) & selected
        for t in order
        if t.output not in results
    }
    for group in groups:
        # The rest of a group waits for the first, whose task resolves the group.
        members = [o for o in group.outputs if o in waiting]
        for out in members[1:]:
            waiting[out].add(members[0])
    printed = 0
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        running: dict[Future[Outcome], PurePosixPath] = {}
        try:
            while waiting or running:
                for target in order:
                    deps = waiting.get(target.output)
                    if deps is not None and deps <= results.keys():
                        del waiting[target.output]
                        future = pool.submit(task, target)
                        running[future] = target.output
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    output = running.pop(future)
                    results[output] = future.result()
                while printed < len(order) and order[printed].output in results:
                    progress(results[order[printed].output])
                    printed += 1
        except BaseException:
            for future in running:
                future.cancel()
            stop_compiles()  # else the pool would wait for every running compile to end
            raise
    for target in order[printed:]:
        progress(results[target.output])
    return tuple(results[t.output] for t in order)
