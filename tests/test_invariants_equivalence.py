"""`lock` writes what the tools it drives write (Hypothesis), stamp aside.

Issue #23, property 4: on generated repositories, `python -m pinsync lock` must leave
every lock with the bytes that a plain loop of the underlying tool, run by hand in
dependency order with the same options, leaves. Three dialects:

- pip-compile trees: `.in` files that `-r`/`-c` each other (and read locks with
  `-r`/`-c`), in several layers, at the root or in `requirements/`, with extras,
  markers and unsafe packages; options from `[tool.pip-tools]`, from `[tool.pinsync]`
  `compile-args` (global and per output), or only from the headers of locks that a
  plain loop wrote first. Compared on a fresh lock and on a relock after newer
  releases appeared in the wheelhouse (and maybe an `.in` edited): both must keep the
  pins that still satisfy, or move them the same way.
- uv trees: locks a `uv pip compile` loop wrote, relocked by pinsync against the same
  loop run again (uv's options on its command line, or in `[tool.uv.pip]`).
- pip-compile-multi trees: a `requirements/` directory compiled by pip-compile-multi,
  relocked by pinsync against pip-compile-multi run again as its maintainers would
  (`--no-upgrade`, with the options they first gave it).

The loops here are written from what a user types, not from pinsync's code: only the
wheelhouse builder and `strip_stamp` are shared. A lock failure must be a failure of
the plain loop too. Locks name the checkout they were compiled in (pip-compile writes
a read lock's `--find-links` as an absolute path), so checkouts compare as `<root>`.

Three counterexamples are open (tests/test_equivalence_regressions.py, xfail strict);
each is tolerated here only in exactly its shape, and counted as an event, so that a
long run keeps looking for new ones.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from bench.wheelhouse import Dist, build_wheelhouse
from conftest import TOOLS
from fuzz_profile import count, fuzz_settings
from pinsync.lockfile import strip_stamp

NAMES = ("alpha", "beta", "gamma", "delta", "eps")
# pip-compile leaves these out unless --allow-unsafe; a dist may depend on one.
UNSAFE = "setuptools"
# File names are drawn in any order, so that the dependency order is not the sorted one.
LABELS = ("base", "api", "dev", "docs", "test")
MARKER_TRUE = 'python_version >= "3.8"'
MARKER_FALSE = 'sys_platform == "win32"'

WHEELHOUSE_TABLE = '[tool.pip-tools]\nno-index = true\nfind-links = ["wheels"]\n'
UV_TABLE = '[tool.uv.pip]\nno-index = true\nfind-links = ["wheels"]\n'


@dataclass(frozen=True)
class Compile:
    """One step of the user's loop: `src` compiled to `out`, both relative to the root."""

    src: str
    out: str
    options: tuple[str, ...]  # what the user's command line carries besides the paths
    options_first: bool  # `pip-compile OPTS -o OUT SRC` rather than `SRC -o OUT OPTS`


@dataclass(frozen=True)
class Tree:
    dists: tuple[Dist, ...]
    late: tuple[Dist, ...]  # released after the first lock
    files: tuple[tuple[str, str], ...]
    compiles: tuple[Compile, ...]  # in dependency order
    # How the relock is provoked: a line appended to one source (or none), and the
    # lock command (`lock`, `lock --force`, `lock --upgrade`).
    edit: tuple[str, str] | None
    relock: str
    # Where a pip-compile tree's options live: "table", "compile-args" or "header".
    mode: str = "table"
    # Relocked in another checkout (CI's, a colleague's) than the one first locked.
    moved: bool = False


# --- drawing ------------------------------------------------------------------------


@st.composite
def wheelhouses(draw: st.DrawFn) -> tuple[tuple[Dist, ...], tuple[Dist, ...]]:
    """Each name in one or two versions, depending only on later names (no cycles),
    some dependencies behind a marker or an extra; then a later release of some."""

    def deps(i: int) -> tuple[str, ...]:
        later = NAMES[i + 1 :]
        chosen = draw(st.lists(st.sampled_from(later), max_size=2, unique=True)) if later else []
        out = []
        for d in chosen:
            spec = draw(st.sampled_from(["", ">=1.0", "<3"]))
            marker = draw(st.sampled_from(["", f"; {MARKER_TRUE}", f"; {MARKER_FALSE}"]))
            out.append(f"{d}{spec}{marker}")
        if draw(st.integers(0, 5)) == 0:
            out.append(UNSAFE)
        return tuple(out)

    def extras(i: int) -> tuple[tuple[str, tuple[str, ...]], ...]:
        later = NAMES[i + 1 :]
        if not later or not draw(st.booleans()):
            return ()
        return (("x", (draw(st.sampled_from(later)),)),)

    dists: list[Dist] = []
    late: list[Dist] = []
    for i, name in enumerate(NAMES):
        for version in draw(st.sampled_from([("1.0",), ("1.0", "2.0")])):
            dists.append(Dist(name, version, deps(i), extras(i)))
        if draw(st.booleans()):
            late.append(Dist(name, "3.0", deps(i), extras(i)))
    dists.append(Dist(UNSAFE, "70.0"))
    if draw(st.booleans()):
        late.append(Dist(UNSAFE, "71.0"))
    return tuple(dists), tuple(late)


