"""Counterexamples of tests/test_invariants_equivalence.py, each kept as a plain test.

Each is the repository the property shrank to, compared with the plain tool the
same way. One whose fix has not landed is marked xfail(strict=True) with its reason;
the property tolerates exactly it (see `known_open` there) so that long runs keep
looking for new ones.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from bench.wheelhouse import Dist, build_wheelhouse
from conftest import PIP_TOOLS_TABLE, TOOLS, Repo
from pinsync.lockfile import strip_stamp

MakeRepo = Callable[[Mapping[str, str]], Repo]

# Two levels of locks read as locks: docs.in constrains with base.txt, so pip writes
# base.txt's `--find-links wheels` into docs.txt as an absolute path; dev.in then reads
# docs.txt (and base.txt again).
TWO_LEVELS = {
    "base.in": "flask\n",
    "docs.in": "-c base.txt\nflask\n",
    "dev.in": "-c docs.txt\n-r base.txt\nflask\n",
}
ORDER = ("base", "docs", "dev")


def _pcm(root: Path, *options: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PIP_CONFIG_FILE"] = os.devnull
    subprocess.run(
        [sys.executable, "-m", "pipcompilemulti.cli_v1", "--no-upgrade", *options],
        cwd=root,
        env=env,
        check=True,
        capture_output=True,
    )


# Found by the property: a pip-compile-multi tree compiled with `--allow-unsafe` whose
# outputs pin no unsafe package yet was relocked without it (multi.options reads the
# option off the outputs, where it shows only once pip or setuptools is pinned). When
# a new requirement then pulls setuptools in, pinsync wrote `# setuptools` under the
# unsafe trailer, where `pip-compile-multi --no-upgrade --allow-unsafe` pins
# `setuptools==70.0`. The option leaves no trace in the outputs, so it is declared:
# `compile-args = ["--allow-unsafe"]` in [tool.pinsync] now reaches pip-compile-multi.
def test_a_pcm_tree_made_with_allow_unsafe_keeps_it_once_setuptools_appears(
    tmp_path: Path,
) -> None:
    template = tmp_path / "template"
    build_wheelhouse(
        [Dist("alpha", "1.0"), Dist("beta", "1.0", ("setuptools",)), Dist("setuptools", "70.0")],
        template / "wheels",
    )
    (template / "pyproject.toml").write_text(PIP_TOOLS_TABLE)
    (template / "requirements").mkdir()
    (template / "requirements/base.in").write_text("alpha\n")
    _pcm(template, "--allow-unsafe")
    assert "setuptools" not in (template / "requirements/base.txt").read_text()
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    for root in (ours, theirs):
        shutil.copytree(template, root)
        (root / "requirements/base.in").write_text("alpha\nbeta\n")
        with (root / "pyproject.toml").open("a") as fh:
            fh.write('[tool.pinsync]\ncompile-args = ["--allow-unsafe"]\n')
    _pcm(theirs, "--allow-unsafe")
    subprocess.run(
        [sys.executable, "-m", "pinsync", "lock"],
        cwd=ours,
        env={**os.environ, "PYTHONPATH": str(TOOLS)},
        check=True,
        capture_output=True,
    )
    expected = (theirs / "requirements/base.txt").read_text()
    assert "setuptools==70.0\n" in expected
    assert (ours / "requirements/base.txt").read_text() == expected


# Found by the property: pinsync wrote one `--find-links <root>/wheels` line too many.
# In the stage, pip makes base.txt's relative `--find-links wheels` absolute under the
# stage path and reads docs.txt's, already under the root path: two strings, both
# kept, until the stage path is replaced by the root's. pip-tools writes each option
# once (its writer dedups them), so recompile now does too.
def test_a_lock_reading_two_levels_of_locks_says_each_find_links_once(
    make_repo: MakeRepo, tmp_path: Path
) -> None:
    ours = make_repo(TWO_LEVELS)
    theirs = Repo(tmp_path / "theirs")
    shutil.copytree(ours.path, theirs.path)
    ours.pinsync("lock")
    for name in ORDER:
        theirs.pip_compile(f"--output-file={name}.txt", f"{name}.in")
    for name in ORDER:
        mine = strip_stamp(ours.read(f"{name}.txt")).replace(str(ours.path), "<root>")
        plain = theirs.read(f"{name}.txt").replace(str(theirs.path), "<root>")
        assert mine == plain, name


# Found by the property: a repository whose locks read locks two levels deep could
# not be locked or checked in any other checkout (CI's, a colleague's). docs.txt
# carries the absolute `--find-links /first/checkout/wheels` that pip-compile wrote,
# and its index lines were refused as a source's would be. A lock's absolute
# --find-links that ends in a directory of the repository is now that directory,
# moved; whether pip may read it is decided before a compile (see the next test).
@pytest.mark.parametrize("locked_by", ["pinsync", "pip-compile"])
def test_a_lock_reading_two_levels_of_locks_relocks_in_another_checkout(
    make_repo: MakeRepo, tmp_path: Path, locked_by: str
) -> None:
    first = make_repo(TWO_LEVELS)
    if locked_by == "pinsync":
        first.pinsync("lock")
    else:
        for name in ORDER:
            first.pip_compile(f"--output-file={name}.txt", f"{name}.in")
    clone = Repo(tmp_path / "elsewhere")
    shutil.copytree(first.path, clone.path)
    checked = clone.pinsync("check", "--offline", check=False)
    assert checked.returncode in (0, 1), checked.stderr
    clone.pinsync("lock", "--force")
    assert str(first.path) not in clone.read("dev.txt")


def test_a_lock_naming_a_second_work_tree_is_not_read_through(
    make_repo: MakeRepo, tmp_path: Path
) -> None:
    # Two checkouts on one machine (git worktrees): docs.txt names the first one's
    # wheels, which exist. A compile that would have pip read docs.txt as it is stops
    # in one line; `lock --force` recompiles docs.txt first, in this checkout.
    first = make_repo(TWO_LEVELS)
    first.pinsync("lock")
    clone = Repo(tmp_path / "second")
    shutil.copytree(first.path, clone.path)
    with (clone.path / "dev.in").open("a") as fh:
        fh.write("flask>=0.1\n")
    before = {p.name: p.read_bytes() for p in clone.path.glob("*.txt")}
    refused = clone.pinsync("lock", check=False)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr.count("\n") == 1 and "another checkout's directory" in refused.stderr
    assert {p.name: p.read_bytes() for p in clone.path.glob("*.txt")} == before
    clone.pinsync("lock", "--force")
    assert str(first.path) not in clone.read("dev.txt") + clone.read("docs.txt")


# Found by the final fuzz run (uv property): uv writes a `--find-links` once for each
# place that names it (its table, and the `-r base.txt` it reads), and pinsync took
# the repeat out as pip-tools would. Only pip-compile's locks are written once each.
def test_a_uv_lock_keeps_the_find_links_uv_repeats(tmp_path: Path) -> None:
    build_wheelhouse([Dist("alpha", "1.0")], tmp_path / "wheels")
    (tmp_path / "pyproject.toml").write_text(
        '[tool.uv.pip]\nno-index = true\nfind-links = ["wheels"]\n'
    )
    (tmp_path / "base.in").write_text("alpha\n")
    (tmp_path / "dev.in").write_text("-r base.txt\nalpha\n")
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "UV_PYTHON": sys.executable,
        "UV_CACHE_DIR": str(tmp_path / "uv-cache"),
    }
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or "uv"
    for name in ("base", "dev"):
        subprocess.run(
            [uv, "pip", "compile", "--quiet", "--emit-find-links", f"{name}.in", "-o", f"{name}.txt"],
            cwd=tmp_path,
            env=env,
            check=True,
        )
    written = (tmp_path / "dev.txt").read_text()
    assert written.count("--find-links wheels\n") == 2  # what uv writes, repeat and all
    subprocess.run(
        [sys.executable, "-m", "pinsync", "lock", "--force"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(TOOLS)},
        check=True,
        capture_output=True,
    )
    assert strip_stamp((tmp_path / "dev.txt").read_text()) == written
