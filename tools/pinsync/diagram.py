"""`check --graph`: a flowchart of sources → locks → environments, drift drawn red.

Three steps, each its own function: `layout` reads the repository's model (the only
step that touches files, through Repo); `mark_drift` lays the check's findings on
that layout as red (error) and orange (warning) edges labelled with the package and
its move; `mermaid` and `dot` turn the result into text. All but `layout` are pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:
    from .repo import Repo
    from .report import Finding, Severity

NodeKind = Literal["source", "lock", "environment", "pin"]
EdgeKind = Literal["reads", "installs", "pins"]
GraphFormat = Literal["mermaid", "dot"]

# Beyond this many nodes a rendered flowchart is a wall of boxes; the job summary
# then says how to get it instead of inlining it.
SUMMARY_MAX_NODES: Final = 60

# Labels name at most this many packages per edge: an upgrade can move hundreds.
_LABELS_SHOWN: Final = 3


@dataclass(frozen=True)
class Node:
    key: str  # what it stands for: a path, or a Dockerfile stage, or an environment's name
    label: str
    kind: NodeKind
    # A Dockerfile stage: its file and line range, to place findings by their line.
    span: tuple[str, int, int] | None = None
    severity: Severity | None = None  # a finding on the node itself, with no edge to carry it


@dataclass(frozen=True)
class Edge:
    tail: str  # node keys
    head: str
    kind: EdgeKind
    direct: bool = True  # reads: an input of the compile, not a file it reaches by -r/-c
    labels: tuple[str, ...] = ()  # what drifted along it: `mlflow 2.9.0 → 3.4.0`
    severity: Severity | None = None  # None: in sync


@dataclass(frozen=True)
class Layout:
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]


def layout(repo: Repo) -> Layout:
    """Every compile's sources → its lock, and every lock → the environments that
    install it (image stages, CI jobs, tox envs, nox sessions, ...: the model that
    `check --environments` shows) or whose Dockerfile pins what it pins."""
    from .buildcontext import contexts_for
    from .discovery import within
    from .envcheck import environment_model, stage_name
    from .images import declared_contexts, installed_locks

    nodes: dict[str, Node] = {}
    edges: dict[tuple[str, str, EdgeKind], Edge] = {}

    def add_node(node: Node) -> None:
        nodes.setdefault(node.key, node)

    def add_edge(edge: Edge) -> None:
        edges.setdefault((edge.tail, edge.head, edge.kind), edge)

    for target in repo.graph.order():
        out = target.output.as_posix()
        for path in repo.graph.closure[target.output]:
            if path == target.output:
                continue
            kind: NodeKind = "lock" if path in repo.graph.targets else "source"
            add_node(Node(path.as_posix(), path.as_posix(), kind))
            add_edge(Edge(path.as_posix(), out, "reads", direct=path in target.inputs))
        add_node(Node(out, out, "lock"))

    images = {df.path.as_posix(): df for df in repo.dockerfiles()}
    # An image stage is a node with its line range, so a finding is placed by its line.
    stages: dict[str, Node] = {}
    for file, df in images.items():
        for stage in df.stages:
            last = next((s.line - 1 for s in df.stages if s.index == stage.index + 1), 10**9)
            name = stage_name(df, stage.index)
            label = name if len(df.stages) > 1 else file
            stages[name] = Node(name, label, "environment", (file, stage.line, last))
    for place in environment_model(repo):
        add_node(stages.get(place.name) or Node(place.name, place.name, "environment"))
        for step in place.steps:
            add_node(Node(step.lock.as_posix(), step.lock.as_posix(), "lock"))
            add_edge(Edge(step.lock.as_posix(), place.name, "installs"))
    pins = {p: lock.pins() for p, lock in repo.locks.items()}
    declared = declared_contexts(repo) if images else {}
    for df in images.values():
        guesses = contexts_for(df.path, declared)
        # As the check does: a pin with no install in its stage is held against the
        # locks of the build context (the nearest directory up that holds one).
        context = next((c for c in guesses if any(within(p, c) for p in pins)), guesses[-1])
        for pin in df.pins:
            if pin.version is None:
                continue
            installed = {i.lock for i in installed_locks(df, pin.stage, sorted(pins))}
            against = installed or {p for p in pins if within(p, context)}
            key = stage_name(df, pin.stage)
            for lock in sorted(against):
                if pin.name in pins[lock]:
                    add_node(stages[key])
                    _pin_edge(edges, lock.as_posix(), key, pin.name)
    return Layout(_ordered(nodes.values()), tuple(edges.values()))


def _pin_edge(
    edges: dict[tuple[str, str, EdgeKind], Edge], tail: str, head: str, name: str
) -> None:
    """A dotted `pins NAME` edge: the stage writes a version of what the lock pins."""
    old = edges.get((tail, head, "pins"))
    labels = (*(old.labels if old else ()), f"pins {name}")
    edges[(tail, head, "pins")] = Edge(tail, head, "pins", labels=tuple(dict.fromkeys(labels)))


_RANK: Final = {"source": 0, "lock": 1, "environment": 2, "pin": 3}


def _ordered(nodes: Iterable[Node]) -> tuple[Node, ...]:
    # Sources, then locks, then what installs them: the flowchart reads left to right.
    ranked = sorted(enumerate(nodes), key=lambda pair: (_RANK[pair[1].kind], pair[0]))
    return tuple(node for _, node in ranked)


# --- findings on the layout --------------------------------------------------------

# The kinds that are drift between two places; the others say something of one file.
_DRIFT_KINDS: Final = frozenset(
    {
        "stale-lock",
        "constraint-violated",
        "out-of-date",
        "dockerfile-pin",
        "co-installed-conflict",
        "layers-disagree",
        "override",
        "pin-site",
        "omitted-pin",
    }
)
# `(2.9.0 → ==3.4.0)`, `(3.4.0 → 2.9.0 to match`, `; 1.0 → 1.1:`: the first move stated.
_MOVE: Final = re.compile(r"([^\s()]+) → ([^\s();,:]+)")


def move_of(finding: Finding) -> tuple[str, str] | None:
    """The `(old → new)` a finding's message states, if it states one."""
    found = _MOVE.search(finding.message)
    if found is None:
        return None
    return found.group(1), found.group(2).removeprefix("==")