def requirement_line(draw: st.DrawFn, late: bool = False) -> str:
    """A requirement; with `late`, one that may need a release made after the first lock."""
    name = draw(st.sampled_from((*NAMES, *NAMES, UNSAFE)))
    shapes = ["", "", ">=1.0", "==1.0", "<3", "[x]", "true", "false", *([">=3.0"] if late else [])]
    # setuptools has its own version numbers: it is required plainly, or not at all.
    shape = draw(st.sampled_from(shapes if name != UNSAFE else ["", "true", "false"]))
    if shape == "true":
        return f"{name} ; {MARKER_TRUE}"
    if shape == "false":
        return f"{name} ; {MARKER_FALSE}"
    return name + shape


@st.composite
def layered_sources(draw: st.DrawFn, directory: str) -> tuple[list[str], dict[str, str]]:
    """Sources in dependency order and their text: each may `-r`/`-c` an earlier
    source or lock, and a hand-written constraints file."""
    n = draw(st.integers(min_value=1, max_value=4))
    labels = draw(st.permutations(LABELS))[:n]
    sources = [f"{directory}{label}.in" for label in labels]
    files: dict[str, str] = {}
    for k in range(n):
        lines = [requirement_line(draw) for _ in range(draw(st.integers(1, 3)))]
        if k > 0:
            for _ in range(draw(st.integers(0, 2))):
                other = labels[draw(st.integers(0, k - 1))]
                how = draw(st.sampled_from(["-r {}.in", "-c {}.txt", "-r {}.txt"]))
                lines.insert(0, how.format(other))
        if draw(st.integers(0, 4)) == 0:
            files[f"{directory}constraints.txt"] = "# kept by hand\nbeta<3\n"
            lines.insert(0, "-c constraints.txt")
        files[sources[k]] = "\n".join(dict.fromkeys(lines)) + "\n"
    return sources, files


def _edit_and_relock(draw: st.DrawFn, sources: Sequence[str]) -> tuple[tuple[str, str] | None, str]:
    edit = None
    if draw(st.booleans()):
        edit = (draw(st.sampled_from(sources)), requirement_line(draw, late=True))
    return edit, draw(st.sampled_from(["lock", "lock --force", "lock --upgrade"]))


PIP_OPTIONS = (
    "--generate-hashes",
    "--allow-unsafe",
    "--strip-extras",
    "--no-strip-extras",
    "--annotation-style=line",
    "--no-annotate",
    "--no-emit-find-links",
    "--newline=crlf",
)
# The same options as `[tool.pip-tools]` keys (pip-compile's own config file).
TABLE_KEYS = {
    "--generate-hashes": "generate-hashes = true",
    "--allow-unsafe": "allow-unsafe = true",
    "--strip-extras": "strip-extras = true",
    "--no-strip-extras": "strip-extras = false",
    "--annotation-style=line": 'annotation-style = "line"',
    "--no-annotate": "annotate = false",
    "--no-emit-find-links": "emit-find-links = false",
    "--newline=crlf": 'newline = "crlf"',
}


def _pip_options(draw: st.DrawFn, allowed: Sequence[str] = PIP_OPTIONS) -> list[str]:
    chosen = draw(st.lists(st.sampled_from(allowed), max_size=3, unique=True))
    if "--strip-extras" in chosen and "--no-strip-extras" in chosen:
        chosen.remove("--no-strip-extras")
    return chosen


