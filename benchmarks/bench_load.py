"""A bounded load test over loopback: simulated shoppers talking at once to ``concierge serve`` through the HTTP
API, against one process and against two processes sharing a PostgreSQL session store, one killed mid-run.

Usage:
    python -m benchmarks.bench_load [--shoppers 50] [--seconds 60] [--phase one|two|both] [--kill-at 30]
        [--json]

The script starts what it needs and stops all of it at the end, also on Ctrl+C or an error:

- **one**: one ``concierge serve`` on a free port of 127.0.0.1, the bundled sample, default settings (sessions
  in SQLite under its artifacts folder);
- **two**: a throwaway PostgreSQL server (``initdb``/``pg_ctl`` from ``/usr/lib/postgresql/*/bin``, as the
  ``postgres`` user when run as root) and two ``concierge serve`` sharing it
  (``CONCIERGE_CONVERSATION_SESSION_STORE``). The requests of one session alternate between the two processes;
  ``--kill-at`` seconds into the run the second one is killed with SIGKILL, and from then on every request goes
  to the first.

Each serve process gets its own ``--artifacts`` folder in a temporary directory: a copy of the built embedded
Chroma store, the lexical index and the candidate cache of ``artifacts/`` (small; a copy each, because the
embedded Chroma store is single-writer and a process that opens it may write to its files, so no two processes
share one), and a link to the trained reranker (model files that serving only reads). No language model is
configured (the default), so ``artifacts/models`` is not needed. The per-session and per-client rate limits are
raised to 1,000,000 requests a minute through the environment: every shopper shares one address here, and 429s
would measure the limiter, not the server.

Each shopper is a thread with its own ``httpx`` client and think time 0: it creates a session, says a need (a
category label of the catalog, varied), then for a few turns answers a question with its first option when one is
asked, else likes the first card or asks "show me others", and then starts a new session. Every request's latency
and status are recorded. A *turn* is a POST answered 2xx (session created, message, feedback); an *error* is any
non-2xx answer, a request that failed for another reason than the kill, or a reply with the service's failure
text. Latency percentiles are over every timed POST; turns/s is turns over the phase's wall time, from the first
request to the end of the last (a shopper starts no request after ``--seconds``, but finishes the one in flight).
The repository's ``artifacts/`` is only read: sessions go to the temporary folders and the throwaway database.

The kill: a request on the killed process that fails with a transport error once the kill has begun is *in flight
at the kill*, not an error. Its shopper waits until the process is gone, reads the session from the survivor and
decides: the turn was saved whole (version one more, the shopper's message then one assistant reply at the end
of the transcript; adopted as a turn whose answer was lost), not at all (state as before; the request is sent
again to the survivor: a *retry*), or partly (counted as not intact). Retries are counted apart from errors.

At the end every session of the phase is read back (from the survivor in phase two), and it is *intact* when its
``version`` equals the number of its turns saved (one save per turn, the creation included) and its transcript is
exactly what the shopper was answered, in order: the greeting, then for each turn the shopper's text (a like is
``thumbs up on <item_id>``) as the store keeps it (:func:`assistant.sessions.redact` replaces what looks like an
email address or a phone number in what people write), and the reply's text exactly. A reply with the
failure text is not saved by the service, so it adds nothing to what is expected.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.bench_turns import fresh_needs
from benchmarks.loopback import free_port

REPO = Path(__file__).resolve().parent.parent
BUILT = REPO / "artifacts"
# Copied per process (the Chroma store must not be opened by two processes), and linked (read only).
COPIED = ("chroma", "lexical", "candidates")
LINKED = ("reranker",)
START_TIMEOUT_S = 300
REQUEST_TIMEOUT_S = 120
UNLIMITED = "1000000"
# Turns after the need before a shopper starts a new session.
TURNS_PER_SESSION = (2, 4)


class Postgres:
    """A throwaway PostgreSQL server on 127.0.0.1 in a temporary folder (as ``tests/conftest.py`` starts one)."""

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            raise SystemExit("phase two needs PostgreSQL: apt-get install -y postgresql")
        self.bin = os.path.dirname(found[-1])
        self.folder = tempfile.mkdtemp(prefix="concierge-load-pg-")
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.folder, user="postgres")
        self.url = f"postgresql://concierge@127.0.0.1:{self.port}/postgres"

    def _run(self, command: str) -> subprocess.CompletedProcess:
        argv = ["bash", "-c", command]
        if os.geteuid() == 0:
            argv = ["su", "postgres", "-s", "/bin/bash", "-c", command]
        return subprocess.run(argv, capture_output=True, text=True, timeout=120)

    def start(self) -> None:
        started = self._run(
            f"{self.bin}/initdb -D {self.folder}/data -A trust -U concierge >/dev/null && "
            f"{self.bin}/pg_ctl -D {self.folder}/data -o '-p {self.port} -k {self.folder} "
            f"-c listen_addresses=127.0.0.1' -l {self.folder}/log -w start >/dev/null"
        )
        if started.returncode != 0:
            raise SystemExit(f"PostgreSQL did not start: {started.stderr[-2000:]}")

    def stop(self) -> None:
        self._run(f"{self.bin}/pg_ctl -D {self.folder}/data -m fast stop >/dev/null")
        shutil.rmtree(self.folder, ignore_errors=True)


@dataclass
class Server:
    """A ``concierge serve`` process, where it answers and where its output goes."""

    name: str
    process: subprocess.Popen
    url: str
    log: Path

    @classmethod
    def start(cls, name: str, folder: Path, env: dict[str, str]) -> Server:
        artifacts = folder / name
        artifacts.mkdir()
        for part in COPIED:
            shutil.copytree(BUILT / part, artifacts / part)
        for part in LINKED:
            (artifacts / part).symlink_to(BUILT / part)
        port = free_port()
        argv = [sys.executable, "-m", "ui.cli", "serve", "--artifacts", str(artifacts), "--port", str(port)]
        log = folder / f"{name}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT, cwd=REPO, env=env)
        return cls(name, process, f"http://127.0.0.1:{port}", log)

    def wait_until_up(self) -> None:
        import httpx

        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                httpx.get(self.url + "/openapi.json", timeout=2).raise_for_status()
                return
            except httpx.HTTPError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    tail = self.log.read_text(encoding="utf-8", errors="replace")[-3000:]
                    raise SystemExit(
                        f"{self.name} did not start (exit {self.process.poll()}):\n{tail}"
                    ) from None
                time.sleep(0.5)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Session:
    """One conversation as its shopper saw it: what the stored transcript must be, and how many saves."""

    session_id: str
    expected: list[tuple[str, str]] = field(default_factory=list)
    saves: int = 0
    # The bearer token opening the session gave (every later request sends it).
    token: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


@dataclass
class Tally:
    """Everything the shoppers of one phase recorded, under one lock."""

    latencies: list[float] = field(default_factory=list)
    turns: int = 0
    errors: list[str] = field(default_factory=list)
    retries: int = 0
    in_flight: dict[str, int] = field(default_factory=lambda: {"saved": 0, "not saved": 0, "partly": 0})
    sessions: list[Session] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Cluster:
    """Where a shopper's next request goes; knows which process was killed and when."""

    def __init__(self, servers: list[Server], session_secret: str) -> None:
        self.servers = servers
        self.session_secret = session_secret
        self.killing = threading.Event()
        self.dead = threading.Event()

    def token_for(self, session: Session) -> None:
        """Give ``session`` its token when the server's answer that carried it was lost (its creation cut by the
        kill): the benchmark holds the deployment's key, as a trusted component does."""
        from ui.api import session_token

        if not session.token:
            session.token = session_token(self.session_secret.encode("utf-8"), session.session_id)

    def url(self, turn: int) -> str:
        if self.killing.is_set():
            return self.servers[0].url
        return self.servers[turn % len(self.servers)].url

    def kill_last(self) -> None:
        self.killing.set()
        victim = self.servers[-1].process
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        self.dead.set()


