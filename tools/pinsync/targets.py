"""Which compile made each lock: its sources, options and directory.

Read off each lock's header, the config, its `# via -r` notes and the commands the
repository runs (make, tox, CI, scripts, nox), so that a lock is recompiled exactly
as its author compiled it. load_repo (repo.py) does the reading; this decides.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from .config import Config
from .discovery import join, leaves_root, matches, read_text, resolves_inside, site_kind
from .errors import ConfigError, PinsyncError
from .graph import Invocation, Target
from .lockfile import Header, LockFile, infer_options, parse_lockfile, replayable, via_annotations
from .reqfile import ReqFile, parse_requirements
from .toolchain import CURRENT

if TYPE_CHECKING:
    from .commands import CompileCommand

# The directory a compile runs in by default, built once: every lock is compared with it.
_ROOT_DIR = PurePosixPath(".")


def via_includes(lock: LockFile) -> tuple[str, ...]:
    """The `-r PATH` notes of a lock's `# via` annotations, in order of first mention.

    pip-compile writes them relative to the directory it ran in, so they tell where
    the author ran it even when the header does not.
    """
    notes = (n for ns in via_annotations(lock).values() for n in ns if n.startswith("-r "))
    return tuple(dict.fromkeys(n[3:].strip() for n in notes))


def lock_once(root: Path, path: PurePosixPath, lock_files: dict[PurePosixPath, LockFile]) -> LockFile:
    """Read and parse the lock at `path` once per load, whoever asks first."""
    if path not in lock_files:
        lock_files[path] = parse_lockfile(path, read_text(root, path))
    return lock_files[path]


def _run_dirs(lock: PurePosixPath) -> tuple[PurePosixPath, ...]:
    """Where an author may have run the compile: the root, the lock's directory, between."""
    return _dirs_up_to(lock.parent)


@lru_cache(maxsize=4096)  # asked per lock; the locks of a repository share a few dirs
def _dirs_up_to(directory: PurePosixPath) -> tuple[PurePosixPath, ...]:
    return tuple(dict.fromkeys([_ROOT_DIR, directory, *reversed(directory.parents)]))


def find_run_dir(
    lock: PurePosixPath,
    sources: Sequence[str],
    output: str | None,
    vias: Sequence[str],
    on_disk: Collection[PurePosixPath],
) -> PurePosixPath | None:
    """The directory the header's paths are relative to, confirmed by the `# via -r` paths."""
    best: tuple[int, int] | None = None
    chosen = None
    for d in _run_dirs(lock):
        # The output first: it rules out every directory but one, in one join.
        if output is not None and join(d, output) != lock:
            continue
        if not all(join(d, s) in on_disk for s in sources):
            continue
        score = (sum(join(d, v) in on_disk for v in vias), -len(d.parts))
        if best is None or score > best:
            best, chosen = score, d
    return chosen


def _sources_from_vias(
    root: Path,
    run_dir: PurePosixPath,
    vias: Sequence[str],
    parsed: dict[PurePosixPath, ReqFile],
) -> tuple[str, ...]:
    """The files a compile was given: the `-r` notes that no other noted file includes."""
    paths = {v: join(run_dir, v) for v in vias}
    included: set[PurePosixPath] = set()
    for path in paths.values():
        if not leaves_root(path) and resolves_inside(root, root / path) and (root / path).is_file():
            included.update(i.target for i in parse_once(root, path, parsed).includes)
    return tuple(sorted(v for v, p in paths.items() if p not in included))


