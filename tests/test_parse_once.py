"""At monorepo scale, a run parses each file once and digests each compile's inputs once.

A no-op `lock` of a few hundred locks used to parse the `-c base.txt` lock once per
reader (and every lock two or three times), work out each compile's inputs digest
two or three times (freshness, alignment, the compile), and copy every lock into a
stage that no compile used. The repository is
the benchmark's generated one; its locks are written by uv, which is quick, and
then stamped by `pinsync lock --force`, so that the run measured here is a no-op.

Calls are counted, never timed: a count does not depend on the machine.
"""

from __future__ import annotations

import io
import os
import sys
from collections import Counter
from collections.abc import Callable
from contextlib import redirect_stdout
from pathlib import Path, PurePosixPath

import pytest

import pinsync.lockfile
import pinsync.reqfile
import pinsync.stage
from bench.suite import Shape, run_steps, synthetic_dists, uv_steps, write_synthetic
from bench.wheelhouse import build_wheelhouse
from conftest import Repo
from pinsync.cli import main
from pinsync.lockfile import DIGESTS, LOCKS, OUTPUT_DIGESTS
from pinsync.reqfile import PARSED
from pinsync.toolchain import sealed_env

FILES = 300


@pytest.fixture(scope="module")
def stamped_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated tree at FILES locks, every lock written and stamped."""
    tmp = tmp_path_factory.mktemp("scale")
    shape = Shape(FILES, 80)
    wheels = build_wheelhouse(synthetic_dists(shape), tmp / "wheels")
    syn = write_synthetic(shape, tmp / "repo", wheels)
    with (syn.root / "pyproject.toml").open("a") as fh:
        fh.write('[tool.uv.pip]\nno-index = true\nfind-links = ["wheels"]\n')
    env = {**sealed_env(os.environ, None, "uv"), "UV_PYTHON": sys.executable}
    run = run_steps(uv_steps(syn, hashes=True), syn.root, env)
    assert run.returncode == 0, run.output[-2000:]
    Repo(syn.root).pinsync("lock", "--force")
    return syn.root


def _run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(argv)
    return code, out.getvalue()


def _spy(
    monkeypatch: pytest.MonkeyPatch, module: object, name: str, key: Callable[..., object]
) -> Counter[object]:
    """Count the calls of `module.name` by `key(*args)`, the function itself unchanged."""
    calls: Counter[object] = Counter()
    real = getattr(module, name)

    def counting(*args: object) -> object:
        calls[key(*args)] += 1
        return real(*args)

    monkeypatch.setattr(module, name, counting)
    return calls


@pytest.mark.parametrize(
    ("argv", "status_line"),
    [
        (["lock"], f"{FILES} lock files: {FILES} fresh; wrote 0 files"),
        (["check", "--offline"], None),
    ],
    ids=["no-op lock", "offline check"],
)
def test_a_run_parses_each_file_once_and_digests_each_compile_once(
    stamped_tree: Path,
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    status_line: str | None,
) -> None:
    # What earlier runs of this process parsed must not count.
    PARSED.clear()
    LOCKS.clear()
    DIGESTS.clear()
    OUTPUT_DIGESTS.clear()
    parses = _spy(monkeypatch, pinsync.reqfile, "_parse_text", lambda path, text: path)
    digests = _spy(
        monkeypatch, pinsync.lockfile, "_inputs_digest", lambda target, *rest: target.output
    )
    stages = _spy(monkeypatch, pinsync.stage.Stage, "_make", lambda stage: "built")
    code, out = _run([*argv, "--root", str(stamped_tree)])
    assert code == 0, out
    if status_line is not None:
        assert status_line in out, out
    # The stamps vouch for every lock: only the sources are parsed (base.txt is one,
    # the `-c` of the others); the locks are read and digested, and a lock's index
    # lines are read without its requirements.
    assert len(parses) == FILES + 2  # the .in files, constraints.txt, base.txt
    assert parses.most_common(1)[0][1] == 1, parses.most_common(3)
    assert parses == PARSED.made  # the memo counts what really ran
    assert max(LOCKS.made.values()) == 1, LOCKS.made.most_common(3)
    assert max(OUTPUT_DIGESTS.values()) == 1, OUTPUT_DIGESTS.most_common(3)
    if argv[0] == "lock":
        # every lock's freshness was judged, on one digest of its inputs
        assert len(digests) == FILES
        assert digests.most_common(1)[0][1] == 1, digests.most_common(3)
        # nothing to compile: no copy of the repository was staged
        assert stages == Counter()
    assert PurePosixPath("requirements/base.txt") in parses
