"""Compiled lock files: the header pip-compile writes, the pins, and pinsync's stamp."""

from __future__ import annotations

import hashlib
import itertools
import json
import shlex
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import PurePosixPath
from typing import Any, Literal

from packaging.requirements import InvalidRequirement
from packaging.utils import NormalizedName, canonicalize_name

from .graph import Target
from .memo import ByIdentity, Memo
from .reqfile import (
    OTHER_LINE_BREAKS,
    Entry,
    OptionLine,
    ReqFile,
    option_lines,
    parse_requirements,
    requirement_entry,
)

STAMP_PREFIX = "# pinsync-stamp: "

# The tools whose lock dialects pinsync reads.
Tool = Literal["pip-compile", "uv", "pip-compile-multi"]

# pip-tools 7.5 echoed options it had not been given as `--opt=None` (pip-tools#2238).
_BOGUS_VALUES = {"None"}
# Options pip-compile never echoes, or that only say where the output goes.
_NOT_REPLAYED = {"--output-file", "-o", "--upgrade", "--upgrade-package", "-P", "--dry-run"}
# Options of pip-compile that take a value, so that `--opt value` parses like `--opt=value`.
_VALUED = {
    "--output-file",
    "-o",
    "--index-url",
    "-i",
    "--extra-index-url",
    "--find-links",
    "-f",
    "--trusted-host",
    "--pip-args",
    "--cert",
    "--client-cert",
    "--resolver",
    "--extra",
    "--annotation-style",
    "--max-rounds",
    "--unsafe-package",
    "--cache-dir",
    "--config",
    "--constraint",
    "-c",
    "--uploaded-prior-to",
    "--newline",
    "--build-deps-for",
    "--upgrade-package",
    "-P",
    # uv pip compile
    "--python-version",
    "--python",
    "-p",
    "--python-platform",
    "--index-strategy",
    "--resolution",
    "--prerelease",
    "--exclude-newer",
    "--no-emit-package",
    "--emit-package",
}


# Header options replayed when a lock is recompiled: the ones that shape its text.
# Anything else a header says (cache and config paths, pip arguments, certificates,
# index URLs, which may carry a masked credential) comes from the repository's
# current configuration, never from a header.
_REPLAYABLE = frozenset(
    {
        "--generate-hashes",
        "--allow-unsafe",
        "--no-allow-unsafe",
        "--strip-extras",
        "--no-strip-extras",
        "--annotate",
        "--no-annotate",
        "--annotation-style",
        "--header",
        "--no-header",
        "--emit-index-url",
        "--no-emit-index-url",
        "--emit-trusted-host",
        "--no-emit-trusted-host",
        "--emit-find-links",
        "--no-emit-find-links",
        "--emit-options",
        "--no-emit-options",
        "--reuse-hashes",
        "--no-reuse-hashes",
        "--extra",
        "--all-extras",
        "--pre",
        "--resolver",
        "--unsafe-package",
        "--newline",
        "--uploaded-prior-to",
        "--build-isolation",
        "--no-build-isolation",
        "--build-deps-for",
        "--all-build-deps",
        "--only-build-deps",
        "--max-rounds",
        # uv pip compile
        "--python-version",
        "--python-platform",
        "--universal",
        "--no-strip-markers",
        "--resolution",
        "--prerelease",
        "--exclude-newer",
        "--no-emit-package",
        "--emit-package",
        "--index-strategy",
        "--no-deps",
    }
)


def replayable(options: tuple[str, ...]) -> tuple[str, ...]:
    """The header options that may be replayed (see _REPLAYABLE)."""
    return tuple(o for o in options if o.partition("=")[0] in _REPLAYABLE)


@dataclass(frozen=True)
class Header:
    """What a lock file says about how it was made."""

    tool: Tool  # which tool wrote the file, whatever command follows
    python: str | None  # "3.11" when the header names it
    command: str | None  # the command line as written
    output_file: PurePosixPath | None
    sources: tuple[PurePosixPath, ...]
    options: tuple[str, ...]  # `--opt` or `--opt=value`, bogus ones dropped
    line_count: int
    # The command is a CUSTOM_COMPILE_COMMAND (`make upgrade`), so it shows no options.
    custom: bool = False
    # `--output-file` exactly as written (`./x.txt`), None where the author gave none.
    output_arg: str | None = None
    # The sources exactly as written, in the order written; relative to where it ran.
    source_args: tuple[str, ...] = ()
    # pip-compile-multi's `# SHA1:` line: the hash of the `.in` it compiled.
    sha1: str | None = None


