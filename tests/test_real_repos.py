"""Repositories as they are: shapes met in public repositories, built here, never copied.

Each repository is first compiled the way its team compiles it (plain pip-compile
with their own header command, uv, from a subdirectory, with a `sed` afterwards),
then pinsync has to check it without a false alarm and lock it without changing a
byte it need not change.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from conftest import PIP_TOOLS_TABLE, Repo
from pinsync.compiler import find_python
from pinsync.errors import InterpreterNotFound
from pinsync.toolchain import CURRENT, find_uv, sealed_env

MakeRepo = Callable[[Mapping[str, str]], Repo]


def check(repo: Repo, *args: str) -> tuple[int, dict[str, Any]]:
    before = repo.snapshot()
    proc = repo.pinsync("check", "--format", "json", *args, check=False)
    assert repo.snapshot() == before, "check changed the repository"
    return proc.returncode, json.loads(proc.stdout)


def kinds(report: dict[str, Any], severity: str | None = None) -> list[tuple[str, str | None, str]]:
    return sorted(
        (
            (f["file"], f["package"], f["kind"])
            for f in report["findings"]
            if severity is None or f["severity"] == severity
        ),
        key=lambda row: (row[0], row[1] or "", row[2]),
    )


def lock_changes_nothing(repo: Repo, *args: str) -> str:
    before = repo.snapshot()
    proc = repo.pinsync("lock", *args)
    after = repo.snapshot()
    changed = sorted(k for k in after if before.get(k) != after.get(k))
    assert changed == [], f"lock rewrote {changed}:\n{proc.stdout}"
    return proc.stdout


def compile_custom(repo: Repo, command: str, *args: str) -> None:
    repo.pip_compile(*args, custom=command)


def uv_compile(repo: Repo, *args: str, custom: str | None = None) -> None:
    subprocess.run(
        [find_uv(), "pip", "compile", "--quiet", *args],
        cwd=repo.path,
        env={**sealed_env(os.environ, custom, "uv"), "UV_PYTHON": sys.executable},
        check=True,
        capture_output=True,
    )


# --- headers: every shape locks to the same bytes -------------------------------


def test_custom_header_lock_is_checked_and_locked_byte_for_byte(make_repo: MakeRepo) -> None:
    repo = make_repo(
        {"requirements/base.in": "flask\n", "requirements/test.in": "-r base.in\npytest\n"}
    )
    for name in ("base", "test"):
        compile_custom(
            repo, "make upgrade", "-o", f"requirements/{name}.txt", f"requirements/{name}.in"
        )
    assert "#    make upgrade\n" in repo.read("requirements/base.txt")
    code, report = check(repo, "--offline")
    assert code == 0, report
    assert ("requirements/base.txt", None, "inferred-options") in kinds(report, "info")
    assert kinds(report, "error") == kinds(report, "warning") == []
    out = lock_changes_nothing(repo)
    # Its options are a guess, and it meets its sources: left as its team wrote it.
    assert "kept as written: its header shows only a custom command" in out
    # A full check does not re-resolve on a guess, and says which key would let it.
    code, report = check(repo)
    assert code == 0
    messages = [f["message"] for f in report["findings"] if f["kind"] == "unverified"]
    assert messages and all("set compile-args in" in m for m in messages)


def test_custom_header_with_hashes_infers_generate_hashes(make_repo: MakeRepo) -> None:
    repo = make_repo({"requirements.in": "requests\n"})
    compile_custom(
        repo, "./bin/update", "--generate-hashes", "-o", "requirements.txt", "requirements.in"
    )
    lock_changes_nothing(repo)
    code, report = check(repo, "--offline")
    info = [f["message"] for f in report["findings"] if f["kind"] == "inferred-options"]
    assert code == 0 and len(info) == 1 and "--generate-hashes" in info[0]
    # Drift is still found in a lock whose options were inferred.
    repo.write({"requirements.in": "requests\nmlflow==3.4.0\n"})
    code, report = check(repo, "--offline")
    assert code == 1
    assert ("requirements.txt", "mlflow", "stale-lock") in kinds(report, "error")


@pytest.fixture
def lock_dir_repo(make_repo: MakeRepo) -> Repo:
    """A service compiled from its own directory, as securedrop's admin/ Makefile does."""
    repo = make_repo(
        {
            "admin/pyproject.toml": '[tool.pip-tools]\nno-index = true\nfind-links = ["../wheels"]\n',
            "admin/requirements.in": "flask\n",
            "admin/requirements-ansible.in": "requests\n",
            "admin/requirements-dev.in": "-r requirements.in\npytest\n",
        }
    )
    admin = repo.path / "admin"
    repo.pip_compile(
        "--allow-unsafe",
        "--output-file=requirements.txt",
        "requirements.in",
        "requirements-ansible.in",
        cwd=admin,
    )
    repo.pip_compile("--output-file=requirements-dev.txt", "requirements-dev.in", cwd=admin)
    return repo


