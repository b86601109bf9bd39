"""The job summary `check --format github` appends to GITHUB_STEP_SUMMARY."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from conftest import Repo
from pinsync.diagram import Layout, Node
from pinsync.report import Finding, FixCommands
from pinsync.summary import Links, graph_command, render_summary

STALE = Finding(
    "requirements.txt",
    15,
    "mlflow",
    "stale-lock",
    "error",
    "mlflow: requirements.in:1 requires ==3.4.0 but requirements.txt pins 2.9.0 "
    "(2.9.0 → ==3.4.0); run `nox -s lock`",
)
OVERRIDE = Finding(
    "Dockerfile", 7, "numpy", "override", "warning", "numpy: a | b <b>bold</b> (1.0 → 1.1)"
)
NOTE = Finding("dev.txt", 1, None, "unverified", "info", "dev.txt has no pinsync stamp")


@pytest.mark.parametrize(
    ("findings", "title", "rows", "fix_line"),
    [
        pytest.param([], "## pinsync check: all lock files are in sync", [], False, id="in-sync"),
        pytest.param(
            [NOTE],
            "## pinsync check: all lock files are in sync, 1 note",
            [
                "| 🔵 info | `unverified` | [dev.txt:1](dev.txt#L1) |  |  | dev.txt has no pinsync stamp |"
            ],
            False,
            id="notes-only",
        ),
        pytest.param(
            [STALE, OVERRIDE],
            "## pinsync check: 1 error, 1 warning",
            [
                "| 🔴 error | `stale-lock` | [requirements.txt:15](requirements.txt#L15) | mlflow "
                "| 2.9.0 → 3.4.0 | mlflow: requirements.in:1 requires ==3.4.0 but "
                "requirements.txt pins 2.9.0 (2.9.0 → ==3.4.0); run `nox -s lock` |",
                # `|` would end the cell and `<b>` would be HTML: both escaped.
                "| 🟠 warning | `override` | [Dockerfile:7](Dockerfile#L7) | numpy | 1.0 → 1.1 "
                "| numpy: a \\| b &lt;b>bold&lt;/b> (1.0 → 1.1) |",
            ],
            True,
            id="drift",
        ),
    ],
)
def test_counts_table_and_fix(
    findings: list[Finding], title: str, rows: list[str], fix_line: bool
) -> None:
    text = render_summary(findings, FixCommands())
    lines = text.splitlines()
    assert lines[0] == title
    table = [line for line in lines if line.startswith("| ") and "---" not in line][1:]
    assert table == rows
    fix = "**Fix:** `nox -s lock` (pins elsewhere: `nox -s bump -- NAME VERSION`)"
    assert (fix in lines) is fix_line


@pytest.mark.parametrize(
    ("env", "root", "url"),
    [
        pytest.param({}, "/w/repo", "requirements.txt#L15", id="no-actions"),
        pytest.param(
            {"GITHUB_WORKSPACE": "/w/repo"},
            "/w/repo/services/api",
            "services/api/requirements.txt#L15",
            id="root-in-the-checkout",
        ),
        pytest.param(
            {
                "GITHUB_WORKSPACE": "/w/repo",
                "GITHUB_SERVER_URL": "https://github.com",
                "GITHUB_REPOSITORY": "acme/shop",
                "GITHUB_SHA": "0123abc",
            },
            "/w/repo",
            "https://github.com/acme/shop/blob/0123abc/requirements.txt#L15",
            id="file-at-the-commit",
        ),
        pytest.param(
            {"GITHUB_WORKSPACE": "/elsewhere"},
            "/w/repo",
            "requirements.txt#L15",
            id="root-outside-the-checkout",
        ),
    ],
)
def test_links(env: dict[str, str], root: str, url: str) -> None:
    links = Links.from_env(env, PurePosixPath(root))
    assert f"[requirements.txt:15]({url})" in render_summary([STALE], FixCommands(), links=links)


@pytest.mark.parametrize(
    ("fix", "command"),
    [
        (FixCommands(), "nox -s check-lock -- --graph mermaid"),
        (
            FixCommands.for_invocation("../svc", via_nox=True),
            "nox -s check-lock -- --root ../svc --graph mermaid",
        ),
        (
            FixCommands("python -m pinsync lock --root x", "", ""),
            "python -m pinsync check --root x --graph mermaid",
        ),
        (FixCommands("pinsync lock", "", ""), "pinsync check --graph mermaid"),
    ],
)
def test_graph_command_is_spelled_like_the_fix(fix: FixCommands, command: str) -> None:
    assert graph_command(fix) == command


@pytest.mark.parametrize(("count", "inlined"), [(59, True), (60, False)])
def test_graph_inlined_below_60_nodes(count: int, inlined: bool) -> None:
    graph = Layout(tuple(Node(f"f{i}.in", f"f{i}.in", "source") for i in range(count)), ())
    text = render_summary([STALE], FixCommands(), graph)
    assert ("```mermaid\nflowchart LR\n" in text) is inlined
    told = f"The graph has {count} nodes, too many to draw here; print it with `nox -s check-lock -- --graph mermaid`."
    assert (told in text) is not inlined


# --- the write, by the CLI -------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "summary_at", "written"),
    [
        pytest.param("github", "runner", True, id="github-appends"),
        pytest.param("text", "runner", False, id="other-formats-do-not"),
        pytest.param("github", None, False, id="variable-unset"),
        pytest.param("github", "repo", False, id="inside-root-refused"),
    ],
)
def test_cli_appends_summary(
    incident_repo: Repo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fmt: str,
    summary_at: str | None,
    written: bool,
) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    for key in ("GITHUB_WORKSPACE", "GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_SHA"):
        monkeypatch.delenv(key, raising=False)
    where = {"runner": tmp_path / "runner", "repo": incident_repo.path, None: tmp_path / "runner"}
    summary = where[summary_at] / "step_summary.md"
    summary.parent.mkdir(exist_ok=True)
    earlier = "## an earlier step's summary\n"
    summary.write_text(earlier)
    before = incident_repo.snapshot()
    env = {"GITHUB_STEP_SUMMARY": str(summary)} if summary_at else {}
    proc = incident_repo.pinsync("check", "--offline", "--format", fmt, env=env, check=False)
    assert proc.returncode == 1
    text = summary.read_text()
    if not written:
        assert text == earlier
        assert incident_repo.snapshot() == before
        if summary_at == "repo":
            assert "is inside --root; no job summary written" in proc.stderr
        return
    assert text.startswith(earlier)  # appended: each step of a job adds its own
    added = text[len(earlier) :]
    assert added.startswith("## pinsync check: 5 errors, 0 warnings, 3 notes\n")
    assert (
        "| 🔴 error | `stale-lock` | [requirements.txt:15](requirements.txt#L15) | mlflow | 2.9.0 → 3.4.0 |"
        in added
    )
    assert (
        "**Fix:** `python -m pinsync lock` (pins elsewhere: `python -m pinsync bump NAME VERSION`)"
        in added
    )
    assert "```mermaid\nflowchart LR\n" in added
    assert '-->|"mlflow 2.9.0 → 3.4.0"|' in added
    assert incident_repo.snapshot() == before
