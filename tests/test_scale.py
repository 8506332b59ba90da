"""Two ``concierge serve`` processes as one assistant: one PostgreSQL session store, one Chroma server.

A store scales out by running ``concierge serve`` several times behind a load balancer. This test does that
with real processes: a ``chroma run`` server, a throwaway PostgreSQL (``postgres_url`` in ``conftest.py``), the
small garden-and-kitchen store of ``test_other_catalog.py`` indexed into the server by ``concierge build``, and
two ``concierge serve`` on two free ports. Each serve has its own ``--artifacts`` folder, as on two machines:
what must be shared is named in the settings (the session store, the Chroma server), and nothing else on disk is.
No reranker is trained, so both rank with the hybrid retrieval.

One conversation goes back and forth between the two processes (every request on the other one than the last),
and two conversations run at once from threads, one on each process first.

Two tests guard bugs found this way: a serving process once never read the Chroma server (it embedded the
catalog into a store of its own under its artifacts folder), and two processes starting at once on an empty
database raced to create the session table.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import chroma_cli, free_port
from tests.test_other_catalog import write_store

START_TIMEOUT_S = 120
STOP_TIMEOUT_S = 15
REQUEST_TIMEOUT_S = 60


@dataclass
class Server:
    """A started process, where it answers and where its output goes."""

    name: str
    process: subprocess.Popen
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-3000:]

    def wait_until_up(self, probe: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(self.url + probe, timeout=2):
                    return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"{self.name} did not start (exit {self.process.poll()}):\n{self.output()}")
                time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _start(name: str, argv: list[str], port: int, folder: Path, env: dict[str, str]) -> Server:
    log = folder / f"{name}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT, cwd=folder, env=env)
    return Server(name, process, f"http://127.0.0.1:{port}", log)


def _new_database(postgres_url: str, name: str) -> str:
    """A new, empty database on the test's PostgreSQL server, its URL (other tests drop tables in the default)."""
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    return f"{postgres_url.rsplit('/', 1)[0]}/{name}"


@dataclass
class Cluster:
    """The two serving processes' addresses, their artifacts folders, the build's, and the store's garden items."""

    a: str
    b: str
    artifacts: tuple[Path, Path]
    build: subprocess.CompletedProcess
    build_artifacts: Path
    chroma: str
    garden: list[str]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, postgres_url: str) -> Iterator[Cluster]:
    chroma = chroma_cli()
    folder = tmp_path_factory.mktemp("scale")
    catalog, interactions = write_store(folder)
    chroma_port = free_port()
    # What every process shares is named in its environment: the Chroma server and the session store.
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "CONCIERGE_RETRIEVAL_CHROMA_HOST": "127.0.0.1",
        "CONCIERGE_RETRIEVAL_CHROMA_PORT": str(chroma_port),
        "CONCIERGE_CONVERSATION_SESSION_STORE": _new_database(postgres_url, "scale"),
        "CONCIERGE_LLM_PROVIDER": "none",
        # The key both processes sign session tokens with: a token one gave opens the session on the other.
        "CONCIERGE_SERVER_SESSION_SECRET": "the scale test's shared key",
    }
    data = ["--catalog", str(catalog), "--interactions", str(interactions)]
    concierge = [sys.executable, "-m", "ui.cli"]
    build_artifacts = folder / "build"
    chroma_run = [chroma, "run", "--path", str(folder / "chroma"), "--host", "127.0.0.1"]
    started: list[Server] = []
    try:
        started.append(_start("chroma", [*chroma_run, "--port", str(chroma_port)], chroma_port, folder, env))
        started[0].wait_until_up("/api/v2/heartbeat")
        build = subprocess.run(
            [
                *concierge,
                "build",
                *data,
                "--artifacts",
                str(build_artifacts),
                "--provider",
                "none",
                "--quiet",
            ],
            capture_output=True,
            text=True,
            cwd=folder,
            env=env,
            timeout=300,
        )
        assert build.returncode == 0, build.stderr[-3000:]
        artifacts = (folder / "serve-a", folder / "serve-b")
        # Both at once, on an empty database (see test_first_starts_at_once_create_the_session_table_once).
        for name, where in zip("ab", artifacts, strict=True):
            port = free_port()
            argv = [*concierge, "serve", *data, "--artifacts", str(where), "--port", str(port)]
            started.append(_start(f"serve-{name}", argv, port, folder, env))
        for server in started[1:]:
            server.wait_until_up("/openapi.json")
        items = [json.loads(line) for line in catalog.read_text(encoding="utf-8").splitlines()]
        garden = sorted(item["item_id"] for item in items if item["categories"][0] == "Garden")
        yield Cluster(
            started[1].url, started[2].url, artifacts, build, build_artifacts, started[0].url, garden
        )
    finally:
        for server in reversed(started):
            server.stop()


