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
    pip_tools: str
    pip: str | None  # None where that lock leaves pip unpinned
    where: PurePosixPath  # the lock that pins them


def repo_tools(locks: Mapping[PurePosixPath, LockFile]) -> RepoTools | None:
    """The pip-tools the repository's locks pin (the version most of them pin, the
    newest on a tie), with the pip pinned beside it; None where none pins one."""
    votes: dict[str, list[PurePosixPath]] = {}
    for path, lock in sorted(locks.items()):
        entry = lock.pins().get(NormalizedName("pip-tools"))
        if entry is not None and entry.pinned_version:
            votes.setdefault(entry.pinned_version, []).append(path)
    if not votes:
        return None

    def rank(version: str) -> tuple[int, Version]:
        try:
            return len(votes[version]), Version(version)
        except InvalidVersion:
            return len(votes[version]), Version("0")

    chosen = max(votes, key=rank)
    where = votes[chosen][0]
    pip = locks[where].pins().get(NormalizedName("pip"))
    return RepoTools(chosen, pip.pinned_version if pip else None, where)
