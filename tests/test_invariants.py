"""Promises held on generated repositories (Hypothesis), not only on the ones we drew.

Each example is a repository over a generated wheelhouse (a random dependency graph
of tiny wheels, some providing an extra): `.in` files that `-r` and `-c` one another,
with extras and markers (one that no environment meets); a `[tool.pinsync]` table
drawn within its documented keys (compile-args with hashes, a custom compile command,
layers-disagree, skip-sites, an output with two sources, an omitted package, and now
and then an unknown key); a Dockerfile stage or CI job that installs some locks
together; and pin sites written after the first lock: a Dockerfile's
`pip install NAME==VER`, through an ARG or ENV default, in a stage that a later
stage builds FROM; `[project] dependencies`, tox `deps`, a shell script and a CI
step. For each:

1. `lock` succeeds, or exits 2 with one line, no traceback, and no file changed (an
   unknown key always so);
2. after a successful `lock`, `check --offline` and `check --full` exit 0;
3. a second `lock` changes no byte;
4. nothing outside the root is written: a sentinel tree beside it stays as it was;
5. `bump NAME VER` fails in one line changing nothing, or moves every pin of NAME
   (lock lines, `.in` pins, every pin site but the kinds `skip-sites` names, which
   stay as they were) and `check --offline` then passes;
6. one edit after a lock (an `.in` pin, a lock line, a pin site, one of an image's
   locks recompiled alone) is reported by `check` at its file, line and kind, and a
   pin site of a skipped kind not at all;
7. a `lock` interrupted (SIGINT, SIGTERM) at any moment leaves each file as it was
   before the run or as the run would have written it, and no temporary file;
8. `../` paths and symlinks out of the root are refused in one line or ignored:
   nothing outside the root is read into a lock or written.

Examples are few and derandomized, so CI runs the same ones every time (a few
minutes in all); `nox -s fuzz` runs them at length (see tests/fuzz_profile.py). A
failing example shrinks to a repository small enough to read.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from bench.wheelhouse import Dist, build_wheelhouse
from conftest import PIP_TOOLS_TABLE, TOOLS
from fuzz_profile import count, fuzz_settings
from pinsync.toolchain import sealed_env

NAMES = ("alpha", "beta", "gamma", "delta", "eps")
# Only the files outside the root name it: a lock that pins it read one of them.
OUTSIDER = "zeta"
# The lock that two sources compile into (`[tool.pinsync.outputs."rall.txt"]`).
COMBINED = "rall.txt"
# Where each kind of pin site is written. The last four are `skip-sites` kinds of the
# same name; Dockerfile pins are always read.
SITE_FILES = {
    "docker": "Dockerfile",
    "docker-arg": "Dockerfile",
    "docker-env": "Dockerfile",
    "docker-stage": "Dockerfile",
    "pyproject": "pyproject.toml",
    "tox": "tox.ini",
    "script": "install.sh",
    "ci": ".github/workflows/ci.yml",
}
SKIPPABLE = ("pyproject", "tox", "script", "ci")


@dataclass(frozen=True)
class Site:
    """One pin written after the first lock: `line` installs NAME==VERSION, and
    `at` is the line the version literal is on (an ARG/ENV default, or `line`)."""

    kind: str
    file: str
    line: int
    at: int
    name: str
    version: str

    @property
    def finding(self) -> str:
        """The kind `check` reports it as when it parts from the locks."""
        return "dockerfile-pin" if self.file == "Dockerfile" else "pin-site"


@dataclass(frozen=True)
class Drawn:
    dists: tuple[Dist, ...]
    files: tuple[tuple[str, str], ...]
    # (kind, name) of the pins written after the first lock, at the version the locks
    # agree on (a pin that disagrees with the locks is drift).
    sites: tuple[tuple[str, str], ...] = ()
    # Locks a Dockerfile (or a CI job, when `in_ci`) installs together.
    together: tuple[str, ...] = ()
    in_ci: bool = False
    combined: tuple[str, ...] = ()  # the sources of COMBINED, if drawn
    skip: tuple[str, ...] = ()  # `skip-sites`
    unknown_key: bool = False
    pyproject: str = PIP_TOOLS_TABLE  # without the `[project]` table the sites add
    custom: bool = False  # `custom-compile-command` set
    compile_args: tuple[str, ...] = ()

    def versions(self, name: str) -> list[str]:
        return [d.version for d in self.dists if d.name == name]

    def sources_of(self, lock: str) -> list[str]:
        return list(self.combined) if lock == COMBINED else [lock.replace(".txt", ".in")]


def _requirement(draw: st.DrawFn, name: str, extras: bool) -> str:
    # Simplest first, so that an example shrinks to plain names.
    forms = [name, f"{name}>=1.0", f"{name}==1.0"]
    if extras:
        forms += [f"{name}[x]", f"{name}[x]==1.0"]
    forms += [
        f'{name} ; python_version >= "3"',
        f'{name}==1.0 ; python_version >= "3"',
        # A marker no environment meets: pip-compile drops the requirement.
        f'{name}==1.0 ; sys_platform == "nonexistent"',
    ]
    return draw(st.sampled_from(forms))


def _toml_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(f'"{v}"' for v in values) + "]"


@st.composite
def repositories(draw: st.DrawFn) -> Drawn:
    # A wheelhouse: each name in one or two versions, depending only on later names
    # (no cycles), with ranges that some versions satisfy; a name may provide an
    # extra `x` that pulls in one more later name.
    dists = []
    with_extra = set()
    for i, name in enumerate(NAMES):
        later = NAMES[i + 1 :]
        extra: str | None = None
        if len(later) > 0 and draw(st.booleans()):
            extra = draw(st.sampled_from(later))
            with_extra.add(name)
        for version in draw(st.sampled_from([("1.0",), ("1.0", "2.0")])):
            deps = draw(st.lists(st.sampled_from(later or ("",)), max_size=2, unique=True))
            requires = tuple(f"{d}>=1.0" if draw(st.booleans()) else d for d in deps if d)
            extras = (("x", (extra,)),) if extra else ()
            dists.append(Dist(name, version, requires, extras))
    dists.append(Dist(OUTSIDER, "1.0"))
    n = draw(st.integers(min_value=1, max_value=4))
    files: dict[str, str] = {}
    constrained = set()
    required: set[str] = set()
    for k in range(n):
        names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True))
        required.update(names)
        lines = [_requirement(draw, name, name in with_extra) for name in names]
        if k > 0 and draw(st.booleans()):
            other = draw(st.integers(min_value=0, max_value=k - 1))
            how = draw(st.sampled_from(["-r", "-c"]))
            target = f"r{other}.in" if how == "-r" else f"r{other}.txt"
            if how == "-c":
                constrained.add(other)
            lines.insert(0, f"{how} {target}")
        files[f"r{k}.in"] = "\n".join(lines) + "\n"
    # [tool.pinsync], within its documented keys (docs/configuration.md) that make
    # sense offline against a find-links wheelhouse.
    table = []
    hashes, unsafe = "--generate-hashes", "--allow-unsafe"
    options = draw(st.sampled_from([(), (hashes,), (unsafe,), (hashes, unsafe)]))
    if options:
        table.append(f"compile-args = {_toml_list(options)}")
    custom = draw(st.booleans())
    if custom:
        table.append('custom-compile-command = "make lock"')
    layers = draw(st.sampled_from(["off", "warning", "error"]))
    if layers != "off":
        table.append(f'layers-disagree = "{layers}"')
    skip = tuple(draw(st.lists(st.sampled_from(SKIPPABLE), max_size=2, unique=True)))
    if skip:
        table.append(f"skip-sites = {_toml_list(skip)}")
    # A key pinsync does not know (a typo of compile-args): an error by design.
    unknown_key = draw(st.integers(min_value=0, max_value=9)) == 9
    if unknown_key:
        table.append('compile_args = ["--generate-hashes"]')
    outputs = []
    # Two sources compiled into one lock; the sources then get no lock of their own.
    combined: tuple[str, ...] = ()
    free = [k for k in range(n) if k not in constrained]  # a `-c rK.txt` needs rK.txt
    if len(free) >= 2 and draw(st.booleans()):
        pair = draw(st.lists(st.sampled_from(free), min_size=2, max_size=2, unique=True))
        combined = tuple(f"r{k}.in" for k in sorted(pair))
        args = draw(st.sampled_from([None, (), ("--generate-hashes",)]))
        outputs.append(f'[tool.pinsync.outputs."{COMBINED}"]\ninputs = {_toml_list(combined)}')
        if args is not None:
            outputs[-1] += f"\ncompile-args = {_toml_list(args)}"
    locks = [f"r{k}.txt" for k in range(n) if f"r{k}.in" not in combined]
    if draw(st.booleans()):
        # Packages stripped from one lock after compiling (Open edX's `sed`).
        lock = draw(st.sampled_from(locks + ([COMBINED] if combined else [])))
        omit = draw(st.sampled_from(NAMES))
        if lock == COMBINED:
            outputs[0] += f'\nomit = ["{omit}"]'
        else:
            outputs.append(f'[tool.pinsync.outputs."{lock}"]\nomit = ["{omit}"]')
    if combined:
        locks.append(COMBINED)
    sites = tuple(
        draw(
            st.lists(
                # Names a source requires, which its lock likely pins: a site of a
                # name no lock pins is not written.
                st.tuples(st.sampled_from(list(SITE_FILES)), st.sampled_from(sorted(required))),
                min_size=1,  # what the issue is about: shrinks to one site, not none
                max_size=3,
                unique=True,
            )
        )
    )
    pyproject = PIP_TOOLS_TABLE
    if table:
        pyproject += "\n[tool.pinsync]\n" + "\n".join(table) + "\n"
    for output in outputs:
        pyproject += "\n" + output + "\n"
    files["pyproject.toml"] = pyproject  # site_files adds `[project]` when drawn
    together = tuple(draw(st.lists(st.sampled_from(locks), max_size=2, unique=True)))
    in_ci = bool(together) and draw(st.booleans())
    drawn = Drawn(tuple(dists), (), sites, together, in_ci, combined, skip, unknown_key)
    drawn = replace(drawn, pyproject=pyproject, custom=custom, compile_args=options)
    # Before the first lock the site files hold no pin (no version is known yet).
    files.update(site_files(drawn, {}, pyproject)[0])
    return replace(drawn, files=tuple(sorted(files.items())))


def _project(pins: Sequence[str]) -> str:
    deps = "".join(f'    "{p}",\n' for p in pins)
    return f'\n[project]\nname = "generated"\nversion = "0"\ndependencies = [\n{deps}]\n'


def site_files(
    drawn: Drawn, versions: Mapping[str, str], pyproject: str = ""
) -> tuple[dict[str, str], list[Site]]:
    """The files that hold `drawn.sites` and the locks installed together, with a pin
    for each site whose name `versions` has (before the first lock: none), and the
    sites written. `pyproject` is the repository's pyproject.toml without `[project]`."""
    files: dict[str, list[str]] = {}
    sites: list[Site] = []

    def pins(kind: str) -> list[tuple[str, str]]:
        return [(n, versions[n]) for k, n in drawn.sites if k == kind and n in versions]

    def add(kind: str, text: str, name: str, version: str, define: str = "") -> None:
        file = SITE_FILES[kind]
        lines = files[file]
        if define:
            lines.append(define)
        lines.append(text)
        at = len(lines) - (1 if define else 0)
        sites.append(Site(kind, file, len(lines), at, name, version))

    kinds = {k for k, _ in drawn.sites}
    if (drawn.together and not drawn.in_ci) or kinds & {k for k in SITE_FILES if "docker" in k}:
        files["Dockerfile"] = []
        # A multi-stage build: the image installs its locks in a stage built FROM one
        # that pins.
        if "docker-stage" in kinds:
            files["Dockerfile"].append("FROM python:3.11 AS base")
            for name, version in pins("docker-stage"):
                add("docker-stage", f"RUN pip install {name}=={version}", name, version)
            files["Dockerfile"].append("FROM base AS app")
        else:
            files["Dockerfile"].append("FROM python:3.11")
        files["Dockerfile"].append("COPY . .")
        if not drawn.in_ci:
            files["Dockerfile"] += [f"RUN pip install -r {lock}" for lock in drawn.together]
        for name, version in pins("docker-arg"):
            var = f"{name.upper()}_VERSION"
            run = f"RUN pip install {name}==${{{var}}}"
            add("docker-arg", run, name, version, define=f"ARG {var}={version}")
        for name, version in pins("docker-env"):
            var = f"{name.upper()}_PIN"
            run = f"RUN pip install {name}==${{{var}}}"
            add("docker-env", run, name, version, define=f"ENV {var}={version}")
        for name, version in pins("docker"):
            add("docker", f"RUN pip install {name}=={version}", name, version)
    ci = ".github/workflows/ci.yml"
    if drawn.in_ci or pins("ci"):
        files[ci] = ["jobs:", "  test:", "    steps:"]
        if drawn.in_ci:
            files[ci] += [f"      - run: pip install -r {lock}" for lock in drawn.together]
        for name, version in pins("ci"):
            add("ci", f"      - run: pip install {name}=={version}", name, version)
    if pins("tox"):
        files["tox.ini"] = ["[testenv]", "deps ="]
        for name, version in pins("tox"):
            add("tox", f"    {name}=={version}", name, version)
    if pins("script"):
        files["install.sh"] = ["#!/bin/sh", "set -e"]
        for name, version in pins("script"):
            add("script", f"pip install {name}=={version}", name, version)
    out = {file: "\n".join(lines) + "\n" for file, lines in files.items()}
    if "pyproject" in kinds:
        # `[project] dependencies`, one pin a line.
        written = pins("pyproject")
        text = pyproject + _project([f"{n}=={v}" for n, v in written])
        first = text.count("\n") - len(written)  # the closing `]` is the last line
        for k, (name, version) in enumerate(written):
            sites.append(Site("pyproject", "pyproject.toml", first + k, first + k, name, version))
        out["pyproject.toml"] = text
    return out, sites


