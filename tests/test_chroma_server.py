"""The index on a real Chroma server (`chroma run`, reached through HttpClient): the same contract as embedded."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from data.settings import PathSettings
from retrieval.embeddings import get_embedder
from retrieval.errors import IndexUnavailableError
from retrieval.index import VectorIndex, build_index
from tests.retrieval_fixtures import HashEmbedder, check_index_contract, server_settings, small_catalog
from tests.servers import chroma_cli, free_port

START_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def chroma_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A Chroma server on a free local port with its own data folder, stopped after the module."""
    folder = tmp_path_factory.mktemp("chroma-server")
    port = free_port()
    log = (folder / "server.log").open("wb")
    server = subprocess.Popen(
        [chroma_cli(), "run", "--path", str(folder / "data"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"chroma run did not start: {(folder / 'server.log').read_text()[-2000:]}")
                time.sleep(0.1)
        yield port
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def test_contract_holds_on_a_chroma_server(chroma_port: int) -> None:
    check_index_contract(server_settings(chroma_port), get_embedder(64))


def test_a_server_index_leaves_the_artifacts_folder_alone(chroma_port: int, tmp_path: Path) -> None:
    config = replace(server_settings(chroma_port), paths=PathSettings(artifacts=tmp_path))
    report = build_index(config, small_catalog(), {}, rebuild=True, progress=False, embedder=HashEmbedder())
    assert report.items.added == 10
    with VectorIndex.open(config, embedder=HashEmbedder()) as index:
        assert index.location == f"the Chroma server at http://127.0.0.1:{chroma_port}"
        assert index.count() == 10
    # No embedded store and no lock file: the server serialises writes itself.
    assert list(tmp_path.iterdir()) == []


def test_an_unreachable_server_says_how_to_start_one() -> None:
    config = server_settings(free_port())
    with pytest.raises(IndexUnavailableError, match="chroma run --path"):
        VectorIndex.open(config, embedder=HashEmbedder())