@dataclass(frozen=True)
class Stamp:
    inputs: str
    output: str
    version: str = "1"  # stamps before v=2 carried no version field

    @property
    def current(self) -> bool:
        """Whether this stamp was computed the way this pinsync computes stamps."""
        return self.version == STAMP_VERSION


@dataclass(frozen=True)
class LockFile:
    path: PurePosixPath
    header: Header | None
    stamp: Stamp | None
    text: str

    # Parsed where something reads its lines: a lock its stamp vouches for, that no
    # environment, pin site or layer compares, costs `check` one read and one digest.
    @cached_property
    def body(self) -> ReqFile:
        return parse_requirements(self.path, self.text)

    @cached_property
    def options(self) -> tuple[OptionLine, ...]:
        """`body.options`: a run reads every lock's index lines, not its requirements."""
        if "body" in self.__dict__:
            return self.body.options
        return option_lines(self.path, self.text)

    def pins(self) -> dict[NormalizedName, Entry]:
        return self.body.pins()

    def pin(self, name: NormalizedName) -> Entry | None:
        """`pins().get(name)`, without parsing the lock where it is not parsed yet.

        A check parses every lock its stamp does not vouch for; one it does is exactly
        what pip-compile wrote, one requirement per line from its first column, so the
        lines that name `name` are found by their name and only they are parsed.
        """
        if "body" in self.__dict__:
            return self.body.pins().get(name)
        found: Entry | None = None
        for number, line in enumerate(self.text.split("\n"), 1):
            if "==" not in line or line[:1] in _NOT_A_REQUIREMENT:
                continue
            written = line.split("==", 1)[0].split("[", 1)[0].split(";", 1)[0].strip()
            if canonicalize_name(written) != name:
                continue
            text = line.rstrip().removesuffix("\\").rstrip()
            try:
                entry = requirement_entry(text.split(" #", 1)[0], number, text)
            except InvalidRequirement:
                return self.body.pins().get(name)  # not pip-compile's line after all
            if entry.name == name:
                found = entry  # the last line wins, as in pins()
        return found

    # A parsed lock is shared (see parse_lockfile): what is read off its text is worked
    # out once, however many times freshness, alignment and check ask.
    @cached_property
    def output_digest(self) -> str:
        OUTPUT_DIGESTS[self.path] += 1
        return output_digest(self.text)

    @cached_property
    def vias(self) -> dict[NormalizedName, tuple[str, ...]]:
        return _via_annotations(self)


# First characters of lines that are no requirement of pip-compile's: comments,
# `# via` notes and hashes (indented), options, continuations.
_NOT_A_REQUIREMENT = frozenset({"#", " ", "\t", "-", "\\"})

PCM_SHA1 = "# SHA1:"


def _head_lines(text: str, size: int = 1024) -> list[str]:
    """The lines of `text` as far as its leading comment block, which is all a header
    is read from: splitting a lock's every line for it was a tenth of a check."""
    while True:
        lines = text[:size].splitlines()
        if len(text) <= size or any(not line.startswith("#") for line in lines[:-1]):
            # The block ends before the last line, which may be cut off: it is whole.
            return lines
        size *= 4


def parse_header(text: str) -> Header | None:
    """The header of a lock's text: read off its leading comment block alone."""
    block = tuple(itertools.takewhile(lambda line: line.startswith("#"), _head_lines(text)))
    return _parse_header_block(block) if block else None


