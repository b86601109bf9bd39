"""The GitHub Actions job summary of `check --format github`: Markdown, rendered here.

Pure: findings, the fix commands and the drift graph in, text out. The CLI appends
it to the file GITHUB_STEP_SUMMARY names, and only when that variable is set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from .diagram import SUMMARY_MAX_NODES, mermaid, move_of
from .report import FixCommands, plural

if TYPE_CHECKING:
    from .diagram import Layout
    from .report import Finding

_ICON = {"error": "🔴", "warning": "🟠", "info": "🔵"}


@dataclass(frozen=True)
class Links:
    """Where a finding's `file:line` link points.

    The summary page lives under /actions/runs/, where a relative link would not
    reach the file; with the run's GITHUB_SERVER_URL, GITHUB_REPOSITORY and GITHUB_SHA
    it is the file at the checked commit, else a path relative to the repository.
    """

    base: str = ""  # `https://github.com/OWNER/REPO/blob/SHA/`, or empty
    prefix: str = ""  # where --root lies in the checkout: `services/api/`, or empty

    def url(self, file: str, line: int) -> str:
        return f"{self.base}{self.prefix}{file}#L{max(line, 1)}"

    @classmethod
    def from_env(cls, env: Mapping[str, str], root: PurePosixPath) -> Links:
        """From the variables Actions sets; `root` is the resolved --root."""
        workspace = env.get("GITHUB_WORKSPACE")
        prefix = ""
        if workspace and root.is_relative_to(workspace):
            inside = root.relative_to(workspace).as_posix()
            prefix = "" if inside == "." else f"{inside}/"
        parts = [env.get(k, "") for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_SHA")]
        base = "/".join([*parts[:2], "blob", parts[2], ""]) if all(parts) else ""
        return cls(base, prefix)


def graph_command(fix: FixCommands) -> str:
    """The command that prints the graph, spelled like the fix commands (nox or CLI)."""
    if fix.lock.startswith("nox -s lock"):
        rest = fix.lock.removeprefix("nox -s lock")
        return (
            f"nox -s check-lock{rest if rest.startswith(' --') else ' --' + rest} --graph mermaid"
        )
    head, _, rest = fix.lock.partition(" lock")
    return f"{head} check{rest} --graph mermaid"


def _cell(text: str) -> str:
    # A table cell ends at `|` and at a line break; `<` would open an HTML tag.
    return " ".join(text.replace("|", "\\|").replace("<", "&lt;").split())


def render_summary(
    findings: Sequence[Finding],
    fix: FixCommands,
    graph: Layout | None = None,
    links: Links = Links(),
) -> str:
    """Counts, a table of findings, the fix command and the graph (or how to get it)."""
    errors = sum(f.severity == "error" for f in findings)
    warnings = sum(f.severity == "warning" for f in findings)
    notes = len(findings) - errors - warnings
    noted = f", {plural(notes, 'note')}" if notes else ""
    if errors or warnings:
        title = f"{plural(errors, 'error')}, {plural(warnings, 'warning')}{noted}"
    else:
        title = f"all lock files are in sync{noted}"
    lines = [f"## pinsync check: {title}", ""]
    if findings:
        lines += [
            "| | kind | where | package | old → new | message |",
            "|---|---|---|---|---|---|",
        ]
        for f in findings:
            move = move_of(f)
            where = f"[{_cell(f.file)}:{f.line}]({links.url(f.file, f.line)})"
            lines.append(
                f"| {_ICON[f.severity]} {f.severity} | `{f.kind}` | {where} "
                f"| {_cell(f.package or '')} | {_cell(' → '.join(move) if move else '')} "
                f"| {_cell(f.message)} |"
            )
        lines.append("")
    if errors:
        lines += [
            f"**Fix:** `{fix.lock}` (pins elsewhere: `{fix.bump} NAME VERSION`)",
            "",
        ]
    if graph is not None:
        lines += ["### Sources → locks → environments", ""]
        if len(graph.nodes) < SUMMARY_MAX_NODES:
            drifted = "; drifted edges are red (errors) or orange (warnings)" if findings else ""
            lines += [f"Each arrow is a file read or installed{drifted}.", ""]
            lines += ["```mermaid", mermaid(graph).rstrip("\n"), "```", ""]
        else:
            lines += [
                f"The graph has {len(graph.nodes)} nodes, too many to draw here; "
                f"print it with `{graph_command(fix)}`.",
                "",
            ]
    return "\n".join(lines)