def test_header_run_from_the_lock_directory_is_replayed_there(lock_dir_repo: Repo) -> None:
    text = lock_dir_repo.read("admin/requirements-dev.txt")
    assert "# via -r requirements.in" in text  # relative to admin/, not the root
    out = lock_dir_repo.pinsync("lock", "--force").stdout
    after = lock_dir_repo.read("admin/requirements-dev.txt")
    stamp = "# pinsync-stamp: "
    assert [ln for ln in after.splitlines() if not ln.startswith(stamp)] == text.splitlines(), out
    code, report = check(lock_dir_repo)
    assert code == 0 and kinds(report, "error") == [], report


def test_header_run_from_the_lock_directory_changes_no_byte(lock_dir_repo: Repo) -> None:
    lock_changes_nothing(lock_dir_repo)


@pytest.mark.parametrize(
    ("output_arg", "sources"),
    [
        pytest.param(None, ("requirements.in",), id="no-output-file"),
        pytest.param("./requirements.txt", ("./requirements.in",), id="dot-slash-prefixes"),
        pytest.param("requirements.txt", ("requirements.in", "extra.in"), id="two-sources"),
    ],
)
def test_header_spelling_is_kept(
    make_repo: MakeRepo, output_arg: str | None, sources: tuple[str, ...]
) -> None:
    repo = make_repo({"requirements.in": "flask\n", **dict.fromkeys(sources[1:], "requests\n")})
    args = ([f"--output-file={output_arg}"] if output_arg else []) + list(sources)
    repo.pip_compile(*args)
    header = repo.read("requirements.txt").splitlines()[4]
    assert header.endswith(" ".join(sorted(sources)))  # pip-compile sorts them
    assert ("--output-file" in header) is (output_arg is not None)
    lock_changes_nothing(repo)
    repo.pinsync("lock", "--force")
    assert repo.read("requirements.txt").splitlines()[4] == header


def test_compile_args_empty_means_no_options(make_repo: MakeRepo) -> None:
    repo = make_repo(
        {
            "pyproject.toml": '[tool.pip-tools]\nno-index = true\nfind-links = ["wheels"]\n'
            '[tool.pinsync]\ncompile-args = ["--generate-hashes"]\n'
            '[tool.pinsync.outputs."plain.txt"]\ncompile-args = []\n',
            "plain.in": "flask\n",
            "hashed.in": "flask\n",
        }
    )
    repo.pinsync("lock")
    assert "--hash=sha256:" in repo.read("hashed.txt")
    assert "--hash=" not in repo.read("plain.txt")


# --- uv -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "custom",
    [
        pytest.param(None, id="uv-command"),
        pytest.param("./bin/update-requirements", id="uv-custom"),
    ],
)
def test_uv_lock_is_checked_and_locked_with_uv(
    make_repo: MakeRepo, all_wheels: Path, custom: str | None
) -> None:
    repo = make_repo(
        {
            "requirements.in": "mlflow==2.9.0\n",
            "dev.in": "-r requirements.in\npytest\n",
            # Where the header cannot say it (a custom command), uv's own config does.
            "uv.toml": '[pip]\nno-index = true\nfind-links = ["wheels"]\n',
        }
    )
    for name in ("requirements", "dev"):
        uv_compile(
            repo,
            "--no-index",
            "--find-links",
            "wheels",
            "--generate-hashes",
            f"{name}.in",
            "-o",
            f"{name}.txt",
            custom=custom,
        )
    header = repo.read("dev.txt").splitlines()[1]
    assert "autogenerated by uv" in repo.read("dev.txt")
    code, report = check(repo, "--offline")
    assert code == 0 and kinds(report, "error") == [], report
    lock_changes_nothing(repo)
    # A bump of the source is found offline and locked with uv, header kept.
    repo.use_wheels(all_wheels)
    repo.write({"requirements.in": "mlflow==3.4.0\n"})
    code, report = check(repo, "--offline")
    assert ("dev.txt", "mlflow", "stale-lock") in kinds(report, "error")
    repo.pinsync("lock")
    text = repo.read("dev.txt")
    assert "mlflow==3.4.0" in text and "autogenerated by uv" in text
    assert (
        text.splitlines()[1]
        == header
        == f"#    {custom or 'uv pip compile --no-index --generate-hashes dev.in -o dev.txt'}"
    )
    code, report = check(repo, "--offline")
    assert code == 0, report