# --- driving a repository --------------------------------------------------------------


def run(
    root: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pinsync", *args],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(TOOLS), **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink() and "wheels" not in p.parts
    }


def tree(where: Path) -> dict[str, bytes | str]:
    """Every entry under `where`, symlinks as their target, without following them."""
    out: dict[str, bytes | str] = {}
    for p in sorted(where.rglob("*")):
        key = p.relative_to(where).as_posix()
        if p.is_symlink():
            out[key] = "-> " + os.readlink(p)
        elif p.is_file():
            out[key] = p.read_bytes()
        else:
            out[key] = "dir"
    return out


@dataclass
class Materialized:
    base: Path
    root: Path
    sentinel: Path
    sentinel_before: dict[str, bytes | str]
    sites: list[Site] = field(default_factory=list)  # written by `locked`


def materialize(drawn: Drawn, tmp_path_factory: pytest.TempPathFactory) -> Materialized:
    """The repository of `drawn` on disk, with a sentinel tree beside it."""
    base = tmp_path_factory.mktemp("generated")
    root, sentinel = base / "repo", base / "sentinel"
    (sentinel / "reqs").mkdir(parents=True)
    (sentinel / "keep.txt").write_text("untouched\n")
    # What the hostile paths of property 8 point at: all of it names OUTSIDER only.
    (sentinel / "outside.in").write_text(f"{OUTSIDER}\n")
    (sentinel / "outside.txt").write_text(f"{OUTSIDER}==1.0\n")
    (sentinel / "reqs" / "x.in").write_text(f"{OUTSIDER}\n")
    build_wheelhouse(drawn.dists, root / "wheels")
    for name, text in drawn.files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return Materialized(base, root, sentinel, tree(sentinel))


