"""`bump NAME VERSION` end to end: the real pip-compile against a local wheelhouse."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath

import pytest

from conftest import INCIDENT_SOURCES, PIP_TOOLS_TABLE, Repo, compile_held
from pinsync.reqfile import parse_requirements

MakeRepo = Callable[[Mapping[str, str]], Repo]
Snapshot = dict[str, bytes]
LOCKS = ("requirements-all.txt", "requirements-mlflow.txt", "requirements.txt")


def pins(text: str) -> dict[str, str | None]:
    return {
        str(e.name): e.pinned_version
        for e in parse_requirements(PurePosixPath("x.txt"), text).entries
    }


def changed(before: Snapshot, after: Snapshot) -> list[str]:
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


def moved(old: bytes, new: bytes) -> dict[str, tuple[str | None, str | None]]:
    a, b = pins(old.decode()), pins(new.decode())
    return {k: (a.get(k), b.get(k)) for k in a.keys() | b.keys() if a.get(k) != b.get(k)}


def table(stdout: str) -> list[list[str]]:
    """The rows of the bump table, split into their columns (file, package, change)."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("file "))
    rows = []
    for line in lines[start + 1 :]:
        if line.startswith(("bumped ", "dry run: ", "--- ")):
            break
        rows.append(re.split(r" {2,}", line))
    return rows


@pytest.fixture
def late_repo(make_repo: MakeRepo, all_wheels: Path) -> MakeRepo:
    """make_repo, with the late releases (mlflow 3.5.0 ...) already on the index."""

    def make(files: Mapping[str, str]) -> Repo:
        repo = make_repo(files)
        repo.use_wheels(all_wheels)
        return repo

    return make


@pytest.fixture(scope="module")
def incident_templates() -> dict[str, Path]:
    """Where the first locked incident repository of this module was kept, to copy from."""
    return {}