def find_targets(
    root: Path,
    config: Config,
    files: tuple[PurePosixPath, ...],
    headers: Mapping[PurePosixPath, Header],
    parsed: dict[PurePosixPath, ReqFile],
    lock_files: dict[PurePosixPath, LockFile],
) -> tuple[list[Target], list[tuple[PurePosixPath, str]]]:
    in_files = [
        p
        for p in files
        if p.suffix == ".in"
        and (not config.include or matches(p, config.include))
        and not matches(p, config.exclude)
    ]
    on_disk = set(files)
    in_set = set(in_files)  # asked once per lock: a list would make discovery N²
    configured = dict(config.outputs or {})
    claimed: set[PurePosixPath] = set()
    targets: list[Target] = []
    notes: list[tuple[PurePosixPath, str]] = []
    from_table = set(pip_tools_options(config.pip_tools))
    found_commands: list[CompileCommand] | None = None

    def commands() -> list[CompileCommand]:
        """Every compile command the repository runs, read once, when first needed."""
        nonlocal found_commands
        if found_commands is None:
            found_commands = _compile_commands(root, files, config)
        return found_commands

    def add(
        output: PurePosixPath,
        inputs: tuple[PurePosixPath, ...],
        header: Header | None,
        invocation: Invocation | None = None,
        keep_command: bool = False,
        command_args: tuple[str, ...] | None = None,
    ) -> None:
        for path in (output, *inputs):
            if leaves_root(path):
                # Before anything runs: a lock is never written (or read) outside --root.
                raise ConfigError(
                    f"{path}: outside the repository root (in the compile of {output}); "
                    "outputs and inputs must be paths inside --root"
                )
        out_cfg = configured.get(output)
        args = out_cfg.compile_args if out_cfg and out_cfg.compile_args is not None else None
        args = config.compile_args if args is None else args
        inferred: tuple[str, ...] | None = None
        custom = config.custom_compile_command
        if header is not None and (header.custom or keep_command):
            # Keep the team's own header (`make upgrade`) when pinsync rewrites the lock.
            custom = custom or header.command
        if args is None and command_args is not None:
            # The command behind a custom header, found where the repository keeps it.
            args = command_args
        if args is None and header is not None:
            if (
                header.custom
                and header.command == config.custom_compile_command
                and lock_once(root, output, lock_files).stamp is not None
            ):
                # pinsync wrote it, under the config's command and with the config's
                # options, which are none: reading options back off the lock would
                # make up some (`--no-emit-index-url` for a lock without index lines).
                args = ()
            elif header.custom:
                args = inferred = infer_options(lock_once(root, output, lock_files), header.tool)
            else:
                # The header echoes what [tool.pip-tools] supplies; replaying it as well
                # would make the same lock look differently configured.
                # Only options that shape the lock are replayed: a header is the
                # repository's text, and `--cache-dir=/anywhere`, `--pip-args` or a
                # (masked) index URL must not steer what a check runs or contacts.
                args = replayable(header.options)
                if header.tool == "pip-compile":
                    args = tuple(o for o in args if o not in from_table)
                else:
                    # uv echoes its argv as given; pinning the header keeps the author's
                    # spelling and order where pinsync passes the same options its way.
                    custom = custom or header.command
        configured_python = (out_cfg.python if out_cfg else None) or config.python
        python = configured_python or (header.python if header else None) or CURRENT
        guess = None
        if inferred is not None:
            guess = "its header shows only a custom command, so its options are a guess"
        elif header is None and output in on_disk and args is None:
            guess = "it has no pip-compile header, so how it was compiled is not known"
        elif (
            header is not None
            and header.tool == "pip-compile"
            and header.python is None
            and configured_python is None
        ):
            guess = "its header does not name the Python it was compiled for"
        tool = header.tool if header else "pip-compile"
        run_dir = invocation.cwd if invocation is not None else _ROOT_DIR
        if invocation is not None and invocation == _plain(output, inputs):
            invocation = None  # the default, spelled one way so equal targets compare equal
        table = config.pip_tools if tool == "pip-compile" else None  # uv reads no such table
        targets.append(
            Target(
                output,
                inputs,
                tuple(args or ()),
                python,
                custom,
                tool,
                invocation,
                out_cfg.omit if out_cfg else frozenset(),
                inferred,
                guess,
                constraint_files(output, run_dir, tuple(args or ()), table),
            )
        )
        claimed.update(inputs)

    for output, out_cfg in sorted(configured.items()):
        header = headers.get(output)
        inputs = out_cfg.inputs or (header.sources if header and header.sources else None)
        add(output, tuple(inputs or (output.with_suffix(".in"),)), header)
    for lock, header in sorted(headers.items()):
        if lock in configured or matches(lock, config.exclude):
            continue
        if header.tool == "pip-compile-multi":
            # pip-compile-multi writes X.txt beside the X.in it compiled.
            pcm_in = lock.with_suffix(".in")
            if pcm_in not in on_disk:
                notes.append(
                    (lock, f"not managed: pip-compile-multi wrote it, but {pcm_in} is gone")
                )
                continue
            python = config.python or CURRENT  # (a configured output is not pcm's)
            # Of compile-args, pip-compile-multi takes --allow-unsafe: the one option
            # its outputs do not show until an unsafe package is pinned.
            args = tuple(a for a in config.compile_args or () if a == "--allow-unsafe")
            targets.append(Target(lock, (pcm_in,), args, python, None, "pip-compile-multi"))
            claimed.add(pcm_in)
            continue
        if not header.source_args and not header.custom and header.tool == "pip-compile":
            # `pip-compile` with no source ran where its default source sits; replay it
            # the same way, so the header keeps naming no source.
            found = default_source(lock, header.output_arg, on_disk)
            if found is None:
                notes.append((lock, _no_default_reason(lock, header)))
                continue
            ran_in, source = found
            add(lock, (join(ran_in, source),), header, Invocation(ran_in, (), header.output_arg))
            continue
        wants_vias = header.custom or not header.sources
        vias = via_includes(lock_once(root, lock, lock_files)) if wants_vias else ()
        if header.source_args and container_paths(header):
            # Compiled in a container with the repository mounted (`/code/...`): its
            # files are those the paths end with. The header line is kept as written.
            mapped = container_sources(header.source_args, on_disk)
            if mapped is None:
                notes.append((lock, _unmanaged_reason(lock, header, on_disk)))
                continue
            invocation = Invocation(_ROOT_DIR, tuple(m.as_posix() for m in mapped), None)
            add(lock, mapped, header, replace(invocation, output=lock.as_posix()), True)
            continue
        if header.source_args:
            run_dir = find_run_dir(lock, header.source_args, header.output_arg, vias, on_disk)
            source_args = header.source_args
        else:
            run_dir = find_run_dir(lock, vias, None, vias, on_disk) if vias else None
            source_args = _sources_from_vias(root, run_dir, vias, parsed) if run_dir else ()
            sibling = lock.with_suffix(".in")
            given = {join(run_dir, s) for s in source_args} if run_dir is not None else set()
            if (
                given
                and sibling in in_set
                and sibling not in given
                and given <= _included(root, sibling, parsed)
            ):
                # An .in that only `-r`s others is named by no `# via` note: the
                # notes of `pip-compile X.in` then name what X.in includes.
                run_dir, source_args = _ROOT_DIR, (sibling.as_posix(),)
        if (run_dir is None or not source_args) and header.custom:
            command = _command_for(lock, header, commands(), on_disk)
            if command is not None and command[1].sources:
                run_dir, source_args = command[0], command[1].sources
        if run_dir is None or not source_args:
            sibling = lock.with_suffix(".in")
            if sibling in in_set and not header.source_args:
                run_dir, source_args = _ROOT_DIR, (sibling.as_posix(),)
            else:
                notes.append((lock, _unmanaged_reason(lock, header, on_disk)))
                continue
        command = _command_for(lock, header, commands(), on_disk) if header.custom else None
        command_args = None
        if command is not None:
            command_dir, cmd = command
            if cmd.sources:
                run_dir, source_args = command_dir, cmd.sources
            if cmd.complete:
                command_args = replayable(cmd.options)
                if cmd.tool == "pip-compile":
                    command_args = tuple(o for o in command_args if o not in from_table)
        sources = tuple(join(run_dir, s) for s in source_args)
        # pip-compile takes any requirements file, pyproject.toml, setup.cfg or setup.py;
        # an .in that the config leaves out stays out.
        if not all(s in in_set if s.suffix == ".in" else s != lock for s in sources):
            notes.append((lock, _unmanaged_reason(lock, header, on_disk, config_excluded=True)))
            continue
        output_arg = header.output_arg
        if header.custom or (header.tool == "uv" and output_arg is None):
            output_arg = _relative(lock, run_dir)
        add(
            lock,
            sources,
            header,
            Invocation(run_dir, tuple(source_args), output_arg),
            command_args=command_args,
        )
    # In a repository that already has locks, an uncompiled .in that others pull in
    # with -r is a fragment (openedx's github.in), and one in a directory that holds
    # no lock is a sample (examples/), not a lock waiting to be written.
    fragments = (
        {
            inc.target
            for p in in_files
            for inc in parse_once(root, p, parsed).includes
            if inc.kind == "-r"
        }
        if headers
        else set()
    )
    lock_dirs = {p.parent for p in headers} | {p.parent for p in configured}

    read_metadata: list[frozenset[PurePosixPath]] = []

    def metadata_inputs() -> frozenset[PurePosixPath]:
        """The files build backends read into metadata (pyproject.metadata_files), once."""
        if not read_metadata:
            from .pyproject import metadata_files

            named: set[PurePosixPath] = set()
            for p in files:
                if p.name == "pyproject.toml":
                    with contextlib.suppress(PinsyncError):
                        named.update(metadata_files(p, read_text(root, p)))
            read_metadata.append(frozenset(named))
        return read_metadata[0]

    outputs = {t.output for t in targets}
    for path in in_files:
        output = path.with_suffix(".txt")
        if output in outputs:
            continue
        if path in claimed or output in on_disk:
            if path not in claimed:
                add(output, (path,), None)
            continue
        if path in fragments:
            continue
        if path in metadata_inputs():
            notes.append(
                (path, "not compiled: a build backend reads it into the project's metadata")
            )
            continue
        if headers and path.parent not in lock_dirs and not config.include:
            notes.append((path, "not compiled: no lock sits beside it, so it reads as a sample"))
            continue
        add(output, (path,), None)
    return targets, notes


