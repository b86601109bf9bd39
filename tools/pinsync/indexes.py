"""Package indexes: where credentials come from, and what to say when an index fails.

The repository says which indexes resolve (`[tool.pip-tools]`, `.in` option lines,
`compile-args`), without credentials. Credentials come from the environment: the
user's netrc, or URLs with credentials in variables the repository names
(`index-credentials-env`), which pinsync hands to pip and uv as a private netrc
file. That way no credential is ever on a command line, in a header or in a lock.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

from .discovery import join, leaves_root, resolves_inside
from .errors import ConfigError, GraphError
from .toolchain import NETWORK_TIMEOUT

if TYPE_CHECKING:
    import ssl

# urllib.request, ssl, netrc and subprocess are imported where an index is asked or
# a netrc file written: every command imports this module, few of them need those.


_INDEX_OPTIONS = ("--index-url", "-i", "--extra-index-url")


@dataclass(frozen=True)
class Credential:
    host: str
    login: str
    password: str
    source: str  # where it came from, for messages: "$PIP_INDEX_URL"


def masked(url: str) -> str:
    """`url` with any user and password replaced: safe to print."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"****@{host}"))


def _without_userinfo(parts: SplitResult) -> str:
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=host))


def credentials_from_env(
    names: Sequence[str], environ: Mapping[str, str]
) -> tuple[Credential, ...]:
    """The credentials in the URLs of the variables `names` that are set.

    A variable that is set but holds no credentials is an error: the repository said
    credentials come from it, and a silent anonymous run would fail far from here.
    """
    found = []
    for name in names:
        value = environ.get(name, "").strip()
        if not value:
            continue
        # pip reads PIP_EXTRA_INDEX_URL as a space-separated list.
        for url in value.split():
            parts = urlsplit(url)
            if not parts.hostname or parts.username is None:
                raise ConfigError(
                    f"${name} holds no credentials (expected an index URL with a user and "
                    f"token in it, got {masked(url)})"
                )
            found.append(
                Credential(parts.hostname, parts.username, parts.password or "", f"${name}")
            )
    return tuple(found)


def _user_netrc(environ: Mapping[str, str]) -> Path | None:
    path = Path(environ["NETRC"]) if environ.get("NETRC") else Path.home() / ".netrc"
    return path if path.is_file() else None


