"""The checks of each lock against its sources: its stamp, a pip-compile-multi
output's `# SHA1:` line, the layers it includes, headers bots cannot replay, and a
fresh compile in a stage where no stamp vouches for it."""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath

from packaging.utils import NormalizedName

from .align import AlignGroup, widen
from .demands import (
    FIX_LOCK,
    check_sources,
    installed_pins,
    noted_names,
)
from .errors import InterpreterNotFound
from .graph import Target
from .lockfile import (
    UNSAFE,
    LockFile,
    inputs_digest,
    parse_lockfile,
    pcm_fresh,
    stamp_state,
    strip_stamp,
)
from .progress import InFlight
from .repo import Repo
from .report import FIX, Finding, Kind
from .reqfile import Entry, ReqFile
from .toolchain import CURRENT, toolchain

# --- the stamp ----------------------------------------------------------------


def check_stamp(
    target: Target,
    lock: LockFile,
    repo: Repo,
) -> tuple[bool, list[Finding]]:
    """Kind 3 offline: (vouched for?, findings). A lock without a stamp is not vouched for."""
    out = target.output.as_posix()

    def digest() -> str:
        closure = [repo.sources[p] for p in repo.graph.closure[target.output] if p in repo.sources]
        return inputs_digest(target, closure, repo.config.pip_tools, *toolchain(target.tool))

    state = stamp_state(lock, digest)
    if state == "edited":
        return False, [
            Finding(
                out,
                lock.header.line_count + 1 if lock.header else 1,
                None,
                "out-of-date",
                "error",
                f"{out} was edited by hand since pinsync wrote it (its stamp no longer matches); "
                f"run `{FIX_LOCK}`",
            )
        ]
    if state == "stale":
        changed = ", ".join(p.as_posix() for p in repo.graph.closure[target.output])
        return False, [
            Finding(
                out,
                1,
                None,
                "out-of-date",
                "error",
                f"{out} is older than its inputs ({changed}) or its compile options; run `{FIX_LOCK}`",
            )
        ]
    return state == "fresh", []


def with_metadata(
    repo: Repo, target: Target
) -> tuple[Mapping[PurePosixPath, ReqFile], list[Finding]]:
    """The sources of `target`, a pyproject.toml or setup.cfg input read as pip-compile
    reads it: its dependencies and the extras its command names."""
    metadata = [p for p in target.inputs if p.name in ("pyproject.toml", "setup.cfg")]
    if not metadata:
        return repo.sources, []
    from .pyproject import compile_extras, metadata_source, setup_cfg_source

    extras, everything = compile_extras(target.args)
    sources = dict(repo.sources)
    notes = []
    for path in metadata:
        reader = metadata_source if path.name == "pyproject.toml" else setup_cfg_source
        read = reader(path, repo.read(path), extras, everything)
        sources[path] = read.requirements
        if read.unread:
            out = target.output.as_posix()
            notes.append(Finding(out, 1, None, "unverified", "info", f"{out}: {read.unread}"))
    return sources, notes


def check_pcm(target: Target, lock: LockFile, repo: Repo, offline: bool) -> list[Finding]:
    """A pip-compile-multi output: what `pip-compile-multi verify` checks, then more.

    verify compares only the `# SHA1:` line with the `.in`; the lock's closure (its
    `-r base.txt` pins too) is also held against every requirement of its sources,
    which finds a base.in moved without its dependents recompiled.
    """
    out = target.output.as_posix()
    source = target.inputs[0]
    findings: list[Finding] = []
    sha1 = lock.header.sha1 if lock.header else None
    if source in repo.sources and not pcm_fresh(sha1, repo.read(source)):
        findings.append(
            Finding(
                out,
                1,
                None,
                "out-of-date",
                "error",
                f"{out} was not regenerated after changes in {source} (its `# SHA1:` line "
                f"no longer matches; `pip-compile-multi verify` fails too); run `{FIX_LOCK}`",
            )
        )
    findings.extend(check_sources(target, lock, repo.sources, installed_pins(repo, lock)))
    if not offline:
        findings.append(
            Finding(
                out,
                1,
                None,
                "unverified",
                "info",
                f"{out} was written by pip-compile-multi: checked against its `# SHA1:` line "
                "and its sources over what it installs (its -r files too), not re-resolved "
                "(its options are not all in its files; `lock` reruns pip-compile-multi)",
            )
        )
    return findings


# --- layers ----------------------------------------------------------------------


