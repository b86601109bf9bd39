"""The benchmark's parts: the synthetic repository it times, and how it measures and judges.

The timings themselves are never asserted; what is tested is that the repository is
one pinsync and pip-compile-multi can both handle, that incremental lock recompiles
exactly what a change makes stale, and that a ratio is judged against its target right.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path, PurePosixPath

import pytest

from bench.suite import (
    Row,
    Run,
    ScaleRow,
    Shape,
    Timing,
    package_names,
    render_scale,
    run_measured,
    run_steps,
    scales,
    synthetic_dists,
    synthetic_sources,
    write_synthetic,
)
from bench.wheelhouse import build_wheelhouse
from conftest import Repo
from pinsync.lockfile import strip_stamp
from pinsync.reqfile import parse_requirements

SHAPES = [Shape(2, 8), Shape(7, 20, hashes=False), Shape(30, 80), Shape(12, 40, seed=3)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_synthetic_sources_are_layered_and_every_include_comes_first(shape: Shape) -> None:
    files = synthetic_sources(shape)
    sources = [p for p in files if p.endswith(".in")]
    assert len(sources) == shape.files
    assert sources[0] == "requirements/base.in"
    seen: set[str] = {"requirements/constraints.txt"}
    for src in sources:
        parsed = parse_requirements(PurePosixPath(src), files[src])
        for inc in parsed.includes:
            # base.txt is base.in's lock; every other include is a file listed earlier.
            target = inc.target.as_posix()
            if target == "requirements/base.txt":
                target = "requirements/base.in"
            assert target in seen, (src, inc.path)
        assert parsed.entries, src
        known = set(package_names(shape.packages))
        assert {str(e.name) for e in parsed.entries} <= known
        seen.add(src)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_synthetic_dists_are_a_deterministic_dag(shape: Shape) -> None:
    dists = synthetic_dists(shape)
    assert dists == synthetic_dists(shape)
    assert len(dists) == 2 * shape.packages
    index = {n: i for i, n in enumerate(package_names(shape.packages))}
    for dist in dists:
        for req in dist.requires:
            dep = re.split(r"[<>=!~]", req, maxsplit=1)[0]
            assert index[dep] > index[dist.name], (dist, req)


def test_layers_never_cap_what_base_pins() -> None:
    """pip-compile-multi rejects a layer that resolves a package differently from base."""
    files = synthetic_sources(Shape(30, 80))
    for path, text in files.items():
        if path.endswith(".in") and not path.endswith("base.in"):
            entries = parse_requirements(PurePosixPath(path), text).entries
            for entry in entries:
                assert not any(s.operator in ("<", "<=", "==") for s in entry.specifier), (
                    path,
                    entry.text,
                )


def _status(stdout: str) -> dict[str, str]:
    return {
        line.split()[0]: line.split()[1]
        for line in stdout.splitlines()
        if line.startswith("requirements/")
    }


@pytest.fixture
def synthetic_locked_repo(tmp_path: Path) -> Repo:
    """A 7-file synthetic repository, locked by pinsync (with hashes)."""
    shape = Shape(7, 20)
    wheels = build_wheelhouse(synthetic_dists(shape), tmp_path / "wheels")
    syn = write_synthetic(shape, tmp_path / "repo", wheels)
    repo = Repo(syn.root)
    repo.pinsync("lock")
    return repo


ALL_SEVEN = {
    f"requirements/{n}.txt"
    for n in ("base", "test-01", "dev-02", "svc-03", "test-04", "dev-05", "svc-06")
}


@pytest.mark.parametrize(
    ("changed", "line", "recompiled"),
    [
        # a service constrained by base.txt: only its own lock
        ("requirements/svc-06.in", "pkg-019", {"requirements/svc-06.txt"}),
        # a test layer: its lock, and the dev layer that reads it with -r
        (
            "requirements/test-04.in",
            "pkg-019",
            {"requirements/test-04.txt", "requirements/dev-05.txt"},
        ),
        # a dev layer: a leaf
        ("requirements/dev-02.in", "pkg-019", {"requirements/dev-02.txt"}),
        # base gains a pin (pkg-010 is not in base.txt yet): everything reads
        # base.in (-r) or base.txt (-c)
        ("requirements/base.in", "pkg-010", ALL_SEVEN),
        # base.in changes but base.txt's pins do not (pkg-019 is already pinned there
        # for another package): the -c base.txt services stay fresh
        (
            "requirements/base.in",
            "pkg-019",
            ALL_SEVEN - {"requirements/svc-03.txt", "requirements/svc-06.txt"},
        ),
        # the hand-kept constraints file, read through base.in; a constraint that moves
        # no pin leaves base.txt's pins alone, so again the services stay fresh
        (
            "requirements/constraints.txt",
            "pkg-019",
            ALL_SEVEN - {"requirements/svc-03.txt", "requirements/svc-06.txt"},
        ),
    ],
)
def test_lock_recompiles_what_a_change_makes_stale_and_nothing_else(
    synthetic_locked_repo: Repo, changed: str, line: str, recompiled: set[str]
) -> None:
    repo = synthetic_locked_repo
    base_pins_before = repo.read("requirements/base.txt").count("==")
    repo.write({changed: repo.read(changed) + line + "\n"})
    proc = repo.pinsync("lock")
    status = _status(proc.stdout)
    assert len(status) == 7, proc.stdout
    assert {k for k, v in status.items() if v != "fresh"} == recompiled, proc.stdout
    # the premise of the rows above: whether base.txt gained a pin
    gained = repo.read("requirements/base.txt").count("==") > base_pins_before
    assert gained == ("requirements/svc-03.txt" in recompiled), proc.stdout
    assert repo.pinsync("check").returncode == 0


def test_synthetic_locks_are_what_plain_pip_compile_writes(
    synthetic_locked_repo: Repo, tmp_path: Path
) -> None:
    """The bench times pinsync against a pip-compile loop; both must write the same locks."""
    repo = synthetic_locked_repo
    locks = sorted(repo.path.glob("requirements/*.in"))
    ours = {p: strip_stamp(p.with_suffix(".txt").read_text()) for p in locks}
    for src in locks:
        src.with_suffix(".txt").unlink()
    for src in [repo.path / "requirements/base.in", *locks]:
        rel = src.relative_to(repo.path).as_posix()
        repo.pip_compile(rel, "--output-file", rel[:-3] + ".txt")
    assert {p: p.with_suffix(".txt").read_text() for p in locks} == ours


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        ([sys.executable, "-c", "pass"], 0),
        ([sys.executable, "-c", "import sys; sys.exit(3)"], 3),
    ],
)
def test_run_measured_reports_exit_code_and_peak_memory(argv: list[str], code: int) -> None:
    run = run_measured(argv, Path.cwd(), {})
    assert run.returncode == code
    assert run.seconds > 0
    if sys.platform == "linux":
        assert run.peak_kib is not None and run.peak_kib > 1024  # an interpreter is > 1 MiB


# A parent that lets the kernel reap its child, as the compile server does: wait4's
# rusage never counts that child, however large it grew.
UNWAITED_CHILD = """
import os, signal, time
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
if os.fork() == 0:
    held = b"x" * (96 * 1024 * 1024)
    time.sleep(0.4)
    os._exit(0)
