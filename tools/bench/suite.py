"""The benchmark behind `nox -s bench`: pinsync against the loops and tools it replaces.

It builds a synthetic repository (N `.in` files layered with `-r` and `-c`, drawing on
M packages from a wheelhouse it builds), then times, in one run on one machine, each
pinsync command against its alternative. Every figure is a median of `--repeat` runs,
with min and max, and a peak RSS. The same figures go to a JSON file.

It is a benchmark, not a test: it asserts no timing. It does check that each side did
the job it was timed for (same bytes as pip-compile, the one stale file recompiled,
exit codes), because a fast wrong answer is not a result.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib.util import find_spec
from pathlib import Path, PurePosixPath
from typing import Literal

from bench.wheelhouse import Dist, build_wheelhouse
from pinsync.cli import add_jobs_option
from pinsync.errors import PinsyncError
from pinsync.lockfile import strip_stamp
from pinsync.reqfile import parse_requirements
from pinsync.toolchain import find_uv, pip_tools_version, sealed_env

TOOLS = Path(__file__).resolve().parent.parent
Goal = Literal["faster", "within"]


# --- the synthetic repository --------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    files: int = 30
    packages: int = 80
    hashes: bool = True
    seed: int = 0


@dataclass(frozen=True)
class Synthetic:
    """What the generator wrote, and what the benchmark needs to know about it."""

    root: Path
    sources: tuple[str, ...]  # `.in` paths, in an order pip-compile can follow
    leaf: str  # a source no other file reads: changing it makes one lock stale


def package_names(count: int) -> list[str]:
    return [f"pkg-{i:03d}" for i in range(count)]


def synthetic_dists(shape: Shape) -> tuple[Dist, ...]:
    """Two versions of each package; dependencies only point forward, so it is a DAG.

    Dependencies reach at most a dozen names ahead, which keeps a lock's size near
    that of a real service's (tens of pins) whatever M is.
    """
    rng = random.Random(shape.seed)
    names = package_names(shape.packages)
    dists = []
    for i, name in enumerate(names):
        ahead = names[i + 1 : i + 13]
        for version in ("1.0", "1.1"):
            count = rng.randint(0, min(3, len(ahead)))
            deps = tuple(f"{d}>=1.0" for d in sorted(rng.sample(ahead, count)))
            dists.append(Dist(name, version, deps))
    return tuple(dists)


def _requirement_lines(
    rng: random.Random, names: Sequence[str], count: int, specs: Sequence[str]
) -> list[str]:
    return [
        f"{name}{rng.choice(specs)}"
        for name in sorted(rng.sample(list(names), min(count, len(names))))
    ]


# Only base and the constraints file hold pins back. A layer that capped a package
# base also installs would resolve it differently from base, which pip-compile-multi
# (rightly) refuses; real layered repositories avoid that too.
BASE_SPECS = ("", "", ">=1.0", "<1.1", "==1.0", "~=1.0")
LAYER_SPECS = ("", "", ">=1.0", "~=1.0", ">=1.0,!=1.0.1")


def synthetic_sources(shape: Shape) -> dict[str, str]:
    """The `requirements/` directory: `base.in`, then layers in the Open edX style.

    - `test-NN.in` reads `-r base.in` (a layer installed on top of base);
    - `dev-NN.in` reads `-r test-MM.in` (a layer on a layer);
    - `svc-NN.in` reads `-c base.txt` (a service constrained by base's lock);
    - `base.in` reads `-c constraints.txt`, a hand-written upper-bound file.

    Every `-r` and `-c` target sorts before the file that names it, so tools that only
    follow `-r` (pip-compile-multi) still compile `base.txt` before its `-c` readers.
    """
    rng = random.Random(shape.seed + 1)
    names = package_names(shape.packages)
    files: dict[str, str] = {
        "requirements/constraints.txt": "# Upper bounds we keep by hand.\n"
        + "".join(f"{n}<1.1\n" for n in names[::4]),
        "requirements/base.in": "\n".join(
            [
                "# What every service installs.",
                "-c constraints.txt",
                *_requirement_lines(rng, names, 5, BASE_SPECS),
            ]
        )
        + "\n",
    }
    last_test = "base"
    for i in range(1, shape.files):
        kind = i % 3
        if kind == 1:
            name, head, count = f"test-{i:02d}", "-r base.in", 3
            last_test = name
        elif kind == 2:
            name, head, count = f"dev-{i:02d}", f"-r {last_test}.in", 2
        else:
            name, head, count = f"svc-{i:02d}", "-c base.txt", 4
        body = [head, *_requirement_lines(rng, names, count, LAYER_SPECS)]
        files[f"requirements/{name}.in"] = "\n".join(body) + "\n"
    return files


def write_synthetic(shape: Shape, root: Path, wheels: Path) -> Synthetic:
    root.mkdir(parents=True)
    names = package_names(shape.packages)
    # Pin sites a real service has besides its locks, so that `check` pays for reading
    # them: project ranges, a CI workflow and tox deps (a tool no lock pins is left alone).
    deps = ", ".join(f'"{n}>=1.0"' for n in names[:10])
    table = [
        "[project]",
        'name = "synthetic"',
        'version = "1.0"',
        f"dependencies = [{deps}]",
        "[tool.pip-tools]",
        "no-index = true",
        'find-links = ["wheels"]',
    ]
    if shape.hashes:
        table.append("generate-hashes = true")
    (root / "pyproject.toml").write_text("\n".join(table) + "\n")
    site_files = {
        ".github/workflows/ci.yml": "jobs:\n  test:\n    steps:\n"
        "      - run: pip install -r requirements/base.txt\n"
        "      - run: python -m pip install tox==4.11.0\n",
        "tox.ini": "[testenv]\ndeps =\n    -r requirements/base.txt\n    tox-gh==1.3.1\n",
    }
    for rel, text in site_files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    shutil.copytree(wheels, root / "wheels")
    files = synthetic_sources(shape)
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    # base.in comes first: the rest read base.in, a test layer's .in, or base.txt.
    sources = tuple(rel for rel in files if rel.endswith(".in"))
    # A source is read when another file includes it, or its lock (`-c base.txt`).
    read = {
        inc.target.with_suffix(".in").as_posix()
        for rel in sources
        for inc in parse_requirements(PurePosixPath(rel), files[rel]).includes
    }
    leaves = [s for s in sources if s not in read]
    leaf = leaves[-1] if leaves else sources[-1]
    return Synthetic(root, sources, leaf)


# --- running and measuring ------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_kib: int | None
    returncode: int
    output: str


def _children(pid: int) -> list[int]:
    """The children of every thread of `pid` (pinsync starts compiles from threads)."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            found.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue
    return found


def _peak_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


class TreePeak:
    """The largest peak RSS of any one process under `pid`, sampled every 20 ms.

    wait4's rusage misses processes that were not reaped by a waiting parent, such as
    the compiles a fork server forks (it lets the kernel reap them); each process's
    own high-water mark (VmHWM) does not.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.kib = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        if Path(f"/proc/{pid}/task/{pid}/children").exists():
            self._thread.start()

    def _sample(self) -> None:
        while not self._done.wait(0.02):
            todo = _children(self.pid)
            while todo:
                pid = todo.pop()
                self.kib = max(self.kib, _peak_kib(pid))
                todo.extend(_children(pid))

    def stop(self) -> int:
        self._done.set()
        if self._thread.is_alive():
            self._thread.join()
        return self.kib


def run_measured(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> Run:
    """Run `argv` and report its wall time and the peak RSS of its largest process."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        list(argv), cwd=cwd, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    sampled = TreePeak(proc.pid)
    assert proc.stdout is not None
    output = proc.stdout.read().decode(errors="replace")
    proc.stdout.close()
    if hasattr(os, "wait4"):
        # wait4's rusage covers the child and the descendants it reaped: its maxrss is
        # the largest single process of the tree (not a sum over parallel compiles).
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        peak: int | None = max(usage.ru_maxrss, sampled.stop())
    else:  # pragma: no cover - Windows has no rusage
        proc.wait()
        sampled.stop()
        peak = None
    return Run(time.perf_counter() - start, peak, proc.returncode, output)


def run_steps(steps: Sequence[Sequence[str]], cwd: Path, env: Mapping[str, str]) -> Run:
    """Run `steps` one after another, as a shell loop would; stop at the first failure."""
    runs = []
    for argv in steps:
        runs.append(run_measured(argv, cwd, env))
        if runs[-1].returncode != 0:
            break
    peaks = [r.peak_kib for r in runs if r.peak_kib is not None]
    return Run(
        sum(r.seconds for r in runs),
        max(peaks) if peaks else None,
        runs[-1].returncode if runs else 0,
        "".join(r.output for r in runs),
    )


@dataclass(frozen=True)
class Timing:
    label: str
    median: float
    low: float
    high: float
    peak_mib: float | None
    runs: tuple[float, ...]

    @staticmethod
    def of(label: str, runs: Sequence[Run]) -> Timing:
        seconds = [r.seconds for r in runs]
        peaks = [r.peak_kib for r in runs if r.peak_kib is not None]
        return Timing(
            label,
            statistics.median(seconds),
            min(seconds),
            max(seconds),
            round(max(peaks) / 1024, 1) if peaks else None,
            tuple(round(s, 4) for s in seconds),
        )


@dataclass(frozen=True)
class Row:
    variant: str
    scenario: str
    ours: Timing
    theirs: Timing
    # "faster": theirs/ours must reach `target`; "within": ours/theirs must stay under it.
    goal: Goal
    target: float
    checks: tuple[str, ...] = ()

    @property
    def ratio(self) -> float:
        return self.theirs.median / self.ours.median

    @property
    def met(self) -> bool:
        if self.goal == "faster":
            return self.ratio >= self.target
        return self.ours.median <= self.target * self.theirs.median


@dataclass(frozen=True)
class Detection:
    variant: str
    edit: str
    pinsync_exit: int
    pcm_verify_exit: int | None


@dataclass(frozen=True)
class Report:
    machine: dict[str, str]
    shape: dict[str, object]
    rows: tuple[Row, ...]
    detections: tuple[Detection, ...]
    notes: tuple[str, ...] = field(default=())


class BenchFailure(PinsyncError):
    """A contender did not do the job it was timed for."""


def _expect(label: str, run: Run, code: int) -> Run:
    if run.returncode != code:
        raise BenchFailure(f"{label}: exit {run.returncode}, expected {code}\n{run.output[-2000:]}")
    return run


class Bench:
    """One benchmark run: a wheelhouse, a cache shared by every contender, and commands."""

    def __init__(self, work: Path, jobs: int | None, repeat: int) -> None:
        self.work = work
        self.jobs = jobs
        self.repeat = repeat
        # Every contender shares one pip-tools cache, warmed by the setup compiles.
        base = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        base["XDG_CACHE_HOME"] = str(work / "cache")
        self.env = sealed_env(base, None)
        self.pinsync_env = {**self.env, "PYTHONPATH": str(TOOLS)}
        for key in ("PINSYNC_DEFAULT_ROOT", "PINSYNC_INVOKED_FROM"):
            self.pinsync_env.pop(key, None)
        self._copies = 0

    def copy(self, tree: Path) -> Path:
        self._copies += 1
        target = self.work / f"run-{self._copies:04d}"
        shutil.copytree(tree, target, symlinks=True)
        return target

    def pinsync(self, root: Path, *args: str, tools: Path | None = None) -> Run:
        """Run pinsync; with `tools`, the pinsync of that `tools/` directory (another
        checkout's, to compare with)."""
        argv = [sys.executable, "-m", "pinsync", *args, "--root", str(root)]
        if self.jobs and args[0] == "lock":
            argv += ["--jobs", str(self.jobs)]
        env = self.pinsync_env if tools is None else {**self.pinsync_env, "PYTHONPATH": str(tools)}
        return run_measured(argv, root, env)

    def compile_steps(self, syn: Synthetic) -> list[list[str]]:
        return [
            [
                sys.executable,
                "-m",
                "piptools",
                "compile",
                "--quiet",
                src,
                "--output-file",
                _txt(src),
            ]
            for src in syn.sources
        ]

    def naive_lock(self, syn: Synthetic, root: Path) -> Run:
        return run_steps(self.compile_steps(syn), root, self.env)

    def naive_check(self, syn: Synthetic, root: Path) -> Run:
        """Recompile every lock in a scratch copy and compare bytes: `make upgrade && git diff`."""
        start = time.perf_counter()
        scratch = Path(tempfile.mkdtemp(dir=self.work))
        shutil.copytree(root, scratch, symlinks=True, dirs_exist_ok=True)
        run = run_steps(self.compile_steps(syn), scratch, self.env)
        drift = [
            src
            for src in syn.sources
            if (root / _txt(src)).read_bytes() != (scratch / _txt(src)).read_bytes()
        ]
        shutil.rmtree(scratch)
        code = run.returncode or (1 if drift else 0)
        return Run(time.perf_counter() - start, run.peak_kib, code, run.output + "\n".join(drift))

    def pcm(self, root: Path, *args: str) -> Run:
        return run_measured([sys.executable, "-m", "pipcompilemulti.cli_v1", *args], root, self.env)

    def repeated(self, label: str, make: Callable[[], Run], expect: int = 0) -> Timing:
        return Timing.of(label, [_expect(label, make(), expect) for _ in range(self.repeat)])

    def interleaved(
        self,
        ours: tuple[str, Callable[[], Run]],
        theirs: tuple[str, Callable[[], Run]],
        expect: tuple[int, int] = (0, 0),
    ) -> tuple[Timing, Timing]:
        """Alternate the two sides so that a slow patch of the machine hits both."""
        a: list[Run] = []
        b: list[Run] = []
        for _ in range(self.repeat):
            for (label, make), runs, code in ((ours, a, expect[0]), (theirs, b, expect[1])):
                runs.append(_expect(label, make(), code))
        return Timing.of(ours[0], a), Timing.of(theirs[0], b)


def _txt(src: str) -> str:
    return src[: -len(".in")] + ".txt"


def _locks(root: Path, syn: Synthetic) -> dict[str, bytes]:
    return {_txt(s): (root / _txt(s)).read_bytes() for s in syn.sources}


def _hand_edit(path: Path) -> str:
    """Move the first `==1.x` pin of a lock by hand, as a reviewer might miss."""
    lines = path.read_text().splitlines(keepends=True)
    for i, line in enumerate(lines):
        for old, new in (("==1.1", "==1.0"), ("==1.0", "==1.1")):
            if old in line and not line.startswith("#"):
                lines[i] = line.replace(old, new, 1)
                path.write_text("".join(lines))
                return f"{path.name}: {line.split()[0]} -> {new[2:]}"
    raise BenchFailure(f"{path}: no pin to edit")


def _new_requirement(lock: Path, names: Sequence[str]) -> str:
    """A package the lock does not pin yet: adding it really changes the resolution."""
    text = lock.read_text()
    found = next((n for n in reversed(names) if f"\n{n}==" not in text), None)
    if found is None:
        raise BenchFailure(f"{lock.name} pins every package already: use more --packages")
    return found


def run_variant(
    bench: Bench, shape: Shape, wheels: Path, with_pcm: bool
) -> tuple[list[Row], list[Detection], Path]:
    variant = "hashes" if shape.hashes else "no hashes"
    template = write_synthetic(shape, bench.work / f"template-{variant.replace(' ', '-')}", wheels)
    syn = template
    rows: list[Row] = []

    # Setup, untimed: one repository locked by pinsync, one by the plain loop. The
    # compiles also warm the shared cache, so every timed run below starts warm.
    locked = bench.copy(template.root)
    if (run := bench.pinsync(locked, "lock")).returncode != 0:
        raise BenchFailure(f"pinsync lock failed:\n{run.output}")
    plain = bench.copy(template.root)
    if (run := bench.naive_lock(syn, plain)).returncode != 0:
        raise BenchFailure(f"pip-compile failed:\n{run.output}")
    ours_locks, plain_locks = _locks(locked, syn), _locks(plain, syn)
    same = all(strip_stamp(ours_locks[k].decode()) == plain_locks[k].decode() for k in plain_locks)
    if not same:
        raise BenchFailure("pinsync lock and the plain pip-compile loop wrote different locks")

    # 1. lock from scratch vs a sequential loop of pip-compile.
    ours, theirs = bench.interleaved(
        ("pinsync lock", lambda: bench.pinsync(bench.copy(template.root), "lock")),
        ("pip-compile loop", lambda: bench.naive_lock(syn, bench.copy(template.root))),
    )
    rows.append(
        Row(
            variant,
            "lock from scratch",
            ours,
            theirs,
            "faster",
            5.0,
            ("locks byte-identical to plain pip-compile's, stamp aside",),
        )
    )

    # 1b. the same lock, its layers aligned (opted in with layers-disagree), vs alignment
    # turned off: what the joint resolution of each group costs on a layered repository.
    def unaligned() -> Path:
        root = bench.copy(template.root)
        with (root / "pyproject.toml").open("a") as fh:
            fh.write("[tool.pinsync]\nalign = false\n")
        return root

    aligned_roots: list[Path] = []

    def aligned() -> Run:
        aligned_roots.append(bench.copy(template.root))
        with (aligned_roots[-1] / "pyproject.toml").open("a") as fh:
            fh.write('[tool.pinsync]\nlayers-disagree = "warning"\n')
        return bench.pinsync(aligned_roots[-1], "lock")

    ours, theirs = bench.interleaved(
        ("pinsync lock (aligned)", aligned),
        ("pinsync lock, align = false", lambda: bench.pinsync(unaligned(), "lock")),
    )
    report = json.loads(
        bench.pinsync(aligned_roots[-1], "check", "--offline", "--format", "json").output
    )
    disagree = [
        f for f in report["findings"] if f["kind"] in ("layers-disagree", "co-installed-conflict")
    ]
    if disagree:
        raise BenchFailure(f"the aligned lock left layers that disagree: {disagree[0]['message']}")
    rows.append(
        Row(
            variant,
            "aligned lock of the layered tree vs align = false",
            ours,
            theirs,
            "within",
            1.5,
            ("no layers-disagree after the aligned lock",),
        )
    )

    # 2. one leaf .in changed: incremental lock vs a full relock.
    extra = _new_requirement(locked / _txt(syn.leaf), package_names(shape.packages))

    def with_leaf_change() -> Path:
        root = bench.copy(locked)
        with (root / syn.leaf).open("a") as fh:
            fh.write(f"{extra}\n")
        return root

    seen: dict[str, dict[str, bytes]] = {}

    def incremental() -> Run:
        root = with_leaf_change()
        run = bench.pinsync(root, "lock")
        seen["incremental"] = _locks(root, syn)
        return run

    def full() -> Run:
        root = with_leaf_change()
        run = bench.pinsync(root, "lock", "--force")
        seen["full"] = _locks(root, syn)
        return run

    ours, theirs = bench.interleaved(
        ("pinsync lock (1 stale)", incremental), ("pinsync lock --force", full)
    )
    moved = sorted(k for k, v in seen["incremental"].items() if v != ours_locks[k])
    if moved != [_txt(syn.leaf)] or seen["incremental"] != seen["full"]:
        raise BenchFailure(f"incremental lock changed {moved}, expected only {_txt(syn.leaf)}")
    rows.append(
        Row(
            variant,
            "lock, one leaf .in changed",
            ours,
            theirs,
            "faster",
            10.0,
            (f"only {_txt(syn.leaf)} rewritten; same bytes as the full relock",),
        )
    )

    # 3. check in sync vs recompile-and-diff.
    ours, theirs = bench.interleaved(
        ("pinsync check", lambda: bench.pinsync(locked, "check")),
        ("recompile-and-diff loop", lambda: bench.naive_check(syn, plain)),
    )
    rows.append(Row(variant, "check-lock, in sync", ours, theirs, "faster", 20.0))

    detections = []
    pcm_tree: Path | None = None
    if with_pcm:
        # 4. check vs pip-compile-multi verify, on a copy compiled its way.
        pcm_tree = bench.copy(template.root)
        if (run := bench.pcm(pcm_tree)).returncode != 0:
            raise BenchFailure(f"pip-compile-multi failed:\n{run.output}")
        ours, theirs = bench.interleaved(
            ("pinsync check", lambda: bench.pinsync(locked, "check")),
            ("pip-compile-multi verify", lambda: bench.pcm(pcm_tree, "verify")),
        )
        rows.append(Row(variant, "check-lock vs pcm verify, in sync", ours, theirs, "within", 2.0))

    # The same hand edit of one lock, shown to both checkers.
    edited = bench.copy(locked)
    edit = _hand_edit(edited / _txt(syn.leaf))
    pcm_exit = None
    if pcm_tree is not None:
        pcm_edited = bench.copy(pcm_tree)
        _hand_edit(pcm_edited / _txt(syn.leaf))
        pcm_exit = bench.pcm(pcm_edited, "verify").returncode
    detections.append(Detection(variant, edit, bench.pinsync(edited, "check").returncode, pcm_exit))
    return rows, detections, locked


def uv_steps(syn: Synthetic, hashes: bool) -> list[list[str]]:
    """A plain `uv pip compile` loop over the tree."""
    flags = ["--generate-hashes"] if hashes else []
    return [
        [find_uv(), "pip", "compile", "--quiet", *flags, src, "-o", _txt(src)]
        for src in syn.sources
    ]


def run_uv_variant(bench: Bench, syn: Synthetic, hashes: bool) -> Row:
    """A repository of uv-written locks: `pinsync lock --force` against the uv loop.

    Both start from the same uv-written locks (uv keeps their pins, as pinsync does),
    and must end with the same bytes.
    """
    variant = "hashes" if hashes else "no hashes"
    steps = uv_steps(syn, hashes)
    # The interpreter named, as an activated venv would: else each uv run spends
    # ~0.1 s discovering one, which pinsync (naming its own) does not.
    uv_env = {**sealed_env(bench.env, None, "uv"), "UV_PYTHON": sys.executable}
    locked = bench.copy(syn.root)
    # uv reads no [tool.pip-tools] and writes no --find-links into its header: a uv
    # repository keeps the wheelhouse in [tool.uv.pip], which both sides then read.
    # Alignment is off so that both compile each lock once from its own sources
    # (aligning is what the other rows measure; uv has no joint resolution).
    with (locked / "pyproject.toml").open("a") as fh:
        fh.write('[tool.uv.pip]\nno-index = true\nfind-links = ["wheels"]\n')
        fh.write("[tool.pinsync]\nalign = false\n")
    if (run := run_steps(steps, locked, uv_env)).returncode != 0:
        raise BenchFailure(f"uv pip compile failed:\n{run.output[-2000:]}")
    seen: dict[str, dict[str, bytes]] = {}

    def ours() -> Run:
        root = bench.copy(locked)
        run = bench.pinsync(root, "lock", "--force")
        seen["ours"] = _locks(root, syn)
        return run

    def theirs() -> Run:
        root = bench.copy(locked)
        run = run_steps(steps, root, uv_env)
        seen["theirs"] = _locks(root, syn)
        return run

    mine, loop = bench.interleaved(
        ("pinsync lock --force (uv locks)", ours), ("uv pip compile loop", theirs)
    )
    if any(strip_stamp(v.decode()) != seen["theirs"][k].decode() for k, v in seen["ours"].items()):
        raise BenchFailure("pinsync lock and the uv pip compile loop wrote different uv locks")
    return Row(
        variant,
        "uv locks, relock all",
        mine,
        loop,
        "within",
        1.3,
        ("locks byte-identical to the uv loop's, stamp aside",),
    )


# A small service's requirements, resolved against the public index by `--pypi`.
PYPI_TREE = {
    "requirements/base.in": "django>=4.2,<5.1\nrequests\ncelery\npsycopg[binary]\n",
    "requirements/test.in": "-r base.in\npytest\npytest-django\ncoverage\n",
    "requirements/dev.in": "-r test.in\nipython\n",
    "requirements/docs.in": "-c base.txt\nsphinx\n",
}


def run_pypi(bench: Bench) -> tuple[list[Row], list[str]]:
    """The PyPI tree locked from scratch by pinsync, a pip-compile loop and a uv loop,
    with an empty cache each run (cold) and with one they all warmed (warm)."""
    root = bench.work / "pypi-template"
    for rel, text in PYPI_TREE.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    syn = Synthetic(root, tuple(PYPI_TREE), "requirements/docs.in")
    rows: list[Row] = []
    notes: list[str] = []
    for temperature in ("cold", "warm"):
        row, more = _pypi_row(bench, syn, temperature)
        rows.append(row)
        notes += more
    return rows, notes


def _pypi_row(bench: Bench, syn: Synthetic, temperature: str) -> tuple[Row, list[str]]:
    warm_cache = bench.work / "pypi-cache"
    uv_steps = [
        [find_uv(), "pip", "compile", "--quiet", src, "-o", _txt(src)] for src in syn.sources
    ]

    def env(base: Mapping[str, str]) -> dict[str, str]:
        cold = Path(tempfile.mkdtemp(dir=bench.work))  # an empty cache for each cold run
        return {**base, "XDG_CACHE_HOME": str(warm_cache if temperature == "warm" else cold)}

    uv_env = {**sealed_env(bench.env, None, "uv"), "UV_PYTHON": sys.executable}
    if temperature == "warm":
        for steps, base in ((bench.compile_steps(syn), bench.env), (uv_steps, uv_env)):
            _expect("warming the caches", run_steps(steps, bench.copy(syn.root), env(base)), 0)
    seen: dict[str, dict[str, bytes]] = {}

    def ours() -> Run:
        tree = bench.copy(syn.root)
        argv = [sys.executable, "-m", "pinsync", "lock", "--root", str(tree)]
        run = run_measured(argv, tree, env(bench.pinsync_env))
        seen["ours"] = _locks(tree, syn)
        return run

    def pip_loop() -> Run:
        tree = bench.copy(syn.root)
        run = run_steps(bench.compile_steps(syn), tree, env(bench.env))
        seen["pip"] = _locks(tree, syn)
        return run

    mine, loop = bench.interleaved(
        (f"pinsync lock ({temperature})", ours), (f"pip-compile loop ({temperature})", pip_loop)
    )
    row = Row("PyPI", f"a service's tree, {temperature} caches", mine, loop, "faster", 1.0)
    notes = []
    differ = [
        k for k, v in seen["ours"].items() if strip_stamp(v.decode()) != seen["pip"][k].decode()
    ]
    if differ:
        notes.append(f"PyPI ({temperature}): pinsync's locks differ from the loop's: {differ}")
    uv_loop = bench.repeated(
        f"uv loop ({temperature})", lambda: run_steps(uv_steps, bench.copy(syn.root), env(uv_env))
    )
    notes.append(f"PyPI, {temperature} caches: a `uv pip compile` loop took {_fmt(uv_loop)}")
    return row, notes


def warm_nox_check(bench: Bench, root: Path) -> Timing:
    """`nox -s check-lock` end to end, its environment already built and current."""
    noxfile = TOOLS.parent / "noxfile.py"
    argv = [
        sys.executable,
        "-m",
        "nox",
        "--noxfile",
        str(noxfile),
        "-s",
        "check-lock",
        "--",
        "--root",
        str(root),
    ]
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PINSYNC_DEFAULT_ROOT", "PINSYNC_INVOKED_FROM")
    }
    env["XDG_CACHE_HOME"] = bench.env["XDG_CACHE_HOME"]
    warmup = run_measured(argv, root, env)
    if warmup.returncode != 0:
        raise BenchFailure(f"nox -s check-lock failed:\n{warmup.output[-2000:]}")
    return bench.repeated("nox -s check-lock (warm)", lambda: run_measured(argv, root, env))


