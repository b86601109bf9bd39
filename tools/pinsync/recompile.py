"""Recompiling outputs in a stage, in graph order, independent ones in parallel.

The engine under `lock`, `bump` and a re-resolving `check`; it writes only into
the stage it is given, never into the repository.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name

from .compiler import find_python, find_uv, run_compile, stop_compiles, toolchain
from .errors import InterpreterNotFound, PinsyncError
from .graph import Target
from .lockfile import (
    inputs_digest,
    parse_lockfile,
    pin_changes,
    stamp_state,
    strip_omitted,
    strip_stamp,
    with_stamp,
)
from .repo import Repo
from .reqfile import ReqFile, parse_requirements
from .stage import Stage

Status = Literal["created", "updated", "unchanged", "fresh", "failed", "skipped"]


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


def compile_one(
    stage: Stage,
    repo: Repo,
    target: Target,
    request: LockRequest,
    upgrades: frozenset[NormalizedName],
) -> Outcome:
    existing = stage.read(target.output)
    digest = inputs_digest(
        target, _closure(stage, repo, target), repo.config.pip_tools, *toolchain(target.tool)
    )
    old_lock = parse_lockfile(target.output, existing) if existing is not None else None
    stamp = old_lock.stamp if old_lock is not None else None
    touches_upgrade = old_lock is not None and bool(upgrades & old_lock.pins().keys())
    if (
        old_lock is not None
        and not (request.force or request.upgrade or touches_upgrade)
        and stamp_state(old_lock, lambda: digest) == "fresh"
    ):
        return Outcome(target.output, "fresh", 0, 0.0)
    run = run_compile(
        stage.path,
        target,
        find_python(target.python),
        upgrade=request.upgrade,
        upgrade_packages=request.upgrade_packages,
        timeout=repo.config.compile_timeout,
    )
    new = strip_omitted(target.output, stage.read(target.output) or "", target.omit)
    if existing is not None and strip_stamp(existing) == new:
        if stamp is None and not request.restamp:
            # Compiled by plain pip-compile and in sync: leave it byte-identical.
            stage.write(target.output, existing)
        else:
            stage.write(target.output, with_stamp(new, digest))
        return Outcome(target.output, "unchanged", 0, run.seconds)
    stage.write(target.output, with_stamp(new, digest))
    status: Status = "created" if existing is None else "updated"
    old_pins = old_lock.pins() if old_lock is not None else {}
    moved = pin_changes(old_pins, parse_lockfile(target.output, new).pins())
    return Outcome(target.output, status, len(moved), run.seconds)


def compile_targets(
    stage: Stage,
    repo: Repo,
    selected: frozenset[PurePosixPath],
    request: LockRequest,
    progress: Progress,
) -> tuple[Outcome, ...]:
    """Compile `selected` in graph order, independent ones in parallel; report in order."""
    upgrades = upgrade_names(request.upgrade_packages)  # a bad argument fails before anything
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
    printed = 0
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        running: dict[Future[Outcome], PurePosixPath] = {}
        try:
            while waiting or running:
                for target in order:
                    deps = waiting.get(target.output)
                    if deps is not None and deps <= results.keys():
                        del waiting[target.output]
                        future = pool.submit(compile_one, stage, repo, target, request, upgrades)
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
