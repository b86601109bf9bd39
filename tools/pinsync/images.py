"""Which locks an image installs: per Dockerfile stage, with what it inherits via FROM."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from .repo import Repo

if TYPE_CHECKING:
    from .dockerfile import Dockerfile, RequirementInstall


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
        for a, b in zip(reversed(parts), reversed(cand.parts), strict=False):
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
    df: Dockerfile,
    stage: int,
    candidates: Sequence[PurePosixPath],
    resolved: Mapping[RequirementInstall, PurePosixPath] | None = None,
) -> list[InstalledLock]:
    """The locks a stage installs, with what it inherits through FROM, in install order.

    A path a COPY explains is that file; only where none does (a bind mount, a file
    fetched at build time) is the path matched by its trailing components.
    """
    known = set(candidates)
    out = []
    for index in reversed(df.lineage(stage)):
        for inst in df.installs:
            if inst.stage == index and inst.kind in ("-r", "sync"):
                if resolved is not None and inst in resolved:
                    match: PurePosixPath | None = resolved[inst]
                    if match not in known:
                        continue
                else:
                    match = match_install(inst.path, candidates)
                if match is not None:
                    out.append(InstalledLock(inst, match))
    return out


def declared_contexts(repo: Repo) -> dict[PurePosixPath, PurePosixPath]:
    """Build contexts by Dockerfile: compose files' `build:`, overridden by the config."""
    from .buildcontext import compose_builds
    from .discovery import is_compose_file

    out: dict[PurePosixPath, PurePosixPath] = {}
    for path in repo.files:
        if is_compose_file(path):
            for build in compose_builds(path, repo.read(path)):
                out.setdefault(build.dockerfile, build.context)
    out.update(repo.config.docker_contexts)
    return out
