"""`check` end to end: the real pip-compile against a local wheelhouse, and never a write."""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from conftest import INCIDENT_SOURCES, PIP_TOOLS_TABLE, TOOLS, Repo
from pinsync.report import FixCommands
from pinsync.toolchain import CURRENT

MakeRepo = Callable[[Mapping[str, str]], Repo]
FINDING_KEYS = {"file", "line", "package", "kind", "severity", "message"}
# Findings judged inside an environment (an image stage, a CI job) also name it.
ENVIRONMENT_KINDS = {"co-installed-conflict", "override", "dockerfile-pin", "pin-site"}
FIX = "run `python -m pinsync lock`"
OTHER_PYTHON = "3.99"  # a Python no machine has, so never found on PATH, in pyenv or uv


class Row(NamedTuple):
    file: str
    line: int
    package: str | None
    kind: str
    severity: str


@dataclass(frozen=True)
class Checked:
    code: int
    rows: list[Row]
    messages: list[str]


def run_check(
    repo: Repo, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`pinsync check`, asserting that it left every byte of the repository as it was."""
    before = repo.snapshot()
    proc = repo.pinsync("check", *args, env=env, check=False)
    assert repo.snapshot() == before, f"check {args} changed the repository"
    return proc


def check_json(repo: Repo, *args: str) -> Checked:
    proc = run_check(repo, "--format", "json", *args)
    assert proc.returncode in (0, 1), proc.stderr
    assert proc.stderr == ""
    payload: dict[str, Any] = json.loads(proc.stdout)  # the whole of stdout is one document
    assert set(payload) == {"ok", "findings"}
    assert payload["ok"] is (proc.returncode == 0)
    for finding in payload["findings"]:
        extra = {"environment"} if "environment" in finding else set()
        assert not extra or finding["kind"] in ENVIRONMENT_KINDS, finding
        assert set(finding) == FINDING_KEYS | extra
    rows = [
        Row(f["file"], f["line"], f["package"], f["kind"], f["severity"])
        for f in payload["findings"]
    ]
    return Checked(proc.returncode, rows, [f["message"] for f in payload["findings"]])


def edit(repo: Repo, name: str, old: str, new: str) -> None:
    text = repo.read(name)
    assert text.count(old) == 1, (name, old)
    repo.write({name: text.replace(old, new)})


@pytest.fixture(scope="session")
def lock_once(
    tmp_path_factory: pytest.TempPathFactory,
    early_wheels: Path,
) -> Callable[[Mapping[str, str]], dict[str, str]]:
    """`pinsync lock` of `sources`, once per session: every file of the locked repository.

    The stamps hash content only, so the files stay fresh when written into another
    repository; the tables below reuse one lock for many Dockerfiles.
    """
    done: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}

    def lock(sources: Mapping[str, str]) -> dict[str, str]:
        key = tuple(sorted(sources.items()))
        if key not in done:
            repo = Repo(tmp_path_factory.mktemp("locked"))
            repo.use_wheels(early_wheels)
            repo.write({"pyproject.toml": PIP_TOOLS_TABLE, **sources})
            repo.pinsync("lock")
            done[key] = {name: data.decode() for name, data in repo.snapshot().items()}
        return done[key]

    return lock


# --- the incident ---------------------------------------------------------------------------

INCIDENT_DRIFT = [
    Row("Dockerfile.mlflow", 2, "mlflow", "dockerfile-pin", "error"),
    Row("Dockerfile.mlflow", 2, "mlflow", "dockerfile-pin", "error"),
    Row("requirements-all.txt", 15, "mlflow", "out-of-date", "error"),
    Row("requirements-all.txt", 15, "mlflow", "stale-lock", "error"),
    Row("requirements-all.txt", 15, "mlflow", "stale-lock", "error"),
    Row("requirements-all.txt", 19, "numpy", "out-of-date", "error"),
    Row("requirements.txt", 15, "mlflow", "out-of-date", "error"),
    Row("requirements.txt", 15, "mlflow", "stale-lock", "error"),
    Row("requirements.txt", 17, "numpy", "out-of-date", "error"),
]
BUMP_HINT = "to match, or `python -m pinsync bump mlflow VERSION` to move both"
INCIDENT_MESSAGES = [
    # Dockerfile.mlflow installs no lock, so it is held against every lock pinning mlflow;
    # requirements-mlflow.txt agrees with it and is not named.
    f"mlflow: Dockerfile.mlflow:2 installs 3.4.0 but requirements-all.txt pins 2.9.0 (3.4.0 → 2.9.0 {BUMP_HINT})",
    f"mlflow: Dockerfile.mlflow:2 installs 3.4.0 but requirements.txt pins 2.9.0 (3.4.0 → 2.9.0 {BUMP_HINT})",
    f"mlflow: requirements-all.txt differs from a fresh compile (2.9.0 → 3.4.0); {FIX}",
    f"mlflow: requirements-mlflow.in:1 requires ==3.4.0 but requirements-all.txt pins 2.9.0 (2.9.0 → ==3.4.0); {FIX}",
    f"mlflow: requirements.in:1 requires ==3.4.0 but requirements-all.txt pins 2.9.0 (2.9.0 → ==3.4.0); {FIX}",
    f"numpy: requirements-all.txt differs from a fresh compile (1.0 → 1.1); {FIX}",
    f"mlflow: requirements.txt differs from a fresh compile (2.9.0 → 3.4.0); {FIX}",
    f"mlflow: requirements.in:1 requires ==3.4.0 but requirements.txt pins 2.9.0 (2.9.0 → ==3.4.0); {FIX}",
    f"numpy: requirements.txt differs from a fresh compile (1.0 → 1.1); {FIX}",
]


def test_incident_fails_before_lock_and_passes_after(incident_repo: Repo) -> None:
    before = check_json(incident_repo)
    assert before.code == 1
    assert before.rows == INCIDENT_DRIFT
    assert before.messages == INCIDENT_MESSAGES

    # Offline, the same drift minus what only re-resolution finds; the unstamped locks
    # are reported as unverified.
    offline = check_json(incident_repo, "--offline")
    assert offline.code == 1
    assert offline.rows == sorted(
        [r for r in INCIDENT_DRIFT if r.kind != "out-of-date"]
        + [
            Row(name, 1, None, "unverified", "info")
            for name in ("requirements-all.txt", "requirements-mlflow.txt", "requirements.txt")
        ],
        key=lambda r: (r.file, r.line, r.package or "", r.kind),
    )

    incident_repo.pinsync("lock")
    after = check_json(incident_repo)
    assert (after.code, after.rows) == (0, [])
    proc = run_check(incident_repo)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "All lock files are in sync.\n", "")


def test_stamped_repository_is_checked_without_the_index(
    incident_repo: Repo, all_wheels: Path
) -> None:
    incident_repo.pinsync("lock")  # leaves requirements-mlflow.txt, already right, unstamped
    shutil.rmtree(incident_repo.path / "wheels")
    # Control: an unstamped lock needs the resolver, and without the index it cannot run.
    # It is one finding, and the exit code says nothing could be judged (2), not drift.
    control = run_check(incident_repo)
    assert control.returncode == 2
    assert control.stderr == ""
    assert (
        "requirements-mlflow.txt:1: error [not-resolved] requirements-mlflow.txt could not be "
        "re-resolved here: mlflow==3.4.0 is not on the index (no version of it is available)\n"
    ) in control.stdout

    incident_repo.use_wheels(all_wheels)
    incident_repo.pinsync("lock", "--force")  # now every lock carries a stamp
    shutil.rmtree(incident_repo.path / "wheels")
    for args in (("--offline",), ()):
        checked = check_json(incident_repo, *args)
        assert (checked.code, checked.rows) == (0, []), args


# --- offline drift in stamped locks ---------------------------------------------------------

# (sources, edits after `lock` as {file: (old, new)}, expected findings of `check`, one message)
STAMPED_DRIFT = {
    "requirement-added-to-in": (
        {"requirements.in": "flask\n"},
        {"requirements.in": ("flask\n", "flask\ngunicorn\n")},
        [
            Row("requirements.txt", 1, None, "out-of-date", "error"),
            Row("requirements.txt", 1, "gunicorn", "stale-lock", "error"),
        ],
        "gunicorn: requirements.in:2 requires 'gunicorn' but requirements.txt has no pin for it "
        f"(missing → gunicorn); {FIX}",
    ),
    "top-level-requirement-removed": (
        {"requirements.in": "flask\nrequests\n"},
        {"requirements.in": ("flask\nrequests\n", "requests\n")},
        [
            Row("requirements.txt", 1, None, "out-of-date", "error"),
            Row("requirements.txt", 9, "flask", "stale-lock", "error"),
            # Pinned only for flask, so it goes with it.
            Row("requirements.txt", 11, "jinja2", "stale-lock", "error"),
        ],
        "flask: requirements.txt pins 2.0.0 as a top-level requirement of requirements.in, "
        f"which no longer asks for it (2.0.0 → removed); {FIX}",
    ),
    "removed-but-still-needed-by-another-pin": (
        {"requirements.in": "mlflow==2.9.0\nflask\n"},
        {"requirements.in": ("mlflow==2.9.0\nflask\n", "mlflow==2.9.0\n")},
        [Row("requirements.txt", 1, None, "out-of-date", "error")],
        f"requirements.txt is older than its inputs (requirements.in) or its compile options; {FIX}",
    ),
    "constraint-tightened": (
        {"constraints.txt": "urllib3<3\n", "requirements.in": "-c constraints.txt\nrequests\n"},
        {"constraints.txt": ("urllib3<3", "urllib3<2")},
        [
            Row("requirements.txt", 1, None, "out-of-date", "error"),
            Row("requirements.txt", 11, "urllib3", "constraint-violated", "error"),
        ],
        "urllib3: constraints.txt:1 constrains <2 but requirements.txt pins 2.0.3 "
        f"(2.0.3 → <2); {FIX}",
    ),
    "lock-edited-by-hand": (
        {"requirements.in": "flask\n"},
        {"requirements.txt": ("jinja2==3.1.0", "jinja2==3.1.4")},
        [Row("requirements.txt", 7, None, "out-of-date", "error")],  # the line after the header
        "requirements.txt was edited by hand since pinsync wrote it (its stamp no longer "
        f"matches); {FIX}",
    ),
    "only-comments-of-the-in-changed": (
        {"requirements.in": "flask\n"},
        {"requirements.in": ("flask\n", "# the web app\nflask  # pinned by the lock\n\n")},
        [],
        None,
    ),
}


@pytest.mark.parametrize(
    ("sources", "edits", "expected", "message"), STAMPED_DRIFT.values(), ids=STAMPED_DRIFT
)
def test_stamped_lock_drift_is_found_offline(
    make_repo: MakeRepo,
    sources: Mapping[str, str],
    edits: Mapping[str, tuple[str, str]],
    expected: list[Row],
    message: str | None,
) -> None:
    repo = make_repo(sources)
    repo.pinsync("lock")
    for name, (old, new) in edits.items():
        edit(repo, name, old, new)
    offline = check_json(repo, "--offline")
    assert offline.rows == expected
    assert offline.code == (1 if expected else 0)
    if message is not None:
        assert message in offline.messages
    # The stamps vouch for (or condemn) every lock, so the full run finds the same, and
    # does so without the index.
    shutil.rmtree(repo.path / "wheels")
    online = check_json(repo)
    assert (online.code, online.rows, online.messages) == (
        offline.code,
        offline.rows,
        offline.messages,
    )


def test_missing_lock_is_stale(make_repo: MakeRepo) -> None:
    repo = make_repo({"requirements.in": "flask\n", "api.in": "-r requirements.in\nrequests\n"})
    checked = check_json(repo, "--offline")
    assert checked.code == 1
    assert checked.rows == [
        Row("api.txt", 1, None, "stale-lock", "error"),
        Row("requirements.txt", 1, None, "stale-lock", "error"),
    ]
    assert (
        checked.messages[0] == f"api.txt does not exist yet (missing → compiled from api.in); {FIX}"
    )


# --- unstamped locks: re-resolution, and what stands in for it ------------------------------

HEADER_PYTHON = f"autogenerated by pip-compile with Python {CURRENT}"

# (edits of the plain pip-compile output, check arguments, expected findings, exit code, message)
UNSTAMPED = {
    "in-sync": ({}, (), [], 0, None),
    "differs-from-a-fresh-compile": (
        {"jinja2==3.1.0": "jinja2==3.0.0"},
        (),
        [Row("requirements.txt", 11, "jinja2", "out-of-date", "error")],
        1,
        f"jinja2: requirements.txt differs from a fresh compile (3.0.0 → 3.1.0); {FIX}",
    ),
    "pin-missing-from-a-fresh-compile": (
        {"jinja2==3.1.0\n    # via flask\n": ""},
        (),
        [Row("requirements.txt", 1, "jinja2", "out-of-date", "error")],
        1,
        f"jinja2: requirements.txt differs from a fresh compile (missing → 3.1.0); {FIX}",
    ),
    "only-an-annotation-differs": (
        {"# via flask": "# via mlflow"},
        (),
        [Row("requirements.txt", 1, None, "annotations-differ", "warning")],
        0,
        "requirements.txt: same pins as a fresh compile, but its header or annotations differ; "
        f"{FIX} to refresh them",
    ),
    "offline-cannot-vouch": (
        {},
        ("--offline",),
        [Row("requirements.txt", 1, None, "unverified", "info")],
        0,
        "requirements.txt has no pinsync stamp, so --offline cannot tell whether it is what "
        "`python -m pinsync lock` would write; run without --offline, or `python -m pinsync lock --force` to stamp it",
    ),
    # A stale pin as well: had the lock been re-resolved, it would be out-of-date.
    "other-python-is-not-re-resolved": (
        {
            "jinja2==3.1.0": "jinja2==3.0.0",
            HEADER_PYTHON: HEADER_PYTHON.replace(CURRENT, OTHER_PYTHON),
        },
        (),
        [Row("requirements.txt", 1, None, "wrong-python", "warning")],
        0,
        f"requirements.txt was compiled for Python {OTHER_PYTHON}: Python {OTHER_PYTHON} is "
        "needed (the lock's header or the config names it) but it is not installed here; "
        "checked against its sources but not re-resolved",
    ),
}


@pytest.mark.parametrize(
    ("edits", "args", "expected", "code", "message"), UNSTAMPED.values(), ids=UNSTAMPED
)
def test_unstamped_lock(
    make_repo: MakeRepo,
    edits: Mapping[str, str],
    args: tuple[str, ...],
    expected: list[Row],
    code: int,
    message: str | None,
) -> None:
    repo = make_repo({"requirements.in": "flask\n"})
    repo.pip_compile("--output-file=requirements.txt", "requirements.in")
    for old, new in edits.items():
        edit(repo, "requirements.txt", old, new)
    checked = check_json(repo, *args)
    assert (checked.code, checked.rows) == (code, expected)
    assert checked.messages == ([message] if message else [])


# --- no findings ----------------------------------------------------------------------------

RICH_SOURCES = {
    "constraints.txt": "urllib3<3\n",
    "requirements.in": (
        "Zope.SQLAlchemy\n"
        "Jinja2>=3\n"
        "packaging_legacy\n"
        "requests[socks]\n"
        'pytest ; python_version >= "3.8"\n'
        'gunicorn ; python_version < "3"\n'  # never installed, so never locked
    ),
    "dev.in": "-c constraints.txt\n-r requirements.in\nFlask\nREQUESTS\n",
}


@pytest.mark.parametrize("hashes_from", ["config", "header"])
def test_repository_in_sync_has_no_findings(make_repo: MakeRepo, hashes_from: str) -> None:
    if hashes_from == "config":
        repo = make_repo(
            {
                **RICH_SOURCES,
                "pyproject.toml": PIP_TOOLS_TABLE
                + '[tool.pinsync]\ncompile-args = ["--generate-hashes"]\n',
            }
        )
    else:
        repo = make_repo(RICH_SOURCES)
        for name in ("requirements", "dev"):
            repo.pip_compile("--generate-hashes", f"--output-file={name}.txt", f"{name}.in")
    repo.pinsync("lock")
    for name in ("requirements.txt", "dev.txt"):
        lock = repo.read(name)
        assert lock.count("--hash=sha256:") == (8 if name == "dev.txt" else 7)
        assert 'pytest==8.0.0 ; python_version >= "3.8" \\\n' in lock
        assert "requests[socks]==2.31.0 \\\n" in lock
        assert "zope-sqlalchemy==3.1 \\\n" in lock and "packaging-legacy==23.0.post0 \\\n" in lock
        assert "gunicorn" not in lock
    # Adopted locks keep their bytes and so have no stamp: this re-resolves them.
    checked = check_json(repo)
    assert (checked.code, checked.rows) == (0, [])
    if hashes_from == "header":
        repo.pinsync("lock", "--force")  # stamped, so that --offline can vouch for them
    for args in (("--offline",), ("--full",)):
        checked = check_json(repo, *args)
        assert (checked.code, checked.rows) == (0, []), args


# --- Dockerfiles ----------------------------------------------------------------------------

MLFLOW_LOCK = {"requirements.in": "mlflow==2.9.0\n"}

# (Dockerfile, expected findings, message of the first)
DOCKERFILE_PINS = {
    "literal": (
        "FROM python:3.11-slim\nRUN pip install --no-cache-dir mlflow==3.4.0 gunicorn\n",
        [Row("Dockerfile", 2, "mlflow", "dockerfile-pin", "error")],
        "mlflow: Dockerfile:2 installs 3.4.0 but requirements.txt pins 2.9.0 (3.4.0 → 2.9.0 to "
        "match, or `python -m pinsync bump mlflow VERSION` to move both)",
    ),
    "arg-variable": (
        'FROM python:3.11-slim\nARG MLFLOW_VERSION=2.0\nRUN pip install "mlflow==${MLFLOW_VERSION}"\n',
        [Row("Dockerfile", 3, "mlflow", "dockerfile-pin", "error")],  # the RUN, not the ARG
        "mlflow: Dockerfile:3 installs 2.0 but requirements.txt pins 2.9.0 (2.0 → 2.9.0 to "
        "match, or `python -m pinsync bump mlflow VERSION` to move both)",
    ),
    "third-line-of-a-continued-run": (
        "FROM python:3.11-slim\n"
        "RUN pip install --no-cache-dir \\\n"
        "        gunicorn==21.2.0 \\\n"
        "        MLflow==3.4.0 \\\n"
        "    && pip check\n",
        [Row("Dockerfile", 4, "mlflow", "dockerfile-pin", "error")],
        "mlflow: Dockerfile:4 installs 3.4.0 but requirements.txt pins 2.9.0 (3.4.0 → 2.9.0 to "
        "match, or `python -m pinsync bump mlflow VERSION` to move both)",
    ),
    "same-version": (
        "FROM python:3.11-slim\nRUN pip install mlflow==2.9.0\n",
        [],
        None,
    ),
    "unpinned": (
        "FROM python:3.11-slim\nRUN pip install 'mlflow>=3'\n",
        [],
        None,
    ),
}


@pytest.mark.parametrize(
    ("dockerfile", "expected", "message"), DOCKERFILE_PINS.values(), ids=DOCKERFILE_PINS
)
def test_dockerfile_pin(
    make_repo: MakeRepo,
    lock_once: Callable[[Mapping[str, str]], dict[str, str]],
    dockerfile: str,
    expected: list[Row],
    message: str | None,
) -> None:
    repo = make_repo({**lock_once(MLFLOW_LOCK), "Dockerfile": dockerfile})
    checked = check_json(repo)
    assert (checked.code, checked.rows) == ((1 if expected else 0), expected)
    assert checked.messages == ([message] if message else [])


URLLIB3_LOCKS = {
    "requirements/dev.in": "requests\nurllib3<2\n",  # urllib3==1.26.18
    "requirements/prod.in": "requests\n",  # urllib3==2.0.3
    "requirements/legacy.in": "urllib3<2\n",  # urllib3==1.26.18
}
CO_INSTALLED = {
    "one-command": (
        "FROM python:3.11-slim\nRUN pip install -r /app/requirements/dev.txt -r /app/requirements/prod.txt\n",
        2,
        2,
    ),
    "consecutive-runs": (
        "FROM python:3.11-slim\nCOPY . /app\n"
        "RUN pip install -r /app/requirements/dev.txt\n"
        "RUN pip install -r requirements/prod.txt\n",
        4,
        3,
    ),
    "one-run-two-commands": (
        "FROM python:3.11-slim\nRUN pip install -r requirements/dev.txt && pip install -r requirements/prod.txt\n",
        2,
        2,
    ),
    "stage-chain": (
        "FROM python:3.11-slim AS base\n"
        "RUN pip install -r requirements/dev.txt\n"
        "FROM base AS deps\n"
        "RUN echo building\n"
        "FROM deps AS app\n"
        "RUN pip install -r requirements/prod.txt\n",
        6,
        2,
    ),
    "three-locks-one-finding-per-package": (
        "FROM python:3.11-slim\n"
        "RUN pip install -r requirements/dev.txt\n"
        "RUN pip install -r requirements/prod.txt\n"
        "RUN pip install -r requirements/legacy.txt\n",
        3,
        2,
    ),
}


@pytest.mark.parametrize(("dockerfile", "line", "earlier"), CO_INSTALLED.values(), ids=CO_INSTALLED)
def test_co_installed_conflict(
    make_repo: MakeRepo,
    lock_once: Callable[[Mapping[str, str]], dict[str, str]],
    dockerfile: str,
    line: int,
    earlier: int,
) -> None:
    repo = make_repo({**lock_once(URLLIB3_LOCKS), "docker/Dockerfile": dockerfile})
    checked = check_json(repo)
    assert checked.code == 1
    assert checked.rows == [
        Row("docker/Dockerfile", line, "urllib3", "co-installed-conflict", "error")
    ]
    assert checked.messages == [
        "urllib3: this image installs requirements/dev.txt (urllib3==1.26.18, line "
        f"{earlier}) and requirements/prod.txt (urllib3==2.0.3); 1.26.18 → 2.0.3: pip "
        "refuses them in one command, or the later install silently wins. Run `python -m pinsync lock` to align them"
    ]


SEPARATE_IMAGES = {
    "separate-stages": (
        "FROM python:3.11-slim AS a\nRUN pip install -r requirements/dev.txt\n"
        "FROM python:3.11-slim AS b\nRUN pip install -r requirements/prod.txt\n"
    ),
    "locks-that-agree": (
        "FROM python:3.11-slim\nRUN pip install -r requirements/dev.txt -r requirements/legacy.txt\n"
    ),
}


@pytest.mark.parametrize("dockerfile", SEPARATE_IMAGES.values(), ids=SEPARATE_IMAGES)
def test_locks_not_installed_together_do_not_conflict(
    make_repo: MakeRepo,
    lock_once: Callable[[Mapping[str, str]], dict[str, str]],
    dockerfile: str,
) -> None:
    repo = make_repo({**lock_once(URLLIB3_LOCKS), "docker/Dockerfile": dockerfile})
    checked = check_json(repo)
    assert (checked.code, checked.rows) == (0, [])


# --- layers ---------------------------------------------------------------------------------


def test_layers_may_disagree_by_default(make_repo: MakeRepo, all_wheels: Path) -> None:
    """Each layer is its own resolution in pip-compile's eyes: no finding unless asked."""
    repo = make_repo({"base.in": "flask\n", "all.in": "-r base.in\nrequests\n"})
    repo.pip_compile("--output-file=base.txt", "base.in")
    repo.use_wheels(all_wheels)
    repo.pip_compile("--output-file=all.txt", "all.in")
    checked = check_json(repo, "--offline")
    assert (checked.code, [r.kind for r in checked.rows]) == (0, ["unverified", "unverified"])


@pytest.mark.parametrize(
    ("config", "severity", "code"),
    [
        ('[tool.pinsync]\nlayers-disagree = "warning"\n', "warning", 0),
        ('[tool.pinsync]\nlayers-disagree = "error"\n', "error", 1),
    ],
    ids=["configured-warning", "configured-error"],
)
def test_layers_disagree(
    make_repo: MakeRepo,
    all_wheels: Path,
    config: str,
    severity: str,
    code: int,
) -> None:
    repo = make_repo({"base.in": "flask\n", "all.in": "-r base.in\nrequests\n"})
    repo.pip_compile("--output-file=base.txt", "base.in")  # flask 2.0.0, Jinja2 3.1.0
    repo.use_wheels(all_wheels)
    repo.pip_compile("--output-file=all.txt", "all.in")  # compiled later: flask 3.0.0, Jinja2 3.1.4
    repo.write({"pyproject.toml": PIP_TOOLS_TABLE + config})
    checked = check_json(repo, "--offline")
    assert checked.code == code
    assert checked.rows == [
        Row("all.txt", 1, None, "unverified", "info"),
        Row("all.txt", 9, "flask", "layers-disagree", severity),
        Row("all.txt", 11, "jinja2", "layers-disagree", severity),
        Row("base.txt", 1, None, "unverified", "info"),
    ]
    assert checked.messages[1] == (
        "flask: all.txt pins 3.0.0 but the layer it includes, base.txt, pins 2.0.0 (2.0.0 → 3.0.0); "
        f"{FIX}"
    )


# --- report formats -------------------------------------------------------------------------

PIN_MESSAGE = (
    "mlflow: Dockerfile.mlflow:2 installs 3.4.0 but requirements.txt pins 2.9.0 (3.4.0 → 2.9.0 "
    "to match, or `python -m pinsync bump mlflow VERSION` to move both)"
)
UNVERIFIED_MESSAGE = (
    "requirements.txt has no pinsync stamp, so --offline cannot tell whether it is what "
    "`python -m pinsync lock` would write; run without --offline, or `python -m pinsync lock --force` to stamp it"
)
TEXT_REPORT = (
    "Dockerfile.mlflow\n"
    f"  Dockerfile.mlflow:2: error [dockerfile-pin] {PIN_MESSAGE}\n"
    "requirements.txt\n"
    f"  requirements.txt:1: info [unverified] {UNVERIFIED_MESSAGE}\n"
    "1 error, 0 warnings, 1 note.\n"
    "Fix: python -m pinsync lock   (pins elsewhere: python -m pinsync bump NAME VERSION)\n"
)
GITHUB_REPORT = (
    f"::error file=Dockerfile.mlflow,line=2,title=pinsync dockerfile-pin::{PIN_MESSAGE}\n"
    f"::notice file=requirements.txt,line=1,title=pinsync unverified::{UNVERIFIED_MESSAGE}\n"
) + TEXT_REPORT
JSON_REPORT = {
    "ok": False,
    "findings": [
        {
            "file": "Dockerfile.mlflow",
            "line": 2,
            "package": "mlflow",
            "kind": "dockerfile-pin",
            "severity": "error",
            "message": PIN_MESSAGE,
        },
        {
            "file": "requirements.txt",
            "line": 1,
            "package": None,
            "kind": "unverified",
            "severity": "info",
            "message": UNVERIFIED_MESSAGE,
        },
    ],
}


@pytest.fixture
def error_and_warning(make_repo: MakeRepo) -> Repo:
    """An unstamped lock and a Dockerfile that disagrees with it: checked --offline, one of each."""
    repo = make_repo(
        {
            "requirements.in": "mlflow==2.9.0\n",
            "Dockerfile.mlflow": INCIDENT_SOURCES["Dockerfile.mlflow"],
        }
    )
    repo.pip_compile("--output-file=requirements.txt", "requirements.in")
    return repo


@pytest.mark.parametrize("fmt", ["text", "github", "json"])
def test_report_format(error_and_warning: Repo, fmt: str) -> None:
    proc = run_check(error_and_warning, "--offline", "--format", fmt)
    assert (proc.returncode, proc.stderr) == (1, "")
    assert "\033" not in proc.stdout  # stdout is a pipe, not a terminal
    if fmt == "json":
        assert proc.stdout.startswith("{\n") and proc.stdout.endswith("}\n")
        assert json.loads(proc.stdout) == JSON_REPORT
    else:
        assert proc.stdout == {"text": TEXT_REPORT, "github": GITHUB_REPORT}[fmt]


@pytest.mark.parametrize(
    ("no_color", "colored"), [(False, True), (True, False)], ids=["tty", "tty-NO_COLOR"]
)
def test_text_report_is_colored_only_on_a_terminal(
    error_and_warning: Repo, no_color: bool, colored: bool
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env["PYTHONPATH"] = str(TOOLS)
    if no_color:
        env["NO_COLOR"] = "1"
    before = error_and_warning.snapshot()
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pinsync", "check", "--offline"],
            cwd=error_and_warning.path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=terminal,
            stderr=subprocess.PIPE,
        )
        os.close(terminal)
        chunks: list[bytes] = []
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(timeout=60) == 1
    finally:
        os.close(controller)
    out = b"".join(chunks).decode().replace("\r\n", "\n")
    assert error_and_warning.snapshot() == before
    if colored:
        assert out.startswith("\033[1mDockerfile.mlflow\033[0m\n")
        assert "Dockerfile.mlflow:2: \033[31merror\033[0m [dockerfile-pin]" in out
        assert "requirements.txt:1: \033[36minfo\033[0m [unverified]" in out
    else:
        assert out == TEXT_REPORT


# --- could not check ------------------------------------------------------------------------

# (files, the error line that stderr must be, or its start and end)
CANNOT_CHECK = {
    "malformed-in": (
        {"requirements.in": "flask\nflask >= = 2\n"},
        ("pinsync: error: requirements.in:2: invalid requirement (", "): 'flask >= = 2'"),
    ),
    "bad-config-value": (
        {
            "requirements.in": "flask\n",
            "pyproject.toml": PIP_TOOLS_TABLE + '[tool.pinsync]\nlayers-disagree = "sometimes"\n',
        },
        ('pinsync: error: [tool.pinsync] layers-disagree must be "off", "warning" or "error"', ""),
    ),
    "broken-exec-form-run": (
        {
            "requirements.in": "flask\n",
            "Dockerfile": 'FROM python:3.11\nRUN ["pip", "install", "mlflow==2.9.0"\n',
        },
        (
            "pinsync: error: Dockerfile:2: RUN is not a valid JSON array of strings: "
            '\'RUN ["pip", "install", "mlflow==2.9.0"\'',
            "",
        ),
    ),
}


@pytest.mark.parametrize(("files", "error"), CANNOT_CHECK.values(), ids=CANNOT_CHECK)
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_could_not_check_is_exit_2_with_one_line(
    make_repo: MakeRepo,
    files: Mapping[str, str],
    error: tuple[str, str],
    fmt: str,
) -> None:
    repo = make_repo(files)
    proc = run_check(repo, "--format", fmt)
    assert proc.returncode == 2
    if fmt == "json":
        # A CI step parsing stdout still gets one JSON object, carrying the error.
        payload = json.loads(proc.stdout)
        assert payload["ok"] is False and payload["findings"] == []
        assert proc.stderr == f"pinsync: error: {payload['error']}\n"
    else:
        assert proc.stdout == ""
    start, end = error
    assert proc.stderr.endswith(end + "\n") and proc.stderr.startswith(start)
    assert proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr


# --- known bugs -----------------------------------------------------------------------------

# A top-level pin whose requirement was removed from the .in, in an unstamped lock checked
# --offline: (pip-compile arguments, sources, the .in after the edit, line of the flask pin).
REMOVED_TOP_LEVEL = {
    "default-annotations": pytest.param(
        (),
        {"requirements.in": "flask\nrequests\n"},
        "requests\n",
        9,
    ),
    "line-annotations": pytest.param(
        ("--annotation-style=line",),
        {"requirements.in": "flask\nrequests\n"},
        "requests\n",
        9,
    ),
    "also-constrained": pytest.param(
        (),
        {
            "constraints.txt": "flask<3\n",
            "requirements.in": "-c constraints.txt\nflask\nrequests\n",
        },
        "-c constraints.txt\nrequests\n",
        9,
    ),
}


@pytest.mark.parametrize(
    ("compile_args", "sources", "edited", "line"), REMOVED_TOP_LEVEL.values(), ids=REMOVED_TOP_LEVEL
)
def test_removed_top_level_pin_is_stale_offline(
    make_repo: MakeRepo,
    compile_args: tuple[str, ...],
    sources: Mapping[str, str],
    edited: str,
    line: int,
) -> None:
    repo = make_repo(sources)
    repo.pip_compile(*compile_args, "--output-file=requirements.txt", "requirements.in")
    repo.write({"requirements.in": edited})
    checked = check_json(repo, "--offline")
    assert checked.rows[:2] == [
        Row("requirements.txt", 1, None, "unverified", "info"),
        Row("requirements.txt", line, "flask", "stale-lock", "error"),
    ]
    # Jinja2, pinned only for flask, is stale with it.
    assert [(r.package, r.kind) for r in checked.rows[2:]] == [("jinja2", "stale-lock")]
    assert checked.code == 1


@pytest.mark.skipif(
    sys.version_info.micro == 0, reason="needs a Python whose micro version is not 0"
)
def test_python_full_version_marker_in_sync(make_repo: MakeRepo) -> None:
    micro = f"{sys.version_info.major}.{sys.version_info.minor}.1"
    repo = make_repo({"requirements.in": f'flask\ngunicorn ; python_full_version >= "{micro}"\n'})
    repo.pinsync("lock")
    assert f'gunicorn==21.2.0 ; python_full_version >= "{micro}"\n' in repo.read("requirements.txt")
    checked = check_json(repo)
    assert (checked.code, checked.rows) == (0, [])


# --- hints the user can paste ----------------------------------------------------------------

# (--root as typed, run through nox?, the lock hint, the bump hint)
HINTS = [
    pytest.param(None, True, "nox -s lock", "nox -s bump --", id="nox-default-root"),
    pytest.param(
        "../svc", True, "nox -s lock -- --root ../svc", "nox -s bump -- --root ../svc", id="nox"
    ),
    pytest.param(
        "my svc",
        True,
        "nox -s lock -- --root 'my svc'",
        "nox -s bump -- --root 'my svc'",
        id="nox-quoted",
    ),
    pytest.param(None, False, "python -m pinsync lock", "python -m pinsync bump", id="cli"),
    pytest.param(
        "svc",
        False,
        "python -m pinsync lock --root svc",
        "python -m pinsync bump --root svc",
        id="cli-root",
    ),
]


@pytest.mark.parametrize(("root", "via_nox", "lock", "bump"), HINTS)
def test_hints_carry_the_session_and_the_root_as_typed(
    root: str | None, via_nox: bool, lock: str, bump: str
) -> None:
    fix = FixCommands.for_invocation(root, via_nox)
    assert (fix.lock, fix.bump) == (lock, bump)
    assert fix.lock_force.startswith(lock) and fix.lock_force.endswith(" --force")
    assert fix.respell("run `nox -s lock`; or `nox -s lock -- --force`; `nox -s bump -- x 1`") == (
        f"run `{lock}`; or `{fix.lock_force}`; `{bump} x 1`"
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        pytest.param({}, "`python -m pinsync lock --root repo`", id="cli"),
        pytest.param(
            {"PINSYNC_DEFAULT_ROOT": "/elsewhere"}, "`nox -s lock -- --root repo`", id="via-nox"
        ),
    ],
)
def test_a_check_of_another_directory_hints_at_that_directory(
    make_repo: MakeRepo, env: dict[str, str], expected: str
) -> None:
    repo = make_repo({"requirements.in": "flask\n"})
    proc = repo.pinsync(
        "check", "--offline", "--root", "repo", cwd=repo.path.parent, env=env, check=False
    )
    assert proc.returncode == 1, proc.stderr
    assert expected in proc.stdout, proc.stdout
    assert "`nox -s lock`" not in proc.stdout and "`python -m pinsync lock`" not in proc.stdout


