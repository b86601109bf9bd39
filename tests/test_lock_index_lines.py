"""A lock's index lines are the lock's declaration.

pip-compile writes the indexes of the pip configuration it ran with into the lock's
body (a team's shared pip.conf: `--index-url`, `--extra-index-url`, `--find-links`,
`--trusted-host`), never into its header. `lock` compiles such a lock with those
indexes again, so it keeps the lines byte for byte and its private packages keep
resolving; the machine's own pip configuration still never enters a lock. All
offline: the indexes are file: indexes and find-links directories in the repository.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from bench.wheelhouse import Dist, build_wheelhouse
from conftest import PIP_TOOLS_TABLE, Repo
from pinsync.lockfile import strip_stamp
from pinsync.toolchain import sealed_env
from test_indexes import PASSWORD, PrivateIndex, pypiserver, write_netrc

MakeRepo = Callable[[Mapping[str, str]], Repo]


def simple_index(wheels: Path, index: Path) -> str:
    """A PEP 503 index of `wheels` on disk (pip reads index.html of a file: directory);
    returns its file: URL."""
    for wheel in sorted(wheels.glob("*.whl")):
        project = index / canonicalize_name(wheel.name.split("-")[0])
        project.mkdir(parents=True, exist_ok=True)
        page = project / "index.html"
        old = page.read_text() if page.exists() else ""
        page.write_text(f'{old}<a href="{wheel.as_uri()}">{wheel.name}</a>\n')
    return index.as_uri() + "/"


def pip_conf(path: Path, **settings: str) -> Path:
    path.write_text(
        "[global]\n" + "".join(f"{k.replace('_', '-')} = {v}\n" for k, v in settings.items())
    )
    return path


def team_pip_compile(
    repo: Repo, conf: Path, *args: str, env: Mapping[str, str] | None = None
) -> None:
    """Plain pip-compile from the root, reading the team's pip.conf (`conf`)."""
    subprocess.run(
        [sys.executable, "-m", "piptools", "compile", "--quiet", *args],
        cwd=repo.path,
        env={**sealed_env(os.environ, None), "PIP_CONFIG_FILE": str(conf), **(env or {})},
        check=True,
        capture_output=True,
    )


def index_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.startswith("--")]


@pytest.fixture
def machine_pip(tmp_path: Path) -> Iterator[dict[str, str]]:
    """This machine's own pip settings, outside any repository (as on the machine this
    suite runs on: PIP_FIND_LINKS and a global pip.conf with an extra index): a
    package only they have, which no lock may learn about."""
    machine = tmp_path / "machine"
    wheels = build_wheelhouse([Dist("machine-only", "1.0")], machine / "wheels")
    index = simple_index(wheels, machine / "index")
    conf = pip_conf(machine / "pip.conf", extra_index_url=index, find_links=str(wheels))
    yield {
        "PIP_CONFIG_FILE": str(conf),
        "PIP_EXTRA_INDEX_URL": index,
        "PIP_FIND_LINKS": str(wheels),
        "PIP_TRUSTED_HOST": "machine.example",
    }


def team_repo(make_repo: MakeRepo, tmp_path: Path) -> tuple[Repo, Path]:
    """A repository whose indexes live only in the team's pip.conf: the public-like one
    (`index/`), the company's (`corp-index/`, with corp-tools) and a wheel directory
    (`team-wheels/`, with team-only); returns it and that pip.conf, kept outside it."""
    repo = make_repo({"pyproject.toml": "", "requirements.in": "requests\ncorp-tools\n"})
    public = simple_index(repo.path / "wheels", repo.path / "index")
    corp = build_wheelhouse([Dist("corp-tools", "1.0", ("urllib3",))], repo.path / "corp-wheels")
    build_wheelhouse([Dist("team-only", "1.0")], repo.path / "team-wheels")
    conf = pip_conf(
        tmp_path / "team-pip.conf",
        index_url=public,
        extra_index_url=simple_index(corp, repo.path / "corp-index"),
        find_links="team-wheels",
        trusted_host="pypi.corp.example",
    )
    return repo, conf