def drift_label(finding: Finding) -> str:
    """`mlflow 2.9.0 → 3.4.0`: the package and its move, or the kind when it names none."""
    move = move_of(finding)
    if finding.package is None or move is None:
        return finding.kind
    return f"{finding.package} {move[0]} → {move[1]}"


def _mentions(message: str, path: str) -> bool:
    # Whole paths only: `requirements.txt` must not match inside `dev-requirements.txt`.
    if path not in message:
        return False  # most findings name few of the paths: skip the regex for the rest
    return re.search(rf"(?<![\w./-]){re.escape(path)}(?![\w/-])", message) is not None


def mark_drift(base: Layout, findings: Sequence[Finding]) -> Layout:
    """`base` with each error and warning laid on the edge it is about, red or orange
    and labelled; a finding that no edge carries marks its file's node."""
    nodes = {n.key: n for n in base.nodes}
    edges = {(e.tail, e.head, e.kind): e for e in base.edges}
    locks = [n.key for n in base.nodes if n.kind == "lock"]

    def mark(key: tuple[str, str, EdgeKind], finding: Finding) -> None:
        edge = edges.get(key) or Edge(*key)
        label = drift_label(finding)
        labels = edge.labels if edge.severity else ()  # a drawn edge's `pins x` gives way
        edges[key] = replace(
            edge,
            labels=tuple(dict.fromkeys((*labels, label))),
            severity=_worse(edge.severity, finding.severity),
        )

    # Findings that name the source they are about go first: a fresh compile's
    # `mlflow 2.9.0 → 3.4.0` in the same lock then adds nothing on its inputs' edges.
    chosen = [(not _names_a_source(f, base), f) for f in findings]
    chosen.sort(key=lambda pair: pair[0])
    placed: set[tuple[str, str]] = set()
    for unsourced, finding in chosen:
        if finding.severity not in ("error", "warning"):
            continue
        if unsourced and (finding.file, finding.package or "") in placed:
            continue
        named = [lock for lock in locks if _mentions(finding.message, lock)]
        carried = []
        if finding.kind in _DRIFT_KINDS:
            carried = _edges_for(finding, base, named)
            if finding.package is not None and any(k[2] == "reads" for k in carried):
                placed.add((finding.file, finding.package))
        if not carried and finding.kind == "pin-site" and named:
            # A pin in a pyproject, workflow, ...: drawn where it is, against the lock.
            nodes.setdefault(finding.file, Node(finding.file, finding.file, "pin"))
            carried = [(named[0], finding.file, "pins")]
        for key in carried:
            mark(key, finding)
        if not carried:
            node = nodes.get(finding.file) or Node(finding.file, finding.file, "pin")
            nodes[finding.file] = replace(node, severity=_worse(node.severity, finding.severity))
    return Layout(_ordered(nodes.values()), tuple(edges.values()))


def _names_a_source(finding: Finding, base: Layout) -> bool:
    return any(
        e.head == finding.file and e.kind == "reads" and _mentions(finding.message, e.tail)
        for e in base.edges
    )