@pytest.fixture
def locked_incident(
    request: pytest.FixtureRequest,
    incident_templates: dict[str, Path],
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Repo:
    """The incident repository after `pinsync lock`: every lock at mlflow 3.4.0.

    conftest's `incident_repo` compiles it once per module; later tests get a copy,
    which is byte for byte what they would have built (no path is in a lock or stamp).
    """
    template = incident_templates.get("locked")
    if template is not None:
        repo = Repo(tmp_path / "repo")
        shutil.copytree(template, repo.path, symlinks=True)
        return repo
    repo = request.getfixturevalue("incident_repo")
    assert isinstance(repo, Repo)
    repo.pinsync("lock")
    template = tmp_path_factory.mktemp("locked-incident") / "repo"
    shutil.copytree(repo.path, template, symlinks=True)
    incident_templates["locked"] = template
    return repo


INCIDENT_TABLE = [
    ["requirements-mlflow.in:1", "mlflow", "3.4.0 → 3.5.0"],
    ["requirements.in:1", "mlflow", "3.4.0 → 3.5.0"],
    ["Dockerfile.mlflow:2", "mlflow", "3.4.0 → 3.5.0"],
    ["requirements-all.txt", "mlflow", "3.4.0 → 3.5.0"],
    ["requirements-mlflow.txt", "mlflow", "3.4.0 → 3.5.0"],
    ["requirements.txt", "mlflow", "3.4.0 → 3.5.0"],
]


# --- the incident ------------------------------------------------------------------------


def test_incident_bump_moves_mlflow_in_exactly_the_six_pin_sites(locked_incident: Repo) -> None:
    repo = locked_incident
    before = repo.snapshot()
    proc = repo.pinsync("bump", "MLflow", "3.5.0")
    after = repo.snapshot()
    assert changed(before, after) == [
        "Dockerfile.mlflow",
        "requirements-all.txt",
        "requirements-mlflow.in",
        "requirements-mlflow.txt",
        "requirements.in",
        "requirements.txt",
    ], proc.stdout
    assert repo.read("requirements.in") == "mlflow==3.5.0\nflask\n"
    assert repo.read("requirements-mlflow.in") == "mlflow==3.5.0\n"
    assert repo.read("Dockerfile.mlflow") == (
        "FROM python:3.11-slim\nRUN pip install --no-cache-dir mlflow==3.5.0 gunicorn\n"
    )
    for name in LOCKS:
        assert moved(before[name], after[name]) == {"mlflow": ("3.4.0", "3.5.0")}, name
    assert table(proc.stdout) == INCIDENT_TABLE
    assert proc.stdout.endswith(f"bumped mlflow to 3.5.0 in 6 files: {SIX_FILES}\n")
    check = repo.pinsync("check", check=False)
    assert check.returncode == 0, check.stdout
    assert check.stdout.endswith("All lock files are in sync.\n")


SIX_FILES = (
    "Dockerfile.mlflow, requirements-all.txt, requirements-mlflow.in, requirements-mlflow.txt, "
    "requirements.in, requirements.txt"
)


def diffs(stdout: str) -> dict[str, str]:
    """The unified diffs of a dry run, by file name."""
    chunks = re.split(r"^--- a/(\S+)\n", stdout, flags=re.MULTILINE)
    return {
        name: chunk.split("\ndry run: ")[0]
        for name, chunk in zip(chunks[1::2], chunks[2::2], strict=True)
    }


def test_dry_run_prints_the_table_and_diff_and_writes_nothing(locked_incident: Repo) -> None:
    repo = locked_incident
    before = repo.snapshot()
    proc = repo.pinsync("bump", "mlflow", "3.5.0", "--dry-run")
    assert repo.snapshot() == before
    assert table(proc.stdout) == INCIDENT_TABLE
    found = diffs(proc.stdout)
    assert sorted(found) == sorted(
        [*LOCKS, "requirements.in", "requirements-mlflow.in", "Dockerfile.mlflow"]
    )
    for name in (*LOCKS, "requirements.in", "requirements-mlflow.in"):
        assert found[name].startswith(f"+++ b/{name}\n"), found[name]
        assert "\n-mlflow==3.4.0\n+mlflow==3.5.0\n" in found[name], found[name]
    assert found["Dockerfile.mlflow"].endswith(
        "-RUN pip install --no-cache-dir mlflow==3.4.0 gunicorn\n"
        "+RUN pip install --no-cache-dir mlflow==3.5.0 gunicorn\n"
    )
    assert proc.stdout.endswith(
        f"dry run: would change 6 files: {SIX_FILES}; nothing was written\n"
    )


# --- transitive packages -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "version", "old", "locks"),
    [
        # Jinja2 is in every lock, only through flask.
        ("Jinja2", "3.1.4", "3.1.0", LOCKS),
        # urllib3 only through requests, only in requirements-all.txt; a move down is a bump too.
        ("urllib3", "1.26.18", "2.0.3", ("requirements-all.txt",)),
        # flask is named in requirements.in without a version: that line has nothing to edit.
        ("flask", "3.0.0", "2.0.0", LOCKS),
    ],
    ids=["jinja2-everywhere", "urllib3-one-lock-downward", "flask-unpinned-source"],
)
def test_unpinned_package_moves_only_in_the_locks(
    locked_incident: Repo, name: str, version: str, old: str, locks: tuple[str, ...]
) -> None:
    repo = locked_incident
    before = repo.snapshot()
    proc = repo.pinsync("bump", name, version)
    after = repo.snapshot()
    assert changed(before, after) == sorted(locks), proc.stdout
    canonical = name.lower()
    for lock in locks:
        assert moved(before[lock], after[lock]) == {canonical: (old, version)}, lock
    assert table(proc.stdout) == [[lock, canonical, f"{old} → {version}"] for lock in sorted(locks)]


