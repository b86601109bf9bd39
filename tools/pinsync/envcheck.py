"""The checks inside each environment: locks one Dockerfile stage, CI job, tox
environment, nox session or script installs one after another must agree, and a
later `--no-deps` install must not break a requirement the team wrote."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from packaging.utils import NormalizedName

from .demands import (
    FIX_LOCK,
    Demand,
    satisfies,
)
from .discovery import within
from .errors import PinsyncError
from .images import declared_contexts, installed_locks
from .repo import Repo
from .report import FIX, Finding
from .reqfile import Entry, parse_requirements

if TYPE_CHECKING:
    # Imported where used: the common case, a stamped repository in sync, needs
    # no Dockerfile parser, and CI pays its import per run.
    from .dockerfile import Dockerfile, RequirementInstall
    from .environments import Environment, Place, Step


# --- Dockerfiles ----------------------------------------------------------------


def check_dockerfile(
    df: Dockerfile,
    locks: Mapping[PurePosixPath, Mapping[NormalizedName, Entry]],
    resolved: Mapping[RequirementInstall, PurePosixPath] | None = None,
    context: PurePosixPath | None = None,
    asks: Mapping[PurePosixPath, Sequence[Demand]] = {},
    includes: Includes | None = None,
) -> Iterator[Finding]:
    """Kinds 4 and 5 for one Dockerfile.

    `asks` holds what the sources of each lock require: an override that breaks one
    of them is the incident itself (a requirement the team wrote, not met where it
    is installed), so it is an error, not the stated intent of a warning.

    A pin is compared with the locks its own image installs; with none, with the
    locks inside its build `context` (the whole repository when None).
    """
    from .environments import Step

    file = df.path.as_posix()
    candidates = sorted(locks)
    by_stage = {s.index: installed_locks(df, s.index, candidates, resolved) for s in df.stages}
    nearby = [p for p in candidates if context is None or within(p, context)]
    for pin in df.pins:
        if pin.version is None:
            continue
        installed = [i.lock for i in by_stage[pin.stage]]
        compare = installed or [p for p in nearby if pin.name in locks[p]]
        environment = stage_name(df, pin.stage) if installed else None
        for lock_path in compare:
            locked = locks[lock_path].get(pin.name)
            if locked is None or locked.pinned_version in (None, pin.version):
                continue
            yield Finding(
                file,
                pin.line,
                pin.name,
                "dockerfile-pin",
                "error",
                f"{pin.name}: {file}:{pin.line} installs {pin.version} but {lock_path} pins "
                f"{locked.pinned_version} ({pin.version} → {locked.pinned_version} to match, or "
                f"`{FIX.bump} {pin.name} VERSION` to move both)",
                environment,
            )
    reported: set[tuple[NormalizedName, str, str]] = set()
    for stage in df.stages:
        steps = [
            Step(i.lock, i.install.line, i.install.no_deps, i.install.command)
            for i in by_stage[stage.index]
        ]
        if includes is not None:
            steps = [s for s in followed(steps, includes) if s.lock in locks]
        yield from judge_together(
            file, "this image", steps, locks, asks, reported, stage_name(df, stage.index)
        )


def stage_name(df: Dockerfile, index: int) -> str:
    """`Dockerfile stage dev`: how findings and `--environments` name an image stage."""
    stage = df.stages[index]
    return f"{df.path} stage {stage.name or index}"


def judge_together(
    file: str,
    place: str,
    steps: Sequence[Step],
    locks: Mapping[PurePosixPath, Mapping[NormalizedName, Entry]],
    asks: Mapping[PurePosixPath, Sequence[Demand]],
    reported: set[tuple[NormalizedName, str, str]],
    environment: str | None = None,
) -> Iterator[Finding]:
    """Locks installed one after another into one environment (`place`, an image stage
    or a CI job): a package they pin differently is a conflict, unless a later
    `--no-deps` command states an override, which is an error only where it breaks a
    requirement of a source of one of those locks."""
    first: dict[NormalizedName, tuple[Step, str]] = {}
    for item in steps:
        for name, entry in sorted(locks[item.lock].items()):
            version = entry.pinned_version
            if version is None:
                continue
            if name not in first:
                first[name] = (item, version)
                continue
            earlier, old = first[name]
            first[name] = (item, version)  # what the environment ends up with
            low, high = sorted((old, version))
            key = (name, low, high)
            if old == version or earlier.lock == item.lock or key in reported:
                continue
            reported.add(key)
            if item.no_deps and item.command != earlier.command:
                broken = next(
                    (
                        d
                        for i in steps
                        for d in asks.get(i.lock, ())
                        if d.entry.name == name and not satisfies(d.entry, version)
                    ),
                    None,
                )
                if broken is not None:
                    yield Finding(
                        item.file or file,
                        item.line,
                        name,
                        "override",
                        "error",
                        f"{name}: {item.lock}, installed with --no-deps after "
                        f"{earlier.lock} (line {earlier.line}), leaves {place} "
                        f"{name}=={version}, which breaks {broken.file}:{broken.entry.line} "
                        f"({broken.entry.text}) ({old} → {version}). Align the two locks, "
                        "or change that requirement",
                        environment,
                    )
                    continue
                # A later `pip install --no-deps -r overrides.txt` is how a team states
                # that these pins replace the earlier ones: intent, not an accident.
                yield Finding(
                    item.file or file,
                    item.line,
                    name,
                    "override",
                    "warning",
                    f"{name}: {item.lock}, installed with --no-deps after {earlier.lock} "
                    f"(line {earlier.line}), overrides its pin: {place} gets "
                    f"{name}=={version}, not {old} ({old} → {version}). If that is not "
                    "intended, align the two locks",
                    environment,
                )
                continue
            yield Finding(
                item.file or file,
                item.line,
                name,
                "co-installed-conflict",
                "error",
                f"{name}: {place} installs {earlier.lock} ({name}=={old}, line "
                f"{earlier.line}) and {item.lock} ({name}=={version}); "
                f"{old} → {version}: pip refuses them in one command, or the later "
                f"install silently wins. Run `{FIX_LOCK}` to align them",
                environment,
            )


# The `-r` files of a requirement file, resolved from the root.
Includes = Callable[[PurePosixPath], tuple[PurePosixPath, ...]]


def includes_reader(repo: Repo) -> Includes:
    """What each requirement file reads with `-r`, read once: a hand-kept
    requirements.txt of `-r base.txt` and `-r dev.txt` installs both locks."""
    cache: dict[PurePosixPath, tuple[PurePosixPath, ...]] = {}

    def includes(path: PurePosixPath) -> tuple[PurePosixPath, ...]:
        if path not in cache:
            body = repo.locks[path].body if path in repo.locks else repo.sources.get(path)
            if body is None:
                try:
                    body = parse_requirements(path, repo.read(path))
                except PinsyncError:  # missing, outside the root, or not a requirements file
                    body = None
            cache[path] = tuple(i.target for i in body.includes if i.kind == "-r") if body else ()
        return cache[path]

    return includes


def followed(steps: Sequence[Step], includes: Includes) -> list[Step]:
    """Each install, then what its file reads with `-r`, as pip installs them: in the
    same command, from the same line."""
    out: list[Step] = []
    for step in steps:
        seen: set[PurePosixPath] = set()
        todo = [step.lock]
        while todo:
            path = todo.pop(0)
            if path in seen:
                continue
            seen.add(path)
            out.append(replace(step, lock=path))
            todo.extend(includes(path))
    return out


def check_environments(
    repo: Repo,
    locks: Mapping[PurePosixPath, Mapping[NormalizedName, Entry]],
    asks: Mapping[PurePosixPath, Sequence[Demand]],
    images: Sequence[Dockerfile] = (),
) -> Iterator[Finding]:
    """The CI jobs (GitHub, GitLab), tox environments, nox sessions, Makefile targets,
    compose services and shell scripts that install locks (Repo.environments),
    judged like image stages."""
    includes = includes_reader(repo)
    in_image = _stage_installs(repo, images, locks)
    for env in repo.environments:
        yield from _judge_environment(env, locks, asks, includes, in_image)


# The installs of an image stage: by Dockerfile and `target` (None: the last stage).
StageInstalls = Callable[[PurePosixPath, "str | None"], "list[Step]"]


def _stage_installs(
    repo: Repo,
    images: Sequence[Dockerfile],
    lock_pins: Mapping[PurePosixPath, Mapping[NormalizedName, Entry]],
) -> StageInstalls:
    """What a compose service's image installs before its command runs, read only
    where some service is built from a Dockerfile of the repository."""
    from .environments import Step

    if not any(e.image for e in repo.environments):
        return lambda path, target: []
    candidates = sorted(_requirement_files(repo, lock_pins))
    by_path = {df.path: (df, resolved) for df, resolved, _ in _images(repo, images, lock_pins)}

    def installs(path: PurePosixPath, target: str | None) -> list[Step]:
        if path not in by_path or not by_path[path][0].stages:
            return []
        df, resolved = by_path[path]
        named = [s.index for s in df.stages if s.name == target]
        if target is not None and not named:
            return []  # a target the Dockerfile does not have: no build, nothing known
        index = named[0] if named else df.stages[-1].index
        # Built before the service runs: commands of their own, before the service's.
        return [
            Step(
                i.lock, i.install.line, i.install.no_deps, i.install.command - (1 << 20), str(path)
            )
            for i in installed_locks(df, index, candidates, resolved)
        ]

    return installs


def _steps_of(env: Environment, in_image: StageInstalls) -> list[Step]:
    from .environments import Step

    # A finding sits where its install is written: maybe a script the environment runs.
    image = in_image(*env.image) if env.image else []
    return image + [
        Step(i.path, i.line, i.no_deps, i.command, i.file.as_posix()) for i in env.installs
    ]


def _judge_environment(
    env: Environment,
    locks: Mapping[PurePosixPath, Mapping[NormalizedName, Entry]],
    asks: Mapping[PurePosixPath, Sequence[Demand]],
    includes: Includes,
    in_image: StageInstalls,
) -> Iterator[Finding]:
    steps = [s for s in followed(_steps_of(env, in_image), includes) if s.lock in locks]
    if len({s.lock for s in steps}) > 1:
        yield from judge_together(
            env.file.as_posix(), env.name, steps, locks, asks, set(), env.name
        )


def _requirement_files(
    repo: Repo, lock_pins: Mapping[PurePosixPath, Mapping[NormalizedName, Entry]]
) -> dict[PurePosixPath, Mapping[NormalizedName, Entry]]:
    """The locks, and the hand-kept requirement files images also install."""
    any_pins = dict(lock_pins)
    for path in repo.files:
        if path.suffix == ".txt" and path not in any_pins:
            try:
                any_pins[path] = parse_requirements(path, repo.read(path)).pins()
            except PinsyncError:  # not a requirements file after all (or not text)
                continue
    return any_pins


def _images(
    repo: Repo, images: Sequence[Dockerfile], lock_paths: Collection[PurePosixPath]
) -> Iterator[tuple[Dockerfile, Mapping[RequirementInstall, PurePosixPath], PurePosixPath]]:
    """Each Dockerfile with the files its installs name, and its build context."""
    from .buildcontext import contexts_for, directories_of, resolve_installs

    declared = declared_contexts(repo)
    on_disk, directories = set(repo.files), directories_of(repo.files)
    for df in images:
        resolved = resolve_installs(df, df.installs, declared, on_disk, directories)
        guesses = contexts_for(df.path, declared)
        # With no install of its own, a pin is compared with the locks of its context:
        # the declared one, else the nearest directory (upwards) that holds a lock.
        context = next(
            (c for c in guesses if any(within(p, c) for p in lock_paths)),
            guesses[-1],
        )
        yield df, resolved, context


def check_images(
    repo: Repo,
    images: Sequence[Dockerfile],
    lock_pins: Mapping[PurePosixPath, Mapping[NormalizedName, Entry]],
    asks: Mapping[PurePosixPath, Sequence[Demand]],
) -> Iterator[Finding]:
    any_pins = _requirement_files(repo, lock_pins)
    includes = includes_reader(repo)
    for df, resolved, context in _images(repo, images, lock_pins):
        yield from check_dockerfile(df, any_pins, resolved, context, asks, includes)


# --- the model, as `check --environments` shows it ----------------------------------


def environment_model(repo: Repo) -> list[Place]:
    """Every environment that installs a requirement file: image stages (with what
    they inherit through FROM), then CI jobs, tox environments, nox sessions,
    Makefile targets and scripts, each with its installs in order."""
    from .environments import Place, Step

    places: list[Place] = []
    images = repo.dockerfiles()
    lock_pins = {path: lock.pins() for path, lock in repo.locks.items()}
    candidates = sorted(_requirement_files(repo, lock_pins)) if images else []
    for df, resolved, _ in _images(repo, images, lock_pins):
        for stage in df.stages:
            steps = tuple(
                Step(i.lock, i.install.line, i.install.no_deps, i.install.command)
                for i in installed_locks(df, stage.index, candidates, resolved)
            )
            if steps:
                places.append(Place(stage_name(df, stage.index), df.path.as_posix(), steps))
    in_image = _stage_installs(repo, images, lock_pins)
    for env in repo.environments:
        steps = tuple(_steps_of(env, in_image))
        if steps:
            places.append(Place(env.name, env.file.as_posix(), steps))
    return places


def render_environments(places: Sequence[Place], findings: Sequence[Finding]) -> str:
    """Each environment, where it is defined, what it installs, and what was found in it."""
    if not places:
        return "no environment installs a requirement file\n"
    out: list[str] = []
    for place in places:
        out.append(f"{place.name}  ({place.file})")
        for n, step in enumerate(place.steps, 1):
            how = "  --no-deps" if step.no_deps else ""
            out.append(f"  {n}. {step.lock}  ({step.file or place.file}:{step.line}){how}")
        found = [f for f in findings if f.environment == place.name]
        for f in found:
            out.append(f"  {f.severity}: {f.file}:{f.line} {f.kind}: {f.message}")
        if not found:
            out.append("  no finding")
        out.append("")
    return "\n".join(out)
