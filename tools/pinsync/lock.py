"""`lock`: recompile outputs in graph order, in a stage, and commit them together."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .align import alignment_groups, widen
from .errors import PinsyncError
from .progress import InFlight
from .recompile import LockRequest, Outcome, Progress, compile_targets, linked_on_demand
from .repo import Repo
from .stage import Change, Stage, commit


@dataclass(frozen=True)
class LockResult:
    outcomes: tuple[Outcome, ...]
    changes: tuple[Change, ...]
    seconds: float


def select(repo: Repo, files: Sequence[str], cwd: Path) -> frozenset[PurePosixPath]:
    """The outputs named by `files` (a lock or a source of one), plus all that depend on them."""
    graph = repo.graph
    if not files:
        return frozenset(graph.targets)
    chosen = set()
    root = repo.root.resolve()
    for name in files:
        path = Path(name)
        candidates = [path] if path.is_absolute() else [cwd / path, repo.root / path]
        target = None
        for candidate in candidates:
            try:
                rel = PurePosixPath(candidate.resolve().relative_to(root).as_posix())
            except ValueError:
                continue
            target = graph.target_for(rel)
            if target:
                break
        if target is None:
            raise PinsyncError(f"{name}: neither a lock file nor the source of one in {repo.root}")
        chosen.add(target.output)
    return graph.dependents(chosen)


def run_lock(
    repo: Repo,
    request: LockRequest,
    cwd: Path,
    progress: Progress,
    in_flight: InFlight | None = None,
) -> LockResult:
    start = time.perf_counter()
    groups = alignment_groups(repo)
    selected = widen(repo.graph, select(repo, request.files, cwd), groups)
    known = {p: lock.text for p, lock in repo.locks.items()}
    with Stage(repo.root, selected, known, linked_on_demand(repo)) as stage:
        outcomes = compile_targets(stage, repo, selected, request, progress, groups, in_flight)
        changes = stage.changes()
        if not request.dry_run:
            commit(repo.root, changes)
    return LockResult(outcomes, changes, time.perf_counter() - start)
