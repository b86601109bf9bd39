"""`check`: every kind of drift between sources, locks, and Dockerfiles.

The offline checks are pure functions of the loaded repository: each lock against
its sources (lockcheck), the locks of each environment (envcheck), and the pins
written outside locks (sitecheck). Only locks that cannot be vouched for by their
stamp are re-resolved, in a stage, never in place. This module assembles them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import PurePosixPath

from packaging.utils import NormalizedName

from .align import alignment_groups
from .demands import FIX_LOCK, Demand, check_sources, demands, installed_pins
from .envcheck import check_environments, check_images
from .graph import Target
from .lockcheck import (
    check_bots,
    check_layers,
    check_pcm,
    check_stamp,
    reresolve,
    why_not_reresolved,
    with_metadata,
)
from .lockfile import LockFile
from .progress import InFlight
from .repo import Repo
from .report import FIX, Finding, FixCommands, Severity
from .reqfile import Entry
from .sitecheck import PROJECT_FILES, check_sites


class LockPins(Mapping[PurePosixPath, Mapping[NormalizedName, Entry]]):
    """Each lock's pins, by path, read when first looked up."""

    def __init__(self, locks: Mapping[PurePosixPath, LockFile]) -> None:
        self._locks = locks

    def __getitem__(self, path: PurePosixPath) -> Mapping[NormalizedName, Entry]:
        return self._locks[path].pins()

    def __iter__(self) -> Iterator[PurePosixPath]:
        return iter(self._locks)

    def __len__(self) -> int:
        return len(self._locks)


class Asks(Mapping[PurePosixPath, Sequence[Demand]]):
    """What the sources of each lock require (not constrain), worked out for a lock
    when something installs it: an override is judged against these."""

    def __init__(self, repo: Repo) -> None:
        self._repo = repo
        self._made: dict[PurePosixPath, Sequence[Demand]] = {}

    def __getitem__(self, path: PurePosixPath) -> Sequence[Demand]:
        if path not in self._made:
            target = self._repo.graph.targets[path]
            self._made[path] = [
                d for d in demands(target, self._repo.sources) if not d.constraint and d.entry.name
            ]
        return self._made[path]

    def __iter__(self) -> Iterator[PurePosixPath]:
        return iter(self._repo.graph.targets)

    def __len__(self) -> int:
        return len(self._repo.graph.targets)


@dataclass(frozen=True)
class CheckOptions:
    offline: bool = False
    full: bool = False
    fix: FixCommands = FIX
    in_flight: InFlight | None = None  # shows re-resolutions that take a while


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
            findings.extend(check_pcm(target, lock, repo, options.offline))
            continue
        vouched, stamp_findings = check_stamp(target, lock, repo)
        findings.extend(stamp_findings)
        if not vouched or options.full:
            # A vouched lock is pip-compile's own output for exactly these inputs, so
            # comparing it with them again could only find pip-compile's bugs.
            installed = installed_pins(repo, lock) if lock.body.includes else None
            sources, notes = with_metadata(repo, target)
            findings.extend(notes)
            findings.extend(check_sources(target, lock, sources, installed))
        if (vouched or stamp_findings) and not options.full:
            continue
        why_not = why_not_reresolved(target, options.offline)
        if why_not is None:
            to_resolve.append(target)
        else:
            severity: Severity = "warning" if why_not[0] == "wrong-python" else "info"
            findings.append(Finding(out, 1, None, why_not[0], severity, why_not[1]))
    findings.extend(check_bots(repo))
    lock_pins = LockPins(repo.locks)
    if images or repo.environments:
        # What each lock's sources require, for overrides: only for the locks
        # something installs, so that a thousand locks in one CI job cost one each.
        asks = Asks(repo)
        if images:
            findings.extend(check_images(repo, images, lock_pins, asks))
        findings.extend(check_environments(repo, lock_pins, asks, images))
    # Every site is read, and only the locks it is compared with: choosing which
    # commands to read by the names every lock pins would parse every vouched lock.
    sites = repo.sites(None)
    if sites:
        projects = frozenset(p.parent for p in repo.files if p.name in PROJECT_FILES)
        findings.extend(
            check_sites(
                sites,
                lock_pins,
                images,
                repo.config.site_scopes,
                projects,
                repo.environments,
                lambda path, name: repo.locks[path].pin(name),
            )
        )
    findings.extend(check_layers(repo, lock_pins))
    if to_resolve:
        findings.extend(reresolve(repo, to_resolve, groups, options.in_flight))
    if options.fix != FIX:
        findings = [replace(f, message=options.fix.respell(f.message)) for f in findings]
    return sorted(set(findings), key=lambda f: (f.file, f.line, f.package or "", f.kind, f.message))
