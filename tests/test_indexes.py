"""Private indexes: a real pypiserver with basic auth, credentials from the environment.

The server runs on 127.0.0.1 at a free port, serving the test wheelhouse, for each
test that needs it. The repository names the index without credentials; the tests
hand them over the ways CI systems and people do, and check that they work and that
the password reaches no file and no output.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from pathlib import PurePosixPath as P

import pytest

from conftest import Repo
from pinsync.compiler import sealed_env
from pinsync.indexes import index_urls, masked
from pinsync.lockfile import strip_mirror, strip_stamp

PASSWORD = "s3cret-t0ken-XYZ"
MakeRepo = Callable[[Mapping[str, str]], Repo]


@dataclass(frozen=True)
class PrivateIndex:
    url: str  # without credentials, as the repository names it
    port: int

    def with_credentials(self, password: str = PASSWORD) -> str:
        return self.url.replace("http://", f"http://ci:{password}@")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until_serving(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return  # 401: up, and asking for credentials
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"pypiserver did not start at {url}")


@pytest.fixture
def private_index(tmp_path: Path, early_wheels: Path) -> Iterator[PrivateIndex]:
    """pypiserver with HTTP basic auth (user `ci`) on every request, serving the wheels."""
    from passlib.apache import HtpasswdFile

    htpasswd = HtpasswdFile(str(tmp_path / "htpasswd"), new=True)
    htpasswd.set_password("ci", PASSWORD)
    htpasswd.save()
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable, "-m", "pypiserver", "run",
            "-i", "127.0.0.1", "-p", str(port),
            "-P", str(tmp_path / "htpasswd"), "-a", "download,list,update",
            str(early_wheels),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        index = PrivateIndex(f"http://127.0.0.1:{port}/simple/", port)
        wait_until_serving(index.url)
        yield index
    finally:
        server.terminate()
        server.wait(timeout=30)


def repo_behind(make_repo: MakeRepo, index: PrivateIndex, pinsync_table: str) -> Repo:
    """A repository whose only index is the private one, named without credentials."""
    repo = make_repo(
        {
            "pyproject.toml": f'[tool.pip-tools]\nindex-url = "{index.url}"\n'
            f"[tool.pinsync]\n{pinsync_table}",
            "requirements.in": "urllib3==1.26.18\n",
            "Dockerfile": "FROM python:3.11\nRUN pip install urllib3==1.26.18\n",
        }
    )
    (repo.path / "wheels").rename(repo.path.parent / "unused-wheels")  # the index or nothing
    return repo


def everything_written(repo: Repo, *outputs: str) -> str:
    files = "".join(p.read_text(errors="replace") for p in repo.path.rglob("*") if p.is_file())
    return files + "".join(outputs)


# (how the credentials arrive, [tool.pinsync] lines, environment for pinsync)
SOURCES = [
    pytest.param(
        'index-credentials-env = "PIP_INDEX_URL"\n',
        lambda index, home: {"PIP_INDEX_URL": index.with_credentials()},
        id="url-in-PIP_INDEX_URL",
    ),
    pytest.param(
        'index-credentials-env = ["CI_PRIVATE_INDEX", "UNSET_ONE"]\n',
        lambda index, home: {"CI_PRIVATE_INDEX": index.with_credentials()},
        id="url-in-a-variable-the-repository-names",
    ),
    pytest.param(
        "",
        lambda index, home: {"HOME": str(home)},
        id="netrc-in-home",
    ),
]


@pytest.mark.parametrize(("table", "environment"), SOURCES)
def test_lock_check_and_bump_through_a_private_index(
    make_repo: MakeRepo,
    private_index: PrivateIndex,
    tmp_path: Path,
    table: str,
    environment: Callable[[PrivateIndex, Path], dict[str, str]],
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    netrc = home / ".netrc"
    netrc.write_text(f"machine 127.0.0.1 login ci password {PASSWORD}\n")
    netrc.chmod(0o600)
    env = environment(private_index, home)
    if "HOME" not in env:
        env["HOME"] = str(tmp_path)  # no ~/.netrc: only the variable can authenticate
    repo = repo_behind(make_repo, private_index, table)

    locked = repo.pinsync("lock", env=env)
    assert "urllib3==1.26.18" in repo.read("requirements.txt")
    assert f"--index-url {private_index.url}\n" in repo.read("requirements.txt")
    checked = repo.pinsync("check", "--full", "--format", "json", env=env, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    dry = repo.pinsync("bump", "urllib3", "2.0.3", "--dry-run", env=env)
    bumped = repo.pinsync("bump", "urllib3", "2.0.3", env=env)
    assert "urllib3==2.0.3" in repo.read("requirements.txt")
    assert "urllib3==2.0.3" in repo.read("Dockerfile")
    written = everything_written(
        repo, *(p.stdout + p.stderr for p in (locked, checked, dry, bumped))
    )
    assert PASSWORD not in written


# (what goes wrong, the one line that says so)
FAILURES = [
    pytest.param(
        "wrong-password",
        "answered 403 Forbidden: its credentials were refused",
        id="wrong-password",
    ),
    pytest.param(
        "no-credentials",
        "answered 401 Unauthorized: its credentials are missing",
        id="no-credentials",
    ),
    pytest.param("server-stopped", "is unreachable (Connection refused)", id="server-stopped"),
    pytest.param("never-answers", "did not answer within 1 s", id="server-never-answers"),
]


def silent_server(port: int, stop: threading.Event) -> None:
    """Accept connections and never answer: a hung proxy."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(64)
        listener.settimeout(0.2)
        held = []
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue
        for conn in held:
            conn.close()