@contextlib.contextmanager
def netrc_for(
    credentials: Sequence[Credential], environ: Mapping[str, str]
) -> Iterator[Path | None]:
    """A private netrc file that holds `credentials` after the user's own entries (the
    last entry for a host wins), removed afterwards; None when there is nothing to add."""
    if not credentials:
        yield None
        return
    import tempfile

    with tempfile.TemporaryDirectory(prefix="pinsync-auth-") as tmp:
        path = Path(tmp) / "netrc"
        user = _user_netrc(environ)
        text = user.read_text(encoding="utf-8", errors="replace") + "\n" if user else ""
        for cred in credentials:
            text += f"machine {cred.host} login {cred.login} password {cred.password}\n"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with open(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        yield path


def index_urls(
    args: Iterable[str],
    pip_tools: Mapping[str, object] | None,
    option_lines: Iterable[tuple[str, str | None]],
) -> tuple[str, ...]:
    """The index URLs a compile uses: its options, `[tool.pip-tools]`, `.in` lines."""
    found: list[str] = []
    table: dict[str, object] = dict(pip_tools or {})
    section = table.get("compile")  # [tool.pip-tools.compile]
    if isinstance(section, dict):
        table.update(section)
    for key in ("index-url", "index_url", "extra-index-url", "extra_index_url"):
        value = table.get(key)
        values = value if isinstance(value, list) else [value]
        found.extend(v for v in values if isinstance(v, str))
    words = list(args)
    for i, word in enumerate(words):
        flag, eq, value = word.partition("=")
        if flag in _INDEX_OPTIONS:
            if eq:
                found.append(value)
            elif i + 1 < len(words):
                found.append(words[i + 1])
    found.extend(v for name, v in option_lines if name in _INDEX_OPTIONS and v)
    return tuple(dict.fromkeys(u for u in found if u.startswith(("http://", "https://"))))


def diagnose(
    urls: Sequence[str], netrc_path: Path | None, timeout: float = NETWORK_TIMEOUT
) -> str | None:
    """What is wrong with the first index that fails a plain request, or None.

    pip reports a refused password or an unreachable index only as "no version of it
    is available"; asking the index directly tells the user what to fix instead.
    """
    for url in urls:
        problem = _probe(url, netrc_path, timeout)
        if problem is not None:
            return f"the index {masked(url)} {problem}"
    return None


def _probe(url: str, netrc_path: Path | None, timeout: float) -> str | None:
    import base64
    import socket
    import ssl
    import urllib.error
    import urllib.request

    parts = urlsplit(url)
    request = urllib.request.Request(_without_userinfo(parts), method="GET")
    auth = _auth_for(parts, netrc_path)
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        context = _tls_context(os.environ) if parts.scheme == "https" else None
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            response.read(1)
        return None
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            how = "were refused" if auth is not None else "are missing"
            return (
                f"answered {exc.code} {exc.reason}: its credentials {how} (set them in "
                "~/.netrc, a keyring, or the variable that index-credentials-env names)"
            )
        if exc.code == 404:
            return None  # a flat index or a server without a root page: not a verdict
        return f"answered {exc.code} {exc.reason}"
    except TimeoutError:
        return f"did not answer within {timeout:.0f} s"
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, (TimeoutError, socket.timeout)):
            return f"did not answer within {timeout:.0f} s"
        if isinstance(reason, ssl.SSLError):
            return _tls_problem(reason)
        text = getattr(reason, "strerror", None) or str(reason)
        return f"is unreachable ({text})"
    except ssl.SSLError as exc:
        return _tls_problem(exc)
    except OSError as exc:
        return f"is unreachable ({exc.strerror or exc})"


def _tls_context(environ: Mapping[str, str]) -> ssl.SSLContext:
    """The trust pip's requests session ends up with: REQUESTS_CA_BUNDLE or
    CURL_CA_BUNDLE win over PIP_CERT (requests merges them in last), else the
    system's, which SSL_CERT_FILE and SSL_CERT_DIR move."""
    import ssl

    names = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PIP_CERT")
    bundle = next((environ[n] for n in names if environ.get(n)), None)
    context = ssl.create_default_context()
    if bundle:
        context.load_verify_locations(cafile=bundle)
    client = environ.get("PIP_CLIENT_CERT")
    if client:
        context.load_cert_chain(client)
    return context


def _tls_problem(exc: ssl.SSLError) -> str:
    import ssl

    if isinstance(exc, ssl.SSLCertVerificationError):
        why = exc.verify_message or exc.reason or "certificate verify failed"
        return (
            f"failed TLS verification ({why}; if it uses a company certificate authority, "
            "point SSL_CERT_FILE at its bundle)"
        )
    return f"failed the TLS handshake ({exc.reason or exc})"


def _auth_for(parts: SplitResult, netrc_path: Path | None) -> tuple[str, str] | None:
    if parts.username is not None:
        return None  # a masked or literal userinfo is never used to authenticate
    return _netrc_auth(parts, netrc_path) or _keyring_auth(parts, os.environ)


def _keyring_auth(parts: SplitResult, environ: Mapping[str, str]) -> tuple[str, str] | None:
    """What pip's subprocess keyring provider would send: `keyring get` for the index
    URL, then for its host (pip 26's lookup order, without a user name)."""
    import json
    import shutil
    import subprocess

    providers = (environ.get("PIP_KEYRING_PROVIDER"), environ.get("UV_KEYRING_PROVIDER"))
    cli = shutil.which("keyring", path=environ.get("PATH"))
    if "subprocess" not in providers or cli is None:
        return None
    for service in (_without_userinfo(parts), parts.netloc):
        try:
            found = subprocess.run(
                [cli, "--mode=creds", "--output=json", "get", service],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=30,
                check=False,
                env={**environ, "PYTHONIOENCODING": "utf-8"},
            )
            if found.returncode == 0:
                data = json.loads(found.stdout)
                return str(data["username"]), str(data["password"])
        except (OSError, subprocess.TimeoutExpired, ValueError, KeyError, TypeError):
            return None
    return None


