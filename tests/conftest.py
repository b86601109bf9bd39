"""Fixtures that build real repositories, compiled by the real pip-compile, offline."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.wheelhouse import Dist, build_wheelhouse
from pinsync.toolchain import sealed_env

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / "tools"

# The packages every test repository can draw on. `late` ones are added to the
# wheelhouse only after a repository was first compiled, so that a lock that keeps
# its pins is told apart from one that upgrades them.
EARLY = (
    Dist("mlflow", "2.9.0", ("flask>=2", "numpy>=1.0")),
    Dist("mlflow", "3.4.0", ("flask>=2", "numpy>=1.1")),
    Dist("flask", "2.0.0", ("Jinja2>=3",)),
    Dist("Jinja2", "3.1.0"),
    Dist("numpy", "1.0"),
    Dist("requests", "2.31.0", ("urllib3<3",)),
    Dist("urllib3", "1.26.18"),
    Dist("urllib3", "2.0.3"),
    Dist("zope.sqlalchemy", "3.1", ("SQLAlchemy>=1.4",)),
    Dist("SQLAlchemy", "2.0.0"),
    Dist("packaging_legacy", "23.0.post0"),
    Dist("gunicorn", "21.2.0"),
    Dist("pytest", "8.0.0"),
)
LATE = (
    Dist("numpy", "1.1"),
    Dist("mlflow", "3.5.0", ("flask>=2", "numpy>=1.1")),
    Dist("flask", "3.0.0", ("Jinja2>=3",)),
    Dist("Jinja2", "3.1.4"),
    Dist("gunicorn", "22.0.0"),
)

PIP_TOOLS_TABLE = '[tool.pip-tools]\nno-index = true\nfind-links = ["wheels"]\n'


@pytest.fixture(autouse=True)
def clean_pip_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No test may depend on, or be changed by, the machine's PIP_* settings."""
    for key in list(os.environ):
        # GITHUB_*: run in Actions, a `--format github` check must not append to the
        # real job summary.
        if key.startswith(("PIP_", "GITHUB_")) or key in (
            "CUSTOM_COMPILE_COMMAND",
            "PINSYNC_DEFAULT_ROOT",
            "PINSYNC_INVOKED_FROM",
        ):
            monkeypatch.delenv(key)
    # pip-tools caches dependency metadata by name and version; our test wheels reuse
    # names and versions with different metadata, so every test gets its own cache.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="session")
def early_wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheelhouse(EARLY, tmp_path_factory.mktemp("early-wheels"))


@pytest.fixture(scope="session")
def all_wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheelhouse(EARLY + LATE, tmp_path_factory.mktemp("all-wheels"))


