"""The pip-tools and pip a repository pins for itself, which wrote its locks.

A lock's bytes depend on the pip-tools and pip that wrote it (which unsafe packages
it pins, how it sorts hashes, what `#egg=` it accepts). Most repositories pin their
own pip-tools in one of their locks; compiling with that one, not ours, is what
keeps their locks byte for byte. Pure: locks in, versions out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

from packaging.utils import NormalizedName
from packaging.version import InvalidVersion, Version

from .lockfile import LockFile


@dataclass(frozen=True)
class RepoTools:
    pip_tools: str | None
    pip: str | None  # None where that lock leaves pip unpinned
    where: PurePosixPath | None  # the lock that pins them
    uv: str | None = None  # the uv the locks pin, for the locks uv wrote


def repo_tools(locks: Mapping[PurePosixPath, LockFile]) -> RepoTools | None:
    """The pip-tools the repository's locks pin (the version most of them pin, the
    newest on a tie), with the pip pinned beside it, and the uv they pin, chosen the
    same way; None where they pin neither."""
    votes = _votes(locks, NormalizedName("pip-tools"))
    uv = _votes(locks, NormalizedName("uv"))
    uv_version = max(uv, key=lambda v: _rank(uv, v)) if uv else None
    if not votes:
        return RepoTools(None, None, None, uv_version) if uv_version else None

    chosen = max(votes, key=lambda v: _rank(votes, v))
    where = votes[chosen][0]
    pip = locks[where].pins().get(NormalizedName("pip"))
    return RepoTools(chosen, pip.pinned_version if pip else None, where, uv_version)


def _votes(
    locks: Mapping[PurePosixPath, LockFile], name: NormalizedName
) -> dict[str, list[PurePosixPath]]:
    votes: dict[str, list[PurePosixPath]] = {}
    for path, lock in sorted(locks.items()):
        entry = lock.pins().get(name)
        if entry is not None and entry.pinned_version:
            votes.setdefault(entry.pinned_version, []).append(path)
    return votes


def _rank(votes: Mapping[str, list[PurePosixPath]], version: str) -> tuple[int, Version]:
    try:
        return len(votes[version]), Version(version)
    except InvalidVersion:
        return len(votes[version]), Version("0")
