"""Promises held on generated repositories (Hypothesis), not only on the ones we drew.

Each example is a repository over a generated wheelhouse (a random dependency graph
of tiny wheels): `.in` files that `-r` and `-c` one another, options, and a
Dockerfile stage or CI job that installs some locks together. For each:

1. `lock` succeeds, or exits 2 with one line, no traceback, and no file changed;
2. after a successful `lock`, `check --offline` and `check --full` exit 0;
3. a second `lock` changes no byte;
4. nothing outside the root is written: a sentinel tree beside it stays as it was.

Examples are few and derandomized, so CI runs the same ones every time; a failing
example shrinks to a repository small enough to read.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.wheelhouse import Dist, build_wheelhouse
from conftest import PIP_TOOLS_TABLE, TOOLS

NAMES = ("alpha", "beta", "gamma", "delta", "eps")


@dataclass(frozen=True)
class Drawn:
    dists: tuple[Dist, ...]
    files: tuple[tuple[str, str], ...]


@st.composite
def repositories(draw: st.DrawFn) -> Drawn:
    # A wheelhouse: each name in one or two versions, depending only on later names
    # (no cycles), with ranges that some versions satisfy.
    dists = []
    for i, name in enumerate(NAMES):
        for version in draw(st.sampled_from([("1.0",), ("1.0", "2.0")])):
            deps = draw(st.lists(st.sampled_from(NAMES[i + 1 :] or ("",)), max_size=2, unique=True))
            requires = tuple(
                f"{d}>=1.0" if draw(st.booleans()) else d for d in deps if d
            )
            dists.append(Dist(name, version, requires))
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
    return Drawn(tuple(dists), tuple(sorted(files.items())))


def run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pinsync", *args],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(TOOLS)},
        capture_output=True,
        text=True,
        check=False,
    )


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "wheels" not in p.parts
    }


@settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(drawn=repositories())
def test_lock_then_check_on_generated_repositories(
    drawn: Drawn, tmp_path_factory: pytest.TempPathFactory
) -> None:
    base = tmp_path_factory.mktemp("generated")
    root, sentinel = base / "repo", base / "sentinel"
    sentinel.mkdir()
    (sentinel / "keep.txt").write_text("untouched\n")
    build_wheelhouse(drawn.dists, root / "wheels")
    for name, text in drawn.files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    before = snapshot(root)
    locked = run(root, "lock")
    assert "Traceback" not in locked.stderr, locked.stderr
    if locked.returncode != 0:
        # 1. A failure is one line and changes nothing.
        assert locked.returncode == 2, locked.stdout + locked.stderr
        assert locked.stderr.count("\n") == 1, locked.stderr
        assert snapshot(root) == before
    else:
        # 2. What lock wrote, check accepts, offline and fully re-resolved.
        for args in (("--offline",), ("--full",)):
            checked = run(root, "check", *args)
            assert checked.returncode == 0, (args, checked.stdout, checked.stderr)
        # 3. A second lock changes no byte.
        after = snapshot(root)
        again = run(root, "lock")
        assert again.returncode == 0 and snapshot(root) == after, again.stdout
    # 4. Nothing outside the root was touched.
    assert [p.name for p in sentinel.iterdir()] == ["keep.txt"]
    assert (sentinel / "keep.txt").read_text() == "untouched\n"
    shutil.rmtree(base)

