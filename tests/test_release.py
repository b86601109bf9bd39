"""`nox -s release -- X.Y.Z` (pinsync.release) and `pinsync --version`.

The pure step is tested on strings; the thin layer on a throwaway git repository,
through `python -m pinsync.release`, as the nox session runs it. The real release
is never run here.
"""

from __future__ import annotations

import datetime
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import pinsync
from conftest import ROOT, TOOLS
from pinsync.release import FILES, ReleaseError, Texts, current_version, cut_release
from pinsync.toml import loads as toml_loads

TODAY = datetime.date(2026, 12, 24)
PYPROJECT = (
    '[build-system]\nrequires = ["setuptools>=69"]\n\n'
    '[project]\nname = "pinsync"\nversion = "0.1.0"\n\n'
    '[tool.other]\nversion = "9.9.9"\n'
)
PACKAGE = '"""pinsync."""\n\n__version__ = "0.1.0"\n'
CHANGELOG = (
    "# Changelog\n\n"
    "## [Unreleased]\n\n### Added\n\n- `pinsync --version`.\n\n"
    "## [0.1.0] - 2026-12-05\n\nThe first version.\n"
)
CUT = (
    "# Changelog\n\n"
    "## [Unreleased]\n\n"
    "## [0.2.0] - 2026-12-24\n\n### Added\n\n- `pinsync --version`.\n\n"
    "## [0.1.0] - 2026-12-05\n\nThe first version.\n"
)
LINKS = (
    "\n[Unreleased]: https://example.org/pinsync/compare/v0.1.0...HEAD\n"
    "[0.1.0]: https://example.org/pinsync/releases/tag/v0.1.0\n"
)


def texts(pyproject: str = PYPROJECT, package: str = PACKAGE, changelog: str = CHANGELOG) -> Texts:
    return Texts(pyproject, package, changelog)


@pytest.mark.parametrize(
    ("before", "version", "changelog"),
    [
        pytest.param(texts(), "0.2.0", CUT, id="minor"),
        pytest.param(texts(), "0.1.1", CUT.replace("0.2.0", "0.1.1"), id="patch"),
        pytest.param(texts(), "1.0.0rc1", CUT.replace("0.2.0", "1.0.0rc1"), id="pre-release"),
        pytest.param(
            texts(changelog=CHANGELOG + LINKS),
            "0.2.0",
            CUT + "\n[Unreleased]: https://example.org/pinsync/compare/v0.2.0...HEAD\n"
            "[0.2.0]: https://example.org/pinsync/compare/v0.1.0...v0.2.0\n"
            "[0.1.0]: https://example.org/pinsync/releases/tag/v0.1.0\n",
            id="comparison-links",
        ),
        pytest.param(
            texts(changelog=CHANGELOG.replace("\n", "\r\n")),
            "0.2.0",
            CUT.replace("\n", "\r\n"),
            id="crlf-kept",
        ),
    ],
)
def test_cut_release(before: Texts, version: str, changelog: str) -> None:
    after = cut_release(before, version, TODAY)
    assert after.changelog == changelog
    assert after.pyproject == PYPROJECT.replace('version = "0.1.0"', f'version = "{version}"')
    assert 'version = "9.9.9"' in after.pyproject  # only [project]'s version moves
    assert after.package == PACKAGE.replace("0.1.0", version)
    assert current_version(after) == version


@pytest.mark.parametrize(
    ("before", "version", "error"),
    [
        pytest.param(texts(), "0.2", None, id="accepted-two-parts"),
        pytest.param(texts(), "0.2.x", "'0.2.x' is not a version", id="invalid"),
        pytest.param(texts(), "v0.2.0", "is spelled '0.2.0' in normal form", id="not-normal"),
        pytest.param(texts(), "0.1.0", "0.1.0 is not newer than the current version", id="same"),
        pytest.param(texts(), "0.1.0rc1", "is not newer", id="older-pre-release"),
        pytest.param(
            texts(changelog=CHANGELOG.replace("## [Unreleased]\n", "")),
            "0.2.0",
            "has no `## [Unreleased]` section",
            id="no-unreleased",
        ),
        pytest.param(
            texts(changelog="# Changelog\n\n## [Unreleased]\n\n## [0.1.0] - 2026-12-05\n"),
            "0.2.0",
            "section is empty: nothing to release",
            id="empty-unreleased",
        ),
        pytest.param(
            texts(package=PACKAGE.replace("0.1.0", "0.1.1")),
            "0.2.0",
            "pyproject.toml says 0.1.0 but pinsync/__init__.py says 0.1.1",
            id="versions-disagree",
        ),
    ],
)
def test_refusals(before: Texts, version: str, error: str | None) -> None:
    if error is None:
        assert current_version(cut_release(before, version, TODAY)) == version
        return
    with pytest.raises(ReleaseError, match=re.escape(error)):
        cut_release(before, version, TODAY)