def assert_outside_untouched(m: Materialized) -> None:
    assert tree(m.sentinel) == m.sentinel_before


def assert_one_line_failure(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("pinsync: error: "), proc.stderr


# A lock line, with its extras and a marker kept: `alpha[x]==1.0 ; python_version >= "3"`.
_PIN = re.compile(r"^([A-Za-z0-9._-]+)(?:\[[^\]]*\])?==([^\s;\\]+)", re.MULTILINE)


def lock_pins(root: Path) -> dict[str, dict[str, tuple[str, int]]]:
    """{lock: {name: (version, line)}} of every `.txt` lock at the root."""
    out: dict[str, dict[str, tuple[str, int]]] = {}
    for path in sorted(root.glob("r*.txt")):
        text = path.read_text()
        out[path.name] = {
            m.group(1): (m.group(2), text.count("\n", 0, m.start()) + 1)
            for m in _PIN.finditer(text)
        }
    return out


def add_pins(root: Path, drawn: Drawn) -> list[Site]:
    """Write the drawn pin sites, each at the version the locks agree on (names they
    disagree on, or do not pin, get none); return the sites written."""
    pins = lock_pins(root)
    agreed = {}
    for name in NAMES:
        versions = {p[name][0] for p in pins.values() if name in p}
        if len(versions) == 1:
            agreed[name] = versions.pop()
    files, sites = site_files(drawn, agreed, drawn.pyproject)
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return sites


def findings(root: Path, *args: str) -> tuple[int, list[dict[str, object]]]:
    proc = run(root, "check", "--format", "json", *args)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout)["findings"]


