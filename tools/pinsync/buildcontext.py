"""Docker build contexts: which repository file a path inside an image came from.

`COPY requirements.txt requirements.txt` followed by `pip install -r requirements.txt`
installs the lock *of the build context*, which in a monorepo with one image per
directory is that directory's lock, not any file named requirements.txt. Pure: the
callers pass file lists and texts.
"""

from __future__ import annotations

import posixpath
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

from .discovery import join
from .dockerfile import Copy, Dockerfile, RequirementInstall


@dataclass(frozen=True)
class ComposeBuild:
    """One service's `build:`: its context and Dockerfile, relative to the root."""

    context: PurePosixPath
    dockerfile: PurePosixPath


def compose_builds(path: PurePosixPath, text: str) -> tuple[ComposeBuild, ...]:
    """The `build:` entries of a compose file.

    Only the two shapes compose documents are read: `build: DIR` and a `build:` block
    with `context:` and `dockerfile:` keys. A small reader of indentation is enough
    for them, and keeps a YAML library out of the suite's dependencies.
    """
    base = path.parent
    out: list[ComposeBuild] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        i += 1
        if not stripped.startswith("build:"):
            continue
        indent = len(line) - len(line.lstrip())
        value = _scalar(stripped[len("build:") :])
        context, dockerfile = value, None
        if not value:
            while i < len(lines):
                child = lines[i]
                child_stripped = child.strip()
                if child_stripped and not child_stripped.startswith("#"):
                    if len(child) - len(child.lstrip()) <= indent:
                        break
                    key, _, rest = child_stripped.partition(":")
                    if key == "context":
                        context = _scalar(rest)
                    elif key == "dockerfile":
                        dockerfile = _scalar(rest)
                i += 1
        if context is None or "://" in context or context.startswith("git@"):
            continue  # a remote context holds nothing of this repository
        ctx = join(base, context or ".")
        df = join(ctx, dockerfile) if dockerfile else ctx / "Dockerfile"
        out.append(ComposeBuild(ctx, df))
    return tuple(out)


def _scalar(text: str) -> str | None:
    text = text.split(" #", 1)[0].strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1]
    return text or None


def contexts_for(
    dockerfile: PurePosixPath,
    declared: Mapping[PurePosixPath, PurePosixPath],
) -> tuple[PurePosixPath, ...]:
    """Build contexts to try for `dockerfile`, most likely first.

    A declared one (compose or config) is the answer. Otherwise Docker's default for
    `docker build DIR` is the Dockerfile's directory, and `docker build -f
    docker/Dockerfile .` (a parent) is the next most common.
    """
    if dockerfile in declared:
        return (declared[dockerfile],)
    parent = dockerfile.parent
    return (parent, *parent.parents) if parent != PurePosixPath(".") else (parent,)


def directories_of(files: Iterable[PurePosixPath]) -> frozenset[PurePosixPath]:
    """Every directory that holds a file of the repository, the root included."""
    return frozenset(parent for f in files for parent in f.parents)


def _in_image(install: RequirementInstall) -> str:
    return posixpath.normpath(posixpath.join(install.workdir, install.path))


def _copies_before(df: Dockerfile, install: RequirementInstall) -> Iterator[Copy]:
    """The COPYs that may have put the file there, nearest first (later lines, own stage)."""
    for stage in df.lineage(install.stage):
        own = [c for c in df.copies if c.stage == stage and c.line < install.line]
        yield from reversed(
            own if stage == install.stage else [c for c in df.copies if c.stage == stage]
        )


def source_of(
    df: Dockerfile,
    install: RequirementInstall,
    context: PurePosixPath,
    directories: Collection[PurePosixPath],
) -> PurePosixPath | None:
    """The repository file that `install` reads, following COPY/ADD from `context`."""
    target = _in_image(install)
    for copy in _copies_before(df, install):
        dest = copy.dest.rstrip("/") or "/"
        inside_dest = dest.rstrip("/") + "/"  # "/" when DEST is the image's root
        as_dir = copy.dest.endswith("/") or len(copy.sources) > 1
        for src in copy.sources:
            if src in (".", "./", "/") or join(context, src) in directories:
                # COPY DIR DEST copies the directory's contents into DEST.
                if target == dest or not target.startswith(inside_dest):
                    continue
                rel = target[len(inside_dest) :]
                return join(context, posixpath.join(src, rel))
            placed = posixpath.join(dest, posixpath.basename(src)) if as_dir else dest
            if target == posixpath.normpath(placed):
                return join(context, src)
    return None


def resolve_installs(
    df: Dockerfile,
    installs: Iterable[RequirementInstall],
    declared: Mapping[PurePosixPath, PurePosixPath],
    on_disk: Collection[PurePosixPath],
    directories: Collection[PurePosixPath],
) -> dict[RequirementInstall, PurePosixPath]:
    """Each install that a COPY from some build context explains, with its repository file.

    `on_disk` and `directories` are sets the caller builds once for every Dockerfile.
    """
    out: dict[RequirementInstall, PurePosixPath] = {}
    for install in installs:
        for context in contexts_for(df.path, declared):
            found = source_of(df, install, context, directories)
            if found is not None and found in on_disk:
                out[install] = found
                break
    return out
