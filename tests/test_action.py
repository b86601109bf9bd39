"""action.yml, the composite GitHub Action: read, then its `run:` steps run here.

No YAML library is installed with the tests, so `read_action` below is a reader of
the subset action.yml is written in (block mappings, sequences of mappings, plain
and double-quoted scalars, `|` and `>-` blocks, comments); it fails loudly on
anything else, so that the action cannot drift into YAML this test misreads.

The `uses:` steps (setup-python, cache) are GitHub's and are not run; nor is the
install step (no network here): the interpreter running the tests, which has
requirements/tools.txt installed, stands for the one it would have made. Every
other step runs with bash exactly as Actions runs `shell: bash`, in an environment
like a runner's, with each `${{ … }}` expression substituted.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT, Repo

ACTION = ROOT / "action.yml"
# How Actions runs `shell: bash` (docs: "Using a specific shell").
BASH = ["bash", "--noprofile", "--norc", "-eo", "pipefail"]


# --- a reader of action.yml's YAML subset ---------------------------------------------


class _Reader:
    def __init__(self, text: str) -> None:
        self.lines = text.split("\n")
        self.i = 0

    @staticmethod
    def indent(line: str) -> int:
        return len(line) - len(line.lstrip(" "))

    def skip(self) -> None:
        while self.i < len(self.lines) and (
            not self.lines[self.i].strip() or self.lines[self.i].lstrip().startswith("#")
        ):
            self.i += 1

    def node(self, indent: int) -> Any:
        self.skip()
        line = self.lines[self.i]
        here = self.indent(line)
        assert here >= indent, f"line {self.i + 1}: expected a block indented {indent}"
        if line.lstrip().startswith("- "):
            return self.sequence(here)
        return self.mapping(here)

    def mapping(self, indent: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        while True:
            self.skip()
            if self.i >= len(self.lines):
                return out
            line = self.lines[self.i]
            if self.indent(line) != indent or line.lstrip().startswith("- "):
                assert self.indent(line) < indent or line.lstrip().startswith("- "), (
                    f"line {self.i + 1}: unexpected indentation: {line!r}"
                )
                return out
            key, colon, value = line.strip().partition(":")
            assert colon and re.fullmatch(r"[\w-]+", key), f"line {self.i + 1}: {line!r}"
            assert key not in out, f"line {self.i + 1}: {key} twice"
            self.i += 1
            out[key] = self.value(value.strip(), indent)

    def sequence(self, indent: int) -> list[Any]:
        out: list[Any] = []
        while True:
            self.skip()
            if self.i >= len(self.lines):
                return out
            line = self.lines[self.i]
            if self.indent(line) != indent or not line.lstrip().startswith("- "):
                return out
            # `- key: value` opens a mapping whose keys sit two columns further in.
            self.lines[self.i] = " " * (indent + 2) + line.lstrip()[2:]
            out.append(self.mapping(indent + 2))

    def value(self, text: str, indent: int) -> Any:
        if text in ("|", ">-"):
            return self.block(text, indent)
        if not text:
            return self.node(indent + 1)
        if text.startswith('"'):
            return json.loads(text)
        assert not text.startswith(("'", "{", "[", "&", "*", "!")), f"not in the subset: {text!r}"
        assert " #" not in text, f"a trailing comment: {text!r}"
        return text

    def block(self, style: str, indent: int) -> str:
        body: list[str] = []
        while self.i < len(self.lines):
            line = self.lines[self.i]
            if line.strip() and self.indent(line) <= indent:
                break
            body.append(line)
            self.i += 1
        while body and not body[-1].strip():
            body.pop()
        cut = min(self.indent(x) for x in body if x.strip())
        lines = [x[cut:] for x in body]
        if style == "|":
            return "\n".join(lines) + "\n"
        return " ".join(x.strip() for x in lines)


def read_action(text: str) -> dict[str, Any]:
    read = _Reader(text)
    out = read.mapping(0)
    read.skip()
    assert read.i == len(read.lines), f"line {read.i + 1}: not read"
    return out


def test_reader_reads_the_subset() -> None:
    text = (
        "a: plain words\n"
        'b: "3.11"\n'
        "# a comment\n"
        "c:\n"
        "  d: >-\n"
        "    folded\n"
        "    text\n"
        "  steps:\n"
        "    - name: one\n"
        "      run: |\n"
        "        echo 1\n"
        "        # kept: a comment of the script\n"
        "\n"
        "    - uses: x@v1\n"
        "      with:\n"
        "        k: ${{ inputs.k }}\n"
    )
    assert read_action(text) == {
        "a": "plain words",
        "b": "3.11",
        "c": {
            "d": "folded text",
            "steps": [
                {"name": "one", "run": "echo 1\n# kept: a comment of the script\n"},
                {"uses": "x@v1", "with": {"k": "${{ inputs.k }}"}},
            ],
        },
    }
    with pytest.raises(AssertionError):
        read_action("a: {flow: mapping}\n")


# --- the action's shape -------------------------------------------------------------------


def test_inputs_and_steps() -> None:
    action = read_action(ACTION.read_text())
    inputs = {
        name: (spec.get("default"), spec.get("required")) for name, spec in action["inputs"].items()
    }
    assert inputs == {
        "root": (".", "false"),
        "format": ("github", "false"),
        "sarif-file": ("", "false"),
        "python-version": ("3.11", "false"),
    }
    assert all(spec["description"] for spec in action["inputs"].values())
    runs = action["runs"]
    assert runs["using"] == "composite"
    steps = runs["steps"]
    setup = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python@"))
    assert setup["with"]["python-version"] == "${{ inputs.python-version }}"
    for step in steps:
        if "run" in step:
            assert step["shell"] == "bash"
            # Inputs reach scripts through env:, never spliced into the script's text.
            assert "${{" not in step["run"], step["name"]


# --- the steps, run ----------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    outputs: dict[str, dict[str, str]]


_EXPRESSION = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")


def run_action(
    with_: Mapping[str, str], workspace: Path, runner: Path, env: Mapping[str, str]
) -> Run:
    """The action's run steps, in order, until one fails, as a runner runs them."""
    action = read_action(ACTION.read_text())
    inputs = {name: spec.get("default", "") for name, spec in action["inputs"].items()}
    inputs.update(with_)
    context: dict[str, str] = {
        **{f"inputs.{name}": str(value) for name, value in inputs.items()},
        "github.action_path": str(ROOT),
        "runner.os": platform.system(),
        "steps.python.outputs.python-path": sys.executable,
        "steps.python.outputs.python-version": platform.python_version(),
        # The skipped install step's venv: the interpreter that runs the tests.
        "steps.install.outputs.python": sys.executable,
    }
    outputs: dict[str, dict[str, str]] = {}

    def substitute(text: str) -> str:
        def one(m: re.Match[str]) -> str:
            assert m.group(1) in context, f"an expression this test does not know: {m.group(0)}"
            return context[m.group(1)]

        return _EXPRESSION.sub(one, text)

    stdout = []
    for n, step in enumerate(action["runs"]["steps"]):
        if "uses" in step or step.get("id") == "install":
            continue
        script = runner / f"step-{n}.sh"
        script.write_text(step["run"])
        output = runner / f"output-{n}"
        output.write_text("")
        step_env = {k: substitute(v) for k, v in step.get("env", {}).items()}
        proc = subprocess.run(
            [*BASH, str(script)],
            cwd=workspace,
            env={**env, "GITHUB_OUTPUT": str(output), **step_env},
            capture_output=True,
            text=True,
            check=False,
        )
        stdout.append(proc.stdout)
        found = dict(line.split("=", 1) for line in output.read_text().splitlines())
        if "id" in step:
            outputs[step["id"]] = found
            context.update({f"steps.{step['id']}.outputs.{k}": v for k, v in found.items()})
        if proc.returncode != 0:
            return Run(proc.returncode, "".join(stdout), outputs)
    return Run(0, "".join(stdout), outputs)


