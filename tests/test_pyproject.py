"""Tests for pinsync.pyproject and the generic finder of pinsync.sites: finding exact pins in pyproject.toml and other text files."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import PurePosixPath

import pytest
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from pinsync.edits import check_version, splice
from pinsync.errors import EditError, ParseError
from pinsync.pyproject import PyprojectRequirement, read_pyproject
from pinsync.sites import TextPin, find_generic_pins

PYPROJECT = PurePosixPath("pyproject.toml")


def find_pyproject_pins(path: PurePosixPath, text: str) -> tuple[TextPin, ...]:
    return read_pyproject(path, text).pins


def find_pyproject_requirements(path: PurePosixPath, text: str) -> tuple[PyprojectRequirement, ...]:
    return read_pyproject(path, text).others


WORKFLOW = PurePosixPath(".github/workflows/ci.yml")

# line, start, end, name, operator, version, text, where
Row = tuple[int, int, int, str, str, str, str, str]


Finder = Callable[[PurePosixPath, str], tuple[TextPin, ...]]


def rows(pins: Sequence[TextPin]) -> list[Row]:
    return [(p.line, p.start, p.end, p.name, p.operator, p.version, p.text, p.where) for p in pins]


def assert_spans_hold_versions(text: str, pins: Sequence[TextPin]) -> None:
    # The span is what replace_versions relies on, so check it against the text too.
    lines = text.split("\n")
    for pin in pins:
        assert lines[pin.line - 1][pin.start : pin.end] == pin.version


DEPS = "project.dependencies"

PYPROJECT_CASES = [
    pytest.param(
        '[project]\ndependencies = ["MLflow==3.4.0"]\n',
        [(2, 25, 30, "mlflow", "==", "3.4.0", "MLflow==3.4.0", DEPS)],
        id="name-mixed-case",
    ),
    pytest.param(
        '[project]\ndependencies = ["ml_flow==3.4.0"]\n',
        [(2, 26, 31, "ml-flow", "==", "3.4.0", "ml_flow==3.4.0", DEPS)],
        id="name-underscore",
    ),
    pytest.param(
        "[project]\ndependencies = ['zope.sqlalchemy==3.1']\n",
        [(2, 34, 37, "zope-sqlalchemy", "==", "3.1", "zope.sqlalchemy==3.1", DEPS)],
        id="name-with-dot",
    ),
    pytest.param(
        "[project]\ndependencies = ['MLflow[extras]==3.4.0 ; python_version>\"3.9\"']\n",
        [
            (
                2,
                33,
                38,
                "mlflow",
                "==",
                "3.4.0",
                'MLflow[extras]==3.4.0 ; python_version>"3.9"',
                DEPS,
            )
        ],
        id="extras-and-marker-literal-string",
    ),
    pytest.param(
        '[project]\ndependencies = ["MLflow[a,b] == 3.4.0; python_version > \\"3.9\\""]\n',
        [
            (
                2,
                32,
                37,
                "mlflow",
                "==",
                "3.4.0",
                'MLflow[a,b] == 3.4.0; python_version > "3.9"',
                DEPS,
            )
        ],
        id="spaces-and-escaped-quotes",
    ),
    pytest.param(
        '[project]\ndependencies = ["legacy===1.0-custom"]\n',
        [(2, 26, 36, "legacy", "===", "1.0-custom", "legacy===1.0-custom", DEPS)],
        id="arbitrary-equality",
    ),
    pytest.param(
        '[project]\ndependencies = ["a>=1", "b~=2.0", "c==1.0,<2", "d!=3", "e", "f @ https://x/f.whl"]\n',
        [],
        id="ranges-are-not-pins",
    ),
    pytest.param(
        '[project]\ndependencies = ["mlflow==3.*", "numpy===1.*"]\n',
        [],
        id="wildcard-is-not-a-pin",
    ),
    pytest.param(
        '[project]\ndependencies = ["a==1.0 ; python_version == \\"3.11\\""]\n',
        [(2, 20, 23, "a", "==", "1.0", 'a==1.0 ; python_version == "3.11"', DEPS)],
        id="marker-with-equals-after-pin",
    ),
    pytest.param(
        "[project]\n"
        "dependencies = [\n"
        '    "mlflow==3.4.0",  # was "mlflow==3.3.0"\n'
        "    # 'numpy==1.26.4',\n"
        "    'numpy>=1.26',\n"
        '    "pandas==2.2.2",\n'
        "]\n",
        [
            (3, 13, 18, "mlflow", "==", "3.4.0", "mlflow==3.4.0", DEPS),
            (6, 13, 18, "pandas", "==", "2.2.2", "pandas==2.2.2", DEPS),
        ],
        id="multi-line-array-comments-trailing-comma",
    ),
    pytest.param(
        "[project]\n"
        'name = "demo"\n'
        "\n"
        "[project.optional-dependencies]\n"
        'dev = ["ruff==0.6.0"]\n'
        "test = [\n"
        '  "pytest==8.3.2", "coverage>=7",\n'
        "]\n",
        [
            (5, 14, 19, "ruff", "==", "0.6.0", "ruff==0.6.0", "project.optional-dependencies.dev"),
            (
                7,
                11,
                16,
                "pytest",
                "==",
                "8.3.2",
                "pytest==8.3.2",
                "project.optional-dependencies.test",
            ),
        ],
        id="optional-dependencies-table",
    ),
    pytest.param(
        '[project]\noptional-dependencies = { dev = ["ruff==0.6.0"], docs = ["mkdocs==1.6.0"] }\n',
        [
            (2, 40, 45, "ruff", "==", "0.6.0", "ruff==0.6.0", "project.optional-dependencies.dev"),
            (
                2,
                66,
                71,
                "mkdocs",
                "==",
                "1.6.0",
                "mkdocs==1.6.0",
                "project.optional-dependencies.docs",
            ),
        ],
        id="optional-dependencies-inline-table",
    ),
    pytest.param(
        "[dependency-groups]\n"
        'test = ["pytest==8.3.2", {include-group = "lint"}]\n'
        'lint = ["ruff==0.6.0"]\n',
        [
            (2, 17, 22, "pytest", "==", "8.3.2", "pytest==8.3.2", "dependency-groups.test"),
            (3, 15, 20, "ruff", "==", "0.6.0", "ruff==0.6.0", "dependency-groups.lint"),
        ],
        id="dependency-groups-with-include-group",
    ),
    pytest.param(
        'project.dependencies = ["a==1"]\n[project."optional-dependencies"]\n"dev" = [\'b==2\']\n',
        [
            (1, 28, 29, "a", "==", "1", "a==1", DEPS),
            (3, 13, 14, "b", "==", "2", "b==2", "project.optional-dependencies.dev"),
        ],
        id="dotted-and-quoted-keys",
    ),
    pytest.param(
        '[project]\r\ndependencies = [\r\n  "mlflow==3.4.0",\r\n]\r\n',
        [(3, 11, 16, "mlflow", "==", "3.4.0", "mlflow==3.4.0", DEPS)],
        id="crlf",
    ),
    pytest.param(
        '[project]\ndependencies = ["a\\u003d=1.0"]\n',
        [(2, 25, 28, "a", "==", "1.0", "a==1.0", DEPS)],
        id="escape-before-version",
    ),
    pytest.param(
        "[project]\ndependencies = [\n  '''\nmlflow==3.4.0''',\n]\n",
        [(4, 8, 13, "mlflow", "==", "3.4.0", "mlflow==3.4.0", DEPS)],
        id="multi-line-string",
    ),
    pytest.param(
        'title = "] [project] dependencies = [\\"x==1\\"]"\n'
        "[build-system]\n"
        'requires = ["setuptools==68.0"]\n'
        "[tool.other]\n"
        'dependencies = ["mlflow==3.4.0"]\n'
        "[[tool.matrix]]\n"
        'dependencies = ["numpy==1.0"]\n',
        [],
        id="other-tables-ignored",
    ),
]


@pytest.mark.parametrize(("text", "expected"), PYPROJECT_CASES)
def test_find_pyproject_pins(text: str, expected: list[Row]) -> None:
    pins = find_pyproject_pins(PYPROJECT, text)
    assert rows(pins) == expected
    assert all(p.file == PYPROJECT for p in pins)
    assert_spans_hold_versions(text, pins)


def test_find_pyproject_requirements_lists_only_non_pins() -> None:
    text = (
        "[project]\n"
        'dependencies = ["mlflow==3.4.0", "numpy>=1.26,<3"]\n'
        "[dependency-groups]\n"
        'test = ["MLflow==3.*", {include-group = "x"}, "pip @ https://x/pip.whl"]\n'
    )
    group = "dependency-groups.test"
    assert find_pyproject_requirements(PYPROJECT, text) == (
        PyprojectRequirement(
            canonicalize_name("numpy"), SpecifierSet(">=1.26,<3"), 2, DEPS, "numpy>=1.26,<3"
        ),
        PyprojectRequirement(
            canonicalize_name("mlflow"), SpecifierSet("==3.*"), 4, group, "MLflow==3.*"
        ),
        PyprojectRequirement(
            canonicalize_name("pip"), SpecifierSet(), 4, group, "pip @ https://x/pip.whl"
        ),
    )


PYPROJECT_ERRORS = [
    pytest.param(
        '[project]\ndependencies = [\n  "a==1",\n  b\n]\n',
        4,
        "  b",
        "invalid TOML: Invalid value",
        id="invalid-toml",
    ),
    pytest.param(
        '[project]\ndependencies = [\n  "a==1",\n',
        3,
        '  "a==1",',
        "invalid TOML: Invalid value (at end of document)",
        id="invalid-toml-at-end",
    ),
    pytest.param(
        '[project]\ndependencies = [\n  "a==1",\n  "b===",\n]\n',
        4,
        '  "b===",',
        "invalid requirement in project.dependencies: "
        "Expected semicolon (after name with no version specifier) or end",
        id="invalid-requirement",
    ),
    pytest.param(
        '[project.optional-dependencies]\ndev = ["ok==1", "not a requirement"]\n',
        2,
        'dev = ["ok==1", "not a requirement"]',
        "invalid requirement in project.optional-dependencies.dev: "
        "Expected semicolon (after name with no version specifier) or end",
        id="invalid-requirement-in-extra",
    ),
    pytest.param(
        '[project]\ndependencies = "mlflow==3.4.0"\n',
        2,
        'dependencies = "mlflow==3.4.0"',
        "project.dependencies must be an array of strings",
        id="dependencies-not-an-array",
    ),
    pytest.param(
        "[project]\ndependencies = [\n  1,\n]\n",
        3,
        "  1,",
        "project.dependencies item 1 is not a string",
        id="item-not-a-string",
    ),
    pytest.param(
        '[project]\ndependencies = ["""a==1.\\\n  0"""]\n',
        2,
        'dependencies = ["""a==1.\\',
        "the version in 'a==1.0' is not written plainly",
        id="version-split-by-line-ending-backslash",
    ),
]


