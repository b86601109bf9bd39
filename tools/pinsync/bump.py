"""`bump NAME VERSION`: move one package in every pin site and lock, all or nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from .align import alignment_groups, widen
from .compiler import find_python, run_compile
from .edits import Span, check_version, splice, version_span
from .errors import BumpError, CompileError
from .graph import Invocation, Target
from .lockfile import parse_lockfile, pin_changes
from .progress import InFlight
from .pyproject import PyprojectPins, read_pyproject
from .recompile import LockRequest, Outcome, compile_targets
from .repo import Repo
from .reqfile import Entry, exact_pin
from .sites import SitePin, TextPin
from .stage import Change, Stage, commit


@dataclass(frozen=True)
class Edit:
    """One pin site moved in a file that is not a lock."""

    file: PurePosixPath
    line: int
    old: str


@dataclass(frozen=True)
class Moved:
    """A pin that moved in a lock: the bumped package, or one that followed it."""

    file: PurePosixPath
    package: NormalizedName
    old: str | None
    new: str | None


@dataclass(frozen=True)
class BumpResult:
    name: NormalizedName
    version: str
    edits: tuple[Edit, ...]
    moved: tuple[Moved, ...]
    changes: tuple[Change, ...]
    # Pins in uv.lock or pylock.toml, which only uv rewrites: reported, never edited.
    regenerate: tuple[Edit, ...] = ()


def validate(name: str, version: str) -> tuple[NormalizedName, Version]:
    """Refuse anything that is not a project name and a version before any work starts."""
    try:
        req = Requirement(name)
    except InvalidRequirement:
        req = None
    if req is None or req.name != name or req.specifier or req.extras or req.marker or req.url:
        raise BumpError(f"{name!r} is not a valid project name")
    try:
        parsed = Version(version)
    except InvalidVersion:
        raise BumpError(f"{version!r} is not a valid version") from None
    check_version("==", version)  # the same rule every edit applies, before any work
    return canonicalize_name(name), parsed


def requirement_spans(
    path: PurePosixPath, text: str, entries: Iterable[Entry], version: Version
) -> list[Span]:
    """Where each exact pin of `entries` holds its version; a range that excludes
    `version` is refused, one that admits it is left alone."""
    lines = text.split("\n")
    spans: list[Span] = []
    for entry in entries:
        pinned = exact_pin(entry.specifier)
        if pinned is None:
            if entry.specifier and not entry.specifier.contains(version, prereleases=True):
                raise BumpError(
                    f"{path}:{entry.line}: {entry.text!r} excludes {version}; "
                    "widen it by hand, then bump"
                )
            continue
        for number in range(entry.line, min(entry.end_line, len(lines)) + 1):
            found = version_span(lines[number - 1], pinned.operator, pinned.version)
            if found is not None:
                spans.append(Span(path, number, *found, pinned.version))
                break
        else:
            raise BumpError(f"{path}:{entry.line}: cannot find the version in {entry.text!r}")
    return spans


def _only_versions_moved(
    path: PurePosixPath,
    before: PyprojectPins,
    after: PyprojectPins,
    moved: Sequence[TextPin],
    new: str,
) -> None:
    """The edited pyproject must read as the old one with only those versions changed."""
    edited = {(p.line, p.start) for p in moved}

    def shape(pin: TextPin) -> tuple[object, ...]:
        version = new if (pin.line, pin.start) in edited else pin.version
        return (pin.line, pin.start, pin.name, pin.operator, pin.where, version)

    after_shape = [(p.line, p.start, p.name, p.operator, p.where, p.version) for p in after.pins]
    if after_shape != [shape(p) for p in before.pins] or after.others != before.others:
        raise BumpError(f"{path}: the edit changed more than the version; nothing was written")


def _missing_version(stage: Stage, template: Target, name: str, version: str) -> str | None:
    """Tell "no such version" apart from a conflict: resolve the pin alone, then the name alone.

    pip reports a missing version of a package that is also pinned elsewhere as a
    conflict, without listing what exists, so we ask the same index directly.
    """
    # Probe from where the template compiles, with its tool, so that the same index
    # configuration (a service's own pyproject, uv.toml) answers. That directory is an
    # ancestor of a staged output, so the stage holds it as a real directory.
    run_dir = template.invocation.cwd if template.invocation else PurePosixPath(".")
    probe = run_dir / ".pinsync-probe.in"
    target = Target(
        probe.with_suffix(".txt"),
        (probe,),
        template.args,
        template.python,
        tool=template.tool,
        invocation=Invocation(run_dir, (probe.name,), probe.with_suffix(".txt").name),
    )
    python = find_python(template.python)

    def resolves(requirement: str) -> bool:
        base = stage.claim(probe, target.output)  # a file of those names is not written
        (base / probe).write_text(requirement + "\n", encoding="utf-8")
        try:
            run_compile(base, target, python)
        except CompileError:
            return False
        return True

    if resolves(f"{name}=={version}"):
        return None
    if not resolves(name):
        return f"{name} is not on the index"
    lock = parse_lockfile(target.output, (stage.path / target.output).read_text(encoding="utf-8"))
    newest = lock.pins().get(canonicalize_name(name))
    return (
        f"{name} {version} is not on the index (newest: {newest.pinned_version if newest else '?'})"
    )


def run_bump(
    repo: Repo,
    name: str,
    version: str,
    dry_run: bool,
    progress: Callable[[Outcome], None],
    jobs: int | None = None,
    in_flight: InFlight | None = None,
) -> BumpResult:
    canonical, parsed = validate(name, version)
    new = str(parsed)
    edits: list[Edit] = []
    texts: dict[PurePosixPath, str] = {}

    # Requirement sources and hand-kept constraint files (not compiled outputs).
    for path, source in sorted(repo.sources.items()):
        if path in repo.graph.targets:
            continue
        entries = [e for e in source.entries if e.name == canonical]
        if not entries:
            continue
        original = repo.read(path)
        text = splice(original, requirement_spans(path, original, entries, parsed), new)
        if text != original:
            texts[path] = text
            edits.extend(Edit(path, e.line, e.pinned_version) for e in entries if e.pinned_version)

    for df in repo.dockerfiles():
        sites = [p for p in df.pins if p.name == canonical and p.edit_line and p.version != new]
        if not sites:
            continue
        # Several pins may share one ARG default; splice edits that literal once.
        text = splice(repo.read(df.path), [s.span for s in sites if s.span is not None], new)
        edits.extend(Edit(df.path, site.line, site.version or "") for site in sites)
        texts[df.path] = text

    # Every other pin site: each service's pyproject, setup.cfg, tox.ini, CI, scripts...
    regenerate: list[Edit] = []
    by_file: dict[PurePosixPath, list[SitePin]] = {}
    for site in repo.sites({canonical}):
        if site.pin.name != canonical or site.pin.file in texts:
            continue
        if not site.editable:
            if site.pin.version != new:  # uv.lock, pylock.toml: uv writes those
                regenerate.append(Edit(site.pin.file, site.pin.line, site.pin.version))
            continue
        by_file.setdefault(site.pin.file, []).append(site)
    for path in sorted({*by_file, *(p for p in repo.files if p.name == "pyproject.toml")}):
        if path.name == "pyproject.toml":
            text = repo.read(path)
            if canonical not in text.lower().replace("_", "-").replace(".", "-"):
                continue  # most pyprojects of a monorepo do not name it: skip tomlkit
            found = read_pyproject(path, text)  # one parse serves both questions
            for req in found.others:
                if (
                    req.name == canonical
                    and req.specifier
                    and not req.specifier.contains(parsed, prereleases=True)
                ):
                    raise BumpError(f"{path}:{req.line}: {req.text!r} excludes {new}")
            pins = [p for p in found.pins if p.name == canonical and p.version != new]
            if pins:
                texts[path] = splice(text, [p.span for p in pins], new)
                _only_versions_moved(path, found, read_pyproject(path, texts[path]), pins, new)
        else:
            pins = [s.pin for s in by_file[path] if s.pin.version != new]
            if pins:
                texts[path] = splice(repo.read(path), [p.span for p in pins], new)
        edits.extend(Edit(path, p.line, p.version) for p in pins)

    holding = {out for out, lock in repo.locks.items() if canonical in lock.pins()}
    edited_sources = {p for p in texts if p in repo.sources}
    for out, closure in repo.graph.closure.items():
        if edited_sources & set(closure):
            holding.add(out)
    if not holding and not edits and not regenerate:
        raise BumpError(f"{name} is pinned nowhere and is in no lock file of {repo.root}")
    if not edits and all(
        repo.locks[out].pins()[canonical].pinned_version == new
        for out in holding
        if out in repo.locks and canonical in repo.locks[out].pins()
    ):
        # Already there: touch nothing (a uv.lock behind is still worth saying).
        return BumpResult(canonical, new, (), (), (), tuple(regenerate))
    # Only locks that would change are compiled: one that pins the version already
    # (a bump where only a Dockerfile lagged) is left alone, unless a source it reads
    # was edited, which its stamp covers.
    behind = {
        out
        for out in holding
        if out not in repo.locks
        or repo.locks[out].pins().get(canonical) is None
        or repo.locks[out].pins()[canonical].pinned_version != new
        or edited_sources & set(repo.graph.closure[out])
    }
    groups = alignment_groups(repo) if behind else ()
    selected = widen(repo.graph, behind, groups) if behind else frozenset()

    with Stage(repo.root, selected | texts.keys()) as stage:
        for path, text in texts.items():
            stage.write(path, text)
        request = LockRequest(force=True, upgrade_packages=(f"{canonical}=={new}",), jobs=jobs)
        try:
            outcomes = compile_targets(stage, repo, selected, request, progress, groups, in_flight)
        except CompileError as exc:
            template = repo.graph.targets[min(selected)]
            reason = _missing_version(stage, template, canonical, new) or str(exc)
            raise BumpError(f"cannot bump {canonical} to {new}: {reason}") from None
        failed = [o for o in outcomes if o.error is not None]
        if failed:
            # A bump is all or nothing: one lock left behind is the incident itself.
            raise BumpError(
                f"cannot bump {canonical} to {new}: {failed[0].output}: {failed[0].error}"
            )
        moved: list[Moved] = []
        for out in sorted(selected):
            old_pins = repo.locks[out].pins() if out in repo.locks else {}
            new_lock = parse_lockfile(out, stage.read(out) or "")
            new_pins = new_lock.pins()
            if canonical in new_pins and new_pins[canonical].pinned_version not in (new, None):
                raise BumpError(
                    f"{out}: still pins {canonical} {new_pins[canonical].pinned_version} after "
                    f"recompiling; something in its inputs holds it back"
                )
            moved.extend(Moved(out, *change) for change in pin_changes(old_pins, new_pins))
        changes = stage.changes()
        if not dry_run:
            commit(repo.root, changes)
    return BumpResult(canonical, new, tuple(edits), tuple(moved), changes, tuple(regenerate))


def render_table(result: BumpResult) -> str:
    """A table of every file that changed: the package itself, then what followed it."""
    rows: list[tuple[str, str, str]] = []
    for edit in result.edits:
        rows.append((f"{edit.file}:{edit.line}", result.name, f"{edit.old} → {result.version}"))
    for moved in result.moved:
        rows.append(
            (moved.file.as_posix(), moved.package, f"{moved.old or '-'} → {moved.new or '-'}")
        )
    for edit in result.regenerate:
        rows.append(
            (f"{edit.file}:{edit.line}", result.name, f"{edit.old} → regenerate with `uv lock`")
        )
    if not rows:
        return f"{result.name} is already at {result.version} everywhere\n"
    width = max(len("file"), *(len(r[0]) for r in rows))
    pkg_width = max(len("package"), *(len(r[1]) for r in rows))
    head = f"{'file':<{width}}  {'package':<{pkg_width}}  change\n"
    return head + "".join(f"{f:<{width}}  {p:<{pkg_width}}  {c}\n" for f, p, c in rows)
