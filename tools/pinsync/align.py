"""Alignment groups: locks that are installed together, resolved jointly so that they agree.

Compiled one by one, two locks that one image installs (or one of which includes the
other's sources) pin a shared package wherever each resolution lands. A group is
resolved once as a whole (the union of its sources), and each lock is then compiled
with that joint result as its existing pins, which pip-compile keeps wherever the
lock's own requirements allow, and they always do, since the joint result satisfies
every source of the group.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Literal

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from .errors import ConfigError
from .graph import Graph, Invocation, Target
from .multi import same_directory
from .reqfile import Entry, ReqFile

if TYPE_CHECKING:
    from .dockerfile import Dockerfile
    from .repo import Repo

# (why, outputs): outputs that must agree, and what says so, for messages.
Link = tuple[str, tuple[PurePosixPath, ...]]

# Options of a member that change how the joint result is laid out, not what resolves.
_LAYOUT_ONLY = (
    "--generate-hashes",
    "--annotate",
    "--no-annotate",
    "--annotation-style",
    "--header",
    "--no-header",
    "--emit-index-url",
    "--no-emit-index-url",
    "--emit-find-links",
    "--no-emit-find-links",
    "--emit-trusted-host",
    "--no-emit-trusted-host",
    "--emit-options",
    "--no-emit-options",
    "--strip-extras",
    "--no-strip-extras",
    "--reuse-hashes",
    "--no-reuse-hashes",
    "--quiet",
    "--verbose",
    "--dry-run",
)


@dataclass(frozen=True)
class AlignGroup:
    """Outputs resolved together, in compile order, and what put them together."""

    outputs: tuple[PurePosixPath, ...]
    why: tuple[str, ...]

    @cached_property  # asked for by every member's compile, and by the scheduler
    def key(self) -> str:
        text = "\0".join(p.as_posix() for p in self.outputs)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def describe(self) -> str:
        return f"{', '.join(p.as_posix() for p in self.outputs)} ({'; '.join(self.why)})"


def run_dir(target: Target) -> PurePosixPath:
    return target.invocation.cwd if target.invocation is not None else PurePosixPath(".")


def layer_links(graph: Graph) -> list[Link]:
    """A lock whose compile reads another lock's source must agree with that lock.

    Reading the other *lock* (`-c base.txt`, `-r base.txt`) needs no group: compiled
    after it, against its pins, the two agree by construction.
    """
    order = graph.order()
    # Which targets read each file as an input: each target then looks up only the
    # few that share something with its closure, not every other target (N² at scale).
    position = {t.output: i for i, t in enumerate(order)}
    readers: dict[PurePosixPath, list[Target]] = {}
    for other in order:
        for path in dict.fromkeys(other.inputs):
            readers.setdefault(path, []).append(other)
    links: list[Link] = []
    for target in order:
        reads = set(graph.closure[target.output])
        others = {
            o.output: o for p in reads for o in readers.get(p, ()) if o.output != target.output
        }
        for other in sorted(others.values(), key=lambda o: position[o.output]):
            shared = min(reads & set(other.inputs))
            links.append((f"{target.output} includes {shared}", (target.output, other.output)))
    return links


def configured_links(graph: Graph, groups: Sequence[Sequence[PurePosixPath]]) -> list[Link]:
    for group in groups:
        for path in group:
            if path not in graph.targets:
                raise ConfigError(
                    f"[tool.pinsync] align: {path} is not a lock pinsync compiles "
                    f"(known: {', '.join(p.as_posix() for p in graph.targets)})"
                )
    return [("[tool.pinsync] align", tuple(g)) for g in groups if len(g) > 1]


def find_groups(graph: Graph, links: Iterable[Link]) -> tuple[AlignGroup, ...]:
    """Join linked outputs into groups of two or more.

    Locks for different Pythons, or compiled from different directories, are never
    joined: they are not installed into one environment, or their relative paths
    mean different files.
    """
    parent: dict[PurePosixPath, PurePosixPath] = {}
    reasons: dict[PurePosixPath, list[str]] = {}

    def find(x: PurePosixPath) -> PurePosixPath:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for why, outputs in links:
        members = [graph.targets[o] for o in dict.fromkeys(outputs) if o in graph.targets]
        firsts: dict[tuple[str, PurePosixPath], Target] = {}
        for b in members:
            a = firsts.setdefault((b.python, run_dir(b)), b)
            if a is b:
                continue
            ra, rb = find(a.output), find(b.output)
            if ra != rb:
                parent[rb] = ra
                reasons.setdefault(ra, []).extend(reasons.pop(rb, []))
            reasons.setdefault(ra, []).append(why)
    by_root: dict[PurePosixPath, list[PurePosixPath]] = {}
    for out in graph.targets:  # compile order
        if out in parent:
            by_root.setdefault(find(out), []).append(out)
    return tuple(
        AlignGroup(tuple(members), tuple(dict.fromkeys(reasons.get(root, []))))
        for root, members in by_root.items()
        if len(members) > 1
    )


def joint_target(group: AlignGroup, graph: Graph) -> Target:
    """The compile of the group's union: a scratch source beside where its members run."""
    members = [graph.targets[o] for o in group.outputs]
    first = members[0]
    cwd = run_dir(first)
    name = f".pinsync-align-{group.key}"
    source, output = posixpath.join(cwd, f"{name}.in"), posixpath.join(cwd, f"{name}.txt")
    args = tuple(a for a in first.args if a.split("=", 1)[0] not in _LAYOUT_ONLY)
    tool: Literal["pip-compile", "uv"] = (
        "uv" if all(m.tool == "uv" for m in members) else "pip-compile"
    )
    invocation = None
    if cwd != PurePosixPath("."):
        invocation = Invocation(cwd, (f"{name}.in",), f"{name}.txt")
    return Target(
        PurePosixPath(output),
        (PurePosixPath(source),),
        args,
        first.python,
        None,
        tool,
        invocation,
    )