# --- scale: the same commands at N locks, for N in --scale --------------------------


# The figures of one N, in the order the table shows them.
SCALE_COLUMNS = (
    "check",
    "check --offline",
    "no-op lock",
    "one leaf changed",
    "pip-compile-multi verify",
)
# Issue #24's targets: check within 2x of verify, a no-op lock within 1.3x of check,
# and a check that fits in 64 MiB at the largest N.
CHECK_OVER_VERIFY = 2.0
NOOP_OVER_CHECK = 1.3
PEAK_MIB = 64.0


@dataclass(frozen=True)
class ScaleRow:
    files: int
    pins_per_lock: float  # the mean: it must not grow with N, or N is not what grows
    timings: tuple[Timing, ...]  # one per SCALE_COLUMNS entry that ran
    pinsync: str = "this"  # whose pinsync: this checkout's, or the --against one

    def of(self, label: str) -> Timing | None:
        return next((t for t in self.timings if t.label == label), None)


def scales(text: str) -> tuple[int, ...]:
    """`30,300,1000` -> (30, 300, 1000)."""
    try:
        found = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected N[,N...]") from None
    if not found or min(found) < 2:
        raise argparse.ArgumentTypeError(f"{text!r}: every N must be 2 or more")
    return found


def _pins_per_lock(root: Path, syn: Synthetic) -> float:
    counts = [
        len(parse_requirements(PurePosixPath(_txt(s)), (root / _txt(s)).read_text()).pins())
        for s in syn.sources
    ]
    return round(statistics.mean(counts), 1)


