"""compiler's pure helpers: hiding credentials, explaining failures, sealing the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping

import pytest

from pinsync.failures import explain_failure, redact
from pinsync.toolchain import sealed_env


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "Looking in indexes: https://alice:s3cr3t@pypi.corp.example/simple",
            "Looking in indexes: https://****@pypi.corp.example/simple",
            id="user-password",
        ),
        pytest.param(
            "fetching git+https://ghp_abc123@github.com/acme/tool.git@v1.2#egg=tool now",
            "fetching git+https://****@github.com/acme/tool.git@v1.2#egg=tool now",
            id="token-vcs-url-keeps-tag-at",
        ),
        pytest.param(
            "a https://u:p@one.example/simple and b http://tok@two.example:8080/x",
            "a https://****@one.example/simple and b http://****@two.example:8080/x",
            id="two-urls",
        ),
        pytest.param(
            "https://pypi.org/simple/mlflow/ and https://files.example/pkg@1.0.whl",
            "https://pypi.org/simple/mlflow/ and https://files.example/pkg@1.0.whl",
            id="no-credentials-untouched",
        ),
        pytest.param(
            "mail alice@example.com about it",
            "mail alice@example.com about it",
            id="email-not-a-url",
        ),
        pytest.param(
            "Looking in indexes: https://alice:p@ss@pypi.corp.example/simple",
            "Looking in indexes: https://****@pypi.corp.example/simple",
            id="password-with-unescaped-at",
        ),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


NOT_FOUND_WITH_TRACEBACK = """\
Looking in indexes: https://pypi.org/simple
ERROR: Could not find a version that satisfies the requirement mlflow==9.9.9 (from versions: 2.9.0, 3.4.0)
Traceback (most recent call last):
  File "/venv/bin/pip-compile", line 8, in <module>
    sys.exit(cli())
             ^^^^^
  File "/venv/lib/python3.12/site-packages/piptools/resolver.py", line 604, in resolve
    is_resolved = self._do_resolve(
pip._internal.exceptions.DistributionNotFound: No matching distribution found for mlflow==9.9.9
"""

NOT_FOUND_AT_ALL = """\
ERROR: Could not find a version that satisfies the requirement nosuchpkg>=1 (from versions: none)
ERROR: No matching distribution found for nosuchpkg>=1
"""

RESOLUTION_IMPOSSIBLE = """\
ERROR: Cannot install -r requirements/api.in (line 1) and mlflow==3.4.0 because these package versions have conflicting dependencies.

The conflict is caused by:
    The user requested flask<2
    mlflow 3.4.0 depends on flask>=2

To fix this you could try to:
1. loosen the range of package versions you've specified
2. remove package versions to allow pip to attempt to solve the dependency conflict

ERROR: ResolutionImpossible: for help visit https://pip.pypa.io/en/latest/topics/dependency-resolution/#dealing-with-dependency-conflicts
"""

UNAUTHORIZED = """\
Looking in indexes: https://bob:hunter2@pypi.corp.example/simple
WARNING: 401 Error, Credentials not correct for https://bob:hunter2@pypi.corp.example/simple/foo/
ERROR: HTTP error 401 while getting https://bob:hunter2@pypi.corp.example/simple/foo/
ERROR: 401 Client Error: Unauthorized for url: https://bob:hunter2@pypi.corp.example/simple/foo/
ERROR: a third error that is left out
"""

BARE_TRACEBACK = """\
Traceback (most recent call last):
  File "/venv/lib/python3.12/site-packages/piptools/scripts/compile.py", line 1, in cli
    main()
    ^^^^^^
RuntimeError: index https://tok@pypi.corp.example/simple unreachable
"""


# pip 26, building mysqlclient without its C library (Open edX's course-discovery,
# re-resolved against PyPI): the package is named only in the last line.
PIP26_BUILD_FAILURE = """\
  error: subprocess-exited-with-error

  \u00d7 Getting requirements to build wheel did not run successfully.
  \u2502 exit code: 1
  \u2570\u2500> [31 lines of output]
      Trying pkg-config --exists mysqlclient
      Command 'pkg-config --exists mysqlclient' returned non-zero exit status 1.
      Exception: Can not find valid pkg-config name.
      Specify MYSQLCLIENT_CFLAGS and MYSQLCLIENT_LDFLAGS env vars manually
      [end of output]

  note: This error originates from a subprocess, and is likely not a problem with pip.
pip._internal.exceptions.FailedToPrepareCandidate: Failed to build 'mysqlclient' when getting requirements to build wheel
"""


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        pytest.param(
            NOT_FOUND_WITH_TRACEBACK,
            "mlflow==9.9.9 is not on the index (newest: 3.4.0)",
            id="not-found-newest-listed",
        ),
        pytest.param(
            NOT_FOUND_AT_ALL,
            "nosuchpkg>=1 is not on the index (no version of it is available)",
            id="not-found-from-versions-none",
        ),
        pytest.param(
            RESOLUTION_IMPOSSIBLE,
            "conflicting requirements: The user requested flask<2; mlflow 3.4.0 depends on flask>=2",
            id="resolution-impossible",
        ),
        pytest.param(
            UNAUTHORIZED,
            "HTTP error 401 while getting https://****@pypi.corp.example/simple/foo/"
            " / 401 Client Error: Unauthorized for url: https://****@pypi.corp.example/simple/foo/",
            id="first-two-errors-redacted",
        ),
        pytest.param(
            "ERROR: Could not find a version that satisfies the requirement "
            "acme-tool==2.0 (from versions: 1.0)\n  (index https://deploy:tok@pkgs.example/simple)\n",
            "acme-tool==2.0 is not on the index (newest: 1.0)",
            id="not-found-ignores-later-lines",
        ),
        pytest.param(
            "Error: Invalid value for '--output-file': 'a.txt' is a directory\n",
            "Invalid value for '--output-file': 'a.txt' is a directory",
            id="click-usage-error",
        ),
        pytest.param(
            BARE_TRACEBACK,
            "RuntimeError: index https://****@pypi.corp.example/simple unreachable",
            id="traceback-last-line-redacted",
        ),
        pytest.param(
            PIP26_BUILD_FAILURE,
            "mysqlclient failed to build (getting requirements to build wheel): "
            "Exception: Can not find valid pkg-config name.",
            id="pip-26-names-the-package-last",
        ),
        pytest.param("", "pip-compile failed without saying why", id="empty"),
        pytest.param("\n   \n", "pip-compile failed without saying why", id="blank"),
    ],
)
def test_explain_failure(output: str, expected: str) -> None:
    assert explain_failure(output) == expected


def test_explain_failure_resolution_impossible_keeps_both_causes() -> None:
    message = explain_failure(RESOLUTION_IMPOSSIBLE)
    assert message.startswith("conflicting requirements:")
    assert "The user requested flask<2" in message
    assert "mlflow 3.4.0 depends on flask>=2" in message
    assert "loosen" not in message


SEALED_EXTRAS = {
    "PIP_CONFIG_FILE": os.devnull,
    "PIP_NO_INPUT": "1",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    # Bounded requests to an index, for pip and uv alike.
    "PIP_TIMEOUT": "15",
    "UV_HTTP_TIMEOUT": "15",
    "PIP_RETRIES": "2",
    "UV_HTTP_RETRIES": "2",
}


@pytest.mark.parametrize(
    ("base", "custom_command", "expected"),
    [
        pytest.param(
            {
                "PATH": "/usr/bin:/bin",
                "HOME": "/home/u",
                "PIP_INDEX_URL": "https://u:p@corp.example/simple",
                "PIP_EXTRA_INDEX_URL": "https://mirror.example/simple",
                "PIP_CONFIG_FILE": "/home/u/.pip/pip.conf",
                "PIP_NO_INPUT": "0",
                "PIP_TOOLS_CACHE_DIR": "/tmp/c",
                "CUSTOM_COMPILE_COMMAND": "make upgrade",
            },
            None,
            {"PATH": "/usr/bin:/bin", "HOME": "/home/u", **SEALED_EXTRAS},
            id="drops-pip-and-custom-command",
        ),
        pytest.param(
            {"PATH": "/usr/bin", "CUSTOM_COMPILE_COMMAND": "make upgrade"},
            "nox -s lock",
            {"PATH": "/usr/bin", **SEALED_EXTRAS, "CUSTOM_COMPILE_COMMAND": "nox -s lock"},
            id="sets-given-custom-command",
        ),
        pytest.param(
            {"PATH": "/usr/bin", "CUSTOM_COMPILE_COMMAND": "make upgrade"},
            "",
            {"PATH": "/usr/bin", **SEALED_EXTRAS},
            id="empty-custom-command-not-set",
        ),
        pytest.param(
            {"PATH": "/usr/bin", "PIPX_HOME": "/opt/pipx", "MY_PIP_THING": "kept"},
            None,
            {"PATH": "/usr/bin", "PIPX_HOME": "/opt/pipx", "MY_PIP_THING": "kept", **SEALED_EXTRAS},
            id="only-the-pip-underscore-prefix-is-dropped",
        ),
        pytest.param({}, None, SEALED_EXTRAS, id="empty-base"),
    ],
)
def test_sealed_env(
    base: Mapping[str, str], custom_command: str | None, expected: dict[str, str]
) -> None:
    before = dict(base)
    assert sealed_env(base, custom_command) == expected
    assert dict(base) == before