class Shopper:
    """A simulated shopper: sessions one after another, think time 0, until ``stop_at``."""

    def __init__(self, n: int, phase: str, cluster: Cluster, needs: Sequence[str], tally: Tally) -> None:
        import httpx

        self.n, self.phase, self.cluster, self.tally = n, phase, cluster, tally
        self.needs = needs
        self.random = random.Random(n)
        self.client = httpx.Client(timeout=REQUEST_TIMEOUT_S)
        self.requests = 0

    def run(self, stop_at: float) -> None:
        try:
            for count in range(1_000_000):
                if time.monotonic() >= stop_at:
                    return
                self._converse(Session(f"load-{self.phase}-{self.n}-{count}"), stop_at)
        except Exception as error:  # a shopper that stops early is an error of the run, not a silent thread
            self._error(f"shopper {self.n} stopped: {type(error).__name__}: {error}")
        finally:
            self.client.close()

    def _converse(self, session: Session, stop_at: float) -> None:
        with self.tally.lock:
            self.tally.sessions.append(session)
        reply = self._request(session, "/sessions", {"session_id": session.session_id}, None)
        if reply is None:
            return
        said = self.needs[self.random.randrange(len(self.needs))]
        reply = self._request(session, f"/sessions/{session.session_id}/messages", {"text": said}, said)
        for _ in range(self.random.randint(*TURNS_PER_SESSION)):
            if reply is None or time.monotonic() >= stop_at:
                return
            question = reply.get("question")
            cards = reply.get("cards") or []
            if question and question.get("options"):
                said = question["options"][0]
            elif cards and self.random.random() < 0.5:
                item = cards[0]["item_id"]
                body = {"item_id": item, "liked": True}
                reply = self._request(
                    session, f"/sessions/{session.session_id}/feedback", body, f"thumbs up on {item}"
                )
                continue
            else:
                said = "show me others"
            reply = self._request(session, f"/sessions/{session.session_id}/messages", {"text": said}, said)

    def _request(
        self, session: Session, path: str, body: dict[str, object], said: str | None
    ) -> dict[str, object] | None:
        """POST one turn; the reply, or None when it failed (recorded as an error)."""
        import httpx

        from assistant.service import FAILURE_TEXT

        url = self.cluster.url(self.requests + self.n)
        self.requests += 1
        started = time.perf_counter()
        try:
            response = self.client.post(f"{url}/v1{path}", json=body, headers=session.headers)
        except httpx.TransportError as error:
            took = time.perf_counter() - started
            with self.tally.lock:
                self.tally.latencies.append(took)
            if url == self.cluster.servers[-1].url and self.cluster.killing.is_set():
                return self._after_kill(session, path, body, said)
            self._error(f"{session.session_id} {path}: {type(error).__name__}: {error}")
            return None
        took = time.perf_counter() - started
        with self.tally.lock:
            self.tally.latencies.append(took)
        if not 200 <= response.status_code < 300:
            self._error(f"{session.session_id} {path}: HTTP {response.status_code} {response.text[:200]}")
            return None
        document = response.json()
        if "token" in document:
            session.token = document["token"]
        reply = document["reply"] if "reply" in document and "text" not in document else document
        if reply["text"] == FAILURE_TEXT:
            self._error(f"{session.session_id} {path}: failure reply")
            return None
        self._heard(session, said, reply)
        return reply

    def _heard(self, session: Session, said: str | None, reply: dict[str, object]) -> None:
        from assistant.sessions import redact

        if said is not None:
            session.expected.append(("shopper", redact(said)))
        session.expected.append(("assistant", reply["text"]))
        session.saves += 1
        with self.tally.lock:
            self.tally.turns += 1

    def _error(self, what: str) -> None:
        with self.tally.lock:
            self.tally.errors.append(what)

    def _after_kill(
        self, session: Session, path: str, body: dict[str, object], said: str | None
    ) -> dict[str, object] | None:
        """A request the kill cut: saved whole, not at all (sent again to the survivor), or partly."""
        from assistant.sessions import redact

        self.cluster.dead.wait()
        # The killed process's connection is closed by then; a commit it had sent is done or rolled back.
        self.cluster.token_for(session)
        state = _state(self.client, self.cluster.servers[0].url, session)
        before = 0 if state is None else state["version"]
        transcript = [] if state is None else [(t["role"], t["text"]) for t in state["transcript"]]
        added = transcript[len(session.expected) :]
        if before == session.saves and transcript == session.expected:
            with self.tally.lock:
                self.tally.in_flight["not saved"] += 1
                self.tally.retries += 1
            return self._request(session, path, body, said)
        shape = ["assistant"] if said is None else ["shopper", "assistant"]
        if (
            before == session.saves + 1
            and transcript[: len(session.expected)] == session.expected
            and [role for role, _ in added] == shape
            and (said is None or added[0][1] == redact(said))
        ):
            with self.tally.lock:
                self.tally.in_flight["saved"] += 1
            session.expected += added
            session.saves += 1
            # The shopper never saw the reply; it starts a new session.
            return None
        with self.tally.lock:
            self.tally.in_flight["partly"] += 1
        self._error(f"{session.session_id} {path}: cut by the kill and saved partly (version {before})")
        return None