def run_scale(
    bench: Bench,
    files: int,
    packages: int,
    wheels: Path,
    with_pcm: bool,
    against: Path | None = None,
) -> list[ScaleRow]:
    """The everyday commands on one locked tree of `files` locks (hashes, every lock
    stamped), each timed `repeat` times, the commands taking turns.

    With `against` (another checkout's `tools/`), its pinsync runs every command too,
    on the same trees, taking turns with this one: a second row for this N.
    """
    shape = Shape(files, packages, hashes=True)
    syn = write_synthetic(shape, bench.work / f"scale-{files}", wheels)
    locked = bench.copy(syn.root)
    _expect(f"pinsync lock ({files} files)", bench.pinsync(locked, "lock"), 0)
    extra = _new_requirement(locked / _txt(syn.leaf), package_names(packages))
    before = _locks(locked, syn)

    def leaf_changed(tools: Path | None) -> Run:
        root = bench.copy(locked)
        with (root / syn.leaf).open("a") as fh:
            fh.write(f"{extra}\n")
        run = bench.pinsync(root, "lock", tools=tools)
        moved = sorted(k for k, v in _locks(root, syn).items() if v != before[k])
        if run.returncode == 0 and moved != [_txt(syn.leaf)]:
            raise BenchFailure(f"one leaf changed: lock rewrote {moved}")
        shutil.rmtree(root)
        return run

    def commands(tools: Path | None) -> list[tuple[str, Callable[[], Run]]]:
        return [
            ("check", lambda: bench.pinsync(locked, "check", tools=tools)),
            ("check --offline", lambda: bench.pinsync(locked, "check", "--offline", tools=tools)),
            ("no-op lock", lambda: bench.pinsync(locked, "lock", tools=tools)),
            ("one leaf changed", lambda: leaf_changed(tools)),
        ]

    sides: list[tuple[str, list[tuple[str, Callable[[], Run]]]]] = [("this", commands(None))]
    if against is not None:
        sides.append((str(against), commands(against)))
    shared: list[tuple[str, Callable[[], Run]]] = []
    if with_pcm:
        pcm_tree = bench.copy(syn.root)
        # The backtracking resolver: the legacy one gives up on the bigger trees.
        _expect(f"pip-compile-multi ({files} files)", bench.pcm(pcm_tree, "--backtracking"), 0)
        shared.append(("pip-compile-multi verify", lambda: bench.pcm(pcm_tree, "verify")))
    runs: dict[tuple[str, str], list[Run]] = {}
    for _ in range(bench.repeat):
        # Taking turns, command by command and side by side: a slow patch of a shared
        # machine hits them all.
        for i in range(len(sides[0][1])):
            for side, contenders in sides:
                label, make = contenders[i]
                runs.setdefault((side, label), []).append(_expect(label, make(), 0))
        for label, make in shared:
            runs.setdefault(("", label), []).append(_expect(label, make(), 0))
    rows = []
    for side, contenders in sides:
        noop = runs[(side, "no-op lock")][-1].output
        if "wrote 0 files" not in noop:
            raise BenchFailure(f"the no-op lock wrote something:\n{noop[-2000:]}")
        timings = [Timing.of(label, runs[(side, label)]) for label, _ in contenders]
        timings += [Timing.of(label, runs[("", label)]) for label, _ in shared]
        rows.append(ScaleRow(files, _pins_per_lock(locked, syn), tuple(timings), side))
    return rows