@st.composite
def pip_trees(draw: st.DrawFn) -> Tree:
    dists, late = draw(wheelhouses())
    directory = draw(st.sampled_from(["", "requirements/"]))
    sources, files = draw(layered_sources(directory))
    mode = draw(st.sampled_from(["table", "compile-args", "header"]))
    everyone = _pip_options(draw)
    table = WHEELHOUSE_TABLE
    per_output: dict[str, list[str]] = {}
    if mode == "table":
        table += "".join(f"{TABLE_KEYS[o]}\n" for o in everyone)
        everyone = []
    elif mode == "compile-args":
        # `--no-header` only where the config says how to compile: a lock without a
        # header is otherwise one pinsync would have to guess how to make.
        everyone += draw(st.sampled_from([[], [], ["--no-header"]]))
        table += "[tool.pinsync]\ncompile-args = [" + ", ".join(f'"{o}"' for o in everyone) + "]\n"
        if draw(st.booleans()):
            out = draw(st.sampled_from(sources))[: -len(".in")] + ".txt"
            per_output[out] = _pip_options(draw)
            table += f'[tool.pinsync.outputs."{out}"]\ncompile-args = ['
            table += ", ".join(f'"{o}"' for o in per_output[out]) + "]\n"
    files["pyproject.toml"] = table
    compiles = []
    for src in sources:
        out = src[: -len(".in")] + ".txt"
        options = tuple(per_output.get(out, everyone))
        compiles.append(Compile(src, out, options, draw(st.booleans())))
    edit, relock = _edit_and_relock(draw, sources)
    moved = mode == "header" or draw(st.booleans())
    files_ = tuple(sorted(files.items()))
    return Tree(dists, late, files_, tuple(compiles), edit, relock, mode, moved)


UV_OPTIONS = (
    "--generate-hashes",
    "--no-annotate",
    "--annotation-style=line",
    "--no-strip-extras",
    "--no-strip-markers",
    "--universal",
    "--emit-find-links",
    "--python-version=3.11",
)


@st.composite
def uv_trees(draw: st.DrawFn) -> Tree:
    dists, late = draw(wheelhouses())
    directory = draw(st.sampled_from(["", "requirements/"]))
    sources, files = draw(layered_sources(directory))
    options = draw(st.lists(st.sampled_from(UV_OPTIONS), max_size=3, unique=True))
    table = UV_TABLE
    if "--generate-hashes" in options and draw(st.booleans()):
        # In uv's own table rather than on the command line (so not in the header).
        table += "generate-hashes = true\n"
        options.remove("--generate-hashes")
    files["pyproject.toml"] = table
    compiles = tuple(
        Compile(src, src[: -len(".in")] + ".txt", tuple(options), draw(st.booleans()))
        for src in sources
    )
    edit, relock = _edit_and_relock(draw, sources)
    return Tree(dists, late, tuple(sorted(files.items())), compiles, edit, relock, "uv")


PCM_SPECS = ("", ">=1.0", "[x]", f" ; {MARKER_TRUE}")


@st.composite
def pcm_trees(draw: st.DrawFn) -> Tree:
    """`requirements/base.in` and layers that `-r` it (or a layer on it), compiled by
    pip-compile-multi. Only base caps versions: pip-compile-multi refuses a layer that
    resolves a package of base differently."""
    dists, late = draw(wheelhouses())
    files: dict[str, str] = {"pyproject.toml": WHEELHOUSE_TABLE}

    def lines(specs: Sequence[str]) -> list[str]:
        names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True))
        return [name + draw(st.sampled_from(specs)) for name in names]

    files["requirements/base.in"] = "\n".join(lines((*PCM_SPECS, "==1.0", "<3"))) + "\n"
    layers = ["base"]
    for label in draw(st.lists(st.sampled_from(("test", "dev", "docs")), max_size=2, unique=True)):
        under = draw(st.sampled_from(layers))
        files[f"requirements/{label}.in"] = "\n".join([f"-r {under}.in", *lines(PCM_SPECS)]) + "\n"
        layers.append(label)
    options: list[str] = []
    for label in layers:
        if draw(st.integers(0, 2)) == 0:
            options.append(f"--generate-hashes={label}.in")
    if draw(st.booleans()):
        options.append("--allow-unsafe")
        # Declared, as docs/configuration.md asks: the outputs show it only once an
        # unsafe package is pinned.
        files["pyproject.toml"] += '[tool.pinsync]\ncompile-args = ["--allow-unsafe"]\n'
    if draw(st.booleans()):
        options.append("--no-emit-find-links")
    compiles = tuple(
        Compile(f"requirements/{label}.in", f"requirements/{label}.txt", tuple(options), True)
        for label in layers
    )
    edit = None
    if draw(st.booleans()):
        label = draw(st.sampled_from(layers))
        edit = (f"requirements/{label}.in", "\n".join(lines(PCM_SPECS)))
    relock = draw(st.sampled_from(["lock", "lock --upgrade"]))
    return Tree(dists, late, tuple(sorted(files.items())), compiles, edit, relock, "pcm")


