"""reqfile: pip's requirement-file syntax, line by line, without pip."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import pytest
from packaging.utils import canonicalize_name

from pinsync.errors import ParseError
from pinsync.reqfile import (
    Entry,
    Include,
    OptionLine,
    ReqFile,
    option_lines,
    parse_requirements,
)

DEV_IN = PurePosixPath("requirements/dev.in")


def _only_entry(text: str) -> Entry:
    parsed = parse_requirements(DEV_IN, text)
    assert len(parsed.entries) == 1, parsed.entries
    return parsed.entries[0]


def _fields(entry: Entry) -> dict[str, Any]:
    """Every field of an entry, the specifier as its text so that tables read plainly."""
    return {
        "name": entry.name,
        "raw_name": entry.raw_name,
        "specifier": str(entry.specifier),
        "extras": entry.extras,
        "marker": entry.marker,
        "url": entry.url,
        "editable": entry.editable,
        "hashes": entry.hashes,
        "line": entry.line,
        "end_line": entry.end_line,
        "text": entry.text,
    }


def _expected(text: str, **changes: Any) -> dict[str, Any]:
    """A one-line entry's fields: defaults for a bare name on line 1, then `changes`."""
    fields: dict[str, Any] = {
        "name": None,
        "raw_name": None,
        "specifier": "",
        "extras": frozenset(),
        "marker": None,
        "url": None,
        "editable": False,
        "hashes": (),
        "line": 1,
        "end_line": 1,
        "text": text,
    }
    fields.update(changes)
    return fields


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param(
            "Jinja2==3.1.4",
            _expected("Jinja2==3.1.4", name="jinja2", raw_name="Jinja2", specifier="==3.1.4"),
            id="mixed-case-name",
        ),
        pytest.param(
            "zope.sqlalchemy>=3",
            _expected(
                "zope.sqlalchemy>=3",
                name="zope-sqlalchemy",
                raw_name="zope.sqlalchemy",
                specifier=">=3",
            ),
            id="dotted-name",
        ),
        pytest.param(
            "packaging_legacy",
            _expected("packaging_legacy", name="packaging-legacy", raw_name="packaging_legacy"),
            id="underscore-name",
        ),
        pytest.param(
            "pillow < 10.0.0",
            _expected("pillow < 10.0.0", name="pillow", raw_name="pillow", specifier="<10.0.0"),
            id="spaces-in-specifier",
        ),
        pytest.param(
            "mlflow==3.5.0rc1",
            _expected("mlflow==3.5.0rc1", name="mlflow", raw_name="mlflow", specifier="==3.5.0rc1"),
            id="pre-release-pin",
        ),
        pytest.param(
            "Flask[Async, DOTENV_x]>=2",
            _expected(
                "Flask[Async, DOTENV_x]>=2",
                name="flask",
                raw_name="Flask",
                specifier=">=2",
                extras=frozenset({"async", "dotenv-x"}),
            ),
            id="extras-canonicalized",
        ),
        pytest.param(
            "tomli>=2 ; python_version < '3.11'",
            _expected(
                "tomli>=2 ; python_version < '3.11'",
                name="tomli",
                raw_name="tomli",
                specifier=">=2",
                marker='python_version < "3.11"',
            ),
            id="marker-space-before-semicolon",
        ),
        pytest.param(
            "tomli>=2;python_version<'3.11'",
            _expected(
                "tomli>=2;python_version<'3.11'",
                name="tomli",
                raw_name="tomli",
                specifier=">=2",
                marker='python_version < "3.11"',
            ),
            id="marker-no-space-before-semicolon",
        ),
        pytest.param(
            "requests==2.31.0  # the HTTP client",
            _expected(
                "requests==2.31.0", name="requests", raw_name="requests", specifier="==2.31.0"
            ),
            id="trailing-comment",
        ),
        pytest.param(
            "mylib @ https://files.example/mylib-1.0-py3-none-any.whl",
            _expected(
                "mylib @ https://files.example/mylib-1.0-py3-none-any.whl",
                name="mylib",
                raw_name="mylib",
                url="https://files.example/mylib-1.0-py3-none-any.whl",
            ),
            id="name-at-url",
        ),
        pytest.param(
            "My_Lib[cli] @ https://files.example/x.whl ; sys_platform == 'linux'",
            _expected(
                "My_Lib[cli] @ https://files.example/x.whl ; sys_platform == 'linux'",
                name="my-lib",
                raw_name="My_Lib",
                extras=frozenset({"cli"}),
                url="https://files.example/x.whl",
                marker='sys_platform == "linux"',
            ),
            id="name-at-url-extras-marker",
        ),
        pytest.param(
            "git+https://x/y#egg=z",
            _expected("git+https://x/y#egg=z", name="z", raw_name="z", url="git+https://x/y#egg=z"),
            id="hash-in-url-fragment-is-not-a-comment",
        ),
        pytest.param(
            "git+https://github.com/acme/tool.git@v1.2#egg=Acme_Tool==1.2",
            _expected(
                "git+https://github.com/acme/tool.git@v1.2#egg=Acme_Tool==1.2",
                name="acme-tool",
                raw_name="Acme_Tool",
                specifier="==1.2",
                url="git+https://github.com/acme/tool.git@v1.2#egg=Acme_Tool==1.2",
            ),
            id="vcs-url-tag-egg-with-pin",
        ),
        pytest.param(
            "git+https://x/y#egg=z&subdirectory=pkg  # vendored",
            _expected(
                "git+https://x/y#egg=z&subdirectory=pkg",
                name="z",
                raw_name="z",
                url="git+https://x/y#egg=z&subdirectory=pkg",
            ),
            id="egg-among-fragment-parts-then-comment",
        ),
        pytest.param(
            "-e ../libs/core",
            _expected("-e ../libs/core", url="../libs/core", editable=True),
            id="editable-path",
        ),
        pytest.param(
            "--editable=./pkg",
            _expected("--editable=./pkg", url="./pkg", editable=True),
            id="editable-long-form-equals",
        ),
        pytest.param(
            "-e git+https://github.com/acme/tool.git@main#egg=Acme.Tool[Extra_One]",
            _expected(
                "-e git+https://github.com/acme/tool.git@main#egg=Acme.Tool[Extra_One]",
                name="acme-tool",
                raw_name="Acme.Tool",
                extras=frozenset({"extra-one"}),
                url="git+https://github.com/acme/tool.git@main#egg=Acme.Tool[Extra_One]",
                editable=True,
            ),
            id="editable-vcs-egg",
        ),
        pytest.param(
            "./vendor/pkg; python_version < '3.9'",
            _expected(
                "./vendor/pkg; python_version < '3.9'",
                url="./vendor/pkg",
                marker="python_version < '3.9'",
            ),
            id="local-path-with-marker",
        ),
        pytest.param(
            "urllib3==2.0.3 --hash=sha256:aaa --hash sha256:bbb",
            _expected(
                "urllib3==2.0.3 --hash=sha256:aaa --hash sha256:bbb",
                name="urllib3",
                raw_name="urllib3",
                specifier="==2.0.3",
                hashes=("sha256:aaa", "sha256:bbb"),
            ),
            id="hashes-on-one-line-both-forms",
        ),
        pytest.param(
            "https://files.example/x-1.0.tar.gz --hash=sha256:ccc",
            _expected(
                "https://files.example/x-1.0.tar.gz --hash=sha256:ccc",
                url="https://files.example/x-1.0.tar.gz",
                hashes=("sha256:ccc",),
            ),
            id="bare-url-with-hash",
        ),
    ],
)
def test_a_requirement_line_parses_to_these_fields(line: str, expected: dict[str, Any]) -> None:
    assert _fields(_only_entry(line + "\n")) == expected