# --- how pins are written --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (
            'MLflow[extras]==3.4.0 ; python_version >= "3.8"  # keep\n',
            'MLflow[extras]==3.5.0 ; python_version >= "3.8"  # keep\n',
        ),
        ("flask\nmlflow == 3.4.0\t# spaced out\n", "flask\nmlflow == 3.5.0\t# spaced out\n"),
        (
            "mlflow==3.4.0 \\\n    ; python_version >= '3.8'\n",
            "mlflow==3.5.0 \\\n    ; python_version >= '3.8'\n",
        ),
        ("mlflow==3.4.0\r\nflask\r\n", "mlflow==3.5.0\r\nflask\r\n"),
    ],
    ids=["extras-marker-comment", "spaces-tab", "continuation", "crlf"],
)
def test_requirement_line_keeps_everything_but_the_version(
    late_repo: MakeRepo, before: str, after: str
) -> None:
    repo = late_repo({"requirements.in": before})
    repo.pinsync("lock")
    old = repo.snapshot()
    assert pins(repo.read("requirements.txt"))["mlflow"] == "3.4.0"
    proc = repo.pinsync("bump", "mlflow", "3.5.0")
    assert changed(old, repo.snapshot()) == ["requirements.in", "requirements.txt"], proc.stdout
    assert repo.read("requirements.in") == after
    assert moved(old["requirements.txt"], repo.snapshot()["requirements.txt"]) == {
        "mlflow": ("3.4.0", "3.5.0")
    }


@pytest.mark.parametrize(
    ("files", "edited"),
    [
        # A hand-kept constraints file is a pin site, not a lock.
        (
            {
                "requirements.in": "-c constraints.txt\nmlflow\n",
                "constraints.txt": "mlflow==3.4.0  # hold\n",
            },
            {"constraints.txt": "mlflow==3.5.0  # hold\n"},
        ),
        # A lock built on another lock follows it.
        (
            {
                "requirements/base.in": "mlflow==3.4.0\n",
                "requirements/dev.in": "-r base.txt\npytest\n",
            },
            {"requirements/base.in": "mlflow==3.5.0\n"},
        ),
    ],
    ids=["constraints-file", "layered-locks"],
)
def test_pins_move_wherever_the_sources_keep_them(
    late_repo: MakeRepo, files: dict[str, str], edited: dict[str, str]
) -> None:
    repo = late_repo(files)
    repo.pinsync("lock")
    old = repo.snapshot()
    locks = sorted(k for k in old if k.endswith(".txt") and k not in files)
    proc = repo.pinsync("bump", "mlflow", "3.5.0")
    new = repo.snapshot()
    assert changed(old, new) == sorted([*edited, *locks]), proc.stdout
    assert {name: repo.read(name) for name in edited} == edited
    for lock in locks:
        assert moved(old[lock], new[lock]) == {"mlflow": ("3.4.0", "3.5.0")}, lock
    assert repo.pinsync("check", check=False).returncode == 0


def test_hashed_lock_gets_the_new_hash(late_repo: MakeRepo, all_wheels: Path) -> None:
    repo = late_repo({"requirements.in": "mlflow==3.4.0\n"})
    repo.pip_compile("--generate-hashes", "--output-file=requirements.txt", "requirements.in")
    old = repo.read("requirements.txt")
    repo.pinsync("bump", "mlflow", "3.5.0")
    new = repo.read("requirements.txt")
    wheel = all_wheels / "mlflow-3.5.0-py3-none-any.whl"
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert f"mlflow==3.5.0 \\\n    --hash=sha256:{digest}\n" in new
    assert new.count("--hash=sha256:") == old.count("--hash=sha256:") == 4
    assert moved(old.encode(), new.encode()) == {"mlflow": ("3.4.0", "3.5.0")}


