"""Rendering results for people and machines: diffs, text, JSON and GitHub annotations."""

from __future__ import annotations

import hashlib
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
    from .environments import Place
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
    "not-resolved",
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
    # The environment the finding was judged in (`Dockerfile stage dev`, `tox.ini
    # [testenv:docs]`), where it came from one: two files a user never connected are
    # believed only when the connection is shown.
    environment: str | None = None


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


FIX = FixCommands()  # the defaults; run_check respells them as the invocation says


def unified_diff(change: Change) -> str:
    old = (change.old or b"").decode("utf-8", "replace").splitlines(keepends=True)
    new = change.new.decode("utf-8", "replace").splitlines(keepends=True)
    name = change.path.as_posix()
    import difflib  # only where a diff is shown

    lines = difflib.unified_diff(old, new, f"a/{name}", f"b/{name}")
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _escape_data(text: str) -> str:
    # GitHub workflow commands: %, CR and LF must be escaped in messages.
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_json(
    findings: Sequence[Finding], error: str | None = None, places: Sequence[Place] | None = None
) -> str:
    ok = error is None and not any(f.severity == "error" for f in findings)
    return json.dumps(
        {
            "ok": ok,
            **({"error": error} if error is not None else {}),
            **({"environments": [_place_json(p) for p in places]} if places is not None else {}),
            "findings": [
                {
                    "file": f.file,
                    "line": f.line,
                    "package": f.package,
                    "kind": f.kind,
                    "severity": f.severity,
                    "message": f.message,
                    **({"environment": f.environment} if f.environment else {}),
                }
                for f in findings
            ],
        },
        indent=2,
    )


def _place_json(place: Place) -> dict[str, object]:
    return {
        "name": place.name,
        "file": place.file,
        "installs": [
            {
                "path": step.lock.as_posix(),
                "file": step.file or place.file,
                "line": step.line,
                "no_deps": step.no_deps,
            }
            for step in place.steps
        ],
    }


_GITHUB_LEVEL = {"error": "error", "warning": "warning", "info": "notice"}


