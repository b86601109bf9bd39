"""Recompiling outputs in a stage, in graph order, independent ones in parallel.

The engine under `lock`, `bump` and a re-resolving `check`; it writes only into
the stage it is given, never into the repository.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal, NoReturn

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name

from .align import (
    AlignGroup,
    by_output,
    disagreeing_requests,
    downstream,
    joint_source,
    joint_target,
    seed,
    seed_text,
)
from .compiler import (
    CompileRun,
    find_python,
    run_compile,
    stop_compiles,
    warm_up,
    warm_up_early,
)
from .demands import check_sources, installed_pins
from .discovery import join, leaves_root
from .errors import CompileError, GraphError, InterpreterNotFound, PinsyncError
from .graph import Target
from .indexes import (
    LOCK_INDEX_VARIABLES,
    LockIndexes,
    index_urls,
    lock_indexes,
    refuse_other_checkouts,
    refuse_passwords,
)
from .lockfile import (
    LockFile,
    PinChange,
    inputs_digest,
    parse_header,
    parse_lockfile,
    pcm_fresh,
    pin_changes,
    stamp_state,
    strip_mirror,
    strip_omitted,
    strip_stamp,
    with_stamp,
)
from .progress import InFlight
from .repo import Repo
from .reqfile import ReqFile, parse_requirements
from .stage import Stage
from .targets import pip_tools_options
from .toolchain import find_uv, mirror, toolchain

# "restamped": the same pins and text, only the stamp line rewritten.
# "kept": compiled elsewhere in a way pinsync can only guess (Target.guess), and it
# meets its sources, so it is left as its authors wrote it.
Status = Literal[
    "created", "updated", "unchanged", "restamped", "fresh", "kept", "failed", "skipped"
]


@dataclass(frozen=True)
class LockRequest:
    files: tuple[str, ...] = ()
    upgrade: bool = False
    upgrade_packages: tuple[str, ...] = ()
    force: bool = False
    # Stamp locks that are unchanged but were compiled by plain pip-compile (lock --force).
    restamp: bool = False
    dry_run: bool = False
    jobs: int | None = None
    # A compile that fails becomes its outcome, and the rest go on (check); else the
    # first failure ends the run (lock and bump are all-or-nothing).
    keep_going: bool = False


@dataclass(frozen=True)
class Outcome:
    output: PurePosixPath
    status: Status
    pins_changed: int
    seconds: float
    error: str | None = None  # why a "failed" or "skipped" output was not compiled
    moved: tuple[PinChange, ...] = ()  # of an updated lock: name, old, new
    aligned_with: tuple[PurePosixPath, ...] = ()  # the rest of its alignment group


Progress = Callable[[Outcome], None]


def upgrade_names(specs: Iterable[str]) -> frozenset[NormalizedName]:
    """Validate `NAME[==VER]` arguments before anything runs."""
    names = set()
    for spec in specs:
        try:
            req = Requirement(spec)
        except InvalidRequirement:
            raise PinsyncError(
                f"--upgrade-package {spec!r}: expected NAME or NAME==VERSION"
            ) from None
        if (
            req.url
            or req.marker
            or req.extras
            or len(req.specifier) > 1
            or any(s.operator not in ("==", "===") for s in req.specifier)
        ):
            raise PinsyncError(f"--upgrade-package {spec!r}: expected NAME or NAME==VERSION")
        names.add(canonicalize_name(req.name))
    return frozenset(names)


def _closure(stage: Stage, repo: Repo, target: Target) -> list[ReqFile]:
    """Parse what the compile of `target` reads, as the stage holds it now."""
    out = []
    for path in repo.graph.closure[target.output]:
        if path.suffix not in (".in", ".txt"):
            continue
        if path not in stage.writable and path in repo.sources:
            # The stage links it to the file load_repo already parsed.
            out.append(repo.sources[path])
            continue
        text = stage.read(path)
        if text is not None:
            out.append(parse_requirements(path, text))
    return out


def linked_on_demand(repo: Repo) -> frozenset[PurePosixPath]:
    """The files a stage links only for a compile that reads them (see `_prepared`):
    the requirement files the include graph knows a compile reads, and the locks.

    Never a pyproject.toml, setup.cfg or setup.py, though a compile may take one as
    its source: pip-tools reads its [tool.pip-tools] defaults, and pip a project's
    metadata, from the working directory whatever the compile's sources are.
    """
    graph = repo.graph
    known = {p for reads in graph.closure.values() for p in reads} | graph.targets.keys()
    return frozenset(p for p in known if p.suffix in (".in", ".txt"))


def _reads(stage: Stage, repo: Repo, target: Target) -> Iterator[PurePosixPath]:
    """What the compile of `target` may read of the files linked on demand: its
    sources' include closure, and any file its options name (`-c base.txt` in
    compile-args or in [tool.pip-tools]; generously, by name)."""
    yield from repo.graph.closure[target.output]
    words = " ".join((*target.args, *pip_tools_options(repo.config.pip_tools)))
    if words:
        yield from (p for p in stage.on_demand if p.name in words)


def _prepared(
    stage: Stage, repo: Repo, target: Target, members: Sequence[Target] = ()
) -> Path:
    """The stage, ready for the compile of `target` (of a group's `members`, for a
    joint one) to write its output.

    Refused first: a compile whose `-c`/`-r` locks, as the stage holds them now,
    point pip at another checkout's directory on this machine (see
    indexes.refuse_other_checkouts). A lock this run recompiled first names the
    repository's own path again.
    """
    for member in members or (target,):
        for read in _closure(stage, repo, member):
            if read.path == member.output or read.path not in repo.graph.targets:
                continue
            try:
                refuse_other_checkouts(
                    repo.root, read.path, ((o.name, o.value, o.line) for o in read.options)
                )
            except GraphError as exc:
                raise CompileError(f"{target.output}: {exc}") from None
        stage.need(*_reads(stage, repo, member))
    return stage.claim(target.output)


def _indexes(repo: Repo, target: Target) -> tuple[str, ...]:
    lines = [
        (option.name, option.value)
        for path in repo.graph.closure[target.output]
        if path in repo.sources
        for option in repo.sources[path].options
    ]
    return index_urls(target.args, repo.config.pip_tools, lines)


# How the repository's own settings spell the options of LOCK_INDEX_VARIABLES.
_INDEX_SPELLINGS = {
    "-i": "--index-url",
    "-f": "--find-links",
    **{name: name for name in LOCK_INDEX_VARIABLES},
}


def _explained(repo: Repo, target: Target) -> Callable[[str, str], bool]:
    """Whether the compile of `target` writes an index line without being told:
    its options, `[tool.pip-tools]` and the option lines of what it reads do, and
    what the header's command shows was the command's, which pinsync replaces with
    the repository's settings (a wheelhouse moved in [tool.pip-tools] leaves no
    trace of the old one)."""
    known: set[tuple[str, str]] = set()
    # pip makes a relative --find-links of a requirement file absolute, relative to
    # that file, wherever the repository was checked out: matched by its ending.
    endings: set[str] = set()

    def words(args: Iterable[str]) -> None:
        seq = list(args)
        for i, word in enumerate(seq):
            flag, eq, value = word.partition("=")
            if flag in _INDEX_SPELLINGS and not eq and i + 1 < len(seq):
                value = seq[i + 1]
            if flag in _INDEX_SPELLINGS and value:
                known.add((_INDEX_SPELLINGS[flag], value))

    words(target.args)
    lock = repo.locks.get(target.output)
    if lock is not None and lock.header is not None and not lock.header.custom:
        words(lock.header.options)
    table: dict[str, object] = dict(repo.config.pip_tools or {})
    section = table.get("compile")  # [tool.pip-tools.compile]
    if isinstance(section, dict):
        table.update(section)
    for key, value in table.items():
        name = "--" + key.replace("_", "-")
        if name in LOCK_INDEX_VARIABLES:
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, str):
                    known.add((name, item))
    for path in repo.graph.closure[target.output]:
        read = repo.sources.get(path) or (repo.locks[path].body if path in repo.locks else None)
        if read is None or path == target.output:
            continue
        for option in read.options:
            if option.name in LOCK_INDEX_VARIABLES and option.value:
                known.add((option.name, option.value))
                rel = join(path.parent, option.value)
                if option.name == "--find-links" and not leaves_root(rel):
                    endings.add(f"/{rel}")

    def explained(name: str, value: str) -> bool:
        if (name, value) in known:
            return True
        return name == "--find-links" and any(value.endswith(e) for e in endings)

    return explained


def _lock_indexes(repo: Repo, target: Target) -> LockIndexes:
    """The indexes the committed lock of `target` names of its own (see indexes.py)."""
    lock = repo.locks.get(target.output)
    if lock is None:
        return LockIndexes()
    lines = [(o.name, o.value, o.line) for o in lock.options]
    if target.tool != "pip-compile":
        # uv reads none of pip's variables: its indexes come from uv.toml or compile-args.
        refuse_passwords(target.output, lines)
        return LockIndexes()
    run_dir = target.invocation.cwd if target.invocation else PurePosixPath(".")
    return lock_indexes(target.output, lines, _explained(repo, target), repo.root, run_dir)


def _digest(stage: Stage, repo: Repo, target: Target) -> str:
    return inputs_digest(
        target, _closure(stage, repo, target), repo.config.pip_tools, *toolchain(target.tool)
    )


def _is_fresh(
    stage: Stage,
    repo: Repo,
    target: Target,
    request: LockRequest,
    upgrades: frozenset[NormalizedName],
    digest: str | None = None,
) -> bool:
    """The lock's stamp vouches for it and nothing asked for a recompile anyway.

    `digest`: the inputs digest, where the caller has it already.
    """
    existing = stage.read(target.output)
    if existing is None or request.force or request.upgrade:
        return False
    old_lock = parse_lockfile(target.output, existing)
    if upgrades and upgrades & old_lock.pins().keys():
        return False
    return stamp_state(old_lock, lambda: digest or _digest(stage, repo, target)) == "fresh"


JointPins = dict[NormalizedName, str]


@dataclass(frozen=True)
class Joint:
    """What a group's locks start from: one version per package, and the locks that
    were already compiled against it (by the shortcut in `resolve_group`)."""

    pins: JointPins
    compiled: dict[PurePosixPath, tuple[str, float]]  # staged text, seconds


def _agreeing(locks: Iterable[Mapping[NormalizedName, str]]) -> JointPins | None:
    """The union of `locks`, or None when two of them pin a package differently."""
    out: JointPins = {}
    for pins in locks:
        for name, version in pins.items():
            if out.setdefault(name, version) != version:
                return None
    return out


def _pins_in(output: PurePosixPath, text: str | None) -> JointPins:
    pins = parse_lockfile(output, text).pins() if text is not None else {}
    return {n: e.pinned_version for n, e in pins.items() if e.pinned_version is not None}


def _pinned(stage: Stage, output: PurePosixPath) -> JointPins:
    return _pins_in(output, stage.read(output))


def _shortcut(
    stage: Stage,
    repo: Repo,
    members: Sequence[Target],
    stale: Sequence[Target],
    request: LockRequest,
    later: frozenset[PurePosixPath],
    jobs: int,
) -> Joint | None:
    """The group's pins without a joint resolution, when it can be had cheaper.

    Compile each stale lock on its own, starting from its own pins and those the
    fresh locks agree on: when only one leaf was edited (the usual case) that is one
    compile, and when every lock is stale (a first lock, `--force`) the layers of a
    tree whose layers never cap each other agree anyway. If every result agrees,
    that is the group's joint result; the joint resolution, which reads every source
    of the group, runs only when they do not. They compile in parallel, `jobs` at a
    time.
    """
    if request.upgrade or request.upgrade_packages:
        return None
    if any(t.output in later for t in stale):
        return None  # it must be compiled against its upstream lock's new pins: below
    fresh = [t for t in members if t not in stale]
    agreed = _agreeing(_pinned(stage, t.output) for t in fresh)
    if agreed is None:
        return None
    start = agreed

    def alone(target: Target) -> tuple[str, float] | None:
        existing = stage.read(target.output)
        stage.write(target.output, seed_text({**_pinned(stage, target.output), **start}))
        try:
            run = run_compile(
                _prepared(stage, repo, target),
                target,
                find_python(target.python),
                timeout=repo.config.compile_timeout,
                indexes=_indexes(repo, target),
                lock_indexes=_lock_indexes(repo, target),
            )
            return stage.read(target.output) or "", run.seconds
        except CompileError:
            return None  # said in its own words when compile_one runs it again
        finally:
            stage.put_back(target.output, existing)

    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(stale)))) as pool:
        results = list(pool.map(alone, stale))
    compiled: dict[PurePosixPath, tuple[str, float]] = {}
    for target, result in zip(stale, results, strict=True):
        if result is None:
            return None
        merged = _agreeing([agreed, _pins_in(target.output, result[0])])
        if merged is None:
            return None
        agreed = merged
        compiled[target.output] = result
    return Joint(agreed, compiled)


def resolve_group(
    stage: Stage,
    repo: Repo,
    group: AlignGroup,
    selected: frozenset[PurePosixPath],
    request: LockRequest,
    upgrades: frozenset[NormalizedName],
    jobs: int = 1,
) -> Joint | None:
    """The joint pins of `group`, or None when every lock of it is fresh.

    A lock's stamp covers its own sources only: a change elsewhere in the group
    shows up here, as a joint pin that the lock does not have.
    """
    members = [repo.graph.targets[o] for o in group.outputs if o in selected]
    stale = [t for t in members if not _is_fresh(stage, repo, t, request, upgrades)]
    if not stale:
        return None
    later = downstream(group, repo.graph)
    shortcut = _shortcut(stage, repo, members, stale, request, later, jobs)
    if shortcut is not None:
        return shortcut
    joint = joint_target(group, repo.graph)
    stage.write_scratch(joint.inputs[0], joint_source(group, repo.graph))
    current = []
    for out in group.outputs:
        text = stage.read(out)
        if text is not None:
            current.append(parse_lockfile(out, text).pins())
    # The members' pins, as existing pins of the joint lock: what agrees stays put.
    stage.write_scratch(joint.output, seed_text(seed(current)))
    try:
        run_compile(
            _prepared(stage, repo, joint, members),
            joint,
            find_python(joint.python),
            upgrade=request.upgrade,
            upgrade_packages=request.upgrade_packages,
            timeout=repo.config.compile_timeout,
            indexes=_indexes(repo, members[0]),
            # The joint source reads every member's sources, so every member's indexes.
            lock_indexes=LockIndexes.union(_lock_indexes(repo, t) for t in members),
        )
    except CompileError as exc:
        upstream = [t for t in members if t.output not in later]
        _explain_joint_failure(stage, repo, group, upstream, request, exc)
    return Joint(_pinned(stage, joint.output), {})


def _explain_joint_failure(
    stage: Stage,
    repo: Repo,
    group: AlignGroup,
    members: Sequence[Target],
    request: LockRequest,
    exc: CompileError,
) -> NoReturn:
    """Raise what is wrong: a lock that fails on its own says so in its own words (a
    missing version, a bad line); only when each resolves alone is it their disagreement."""
    for target in members:
        existing = stage.read(target.output)
        try:
            run_compile(
                _prepared(stage, repo, target),
                target,
                find_python(target.python),
                upgrade=request.upgrade,
                upgrade_packages=request.upgrade_packages,
                timeout=repo.config.compile_timeout,
                indexes=_indexes(repo, target),
                lock_indexes=_lock_indexes(repo, target),
            )
        finally:
            stage.put_back(target.output, existing)
    why = str(exc).split(": ", 1)[-1].rstrip(".")
    asked = disagreeing_requests(group, repo.graph, repo.sources, why)
    detail = f"; the requirements that cannot agree: {', '.join(asked)}" if asked else ""
    raise CompileError(f"cannot align {group.describe()}: {why}{detail}") from None


def _kept(
    repo: Repo,
    target: Target,
    old_lock: LockFile | None,
    request: LockRequest,
    upgrades: frozenset[NormalizedName],
    joint: Joint | None,
) -> bool:
    """A lock written elsewhere whose compile pinsync can only guess is left alone while
    it meets its sources: recompiling it on a guess (another Python, other options)
    would rewrite a correct lock. Asked to (--force, -U, -P), or once it breaks its
    sources, it is compiled."""
    if target.guess is None or old_lock is None or old_lock.stamp is not None:
        return False
    if request.force or request.upgrade or joint is not None:
        return False
    if upgrades & old_lock.pins().keys() or old_lock.path not in repo.locks:
        return False
    if repo.locks[old_lock.path].text != old_lock.text:
        return False  # the stage holds an edited copy (bump): judge what is there now
    installed = installed_pins(repo, old_lock)
    return not any(
        f.severity == "error" for f in check_sources(target, old_lock, repo.sources, installed)
    )


def compile_one(
    stage: Stage,
    repo: Repo,
    target: Target,
    request: LockRequest,
    upgrades: frozenset[NormalizedName],
    group: AlignGroup | None = None,
    joint: Joint | None = None,
) -> Outcome:
    """Compile one lock; in a group whose joint pins are `joint`, starting from them."""
    existing = stage.read(target.output)
    digest = _digest(stage, repo, target)
    old_lock = parse_lockfile(target.output, existing) if existing is not None else None
    stamp = old_lock.stamp if old_lock is not None else None
    others = tuple(o for o in group.outputs if o != target.output) if group else ()
    pins = joint.pins if joint is not None else {}
    if _is_fresh(stage, repo, target, request, upgrades, digest) and (
        # A fresh lock outside a group is not parsed: its stamp vouches for it.
        joint is None
        or (
            old_lock is not None
            and all(
                e.pinned_version is None or pins.get(n, e.pinned_version) == e.pinned_version
                for n, e in old_lock.pins().items()
            )
        )
    ):
        return Outcome(target.output, "fresh", 0, 0.0)
    old_pins = old_lock.pins() if old_lock is not None else {}
    if _kept(repo, target, old_lock, request, upgrades, joint):
        return Outcome(target.output, "kept", 0, 0.0, target.guess)
    upgrade, upgrade_packages = request.upgrade, request.upgrade_packages
    if joint is not None:
        # The joint pins as this lock's existing pins: pip-compile keeps each one, since
        # the joint result satisfies this lock's sources; the joint compile already
        # applied --upgrade, which would now discard them.
        kept = {n: e.pinned_version for n, e in old_pins.items() if e.pinned_version}
        stage.write(target.output, seed_text({**kept, **pins}))
        upgrade, upgrade_packages = False, ()
    try:
        if joint is not None and target.output in joint.compiled:
            # Compiled from these very pins while the group was resolved: not twice.
            text, seconds = joint.compiled[target.output]
            stage.write(target.output, text)
            run = CompileRun(seconds)
        else:
            python = find_python(target.python)
            warm_up(target, python)
            run = run_compile(
                _prepared(stage, repo, target),
                target,
                python,
                upgrade=upgrade,
                upgrade_packages=upgrade_packages,
                timeout=repo.config.compile_timeout,
                indexes=_indexes(repo, target),
                lock_indexes=_lock_indexes(repo, target),
            )
    except BaseException:
        if joint is not None:  # no seed may pass for this lock
            stage.put_back(target.output, existing)
        raise
    compiled = strip_mirror(target.output, stage.read(target.output) or "", mirror())
    # pip makes a relative --find-links of a -c lock absolute, and pip-tools writes it
    # out: the path is the repository's, as in a plain run there, not the stage's,
    # which changes every run.
    compiled = compiled.replace(f"{stage.path}{os.sep}", f"{repo.root}{os.sep}")
    if target.tool == "pip-compile":
        compiled = _options_once(compiled)  # (uv writes what it is given, repeats too)
    new = strip_omitted(target.output, compiled, target.omit)
    if existing is not None and strip_stamp(existing) == new:
        written = existing
        if stamp is not None or request.restamp:
            # (Else compiled by plain pip-compile and in sync: left byte-identical.)
            written = with_stamp(new, digest)
        stage.write(target.output, written)
        same: Status = "unchanged" if written == existing else "restamped"
        return Outcome(target.output, same, 0, run.seconds, aligned_with=others)
    stage.write(target.output, with_stamp(new, digest))
    status: Status = "created" if existing is None else "updated"
    moved = pin_changes(old_pins, parse_lockfile(target.output, new).pins())
    return Outcome(target.output, status, len(moved), run.seconds, None, moved, others)


def _options_once(text: str) -> str:
    """`text` with each option line once, as pip-tools' writer writes them.

    In the stage, a lock read as a constraint may name the repository's path (written
    there before) beside the stage's: two strings until the stage's path is replaced
    by the repository's, and then one line twice where a plain run has it once."""
    seen: set[str] = set()
    out = []
    for line in text.splitlines(keepends=True):
        if line.startswith("--"):
            if line in seen:
                continue
            seen.add(line)
        out.append(line)
    return "".join(out)


