"""Finding the repository's files: requirement sources, locks and Dockerfiles."""

from __future__ import annotations

import fnmatch
import functools
import os
import posixpath
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Literal

from .errors import GraphError, PinsyncError

# Directories that never hold a project's own requirement files.
SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".nox",
        ".tox",
        ".venv",
        "venv",
        ".env",
        "env",
        "node_modules",
        "build",
        "dist",
        "__pycache__",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        "site-packages",
        ".eggs",
    }
)


def _skipped(parts: Iterable[str]) -> bool:
    return any(p in SKIP_DIRS or p.endswith(".egg-info") for p in parts)


def list_files(root: Path) -> tuple[PurePosixPath, ...]:
    """Every file of the repository, relative to `root`, without ignored ones.

    In a git work tree git itself answers (tracked plus untracked-not-ignored),
    which is both faster than a walk and the only reliable reading of .gitignore.
    """
    listed = _git_files(root)
    found = listed if listed is not None else _walk(root)
    # Sorted by parts, which is PurePosixPath's own order without its comparisons.
    return tuple(sorted((p for p in found if not _skipped(p.parts[:-1])), key=_parts))


def _parts(path: PurePosixPath) -> tuple[str, ...]:
    return path.parts


def _git_files(root: Path) -> list[PurePosixPath] | None:
    try:
        proc = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", "."],
            cwd=root,
            capture_output=True,
            check=False,
        )
    except OSError:
        return None
    if proc.returncode != 0:
        return None
    names = [n for n in proc.stdout.decode("utf-8", "surrogateescape").split("\0") if n]
    # A deleted-but-tracked file is still listed by --cached.
    base = os.fspath(root)
    return [PurePosixPath(n) for n in names if os.path.isfile(os.path.join(base, n))]


def _walk(root: Path) -> Iterator[PurePosixPath]:
    # On strings: a walk of a tree of thousands of files was a tenth of a check in
    # pathlib's parsing of names the walk had just split.
    base = os.fspath(root)
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(
            d
            for d in dirnames
            if d not in SKIP_DIRS
            and not d.endswith(".egg-info")
            and not os.path.exists(os.path.join(dirpath, d, "pyvenv.cfg"))
        )
        rel = os.path.relpath(dirpath, base)
        prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        for name in filenames:
            yield PurePosixPath(prefix + name)


def matches(path: PurePosixPath, patterns: Iterable[str]) -> bool:
    """Glob match where `**/` also matches at the top level, as in .gitignore."""
    text = path.as_posix()
    for pattern in patterns:
        if fnmatch.fnmatchcase(text, pattern):
            return True
        if pattern.startswith("**/") and fnmatch.fnmatchcase(text, pattern[3:]):
            return True
    return False


def dockerfile_paths(
    files: Iterable[PurePosixPath], patterns: Iterable[str]
) -> tuple[PurePosixPath, ...]:
    """The one rule for which files are Dockerfiles: the config's globs, ignore files aside."""
    globs = tuple(patterns)
    # `Dockerfile.dockerignore` is the ignore file BuildKit reads beside a Dockerfile.
    return tuple(p for p in files if matches(p, globs) and not p.name.endswith(".dockerignore"))


def leaves_root(path: PurePosixPath) -> bool:
    """Whether a path (relative to the root, after `join`) points outside the root."""
    return path.is_absolute() or (bool(path.parts) and path.parts[0] == "..")


def within(path: PurePosixPath, directory: PurePosixPath) -> bool:
    """Whether `path` lies somewhere under `directory` (both relative to the root)."""
    return directory == path.parent or directory in path.parent.parents


def resolves_inside(root: Path, full: Path | str) -> bool:
    """Whether `full`, symlinks followed, is `root` or lies under it."""
    real, base = _realpath(os.fspath(full)), _real_root(root)
    return real == base or real.startswith(base.rstrip(os.sep) + os.sep)


# The real path of each directory files were read from in this run: a run reads
# thousands of files from a few directories, and realpath checks every component of
# every path. load_repo starts each run with it empty.
REAL_DIRS: dict[str, str] = {}


