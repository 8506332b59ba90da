"""What the benchmarks that serve over loopback share: a free port of 127.0.0.1."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port of 127.0.0.1 free now (the operating system's choice)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
