"""What a failed compile says: pip-compile's or uv's output cut to the line or two
that say why, with every URL's credentials hidden."""

from __future__ import annotations

import re
from collections.abc import Sequence

# Greedy up to the last "@" before the path: pip splits credentials there too.
_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][\w+.-]*://)[^/\s]*@")


def redact(text: str) -> str:
    """Hide the user:password or token part of every URL in `text`."""
    return _CREDENTIALS.sub(r"\g<scheme>****@", text)


def explain_failure(output: str, python: str | None = None) -> str:
    """Cut pip-compile's (or uv's) output to the one or two lines that say why it failed."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    # A build's own output may hold any of the messages below; the build comes first.
    built = _build_failure(lines)
    if built is not None:
        return redact(built)
    target = f"Python {python}" if python else "this Python"
    for ln in lines:
        # pip: "Package 'x' requires a different Python: 3.11.7 not in '>=3.12'"
        if "requires a different Python:" in ln:
            package = ln.split("Package ", 1)[-1].split(" requires", 1)[0].strip("'\"")
            needs = ln.rsplit(" not in ", 1)[-1].strip("'\"")
            return redact(f"{package}: versions exist but none supports {target} (needs {needs})")
    for ln in lines:
        marker = "Could not find a version that satisfies the requirement "
        if marker in ln:
            rest = ln.split(marker, 1)[1]
            req, _, versions = rest.partition(" (from versions: ")
            versions = versions.rstrip(")")
            skipped = _skipped_for_python(lines, req)
            if skipped is not None:
                return redact(f"{req}: versions exist but none supports {target} ({skipped})")
            if versions in ("", "none"):
                return redact(f"{req} is not on the index (no version of it is available)")
            newest = versions.split(", ")[-1]
            return redact(f"{req} is not on the index (newest: {newest})")
    if "The conflict is caused by:" in lines:
        start = lines.index("The conflict is caused by:") + 1
        causes = []
        for ln in lines[start:]:
            if ln.startswith(("To fix", "ERROR", "Additionally", "1.", "2.")):
                break
            causes.append(ln)
        return redact("conflicting requirements: " + "; ".join(causes))
    uv_reason = [ln for ln in lines if ln.startswith((_CROSS, _LAST_BRANCH, "error:"))]
    if uv_reason:
        return redact(" ".join(ln.lstrip(_CROSS + _LAST_BRANCH + " ") for ln in uv_reason[:2]))
    errors = [ln for ln in lines if ln.startswith(("ERROR:", "Error:"))]
    if errors:
        return redact(" / ".join(e.split(":", 1)[1].strip() for e in errors[:2]))
    tail = [ln for ln in lines if not ln.startswith(("File ", "Traceback", "^", "~"))]
    return redact(tail[-1] if tail else "pip-compile failed without saying why")


def _skipped_for_python(lines: Sequence[str], req: str) -> str | None:
    """`VER needs SPEC` for a release of `req` that pip skipped only for its Requires-Python.

    pip lists every release it ignored for the running Python, whether or not it would
    have satisfied the requirement; only one that does means "exists, but not here".
    """
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.version import InvalidVersion, Version

    try:
        specifier = Requirement(req).specifier
    except InvalidRequirement:
        return None
    for ln in lines:
        if "Requires-Python" not in ln:
            continue
        for item in ln.split(": ", 1)[-1].split("; "):
            version, _, needs = item.partition(" Requires-Python ")
            try:
                if needs and specifier.contains(Version(version), prereleases=True):
                    return f"{version} needs Python {needs}"
            except InvalidVersion:
                continue
    return None


# The box-drawing marks pip and uv put before a failed step and its cause.
_CROSS = "\u00d7"
_LAST_BRANCH = "\u2570\u2500\u25b6"
_BUILD_STEP = re.compile(
    r"\u00d7 (?P<step>.+?)(?: (?:for|of) (?P<pkg>\S+))? did not run successfully"
)
# pip 26 names the package only in its last line.
_FAILED_TO_BUILD = re.compile(r"Failed to build '(?P<pkg>[^']+)' when")
_UV_BUILD = re.compile(r"\u00d7 Failed to (?:build|download and build) `(?P<pkg>[^`]+)`")


def _build_failure(lines: Sequence[str]) -> str | None:
    """`pkg failed to build (step): <first reason>` when a source distribution would not build."""
    for i, line in enumerate(lines):
        pip_step = _BUILD_STEP.match(line)
        uv_step = _UV_BUILD.match(line)
        if pip_step is None and uv_step is None:
            continue
        block: list[str] = []
        for later in lines[i + 1 :]:
            if later.startswith(("[end of output]", "note:")):
                break
            if not later.startswith(("\u2502", "\u2570->", "exit code")):
                block.append(later.lstrip("\u2502\u251c\u2570\u2500\u25b6 "))
        errors = [
            b for b in block if b.startswith(("ERROR:", "error:", "Exception:")) or "Error:" in b
        ]
        reason = errors[0] if errors else (block[-1] if block else "no output")
        if reason.startswith(("ERROR:", "error:")):
            reason = reason.split(":", 1)[1].strip()
        if pip_step is not None:
            pkg = pip_step["pkg"] or next(
                (m["pkg"] for ln in lines[i:] if (m := _FAILED_TO_BUILD.search(ln))), "a package"
            )
            step = pip_step["step"][0].lower() + pip_step["step"][1:]
            return f"{pkg} failed to build ({step}): {reason}"
        assert uv_step is not None
        return f"{uv_step['pkg']} failed to build: {reason}"
    return None
