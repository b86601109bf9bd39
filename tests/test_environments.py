"""Environments beyond Dockerfiles: CI jobs and tox environments that install locks.

Each repository is locked by pinsync (the real pip-compile, offline); the locks
disagree by construction (`align = false`), so where one environment installs both,
the check must say so, naming the environment and both installs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import PurePosixPath

import pytest

from conftest import PIP_TOOLS_TABLE, Repo
from pinsync.environments import github_jobs, tox_environments
from test_real_repos import check

MakeRepo = Callable[[Mapping[str, str]], Repo]

TWO_LOCKS = {
    "dev.in": "urllib3==2.0.3\n",
    "common.in": "requests\n",  # urllib3 resolves to 2.0.3 ...
    "compat.in": "urllib3==1.26.18\n",  # ... and here to 1.26.18
    "pyproject.toml": PIP_TOOLS_TABLE + "[tool.pinsync]\nalign = false\n",
}

WORKFLOW = """name: ci
on: push
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - name: deps
        run: |
          python -m pip install -r common.txt
          pip install {second}
  docs:
    runs-on: ubuntu-latest
    steps:
      - run: pip install -r compat.txt
"""


@pytest.mark.parametrize(
    ("second", "expected"),
    [
        (
            "-r compat.txt",
            [(".github/workflows/ci.yml", 11, "urllib3", "co-installed-conflict", "error")],
        ),
        # A later --no-deps command states an override; it breaks no source here.
        (
            "--no-deps -r compat.txt",
            [(".github/workflows/ci.yml", 11, "urllib3", "override", "warning")],
        ),
        # The same, breaking dev.in's urllib3==2.0.3: the environment misses a written requirement.
        (
            "-r dev.txt && pip install --no-deps -r compat.txt",
            [
                (".github/workflows/ci.yml", 11, "urllib3", "override", "error"),
            ],
        ),
        # One lock per job: nothing installed together.
        ("requests", []),
    ],
    ids=["two-locks-one-job", "no-deps-override", "override-breaks-dev-in", "one-lock-per-job"],
)
def test_a_ci_job_is_one_environment(
    make_repo: MakeRepo, second: str, expected: list[tuple[str, int, str, str, str]]
) -> None:
    repo = make_repo({**TWO_LOCKS, ".github/workflows/ci.yml": WORKFLOW.format(second=second)})
    repo.pinsync("lock")
    code, report = check(repo, "--offline")
    found = [
        (f["file"], f["line"], f["package"], f["kind"], f["severity"])
        for f in report["findings"]
        if f["severity"] != "info"
    ]
    assert found == expected
    assert code == (1 if any(e[4] == "error" for e in expected) else 0)
    for f in report["findings"]:
        if f["kind"] == "co-installed-conflict":
            assert "job test" in f["message"] and "common.txt" in f["message"]


def test_a_tox_environment_is_one_environment(make_repo: MakeRepo) -> None:
    repo = make_repo(
        {
            **TWO_LOCKS,
            "tox.ini": "[tox]\nenvlist = py\n\n[testenv]\ndeps =\n    -r{toxinidir}/common.txt\n"
            "commands_pre =\n    pip install -r compat.txt\ncommands = pytest\n",
        }
    )
    repo.pinsync("lock")
    code, report = check(repo, "--offline")
    [conflict] = [f for f in report["findings"] if f["severity"] == "error"]
    assert (conflict["file"], conflict["line"], conflict["kind"]) == (
        "tox.ini",
        8,
        "co-installed-conflict",
    )
    assert "[testenv]" in conflict["message"] and code == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "jobs:\n  a:\n    defaults:\n      run:\n        working-directory: svc\n"
            "    steps:\n      - working-directory: svc\n        run: pip install -r req.txt\n",
            [("a", "svc/req.txt", 8)],
        ),
        (
            "jobs:\n  b:\n    steps:\n      - run: >\n          pip install\n"
            "          -r x.txt\n      - run: cd sub && pip-sync a.txt b.txt\n",
            [("b", "x.txt", 5), ("b", "sub/a.txt", 7), ("b", "sub/b.txt", 7)],
        ),
        ("on: push\n", []),
        ("jobs:\n  c:\n    steps:\n      - run: pip install -r $REQS\n", []),
    ],
    ids=["working-directory", "folded-block-and-pip-sync", "no-jobs", "a-variable"],
)
def test_github_jobs_reader(text: str, expected: list[tuple[str, str, int]]) -> None:
    envs = github_jobs(PurePosixPath(".github/workflows/x.yml"), text)
    got = [(e.name.rsplit(" ", 1)[-1], i.path.as_posix(), i.line) for e in envs for i in e.installs]
    assert got == expected


def test_tox_reader_ignores_what_is_not_a_testenv() -> None:
    text = "[tox]\nrequires = tox>=4\n[flake8]\nmax-line-length = 100\n"
    assert tox_environments(PurePosixPath("tox.ini"), text) == []


NOXFILE = '''import nox

@nox.session(python="3.11")
def tests(session):
    """Run the tests."""
    session.install("-r", "common.txt")
    session.install({second})
    session.run("pytest")

@nox.session
def docs(session):
    session.install("-r", "compat.txt")
'''


@pytest.mark.parametrize(
    ("second", "errors"),
    [('"-r", "compat.txt"', [("noxfile.py", 7, "urllib3")]), ('"requests"', [])],
    ids=["two-locks-one-session", "one-lock-per-session"],
)
def test_a_nox_session_is_one_environment(
    make_repo: MakeRepo, second: str, errors: list[tuple[str, int, str]]
) -> None:
    repo = make_repo({**TWO_LOCKS, "noxfile.py": NOXFILE.format(second=second)})
    repo.pinsync("lock")
    code, report = check(repo, "--offline")
    found = [
        (f["file"], f["line"], f["package"]) for f in report["findings"] if f["severity"] == "error"
    ]
    assert (code, found) == ((1 if errors else 0), errors)
    if errors:
        assert "session tests" in report["findings"][0]["message"]


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        (
            ".gitlab-ci.yml",
            "stages: [test]\n.tpl:\n  script:\n    - pip install -r a.txt\n"
            "test:\n  before_script:\n    - pip install -r a.txt\n  script:\n"
            "    - >\n      pip install\n      -r b.txt\n    - pytest\n",
            [("test", "a.txt", 7), ("test", "b.txt", 10)],
        ),
        (
            "Makefile",
            "VENV = .venv\n\ninstall: ## dev setup\n\tpip install -r a.txt\n\t@pip install \\\n"
            "\t  -r b.txt\n\nlint:\n\truff check .\n",
            [("install", "a.txt", 4), ("install", "b.txt", 5)],
        ),
        # compose: the shell form, `sh -c` in the exec form, and a folded entrypoint.
        (
            "deploy/docker-compose.yml",
            'services:\n  web:\n    build: .\n    command: sh -c "pip install -r a.txt'
            ' && pip install --no-deps -r b.txt && ./run"\n  worker:\n    command:\n'
            "      - bash\n      - -c\n      - pip install -r c.txt\n  db:\n    image: pg\n"
            '  tasks:\n    entrypoint: >\n      sh -c "pip install -r a.txt"\n',
            [
                ("web", "deploy/a.txt", 4),
                ("web", "deploy/b.txt", 4),
                ("worker", "deploy/c.txt", 7),
                ("tasks", "deploy/a.txt", 14),
            ],
        ),
    ],
    ids=["gitlab", "makefile", "compose"],
)
def test_more_environment_readers(
    name: str, text: str, expected: list[tuple[str, str, int]]
) -> None:
    from pinsync.environments import compose_services, gitlab_jobs, make_targets

    reader = {".gitlab-ci.yml": gitlab_jobs, "Makefile": make_targets}.get(name, compose_services)
    envs = reader(PurePosixPath(name), text)
    got = [(e.name.rsplit(" ", 1)[-1], i.path.as_posix(), i.line) for e in envs for i in e.installs]
    assert got == expected


def test_a_job_that_runs_a_script_installs_what_the_script_installs(make_repo: MakeRepo) -> None:
    """The CI job installs common.txt, then runs scripts/bootstrap.sh, which installs
    compat.txt: one environment, and the finding points at the script's line."""
    workflow = (
        "jobs:\n  test:\n    steps:\n      - run: pip install -r common.txt\n"
        "      - run: bash scripts/bootstrap.sh\n"
    )
    script = "#!/bin/sh\nset -e\npip install -r compat.txt\n"
    repo = make_repo(
        {**TWO_LOCKS, ".github/workflows/ci.yml": workflow, "scripts/bootstrap.sh": script}
    )
    repo.pinsync("lock")
    code, report = check(repo, "--offline")
    errors = [
        (f["file"], f["line"], f["kind"]) for f in report["findings"] if f["severity"] == "error"
    ]
    assert (code, errors) == (1, [("scripts/bootstrap.sh", 3, "co-installed-conflict")])
    assert "job test" in report["findings"][0]["message"] or any(
        "job test" in f["message"] for f in report["findings"]
    )