# A run reads each header twice (discovery's first 4 KiB, then the whole lock): the
# block decides the header, so it is parsed once. Headers are immutable.
@lru_cache(maxsize=4096)
def _parse_header_block(block: tuple[str, ...]) -> Header | None:
    lines = list(block)
    if lines[0].startswith(PCM_SHA1):
        return _pcm_header(lines)
    comment_block = lines
    joined = "\n".join(comment_block)
    tool: Tool
    if "autogenerated by pip-compile-multi" in joined:
        # pip-compile-multi 2 wrote no SHA1 line at the top; still its dialect.
        return _pcm_header(lines)
    if "autogenerated by pip-compile" in joined:
        tool = "pip-compile"
    elif "autogenerated by uv" in joined:
        tool = "uv"
    else:
        return None
    python = None
    marker = "autogenerated by pip-compile with python "
    for line in comment_block:
        # pip-tools 6 wrote "python", 7 writes "Python".
        at = line.lower().find(marker)
        if at >= 0:
            python = line[at + len(marker) :].strip()
    command = None
    for line in comment_block:
        stripped = line.lstrip("#").strip()
        if line.startswith("#    ") and stripped:
            command = stripped
            break
    output_arg: str | None = None
    source_args: list[str] = []
    options: list[str] = []
    custom = command is None
    if command is not None:
        if "'" in command or '"' in command or "\\" in command:
            try:
                argv = shlex.split(command)
            except ValueError:
                argv = command.split()
        else:  # the usual header; shlex would be a tenth of an offline check
            argv = command.split()
        # Either tool may be called through `python -m` or a wrapper path; the
        # header only counts as replayable when it is the tool itself.
        is_pip_compile = argv[:1] == ["pip-compile"]
        is_uv = argv[:3] == ["uv", "pip", "compile"]
        if not (is_pip_compile or is_uv):
            custom = True
        else:
            output_arg, source_args, options = parse_argv(argv[1 if is_pip_compile else 3 :])
    return Header(
        tool,
        python,
        command,
        PurePosixPath(output_arg) if output_arg else None,
        tuple(PurePosixPath(s) for s in source_args),
        tuple(options),
        len(comment_block),
        custom=custom,
        output_arg=output_arg or None,
        source_args=tuple(source_args),
    )


def _pcm_header(lines: list[str]) -> Header:
    """pip-compile-multi's header: `# SHA1:HEX`, then its own comment block.

    It runs pip-compile with --no-header and writes this instead, so it shows no
    options; its `-r base.txt` lines follow it (see demands.installed_pins).
    """
    block = list(itertools.takewhile(lambda x: x.startswith("#"), lines))
    sha1 = block[0][len(PCM_SHA1) :].strip() if block and block[0].startswith(PCM_SHA1) else None
    command = next(
        (b.lstrip("#").strip() for b in block if b.startswith("#    ") and b[5:].strip()),
        "pip-compile-multi",
    )
    return Header(
        "pip-compile-multi", None, command, None, (), (), len(block), custom=True, sha1=sha1
    )


def pcm_sha1(in_text: str) -> str:
    """The hash pip-compile-multi writes for an `.in` (its `features.verify` reads it back).

    Comments, blank lines, whitespace and line order do not count: it hashes the
    sorted, stripped lines with their comments cut off.
    """
    joined = "".join(sorted(line.split("#")[0].strip() for line in in_text.splitlines()))
    return hashlib.sha1(joined.encode("utf-8")).hexdigest()


def pcm_fresh(sha1: str | None, in_text: str) -> bool:
    """Whether a `# SHA1:` line vouches for `in_text`, as `pip-compile-multi verify` judges.

    verify also accepts the hash its older releases wrote: of the whole file, stripped.
    """
    if sha1 is None:
        return False
    legacy = hashlib.sha1(in_text.strip().encode("utf-8")).hexdigest()
    return sha1 in (pcm_sha1(in_text), legacy)


def parse_argv(argv: list[str]) -> tuple[str | None, list[str], list[str]]:
    output: str | None = None
    sources: list[str] = []
    options: list[str] = []
    it = iter(argv)
    for tok in it:
        if not tok.startswith("-"):
            sources.append(tok)
            continue
        name, sep, value = tok.partition("=")
        if not sep and name in _VALUED:
            value = next(it, "")
            sep = "="
        if name in ("--output-file", "-o"):
            output = value
        elif name in _NOT_REPLAYED or (sep and value in _BOGUS_VALUES):
            continue
        else:
            options.append(f"{name}={value}" if sep else name)
    return output, sources, options


