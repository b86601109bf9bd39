"""The documentation holds together: its links resolve, the commands it shows exist,
and every CLI option and `[tool.pinsync]` key is documented somewhere in docs/."""

from __future__ import annotations

import argparse
import ast
import inspect
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bench.suite import parser as bench_parser
from pinsync import cli
from pinsync.config import _KEYS, _OUTPUT_KEYS

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md"))
README = ROOT / "README.md"
LINKED = [README, ROOT / "CHANGELOG.md", *DOCS]  # every page whose links must resolve
SHOWN = [README, *DOCS]  # every page whose commands must exist

PARSERS: dict[str, Callable[[], argparse.ArgumentParser]] = {
    "lock": cli.lock_parser,
    "check": cli.check_parser,
    "bump": cli.bump_parser,
}
# nox session -> the pinsync command it runs (noxfile.py: _pinsync(session, "check")).
SESSION_COMMANDS = {"lock": "lock", "check-lock": "check", "bump": "bump"}

# Options of other programs that may appear in a nox command, kept short on purpose:
# nox's own (before `--`), and pytest's (after `nox -s tests --`). Anything else shown
# in a pinsync or nox command must be an option of the program that receives it.
NOX_OPTIONS = frozenset(
    {"--list", "--no-reuse-existing-virtualenvs", "--reuse-existing-virtualenvs"}
)
PYTEST_OPTIONS = frozenset({"--lf", "--exitfirst", "--maxfail"})

_FENCE = re.compile(r"^\s*(```|~~~)")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_NOX = re.compile(r"\bnox -s ([\w.-]+)")
_OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
_PINSYNC = re.compile(r"(?<![\w/.-])(?:python3? -m )?pinsync(?: (lock|check|bump)\b|(?= --))")
_COMMAND_END = re.compile(r" \| |&&|;| > | #")


def _prose_and_code(text: str) -> tuple[list[str], list[str]]:
    """The lines outside fenced code blocks, and those inside them."""
    prose: list[str] = []
    code: list[str] = []
    fenced = False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        (code if fenced else prose).append(line)
    return prose, code


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: link text kept, lowercased, punctuation other
    than `-` and `_` dropped, each space a hyphen."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    found: set[str] = set()
    prose, _ = _prose_and_code(page.read_text(encoding="utf-8"))
    for line in prose:
        match = _HEADING.match(line)
        if match is None:
            continue
        slug = github_slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def links(page: Path) -> Iterator[str]:
    """Every link target of a page, outside code."""
    prose, _ = _prose_and_code(page.read_text(encoding="utf-8"))
    text = _CODE_SPAN.sub("", "\n".join(prose))
    yield from _INLINE_LINK.findall(text)
    yield from _REFERENCE_LINK.findall(text)


def relative_links() -> list[tuple[Path, str]]:
    return [
        (page, target)
        for page in LINKED
        for target in dict.fromkeys(links(page))
        if not _SCHEME.match(target)
    ]


def code_texts(page: Path) -> list[str]:
    """The code a page shows: each line of a code block, and each code span."""
    prose, code = _prose_and_code(page.read_text(encoding="utf-8"))
    spans = [m.group(2) for line in prose for m in _CODE_SPAN.finditer(line)]
    return [line.replace("\\|", "|") for line in [*code, *spans]]


def _sessions() -> dict[str, bool]:
    """noxfile.py's sessions, by name, and whether each is parametrized by Python."""
    tree = ast.parse((ROOT / "noxfile.py").read_text(encoding="utf-8"))
    found: dict[str, bool] = {}
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        for decorator in node.decorator_list:
            call = decorator if isinstance(decorator, ast.Call) else None
            target = call.func if call is not None else decorator
            if not (
                isinstance(target, ast.Attribute)
                and target.attr == "session"
                and isinstance(target.value, ast.Name)
                and target.value.id == "nox"
            ):
                continue
            name, by_python = node.name, False
            for keyword in call.keywords if call is not None else []:
                if keyword.arg == "name" and isinstance(keyword.value, ast.Constant):
                    name = str(keyword.value.value)
                elif keyword.arg == "python":
                    by_python = True
            found[name] = by_python
    return found


def shown_sessions() -> list[tuple[Path, str]]:
    return [
        (page, name)
        for page in SHOWN
        for name in dict.fromkeys(_NOX.findall(page.read_text(encoding="utf-8")))
    ]


def _option_strings(parser: argparse.ArgumentParser) -> set[str]:
    return {s for action in parser._actions for s in action.option_strings}


def _declared_options(path: Path) -> set[str]:
    """The options a script declares with add_argument, for those that build their
    parser inside a function that also parses (tools/fuzz.py)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        arg.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "add_argument"
        for arg in node.args
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value[:1] == "-"
    }


def _session_options(session: str) -> set[str]:
    """What the program behind a nox session accepts after `--`."""
    if session in SESSION_COMMANDS:
        return _option_strings(PARSERS[SESSION_COMMANDS[session]]())
    if session == "bench":
        return _option_strings(bench_parser())
    if session == "fuzz":
        return _declared_options(ROOT / "tools" / "fuzz.py")
    if re.fullmatch(r"tests(-\d+\.\d+)?", session):
        return set(PYTEST_OPTIONS)
    return set()


def _top_level_options() -> set[str]:
    """Options cli.main answers itself, before any command's parser (`--version`)."""
    source = inspect.getsource(cli.main) + inspect.getsource(cli._main)
    return set(re.findall(r"\"(--[a-z-]+)\"", source))


