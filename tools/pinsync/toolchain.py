"""What every compile of a run shares: this interpreter's version, the pip-tools,
pip and uv versions it compiles with (ours, or the ones a repository pins of its
own) and the uv binary, its network settings (a private netrc, the timeout, a
mirror), and the sealed environment each compile runs in.

Light on purpose: `check` reads the versions to vouch for a stamp, and a run that
compiles nothing must not pay for the compiler's imports.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path

from .errors import InterpreterNotFound

CURRENT = f"{sys.version_info.major}.{sys.version_info.minor}"


@cache
def dist_version(project: str) -> str | None:
    """The installed version of `project` (a wheel name: `pip_tools`), or None."""
    # importlib.metadata and the email parser it loads cost ~25 ms, a tenth of an
    # offline check; an installed wheel's dist-info directory name carries the version.
    prefix = f"{project}-"
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.startswith(prefix) and name.endswith(".dist-info"):
                return name[len(prefix) : -len(".dist-info")]
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(project.replace("_", "-"))
    except PackageNotFoundError:
        return None


def pip_tools_version() -> str:
    found = dist_version("pip_tools")
    if found is None:
        raise InterpreterNotFound(
            "pip-tools is not installed beside pinsync; install it (pip install pip-tools) "
            "or run pinsync through nox"
        )
    return found


def toolchain(tool: str) -> tuple[str, str | None]:
    """What, besides the inputs, decides a lock's bytes: (compiler version, pip version)."""
    if tool == "uv":
        if _UV and _UV[-1] not in _FAILED_TOOLS:
            find_uv()  # whether it can be had decides what compiles: settle it first
        if _UV and _UV[-1] not in _FAILED_TOOLS:
            return f"uv {_UV[-1]}", None
        return f"uv {dist_version('uv') or uv_version()}", None
    return compile_tools()


# The (pip-tools, pip) versions compiles run with, where the repository pins its own
# (see toolchains.py); empty: ours. Notes on what could not be set up, for the user.
_TOOLS: list[tuple[str, str | None]] = []
_UV: list[str] = []
TOOL_NOTES: list[str] = []


@contextlib.contextmanager
def using_tools(
    pip_tools: str | None, pip: str | None = None, uv: str | None = None
) -> Iterator[None]:
    """Compiles started inside run with pip-tools `pip_tools` and pip `pip` (in a
    cached venv per Python and version pair), or with ours where `pip_tools` is None
    or is ours; uv locks with uv `uv` likewise."""
    ours = pip_tools is None or (pip_tools, pip or dist_version("pip")) == (
        dist_version("pip_tools"),
        dist_version("pip"),
    )
    if not ours:
        assert pip_tools is not None
        _TOOLS.append((pip_tools, pip))
    own_uv = uv is not None and uv != dist_version("uv")
    if own_uv:
        assert uv is not None
        _UV.append(uv)
    try:
        yield
    finally:
        if not ours:
            _TOOLS.pop()
        if own_uv:
            _UV.pop()


def compile_tools() -> tuple[str, str | None]:
    """The (pip-tools, pip) versions compiles use now."""
    if _TOOLS and _TOOLS[-1][0] not in _FAILED_TOOLS:
        return _TOOLS[-1]
    return pip_tools_version(), dist_version("pip")


# Versions whose venv could not be made here: compiles fall back to ours, once said.
_FAILED_TOOLS: set[str] = set()


# Bounds on what one index may cost a compile: pip's defaults (15 s, 5 retries per
# request) let an index that never answers hold a run for many minutes.
NETWORK_TIMEOUT = 15
NETWORK_RETRIES = 2

# The private netrc file of the run, while one is in use, and the network timeout
# (see `network`): settings of the whole run, not of one compile.
_NETRC: list[str] = []
_TIMEOUT: list[float] = [NETWORK_TIMEOUT]
_MIRROR: list[str | None] = [None]


@contextlib.contextmanager
def network(
    netrc_path: Path | None, timeout: float = NETWORK_TIMEOUT, mirror: str | None = None
) -> Iterator[None]:
    """Compiles started inside see `netrc_path` as their netrc (pip and uv read NETRC),
    give up on an index after `timeout` seconds per request, and use `mirror` where
    they would use the public index."""
    if netrc_path is not None:
        _NETRC.append(str(netrc_path))
    _TIMEOUT.append(timeout)
    _MIRROR.append(mirror)
    try:
        yield
    finally:
        _MIRROR.pop()
        _TIMEOUT.pop()
        if netrc_path is not None:
            _NETRC.remove(str(netrc_path))


def mirror() -> str | None:
    """The pypi-mirror compiles go through now, if any."""
    return _MIRROR[-1]


def netrc_path() -> Path | None:
    """The private netrc file compiles read now, if any."""
    return Path(_NETRC[-1]) if _NETRC else None


def network_timeout() -> float:
    """How long, in seconds, a compile waits for an index per request now."""
    return _TIMEOUT[-1]


def give_up_on(version: str) -> None:
    """Tools of `version` cannot be set up here: compiles fall back to ours."""
    _FAILED_TOOLS.add(version)


# --- the environment of every compile ---------------------------------------------

