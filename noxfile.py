"""Sessions of the pinsync suite: thin wrappers around `python -m pinsync` in tools/."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import nox

ROOT = Path(__file__).parent
TOOLS = ROOT / "tools"

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["tests", "lint", "check-lock"]

# What requires-python in pyproject.toml admits; the tests session runs on each of
# them that this machine has.
SUPPORTED = ("3.10", "3.11", "3.12", "3.13")


def _installed_pythons() -> list[str]:
    """The supported CPythons this machine has: pyenv's builds, else PATH.

    pyenv's shims are on PATH but answer "command not found" unless a version is
    selected, so each pyenv build is linked as `pythonX.Y` into a directory put
    first on PATH, where nox and uv look (`python` and `python3` stay as they were).
    """
    versions = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    links = ROOT / ".nox" / "pythons"
    found = []
    for version in SUPPORTED:
        builds = sorted(versions.glob(f"{version}.*"), reverse=True)
        exe = next((e for b in builds if (e := b / "bin" / f"python{version}").exists()), None)
        if exe is not None:
            links.mkdir(parents=True, exist_ok=True)
            link = links / f"python{version}"
            if not link.is_symlink() or link.resolve() != exe.resolve():
                link.unlink(missing_ok=True)
                link.symlink_to(exe)
        elif shutil.which(f"python{version}") is None:
            continue
        found.append(version)
    if links.is_dir():
        os.environ["PATH"] = f"{links}{os.pathsep}{os.environ.get('PATH', '')}"
    return found


def _install(session: nox.Session, name: str) -> None:
    """Install requirements/NAME.txt, unless this venv already holds exactly that lock.

    A lock compiled for the session's own Python (NAME-py3.10.txt) wins where one exists.
    """
    lock = ROOT / "requirements" / f"{name}.txt"
    own = lock.with_name(f"{name}-py{session.python}.txt")
    if isinstance(session.python, str) and own.is_file():
        lock = own
    location = getattr(session.virtualenv, "location", None)  # None with --no-venv
    marker = Path(location, f".pinsync-{name}.sha256") if location else None
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    if marker and marker.is_file() and marker.read_text() == digest:
        # A warm session would otherwise spend ~2 s asking pip to do nothing.
        session.log(f"{lock.name} is unchanged since it was installed here; skipping install")
        return
    # uv (the venv backend here) does not byte-compile what it installs, unlike pip:
    # every later import of pip and pip-tools would then compile them anew.
    session.install("-r", str(lock), env={"UV_COMPILE_BYTECODE": "1"})
    # Byte-compile tools/ once, as pip does for what it installs: a check that runs
    # in a fraction of a second should not recompile its modules on every run.
    session.run("python", "-m", "compileall", "-q", str(TOOLS / "pinsync"))
    if marker:
        marker.write_text(digest)


def _pinsync(session: nox.Session, *args: str) -> None:
    """Run the CLI from tools/, against the repository the user asked for."""
    _install(session, "tools")
    env = {
        "PYTHONPATH": str(TOOLS),
        "PINSYNC_DEFAULT_ROOT": str(ROOT),
        "PINSYNC_INVOKED_FROM": session.invoked_from,
    }
    session.run("python", "-m", "pinsync", *args, *session.posargs, env=env)


@nox.session
def lock(session: nox.Session) -> None:
    """Recompile locks in dependency order: -- [--root DIR] [-U] [-P NAME[==VER]] [--force] [--dry-run] [FILE...]"""
    _pinsync(session, "lock")


@nox.session(name="check-lock")
def check_lock(session: nox.Session) -> None:
    """Fail on any drift (CI): -- [--root DIR] [--format text|json|github|sarif] [--offline] [--full]"""
    _pinsync(session, "check")


@nox.session
def bump(session: nox.Session) -> None:
    """Move one package everywhere it is pinned: -- NAME VERSION [--root DIR] [--dry-run]"""
    _pinsync(session, "bump")


@nox.session(python=_installed_pythons())
def tests(session: nox.Session) -> None:
    """Run the test suite on each supported Python here: nox -s tests [-- PYTEST-ARGS]."""
    _install(session, "tests")
    session.run("pytest", *session.posargs, env={"PYTHONPATH": str(TOOLS)})


@nox.session
def lint(session: nox.Session) -> None:
    """Run ruff and mypy (strict)."""
    _install(session, "lint")
    session.run("ruff", "check", ".")
    session.run("mypy")


@nox.session
def bench(session: nox.Session) -> None:
    """Time lock and check against pip-compile loops and pip-compile-multi: -- [--tiny] [--repeat R]"""
    _install(session, "bench")
    session.run("python", "-m", "bench", *session.posargs, env={"PYTHONPATH": str(TOOLS)})


@nox.session
def fuzz(session: nox.Session) -> None:
    """Run the property tests at length: -- [--examples N] [--seed S]"""
    _install(session, "tests")
    session.run("python", str(TOOLS / "fuzz.py"), *session.posargs)


@nox.session
def release(session: nox.Session) -> None:
    """Set the version and date the changelog, then lint and test: -- X.Y.Z"""
    _install(session, "tools")
    session.run("python", "-m", "pinsync.release", *session.posargs, env={"PYTHONPATH": str(TOOLS)})
    # A nested nox, not session.notify: notify would queue one Python of `tests` only.
    session.run("nox", "--session", "lint", "tests")
