"""The pip-tools a repository pins for itself is the one its locks are compiled with.

The repository's index here is a real pypiserver on loopback, configured as the
repository's `pypi-mirror`; it serves the test packages and wheels of pip-tools and
its dependencies made from this environment's own installed files, one of them
labelled with another version. The code that runs is the real pip-tools either way;
the label tells which environment compiled the lock.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import hashlib
import io
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator, Mapping
from importlib import metadata
from pathlib import Path, PurePosixPath

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from conftest import PIP_TOOLS_TABLE, Repo
from pinsync.lockfile import parse_lockfile
from pinsync.toolchains import RepoTools, repo_tools
from test_indexes import free_port, wait_until_serving

MakeRepo = Callable[[Mapping[str, str]], Repo]
OURS = metadata.version("pip-tools")
RELABELLED = f"{OURS}.post1"


def wheel_of_installed(name: str, dest: Path, version: str | None = None) -> Path:
    """A wheel of the installed distribution `name`, its files as installed here (those
    its RECORD lists inside site-packages; scripts are made again by the installer)."""
    dist = metadata.distribution(name)
    old = dist.version
    new = version or old
    project = dist.metadata["Name"].replace("-", "_")
    info_old, info_new = f"{project}-{old}.dist-info", f"{project}-{new}.dist-info"
    records: list[tuple[str, bytes]] = []
    for file in dist.files or []:
        rel = file.as_posix()
        if rel.startswith("..") or "__pycache__" in rel or rel.endswith((".pyc", "RECORD")):
            continue
        data = Path(str(dist.locate_file(file))).read_bytes()
        if rel.split("/", 1)[0].lower() == info_old.lower():
            rel = info_new + rel[len(info_old) :]
            if rel.endswith("/METADATA"):
                data = data.replace(f"Version: {old}\n".encode(), f"Version: {new}\n".encode(), 1)
            if rel.endswith(("/INSTALLER", "/direct_url.json", "/REQUESTED")):
                continue
        records.append((rel, data))
    path = dest / f"{project}-{new}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        rows = io.StringIO()
        writer = csv.writer(rows)
        for rel, data in records:
            zf.writestr(rel, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            writer.writerow([rel, f"sha256={digest.decode()}", len(data)])
        writer.writerow([f"{info_new}/RECORD", "", ""])
        zf.writestr(f"{info_new}/RECORD", rows.getvalue())
    return path


def tool_wheels(dest: Path) -> None:
    """pip-tools (relabelled) and, recursively, what it needs here, as wheels."""
    todo, seen = ["pip-tools"], set()
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        wheel_of_installed(name, dest, RELABELLED if name == "pip-tools" else None)
        for text in metadata.requires(name) or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)


@contextlib.contextmanager
def open_index(packages: Path) -> Iterator[str]:
    """pypiserver on loopback serving `packages`, no authentication."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "pypiserver", "run", "-i", "127.0.0.1", "-p", str(port),
         "-P", ".", "-a", ".", str(packages)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/simple/"
        wait_until_serving(url)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def mirror_packages(tmp_path_factory: pytest.TempPathFactory, early_wheels: Path) -> Path:
    packages = tmp_path_factory.mktemp("mirror")
    for wheel in early_wheels.iterdir():
        shutil.copy(wheel, packages)
    tool_wheels(packages)
    return packages


@pytest.mark.parametrize(
    ("pinned", "note"),
    [
        (RELABELLED, f"compiled with the repository's pip-tools {RELABELLED}"),
        ("99.0", "could not set up the repository's pip-tools 99.0"),
    ],
    ids=["its-own-pip-tools", "not-to-be-had-falls-back-to-ours"],
)
def test_locks_are_compiled_with_the_pip_tools_the_repository_pins(
    make_repo: MakeRepo, mirror_packages: Path, tmp_path: Path, pinned: str, note: str
) -> None:
    with open_index(mirror_packages) as url:
        repo = make_repo(
            {
                "pyproject.toml": f'[tool.pinsync]\npypi-mirror = "{url}"\ntools = "repository"\n',
                "requirements/tools.in": f"pip-tools=={RELABELLED}\n",
                "requirements.in": "flask\n",
            }
        )
        first = repo.pinsync("lock")  # no lock pins pip-tools yet: ours compiles
        assert "repository's pip-tools" not in first.stderr
        before = repo.read("requirements.txt")
        tools = repo.read("requirements/tools.txt")
        assert f"pip-tools=={RELABELLED}" in tools
        repo.write({"requirements/tools.txt": tools.replace(RELABELLED, pinned)})
        proc = repo.pinsync("lock", "--force", "requirements.in")
        assert note in proc.stderr, proc.stderr
        # The same code, so the same bytes; only the stamp (it names the tools) moved.
        after = repo.read("requirements.txt")
        assert before.rsplit("# pinsync-stamp", 1)[0] == after.rsplit("# pinsync-stamp", 1)[0]
        assert (
            parse_lockfile(PurePosixPath("r"), before).stamp
            != parse_lockfile(PurePosixPath("r"), after).stamp
        ) is (pinned == RELABELLED)