_UNSAFE_TRAILER = "# The following packages are considered to be unsafe in a requirements file:"
# What pip-compile leaves out of a lock unless --allow-unsafe.
UNSAFE: frozenset[NormalizedName] = frozenset(
    {NormalizedName("pip"), NormalizedName("setuptools"), NormalizedName("distribute")}
)


def infer_options(lock: LockFile, tool: str) -> tuple[str, ...]:
    """The compile options a lock's own text shows, for a header that does not show them.

    Only what changes the output and can be read off it: hashes, unsafe pins, the
    annotation layout and emitted index lines. What the text cannot show (a target
    Python for uv, --pre, a resolver) stays the config's job.
    """
    entries = lock.body.entries
    text = lock.text
    out: list[str] = []
    if any(e.hashes for e in entries):
        out.append("--generate-hashes")
    if tool != "uv":
        # An unsafe package may sit in the body because an input asks for it (treeherder
        # pins setuptools under a "Consider using --allow-unsafe" warning); only pins
        # under pip-compile's own trailer say that the flag was given.
        at = text.find(_UNSAFE_TRAILER)
        trailer = text.count("\n", 0, at) + 1 if at >= 0 else None
        pinned_below = trailer is not None and any(
            e.name in UNSAFE and e.pinned_version and e.line > trailer for e in entries
        )
        if pinned_below and "Consider using the --allow-unsafe flag" not in text:
            out.append("--allow-unsafe")
    has_via = "# via" in text
    if entries and not has_via:
        out.append("--no-annotate")
    elif any(_has_inline_via(text, e) for e in entries[:50]):
        out.append("--annotation-style=line")
    options = {o.name for o in lock.options}
    if tool == "uv":
        if options & {"--index-url", "--extra-index-url"}:
            out.append("--emit-index-url")
        if "--find-links" in options:
            out.append("--emit-find-links")
    else:
        if not options & {"--index-url", "--extra-index-url"}:
            out.append("--no-emit-index-url")
        if "--find-links" not in options:
            out.append("--no-emit-find-links")
    return tuple(out)


def _has_inline_via(text: str, entry: Entry) -> bool:
    return f"{entry.text}  # via" in text


def parse_stamp(text: str) -> Stamp | None:
    # Only the last three lines may hold it: split the tail, not the whole lock,
    # where the tail holds more than three (its first, maybe cut, line is not one).
    lines = text[-1024:].splitlines()
    if len(lines) <= 3 and len(text) > 1024:
        lines = text.splitlines()
    for line in reversed(lines[-3:]):
        if line.startswith(STAMP_PREFIX):
            fields = dict(p.partition("=")[::2] for p in line[len(STAMP_PREFIX) :].split())
            if "inputs" in fields and "output" in fields:
                return Stamp(fields["inputs"], fields["output"], fields.get("v", "1"))
    return None


def strip_stamp(text: str) -> str:
    """The lock's text as pip-compile wrote it, without pinsync's stamp line."""
    at = text.find(STAMP_PREFIX)
    if at < 0:
        return text
    end = text.find("\n", at) + 1 or len(text)
    if (
        (at == 0 or text[at - 1] == "\n")
        and STAMP_PREFIX not in text[end:]
        and OTHER_LINE_BREAKS.search(text, at, end - 1) is None
    ):
        # The one stamp line, as pinsync writes it: cut it out without splitting
        # the lock's every line (a check digests every lock).
        return text[:at] + text[end:]
    lines = text.splitlines(keepends=True)
    kept = [ln for ln in lines if not ln.startswith(STAMP_PREFIX)]
    return "".join(kept)


def output_digest(text: str) -> str:
    return hashlib.sha256(strip_stamp(text).encode()).hexdigest()[:24]


StampState = Literal["none", "edited", "stale", "fresh"]


def stamp_state(lock: LockFile, inputs: Callable[[], str]) -> StampState:
    """The one stamp rule: does this lock's stamp vouch for it, and if not, why not.

    `inputs` computes the current inputs digest; it is called only once the file
    itself matches its stamp, since hashing the inputs is the costly half. A stamp
    of an older pinsync counts as none (the next `lock` restamps it), not as an edit.
    """
    stamp = lock.stamp
    if stamp is None or not stamp.current:
        return "none"
    if stamp.output != lock.output_digest:
        return "edited"
    if stamp.inputs != inputs():
        return "stale"
    return "fresh"


