"""What every compile of a run shares: this interpreter's version, the pip-tools,
pip and uv versions it compiles with (ours, or the ones a repository pins of its
own), and its network settings (a private netrc, the timeout, a mirror).

Light on purpose: `check` reads the versions to vouch for a stamp, and a run that
compiles nothing must not pay for the compiler's imports.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from .errors import InterpreterNotFound

CURRENT = f"{sys.version_info.major}.{sys.version_info.minor}"


@cache
def _dist_version(project: str) -> str | None:
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
    found = _dist_version("pip_tools")
    if found is None:
        raise InterpreterNotFound(
            "pip-tools is not installed beside pinsync; install it (pip install pip-tools) "
            "or run pinsync through nox"
        )
    return found


def toolchain(tool: str) -> tuple[str, str | None]:
    """What, besides the inputs, decides a lock's bytes: (compiler version, pip version)."""
    if tool == "uv":
        from .compiler import find_uv, uv_version  # a uv lock: its compile is near

        if _UV and _UV[-1] not in _FAILED_TOOLS:
            find_uv()  # whether it can be had decides what compiles: settle it first
        if _UV and _UV[-1] not in _FAILED_TOOLS:
            return f"uv {_UV[-1]}", None
        return f"uv {_dist_version('uv') or uv_version()}", None
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
    ours = pip_tools is None or (pip_tools, pip or _dist_version("pip")) == (
        _dist_version("pip_tools"),
        _dist_version("pip"),
    )
    if not ours:
        assert pip_tools is not None
        _TOOLS.append((pip_tools, pip))
    own_uv = uv is not None and uv != _dist_version("uv")
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
    return pip_tools_version(), _dist_version("pip")


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