def _state(client, url: str, session: Session) -> dict[str, object] | None:
    response = client.get(f"{url}/v1/sessions/{session.session_id}", headers=session.headers)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return response.json()


def _check(url: str, sessions: Sequence[Session]) -> tuple[int, list[str]]:
    """Sessions intact (version and transcript as the shopper saw them), and what was wrong with the others."""
    import httpx

    intact, broken = 0, []
    with httpx.Client(timeout=REQUEST_TIMEOUT_S) as client:
        for session in sessions:
            state = _state(client, url, session)
            if state is None:
                if session.saves == 0:
                    intact += 1
                else:
                    broken.append(f"{session.session_id}: missing ({session.saves} saves expected)")
                continue
            transcript = [(turn["role"], turn["text"]) for turn in state["transcript"]]
            if state["version"] == session.saves and transcript == session.expected:
                intact += 1
            else:
                differs = next(
                    (
                        f"; entry {i}: stored {got!r:.120}, answered {want!r:.120}"
                        for i, (got, want) in enumerate(zip(transcript, session.expected, strict=False))
                        if got != want
                    ),
                    "",
                )
                broken.append(
                    f"{session.session_id}: version {state['version']} (expected {session.saves}), "
                    f"{len(transcript)} transcript entries (expected {len(session.expected)}){differs}"
                )
    return intact, broken