def has_finding(
    found: list[dict[str, object]],
    file: str,
    kind: str,
    package: str | None = None,
    line: int | None = None,
) -> bool:
    return any(
        f["file"] == file
        and f["kind"] == kind
        and (package is None or f["package"] == package)
        and (line is None or f["line"] == line)
        for f in found
    )


def locked(drawn: Drawn, tmp_path_factory: pytest.TempPathFactory) -> Materialized | None:
    """The repository of `drawn`, locked, with its pin sites; None when no lock is
    possible (property 1 covers that case)."""
    m = materialize(drawn, tmp_path_factory)
    code = run(m.root, "lock").returncode
    event("lock exit", code)
    if code != 0:
        shutil.rmtree(m.base)
        return None
    m.sites = add_pins(m.root, drawn)
    event("pin sites written", len(m.sites))
    return m


# --- 1 to 4 ----------------------------------------------------------------------------


@fuzz_settings("repo", 20)
@given(drawn=repositories())
def test_lock_then_check_on_generated_repositories(
    drawn: Drawn, tmp_path_factory: pytest.TempPathFactory
) -> None:
    count()
    m = materialize(drawn, tmp_path_factory)
    root = m.root
    before = snapshot(root)
    locked_run = run(root, "lock")
    assert "Traceback" not in locked_run.stderr, locked_run.stderr
    # How many drawn repositories lock at all (pytest --hypothesis-show-statistics).
    event("lock exit", locked_run.returncode)
    if drawn.unknown_key:
        # 1. An unknown key of [tool.pinsync] is an error by design, named in one line.
        assert "unknown key 'compile_args'" in locked_run.stderr, locked_run.stderr
    if locked_run.returncode != 0:
        # 1. A failure is one line and changes nothing.
        assert_one_line_failure(locked_run)
        assert snapshot(root) == before
    else:
        add_pins(root, drawn)
        # 2. What lock wrote, check accepts, offline and fully re-resolved.
        for args in (("--offline",), ("--full",)):
            checked = run(root, "check", *args)
            assert checked.returncode == 0, (args, checked.stdout, checked.stderr)
        # 3. A second lock changes no byte.
        after = snapshot(root)
        again = run(root, "lock")
        assert again.returncode == 0 and snapshot(root) == after, again.stdout
    # 4. Nothing outside the root was touched.
    assert_outside_untouched(m)
    shutil.rmtree(m.base)


