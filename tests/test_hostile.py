"""Hostile repositories: nothing read or written outside the root, nothing leaked, one line.

Each refused case asserts the exit code, a single line on stderr naming the problem,
that no secret from outside the root appears anywhere, and that neither the
repository nor the file outside it changed by one byte.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from conftest import (
    PIP_TOOLS_TABLE,
    TOOLS,
    Repo,
    compile_held,
    pip_temporaries,
    wait_for_compile,
)

MakeRepo = Callable[[Mapping[str, str]], Repo]
SECRET = "topsecret-token==9.9.9"


def tree_digest(path: Path) -> str:
    digest = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        if p.is_file() and not p.is_symlink() and "wheels" not in p.parts:
            digest.update(p.relative_to(path).as_posix().encode() + b"\0" + p.read_bytes())
    return digest.hexdigest()


def outside(repo: Repo) -> Path:
    """A file beside the repository, which nothing may read, quote or overwrite."""
    victim = repo.path.parent / "secret.txt"
    victim.write_text(SECRET + "\n")
    (repo.path.parent / "secret.in").write_text(SECRET + "\n")
    return victim


def symlink_in(repo: Repo) -> None:
    (repo.path / "linked.in").symlink_to(repo.path.parent / "secret.in")


# (files, setup, command, stderr must contain)
REFUSED = [
    pytest.param(
        {
            "pyproject.toml": PIP_TOOLS_TABLE
            + '[tool.pinsync.outputs."../secret.txt"]\ninputs = ["a.in"]\n',
            "a.in": "flask\n",
        },
        None,
        ("lock",),
        "../secret.txt: outside the repository root",
        id="output-outside-root",
    ),
    pytest.param(
        {
            "pyproject.toml": PIP_TOOLS_TABLE
            + '[tool.pinsync.outputs."/tmp/pinsync-victim.txt"]\ninputs = ["a.in"]\n',
            "a.in": "flask\n",
        },
        None,
        ("lock",),
        "/tmp/pinsync-victim.txt: outside the repository root",
        id="absolute-output",
    ),
    pytest.param(
        {"a.in": "flask\n-c ../secret.txt\n"},
        None,
        ("check", "--offline"),
        "a.in:2: -c ../secret.txt: outside the repository root",
        id="constraint-outside-root",
    ),
    pytest.param(
        {"a.in": "-r /etc/passwd\n"},
        None,
        ("check", "--offline"),
        "a.in:1: -r /etc/passwd: outside the repository root",
        id="absolute-include",
    ),
    pytest.param(
        {"a.in": "flask\n"},
        symlink_in,
        ("check", "--offline"),
        "linked.in: a symlink out of the repository root",
        id="source-symlinked-outside",
    ),
    pytest.param(
        {"pyproject.toml": '[tool.pinsync]\npython = "3.11" # caf\xe9\n', "a.in": "flask\n"},
        None,
        ("check", "--offline"),
        "pyproject.toml: not UTF-8 text",
        id="pyproject-not-utf8",
    ),
]


@pytest.mark.parametrize(("files", "setup", "command", "message"), REFUSED)
def test_refused_with_one_line_and_nothing_touched(
    make_repo: MakeRepo,
    files: Mapping[str, str],
    setup: Callable[[Repo], None] | None,
    command: tuple[str, ...],
    message: str,
) -> None:
    repo = make_repo({})
    for name, text in files.items():
        target = repo.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        # latin-1 where a test needs bytes that are not UTF-8
        target.write_bytes(text.encode("latin-1") if "\xe9" in text else text.encode())
    victim = outside(repo)
    if setup is not None:
        setup(repo)
    before = tree_digest(repo.path.parent)
    proc = repo.pinsync(*command, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "topsecret" not in proc.stdout + proc.stderr
    assert tree_digest(repo.path.parent) == before
    assert victim.read_text() == SECRET + "\n"
    assert not Path("/tmp/pinsync-victim.txt").exists()


def test_a_lock_linked_out_of_the_root_is_never_opened(make_repo: MakeRepo) -> None:
    # A named pipe outside the root: opening it to read a header would block the run
    # until the timeout; a file pinsync does not read costs nothing.
    repo = make_repo({"a.in": "flask\n"})
    pipe = repo.path.parent / "outside.fifo"
    os.mkfifo(pipe)
    (repo.path / "requirements.txt").symlink_to(pipe)
    proc = subprocess.run(
        [sys.executable, "-m", "pinsync", "check", "--offline", "--root", str(repo.path)],
        env={**os.environ, "PYTHONPATH": str(TOOLS)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "outside.fifo" not in proc.stdout + proc.stderr


def test_the_filesystem_root_is_not_a_repository(make_repo: MakeRepo) -> None:
    repo = make_repo({})
    proc = repo.pinsync("check", "--offline", "--root", "/", check=False)
    assert proc.returncode == 2
    assert (
        proc.stderr
        == "pinsync: error: /: the filesystem root is not a repository; pass --root DIR\n"
    )


def test_a_lock_that_is_a_directory_is_one_line(make_repo: MakeRepo) -> None:
    repo = make_repo({"requirements.in": "flask\n"})
    (repo.path / "requirements.txt").mkdir()
    before = tree_digest(repo.path)
    proc = repo.pinsync("lock", check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.count("\n") == 1 and "no file was changed" in proc.stderr, proc.stderr
    assert tree_digest(repo.path) == before


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_new_locks_get_the_umasks_mode(make_repo: MakeRepo, umask: int, mode: int) -> None:
    repo = make_repo({"requirements.in": "flask\n"})
    subprocess.run(
        [sys.executable, "-m", "pinsync", "lock"],
        cwd=repo.path,
        env={**os.environ, "PYTHONPATH": str(TOOLS)},
        check=True,
        capture_output=True,
        preexec_fn=lambda: os.umask(umask),  # only the child's umask
    )
    assert (repo.path / "requirements.txt").stat().st_mode & 0o777 == mode


@pytest.mark.parametrize(
    "option",
    [
        pytest.param("--cache-dir={evil}", id="cache-dir"),
        pytest.param("--pip-args='--log {evil}/log.txt'", id="pip-args"),
        pytest.param("--index-url=https://tok:****@{host}/simple", id="masked-index-url"),
    ],
)
def test_header_options_that_do_not_shape_the_lock_are_not_replayed(
    make_repo: MakeRepo, tmp_path: Path, option: str
) -> None:
    repo = make_repo({"requirements.in": "flask\n"})
    repo.pip_compile("--output-file=requirements.txt", "requirements.in")
    evil = tmp_path / "evil"
    text = repo.read("requirements.txt").replace(
        "pip-compile ", "pip-compile " + option.format(evil=evil, host="pinsync.invalid") + " ", 1
    )
    repo.write({"requirements.txt": text})
    proc = repo.pinsync("check", check=False)  # re-resolves: the unstamped lock is replayed
    assert proc.returncode in (0, 1), proc.stderr
    proc = repo.pinsync("lock", "--force")
    assert not evil.exists()
    assert "****" not in repo.read("requirements.txt")


def _compile_processes_in(directory: Path) -> list[int]:
    """pip-compiles still running with their working directory under `directory`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if b"piptools" in (entry / "cmdline").read_bytes() and os.readlink(
                entry / "cwd"
            ).startswith(str(directory)):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_cancelled_like_ctrl_c_with_compiles_stopped(
    make_repo: MakeRepo, tmp_path: Path, signum: int
) -> None:
    repo = make_repo({"a.in": "flask\n", "b.in": "requests\n", "c.in": "mlflow\n"})
    before = tree_digest(repo.path)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    proc = repo.start("lock", "--jobs", "1", tmpdir=tmpdir)
    with compile_held(proc.pid):
        proc.send_signal(signum)  # to pinsync alone, as a CI runner cancelling a job does
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err == "pinsync: interrupted; no file was changed\n"
    assert tree_digest(repo.path) == before
    assert [p.name for p in tmpdir.iterdir() if p.name.startswith("pinsync-stage")] == []
    assert _compile_processes_in(tmpdir) == []