DOCKER_HEAD = "FROM python:3.11-slim\n"


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (
            "ARG MLFLOW_VERSION=3.4.0\nRUN pip install mlflow==${MLFLOW_VERSION}\n",
            "ARG MLFLOW_VERSION=3.5.0\nRUN pip install mlflow==${MLFLOW_VERSION}\n",
        ),
        (
            'ENV MLFLOW_VERSION=3.4.0\nRUN pip install "mlflow==$MLFLOW_VERSION"\n',
            'ENV MLFLOW_VERSION=3.5.0\nRUN pip install "mlflow==$MLFLOW_VERSION"\n',
        ),
        (
            "RUN pip install --no-cache-dir \\\n        mlflow==3.4.0 \\\n        gunicorn==21.2.0\n",
            "RUN pip install --no-cache-dir \\\n        mlflow==3.5.0 \\\n        gunicorn==21.2.0\n",
        ),
        (
            'RUN ["python", "-m", "pip", "install", "mlflow==3.4.0"]\n',
            'RUN ["python", "-m", "pip", "install", "mlflow==3.5.0"]\n',
        ),
        (
            "ARG MLFLOW_VERSION=3.4.0\nRUN pip install mlflow==${MLFLOW_VERSION}\n"
            'RUN pip install "mlflow[extras]==${MLFLOW_VERSION}" gunicorn\n',
            "ARG MLFLOW_VERSION=3.5.0\nRUN pip install mlflow==${MLFLOW_VERSION}\n"
            'RUN pip install "mlflow[extras]==${MLFLOW_VERSION}" gunicorn\n',
        ),
    ],
    ids=["arg-default", "env", "continued-run", "exec-form", "arg-used-twice"],
)
def test_dockerfile_pin_is_edited_where_the_version_is_written(
    late_repo: MakeRepo, before: str, after: str
) -> None:
    repo = late_repo({"Dockerfile": DOCKER_HEAD + before})
    old = repo.snapshot()
    proc = repo.pinsync("bump", "mlflow", "3.5.0")
    assert changed(old, repo.snapshot()) == ["Dockerfile"], proc.stdout
    assert repo.read("Dockerfile") == DOCKER_HEAD + after
    assert proc.stdout.endswith("bumped mlflow to 3.5.0 in 1 file: Dockerfile\n")
    # Every lock already pins 3.5.0: no compile ran, so no lock has a status line.
    assert ".txt " not in proc.stdout, proc.stdout


PYPROJECT = """\
[project]
name = "svc"
version = "3.4.0"
dependencies = [
    "mlflow==3.4.0",  # the tracking server
    'flask>=2',
]

[project.optional-dependencies]
serve = ["MLflow[extras] == 3.4.0 ; python_version >= '3.8'", "gunicorn==21.2.0"]

"""


def test_pyproject_pins_are_edited_in_place(late_repo: MakeRepo) -> None:
    repo = late_repo(
        {"pyproject.toml": PYPROJECT + PIP_TOOLS_TABLE, "requirements.in": "mlflow==3.4.0\n"}
    )
    repo.pinsync("lock")
    old = repo.snapshot()
    proc = repo.pinsync("bump", "mlflow", "3.5.0")
    new = repo.snapshot()
    assert changed(old, new) == ["pyproject.toml", "requirements.in", "requirements.txt"], (
        proc.stdout
    )
    expected = PYPROJECT.replace('"mlflow==3.4.0"', '"mlflow==3.5.0"').replace(
        "== 3.4.0 ;", "== 3.5.0 ;"
    )
    assert repo.read("pyproject.toml") == expected + PIP_TOOLS_TABLE
    assert 'version = "3.4.0"' in expected  # the project's own version is not a pin
    assert table(proc.stdout) == [
        ["requirements.in:1", "mlflow", "3.4.0 → 3.5.0"],
        ["pyproject.toml:5", "mlflow", "3.4.0 → 3.5.0"],
        ["pyproject.toml:10", "mlflow", "3.4.0 → 3.5.0"],
        ["requirements.txt", "mlflow", "3.4.0 → 3.5.0"],
    ]


WORKFLOW = """\
jobs:
  serve:
    steps:
      - run: pip install mlflow==3.4.0 "gunicorn==21.2.0"
      - run: |
          python -m pip install 'MLflow[extras]==3.4.0'  # mlflow==3.4.0 in a comment stays
"""
WORKFLOW_BUMPED = """\
jobs:
  serve:
    steps:
      - run: pip install mlflow==3.5.0 "gunicorn==21.2.0"
      - run: |
          python -m pip install 'MLflow[extras]==3.5.0'  # mlflow==3.4.0 in a comment stays
"""
SCRIPT = "#!/bin/sh\npip install mlflow==3.4.0\n"