# --- the plain loops, as a user runs them ------------------------------------------------


def user_env(cache: Path, uv: bool = False) -> dict[str, str]:
    """The user's shell with no pip or uv configuration of this machine in it: a
    personal pip.conf or uv.toml would be the user's choice, not the repository's."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PIP_", "UV_")) and k not in ("CUSTOM_COMPILE_COMMAND", "PYTHONPATH")
    }
    env["PIP_CONFIG_FILE"] = os.devnull
    env["XDG_CACHE_HOME"] = str(cache)
    if uv:
        env["XDG_CONFIG_HOME"] = env["XDG_CONFIG_DIRS"] = str(cache / "no-config")
        # An activated venv: uv compiles for its interpreter, as pip-compile does.
        env["UV_PYTHON"] = sys.executable
    return env


def find_uv() -> str:
    """The uv installed beside this Python (pip install uv), else PATH's."""
    beside = Path(sys.executable).parent / "uv"
    found = str(beside) if beside.is_file() else shutil.which("uv")
    assert found, "uv is not installed"
    return found


def command(tree: Tree, step: Compile, upgrade: bool) -> list[str]:
    if tree.mode == "uv":
        head = [find_uv(), "pip", "compile", "--quiet"]
        paths = [step.src, "-o", step.out]
    else:
        head = [sys.executable, "-m", "piptools", "compile", "--quiet"]
        paths = [f"--output-file={step.out}", step.src]
    options = [*step.options, *(["--upgrade"] if upgrade else [])]
    return head + (options + paths if step.options_first else paths + options)


def plain_loop(root: Path, tree: Tree, cache: Path, upgrade: bool = False) -> bool:
    """Every source compiled in dependency order, `set -e`-style; whether all succeeded."""
    if tree.mode == "pcm":
        argv = [
            *(sys.executable, "-m", "pipcompilemulti.cli_v1"),
            "--upgrade" if upgrade else "--no-upgrade",
            *tree.compiles[0].options,
        ]
        return _run(argv, root, user_env(cache)).returncode == 0
    for step in tree.compiles:
        proc = _run(command(tree, step, upgrade), root, user_env(cache, tree.mode == "uv"))
        if proc.returncode != 0:
            return False
    return True


def _run(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)


def pinsync(root: Path, args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(TOOLS), "XDG_CACHE_HOME": str(cache)}
    proc = _run([sys.executable, "-m", "pinsync", *args.split()], root, env)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


# --- comparing ---------------------------------------------------------------------------


def locks(root: Path, base: Path) -> dict[str, str]:
    """Every lock under the root, as text with newlines kept as written.

    pip-compile writes the `--find-links` of a lock it reads with `-c`/`-r` as an
    absolute path, so a lock names the checkout it was compiled in. The sides live
    in different checkouts (and pinsync keeps a fresh lock's bytes where a loop
    recompiles it in a moved checkout): any checkout under `base` reads `<root>`. A
    stage path would still show.
    """
    checkout = re.compile(re.escape(str(base)) + r"/[^/\s]+")
    out = {}
    for path in sorted(root.rglob("*.txt")):
        rel = path.relative_to(root).as_posix()
        if "wheels" in path.parts or rel.endswith("constraints.txt"):
            continue
        out[rel] = checkout.sub("<root>", path.read_bytes().decode())
    return out


def assert_same_locks(ours: Path, theirs: Path, what: str, tree: Tree) -> None:
    mine, plain = locks(ours, ours.parent), locks(theirs, theirs.parent)
    assert sorted(mine) == sorted(plain), (what, sorted(mine), sorted(plain))
    for name, text in plain.items():
        written = strip_stamp(mine[name])
        assert written == text, (what, name, mine[name], text)


@dataclass
class Sides:
    base: Path
    ours: Path
    theirs: Path

    def cache(self, side: str) -> Path:
        return self.base / f"cache-{side}"


def materialize(tree: Tree, tmp_path_factory: pytest.TempPathFactory) -> Sides:
    base = tmp_path_factory.mktemp("equivalence")
    template = base / "template"
    build_wheelhouse(tree.dists, template / "wheels")
    for name, text in tree.files:
        (template / name).parent.mkdir(parents=True, exist_ok=True)
        (template / name).write_bytes(text.encode())
    return Sides(base, base / "ours", base / "theirs")