# --- intentional differences ------------------------------------------------------

OMIT_SOURCES = {
    "requirements/base.in": "mlflow==2.9.0\n",
    "requirements/test.in": "-r base.txt\npytest\n",
}


def _sed_out_mlflow(repo: Repo) -> None:
    """What Open edX's `sed '/^[dD]jango==/d' requirements/test.txt` does, for mlflow."""
    text = repo.read("requirements/test.txt")
    repo.write(
        {
            "requirements/test.txt": "".join(
                ln for ln in text.splitlines(keepends=True) if not ln.startswith("mlflow==")
            )
        }
    )


# ecommerce: test.in reads base.txt and e2e.txt, and both require the deleted pin.
TWO_REQUIRING = {
    "requirements/base.in": "mlflow==2.9.0\n",
    "requirements/e2e.in": "mlflow==2.9.0\n",
    "requirements/test.in": "-r base.txt\n-r e2e.txt\npytest\n",
}


@pytest.mark.parametrize(
    "sources", [OMIT_SOURCES, TWO_REQUIRING], ids=["one-source", "two-sources"]
)
def test_post_processed_lock_warns_without_omit(
    make_repo: MakeRepo, sources: dict[str, str]
) -> None:
    repo = make_repo(sources)
    for path in sources:
        name = PurePosixPath(path).stem
        if name != "test":
            compile_custom(
                repo, "make upgrade", "-o", f"requirements/{name}.txt", f"requirements/{name}.in"
            )
    compile_custom(repo, "make upgrade", "-o", "requirements/test.txt", "requirements/test.in")
    _sed_out_mlflow(repo)
    code, report = check(repo, "--offline")
    assert code == 0
    warnings = [f for f in report["findings"] if f["severity"] == "warning"]
    assert [(f["package"], f["kind"]) for f in warnings] == [("mlflow", "omitted-pin")]
    assert 'omit = ["mlflow"]' in warnings[0]["message"]


def test_omit_is_written_checked_and_kept(make_repo: MakeRepo) -> None:
    repo = make_repo(OMIT_SOURCES)
    for name in ("base", "test"):
        compile_custom(
            repo, "make upgrade", "-o", f"requirements/{name}.txt", f"requirements/{name}.in"
        )
    _sed_out_mlflow(repo)
    table = repo.read("pyproject.toml")
    repo.write(
        {
            "pyproject.toml": table
            + '[tool.pinsync.outputs."requirements/test.txt"]\nomit = ["MLflow"]\n'
        }
    )
    code, report = check(repo, "--offline")
    assert code == 0 and kinds(report, "warning") == [], report
    lock_changes_nothing(repo)  # the sed'ed lock is exactly what lock writes
    repo.pinsync("lock", "--force")
    assert "\nmlflow==" not in repo.read("requirements/test.txt")
    assert "mlflow==2.9.0" in repo.read("requirements/base.txt")
    # A lock that pins an omitted package again is drift.
    repo.write({"requirements/test.txt": repo.read("requirements/test.txt") + "mlflow==2.9.0\n"})
    code, report = check(repo, "--offline")
    assert code == 1
    assert ("requirements/test.txt", "mlflow", "stale-lock") in kinds(report, "error")


SAMPLES = {
    "requirements.in": "flask\n",
    "examples/demo/requirements.in": "mlflow\n",
}