@pytest.mark.parametrize(("failure", "message"), FAILURES)
def test_a_failing_index_is_one_line_naming_it_and_nothing_is_written(
    make_repo: MakeRepo,
    private_index: PrivateIndex,
    tmp_path: Path,
    failure: str,
    message: str,
) -> None:
    repo = repo_behind(
        make_repo, private_index, 'index-credentials-env = "PIP_INDEX_URL"\nnetwork-timeout = 1\n'
    )
    env = {"HOME": str(tmp_path), "PIP_INDEX_URL": private_index.with_credentials()}
    repo.pinsync("lock", env=env)
    repo.write({"requirements.in": "urllib3==2.0.3\n"})  # the next lock must reach the index
    before = repo.snapshot()
    stop = threading.Event()
    index_url = private_index.url
    if failure == "wrong-password":
        env["PIP_INDEX_URL"] = private_index.with_credentials("wrong")
    elif failure == "no-credentials":
        del env["PIP_INDEX_URL"]
    else:
        port = free_port()
        index_url = f"http://127.0.0.1:{port}/simple/"
        text = repo.read("pyproject.toml").replace(private_index.url, index_url)
        repo.write({"pyproject.toml": text})
        before = repo.snapshot()
        if failure == "never-answers":
            threading.Thread(target=silent_server, args=(port, stop), daemon=True).start()
    try:
        proc = repo.pinsync("lock", "--quiet", env=env, check=False)  # no progress lines
    finally:
        stop.set()
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr == f"pinsync: error: requirements.txt: the index {index_url} {message}" + (
        " (set them in ~/.netrc, or in the variable that index-credentials-env names)\n"
        if "credentials" in message
        else "\n"
    )
    assert repo.snapshot() == before
    assert PASSWORD not in proc.stdout + proc.stderr and "wrong" not in proc.stderr


def test_a_named_variable_without_credentials_is_refused_masked(
    make_repo: MakeRepo, private_index: PrivateIndex
) -> None:
    repo = repo_behind(make_repo, private_index, 'index-credentials-env = "PIP_INDEX_URL"\n')
    proc = repo.pinsync(
        "check", "--offline", env={"PIP_INDEX_URL": "https://mirror.example/simple"}, check=False
    )
    assert proc.returncode == 2
    assert proc.stderr == (
        "pinsync: error: $PIP_INDEX_URL holds no credentials (expected an index URL with a "
        "user and token in it, got https://mirror.example/simple)\n"
    )


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pw@host.example/simple", "https://****@host.example/simple"),
        ("https://tok@host.example:8443/simple", "https://****@host.example:8443/simple"),
        ("https://host.example/simple", "https://host.example/simple"),
    ],
)
def test_masked(url: str, shown: str) -> None:
    assert masked(url) == shown


