"""Lexing shell words as Docker and sh see them, each character traced to where it was written.

A Dockerfile's `RUN` (and `ARG`/`ENV`/`FROM` values) is split into words with quotes
removed and `$VAR`/`${VAR:-default}` substituted where the value is known; every
character remembers its physical line and column, so a version reached through a
variable can still be edited where it is defined. Pure: text in, words out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

# --- Characters that remember where they were written -------------------------------------


@dataclass(frozen=True)
class Src:
    line: int
    col: int
    unknown: bool = False  # part of a reference (or command substitution) with no known value


@dataclass(frozen=True)
class Text:
    text: str
    src: tuple[Src, ...]

    def slice(self, start: int, end: int | None = None) -> Text:
        return Text(self.text[start:end], self.src[start:end])


EMPTY = Text("", ())


@dataclass(frozen=True)
class Word:
    value: Text  # quotes removed, variables substituted where known
    raw: str  # quotes removed, variables as written
    line: int
    dynamic: bool = False  # holds $(...) or `...`, known only at build time

    @property
    def text(self) -> str:
        return self.value.text

    def tail(self, start: int) -> Word:
        return replace(self, value=self.value.slice(start), raw=self.raw[start:])


# --- Words -----------------------------------------------------------------------------------

_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+=?])(.*))?", re.DOTALL)
_SPECIAL_PARAMS = frozenset("0123456789@*#?$!-")


class Lexer:
    """Splits text into words the way sh (or, without `shell`, Docker) would.

    With `shell` the text is a script: operators end commands, comments and redirections
    are dropped, and unquoted expansions are field-split. Without it the text is the
    argument list of ARG/ENV/FROM, which Docker expands but never splits or runs. With
    `split` off, whitespace is kept and at most one word results.
    """

    def __init__(
        self, text: Text, env: Mapping[str, Text | None], *, shell: bool, split: bool = True
    ) -> None:
        self.text = text
        self.env = env
        self.shell = shell
        self.split = split
        self.i = 0
        self.commands: list[list[Word]] = []
        self.command: list[Word] = []
        self.redirected = False
        self._reset_word()

    def _reset_word(self) -> None:
        self.chars: list[str] = []
        self.srcs: list[Src] = []
        self.raw: list[str] = []
        self.start = -1  # where the current word began in the text; -1 between words
        self.dynamic = False

    def run(self) -> list[list[Word]]:
        t = self.text.text
        while self.i < len(t):
            c = t[self.i]
            if self.split and c in " \t\n":
                self._end_word()
                if c == "\n" and self.shell:
                    self._end_command()
                self.i += 1
            elif self.shell and c in ";&|()":
                self._operator()
            elif self.shell and c in "<>":
                self._redirection()
            elif self.shell and c == "#" and self.start < 0:
                newline = t.find("\n", self.i)
                self.i = len(t) if newline < 0 else newline
            elif c == "\\":
                self._escaped()
            elif c == "'":
                self._single_quoted()
            elif c == '"':
                self._double_quoted()
            elif c == "$":
                self._dollar(quoted=False)
            elif c == "`" and self.shell:
                self._backquoted()
            else:
                self._add(c, self.text.src[self.i])
                self.i += 1
        self._end_command()
        return self.commands

    def words(self) -> list[Word]:
        return [word for command in self.run() for word in command]

    def _add(self, ch: str, src: Src, *, raw: bool = True) -> None:
        self._begin()
        self.chars.append(ch)
        self.srcs.append(src)
        if raw:
            self.raw.append(ch)

    def _begin(self) -> None:
        if self.start < 0:
            self.start = self.i

    def _end_word(self) -> None:
        if self.start >= 0 and self.redirected:
            self.redirected = False  # the word was a redirection target, not an argument
        elif self.start >= 0:
            value = Text("".join(self.chars), tuple(self.srcs))
            line = self.text.src[self.start].line
            self.command.append(Word(value, "".join(self.raw), line, self.dynamic))
        self._reset_word()

    def _end_command(self) -> None:
        self._end_word()
        if self.command:
            self.commands.append(self.command)
        self.command = []
        self.redirected = False

    def _operator(self) -> None:
        t = self.text.text
        if t.startswith("&>", self.i):
            self._redirection()
            return
        self._end_command()
        self.i += 2 if t[self.i : self.i + 2] in ("&&", "||", ";;", "|&") else 1

    def _redirection(self) -> None:
        t = self.text.text
        if self.start >= 0 and t[self.start : self.i].isdecimal():
            self._reset_word()  # `2>`: the digits name a file descriptor
        else:
            self._end_word()
        while self.i < len(t) and t[self.i] in "<>&|-":
            self.i += 1
        self.redirected = True

    def _escaped(self) -> None:
        t = self.text.text
        nxt = self.i + 1
        if nxt >= len(t):
            self._add("\\", self.text.src[self.i])
        elif t[nxt] != "\n":  # backslash-newline joins lines inside a heredoc script
            self._add(t[nxt], self.text.src[nxt])
        self.i += 2

    def _single_quoted(self) -> None:
        t = self.text.text
        end = t.find("'", self.i + 1)
        end = len(t) if end < 0 else end
        self._begin()
        for k in range(self.i + 1, end):
            self._add(t[k], self.text.src[k])
        self.i = end + 1

    def _double_quoted(self) -> None:
        t = self.text.text
        self._begin()
        self.i += 1
        while self.i < len(t) and t[self.i] != '"':
            c = t[self.i]
            if c == "\\" and t[self.i + 1 : self.i + 2] in ("$", "`", '"', "\\", "\n"):
                if t[self.i + 1] != "\n":
                    self._add(t[self.i + 1], self.text.src[self.i + 1])
                self.i += 2
            elif c == "$":
                self._dollar(quoted=True)
            elif c == "`" and self.shell:
                self._backquoted()
            else:
                self._add(c, self.text.src[self.i])
                self.i += 1
        self.i += 1

    def _backquoted(self) -> None:
        t = self.text.text
        end = t.find("`", self.i + 1)
        end = len(t) if end < 0 else end + 1
        self._unknown(self.i, end, dynamic=True)
        self.i = end

    def _dollar(self, *, quoted: bool) -> None:
        t = self.text.text
        i = self.i
        nxt = t[i + 1 : i + 2]
        name = _VAR_NAME.match(t, i + 1)
        if nxt == "{":
            end = closing(t, i + 1) + 1
            braced = _BRACED.fullmatch(t, i + 2, end - 1)
            if braced is None:
                self._unknown(i, end)  # ${#V}, ${V%x}...: not worth evaluating
            else:
                self._braced(braced, end, quoted=quoted)
        elif nxt == "(" and self.shell:
            end = closing(t, i + 1) + 1
            self._unknown(i, end, dynamic=True)
        elif name is not None:
            end = name.end()
            value = self.env.get(name[0])
            if value is None:
                self._unknown(i, end)
            else:
                self._emit(value, name[0], end, quoted=quoted)
        elif nxt and nxt in _SPECIAL_PARAMS and self.shell:
            end = i + 2
            self._unknown(i, end)
        else:
            end = i + 1
            self._add("$", self.text.src[i])
        self.i = end

    def _braced(self, match: re.Match[str], end: int, *, quoted: bool) -> None:
        name, op = match[1], match[2]
        value = self.env.get(name)
        if op is None or op.endswith("?"):
            if value is None:
                self._unknown(self.i, end)
            else:
                self._emit(value, name, end, quoted=quoted)
            return
        # An unknown variable counts as unset: the default is what a plain build uses.
        is_set = value is not None and (value.text != "" or not op.startswith(":"))
        word = expand(self.text.slice(match.start(3), match.end(3)), self.env)
        if op.endswith("+"):
            chosen = word if is_set else EMPTY
        else:
            chosen = value if value is not None and is_set else word
        self._emit(chosen, name, end, quoted=quoted)

    def _emit(self, value: Text, name: str, end: int, *, quoted: bool) -> None:
        ref = self.text.text[self.i : end]
        for ch, src in zip(value.text, value.src, strict=True):
            if self.shell and self.split and not quoted and ch in " \t\n":
                if self.start >= 0:
                    self.raw.append(ref)
                self._end_word()
            else:
                self._add(ch, src, raw=False)
        if self.start >= 0:
            self.raw.append(ref)

    def _unknown(self, start: int, end: int, *, dynamic: bool = False) -> None:
        for k in range(start, min(end, len(self.text.text))):
            self._add(self.text.text[k], replace(self.text.src[k], unknown=True))
        self.dynamic = self.dynamic or dynamic


def closing(t: str, open_at: int) -> int:
    """Index of the bracket closing the one at `open_at` (len(t) if none), skipping quotes."""
    opener = t[open_at]
    closer = "}" if opener == "{" else ")"
    depth = 0
    k = open_at
    while k < len(t):
        c = t[k]
        if c == "\\":
            k += 2
            continue
        if c in "'\"":
            k = t.find(c, k + 1)
            if k < 0:
                return len(t)
        elif c == opener:
            depth += 1
        elif c == closer:
            depth -= 1
            if depth == 0:
                return k
        k += 1
    return len(t)


def expand(text: Text, env: Mapping[str, Text | None]) -> Text:
    words = Lexer(text, env, shell=False, split=False).words()
    return words[0].value if words else EMPTY


# --- Exec form ---------------------------------------------------------------------------------

_JSON_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"', re.DOTALL)
_HEX4 = re.compile(r"[0-9A-Fa-f]{4}")
_JSON_ESCAPES = {
    '"': '"',
    "\\": "\\",
    "/": "/",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
}


def exec_words(body: Text) -> list[Word] | None:
    """The words of `["pip", "install", ...]`, or None when Docker would not take it as exec form."""
    try:
        value = json.loads(body.text)
    except ValueError:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        return None
    return json_strings(body)


def json_strings(body: Text) -> list[Word]:
    words: list[Word] = []
    for match in _JSON_STRING.finditer(body.text):
        chars: list[str] = []
        srcs: list[Src] = []
        k = match.start(1)
        while k < match.end(1):
            c = body.text[k]
            if c != "\\":
                chars.append(c)
                step = 1
            elif _HEX4.fullmatch(body.text, k + 2, k + 6) and body.text[k + 1] == "u":
                chars.append(chr(int(body.text[k + 2 : k + 6], 16)))
                step = 6
            else:
                chars.append(_JSON_ESCAPES.get(body.text[k + 1], body.text[k + 1]))
                step = 2
            # An escaped character maps to its backslash, so a span across it is never contiguous.
            srcs.append(body.src[k])
            k += step
        value = Text("".join(chars), tuple(srcs))
        words.append(Word(value, value.text, body.src[match.start()].line))
    return words
