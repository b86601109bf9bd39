"""Running pip-compile: the interpreter, the argv, a sealed environment, and its errors."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from .errors import CompileError, InterpreterNotFound
from .failures import explain_failure, redact
from .graph import Target
from .indexes import LockIndexes, diagnose
from .toolchain import (
    CURRENT,
    TOOL_NOTES,
    compile_tools,
    dist_version,
    find_uv,
    give_up_on,
    mirror,
    netrc_path,
    network_timeout,
    output_of,
    pip_tools_version,
    sealed_env,
)
from .workers import Stopped, TimedOut, prestart, run_warm
from .workers import stop as stop_warm


def compile_argv(
    python: str,
    target: Target,
    upgrade: bool = False,
    upgrade_packages: Sequence[str] = (),
) -> list[str]:
    """The argv of one compile; paths as the author wrote them when a header showed them."""
    if target.tool == "uv":
        argv = [find_uv(), "pip", "compile", "--quiet", *target.args]
    else:
        argv = [python, "-m", "piptools", "compile", "--quiet", *target.args]
    if upgrade:
        argv.append("--upgrade")
    for spec in upgrade_packages:
        argv.append(f"--upgrade-package={spec}")
    inv = target.invocation
    output = target.output.as_posix() if inv is None else inv.output
    if output is not None:
        argv.append(f"--output-file={output}")
    if inv is None:
        argv.extend(p.as_posix() for p in target.inputs)
    else:
        argv.extend(inv.sources)
    return argv


@dataclass(frozen=True)
class CompileRun:
    seconds: float


# Compiles running now, so that an interrupt can stop them (each runs in a session of
# its own: a terminal's Ctrl-C reaches pinsync, which then stops them itself).
_RUNNING: set[subprocess.Popen[str]] = set()
_RUNNING_LOCK = threading.Lock()
# A pathological input can keep a resolver busy for hours without a word.
DEFAULT_TIMEOUT = 1800.0


def stop_compiles() -> None:
    """Stop every running compile and what it started (builds of sdists): SIGINT, so
    that pip removes its temporary directories as on Ctrl-C, then SIGTERM for what is
    still running after a grace period (workers.GRACE)."""
    from .workers import GRACE

    with _RUNNING_LOCK:
        running = list(_RUNNING)
    for proc in running:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGINT)
    stop_warm()
    deadline = time.monotonic() + GRACE
    for proc in running:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)


def warm_up(target: Target, python: str) -> None:
    """Have the compile server of `python` start now, if `target` will use one: it
    starts while the caller stages the compile, rather than after."""
    if target.tool == "pip-compile":
        prestart(python, sealed_env(os.environ, None))


def warm_up_early(targets: Iterable[Target]) -> None:
    """Start the compile server of this interpreter as a run that may compile begins,
    on a spare CPU: by the time the run has found a stale lock (after checking the
    freshness of hundreds), the server has imported pip-tools, and the compile is
    warm. Only for this interpreter and our own tools, which cost nothing to find
    (another Python may need a venv made); a run that compiles nothing kills it."""
    if _cpus() < 2 or compile_tools() != (
        pip_tools_version(),
        dist_version("pip"),
    ):
        return
    if any(t.tool == "pip-compile" and t.python == CURRENT for t in targets):
        prestart(sys.executable, sealed_env(os.environ, None))


def _cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))  # what this process may use (a CI quota)
    return os.cpu_count() or 1


def run_compile(
    root: Path,
    target: Target,
    python: str,
    upgrade: bool = False,
    upgrade_packages: Sequence[str] = (),
    timeout: float = DEFAULT_TIMEOUT,
    indexes: Sequence[str] = (),
    lock_indexes: LockIndexes | None = None,
) -> CompileRun:
    """Run the compile of `target` under `root` (a stage); raise CompileError on failure.

    `indexes` are the index URLs the compile uses, asked directly when it fails for
    want of a version, to tell a refused password or a dead index from a missing release.
    `lock_indexes` are the ones its committed lock names of its own (see indexes.py):
    handed to pip as its PIP_* variables, which the sealed environment otherwise drops.
    """
    argv = compile_argv(python, target, upgrade, upgrade_packages)
    cwd = root / (target.invocation.cwd if target.invocation else ".")
    env = sealed_env(os.environ, target.custom_command, target.tool)
    if lock_indexes is not None and target.tool == "pip-compile":
        env.update(lock_indexes.environment())
        indexes = (*indexes, *(u for u in lock_indexes.urls() if u not in indexes))
    if target.tool == "uv":
        env["UV_PYTHON"] = python  # not echoed in the header, unlike --python
    start = time.perf_counter()
    try:
        with private_tmp(env) as private:
            returncode, stdout, stderr = _run(python, argv, cwd, private, timeout, target.tool)
    except TimedOut:
        raise CompileError(
            f"{target.output}: the compile ran longer than {timeout:.0f} s and was stopped "
            "(raise compile-timeout in [tool.pinsync] if it needs longer)"
        ) from None
    except Stopped:
        raise CompileError(f"{target.output}: the compile was killed before it finished") from None
    if returncode != 0:
        why = explain_failure(stderr or stdout, target.python)
        urls = (*indexes, *(m for m in [mirror()] if m and not indexes))
        if urls:
            # pip says "no version" and uv "not found in the package registry" for a
            # refused password, a dead index or an untrusted certificate alike.
            why = diagnose(urls, netrc_path(), network_timeout()) or why
        raise CompileError(f"{target.output}: {why}")
    if target.tool == "uv" and target.invocation is not None and target.invocation.output is None:
        # Without -o uv prints the lock; the author redirected it into the file.
        with open(root / target.output, "w", encoding="utf-8", newline="") as fh:
            fh.write(stdout)
    return CompileRun(time.perf_counter() - start)


@contextlib.contextmanager
def private_tmp(env: Mapping[str, str]) -> Iterator[dict[str, str]]:
    """`env` with a TMPDIR of its own, removed once the compile has ended.

    pip removes its temporaries (pip-resolve-*, pip-build-env-*) as it unwinds, but
    not when an interrupt lands before it has registered them, nor when it is killed
    after the grace period: what it leaves is then inside this directory, which goes.
    """
    import tempfile

    path = tempfile.mkdtemp(prefix="pinsync-compile-")
    try:
        yield {**env, "TMPDIR": path}
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _run(
    python: str,
    argv: Sequence[str],
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,
    tool: str,
) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of one compile: warm where it can be (workers.py)."""
    if tool == "pip-compile":
        # The server holds what is the same for every compile of the run; each compile
        # gets its own environment on top (its CUSTOM_COMPILE_COMMAND, say).
        server_env = sealed_env(os.environ, None)
        finished = run_warm(python, argv[3:], cwd, server_env, env, timeout)
        if finished is not None:
            return finished.returncode, finished.stdout, finished.stderr
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    with _RUNNING_LOCK:
        _RUNNING.add(proc)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise TimedOut from None
    finally:
        with _RUNNING_LOCK:
            _RUNNING.discard(proc)
    if proc.returncode < 0:
        raise Stopped  # killed by a signal: whatever it printed is not why
    return proc.returncode, stdout, stderr


