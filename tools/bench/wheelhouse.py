"""Tiny, valid, deterministic wheels for tests and the benchmark.

A wheel is a zip with a METADATA and a RECORD; pip and pip-compile accept it from a
`--find-links` directory exactly as they would from an index.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name

# A fixed timestamp keeps the bytes, and so the `--hash` values, the same on every build.
_EPOCH = (2020, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Dist:
    """A distribution to build: `requires` are PEP 508 strings, as in `Requires-Dist`."""

    name: str
    version: str
    requires: tuple[str, ...] = ()
    extras: tuple[tuple[str, tuple[str, ...]], ...] = ()


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def build_wheel(dist: Dist, directory: Path) -> Path:
    """Write `dist` as a pure-Python wheel into `directory` and return its path."""
    project = canonicalize_name(dist.name).replace("-", "_")
    info = f"{project}-{dist.version}.dist-info"
    metadata = [
        "Metadata-Version: 2.1",
        f"Name: {dist.name}",
        f"Version: {dist.version}",
        *(f"Requires-Dist: {r}" for r in dist.requires),
    ]
    for extra, reqs in dist.extras:
        metadata.append(f"Provides-Extra: {extra}")
        metadata.extend(f'Requires-Dist: {r} ; extra == "{extra}"' for r in reqs)
    files = {
        f"{project}/__init__.py": f'__version__ = "{dist.version}"\n'.encode(),
        f"{info}/METADATA": ("\n".join(metadata) + "\n").encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: pinsync\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{info}/top_level.txt": f"{project}\n".encode(),
    }
    record = "".join(f"{n},{_record_hash(d)},{len(d)}\n" for n, d in files.items())
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{project}-{dist.version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(zipfile.ZipInfo(name, _EPOCH), data)
    return path


def build_wheelhouse(dists: Iterable[Dist], directory: Path) -> Path:
    for dist in dists:
        build_wheel(dist, directory)
    return directory
