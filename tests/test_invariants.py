"""Promises held on generated repositories (Hypothesis), not only on the ones we drew.

Each example is a repository over a generated wheelhouse (a random dependency graph
of tiny wheels): `.in` files that `-r` and `-c` one another, options, a Dockerfile
stage or CI job that installs some locks together, and `pip install NAME==VER` pins in
a Dockerfile. For each:

1. `lock` succeeds, or exits 2 with one line, no traceback, and no file changed;
2. after a successful `lock`, `check --offline` and `check --full` exit 0;
3. a second `lock` changes no byte;
4. nothing outside the root is written: a sentinel tree beside it stays as it was;
5. `bump NAME VER` fails in one line changing nothing, or moves every pin of NAME
   (lock lines, `.in` pins, Dockerfile pins) and `check --offline` then passes;
6. one edit after a lock (an `.in` pin, a lock line, a Dockerfile pin, one of an
   image's locks recompiled alone) is reported by `check` at its file, line and kind;
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
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.wheelhouse import Dist, build_wheelhouse
from conftest import PIP_TOOLS_TABLE, TOOLS
from fuzz_profile import count, fuzz_settings
from pinsync.compiler import sealed_env

NAMES = ("alpha", "beta", "gamma", "delta", "eps")
# Only the files outside the root name it: a lock that pins it read one of them.
OUTSIDER = "zeta"


@dataclass(frozen=True)
class Drawn:
    dists: tuple[Dist, ...]
    files: tuple[tuple[str, str], ...]
    # Names pinned by `RUN pip install NAME==VER` after the first lock, at the version
    # the locks pin (a Dockerfile pin that disagrees with the locks is drift).
    docker_pins: tuple[str, ...] = ()

    def versions(self, name: str) -> list[str]:
        return [d.version for d in self.dists if d.name == name]


@st.composite
def repositories(draw: st.DrawFn) -> Drawn:
    # A wheelhouse: each name in one or two versions, depending only on later names
    # (no cycles), with ranges that some versions satisfy.
    dists = []
    for i, name in enumerate(NAMES):
        for version in draw(st.sampled_from([("1.0",), ("1.0", "2.0")])):
            deps = draw(st.lists(st.sampled_from(NAMES[i + 1 :] or ("",)), max_size=2, unique=True))
            requires = tuple(f"{d}>=1.0" if draw(st.booleans()) else d for d in deps if d)
            dists.append(Dist(name, version, requires))
    dists.append(Dist(OUTSIDER, "1.0"))
    n = draw(st.integers(min_value=1, max_value=4))
    files: dict[str, str] = {}
    for k in range(n):
        lines = [
            draw(st.sampled_from([name, f"{name}>=1.0", f"{name}==1.0"]))
            for name in draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True))
        ]
        if k > 0 and draw(st.booleans()):
            other = draw(st.integers(min_value=0, max_value=k - 1))
            how = draw(st.sampled_from(["-r", "-c"]))
            target = f"r{other}.in" if how == "-r" else f"r{other}.txt"
            lines.insert(0, f"{how} {target}")
        files[f"r{k}.in"] = "\n".join(lines) + "\n"
    options = draw(st.sampled_from(["", "--generate-hashes", "--allow-unsafe"]))
    table = PIP_TOOLS_TABLE + (f'[tool.pinsync]\ncompile-args = ["{options}"]\n' if options else "")
    files["pyproject.toml"] = table
    together = draw(st.lists(st.integers(min_value=0, max_value=n - 1), max_size=2, unique=True))
    if together:
        installs = "".join(f"RUN pip install -r r{i}.txt\n" for i in together)
        where = draw(st.sampled_from(["Dockerfile", "ci"]))
        if where == "Dockerfile":
            files["Dockerfile"] = "FROM python:3.11\nCOPY . .\n" + installs
        else:
            steps = "".join(f"      - run: pip install -r r{i}.txt\n" for i in together)
            files[".github/workflows/ci.yml"] = "jobs:\n  test:\n    steps:\n" + steps
    docker_pins = tuple(draw(st.lists(st.sampled_from(NAMES), max_size=2, unique=True)))
    return Drawn(tuple(dists), tuple(sorted(files.items())), docker_pins)


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


_PIN = re.compile(r"^([A-Za-z0-9._-]+)==(\S+)", re.MULTILINE)


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


def docker_file(root: Path) -> Path:
    return root / "Dockerfile" if (root / "Dockerfile").is_file() else root / "Dockerfile.tool"


def add_docker_pins(root: Path, drawn: Drawn) -> dict[str, tuple[str, int]]:
    """Write `RUN pip install NAME==VER` for the drawn names the locks agree on; return
    {name: (version, line)} of the pins written."""
    pins = lock_pins(root)
    written: dict[str, tuple[str, int]] = {}
    target = docker_file(root)
    text = target.read_text() if target.is_file() else "FROM python:3.11\n"
    for name in drawn.docker_pins:
        versions = {p[name][0] for p in pins.values() if name in p}
        if len(versions) != 1:
            continue
        (version,) = versions
        text += f"RUN pip install {name}=={version}\n"
        written[name] = (version, text.count("\n"))
    if written:
        target.write_text(text)
    return written


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
    """The repository of `drawn`, locked, with its Dockerfile pins; None when no lock
    is possible (property 1 covers that case)."""
    m = materialize(drawn, tmp_path_factory)
    if run(m.root, "lock").returncode != 0:
        shutil.rmtree(m.base)
        return None
    add_docker_pins(m.root, drawn)
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
    if locked_run.returncode != 0:
        # 1. A failure is one line and changes nothing.
        assert_one_line_failure(locked_run)
        assert snapshot(root) == before
    else:
        add_docker_pins(root, drawn)
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


def pin_sites(root: Path, name: str) -> list[tuple[str, int, str]]:
    """(file, line, version) of every exact pin of `name`: lock lines, `.in` pins and
    Dockerfile `pip install` pins."""
    sites = []
    for path in sorted([*root.glob("r*.in"), *root.glob("r*.txt"), *root.glob("Dockerfile*")]):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for m in re.finditer(rf"(?:^|\s){name}==(\S+)", line):
                sites.append((path.name, number, m.group(1)))
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
        sites = pin_sites(m.root, name)
        assert sites, bumped.stdout  # it pinned the name somewhere, or it had failed
        assert [s for s in sites if s[2] != version] == [], bumped.stdout
        checked = run(m.root, "check", "--offline")
        assert checked.returncode == 0, (checked.stdout, checked.stderr)
    assert_outside_untouched(m)
    shutil.rmtree(m.base)


# --- 6. one edit, one finding ------------------------------------------------------------

EDITS = ("in-pin", "lock-line", "docker-pin", "alone")


def _other(drawn: Drawn, name: str, version: str) -> str | None:
    others = [v for v in drawn.versions(name) if v != version]
    return others[0] if others else None


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
            for m in [re.search(r"pip install -r (r\d+\.txt)", line)]
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
    kind = data.draw(st.sampled_from(EDITS), label="edit")
    pins = lock_pins(root)
    if kind == "in-pin":
        # (a) `NAME==V` in an .in moved to another existing version: its lock is stale.
        candidates = [
            (path.name, number, name, version)
            for path in sorted(root.glob("r*.in"))
            for number, line in enumerate(path.read_text().splitlines(), 1)
            for mm in [re.fullmatch(r"(\w+)==(\S+)", line)]
            if mm
            for name, version in [mm.groups()]
            if _other(drawn, name, version)
        ]
        if not candidates:
            shutil.rmtree(m.base)
            return
        source, number, name, version = data.draw(st.sampled_from(candidates), label="pin")
        new = _other(drawn, name, version)
        path = root / source
        lines = path.read_text().splitlines()
        lines[number - 1] = f"{name}=={new}"
        path.write_text("\n".join(lines) + "\n")
        lock = source.replace(".in", ".txt")
        code, found = findings(root, "--offline")
        assert code == 1, found
        assert has_finding(found, lock, "stale-lock", name, pins[lock][name][1]), found
    elif kind == "lock-line":
        # (b) A lock line's version edited by hand: its stamp no longer matches.
        lock_lines = [
            (lock, name, version, line)
            for lock, by_name in pins.items()
            for name, (version, line) in by_name.items()
            if name != OUTSIDER and _other(drawn, name, version)
        ]
        if not lock_lines:
            shutil.rmtree(m.base)
            return
        lock, name, version, at = data.draw(st.sampled_from(lock_lines), label="line")
        path = root / lock
        kept = path.read_text().splitlines(keepends=True)
        kept[at - 1] = kept[at - 1].replace(
            f"{name}=={version}", f"{name}=={_other(drawn, name, version)}", 1
        )
        path.write_text("".join(kept))
        code, found = findings(root, "--offline")
        assert code == 1, found
        assert has_finding(found, lock, "out-of-date"), found
    elif kind == "docker-pin":
        # (c) A Dockerfile `pip install NAME==V` moved: it no longer matches the locks.
        target = docker_file(root)
        sites = [
            (number, name, version)
            for number, line in (
                enumerate(target.read_text().splitlines(), 1) if target.is_file() else []
            )
            for mm in [re.fullmatch(r"RUN pip install (\w+)==(\S+)", line)]
            if mm
            for name, version in [mm.groups()]
            if _other(drawn, name, version)
        ]
        if not sites:
            shutil.rmtree(m.base)
            return
        number, name, version = data.draw(st.sampled_from(sites), label="site")
        lines = target.read_text().splitlines()
        lines[number - 1] = f"RUN pip install {name}=={_other(drawn, name, version)}"
        target.write_text("\n".join(lines) + "\n")
        code, found = findings(root, "--offline")
        assert code == 1, found
        assert has_finding(found, target.name, "dockerfile-pin", name, number), found
    else:
        # (d) One of the locks an image installs together recompiled alone, by plain
        # pip-compile: where it now parts from another, the image installs a conflict.
        installers = _installers(root)
        if not installers:
            shutil.rmtree(m.base)
            return
        where = data.draw(st.sampled_from(sorted(installers)), label="installer")
        installs = installers[where][1]
        alone, _ = data.draw(st.sampled_from(installs), label="alone")
        subprocess.run(
            [
                *(sys.executable, "-m", "piptools", "compile", "--quiet", "--upgrade"),
                *(f"--output-file={alone}", alone.replace(".txt", ".in")),
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