def render_github(findings: Sequence[Finding], prefix: str = "") -> str:
    """Workflow commands; `prefix` is --root's path in the checkout, since Actions
    places an annotation by its path from the top of the repository."""
    return "".join(
        f"::{_GITHUB_LEVEL[f.severity]} file={_escape_property(prefix + f.file)},line={f.line},"
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


# --- SARIF 2.1.0, for GitHub code scanning and CI dashboards -----------------------------


@dataclass(frozen=True)
class Rule:
    """What a finding kind means and what to do about it: one SARIF rule per kind."""

    summary: str
    help: str


RULES: dict[Kind, Rule] = {
    "stale-lock": Rule(
        "A lock does not satisfy its sources",
        "A requirement of an input is missing from the lock or not met by its pin, or "
        "the lock pins a top-level package no input asks for. Run `nox -s lock`.",
    ),
    "constraint-violated": Rule(
        "A lock breaks a -c constraint",
        "Recompile the lock (`nox -s lock`) or relax the constraint file.",
    ),
    "out-of-date": Rule(
        "A lock is not what `lock` would write",
        "It was edited by hand, or its inputs or options changed since it was written. "
        "Run `nox -s lock`.",
    ),
    "dockerfile-pin": Rule(
        "A Dockerfile installs another version than the lock",
        "Match the lock's version, or move both with `nox -s bump -- NAME VERSION`.",
    ),
    "co-installed-conflict": Rule(
        "Locks installed into one image disagree",
        "pip refuses them in one command, or the later install wins. Run `nox -s lock`, "
        "which resolves locks installed together as one group.",
    ),
    "layers-disagree": Rule(
        "A lock and a layer it includes disagree",
        "Run `nox -s lock`: the layers are resolved together and end up agreeing.",
    ),
    "wrong-python": Rule(
        "A lock for a Python not installed here",
        "It was checked against its sources but not re-resolved: install that Python.",
    ),
    "unverified": Rule(
        "A lock checked without re-resolving it",
        "It has no pinsync stamp (or only inferred options). Run `nox -s lock -- --force` "
        "to stamp it, or check without --offline.",
    ),
    "annotations-differ": Rule(
        "A lock's header or annotations differ from a fresh compile",
        "Its pins are right. Run `nox -s lock` to refresh the rest.",
    ),
    "omitted-pin": Rule(
        "A required pin was deleted from a lock after compiling",
        "Set `omit` for that output if that is intended, or restore the pin.",
    ),
    "inferred-options": Rule(
        "A lock's compile options were read off the lock",
        "Its header shows only a custom command. Set compile-args for the output if it "
        "was compiled otherwise.",
    ),
    "not-managed": Rule(
        "A file pinsync does not compile",
        "A sample .in, or a lock whose sources cannot be found: set inputs for it to manage it.",
    ),
    "override": Rule(
        "A later --no-deps install overrides a lock's pin",
        "Stated intent, named so that it is seen. If not intended, align the two locks.",
    ),
    "pin-site": Rule(
        "A pin elsewhere matches none of its service's locks",
        "Match it, or move everything with `nox -s bump -- NAME VERSION`.",
    ),
    "bot-incompatible": Rule(
        "Renovate cannot replay a lock's header",
        "Renovate's pip-compile manager stops updating this lock. Let the header show a "
        "plain pip-compile command with options it accepts.",
    ),
    "not-resolved": Rule(
        "A lock that could not be re-resolved here",
        "Its compile failed on this machine (a build that needs what is missing here, an "
        "index that refused); every other lock was still checked. Fix the cause and re-run.",
    ),
}

_SARIF_LEVEL = {"error": "error", "warning": "warning", "info": "note"}
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def render_sarif(findings: Sequence[Finding], version: str, error: str | None = None) -> str:
    """A SARIF 2.1.0 log: one run, a rule for every kind (so indices never move), and a
    result per finding with a fingerprint that survives unrelated edits of the file."""
    kinds = list(RULES)
    rules = [
        {
            "id": kind,
            "name": "".join(word.capitalize() for word in kind.split("-")),
            "shortDescription": {"text": RULES[kind].summary},
            "fullDescription": {"text": RULES[kind].help},
            "help": {"text": RULES[kind].help},
            "defaultConfiguration": {"level": _SARIF_LEVEL[_DEFAULT_SEVERITY.get(kind, "error")]},
        }
        for kind in kinds
    ]
    results = [
        {
            "ruleId": f.kind,
            "ruleIndex": kinds.index(f.kind),
            "level": _SARIF_LEVEL[f.severity],
            "message": {"text": f.message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": f.file, "uriBaseId": "%SRCROOT%"},
                        "region": {"startLine": max(f.line, 1)},
                    }
                }
            ],
            **({"properties": {"environment": f.environment}} if f.environment else {}),
            # Not the line: a lock rewritten above a finding must keep its identity.
            "partialFingerprints": {
                "pinsync/v1": hashlib.sha256(
                    "\0".join((f.kind, f.file, f.package or "", f.message)).encode()
                ).hexdigest()[:32]
            },
        }
        for f in findings
    ]
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "pinsync", "version": version, "rules": rules}},
                "columnKind": "unicodeCodePoints",
                # A check that could not run (exit 2) says so, rather than "no results".
                "invocations": [
                    {
                        "executionSuccessful": error is None,
                        **(
                            {
                                "toolExecutionNotifications": [
                                    {"level": "error", "message": {"text": error}}
                                ]
                            }
                            if error is not None
                            else {}
                        ),
                    }
                ],
                "results": results,
            }
        ],
    }
    return json.dumps(log, indent=2)


_DEFAULT_SEVERITY: dict[Kind, Severity] = {
    "override": "warning",
    "omitted-pin": "warning",
    "layers-disagree": "warning",
    "wrong-python": "warning",
    "annotations-differ": "warning",
    "bot-incompatible": "warning",
    "unverified": "info",
    "inferred-options": "info",
    "not-managed": "info",
}