@pytest.mark.parametrize(("text", "line", "line_text", "reason"), PYPROJECT_ERRORS)
def test_find_pyproject_pins_errors(text: str, line: int, line_text: str, reason: str) -> None:
    with pytest.raises(ParseError) as caught:
        find_pyproject_pins(PYPROJECT, text)
    assert (caught.value.file, caught.value.line, caught.value.text) == (
        "pyproject.toml",
        line,
        line_text,
    )
    # tomli (below 3.11) words the end of a document without "(at end of document)".
    assert caught.value.reason == reason or caught.value.reason == reason.replace(
        " (at end of document)", ""
    )


def test_find_pyproject_requirements_raises_like_pins() -> None:
    with pytest.raises(ParseError) as caught:
        find_pyproject_requirements(PYPROJECT, "[project\n")
    reason = "invalid TOML: Expected ']' at the end of a table declaration"
    assert (caught.value.line, caught.value.reason) == (1, reason)


GENERIC_CASES = [
    pytest.param(
        "      - run: pip install mlflow==3.4.0\n",
        [(1, 33, 38, "mlflow", "==", "3.4.0", "mlflow==3.4.0", "")],
        id="workflow-run",
    ),
    pytest.param(
        'pip install "MLflow[extras]==3.4.0" \'numpy==1.26.4 ; python_version>"3.9"\'\n',
        [
            (1, 29, 34, "mlflow", "==", "3.4.0", "MLflow[extras]==3.4.0", ""),
            (1, 44, 50, "numpy", "==", "1.26.4", 'numpy==1.26.4 ; python_version>"3.9"', ""),
        ],
        id="quoted-extras-and-marker",
    ),
    pytest.param(
        'packages:\n  - "ml_flow==3.4.0",\n  - zope.sqlalchemy==3.1\n',
        [
            (2, 14, 19, "ml-flow", "==", "3.4.0", "ml_flow==3.4.0", ""),
            (3, 21, 24, "zope-sqlalchemy", "==", "3.1", "zope.sqlalchemy==3.1", ""),
        ],
        id="yaml-list-trailing-comma",
    ),
    pytest.param(
        'ml_flow==3.4.0;python_version<"3.12"\n',
        [(1, 9, 14, "ml-flow", "==", "3.4.0", 'ml_flow==3.4.0;python_version<"3.12"', "")],
        id="constraints-marker-keeps-inner-quotes",
    ),
    pytest.param(
        "legacy===1.0-custom\n",
        [(1, 9, 19, "legacy", "===", "1.0-custom", "legacy===1.0-custom", "")],
        id="arbitrary-equality",
    ),
    pytest.param(
        "# pip install mlflow==3.3.0\npip install mlflow==3.4.0  # not mlflow==3.2.0\n",
        [(2, 20, 25, "mlflow", "==", "3.4.0", "mlflow==3.4.0", "")],
        id="comments-ignored",
    ),
    pytest.param(
        'echo "#" a==1.0 "# b==2.0" c==3.0#frag\n',
        [(1, 12, 15, "a", "==", "1.0", "a==1.0", "")],
        id="hash-inside-quotes-or-word-is-not-a-comment",
    ),
    pytest.param(
        'pip install "a>=1" b==2.* c~=1.0 "d==1,<2" e\n',
        [],
        id="ranges-and-wildcards-not-pins",
    ),
    pytest.param(
        'MLFLOW_VERSION=3.4.0\nif [ "$a" == "b" ]; then x==y; fi\n',
        [],
        id="not-requirements",
    ),
    pytest.param(
        "don't forget: pip install a==1.0\n",
        [(1, 29, 32, "a", "==", "1.0", "a==1.0", "")],
        id="unbalanced-quote",
    ),
    pytest.param(
        '  run: "pip install a==1.0\n  b==2.0"\n',
        [(1, 23, 26, "a", "==", "1.0", "a==1.0", ""), (2, 5, 8, "b", "==", "2.0", "b==2.0", "")],
        id="string-across-lines",
    ),
    pytest.param(
        "pip install mlflow==3.4.0 \\\r\n  numpy==1.26.4\r\n",
        [
            (1, 20, 25, "mlflow", "==", "3.4.0", "mlflow==3.4.0", ""),
            (2, 9, 15, "numpy", "==", "1.26.4", "numpy==1.26.4", ""),
        ],
        id="crlf",
    ),
]