# --- pip-tools versions that disagree on unsafe pins ------------------------------------------

LOCK_WITH_SETUPTOOLS = "six==1.0\n    # via -r a.in\nsetuptools==80.9.0\n    # via zope-interface\n"
LOCK_WITHOUT = "six==1.0\n    # via -r a.in\n"


@pytest.mark.parametrize(
    ("old", "new", "allow_unsafe", "expected"),
    [
        pytest.param(
            LOCK_WITH_SETUPTOOLS,
            LOCK_WITHOUT,
            False,
            ("annotations-differ", "warning"),
            id="tools-disagree",
        ),
        pytest.param(
            LOCK_WITHOUT,
            LOCK_WITH_SETUPTOOLS,
            False,
            ("annotations-differ", "warning"),
            id="tools-disagree-the-other-way",
        ),
        pytest.param(
            LOCK_WITH_SETUPTOOLS,
            LOCK_WITHOUT,
            True,
            ("out-of-date", "error"),
            id="pinned-on-purpose",
        ),
        pytest.param(
            LOCK_WITH_SETUPTOOLS,
            LOCK_WITH_SETUPTOOLS.replace("80.9.0", "81.0.0"),
            False,
            ("out-of-date", "error"),
            id="a-version-that-moved-is-drift",
        ),
    ],
)
def test_unsafe_pins_without_allow_unsafe_are_a_tool_difference(
    old: str, new: str, allow_unsafe: bool, expected: tuple[str, str]
) -> None:
    from pathlib import PurePosixPath

    from pinsync.lockcheck import compare_locks
    from pinsync.lockfile import parse_lockfile

    path = PurePosixPath("a.txt")
    found = list(
        compare_locks(path, parse_lockfile(path, old), parse_lockfile(path, new), allow_unsafe)
    )
    assert [(f.package, f.kind, f.severity) for f in found] == [("setuptools", *expected)]
