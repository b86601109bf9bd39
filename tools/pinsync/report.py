"""Rendering results for people and machines: diffs, text, JSON and GitHub annotations."""

from __future__ import annotations

import difflib
import itertools
import json
import re
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # at run time the offline check must not pay for the stage's imports
    from .stage import Change

Severity = Literal["error", "warning", "info"]
Kind = Literal[
    "stale-lock",
    "constraint-violated",
    "out-of-date",
    "dockerfile-pin",
    "co-installed-conflict",
    "layers-disagree",
    "wrong-python",
    "unverified",
    "annotations-differ",
    "omitted-pin",
    "inferred-options",
    "not-managed",
    "override",
    "pin-site",
    "bot-incompatible",
]


@dataclass(frozen=True)
class Finding:
    """One thing `check-lock` reports: where, about which package, what, and how bad."""

    file: str
    line: int
    package: str | None
    kind: Kind
    severity: Severity
    message: str


@dataclass(frozen=True)
class FixCommands:
    """The commands a hint tells the user to run, spelled so that they can be pasted
    where the user ran pinsync: the nox session, or the plain CLI, with their --root."""

    lock: str = "nox -s lock"
    lock_force: str = "nox -s lock -- --force"
    bump: str = "nox -s bump --"  # followed by NAME VERSION

    @classmethod
    def for_invocation(cls, root: str | None, via_nox: bool) -> FixCommands:
        where = f" --root {shlex.quote(root)}" if root else ""
        if via_nox:
            lock = f"nox -s lock -- --root {shlex.quote(root)}" if root else "nox -s lock"
            return cls(lock, f"nox -s lock --{where} --force", f"nox -s bump --{where}")
        # The console script where that is what ran, else the module (`python -m`).
        cli = "pinsync" if Path(sys.argv[0]).name == "pinsync" else "python -m pinsync"
        return cls(f"{cli} lock{where}", f"{cli} lock{where} --force", f"{cli} bump{where}")

    def respell(self, message: str) -> str:
        """`message`, its quoted default commands replaced by these."""
        default = FixCommands()
        spelled = {
            f"`{default.lock_force}": f"`{self.lock_force}",
            f"`{default.lock}": f"`{self.lock}",
            f"`{default.bump}": f"`{self.bump}",
        }
        # One pass, longest first: a respelled command must not be respelled again.
        pattern = "|".join(re.escape(k) for k in sorted(spelled, key=len, reverse=True))
        return re.sub(pattern, lambda m: spelled[m.group(0)], message)


def unified_diff(change: Change) -> str:
    old = (change.old or b"").decode("utf-8", "replace").splitlines(keepends=True)
    new = change.new.decode("utf-8", "replace").splitlines(keepends=True)
    name = change.path.as_posix()
    lines = difflib.unified_diff(old, new, f"a/{name}", f"b/{name}")
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _escape_data(text: str) -> str:
    # GitHub workflow commands: %, CR and LF must be escaped in messages.
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_json(findings: Sequence[Finding], error: str | None = None) -> str:
    ok = error is None and not any(f.severity == "error" for f in findings)
    return json.dumps(
        {
            "ok": ok,
            **({"error": error} if error is not None else {}),
            "findings": [
                {
                    "file": f.file,
                    "line": f.line,
                    "package": f.package,
                    "kind": f.kind,
                    "severity": f.severity,
                    "message": f.message,
                }
                for f in findings
            ],
        },
        indent=2,
    )


_GITHUB_LEVEL = {"error": "error", "warning": "warning", "info": "notice"}


def render_github(findings: Sequence[Finding]) -> str:
    return "".join(
        f"::{_GITHUB_LEVEL[f.severity]} file={_escape_property(f.file)},line={f.line},"
        f"title={_escape_property('pinsync ' + f.kind)}::{_escape_data(f.message)}\n"
        for f in findings
    )


_COLOR = {"error": "31", "warning": "33", "info": "36"}


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def render_text(findings: Sequence[Finding], color: bool, fix: FixCommands | None = None) -> str:
    def paint(code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if color else text

    lines: list[str] = []
    for file, group in itertools.groupby(findings, key=lambda f: f.file):
        lines.append(paint("1", file))
        for f in group:
            label = paint(_COLOR[f.severity], f.severity)
            lines.append(f"  {f.file}:{f.line}: {label} [{f.kind}] {f.message}")
    errors = sum(f.severity == "error" for f in findings)
    warnings = sum(f.severity == "warning" for f in findings)
    infos = len(findings) - errors - warnings
    if not errors and not warnings:
        lines.append(paint("32", "All lock files are in sync."))
        if infos:
            lines.append(f"({plural(infos, 'note')} above.)")
    else:
        notes = f", {plural(infos, 'note')}" if infos else ""
        lines.append(f"{plural(errors, 'error')}, {plural(warnings, 'warning')}{notes}.")
        if errors:
            fix = fix or FixCommands()
            lines.append(f"Fix: {fix.lock}   (pins elsewhere: {fix.bump} NAME VERSION)")
    return "\n".join(lines) + "\n"
