"""Running pip-compile: the interpreter, the argv, a sealed environment, and its errors."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from .errors import CompileError, InterpreterNotFound
from .graph import Target

# The user's pip configuration must neither change a resolution nor leak into a
# lock: pip reads no config file at all when PIP_CONFIG_FILE is os.devnull.
_DROPPED_PREFIXES = ("PIP_", "PIP_TOOLS_")
_DROPPED = {"CUSTOM_COMPILE_COMMAND"}


def sealed_env(base: Mapping[str, str], custom_command: str | None) -> dict[str, str]:
    env = {
        k: v for k, v in base.items() if not k.startswith(_DROPPED_PREFIXES) and k not in _DROPPED
    }
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_NO_INPUT"] = "1"  # never wait for a password prompt
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    if custom_command:
        env["CUSTOM_COMPILE_COMMAND"] = custom_command
    return env


def compile_argv(
    python: str,
    target: Target,
    upgrade: bool = False,
    upgrade_packages: Sequence[str] = (),
) -> list[str]:
    argv = [python, "-m", "piptools", "compile", "--quiet", *target.args]
    if upgrade:
        argv.append("--upgrade")
    for spec in upgrade_packages:
        argv.append(f"--upgrade-package={spec}")
    argv.append(f"--output-file={target.output.as_posix()}")
    argv.extend(p.as_posix() for p in target.inputs)
    return argv


@dataclass(frozen=True)
class CompileRun:
    seconds: float


def run_compile(
    cwd: Path,
    target: Target,
    python: str,
    upgrade: bool = False,
    upgrade_packages: Sequence[str] = (),
) -> CompileRun:
    """Run pip-compile for `target` in `cwd`; raise CompileError with the reason on failure."""
    argv = compile_argv(python, target, upgrade, upgrade_packages)
    start = time.perf_counter()
    proc = subprocess.run(
        argv,
        cwd=cwd,
        env=sealed_env(os.environ, target.custom_command),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise CompileError(f"{target.output}: {explain_failure(proc.stderr or proc.stdout)}")
    return CompileRun(time.perf_counter() - start)


# Greedy up to the last "@" before the path: pip splits credentials there too.
_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][\w+.-]*://)[^/\s]*@")


def redact(text: str) -> str:
    """Hide the user:password or token part of every URL in `text`."""
    return _CREDENTIALS.sub(r"\g<scheme>****@", text)


def explain_failure(output: str) -> str:
    """Cut pip-compile's output to the one or two lines that say why it failed."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for ln in lines:
        marker = "Could not find a version that satisfies the requirement "
        if marker in ln:
            rest = ln.split(marker, 1)[1]
            req, _, versions = rest.partition(" (from versions: ")
            versions = versions.rstrip(")")
            if versions in ("", "none"):
                return redact(f"{req} is not on the index (no version of it is available)")
            newest = versions.split(", ")[-1]
            return redact(f"{req} is not on the index (newest: {newest})")
    if "The conflict is caused by:" in lines:
        start = lines.index("The conflict is caused by:") + 1
        causes = []
        for ln in lines[start:]:
            if ln.startswith(("To fix", "ERROR", "Additionally", "1.", "2.")):
                break
            causes.append(ln)
        return redact("conflicting requirements: " + "; ".join(causes))
    errors = [ln for ln in lines if ln.startswith(("ERROR:", "Error:", "error:"))]
    if errors:
        return redact(" / ".join(e.split(":", 1)[1].strip() for e in errors[:2]))
    tail = [ln for ln in lines if not ln.startswith(("File ", "Traceback", "^", "~"))]
    return redact(tail[-1] if tail else "pip-compile failed without saying why")


# --- interpreters -----------------------------------------------------------

CURRENT = f"{sys.version_info.major}.{sys.version_info.minor}"


@cache
def pip_tools_version() -> str:
    # importlib.metadata and the email parser it loads cost ~25 ms, a tenth of an
    # offline check; an installed wheel's dist-info directory name carries the version.
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.startswith("pip_tools-") and name.endswith(".dist-info"):
                return name[len("pip_tools-") : -len(".dist-info")]
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pip-tools")
    except PackageNotFoundError:
        raise InterpreterNotFound(
            "pip-tools is not installed beside pinsync; install it (pip install pip-tools) "
            "or run pinsync through nox"
        ) from None


@cache
def find_python(version: str) -> str:
    """An interpreter of `version` that can run pip-tools.

    The current one when it matches; else `pythonX.Y` from PATH, given a cached
    virtual environment with the same pip-tools as ours when it has none.
    """
    if version == CURRENT:
        pip_tools_version()
        return sys.executable
    exe = shutil.which(f"python{version}")
    probe = [exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"] if exe else None
    if probe is None or _output(probe) != version:
        raise InterpreterNotFound(
            f"Python {version} is needed (the lock's header or the config names it) but "
            f'python{version} is not installed here; install it, or set python = "{CURRENT}" '
            "in [tool.pinsync] to lock for this interpreter"
        )
    assert exe is not None
    if _output([exe, "-c", "import piptools"]) is not None:
        return exe
    tools = pip_tools_version()
    key = hashlib.sha256(f"{exe}\0{tools}".encode()).hexdigest()[:12]
    cache_root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    venv = cache_root / "pinsync" / f"py{version}-pip-tools{tools}-{key}"
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = str(bindir / ("python.exe" if os.name == "nt" else "python"))
    if not Path(python).exists() or _output([python, "-c", "import piptools"]) is None:
        for step in (
            [exe, "-m", "venv", str(venv)],
            [python, "-m", "pip", "install", "-q", f"pip-tools=={tools}"],
        ):
            proc = subprocess.run(step, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise InterpreterNotFound(
                    f"could not set up pip-tools {tools} for Python {version}: "
                    + explain_failure(proc.stderr)
                )
    return python


def _output(argv: list[str]) -> str | None:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None
