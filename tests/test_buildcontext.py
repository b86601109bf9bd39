"""Which repository file a path inside an image came from: COPY/ADD and WORKDIR, as Docker does."""

from __future__ import annotations

from pathlib import PurePosixPath as P

import pytest

from pinsync.buildcontext import directories_of, source_of
from pinsync.dockerfile import parse_dockerfile

FILES = [P("svc/requirements.txt"), P("svc/reqs/base.txt"), P("README.md")]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            "COPY requirements.txt /\nRUN pip install -r /requirements.txt",
            "svc/requirements.txt",
            id="file-into-image-root",
        ),
        pytest.param(
            "COPY . /\nRUN pip install -r /requirements.txt",
            "svc/requirements.txt",
            id="context-into-image-root",
        ),
        pytest.param(
            "WORKDIR /app\nCOPY requirements.txt .\nRUN pip install -r requirements.txt",
            "svc/requirements.txt",
            id="workdir-dot",
        ),
        pytest.param(
            "COPY reqs /r\nRUN pip install -r /r/base.txt",
            "svc/reqs/base.txt",
            id="directory-contents",
        ),
        pytest.param(
            "COPY reqs/ /r/\nRUN pip install -r /r/base.txt",
            "svc/reqs/base.txt",
            id="directory-with-slashes",
        ),
        pytest.param(
            "COPY requirements.txt /tmp/r.txt\nRUN pip install -r /tmp/r.txt",
            "svc/requirements.txt",
            id="renamed-file",
        ),
        pytest.param(
            "COPY requirements.txt /tmp/r.txt\nRUN pip install -r /tmp/other.txt",
            None,
            id="not-copied",
        ),
        pytest.param(
            "RUN pip install -r requirements.txt\nCOPY requirements.txt .",
            None,
            id="copied-after-the-install",
        ),
    ],
)
def test_source_of(body: str, expected: str | None) -> None:
    df = parse_dockerfile(P("svc/Dockerfile"), f"FROM python:3.11\n{body}\n")
    found = source_of(df, df.installs[0], P("svc"), directories_of(FILES))
    assert found == (P(expected) if expected else None)