DOCKERFILE = """FROM python:3.11 AS base
COPY common.txt compat.txt /app/
RUN pip install -r /app/common.txt
FROM base AS dev
RUN pip install -r /app/compat.txt
"""


@pytest.mark.parametrize(
    ("files", "environment", "installs"),
    [
        (
            {".github/workflows/ci.yml": WORKFLOW.format(second="-r compat.txt")},
            ".github/workflows/ci.yml job test",
            [("common.txt", 10), ("compat.txt", 11)],
        ),
        # The dev stage inherits base's install through FROM.
        (
            {"Dockerfile": DOCKERFILE},
            "Dockerfile stage dev",
            [("common.txt", 3), ("compat.txt", 5)],
        ),
        (
            {
                "docker-compose.yml": "services:\n  web:\n    image: app\n    command: >-\n"
                '      sh -c "pip install -r common.txt && pip install -r compat.txt"\n'
            },
            "docker-compose.yml service web",
            [("common.txt", 5), ("compat.txt", 5)],
        ),
        # The service runs in the image's `base` stage: what it installs comes first.
        (
            {
                "Dockerfile": DOCKERFILE,
                "docker-compose.yml": "services:\n  web:\n    build:\n      context: .\n"
                "      target: base\n    command: pip install -r compat.txt\n",
            },
            "docker-compose.yml service web",
            [("common.txt", 3), ("compat.txt", 6)],
        ),
    ],
    ids=["ci-job", "image-stage", "compose-service", "compose-service-in-its-image"],
)
def test_environments_are_shown_with_their_installs_and_findings(
    make_repo: MakeRepo,
    files: Mapping[str, str],
    environment: str,
    installs: list[tuple[str, int]],
) -> None:
    repo = make_repo({**TWO_LOCKS, **files})
    repo.pinsync("lock")
    code, report = check(repo, "--offline", "--environments")
    [conflict] = [f for f in report["findings"] if f.get("environment") == environment]
    assert (conflict["kind"], conflict["severity"]) == ("co-installed-conflict", "error")
    [shown] = [e for e in report["environments"] if e["name"] == environment]
    assert [(i["path"], i["line"]) for i in shown["installs"]] == installs
    text = repo.pinsync("check", "--offline", "--environments", check=False)
    assert text.returncode == code == 1
    block = text.stdout.split(f"{environment}  (")[1].split("\n\n")[0].splitlines()
    assert [line.split("  (")[0].strip() for line in block[1 : 1 + len(installs)]] == [
        f"{n}. {path}" for n, (path, _) in enumerate(installs, 1)
    ]
    assert any("co-installed-conflict" in line and "urllib3" in line for line in block)