def downstream(group: AlignGroup, graph: Graph) -> frozenset[PurePosixPath]:
    """Members that read another member's lock (`-c base.txt`): compiled after it and
    against its pins, so they agree with it by construction. The joint resolution
    leaves their sources out, since the lock they read is what it is about to decide."""
    outputs = set(group.outputs)
    return frozenset(out for out in group.outputs if (set(graph.closure[out]) - {out}) & outputs)


def joint_source(group: AlignGroup, graph: Graph) -> str:
    """`-r` every source of every member (but the downstream ones), relative to where
    the joint compile runs."""
    cwd = run_dir(graph.targets[group.outputs[0]]).as_posix()
    lines = ["# pinsync: the union of an alignment group, resolved once; never committed"]
    later = downstream(group, graph)
    for out in (o for o in group.outputs if o not in later):
        for path in graph.targets[out].inputs:
            line = f"-r {posixpath.relpath(path.as_posix(), cwd)}"
            if line not in lines:
                lines.append(line)
    return "\n".join(lines) + "\n"


def seed(pins: Iterable[Mapping[NormalizedName, Entry]]) -> dict[NormalizedName, str]:
    """One version per package: the newest any member pins, so that agreeing pins stay."""
    out: dict[NormalizedName, str] = {}
    for mapping in pins:
        for name, entry in mapping.items():
            version = entry.pinned_version
            if version is not None and (name not in out or _newer(version, out[name])):
                out[name] = version
    return out


def _newer(a: str, b: str) -> bool:
    try:
        return Version(a) > Version(b)
    except InvalidVersion:
        return a > b


def seed_text(pins: Mapping[NormalizedName, str]) -> str:
    return "".join(f"{name}=={version}\n" for name, version in sorted(pins.items()))


def disagreeing_requests(
    group: AlignGroup,
    graph: Graph,
    sources: Mapping[PurePosixPath, ReqFile],
    message: str,
) -> list[str]:
    """The requirements of the group's sources that a failed joint resolution names."""
    named = set(_names_in(message))
    found: list[str] = []
    for out in group.outputs:
        for path in graph.closure[out]:
            parsed = sources.get(path)
            for entry in parsed.entries if parsed else ():
                where = f"{entry.text.strip()} ({path}:{entry.line})"
                if entry.name in named and where not in found:
                    found.append(where)
    return found


