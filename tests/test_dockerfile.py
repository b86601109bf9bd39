"""Tests for pinsync.dockerfile: pins and requirement installs found in Dockerfiles."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePosixPath

import pytest

from pinsync.config import DEFAULT_DOCKERFILES
from pinsync.discovery import dockerfile_paths
from pinsync.dockerfile import (
    BuildStage,
    Dockerfile,
    parse_dockerfile,
)
from pinsync.edits import check_version, splice
from pinsync.errors import EditError, ParseError
from pinsync.pipcommand import PinSite

PATH = PurePosixPath("docker/Dockerfile")

# line, stage, name, raw, operator, version, (edit_line, edit_start, edit_end)
PinRow = tuple[int, int, str, str, str, "str | None", tuple[int, int, int]]
# line, stage, path, kind, no_deps
InstallRow = tuple[int, int, str, str, bool]


def pin_rows(df: Dockerfile) -> list[PinRow]:
    return [(p.line, p.stage, p.name, p.raw, p.operator, p.version, edit(p)) for p in df.pins]


def edit(pin: PinSite) -> tuple[int, int, int]:
    return pin.edit_line, pin.edit_start, pin.edit_end


def install_rows(df: Dockerfile) -> list[InstallRow]:
    return [(i.line, i.stage, i.path, i.kind, i.no_deps) for i in df.installs]


def assert_spans_hold_versions(text: str, pins: Sequence[PinSite]) -> None:
    # splice trusts the span, so check it against the text independently.
    lines = text.split("\n")
    for pin in pins:
        if pin.edit_line:
            assert lines[pin.edit_line - 1][pin.edit_start : pin.edit_end] == pin.version


def parse(text: str) -> Dockerfile:
    return parse_dockerfile(PATH, text)


def replace_version(text: str, site: PinSite, new_version: str) -> str:
    """What bump does with one Dockerfile pin: the one version rule, then the one splice."""
    check_version(site.operator, new_version)
    if site.span is None:
        raise EditError(f"{site.raw}: no single literal holds the version")
    return splice(text, [site.span], new_version)


# --- pip spellings ------------------------------------------------------------------------

# Tables stay one case per line or block, so each can be read against the Dockerfile text.
# fmt: off
SPELLINGS = [
    pytest.param("pip install", 24, id="pip"),
    pytest.param("pip3 install", 25, id="pip3"),
    pytest.param("pip3.11 install", 28, id="pip3.11"),
    pytest.param("/opt/venv/bin/pip install", 38, id="venv-path"),
    pytest.param("python -m pip install", 34, id="python-m-pip"),
    pytest.param("python3 -m pip install", 35, id="python3-m-pip"),
    pytest.param("python3.12 -m pip install", 38, id="python3.12-m-pip"),
    pytest.param("python3 -I -m pip install", 38, id="python-options-before-m"),
    pytest.param("uv pip install", 27, id="uv-pip"),
    pytest.param("uv pip install --system", 36, id="uv-pip-system"),
    pytest.param("pip install --upgrade", 34, id="upgrade"),
    pytest.param("pip install -U", 27, id="upgrade-short"),
    pytest.param("pip --disable-pip-version-check install", 52, id="global-option-before-install"),
    pytest.param("sudo -H pip install", 32, id="sudo"),
    pytest.param("env PIP_NO_CACHE_DIR=1 pip install", 47, id="env-prefix"),
    pytest.param("PIP_NO_CACHE_DIR=1 pip install", 43, id="assignment-prefix"),
    pytest.param("${VENV}/bin/pip install", 36, id="unknown-venv-variable"),
]
# fmt: on


@pytest.mark.parametrize(("command", "column"), SPELLINGS)
def test_pip_spellings(command: str, column: int) -> None:
    text = f"FROM python:3.11\nRUN {command} mlflow==3.4.0\n"
    df = parse(text)
    assert pin_rows(df) == [
        (2, 0, "mlflow", "mlflow==3.4.0", "==", "3.4.0", (2, column, column + 5))
    ]
    assert_spans_hold_versions(text, df.pins)


NOT_PIP = [
    pytest.param("pip download mlflow==3.4.0", id="pip-download"),
    pytest.param("pip wheel mlflow==3.4.0", id="pip-wheel"),
    pytest.param("python -c 'import x' mlflow==3.4.0", id="python-c"),
    pytest.param("python -m venv mlflow==3.4.0", id="python-m-other-module"),
    pytest.param("pipx install mlflow==3.4.0", id="pipx"),
    pytest.param("echo pip install mlflow==3.4.0", id="echo"),
    pytest.param("echo 'pip install mlflow==3.4.0'", id="quoted-string"),
    pytest.param("uv tool install mlflow==3.4.0", id="uv-tool"),
    pytest.param("apt-get install python3-pip=23.0 && true", id="apt-get"),
]


@pytest.mark.parametrize("command", NOT_PIP)
def test_commands_that_are_not_pip_install(command: str) -> None:
    df = parse(f"FROM python:3.11\nRUN {command}\n")
    assert df.pins == ()
    assert df.installs == ()


# --- pins -----------------------------------------------------------------------------------

# fmt: off
PIN_CASES = [
    pytest.param(
        "FROM python:3.11\n"
        "RUN pip install --no-cache-dir \\\n"
        "      mlflow==3.4.0 \\\n"
        "    # numpy==1.0 is commented out, and so is this whole line \\\n"
        "\n"
        "      gunicorn==21.2.0 \\\n"
        "      flask\n",
        [
            (3, 0, "mlflow", "mlflow==3.4.0", "==", "3.4.0", (3, 14, 19)),
            (6, 0, "gunicorn", "gunicorn==21.2.0", "==", "21.2.0", (6, 16, 22)),
        ],
        id="continuation-with-comment-and-blank-line",
    ),
    pytest.param(
        'FROM python:3.11\nRUN pip install "mlflow==3.4.0" \'a[b,c]==1.0\' "x" y==2\n',
        [
            (2, 0, "mlflow", "mlflow==3.4.0", "==", "3.4.0", (2, 25, 30)),
            (2, 0, "a", "a[b,c]==1.0", "==", "1.0", (2, 41, 44)),
            (2, 0, "y", "y==2", "==", "2", (2, 53, 54)),
        ],
        id="quoted-tokens",
    ),
    pytest.param(
        "FROM python:3.11\nRUN pip install MLflow[Extras,gcp]==3.4.0 Zope.SQLAlchemy==3.1\n",
        [
            (2, 0, "mlflow", "MLflow[Extras,gcp]==3.4.0", "==", "3.4.0", (2, 36, 41)),
            (2, 0, "zope-sqlalchemy", "Zope.SQLAlchemy==3.1", "==", "3.1", (2, 59, 62)),
        ],
        id="extras-and-name-normalisation",
    ),
    pytest.param(
        "FROM python:3.11\nRUN pip install legacy===1.0-custom 'b == 2.0'\n",
        [
            (2, 0, "legacy", "legacy===1.0-custom", "===", "1.0-custom", (2, 25, 35)),
            (2, 0, "b", "b == 2.0", "==", "2.0", (2, 42, 45)),
        ],
        id="arbitrary-equality-and-spaces",
    ),
    pytest.param(
        "FROM python:3.11\n"
        "RUN pip install 'a>=1' b~=2.0 'c==1.0,<2' d!=3 e f==1.* 'g===1.*' h@https://x/h.whl ./local.whl .\n",
        [],
        id="not-pins",
    ),
    pytest.param(
        "FROM python:3.11\n"
        "RUN pip install 'a==1.0; python_version == \"3.11\"'\n",
        [(2, 0, "a", 'a==1.0; python_version == "3.11"', "==", "1.0", (2, 20, 23))],
        id="marker-after-pin",
    ),
    pytest.param(
        "FROM python:3.11\n"
        "ARG MLFLOW_VERSION=3.4.0\n"
        'RUN pip install "mlflow[extras]==${MLFLOW_VERSION}" mlflow-skinny==$MLFLOW_VERSION\n',
        [
            (3, 0, "mlflow", "mlflow[extras]==${MLFLOW_VERSION}", "==", "3.4.0", (2, 19, 24)),
            (3, 0, "mlflow-skinny", "mlflow-skinny==$MLFLOW_VERSION", "==", "3.4.0", (2, 19, 24)),
        ],
        id="arg-default",
    ),
    pytest.param(
        "FROM python:3.11\nARG V=\"3.4.0\" W='1.0'\nRUN pip install a==$V b==${W}\n",
        [
            (3, 0, "a", "a==$V", "==", "3.4.0", (2, 7, 12)),
            (3, 0, "b", "b==${W}", "==", "1.0", (2, 17, 20)),
        ],
        id="arg-quoted-values",
    ),
    pytest.param(
        "FROM python:3.11\nENV MLFLOW_VERSION 3.4.0\nRUN pip install mlflow==${MLFLOW_VERSION}\n",
        [(3, 0, "mlflow", "mlflow==${MLFLOW_VERSION}", "==", "3.4.0", (2, 19, 24))],
        id="env-legacy-form",
    ),
    pytest.param(
        'FROM python:3.11\nENV A=1.0 B="2.0"\nENV A=9.9 C=${A}\nRUN pip install a==$A b==$B c==$C\n',
        [
            (4, 0, "a", "a==$A", "==", "9.9", (3, 6, 9)),
            (4, 0, "b", "b==$B", "==", "2.0", (2, 13, 16)),
            # Docker expands an ENV line with the values from before it.
            (4, 0, "c", "c==$C", "==", "1.0", (2, 6, 9)),
        ],
        id="env-several-on-one-line-and-chained",
    ),
    pytest.param(
        "ARG MLFLOW_VERSION=3.4.0\n"
        "ARG OTHER\n"
        "FROM python:3.11\n"
        "ARG MLFLOW_VERSION\n"
        "ARG OTHER\n"
        "RUN pip install mlflow==${MLFLOW_VERSION} other==${OTHER}\n",
        [
            (6, 0, "mlflow", "mlflow==${MLFLOW_VERSION}", "==", "3.4.0", (1, 19, 24)),
            (6, 0, "other", "other==${OTHER}", "==", None, (0, 0, 0)),
        ],
        id="global-arg-redeclared-in-stage",
    ),
    pytest.param(
        "ARG V=1.0\nFROM python:3.11\nARG V=2.0\nRUN pip install a==$V\n",
        [(4, 0, "a", "a==$V", "==", "2.0", (3, 6, 9))],
        id="stage-arg-overrides-global-default",
    ),
    pytest.param(
        "FROM python:3.11\n"
        "ARG KNOWN=2.0\n"
        "ARG EMPTY=\n"
        "RUN pip install a==${UNSET:-1.5.0} b==${KNOWN:-9} c==${EMPTY:-3.0} d==${EMPTY-4.0}x\n",
        [
            (4, 0, "a", "a==${UNSET:-1.5.0}", "==", "1.5.0", (4, 28, 33)),
            (4, 0, "b", "b==${KNOWN:-9}", "==", "2.0", (2, 10, 13)),
            (4, 0, "c", "c==${EMPTY:-3.0}", "==", "3.0", (4, 62, 65)),
        ],
        id="default-expansion",
    ),
    pytest.param(
        "FROM python:3.11\nARG V\nRUN pip install a==${V} b==$NEVER_DECLARED c==1.${MINOR}\n",
        [
            (3, 0, "a", "a==${V}", "==", None, (0, 0, 0)),
            (3, 0, "b", "b==$NEVER_DECLARED", "==", None, (0, 0, 0)),
            (3, 0, "c", "c==1.${MINOR}", "==", None, (0, 0, 0)),
        ],
        id="unknown-variables",
    ),
    pytest.param(
        "FROM python:3.11\nARG MINOR=4\nRUN pip install mlflow==3.${MINOR}.0\n",
        [(3, 0, "mlflow", "mlflow==3.${MINOR}.0", "==", "3.4.0", (0, 0, 0))],
        id="version-partly-from-variable-is-not-editable",
    ),
    pytest.param(
        "FROM python:3.11\nARG PACKAGES=\"a==1.0 b==2.0\"\nRUN pip install $PACKAGES \"$PACKAGES\"\n",
        [
            (3, 0, "a", "$PACKAGES", "==", "1.0", (2, 17, 20)),
            (3, 0, "b", "$PACKAGES", "==", "2.0", (2, 24, 27)),
        ],
        id="unquoted-variable-is-field-split",
    ),
    pytest.param(
        "FROM python:3.11\nARG PKG\nRUN pip install ${PKG}==1.0 $(cat x)==2 `cat y`==3 a==$(cat v)\n",
        [],
        id="unknown-names-and-command-substitution",
    ),
    pytest.param(
        "FROM python:3.11\n"
        "RUN pip install a==1\n"
        "RUN pip install b==2\n"
        "run PIP INSTALL c==3\n"
        "Run pip install d==4\n",
        [
            (2, 0, "a", "a==1", "==", "1", (2, 19, 20)),
            (3, 0, "b", "b==2", "==", "2", (3, 19, 20)),
            (5, 0, "d", "d==4", "==", "4", (5, 19, 20)),
        ],
        id="consecutive-runs-and-keyword-case",
    ),
    pytest.param(
        "FROM python:3.11\n"
        "RUN apt-get update && pip install a==1 || true; pip install b==2 | tee log & pip install c==3\n"
        "RUN if [ -n \"$X\" ]; then pip install d==4; else (pip install e==5); fi\n",
        [
            (2, 0, "a", "a==1", "==", "1", (2, 37, 38)),
            (2, 0, "b", "b==2", "==", "2", (2, 63, 64)),
            (2, 0, "c", "c==3", "==", "3", (2, 92, 93)),
            (3, 0, "d", "d==4", "==", "4", (3, 40, 41)),
            (3, 0, "e", "e==5", "==", "5", (3, 64, 65)),
        ],
        id="shell-operators-and-keywords",
    ),
    pytest.param(
        "FROM python:3.11\nRUN pip install a==1 > /dev/null 2>&1 < x==2 && pip install b==3 >log &>all c==4\n",
        [
            (2, 0, "a", "a==1", "==", "1", (2, 19, 20)),
            (2, 0, "b", "b==3", "==", "3", (2, 63, 64)),
            (2, 0, "c", "c==4", "==", "4", (2, 79, 80)),
        ],
        id="redirections",
    ),
    pytest.param(
        "FROM python:3.11\n"
        "RUN pip install a==1 b#==2 # c==3 \\\n"
        "    && pip install d==4\n",
        [(2, 0, "a", "a==1", "==", "1", (2, 19, 20))],
        id="shell-comment-runs-to-the-end-of-the-joined-line",
    ),
    pytest.param(
        'FROM python:3.11\nRUN ["pip", "install", "--no-cache-dir", "mlflow==3.4.0", "a\\u003d=1.0"]\n',
        [
            (2, 0, "mlflow", "mlflow==3.4.0", "==", "3.4.0", (2, 50, 55)),
            (2, 0, "a", "a==1.0", "==", "1.0", (2, 67, 70)),
        ],
        id="exec-form",
    ),
    pytest.param(
        'FROM python:3.11\nARG V=1.0\nRUN ["pip", "install", "a==${V}"]\n',
        [],
        id="exec-form-does-not-substitute",
    ),
    pytest.param(
        'FROM python:3.11\nARG V=1.0\nRUN ["/bin/sh", "-ec", "pip install a==$V && pip install b==2"]\n',
        [
            (3, 0, "a", "a==$V", "==", "1.0", (2, 6, 9)),
            (3, 0, "b", "b==2", "==", "2", (3, 60, 61)),
        ],
        id="exec-form-running-a-shell",
    ),
    pytest.param(
        "FROM python:3.11\n"
        "RUN --mount=type=cache,target=/root/.cache \\\n"
        "    --network=default pip install a==1\n",
        [(3, 0, "a", "a==1", "==", "1", (3, 37, 38))],
        id="run-flags",
    ),
    pytest.param(
        "FROM python:3.11\n"
        "RUN <<EOF\n"
        "set -e\n"
        "pip install a==1 \\\n"
        "    b==2\n"
        "EOF\n"
        "RUN python3 - <<'PY'\n"
        "import subprocess  # pip install c==3\n"
        "PY\n"
        "RUN pip install d==4\n",
        [
            (4, 0, "a", "a==1", "==", "1", (4, 15, 16)),
            (5, 0, "b", "b==2", "==", "2", (5, 7, 8)),
            (10, 0, "d", "d==4", "==", "4", (10, 19, 20)),
        ],
        id="heredocs",
    ),
    pytest.param(
        "FROM python:3.11\n"
        "RUN <<EOT bash\n"
        "pip install a==1\n"
        "EOT\n"
        "RUN /bin/bash -ex <<-'EOT'\n"
        "\tpip install b==2\n"
        "\tEOT\n"
        "RUN sh -c 'pip install c==3' <<EOT\n"
        "pip install x==9\n"
        "EOT\n",
        [
            (3, 0, "a", "a==1", "==", "1", (3, 15, 16)),
            (6, 0, "b", "b==2", "==", "2", (6, 16, 17)),
            (8, 0, "c", "c==3", "==", "3", (8, 26, 27)),
        ],
        id="heredoc-as-the-script-of-a-shell",
    ),
    pytest.param(
        "FROM python:3.11\n"
        "ARG V=5\n"
        "RUN sh -c 'pip install a==$V' && bash -ec \"pip install b==2\"\n"
        "RUN bash setup.sh -c pip install x==9\n",
        [
            (3, 0, "a", "a==$V", "==", "5", (2, 6, 7)),
            (3, 0, "b", "b==2", "==", "2", (3, 58, 59)),
        ],
        id="shell-c-in-shell-form",
    ),
]
# fmt: on


@pytest.mark.parametrize(("text", "expected"), PIN_CASES)
def test_pins(text: str, expected: list[PinRow]) -> None:
    df = parse(text)
    assert pin_rows(df) == expected
    assert all(p.file == PATH for p in df.pins)
    assert_spans_hold_versions(text, df.pins)


# --- requirement installs ------------------------------------------------------------------

# fmt: off
INSTALL_CASES = [
    pytest.param(
        "FROM python:3.11\nRUN pip install -r a.txt -r b.txt\n",
        [(2, 0, "a.txt", "-r", False), (2, 0, "b.txt", "-r", False)],
        id="two-r-in-one-command",
    ),
    pytest.param(
        "FROM python:3.11\n"
        "RUN pip install -rglued.txt --requirement=eq.txt --requirement long.txt -Ur cluster.txt \\\n"
        "    -c c.txt --constraint=c2.txt\n",
        [
            (2, 0, "glued.txt", "-r", False),
            (2, 0, "eq.txt", "-r", False),
            (2, 0, "long.txt", "-r", False),
            (2, 0, "cluster.txt", "-r", False),
            (3, 0, "c.txt", "-c", False),
            (3, 0, "c2.txt", "-c", False),
        ],
        id="option-spellings",
    ),
    pytest.param(
        "FROM python:3.11\n"
        "RUN pip install -r \\\n"
        "    next-line.txt \\\n"
        "    -r \\\n"
        "    # a comment between the option and its value\n"
        "    after-comment.txt\n",
        [(2, 0, "next-line.txt", "-r", False), (4, 0, "after-comment.txt", "-r", False)],
        id="line-of-the-option",
    ),
    pytest.param(
        "FROM python:3.11\n"
        "RUN pip install -r a.txt --no-deps && pip install -r b.txt\n"
        "RUN uv pip install --no-deps -r c.txt\n",
        [(2, 0, "a.txt", "-r", True), (2, 0, "b.txt", "-r", False), (3, 0, "c.txt", "-r", True)],
        id="no-deps-is-per-command",
    ),
    pytest.param(
        "FROM python:3.11\n"
        "RUN uv pip sync requirements.txt\n"
        "RUN uv pip sync --python-platform linux -c c.txt a.txt \\\n"
        "    b.txt\n"
        "RUN pip-sync --pip-args '--no-cache-dir' locked.txt\n",
        [
            (2, 0, "requirements.txt", "sync", False),
            (3, 0, "c.txt", "-c", False),
            (3, 0, "a.txt", "sync", False),
            (4, 0, "b.txt", "sync", False),
            (5, 0, "locked.txt", "sync", False),
        ],
        id="sync",
    ),
    pytest.param(
        "ARG REQS=requirements\n"
        "FROM python:3.11\n"
        "ARG REQS\n"
        "ENV APP=/app\n"
        'ENV DIR="${APP}/${REQS}"\n'
        "RUN pip install -r ${DIR}/main.txt -r $DIR/$UNKNOWN.txt -r \"$(ls *.txt)\"\n",
        [
            (6, 0, "/app/requirements/main.txt", "-r", False),
            (6, 0, "/app/requirements/$UNKNOWN.txt", "-r", False),
            (6, 0, "$(ls *.txt)", "-r", False),
        ],
        id="variables-in-paths",
    ),
    pytest.param(
        'FROM python:3.11\nRUN ["python3", "-m", "pip", "install", "--no-deps", "-r", "x.txt"]\n',
        [(2, 0, "x.txt", "-r", True)],
        id="exec-form",
    ),
    pytest.param(
        "FROM python:3.11\nRUN cat -r x.txt; pip download -r y.txt; echo -r z.txt\n",
        [],
        id="not-pip",
    ),
]
# fmt: on


@pytest.mark.parametrize(("text", "expected"), INSTALL_CASES)
def test_installs(text: str, expected: list[InstallRow]) -> None:
    df = parse(text)
    assert install_rows(df) == expected
    assert all(i.file == PATH for i in df.installs)


# These values are shaped like pins on purpose: if an option failed to take its value,
# the value would show up as a pin.
# fmt: off
OPTION_VALUE_CASES = [
    pytest.param("-i a==1 --index-url b==1", id="index-url"),
    pytest.param("--extra-index-url a==1 --extra-index-url=b==1", id="extra-index-url"),
    pytest.param("-f a==1 --find-links b==1", id="find-links"),
    pytest.param("-t a==1 --target b==1 --prefix c==1 --root d==1 --src e==1", id="locations"),
    pytest.param("-e a==1 --editable b==1", id="editable"),
    pytest.param("--platform a==1 --python-version b==1 --implementation c==1 --abi d==1", id="platform"),
    pytest.param("--only-binary a==1 --no-binary b==1 --trusted-host c==1", id="format-control"),
    pytest.param("--cache-dir a==1 --progress-bar b==1 --upgrade-strategy c==1", id="misc"),
    pytest.param("-C a==1 --config-settings b==1", id="config-settings"),
    pytest.param("--python a==1 --index-strategy b==1", id="uv"),
    pytest.param("-r a==1 -c b==1", id="requirement-files"),
]
# fmt: on


@pytest.mark.parametrize("options", OPTION_VALUE_CASES)
def test_option_values_are_not_requirements(options: str) -> None:
    df = parse(f"FROM python:3.11\nRUN pip install {options} real==2.0\n")
    assert [(p.name, p.version) for p in df.pins] == [("real", "2.0")]


def test_realistic_options_with_values() -> None:
    text = (
        "FROM python:3.11\n"
        "RUN pip install -i https://x/simple --target /opt -c constraints.txt \\\n"
        "    --extra-index-url=https://y/simple --only-binary :all: mlflow==3.4.0\n"
    )
    df = parse(text)
    assert pin_rows(df) == [(3, 0, "mlflow", "mlflow==3.4.0", "==", "3.4.0", (3, 67, 72))]
    assert install_rows(df) == [(2, 0, "constraints.txt", "-c", False)]


# --- stages ----------------------------------------------------------------------------------

MULTI_STAGE = (
    "ARG PY=3.11\n"
    "FROM python:${PY}-slim AS base\n"
    "ENV MLFLOW_VERSION=3.4.0\n"
    "RUN pip install -r base.txt\n"
    "\n"
    "from base as Builder\n"
    "RUN pip install mlflow==${MLFLOW_VERSION}\n"
    "\n"
    "FROM --platform=$BUILDPLATFORM builder AS final\n"
    "RUN pip install gunicorn==21.2.0\n"
    "\n"
    "FROM python:${PY}\n"
    "RUN pip install other==${MLFLOW_VERSION}\n"
)


def test_stages() -> None:
    df = parse(MULTI_STAGE)
    assert df.stages == (
        BuildStage(0, "base", "python:3.11-slim", 2),
        BuildStage(1, "Builder", "base", 6),
        BuildStage(2, "final", "builder", 9),
        BuildStage(3, None, "python:3.11", 12),
    )
    assert pin_rows(df) == [
        (7, 1, "mlflow", "mlflow==${MLFLOW_VERSION}", "==", "3.4.0", (3, 19, 24)),
        (10, 2, "gunicorn", "gunicorn==21.2.0", "==", "21.2.0", (10, 26, 32)),
        (13, 3, "other", "other==${MLFLOW_VERSION}", "==", None, (0, 0, 0)),
    ]
    assert install_rows(df) == [(4, 0, "base.txt", "-r", False)]


@pytest.mark.parametrize(
    ("stage", "expected"),
    [
        pytest.param(0, (0,), id="image"),
        pytest.param(1, (1, 0), id="from-base"),
        pytest.param(2, (2, 1, 0), id="from-builder-case-insensitive"),
        pytest.param(3, (3,), id="unrelated"),
    ],
)
def test_lineage(stage: int, expected: tuple[int, ...]) -> None:
    assert parse(MULTI_STAGE).lineage(stage) == expected


def test_lineage_by_index() -> None:
    df = parse("FROM python:3.11\nFROM 0\nFROM alpine AS x\nFROM 2\n")
    assert [df.lineage(i) for i in range(4)] == [(0,), (1, 0), (2,), (3, 2)]


# --- layout ------------------------------------------------------------------------------------


def test_crlf_and_missing_final_newline() -> None:
    text = "FROM python:3.11\r\nARG V=1.0\r\nRUN pip install \\\r\n    a==$V \\\r\n    b==2.0"
    df = parse(text)
    assert pin_rows(df) == [
        (4, 0, "a", "a==$V", "==", "1.0", (2, 6, 9)),
        (5, 0, "b", "b==2.0", "==", "2.0", (5, 7, 10)),
    ]
    assert replace_version(text, df.pins[0], "1.1") == (
        "FROM python:3.11\r\nARG V=1.1\r\nRUN pip install \\\r\n    a==$V \\\r\n    b==2.0"
    )
    assert replace_version(text, df.pins[1], "2.10") == (
        "FROM python:3.11\r\nARG V=1.0\r\nRUN pip install \\\r\n    a==$V \\\r\n    b==2.10"
    )


def test_byte_order_mark_and_escape_directive() -> None:
    text = "\ufeff# escape=`\nFROM python:3.11\nRUN pip install `\n    a==1.0 C:\\x\n"
    df = parse(text)
    assert pin_rows(df) == [(4, 0, "a", "a==1.0", "==", "1.0", (4, 7, 10))]


def test_lenient_on_odd_input() -> None:
    text = (
        "RUN pip install before-from==1.0\n"
        "ENV X=1\n"
        "FROM\n"
        "FROM python:3.11\n"
        "HEALTHCHECK CMD curl x\n"
        "FOO bar baz\n"
        "ONBUILD RUN pip install onbuild==1.0\n"
        "RUN pip install 'unterminated==1.0\n"
        'RUN pip install "a==${V\n'
        'RUN ["echo", broken\n'
        "RUN [ -f x.txt ] && pip install -r x.txt\n"
    )
    df = parse(text)
    assert df.stages == (BuildStage(0, None, "python:3.11", 4),)
    assert [(p.line, p.name, p.version) for p in df.pins] == [
        (8, "unterminated", "1.0"),
        (9, "a", None),
    ]
    assert install_rows(df) == [(11, 0, "x.txt", "-r", False)]


def test_broken_exec_form_running_pip_is_an_error() -> None:
    text = 'FROM python:3.11\nRUN ["pip", "install", "a==1",]\n'
    with pytest.raises(ParseError) as excinfo:
        parse(text)
    assert (excinfo.value.file, excinfo.value.line) == ("docker/Dockerfile", 2)


def test_pip_wrappers() -> None:
    text = "FROM python:3.11\nRUN pip-install -r a.txt b==1.0\n"
    assert parse(text).installs == ()
    df = parse_dockerfile(PATH, text, pip_wrappers=("pip-install",))
    assert install_rows(df) == [(2, 0, "a.txt", "-r", False)]
    assert [(p.name, p.version) for p in df.pins] == [("b", "1.0")]


# --- replace_version -------------------------------------------------------------------------

# fmt: off
REPLACE_CASES = [
    pytest.param(
        "FROM python:3.11\nRUN pip install  mlflow==3.4.0\tgunicorn==21.2.0\n",
        0,
        "3.10.1",
        "FROM python:3.11\nRUN pip install  mlflow==3.10.1\tgunicorn==21.2.0\n",
        id="literal",
    ),
    pytest.param(
        "FROM python:3.11\n"
        "RUN pip install \\\n"
        "    # pinned for the API\n"
        "    'mlflow[extras]==3.4.0' \\\n"
        "    gunicorn==21.2.0\n",
        1,
        "22.0.0",
        "FROM python:3.11\n"
        "RUN pip install \\\n"
        "    # pinned for the API\n"
        "    'mlflow[extras]==3.4.0' \\\n"
        "    gunicorn==22.0.0\n",
        id="continuation",
    ),
    pytest.param(
        'ARG MLFLOW_VERSION="3.4.0"  \nFROM python:3.11\nARG MLFLOW_VERSION\nRUN pip install mlflow==${MLFLOW_VERSION}\n',
        0,
        "3.5.0",
        'ARG MLFLOW_VERSION="3.5.0"  \nFROM python:3.11\nARG MLFLOW_VERSION\nRUN pip install mlflow==${MLFLOW_VERSION}\n',
        id="global-arg",
    ),
    pytest.param(
        "FROM python:3.11\nENV  MLFLOW_VERSION   3.4.0\nRUN pip install mlflow==$MLFLOW_VERSION\n",
        0,
        "3.5.0",
        "FROM python:3.11\nENV  MLFLOW_VERSION   3.5.0\nRUN pip install mlflow==$MLFLOW_VERSION\n",
        id="env-legacy",
    ),
    pytest.param(
        'FROM python:3.11\r\nRUN ["pip", "install", "legacy===1.0-custom"]\r\n',
        0,
        "1.1-custom",
        'FROM python:3.11\r\nRUN ["pip", "install", "legacy===1.1-custom"]\r\n',
        id="exec-form-crlf",
    ),
    pytest.param(
        "FROM python:3.11\nRUN pip install a==${A:-1.0}",
        0,
        "1.1",
        "FROM python:3.11\nRUN pip install a==${A:-1.1}",
        id="default-expansion-no-final-newline",
    ),
]
# fmt: on


@pytest.mark.parametrize(("text", "index", "new_version", "expected"), REPLACE_CASES)
def test_replace_version(text: str, index: int, new_version: str, expected: str) -> None:
    site = parse(text).pins[index]
    replaced = replace_version(text, site, new_version)
    assert replaced == expected
    assert parse(replaced).pins[index].version == new_version


# fmt: off
REFUSED_CASES = [
    pytest.param("FROM python:3.11\nRUN pip install a==${V}\n", "FROM python:3.11\nRUN pip install a==${V}\n", "2.0", id="unknown-version"),
    pytest.param("FROM python:3.11\nARG M=4\nRUN pip install a==1.${M}\n", "FROM python:3.11\nARG M=4\nRUN pip install a==1.${M}\n", "2.0", id="split-version"),
    pytest.param("FROM python:3.11\nRUN pip install a==1.0\n", "FROM python:3.11\nRUN pip install a==1.1\n", "2.0", id="file-changed"),
    pytest.param("FROM python:3.11\nRUN pip install a==1.0\n", "FROM python:3.11\nRUN pip install a==1.0\n", "2.0 ", id="trailing-space"),
    pytest.param("FROM python:3.11\nRUN pip install a==1.0\n", "FROM python:3.11\nRUN pip install a==1.0\n", "2.*", id="wildcard"),
    pytest.param("FROM python:3.11\nRUN pip install a==1.0\n", "FROM python:3.11\nRUN pip install a==1.0\n", "not a version", id="invalid"),
    pytest.param("FROM python:3.11\nRUN pip install a===1.0\n", "FROM python:3.11\nRUN pip install a===1.0\n", "1.1\"", id="needs-quoting"),
    pytest.param("FROM python:3.11\nRUN pip install a==1.0\n", "", "2.0", id="file-shrank"),
]
# fmt: on


@pytest.mark.parametrize(("parsed", "text", "new_version"), REFUSED_CASES)
def test_replace_version_refuses(parsed: str, text: str, new_version: str) -> None:
    site = parse(parsed).pins[0]
    with pytest.raises(EditError):
        replace_version(text, site, new_version)


# --- file names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("Dockerfile", True, id="plain"),
        pytest.param("docker/Dockerfile.mlflow", True, id="suffix"),
        pytest.param("api.Dockerfile", True, id="prefix-dot"),
        pytest.param("SlimDockerfile", True, id="prefix"),
        pytest.param("DemoDockerfile", True, id="prefix-demo"),
        pytest.param("Dockerfile.dockerignore", False, id="dockerignore"),
        pytest.param(".dockerignore", False, id="dot-dockerignore"),
        pytest.param("dockerfile", False, id="lower-case-like-the-globs"),
        pytest.param("Dockerfile-dev", False, id="dash-suffix"),
        pytest.param("docker-compose.yml", False, id="compose"),
    ],
)
def test_dockerfile_paths_with_the_default_globs(name: str, expected: bool) -> None:
    found = dockerfile_paths([PurePosixPath(name)], DEFAULT_DOCKERFILES)
    assert found == ((PurePosixPath(name),) if expected else ())