def _call(
    base: str, method: str, path: str, body: dict[str, object] | None = None, token: str = ""
) -> dict[str, object]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {token}"} if token else {})
    request = urllib.request.Request(f"{base}/v1{path}", data=data, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
        return json.loads(response.read())


class Conversation:
    """A session driven through the API, recording the transcript it expects and every card shown."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self.expected: list[tuple[str, str]] = []
        self.shown: list[str] = []
        self.requests = 0
        self.token = ""

    def _heard(self, said: str | None, reply: dict[str, object]) -> dict[str, object]:
        self.requests += 1
        if said is not None:
            self.expected.append(("shopper", said))
        self.expected.append(("assistant", reply["text"]))
        self.shown += [card["item_id"] for card in reply["cards"]]
        return reply

    def start(self, base: str) -> dict[str, object]:
        created = _call(base, "POST", "/sessions", {"session_id": self.session_id})
        assert created["session_id"] == self.session_id
        self.token = created["token"]
        return self._heard(None, created["reply"])

    def say(self, base: str, text: str) -> dict[str, object]:
        return self._heard(
            text, _call(base, "POST", f"/sessions/{self.session_id}/messages", {"text": text}, self.token)
        )

    def like(self, base: str, item_id: str) -> dict[str, object]:
        body = {"item_id": item_id, "liked": True}
        return self._heard(
            f"thumbs up on {item_id}",
            _call(base, "POST", f"/sessions/{self.session_id}/feedback", body, self.token),
        )

    def check_state(self, *bases: str) -> dict[str, object]:
        """Every process returns the same state: one save per request, the whole transcript in order."""
        states = [_call(base, "GET", f"/sessions/{self.session_id}", token=self.token) for base in bases]
        for state in states:
            assert state["version"] == self.requests
            assert [(turn["role"], turn["text"]) for turn in state["transcript"]] == self.expected
            assert state == states[0]
        return states[0]


GARDEN = {"Pruners", "Hoses", "Sprinklers"}
KITCHEN = {"Frying Pans", "Stock Pots", "Knives"}


def _asks(reply: dict[str, object]) -> list[str]:
    """The options of the question a reply asks (offered as quick replies, with "No preference")."""
    question = reply["question"]
    assert question is not None and question["options"], reply
    assert reply["options"] == [*question["options"], "No preference"], reply
    return question["options"]


def _categories(reply: dict[str, object]) -> set[str]:
    assert reply["cards"], reply
    return {card["category"] for card in reply["cards"]}


def test_the_build_writes_the_index_into_the_chroma_server(cluster: Cluster) -> None:
    assert "items: 36 added" in cluster.build.stdout, cluster.build.stdout
    collections = f"{cluster.chroma}/api/v2/tenants/default_tenant/databases/default_database/collections"
    with urllib.request.urlopen(collections, timeout=REQUEST_TIMEOUT_S) as response:
        found = {collection["name"]: collection["id"] for collection in json.loads(response.read())}
    with urllib.request.urlopen(
        f"{collections}/{found['items']}/count", timeout=REQUEST_TIMEOUT_S
    ) as response:
        assert json.loads(response.read()) == 36
    # On the server, not in an embedded store under the build's artifacts folder.
    assert not (cluster.build_artifacts / "chroma").exists()


def test_one_conversation_alternating_between_two_processes(cluster: Cluster) -> None:
    a, b = cluster.a, cluster.b
    talk = Conversation("shared-conversation")

    greeting = talk.start(a)
    assert set(_asks(greeting)) == {"Garden", "Kitchen"} and not greeting["cards"]
    garden = talk.say(b, "Garden")
    _asks(garden)
    assert _categories(garden) <= GARDEN
    talk.check_state(a, b)

    open_minded = talk.say(a, "No preference")
    _asks(open_minded)
    assert _categories(open_minded) <= GARDEN
    liked = open_minded["cards"][0]["item_id"]
    thumbs_up = talk.like(b, liked)
    assert _categories(thumbs_up) <= GARDEN and "Show others" in thumbs_up["options"]
    others = talk.say(a, "show me others")
    assert _categories(others) <= GARDEN and "Show others" in others["options"]
    # Every garden item has been on a card exactly once, though every other turn ran in the other process.
    assert sorted(talk.shown) == cluster.garden
    exhausted = talk.say(b, "show me others")
    assert exhausted["text"].startswith("I've shown you everything") and not exhausted["cards"]
    state = talk.check_state(a, b)
    assert state["profile"]["liked"] == [liked]
    assert state["profile"]["shown"] == talk.shown
    assert [slot["value"] for slot in state["profile"]["slots"]] == ["Garden"]


def test_two_conversations_at_once_through_both_processes_stay_apart(cluster: Cluster) -> None:
    talks = {"Garden": Conversation("at-once-garden"), "Kitchen": Conversation("at-once-kitchen")}
    order = {"Garden": (cluster.a, cluster.b), "Kitchen": (cluster.b, cluster.a)}
    replies: dict[str, list[dict[str, object]]] = {}
    failures: list[BaseException] = []
    barrier = threading.Barrier(len(talks))

    def converse(department: str) -> None:
        first, second = order[department]
        talk = talks[department]
        try:
            barrier.wait(timeout=REQUEST_TIMEOUT_S)
            replies[department] = [
                talk.start(first),
                talk.say(second, department),
                talk.say(first, "No preference"),
                talk.say(second, "show me others"),
            ]
        except BaseException as error:  # re-raised below, in the test's own thread
            failures.append(error)

    threads = [threading.Thread(target=converse, args=(department,)) for department in talks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=4 * REQUEST_TIMEOUT_S)
    if failures:
        raise failures[0]
    for department, kinds in (("Garden", GARDEN), ("Kitchen", KITCHEN)):
        talk = talks[department]
        for reply in replies[department][1:]:
            assert _categories(reply) <= kinds, (department, reply)
        state = talk.check_state(cluster.a, cluster.b)
        assert [slot["value"] for slot in state["profile"]["slots"]] == [department]
        assert state["profile"]["shown"] == talk.shown and len(set(talk.shown)) == len(talk.shown)
    assert not set(talks["Garden"].shown) & set(talks["Kitchen"].shown)


def test_serving_processes_read_the_shared_chroma_server(cluster: Cluster) -> None:
    for artifacts in cluster.artifacts:
        assert not list(artifacts.rglob("chroma.sqlite3")), f"an embedded Chroma store in {artifacts}"


def test_first_starts_at_once_create_the_session_table_once(postgres_url: str) -> None:
    import psycopg

    from assistant.sessions import PostgresStore

    starts = 4
    # What PostgreSQL raises in the one who loses a race to create the same table or index.
    lost_the_race = (
        psycopg.errors.UniqueViolation,
        psycopg.errors.DuplicateObject,
        psycopg.errors.DuplicateTable,
    )
    failures: list[BaseException] = []
    started: list[int] = []
    # A new database a round: the race is only on the first start, before the table exists. It is lost in most
    # rounds on 2 cores; five rounds make a pass by luck about one in a thousand.
    for round_ in range(5):
        url = _new_database(postgres_url, f"first_start_{round_}")
        barrier = threading.Barrier(starts)

        def start(url: str = url, barrier: threading.Barrier = barrier) -> None:
            try:
                barrier.wait(timeout=REQUEST_TIMEOUT_S)
                PostgresStore(url)
                started.append(1)
            except Exception as error:  # collected and raised in the test's own thread
                failures.append(error)

        threads = [threading.Thread(target=start) for _ in range(starts)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=REQUEST_TIMEOUT_S)
    unexpected = [error for error in failures if not isinstance(error, lost_the_race)]
    if unexpected:
        raise unexpected[0]
    assert not failures, f"{len(failures)} of {5 * starts} first starts failed: {failures[0]}"
    assert len(started) == 5 * starts