def _pcm_fresh(stage: Stage, repo: Repo, target: Target) -> tuple[bool, str]:
    """Whether a pip-compile-multi output needs no run: its `# SHA1:` line matches its
    `.in` and what it installs meets its sources, as `check` judges them."""
    lock_text = stage.read(target.output)
    in_text = stage.read(target.inputs[0])
    header = parse_header(lock_text) if lock_text is not None else None
    if in_text is None or not pcm_fresh(header.sha1 if header else None, in_text):
        return False, f"it is out of date with {target.inputs[0]}"
    lock = repo.locks.get(target.output)
    if lock is not None:
        installed = installed_pins(repo, lock)
        broken = [
            f for f in check_sources(target, lock, repo.sources, installed) if f.severity == "error"
        ]
        if broken:
            return False, f"{len(broken)} pin(s) break its sources, as check reports"
    return True, ""


def _run_multi(
    stage: Stage, repo: Repo, targets: Sequence[Target], request: LockRequest
) -> list[Outcome]:
    """The outcomes of one pip-compile-multi directory: left alone when every output
    is fresh, else one run over the directory (see multi.py)."""
    from .multi import run_multi

    fresh = {t.output: _pcm_fresh(stage, repo, t) for t in targets}
    forced = request.force or request.upgrade or bool(request.upgrade_packages)
    if all(ok for ok, _ in fresh.values()) and not forced:
        return [Outcome(t.output, "fresh", 0, 0.0) for t in targets]
    before = {t.output: stage.read(t.output) for t in targets}
    start = time.perf_counter()
    try:
        run_multi(
            stage, targets, request.upgrade, request.upgrade_packages, repo.config.compile_timeout
        )
    except BaseException:
        for out, text in before.items():
            stage.put_back(out, text)
        raise
    seconds = time.perf_counter() - start
    if all(ok for ok, _ in fresh.values()) and not (request.upgrade or request.upgrade_packages):
        # Nothing asked for a change: a different output means this run is not how the
        # tree was made (other options, another pip-tools), so nothing is rewritten.
        differ = [t.output for t in targets if stage.read(t.output) != before[t.output]]
        for out, text in before.items():
            stage.put_back(out, text)
        if differ:
            raise CompileError(
                f"{differ[0]}: pip-compile-multi here writes it differently from the "
                "committed file though its sources did not change (made with other "
                "options or another pip-tools?); relock it with the team's own command"
            )
        return [Outcome(t.output, "unchanged", 0, seconds) for t in targets]
    outcomes = []
    for target in targets:
        old, new = before[target.output], stage.read(target.output)
        if new == old:
            outcomes.append(Outcome(target.output, "unchanged", 0, seconds))
            continue
        moved = pin_changes(
            parse_lockfile(target.output, old or "").pins(),
            parse_lockfile(target.output, new or "").pins(),
        )
        status: Status = "created" if old is None else "updated"
        outcomes.append(Outcome(target.output, status, len(moved), seconds, moved=moved))
    return outcomes


