"""Headers an update bot (Renovate's pip-compile manager) cannot replay."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

import pytest

from conftest import Repo
from pinsync.bots import renovate_problems

MakeRepo = Callable[[Mapping[str, str]], Repo]

# (header command, the start of each problem)
COMMANDS = [
    pytest.param(
        "pip-compile --allow-unsafe --generate-hashes --output-file=requirements.txt requirements.in",
        [],
        id="replayable",
    ),
    pytest.param(
        "pip-compile --extra=dev --strip-extras --output-file=a.txt pyproject.toml", [], id="extras"
    ),
    pytest.param("make upgrade", ["its header shows the custom command 'make'"], id="custom"),
    pytest.param(
        "pip-compile --no-annotate --output-file=a.txt a.in",
        ["--no-annotate: not among the options"],
        id="option-outside-the-allowlist",
    ),
    pytest.param(
        "pip-compile --find-links=wheels --output-file=a.txt a.in",
        ["--find-links: not among the options"],
        id="find-links-is-not-replayed",
    ),
    pytest.param(
        "pip-compile --output-file a.txt a.in",
        [
            "--output-file VALUE: Renovate's pip-compile manager accepts it only as --output-file=VALUE"
        ],
        id="value-without-equals",
    ),
    pytest.param(
        "pip-compile --output-file=a.txt",
        ["no source file named"],
        id="no-source",
    ),
    pytest.param(
        "pip-compile 'unbalanced", ["Renovate's pip-compile manager cannot split"], id="bad-quoting"
    ),
]


@pytest.mark.parametrize(("command", "expected"), COMMANDS)
def test_renovate_problems(command: str, expected: list[str]) -> None:
    problems = list(renovate_problems(command))
    assert len(problems) == len(expected), problems
    for problem, start in zip(problems, expected, strict=True):
        assert problem.startswith(start), problem


@pytest.mark.parametrize(
    ("files", "args", "custom", "expected"),
    [
        pytest.param(
            {"renovate.json": "{}\n"},
            ("--no-annotate",),
            None,
            ["--no-annotate"],
            id="renovate-set-up",
        ),
        pytest.param({}, ("--no-annotate",), None, [], id="no-bot-no-warning"),
        pytest.param(
            {".github/renovate.json5": "{}\n"},
            (),
            "make upgrade",
            ["custom command 'make'"],
            id="custom-command",
        ),
        pytest.param({"renovate.json": "{}\n"}, ("--allow-unsafe",), None, [], id="replayable"),
    ],
)
def test_check_warns_where_renovate_would_stop_updating(
    make_repo: MakeRepo,
    files: dict[str, str],
    args: tuple[str, ...],
    custom: str | None,
    expected: list[str],
) -> None:
    # The index options live in the .in, which pip-compile does not echo in the header
    # ([tool.pip-tools] options it does echo, and Renovate cannot replay --find-links).
    repo = make_repo(
        {
            "pyproject.toml": "",
            "requirements.in": "--no-index\n--find-links wheels\nflask\n",
            **files,
        }
    )
    repo.pip_compile(*args, "--output-file=requirements.txt", "requirements.in", custom=custom)
    proc = repo.pinsync("check", "--offline", "--format", "json", check=False)
    found = [f for f in json.loads(proc.stdout)["findings"] if f["kind"] == "bot-incompatible"]
    assert [f["severity"] for f in found] == ["warning"] * len(expected)
    for finding, part in zip(found, expected, strict=True):
        assert finding["file"] == "requirements.txt" and finding["line"] == 5, finding
        assert part in finding["message"], finding["message"]
        assert finding["message"].startswith("requirements.txt: Renovate cannot update it: ")
    assert proc.returncode == 0  # a warning: the lock itself is right