# --- the thin layer, on a throwaway git repository ----------------------------------


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def release_checkout(tmp_path: Path) -> Path:
    """A git repository holding the three files a release edits, committed."""
    repo = tmp_path / "checkout"
    (repo / "tools" / "pinsync").mkdir(parents=True)
    for name, text in zip(FILES, (PYPROJECT, PACKAGE, CHANGELOG), strict=True):
        (repo / name).write_text(text)
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "start")
    return repo


def release(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pinsync.release", "--root", str(repo), *args],
        env={**os.environ, "PYTHONPATH": str(TOOLS)},
        capture_output=True,
        text=True,
        check=False,
    )


def contents(repo: Path) -> dict[str, bytes]:
    return {name: (repo / name).read_bytes() for name in FILES}


@pytest.mark.parametrize(
    ("change", "version", "error"),
    [
        pytest.param(None, "0.2.0", None, id="clean-tree-released"),
        pytest.param(
            "untracked",
            "0.2.0",
            "the git tree is dirty (notes.txt); commit or stash first",
            id="untracked",
        ),
        pytest.param(
            "modified",
            "0.2.0",
            "the git tree is dirty (tools/pinsync/__init__.py); commit or stash first",
            id="modified",
        ),
        pytest.param(
            None, "0.0.1", "0.0.1 is not newer than the current version, 0.1.0", id="older"
        ),
        pytest.param(None, "banana", "'banana' is not a version (PEP 440, as X.Y.Z)", id="invalid"),
    ],
)
def test_release_command(
    release_checkout: Path, change: str | None, version: str, error: str | None
) -> None:
    if change == "untracked":
        (release_checkout / "notes.txt").write_text("wip\n")
    elif change == "modified":
        with open(release_checkout / "tools/pinsync/__init__.py", "a") as fh:
            fh.write("# wip\n")
    before = contents(release_checkout)
    started = datetime.date.today()
    proc = release(release_checkout, version)
    if error is not None:
        assert proc.returncode == 2
        assert proc.stderr == f"release: error: {error}\n"  # one line
        assert contents(release_checkout) == before  # nothing written
        return
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"release: 0.1.0 → {version} in {', '.join(FILES)}\n"
    dates = {started.isoformat(), datetime.date.today().isoformat()}
    changelog = (release_checkout / "CHANGELOG.md").read_text()
    assert any(CUT.replace("2026-12-24", d) == changelog for d in dates)
    pyproject = toml_loads((release_checkout / "pyproject.toml").read_text())
    assert pyproject["project"]["version"] == version
    assert f'__version__ = "{version}"' in (release_checkout / FILES[1]).read_text()
    # Only the three files changed, and no temporary file was left behind.
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=release_checkout, capture_output=True, text=True
    ).stdout
    assert sorted(line[3:] for line in status.splitlines()) == sorted(FILES)


def test_not_a_git_tree(tmp_path: Path) -> None:
    for name, text in zip(FILES, (PYPROJECT, PACKAGE, CHANGELOG), strict=True):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    proc = release(tmp_path, "0.2.0")
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"release: error: {tmp_path}: not a git work tree")
    assert len(proc.stderr.splitlines()) == 1


# --- the version this checkout states ---------------------------------------------------


def test_versions_agree() -> None:
    """pyproject.toml, pinsync.__version__ and what `pinsync --version` prints."""
    project = toml_loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert pinsync.__version__ == project
    real = Texts(*((ROOT / name).read_text() for name in FILES))
    assert current_version(real) == project
    proc = subprocess.run(
        [sys.executable, "-m", "pinsync", "--version"],
        env={**os.environ, "PYTHONPATH": str(TOOLS)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, f"pinsync {project}\n", "")