@pytest.mark.parametrize(
    ("path", "line", "expected"),
    [
        pytest.param(
            "requirements/dev.in",
            "-r base.in",
            Include("-r", "base.in", PurePosixPath("requirements/base.in"), 1),
            id="short-space",
        ),
        pytest.param(
            "requirements/dev.in",
            "-rbase.in",
            Include("-r", "base.in", PurePosixPath("requirements/base.in"), 1),
            id="short-glued",
        ),
        pytest.param(
            "requirements/dev.in",
            "--requirement=../base.in",
            Include("-r", "../base.in", PurePosixPath("base.in"), 1),
            id="long-equals-parent-dir",
        ),
        pytest.param(
            "requirements/dev.in",
            "--requirement ./sub/../shared.txt",
            Include("-r", "./sub/../shared.txt", PurePosixPath("requirements/shared.txt"), 1),
            id="long-space-dot-and-dotdot",
        ),
        pytest.param(
            "requirements/ci/ci.in",
            "-c ../../constraints.txt  # shared pins",
            Include("-c", "../../constraints.txt", PurePosixPath("constraints.txt"), 1),
            id="constraint-two-levels-up-with-comment",
        ),
        pytest.param(
            "requirements/dev.in",
            "--constraint=constraints.txt",
            Include("-c", "constraints.txt", PurePosixPath("requirements/constraints.txt"), 1),
            id="constraint-long-equals",
        ),
        pytest.param(
            "requirements/dev.in",
            "-cpins.txt",
            Include("-c", "pins.txt", PurePosixPath("requirements/pins.txt"), 1),
            id="constraint-glued",
        ),
        pytest.param(
            "dev.in",
            "-r base.in",
            Include("-r", "base.in", PurePosixPath("base.in"), 1),
            id="top-level-file",
        ),
        pytest.param(
            "dev.in",
            "-r ../outside.in",
            Include("-r", "../outside.in", PurePosixPath("../outside.in"), 1),
            id="outside-the-root-kept-as-dotdot",
        ),
        pytest.param(
            "requirements/dev.in",
            "-r ../../../x/../outside.in",
            Include("-r", "../../../x/../outside.in", PurePosixPath("../../outside.in"), 1),
            id="climbing-twice-keeps-both-dotdots",
        ),
        pytest.param(
            "requirements/dev.in",
            "-r /../etc/base.in",
            Include("-r", "/../etc/base.in", PurePosixPath("/etc/base.in"), 1),
            id="absolute-stays-absolute-past-a-dotdot",
        ),
        pytest.param(
            "requirements/dev.in",
            "-r sub//base.in",
            Include("-r", "sub//base.in", PurePosixPath("requirements/sub/base.in"), 1),
            id="doubled-slash",
        ),
    ],
)
def test_an_include_resolves_relative_to_the_including_file(
    path: str, line: str, expected: Include
) -> None:
    parsed = parse_requirements(PurePosixPath(path), line + "\n")
    assert parsed.includes == (expected,)
    assert parsed.entries == ()


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param(
            "--index-url https://pypi.example/simple",
            OptionLine("--index-url", "https://pypi.example/simple", 1),
            id="index-url-space",
        ),
        pytest.param(
            "--index-url=https://pypi.example/simple",
            OptionLine("--index-url", "https://pypi.example/simple", 1),
            id="index-url-equals",
        ),
        pytest.param(
            "-i https://pypi.example/simple",
            OptionLine("--index-url", "https://pypi.example/simple", 1),
            id="index-url-short",
        ),
        pytest.param(
            "--extra-index-url https://extra.example/simple  # mirror",
            OptionLine("--extra-index-url", "https://extra.example/simple", 1),
            id="extra-index-url-with-comment",
        ),
        pytest.param(
            "--find-links=./wheels", OptionLine("--find-links", "./wheels", 1), id="find-links"
        ),
        pytest.param("-f wheels", OptionLine("--find-links", "wheels", 1), id="find-links-short"),
        pytest.param("--no-index", OptionLine("--no-index", None, 1), id="no-index"),
        pytest.param("--pre", OptionLine("--pre", None, 1), id="pre"),
    ],
)
def test_an_option_line_parses_to_its_long_name(line: str, expected: OptionLine) -> None:
    parsed = parse_requirements(DEV_IN, line + "\n")
    assert parsed.options == (expected,)
    assert parsed.entries == ()
    assert parsed.includes == ()


