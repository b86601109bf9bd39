"""The `[tool.pinsync]` table of the target repository's `pyproject.toml`."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal, get_args

from packaging.utils import NormalizedName, canonicalize_name

from .errors import ConfigError

Severity = Literal["warning", "error"]

DEFAULT_DOCKERFILES = ("**/Dockerfile", "**/Dockerfile.*", "**/*.Dockerfile", "**/*Dockerfile")


@dataclass(frozen=True)
class OutputConfig:
    """Per-output settings: `[tool.pinsync.outputs."requirements/all.txt"]`."""

    inputs: tuple[PurePosixPath, ...] | None = None
    compile_args: tuple[str, ...] | None = None  # () means "no options", not "inherit"
    python: str | None = None
    # Packages the team deletes from the lock after compiling (Open edX's `sed`).
    omit: frozenset[NormalizedName] = frozenset()


@dataclass(frozen=True)
class Config:
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    python: str | None = None
    compile_args: tuple[str, ...] | None = None
    outputs: Mapping[PurePosixPath, OutputConfig] | None = None
    dockerfiles: tuple[str, ...] = DEFAULT_DOCKERFILES
    pin_sites: tuple[str, ...] = ()
    # Layered locks (an .in that -r's another .in) are separate resolutions, which
    # pip-compile lets disagree; a team that wants them to agree opts in here.
    layers_disagree: Severity | None = None
    custom_compile_command: str | None = None
    jobs: int | None = None
    compile_timeout: float = 1800.0  # seconds one compile may take before it is stopped
    # The `[tool.pip-tools]` table, which pip-compile reads itself; kept so that a
    # change to it makes every lock stale.
    pip_tools: Mapping[str, Any] | None = None
    # Commands that behave like `pip install` (warehouse's `pip-install` script).
    pip_wrappers: tuple[str, ...] = ()
    # Kinds of pin site not to read (discovery.SiteKind): "tox", "ci", "pre-commit", ...
    skip_sites: tuple[str, ...] = ()
    # (glob, directory): a pin site in a matching file belongs to that service's locks.
    site_scopes: tuple[tuple[str, PurePosixPath], ...] = ()
    # Dockerfile -> its build context, both relative to the root; beats compose files.
    docker_contexts: Mapping[PurePosixPath, PurePosixPath] = field(default_factory=dict)
    # Groups of locks to resolve jointly, beyond the ones found (`align = false`: None,
    # no grouping at all).
    align: tuple[tuple[PurePosixPath, ...], ...] | None = ()
    # Environment variables holding index URLs with credentials (PIP_INDEX_URL in CI):
    # their credentials are used, never written; see indexes.py.
    index_credentials_env: tuple[str, ...] = ()
    network_timeout: float = 15.0  # seconds per request to an index, before a retry
    # A mirror of the public index (same files, another URL) that compiles go through;
    # locks come out as if made against the public index.
    pypi_mirror: str | None = None
    # Whose pip-tools, pip and uv compile: pinsync's own, or the versions the
    # repository's locks pin ("repository"; see toolchains.py).
    tools: str = "pinsync"


_KEYS = {
    "include",
    "exclude",
    "python",
    "compile-args",
    "outputs",
    "dockerfiles",
    "pin-sites",
    "layers-disagree",
    "custom-compile-command",
    "jobs",
    "docker-contexts",
    "pip-wrappers",
    "skip-sites",
    "site-scopes",
    "compile-timeout",
    "align",
    "index-credentials-env",
    "network-timeout",
    "pypi-mirror",
    "tools",
}
_OUTPUT_KEYS = {"inputs", "compile-args", "python", "omit"}


def load_config(root: Path) -> Config:
    path = root / "pyproject.toml"
    if not path.is_file():
        return Config()
    from . import toml  # a parser's import, paid only where there is a pyproject.toml

    try:
        data = toml.loads(path.read_text(encoding="utf-8"))
    except toml.TOMLDecodeError as exc:
        raise ConfigError(f"pyproject.toml: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"pyproject.toml: not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise ConfigError(f"pyproject.toml: cannot read it ({exc.strerror})") from None
    tool = data.get("tool", {})
    return parse_config(tool.get("pinsync"), tool.get("pip-tools"))


def parse_config(table: object, pip_tools: object = None) -> Config:
    pip_tools_table = pip_tools if isinstance(pip_tools, dict) else None
    if table is None:
        return Config(pip_tools=pip_tools_table)
    if not isinstance(table, dict):
        raise ConfigError("[tool.pinsync] must be a table")
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise ConfigError(
            f"[tool.pinsync]: unknown key {unknown[0]!r} (known: {', '.join(sorted(_KEYS))})"
        )
    outputs: dict[PurePosixPath, OutputConfig] = {}
    for out, spec in _table(table, "outputs").items():
        where = f"[tool.pinsync.outputs.{out!r}]"
        if not isinstance(spec, dict):
            raise ConfigError(f"{where} must be a table")
        bad = sorted(set(spec) - _OUTPUT_KEYS)
        if bad:
            raise ConfigError(
                f"{where}: unknown key {bad[0]!r} (known: {', '.join(sorted(_OUTPUT_KEYS))})"
            )
        inputs = _strings(spec, "inputs", where)
        outputs[PurePosixPath(out)] = OutputConfig(
            inputs=tuple(PurePosixPath(i) for i in inputs) if inputs is not None else None,
            compile_args=_strings(spec, "compile-args", where),
            python=_python(spec, where),
            omit=frozenset(canonicalize_name(n) for n in _strings(spec, "omit", where) or ()),
        )
    tools = table.get("tools", "pinsync")
    if tools not in ("pinsync", "repository"):
        raise ConfigError('[tool.pinsync] tools must be "pinsync" or "repository"')
    layers = table.get("layers-disagree", "off")
    if layers not in ("off", "warning", "error"):
        raise ConfigError('[tool.pinsync] layers-disagree must be "off", "warning" or "error"')
    jobs = table.get("jobs")
    if jobs is not None and (not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1):
        raise ConfigError("[tool.pinsync] jobs must be a positive integer")
    command = table.get("custom-compile-command")
    if command is not None and not isinstance(command, str):
        raise ConfigError("[tool.pinsync] custom-compile-command must be a string")
    contexts = _table(table, "docker-contexts")
    if not all(isinstance(v, str) for v in contexts.values()):
        raise ConfigError("[tool.pinsync] docker-contexts must map Dockerfile paths to directories")
    timeout = table.get("compile-timeout", 1800)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ConfigError("[tool.pinsync] compile-timeout must be a positive number of seconds")
    network_timeout = table.get("network-timeout", 15)
    if (
        isinstance(network_timeout, bool)
        or not isinstance(network_timeout, (int, float))
        or network_timeout <= 0
    ):
        raise ConfigError("[tool.pinsync] network-timeout must be a positive number of seconds")
    mirror = table.get("pypi-mirror")
    if mirror is not None and (
        not isinstance(mirror, str) or not mirror.startswith(("http://", "https://"))
    ):
        raise ConfigError("[tool.pinsync] pypi-mirror must be an http(s) URL of a simple index")
    if isinstance(mirror, str) and "@" in mirror.split("//", 1)[1].split("/", 1)[0]:
        raise ConfigError(
            "[tool.pinsync] pypi-mirror must carry no credentials; name the variable that "
            "holds them in index-credentials-env"
        )
    scopes = _table(table, "site-scopes")
    if not all(isinstance(v, str) for v in scopes.values()):
        raise ConfigError("[tool.pinsync] site-scopes must map file globs to directories")
    return Config(
        align=_align(table.get("align", [])),
        index_credentials_env=_one_or_more(table, "index-credentials-env"),
        network_timeout=float(network_timeout),
        pypi_mirror=mirror,
        compile_timeout=float(timeout),
        site_scopes=tuple((k, PurePosixPath(posixpath.normpath(v))) for k, v in scopes.items()),
        docker_contexts={
            PurePosixPath(posixpath.normpath(k)): PurePosixPath(posixpath.normpath(v))
            for k, v in contexts.items()
        },
        include=_strings(table, "include", "[tool.pinsync]") or (),
        exclude=_strings(table, "exclude", "[tool.pinsync]") or (),
        python=_python(table, "[tool.pinsync]"),
        compile_args=_strings(table, "compile-args", "[tool.pinsync]"),
        outputs=outputs,
        dockerfiles=_default(_strings(table, "dockerfiles", "[tool.pinsync]"), DEFAULT_DOCKERFILES),
        pin_sites=_strings(table, "pin-sites", "[tool.pinsync]") or (),
        layers_disagree=None if layers == "off" else layers,
        tools=tools,
        custom_compile_command=command,
        jobs=jobs,
        pip_tools=pip_tools_table,
        pip_wrappers=_strings(table, "pip-wrappers", "[tool.pinsync]") or (),
        skip_sites=_skip_sites(table),
    )


def _one_or_more(table: dict[str, Any], key: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if isinstance(value, str):
        return (value,)
    return _strings(table, key, "[tool.pinsync]") or ()


def _align(value: object) -> tuple[tuple[PurePosixPath, ...], ...] | None:
    if value is False:
        return None
    if not isinstance(value, list) or not all(
        isinstance(g, list) and all(isinstance(p, str) for p in g) for g in value
    ):
        raise ConfigError(
            "[tool.pinsync] align must be false or a list of lists of lock paths, "
            'e.g. [["requirements/dev.txt", "requirements/common.txt"]]'
        )
    return tuple(tuple(PurePosixPath(posixpath.normpath(p)) for p in group) for group in value)


def _skip_sites(table: dict[str, Any]) -> tuple[str, ...]:
    kinds = _strings(table, "skip-sites", "[tool.pinsync]") or ()
    if kinds:
        from .discovery import SiteKind

        known = get_args(SiteKind)
        unknown = sorted(set(kinds) - set(known))
        if unknown:
            raise ConfigError(
                f"[tool.pinsync] skip-sites: unknown kind {unknown[0]!r} (known: {', '.join(known)})"
            )
    return kinds


def _default(value: tuple[str, ...] | None, default: tuple[str, ...]) -> tuple[str, ...]:
    # An explicit empty list turns the feature off; only a missing key means the default.
    return default if value is None else value


def _table(table: dict[str, Any], key: str) -> dict[str, Any]:
    value = table.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"[tool.pinsync] {key} must be a table")
    return value


def _strings(table: dict[str, Any], key: str, where: str) -> tuple[str, ...] | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} {key} must be a list of strings")
    return tuple(value)


def _python(table: dict[str, Any], where: str) -> str | None:
    value = table.get("python")
    if value is None:
        return None
    parts = str(value).split(".")
    if not isinstance(value, str) or len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ConfigError(f'{where} python must be a "X.Y" string, got {value!r}')
    return value