# The user's pip configuration must neither change a resolution nor leak into a
# lock: pip reads no config file at all when PIP_CONFIG_FILE is os.devnull. uv reads
# its own UV_* variables and user/system uv.toml files, sealed the same way.
_DROPPED_PREFIXES = ("PIP_", "PIP_TOOLS_", "UV_")
_DROPPED = {"CUSTOM_COMPILE_COMMAND"}
# Except the machine's trust and credential settings: which certificate authority
# and keyring to use decides whether a company index answers, never what resolves.
_KEPT = {
    "PIP_CERT",
    "PIP_CLIENT_CERT",
    "PIP_KEYRING_PROVIDER",
    "UV_KEYRING_PROVIDER",
    "UV_NATIVE_TLS",
}


def sealed_env(
    base: Mapping[str, str], custom_command: str | None, tool: str = "pip-compile"
) -> dict[str, str]:
    env = {
        k: v
        for k, v in base.items()
        if k in _KEPT or not (k.startswith(_DROPPED_PREFIXES) or k in _DROPPED)
    }
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_NO_INPUT"] = "1"  # never wait for a password prompt
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    # An index that never answers fails the compile in bounded time, not pip's minutes.
    env["PIP_TIMEOUT"] = env["UV_HTTP_TIMEOUT"] = f"{_TIMEOUT[-1]:g}"
    env["PIP_RETRIES"] = env["UV_HTTP_RETRIES"] = str(NETWORK_RETRIES)
    if _NETRC:
        env["NETRC"] = _NETRC[-1]  # credentials from index-credentials-env (see indexes)
    if _MIRROR[-1]:
        # The lowest-priority way to name an index: a repository's own index-url (in
        # [tool.pip-tools], an .in line or compile-args) still wins over the mirror.
        env["PIP_INDEX_URL"] = env["UV_DEFAULT_INDEX"] = _MIRROR[-1]
    if tool == "uv":
        # uv looks for uv.toml under $XDG_CONFIG_HOME/uv and $XDG_CONFIG_DIRS/uv (and
        # /etc/uv when those are unset); a project's own pyproject/uv.toml still counts.
        env["XDG_CONFIG_HOME"] = env["XDG_CONFIG_DIRS"] = os.devnull
        env["UV_NO_PROGRESS"] = "1"
        # uv reads neither of pip's variables; the user set them for "my index", so
        # they hold for uv locks too: its own keyring provider, and its CA bundle.
        if env.get("PIP_KEYRING_PROVIDER") == "subprocess":
            env.setdefault("UV_KEYRING_PROVIDER", "subprocess")
        if "PIP_CERT" in env:
            env.setdefault("SSL_CERT_FILE", env["PIP_CERT"])
        if custom_command:
            env["UV_CUSTOM_COMPILE_COMMAND"] = custom_command
    elif custom_command:
        env["CUSTOM_COMPILE_COMMAND"] = custom_command
    return env


# --- uv ---------------------------------------------------------------------------

def find_uv() -> str:
    """The uv binary: the repository's own uv where it pins one (and it can be had),
    else the one installed beside pinsync (tools.txt pins it), else PATH."""
    if _UV and _UV[-1] not in _FAILED_TOOLS:
        found = _repo_uv(_UV[-1])
        if found is not None:
            return found
    return _our_uv()


@cache
def _repo_uv(version: str) -> str | None:
    """uv `version` in a cached venv, installed sealed; None (and a note) where it
    cannot be had, so that the compile falls back to ours."""
    import shutil
    import subprocess

    from .failures import explain_failure

    cache_root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    venv = cache_root / "pinsync" / f"uv{version}"
    binary = venv / "bin" / "uv"
    probe = [str(binary), "--version"]
    if not (binary.exists() and (output_of(probe) or "").split()[1:2] == [version]):
        shutil.rmtree(venv, ignore_errors=True)
        for step in (
            [sys.executable, "-m", "venv", str(venv)],
            [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", f"uv=={version}"],
            probe,
        ):
            proc = subprocess.run(
                step, capture_output=True, text=True, check=False, env=sealed_env(os.environ, None)
            )
            if proc.returncode != 0:
                shutil.rmtree(venv, ignore_errors=True)
                _FAILED_TOOLS.add(version)
                TOOL_NOTES.append(
                    f"could not set up the repository's uv {version} "
                    f"({explain_failure(proc.stderr)}); falling back to pinsync's "
                    f"{dist_version('uv') or 'uv'}"
                )
                return None
    TOOL_NOTES.append(f"compiled with the repository's uv {version}")
    return str(binary)


@cache
def _our_uv() -> str:
    try:
        from uv import find_uv_bin

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        pass
    import shutil

    found = shutil.which("uv")
    if found is None:
        raise InterpreterNotFound(
            "this lock was written by uv, and uv is not installed beside pinsync; "
            "install it (pip install uv) or run pinsync through nox"
        )
    return found


@cache
def uv_version() -> str:
    if _UV and _UV[-1] not in _FAILED_TOOLS:
        return _UV[-1]
    out = output_of([find_uv(), "--version"]) or "uv unknown"
    return out.split()[1] if len(out.split()) > 1 else out


def output_of(argv: list[str]) -> str | None:
    """What `argv` prints, stripped; None where it fails or cannot run."""
    import subprocess

    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None
