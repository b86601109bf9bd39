"""The include graph: which outputs exist, what each reads, and the order to compile them."""

from __future__ import annotations

import graphlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

from packaging.utils import NormalizedName

from .errors import GraphError
from .reqfile import ReqFile


@dataclass(frozen=True)
class Invocation:
    """How the author ran the compile: from `cwd`, with paths spelled as they were.

    Replaying it exactly is what keeps the header (and `# via -r` paths) byte for byte.
    """

    cwd: PurePosixPath  # relative to the root
    sources: tuple[str, ...]  # as written, relative to `cwd`
    output: str | None  # `--output-file` as written; None where the author gave none


@dataclass(frozen=True)
class Target:
    """One compile: its inputs, its output and how to run it."""

    output: PurePosixPath
    inputs: tuple[PurePosixPath, ...]
    args: tuple[str, ...]
    python: str
    custom_command: str | None = None
    tool: Literal["pip-compile", "uv", "pip-compile-multi"] = "pip-compile"
    # None: from the root, `--output-file=OUTPUT INPUTS...`, all relative to the root.
    invocation: Invocation | None = None
    # Packages the team strips after compiling (`omit` in the config).
    omit: frozenset[NormalizedName] = frozenset()
    # Options read off the lock itself because neither its header nor the config shows
    # them (possibly none); None when they came from the config or the header.
    inferred: tuple[str, ...] | None = None
    # Why replaying this lock's compile would be a guess (no header, no Python named,
    # options read off the lock), or None: such a lock, written elsewhere, is checked
    # against its sources but neither re-resolved nor rewritten while it meets them.
    guess: str | None = None
    # Files a `--constraint` option names (compile-args, the header's command, or
    # [tool.pip-tools] `constraint`), relative to the root: pip-compile reads each as it
    # reads a `-c` line, so they order the compile and join its inputs digest.
    constraints: tuple[PurePosixPath, ...] = ()


@dataclass(frozen=True)
class Graph:
    targets: Mapping[PurePosixPath, Target]  # by output, in compile order
    # output -> every file its compile reads (inputs and their -r/-c closure)
    closure: Mapping[PurePosixPath, tuple[PurePosixPath, ...]]
    # output -> the outputs it reads, which must be compiled before it
    needs: Mapping[PurePosixPath, frozenset[PurePosixPath]]

    def order(self) -> tuple[Target, ...]:
        return tuple(self.targets.values())

    def dependents(self, outputs: Iterable[PurePosixPath]) -> frozenset[PurePosixPath]:
        """`outputs` and everything compiled from them, directly or not."""
        chosen = set(outputs)
        for out in self.targets:  # compile order means one pass suffices
            if self.needs[out] & chosen:
                chosen.add(out)
        return frozenset(chosen)

    def target_for(self, path: PurePosixPath) -> Target | None:
        """The target whose output or one of whose inputs is `path`."""
        if path in self.targets:
            return self.targets[path]
        return next((t for t in self.targets.values() if path in t.inputs), None)


def include_closure(
    start: Iterable[PurePosixPath],
    files: Mapping[PurePosixPath, ReqFile],
) -> tuple[PurePosixPath, ...]:
    """Every file reachable from `start` through `-r`/`-c`, `start` included, sorted."""
    seen: set[PurePosixPath] = set()

    def visit(path: PurePosixPath, stack: tuple[PurePosixPath, ...]) -> None:
        if path in stack:
            cycle = " -> ".join(p.as_posix() for p in (*stack[stack.index(path) :], path))
            raise GraphError(f"include cycle: {cycle}")
        if path in seen:
            return
        seen.add(path)
        parsed = files.get(path)
        if parsed is None:
            return
        for inc in parsed.includes:
            visit(inc.target, (*stack, path))

    for path in start:
        visit(path, ())
    return tuple(sorted(seen))


def build_graph(
    targets: Iterable[Target],
    files: Mapping[PurePosixPath, ReqFile],
    existing: Iterable[PurePosixPath],
) -> Graph:
    """Order `targets` so that each is compiled after whatever it reads of the others.

    `files` holds every parsed requirement file; `existing` is the set of files on
    disk, so that an include of a not-yet-compiled output is not an error.
    """
    by_output = {t.output: t for t in targets}
    on_disk = set(existing)
    closure: dict[PurePosixPath, tuple[PurePosixPath, ...]] = {}
    for target in by_output.values():
        closure[target.output] = include_closure((*target.inputs, *target.constraints), files)
        for path in target.inputs:
            if path not in files and path not in on_disk:
                raise GraphError(f"{target.output}: input {path} does not exist")
        for path in target.constraints:
            if path not in files and path not in on_disk and path not in by_output:
                raise GraphError(f"{target.output}: its --constraint {path} does not exist")
        for path in closure[target.output]:
            parsed = files.get(path)
            for inc in parsed.includes if parsed else ():
                if inc.target not in on_disk and inc.target not in by_output:
                    raise GraphError(
                        f"{path}:{inc.line}: {inc.kind} {inc.path}: {inc.target} does not exist"
                    )
    # A file may be an input of several outputs; reading it orders after all of them.
    produced_by: dict[PurePosixPath, set[PurePosixPath]] = {}
    for target in by_output.values():
        produced_by.setdefault(target.output, set()).add(target.output)
        for path in target.inputs:
            produced_by.setdefault(path, set()).add(target.output)
    needs: dict[PurePosixPath, frozenset[PurePosixPath]] = {}
    for out, reads in closure.items():
        own = set(by_output[out].inputs)
        needs[out] = frozenset(
            producer
            for p in reads
            if p not in own
            for producer in produced_by.get(p, ())
            if producer != out
        )
    sorter = graphlib.TopologicalSorter({o: sorted(a) for o, a in sorted(needs.items())})
    try:
        order = list(sorter.static_order())
    except graphlib.CycleError as exc:
        cycle = " -> ".join(p.as_posix() for p in exc.args[1])
        raise GraphError(f"outputs depend on each other in a cycle: {cycle}") from None
    return Graph({o: by_output[o] for o in order}, closure, needs)
