"""Counterexamples found by `nox -s fuzz` (tools/fuzz.py), each kept as a plain test.

A test here is the smallest input the fuzzer shrank to, and each sits above a
comment that says what was wrong. A counterexample whose fix has not landed yet is
marked xfail(strict=True) with its reason, and the property tests tolerate exactly
it (KNOWN_OPEN in tests/test_parsers_on_any_text.py), so that a long run keeps
looking for new ones. Today none is open.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import time
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath

import pytest

from bench.wheelhouse import Dist, build_wheelhouse
from conftest import PIP_TOOLS_TABLE, TOOLS, Repo, compile_held, pip_temporaries
from pinsync import cli
from pinsync.commands import nox_commands
from pinsync.environments import nox_sessions, script_installs
from pinsync.errors import PinsyncError

# Python's own parser gives up on these with MemoryError ("too complex") or
# RecursionError, not SyntaxError: a noxfile.py pinsync cannot read.
TOO_DEEP_FOR_AST = {
    "continuations": "x \\\n" * 1500,
    "long-sum": "x" + "+x" * 100_000,
    "long-unary": "-" * 1_000_000 + "x",
}
# Fixed: nox_sessions (environments.py) and nox_commands (commands.py) catch only
# SyntaxError/ValueError around ast.parse; MemoryError and RecursionError escape as a
# traceback. Fix: catch (SyntaxError, ValueError, MemoryError, RecursionError).


@pytest.mark.parametrize("text", TOO_DEEP_FOR_AST.values(), ids=TOO_DEEP_FOR_AST)
def test_a_noxfile_too_deep_for_pythons_parser_has_no_sessions(text: str) -> None:
    try:
        assert nox_sessions(PurePosixPath("noxfile.py"), text, {}) == []
    except PinsyncError as exc:
        assert str(exc).startswith("noxfile.py")


@pytest.mark.parametrize("text", TOO_DEEP_FOR_AST.values(), ids=TOO_DEEP_FOR_AST)
def test_a_noxfile_too_deep_for_pythons_parser_has_no_compile_commands(text: str) -> None:
    try:
        assert nox_commands(PurePosixPath("noxfile.py"), text) == []
    except PinsyncError as exc:
        assert str(exc).startswith("noxfile.py")


# Fixed: recompile.py writes the --find-links that pip makes absolute for a `-c` lock as
# the repository's absolute path, and lockcheck.py compares index options byte for byte,
# so `check --full` in another checkout (CI) fails while `lock` says fresh. Fix: compare
# `--find-links` values ending in `/<dir inside the root>` by that ending, as
# recompile._explained already does for a lock's own index lines.


def test_a_lock_that_constrains_with_a_lock_checks_in_another_checkout(
    make_repo: Callable[[Mapping[str, str]], Repo], tmp_path: Path
) -> None:
    repo = make_repo({"base.in": "flask\n", "app.in": "-c base.txt\nflask\nrequests\n"})
    repo.pinsync("lock")
    assert f"--find-links {repo.path}/wheels" in repo.read("app.txt")
    clone = Repo(tmp_path / "elsewhere")
    shutil.copytree(repo.path, clone.path)
    assert "2 fresh" in clone.pinsync("lock").stdout  # lock sees nothing to do there
    clone.pinsync("check", "--full")  # raises on exit 1: "index options differ"


# Fixed: an interrupt stops running compiles with SIGTERM (compiler.stop_compiles,
# workers.stop), which kills pip-compile before pip removes its temporary directories
# (pip-build-tracker-*, pip-resolve-*, pip-ephem-wheel-cache-*) from TMPDIR. Fix: run
# each compile with TMPDIR in the stage (removed with it), or stop compiles with SIGINT
# and a grace period before SIGTERM.


def test_sigterm_mid_compile_leaves_no_temporary_directory_of_pip(
    make_repo: Callable[[Mapping[str, str]], Repo], tmp_path: Path
) -> None:
    repo = make_repo({"requirements.in": "mlflow\nrequests\nzope.sqlalchemy\n"})
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    proc = repo.start("lock", "--jobs", "1", tmpdir=tmpdir)
    deadline = time.monotonic() + 60
    # (Since then each compile has a TMPDIR of its own inside this one.)
    while not pip_temporaries(tmpdir):
        assert time.monotonic() < deadline and proc.poll() is None, "no compile started"
    with compile_held(proc.pid):  # pip has made its temporaries, and is held there
        os.kill(proc.pid, signal.SIGTERM)  # CI cancelling the job
        time.sleep(0.5)  # pinsync stops its compiles while this one is still held
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert pip_temporaries(tmpdir) == []
    assert [p.name for p in tmpdir.iterdir() if not p.name.endswith(".lock")] == []


# Fixed: environments.installs_in splits every shell line with shlex.split, which builds
# each word one character at a time (token = token + char on an attribute): quadratic in
# the word's length. A 300 kB word (a base64 blob in a CI script) takes seconds, 1 MB
# about 20 s, in every check. Fix: skip lines that name no pip, install or script (a
# substring test) before splitting, or split with shell.Lexer.


def test_a_script_with_a_huge_word_is_not_split() -> None:
    # The huge line is data, not an install: it is left unread (and unsplit).
    text = "echo " + "y" * 300_000 + " && pip install -r b.txt\npip install -r a.txt\n"
    installs = script_installs(PurePosixPath("ci.sh"), text)
    assert [i.path for i in installs] == [PurePosixPath("a.txt")]


# Fixed: a `--find-links DIR` option line of an .in is passed to pip-compile unchecked
# (recompile._explained counts it as the repository's own setting, so
# indexes.lock_indexes never asks _local_inside), and pip reads DIR relative to the
# stage: `../DIR` is then $TMPDIR/DIR, outside the root, and the lock keeps the line.
# Fix (repo.py, beside the `-r`/`-c` root check of _parse_closure): refuse a local
# --find-links/--index-url/--extra-index-url of a source that leaves the root, in one
# line, as a lock's own index lines are refused.


def test_a_find_links_out_of_the_root_in_a_source_is_refused(
    make_repo: Callable[[Mapping[str, str]], Repo], tmp_path: Path
) -> None:
    # Today the compile finds `omega`, which only $TMPDIR/outside has, and locks it.
    tmp = tmp_path / "tmp"
    build_wheelhouse([Dist("omega", "1.0")], tmp / "outside")
    repo = make_repo({"requirements.in": "--find-links ../outside\nflask\nomega\n"})
    before = repo.snapshot()
    run = repo.pinsync("lock", env={"TMPDIR": str(tmp)}, check=False)
    assert run.returncode == 2, run.stdout
    assert "outside the repository root" in run.stderr and run.stderr.count("\n") == 1
    assert repo.snapshot() == before


# Fixed: Ctrl-C in the first ~0.1 s of a run lands while `python -m pinsync` imports its
# modules, before cli.main catches KeyboardInterrupt: a traceback, not the one line. Fix
# (__main__.py): catch KeyboardInterrupt around `from .cli import main`, print `pinsync:
# interrupted; no file was changed` and exit 130.


def test_ctrl_c_while_pinsync_starts_is_one_line(
    make_repo: Callable[[Mapping[str, str]], Repo], tmp_path: Path
) -> None:
    repo = make_repo({"requirements.in": "flask\n"})
    # A `packaging` ahead of the real one that receives Ctrl-C as it is imported.
    shadow = tmp_path / "shadow" / "packaging"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(
        "import os, signal, time\nos.kill(os.getpid(), signal.SIGINT)\ntime.sleep(5)\n"
    )
    pythonpath = f"{shadow.parent}{os.pathsep}{TOOLS}"
    run = repo.pinsync("lock", env={"PYTHONPATH": pythonpath}, check=False)
    assert (run.returncode, run.stderr) == (130, "pinsync: interrupted; no file was changed\n")


# Found by the final fuzz run (seed 2031, test_an_interrupted_lock_...): Ctrl-C after
# the modules loaded but while cli.main built the command's parser (argparse asking
# gettext for its titles) printed a traceback. cli.main now answers an interrupt
# anywhere before the command runs with the one line. The parser is made to receive
# the Ctrl-C here, as the signal did there.


def test_ctrl_c_while_the_options_are_read_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(argparse.ArgumentParser, "parse_intermixed_args", interrupted)
    assert cli.main(["lock", "--root", str(tmp_path)]) == 130
    assert capsys.readouterr().err == "pinsync: interrupted; no file was changed\n"
    assert list(tmp_path.iterdir()) == []


# Found by the CI profile of test_lock_then_check_on_generated_repositories: with
# `custom-compile-command` set and no `compile-args`, `lock` writes a lock whose header
# shows only the custom command; the next run reads that header as one pinsync did not
# write (repo._targets: `header.custom` and `args is None`), infers options off the
# lock (`--no-emit-index-url`) and so finds the stamp's options changed: `check`
# right after `lock` says out-of-date, and a second `lock` restamps. Fix (repo.py,
# _targets.add): a stamped lock under the config's own command has the config's
# options; they are inferred only for a lock someone else compiled.


def test_a_custom_compile_command_without_compile_args_checks_after_lock(
    make_repo: Callable[[Mapping[str, str]], Repo],
) -> None:
    table = '\n[tool.pinsync]\ncustom-compile-command = "make lock"\n'
    repo = make_repo({"pyproject.toml": PIP_TOOLS_TABLE + table, "requirements.in": "flask\n"})
    repo.pinsync("lock")
    assert "make lock" in repo.read("requirements.txt")
    repo.pinsync("check", "--offline")  # raises on exit 1: "older than its inputs"
    after = repo.snapshot()
    assert "1 fresh" in repo.pinsync("lock").stdout
    assert repo.snapshot() == after


# Found by test_lock_then_check_on_generated_repositories, seed 21: with
# `custom-compile-command` set, the next run takes a lock's sources from its `# via -r`
# notes (repo._targets, `_sources_from_vias`). An .in that only `-r`s another (or
# whose own requirements a marker drops) is named by no note, so `dev.txt` is read as
# compiled from `base.in`, and its stamp (made from dev.in) as out of date. Fixed in
# repo._targets, where source_args come from the vias: when the lock's own sibling
# `.in` exists and its `-r` closure holds every source the notes give, the sibling
# is the source, as pip-compile's X.in -> X.txt convention says.


def test_a_custom_command_lock_of_an_in_that_only_includes_checks_after_lock(
    make_repo: Callable[[Mapping[str, str]], Repo],
) -> None:
    table = '\n[tool.pinsync]\ncompile-args = ["--allow-unsafe"]\ncustom-compile-command = "make lock"\n'
    repo = make_repo(
        {"pyproject.toml": PIP_TOOLS_TABLE + table, "base.in": "flask\n", "dev.in": "-r base.in\n"}
    )
    repo.pinsync("lock")
    repo.pinsync("check", "--offline")  # raises on exit 1: "older than its inputs (base.in)"
    after = repo.snapshot()
    assert "2 fresh" in repo.pinsync("lock").stdout
    assert repo.snapshot() == after
