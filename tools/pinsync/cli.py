"""The command line: `python -m pinsync lock|check|bump ...`, also what nox sessions call.

Exit codes: 0 success, 1 drift found (check), 2 could not do the job, 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import InterruptedAfterCommit, PinsyncError

if TYPE_CHECKING:
    from .environments import Place
    from .progress import InFlight
    from .recompile import Outcome
    from .repo import Repo
    from .report import Finding, FixCommands

# nox runs sessions from the noxfile's directory; these say where the user was.
ENV_DEFAULT_ROOT = "PINSYNC_DEFAULT_ROOT"
ENV_INVOKED_FROM = "PINSYNC_INVOKED_FROM"


def _invoked_from() -> Path:
    return Path(os.environ.get(ENV_INVOKED_FROM) or Path.cwd())


def _root(value: str | None) -> Path:
    invoked_from = _invoked_from()
    if value is None:
        return Path(os.environ.get(ENV_DEFAULT_ROOT) or invoked_from).resolve()
    return (invoked_from / value).resolve()


class _Formatter(argparse.HelpFormatter):
    """argparse's own formatter, told the terminal's width as shutil would tell it:
    argparse asks shutil, whose import (bz2, lzma, zlib) was 4 ms of every run."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        width = _columns() - 2 if width is None else width
        super().__init__(prog, indent_increment, max_help_position, width)