def test_sample_in_files_are_not_errors(make_repo: MakeRepo) -> None:
    repo = make_repo(SAMPLES)
    repo.pip_compile("--output-file=requirements.txt", "requirements.in")
    code, report = check(repo, "--offline")
    assert code == 0, report
    assert ("examples/demo/requirements.in", None, "not-managed") in kinds(report, "info")
    lock_changes_nothing(repo)
    assert not (repo.path / "examples/demo/requirements.txt").exists()


# --- Dockerfiles -------------------------------------------------------------------

CO_INSTALL = {
    "dev.in": "urllib3==2.0.3\n",
    "common.in": "urllib3==1.26.18\n",
    # Pins that cannot agree: only a team that turned alignment off can lock them.
    "pyproject.toml": PIP_TOOLS_TABLE + "[tool.pinsync]\nalign = false\n",
}


@pytest.mark.parametrize(
    ("run_lines", "kind", "severity"),
    [
        pytest.param(
            # dev.in asks for urllib3==2.0.3 and the image ends with 1.26.18: a
            # requirement the team wrote is not met where it is installed (treeherder).
            "RUN pip install --no-deps -r dev.txt\nRUN pip install --no-deps -r common.txt\n",
            "override",
            "error",
            id="later-no-deps-install-breaks-a-source",
        ),
        pytest.param(
            "RUN pip install -r dev.txt -r common.txt\n",
            "co-installed-conflict",
            "error",
            id="one-command",
        ),
        pytest.param(
            "RUN pip install -r dev.txt\nRUN pip install -r common.txt\n",
            "co-installed-conflict",
            "error",
            id="later-install-with-deps",
        ),
    ],
)
def test_co_installed_locks(make_repo: MakeRepo, run_lines: str, kind: str, severity: str) -> None:
    repo = make_repo({**CO_INSTALL, "Dockerfile": "FROM python:3.11\nCOPY . .\n" + run_lines})
    repo.pinsync("lock")
    code, report = check(repo, "--offline")
    found = [
        (f["package"], f["kind"], f["severity"])
        for f in report["findings"]
        if f["file"] == "Dockerfile"
    ]
    assert found == [("urllib3", kind, severity)]
    assert code == (1 if severity == "error" else 0)


def test_an_override_that_breaks_no_source_is_a_warning(make_repo: MakeRepo) -> None:
    """Transitive pins on both sides: the later --no-deps install is the stated intent."""
    repo = make_repo(
        {
            **CO_INSTALL,
            "dev.in": "requests\n",  # urllib3 2.0.3, for requests alone
            "common.in": "requests\nurllib3<2\n",  # 1.26.18, which common.in asks for
            "Dockerfile": "FROM python:3.11\nCOPY . .\nRUN pip install -r dev.txt\n"
            "RUN pip install --no-deps -r common.txt\n",
        }
    )
    repo.pinsync("lock")
    code, report = check(repo, "--offline")
    found = [(f["package"], f["kind"], f["severity"]) for f in report["findings"]]
    assert (code, found) == (0, [("urllib3", "override", "warning")])


MONOREPO = {
    "svc-a/requirements.in": "flask\nmlflow==2.9.0\n",
    "svc-b/requirements.in": "requests\nmlflow==3.4.0\n",
    # Each image copies its own directory's lock under the same name.
    "svc-a/Dockerfile": "FROM python:3.11\nCOPY requirements.txt requirements.txt\n"
    "RUN pip install -r requirements.txt\nRUN pip install mlflow==2.9.0\n",
    "svc-b/Dockerfile": "FROM python:3.11\nWORKDIR /srv\nCOPY requirements.txt ./\n"
    "RUN pip install -r requirements.txt && pip install mlflow==3.4.0\n",
    # No install of its own: compared with the locks of its context only.
    "svc-b/tools.Dockerfile": "FROM python:3.11\nRUN pip install mlflow==3.4.0\n",
}