# pip-tools' DEFAULT_REQUIREMENTS_FILES: what `pip-compile` with no source compiles,
# the first of them that exists in the directory it runs in.
DEFAULT_SOURCES = ("requirements.in", "setup.py", "pyproject.toml", "setup.cfg")


# Its DEFAULT_REQUIREMENTS_OUTPUT_FILE, written beside a metadata file it compiled.
DEFAULT_OUTPUT = "requirements.txt"


def default_output(source: str) -> str:
    """The output pip-compile derives from its first source when given no --output-file."""
    name = PurePosixPath(source)
    if name.name in DEFAULT_SOURCES[1:]:
        return (name.parent / DEFAULT_OUTPUT).as_posix()
    return name.with_suffix(".txt").as_posix()


def default_source(
    lock: PurePosixPath, output_arg: str | None, on_disk: Collection[PurePosixPath]
) -> tuple[PurePosixPath, str] | None:
    """Where `pip-compile` ran with no source to write `lock`, and the source it chose.

    Without --output-file the output is derived from that source in the same
    directory, so only the lock's own directory can have produced it.
    """
    dirs = [lock.parent] if output_arg is None else _run_dirs(lock)
    for d in dirs:
        if output_arg is not None and join(d, output_arg) != lock:
            continue
        source = next((s for s in DEFAULT_SOURCES if join(d, s) in on_disk), None)
        if source is None:
            continue
        if output_arg is None and join(d, default_output(source)) != lock:
            continue
        return d, source
    return None