def render_scale(rows: Sequence[ScaleRow]) -> str:
    head = ["N", "pinsync", "pins/lock", *SCALE_COLUMNS, "check / verify", "no-op lock / check"]
    head.append("peak RSS MiB (check, no-op lock)")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [str(row.files), row.pinsync, f"{row.pins_per_lock:g}"]
        cells += [_fmt(t) if (t := row.of(c)) else "not run" for c in SCALE_COLUMNS]
        check, verify, noop = (
            row.of("check"),
            row.of("pip-compile-multi verify"),
            row.of("no-op lock"),
        )
        if check and verify:
            ratio = check.median / verify.median
            met = "yes" if ratio <= CHECK_OVER_VERIFY else "NO"
            cells.append(f"{ratio:.2f}x (≤ {CHECK_OVER_VERIFY:g}x: {met})")
        else:
            cells.append("-")
        if check and noop:
            ratio = noop.median / check.median
            met = "yes" if ratio <= NOOP_OVER_CHECK else "NO"
            cells.append(f"{ratio:.2f}x (≤ {NOOP_OVER_CHECK:g}x: {met})")
        else:
            cells.append("-")
        peaks = [t.peak_mib for t in (check, noop) if t is not None]
        cells.append(" / ".join(str(p) for p in peaks))
        lines.append("| " + " | ".join(cells) + " |")
    for largest in rows:
        if largest.files != max(r.files for r in rows):
            continue
        check = largest.of("check")
        if check is not None and check.peak_mib is not None:
            met = "yes" if check.peak_mib <= PEAK_MIB else "NO"
            lines.append(
                f"\npeak RSS of check ({largest.pinsync}) at N={largest.files}: {check.peak_mib} MiB "
                f"(≤ {PEAK_MIB:g} MiB: {met})"
            )
    return "\n".join(lines) + "\n"


