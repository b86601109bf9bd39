"""stage: writes go to copies of the locks, never through to the repository's files."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import pytest

from pinsync.errors import PinsyncError
from pinsync.stage import Stage

P = PurePosixPath
LOCKS = {"requirements/a.txt": "a==1\n", "requirements/b.txt": "b==1\n"}


@pytest.fixture
def repo_with_two_locks(tmp_path: Path) -> Path:
    for rel, text in {**LOCKS, "requirements/a.in": "a\n", "README": "x\n"}.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return tmp_path


def _repo_files(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): p.read_text() for p in root.rglob("*") if p.is_file()
    }


# How each write reaches the staged lock: through the stage, or as a compile would,
# by opening the path the stage hands out.
WRITES = {
    "stage.write": lambda stage, rel: stage.write(rel, "a==2\n"),
    "a compile's own open": lambda stage, rel: (stage.claim(rel) / rel).write_text("a==2\n"),
}


@pytest.mark.parametrize("how", WRITES)
def test_a_staged_lock_is_written_as_a_copy_and_the_repository_is_untouched(
    repo_with_two_locks: Path, how: str
) -> None:
    root = repo_with_two_locks
    before = _repo_files(root)
    with Stage(root, [P(r) for r in LOCKS]) as stage:
        # Unclaimed, a lock is a link: building the stage copied nothing.
        assert all((stage.path / rel).is_symlink() for rel in LOCKS)
        WRITES[how](stage, P("requirements/a.txt"))
        assert not (stage.path / "requirements/a.txt").is_symlink()
        assert (stage.path / "requirements/b.txt").is_symlink()
        assert _repo_files(root) == before
        changes = stage.changes()
    assert [(str(c.path), c.old, c.new) for c in changes] == [
        ("requirements/a.txt", b"a==1\n", b"a==2\n")
    ]


def test_a_claimed_lock_starts_as_the_repositorys_bytes(repo_with_two_locks: Path) -> None:
    # pip-compile reads the output it is about to write, to keep its pins.
    with Stage(repo_with_two_locks, [P("requirements/a.txt")]) as stage:
        staged = stage.claim(P("requirements/a.txt")) / "requirements/a.txt"
        assert not staged.is_symlink() and staged.read_text() == "a==1\n"
        assert stage.changes() == ()


def test_a_scratch_path_loses_the_link_a_repository_file_of_its_name_made(
    repo_with_two_locks: Path,
) -> None:
    root = repo_with_two_locks
    (root / "requirements/.pinsync-probe.in").write_text("not ours\n")
    with Stage(root, [P("requirements/a.txt")]) as stage:
        base = stage.claim(P("requirements/.pinsync-probe.in"))
        assert not os.path.lexists(base / "requirements/.pinsync-probe.in")
        (base / "requirements/.pinsync-probe.in").write_text("probe\n")
    assert (root / "requirements/.pinsync-probe.in").read_text() == "not ours\n"


@pytest.mark.parametrize("rel", ["requirements/a.in", "requirements/a.txt"])
def test_a_path_in_a_linked_directory_cannot_be_claimed(
    repo_with_two_locks: Path, rel: str
) -> None:
    # `requirements/` is a link to the repository's directory in this stage: a write
    # there would be a write to the repository.
    with Stage(repo_with_two_locks, [P("other/x.txt")]) as stage:
        assert (stage.path / "requirements").is_symlink()
        with pytest.raises(PinsyncError, match="not staged for writing"):
            stage.claim(P(rel))


# --- files linked on demand ---------------------------------------------------------
# Steps on a stage whose requirement files are linked only when a compile reads them,
# and what each file of the stage is afterwards: "link", "copy" or "absent".
ON_DEMAND = {
    P("requirements/a.txt"),
    P("requirements/b.txt"),
    P("requirements/a.in"),
}
STEPS_ON_DEMAND = [
    pytest.param(
        [],
        {"requirements/a.txt": "absent", "requirements/a.in": "absent", "README": "link"},
        id="built: only what no compile names is linked",
    ),
    pytest.param(
        [("need", "requirements/a.in")],
        {"requirements/a.in": "link", "requirements/b.txt": "absent"},
        id="need links it",
    ),
    pytest.param(
        [("claim", "requirements/a.txt")],
        {"requirements/a.txt": "copy", "requirements/a.in": "absent"},
        id="claim copies the repository's bytes",
    ),
    pytest.param(
        [("need", "requirements/a.txt"), ("claim", "requirements/a.txt")],
        {"requirements/a.txt": "copy"},
        id="a needed lock claimed later is a copy",
    ),
    pytest.param(
        [("need_all", "")],
        {"requirements/a.txt": "link", "requirements/b.txt": "link", "requirements/a.in": "link"},
        id="need_all links every file",
    ),
]


def _state(path: Path) -> str:
    if path.is_symlink():
        return "link"
    return "copy" if path.exists() else "absent"


@pytest.mark.parametrize(("steps", "expected"), STEPS_ON_DEMAND)
def test_files_linked_on_demand(
    repo_with_two_locks: Path, steps: list[tuple[str, str]], expected: dict[str, str]
) -> None:
    root = repo_with_two_locks
    before = _repo_files(root)
    with Stage(root, [P(r) for r in LOCKS], on_demand=ON_DEMAND) as stage:
        for step, rel in steps:
            if step == "need":
                stage.need(P(rel))
            elif step == "claim":
                stage.claim(P(rel))
            else:
                stage.need_all()
        assert {rel: _state(stage.path / rel) for rel in expected} == expected
        # Whatever is linked or not, reads see the repository's bytes...
        assert {r: stage.read(P(r)) for r in LOCKS} == LOCKS
        assert stage.read(P("requirements/a.in")) == "a\n"
        # ...and an untouched file is no change.
        assert stage.changes() == ()
    assert _repo_files(root) == before


def test_a_lock_claimed_unlinked_is_written_as_a_change(repo_with_two_locks: Path) -> None:
    with Stage(repo_with_two_locks, [P(r) for r in LOCKS], on_demand=ON_DEMAND) as stage:
        (stage.claim(P("requirements/b.txt")) / "requirements/b.txt").write_text("b==2\n")
        assert stage.read(P("requirements/b.txt")) == "b==2\n"
        changes = stage.changes()
    assert [(str(c.path), c.old, c.new) for c in changes] == [
        ("requirements/b.txt", b"b==1\n", b"b==2\n")
    ]
