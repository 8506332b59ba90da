"""Helpers of the tests that start real servers: a free local port, and the `chroma` command."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

# The one free-port helper, shared with the benchmarks that serve over loopback.
from benchmarks.loopback import free_port

__all__ = ["chroma_cli", "free_port"]


def chroma_cli() -> str:
    """The `chroma` command of the installed chromadb (beside this Python first); skips the test without it."""
    beside_python = Path(sys.executable).with_name("chroma")
    found = str(beside_python) if beside_python.exists() else shutil.which("chroma")
    if found is None:
        pytest.skip("needs the `chroma` command of the chromadb package (pip install chromadb)")
    return found