LOCK_LINES = (
    "# top comment",
    "certifi==2024.2.2 \\",
    "    --hash=sha256:0569 \\",
    "    --hash=sha256:dc16",
    "    # via requests",
    "-r base.txt",
    "",
    "idna==3.6",
)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("\n".join(LOCK_LINES) + "\n", id="lf"),
        pytest.param("\r\n".join(LOCK_LINES) + "\r\n", id="crlf"),
        pytest.param("\n".join(LOCK_LINES), id="lf-no-final-newline"),
        pytest.param("\r\n".join(LOCK_LINES), id="crlf-no-final-newline"),
    ],
)
def test_a_continued_entry_collects_its_hashes_and_keeps_physical_line_numbers(text: str) -> None:
    parsed = parse_requirements(DEV_IN, text)
    assert [_fields(e) for e in parsed.entries] == [
        _expected(
            "certifi==2024.2.2 --hash=sha256:0569 --hash=sha256:dc16",
            name="certifi",
            raw_name="certifi",
            specifier="==2024.2.2",
            hashes=("sha256:0569", "sha256:dc16"),
            line=2,
            end_line=4,
        ),
        _expected("idna==3.6", name="idna", raw_name="idna", specifier="==3.6", line=8, end_line=8),
    ]
    assert parsed.includes == (
        Include("-r", "base.txt", PurePosixPath("requirements/base.txt"), 6),
    )
    assert parsed.comments == ((1, "top comment"), (5, "via requests"))


