"""graph: which outputs read which, the compile order, and what a change reaches."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import PurePosixPath

import pytest

from pinsync.errors import GraphError
from pinsync.graph import Graph, Target, build_graph, include_closure
from pinsync.reqfile import ReqFile, parse_requirements
from pinsync.targets import constraint_files

P = PurePosixPath


def _parse(texts: Mapping[str, str]) -> dict[PurePosixPath, ReqFile]:
    return {P(path): parse_requirements(P(path), text) for path, text in texts.items()}


def _target(output: str, *inputs: str) -> Target:
    return Target(P(output), tuple(P(i) for i in inputs), (), "3.11")


# base.in <- dev.in (-r base.in) <- ci.in (-r dev.txt, -c constraints.txt)
LAYERED_SOURCES = {
    "base.in": "requests\n",
    "dev.in": "-r base.in\npytest\n",
    "ci.in": "-r dev.txt\n-c constraints.txt\ncoverage\n",
    "constraints.txt": "urllib3<3\n",
}
BASE = _target("base.txt", "base.in")
DEV = _target("dev.txt", "dev.in")
CI = _target("ci.txt", "ci.in")


@pytest.fixture
def layered_files() -> dict[PurePosixPath, ReqFile]:
    """The three layers' sources, with dev.txt not compiled yet."""
    return _parse(LAYERED_SOURCES)


@pytest.fixture
def layered_graph(layered_files: dict[PurePosixPath, ReqFile]) -> Graph:
    return build_graph([CI, BASE, DEV], layered_files, layered_files)


@pytest.mark.parametrize(
    ("targets", "compiled"),
    [
        pytest.param((BASE, DEV, CI), False, id="given-in-order"),
        pytest.param((CI, DEV, BASE), False, id="given-reversed"),
        pytest.param((DEV, CI, BASE), False, id="given-shuffled"),
        pytest.param((CI, BASE, DEV), True, id="dev-txt-already-compiled"),
    ],
)
def test_layers_compile_base_then_dev_then_ci(targets: tuple[Target, ...], compiled: bool) -> None:
    texts = dict(LAYERED_SOURCES)
    if compiled:
        texts["dev.txt"] = "pytest==8.0.0\nrequests==2.31.0\n"
    files = _parse(texts)
    graph = build_graph(targets, files, files)
    assert [t.output for t in graph.order()] == [P("base.txt"), P("dev.txt"), P("ci.txt")]
    assert graph.order() == (BASE, DEV, CI)
    assert dict(graph.closure) == {
        P("base.txt"): (P("base.in"),),
        P("dev.txt"): (P("base.in"), P("dev.in")),
        P("ci.txt"): (P("ci.in"), P("constraints.txt"), P("dev.txt")),
    }
    assert dict(graph.needs) == {
        P("base.txt"): frozenset(),
        P("dev.txt"): frozenset({P("base.txt")}),
        P("ci.txt"): frozenset({P("dev.txt")}),
    }


@pytest.mark.parametrize(
    ("changed", "expected"),
    [
        pytest.param(["base.txt"], {"base.txt", "dev.txt", "ci.txt"}, id="base-reaches-all"),
        pytest.param(["dev.txt"], {"dev.txt", "ci.txt"}, id="dev-reaches-ci"),
        pytest.param(["ci.txt"], {"ci.txt"}, id="ci-reaches-itself"),
        pytest.param(["ci.txt", "dev.txt"], {"dev.txt", "ci.txt"}, id="several"),
        pytest.param([], set(), id="nothing"),
    ],
)
def test_dependents(layered_graph: Graph, changed: list[str], expected: set[str]) -> None:
    assert layered_graph.dependents(P(c) for c in changed) == frozenset(P(e) for e in expected)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param("dev.txt", DEV, id="an-output"),
        pytest.param("ci.in", CI, id="an-input"),
        pytest.param("constraints.txt", None, id="only-included"),
        pytest.param("other.in", None, id="unknown"),
    ],
)
def test_target_for(layered_graph: Graph, path: str, expected: Target | None) -> None:
    assert layered_graph.target_for(P(path)) == expected


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        pytest.param(["base.in"], ["base.in"], id="leaf"),
        pytest.param(["dev.in"], ["base.in", "dev.in"], id="one-include"),
        pytest.param(["ci.in"], ["ci.in", "constraints.txt", "dev.txt"], id="unparsed-output-kept"),
        pytest.param(
            ["ci.in", "dev.in"],
            ["base.in", "ci.in", "constraints.txt", "dev.in", "dev.txt"],
            id="two-starts",
        ),
        pytest.param(["missing.in"], ["missing.in"], id="unknown-start-kept"),
    ],
)
def test_include_closure(
    layered_files: dict[PurePosixPath, ReqFile], start: list[str], expected: list[str]
) -> None:
    assert include_closure([P(s) for s in start], layered_files) == tuple(P(e) for e in expected)