@pytest.mark.parametrize(
    ("config", "edited"),
    [
        pytest.param(
            "",
            [".github/workflows/notes.yaml", ".github/workflows/serve.yml", "scripts/install.sh"],
            id="discovered-sites",
        ),
        pytest.param(
            '[tool.pinsync]\nskip-sites = ["ci", "script"]\npin-sites = [".github/workflows/*.yml"]\n',
            [".github/workflows/serve.yml"],
            id="kinds-skipped-glob-adds-back",
        ),
    ],
)
def test_pin_sites_are_edited_and_other_files_are_not(
    late_repo: MakeRepo, config: str, edited: list[str]
) -> None:
    repo = late_repo(
        {
            "pyproject.toml": PIP_TOOLS_TABLE + config,
            ".github/workflows/serve.yml": WORKFLOW,
            ".github/workflows/notes.yaml": WORKFLOW,
            "scripts/install.sh": SCRIPT,
        }
    )
    old = repo.snapshot()
    proc = repo.pinsync("bump", "mlflow", "3.5.0")
    assert changed(old, repo.snapshot()) == edited, proc.stdout
    for name in edited:
        expected = (
            WORKFLOW_BUMPED if name.endswith(("yml", "yaml")) else SCRIPT.replace("3.4.0", "3.5.0")
        )
        assert repo.read(name) == expected
    rows = [row for row in table(proc.stdout) if row[0].startswith(".github/workflows/serve.yml")]
    assert rows == [
        [".github/workflows/serve.yml:4", "mlflow", "3.4.0 → 3.5.0"],
        [".github/workflows/serve.yml:6", "mlflow", "3.4.0 → 3.5.0"],
    ]


# --- refusals: exit 2, one line, not one byte changed ---------------------------------------


PYPROJECT_RANGE = (
    '[project]\nname = "svc"\nversion = "1"\ndependencies = ["mlflow<3.5"]\n\n' + PIP_TOOLS_TABLE
)