def main_scale(args: argparse.Namespace, with_pcm: bool) -> int:
    """`--scale N,N,...`: the scale table instead of the comparison table."""
    rows: list[ScaleRow] = []
    with _workdir(args.keep) as work:
        bench = Bench(work, args.jobs, args.repeat)
        wheels = build_wheelhouse(synthetic_dists(Shape(2, args.packages)), work / "wheels")
        try:
            for files in args.scale:
                print(f"== {files} files, {args.packages} packages, hashes", flush=True)
                rows += run_scale(bench, files, args.packages, wheels, with_pcm, args.against)
        except BenchFailure as exc:
            print(f"pinsync bench: error: {exc}", file=sys.stderr)
            return 1
    print()
    print(f"machine: {machine()}")
    sys.stdout.write(render_scale(rows))
    data = {
        "machine": machine(),
        "packages": args.packages,
        "repeat": args.repeat,
        "scale": [asdict(r) for r in rows],
    }
    where = args.json or Path(tempfile.gettempdir()) / "pinsync-bench-scale.json"
    where.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {where}")
    return 0


# --- reporting ------------------------------------------------------------------------


def _fmt(t: Timing) -> str:
    if t.median >= 10:
        return f"{t.median:.1f} s ({t.low:.1f}-{t.high:.1f})"
    return f"{t.median:.2f} s ({t.low:.2f}-{t.high:.2f})"