def _run_phase(
    phase: str, servers: list[Server], needs: Sequence[str], args: argparse.Namespace, session_secret: str
) -> dict[str, object]:
    cluster = Cluster(servers, session_secret)
    tally = Tally()
    shoppers = [Shopper(n, phase, cluster, needs, tally) for n in range(args.shoppers)]
    started = time.monotonic()
    stop_at = started + args.seconds
    threads = [threading.Thread(target=shopper.run, args=(stop_at,), daemon=True) for shopper in shoppers]
    for thread in threads:
        thread.start()
    killed_at = None
    if len(servers) > 1:
        time.sleep(max(0.0, started + args.kill_at - time.monotonic()))
        cluster.kill_last()
        killed_at = time.monotonic() - started
    for thread in threads:
        thread.join()
    wall = time.monotonic() - started
    for session in tally.sessions:
        cluster.token_for(session)
    intact, broken = _check(servers[0].url, tally.sessions)
    ms = np.array(tally.latencies) * 1000 if tally.latencies else np.array([float("nan")])
    return {
        "phase": phase,
        "processes": len(servers),
        "shoppers": args.shoppers,
        "seconds": args.seconds,
        "wall_s": wall,
        "turns": tally.turns,
        "turns_per_s": tally.turns / wall,
        "requests": len(tally.latencies),
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "p99_ms": float(np.percentile(ms, 99)),
        "errors": len(tally.errors),
        "error_samples": tally.errors[:10],
        "retries": tally.retries,
        "killed_at_s": killed_at,
        "in_flight_at_kill": tally.in_flight if killed_at is not None else None,
        "sessions_checked": len(tally.sessions),
        "sessions_intact": intact,
        "broken_samples": broken[:10],
    }


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _stack() -> Iterator[contextlib.ExitStack]:
    """Everything started is stopped on the way out, also on Ctrl+C or SIGTERM."""
    previous = signal.signal(signal.SIGTERM, _interrupted)
    try:
        with contextlib.ExitStack() as stack:
            yield stack
    finally:
        signal.signal(signal.SIGTERM, previous)


