"""The one error hierarchy; the CLI turns each into a one-line message and an exit code."""

from __future__ import annotations

from pathlib import PurePath


class PinsyncError(Exception):
    """Root of every error pinsync raises on purpose.

    A plain Exception, not a ValueError: a stray ValueError from a library is a bug
    to see as a traceback, never to be reported as a malformed file.
    """

    exit_code = 2


class ParseError(PinsyncError):
    """A line of a requirement file, Dockerfile or config that cannot be understood."""

    def __init__(self, file: PurePath | str, line: int, text: str, reason: str) -> None:
        self.file = str(file)
        self.line = line
        self.text = text
        self.reason = reason
        super().__init__(f"{self.file}:{line}: {reason}: {text.strip()!r}")


class ConfigError(PinsyncError):
    """The [tool.pinsync] table, or a header it has to stand in for, is unusable."""


class GraphError(PinsyncError):
    """An include cycle, a missing include, or a file that is not part of the repository."""


class CompileError(PinsyncError):
    """pip-compile failed; the message is the part of its output that says why."""


class InterpreterNotFound(PinsyncError):
    """The Python version a lock is compiled for is not installed here."""


class EditError(PinsyncError):
    """A text edit that cannot be applied as asked; the text was not changed."""


class BumpError(PinsyncError):
    """A bump that cannot be applied; nothing was changed."""


class InterruptedAfterCommit(KeyboardInterrupt):
    """Ctrl-C arrived while files were being replaced; every replacement was finished.

    Not a PinsyncError: it ends the run as Ctrl-C does, with its own message.
    """