def _netrc_auth(parts: SplitResult, netrc_path: Path | None) -> tuple[str, str] | None:
    import netrc

    path = netrc_path or _user_netrc(os.environ)
    if path is None or not parts.hostname:
        return None
    try:
        entry = netrc.netrc(str(path)).authenticators(parts.hostname)
    except (OSError, netrc.NetrcParseError):
        return None
    if entry is None:
        return None
    login, _, password = entry
    return login, password or ""


# --- the indexes a lock names ---------------------------------------------------------

# The body lines pip-compile writes from the indexes it ran with, and the variable
# that hands each to pip for one compile: pip writes them into the body exactly as
# from a pip.conf, and, unlike options on the command line, never into the header.
LOCK_INDEX_VARIABLES = {
    "--index-url": "PIP_INDEX_URL",
    "--extra-index-url": "PIP_EXTRA_INDEX_URL",
    "--find-links": "PIP_FIND_LINKS",
    "--trusted-host": "PIP_TRUSTED_HOST",
}


@dataclass(frozen=True)
class LockIndexes:
    """Index lines of a committed lock that nothing in the repository writes: the
    indexes of the pip configuration its team compiled with (a shared pip.conf).

    They are the lock's declaration: each compile of that lock uses them again, so a
    relocked lock keeps them byte for byte and its private packages keep resolving.
    """

    lines: tuple[tuple[str, str], ...] = ()  # (option, value), in the lock's order

    def environment(self) -> dict[str, str]:
        env: dict[str, str] = {}
        for name, value in self.lines:
            var = LOCK_INDEX_VARIABLES[name]
            if var == "PIP_INDEX_URL":
                env.setdefault(var, value)  # pip writes one; the first one wins
            else:
                # pip reads these variables as whitespace-separated lists.
                env[var] = f"{env[var]} {value}" if var in env else value
        return env

    def urls(self) -> tuple[str, ...]:
        """The index URLs to ask directly when a compile fails (see `diagnose`)."""
        return tuple(
            v
            for n, v in self.lines
            if n in ("--index-url", "--extra-index-url") and v.startswith(("http://", "https://"))
        )

    @staticmethod
    def union(many: Iterable[LockIndexes]) -> LockIndexes:
        """The lines of all of `many` (a group's joint resolution reads every lock's)."""
        return LockIndexes(tuple(dict.fromkeys(line for one in many for line in one.lines)))


IndexLine = tuple[str, "str | None", int]  # option, value, line number


def refuse_passwords(lock: PurePosixPath, lines: Iterable[IndexLine]) -> None:
    """A lock that names an index with a password in its URL is refused, masked.

    A user alone (`https://token@host`) is fine: pip and uv find its password in
    netrc or a keyring. A password in a committed file is leaked already, and pinsync
    uses none from a repository's text.
    """
    for name, value, line in lines:
        if name in LOCK_INDEX_VARIABLES and value and urlsplit(value).password is not None:
            raise ConfigError(
                f"{lock}:{line}: {name} {masked(value)} carries a password; name the "
                "index without it and put the credentials in ~/.netrc, a keyring, or "
                "the variable index-credentials-env names"
            )