def check_layers(
    repo: Repo, pins: Mapping[PurePosixPath, Mapping[NormalizedName, Entry]]
) -> Iterator[Finding]:
    """Kind 6: a lock and the lock of a layer it includes with -r pin a package differently.

    Only where the repository asks for it (layers-disagree): pip-compile resolves
    each layer on its own, so two layers that are never installed together may differ.
    """
    severity = repo.config.layers_disagree
    if severity is None:
        return
    for target in repo.graph.order():
        if target.output not in pins:
            continue
        for below in sorted(repo.graph.needs[target.output]):
            if below not in pins or repo.graph.targets[below].python != target.python:
                # Locks for two Pythons may pin differently by design (backports).
                continue
            for name, entry in sorted(pins[target.output].items()):
                other = pins[below].get(name)
                if other is None or other.pinned_version == entry.pinned_version:
                    continue
                if entry.pinned_version is None or other.pinned_version is None:
                    continue
                out = target.output.as_posix()
                yield Finding(
                    out,
                    entry.line,
                    name,
                    "layers-disagree",
                    severity,
                    f"{name}: {out} pins {entry.pinned_version} but the layer it includes, "
                    f"{below}, pins {other.pinned_version} ({other.pinned_version} → "
                    f"{entry.pinned_version}); run `{FIX_LOCK}`",
                )


# --- update bots -------------------------------------------------------------------


def check_bots(repo: Repo) -> Iterator[Finding]:
    """Headers Renovate cannot replay, where the repository has Renovate set up: for
    those locks its updates stop without a word (see bots.py)."""
    from .bots import RENOVATE_CONFIGS, renovate_problems

    if not any(p.as_posix() in RENOVATE_CONFIGS for p in repo.files):
        return
    for target in repo.graph.order():
        lock = repo.locks.get(target.output)
        if lock is None or lock.header is None or lock.header.command is None:
            continue
        if lock.header.tool != "pip-compile":
            continue  # Renovate replays uv headers by its own, different rules
        line = next(
            (i for i, text in enumerate(lock.text.splitlines(), 1) if lock.header.command in text),
            1,
        )
        out = target.output.as_posix()
        for problem in renovate_problems(lock.header.command):
            yield Finding(
                out,
                line,
                None,
                "bot-incompatible",
                "warning",
                f"{out}: Renovate cannot update it: {problem}",
            )


# --- re-resolution -----------------------------------------------------------------


def _fingerprint(entry: Entry) -> tuple[object, ...]:
    # Extras are a set: pip-compile re-sorts and normalises them.
    return (entry.pinned_version, entry.url, frozenset(entry.hashes), entry.marker, entry.extras)


def _moved(
    name: str, value: str | None, root: Path | None, endings: Collection[str] = ()
) -> str | None:
    """A `--find-links` that pip made absolute (a `-c base.txt` whose own relative
    `--find-links wheels` it read), as a path in the repository: the lock was written
    in another checkout (a developer's, CI's) than the one checked here."""
    if name != "--find-links" or not value or not value.startswith("/"):
        return value
    if root is not None:
        with contextlib.suppress(ValueError):
            return Path(value).relative_to(root.resolve()).as_posix()
    return next((e for e in endings if value.endswith(f"/{e}")), value)


def compare_locks(
    path: PurePosixPath,
    old: LockFile,
    new: LockFile,
    allow_unsafe: bool = True,
    root: Path | None = None,
) -> Iterator[Finding]:
    """What pip would install differently from `old` and from a fresh compile `new`."""
    out = path.as_posix()
    a, b = old.pins(), new.pins()
    noted: set[NormalizedName] | None = None
    for name in sorted(a.keys() | b.keys()):
        before, after = a.get(name), b.get(name)
        if before is not None and after is not None and _fingerprint(before) == _fingerprint(after):
            continue
        if before is None:
            noted = noted_names(old) if noted is None else noted
            if name in noted:
                # Compiled in and deleted afterwards (Open edX's `sed '/^django==/d'`):
                # the offline check reports it as omitted-pin, with the key to declare it.
                continue
        line = before.line if before else 1
        if not allow_unsafe and name in UNSAFE and (before is None or after is None):
            # Without --allow-unsafe pip-tools lists pip and setuptools as unsafe rather
            # than pin them; a lock that pins one anyway (treeherder's setuptools, pinned
            # and in the unsafe trailer) was edited after compiling, or written by a
            # pip-tools that pinned it. Which, the lock does not say: a warning.
            if before is not None:
                why = (
                    f"{out} pins it, but without --allow-unsafe pip-tools leaves it out (it "
                    "was added after compiling, or an older pip-tools pinned it)"
                )
            else:
                why = f"{out} leaves it out, but a fresh compile here pins it"
            yield Finding(
                out,
                line,
                name,
                "annotations-differ",
                "warning",
                f"{name}: {why}; add --allow-unsafe to pin it on purpose, or run `{FIX_LOCK}`",
            )
            continue
        if before is None:
            assert after is not None
            what = f"missing → {after.pinned_version or after.url}"
        elif after is None:
            what = f"{before.pinned_version or before.url} → not needed"
        elif before.pinned_version != after.pinned_version:
            what = f"{before.pinned_version} → {after.pinned_version}"
        elif frozenset(before.hashes) != frozenset(after.hashes):
            what = "hashes differ"
        else:
            what = "marker, extras or URL differ"
        yield Finding(
            out,
            line,
            name,
            "out-of-date",
            "error",
            f"{name}: {out} differs from a fresh compile ({what}); run `{FIX_LOCK}`",
        )
    opts_new = sorted((o.name, _moved(o.name, o.value, root)) for o in new.body.options)
    endings = {v for n, v in opts_new if n == "--find-links" and v and not v.startswith("/")}
    opts_old = sorted((o.name, _moved(o.name, o.value, root, endings)) for o in old.body.options)
    if opts_old != opts_new:
        yield Finding(
            out,
            1,
            None,
            "out-of-date",
            "error",
            f"{out}: index options differ from a fresh compile; run `{FIX_LOCK}`",
        )


