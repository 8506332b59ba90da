"""Time from a fresh clone to a working chat: ``make demo`` in a clean clone until the chat answers over HTTP.

Usage:
    python -m benchmarks.bench_demo [--repo PATH] [--port N] [--keep-pip-cache] [--json]

The clone is made from the given repository (default: this one) into a temporary folder, so the virtual
environment, the install and every build step run as on a newcomer's machine. pip's cache is disabled unless
``--keep-pip-cache`` is given, so packages are downloaded as on a fresh machine.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def time_demo(repo: Path, port: int, keep_pip_cache: bool, limit_s: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench_demo_") as folder:
        clone = Path(folder) / "concierge"
        subprocess.run(["git", "clone", "--quiet", str(repo), str(clone)], check=True)
        environment = {**os.environ, "CONCIERGE_SERVER_PORT": str(port)}
        if not keep_pip_cache:
            environment["PIP_NO_CACHE_DIR"] = "1"
        log = Path(folder) / "demo.log"
        started = time.perf_counter()
        with log.open("w") as output:
            demo = subprocess.Popen(
                ["make", "demo"],
                cwd=clone,
                env=environment,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                while time.perf_counter() - started < limit_s and demo.poll() is None:
                    if _answers(f"http://127.0.0.1:{port}/"):
                        break
                    time.sleep(1)
                seconds = time.perf_counter() - started
                ready = _answers(f"http://127.0.0.1:{port}/")
            finally:
                os.killpg(demo.pid, signal.SIGTERM)
                demo.wait(timeout=60)
        if not ready:
            raise RuntimeError(
                f"the chat did not answer within {limit_s:.0f} s; log:\n{log.read_text()[-3000:]}"
            )
    return {"seconds_to_chat": round(seconds, 1), "pip_cache": keep_pip_cache, "cores": os.cpu_count()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_demo", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--port", type=int, default=7870)
    parser.add_argument("--keep-pip-cache", action="store_true")
    parser.add_argument("--limit", type=float, default=1800, help="give up after this many seconds")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    figures = time_demo(args.repo, args.port, args.keep_pip_cache, args.limit)
    if args.json:
        print(json.dumps(figures))
    else:
        print(
            f"make demo from a clean clone to a chat answering on 127.0.0.1: {figures['seconds_to_chat']} s"
        )
        print(f"pip cache: {'kept' if figures['pip_cache'] else 'disabled'}; cores: {figures['cores']}")


if __name__ == "__main__":
    main()