SETUPTOOLS_DEV = (
    '[project]\nname = "app"\nversion = "1"\ndynamic = ["optional-dependencies"]\n'
    '[tool.setuptools.dynamic]\noptional-dependencies = {dev = {file = ["dev.txt"]}}\n'
)
HATCH_DEV = (
    '[project]\nname = "app"\nversion = "1"\ndynamic = ["optional-dependencies"]\n'
    '[tool.hatch.metadata.hooks.requirements_txt.optional-dependencies]\nDev = ["dev.txt"]\n'
)


@pytest.mark.parametrize(
    ("build_config", "install", "expected"),
    [
        (SETUPTOOLS_DEV, "pip install -e .[dev]", [("urllib3", "co-installed-conflict")]),
        (HATCH_DEV, 'pip install -e ".[dev]"', [("urllib3", "co-installed-conflict")]),
        # Another extra, or the project alone, installs nothing of dev.txt.
        (SETUPTOOLS_DEV, "pip install -e .[docs]", []),
        (SETUPTOOLS_DEV, "pip install .", []),
    ],
    ids=["setuptools-dynamic", "hatch-requirements-txt", "other-extra", "no-extra"],
)
def test_an_extra_that_reads_a_lock_installs_that_lock(
    make_repo: MakeRepo, build_config: str, install: str, expected: list[tuple[str, str]]
) -> None:
    workflow = (
        "on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n"
        f"      - run: {install}\n      - run: pip install -r compat.txt\n"
    )
    repo = make_repo(
        {
            **TWO_LOCKS,
            "pyproject.toml": TWO_LOCKS["pyproject.toml"] + build_config,
            ".github/workflows/ci.yml": workflow,
        }
    )
    repo.pinsync("lock")
    code, report = check(repo, "--offline")
    found = [(f["package"], f["kind"]) for f in report["findings"] if f["severity"] == "error"]
    assert found == expected
    assert code == (1 if expected else 0)


