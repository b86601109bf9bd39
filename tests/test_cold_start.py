"""A run imports only what it runs: `--help` parses no requirement, and a `check`
of a stamped repository that compiles nothing imports no compiler, stage or
environment reader (each is tens of milliseconds a CI step pays per run).

What a process imported is read from its `sys.modules`, never timed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from conftest import TOOLS, Repo

MakeRepo = Callable[[Mapping[str, str]], Repo]

# Runs pinsync's main() in this process, then writes the names of the modules that
# are loaded to the file named by the first argument.
_PROBE = """
import json, sys
from pinsync.cli import main
out = sys.argv[1]
try:
    main(sys.argv[2:])
except SystemExit:
    pass
with open(out, "w") as fh:
    json.dump(sorted(sys.modules), fh)
"""

# What a compile, a Dockerfile or a CI file needs; none of it for a stamped check.
COMPILING = (
    "pinsync.compiler",
    "pinsync.workers",
    "pinsync.stage",
    "pinsync.recompile",
    "pinsync.indexes",
    "pinsync.toolchains",
    "pinsync.environments",
    "pinsync.dockerfile",
    "difflib",
    "tempfile",
)


def imported(repo: Repo, tmp_path: Path, *args: str) -> set[str]:
    out = tmp_path / "modules.json"
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, str(out), *args],
        cwd=repo.path,
        env={"PYTHONPATH": str(TOOLS), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.exists(), proc.stderr
    return set(json.loads(out.read_text()))


@pytest.mark.parametrize(
    ("args", "absent"),
    [
        pytest.param(
            ("--help",),
            (*COMPILING, "pinsync.check", "pinsync.repo", "packaging.requirements"),
            id="help",
        ),
        pytest.param(
            ("check", "--help"),
            (*COMPILING, "shutil", "pinsync.check", "pinsync.repo", "packaging.requirements"),
            id="command-help",
        ),
        # shutil: argparse imports it for the terminal's width, with bz2, lzma and zlib.
        pytest.param(("check",), (*COMPILING, "shutil"), id="check"),
        pytest.param(("check", "--offline"), (*COMPILING, "shutil"), id="check-offline"),
        pytest.param(("check", "--format", "json"), (*COMPILING, "shutil"), id="check-json"),
    ],
)
def test_a_run_imports_only_what_it_runs(
    make_repo: MakeRepo, tmp_path: Path, args: tuple[str, ...], absent: tuple[str, ...]
) -> None:
    repo = make_repo({"requirements.in": "flask\n"})
    repo.pinsync("lock")
    assert "pinsync-stamp" in repo.read("requirements.txt")
    loaded = imported(repo, tmp_path, *args)
    assert "pinsync.cli" in loaded
    assert [m for m in absent if m in loaded] == []


def test_a_check_that_must_compile_imports_the_compiler(
    make_repo: MakeRepo, tmp_path: Path
) -> None:
    """The other side of the table: the probe sees a compile's imports where one runs."""
    repo = make_repo({"requirements.in": "flask\n"})
    repo.pip_compile("--output-file=requirements.txt", "requirements.in")  # no stamp
    loaded = imported(repo, tmp_path, "check")
    assert {"pinsync.compiler", "pinsync.stage"} <= loaded