def _no_default_reason(lock: PurePosixPath, header: Header) -> str:
    where = "beside it" if header.output_arg is None else "where it could have run"
    return (
        f"not managed: its header runs `{header.command}` with no source, and pip-compile's "
        f"default ({', '.join(DEFAULT_SOURCES)}) is not {where}; set inputs in "
        f'[tool.pinsync.outputs."{lock}"] to manage it'
    )


# The kinds of file whose commands may compile a lock.
_COMMAND_KINDS = frozenset({"makefile", "tox", "script", "ci", "pre-commit"})


def _compile_commands(
    root: Path, files: Sequence[PurePosixPath], config: Config
) -> list[CompileCommand]:
    from .commands import find_commands, nox_commands

    found: list[CompileCommand] = []
    for path in files:
        noxfile = path.name == "noxfile.py"
        if not noxfile and site_kind(path) not in _COMMAND_KINDS:
            continue
        if matches(path, config.exclude):
            continue
        reader = nox_commands if noxfile else find_commands
        try:
            found.extend(reader(path, read_text(root, path)))
        except PinsyncError:
            continue  # not text, or outside the root: no command anyone runs
    return found


def _command_for(
    lock: PurePosixPath,
    header: Header,
    commands: Sequence[CompileCommand],
    on_disk: Collection[PurePosixPath],
) -> tuple[PurePosixPath, CompileCommand] | None:
    """The command of the lock's own tool that writes `lock`, and where it runs: the
    directory of the file that holds it (make, tox), else the root (CI, scripts)."""
    for command in commands:
        if command.tool != header.tool:
            continue
        for ran_in in dict.fromkeys((command.file.parent, _ROOT_DIR)):
            output = command.output
            if output is None and command.sources and command.tool == "pip-compile":
                output = default_output(command.sources[0])
            if output is None or join(ran_in, output) != lock:
                continue
            if all(join(ran_in, s) in on_disk for s in command.sources):
                return ran_in, command
    return None


def constraint_files(
    output: PurePosixPath,
    run_dir: PurePosixPath,
    args: Sequence[str],
    pip_tools: Mapping[str, object] | None,
) -> tuple[PurePosixPath, ...]:
    """The files a compile's `--constraint`/`-c` options (its own, and those its
    `[tool.pip-tools]` table amounts to) name, relative to the root.

    pip-compile opens them from the directory it runs in (the table's values are
    click's defaults, taken as written). A URL, or a path out of the root, is left to
    pip: pinsync reads nothing there. The lock's own output is left out: a compile
    that constrains itself by its last result (pip-tools' keep-the-pins idiom) would
    otherwise be stale after every run.
    """
    named: list[str] = []
    # The table as the options it amounts to ([tool.pip-tools.compile] included).
    words = iter((*args, *pip_tools_options(pip_tools)))
    for word in words:
        if word in ("-c", "--constraint"):
            named.append(next(words, ""))
        elif word.startswith("--constraint="):
            named.append(word.split("=", 1)[1])
        elif word.startswith("-c"):  # click's glued short option: `-cbase.txt`
            named.append(word[2:])
    found: dict[PurePosixPath, None] = {}
    for name in named:
        if not name or "://" in name:
            continue
        path = join(run_dir, name)
        if not leaves_root(path) and path != output:
            found[path] = None
    return tuple(found)