@pytest.mark.parametrize(
    ("args", "table", "lines", "expected"),
    [
        pytest.param(("--index-url=https://a/simple",), None, (), ("https://a/simple",), id="arg"),
        pytest.param(("-i", "https://a/s"), None, (), ("https://a/s",), id="short-arg"),
        pytest.param(
            (),
            {"index-url": "https://a/s", "extra-index-url": ["https://b/s"]},
            (("--extra-index-url", "https://c/s"),),
            ("https://a/s", "https://b/s", "https://c/s"),
            id="table-and-in-lines",
        ),
        pytest.param(
            (),
            {"compile": {"index-url": "https://a/s"}},
            (),
            ("https://a/s",),
            id="compile-section",
        ),
        pytest.param((), {"find-links": ["wheels"]}, (), (), id="find-links-is-no-index"),
    ],
)
def test_index_urls(
    args: tuple[str, ...],
    table: dict[str, object] | None,
    lines: tuple[tuple[str, str], ...],
    expected: tuple[str, ...],
) -> None:
    assert index_urls(args, table, lines) == expected


def test_the_machines_pip_settings_neither_authenticate_nor_leak(
    make_repo: MakeRepo, private_index: PrivateIndex, tmp_path: Path
) -> None:
    """PIP_INDEX_URL set but not named by the repository is the machine's, not the run's."""
    repo = repo_behind(make_repo, private_index, "")
    env = {"HOME": str(tmp_path), "PIP_INDEX_URL": private_index.with_credentials()}
    proc = repo.pinsync("lock", env=env, check=False)
    assert proc.returncode == 2
    assert "its credentials are missing" in proc.stderr
    report = repo.pinsync("check", "--format", "json", env=env, check=False)
    assert PASSWORD not in report.stdout + report.stderr
    assert json.loads(report.stdout)["ok"] is False
    assert os.environ.get("PIP_INDEX_URL") is None  # the autouse fixture cleared it


def test_a_mirror_of_the_public_index_leaves_no_trace_in_the_lock(
    make_repo: MakeRepo, private_index: PrivateIndex, tmp_path: Path
) -> None:
    """Locks made through `pypi-mirror` are the bytes a compile against the public
    index writes: pip-compile never writes the default index into a lock."""
    repo = make_repo(
        {
            "pyproject.toml": f'[tool.pinsync]\npypi-mirror = "{private_index.url}"\n'
            'index-credentials-env = "CI_MIRROR_URL"\n',
            "requirements.in": "requests\n",
        }
    )
    env = {"HOME": str(tmp_path), "CI_MIRROR_URL": private_index.with_credentials()}
    repo.pinsync("lock", env=env)
    lock = repo.read("requirements.txt")
    # What plain pip-compile writes when its index goes unmentioned, as PyPI does.
    subprocess.run(
        [sys.executable, "-m", "piptools", "compile", "--quiet", "--no-emit-index-url",
         "--output-file=expected.txt", "requirements.in"],
        cwd=repo.path,
        env={**sealed_env(os.environ, None), "PIP_INDEX_URL": private_index.with_credentials()},
        check=True,
        capture_output=True,
    )  # fmt: skip
    expected = repo.read("expected.txt").replace(" --no-emit-index-url", "")
    assert strip_stamp(lock) == expected.replace("expected.txt", "requirements.txt")
    assert "127.0.0.1" not in lock and "--index-url" not in lock
    checked = repo.pinsync("check", "--full", env=env, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


HEAD = "#\n#    pip-compile --output-file=a.txt a.in\n#\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            HEAD + "--index-url https://m.example/simple/\n\nsix==1.0\n",
            HEAD + "six==1.0\n",
            id="the-only-option-and-its-blank-line",
        ),
        pytest.param(
            HEAD + "--index-url https://m.example/simple\n--find-links wheels\n\nsix==1.0\n",
            HEAD + "--find-links wheels\n\nsix==1.0\n",
            id="other-options-keep-the-block",
        ),
        pytest.param(
            HEAD + "--index-url https://other.example/simple/\n\nsix==1.0\n",
            HEAD + "--index-url https://other.example/simple/\n\nsix==1.0\n",
            id="another-index-stays",
        ),
    ],
)
def test_strip_mirror(text: str, expected: str) -> None:
    assert strip_mirror(P("a.txt"), text, "https://m.example/simple/") == expected
