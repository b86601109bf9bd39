"""`nox -s release -- X.Y.Z`: the version in pyproject.toml and pinsync/__init__.py,
and CHANGELOG.md's `## [Unreleased]` section dated as that version.

`cut_release` is pure (the three texts in, the three texts out, or an error);
`main` is the thin layer that reads, refuses a dirty tree, and writes. Every check
runs before the first write, so a refusal leaves every file as it was.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from packaging.version import InvalidVersion, Version

from .errors import PinsyncError

ROOT: Final = Path(__file__).resolve().parents[2]
FILES: Final = ("pyproject.toml", "tools/pinsync/__init__.py", "CHANGELOG.md")

# `version = "0.1.0"` in [project]; `__version__ = "0.1.0"` in the package.
_PROJECT_VERSION: Final = re.compile(r'(?m)^(version\s*=\s*")([^"]*)(")')
_PACKAGE_VERSION: Final = re.compile(r'(?m)^(__version__\s*=\s*")([^"]*)(")')
_UNRELEASED: Final = re.compile(r"(?m)^## \[Unreleased\][ \t]*\r?\n")
_NEXT_SECTION: Final = re.compile(r"(?m)^## ")
# Keep a Changelog's comparison links at the foot, where a changelog has them.
_UNRELEASED_LINK: Final = re.compile(
    r"(?m)^\[Unreleased\]:[ \t]*(\S*?/compare/)(\S+?)\.\.\.HEAD[ \t]*$"
)


class ReleaseError(PinsyncError):
    """A release refused before anything was written."""


@dataclass(frozen=True)
class Texts:
    pyproject: str
    package: str  # tools/pinsync/__init__.py
    changelog: str


def _project_table(pyproject: str) -> tuple[int, int]:
    """Where [project] starts and ends: only its `version` is the project's."""
    start = re.search(r"(?m)^\[project\][ \t]*$", pyproject)
    if start is None:
        raise ReleaseError("pyproject.toml has no [project] table")
    end = re.compile(r"(?m)^\[").search(pyproject, start.end())
    return start.end(), end.start() if end else len(pyproject)


def current_version(texts: Texts) -> str:
    """The version both files state; they must agree."""
    start, end = _project_table(texts.pyproject)
    project = _PROJECT_VERSION.search(texts.pyproject, start, end)
    package = _PACKAGE_VERSION.search(texts.package)
    if project is None or package is None:
        missing = "pyproject.toml [project]" if project is None else "pinsync/__init__.py"
        raise ReleaseError(f"{missing} states no version")
    if project.group(2) != package.group(2):
        raise ReleaseError(
            f"pyproject.toml says {project.group(2)} but pinsync/__init__.py says "
            f"{package.group(2)}; make them agree first"
        )
    return project.group(2)


def cut_release(texts: Texts, version: str, today: datetime.date) -> Texts:
    """The three texts at `version`, its changelog section dated `today`."""
    try:
        new = Version(version)
    except InvalidVersion:
        raise ReleaseError(f"{version!r} is not a version (PEP 440, as X.Y.Z)") from None
    if str(new) != version:
        raise ReleaseError(f"{version!r} is spelled {str(new)!r} in normal form; use that")
    old = current_version(texts)
    if new <= Version(old):
        raise ReleaseError(f"{version} is not newer than the current version, {old}")
    heading = _UNRELEASED.search(texts.changelog)
    if heading is None:
        raise ReleaseError("CHANGELOG.md has no `## [Unreleased]` section")
    following = _NEXT_SECTION.search(texts.changelog, heading.end())
    body_end = following.start() if following else len(texts.changelog)
    body = texts.changelog[heading.end() : body_end]
    if not body.strip():
        raise ReleaseError("CHANGELOG.md's `## [Unreleased]` section is empty: nothing to release")
    newline = "\r\n" if heading.group(0).endswith("\r\n") else "\n"
    changelog = (
        texts.changelog[: heading.end()]
        + newline
        + f"## [{version}] - {today.isoformat()}{newline}"
        + texts.changelog[heading.end() :]
    )
    link = _UNRELEASED_LINK.search(changelog)
    if link is not None:
        base, since = link.group(1), link.group(2)
        tag = since[: since.index(old)] if old in since else ""  # `v0.1.0` → `v`
        changelog = (
            changelog[: link.start()]
            + f"[Unreleased]: {base}{tag}{version}...HEAD\n"
            + f"[{version}]: {base}{since}...{tag}{version}"
            + changelog[link.end() :]
        )
    start, end = _project_table(texts.pyproject)
    pyproject = (
        texts.pyproject[:start]
        + _PROJECT_VERSION.sub(rf"\g<1>{version}\g<3>", texts.pyproject[start:end], count=1)
        + texts.pyproject[end:]
    )
    package = _PACKAGE_VERSION.sub(rf"\g<1>{version}\g<3>", texts.package, count=1)
    return Texts(pyproject, package, changelog)


# --- the thin I/O layer ---------------------------------------------------------------


def dirty(root: Path) -> list[str]:
    """What `git status` shows changed or untracked in `root`; refused when not a repo."""
    proc = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=normal"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise ReleaseError(f"{root}: not a git work tree ({proc.stderr.strip()})")
    return [line[3:] for line in proc.stdout.splitlines() if line.strip()]


def parser() -> argparse.ArgumentParser:
    release = argparse.ArgumentParser(
        prog="nox -s release --",
        description="Set the version and date the changelog's Unreleased section as it.",
    )
    release.add_argument("version", metavar="X.Y.Z", help="the version to release")
    release.add_argument(
        "--root", type=Path, default=ROOT, help="the pinsync checkout (default: this one)"
    )
    return release


def _read(root: Path) -> Texts:
    texts = []
    for name in FILES:
        try:
            # newline="": a CRLF changelog stays CRLF.
            with open(root / name, encoding="utf-8", newline="") as fh:
                texts.append(fh.read())
        except OSError as exc:
            raise ReleaseError(f"cannot read {name}: {exc.strerror}") from None
    return Texts(*texts)


def _write(path: Path, text: str) -> None:
    # Each file whole or not at all: written beside, then renamed over.
    partial = path.with_name(f".{path.name}.release")
    partial.write_text(text, encoding="utf-8", newline="")
    os.replace(partial, path)


def main(argv: Sequence[str] | None = None, today: datetime.date | None = None) -> int:
    args = parser().parse_args(argv)
    root: Path = args.root
    try:
        changed = dirty(root)
        if changed:
            shown = ", ".join(changed[:3]) + (" ..." if len(changed) > 3 else "")
            raise ReleaseError(f"the git tree is dirty ({shown}); commit or stash first")
        before = _read(root)
        after = cut_release(before, args.version, today or datetime.date.today())
    except ReleaseError as exc:
        print(f"release: error: {exc}", file=sys.stderr)
        return exc.exit_code
    old = current_version(before)
    for name, text in zip(FILES, (after.pyproject, after.package, after.changelog), strict=True):
        _write(root / name, text)
    print(f"release: {old} → {args.version} in {', '.join(FILES)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