def _names_in(message: str) -> Iterable[NormalizedName]:
    """Every run of name characters in `message` (pip's texts quote names every way)."""
    word: list[str] = []
    for char in message + " ":
        if char.isascii() and (char.isalnum() or char in "._-"):
            word.append(char)
        elif word:
            yield canonicalize_name("".join(word).strip("._-"))
            word = []


def image_links(repo: Repo, images: Sequence[Dockerfile]) -> list[Link]:
    """The locks each Dockerfile stage installs, with what it inherits through FROM.

    An install with `--no-deps` after another command is how a team overrides pins on
    purpose (check reports it as `override`), so it does not join a group.
    """
    if not images:
        return []  # and the build-context modules stay unimported
    from .buildcontext import directories_of, resolve_installs
    from .images import declared_contexts, installed_locks

    candidates = sorted(repo.graph.targets)
    declared = declared_contexts(repo)
    on_disk, directories = set(repo.files), directories_of(repo.files)
    links: list[Link] = []
    for df in images:
        resolved = resolve_installs(df, df.installs, declared, on_disk, directories)
        for stage in df.stages:
            together = [
                i
                for i in installed_locks(df, stage.index, candidates, resolved)
                if not i.install.no_deps
            ]
            outputs = tuple(dict.fromkeys(i.lock for i in together))
            if len(outputs) > 1:
                line = together[-1].install.line
                links.append((f"{df.path}:{line} installs them together", outputs))
    return links


def environment_links(repo: Repo) -> list[Link]:
    """The locks each CI job, tox environment, nox session, Makefile target or script
    installs together (a `--no-deps` install of a later command aside, as in images)."""
    links: list[Link] = []
    for env in repo.environments:
        together = [i for i in env.installs if i.path in repo.graph.targets and not i.no_deps]
        outputs = tuple(dict.fromkeys(i.path for i in together))
        if len(outputs) > 1:
            last = together[-1]
            links.append((f"{last.file}:{last.line} ({env.name}) installs them together", outputs))
    return links


def alignment_groups(
    repo: Repo, images: Sequence[Dockerfile] | None = None
) -> tuple[AlignGroup, ...]:
    """The repository's groups: found ones plus `[tool.pinsync] align`, or none if off."""
    if repo.config.align is None:
        return ()
    # Layers are separate resolutions in pip-compile's eyes; they are grouped only
    # where the repository asked layered locks to agree (layers-disagree).
    links = layer_links(repo.graph) if repo.config.layers_disagree is not None else []
    links += image_links(repo, repo.dockerfiles() if images is None else images)
    links += environment_links(repo)
    links += configured_links(repo.graph, repo.config.align)
    return find_groups(repo.graph, links)


def reads(
    graph: Graph, output: PurePosixPath, group: AlignGroup | None
) -> tuple[PurePosixPath, ...]:
    """What the lock of `output` depends on: its own closure, or its whole group's."""
    if group is None:
        return graph.closure[output]
    return tuple(sorted({p for o in group.outputs for p in graph.closure[o]}))


def by_output(groups: Iterable[AlignGroup]) -> dict[PurePosixPath, AlignGroup]:
    return {out: g for g in groups for out in g.outputs}


def widen(
    graph: Graph, selected: Iterable[PurePosixPath], groups: Sequence[AlignGroup]
) -> frozenset[PurePosixPath]:
    """`selected`, with the whole group of each selected lock and what depends on them."""
    chosen = set(selected)
    grew = True
    while grew:
        grew = False
        for group in groups:
            if chosen & set(group.outputs) and not set(group.outputs) <= chosen:
                chosen |= set(group.outputs)
                grew = True
        widened = graph.dependents(chosen)
        # One pip-compile-multi run rewrites every output of its directory.
        widened = same_directory(graph.order(), widened)
        grew = grew or widened != chosen
        chosen = set(widened)
    return frozenset(chosen)
