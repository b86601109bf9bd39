"""Sessions of the pinsync suite: thin wrappers around `python -m pinsync` in tools/."""

from __future__ import annotations

from pathlib import Path

import nox

ROOT = Path(__file__).parent
TOOLS = ROOT / "tools"

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["tests", "lint", "check-lock"]


def _pinsync(session: nox.Session, *args: str) -> None:
    """Run the CLI from tools/, against the repository the user asked for."""
    session.install("-r", str(ROOT / "requirements" / "tools.txt"))
    env = {
        "PYTHONPATH": str(TOOLS),
        "PINSYNC_DEFAULT_ROOT": str(ROOT),
        "PINSYNC_INVOKED_FROM": session.invoked_from,
    }
    session.run("python", "-m", "pinsync", *args, *session.posargs, env=env)


@nox.session
def lock(session: nox.Session) -> None:
    """Recompile every .in into its .txt, in dependency order."""
    _pinsync(session, "lock")


@nox.session(name="check-lock")
def check_lock(session: nox.Session) -> None:
    """Fail on drift between .in, .txt, Dockerfile pins and co-installed locks (CI)."""
    _pinsync(session, "check")


@nox.session
def bump(session: nox.Session) -> None:
    """Move one package everywhere it is pinned: nox -s bump -- NAME VERSION."""
    _pinsync(session, "bump")


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite against the real pip-compile and a local wheelhouse."""
    session.install("-r", "requirements/tests.txt")
    session.run("pytest", *session.posargs, env={"PYTHONPATH": str(TOOLS)})


@nox.session
def lint(session: nox.Session) -> None:
    """Run ruff and mypy (strict)."""
    session.install("-r", "requirements/lint.txt")
    session.run("ruff", "check", ".")
    session.run("mypy")