def render_table(report: Report) -> str:
    head = "| variant | scenario | pinsync | alternative | ratio | target | met | peak RSS (MiB) ours / theirs |"
    lines = [head, "|" + "---|" * 8]
    for row in report.rows:
        if row.goal == "faster":
            ratio, target = f"{row.ratio:.1f}x faster", f"≥ {row.target:g}x faster"
        else:
            ratio, target = f"{1 / row.ratio:.2f}x its time", f"≤ {row.target:g}x its time"
        peaks = f"{row.ours.peak_mib} / {row.theirs.peak_mib}"
        lines.append(
            f"| {row.variant} | {row.scenario} | {row.ours.label}: {_fmt(row.ours)} "
            f"| {row.theirs.label}: {_fmt(row.theirs)} | {ratio} | {target} "
            f"| {'yes' if row.met else 'NO'} | {peaks} |"
        )
    for d in report.detections:
        pcm = (
            "not run"
            if d.pcm_verify_exit is None
            else ("caught (exit 1)" if d.pcm_verify_exit else "missed (exit 0)")
        )
        ours = "caught" if d.pinsync_exit == 1 else f"missed (exit {d.pinsync_exit})"
        lines.append(
            f"\nhand edit ({d.variant}) `{d.edit}`: pinsync check {ours}; pip-compile-multi verify {pcm}"
        )
    for note in report.notes:
        lines.append(f"\n{note}")
    return "\n".join(lines) + "\n"


