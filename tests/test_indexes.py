"""Private indexes: a real pypiserver with basic auth, credentials from the environment.

The server runs on 127.0.0.1 at a free port, serving the test wheelhouse, for each
test that needs it. The repository names the index without credentials; the tests
hand them over the ways CI systems and people do, and check that they work and that
the password reaches no file and no output.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import shutil
import socket
import ssl
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
from packaging.utils import canonicalize_name

from conftest import Repo
from pinsync.indexes import index_urls, masked
from pinsync.lockfile import strip_mirror, strip_stamp
from pinsync.toolchain import find_uv, sealed_env

PASSWORD = "s3cret-t0ken-XYZ"
ASK_FOR_CREDENTIALS = (
    " (set them in ~/.netrc, a keyring, or the variable that index-credentials-env names)"
)
TRUST_ITS_CA = "; if it uses a company certificate authority, point SSL_CERT_FILE at its bundle)"
MakeRepo = Callable[[Mapping[str, str]], Repo]


@dataclass(frozen=True)
class PrivateIndex:
    url: str  # without credentials, as the repository names it
    port: int

    def with_credentials(self, password: str = PASSWORD) -> str:
        return self.url.replace("http://", f"http://ci:{password}@")


def write_netrc(path: Path) -> Path:
    """A netrc at `path` with the test index's credentials, private as pip wants it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"machine 127.0.0.1 login ci password {PASSWORD}\n")
    path.chmod(0o600)
    return path


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


@contextlib.contextmanager
def pypiserver(wheels: Path, tmp_path: Path) -> Iterator[tuple[PrivateIndex, int]]:
    """pypiserver with HTTP basic auth (user `ci`) on every request, serving `wheels`;
    yields the index and the server's pid."""
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
            str(wheels),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        index = PrivateIndex(f"http://127.0.0.1:{port}/simple/", port)
        wait_until_serving(index.url)
        yield index, server.pid
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture
def private_index(tmp_path: Path, early_wheels: Path) -> Iterator[PrivateIndex]:
    with pypiserver(early_wheels, tmp_path) as (index, _):
        yield index


