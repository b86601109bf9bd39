"""pinsync: keep pip-tools lock files, Dockerfile pins and pyproject pins in step."""

from __future__ import annotations

__version__ = "0.1.0"