@pytest.mark.parametrize("cold", [False, True], ids=["warm", "cold"])
def test_a_compile_killed_mid_resolution_leaves_nothing_in_tmpdir(
    make_repo: MakeRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cold: bool
) -> None:
    """A compile killed outright (the grace period after SIGINT ran out, the OOM killer)
    cannot remove pip's temporaries: they are in a directory of pinsync's own, which goes."""
    import time

    if cold:
        monkeypatch.setenv("PINSYNC_COLD_COMPILES", "1")
    repo = make_repo({"a.in": "mlflow\nflask\nrequests\n"})
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    proc = repo.start("lock", "--jobs", "1", tmpdir=tmpdir)
    compile_pid = wait_for_compile(proc.pid)
    seen: list[Path] = []
    # Let the compile run in steps of a few ms until pip has made a temporary directory
    # (however fast this machine resolves), then kill it while it holds one.
    deadline = time.monotonic() + 60
    try:
        while not seen and time.monotonic() < deadline:
            os.kill(compile_pid, signal.SIGSTOP)
            seen = pip_temporaries(tmpdir)
            if not seen:
                os.kill(compile_pid, signal.SIGCONT)
                time.sleep(0.002)
        os.kill(compile_pid, signal.SIGKILL)
    except ProcessLookupError:
        pytest.fail("the compile ended before pip made a temporary directory")
    _, err = proc.communicate(timeout=60)
    assert seen, "pip made no temporary directory"
    assert proc.returncode == 2, err
    assert err == "pinsync: error: a.txt: the compile was killed before it finished\n"
    assert not (repo.path / "a.txt").exists()
    assert pip_temporaries(tmpdir) == []
    assert [p.name for p in tmpdir.iterdir() if not p.name.endswith(".lock")] == []


