"""Warm compiles: a fork server per Python, one child per compile, the same bytes."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from conftest import Repo

MakeRepo = Callable[[Mapping[str, str]], Repo]
LAYERED = {
    "base.in": "flask\n",
    "api.in": "-r base.in\nrequests\n",
    "worker.in": "-c base.txt\nmlflow\n",
    "Dockerfile": "FROM python:3.11\nRUN pip install -r api.txt -r worker.txt\n",
}


def locks(repo: Repo) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(repo.path.glob("*.txt"))}


def test_warm_and_cold_compiles_write_the_same_bytes(make_repo: MakeRepo) -> None:
    repo = make_repo(LAYERED)
    repo.pinsync("lock")
    warm = locks(repo)
    for name in warm:
        (repo.path / name).unlink()
    repo.pinsync("lock", env={"PINSYNC_COLD_COMPILES": "1"})
    assert locks(repo) == warm and len(warm) == 3
    # pip makes the --find-links of the `-c base.txt` lock absolute: the repository's
    # path, as a plain pip-compile there writes it, never the stage's of one run.
    assert f"--find-links {repo.path.resolve()}/wheels\n" in warm["worker.txt"]
    assert "pinsync-stage" not in "".join(warm.values())


def _processes_with(tag: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if tag.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_no_server_outlives_the_run(make_repo: MakeRepo) -> None:
    repo = make_repo(LAYERED)
    tag = f"PINSYNC_TEST_TAG=run-{os.getpid()}-{time.monotonic_ns()}"
    key, value = tag.split("=")
    repo.pinsync("lock", "--force", env={key: value})
    deadline = time.monotonic() + 10
    while _processes_with(tag) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_with(tag) == []


def test_a_compile_that_dies_fails_alone_with_one_line(make_repo: MakeRepo) -> None:
    """A build that kills its pip-compile (as a segfault would): that lock fails with a
    plain reason, nothing is written, and the next run works."""
    repo = make_repo({"requirements.in": "flask\ncrasher\n"})
    setup = b"import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n"
    repo.add_sdist("crasher", setup)
    before = repo.snapshot()
    proc = repo.pinsync("lock", check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("pinsync: error: requirements.txt: "), proc.stderr
    assert repo.snapshot() == before
    repo.write({"requirements.in": "flask\n"})
    repo.pinsync("lock")
    assert "flask==" in repo.read("requirements.txt")


@pytest.mark.parametrize("cold", [False, True], ids=["warm", "cold"])
def test_a_build_failure_reads_the_same_warm_or_cold(make_repo: MakeRepo, cold: bool) -> None:
    """The build's own subprocesses report their exit codes in a forked child too."""
    repo = make_repo({"requirements.in": "broken\n"})
    repo.add_sdist("broken", b"raise RuntimeError('needs libfoo-dev')\n")
    env = {"PINSYNC_COLD_COMPILES": "1"} if cold else {}
    proc = repo.pinsync("lock", env=env, check=False)
    assert proc.stderr.startswith(
        "pinsync: error: requirements.txt: broken failed to build (installing build dependencies)"
    ), proc.stderr
