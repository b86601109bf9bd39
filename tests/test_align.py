"""Aligned locks: locks installed together are resolved jointly and end up agreeing."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from conftest import PIP_TOOLS_TABLE, Repo
from pinsync.align import alignment_groups
from pinsync.repo import load_repo
from pinsync.toolchain import CURRENT

MakeRepo = Callable[[Mapping[str, str]], Repo]

TWO_LOCKS = {"requirements/dev.in": "requests\n", "requirements/common.in": "urllib3\n"}
BOTH_IN_ONE_STAGE = "FROM python:3.11\nCOPY requirements/ /req/\nRUN pip install -r /req/dev.txt -r /req/common.txt\n"


# A Python other than the one running the tests (whose version the other lock gets).
OTHER_PYTHON = "3.12" if CURRENT != "3.12" else "3.11"


def config(extra: str) -> dict[str, str]:
    return {"pyproject.toml": PIP_TOOLS_TABLE + "[tool.pinsync]\n" + extra}


# (files, expected groups as sets of outputs)
GROUPS = [
    pytest.param(
        {**TWO_LOCKS, "Dockerfile": BOTH_IN_ONE_STAGE},
        [{"requirements/dev.txt", "requirements/common.txt"}],
        id="one-stage-installs-both",
    ),
    pytest.param(
        {
            **TWO_LOCKS,
            "Dockerfile": "FROM python:3.11 AS base\nCOPY requirements/ /req/\n"
            "RUN pip install -r /req/common.txt\n"
            "FROM base AS dev\nRUN pip install -r /req/dev.txt\n",
        },
        [{"requirements/dev.txt", "requirements/common.txt"}],
        id="a-stage-and-what-it-inherits",
    ),
    pytest.param(
        {
            **TWO_LOCKS,
            "Dockerfile": "FROM python:3.11 AS a\nCOPY requirements/ /req/\n"
            "RUN pip install -r /req/common.txt\n"
            "FROM python:3.11 AS b\nCOPY requirements/ /req/\nRUN pip install -r /req/dev.txt\n",
        },
        [],
        id="separate-stages",
    ),
    pytest.param(
        {
            **TWO_LOCKS,
            "Dockerfile": "FROM python:3.11\nCOPY requirements/ /req/\n"
            "RUN pip install -r /req/common.txt\nRUN pip install --no-deps -r /req/dev.txt\n",
        },
        [],
        id="a-no-deps-override-is-intent",
    ),
    pytest.param(
        {**TWO_LOCKS, "requirements/dev.in": "-r common.in\nrequests\n"},
        [],
        id="includes-the-other-source-two-resolutions",
    ),
    pytest.param(
        {
            **TWO_LOCKS,
            "requirements/dev.in": "-r common.in\nrequests\n",
            **config('layers-disagree = "error"\n'),
        },
        [{"requirements/dev.txt", "requirements/common.txt"}],
        id="includes-the-other-source-asked-to-agree",
    ),
    pytest.param(
        {**TWO_LOCKS, "requirements/dev.in": "-c common.txt\nrequests\n"},
        [],
        id="constrained-by-the-other-lock-agrees-by-construction",
    ),
    pytest.param(
        {
            **TWO_LOCKS,
            "other.in": "flask\n",
            **config('align = [["other.txt", "requirements/dev.txt"]]\n'),
        },
        [{"other.txt", "requirements/dev.txt"}],
        id="configured",
    ),
    pytest.param(
        {**TWO_LOCKS, "Dockerfile": BOTH_IN_ONE_STAGE, **config("align = false\n")},
        [],
        id="turned-off",
    ),
    pytest.param(
        {
            **TWO_LOCKS,
            "Dockerfile": BOTH_IN_ONE_STAGE,
            **config(f'[tool.pinsync.outputs."requirements/dev.txt"]\npython = "{OTHER_PYTHON}"\n'),
        },
        [],
        id="locks-for-two-pythons-are-never-one-environment",
    ),
]


@pytest.mark.parametrize(("files", "expected"), GROUPS)
def test_groups(make_repo: MakeRepo, files: Mapping[str, str], expected: list[set[str]]) -> None:
    repo = make_repo(files)
    groups = alignment_groups(load_repo(repo.path))
    assert [{p.as_posix() for p in g.outputs} for g in groups] == expected


def test_an_unknown_lock_in_align_is_one_line(make_repo: MakeRepo) -> None:
    repo = make_repo({**TWO_LOCKS, **config('align = [["nope.txt", "requirements/dev.txt"]]\n')})
    proc = repo.pinsync("check", "--offline", check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith(
        "pinsync: error: [tool.pinsync] align: nope.txt is not a lock pinsync compiles"
    ), proc.stderr
    assert proc.stderr.count("\n") == 1


@pytest.fixture
def disagreeing_locks(make_repo: MakeRepo) -> Repo:
    """One image installs two locks that plain pip-compile made one at a time, the way a
    team had them: dev.txt holds urllib3 1.26.18, common.txt 2.0.3."""
    repo = make_repo({**TWO_LOCKS, "Dockerfile": BOTH_IN_ONE_STAGE})
    repo.pip_compile("-o", "requirements/common.txt", "requirements/common.in")
    repo.pip_compile("-P", "urllib3==1.26.18", "-o", "requirements/dev.txt", "requirements/dev.in")
    return repo


def pins(repo: Repo, name: str) -> dict[str, str]:
    return dict(
        line.split("==", 1)
        for line in repo.read(name).splitlines()
        if "==" in line and not line.startswith("#")
    )


def findings(repo: Repo, *args: str) -> tuple[int, list[tuple[str, str]]]:
    proc = repo.pinsync("check", "--format", "json", *args, check=False)
    report = json.loads(proc.stdout)
    # Notes (`unverified`: a lock plain pip-compile wrote and pinsync left byte-identical)
    # are not drift.
    return proc.returncode, [
        (f["kind"], f["package"]) for f in report["findings"] if f["severity"] != "info"
    ]


def test_lock_aligns_locks_one_image_installs(disagreeing_locks: Repo) -> None:
    repo = disagreeing_locks
    code, found = findings(repo, "--offline")
    assert (code, ("co-installed-conflict", "urllib3") in found) == (1, True), found
    dev_before, common_before = (
        pins(repo, "requirements/dev.txt"),
        repo.read("requirements/common.txt"),
    )

    proc = repo.pinsync("lock")

    # Only the package that disagreed moved, in the lock that was behind, and the run says so.
    dev_after = pins(repo, "requirements/dev.txt")
    assert {k: v for k, v in dev_after.items() if dev_before.get(k) != v} == {"urllib3": "2.0.3"}
    assert repo.read("requirements/common.txt") == common_before
    assert "requirements/dev.txt                     updated (1 pin changed)  " in proc.stdout, (
        proc.stdout
    )
    assert (
        "\n    urllib3 1.26.18 → 2.0.3\n    resolved together with requirements/common.txt\n"
        in proc.stdout
    ), proc.stdout
    assert findings(repo, "--offline") == (0, [])
    assert findings(repo, "--full") == (0, [])  # a re-resolution aligns the same way


def test_a_group_that_cannot_agree_fails_and_writes_nothing(make_repo: MakeRepo) -> None:
    repo = make_repo(
        {
            "requirements/dev.in": "requests\nurllib3>=2\n",
            "requirements/common.in": "urllib3<2\n",
            "Dockerfile": BOTH_IN_ONE_STAGE,
        }
    )
    before = repo.snapshot()
    proc = repo.pinsync("lock", check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr == (
        "pinsync: error: cannot align requirements/common.txt, requirements/dev.txt "
        "(Dockerfile:3 installs them together): Cannot install urllib3<2 and urllib3>=2 because "
        "these package versions have conflicting dependencies; the requirements that cannot "
        "agree: urllib3<2 (requirements/common.in:1), urllib3>=2 (requirements/dev.in:2)\n"
    )
    assert repo.snapshot() == before


def test_a_lock_that_fails_on_its_own_says_so_in_its_own_words(make_repo: MakeRepo) -> None:
    repo = make_repo(
        {**TWO_LOCKS, "requirements/dev.in": "requests==99\n", "Dockerfile": BOTH_IN_ONE_STAGE}
    )
    proc = repo.pinsync("lock", check=False)
    assert proc.returncode == 2
    assert proc.stderr == (
        "pinsync: error: requirements/dev.txt: requests==99 is not on the index (newest: 2.31.0)\n"
    )


def status(stdout: str) -> dict[str, str]:
    return {
        line.split()[0]: line.split()[1]
        for line in stdout.splitlines()
        if line and not line.startswith(" ") and line.split()[0].endswith(".txt")
    }


def test_a_change_recompiles_its_group_only_where_pins_move(make_repo: MakeRepo) -> None:
    repo = make_repo({**TWO_LOCKS, "other.in": "flask\n", "Dockerfile": BOTH_IN_ONE_STAGE})
    repo.pinsync("lock")
    assert pins(repo, "requirements/common.txt")["urllib3"] == "2.0.3"

    # A change that moves nothing shared: the rest of the group agrees and stays fresh.
    repo.write({"requirements/dev.in": "requests\ngunicorn\n"})
    proc = repo.pinsync("lock")
    assert status(proc.stdout) == {
        "requirements/common.txt": "fresh",
        "requirements/dev.txt": "updated",
        "other.txt": "fresh",
    }, proc.stdout

    # A change that holds a shared package back moves it in the other lock too.
    repo.write({"requirements/dev.in": "requests\ngunicorn\nurllib3<2\n"})
    proc = repo.pinsync("lock")
    assert status(proc.stdout) == {
        "requirements/common.txt": "updated",
        "requirements/dev.txt": "updated",
        "other.txt": "fresh",
    }, proc.stdout
    assert pins(repo, "requirements/common.txt")["urllib3"] == "1.26.18"
    assert pins(repo, "requirements/dev.txt")["urllib3"] == "1.26.18"
    assert findings(repo, "--offline") == (0, [])


def test_the_scratch_files_of_a_group_never_reach_the_repository(
    disagreeing_locks: Repo, tmp_path: Path
) -> None:
    repo = disagreeing_locks
    repo.pinsync("lock")
    leftovers = [p.name for p in repo.path.rglob(".pinsync-align-*")]
    assert leftovers == []