@dataclass(frozen=True)
class Repo:
    """A repository on disk, and the ways a test drives it."""

    path: Path

    def write(self, files: Mapping[str, str]) -> None:
        for name, text in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(text.encode())

    def read(self, name: str) -> str:
        return (self.path / name).read_bytes().decode()

    def snapshot(self) -> dict[str, bytes]:
        return {
            p.relative_to(self.path).as_posix(): p.read_bytes()
            for p in sorted(self.path.rglob("*"))
            if p.is_file() and "wheels" not in p.parts and ".git" not in p.parts
        }

    def add_sdist(self, name: str, setup_py: bytes) -> None:
        """A source distribution NAME-1.0 in `wheels/`, whose setup.py is `setup_py`."""
        import io
        import tarfile

        files = {
            f"{name}-1.0/setup.py": setup_py,
            f"{name}-1.0/PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n".encode(),
        }
        with tarfile.open(self.path / "wheels" / f"{name}-1.0.tar.gz", "w:gz") as tf:
            for member, data in files.items():
                info = tarfile.TarInfo(member)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))

    def use_wheels(self, wheels: Path) -> None:
        shutil.rmtree(self.path / "wheels", ignore_errors=True)
        shutil.copytree(wheels, self.path / "wheels")

    def pip_compile(self, *args: str, cwd: Path | None = None, custom: str | None = None) -> None:
        """Plain pip-compile, as a user ran it before adopting pinsync; `custom` is the
        CUSTOM_COMPILE_COMMAND a Makefile exports (`make upgrade`)."""
        subprocess.run(
            [sys.executable, "-m", "piptools", "compile", "--quiet", *args],
            cwd=cwd or self.path,
            env=sealed_env(os.environ, custom),
            check=True,
            capture_output=True,
        )

    def start(self, *args: str, tmpdir: Path) -> subprocess.Popen[str]:
        """The CLI in the background, in a session of its own, its temp files in `tmpdir`."""
        return subprocess.Popen(
            [sys.executable, "-m", "pinsync", *args],
            cwd=self.path,
            env={**os.environ, "PYTHONPATH": str(TOOLS), "TMPDIR": str(tmpdir)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            # A shell starts background jobs with SIGINT ignored, and an ignored signal
            # stays ignored across exec: Ctrl-C must reach pinsync as from a terminal.
            preexec_fn=_default_sigint,
        )

    def pinsync(
        self,
        *args: str,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """The CLI, in a process of its own, exactly as nox or a hook would run it."""
        full_env = {**os.environ, "PYTHONPATH": str(TOOLS), **(env or {})}
        proc = subprocess.run(
            [sys.executable, "-m", "pinsync", *args],
            cwd=cwd or self.path,
            env=full_env,
            capture_output=True,
            text=True,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"pinsync {args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
            )
        return proc


def pip_temporaries(directory: Path) -> list[Path]:
    """pip's temporary directories (pip-*) anywhere under `directory`, read while pip
    may be removing them: os.walk skips what vanishes (Path.glob("**") raised
    FileNotFoundError for it on Python 3.10)."""
    found: list[Path] = []
    for parent, dirs, files in os.walk(directory):
        found.extend(Path(parent, n) for n in (*dirs, *files) if n.startswith("pip-"))
        dirs[:] = [d for d in dirs if not d.startswith("pip-")]
    return found


@contextlib.contextmanager
def compile_held(parent: int) -> Iterator[None]:
    """Inside: a pip-compile of pinsync process `parent` is running and held stopped
    (SIGSTOP), so that a signal sent to pinsync now lands mid-compile however fast the
    compiles of this machine are; on leaving, the compile is let go (SIGCONT)."""
    pid = wait_for_compile(parent)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for_compile(parent: int, timeout: float = 60) -> int:
    """Return once a pip-compile of pinsync process `parent` runs in its stage, so that
    a signal sent now lands in the middle of a compile, however fast this machine is.

    A cold compile is a child of `parent`; a warm one is a child of its compile server
    (workers.py), which idles outside any stage.
    """
    import time

    def ppid_of(pid: str) -> int:
        # /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces.
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if b"piptools" not in (entry / "cmdline").read_bytes():
                    continue
                if "pinsync-stage" not in os.readlink(entry / "cwd"):
                    continue
                ppid = ppid_of(entry.name)
                if ppid == parent or ppid_of(str(ppid)) == parent:
                    return int(entry.name)
            except (OSError, ValueError, IndexError):
                continue
        time.sleep(0.01)
    raise AssertionError("no pip-compile started")


@pytest.fixture
def make_repo(tmp_path: Path, early_wheels: Path) -> Callable[[Mapping[str, str]], Repo]:
    """A factory: a repository with `files`, a `wheels/` find-links dir and `[tool.pip-tools]`."""

    def make(files: Mapping[str, str]) -> Repo:
        repo = Repo(tmp_path / "repo")
        repo.path.mkdir()
        repo.use_wheels(early_wheels)
        repo.write({"pyproject.toml": PIP_TOOLS_TABLE, **files})
        return repo

    return make


INCIDENT_SOURCES = {
    "requirements.in": "mlflow==2.9.0\nflask\n",
    "requirements-mlflow.in": "mlflow==2.9.0\n",
    "requirements-all.in": "-r requirements.in\n-r requirements-mlflow.in\nrequests\n",
    "Dockerfile.api": "FROM python:3.11-slim\nCOPY requirements.txt .\nRUN pip install -r requirements.txt\n",
    "Dockerfile.mlflow": "FROM python:3.11-slim\nRUN pip install --no-cache-dir mlflow==3.4.0 gunicorn\n",
}


@pytest.fixture
def incident_repo(
    make_repo: Callable[[Mapping[str, str]], Repo], all_wheels: Path
) -> Iterator[Repo]:
    """The incident: sources at mlflow==3.4.0, only requirements-mlflow.txt recompiled.

    Everything was compiled by plain pip-compile from the root, while the index had
    only the early releases; the late ones (flask 3, Jinja2 3.1.4 ...) appeared after.
    """
    repo = make_repo(INCIDENT_SOURCES)
    for name in ("requirements", "requirements-mlflow", "requirements-all"):
        repo.pip_compile(f"--output-file={name}.txt", f"{name}.in")
    repo.write(
        {
            "requirements.in": "mlflow==3.4.0\nflask\n",
            "requirements-mlflow.in": "mlflow==3.4.0\n",
        }
    )
    repo.use_wheels(all_wheels)
    repo.pip_compile("--output-file=requirements-mlflow.txt", "requirements-mlflow.in")
    yield repo