time.sleep(0.8)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_run_measured_counts_a_child_nobody_waits_for() -> None:
    run = run_measured([sys.executable, "-c", UNWAITED_CHILD], Path.cwd(), {})
    assert run.returncode == 0
    assert run.peak_kib is not None and run.peak_kib >= 96 * 1024


def test_run_steps_stops_at_the_first_failure() -> None:
    steps = [
        [sys.executable, "-c", "print('one')"],
        [sys.executable, "-c", "import sys; print('two'); sys.exit(2)"],
        [sys.executable, "-c", "print('three')"],
    ]
    run = run_steps(steps, Path.cwd(), {})
    assert run.returncode == 2
    assert run.output.split() == ["one", "two"]


def _timing(median: float) -> Timing:
    return Timing.of("x", [Run(median, None, 0, "")])


@pytest.mark.parametrize(
    ("goal", "ours", "theirs", "target", "met"),
    [
        ("faster", 1.0, 25.0, 20.0, True),
        ("faster", 1.0, 19.9, 20.0, False),
        ("faster", 2.0, 3.2, 1.6, True),
        ("within", 0.25, 0.125, 2.0, True),
        ("within", 0.26, 0.125, 2.0, False),
        ("within", 0.1, 0.2, 2.0, True),
    ],
)
def test_row_judges_its_target(
    goal: str, ours: float, theirs: float, target: float, met: bool
) -> None:
    row = Row("v", "s", _timing(ours), _timing(theirs), goal, target)  # type: ignore[arg-type]
    assert row.met is met
    assert row.ratio == pytest.approx(theirs / ours)


