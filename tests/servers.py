"""Helpers of the tests that start real servers: a free local port, and the `chroma` command."""

from __future__ import annotations

import shutil
import socket
import sys
from pathlib import Path

import pytest


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def chroma_cli() -> str:
    """The `chroma` command of the installed chromadb (beside this Python first); skips the test without it."""
    beside_python = Path(sys.executable).with_name("chroma")
    found = str(beside_python) if beside_python.exists() else shutil.which("chroma")
    if found is None:
        pytest.skip("needs the `chroma` command of the chromadb package (pip install chromadb)")
    return found