@pytest.mark.parametrize(
    ("locks", "expected"),
    [
        ({}, None),
        ({"a.txt": "flask==2.0\n"}, None),
        (
            {
                "a.txt": "pip-tools==7.5.3\npip==25.0\n",
                "b.txt": "pip-tools==7.5.3\n",
                "c.txt": "pip-tools==7.6.0\n",
            },
            RepoTools("7.5.3", "25.0", PurePosixPath("a.txt")),
        ),
        (
            {"a.txt": "pip-tools==7.5.3\n", "b.txt": "pip-tools==7.6.0\npip==26.0\n"},
            RepoTools("7.6.0", "26.0", PurePosixPath("b.txt")),
        ),
        ({"a.txt": "uv==0.4.15\n"}, RepoTools(None, None, None, "0.4.15")),
    ],
    ids=["no-locks", "no-pin", "most-locks-win", "tie-newest-wins", "uv-alone"],
)
def test_repo_tools(locks: dict[str, str], expected: RepoTools | None) -> None:
    parsed = {PurePosixPath(p): parse_lockfile(PurePosixPath(p), t) for p, t in locks.items()}
    assert repo_tools(parsed) == expected


def test_a_uv_lock_is_compiled_with_the_uv_the_repository_pins(
    make_repo: MakeRepo, mirror_packages: Path
) -> None:
    """The repository pins a uv that cannot be had here: the note says so, and the
    compile falls back to pinsync's own uv, whose lock is the same."""
    from test_real_repos import uv_compile

    with open_index(mirror_packages) as url:
        repo = make_repo(
            {
                "pyproject.toml": PIP_TOOLS_TABLE
                + f'[tool.pinsync]\npypi-mirror = "{url}"\ntools = "repository"\n'
                '[tool.uv.pip]\nno-index = true\nfind-links = ["wheels"]\n',
                "requirements.in": "flask\n",
                "requirements/tools.in": "uv==0.0.99\n",
            }
        )
        # The repository's wheelhouse has that uv (labelled so), the mirror does not.
        wheel_of_installed("uv", repo.path / "wheels", "0.0.99")
        repo.pip_compile("-o", "requirements/tools.txt", "requirements/tools.in")
        uv_compile(repo, "-o", "requirements.txt", "requirements.in")
        before = repo.read("requirements.txt")
        proc = repo.pinsync("lock", "--force")
        assert "could not set up the repository's uv 0.0.99" in proc.stderr, proc.stderr
        assert repo.read("requirements.txt").rsplit("# pinsync-stamp", 1)[0] == before


def test_by_default_pinsync_compiles_with_its_own_pip_tools(
    make_repo: MakeRepo, mirror_packages: Path
) -> None:
    """A pinned pip-tools did not always write the locks beside it (measured on the
    corpora: a dev lock's pip-tools, a pip that pip-tools no longer runs on), so the
    repository's own is used only when asked for."""
    with open_index(mirror_packages) as url:
        repo = make_repo(
            {
                "pyproject.toml": f'[tool.pinsync]\npypi-mirror = "{url}"\n',
                "requirements/tools.in": f"pip-tools=={RELABELLED}\n",
                "requirements.in": "flask\n",
            }
        )
        repo.pinsync("lock")
        proc = repo.pinsync("lock", "--force")
        assert "repository's pip-tools" not in proc.stderr, proc.stderr