def test_a_backslash_on_the_last_line_ends_the_entry() -> None:
    parsed = parse_requirements(DEV_IN, "a==1\nb==2 \\")
    assert [_fields(e) for e in parsed.entries] == [
        _expected("a==1", name="a", raw_name="a", specifier="==1"),
        _expected("b==2", name="b", raw_name="b", specifier="==2", line=2, end_line=2),
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param("foo==1.2.3", "1.2.3", id="double-equals"),
        pytest.param("foo===1.0-custom", "1.0-custom", id="triple-equals"),
        pytest.param("foo==2.0rc1", "2.0rc1", id="pre-release"),
        pytest.param("foo==3.*", None, id="wildcard"),
        pytest.param("foo>=1,<2", None, id="range"),
        pytest.param("foo>=1", None, id="lower-bound"),
        pytest.param("foo~=1.4", None, id="compatible-release"),
        pytest.param("foo", None, id="unpinned"),
        pytest.param("foo==1.0,!=1.0.1", None, id="pin-plus-exclusion"),
    ],
)
def test_pinned_version(line: str, expected: str | None) -> None:
    assert _only_entry(line).pinned_version == expected


@pytest.fixture
def mixed_spellings_reqfile() -> ReqFile:
    return parse_requirements(DEV_IN, "Jinja2==3.1.4\nzope.sqlalchemy==3.1\npackaging_legacy\n")


@pytest.mark.parametrize(
    ("asked", "expected_line"),
    [
        pytest.param("jinja2", 1, id="canonical"),
        pytest.param("JINJA2", 1, id="upper"),
        pytest.param("zope_sqlalchemy", 2, id="underscore-for-dot"),
        pytest.param("Packaging.Legacy", 3, id="dot-for-underscore"),
        pytest.param("flask", None, id="absent"),
    ],
)
def test_pins_find_a_name_in_any_spelling(
    mixed_spellings_reqfile: ReqFile, asked: str, expected_line: int | None
) -> None:
    found = mixed_spellings_reqfile.pins().get(canonicalize_name(asked))
    assert (found.line if found else None) == expected_line