def _realpath(full: str) -> str:
    parent, name = os.path.split(full)
    if not name or name in (".", "..") or os.path.islink(full):
        return os.path.realpath(full)
    real_parent = REAL_DIRS.get(parent)
    if real_parent is None:
        real_parent = REAL_DIRS[parent] = os.path.realpath(parent)
    return os.path.join(real_parent, name)


@functools.lru_cache(maxsize=64)
def _real_root(root: Path) -> str:
    # Asked once per file read (thousands of times a run): the root is resolved once.
    return os.path.realpath(root)


# Pure, and asked the same few thousand questions many times a run (each lock's
# candidate run directories against its sources and `# via` notes).
@functools.lru_cache(maxsize=1 << 16)
def join(base: PurePosixPath, path: str) -> PurePosixPath:
    """`base/path` with `.` and `..` resolved in the text, never on the disk.

    The one rule for paths written in files (includes, header sources, COPY):
    a `..` that climbs above the root stays, so callers can tell it left the root,
    and an absolute path stays absolute (`/..` is `/`, as for the kernel).
    """
    # posixpath on the text: pathlib's parsing was a tenth of a check at 1,000 locks.
    return PurePosixPath(posixpath.normpath(posixpath.join(base.as_posix(), path)))


def inside(root: Path, path: PurePosixPath) -> Path:
    """`root/path`, refused when it is, or leads through a symlink to, a place outside root.

    The repository under check is untrusted input: nothing outside --root is read
    (or quoted in an error), whatever a config, header, include or symlink says.
    """
    return Path(checked_path(root, path))


def checked_path(root: Path, path: PurePosixPath) -> str:
    """`inside` as a string: the form files are opened by, thousands of times a run."""
    if leaves_root(path):
        raise GraphError(f"{path}: outside the repository root; pinsync reads nothing there")
    full = os.path.join(root, path.as_posix())
    if not resolves_inside(root, full):
        raise GraphError(
            f"{path}: a symlink out of the repository root; pinsync reads nothing there"
        )
    return full


def read_text(root: Path, path: PurePosixPath) -> str:
    full = checked_path(root, path)
    try:
        # Bytes, decoded whole: CRLF stays visible (as with newline=""), so that
        # rewrites can keep it, without a text wrapper per file.
        with open(full, "rb") as fh:
            return fh.read().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PinsyncError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except IsADirectoryError:
        raise PinsyncError(f"{path}: a directory where a file was expected") from None
    except OSError as exc:
        raise PinsyncError(f"{path}: cannot read it ({exc.strerror})") from None


SiteKind = Literal[
    "pyproject",
    "setup-cfg",
    "tox",
    "pre-commit",
    "ci",
    "makefile",
    "script",
    "compose",
    "uv-lock",
    "pylock",
    "pin-sites",
]

_BY_NAME: dict[str, SiteKind] = {
    "pyproject.toml": "pyproject",
    "setup.cfg": "setup-cfg",
    "tox.ini": "tox",
    ".pre-commit-config.yaml": "pre-commit",
    "uv.lock": "uv-lock",
    ".gitlab-ci.yml": "ci",
    "Makefile": "makefile",
    "makefile": "makefile",
    "GNUmakefile": "makefile",
}


def site_kind(path: PurePosixPath) -> SiteKind | None:
    """The one rule for which files hold pin sites, and of what kind, from the path alone.

    A check asks it of every file of the repository, so it sticks to string tests.
    """
    text = path.as_posix()
    directory, _, name = text.rpartition("/")
    kind = _BY_NAME.get(name)
    if kind is not None:
        return kind
    if name.endswith((".yml", ".yaml")):
        if directory == ".github/workflows":
            return "ci"
        return "compose" if is_compose_file(path) else None
    if name.endswith((".sh", ".bash")):
        return "script"
    if name.endswith(".mk"):
        return "makefile"
    if name.startswith("pylock.") and name.endswith(".toml"):
        return "pylock"
    return None


def is_compose_file(path: PurePosixPath) -> bool:
    """`docker-compose.yml`, `compose.yaml`, and their `.override`-style variants."""
    name = path.name
    return name.startswith(("docker-compose.", "compose.")) and name.endswith((".yml", ".yaml"))