# --- 5. bump ---------------------------------------------------------------------------


def pin_sites(root: Path, name: str, skip: Sequence[str] = ()) -> list[tuple[str, int, str]]:
    """(file, line, version) of every exact pin of `name`: lock lines, `.in` pins, and
    the pin sites (a Dockerfile's `pip install`, ARG and ENV defaults, pyproject, tox,
    script and CI pins) of kinds not in `skip`."""
    paths = [*root.glob("r*.in"), *root.glob("r*.txt")]
    paths += [root / f for k, f in SITE_FILES.items() if k not in skip]
    variable = rf"^(?:ARG|ENV) {name.upper()}_(?:VERSION|PIN)=(\S+)"
    sites = []
    for path in sorted(set(paths)):
        if not path.is_file():
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for m in re.finditer(rf'(?:^|[\s"]){name}(?:\[[^\]]*\])?==([^\s;"\\$]+)', line):
                sites.append((path.relative_to(root).as_posix(), number, m.group(1)))
            for m in re.finditer(variable, line):
                sites.append((path.relative_to(root).as_posix(), number, m.group(1)))
    return sites


@fuzz_settings("repo", 8)
@given(drawn=repositories(), data=st.data())
def test_bump_moves_every_pin_or_changes_nothing(
    drawn: Drawn, data: st.DataObject, tmp_path_factory: pytest.TempPathFactory
) -> None:
    count()
    m = locked(drawn, tmp_path_factory)
    if m is None:
        return
    name = data.draw(st.sampled_from(NAMES), label="name")
    version = data.draw(st.sampled_from(["1.0", "2.0", "3.0"]), label="version")
    before = snapshot(m.root)
    bumped = run(m.root, "bump", name, version)
    assert "Traceback" not in bumped.stderr, bumped.stderr
    if bumped.returncode != 0:
        assert_one_line_failure(bumped)
        assert snapshot(m.root) == before
    else:
        assert version in drawn.versions(name), bumped.stdout
        sites = pin_sites(m.root, name, drawn.skip)
        assert sites, bumped.stdout  # it pinned the name somewhere, or it had failed
        assert [s for s in sites if s[2] != version] == [], bumped.stdout
        # A kind of site `skip-sites` names is not read, so not moved either.
        for kind in drawn.skip:
            skipped = SITE_FILES[kind]
            assert snapshot(m.root).get(skipped) == before.get(skipped), (skipped, bumped.stdout)
        checked = run(m.root, "check", "--offline")
        assert checked.returncode == 0, (checked.stdout, checked.stderr)
    assert_outside_untouched(m)
    shutil.rmtree(m.base)