def keyring_on_path(home: Path, index: PrivateIndex) -> dict[str, str]:
    """A `keyring` command that knows the index's password, as `keyring set` would
    leave it, and the environment that tells pip and uv to ask it."""
    bin_dir = home / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "keyring"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        "args = sys.argv[1:]\n"
        "words = [a for a in args if not a.startswith('--')]\n"
        f"if words[:1] != ['get'] or '127.0.0.1:{index.port}' not in words[1]:\n"
        "    sys.exit(1)\n"
        f"if '--mode=creds' in args:\n"
        f"    print(json.dumps({{'username': 'ci', 'password': {PASSWORD!r}}}))\n"
        f"elif words[2:] == ['ci']:\n"
        f"    print({PASSWORD!r})\n"
        "else:\n"
        "    sys.exit(1)\n"
    )
    script.chmod(0o755)
    return {
        "HOME": str(home),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PIP_KEYRING_PROVIDER": "subprocess",
    }


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
    pytest.param(
        "",
        lambda index, home: keyring_on_path(home / "keyring-home", index),
        id="keyring",
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
    write_netrc(home / ".netrc")
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


def uv_repo_behind(
    make_repo: MakeRepo, index: PrivateIndex, pinsync_table: str, user: str = ""
) -> Repo:
    """A uv-written lock whose source names the private index (uv reads no
    [tool.pip-tools]), made by the user with uv and their ~/.netrc. `user` goes into
    the URL: uv asks a keyring only for a user it knows."""
    url = index.url.replace("http://", f"http://{user}")
    repo = make_repo(
        {
            "pyproject.toml": f"[tool.pinsync]\n{pinsync_table}",
            "requirements.in": f"--index-url {url}\nurllib3==1.26.18\n",
        }
    )
    (repo.path / "wheels").rename(repo.path.parent / "unused-wheels")
    netrc = write_netrc(repo.path.parent / "user.netrc")
    subprocess.run(
        [find_uv(), "pip", "compile", "--quiet", "requirements.in", "-o", "requirements.txt"],
        cwd=repo.path,
        env={**sealed_env(os.environ, None, "uv"), "NETRC": str(netrc)},
        check=True,
        capture_output=True,
    )
    netrc.unlink()
    return repo


UV_SOURCES = [
    *(pytest.param(*source.values, "", id=source.id) for source in SOURCES[:-1]),
    pytest.param(*SOURCES[-1].values, "ci@", id="keyring-with-the-user-in-the-url"),
]


@pytest.mark.parametrize(("table", "environment", "user"), UV_SOURCES)
def test_a_uv_lock_through_a_private_index(
    make_repo: MakeRepo,
    private_index: PrivateIndex,
    tmp_path: Path,
    table: str,
    environment: Callable[[PrivateIndex, Path], dict[str, str]],
    user: str,
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".netrc").write_text(f"machine 127.0.0.1 login ci password {PASSWORD}\n")
    (home / ".netrc").chmod(0o600)
    env = {"HOME": str(tmp_path), **environment(private_index, home)}
    repo = uv_repo_behind(make_repo, private_index, table, user)
    repo.write({"requirements.in": repo.read("requirements.in").replace("1.26.18", "2.0.3")})

    locked = repo.pinsync("lock", env=env)
    lock = repo.read("requirements.txt")
    assert "urllib3==2.0.3" in lock
    assert "#    uv pip compile requirements.in -o requirements.txt\n" in lock
    checked = repo.pinsync("check", "--full", env=env, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert PASSWORD not in everything_written(repo, locked.stdout, locked.stderr, checked.stdout)


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        pytest.param(
            "wrong-password",
            "answered 403 Forbidden: its credentials were refused" + ASK_FOR_CREDENTIALS,
            id="wrong-password",
        ),
        pytest.param("server-stopped", "is unreachable (Connection refused)", id="server-stopped"),
    ],
)
def test_a_failing_index_under_a_uv_lock_is_named_too(
    make_repo: MakeRepo, private_index: PrivateIndex, tmp_path: Path, failure: str, message: str
) -> None:
    """uv says "not found in the package registry" for both; the index is asked."""
    repo = uv_repo_behind(make_repo, private_index, 'index-credentials-env = "CI_INDEX"\n')
    env = {"HOME": str(tmp_path), "CI_INDEX": private_index.with_credentials("wrong")}
    index_url = private_index.url
    if failure == "server-stopped":
        index_url = f"http://127.0.0.1:{free_port()}/simple/"
        env["CI_INDEX"] = index_url.replace("http://", f"http://ci:{PASSWORD}@")
    text = f"--index-url {index_url}\nurllib3==2.0.3\n"
    repo.write({"requirements.in": text})
    before = repo.snapshot()
    proc = repo.pinsync("lock", "--quiet", env=env, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr == f"pinsync: error: requirements.txt: the index {index_url} {message}\n"
    assert repo.snapshot() == before
    assert PASSWORD not in proc.stderr


# (what goes wrong, the one line that says so after "the index URL ")
FAILURES = [
    pytest.param(
        "wrong-password",
        "answered 403 Forbidden: its credentials were refused" + ASK_FOR_CREDENTIALS,
        id="wrong-password",
    ),
    pytest.param(
        "no-credentials",
        "answered 401 Unauthorized: its credentials are missing" + ASK_FOR_CREDENTIALS,
        id="no-credentials",
    ),
    pytest.param("server-stopped", "is unreachable (Connection refused)", id="server-stopped"),
    pytest.param("never-answers", "did not answer within 1 s", id="server-never-answers"),
    pytest.param(
        "untrusted-certificate",
        "failed TLS verification (unable to get local issuer certificate" + TRUST_ITS_CA,
        id="untrusted-certificate",
    ),
]


@dataclass(frozen=True)
class TlsIndex:
    url: str
    ca: Path  # the company CA's certificate, which signed the server's


def company_ca_and_server_cert(directory: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate, server key): a private CA, as companies
    run, that signed a certificate for 127.0.0.1."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command to make certificates")
    ca_key, ca, key, csr, cert = (
        directory / n for n in ("ca.key", "ca.pem", "srv.key", "srv.csr", "srv.pem")
    )
    ext = directory / "srv.ext"
    ext.write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n"
        "authorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n"
    )
    steps = [
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
         "-days", "2", "-subj", "/CN=pinsync test CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
         "-out", cert, "-days", "2", "-extfile", ext],
    ]  # fmt: skip
    for step in steps:
        subprocess.run([openssl, *map(str, step)], check=True, capture_output=True)
    return ca, cert, key


@pytest.fixture
def tls_index(tmp_path: Path, early_wheels: Path) -> Iterator[TlsIndex]:
    """A static PEP 503 index of the wheels over HTTPS, its certificate signed by a
    private CA that no trust store holds."""
    ca, cert, key = company_ca_and_server_cert(tmp_path)
    tree = tmp_path / "tls-tree"
    for wheel in early_wheels.glob("*.whl"):
        project = tree / "simple" / canonicalize_name(wheel.name.split("-")[0])
        project.mkdir(parents=True, exist_ok=True)
        shutil.copy(wheel, project)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(tree))
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield TlsIndex(f"https://127.0.0.1:{server.server_address[1]}/simple/", ca)
    finally:
        server.shutdown()
        server.server_close()


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
    request: pytest.FixtureRequest,
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
    stop = threading.Event()
    index_url = private_index.url
    if failure == "wrong-password":
        env["PIP_INDEX_URL"] = private_index.with_credentials("wrong")
    elif failure == "no-credentials":
        del env["PIP_INDEX_URL"]
    else:
        if failure == "untrusted-certificate":
            index_url = request.getfixturevalue("tls_index").url
        else:
            index_url = f"http://127.0.0.1:{free_port()}/simple/"
        if failure == "never-answers":
            port = int(index_url.split(":")[2].split("/")[0])
            threading.Thread(target=silent_server, args=(port, stop), daemon=True).start()
        repo.write(
            {"pyproject.toml": repo.read("pyproject.toml").replace(private_index.url, index_url)}
        )
    before = repo.snapshot()
    try:
        proc = repo.pinsync("lock", "--quiet", env=env, check=False)  # no progress lines
    finally:
        stop.set()
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr == f"pinsync: error: requirements.txt: the index {index_url} {message}\n"
    assert repo.snapshot() == before
    assert PASSWORD not in proc.stdout + proc.stderr and "wrong" not in proc.stderr