def test_timing_is_median_min_max_of_its_runs() -> None:
    runs = [Run(s, k, 0, "") for s, k in ((3.0, 2048), (1.0, 1024), (2.0, 4096))]
    t = Timing.of("x", runs)
    assert (t.median, t.low, t.high, t.peak_mib) == (2.0, 1.0, 3.0, 4.0)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("30,300,1000", (30, 300, 1000)),
        ("300", (300,)),
        ("30, 300,", (30, 300)),
        ("1", None),
        ("30,x", None),
        ("", None),
    ],
)
def test_scale_option_reads_a_list_of_sizes(text: str, parsed: tuple[int, ...] | None) -> None:
    if parsed is None:
        with pytest.raises(argparse.ArgumentTypeError):
            scales(text)
    else:
        assert scales(text) == parsed


def _scale_timing(label: str, median: float, peak_kib: int | None = None) -> Timing:
    return Timing.of(label, [Run(median, peak_kib, 0, "")])


@pytest.mark.parametrize(
    ("check", "verify", "noop", "peak_kib", "verdicts"),
    [
        (0.2, 0.1, 0.26, 60 * 1024, ["2.00x (≤ 2x: yes)", "1.30x (≤ 1.3x: yes)", "≤ 64 MiB: yes"]),
        (0.21, 0.1, 0.3, 65 * 1024, ["2.10x (≤ 2x: NO)", "1.43x (≤ 1.3x: NO)", "≤ 64 MiB: NO"]),
    ],
)
def test_scale_table_judges_the_three_targets(
    check: float, verify: float, noop: float, peak_kib: int, verdicts: list[str]
) -> None:
    row = ScaleRow(
        1000,
        40.0,
        (
            _scale_timing("check", check, peak_kib),
            _scale_timing("no-op lock", noop),
            _scale_timing("pip-compile-multi verify", verify),
        ),
    )
    table = render_scale([row])
    for verdict in verdicts:
        assert verdict in table, table
    assert "not run" in table  # the columns that did not run say so


@pytest.mark.parametrize("files", [30, 300, 1000])
def test_lock_size_does_not_grow_with_the_number_of_files(files: int) -> None:
    """What --scale grows is the number of locks, not what each one pins: every source
    reads at most base and one test layer, a handful of lines each."""
    sources = synthetic_sources(Shape(files, 80))
    longest = max(
        len(parse_requirements(PurePosixPath(p), t).entries)
        for p, t in sources.items()
        if p.endswith(".in")
    )
    assert longest <= 5
    layers = [p for p, t in sources.items() if "-r test-" in t]
    # a dev layer reads one test layer, which reads base: two deep, whatever N is
    for path in layers:
        head = sources[path].splitlines()[0]
        target = "requirements/" + head.split()[1]
        assert sources[target].splitlines()[0] == "-r base.in", (path, target)