@pytest.mark.parametrize(("text", "expected"), GENERIC_CASES)
def test_find_generic_pins(text: str, expected: list[Row]) -> None:
    pins = find_generic_pins(WORKFLOW, text)
    assert rows(pins) == expected
    assert all(p.file == WORKFLOW for p in pins)
    assert_spans_hold_versions(text, pins)


REPLACE_CASES = [
    pytest.param(
        find_pyproject_pins,
        "[project]\r\n"
        "dependencies = [\r\n"
        "  'MLflow[extras]==3.4.0 ; python_version>\"3.9\"',  # keep me\r\n"
        '  "numpy>=1",\r\n'
        "]\r\n"
        "[dependency-groups]\r\n"
        'dev = [{include-group = "x"}, "ml_flow===3.4.0", "mlflow == 3.4.0", "MLFLOW===3.4.0"]',
        "mlflow",
        "[project]\r\n"
        "dependencies = [\r\n"
        "  'MLflow[extras]==3.5.1 ; python_version>\"3.9\"',  # keep me\r\n"
        '  "numpy>=1",\r\n'
        "]\r\n"
        "[dependency-groups]\r\n"
        'dev = [{include-group = "x"}, "ml_flow===3.4.0", "mlflow == 3.5.1", "MLFLOW===3.5.1"]',
        id="pyproject-crlf-no-final-newline",
    ),
    pytest.param(
        find_generic_pins,
        "steps:\n"
        "  - run: pip install mlflow==3.4.0 'MLflow[x]==3.4.0' numpy==3.4.0  # mlflow==3.4.0\n"
        "  - run: echo done\n",
        "mlflow",
        "steps:\n"
        "  - run: pip install mlflow==3.5.1 'MLflow[x]==3.5.1' numpy==3.4.0  # mlflow==3.4.0\n"
        "  - run: echo done\n",
        id="generic-several-on-one-line",
    ),
]