def machine() -> dict[str, str]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": str(os.cpu_count()),
        "python": platform.python_version(),
        "pip-tools": pip_tools_version(),
    }


@contextmanager
def _workdir(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="pinsync-bench-"))
    try:
        yield path
    finally:
        if keep:
            print(f"kept {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pinsync bench", description=__doc__.splitlines()[0] if __doc__ else None
    )
    p.add_argument("--files", "-n", type=int, default=30, help="number of .in files (default: 30)")
    p.add_argument(
        "--packages", "-m", type=int, default=80, help="packages in the wheelhouse (default: 80)"
    )
    p.add_argument("--repeat", "-r", type=int, default=5, help="runs per measurement (default: 5)")
    add_jobs_option(p)
    p.add_argument("--variants", choices=("both", "hashes", "no-hashes"), default="both")
    p.add_argument(
        "--tiny", action="store_true", help="4 files, 12 packages, 1 run: does it still work?"
    )
    p.add_argument(
        "--scale",
        type=scales,
        default=None,
        metavar="N[,N...]",
        help="instead: check, check --offline, a no-op lock, one leaf changed and "
        "pip-compile-multi verify on trees of N locks each (e.g. 30,300,1000)",
    )
    p.add_argument(
        "--against",
        type=Path,
        default=None,
        metavar="TOOLS",
        help="with --scale: also time the pinsync of another checkout's tools/ directory, "
        "taking turns with this one on the same trees",
    )
    p.add_argument("--no-pcm", action="store_true", help="skip pip-compile-multi")
    p.add_argument("--no-nox", action="store_true", help="skip the warm `nox -s check-lock` figure")
    p.add_argument("--no-uv", action="store_true", help="skip the uv locks against the uv loop")
    p.add_argument(
        "--pypi",
        action="store_true",
        help="also lock a small real tree against the public index, cold and warm (needs network)",
    )
    p.add_argument(
        "--json",
        type=Path,
        default=None,
        help="where to write the figures (default: pinsync-bench-results.json in the temp dir, "
        "so that a run leaves the work tree clean)",
    )
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.tiny:
        args.files, args.packages, args.repeat = 4, 12, 1
    if args.files < 2 or args.packages < 8 or args.repeat < 1:
        print(
            "pinsync bench: error: need --files >= 2, --packages >= 8, --repeat >= 1",
            file=sys.stderr,
        )
        return 2
    with_pcm = not args.no_pcm
    if with_pcm and find_spec("pipcompilemulti") is None:
        print(
            "pinsync bench: error: pip-compile-multi is not installed (use --no-pcm)",
            file=sys.stderr,
        )
        return 2
    # pip byte-compiled pip-compile-multi when it installed it; do the same for pinsync,
    # which runs from source, so that neither side pays for compiling its modules.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(TOOLS / "pinsync")], check=True)
    if args.scale:
        if args.against is not None:
            against = args.against.resolve()
            subprocess.run(
                [sys.executable, "-m", "compileall", "-q", str(against / "pinsync")], check=True
            )
            args.against = against
        return main_scale(args, with_pcm)
    variants = {"both": (True, False), "hashes": (True,), "no-hashes": (False,)}[args.variants]
    try:
        report, extra = _run(args, variants, with_pcm)
    except BenchFailure as exc:
        print(f"pinsync bench: error: {exc}", file=sys.stderr)
        return 1
    print()
    print(f"machine: {report.machine}")
    sys.stdout.write(render_table(report))
    data = {**asdict(report), **extra}
    data["rows"] = [{**asdict(r), "ratio": r.ratio, "met": r.met} for r in report.rows]
    where = args.json or Path(tempfile.gettempdir()) / "pinsync-bench-results.json"
    where.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {where}")
    return 0