def shown_options() -> list[tuple[Path, str, str, str]]:
    """(page, command, option, what it should be an option of) for every option shown
    in a pinsync or nox command."""
    found: dict[tuple[Path, str, str, str], None] = {}
    for page in SHOWN:
        for text in code_texts(page):
            starts = sorted(
                [(m.start(), m.end(), "nox", m.group(1)) for m in _NOX.finditer(text)]
                + [
                    (m.start(), m.end(), "pinsync", m.group(1) or "")
                    for m in _PINSYNC.finditer(text)
                ]
            )
            for i, (start, end, tool, name) in enumerate(starts):
                stop = starts[i + 1][0] if i + 1 < len(starts) else len(text)
                rest = text[end:stop]
                cut = _COMMAND_END.search(rest)
                rest = rest[: cut.start()] if cut else rest
                command = text[start:end] + rest
                if tool == "nox":
                    before, sep, after = rest.partition(" -- ")
                    if not sep and rest.endswith(" --"):
                        before = rest[:-3]
                    for option in _OPTION.findall(before):
                        found[(page, command, option, "nox")] = None
                    for option in _OPTION.findall(after):
                        found[(page, command, option, f"nox -s {name}")] = None
                else:
                    for option in _OPTION.findall(rest):
                        found[(page, command, option, f"pinsync {name}".strip())] = None
    return list(found)


def _accepted(program: str) -> set[str]:
    if program == "nox":
        return set(NOX_OPTIONS)
    if program.startswith("nox -s "):
        return _session_options(program.removeprefix("nox -s "))
    if program == "pinsync":
        return _top_level_options()
    return _option_strings(PARSERS[program.removeprefix("pinsync ")]())


def docs_text() -> str:
    return "\n".join(page.read_text(encoding="utf-8") for page in DOCS)


def cli_options() -> list[tuple[str, str]]:
    return [
        (command, option)
        for command, make in PARSERS.items()
        for option in sorted(_option_strings(make()))
    ]


@pytest.mark.parametrize(
    ("page", "target"),
    [pytest.param(p, t, id=f"{p.relative_to(ROOT)}:{t}") for p, t in relative_links()],
)
def test_relative_links_resolve(page: Path, target: str) -> None:
    path, _, fragment = target.partition("#")
    resolved = (page.parent / path).resolve() if path else page
    assert resolved.exists(), f"{page.relative_to(ROOT)}: {target} names no file"
    if fragment:
        assert resolved.is_file() and resolved.suffix == ".md", (
            f"{page.relative_to(ROOT)}: {target}: an anchor into something other than Markdown"
        )
        assert fragment in anchors(resolved), (
            f"{page.relative_to(ROOT)}: {target}: {resolved.name} has no heading #{fragment}"
        )


@pytest.mark.parametrize(
    ("page", "name"),
    [pytest.param(p, n, id=f"{p.relative_to(ROOT)}:{n}") for p, n in shown_sessions()],
)
def test_shown_sessions_exist(page: Path, name: str) -> None:
    sessions = _sessions()
    base = re.sub(r"-\d+\.\d+$", "", name)
    assert name in sessions or sessions.get(base, False), (
        f"{page.relative_to(ROOT)} shows `nox -s {name}`, but noxfile.py has no such session "
        f"(it has {', '.join(sorted(sessions))})"
    )


@pytest.mark.parametrize(
    ("page", "command", "option", "program"),
    [
        pytest.param(p, c, o, g, id=f"{p.relative_to(ROOT)}:{g}:{o}")
        for p, c, o, g in shown_options()
    ],
)
def test_shown_options_exist(page: Path, command: str, option: str, program: str) -> None:
    assert option in _accepted(program), (
        f"{page.relative_to(ROOT)}: `{command}` shows {option}, which {program} does not take"
    )


@pytest.mark.parametrize(("command", "option"), cli_options())
def test_every_cli_option_is_documented(command: str, option: str) -> None:
    pattern = rf"(?<![\w-]){re.escape(option)}(?![\w-])"
    assert re.search(pattern, docs_text()), f"pinsync {command} {option} is in no page of docs/"


@pytest.mark.parametrize(
    ("table", "key"),
    [("[tool.pinsync]", k) for k in sorted(_KEYS)]
    + [('[tool.pinsync.outputs."..."]', k) for k in sorted(_OUTPUT_KEYS)],
)
def test_every_config_key_is_documented(table: str, key: str) -> None:
    text = docs_text()
    documented = f"`{key}`" in text or re.search(rf"^{re.escape(key)}\s*=", text, re.MULTILINE)
    assert documented, f"{table} {key} is in no page of docs/"


def test_the_pages_are_found() -> None:
    """The tables above are not empty by accident (a moved docs/ directory)."""
    assert README.is_file()
    assert (ROOT / "CHANGELOG.md").is_file()
    assert len(DOCS) >= 5
    assert relative_links()
    assert shown_sessions()
    assert shown_options()
