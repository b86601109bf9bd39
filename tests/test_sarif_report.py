"""`check --format sarif`: SARIF 2.1.0, validated against the official schema.

tests/data/sarif-schema-2.1.0.json is the OASIS schema, unchanged: oasis-tcs/sarif-spec,
sarif-2.1/schema/sarif-schema-2.1.0.json at commit e0583813964ec43cea53b6b531b402866095ed1f.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, get_args

import jsonschema
import pytest

from conftest import Repo
from pinsync.report import RULES, Finding, Kind, render_sarif

SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text())
MakeRepo = Callable[[Mapping[str, str]], Repo]


def validate(log: dict[str, Any]) -> None:
    validator = jsonschema.validators.validator_for(SCHEMA)(SCHEMA)
    errors = sorted(validator.iter_errors(log), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]


def finding(
    kind: Kind = "stale-lock",
    severity: str = "error",
    file: str = "requirements.txt",
    line: int = 3,
    package: str | None = "flask",
    message: str = "flask: requirements.in:1 requires >=3 but requirements.txt pins 2.0.0",
) -> Finding:
    return Finding(file, line, package, kind, severity, message)  # type: ignore[arg-type]


# (findings, expected (ruleId, level, uri, startLine) per result)
CASES = [
    pytest.param([], [], id="in-sync"),
    pytest.param([finding()], [("stale-lock", "error", "requirements.txt", 3)], id="error"),
    pytest.param(
        [finding("override", "warning", "Dockerfile", 7)],
        [("override", "warning", "Dockerfile", 7)],
        id="warning",
    ),
    pytest.param(
        [finding("unverified", "info", package=None, line=1)],
        [("unverified", "note", "requirements.txt", 1)],
        id="info-is-a-note",
    ),
    pytest.param(
        [finding("not-managed", "info", line=0, package=None)],
        [("not-managed", "note", "requirements.txt", 1)],
        id="line-0-becomes-1",
    ),
    pytest.param(
        [finding(message="50% of\nthe lines", file="svc a/requirements.txt")],
        [("stale-lock", "error", "svc a/requirements.txt", 3)],
        id="odd-message-and-path",
    ),
]


@pytest.mark.parametrize(("findings", "expected"), CASES)
def test_sarif_validates_and_maps_each_finding(
    findings: list[Finding], expected: list[tuple[str, str, str, int]]
) -> None:
    log = json.loads(render_sarif(findings, "0.1.0"))
    validate(log)
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    got = [
        (
            r["ruleId"],
            r["level"],
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            r["locations"][0]["physicalLocation"]["region"]["startLine"],
        )
        for r in run["results"]
    ]
    assert got == expected
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
    assert run["invocations"] == [{"executionSuccessful": True}]


def test_every_kind_has_one_rule_with_help() -> None:
    assert list(RULES) == list(get_args(Kind))
    log = json.loads(render_sarif([], "0.1.0"))
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == list(get_args(Kind))
    assert all(r["help"]["text"] and r["shortDescription"]["text"] for r in rules)


def test_fingerprints_are_stable_and_tell_findings_apart() -> None:
    one, moved, other = finding(line=3), finding(line=9), finding(package="jinja2", message="x")
    prints = [
        json.loads(render_sarif([f], "0.1.0"))["runs"][0]["results"][0]["partialFingerprints"]
        for f in (one, moved, other)
    ]
    assert prints[0] == prints[1]  # the same finding, the lock rewritten above it
    assert prints[0] != prints[2]


def test_a_check_that_cannot_run_is_an_unsuccessful_invocation() -> None:
    log = json.loads(render_sarif([], "0.1.0", error="pyproject.toml: not UTF-8 text"))
    validate(log)
    invocation = log["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    assert invocation["toolExecutionNotifications"][0]["message"]["text"] == (
        "pyproject.toml: not UTF-8 text"
    )


@pytest.mark.parametrize(
    ("files", "code", "rule_ids"),
    [
        pytest.param({"requirements.in": "flask\n"}, 1, ["stale-lock"], id="drift"),
        pytest.param({"pyproject.toml": "[tool.pinsync]\nnope = 1\n"}, 2, [], id="cannot-run"),
    ],
)
def test_the_cli_prints_sarif(
    make_repo: MakeRepo, files: dict[str, str], code: int, rule_ids: list[str]
) -> None:
    repo = make_repo(files)
    proc = repo.pinsync("check", "--offline", "--format", "sarif", check=False)
    assert proc.returncode == code, proc.stderr
    log = json.loads(proc.stdout)  # the whole of stdout is one document
    validate(log)
    assert [r["ruleId"] for r in log["runs"][0]["results"]] == rule_ids
    assert log["runs"][0]["invocations"][0]["executionSuccessful"] is (code != 2)