@pytest.mark.parametrize(
    ("text", "line", "offending", "reason"),
    [
        pytest.param("foo===\n", 1, "foo===", None, id="operator-without-version"),
        pytest.param("ok==1\nfoo bar\n", 2, "foo bar", None, id="two-words"),
        pytest.param("-r\n", 1, "-r", "-r needs a file name", id="include-without-file"),
        pytest.param(
            "--requirement=\n",
            1,
            "--requirement=",
            "--requirement needs a file name",
            id="long-include-empty",
        ),
        pytest.param("-e\n", 1, "-e", "-e needs a path or URL", id="editable-without-target"),
        pytest.param("-i\n", 1, "-i", "-i needs a value", id="index-url-without-value"),
        pytest.param("--frobnicate\n", 1, "--frobnicate", "unknown option", id="unknown-option"),
        pytest.param("--pre yes\n", 1, "--pre yes", "unknown option", id="flag-given-a-value"),
        pytest.param(
            "foo==1.0 --hash=abc123\n",
            1,
            "foo==1.0 --hash=abc123",
            "a hash must look like sha256:<hex>",
            id="hash-without-colon",
        ),
        pytest.param(
            "foo==1.0 --frob=1\n",
            1,
            "foo==1.0 --frob=1",
            "unknown option --frob",
            id="unknown-per-requirement-option",
        ),
        pytest.param(
            "a==1 \\\n    --hash=sha256:aa\nfoo bar\n",
            3,
            "foo bar",
            None,
            id="error-on-line-3-after-2-line-continuation",
        ),
        pytest.param(
            "# head\n\nb==2 \\\n    --hash=sha256:bb \\\n    --hash=nocolon\n",
            3,
            "b==2 --hash=sha256:bb --hash=nocolon",
            "a hash must look like sha256:<hex>",
            id="bad-hash-inside-continuation-reports-its-first-line",
        ),
        pytest.param("a==1\r\n-r\r\n", 2, "-r", "-r needs a file name", id="crlf-error-line"),
    ],
)
def test_a_malformed_line_raises_parse_error_naming_file_line_and_text(
    text: str, line: int, offending: str, reason: str | None
) -> None:
    with pytest.raises(ParseError) as info:
        parse_requirements(DEV_IN, text)
    err = info.value
    assert (err.file, err.line, err.text) == ("requirements/dev.in", line, offending)
    assert str(err).startswith(f"requirements/dev.in:{line}: ")
    assert str(err).endswith(f": {offending!r}")
    if reason is None:  # packaging words these; only their prefix is ours
        assert err.reason.startswith("invalid requirement (")
    else:
        assert err.reason == reason
        assert str(err) == f"requirements/dev.in:{line}: {reason}: {offending!r}"


def test_comment_and_blank_only_file_has_nothing_but_comments() -> None:
    parsed = parse_requirements(DEV_IN, "#\n# only notes\n\n   # indented\n")
    assert parsed == ReqFile(DEV_IN, comments=((2, "only notes"), (4, "indented")))


# Texts whose option lines the scan must find exactly as the parser does: the fast
# path (newlines only) and the line-by-line one (any other line break, or a `#` on a
# line that a `\` would continue).
OPTION_TEXTS = [
    "--index-url https://i/simple\nflask==2.0 \\\n    --hash=sha256:ab\n",
    "flask==2.0 \\\n    --hash=sha256:ab \\\n    --hash=sha256:cd\n--find-links wheels\n",
    "flask==2.0 # note \\\n--find-links wheels\n",
    "  --extra-index-url https://x/simple\n# --index-url https://commented/out\n",
    "flask==2.0 \\\n    --hash=sha256:ab\n\\\n--no-index\n",
    "  \\\n  \\\n--index-url https://i/simple\n",
    "--index-url https://i/simple\r\nflask==2.0 \\\r\n    --hash=sha256:ab\r\n",
    "-f wheels\n-r base.txt\n-e ./pkg\n--pre\n",
]


@pytest.mark.parametrize("text", OPTION_TEXTS)
def test_a_locks_options_are_read_as_the_parser_reads_them(text: str) -> None:
    path = PurePosixPath("r.txt")
    assert option_lines(path, text) == parse_requirements(path, text).options
