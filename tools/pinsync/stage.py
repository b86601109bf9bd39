"""Work on copies, then replace the repository's files all at once, or not at all.

A stage is a temporary directory that looks like the repository from pip-compile's
point of view: the directories holding files we may write are real directories
with copies of those files, and every other entry is a symlink to the original.
pip-compile runs there with the same relative paths as in the repository, so its
output is byte-for-byte what it would write in place.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import FrameType

from .discovery import resolves_inside
from .errors import InterruptedAfterCommit, PinsyncError


@dataclass(frozen=True)
class Change:
    path: PurePosixPath
    old: bytes | None  # None: the file is new
    new: bytes


class Stage:
    """The stage is built when something first needs it on disk (a compile, a write).

    A run whose locks are all fresh only reads them, and the files of the stage
    would be the repository's own: at a thousand locks, copying and linking them
    was most of a no-op `lock`. Until then, reads go to the repository.
    """

    def __init__(
        self,
        root: Path,
        writable: Iterable[PurePosixPath],
        known: Mapping[PurePosixPath, str] | None = None,
        on_demand: Iterable[PurePosixPath] = (),
    ) -> None:
        self.root = root
        self.writable = frozenset(writable)
        # Requirement files the include graph knows (sources, locks): linked into the
        # stage only when a compile that reads them asks (see need). Creating a link is
        # a write to the file system's metadata, slow on some disks (0.7 ms here): a
        # thousand locks beside a thousand sources took 1.5 s to link for one compile.
        self.on_demand = frozenset(on_demand)
        self._unlinked: set[PurePosixPath] = set()
        # What the run already read of the repository's files (the locks it loaded):
        # read from here until something claims the file, not from the disk again.
        self._known = dict(known or {})
        self._claimed: set[PurePosixPath] = set()
        self._path: Path | None = None
        # Compiles run in threads: the first to need the stage builds it, once.
        self._building = threading.Lock()
        self._claiming = threading.Lock()

    @property
    def path(self) -> Path:
        if self._path is None:
            with self._building:
                if self._path is None:
                    self._path = self._make()
        return self._path

    def _make(self) -> Path:
        path = Path(tempfile.mkdtemp(prefix="pinsync-stage-"))
        try:
            self._build(path)
        except OSError as exc:
            shutil.rmtree(path, ignore_errors=True)
            raise PinsyncError(
                f"cannot prepare the stage ({self._name(exc.filename, path)}{exc.strerror}); "
                "no file was changed"
            ) from None
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
        return path

    def _build(self, path: Path) -> None:
        dirs = {PurePosixPath(".")}
        for rel in self.writable:
            dirs.update(rel.parents)
        for d in sorted(dirs, key=lambda p: len(p.parts)):
            real, staged = self.root / d, path / d
            staged.mkdir(parents=True, exist_ok=True)
            if not real.is_dir():
                continue
            for entry in os.scandir(real):
                rel = d / entry.name if d.parts else PurePosixPath(entry.name)
                if rel in dirs:
                    continue
                if rel in self.writable and entry.is_dir():
                    raise PinsyncError(
                        f"{rel}: a directory where a lock file belongs; no file was changed"
                    )
                if rel in self.on_demand:
                    self._unlinked.add(rel)
                    continue
                # A lock that may be written is a link too, until something claims it
                # (see claim): one leaf changed in a thousand locks copies one file.
                os.symlink(entry.path, staged / entry.name)

    def _name(self, filename: object, path: Path) -> str:
        """`filename` as a path in the repository, or nothing: no other path is quoted."""
        for base in (self.root, path):
            if isinstance(filename, str) and filename.startswith(f"{base}{os.sep}"):
                return f"{PurePosixPath(filename[len(str(base)) + 1 :])}: "
        return ""

    def read(self, rel: PurePosixPath) -> str | None:
        if rel in self._known and rel not in self._claimed:
            return self._known[rel]
        # Unbuilt, the stage holds exactly the repository's files (copies or links);
        # a directory where a lock belongs is what building it reports.
        base = self._path
        if (base is None and not (self.root / rel).is_dir()) or rel in self._unlinked:
            base = self.root  # (an unlinked file of the stage is the repository's)
        path = (base or self.path) / rel
        if not path.exists():
            return None
        with open(path, encoding="utf-8", newline="") as fh:
            return fh.read()

    def claim(self, *rels: PurePosixPath) -> Path:
        """The stage's path, where each of `rels` is a file of the stage's own.

        Whatever writes a file of the stage (a compile, its output; a probe) claims it
        first. Until then a lock is a link to the repository's file, and a write
        would pass through the link into the repository. A lock to be written becomes
        a copy; a scratch path (not a lock) loses its link, as in write_scratch.
        """
        base = self.path
        with self._claiming:
            for rel in rels:
                # (Only these lie in directories of the stage's own, not linked ones.)
                if rel not in self.writable and not self._scratch(rel):
                    raise PinsyncError(f"internal: {rel} was not staged for writing")
                self._claimed.add(rel)
                staged = base / rel
                if rel in self._unlinked:
                    self._unlinked.discard(rel)
                    if rel in self.writable and (self.root / rel).exists():
                        shutil.copyfile(self.root / rel, staged)
                    continue
                if not staged.is_symlink():
                    continue
                os.unlink(staged)
                if rel in self.writable:
                    # Bytes only: a commit takes the mode from the repository's file.
                    shutil.copyfile(self.root / rel, staged)
        return base

    def need(self, *rels: PurePosixPath) -> None:
        """Have each of `rels` in the stage (as the repository's file) for a compile
        that reads it; a file no one needs is never linked."""
        base = self.path
        with self._claiming:
            for rel in rels:
                if rel in self._unlinked:
                    self._unlinked.discard(rel)
                    os.symlink(self.root / rel, base / rel)

    def need_all(self) -> None:
        """Every file in the stage: for a tool that reads a whole directory."""
        base = self.path  # built first: what is unlinked is known once it is
        with self._claiming:
            for rel in sorted(self._unlinked):
                os.symlink(self.root / rel, base / rel)
            self._unlinked.clear()

    def _scratch(self, rel: PurePosixPath) -> bool:
        """Whether `rel` lies in a directory the stage made itself, beside the locks."""
        return any(rel.parent == w.parent or rel.parent in w.parents for w in self.writable)

    def write(self, rel: PurePosixPath, text: str) -> None:
        if rel not in self.writable:
            raise PinsyncError(f"internal: {rel} was not staged for writing")
        with open(self.claim(rel) / rel, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)

    def put_back(self, rel: PurePosixPath, text: str | None) -> None:
        """Leave `rel` as it was before a compile wrote it: `text`, or absent for None."""
        if text is None:
            self._claimed.add(rel)
            self._unlinked.discard(rel)
            (self.path / rel).unlink(missing_ok=True)
        else:
            self.write(rel, text)

    def write_scratch(self, rel: PurePosixPath, text: str) -> None:
        """A file that lives only in the stage (a group's joint source): never committed.

        Its directory must be one the stage made itself, so that the write cannot pass
        through a link into the repository.
        """
        if rel in self.writable or not self._scratch(rel):
            raise PinsyncError(f"internal: {rel} is not a scratch path of this stage")
        path = self.path / rel
        self._claimed.add(rel)
        self._unlinked.discard(rel)
        if os.path.lexists(path):
            os.unlink(path)  # a link to the repository's file of that name, not the file
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with open(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)

    def changes(self) -> tuple[Change, ...]:
        if self._path is None:
            return ()  # never built: nothing was written
        out = []
        for rel in sorted(self.writable):
            staged = self.path / rel
            if not staged.exists() or staged.is_symlink():
                continue
            new = staged.read_bytes()
            real = self.root / rel
            old = real.read_bytes() if real.exists() else None
            if old != new:
                out.append(Change(rel, old, new))
        return tuple(out)

    def close(self) -> None:
        if self._path is not None:
            # Ctrl-C must not cut the removal short and leave half a stage in TMPDIR;
            # it is raised once the stage is gone.
            with _deferred_interrupts(KeyboardInterrupt):
                shutil.rmtree(self._path, ignore_errors=True)

    def __enter__(self) -> Stage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def _deferred_interrupts(
    then: type[BaseException] = InterruptedAfterCommit,
) -> Iterator[None]:
    """Hold Ctrl-C (and SIGTERM) until the block is over, so a commit is never cut in
    half; one that came meanwhile is raised after it as `then`."""
    pending: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        pending.append(signum)

    try:
        previous = {
            s: signal.signal(s, hold) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        }
    except ValueError:  # not the main thread: signals cannot be handled here anyway
        yield
        return
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if pending:
            raise then


def commit(root: Path, changes: Iterable[Change]) -> None:
    """Write every change or none: temp files first, then renames that cannot be interrupted.

    A full disk, a read-only directory or file: one line, and every file as it was.
    """
    try:
        _commit(root, tuple(changes))
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        raise PinsyncError(f"cannot write{where} ({exc.strerror}); no file was changed") from None


def _new_file_mode() -> int:
    # mkstemp makes 0600 files; a new lock gets what the user's umask gives any file,
    # so that an image installing as another user can read it.
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _commit(root: Path, changes: tuple[Change, ...]) -> None:
    temps: list[tuple[Path, Path, Change]] = []
    try:
        for change in changes:
            target = root / change.path
            if target.is_symlink():
                # Written through to the file it names, which must be in the repository:
                # replacing the link itself would silently fork the two.
                if not resolves_inside(root, target):
                    raise PinsyncError(
                        f"{change.path}: a symlink out of the repository root; not written"
                    )
                target = Path(os.path.realpath(target))
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(
                prefix=f".{target.name}.", suffix=".pinsync-tmp", dir=target.parent
            )
            tmp = Path(tmp_name)
            temps.append((tmp, target, change))
            with os.fdopen(fd, "wb") as fh:
                fh.write(change.new)
                fh.flush()
                os.fsync(fh.fileno())
            if target.exists():
                shutil.copymode(target, tmp)
            else:
                os.chmod(tmp, _new_file_mode())
        with _deferred_interrupts():
            done: list[tuple[Path, Change]] = []
            try:
                for tmp, target, change in temps:
                    os.replace(tmp, target)
                    done.append((target, change))
            except OSError:
                for target, change in reversed(done):
                    if change.old is None:
                        target.unlink(missing_ok=True)
                    else:
                        target.write_bytes(change.old)
                raise
    finally:
        for leftover, _, _ in temps:
            leftover.unlink(missing_ok=True)


@contextlib.contextmanager
def one_run_at_a_time(root: Path, timeout: float = 600) -> Iterator[None]:
    """One pinsync run per repository at a time.

    The lock file lives in the repository's `.git` directory where there is one, so
    that two runs with different TMPDIRs still take turns (and nothing of the work
    tree changes); elsewhere, in the temporary directory.
    """
    from filelock import FileLock, Timeout  # only writers need it; check imports this module

    git = root / ".git"
    if git.is_dir():
        where = git / "pinsync.lock"
    else:
        key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
        where = Path(tempfile.gettempdir()) / f"pinsync-{key}.lock"
    lock = FileLock(where)
    try:
        try:
            lock.acquire(timeout=0)
        except Timeout:
            print(f"waiting for another pinsync run on {root} ...", flush=True)
            lock.acquire(timeout=timeout)
    except Timeout:
        raise PinsyncError(f"another pinsync run still holds {lock.lock_file}") from None
    except OSError as exc:
        # A read-only checkout or a full disk: nothing could be written anyway.
        raise PinsyncError(
            f"cannot take the run lock {where} ({exc.strerror}); no file was changed"
        ) from None
    try:
        yield
    finally:
        lock.release()