def test_a_lock_keeps_the_indexes_of_the_pip_conf_it_was_compiled_with(
    make_repo: MakeRepo, tmp_path: Path, machine_pip: dict[str, str]
) -> None:
    repo, conf = team_repo(make_repo, tmp_path)
    team_pip_compile(repo, conf, "--output-file=requirements.txt", "requirements.in")
    original = repo.read("requirements.txt")
    lines = index_lines(original)
    assert [ln.split()[0] for ln in lines] == [
        "--index-url",
        "--extra-index-url",
        "--find-links",
        "--trusted-host",
    ], original
    assert "--find-links team-wheels" in lines and "corp-tools==1.0" in original
    before = repo.snapshot()

    # The machine's settings (machine_pip) are in the environment of every run below.
    locked = repo.pinsync("lock", env=machine_pip)
    assert repo.snapshot() == before, locked.stdout
    checked = repo.pinsync("check", env=machine_pip, check=False)  # unstamped: re-resolved
    assert checked.returncode == 0, checked.stdout + checked.stderr
    repo.pinsync("lock", "--force", env=machine_pip)
    assert strip_stamp(repo.read("requirements.txt")) == original

    # A package that only the lock's own find-links directory has.
    repo.write({"requirements.in": "requests\ncorp-tools\nteam-only\n"})
    repo.pinsync("lock", env=machine_pip)
    relocked = repo.read("requirements.txt")
    assert "team-only==1.0" in relocked and index_lines(relocked) == lines, relocked
    assert "machine" not in relocked
    checked = repo.pinsync("check", "--full", env=machine_pip, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize(
    "names",
    [
        pytest.param(("PIP_EXTRA_INDEX_URL",), id="PIP_EXTRA_INDEX_URL"),
        pytest.param(("PIP_CONFIG_FILE",), id="pip.conf-with-extra-index-and-find-links"),
        pytest.param(("PIP_FIND_LINKS", "PIP_TRUSTED_HOST"), id="PIP_FIND_LINKS"),
    ],
)
def test_the_machines_pip_configuration_never_enters_a_lock(
    make_repo: MakeRepo, machine_pip: dict[str, str], names: tuple[str, ...]
) -> None:
    """A lock that names no index of the machine's gets none, though it names indexes
    of its own (so its compile is not sealed from every index line)."""
    repo = make_repo({"pyproject.toml": "", "requirements.in": "requests\n"})
    index = simple_index(repo.path / "wheels", repo.path / "index")
    repo.write({"pyproject.toml": f'[tool.pip-tools]\nindex-url = "{index}"\n'})
    env = {name: machine_pip[name] for name in names}
    repo.pinsync("lock", env=env)
    lock = repo.read("requirements.txt")
    assert index_lines(lock) == [f"--index-url {index}"], lock
    repo.pinsync("lock", "--force")  # without the machine's settings: the same bytes
    assert repo.read("requirements.txt") == lock
    checked = repo.pinsync("check", "--full", env=env, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def symlink_out(repo: Repo) -> None:
    (repo.path / "linked-wheels").symlink_to(repo.path.parent / "outside-wheels")


# (the lock's line, set-up, the one error line pinsync prints after "requirements.txt:7: ")
REFUSED = [
    pytest.param(
        "--extra-index-url https://ci:{password}@pypi.corp.example/simple",
        None,
        "--extra-index-url https://****@pypi.corp.example/simple carries a password",
        id="password-in-an-extra-index",
    ),
    pytest.param(
        "--index-url https://ci:{password}@pypi.corp.example/simple",
        None,
        "--index-url https://****@pypi.corp.example/simple carries a password",
        id="password-in-the-index",
    ),
    pytest.param(
        "--find-links https://ci:{password}@wheels.corp.example/",
        None,
        "--find-links https://****@wheels.corp.example/ carries a password",
        id="password-in-find-links",
    ),
    pytest.param(
        "--find-links ../outside-wheels",
        None,
        "--find-links ../outside-wheels: outside the repository root",
        id="relative-find-links-out-of-the-root",
    ),
    pytest.param(
        "--find-links /opt/wheels",
        None,
        "--find-links /opt/wheels: outside the repository root",
        id="absolute-find-links",
    ),
    pytest.param(
        "--find-links file:///opt/wheels",
        None,
        "--find-links file:///opt/wheels: outside the repository root",
        id="file-url-find-links",
    ),
    pytest.param(
        "--extra-index-url file:///opt/index/",
        None,
        "--extra-index-url file:///opt/index/: outside the repository root",
        id="file-url-index",
    ),
    pytest.param(
        "--find-links ~/wheels",
        None,
        "--find-links ~/wheels: outside the repository root",
        id="home-find-links",
    ),
    pytest.param(
        "--find-links linked-wheels",
        symlink_out,
        "--find-links linked-wheels: outside the repository root",
        id="find-links-symlinked-out-of-the-root",
    ),
]


@pytest.mark.parametrize(("line", "setup", "message"), REFUSED)
@pytest.mark.parametrize("command", [("lock",), ("check",)])
def test_a_lock_line_that_cannot_be_used_is_one_line_naming_it(
    make_repo: MakeRepo,
    line: str,
    setup: Callable[[Repo], None] | None,
    message: str,
    command: tuple[str, ...],
) -> None:
    repo = make_repo({"requirements.in": "requests\n"})
    repo.pip_compile("--output-file=requirements.txt", "requirements.in")  # unstamped
    lines = repo.read("requirements.txt").splitlines(keepends=True)
    at = next(i for i, ln in enumerate(lines) if not ln.startswith("#"))  # after the header
    lines.insert(at, line.format(password=PASSWORD) + "\n")
    repo.write({"requirements.txt": "".join(lines)})
    outside = repo.path.parent / "outside-wheels"
    outside.mkdir()
    if setup is not None:
        setup(repo)
    before = repo.snapshot()
    proc = repo.pinsync(*command, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith(f"pinsync: error: requirements.txt:{at + 1}: {message}")
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert PASSWORD not in proc.stdout + proc.stderr
    assert repo.snapshot() == before


def test_an_index_named_with_a_user_but_no_password_is_used(
    make_repo: MakeRepo, tmp_path: Path, early_wheels: Path
) -> None:
    """`https://token@host`: the password comes from netrc (or a keyring), as pip does it."""
    home = tmp_path / "home"
    write_netrc(home / ".netrc")
    with pypiserver(early_wheels, tmp_path) as (index, _):
        repo = make_repo({"pyproject.toml": "", "requirements.in": "requests\n"})
        url = user_only(index)
        conf = pip_conf(tmp_path / "team-pip.conf", index_url=url)
        team_pip_compile(
            repo, conf, "--output-file=requirements.txt", "requirements.in", env={"HOME": str(home)}
        )
        original = repo.read("requirements.txt")
        assert index_lines(original) == [f"--index-url {url}"], original
        repo.write({"requirements.in": "requests\npytest\n"})
        locked = repo.pinsync("lock", env={"HOME": str(home)})
    relocked = repo.read("requirements.txt")
    assert "pytest==8.0.0" in relocked and index_lines(relocked) == [f"--index-url {url}"]
    assert PASSWORD not in relocked + locked.stdout + locked.stderr


def user_only(index: PrivateIndex) -> str:
    return index.url.replace("http://", "http://ci@")


def test_the_repository_s_own_index_lines_are_not_carried_twice(make_repo: MakeRepo) -> None:
    """Lines that [tool.pip-tools] or an .in writes stay the repository's: moving the
    wheelhouse in [tool.pip-tools] moves the lock's line (an .in's relative
    --find-links, which pip makes absolute, is the .in's too)."""
    repo = make_repo({"requirements.in": "-f sub-wheels\nrequests\n"})
    (repo.path / "sub-wheels").mkdir()
    repo.pip_compile("--output-file=requirements.txt", "requirements.in")
    assert f"--find-links {repo.path}/sub-wheels" in repo.read("requirements.txt")
    (repo.path / "wheels").rename(repo.path / "moved-wheels")
    repo.write({"pyproject.toml": PIP_TOOLS_TABLE.replace('"wheels"', '"moved-wheels"')})
    repo.pinsync("lock")
    lines = index_lines(repo.read("requirements.txt"))
    assert lines == ["--find-links moved-wheels", f"--find-links {repo.path}/sub-wheels"], lines
