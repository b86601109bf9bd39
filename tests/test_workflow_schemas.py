"""The workflows the docs show, and action.yml, against GitHub's schemas.

tests/data/github-workflow.schema.json and github-action.schema.json are
SchemaStore's schemas (json.schemastore.org/github-workflow.json and
github-action.json, Apache-2.0), as vendored unchanged by check-jsonschema 0.39.0
(check_jsonschema/builtin_schemas/vendor/). No network: a copy is the point.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data"
_BLOCK = re.compile(r"^```ya?ml\n(.*?)^```", re.M | re.S)


def _load(text: str) -> Any:
    data = yaml.safe_load(text)
    # YAML 1.1 reads a bare `on:` key as the boolean true; GitHub reads it as "on".
    if isinstance(data, dict) and True in data:
        data["on"] = data.pop(True)
    return data


def _workflows() -> list[tuple[str, Any]]:
    found = []
    for page in sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")]):
        for n, match in enumerate(_BLOCK.finditer(page.read_text(encoding="utf-8")), 1):
            data = _load(match.group(1))
            # A workflow, not a snippet of steps: it has jobs. One shown without its
            # `on:` (the jobs to add to yours) is checked with a trigger of its own.
            if isinstance(data, dict) and "jobs" in data:
                found.append((f"{page.relative_to(ROOT)}#{n}", {"on": "push", **data}))
    return found


WORKFLOWS = _workflows()


def _validator(name: str) -> jsonschema.protocols.Validator:
    schema = json.loads((DATA / name).read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def test_the_docs_show_workflows() -> None:
    # The bots recipe at least; a block that stopped parsing would vanish from here.
    assert any(where.startswith("docs/bots.md") for where, _ in WORKFLOWS), WORKFLOWS


@pytest.mark.parametrize(("where", "workflow"), WORKFLOWS, ids=[w for w, _ in WORKFLOWS])
def test_a_workflow_in_the_docs_is_valid(where: str, workflow: Any) -> None:
    errors = [e.message for e in _validator("github-workflow.schema.json").iter_errors(workflow)]
    assert errors == [], where


def test_the_action_is_valid() -> None:
    action = _load((ROOT / "action.yml").read_text(encoding="utf-8"))
    errors = [e.message for e in _validator("github-action.schema.json").iter_errors(action)]
    assert errors == []


@pytest.mark.parametrize(
    "broken",
    [
        {"on": "push", "jobs": {"x": {"runs-on": "ubuntu-latest", "steps": [{"runs": "x"}]}}},
        {"on": "push", "jobs": {"x": {"steps": [{"run": "x"}]}}},  # no runs-on
    ],
    ids=["misspelt-key", "no-runner"],
)
def test_the_schema_refuses_a_broken_workflow(broken: dict[str, Any]) -> None:
    assert list(_validator("github-workflow.schema.json").iter_errors(broken))