def test_include_closure_follows_parent_dirs() -> None:
    files = _parse(
        {
            "requirements/api.in": "-r ../shared/base.in\n-c ../constraints.txt\n",
            "shared/base.in": "-r common/core.in\n",
            "shared/common/core.in": "requests\n",
        }
    )
    assert include_closure([P("requirements/api.in")], files) == (
        P("constraints.txt"),
        P("requirements/api.in"),
        P("shared/base.in"),
        P("shared/common/core.in"),
    )


@pytest.mark.parametrize(
    ("texts", "targets", "existing", "message"),
    [
        pytest.param(
            {"a.in": "-r b.in\n", "b.in": "x\n-r a.in\n"},
            [_target("a.txt", "a.in")],
            None,
            "include cycle: a.in -> b.in -> a.in",
            id="include-cycle-two-files",
        ),
        pytest.param(
            {"a.in": "x\n-r a.in\n"},
            [_target("a.txt", "a.in")],
            None,
            "include cycle: a.in -> a.in",
            id="include-cycle-self",
        ),
        pytest.param(
            {
                "requirements/api.in": "-r ../shared/base.in\n",
                "shared/base.in": "-r core.in\n",
                "shared/core.in": "-c ../requirements/api.in\n",
            },
            [_target("requirements/api.txt", "requirements/api.in")],
            None,
            "include cycle: requirements/api.in -> shared/base.in -> shared/core.in -> requirements/api.in",
            id="include-cycle-across-dirs-through-constraint",
        ),
        pytest.param(
            {
                "base.in": "requests\n",
                "dev.in": "-r base.in\npytest\n",
                "ci.in": "-r dev.txt\n-c constraints.txt\n",
            },
            [BASE, DEV, CI],
            None,
            "ci.in:2: -c constraints.txt: constraints.txt does not exist",
            id="missing-constraint",
        ),
        pytest.param(
            {"requirements/dev.in": "# dev\n\n-r ../base.in\n"},
            [_target("requirements/dev.txt", "requirements/dev.in")],
            None,
            "requirements/dev.in:3: -r ../base.in: base.in does not exist",
            id="missing-include-relative",
        ),
        pytest.param(
            {"a.in": "x\n"},
            [_target("a.txt", "a.in", "b.in")],
            None,
            "a.txt: input b.in does not exist",
            id="missing-input",
        ),
        pytest.param(
            {"app.in": "flask\n"},
            [replace(_target("app.txt", "app.in"), constraints=(P("pins.txt"),))],
            None,
            "app.txt: its --constraint pins.txt does not exist",
            id="missing-constraint-option-file",
        ),
        pytest.param(
            {"a.in": "-r b.txt\n", "b.in": "-r a.txt\n"},
            [_target("a.txt", "a.in"), _target("b.txt", "b.in")],
            None,
            "outputs depend on each other in a cycle: a.txt -> b.txt -> a.txt",
            id="output-cycle",
        ),
        pytest.param(
            {"a.in": "-r b.txt\n", "b.in": "-r a.txt\n"},
            [_target("b.txt", "b.in"), _target("a.txt", "a.in")],
            None,
            "outputs depend on each other in a cycle: a.txt -> b.txt -> a.txt",
            id="output-cycle-other-order",
        ),
    ],
)
def test_build_graph_errors(
    texts: Mapping[str, str], targets: list[Target], existing: list[str] | None, message: str
) -> None:
    files = _parse(texts)
    on_disk = files if existing is None else {P(e) for e in existing}
    with pytest.raises(GraphError) as info:
        build_graph(targets, files, on_disk)
    assert str(info.value) == message


def test_an_input_on_disk_but_not_parsed_is_fine() -> None:
    graph = build_graph([_target("all.txt", "pyproject.toml")], {}, [P("pyproject.toml")])
    assert graph.order() == (_target("all.txt", "pyproject.toml"),)
    assert dict(graph.closure) == {P("all.txt"): (P("pyproject.toml"),)}
    assert dict(graph.needs) == {P("all.txt"): frozenset()}