# --- 6. one edit, one finding ------------------------------------------------------------

# Hypothesis draws the first of a list most often: the pin sites, then the rest.
EDITS = ("site-pin", "in-pin", "lock-line", "alone")


def _other(drawn: Drawn, name: str, version: str) -> str | None:
    others = [v for v in drawn.versions(name) if v != version]
    return others[0] if others else None


def _moved(drawn: Drawn, name: str, version: str) -> str:
    """Another version for a hand edit: one the wheelhouse has, else one it lacks
    (a typo, a release not yet mirrored), which is drift all the same."""
    return _other(drawn, name, version) or "9.0"


def _installers(root: Path) -> dict[str, tuple[str, list[tuple[str, int]]]]:
    """{file: (kind, [(lock, line)])} of what installs two locks or more together."""
    out: dict[str, tuple[str, list[tuple[str, int]]]] = {}
    for rel in ("Dockerfile", ".github/workflows/ci.yml"):
        path = root / rel
        if not path.is_file():
            continue
        installs = [
            (m.group(1), number)
            for number, line in enumerate(path.read_text().splitlines(), 1)
            for m in [re.search(r"pip install -r (r\w+\.txt)", line)]
            if m
        ]
        if len(installs) >= 2:
            out[rel] = ("ci" if rel.endswith(".yml") else "dockerfile", installs)
    return out