def _candidates(version: str) -> list[str]:
    """Interpreters that may be Python `version`: PATH, pyenv's versions, uv's managed ones."""
    found: list[str] = []
    exe = shutil.which(f"python{version}")
    if exe:
        found.append(exe)
    pyenv_root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    versions = Path(pyenv_root) / "versions"
    managed = Path(
        os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share", "uv", "python"
    )
    for base, pattern in ((versions, f"{version}.*"), (managed, f"cpython-{version}.*")):
        try:
            dirs = sorted(base.glob(pattern), reverse=True)
        except OSError:
            continue
        for d in dirs:
            for name in (f"bin/python{version}", "bin/python3"):
                if (d / name).is_file():
                    found.append(str(d / name))
                    break
    return found


def find_python(version: str) -> str:
    """The interpreter that compiles for Python `version` with the tools of the run."""
    return _find_python(version, compile_tools())


@cache
def _find_python(version: str, toolset: tuple[str, str | None]) -> str:
    """An interpreter of `version` that can run pip-tools.

    The current one when it matches; else one found on PATH, in pyenv's versions or
    among uv's managed Pythons, given a cached virtual environment with the same
    pip-tools and pip as ours when it has none.
    """
    tools, pip = toolset
    ours = toolset == (pip_tools_version(), dist_version("pip"))
    if version == CURRENT and ours:
        return sys.executable
    if version == CURRENT:
        exe: str | None = sys.executable
    else:
        probe = "import sys; print('%d.%d' % sys.version_info[:2])"
        exe = next((c for c in _candidates(version) if output_of([c, "-c", probe]) == version), None)
    if exe is None:
        raise InterpreterNotFound(
            f"Python {version} is needed (the lock's header or the config names it) but it is "
            f"not installed here (looked on PATH, in pyenv and in uv's Pythons); install it, "
            f'or set python = "{CURRENT}" in [tool.pinsync] to lock for this interpreter'
        )
    key = hashlib.sha256(f"{exe}\0{tools}\0{pip}".encode()).hexdigest()[:12]
    cache_root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    venv = cache_root / "pinsync" / f"py{version}-pip-tools{tools}-{key}"
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = str(bindir / ("python.exe" if os.name == "nt" else "python"))
    used = f"compiled with the repository's pip-tools {tools}" + (f" and pip {pip}" if pip else "")
    if not ours:
        # Said once a run: which tools wrote the locks is part of their provenance.
        TOOL_NOTES.append(used)
    if Path(python).exists() and output_of([python, "-m", "piptools", "--help"]) is not None:
        return python
    shutil.rmtree(venv, ignore_errors=True)
    if ours and _link_our_tools(exe, venv, python):
        return python
    shutil.rmtree(venv, ignore_errors=True)
    # The same pip-tools and pip as the suite's own lock installed here, sealed like a
    # compile, so that the machine's pip configuration has no say.
    pins = [f"pip-tools=={tools}", *([f"pip=={pip}"] if pip else [])]
    for step in (
        [exe, "-m", "venv", str(venv)],
        [python, "-m", "pip", "install", "-q", *pins],
        [python, "-m", "compileall", "-q", str(venv)],
        # Installed is not working: pip-tools against a pip it does not support (an
        # unpinned pip resolves to the newest) fails on import, not on install.
        [python, "-m", "piptools", "--help"],
    ):
        proc = subprocess.run(
            step, capture_output=True, text=True, check=False, env=sealed_env(os.environ, None)
        )
        if proc.returncode != 0:
            last = proc.stderr.strip().splitlines()[-1:] or ["(no output)"]
            why = redact(last[0]) if step[-1] == "--help" else explain_failure(proc.stderr)
            shutil.rmtree(venv, ignore_errors=True)
            if not ours:
                # The repository's own pip-tools cannot be had here (offline, or not
                # for this Python): compile with ours, and say so once.
                TOOL_NOTES.remove(used)  # it was not, after all
                give_up_on(tools)
                TOOL_NOTES.append(
                    f"could not set up the repository's pip-tools {tools} for Python "
                    f"{version} ({why}); falling back to pinsync's {pip_tools_version()}"
                )
                return find_python(version)
            raise InterpreterNotFound(
                f"could not set up pip-tools {tools} for Python {version}: {why}"
            )
    return python


def _link_our_tools(exe: str, venv: Path, python: str) -> bool:
    """A venv of `exe` that imports our own pip and pip-tools (both pure Python).

    The lock is then made by exactly the code the suite's lock installed here, with
    no download; it works where those packages support that Python (they need tomli
    below 3.11), which the import probe tells.
    """
    import sysconfig

    proc = subprocess.run(
        [exe, "-m", "venv", "--without-pip", str(venv)], capture_output=True, check=False
    )
    if proc.returncode != 0:
        return False
    site = output_of([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    if site is None:
        return False
    ours = {sysconfig.get_paths()["purelib"], *(p for p in sys.path if p.endswith("site-packages"))}
    Path(site, "_pinsync_tools.pth").write_text("".join(f"{p}\n" for p in sorted(ours)))
    probe = "import piptools.scripts.compile, pip; print(pip.__version__)"
    return output_of([python, "-c", probe]) == dist_version("pip")