def reresolve(
    repo: Repo,
    targets: Sequence[Target],
    groups: tuple[AlignGroup, ...] = (),
    in_flight: InFlight | None = None,
) -> list[Finding]:
    """Compile `targets` into a stage (with their groups, as `lock` would) and compare
    with the repository's locks."""
    findings: list[Finding] = []
    selected = widen(repo.graph, (t.output for t in targets), groups)
    from .recompile import LockRequest, compile_targets, linked_on_demand
    from .stage import Stage

    with Stage(repo.root, selected, on_demand=linked_on_demand(repo)) as stage:
        request = LockRequest(force=True, keep_going=True)
        outcomes = compile_targets(
            stage, repo, selected, request, lambda _: None, groups, in_flight
        )
        broken: set[PurePosixPath] = set()
        for outcome in outcomes:
            if outcome.status not in ("failed", "skipped"):
                continue
            # One lock that cannot be compiled here must not hide what the others show.
            broken.add(outcome.output)
            why = (outcome.error or "").removeprefix(f"{outcome.output}: ")
            findings.append(
                Finding(
                    outcome.output.as_posix(),
                    1,
                    None,
                    "not-resolved",
                    "error",
                    f"{outcome.output} could not be re-resolved here: {why}",
                )
            )
        for target in targets:
            if target.output in broken:
                continue
            old = repo.locks[target.output]
            fresh = stage.read(target.output) or ""
            new = parse_lockfile(target.output, fresh)
            unsafe = "--allow-unsafe" in target.args or bool(
                repo.config.pip_tools and repo.config.pip_tools.get("allow-unsafe")
            )
            diffs = list(compare_locks(target.output, old, new, unsafe, repo.root))
            findings.extend(diffs)
            if not diffs and strip_stamp(old.text) != strip_stamp(fresh):
                findings.append(
                    Finding(
                        target.output.as_posix(),
                        1,
                        None,
                        "annotations-differ",
                        "warning",
                        f"{target.output}: same pins as a fresh compile, but its header or "
                        f"annotations differ; run `{FIX_LOCK}` to refresh them",
                    )
                )
    return findings


def why_not_reresolved(target: Target, offline: bool) -> tuple[Kind, str] | None:
    """Why an unstamped lock is checked only offline, or None when it can be re-resolved."""
    out = target.output.as_posix()
    where = f'[tool.pinsync.outputs."{out}"]'
    if offline:
        return (
            "unverified",
            f"{out} has no pinsync stamp, so --offline cannot tell whether it is what "
            f"`{FIX_LOCK}` would write; run without --offline, or `{FIX.lock_force}` to "
            "stamp it",
        )
    if target.inferred is not None:
        # Options read off the text are a guess; a fresh compile on a guess would
        # report every difference as drift.
        return (
            "unverified",
            f"{out} was checked against its sources but not re-resolved: its header does not "
            f"show how {target.tool} was run; set compile-args in {where} to have it re-resolved",
        )
    if target.guess is not None:
        return (
            "unverified",
            f"{out} was checked against its sources but not re-resolved: {target.guess}; "
            f"set python and compile-args in {where} to have it re-resolved",
        )
    if target.python != CURRENT:
        from .compiler import find_python

        try:
            find_python(target.python)
        except InterpreterNotFound as exc:
            # Not installed, or installed but unable to run pip-tools: say which.
            why = str(exc).split(" (looked on PATH", 1)[0].split("; install it", 1)[0]
            return (
                "wrong-python",
                f"{out} was compiled for Python {target.python}: {why}; checked against its "
                "sources but not re-resolved",
            )
    return None
