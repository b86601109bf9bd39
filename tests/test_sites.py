"""Pin sites beyond locks and Dockerfiles: finders per kind, then check and bump end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from conftest import PIP_TOOLS_TABLE, Repo
from pinsync.discovery import SiteKind, site_kind
from pinsync.sites import find_sites
from pinsync.toolchain import find_uv, sealed_env

MakeRepo = Callable[[Mapping[str, str]], Repo]

# path, text, [(line, name, version)]: each version is also checked to sit at its span.
FINDERS = [
    pytest.param(
        ".github/workflows/ci.yml",
        "jobs:\n  t:\n    steps:\n"
        '      - run: pip install tox==4.11.0 "ruff==0.5.0"\n'
        "      - run: |\n"
        "          python -m pip install --upgrade pip==24.0 \\\n"
        "            mlflow==2.13.5  # mlflow==1.0 in a comment\n",
        [(4, "tox", "4.11.0"), (4, "ruff", "0.5.0"), (6, "pip", "24.0"), (7, "mlflow", "2.13.5")],
        id="github-workflow-continued-command",
    ),
    pytest.param(
        ".gitlab-ci.yml",
        "test:\n  script:\n    - uv pip install --system requests==2.31.0\n",
        [(3, "requests", "2.31.0")],
        id="gitlab-uv-pip",
    ),
    pytest.param(
        "Makefile",
        "install:\n\t$(PYTHON) -m pip install -r req.txt black==24.1.0\n"
        "\tpipx install pre-commit==3.7.0\n\tpip install x==$$VERSION\n",
        [(2, "black", "24.1.0"), (3, "pre-commit", "3.7.0")],
        id="makefile-pipx-and-variables",
    ),
    pytest.param(
        "scripts/setup.sh",
        "set -e\necho pip install not==1.0 ; sudo -H pip3 install 'flask==2.0.0'\n",
        [(2, "flask", "2.0.0")],
        id="script-second-command",
    ),
    pytest.param(
        "docker-compose.yml",
        'services:\n  a:\n    command: sh -c "pip install gunicorn==21.2.0 && run"\n',
        [(3, "gunicorn", "21.2.0")],
        id="compose-command",
    ),
    pytest.param(
        "setup.cfg",
        "[metadata]\nname = x\n[options]\ninstall_requires =\n    requests==2.31.0\n"
        "    flask>=2\n[options.extras_require]\ndev = pytest==8.0.0\n",
        [(5, "requests", "2.31.0"), (8, "pytest", "8.0.0")],
        id="setup-cfg",
    ),
    pytest.param(
        "tox.ini",
        "[tox]\nenvlist = py311\n[testenv]\ndeps =\n    -r requirements.txt\n"
        "    pytest==8.0.0  # runner\ncommands = pip install notthis==1.0\n",
        [(6, "pytest", "8.0.0")],
        id="tox-deps-only",
    ),
    pytest.param(
        ".pre-commit-config.yaml",
        "repos:\n- repo: x\n  hooks:\n  - id: mypy\n    additional_dependencies:\n"
        '      - types-requests==2.31.0.1\n      - "pydantic==2.5.0"\n'
        "  - id: y\n    additional_dependencies: [attrs==23.1.0, six]\n",
        [(6, "types-requests", "2.31.0.1"), (7, "pydantic", "2.5.0"), (9, "attrs", "23.1.0")],
        id="pre-commit-block-and-flow",
    ),
    pytest.param(
        "svc/pyproject.toml",
        '[project]\nname = "svc"\ndependencies = ["mlflow==2.13.5", "flask"]\n'
        '[tool.uv]\nconstraint-dependencies = ["urllib3==2.0.3"]\n',
        [(3, "mlflow", "2.13.5"), (5, "urllib3", "2.0.3")],
        id="pyproject-in-a-service-with-uv-constraints",
    ),
    pytest.param(
        "uv.lock",
        'version = 1\n\n[[package]]\nname = "mlflow"\nversion = "2.13.4"\n'
        'source = { registry = "x" }\n',
        [(5, "mlflow", "2.13.4")],
        id="uv-lock",
    ),
    pytest.param(
        "pylock.toml",
        'lock-version = "1.0"\n[[packages]]\nname = "Flask"\nversion = "3.0.0"\n',
        [(4, "flask", "3.0.0")],
        id="pylock",
    ),
]


@pytest.mark.parametrize(("path", "text", "expected"), FINDERS)
def test_finders(path: str, text: str, expected: list[tuple[int, str, str]]) -> None:
    kind = site_kind(PurePosixPath(path))
    assert kind is not None
    sites = find_sites(kind, PurePosixPath(path), text)
    assert [(s.pin.line, s.pin.name, s.pin.version) for s in sites] == expected
    lines = text.split("\n")
    for site in sites:
        assert lines[site.pin.line - 1][site.pin.start : site.pin.end] == site.pin.version


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("README.md", None),
        ("docs/requirements.txt", None),
        (".github/workflows/nested/x.yml", None),
        ("ci/pipeline.yml", None),
        ("compose.override.yaml", "compose"),
        ("pylock.dev.toml", "pylock"),
        ("tools/build.mk", "makefile"),
    ],
)
def test_site_kind_by_name(path: str, kind: SiteKind | None) -> None:
    assert site_kind(PurePosixPath(path)) == kind


# --- end to end ---------------------------------------------------------------------------


def check(repo: Repo) -> tuple[int, list[dict[str, Any]]]:
    before = repo.snapshot()
    proc = repo.pinsync("check", "--offline", "--format", "json", check=False)
    assert repo.snapshot() == before
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)["findings"]


def errors(findings: list[dict[str, Any]]) -> list[tuple[str, int, str | None, str]]:
    return [
        (f["file"], f["line"], f["package"], f["kind"])
        for f in findings
        if f["severity"] == "error"
    ]


def uv_lock(repo: Repo) -> None:
    """`uv lock`, as the report tells the user to run it (index from pyproject)."""
    subprocess.run(
        [find_uv(), "lock", "--quiet"],
        cwd=repo.path,
        env={**sealed_env(os.environ, None, "uv"), "UV_PYTHON": sys.executable},
        check=True,
        capture_output=True,
    )


UV_PROJECT = (
    '[project]\nname = "svc"\nversion = "1.0"\nrequires-python = ">=3.8"\n'
    'dependencies = ["mlflow==VERSION"]\n\n'
    '[tool.uv]\nno-index = true\nfind-links = ["wheels"]\n'
)


@pytest.fixture
def uv_incident_repo(make_repo: MakeRepo, all_wheels: Path) -> Repo:
    """The public incident: pyproject moved to 3.5.0; uv.lock and the Dockerfile stayed."""
    repo = make_repo(
        {
            "pyproject.toml": UV_PROJECT.replace("VERSION", "3.4.0"),
            "Dockerfile": "FROM python:3.11\nCOPY . .\nRUN pip install mlflow==3.4.0\n",
        }
    )
    repo.use_wheels(all_wheels)
    uv_lock(repo)
    repo.write({"pyproject.toml": UV_PROJECT.replace("VERSION", "3.5.0")})
    return repo


def test_public_incident_is_found_with_every_place_named(uv_incident_repo: Repo) -> None:
    code, findings = check(uv_incident_repo)
    assert code == 1
    assert errors(findings) == [("pyproject.toml", 5, "mlflow", "pin-site")]
    message = (
        findings[0]["message"]
        if len(findings) == 1
        else next(f["message"] for f in findings if f["kind"] == "pin-site")
    )
    assert "pyproject.toml:5 (project.dependencies) pins 3.5.0 but uv.lock:" in message
    assert "so do Dockerfile:3" in message


def test_public_incident_bump_back_passes(uv_incident_repo: Repo) -> None:
    proc = uv_incident_repo.pinsync("bump", "mlflow", "3.4.0")
    assert "pyproject.toml:5" in proc.stdout
    code, findings = check(uv_incident_repo)
    assert code == 0, findings


def test_public_incident_bump_forward_then_uv_lock_passes(uv_incident_repo: Repo) -> None:
    proc = uv_incident_repo.pinsync("bump", "mlflow", "3.5.0")
    assert "Dockerfile:3" in proc.stdout
    assert "regenerate with `uv lock`" in proc.stdout  # pinsync never rewrites uv.lock
    assert 'version = "3.4.0"' in uv_incident_repo.read("uv.lock")
    code, _ = check(uv_incident_repo)
    assert code == 1  # until uv.lock follows
    uv_lock(uv_incident_repo)
    code, findings = check(uv_incident_repo)
    assert code == 0, findings


def _service(version: str) -> dict[str, str]:
    return {
        "pyproject.toml": f'[project]\nname = "svc"\nversion = "1"\ndependencies = ["mlflow=={version}", "flask==2.0.0"]\n'
        + PIP_TOOLS_TABLE.replace('"wheels"', '"../wheels"'),
        "requirements.in": f"mlflow=={version}\nflask==2.0.0\n",
        "Dockerfile": f"FROM python:3.11\nCOPY requirements.txt .\nRUN pip install -r requirements.txt mlflow=={version}\n",
    }


@pytest.fixture
def two_services(make_repo: MakeRepo, all_wheels: Path) -> Repo:
    files = {f"svc-a/{k}": v for k, v in _service("2.9.0").items()}
    files.update({f"svc-b/{k}": v for k, v in _service("3.4.0").items()})
    files[".github/workflows/svc-a.yml"] = (
        "jobs:\n  a:\n    steps:\n      - run: pip install mlflow==2.9.0\n"
    )
    files[".github/workflows/svc-b.yml"] = (
        "jobs:\n  b:\n    steps:\n      - run: pip install mlflow==3.4.0\n"
    )
    repo = make_repo(files)
    repo.use_wheels(all_wheels)
    repo.pinsync("lock")
    return repo


def test_two_services_are_compared_within_themselves(two_services: Repo) -> None:
    code, findings = check(two_services)
    assert code == 0 and errors(findings) == [], findings
    pyproject = two_services.read("svc-b/pyproject.toml").replace("mlflow==3.4.0", "mlflow==2.9.0")
    two_services.write({"svc-b/pyproject.toml": pyproject})
    code, findings = check(two_services)
    # svc-a pins 2.9.0 too, but it is another service: only svc-b's own lock counts.
    assert errors(findings) == [("svc-b/pyproject.toml", 4, "mlflow", "pin-site")]
    assert "svc-b/requirements.txt:" in findings[0]["message"] or any(
        "svc-b/requirements.txt:" in f["message"] for f in findings
    )


def test_bump_moves_a_shared_package_in_both_services(two_services: Repo) -> None:
    proc = two_services.pinsync("bump", "flask", "3.0.0")
    for service in ("svc-a", "svc-b"):
        assert 'flask==3.0.0"' in two_services.read(f"{service}/pyproject.toml")
        assert "flask==3.0.0\n" in two_services.read(f"{service}/requirements.in")
        assert "flask==3.0.0" in two_services.read(f"{service}/requirements.txt")
        assert f"{service}/pyproject.toml:4" in proc.stdout
    code, findings = check(two_services)
    assert code == 0, findings


def test_a_tool_no_lock_mentions_is_left_alone(make_repo: MakeRepo) -> None:
    repo = make_repo(
        {
            "requirements.in": "flask\n",
            "tox.ini": "[testenv]\ndeps =\n    tox-gh==1.0\n",
            ".github/workflows/ci.yml": "jobs:\n  a:\n    steps:\n      - run: pip install tox==4.11.0\n",
        }
    )
    repo.pinsync("lock")
    code, findings = check(repo)
    assert code == 0 and errors(findings) == []


@pytest.mark.parametrize(
    ("config", "found"),
    [
        pytest.param("", True, id="default"),
        pytest.param('[tool.pinsync]\nskip-sites = ["tox"]\n', False, id="skipped"),
    ],
)
def test_skip_sites_turns_a_kind_off(make_repo: MakeRepo, config: str, found: bool) -> None:
    repo = make_repo(
        {"requirements.in": "flask==2.0.0\n", "tox.ini": "[testenv]\ndeps =\n    flask==3.0.0\n"}
    )
    repo.pinsync("lock")
    repo.write({"pyproject.toml": repo.read("pyproject.toml") + config})
    code, findings = check(repo)
    assert (("tox.ini", 3, "flask", "pin-site") in errors(findings)) is found
    assert code == (1 if found else 0)


def test_a_configured_scope_ties_a_root_workflow_to_one_service(two_services: Repo) -> None:
    # Deploys svc-b, but pins svc-a's version: matches *a* lock, so only a scope catches it.
    two_services.write(
        {
            ".github/workflows/deploy-b.yml": "jobs:\n  d:\n    steps:\n      - run: pip install mlflow==2.9.0\n"
        }
    )
    code, findings = check(two_services)
    assert code == 0, findings
    table = '[tool.pinsync.site-scopes]\n".github/workflows/deploy-b.yml" = "svc-b"\n'
    two_services.write({"pyproject.toml": two_services.read("pyproject.toml") + table})
    code, findings = check(two_services)
    assert errors(findings) == [(".github/workflows/deploy-b.yml", 4, "mlflow", "pin-site")]
    assert "svc-b/requirements.txt" in findings[0]["message"] or any(
        "svc-b/requirements.txt" in f["message"] for f in findings
    )
