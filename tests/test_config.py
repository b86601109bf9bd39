"""config, discovery and the [tool.pip-tools] options: what the repository asks for."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from pinsync.config import DEFAULT_DOCKERFILES, Config, OutputConfig, load_config, parse_config
from pinsync.discovery import list_files, matches
from pinsync.errors import ConfigError
from pinsync.targets import pip_tools_options

P = PurePosixPath
KNOWN_KEYS = (
    "align, compile-args, compile-timeout, custom-compile-command, docker-contexts, dockerfiles, "
    "exclude, include, index-credentials-env, jobs, layers-disagree, network-timeout, outputs, "
    "pin-sites, pip-wrappers, pypi-mirror, python, site-scopes, skip-sites, tools"
)


@pytest.mark.parametrize(
    ("table", "pip_tools", "expected"),
    [
        pytest.param(None, None, Config(), id="no-table"),
        pytest.param(
            None,
            {"no-index": True},
            Config(pip_tools={"no-index": True}),
            id="no-table-but-pip-tools",
        ),
        pytest.param(
            {},
            None,
            Config(outputs={}),
            id="empty-table-defaults",
        ),
        pytest.param({}, "not a table", Config(outputs={}), id="pip-tools-not-a-table-ignored"),
        pytest.param(
            {
                "include": ["requirements/*.in"],
                "exclude": ["vendor/**"],
                "python": "3.11",
                "compile-args": ["--generate-hashes", "--allow-unsafe"],
                "outputs": {},
                "dockerfiles": ["docker/*.df"],
                "pin-sites": ["README.md"],
                "layers-disagree": "error",
                "custom-compile-command": "nox -s lock",
                "jobs": 4,
            },
            {"generate-hashes": True},
            Config(
                include=("requirements/*.in",),
                exclude=("vendor/**",),
                python="3.11",
                compile_args=("--generate-hashes", "--allow-unsafe"),
                outputs={},
                dockerfiles=("docker/*.df",),
                pin_sites=("README.md",),
                layers_disagree="error",
                custom_compile_command="nox -s lock",
                jobs=4,
                pip_tools={"generate-hashes": True},
            ),
            id="every-key",
        ),
        pytest.param(
            {"compile-args": []},
            None,
            Config(compile_args=(), outputs={}),
            id="empty-compile-args-kept-distinct-from-unset",
        ),
        pytest.param(
            {"index-credentials-env": "PIP_INDEX_URL", "network-timeout": 2.5},
            None,
            Config(index_credentials_env=("PIP_INDEX_URL",), network_timeout=2.5, outputs={}),
            id="one-credentials-variable-as-a-string",
        ),
        pytest.param(
            {"align": False},
            None,
            Config(align=None, outputs={}),
            id="align-off",
        ),
        pytest.param(
            {"align": [["requirements/dev.txt", "./requirements/common.txt"]]},
            None,
            Config(align=((P("requirements/dev.txt"), P("requirements/common.txt")),), outputs={}),
            id="align-groups-normalised",
        ),
        pytest.param(
            {"python": "3.10", "layers-disagree": "off"},
            None,
            Config(python="3.10", outputs={}),
            id="python-3-10-stays-a-string",
        ),
        pytest.param(
            {
                "outputs": {
                    "requirements/all.txt": {
                        "inputs": ["requirements/base.in", "requirements/api.in"],
                        "compile-args": ["--strip-extras"],
                        "python": "3.12",
                    },
                    "docs/requirements.txt": {},
                }
            },
            None,
            Config(
                outputs={
                    P("requirements/all.txt"): OutputConfig(
                        inputs=(P("requirements/base.in"), P("requirements/api.in")),
                        compile_args=("--strip-extras",),
                        python="3.12",
                    ),
                    P("docs/requirements.txt"): OutputConfig(),
                },
            ),
            id="outputs-table",
        ),
    ],
)
def test_parse_config(table: object, pip_tools: object, expected: Config) -> None:
    assert parse_config(table, pip_tools) == expected


@pytest.mark.parametrize(
    ("table", "message"),
    [
        pytest.param(["python"], "[tool.pinsync] must be a table", id="not-a-table"),
        pytest.param(
            {"python": "3.11", "frobnicate": True},
            f"[tool.pinsync]: unknown key 'frobnicate' (known: {KNOWN_KEYS})",
            id="unknown-key",
        ),
        pytest.param(
            {"skip-sites": ["ci", "github"]},
            "[tool.pinsync] skip-sites: unknown kind 'github' (known: pyproject, setup-cfg, tox, "
            "pre-commit, ci, makefile, script, compose, uv-lock, pylock, pin-sites)",
            id="unknown-site-kind",
        ),
        pytest.param(
            {"compile_args": ["--x"]},
            f"[tool.pinsync]: unknown key 'compile_args' (known: {KNOWN_KEYS})",
            id="underscore-spelling-is-unknown",
        ),
        pytest.param(
            {"pypi-mirror": "https://ci:tok@mirror.example/simple"},
            "[tool.pinsync] pypi-mirror must carry no credentials; name the variable that "
            "holds them in index-credentials-env",
            id="mirror-with-credentials",
        ),
        pytest.param(
            {"pypi-mirror": "mirror.example/simple"},
            "[tool.pinsync] pypi-mirror must be an http(s) URL of a simple index",
            id="mirror-not-a-url",
        ),
        pytest.param(
            {"network-timeout": 0},
            "[tool.pinsync] network-timeout must be a positive number of seconds",
            id="network-timeout-zero",
        ),
        pytest.param(
            {"index-credentials-env": 3},
            "[tool.pinsync] index-credentials-env must be a list of strings",
            id="credentials-env-not-a-name",
        ),
        pytest.param(
            {"align": True},
            "[tool.pinsync] align must be false or a list of lists of lock paths, "
            'e.g. [["requirements/dev.txt", "requirements/common.txt"]]',
            id="align-true",
        ),
        pytest.param(
            {"align": ["a.txt", "b.txt"]},
            "[tool.pinsync] align must be false or a list of lists of lock paths, "
            'e.g. [["requirements/dev.txt", "requirements/common.txt"]]',
            id="align-flat-list",
        ),
        pytest.param(
            {"python": "3"},
            "[tool.pinsync] python must be a \"X.Y\" string, got '3'",
            id="python-major-only",
        ),
        pytest.param(
            {"python": 3.11},
            '[tool.pinsync] python must be a "X.Y" string, got 3.11',
            id="python-float",
        ),
        pytest.param(
            {"python": "3.11.4"},
            "[tool.pinsync] python must be a \"X.Y\" string, got '3.11.4'",
            id="python-with-micro",
        ),
        pytest.param(
            {"python": "py3.11"},
            "[tool.pinsync] python must be a \"X.Y\" string, got 'py3.11'",
            id="python-prefixed",
        ),
        pytest.param(
            {"layers-disagree": "fatal"},
            '[tool.pinsync] layers-disagree must be "off", "warning" or "error"',
            id="layers-disagree-bad-value",
        ),
        pytest.param({"jobs": 0}, "[tool.pinsync] jobs must be a positive integer", id="jobs-zero"),
        pytest.param(
            {"jobs": True}, "[tool.pinsync] jobs must be a positive integer", id="jobs-bool"
        ),
        pytest.param(
            {"jobs": "4"}, "[tool.pinsync] jobs must be a positive integer", id="jobs-string"
        ),
        pytest.param(
            {"custom-compile-command": ["nox"]},
            "[tool.pinsync] custom-compile-command must be a string",
            id="custom-command-list",
        ),
        pytest.param(
            {"include": "requirements/*.in"},
            "[tool.pinsync] include must be a list of strings",
            id="include-a-string",
        ),
        pytest.param(
            {"compile-args": ["--x", 1]},
            "[tool.pinsync] compile-args must be a list of strings",
            id="compile-args-non-string",
        ),
        pytest.param(
            {"outputs": ["a.txt"]}, "[tool.pinsync] outputs must be a table", id="outputs-a-list"
        ),
        pytest.param(
            {"outputs": {"a.txt": "a.in"}},
            "[tool.pinsync.outputs.'a.txt'] must be a table",
            id="output-not-a-table",
        ),
        pytest.param(
            {"outputs": {"a.txt": {"input": ["a.in"]}}},
            "[tool.pinsync.outputs.'a.txt']: unknown key 'input' (known: compile-args, inputs, omit, python)",
            id="output-unknown-key",
        ),
        pytest.param(
            {"outputs": {"a.txt": {"python": 3.12}}},
            "[tool.pinsync.outputs.'a.txt'] python must be a \"X.Y\" string, got 3.12",
            id="output-python-float",
        ),
        pytest.param(
            {"outputs": {"a.txt": {"inputs": "a.in"}}},
            "[tool.pinsync.outputs.'a.txt'] inputs must be a list of strings",
            id="output-inputs-a-string",
        ),
    ],
)
def test_parse_config_errors(table: object, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(table)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("pyproject", "expected"),
    [
        pytest.param(None, Config(), id="no-pyproject"),
        pytest.param('[project]\nname = "x"\n', Config(), id="no-tool-table"),
        pytest.param(
            '[tool.pinsync]\npython = "3.11"\n\n[tool.pip-tools]\ngenerate-hashes = true\n'
            '\n[tool.pinsync.outputs."requirements/all.txt"]\ninputs = ["a.in", "b.in"]\n',
            Config(
                python="3.11",
                outputs={P("requirements/all.txt"): OutputConfig(inputs=(P("a.in"), P("b.in")))},
                pip_tools={"generate-hashes": True},
            ),
            id="pinsync-and-pip-tools",
        ),
    ],
)
def test_load_config(tmp_path: Path, pyproject: str | None, expected: Config) -> None:
    if pyproject is not None:
        (tmp_path / "pyproject.toml").write_text(pyproject, encoding="utf-8")
    assert load_config(tmp_path) == expected


def test_load_config_reports_bad_toml(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.pinsync\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert str(info.value).startswith("pyproject.toml: ")


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        pytest.param(
            {
                "generate-hashes": True,
                "find-links": ["wheels"],
                "no-index": True,
                "index-url": "https://x/simple",
                "compile": {"allow-unsafe": True},
            },
            (
                "--generate-hashes",
                "--find-links=wheels",
                "--no-index",
                "--index-url=https://x/simple",
                "--allow-unsafe",
            ),
            id="brief-example",
        ),
        pytest.param(
            {
                "strip_extras": False,
                "max-rounds": 10,
                "extra-index-url": ["https://a", "https://b"],
            },
            (
                "--no-strip-extras",
                "--max-rounds=10",
                "--extra-index-url=https://a",
                "--extra-index-url=https://b",
            ),
            id="false-underscore-int-list",
        ),
        pytest.param(
            {"sync": {"ask": True}, "quiet": True}, ("--quiet",), id="sync-section-ignored"
        ),
        pytest.param({}, (), id="empty"),
        pytest.param(None, (), id="none"),
    ],
)
def test_pip_tools_options(table: dict[str, object] | None, expected: tuple[str, ...]) -> None:
    assert pip_tools_options(table) == expected


@pytest.mark.parametrize(
    ("path", "pattern", "expected"),
    [
        pytest.param("Dockerfile", "**/Dockerfile", True, id="doublestar-top-level"),
        pytest.param("docker/Dockerfile", "**/Dockerfile", True, id="doublestar-nested"),
        pytest.param("a/b/c/Dockerfile", "**/Dockerfile", True, id="doublestar-deep"),
        pytest.param("Dockerfile.dev", "**/Dockerfile", False, id="doublestar-suffix-no"),
        pytest.param("docker/MyDockerfile", "**/Dockerfile", False, id="doublestar-prefix-no"),
        pytest.param("api.Dockerfile", "*.Dockerfile", True, id="star-dot-top-level"),
        pytest.param("docker/api.Dockerfile", "*.Dockerfile", True, id="star-dot-nested"),
        pytest.param("Dockerfile", "*.Dockerfile", False, id="star-dot-needs-a-dot"),
        pytest.param("Dockerfile", "**/*Dockerfile", True, id="doublestar-star-bare"),
        pytest.param("prod.Dockerfile", "**/*Dockerfile", True, id="doublestar-star-top-level"),
        pytest.param("svc/prodDockerfile", "**/*Dockerfile", True, id="doublestar-star-nested"),
        pytest.param(
            "svc/Dockerfile.prod", "**/*Dockerfile", False, id="doublestar-star-suffix-no"
        ),
        pytest.param("Dockerfile.prod", "**/Dockerfile.*", True, id="dockerfile-dot-star-top"),
        pytest.param("dockerfile", "**/Dockerfile", False, id="case-sensitive"),
    ],
)
def test_matches(path: str, pattern: str, expected: bool) -> None:
    assert matches(P(path), [pattern]) is expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param("Dockerfile", True, id="plain"),
        pytest.param("deploy/api/Dockerfile", True, id="nested"),
        pytest.param("deploy/Dockerfile.gpu", True, id="dot-suffix"),
        pytest.param("deploy/gpu.Dockerfile", True, id="dot-prefix"),
        pytest.param("deploy/gpuDockerfile", True, id="glued-prefix"),
        pytest.param("docs/dockerfiles.md", False, id="unrelated"),
        pytest.param("requirements/dev.in", False, id="requirements"),
    ],
)
def test_matches_default_dockerfile_patterns(path: str, expected: bool) -> None:
    assert matches(P(path), DEFAULT_DOCKERFILES) is expected


def test_matches_nothing_without_patterns() -> None:
    assert matches(P("Dockerfile"), []) is False


@pytest.fixture
def tree_with_ignorable_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A plain directory (git cannot see a repository above it) with dirs pinsync skips."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    files = [
        "pyproject.toml",
        "Dockerfile",
        "requirements/dev.in",
        "requirements/dev.txt",
        "services/api/Dockerfile",
        "services/api/requirements.in",
        "build.py",  # a file named like a skipped dir is kept
        ".nox/tests/requirements.in",
        "node_modules/pkg/requirements.txt",
        "myenv/pyvenv.cfg",
        "myenv/lib/requirements.in",
        "build/lib/requirements.in",
        "x.egg-info/requires.txt",
        "services/api/.venv/requirements.txt",
        "services/api/dist/requirements.txt",
        "services/api/__pycache__/x.pyc",
    ]
    for name in files:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x\n", encoding="utf-8")
    return tmp_path


def test_list_files_walks_a_plain_directory_and_skips_tool_dirs(
    tree_with_ignorable_dirs: Path,
) -> None:
    assert list_files(tree_with_ignorable_dirs) == (
        P("Dockerfile"),
        P("build.py"),
        P("pyproject.toml"),
        P("requirements/dev.in"),
        P("requirements/dev.txt"),
        P("services/api/Dockerfile"),
        P("services/api/requirements.in"),
    )


def test_the_documented_example_is_a_valid_config_with_every_key() -> None:
    from pathlib import Path

    from pinsync import toml

    page = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
    text = page.read_text(encoding="utf-8")
    example = text.split("## Every key at once", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    table = toml.loads(example)["tool"]["pinsync"]
    parse_config(table)  # raises on any key or value the code does not accept
    assert ", ".join(sorted(table)) == KNOWN_KEYS.replace('"', "")