def compile_targets(
    stage: Stage,
    repo: Repo,
    selected: frozenset[PurePosixPath],
    request: LockRequest,
    progress: Progress,
    groups: tuple[AlignGroup, ...] = (),
    in_flight: InFlight | None = None,
) -> tuple[Outcome, ...]:
    """Compile `selected` in graph order, independent ones in parallel; report in order.

    The locks of each alignment group in `groups` (see align.widen for the selection)
    are compiled from the group's joint resolution, which the first of them runs.
    """
    upgrades = upgrade_names(request.upgrade_packages)  # a bad argument fails before anything
    warm_up_early(repo.graph.targets[o] for o in selected)
    group_of = by_output(groups)
    joints: dict[str, Joint | None] = {}

    def task(target: Target) -> Outcome:
        if in_flight is not None:
            in_flight.started(target.output)
        try:
            return attempt(target)
        except CompileError as exc:
            if not request.keep_going:
                raise
            return Outcome(target.output, "failed", 0, 0.0, str(exc))
        finally:
            if in_flight is not None:
                in_flight.finished(target.output)

    def attempt(target: Target) -> Outcome:
        group = group_of.get(target.output)
        if group is None:
            return compile_one(stage, repo, target, request, upgrades)
        if group.key not in joints:  # the first selected member; the rest wait for it
            joints[group.key] = resolve_group(stage, repo, group, selected, request, upgrades, jobs)
        return compile_one(stage, repo, target, request, upgrades, group, joints[group.key])

    order = [t for t in repo.graph.order() if t.output in selected]
    for target in order:
        # A password or a path outside the root in a lock's index lines stops the run
        # before any compile starts, naming the line.
        _lock_indexes(repo, target)
    results: dict[PurePosixPath, Outcome] = {}
    multi: dict[PurePosixPath, list[Target]] = {}
    for target in order:
        if target.tool == "pip-compile-multi":
            multi.setdefault(target.output.parent, []).append(target)
    for batch in multi.values():
        try:
            results.update((o.output, o) for o in _run_multi(stage, repo, batch, request))
        except CompileError as exc:
            if not request.keep_going:
                raise
            results.update((t.output, Outcome(t.output, "failed", 0, 0.0, str(exc))) for t in batch)
    for target in order:
        if target.tool == "pip-compile-multi":
            continue
        # A missing interpreter costs only the outputs that need it (and what is
        # compiled from them), found before any compile starts.
        try:
            if target.tool == "uv":
                find_uv()
            find_python(target.python)
        except InterpreterNotFound as exc:
            results[target.output] = Outcome(target.output, "failed", 0, 0.0, str(exc))
    for out in repo.graph.dependents(results) - results.keys():
        if out in selected:
            why = "not compiled: it reads an output that could not be compiled"
            results[out] = Outcome(out, "skipped", 0, 0.0, why)
    jobs = request.jobs or repo.config.jobs or os.cpu_count() or 1
    waiting = {
        t.output: set(repo.graph.needs[t.output]) & selected
        for t in order
        if t.output not in results
    }
    for group in groups:
        # The rest of a group waits for the first, whose task resolves the group; and
        # the first waits for what any member reads (a `-c base.txt` of another
        # member), or the joint resolution would read it while it is being written.
        members = [o for o in group.outputs if o in waiting]
        if not members:
            continue
        # (Not what itself reads a member: that would wait in a circle.)
        downstream = repo.graph.dependents(members)
        for out in members[1:]:
            waiting[members[0]] |= waiting[out] - downstream
            waiting[out].add(members[0])
    for target in order:
        # Settled here, in compile order, what the pool would only find fresh: a lock
        # outside any group whose stamp vouches for it, reading only locks found fresh
        # (so its inputs are as they were). A no-op run of a thousand locks spent
        # more in the pool's hand-offs than in its stamps.
        out = target.output
        deps = waiting.get(out)
        if (
            deps is None
            or out in group_of
            or any(d not in results or results[d].status != "fresh" for d in deps)
        ):
            continue
        try:
            fresh = _is_fresh(stage, repo, target, request, upgrades)
        except CompileError:
            continue  # the pool's task says it, as it says any other failure
        if fresh:
            del waiting[out]
            results[out] = Outcome(out, "fresh", 0, 0.0)
    printed = 0
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        running: dict[Future[Outcome], PurePosixPath] = {}
        try:
            while waiting or running:
                # Only what still waits, in compile order (as `waiting` was filled): a
                # pass over every target after each compile was N² at a thousand locks.
                for output, deps in list(waiting.items()):
                    target = repo.graph.targets[output]
                    if deps <= results.keys():
                        del waiting[target.output]
                        if any(results[d].status in ("failed", "skipped") for d in deps):
                            why = "not compiled: it reads an output that could not be compiled"
                            results[target.output] = Outcome(target.output, "skipped", 0, 0.0, why)
                            continue
                        future = pool.submit(task, target)
                        running[future] = target.output
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    output = running.pop(future)
                    results[output] = future.result()
                while printed < len(order) and order[printed].output in results:
                    progress(results[order[printed].output])
                    printed += 1
        except BaseException:
            for future in running:
                future.cancel()
            stop_compiles()  # else the pool would wait for every running compile to end
            raise
    for target in order[printed:]:
        progress(results[target.output])
    return tuple(results[t.output] for t in order)
