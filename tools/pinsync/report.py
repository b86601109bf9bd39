"""Rendering results for people and machines: diffs, text, JSON and GitHub annotations."""

from __future__ import annotations

import difflib

from .stage import Change


def unified_diff(change: Change) -> str:
    old = (change.old or b"").decode("utf-8", "replace").splitlines(keepends=True)
    new = change.new.decode("utf-8", "replace").splitlines(keepends=True)
    name = change.path.as_posix()
    lines = difflib.unified_diff(old, new, f"a/{name}", f"b/{name}")
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)