def lock_indexes(
    lock: PurePosixPath,
    lines: Iterable[IndexLine],
    explained: Callable[[str, str], bool],
    root: Path,
    run_dir: PurePosixPath,
) -> LockIndexes:
    """The index lines of `lock` that its compile must be given, since nothing that
    `explained` knows about (the repository's own index settings) writes them.

    A local path or file: URL among them must lie inside `root` (a relative one is
    relative to `run_dir`, where the compile runs, as pip reads it): the repository
    is untrusted input, and a lock line is not read outside it. Such a line is an
    error, never silently dropped: dropping it would change the lock and lose what
    only that index has.
    """
    lines = tuple(lines)
    refuse_passwords(lock, lines)
    carried: list[tuple[str, str]] = []
    for name, value, line in lines:
        if name not in LOCK_INDEX_VARIABLES or not value or explained(name, value):
            continue
        if name != "--trusted-host" and not _local_inside(value, root, run_dir):
            raise GraphError(
                f"{lock}:{line}: {name} {masked(value)}: outside the repository root; "
                "pinsync reads nothing there (name an index URL, or a directory inside "
                "the repository, in the lock or in [tool.pip-tools])"
            )
        carried.append((name, value))
    return LockIndexes(tuple(dict.fromkeys(carried)))


def refuse_sources_outside(
    root: Path,
    path: PurePosixPath,
    options: Iterable[tuple[str, str | None, int]],
    compiled: bool = False,
) -> None:
    """A source's own `--find-links ../wheels` is read by pip relative to the source's
    directory: outside the root, it would bring what lies there into a lock.

    `compiled`: `path` is a lock (read by another with `-c`/`-r`), whose absolute
    `--find-links` pip wrote where the lock was compiled, in another checkout (a
    colleague's, CI's): the repository's own directory of that name, moved. Whether
    pip may read it is decided when a compile is about to (refuse_other_checkouts).
    """
    for name, value, line in options:
        if name == "--trusted-host" or name not in LOCK_INDEX_VARIABLES or not value:
            continue
        if compiled and _moved_checkout(name, value, root):
            continue
        if not _local_inside(value, root, path.parent):
            raise GraphError(
                f"{path}:{line}: {name} {masked(value)}: outside the repository root; "
                "pinsync reads nothing there"
            )


def refuse_other_checkouts(
    root: Path, path: PurePosixPath, options: Iterable[tuple[str, str | None, int]]
) -> None:
    """Before pip reads the lock at `path` (as a `-c`/`-r` of a compile): an absolute
    `--find-links` of another checkout that exists on this machine (a second work
    tree) would be read there. One that does not exist, pip skips."""
    for name, value, line in options:
        if not value or not _moved_checkout(name, value, root):
            continue
        if os.path.lexists(value):
            raise GraphError(
                f"{path}:{line}: {name} {masked(value)}: another checkout's directory, "
                f"which pinsync does not read; relock {path} first, or run `lock --force`"
            )


def _moved_checkout(name: str, value: str, root: Path) -> bool:
    """An absolute `--find-links` that pip wrote in another checkout: outside this
    root, and ending in a directory that this repository has."""
    if name != "--find-links" or not value.startswith("/") or _local_inside(value, root, PurePosixPath(".")):
        return False
    parts = PurePosixPath(value).parts[1:]
    # The shortest ending that is a directory of the repository: `wheels`, then
    # `vendor/wheels`, and so on.
    return any(
        not leaves_root(PurePosixPath(*parts[i:])) and (root / PurePosixPath(*parts[i:])).is_dir()
        for i in range(len(parts) - 1, 0, -1)
    )


def _local_inside(value: str, root: Path, run_dir: PurePosixPath) -> bool:
    """Whether `value` is a remote URL, or a local path or file: URL inside `root`."""
    if "://" in value:
        parts = urlsplit(value)
        if parts.scheme != "file":
            return True  # on the network, not on this disk
        if parts.netloc not in ("", "localhost"):
            return False  # a file on another machine's share: still read from here
        full = Path(unquote(parts.path))
    elif value.startswith("~"):
        return False  # pip expands it to a home directory
    elif PurePosixPath(value).is_absolute():
        full = Path(value)
    else:
        rel = join(run_dir, value)
        if leaves_root(rel):
            return False
        full = root / rel
    return resolves_inside(root, full)