def _phase(phase: str, needs: Sequence[str], args: argparse.Namespace, base_env: dict[str, str]):
    with _stack() as stack:
        folder = Path(tempfile.mkdtemp(prefix=f"concierge-load-{phase}-"))
        stack.callback(shutil.rmtree, folder, True)
        env = dict(base_env)
        if phase == "two":
            postgres = Postgres()
            stack.callback(postgres.stop)
            postgres.start()
            env["CONCIERGE_CONVERSATION_SESSION_STORE"] = postgres.url
        servers = []
        for name in ("serve-a", "serve-b")[: 1 if phase == "one" else 2]:
            server = Server.start(name, folder, env)
            stack.callback(server.stop)
            servers.append(server)
        for server in servers:
            server.wait_until_up()
        return _run_phase(phase, servers, needs, args, env["CONCIERGE_SERVER_SESSION_SECRET"])


COLUMNS = (
    ("phase", "phase", "{}"),
    ("shoppers", "shoppers", "{}"),
    ("seconds", "seconds", "{}"),
    ("turns", "turns", "{}"),
    ("turns/s", "turns_per_s", "{:.1f}"),
    ("p50 ms", "p50_ms", "{:.0f}"),
    ("p95 ms", "p95_ms", "{:.0f}"),
    ("p99 ms", "p99_ms", "{:.0f}"),
    ("errors", "errors", "{}"),
    ("retries", "retries", "{}"),
    ("checked", "sessions_checked", "{}"),
    ("intact", "sessions_intact", "{}"),
)


def _print_table(results: Sequence[dict[str, object]]) -> None:
    print("  ".join(f"{title:>9}" for title, _, _ in COLUMNS))
    for row in results:
        print("  ".join(f"{form.format(row[key]):>9}" for _, key, form in COLUMNS))
    for row in results:
        if row["in_flight_at_kill"] is not None:
            flight = row["in_flight_at_kill"]
            print(
                f"{row['phase']}: serve-b killed (SIGKILL) at {row['killed_at_s']:.1f} s; in flight at the kill: "
                f"{flight['saved']} saved whole, {flight['not saved']} not saved (sent again), "
                f"{flight['partly']} saved partly"
            )
        for sample in row["error_samples"]:
            print(f"{row['phase']}: error: {sample}")
        for sample in row["broken_samples"]:
            print(f"{row['phase']}: not intact: {sample}")
    print(
        "think time 0; rate limits raised to 1,000,000 a minute per session and per client; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_load", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--shoppers", type=int, default=50, help="simulated shoppers talking at once")
    parser.add_argument("--seconds", type=float, default=60, help="how long the shoppers talk, per phase")
    parser.add_argument("--phase", choices=("one", "two", "both"), default="both", help="which phases to run")
    parser.add_argument(
        "--kill-at",
        type=float,
        help="seconds into phase two when the second process is killed (default: half of --seconds)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    if args.kill_at is None:
        args.kill_at = args.seconds / 2
    if not 0 < args.kill_at < args.seconds:
        parser.error(f"--kill-at must be between 0 and --seconds ({args.seconds:g}); got {args.kill_at:g}")

    from data.facets import discover_facets
    from data.load import load_catalog
    from data.settings import SAMPLE_DIR

    catalog, _ = load_catalog(SAMPLE_DIR / "items.jsonl")
    needs = fresh_needs(discover_facets(catalog), 10_000)
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        "CONCIERGE_SERVER_REQUESTS_PER_MINUTE_PER_SESSION": UNLIMITED,
        "CONCIERGE_SERVER_REQUESTS_PER_MINUTE_PER_CLIENT": UNLIMITED,
        # Both processes sign and check session tokens with one key, as a deployment of several does.
        "CONCIERGE_SERVER_SESSION_SECRET": secrets.token_urlsafe(32),
    }
    phases = ("one", "two") if args.phase == "both" else (args.phase,)
    try:
        results = [_phase(phase, needs, args, env) for phase in phases]
    except KeyboardInterrupt:
        print("interrupted; every process this run started is stopped", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        _print_table(results)
    return (
        0 if all(r["errors"] == 0 and r["sessions_intact"] == r["sessions_checked"] for r in results) else 1
    )


if __name__ == "__main__":
    sys.exit(main())