def test_runs_with_different_temp_dirs_take_turns(make_repo: MakeRepo, tmp_path: Path) -> None:
    """The run lock lives in .git, not in the temp dir: a run with a TMPDIR of its own
    still waits for the one holding it (held here by the test, the way a run holds it,
    since a warm compile can finish before a second run has even started)."""
    from filelock import FileLock

    repo = make_repo({"a.in": "flask\n"})
    subprocess.run(["git", "init", "-q"], cwd=repo.path, check=True)
    tmpdir = tmp_path / "two"
    tmpdir.mkdir()
    held = FileLock(repo.path / ".git" / "pinsync.lock")
    held.acquire()
    try:
        proc = repo.start("lock", tmpdir=tmpdir)
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert proc.poll() is None  # still waiting, not done
    finally:
        held.release()
    rest, err = proc.communicate(timeout=120)
    assert first.startswith("waiting for another pinsync run"), first + rest + err
    assert proc.returncode == 0 and "a.txt" in rest, rest + err


def test_a_compile_that_runs_too_long_is_stopped(make_repo: MakeRepo) -> None:
    repo = make_repo(
        {
            "pyproject.toml": PIP_TOOLS_TABLE + "[tool.pinsync]\ncompile-timeout = 0.01\n",
            "a.in": "flask\n",
        }
    )
    proc = repo.pinsync("lock", check=False)
    assert proc.returncode == 2
    assert proc.stderr == (
        "pinsync: error: a.txt: the compile ran longer than 0 s and was stopped "
        "(raise compile-timeout in [tool.pinsync] if it needs longer)\n"
    )
    assert not (repo.path / "a.txt").exists()


def test_moved_find_links_beat_the_old_header(make_repo: MakeRepo) -> None:
    repo = make_repo({"a.in": "flask\n"})
    (repo.path / "wheels").rename(repo.path / "old-wheels")
    repo.write({"pyproject.toml": PIP_TOOLS_TABLE.replace('"wheels"', '"old-wheels"')})
    repo.pip_compile("--output-file=a.txt", "a.in")
    (repo.path / "old-wheels").rename(repo.path / "wheels")
    repo.write({"pyproject.toml": PIP_TOOLS_TABLE})  # the team moved the wheelhouse
    proc = repo.pinsync("lock", "--force")
    assert "--find-links wheels" in repo.read("a.txt") and "old-wheels" not in repo.read("a.txt"), (
        proc.stdout
    )