def _run(
    args: argparse.Namespace, variants: tuple[bool, ...], with_pcm: bool
) -> tuple[Report, dict[str, object]]:
    rows: list[Row] = []
    detections: list[Detection] = []
    notes: list[str] = []
    extra: dict[str, object] = {}
    if args.files < 30:
        notes.append(
            f"The targets are set for 30 files; at {args.files} the ratios say little "
            "(a full relock has few compiles to save)."
        )
    with _workdir(args.keep) as work:
        bench = Bench(work, args.jobs, args.repeat)
        wheels = build_wheelhouse(
            synthetic_dists(Shape(args.files, args.packages)), work / "wheels"
        )
        locked = work
        for hashes in variants:
            shape = Shape(args.files, args.packages, hashes)
            print(
                f"== {args.files} files, {args.packages} packages, {'hashes' if hashes else 'no hashes'}",
                flush=True,
            )
            new_rows, new_detections, locked = run_variant(bench, shape, wheels, with_pcm)
            rows += new_rows
            if not args.no_uv:
                template = write_synthetic(shape, work / f"uv-template-{hashes}", wheels)
                rows.append(run_uv_variant(bench, template, hashes))
            detections += new_detections
        if args.pypi:
            print("== a service's tree against the public index", flush=True)
            pypi_rows, pypi_notes = run_pypi(bench)
            rows += pypi_rows
            notes += pypi_notes
        if not args.no_nox:
            nox_timing = warm_nox_check(bench, locked)
            extra["warm_nox_check_lock"] = asdict(nox_timing)
            notes.append(
                f"warm `nox -s check-lock`, end to end: {_fmt(nox_timing)}, peak {nox_timing.peak_mib} MiB"
            )
    report = Report(
        machine(),
        {
            "files": args.files,
            "packages": args.packages,
            "repeat": args.repeat,
            "jobs": args.jobs or os.cpu_count(),
        },
        tuple(rows),
        tuple(detections),
        tuple(notes),
    )
    return report, extra