@pytest.mark.parametrize(
    ("jobs", "expected"),
    [
        # The job installs common.txt (urllib3 2.0.3): its own pin of 1.26.18 is drift,
        # though compat.txt, elsewhere in the repository, pins 1.26.18 too.
        (
            "  a:\n    steps:\n      - run: pip install -r common.txt\n"
            "      - run: pip install urllib3==1.26.18\n",
            [(".github/workflows/ci.yml", 6, ".github/workflows/ci.yml job a")],
        ),
        (
            "  a:\n    steps:\n      - run: pip install -r common.txt urllib3==2.0.3\n",
            [],
        ),
        # A job that installs no lock falls back to the project: some lock pins 1.26.18.
        (
            "  a:\n    steps:\n      - run: pip install -r common.txt\n"
            "  b:\n    steps:\n      - run: pip install urllib3==1.26.18\n",
            [],
        ),
    ],
    ids=["pin-against-own-lock", "pin-agrees", "no-lock-falls-back"],
)
def test_a_pin_written_in_an_environment_meets_its_locks(
    make_repo: MakeRepo, jobs: str, expected: list[tuple[str, int, str]]
) -> None:
    workflow = "on: push\njobs:\n" + jobs
    repo = make_repo({**TWO_LOCKS, ".github/workflows/ci.yml": workflow})
    repo.pinsync("lock")
    code, report = check(repo, "--offline")
    found = [
        (f["file"], f["line"], f.get("environment"))
        for f in report["findings"]
        if f["kind"] == "pin-site"
    ]
    assert found == expected
    assert code == (1 if expected else 0)


@pytest.mark.parametrize(
    ("installer", "file"),
    [
        (".github/workflows/ci.yml", "on: push\njobs:\n  t:\n    steps:\n      - run: {cmd}\n"),
        ("Dockerfile", "FROM python:3.11\nCOPY . /app\nRUN {cmd}\n"),
    ],
    ids=["ci-job", "image"],
)
def test_an_install_follows_the_r_lines_of_the_file_it_installs(
    make_repo: MakeRepo, installer: str, file: str
) -> None:
    """A hand-kept requirements file of `-r` lines installs every lock it names."""
    cmd = "pip install -r /app/all.txt" if installer == "Dockerfile" else "pip install -r all.txt"
    repo = make_repo(
        {
            **TWO_LOCKS,
            "all.txt": "-r common.txt\n-r deeper.txt\n",
            "deeper.txt": "-r compat.txt\n",
            installer: file.format(cmd=cmd),
        }
    )
    repo.pinsync("lock")
    code, report = check(repo, "--offline")
    [conflict] = [f for f in report["findings"] if f["severity"] == "error"]
    assert (conflict["package"], conflict["kind"]) == ("urllib3", "co-installed-conflict")
    assert "common.txt" in conflict["message"] and "compat.txt" in conflict["message"]
    assert code == 1


@pytest.mark.parametrize(
    ("wrapper", "expected"),
    [
        ('#!/bin/bash\nset -eux\npip --disable-pip-version-check install "$@"\npip check\n', 1),
        ('#!/bin/sh\nexec python -m pip install --no-compile "$@"\n', 1),
        # Runs pip, but not with the arguments it is given: not a way to install them.
        ("#!/bin/sh\npip install -r base.txt\n", 0),
    ],
    ids=["pip-with-general-options", "python-m-pip", "does-not-forward"],
)
def test_a_script_that_hands_its_arguments_to_pip_is_an_installer(
    make_repo: MakeRepo, wrapper: str, expected: int
) -> None:
    """warehouse's bin/docker/pip-install, run by name in its Dockerfile."""
    repo = make_repo(
        {
            **TWO_LOCKS,
            "bin/docker/pip-install": wrapper,
            "Dockerfile": "FROM python:3.11\nCOPY bin/docker/ /usr/local/bin/\n"
            "COPY common.txt compat.txt /app/\n"
            "RUN pip-install -r /app/common.txt -r /app/compat.txt\n",
        }
    )
    repo.pinsync("lock")
    code, report = check(repo, "--offline")
    errors = [
        (f["file"], f["line"], f["kind"]) for f in report["findings"] if f["severity"] == "error"
    ]
    assert errors == [("Dockerfile", 4, "co-installed-conflict")] * expected
    assert code == expected