# --- the machine fails under a run: a full disk, a read-only checkout, an unreadable lock ----


@pytest.fixture
def repo_on_a_small_filesystem(tmp_path: Path, early_wheels: Path) -> Iterator[Repo]:
    """A locked repository alone on a 1 MiB tmpfs, so that it can really fill up or go
    read-only while the compiler's caches and the stage stay on the roomy temp disk."""
    mount = tmp_path / "fs"
    mount.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip("mounting a tmpfs needs root (CAP_SYS_ADMIN)")
    try:
        repo = Repo(mount / "repo")
        repo.path.mkdir()
        subprocess.run(["git", "init", "-q"], cwd=repo.path, check=True)
        repo.use_wheels(early_wheels)
        repo.write({"pyproject.toml": PIP_TOOLS_TABLE, "a.in": "flask\n", "b.in": "requests\n"})
        repo.pinsync("lock")
        repo.write({"a.in": "flask\nmlflow\n", "b.in": "requests\nnumpy\n"})  # both must move
        yield repo
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def fill_the_disk(repo: Repo) -> None:
    fd = os.open(repo.path.parent / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 512):
            pass
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)


def make_read_only(repo: Repo) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(repo.path.parent)], check=True)


def loop_the_lock(repo: Repo) -> None:
    (repo.path / "b.txt").unlink()
    (repo.path / "b.txt").symlink_to("b.txt")  # as root, the one file nothing can read


# (fault, stderr must contain)
MACHINE_FAULTS = [
    pytest.param(fill_the_disk, "No space left on device", id="disk-full"),
    pytest.param(make_read_only, "Read-only file system", id="read-only-checkout"),
    pytest.param(loop_the_lock, "b.txt: Too many levels of symbolic links", id="unreadable-lock"),
]


@pytest.mark.parametrize(("fault", "message"), MACHINE_FAULTS)
def test_a_failing_machine_gets_one_line_and_every_file_as_it_was(
    repo_on_a_small_filesystem: Repo, fault: Callable[[Repo], None], message: str
) -> None:
    repo = repo_on_a_small_filesystem
    fault(repo)
    before = tree_digest(repo.path)
    proc = repo.pinsync("lock", check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert message in proc.stderr and "no file was changed" in proc.stderr, proc.stderr
    assert tree_digest(repo.path) == before
    # A check needs no room and no write access: it still reports the drift.
    check = repo.pinsync("check", "--offline", check=False)
    assert check.returncode == 1, check.stdout + check.stderr
    assert "[stale-lock]" in check.stdout and "Traceback" not in check.stderr
    assert tree_digest(repo.path) == before


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_python_without_pinsyncs_requirements_is_one_line(
    make_repo: MakeRepo, tmp_path: Path, fmt: str
) -> None:
    """The corpora hook runs `PYTHONPATH=tools python3 -m pinsync` on a bare Python,
    where tomlkit (read for a pyproject's line numbers) is missing."""
    repo = make_repo({"pyproject.toml": '[project]\nname = "x"\ndependencies = ["alpha"]\n'})
    (repo.path / "requirements.txt").write_text(
        "# This file is autogenerated by pip-compile with Python 3.11\n"
        "#    pip-compile --output-file=requirements.txt pyproject.toml\n"
        "alpha==1.0\n    # via x (pyproject.toml)\n"
    )
    blocked = tmp_path / "blocked" / "tomlkit"
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'tomlkit'\", name='tomlkit')\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocked.parent), str(TOOLS)])}
    proc = subprocess.run(
        [sys.executable, "-m", "pinsync", "check", "--offline", "--format", fmt],
        cwd=repo.path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "lacks tomlkit" in proc.stderr, proc.stderr
    if fmt == "json":
        assert "lacks tomlkit" in json.loads(proc.stdout)["error"]