def _columns() -> int:
    """`shutil.get_terminal_size().columns`: $COLUMNS, else the terminal's, else 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        stream = sys.__stdout__
        try:
            columns = os.get_terminal_size(stream.fileno()).columns if stream else 0
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


def _parser(prog: str, description: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog=prog, description=description, formatter_class=_Formatter)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root",
        metavar="DIR",
        help="repository to work on (default: the one holding noxfile.py, else the current directory)",
    )
    parser.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="no progress lines while long compiles run (on stderr)",
    )


@contextlib.contextmanager
def _in_flight(args: argparse.Namespace) -> Iterator[InFlight | None]:
    """Progress on stderr for compiles that run more than 2 s, unless --quiet."""
    if args.quiet:
        yield None
        return
    from .progress import InFlight

    shown = InFlight(sys.stderr, tty=sys.stderr.isatty(), quiet_for=2.0, every=10.0)
    with shown.shown_while_running():
        yield shown


@contextlib.contextmanager
def _credentials(repo: Repo) -> Iterator[None]:
    """Compiles authenticate with the credentials of `index-credentials-env`, if set,
    and run with the pip-tools and pip the repository pins for itself, if it does."""
    from .toolchain import TOOL_NOTES, network, using_tools

    config = repo.config
    netrc: contextlib.AbstractContextManager[Path | None] = contextlib.nullcontext()
    if config.index_credentials_env:
        from .indexes import credentials_from_env, netrc_for

        netrc = netrc_for(credentials_from_env(config.index_credentials_env, os.environ), os.environ)
    pinned = None
    if config.tools == "repository":
        # Opt-in: a pinned pip-tools did not always write the locks it sits beside (a
        # dev lock's pip-tools, a pip that pip-tools no longer runs on; see README).
        from .toolchains import repo_tools

        pinned = repo_tools(repo.locks)
    with (
        netrc as path,
        network(path, config.network_timeout, config.pypi_mirror),
        using_tools(
            pinned.pip_tools if pinned else None,
            pinned.pip if pinned else None,
            pinned.uv if pinned else None,
        ),
    ):
        try:
            yield
        finally:
            for note in dict.fromkeys(TOOL_NOTES):
                print(f"pinsync: note: {note}", file=sys.stderr)


def _outcome_printer(in_flight: InFlight | None) -> Callable[[Outcome], None]:
    def show(outcome: Outcome) -> None:
        if in_flight is not None:
            in_flight.clear()  # a progress line redrawn in place must not run into it
        _print_outcome(outcome)

    return show


def _positive(text: str) -> int:
    value = int(text) if text.isdigit() else 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def add_jobs_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--jobs",
        "-j",
        type=_positive,
        metavar="N",
        help="compile up to N locks at once (default: CPUs)",
    )


def lock_parser() -> argparse.ArgumentParser:
    lock = _parser("pinsync lock", "Recompile every .in into its .txt, in dependency order.")
    _common(lock)
    lock.add_argument(
        "files",
        nargs="*",
        metavar="FILE",
        help="only these locks (or sources) and what depends on them",
    )
    lock.add_argument(
        "--upgrade",
        "-U",
        action="store_true",
        help="let every pin move to the newest allowed version",
    )
    lock.add_argument(
        "--upgrade-package",
        "-P",
        action="append",
        default=[],
        metavar="NAME[==VER]",
        help="let this package move (repeatable)",
    )
    lock.add_argument(
        "--force", action="store_true", help="recompile even locks whose stamp says they are fresh"
    )
    lock.add_argument(
        "--dry-run", action="store_true", help="show what would change, write nothing"
    )
    add_jobs_option(lock)
    return lock


_MOVES_SHOWN = 12  # a `lock --upgrade` can move hundreds of pins; the diff has them all


def _print_outcome(outcome: Outcome) -> None:
    from .report import plural

    detail = {
        "created": f"created ({plural(outcome.pins_changed, 'pin')})",
        "updated": f"updated ({plural(outcome.pins_changed, 'pin')} changed)",
        "unchanged": "unchanged",
        "restamped": "restamped (same pins, new stamp)",
        "fresh": "fresh (stamp matches, not recompiled)",
        "kept": f"kept as written: {outcome.error}; it meets its sources (--force recompiles it)",
        "failed": f"FAILED: {outcome.error}",
        "skipped": f"skipped: {outcome.error}",
    }[outcome.status]
    timing = f"  {outcome.seconds:.1f}s" if outcome.seconds else ""
    print(f"{outcome.output.as_posix():<40} {detail}{timing}", flush=True)
    if outcome.status == "updated":
        # Say what moved, old → new: in a group, that is also what aligning it took.
        for name, old, new in outcome.moved[:_MOVES_SHOWN]:
            print(f"    {name} {old or '-'} → {new or '-'}", flush=True)
        if len(outcome.moved) > _MOVES_SHOWN:
            print(f"    ... and {len(outcome.moved) - _MOVES_SHOWN} more", flush=True)
        if outcome.aligned_with:
            others = ", ".join(p.as_posix() for p in outcome.aligned_with)
            print(f"    resolved together with {others}", flush=True)


def cmd_lock(args: argparse.Namespace) -> int:
    from .lock import run_lock
    from .recompile import LockRequest
    from .report import plural
    from .stage import one_run_at_a_time

    root = _root(args.root)
    request = LockRequest(
        files=tuple(args.files),
        upgrade=args.upgrade,
        upgrade_packages=tuple(args.upgrade_package),
        force=args.force,
        restamp=args.force,
        dry_run=args.dry_run,
        jobs=args.jobs,
    )
    cwd = _invoked_from()
    with one_run_at_a_time(root):
        repo = _load_repo(root)
        with _credentials(repo), _in_flight(args) as in_flight:
            result = run_lock(repo, request, cwd, _outcome_printer(in_flight), in_flight)
    for path, why in repo.unmanaged:
        print(f"{path.as_posix():<40} {why}")
    compiled = {o.output for o in result.outcomes if o.status not in ("kept", "fresh")}
    for target in repo.graph.order():
        if target.inferred is not None and target.output in compiled:
            print(
                f"{target.output.as_posix():<40} compiled with options read off the lock "
                f"({' '.join(target.inferred) or 'none'}); its header shows only "
                f"{target.custom_command!r}"
            )
    if args.dry_run:
        from .report import unified_diff

        for change in result.changes:
            sys.stdout.write(unified_diff(change))
    counts: dict[str, int] = {}
    for outcome in result.outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    verb = "would write" if args.dry_run else "wrote"
    print(
        f"{plural(len(result.outcomes), 'lock file')}: {summary or 'none'}; "
        f"{verb} {plural(len(result.changes), 'file')} in {result.seconds:.1f}s"
    )
    failed = [o for o in result.outcomes if o.status == "failed"]
    for outcome in failed:
        print(f"pinsync: error: {outcome.output}: {outcome.error}", file=sys.stderr)
    return 2 if failed else 0


def check_parser() -> argparse.ArgumentParser:
    check = _parser(
        "pinsync check", "Fail on any drift between sources, locks and Dockerfiles. Never writes."
    )
    _common(check)
    check.add_argument("--format", choices=("text", "json", "github", "sarif"), default="text")
    how = check.add_mutually_exclusive_group()
    how.add_argument(
        "--offline", action="store_true", help="never run pip-compile; unstamped locks are warnings"
    )
    how.add_argument("--full", action="store_true", help="re-resolve every lock, stamped or not")
    check.add_argument(
        "--graph",
        choices=("mermaid", "dot"),
        help="print a flowchart of sources → locks → environments, drift in red, not the report",
    )
    check.add_argument(
        "--environments",
        action="store_true",
        help="show each environment, what it installs in order, and its findings",
    )
    return check


def cmd_check(args: argparse.Namespace) -> int:
    from .check import CheckOptions, run_check
    from .report import FixCommands, render_github, render_json, render_text

    repo = _load_repo(_root(args.root))
    fix = FixCommands.for_invocation(args.root, via_nox=ENV_DEFAULT_ROOT in os.environ)
    with _credentials(repo), _in_flight(args) as in_flight:
        options = CheckOptions(args.offline, args.full, fix, in_flight)
        findings = run_check(repo, options)
    if args.format == "github" and os.environ.get("GITHUB_STEP_SUMMARY"):
        _append_summary(Path(os.environ["GITHUB_STEP_SUMMARY"]), repo, findings, fix)
    if args.graph is not None:
        from .diagram import drift_graph, render_graph

        out = render_graph(drift_graph(repo, findings), args.graph)
    elif args.environments and args.format == "text":
        from .envcheck import environment_model, render_environments

        out = render_environments(environment_model(repo), findings)
    elif args.format == "json":
        out = render_json(findings, places=_places(repo, args.environments)) + "\n"
    elif args.format == "sarif":
        from . import __version__
        from .report import render_sarif

        out = render_sarif(findings, __version__) + "\n"
    elif args.format == "github":
        out = render_github(findings, _in_workspace(repo.root)) + render_text(
            findings, color=False, fix=fix
        )
    else:
        out = render_text(
            findings, color=sys.stdout.isatty() and "NO_COLOR" not in os.environ, fix=fix
        )
    sys.stdout.write(_redact(out))
    return exit_code(findings)


def _in_workspace(root: Path) -> str:
    """`services/api/` for --root services/api in an Actions checkout, else nothing."""
    workspace = os.environ.get("GITHUB_WORKSPACE")
    if not workspace:
        return ""
    try:
        inner = root.resolve().relative_to(Path(workspace).resolve())
    except ValueError:
        return ""  # checked outside the checkout: paths from --root are all there is
    return "" if inner == Path(".") else inner.as_posix() + "/"


def _places(repo: Repo, wanted: bool) -> Sequence[Place] | None:
    if not wanted:
        return None
    from .envcheck import environment_model

    return environment_model(repo)


def _append_summary(path: Path, repo: Repo, findings: Sequence[Finding], fix: FixCommands) -> None:
    """The job summary, appended (each step adds its own) to Actions' file, which lies
    outside the repository; one inside --root is refused: check writes nothing there."""
    from pathlib import PurePosixPath

    from .diagram import drift_graph
    from .summary import Links, render_summary

    if path.resolve().is_relative_to(repo.root.resolve()):
        print(f"pinsync: note: {path} is inside --root; no job summary written", file=sys.stderr)
        return
    links = Links.from_env(os.environ, PurePosixPath(repo.root.resolve()))
    text = render_summary(findings, fix, drift_graph(repo, findings), links)
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(_redact(text))
    except OSError as exc:
        # The report on stdout and the exit code still say everything.
        print(
            f"pinsync: warning: cannot write the job summary to {path}: {exc.strerror}",
            file=sys.stderr,
        )


def exit_code(findings: Sequence[Finding]) -> int:
    """1 on drift; 2 when the only errors are locks that could not be checked here."""
    errors = {f.kind for f in findings if f.severity == "error"}
    if errors - {"not-resolved"}:
        return 1
    return 2 if errors else 0


def bump_parser() -> argparse.ArgumentParser:
    bump = _parser(
        "pinsync bump",
        "Move one package in every .in, lock, Dockerfile and pyproject.toml, or change nothing.",
    )
    _common(bump)
    bump.add_argument("name", metavar="NAME", help="project name, in any spelling")
    bump.add_argument("version", metavar="VERSION", help="the version to move to")
    bump.add_argument(
        "--dry-run", action="store_true", help="print the table and a diff, write nothing"
    )
    add_jobs_option(bump)
    return bump


def cmd_bump(args: argparse.Namespace) -> int:
    from .bump import render_table, run_bump, validate
    from .report import plural, unified_diff
    from .stage import one_run_at_a_time

    validate(args.name, args.version)  # before anything is read or run
    root = _root(args.root)
    with one_run_at_a_time(root):
        repo = _load_repo(root)
        with _credentials(repo), _in_flight(args) as in_flight:
            show = _outcome_printer(in_flight)
            result = run_bump(
                repo, args.name, args.version, args.dry_run, show, args.jobs, in_flight
            )
    sys.stdout.write(render_table(result))
    files = ", ".join(c.path.as_posix() for c in result.changes)
    count = plural(len(result.changes), "file")
    if args.dry_run:
        for change in result.changes:
            sys.stdout.write(unified_diff(change))
        print(f"dry run: would change {count}{': ' + files if files else ''}; nothing was written")
    elif files:
        print(f"bumped {result.name} to {result.version} in {count}: {files}")
    else:
        print(f"no file changed: {result.name} is at {result.version} in every lock and pin")
    return 0


COMMANDS: dict[
    str, tuple[Callable[[], argparse.ArgumentParser], Callable[[argparse.Namespace], int]]
] = {
    "lock": (lock_parser, cmd_lock),
    "check": (check_parser, cmd_check),
    "bump": (bump_parser, cmd_bump),
}
USAGE = "usage: pinsync {lock,check,bump} [options] | pinsync --version   (pinsync COMMAND --help for more)"


# pinsync's own requirements (pyproject.toml), imported where they are first needed.
_DEPENDENCIES = frozenset({"filelock", "packaging", "piptools", "tomlkit", "tomli"})


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


# The modules behind the commands are imported when a command runs: `--help`, and a
# bad option, answer before pip-tools' and packaging's imports are paid for.


def _load_repo(root: Path) -> Repo:
    from .repo import load_repo

    return load_repo(root)


def _redact(text: str) -> str:
    from .failures import redact

    return redact(text)


def _fail(args: argparse.Namespace, message: str, code: int) -> int:
    print(f"pinsync: error: {message}", file=sys.stderr)
    if getattr(args, "format", None) in ("json", "sarif"):
        # A CI step that parses stdout gets an answer even when the check could not run.
        from . import __version__
        from .report import render_json, render_sarif

        if args.format == "json":
            print(render_json([], error=message))
        else:
            print(render_sarif([], __version__, error=message))
    return code


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    except KeyboardInterrupt:
        # Ctrl-C before a command runs (while its options are read): nothing has been
        # read or written yet. (A command's own interrupts are answered in _main.)
        print("pinsync: interrupted; no file was changed", file=sys.stderr)
        return 130


def _main(argv: list[str]) -> int:
    if argv == ["--version"]:
        from . import __version__

        print(f"pinsync {__version__}")
        return 0
    if not argv or argv[0] not in COMMANDS:
        print(USAGE, file=sys.stderr if argv[:1] not in (["-h"], ["--help"]) else sys.stdout)
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    # CI cancels a job with SIGTERM (and a closed terminal sends SIGHUP): both stop a
    # run the way Ctrl-C does, with running compiles stopped and every file whole.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    make_parser, run = COMMANDS[argv[0]]
    # Intermixed parsing lets options come before or after the positional arguments.
    args = make_parser().parse_intermixed_args(argv[1:])
    try:
        return run(args)
    except PinsyncError as exc:
        return _fail(args, _redact(str(exc)), exc.exit_code)
    except ModuleNotFoundError as exc:
        if exc.name not in _DEPENDENCIES:
            raise
        # A Python without pinsync's own requirements (PYTHONPATH=tools on a bare
        # interpreter): say which one is missing and how to get it, not a traceback.
        return _fail(
            args,
            f"this Python ({sys.executable}) lacks {exc.name}, which pinsync needs: "
            "install requirements/tools.txt, or run it through nox",
            2,
        )
    except InterruptedAfterCommit:
        print("pinsync: interrupted after every file was written", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("pinsync: interrupted; no file was changed", file=sys.stderr)
        return 130
