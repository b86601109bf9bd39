"""pip-compile-multi trees: relocked by pip-compile-multi itself, never in another dialect.

pip-compile-multi compiles every `.in` of a directory in one run, strips from each
output what the files it `-r`s already pin, and writes its own header. So its
outputs are relocked the way its maintainers do: one sealed run of the
pip-compile-multi that `requirements/tools.txt` pins (beside our pip-tools), in
the stage, over the whole directory. Its options are read off the outputs, as its
command line does not survive in them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from .errors import CompileError
from .graph import Target
from .lockfile import UNSAFE, parse_lockfile

if TYPE_CHECKING:  # check reads this module; only a compile needs the stage
    from .stage import Stage


def same_directory(
    targets: Sequence[Target], selected: frozenset[PurePosixPath]
) -> frozenset[PurePosixPath]:
    """`selected`, with every pip-compile-multi output that shares a directory with a
    selected one: one run rewrites them all, so the stage must hold copies of all."""
    dirs = {
        t.output.parent for t in targets if t.tool == "pip-compile-multi" and t.output in selected
    }
    return selected | {
        t.output for t in targets if t.tool == "pip-compile-multi" and t.output.parent in dirs
    }


def options(targets: Sequence[Target], texts: Mapping[PurePosixPath, str]) -> list[str]:
    """The pip-compile-multi options the committed outputs show they were made with,
    and `--allow-unsafe` where compile-args asks for it."""
    argv: list[str] = []
    extensions = {t.output.suffix for t in targets}
    if extensions != {".txt"}:
        argv.append(f"--out-ext={next(iter(extensions)).lstrip('.')}")
    for target in targets:
        text = texts.get(target.output)
        if text is None:
            continue
        lock = parse_lockfile(target.output, text)
        if any(e.hashes for e in lock.body.entries):
            argv.append(f"--generate-hashes={target.inputs[0].name}")
        unsafe = "--allow-unsafe" in target.args or any(n in UNSAFE for n in lock.pins())
        if unsafe and "--allow-unsafe" not in argv:
            argv.append("--allow-unsafe")
        if (
            any(o.name in ("--index-url", "-i") for o in lock.options)
            and "--annotate-index" not in argv
        ):
            argv.append("--annotate-index")
    shown = [parse_lockfile(p, t).options for p, t in texts.items()]
    if texts and not any(o.name in ("--find-links", "-f") for opts in shown for o in opts):
        # It emits find-links by default; outputs without them were made without.
        argv.append("--no-emit-find-links")
    if texts and not any(o.name == "--trusted-host" for opts in shown for o in opts):
        argv.append("--no-emit-trusted-host")
    return argv


def run_multi(
    stage: Stage,
    targets: Sequence[Target],
    upgrade: bool,
    upgrade_packages: Sequence[str],
    timeout: float,
) -> None:
    """One pip-compile-multi run over the directory of `targets`, in the stage."""
    from .compiler import private_tmp
    from .failures import explain_failure, redact
    from .toolchain import sealed_env

    directory = targets[0].output.parent
    texts = {t.output: text for t in targets if (text := stage.read(t.output)) is not None}
    argv = [
        sys.executable,
        "-m",
        "pipcompilemulti.cli_v1",
        f"--directory={directory.as_posix()}",
        "--upgrade" if upgrade and not upgrade_packages else "--no-upgrade",
        *(f"--upgrade-package={p}" for p in upgrade_packages),
        *options(targets, texts),
    ]
    stage.need_all()  # it reads every source of the directory
    try:
        with private_tmp(sealed_env(_environ(), None)) as env:
            proc = subprocess.run(
                argv,
                # It writes every output of the directory.
                cwd=stage.claim(*(w for w in stage.writable if w.parent == directory)),
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
    except subprocess.TimeoutExpired:
        raise CompileError(
            f"{directory}: pip-compile-multi ran longer than {timeout:.0f} s and was stopped"
        ) from None
    if proc.returncode != 0:
        why = explain_failure(proc.stderr or proc.stdout)
        raise CompileError(redact(f"{directory}: pip-compile-multi failed: {why}"))


def _environ() -> dict[str, str]:
    return dict(os.environ)