def assert_refused(proc: subprocess.CompletedProcess[str], message: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr == f"pinsync: error: {message}\n"


@pytest.mark.parametrize(
    ("name", "version", "message"),
    [
        ("mlflow;rm -rf /", "3.5.0", "'mlflow;rm -rf /' is not a valid project name"),
        ("../x", "3.5.0", "'../x' is not a valid project name"),
        ("", "3.5.0", "'' is not a valid project name"),
        ("mlflow==3.5.0", "3.5.0", "'mlflow==3.5.0' is not a valid project name"),
        ("mlflow[extras]", "3.5.0", "'mlflow[extras]' is not a valid project name"),
        ("mlflow", "latest", "'latest' is not a valid version"),
        ("mlflow", "1.0-x-y", "'1.0-x-y' is not a valid version"),
        ("mlflow", "3.5.0; rm -rf /", "'3.5.0; rm -rf /' is not a valid version"),
        ("mlflow", "", "'' is not a valid version"),
    ],
)
def test_invalid_name_or_version_is_refused_before_anything_is_read(
    make_repo: MakeRepo, name: str, version: str, message: str
) -> None:
    repo = make_repo(INCIDENT_SOURCES)
    before = repo.snapshot()
    assert_refused(repo.pinsync("bump", name, version, check=False), message)
    assert repo.snapshot() == before
    # The same refusal where there is no repository at all: nothing was read first.
    assert_refused(
        repo.pinsync("bump", name, version, "--root", "no-such-dir", check=False), message
    )


def test_version_missing_from_the_index_is_refused(locked_incident: Repo) -> None:
    before = locked_incident.snapshot()
    proc = locked_incident.pinsync("bump", "mlflow", "9.9.9", check=False)
    assert_refused(
        proc, "cannot bump mlflow to 9.9.9: mlflow 9.9.9 is not on the index (newest: 3.5.0)"
    )
    assert locked_incident.snapshot() == before


@pytest.mark.parametrize(
    ("sources", "args", "message"),
    [
        (
            {"requirements.in": "mlflow==3.4.0\nflask<3  # flask 3 breaks the UI\n"},
            ("flask", "3.0.0"),
            "requirements.in:2: 'flask<3' excludes 3.0.0; widen it by hand, then bump",
        ),
        (
            {"pyproject.toml": PYPROJECT_RANGE},
            ("mlflow", "3.5.0"),
            "pyproject.toml:4: 'mlflow<3.5' excludes 3.5.0",
        ),
        ({}, ("nosuchpkg", "1.0"), "nosuchpkg is pinned nowhere and is in no lock file of {root}"),
    ],
    ids=["range-excludes", "pyproject-range-excludes", "pinned-nowhere"],
)
def test_bump_that_cannot_apply_is_refused(
    locked_incident: Repo, sources: dict[str, str], args: tuple[str, str], message: str
) -> None:
    locked_incident.write(sources)
    before = locked_incident.snapshot()
    proc = locked_incident.pinsync("bump", *args, check=False)
    assert_refused(proc, message.format(root=locked_incident.path.resolve()))
    assert locked_incident.snapshot() == before


def test_failure_in_the_last_lock_leaves_every_file_as_it_was(locked_incident: Repo) -> None:
    repo = locked_incident
    # Only requirements-all.txt, compiled last, cannot resolve. (Unaligned: aligned, the
    # three are resolved together first, and nothing is compiled one by one.)
    repo.write(
        {
            "requirements-all.in": "-r requirements.in\n-r requirements-mlflow.in\nrequests==99\n",
            "pyproject.toml": PIP_TOOLS_TABLE + "[tool.pinsync]\nalign = false\n",
        }
    )
    before = repo.snapshot()
    proc = repo.pinsync("bump", "mlflow", "3.5.0", check=False)
    assert_refused(
        proc,
        "cannot bump mlflow to 3.5.0: requirements-all.txt: requests==99 is not on the index (newest: 2.31.0)",
    )
    # The first two locks were compiled (in the stage) before the third failed.
    statuses = [line.split()[:2] for line in proc.stdout.splitlines() if line[:1] != " "]
    assert sorted(statuses) == [
        ["requirements-mlflow.txt", "updated"],
        ["requirements.txt", "updated"],
    ]
    assert repo.snapshot() == before


# --- Ctrl-C ----------------------------------------------------------------------------------


def _git(repo: Repo, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=repo.path,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


@pytest.mark.parametrize("when", ["during-a-compile", "after-first-lock"])
def test_ctrl_c_during_bump_changes_nothing(
    locked_incident: Repo, tmp_path: Path, when: str
) -> None:
    repo = locked_incident
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "incident")
    before = repo.snapshot()
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    proc = repo.start("bump", "mlflow", "3.5.0", "--jobs", "1", tmpdir=tmpdir)
    assert proc.stdout is not None
    if when == "during-a-compile":
        with compile_held(proc.pid):
            os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    else:
        first = proc.stdout.readline()  # one lock is compiled in the stage, the last is not
        assert first.split()[1:2] == ["updated"], first
        os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert err == "pinsync: interrupted; no file was changed\n"
    assert "bumped" not in out
    assert repo.snapshot() == before
    assert _git(repo, "status", "--porcelain") == ""
    assert [p.name for p in tmpdir.iterdir() if p.name.startswith("pinsync-stage")] == []


# --- found while writing these tests ---------------------------------------------------------


def test_bump_to_the_current_version_changes_nothing(locked_incident: Repo) -> None:
    before = locked_incident.snapshot()
    proc = locked_incident.pinsync("bump", "mlflow", "3.4.0")
    assert locked_incident.snapshot() == before
    assert proc.stdout.endswith(
        "mlflow is already at 3.4.0 everywhere\n"
        "no file changed: mlflow is at 3.4.0 in every lock and pin\n"
    )


def test_table_columns_line_up_with_the_header(locked_incident: Repo) -> None:
    proc = locked_incident.pinsync("bump", "mlflow", "3.5.0", "--dry-run")
    lines = proc.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("file "))
    head, rows = lines[start], lines[start + 1 : start + 7]
    assert {row.index("3.4.0 → 3.5.0") for row in rows} == {head.index("change")}
