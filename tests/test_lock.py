"""`lock` end to end: the real pip-compile against a local wheelhouse."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath

import pytest

from conftest import PIP_TOOLS_TABLE, Repo, compile_held
from pinsync.lockfile import strip_stamp
from pinsync.reqfile import parse_requirements


def pins(text: str) -> dict[str, str | None]:
    return {
        str(e.name): e.pinned_version
        for e in parse_requirements(PurePosixPath("x.txt"), text).entries
    }


def test_incident_lock_rewrites_exactly_the_stale_locks(incident_repo: Repo) -> None:
    before = incident_repo.snapshot()
    proc = incident_repo.pinsync("lock")
    after = incident_repo.snapshot()
    changed = sorted(k for k in after if before.get(k) != after[k])
    assert changed == ["requirements-all.txt", "requirements.txt"], proc.stdout
    for name in changed:
        old, new = pins(before[name].decode()), pins(after[name].decode())
        moved = {
            k: (old.get(k), new.get(k)) for k in old.keys() | new.keys() if old.get(k) != new.get(k)
        }
        # mlflow moves, and numpy because mlflow 3.4.0 needs numpy>=1.1; flask 3 and
        # Jinja2 3.1.4 are on the index now but nothing asks for them.
        assert moved == {"mlflow": ("2.9.0", "3.4.0"), "numpy": ("1.0", "1.1")}, name
    print(proc.stdout)
    again = incident_repo.pinsync("lock")
    assert incident_repo.snapshot() == after, again.stdout


LAYERED = {
    "requirements/base.in": "flask\nzope.sqlalchemy\n",
    "requirements/constraints.txt": "urllib3<2\n",
    "requirements/dev.in": "-r base.in\n-c constraints.txt\nrequests\n",
    "requirements/ci.in": "-r dev.txt\npytest  # test runner\n",
}


def test_layered_requirements_compile_in_dependency_order(
    make_repo: Callable[[Mapping[str, str]], Repo],
) -> None:
    repo = make_repo(LAYERED)
    proc = repo.pinsync("lock")
    order = [line.split()[0] for line in proc.stdout.splitlines()[:3]]
    assert order == ["requirements/base.txt", "requirements/dev.txt", "requirements/ci.txt"]
    dev = pins(repo.read("requirements/dev.txt"))
    assert dev["urllib3"] == "1.26.18"  # the -c constraint held
    assert dev["zope-sqlalchemy"] == "3.1" and dev["sqlalchemy"] == "2.0.0"
    ci = pins(repo.read("requirements/ci.txt"))
    assert {k: ci[k] for k in dev} == dev  # -r dev.txt: the compiled layer is kept as is
    assert ci["pytest"] == "8.0.0"
    assert "# via -r requirements/dev.txt" in repo.read("requirements/ci.txt")


def test_adopting_keeps_hashes_and_multi_input_outputs_byte_identical(
    make_repo: Callable[[Mapping[str, str]], Repo],
) -> None:
    repo = make_repo({"api.in": "flask\n", "worker.in": "requests\n", "docs.in": "Jinja2\n"})
    repo.pip_compile("--generate-hashes", "--output-file=api.txt", "api.in")
    # One output from two sources, named after neither of them.
    repo.pip_compile("--allow-unsafe", "--output-file=services.txt", "worker.in", "docs.in")
    before = repo.snapshot()
    proc = repo.pinsync("lock")
    assert repo.snapshot() == before, proc.stdout
    assert "--hash=sha256:" in repo.read("api.txt")
    assert sorted(line.split()[0] for line in proc.stdout.splitlines()[:-1]) == [
        "api.txt",
        "services.txt",
    ]


HOSTILE_ENV = {
    "PIP_INDEX_URL": "https://deploy:hunter2@pypi.internal.invalid/simple",
    "PIP_EXTRA_INDEX_URL": "https://token-s3cr3t@mirror.invalid/simple",
    "PIP_FIND_LINKS": "/nonexistent/wheels",
    "PIP_NO_INDEX": "0",
    "PIP_PRE": "1",
    "CUSTOM_COMPILE_COMMAND": "make upgrade",
}


def test_same_bytes_from_a_subdirectory_and_with_hostile_pip_variables(
    make_repo: Callable[[Mapping[str, str]], Repo],
) -> None:
    repo = make_repo(LAYERED)
    repo.pinsync("lock")
    reference = repo.snapshot()
    for name in ("requirements/base.txt", "requirements/dev.txt", "requirements/ci.txt"):
        (repo.path / name).unlink()
    sub = repo.path / "requirements"
    proc = repo.pinsync("lock", "--root", "..", cwd=sub, env=HOSTILE_ENV)
    assert repo.snapshot() == reference
    everything = proc.stdout + proc.stderr + "".join(v.decode() for v in repo.snapshot().values())
    for secret in (
        "hunter2",
        "s3cr3t",
        "internal.invalid",
        "/nonexistent",
        "make upgrade",
        "/opt/",
    ):
        assert secret not in everything


def test_malformed_line_names_file_and_line_and_writes_nothing(
    make_repo: Callable[[Mapping[str, str]], Repo],
) -> None:
    repo = make_repo({**LAYERED, "requirements/dev.in": "-r base.in\nrequests\nflask >= = 2\n"})
    before = repo.snapshot()
    proc = repo.pinsync("lock", check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith("pinsync: error: requirements/dev.in:3: invalid requirement")
    assert "'flask >= = 2'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert repo.snapshot() == before


def test_failed_resolution_is_all_or_nothing(
    make_repo: Callable[[Mapping[str, str]], Repo],
) -> None:
    repo = make_repo(LAYERED)
    repo.pinsync("lock")
    repo.write(
        {
            "requirements/base.in": "flask\nzope.sqlalchemy\ngunicorn\n",  # compiles fine
            "requirements/ci.in": "-r dev.txt\npytest==99.0\n",  # cannot resolve
        }
    )
    before = repo.snapshot()
    proc = repo.pinsync("lock", check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "pinsync: error: requirements/ci.txt: pytest==99.0 is not on the index (newest: 8.0.0)"
    )
    assert repo.snapshot() == before  # base.txt compiled in the stage, never committed


def test_custom_command_header_without_config_keeps_its_header(
    make_repo: Callable[[Mapping[str, str]], Repo],
) -> None:
    repo = make_repo({"base.in": "flask\n"})
    repo.pip_compile("--output-file=base.txt", "base.in")
    text = repo.read("base.txt").replace(
        "pip-compile --find-links=wheels --no-index --output-file=base.txt base.in", "make upgrade"
    )
    repo.write({"base.txt": text, "base.in": "flask\nrequests\n"})
    proc = repo.pinsync("lock")
    assert "options read off the lock" in proc.stdout
    after = repo.read("base.txt")
    assert "#    make upgrade\n" in after and "requests==2.31.0" in after


def test_configured_custom_command_is_written_to_the_header(
    make_repo: Callable[[Mapping[str, str]], Repo],
) -> None:
    repo = make_repo({"base.in": "flask\n"})
    repo.write(
        {
            "pyproject.toml": repo.read("pyproject.toml")
            + '[tool.pinsync]\ncustom-compile-command = "make upgrade"\ncompile-args = []\n'
        }
    )
    repo.pinsync("lock")
    assert "#    make upgrade\n" in repo.read("base.txt")


def test_missing_interpreter_is_a_clear_error(
    make_repo: Callable[[Mapping[str, str]], Repo],
) -> None:
    repo = make_repo({"base.in": "flask\n"})
    repo.write(
        {"pyproject.toml": repo.read("pyproject.toml") + '[tool.pinsync]\npython = "3.99"\n'}
    )
    proc = repo.pinsync("lock", check=False)
    assert proc.returncode == 2
    assert "Python 3.99 is needed" in proc.stderr and "not installed here" in proc.stderr
    assert not (repo.path / "base.txt").exists()


def test_dry_run_prints_the_diff_and_writes_nothing(incident_repo: Repo) -> None:
    before = incident_repo.snapshot()
    proc = incident_repo.pinsync("lock", "--dry-run")
    assert incident_repo.snapshot() == before
    assert "-mlflow==2.9.0\n+mlflow==3.4.0\n" in proc.stdout
    assert "would write 2" in proc.stdout


def test_upgrade_package_moves_only_that_package(incident_repo: Repo) -> None:
    incident_repo.pinsync("lock")
    before = pins(incident_repo.read("requirements-all.txt"))
    # Options may follow the positional FILE.
    incident_repo.pinsync("lock", "requirements-all.in", "--upgrade-package", "jinja2")
    after = pins(incident_repo.read("requirements-all.txt"))
    assert {k: (before[k], after[k]) for k in before if before[k] != after[k]} == {
        "jinja2": ("3.1.0", "3.1.4")
    }


def test_upgrade_moves_everything_allowed(incident_repo: Repo) -> None:
    incident_repo.pinsync("lock", "--upgrade")
    after = pins(incident_repo.read("requirements.txt"))
    assert (after["flask"], after["jinja2"]) == ("3.0.0", "3.1.4")
    assert after["mlflow"] == "3.4.0"  # the .in pins it


def test_stamped_lock_is_not_recompiled_and_a_hand_edit_is(incident_repo: Repo) -> None:
    incident_repo.pinsync("lock")
    proc = incident_repo.pinsync("lock")
    assert "requirements-all.txt" in proc.stdout and "fresh" in proc.stdout
    # A hand edit that breaks the lock: mlflow 3.4.0 needs numpy>=1.1.
    edited = incident_repo.read("requirements.txt").replace("numpy==1.1", "numpy==1.0")
    incident_repo.write({"requirements.txt": edited})
    proc = incident_repo.pinsync("lock")
    assert "numpy==1.1" in incident_repo.read("requirements.txt")
    assert "requirements.txt                         updated (1 pin changed)" in proc.stdout


def test_ctrl_c_leaves_only_whole_files_and_no_temporaries(
    make_repo: Callable[[Mapping[str, str]], Repo],
    tmp_path: Path,
) -> None:
    repo = make_repo(LAYERED)
    repo.pinsync("lock")
    repo.write({"requirements/base.in": "flask\nzope.sqlalchemy\ngunicorn\n"})
    before = repo.snapshot()
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    proc = repo.start("lock", "--jobs", "1", tmpdir=tmpdir)
    with compile_held(proc.pid):  # Ctrl-C lands inside a pip-compile
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted; no file was changed" in err
    assert repo.snapshot() == before
    assert [p.name for p in tmpdir.iterdir() if p.name.startswith("pinsync-stage")] == []
    assert not list(repo.path.rglob("*pinsync-tmp*"))


def test_two_runs_at_once_do_not_corrupt_each_other(
    make_repo: Callable[[Mapping[str, str]], Repo],
    tmp_path: Path,
) -> None:
    repo = make_repo(LAYERED)
    repo.pinsync("lock")
    reference = repo.snapshot()
    for name in ("requirements/base.txt", "requirements/dev.txt", "requirements/ci.txt"):
        (repo.path / name).unlink()
    runs = [repo.start("lock", "--force", tmpdir=tmp_path) for _ in range(2)]
    results = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], results
    assert repo.snapshot() == reference


@pytest.mark.parametrize(
    ("command", "value"),
    [("lock", "0"), ("lock", "-1"), ("lock", "two"), ("bump", "0")],
    ids=["lock-zero", "lock-negative", "lock-word", "bump-zero"],
)
def test_jobs_must_be_positive(
    make_repo: Callable[[Mapping[str, str]], Repo], command: str, value: str
) -> None:
    repo = make_repo(LAYERED)
    before = repo.snapshot()
    args = ("mlflow", "3.4.0") if command == "bump" else ()
    proc = repo.pinsync(command, *args, f"--jobs={value}", check=False)
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[-1] == (
        f"pinsync {command}: error: argument --jobs/-j: expected a positive number, got {value!r}"
    )
    assert repo.snapshot() == before


@pytest.mark.parametrize(
    ("args", "line", "summary"),
    [
        pytest.param(
            (),
            "a.txt                                    unchanged  ",
            "1 unchanged; wrote 0 files",
            id="in-sync-left-alone",
        ),
        pytest.param(
            ("--force",),
            "a.txt                                    restamped (same pins, new stamp)  ",
            "1 restamped; wrote 1 file",
            id="force-restamps",
        ),
    ],
)
def test_statuses_and_counts_say_what_was_written(
    make_repo: Callable[[Mapping[str, str]], Repo], args: tuple[str, ...], line: str, summary: str
) -> None:
    repo = make_repo({"a.in": "flask\n"})
    repo.pip_compile("--output-file=a.txt", "a.in")
    proc = repo.pinsync("lock", *args)
    assert line in proc.stdout, proc.stdout
    assert f"1 lock file: {summary} in " in proc.stdout, proc.stdout


# pip-compile reads a file that a `--constraint` option names as it reads a `-c` line.
# Each row names base.txt that way for app's compile: in compile-args (three
# spellings), and in [tool.pip-tools], where it applies to base's own compile too.
_APP_OUTPUT = '[tool.pinsync.outputs."app.txt"]\ninputs = ["app.in"]\n'
CONSTRAINT_OPTIONS = [
    pytest.param(PIP_TOOLS_TABLE + 'constraint = ["base.txt"]\n', id="pip-tools-table"),
    pytest.param(
        PIP_TOOLS_TABLE + _APP_OUTPUT + 'compile-args = ["--constraint=base.txt"]\n',
        id="compile-args-long",
    ),
    pytest.param(
        PIP_TOOLS_TABLE + _APP_OUTPUT + 'compile-args = ["-c", "base.txt"]\n',
        id="compile-args-short",
    ),
    pytest.param(
        PIP_TOOLS_TABLE + _APP_OUTPUT + 'compile-args = ["-cbase.txt"]\n', id="compile-args-glued"
    ),
]


@pytest.mark.parametrize("pyproject", CONSTRAINT_OPTIONS)
def test_a_lock_a_constraint_option_names_is_compiled_first_and_moves_its_readers(
    make_repo: Callable[[Mapping[str, str]], Repo], all_wheels: Path, pyproject: str
) -> None:
    # base.txt exists before the first compile, as pip-compile needs it to (the table
    # constrains base's own compile by it).
    repo = make_repo({"base.in": "requests\n", "app.in": "gunicorn\n", "base.txt": ""})
    repo.write({"pyproject.toml": pyproject})
    repo.pinsync("lock")
    assert "gunicorn==21.2.0" in repo.read("app.txt")
    repo.use_wheels(all_wheels)
    repo.write({"base.in": "requests\ngunicorn>=22\n"})
    proc = repo.pinsync("lock")
    # app.txt keeps its pins unless its constraint moves them: base.txt now pins 22.
    assert "gunicorn==22.0.0" in repo.read("base.txt")
    assert "gunicorn==22.0.0" in repo.read("app.txt"), proc.stdout
    assert "2 updated" in proc.stdout, proc.stdout
    again = repo.pinsync("lock")
    assert "2 fresh" in again.stdout, again.stdout
    repo.pinsync("check", "--offline")


# A stage links the graph's .in and .txt files only as a compile reads them: one stale
# lock relocked among others must still see everything its compile reads. Each row:
# the files, plain compiles run first (a lock the graph cannot order: pip-tools'
# own `constraint`), the one source that then gains a line, and the pip-compile argv
# that a plain run of that lock is.
ONE_STALE_AMONG_OTHERS = [
    pytest.param(
        {
            "pyproject.toml": '[project]\nname = "svc"\nversion = "1"\ndependencies = ["flask"]\n'
            + '[tool.pip-tools]\nno-index = true\nfind-links = ["wheels"]\n'
            + '[tool.pinsync.outputs."prod.txt"]\ninputs = ["pyproject.toml"]\n',
            "dev.in": "requests\n",
        },
        [],
        "dev.in",
        ["--output-file=dev.txt", "dev.in"],
        id="beside a lock compiled from pyproject.toml, whose [tool.pip-tools] it needs",
    ),
    pytest.param(
        {
            "pyproject.toml": '[tool.pip-tools]\nno-index = true\nfind-links = ["wheels"]\n'
            + '[tool.pinsync.outputs."app.txt"]\ninputs = ["app.in"]\n'
            + 'compile-args = ["--constraint=base.txt"]\n',
            "base.in": "flask\n",
            "app.in": "requests\n",
        },
        [["--output-file=base.txt", "base.in"]],
        "app.in",
        ["--constraint=base.txt", "--output-file=app.txt", "app.in"],
        id="a lock its compile-args name as a constraint",
    ),
    pytest.param(
        {
            "base.in": "flask\n",
            "app.in": "-c base.txt\nrequests\n",
            "docs.in": "-r app.in\nmlflow\n",
        },
        [],
        "docs.in",
        ["--output-file=docs.txt", "docs.in"],
        id="an -r source that constrains with another lock",
    ),
]


@pytest.mark.parametrize(("files", "first", "stale", "argv"), ONE_STALE_AMONG_OTHERS)
def test_one_stale_lock_among_others_reads_what_a_plain_compile_reads(
    make_repo: Callable[[Mapping[str, str]], Repo],
    tmp_path: Path,
    files: dict[str, str],
    first: list[list[str]],
    stale: str,
    argv: list[str],
) -> None:
    repo = make_repo({})
    repo.write(files)
    for plain_argv in first:
        repo.pip_compile(*plain_argv)
    repo.pinsync("lock", "--force")  # every lock stamped: the others are fresh below
    with (repo.path / stale).open("a") as fh:
        fh.write("zope.sqlalchemy\n")
    proc = repo.pinsync("lock")
    output = next(a.split("=", 1)[1] for a in argv if a.startswith("--output-file="))
    assert "fresh, 1 updated" in proc.stdout, proc.stdout
    plain = Repo(tmp_path / "plain")
    shutil.copytree(repo.path, plain.path)
    (plain.path / output).write_text(strip_stamp(repo.read(output)))
    plain.pip_compile(*argv)

    def without_find_links(text: str) -> str:
        # pip makes a -c lock's relative --find-links absolute (each checkout its own);
        # and a lock named by compile-args lists its find-links first where a plain
        # run lists them last (as before the stage linked on demand).
        return "".join(ln for ln in text.splitlines(True) if not ln.startswith("--find-links"))

    assert without_find_links(strip_stamp(repo.read(output))) == without_find_links(
        plain.read(output)
    )