def test_monorepo_images_compare_with_their_own_context(
    make_repo: MakeRepo, all_wheels: Path
) -> None:
    repo = make_repo(MONOREPO)
    repo.use_wheels(all_wheels)
    repo.pinsync("lock")
    code, report = check(repo, "--offline")
    assert code == 0 and kinds(report, "error") == [], report
    # Drift inside one image is still found, against that image's own lock.
    repo.write({"svc-a/Dockerfile": MONOREPO["svc-a/Dockerfile"].replace("2.9.0", "3.4.0")})
    code, report = check(repo, "--offline")
    errors = [
        (f["file"], f["line"], f["package"]) for f in report["findings"] if f["severity"] == "error"
    ]
    assert code == 1 and errors == [("svc-a/Dockerfile", 4, "mlflow")]
    assert "svc-a/requirements.txt pins 2.9.0" in report["findings"][0]["message"] or any(
        "svc-a/requirements.txt pins 2.9.0" in f["message"] for f in report["findings"]
    )


def test_compose_file_sets_the_build_context(make_repo: MakeRepo, all_wheels: Path) -> None:
    repo = make_repo(
        {
            "api/requirements.in": "mlflow==2.9.0\n",
            "worker/requirements.in": "mlflow==3.4.0\n",
            # Built from the root with -f: the path in the image is api/requirements.txt.
            "docker/api.Dockerfile": "FROM python:3.11\nCOPY api/requirements.txt /tmp/r.txt\n"
            "RUN pip install -r /tmp/r.txt\nRUN pip install mlflow==3.4.0\n",
            "docker-compose.yml": "services:\n  api:\n    build:\n      context: .\n"
            "      dockerfile: docker/api.Dockerfile\n  worker:\n    build: ./worker\n",
        }
    )
    repo.use_wheels(all_wheels)
    repo.pinsync("lock")
    code, report = check(repo, "--offline")
    assert code == 1
    errors = [
        (f["file"], f["package"], f["kind"]) for f in report["findings"] if f["severity"] == "error"
    ]
    assert errors == [("docker/api.Dockerfile", "mlflow", "dockerfile-pin")]
    assert "api/requirements.txt pins 2.9.0" in next(
        f["message"] for f in report["findings"] if f["severity"] == "error"
    )


# --- interpreters ------------------------------------------------------------------


def _other_python() -> str | None:
    for version in ("3.12", "3.13", "3.10"):
        if version == CURRENT:
            continue
        try:
            find_python(version)
        except InterpreterNotFound:
            continue
        return version
    return None


def test_lock_for_another_python_is_replayed_under_it(make_repo: MakeRepo) -> None:
    version = _other_python()
    if version is None:
        pytest.skip("no other CPython with pip-tools is installed here")
    repo = make_repo({"requirements.in": "flask\n"})
    subprocess.run(
        [
            find_python(version),
            "-m",
            "piptools",
            "compile",
            "--quiet",
            "-o",
            "requirements.txt",
            "requirements.in",
        ],
        cwd=repo.path,
        env=sealed_env(os.environ, None),
        check=True,
        capture_output=True,
    )
    assert f"with Python {version}" in repo.read("requirements.txt")
    lock_changes_nothing(repo)
    code, report = check(repo)
    assert code == 0 and kinds(report, "warning") == [], report


def test_missing_interpreter_fails_only_its_own_lock(make_repo: MakeRepo) -> None:
    repo = make_repo(
        {
            "pyproject.toml": '[tool.pip-tools]\nno-index = true\nfind-links = ["wheels"]\n'
            '[tool.pinsync.outputs."old.txt"]\npython = "3.99"\n',
            "old.in": "flask\n",
            "new.in": "requests\n",
        }
    )
    proc = repo.pinsync("lock", check=False)
    assert proc.returncode == 2
    assert "Python 3.99 is needed" in proc.stderr and "Traceback" not in proc.stderr
    assert (repo.path / "new.txt").exists() and not (repo.path / "old.txt").exists()


# --- messages ----------------------------------------------------------------------


def test_json_report_even_when_the_check_cannot_run(make_repo: MakeRepo) -> None:
    repo = make_repo({"requirements.in": "flask\n-r missing.in\n"})
    proc = repo.pinsync("check", "--format", "json", "--offline", check=False)
    assert proc.returncode == 2
    payload = json.loads(proc.stdout)
    assert payload["ok"] is False and payload["findings"] == []
    assert "missing.in" in payload["error"]