@pytest.mark.parametrize(("finder", "text", "name", "expected"), REPLACE_CASES)
def test_splice(finder: Finder, text: str, name: str, expected: str) -> None:
    chosen = [p for p in finder(PYPROJECT, text) if p.name == name]
    assert splice(text, [p.span for p in chosen], "3.5.1") == expected


def test_splice_without_pins_is_identity() -> None:
    text = "a\r\nb\n\nc"
    assert splice(text, [], "1.0") == text


def test_splice_duplicate_pins_replaced_once() -> None:
    text = "pip install a==1.0\n"
    pins = find_generic_pins(WORKFLOW, text)
    assert splice(text, [p.span for p in [*pins, *pins]], "2.0") == "pip install a==2.0\n"


BUMP_ERRORS = [
    pytest.param(
        "a==1.0\n", "2.0 ", "'2.0 ' cannot be written as an exact version", id="whitespace"
    ),
    pytest.param("a==1.0\n", "2.*", "'2.*' cannot be written as an exact version", id="wildcard"),
    pytest.param("a==1.0\n", 'x"y', "'x\"y' cannot be written as an exact version", id="quote"),
    pytest.param("a==1.0\n", "banana", "==banana is not a valid pin", id="not-a-version"),
]


@pytest.mark.parametrize(("text", "new_version", "message"), BUMP_ERRORS)
def test_splice_rejects_bad_versions(text: str, new_version: str, message: str) -> None:
    pins = find_generic_pins(WORKFLOW, text)
    with pytest.raises(EditError) as caught:
        check_version(pins[0].operator, new_version)
    assert str(caught.value) == message


def test_splice_rejects_stale_pin() -> None:
    pins = find_generic_pins(WORKFLOW, "a==1.0\n")
    with pytest.raises(EditError) as caught:
        splice("a==1.1\n", [p.span for p in pins], "2.0")
    assert str(caught.value) == ".github/workflows/ci.yml:1: '1.0' is no longer where it was found"


def test_splice_rejects_overlapping_pins() -> None:
    # Two spans over the same bytes can only come from a caller mixing up pins.
    name = canonicalize_name("a")
    pin = TextPin(WORKFLOW, 1, 3, 6, name, "==", "1.0", "a==1.0", "")
    shorter = TextPin(WORKFLOW, 1, 3, 5, name, "==", "1.", "a==1.", "")
    with pytest.raises(EditError) as caught:
        splice("a==1.0\n", [pin.span, shorter.span], "2.0")
    assert str(caught.value) == ".github/workflows/ci.yml:1: pins overlap"