def with_stamp(text: str, inputs_digest: str) -> str:
    """Append the stamp that lets `check-lock` vouch for this file offline."""
    body = strip_stamp(text)
    newline = "\r\n" if "\r\n" in body else "\n"
    if body and not body.endswith("\n"):
        body += newline
    stamp = f"v={STAMP_VERSION} inputs={inputs_digest} output={output_digest(body)}"
    return f"{body}{STAMP_PREFIX}{stamp}{newline}"


def strip_omitted(path: PurePosixPath, text: str, omit: frozenset[NormalizedName]) -> str:
    """The lock without the pins of `omit`, as the team's post-processing leaves it.

    Only the pin's own lines go (its hash continuations included), the way
    `sed '/^django==/d'` does it; its `# via` notes stay, so that the bytes match
    what the team's own tooling writes.
    """
    if not omit:
        return text
    drop: set[int] = set()
    for entry in parse_requirements(path, text).entries:
        if entry.name in omit:
            drop.update(range(entry.line, entry.end_line + 1))
    if not drop:
        return text
    lines = text.splitlines(keepends=True)
    return "".join(line for number, line in enumerate(lines, start=1) if number not in drop)


def strip_mirror(path: PurePosixPath, text: str, mirror: str | None) -> str:
    """The lock as a compile against the public index writes it: without the
    `--index-url` line of the `pypi-mirror` it was made through (pip-compile writes
    the index it was given, but never the default one), and without the blank line
    that closed an options block holding nothing else."""
    if not mirror:
        return text
    lines = text.splitlines(keepends=True)
    for option in parse_requirements(path, text).options:
        if option.name in ("--index-url", "-i") and (option.value or "").rstrip("/") == (
            mirror.rstrip("/")
        ):
            index = option.line - 1
            block_ends = index + 1 < len(lines) and not lines[index + 1].strip()
            alone = index == 0 or lines[index - 1].startswith("#") or not lines[index - 1].strip()
            del lines[index : index + (2 if block_ends and alone else 1)]
            break
    return "".join(lines)


# Every lock parsed in this process, by path and text (see memo.py), and how many
# times each lock's text was digested for its stamp.
LOCKS: Memo[tuple[PurePosixPath, str], LockFile] = Memo()
OUTPUT_DIGESTS: Counter[PurePosixPath] = Counter()


def parse_lockfile(path: PurePosixPath, text: str) -> LockFile:
    """The lock at `path` holding `text`, parsed once per process and shared."""
    return LOCKS.get((path, text), path, lambda: _parse_lockfile(path, text))


def _parse_lockfile(path: PurePosixPath, text: str) -> LockFile:
    return LockFile(path, parse_header(text), parse_stamp(text), text)


# 2: the pip version, the tool (uv) and the replayed invocation joined the digest.
STAMP_VERSION = "2"


# Each compile's inputs digest, by the target and the very parsed files it read:
# freshness, alignment and the compile itself ask for it; it is worked out once.
# The files are held beside the digest, so that their ids in the key stay theirs.
DIGESTS: Memo[tuple[object, ...], tuple[str, tuple[ReqFile, ...]]] = Memo()


def inputs_digest(
    target: Target,
    closure: Iterable[ReqFile],
    pip_tools_table: Mapping[str, Any] | None,
    pip_tools_version: str,
    pip_version: str | None = None,
) -> str:
    """What the output of `target` depends on, comments and blank lines left out.

    Only the parsed content counts, so re-wording a comment in a `.in` does not make
    its lock stale, while any requirement, include or option change does.
    """
    files = tuple(closure)
    table = _table_json(pip_tools_table)
    key = (target, table, pip_tools_version, pip_version, tuple(id(f) for f in files))

    def make() -> tuple[str, tuple[ReqFile, ...]]:
        return _inputs_digest(target, files, table, pip_tools_version, pip_version), files

    return DIGESTS.get(key, target.output, make)[0]