def test_versions_that_exist_for_another_python_are_not_missing(
    make_repo: MakeRepo, tmp_path: Path
) -> None:
    from bench.wheelhouse import Dist, build_wheel

    repo = make_repo({"requirements.in": "modern\n"})
    wheel = build_wheel(Dist("modern", "1.0"), tmp_path / "w")
    # Rewrite METADATA with a Requires-Python this interpreter does not meet.
    import zipfile

    data = {}
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            data[name] = zf.read(name)
    meta = "modern-1.0.dist-info/METADATA"
    data[meta] = data[meta].replace(b"Version: 1.0\n", b"Version: 1.0\nRequires-Python: >=3.99\n")
    with zipfile.ZipFile(repo.path / "wheels" / wheel.name, "w") as zf:
        for name, blob in data.items():
            zf.writestr(name, blob)
    proc = repo.pinsync("lock", check=False)
    assert proc.returncode == 2
    assert "not on the index" not in proc.stderr, proc.stderr
    assert "none supports" in proc.stderr and "Traceback" not in proc.stderr
    shutil.rmtree(tmp_path / "w")


def test_build_failure_names_the_package_and_its_reason(make_repo: MakeRepo) -> None:
    repo = make_repo({"requirements.in": "flask\nbroken\n"})
    repo.add_sdist("broken", b"raise RuntimeError('needs libfoo-dev')\n")
    proc = repo.pinsync("lock", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    # Offline, the build backend itself cannot be installed; that is the reason given.
    assert proc.stderr.startswith("pinsync: error: requirements.txt: broken failed to build ("), (
        proc.stderr
    )
    assert proc.stderr.count("\n") == 1


def test_configured_build_context_beats_the_default(make_repo: MakeRepo, all_wheels: Path) -> None:
    repo = make_repo(
        {
            "svc/requirements.in": "mlflow==2.9.0\n",
            "other/requirements.in": "mlflow==3.4.0\n",
            # Built as `docker build -f images/svc.Dockerfile svc`: nothing in the
            # repository says so, and two locks share the name it copies.
            "images/svc.Dockerfile": "FROM python:3.11\nCOPY requirements.txt .\n"
            "RUN pip install -r requirements.txt mlflow==2.9.0\n",
        }
    )
    repo.use_wheels(all_wheels)
    repo.pinsync("lock")
    code, report = check(repo, "--offline")
    assert code == 1
    assert ("images/svc.Dockerfile", "mlflow", "dockerfile-pin") in kinds(report, "error")
    table = '[tool.pinsync.docker-contexts]\n"images/svc.Dockerfile" = "./svc"\n'
    repo.write({"pyproject.toml": repo.read("pyproject.toml") + table})
    code, report = check(repo, "--offline")
    assert code == 0 and kinds(report, "error") == [], report


def test_bump_moves_uv_locks_with_uv(make_repo: MakeRepo, all_wheels: Path) -> None:
    repo = make_repo(
        {
            "requirements.in": "mlflow==2.9.0\n",
            "uv.toml": '[pip]\nno-index = true\nfind-links = ["wheels"]\n',
        }
    )
    uv_compile(repo, "requirements.in", "-o", "requirements.txt")
    header = repo.read("requirements.txt").splitlines()[:2]
    repo.use_wheels(all_wheels)
    repo.pinsync("bump", "mlflow", "3.4.0")
    text = repo.read("requirements.txt")
    assert "mlflow==3.4.0" in text and text.splitlines()[:2] == header
    assert repo.read("requirements.in") == "mlflow==3.4.0\n"
    code, report = check(repo, "--offline")
    assert code == 0, report


def test_bump_keeps_omitted_pins_out(make_repo: MakeRepo, all_wheels: Path) -> None:
    repo = make_repo(
        {
            **OMIT_SOURCES,
            "pyproject.toml": '[tool.pip-tools]\nno-index = true\nfind-links = ["wheels"]\n'
            '[tool.pinsync.outputs."requirements/test.txt"]\nomit = ["mlflow"]\n',
        }
    )
    repo.pinsync("lock")
    assert "mlflow==" not in repo.read("requirements/test.txt")
    repo.use_wheels(all_wheels)
    repo.pinsync("bump", "mlflow", "3.4.0")
    assert "mlflow==3.4.0" in repo.read("requirements/base.txt")
    test_txt = repo.read("requirements/test.txt")
    assert "mlflow==" not in test_txt and "numpy==1.1" in test_txt
    code, report = check(repo, "--offline")
    assert code == 0 and kinds(report, "warning") == [], report


@pytest.mark.parametrize(
    ("config", "found"),
    [
        pytest.param("", False, id="unknown-command-is-not-pip"),
        pytest.param(
            '[tool.pinsync]\npip-wrappers = ["pip-install"]\n', True, id="declared-wrapper"
        ),
    ],
)
def test_pip_wrapper_scripts_are_read_when_declared(
    make_repo: MakeRepo, config: str, found: bool
) -> None:
    """warehouse installs through its own `pip-install` script."""
    repo = make_repo(
        {
            "requirements.in": "mlflow==2.9.0\n",
            "Dockerfile": "FROM python:3.11\nCOPY requirements.txt .\nRUN pip-install mlflow==3.4.0\n",
        }
    )
    repo.pinsync("lock")
    repo.write({"pyproject.toml": repo.read("pyproject.toml") + config})
    code, report = check(repo, "--offline")
    assert (("Dockerfile", "mlflow", "dockerfile-pin") in kinds(report, "error")) is found
    assert code == (1 if found else 0)


def _hand_lock(python: str, source: str, output: str, pins: str) -> str:
    return (
        f"#\n# This file is autogenerated by pip-compile with Python {python}\n"
        f"# by the following command:\n#\n#    pip-compile --output-file={output} {source}\n#\n"
        + pins
    )


@pytest.mark.parametrize(
    ("python", "disagree"),
    [
        pytest.param("3.10" if CURRENT != "3.10" else "3.11", False, id="lock-for-another-python"),
        pytest.param(CURRENT, True, id="same-python"),
    ],
)
def test_layers_for_different_pythons_may_differ(
    make_repo: MakeRepo, python: str, disagree: bool
) -> None:
    table = (
        '[tool.pip-tools]\nno-index = true\nfind-links = ["wheels"]\n'
        '[tool.pinsync]\nlayers-disagree = "warning"\n'
        f'[tool.pinsync.outputs."all-py.txt"]\ninputs = ["all.in"]\npython = "{python}"\n'
    )
    repo = make_repo(
        {
            "pyproject.toml": table,
            "base.in": "urllib3\n",
            "all.in": "-r base.in\n",
            "base.txt": _hand_lock(
                CURRENT, "base.in", "base.txt", "urllib3==2.0.3\n    # via -r base.in\n"
            ),
            "all-py.txt": _hand_lock(
                python, "all.in", "all-py.txt", "urllib3==1.26.18\n    # via -r base.in\n"
            ),
        }
    )
    code, report = check(repo, "--offline")
    assert code == 0  # layers-disagree is asked for as a warning
    assert (("all-py.txt", "urllib3", "layers-disagree") in kinds(report)) is disagree, report


@pytest.mark.parametrize(
    ("requirement", "message"),
    [
        pytest.param(
            "legacy",
            "legacy: versions exist but none supports Python {python} (2.0 needs Python <3.0)",
            id="all-releases-for-another-python",
        ),
        pytest.param(
            "legacy>5",
            "legacy>5 is not on the index (no version of it is available)",
            id="skipped-releases-would-not-satisfy-it-anyway",
        ),
    ],
)
def test_releases_an_index_skips_for_their_python(
    make_repo: MakeRepo, tmp_path: Path, requirement: str, message: str
) -> None:
    """A simple index that says `data-requires-python`, as PyPI does: pip skips by it."""
    from bench.wheelhouse import Dist, build_wheel

    files = tmp_path / "files"
    page = []
    for version in ("1.0", "2.0"):
        wheel = build_wheel(Dist("legacy", version), files)
        page.append(f'<a href="{wheel.as_uri()}" data-requires-python="&lt;3.0">{wheel.name}</a>')
    (tmp_path / "simple" / "legacy").mkdir(parents=True)
    (tmp_path / "simple" / "legacy" / "index.html").write_text("\n".join(page))
    table = f'[tool.pip-tools]\nindex-url = "{(tmp_path / "simple").as_uri()}"\n'
    repo = make_repo({"pyproject.toml": table, "requirements.in": requirement + "\n"})
    proc = repo.pinsync("lock", check=False)
    assert proc.returncode == 2
    assert proc.stderr == f"pinsync: error: requirements.txt: {message.format(python=CURRENT)}\n"
