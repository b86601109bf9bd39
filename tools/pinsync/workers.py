"""Warm pip-compile: one interpreter per Python imports pip-tools once, then forks a
child for each compile.

Most of a cold `python -m piptools compile` is starting an interpreter and importing
pip and pip-tools. A fork server pays that once per run and Python: each compile is
a fresh child of the warmed-up interpreter, in a session of its own, with its own
working directory, environment and output files, so one compile that crashes or
hangs costs only its own output, and `stop` reaches it like any compile. The child
runs `python -m piptools` exactly (runpy), so the bytes are those of a plain run.

Used where the platform can watch a process it did not start (Linux's pidfd);
elsewhere, or when the interpreter cannot import pip-tools, compiles run as before.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# The server's own code: stdlib and pip-tools only, since it runs in whatever
# interpreter the lock is compiled for, where pinsync itself may not be importable.
_SERVER = r"""
import gc, importlib, json, os, runpy, signal, sys, traceback
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps finished children
import piptools
import piptools.scripts.compile  # the imports every compile would otherwise pay for
# What each compile would still do for itself, done once before the forks: the
# modules pip imports only while it runs, and pip's User-Agent, which it caches but
# builds by running `rustc --version` (tens of ms). Both depend only on this
# interpreter and the server's environment, which every compile shares.
for name in ("pip._internal.metadata.importlib", "pip._vendor.truststore",
             "pip._vendor.distro", "piptools.scripts.sync", "argparse"):
    try:
        importlib.import_module(name)
    except Exception:
        pass
try:
    from pip._internal.network.session import user_agent
    user_agent()
except Exception:
    pass
