"""`check --graph mermaid|dot`: sources → locks → environments, drifted edges red.

The output is read back with a small grammar of each format (every line must be a
node, an edge or a style of the shapes the renderer promises), so that a renderer
that emits anything else, or an edge to an undeclared node, fails here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pytest

from conftest import Repo
from pinsync.diagram import Edge, Layout, Node, dot, mark_drift, mermaid
from pinsync.report import Finding

MakeRepo = Callable[[Mapping[str, str]], Repo]


@dataclass(frozen=True)
class Drawn:
    """A parsed flowchart: node labels by id, and edges as (tail, head, label, color)."""

    labels: dict[str, str]
    edges: list[tuple[str, str, str | None, str | None]]
    node_colors: dict[str, str]

    def edge(self, tail: str, head: str) -> tuple[str | None, str | None]:
        """(label, color) of the one edge between the nodes labelled `tail` and `head`."""
        found = [(lab, col) for t, h, lab, col in self.edges if (t, h) == (tail, head)]
        assert len(found) == 1, (tail, head, self.edges)
        return found[0]

    def colored(self) -> set[tuple[str, str]]:
        return {(t, h) for t, h, _, color in self.edges if color}


_M_NODE = re.compile(r'    (n\d+)\["([^"]*)"\]')
_M_EDGE = re.compile(r'    (n\d+) (-->|-\.->)(?:\|"([^"|]*)"\|)? (n\d+)')
_M_LINK = re.compile(r"    linkStyle (\d+) stroke:(red|orange)")
_M_STYLE = re.compile(r"    style (n\d+) stroke:(red|orange)")


def parse_mermaid(text: str) -> Drawn:
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    labels: dict[str, str] = {}
    raw: list[tuple[str, str, str | None]] = []
    colors: dict[int, str] = {}
    node_colors: dict[str, str] = {}
    for line in lines[1:]:
        if m := _M_NODE.fullmatch(line):
            assert not raw, f"node after the edges: {line!r}"
            labels[m.group(1)] = m.group(2).replace("#quot;", '"')
        elif m := _M_EDGE.fullmatch(line):
            assert m.group(1) in labels and m.group(4) in labels, f"undeclared node: {line!r}"
            raw.append((m.group(1), m.group(4), m.group(3)))
        elif m := _M_LINK.fullmatch(line):
            assert int(m.group(1)) < len(raw), f"linkStyle of no edge: {line!r}"
            colors[int(m.group(1))] = m.group(2)
        elif m := _M_STYLE.fullmatch(line):
            node_colors[labels[m.group(1)]] = m.group(2)
        else:
            raise AssertionError(f"not Mermaid flowchart syntax this renderer writes: {line!r}")
    edges = [
        (labels[t], labels[h], label.replace("#quot;", '"') if label else None, colors.get(i))
        for i, (t, h, label) in enumerate(raw)
    ]
    return Drawn(labels, edges, node_colors)


_D_STRING = r'"((?:[^"\\]|\\.)*)"'
_D_NODE = re.compile(rf"    (n\d+) \[label={_D_STRING}(?:, color=(red|orange))?\];")
_D_EDGE = re.compile(r"    (n\d+) -> (n\d+)(?: \[(.*)\])?;")
_D_ATTR = re.compile(rf"(color|style|label)=(?:{_D_STRING}|(\w+))")


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def parse_dot(text: str) -> Drawn:
    lines = text.splitlines()
    assert lines[:3] == ["digraph pinsync {", "    rankdir=LR;", "    node [shape=box];"]
    assert lines[-1] == "}"
    labels: dict[str, str] = {}
    edges: list[tuple[str, str, str | None, str | None]] = []
    node_colors: dict[str, str] = {}
    for line in lines[3:-1]:
        if m := _D_NODE.fullmatch(line):
            labels[m.group(1)] = _unquote(m.group(2))
            if m.group(3):
                node_colors[labels[m.group(1)]] = m.group(3)
        elif m := _D_EDGE.fullmatch(line):
            assert m.group(1) in labels and m.group(2) in labels, f"undeclared node: {line!r}"
            attrs: dict[str, str] = {}
            rest = m.group(3) or ""
            for part in re.finditer(rf"{_D_ATTR.pattern}(?:, |$)", rest):
                attrs[part.group(1)] = _unquote(part.group(2) or part.group(3))
            consumed = "".join(p.group(0) for p in re.finditer(rf"{_D_ATTR.pattern}(?:, |$)", rest))
            assert consumed == rest, f"attributes this renderer does not write: {line!r}"
            label = attrs.get("label")
            edges.append((labels[m.group(1)], labels[m.group(2)], label, attrs.get("color")))
        else:
            raise AssertionError(f"not the dot this renderer writes: {line!r}")
    return Drawn(labels, edges, node_colors)


PARSERS = {"mermaid": parse_mermaid, "dot": parse_dot}
CI = (
    "jobs:\n"
    "  test:\n"
    "    runs-on: ubuntu-latest\n"
    "    steps:\n"
    "      - run: pip install -r requirements-all.txt\n"
)


@pytest.mark.parametrize("fmt", ["mermaid", "dot"])
def test_incident_drift_is_the_red_edge(incident_repo: Repo, fmt: str) -> None:
    """The seed incident: requirements.in moved to mlflow 3.4.0, requirements.txt did
    not. The edge between them is red and says so; the lock that was recompiled is not."""
    incident_repo.write({".github/workflows/ci.yml": CI})
    proc = incident_repo.pinsync("check", "--offline", "--graph", fmt, check=False)
    assert proc.returncode == 1, proc.stderr  # the check's own exit code
    drawn = PARSERS[fmt](proc.stdout)
    assert drawn.edge("requirements.in", "requirements.txt") == (
        "mlflow 2.9.0 → 3.4.0",
        "red",
    )
    assert drawn.edge("requirements-mlflow.in", "requirements-mlflow.txt") == (None, None)
    # requirements-all.in reads requirements.in (-r): its lock drifted the same way.
    assert drawn.edge("requirements.in", "requirements-all.txt")[1] == "red"
    # Environments: the image that installs the stale lock, and the CI job.
    assert drawn.edge("requirements.txt", "Dockerfile.api") == (None, None)
    assert drawn.edge("requirements-all.txt", ".github/workflows/ci.yml job test") == (None, None)
    # The Dockerfile that pins 3.4.0 disagrees with the lock left at 2.9.0 ...
    assert drawn.edge("requirements.txt", "Dockerfile.mlflow") == ("mlflow 3.4.0 → 2.9.0", "red")
    # ... and agrees with the one that was recompiled: a plain dotted `pins` edge.
    assert drawn.edge("requirements-mlflow.txt", "Dockerfile.mlflow") == ("pins mlflow", None)


@pytest.mark.parametrize("fmt", ["mermaid", "dot"])
def test_after_lock_nothing_is_red(incident_repo: Repo, fmt: str) -> None:
    incident_repo.pinsync("lock", "--quiet")
    proc = incident_repo.pinsync("check", "--graph", fmt, check=False)
    assert proc.returncode == 0, proc.stdout
    drawn = PARSERS[fmt](proc.stdout)
    assert drawn.colored() == set()
    assert not drawn.node_colors
    assert drawn.edge("requirements.in", "requirements.txt") == (None, None)
    assert drawn.edge("requirements.txt", "Dockerfile.mlflow") == ("pins mlflow", None)


# --- the pure steps, on hand-built layouts ------------------------------------------

BASE = Layout(
    (
        Node("base.in", "base.in", "source"),
        Node("api.in", "api.in", "source"),
        Node("base.txt", "base.txt", "lock"),
        Node("api.txt", "api.txt", "lock"),
        Node("Dockerfile stage 0", "Dockerfile", "environment", ("Dockerfile", 1, 9)),
        Node("tox.ini [testenv]", "tox.ini [testenv]", "environment"),
    ),
    (
        Edge("base.in", "base.txt", "reads"),
        Edge("base.in", "api.txt", "reads", direct=False),
        Edge("api.in", "api.txt", "reads"),
        Edge("base.txt", "api.txt", "reads", direct=False),
        Edge("api.txt", "Dockerfile stage 0", "installs"),
        Edge("base.txt", "tox.ini [testenv]", "installs"),
        Edge("api.txt", "tox.ini [testenv]", "installs"),
    ),
)


def finding(
    file: str,
    kind: str,
    message: str,
    package: str | None = "mlflow",
    severity: str = "error",
    line: int = 3,
    environment: str | None = None,
) -> Finding:
    return Finding(file, line, package, kind, severity, message, environment)  # type: ignore[arg-type]


# (findings, the edges (tail, head) that end up red/orange with their labels, node colors)
DRIFT_CASES = [
    pytest.param(
        [
            finding(
                "api.txt",
                "stale-lock",
                "mlflow: base.in:1 requires ==3.4.0 but api.txt pins 2.9.0 (2.9.0 → ==3.4.0)",
            )
        ],
        {("base.in", "api.txt"): (("mlflow 2.9.0 → 3.4.0",), "error")},
        {},
        id="stale-lock-on-the-source-it-names",
    ),
    pytest.param(
        [finding("api.txt", "out-of-date", "numpy: api.txt differs (1.0 → 1.1)", "numpy")],
        {("api.in", "api.txt"): (("numpy 1.0 → 1.1",), "error")},
        {},
        id="fresh-compile-on-the-direct-inputs",
    ),
    pytest.param(
        [
            finding("api.txt", "stale-lock", "mlflow: base.in:1 requires … (2.9.0 → ==3.4.0)"),
            finding("api.txt", "out-of-date", "mlflow: api.txt differs (2.9.0 → 3.4.0)"),
        ],
        {("base.in", "api.txt"): (("mlflow 2.9.0 → 3.4.0",), "error")},
        {},
        id="a-fresh-compile-repeats-nothing-a-source-explains",
    ),
    pytest.param(
        [
            finding(
                "api.txt",
                "layers-disagree",
                "numpy: api.txt pins 1.1 but the layer it includes, base.txt, pins 1.0 (1.0 → 1.1)",
                "numpy",
                "warning",
            )
        ],
        {("base.txt", "api.txt"): (("numpy 1.0 → 1.1",), "warning")},
        {},
        id="layers-disagree-orange",
    ),
    pytest.param(
        [
            finding(
                "Dockerfile",
                "dockerfile-pin",
                "mlflow: Dockerfile:3 installs 3.4.0 but base.txt pins 2.9.0 (3.4.0 → 2.9.0 to match",
            )
        ],
        {("base.txt", "Dockerfile stage 0"): (("mlflow 3.4.0 → 2.9.0",), "error")},
        {},
        id="dockerfile-pin-by-its-line",
    ),
    pytest.param(
        [
            finding(
                "ci/setup.sh",
                "co-installed-conflict",
                "numpy: tox.ini [testenv] installs base.txt (numpy==1.0, line 2) and api.txt "
                "(numpy==1.1); 1.0 → 1.1: pip refuses them",
                "numpy",
                environment="tox.ini [testenv]",
            )
        ],
        {
            ("base.txt", "tox.ini [testenv]"): (("numpy 1.0 → 1.1",), "error"),
            ("api.txt", "tox.ini [testenv]"): (("numpy 1.0 → 1.1",), "error"),
        },
        {},
        id="conflict-in-its-environment",
    ),
    pytest.param(
        [
            finding(
                "pyproject.toml",
                "pin-site",
                "mlflow: pyproject.toml:4 (project) pins 3.4.0 but base.txt:2 pins 2.9.0 "
                "(3.4.0 → 2.9.0 to match",
            )
        ],
        {("base.txt", "pyproject.toml"): (("mlflow 3.4.0 → 2.9.0",), "error")},
        {},
        id="pin-site-gets-a-node",
    ),
    pytest.param(
        [finding("api.txt", "not-resolved", "api.txt could not be re-resolved here", None)],
        {},
        {"api.txt": "error"},
        id="no-edge-marks-the-node",
    ),
    pytest.param(
        [finding("api.txt", "unverified", "api.txt has no stamp", None, "info")],
        {},
        {},
        id="notes-draw-nothing",
    ),
]


@pytest.mark.parametrize(("findings", "marked", "nodes"), DRIFT_CASES)
def test_findings_land_on_their_edge(
    findings: list[Finding],
    marked: dict[tuple[str, str], tuple[tuple[str, ...], str]],
    nodes: dict[str, str],
) -> None:
    drawn = mark_drift(BASE, findings)
    got = {(e.tail, e.head): (e.labels, e.severity) for e in drawn.edges if e.severity}
    assert got == marked
    assert {n.key: n.severity for n in drawn.nodes if n.severity} == nodes
    # Both renderers accept every layout the marking makes.
    parse_mermaid(mermaid(drawn))
    parse_dot(dot(drawn))


@pytest.mark.parametrize(
    ("label", "fmt", "written"),
    [
        ('say "hi"', "mermaid", 'n0["say #quot;hi#quot;"]'),
        ('say "hi"', "dot", 'n0 [label="say \\"hi\\""];'),
        ("C:\\path", "dot", 'n0 [label="C:\\\\path"];'),
    ],
)
def test_labels_are_escaped(label: str, fmt: str, written: str) -> None:
    graph = Layout((Node("k", label, "source"), Node("o", "o", "lock")), (Edge("k", "o", "reads"),))
    text = mermaid(graph) if fmt == "mermaid" else dot(graph)
    assert written in text
    assert PARSERS[fmt](text).labels["n0"] == label