def _plain(output: PurePosixPath, inputs: tuple[PurePosixPath, ...]) -> Invocation:
    return Invocation(_ROOT_DIR, tuple(p.as_posix() for p in inputs), output.as_posix())


def _relative(path: PurePosixPath, start: PurePosixPath) -> str:
    if start == _ROOT_DIR:
        return path.as_posix()
    return os.path.relpath(path.as_posix(), start.as_posix())


def _unmanaged_reason(
    lock: PurePosixPath,
    header: Header,
    on_disk: Collection[PurePosixPath],
    config_excluded: bool = False,
) -> str:
    """Which rule failed, in the words of the header that made the lock."""
    where = f'set inputs in [tool.pinsync.outputs."{lock}"] to manage it'
    if config_excluded:
        return f"not managed: its header names a source that [tool.pinsync] excludes; {where}"
    if not header.source_args:
        shown = f"`{header.command}`" if header.command else "its header"
        return (
            f"not managed: {shown} names no source, and neither its `# via -r` notes nor "
            f"an .in of the same name beside it show one; {where}"
        )
    if container_paths(header):
        return (
            f"not managed: its header names paths inside a container "
            f"({', '.join(header.source_args)}), and no file of the repository ends like "
            f"them; {where}"
        )
    # Name the first source that exists in no directory the compile could have run in.
    missing = next(
        (s for s in header.source_args if not any(join(d, s) in on_disk for d in _run_dirs(lock))),
        None,
    )
    if missing is not None:
        return f"not managed: its header names {missing}, which does not exist; {where}"
    return (
        f"not managed: its header names {', '.join(header.source_args)}, but no directory "
        f"from which they and --output-file={header.output_arg or lock.name} lead to {lock} "
        f"holds them all; {where}"
    )


def container_paths(header: Header) -> bool:
    """Whether the header's paths are absolute: the compile ran somewhere else."""
    paths = (*header.source_args, *([header.output_arg] if header.output_arg else []))
    return any(p.startswith("/") for p in paths)


def container_sources(
    args: Sequence[str], on_disk: Collection[PurePosixPath]
) -> tuple[PurePosixPath, ...] | None:
    """The repository's files that absolute header paths end with, longest match first.

    Nothing is read at those paths: they only name files, which must be inside the root.
    """
    out = []
    for arg in args:
        parts = PurePosixPath(arg).parts
        found = None
        for i in range(1, len(parts)):
            candidate = PurePosixPath(*parts[i:])
            if candidate in on_disk:
                found = candidate
                break
        if found is None:
            return None
        out.append(found)
    return tuple(out)


def pip_tools_options(table: Mapping[str, object] | None) -> tuple[str, ...]:
    """The command-line options that a `[tool.pip-tools]` table amounts to."""
    out: list[str] = []
    for key, value in (table or {}).items():
        if isinstance(value, dict):  # [tool.pip-tools.compile] / .sync sections
            if key == "compile":
                out.extend(pip_tools_options(value))
            continue
        flag = "--" + key.replace("_", "-")
        if value is True:
            out.append(flag)
        elif value is False:
            out.append("--no-" + flag[2:])
        elif isinstance(value, list):
            out.extend(f"{flag}={v}" for v in value)
        else:
            out.append(f"{flag}={value}")
    return tuple(out)


def parse_once(root: Path, path: PurePosixPath, parsed: dict[PurePosixPath, ReqFile]) -> ReqFile:
    """Parse `path` once per load; discovery and the closure walk share `parsed`."""
    if path not in parsed:
        parsed[path] = parse_requirements(path, read_text(root, path))
    return parsed[path]


def _included(
    root: Path, path: PurePosixPath, parsed: dict[PurePosixPath, ReqFile]
) -> set[PurePosixPath]:
    """`path` and every file it includes with `-r`, transitively, inside the root."""
    seen = {path}
    todo = [path]
    while todo:
        for inc in parse_once(root, todo.pop(), parsed).includes:
            target = inc.target
            if inc.kind != "-r" or target in seen or leaves_root(target):
                continue
            if (root / target).is_file():
                seen.add(target)
                todo.append(target)
    return seen