def release_and_edit(root: Path, tree: Tree) -> None:
    """Newer releases appear in the wheelhouse, and maybe a source gains a line."""
    build_wheelhouse(tree.late, root / "wheels")
    if tree.edit is not None:
        path, line = tree.edit
        with (root / path).open("a") as fh:
            fh.write(line + "\n")


def other_checkout_refused(stderr: str, sides: Sides) -> bool:
    """Whether pinsync refused, by design, to have pip read a lock that names the
    first checkout's wheelhouse, which exists beside this one
    (test_a_lock_naming_a_second_work_tree_is_not_read_through); the plain loop
    reads it there."""
    refused = re.fullmatch(
        r"pinsync: error: \S+\.txt: \S+\.txt:\d+: --find-links (\S+)/wheels: another "
        r"checkout's directory, which pinsync does not read; relock \S+ first, or run "
        r"`lock --force`\n",
        stderr,
    )
    if refused is None:
        return False
    checkout = Path(refused.group(1))
    return checkout.parent == sides.base and checkout != sides.ours


def relock_and_compare(sides: Sides, tree: Tree) -> None:
    for root in (sides.ours, sides.theirs):
        release_and_edit(root, tree)
    relocked = pinsync(sides.ours, tree.relock, sides.cache("ours"))
    looped = plain_loop(sides.theirs, tree, sides.cache("theirs"), "--upgrade" in tree.relock)
    if looped and relocked.returncode == 2 and other_checkout_refused(relocked.stderr, sides):
        event("relock: refused: a lock names the other checkout's wheels")
        return
    assert (relocked.returncode == 0) == looped, (looped, relocked.stdout, relocked.stderr)
    event(f"relock ({tree.mode}): {'compared' if looped else 'both failed'}")
    if looped:
        assert_same_locks(sides.ours, sides.theirs, f"after `{tree.relock}`", tree)
    else:
        assert relocked.returncode == 2 and relocked.stderr.count("\n") == 1, relocked.stderr


# --- the properties -----------------------------------------------------------------------


@fuzz_settings("repo", 10)
@given(tree=pip_trees())
def test_lock_writes_what_a_plain_pip_compile_loop_writes(
    tree: Tree, tmp_path_factory: pytest.TempPathFactory
) -> None:
    count()
    sides = materialize(tree, tmp_path_factory)
    template = sides.base / "template"
    shutil.copytree(template, sides.theirs)
    looped = plain_loop(sides.theirs, tree, sides.cache("theirs"))
    if tree.mode == "header":
        event(f"first loop: {'ok' if looped else 'failed'}")
        # Options shown only by headers a plain loop wrote: pinsync adopts those locks,
        # in a checkout of its own.
        shutil.copytree(sides.theirs, sides.ours)
    else:
        shutil.copytree(template, sides.ours)
        locked = pinsync(sides.ours, "lock", sides.cache("ours"))
        assert (locked.returncode == 0) == looped, (looped, locked.stdout, locked.stderr)
        event(f"fresh lock: {'compared' if looped else 'both failed'}")
        if looped:
            assert_same_locks(sides.ours, sides.theirs, "fresh lock", tree)
        if tree.moved:
            sides.ours = Path(shutil.move(sides.ours, sides.base / "ours-elsewhere"))
    if looped:
        relock_and_compare(sides, tree)
    shutil.rmtree(sides.base)


def relock_what_the_plain_tool_wrote(
    tree: Tree, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The plain tool writes the locks; pinsync and the plain tool then relock copies."""
    sides = materialize(tree, tmp_path_factory)
    if not plain_loop(sides.base / "template", tree, sides.cache("first")):
        event("the first loop failed: nothing to relock")
        shutil.rmtree(sides.base)
        return
    shutil.copytree(sides.base / "template", sides.theirs)
    shutil.copytree(sides.base / "template", sides.ours)
    relock_and_compare(sides, tree)
    shutil.rmtree(sides.base)


@fuzz_settings("repo", 8)
@given(tree=uv_trees())
def test_lock_of_uv_locks_writes_what_a_plain_uv_loop_writes(
    tree: Tree, tmp_path_factory: pytest.TempPathFactory
) -> None:
    count()
    # The user's uv loop wrote the locks pinsync adopts: it creates only pip-compile ones.
    relock_what_the_plain_tool_wrote(tree, tmp_path_factory)


@fuzz_settings("repo", 4)
@given(tree=pcm_trees())
def test_lock_of_a_pcm_tree_writes_what_pip_compile_multi_writes(
    tree: Tree, tmp_path_factory: pytest.TempPathFactory
) -> None:
    count()
    relock_what_the_plain_tool_wrote(tree, tmp_path_factory)