MAIN = os.path.join(os.path.dirname(piptools.__file__), "__main__.py")
# What was imported stays out of every child's garbage collections: they would walk
# (and so copy, page by page) the whole inherited heap; measured 20% of a compile.
gc.freeze()
channel = sys.stdout
channel.write("ready\n")
channel.flush()
for line in sys.stdin:
    req = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            # Ignored SIGCHLD is inherited: the compile's own subprocesses (a build's
            # `pip install` of its backend) would be reaped unseen and "succeed".
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.setsid()
            os.chdir(req["cwd"])
            os.environ.clear()
            os.environ.update(req["env"])
            import tempfile
            tempfile.tempdir = None  # the compile's own TMPDIR, not one cached before the fork
            for fd, path, flags in (
                (0, os.devnull, os.O_RDONLY),
                (1, req["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                (2, req["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
            ):
                new = os.open(path, flags, 0o600)
                os.dup2(new, fd)
                os.close(new)
            sys.argv = [MAIN, *req["argv"]]
            try:
                runpy.run_module("piptools", run_name="__main__", alter_sys=True)
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except BaseException:
                traceback.print_exc()
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
                with open(req["status"], "w") as fh:
                    fh.write(str(code))
            finally:
                os._exit(code)
    channel.write(json.dumps({"pid": pid}) + "\n")
    channel.flush()
"""


@dataclass(frozen=True)
class Finished:
    returncode: int
    stdout: str
    stderr: str


class Stopped(Exception):
    """The compile was killed (by `stop`, or by a crash that left no exit status)."""


class TimedOut(Exception):
    """The compile ran past its timeout and was killed."""


class ForkServer:
    def __init__(self, python: str, env: Mapping[str, str]) -> None:
        self.lock = threading.Lock()
        self.files = Path(tempfile.mkdtemp(prefix="pinsync-compiles-"))
        self.count = 0
        try:
            self.proc = subprocess.Popen(
                [python, "-c", _SERVER, "pinsync-piptools-server"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=dict(env),
                cwd="/",
                text=True,
                start_new_session=True,
            )
        except BaseException:
            shutil.rmtree(self.files, ignore_errors=True)
            raise
        self.python = python
        # Unknown until the first compile asks: the server imports pip-tools meanwhile
        # (a third of a second), while the run builds its stage (see prestart).
        self.ready: bool | None = None

    def _wait_ready(self) -> None:
        """Wait for the server's "ready" (under self.lock); OSError if it never comes."""
        assert self.proc.stdout is not None
        if self.ready is None:
            self.ready = self.proc.stdout.readline() == "ready\n"
            if not self.ready:
                self.close()
        if not self.ready:
            raise OSError(f"{self.python} cannot import pip-tools")

    def start(self, argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> tuple[int, Path]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        with self.lock:
            self._wait_ready()
            self.count += 1
            base = self.files / str(self.count)
            request = {
                "argv": list(argv),
                "cwd": str(cwd),
                "env": dict(env),
                "stdout": f"{base}.out",
                "stderr": f"{base}.err",
                "status": f"{base}.status",
            }
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            reply = self.proc.stdout.readline()
        if not reply:
            raise OSError("the compile server stopped")
        pid: int = json.loads(reply)["pid"]
        return pid, base

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()  # the server's loop ends at EOF
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        shutil.rmtree(self.files, ignore_errors=True)


_SERVERS: dict[tuple[str, tuple[tuple[str, str], ...]], ForkServer | None] = {}
_SERVERS_LOCK = threading.Lock()
_CHILDREN: set[int] = set()
_CHILDREN_LOCK = threading.Lock()


def available() -> bool:
    return (
        hasattr(os, "fork")
        and hasattr(os, "pidfd_open")
        and not os.environ.get("PINSYNC_COLD_COMPILES")
    )


def _server(python: str, env: Mapping[str, str]) -> ForkServer | None:
    key = (python, tuple(sorted(env.items())))
    with _SERVERS_LOCK:
        if key not in _SERVERS:
            if not _SERVERS:
                atexit.register(close_all)
            try:
                _SERVERS[key] = ForkServer(python, env)
            except OSError:
                _SERVERS[key] = None  # compiles for this Python run cold, as before
        return _SERVERS[key]


def prestart(python: str, env: Mapping[str, str]) -> None:
    """Start the server a compile is about to need, without waiting for it: it imports
    pip-tools in a process of its own while the caller builds the compile's stage."""
    if available():
        _server(python, env)


def run_warm(
    python: str,
    argv: Sequence[str],
    cwd: Path,
    server_env: Mapping[str, str],
    env: Mapping[str, str],
    timeout: float,
) -> Finished | None:
    """`python -m piptools ARGV` in a warm child; None where warm compiles are not to be
    had (the caller then runs it cold). Raises TimedOut after `timeout` seconds."""
    if not available():
        return None
    server = _server(python, server_env)
    if server is None:
        return None
    try:
        pid, base = server.start(argv, cwd, env)
    except OSError:
        return None
    with _CHILDREN_LOCK:
        _CHILDREN.add(pid)
    try:
        if not _wait(pid, timeout):
            _kill(pid, signal.SIGKILL)
            raise TimedOut
    finally:
        with _CHILDREN_LOCK:
            _CHILDREN.discard(pid)
    status = Path(f"{base}.status")
    try:
        code = int(status.read_text())
    except (OSError, ValueError):
        raise Stopped from None
    out = Path(f"{base}.out").read_text(errors="replace")
    err = Path(f"{base}.err").read_text(errors="replace")
    for suffix in (".out", ".err", ".status"):
        Path(f"{base}{suffix}").unlink(missing_ok=True)
    return Finished(code, out, err)


def _wait(pid: int, timeout: float) -> bool:
    """Whether process `pid` (not our child) ended within `timeout` seconds."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True  # already gone
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
        return bool(ready)
    finally:
        os.close(fd)


def _kill(pid: int, signum: int) -> None:
    # A child that has not reached setsid() yet has no group of its own.
    for kill in (os.killpg, os.kill):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            kill(pid, signum)


# How long a stopped compile has to clean up after itself before it is killed.
GRACE = 3.0


def stop() -> None:
    """Stop every warm compile running now (an interrupt).

    SIGINT first: pip unwinds as on Ctrl-C and removes its temporary directories
    (pip-build-tracker-*, pip-resolve-*), which SIGTERM would leave in TMPDIR. What
    has not ended within GRACE seconds is terminated.
    """
    with _CHILDREN_LOCK:
        running = list(_CHILDREN)
    for pid in running:
        _kill(pid, signal.SIGINT)
    deadline = time.monotonic() + GRACE
    for pid in running:
        if not _wait(pid, max(0.0, deadline - time.monotonic())):
            _kill(pid, signal.SIGTERM)


def close_all() -> None:
    """Stop the compile servers as pinsync exits (atexit). The run is over: a signal
    now would only cut the cleanup short, leaving a traceback and the servers' files
    in TMPDIR, so signals are ignored for the rest of the exit."""
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
    with _SERVERS_LOCK:
        servers = [s for s in _SERVERS.values() if s is not None]
        _SERVERS.clear()
    for server in servers:
        server.close()