STOPPER_BACKEND = """\
import os, signal, socket, time

def get_requires_for_build_wheel(config_settings=None):
    return []

def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    # Stop the index, then wait until it refuses connections.
    os.kill(int(os.environ["STOP_INDEX_PID"]), signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", int(os.environ["STOP_INDEX_PORT"])), 1).close()
        except OSError:
            break
        time.sleep(0.1)
    info = os.path.join(metadata_directory, "stopper-1.0.dist-info")
    os.makedirs(info)
    with open(os.path.join(info, "METADATA"), "w") as fh:
        fh.write("Metadata-Version: 2.1\\nName: stopper\\nVersion: 1.0\\n")
    return "stopper-1.0.dist-info"

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    raise RuntimeError("a compile needs only the metadata")
"""


def add_stopper_sdist(wheels: Path) -> None:
    """stopper-1.0.tar.gz, whose in-tree build backend stops the index serving it
    while pip prepares its metadata: the server goes away in the middle of a run."""
    import io
    import tarfile

    files = {
        "stopper-1.0/pyproject.toml": "[build-system]\nrequires = []\n"
        'build-backend = "stopper_backend"\nbackend-path = ["."]\n',
        "stopper-1.0/stopper_backend.py": STOPPER_BACKEND,
        "stopper-1.0/PKG-INFO": "Metadata-Version: 2.1\nName: stopper\nVersion: 1.0\n",
    }
    with tarfile.open(wheels / "stopper-1.0.tar.gz", "w:gz") as tf:
        for member, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


def test_an_index_that_stops_in_the_middle_of_a_run_writes_nothing(
    make_repo: MakeRepo, early_wheels: Path, tmp_path: Path
) -> None:
    """a.txt compiles while the index is up; b.txt's compile stops it half-way."""
    served = tmp_path / "served"
    shutil.copytree(early_wheels, served)
    add_stopper_sdist(served)
    with pypiserver(served, tmp_path) as (index, pid):
        repo = make_repo(
            {
                "pyproject.toml": f'[tool.pip-tools]\nindex-url = "{index.url}"\n'
                '[tool.pinsync]\nindex-credentials-env = "PIP_INDEX_URL"\nnetwork-timeout = 2\n',
                "a.in": "urllib3==1.26.18\n",
                "b.in": "-c a.txt\nstopper==1.0\nrequests\n",
            }
        )
        (repo.path / "wheels").rename(repo.path.parent / "unused-wheels")
        before = repo.snapshot()
        env = {
            "HOME": str(tmp_path),
            "PIP_INDEX_URL": index.with_credentials(),
            "STOP_INDEX_PID": str(pid),
            "STOP_INDEX_PORT": str(index.port),
        }
        proc = repo.pinsync("lock", "--quiet", env=env, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr == (
        f"pinsync: error: b.txt: the index {index.url} is unreachable (Connection refused)\n"
    )
    assert repo.snapshot() == before  # a.txt compiled, and was still not written


@pytest.mark.parametrize("trust", ["PIP_CERT", "SSL_CERT_FILE"])
def test_an_index_behind_a_company_certificate_authority(
    make_repo: MakeRepo, tls_index: TlsIndex, tmp_path: Path, trust: str
) -> None:
    """The CA bundle is the machine's business: it is honoured and never written."""
    repo = make_repo(
        {
            "pyproject.toml": f'[tool.pip-tools]\nindex-url = "{tls_index.url}"\n',
            "requirements.in": "urllib3==1.26.18\n",
        }
    )
    env = {"HOME": str(tmp_path), trust: str(tls_index.ca)}
    if trust == "PIP_CERT":
        # requests lets these two win over pip's --cert, and machines set them.
        env["REQUESTS_CA_BUNDLE"] = env["CURL_CA_BUNDLE"] = ""
    locked = repo.pinsync("lock", env=env)
    assert "urllib3==1.26.18" in repo.read("requirements.txt")
    checked = repo.pinsync("check", "--full", env=env, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert str(tls_index.ca) not in everything_written(repo, locked.stdout, locked.stderr)


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