STALE = (
    "::error file=requirements.txt,line=15,title=pinsync stale-lock::mlflow: "
    "requirements.in:1 requires ==3.4.0 but requirements.txt pins 2.9.0 (2.9.0 → ==3.4.0)"
)


@pytest.mark.parametrize(
    ("state", "with_", "code", "annotation", "summary_title", "link"),
    [
        pytest.param(
            "drift",
            {},
            1,
            STALE,
            "## pinsync check: 9 errors, 0 warnings",
            "(requirements.txt#L15)",
            id="drift-fails-the-job",
        ),
        pytest.param(
            "drift",
            {"sarif-file": "pinsync.sarif"},
            1,
            STALE,
            "## pinsync check: 9 errors, 0 warnings",
            "(requirements.txt#L15)",
            id="drift-with-sarif",
        ),
        pytest.param(
            "drift-below",
            {"root": "repo"},
            1,
            # Actions places an annotation by its path from the top of the checkout.
            "::error file=repo/requirements.txt,line=15,title=pinsync stale-lock::",
            "## pinsync check: 9 errors, 0 warnings",
            "(repo/requirements.txt#L15)",
            id="root-in-the-workspace",
        ),
        pytest.param(
            "locked",
            {"sarif-file": "pinsync.sarif"},
            0,
            None,
            "## pinsync check: all lock files are in sync",
            None,
            id="in-sync-passes",
        ),
    ],
)
def test_run_steps(
    incident_repo: Repo,
    tmp_path: Path,
    state: str,
    with_: dict[str, str],
    code: int,
    annotation: str | None,
    summary_title: str,
    link: str | None,
) -> None:
    if state == "locked":
        incident_repo.pinsync("lock", "--quiet")
    workspace = incident_repo.path.parent if state == "drift-below" else incident_repo.path
    runner = tmp_path / "runner"
    (runner / "temp").mkdir(parents=True)
    summary = runner / "step_summary"
    summary.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "RUNNER_"))}
    env |= {
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(workspace),
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_ACTION_PATH": str(ROOT),
        "RUNNER_TEMP": str(runner / "temp"),
    }
    before = incident_repo.snapshot()

    run = run_action(with_, workspace, runner, env)

    assert run.returncode == code, run.stdout
    # The key step hashed the action's own tools lock, where pip's cache is keyed.
    tools = (ROOT / "requirements" / "tools.txt").read_bytes()
    assert run.outputs["key"] == {"hash": hashlib.sha256(tools).hexdigest()}
    errors = [line for line in run.stdout.splitlines() if line.startswith("::error ")]
    if annotation is None:
        assert errors == []
    else:
        assert any(line.startswith(annotation) for line in errors), errors
    text = summary.read_text()
    assert text.startswith(summary_title + "\n"), text[:200]
    if link is not None:
        assert f"[requirements.txt:15]{link}" in text
    sarif = workspace / "pinsync.sarif"
    if "sarif-file" in with_:
        log = json.loads(sarif.read_text())
        results = {
            (r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"])
            for r in log["runs"][0]["results"]
        }
        assert (("stale-lock", "requirements.txt") in results) is (code == 1)
        sarif.unlink()  # the user's own file; the check itself wrote nothing
    else:
        assert not sarif.exists()
    assert incident_repo.snapshot() == before