def _edges_for(
    finding: Finding, base: Layout, named: Sequence[str]
) -> list[tuple[str, str, EdgeKind]]:
    """The edges a drift finding is about, by the file it sits in and what it names."""
    file = finding.file
    into = [e for e in base.edges if e.head == file and e.kind == "reads"]
    if into:
        # A lock against what it reads: the sources its message names, else its inputs.
        said = [e for e in into if _mentions(finding.message, e.tail)]
        return [(e.tail, e.head, e.kind) for e in said or [e for e in into if e.direct] or into]
    # An environment: the one the finding was judged in (findings carry it), else the
    # Dockerfile stage whose lines hold it; then the locks the message names.
    places = [
        n.key
        for n in base.nodes
        if n.kind == "environment"
        and (
            n.key == finding.environment
            if finding.environment is not None
            else n.span is not None and n.span[0] == file and n.span[1] <= finding.line <= n.span[2]
        )
    ]
    out: list[tuple[str, str, EdgeKind]] = []
    for place in places:
        for lock in named:
            kind: EdgeKind = "pins" if finding.kind == "dockerfile-pin" else "installs"
            existing = [e for e in base.edges if (e.tail, e.head) == (lock, place)]
            out.extend((e.tail, e.head, e.kind) for e in existing if e.kind == kind)
            if not existing:
                out.append((lock, place, kind))
    return out


def _worse(a: Severity | None, b: Severity) -> Severity:
    return "error" if "error" in (a, b) else b


# --- text ------------------------------------------------------------------------


def _label(edge: Edge) -> str | None:
    shown = list(edge.labels[:_LABELS_SHOWN])
    if len(edge.labels) > _LABELS_SHOWN:
        shown.append(f"+{len(edge.labels) - _LABELS_SHOWN} more")
    return ", ".join(shown) or None


_COLOR: Final = {"error": "red", "warning": "orange"}


def _mermaid_text(text: str) -> str:
    # Inside a quoted Mermaid label only `"` ends it; Mermaid spells it as an entity.
    return text.replace('"', "#quot;")


def mermaid(graph: Layout) -> str:
    """`flowchart LR`: nodes n0, n1, … with quoted labels, then the edges, then a
    `linkStyle N stroke:red` (orange for warnings) for each drifted edge."""
    ids = {n.key: f"n{i}" for i, n in enumerate(graph.nodes)}
    lines = ["flowchart LR"]
    lines.extend(f'    {ids[n.key]}["{_mermaid_text(n.label)}"]' for n in graph.nodes)
    styles: list[str] = []
    for index, edge in enumerate(graph.edges):
        arrow = "-.->" if edge.kind == "pins" else "-->"
        label = _label(edge)
        middle = f'{arrow}|"{_mermaid_text(label)}"|' if label else arrow
        lines.append(f"    {ids[edge.tail]} {middle} {ids[edge.head]}")
        if edge.severity in _COLOR:
            styles.append(f"    linkStyle {index} stroke:{_COLOR[edge.severity]}")
    lines.extend(styles)
    lines.extend(
        f"    style {ids[n.key]} stroke:{_COLOR[n.severity]}"
        for n in graph.nodes
        if n.severity in _COLOR
    )
    return "\n".join(lines) + "\n"


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def dot(graph: Layout) -> str:
    """A Graphviz `digraph`, drifted edges with `color=red` (orange) and a label."""
    ids = {n.key: f"n{i}" for i, n in enumerate(graph.nodes)}
    lines = ["digraph pinsync {", "    rankdir=LR;", "    node [shape=box];"]
    for n in graph.nodes:
        attrs = [f'label="{_dot_text(n.label)}"']
        if n.severity in _COLOR:
            attrs.append(f"color={_COLOR[n.severity]}")
        lines.append(f"    {ids[n.key]} [{', '.join(attrs)}];")
    for edge in graph.edges:
        attrs = []
        if edge.severity in _COLOR:
            attrs.append(f"color={_COLOR[edge.severity]}")
        if edge.kind == "pins":
            attrs.append("style=dashed")
        label = _label(edge)
        if label:
            attrs.append(f'label="{_dot_text(label)}"')
        tail = f"    {ids[edge.tail]} -> {ids[edge.head]}"
        lines.append(f"{tail} [{', '.join(attrs)}];" if attrs else f"{tail};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_graph(graph: Layout, fmt: GraphFormat) -> str:
    return mermaid(graph) if fmt == "mermaid" else dot(graph)


def drift_graph(repo: Repo, findings: Sequence[Finding]) -> Layout:
    """The repository's layout with `findings` laid on it: what `check --graph` draws."""
    return mark_drift(layout(repo), findings)