# The [tool.pip-tools] table's JSON: every lock of a run digests the one table.
_table_json: ByIdentity[Mapping[str, Any] | None, str] = ByIdentity(
    lambda table: json.dumps(table or {}, sort_keys=True, default=str), limit=64
)


def _inputs_digest(
    target: Target,
    closure: tuple[ReqFile, ...],
    table: str,
    pip_tools_version: str,
    pip_version: str | None,
) -> str:
    parts: list[object] = [
        STAMP_VERSION,
        pip_tools_version,
        target.python,
        list(target.args),
        [p.as_posix() for p in target.inputs],
        target.custom_command,
        table,
    ]
    # Only what a target sets joins the digest: a plain target hashes no placeholders.
    if target.tool != "pip-compile":
        parts.append(["tool", target.tool])
    if target.invocation is not None:
        inv = target.invocation
        parts.append(["invocation", inv.cwd.as_posix(), list(inv.sources), inv.output])
    if target.omit:
        parts.append(["omit", sorted(target.omit)])
    if pip_version:
        # The pip that pip-compile runs on shapes the bytes (`# via -r` paths).
        parts.append(["pip", pip_version])
    # json.dumps(parts + each file's parts), spelled as the list's JSON and each
    # file's own, which is made once per parsed file: the locks of a repository share
    # their closures (base.in), and encoding them again per lock was a tenth of a check.
    files = (_content_json(r) for r in sorted(closure, key=lambda r: r.path.parts))
    encoded = json.dumps(parts)[:-1] + "".join(", " + f for f in files) + "]"
    return hashlib.sha256(encoded.encode()).hexdigest()[:24]


def _encode_content(req: ReqFile) -> str:
    """The JSON items, `, `-separated, of `req`'s digested content: its path, each
    requirement's text, each include and each option."""
    items = [
        req.path.as_posix(),
        *(e.text for e in req.entries),
        *(f"{i.kind} {i.target.as_posix()}" for i in req.includes),
        *(f"{o.name} {o.value}" for o in req.options),
    ]
    return json.dumps(items)[1:-1]


# Each parsed file's share of the JSON of an inputs digest, made once per file.
_content_json: ByIdentity[ReqFile, str] = ByIdentity(_encode_content)


PinChange = tuple[NormalizedName, "str | None", "str | None"]


def pin_changes(
    old: Mapping[NormalizedName, Entry], new: Mapping[NormalizedName, Entry]
) -> tuple[PinChange, ...]:
    """Packages whose pin (version, or URL for a direct reference) differs, sorted by name."""

    def pin(pins: Mapping[NormalizedName, Entry], name: NormalizedName) -> str | None:
        entry = pins.get(name)
        return (entry.pinned_version or entry.url) if entry is not None else None

    return tuple(
        (name, pin(old, name), pin(new, name))
        for name in sorted(old.keys() | new.keys())
        if pin(old, name) != pin(new, name)
    )


def via_annotations(lock: LockFile) -> dict[NormalizedName, tuple[str, ...]]:
    """`# via` annotations per pinned package, in either of pip-compile's layouts.

    Read off the text once per lock (discovery and check both ask); do not mutate.
    """
    return lock.vias


def _via_annotations(lock: LockFile) -> dict[NormalizedName, tuple[str, ...]]:
    out: dict[NormalizedName, list[str]] = {}
    current: NormalizedName | None = None
    lines = lock.text.splitlines()
    entries = {e.line: e for e in lock.body.entries}
    for number, raw in enumerate(lines, start=1):
        entry = entries.get(number)
        if entry is not None:
            current = entry.name
            if current is not None:
                out.setdefault(current, [])
                # --annotation-style=line: `flask==2.0.0    # via -r a.in, mlflow`
                _, _, note = raw.partition("  # via ")
                out[current].extend(n.strip() for n in note.split(",") if n.strip())
            continue
        stripped = raw.strip()
        if current is None or not stripped.startswith("#"):
            if stripped and not raw.startswith((" ", "\t")):
                current = None
            continue
        note = stripped.lstrip("#").strip()
        if note.startswith("via"):
            note = note[3:].strip()
        if note:
            out[current].append(note)
    return {k: tuple(v) for k, v in out.items()}