@fuzz_settings("repo", 10)
@given(drawn=repositories(), data=st.data())
def test_one_edit_after_a_lock_is_reported_where_it_is(
    drawn: Drawn, data: st.DataObject, tmp_path_factory: pytest.TempPathFactory
) -> None:
    count()
    m = locked(drawn, tmp_path_factory)
    if m is None:
        return
    root = m.root
    pins = lock_pins(root)
    # What each kind of edit can move in this repository; only kinds that can move
    # something are drawn, so that no example is spent on nothing.
    candidates = [
        (path.name, number, mm.group(1), mm.group(2))
        for path in sorted(root.glob("r*.in"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        for mm in [re.fullmatch(r"(\w+)(?:\[\w+\])?==([\d.]+)(?: ;.*)?", line)]
        if mm and _other(drawn, mm.group(1), mm.group(2))
    ]
    lock_lines = [
        (lock, name, version, line)
        for lock, by_name in pins.items()
        for name, (version, line) in by_name.items()
        if name != OUTSIDER
    ]
    sites = m.sites
    installers = _installers(root)
    possible = (sites, candidates, lock_lines, installers)
    edits = [kind for kind, found in zip(EDITS, possible, strict=True) if found]
    if not edits:
        shutil.rmtree(m.base)
        return
    kind = data.draw(st.sampled_from(edits), label="edit")
    event("edit", kind)
    if kind == "in-pin":
        # (a) `NAME==V` in an .in (extras and marker kept) moved to another existing
        # version: each lock compiled from that .in is stale, at its pin of NAME.
        source, number, name, version = data.draw(st.sampled_from(candidates), label="pin")
        path = root / source
        lines = path.read_text().splitlines()
        dropped = "nonexistent" in lines[number - 1]  # pip-compile drops the requirement
        lines[number - 1] = lines[number - 1].replace(
            f"=={version}", f"=={_other(drawn, name, version)}", 1
        )
        path.write_text("\n".join(lines) + "\n")
        code, found = findings(root, "--offline")
        assert code == 1, found
        for lock in pins:
            if source not in drawn.sources_of(lock):
                continue
            if dropped or name not in pins[lock]:
                # Nothing the lock pins moved (the marker drops the requirement, or
                # `omit` strips it), but its stamp covers its inputs.
                assert has_finding(found, lock, "out-of-date"), (lock, found)
            else:
                assert has_finding(found, lock, "stale-lock", name, pins[lock][name][1]), (
                    lock,
                    found,
                )
    elif kind == "lock-line":
        # (b) A lock line's version edited by hand: its stamp no longer matches.
        lock, name, version, at = data.draw(st.sampled_from(lock_lines), label="line")
        path = root / lock
        kept = path.read_text().splitlines(keepends=True)
        # After the name its extras, if any: `alpha[x]==1.0`.
        kept[at - 1] = kept[at - 1].replace(f"=={version}", f"=={_moved(drawn, name, version)}", 1)
        path.write_text("".join(kept))
        code, found = findings(root, "--offline")
        assert code == 1, found
        assert has_finding(found, lock, "out-of-date"), found
    elif kind == "site-pin":
        # (c) A pin site's version moved (a Dockerfile's `pip install`, its ARG or ENV
        # default, pyproject, tox, a script, a CI step): it no longer matches the
        # locks, and is reported at the install, unless `skip-sites` turned it off.
        site = data.draw(st.sampled_from(sites), label="site")
        path = root / site.file
        lines = path.read_text().splitlines()
        text = lines[site.at - 1]
        cut = text.rindex(site.version)
        new = _moved(drawn, site.name, site.version)
        lines[site.at - 1] = f"{text[:cut]}{new}{text[cut + len(site.version) :]}"
        path.write_text("\n".join(lines) + "\n")
        code, found = findings(root, "--offline")
        # A pin in the environment that installs the locks together is judged by
        # those locks alone; where all of them leave the package out (`omit`), they
        # say nothing about it, and no finding is owed (found by seed 2032).
        installer = ".github/workflows/ci.yml" if drawn.in_ci else "Dockerfile"
        judges = drawn.together if drawn.together and site.file == installer else tuple(pins)
        if site.kind in drawn.skip:
            assert code == 0 and not [f for f in found if f["file"] == site.file], found
        elif not any(site.name in pins.get(lock, {}) for lock in judges):
            event("site-pin: no installed lock pins it")
        else:
            assert code == 1, found
            assert has_finding(found, site.file, site.finding, site.name, site.line), found
    else:
        # (d) One of the locks an image installs together recompiled alone, by plain
        # pip-compile: where it now parts from another, the image installs a conflict.
        where = data.draw(st.sampled_from(sorted(installers)), label="installer")
        installs = installers[where][1]
        alone, _ = data.draw(st.sampled_from(installs), label="alone")
        subprocess.run(
            [
                *(sys.executable, "-m", "piptools", "compile", "--quiet", "--upgrade"),
                *(f"--output-file={alone}", *drawn.sources_of(alone)),
            ],
            cwd=root,
            env=sealed_env(os.environ, None),
            check=True,
            capture_output=True,
        )
        now = lock_pins(root)
        conflicts = {
            name
            for other, _ in installs
            if other != alone
            for name, (version, _) in now[other].items()
            if name in now[alone] and now[alone][name][0] != version
        }
        code, found = findings(root, "--offline")
        install_lines = {line for _, line in installs}
        for name in conflicts:
            assert any(
                f["file"] == where
                and f["kind"] == "co-installed-conflict"
                and f["package"] == name
                and f["line"] in install_lines
                for f in found
            ), (name, found)
        if conflicts:
            assert code == 1, found
        else:
            assert not has_finding(found, where, "co-installed-conflict"), found
    assert_outside_untouched(m)
    shutil.rmtree(m.base)


# --- 7. interrupted ------------------------------------------------------------------------


@fuzz_settings("repo", 6)
@given(
    drawn=repositories(),
    delay=st.integers(min_value=0, max_value=25).map(lambda t: t / 10),
    signum=st.sampled_from([signal.SIGINT, signal.SIGTERM]),
)
def test_an_interrupted_lock_leaves_whole_files_and_no_temporaries(
    drawn: Drawn,
    delay: float,
    signum: signal.Signals,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    count()
    m = materialize(drawn, tmp_path_factory)
    root = m.root
    before = snapshot(root)
    if run(root, "lock").returncode != 0:
        shutil.rmtree(m.base)
        return
    after = snapshot(root)
    for name in after:  # back to the state before the first lock
        if name not in before:
            (root / name).unlink()
    for name, data in before.items():
        (root / name).write_bytes(data)
    tmpdir = m.base / "tmp"
    tmpdir.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pinsync", "lock"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(TOOLS), "TMPDIR": str(tmpdir)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    time.sleep(delay)
    try:
        if signum == signal.SIGINT:
            os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C: the whole group
        else:
            os.kill(proc.pid, signal.SIGTERM)  # CI cancelling the job
    except ProcessLookupError:
        pass
    _, err = proc.communicate(timeout=120)
    now = snapshot(root)
    if proc.returncode in (0, 130):  # done before the signal, or interrupted
        assert "Traceback" not in err, err
    else:
        # Killed before pinsync installed its handlers (-2, -15), or Python itself
        # interrupted while starting ("Fatal Python error: init_sys_streams", "Could
        # not import runpy module"): before any code of pinsync ran.
        assert proc.returncode in (-signal.SIGINT, -signal.SIGTERM) or (
            "KeyboardInterrupt" in err or "Fatal Python error" in err
        ), err
        # A traceback only from inside Python's import of the package itself, before
        # __main__ can catch anything (test_ctrl_c_while_pinsync_starts_is_one_line).
        assert "/pinsync/" not in err or "<frozen importlib._bootstrap>" in err, err
        # Killed before it began, or after it finished: Python gives the signals their
        # default handlers back as it exits, so a late signal kills a finished run.
        assert now in (before, after), err
    for name in sorted(set(before) | set(after) | set(now)):
        assert now.get(name) in (before.get(name), after.get(name)), name
    # Only the run lock (stage.one_run_at_a_time) stays: no stage, no compile files,
    # and none of pip's own temporaries (compiles are stopped with SIGINT first).
    leftovers = [p.name for p in tmpdir.iterdir() if not re.fullmatch(r"pinsync-\w+\.lock", p.name)]
    assert leftovers == [], leftovers
    assert not [p for p in root.rglob("*") if "pinsync-tmp" in p.name or ".tmp" in p.name]
    assert_outside_untouched(m)
    shutil.rmtree(m.base)


# --- 8. ../ and symlinks out of the root ----------------------------------------------------

HOSTILE = (
    "include-parent",  # -r ../sentinel/outside.in in an .in
    "constrain-parent",  # -c ../sentinel/outside.txt in an .in
    "linked-dir",  # reqs -> ../sentinel/reqs, holding x.in
    "linked-in",  # linked.in -> ../sentinel/outside.in
    "linked-lock",  # r0.txt -> ../sentinel/outside.txt
    "linked-absolute",  # abs.in -> /etc/hostname
    "docker-parent",  # RUN pip install -r ../sentinel/outside.txt
    "find-links-parent",  # --find-links ../sentinel in an .in
)


@fuzz_settings("repo", 8)
@given(
    drawn=repositories(),
    hostile=st.lists(st.sampled_from(HOSTILE), min_size=1, max_size=3, unique=True),
)
def test_paths_out_of_the_root_are_refused_or_ignored(
    drawn: Drawn, hostile: list[str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    count()
    m = materialize(drawn, tmp_path_factory)
    root = m.root
    first = root / "r0.in"
    for what in hostile:
        if what == "include-parent":
            first.write_text(first.read_text() + "-r ../sentinel/outside.in\n")
        elif what == "constrain-parent":
            first.write_text(first.read_text() + "-c ../sentinel/outside.txt\n")
        elif what == "linked-dir":
            (root / "reqs").symlink_to("../sentinel/reqs", target_is_directory=True)
        elif what == "linked-in":
            (root / "linked.in").symlink_to("../sentinel/outside.in")
        elif what == "linked-lock":
            (root / "r0.txt").symlink_to("../sentinel/outside.txt")
        elif what == "linked-absolute":
            (root / "abs.in").symlink_to("/etc/hostname")
        elif what == "docker-parent":
            dockerfile = root / "Dockerfile"
            text = dockerfile.read_text() if dockerfile.is_file() else "FROM python:3.11\n"
            dockerfile.write_text(text + "RUN pip install -r ../sentinel/outside.txt\n")
        else:
            first.write_text("--find-links ../sentinel\n" + first.read_text())
    before = tree(root)
    locked_run = run(root, "lock")
    assert "Traceback" not in locked_run.stderr, locked_run.stderr
    if locked_run.returncode != 0:
        assert_one_line_failure(locked_run)
        assert tree(root) == before
    else:
        for lock in root.rglob("*.txt"):
            if not lock.is_symlink() and "wheels" not in lock.parts:
                assert OUTSIDER not in lock.read_text(), lock
                # Known open: an .in's `--find-links ../DIR` is compiled, and kept
                # (test_a_find_links_out_of_the_root_in_a_source_is_refused).
                text = lock.read_text().replace("--find-links ../sentinel\n", "")
                assert "sentinel" not in text, lock
        checked = run(root, "check", "--offline")
        assert "Traceback" not in checked.stderr, checked.stderr
        if checked.returncode == 2:
            assert_one_line_failure(checked)
    assert_outside_untouched(m)
    shutil.rmtree(m.base)