def test_two_outputs_sharing_an_input_are_not_ordered_by_it() -> None:
    files = _parse({"base.in": "requests\n", "api.in": "-r base.in\nflask\n"})
    both = Target(P("all.txt"), (P("base.in"), P("api.in")), (), "3.11")
    graph = build_graph([both, BASE], files, files)
    assert dict(graph.needs) == {P("all.txt"): frozenset(), P("base.txt"): frozenset()}
    assert graph.order() == (both, BASE)


ALL = Target(P("all.txt"), (P("base.in"), P("api.in")), (), "3.11")
DEV_ON_BASE_IN = _target("dev.txt", "dev.in")


@pytest.fixture
def shared_input_files() -> dict[PurePosixPath, ReqFile]:
    """base.in is an input of both all.txt and base.txt, and dev.in includes it."""
    return _parse(
        {"base.in": "requests\n", "api.in": "-r base.in\nflask\n", "dev.in": "-r base.in\n"}
    )


@pytest.mark.parametrize(
    "targets",
    [
        pytest.param((ALL, BASE, DEV_ON_BASE_IN), id="all-txt-first"),
        pytest.param((BASE, ALL, DEV_ON_BASE_IN), id="base-txt-first"),
    ],
)
def test_a_shared_input_orders_its_includers_the_same_whatever_the_target_order(
    shared_input_files: dict[PurePosixPath, ReqFile], targets: tuple[Target, ...]
) -> None:
    graph = build_graph(targets, shared_input_files, shared_input_files)
    assert dict(graph.needs) == {
        P("all.txt"): frozenset(),
        P("base.txt"): frozenset(),
        # base.in is an input of both, so dev.txt is compiled needs both.
        P("dev.txt"): frozenset({P("all.txt"), P("base.txt")}),
    }
    assert graph.dependents([P("base.txt")]) == frozenset({P("base.txt"), P("dev.txt")})


def test_a_constraint_option_orders_its_compile_after_the_lock_it_names() -> None:
    files = _parse({"base.in": "requests\n", "app.in": "flask\n"})
    app = replace(_target("app.txt", "app.in"), constraints=(P("base.txt"),))
    graph = build_graph([app, BASE], files, files)
    assert dict(graph.needs) == {P("app.txt"): frozenset({P("base.txt")}), P("base.txt"): frozenset()}
    assert graph.order() == (BASE, app)
    assert graph.closure[P("app.txt")] == (P("app.in"), P("base.txt"))


@pytest.mark.parametrize(
    ("run_dir", "args", "table", "expected"),
    [
        pytest.param(".", ("--constraint=base.txt",), None, ("base.txt",), id="long-equals"),
        pytest.param(".", ("--constraint", "base.txt"), None, ("base.txt",), id="long-space"),
        pytest.param(".", ("-c", "base.txt"), None, ("base.txt",), id="short-space"),
        pytest.param(".", ("-cbase.txt",), None, ("base.txt",), id="short-glued"),
        pytest.param("svc", ("-c", "../base.txt"), None, ("base.txt",), id="from-the-run-dir"),
        pytest.param(".", (), {"constraint": ["base.txt", "pins.txt"]}, ("base.txt", "pins.txt"), id="table-list"),
        pytest.param(".", (), {"constraint": "base.txt"}, ("base.txt",), id="table-string"),
        pytest.param(
            ".", (), {"compile": {"constraint": ["base.txt"]}}, ("base.txt",), id="table-compile-section"
        ),
        pytest.param(".", (), {"sync": {"constraint": ["base.txt"]}}, (), id="table-sync-section"),
        pytest.param(".", ("-c", "base.txt"), {"constraint": ["base.txt"]}, ("base.txt",), id="named-twice"),
        pytest.param(".", ("-c", "app.txt"), None, (), id="its-own-output"),
        pytest.param(".", ("-c", "../outside.txt", "-c", "/etc/c.txt"), None, (), id="out-of-the-root"),
        pytest.param(".", ("-c", "https://example.org/c.txt"), None, (), id="a-url"),
        pytest.param(".", ("--generate-hashes", "--cache-dir=c"), None, (), id="other-options"),
    ],
)
def test_constraint_files_are_what_pip_compile_opens(
    run_dir: str, args: tuple[str, ...], table: dict[str, object] | None, expected: tuple[str, ...]
) -> None:
    found = constraint_files(P("app.txt"), P(run_dir), args, table)
    assert found == tuple(P(e) for e in expected)
