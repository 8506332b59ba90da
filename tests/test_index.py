"""The Chroma index: the contract offline, incremental sync, interrupted builds, clear errors, and HNSW recall on
the real catalog against exact search."""

from __future__ import annotations

import fcntl
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data.schema import Catalog, Interactions, Item, Price
from retrieval import index as index_module
from retrieval.embeddings import get_embedder, item_text
from retrieval.errors import (
    REBUILD_COMMAND,
    IndexCorruptError,
    IndexLockedError,
    IndexMismatchError,
    IndexMissingError,
)
from retrieval.filters import FilterIndex, Filters
from retrieval.index import DESCRIPTIONS, CollectionChanges, VectorIndex, build_index, where_filter
from retrieval.store import LOCK_FILE
from tests.retrieval_fixtures import (
    CountingEmbedder,
    HashEmbedder,
    Interrupted,
    embedded_settings,
    small_catalog,
)

REPO = Path(__file__).resolve().parent.parent


def _hash_catalog(n: int) -> Catalog:
    return Catalog([Item(f"i{i}", f"item number {i}") for i in range(n)])


# --- Offline: the contract with the real model and no network at all -----------------------------------------

_OFFLINE_CHILD = """
import socket
import sys
import threading
import time
from pathlib import Path

def refuse(*args, **kwargs):
    raise OSError("network disabled by the test")

real_connect = socket.socket.connect
def connect(self, address):
    if self.family == socket.AF_UNIX:
        return real_connect(self, address)
    refuse()

socket.socket.connect = connect
socket.socket.connect_ex = connect
socket.create_connection = refuse
socket.getaddrinfo = refuse

from chromadb.utils.embedding_functions.onnx_mini_lm_l6_v2 import ONNXMiniLM_L6_V2

def forbidden(*args, **kwargs):
    raise AssertionError("Chroma tried to use its default ONNX embedding model")

ONNXMiniLM_L6_V2.__call__ = forbidden
ONNXMiniLM_L6_V2._download_model_if_not_exists = forbidden

from retrieval.embeddings import get_embedder
from tests.retrieval_fixtures import check_index_contract, embedded_settings

check_index_contract(embedded_settings(Path(sys.argv[1])), get_embedder(64))
print("contract passed offline")
"""


def _no_network_prefix() -> list[str]:
    """``unshare -rn`` (a network namespace with no interface up) where the kernel allows it, else nothing: the
    child's own socket guard still refuses every connection made from Python."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-rn", "true"], capture_output=True).returncode == 0:
        return [unshare, "-rn"]
    return []


def test_contract_holds_offline_without_chroma_default_model(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "HF_HOME": str(home / "hf"), "PYTHONPATH": str(REPO)}
    command = [*_no_network_prefix(), sys.executable, "-c", _OFFLINE_CHILD, str(tmp_path / "artifacts")]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "contract passed offline" in done.stdout
    # Nothing was downloaded: neither Chroma's ONNX model nor anything from a model hub.
    assert not (home / ".cache").exists()
    assert not (home / "hf").exists()


# --- Sync logic with a stand-in model -------------------------------------------------------------------------


def test_sync_embeds_exactly_what_changed(tmp_path: Path) -> None:
    config = embedded_settings(tmp_path)
    catalog = small_catalog()
    first = CountingEmbedder(HashEmbedder())
    build_index(config, catalog, {"tape": "holds tape"}, progress=False, embedder=first)
    assert len(first.texts) == 11

    items = list(catalog)
    items[1] = replace(items[1], title="Canon PG-243 Black Ink")  # text changes
    items[2] = replace(items[2], price=None)  # metadata only: the price key must disappear
    items[4] = replace(items[4], price=Price(13.0, "USD"))  # metadata only
    del items[6]  # "tape": gone from both collections
    items.append(Item("new", "Desk Lamp, LED", brand="TaoTronics"))
    second = CountingEmbedder(HashEmbedder())
    report = build_index(config, Catalog(items), {"new": "lights a desk"}, progress=False, embedder=second)
    assert report.items == CollectionChanges(added=1, updated=1, relabelled=2, deleted=1, unchanged=6)
    assert report.descriptions == CollectionChanges(added=1, deleted=1)
    assert sorted(second.texts) == sorted(
        [item_text(items[1]), item_text(items[-1]), item_text(items[-1], "lights a desk")]
    )
    with VectorIndex.open(config, embedder=HashEmbedder()) as index:
        query = HashEmbedder().embed(["x"])
        priced = index.query(query, 20, where=where_filter(Filters(min_price=0.0)))[0]
        assert "toner-brother" not in priced.ids
        assert "paper-photo" in index.query(query, 20, where=where_filter(Filters(min_price=13.0)))[0].ids


def test_an_interrupted_sync_leaves_a_usable_index_and_the_next_one_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index_module, "_WRITE_BATCH", 3)
    config = embedded_settings(tmp_path)
    catalog = _hash_catalog(10)
    failing = CountingEmbedder(HashEmbedder(), fail_on_call=3)
    with pytest.raises(Interrupted):
        build_index(config, catalog, {}, progress=False, embedder=failing)
    with VectorIndex.open(config, embedder=HashEmbedder()) as index:
        assert index.count() == 6
        assert index.query(HashEmbedder().embed(["item number 4"]), 1)[0].ids == ["i4"]
    resumed = CountingEmbedder(HashEmbedder())
    report = build_index(config, catalog, {}, progress=False, embedder=resumed)
    assert report.items == CollectionChanges(added=4, unchanged=6)
    assert resumed.texts == [item_text(item) for item in list(catalog)[6:]]


_KILLED_CHILD = """
import sys
import threading
import time
import time
from pathlib import Path

from data.schema import Catalog, Item
from retrieval import index as index_module
from retrieval.index import build_index
from tests.retrieval_fixtures import HashEmbedder, embedded_settings

class Stalling(HashEmbedder):
    calls = 0

    def embed(self, texts):
        self.calls += 1
        if self.calls == 4:
            print("stalled", flush=True)
            time.sleep(600)
        return super().embed(texts)

index_module._WRITE_BATCH = 50
catalog = Catalog([Item(f"i{i}", f"item number {i}") for i in range(1000)])
build_index(embedded_settings(Path(sys.argv[1])), catalog, {}, progress=False, embedder=Stalling())
"""


def test_a_killed_build_holds_the_lock_while_alive_and_the_next_build_resumes(tmp_path: Path) -> None:
    config = embedded_settings(tmp_path)
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_CHILD, str(tmp_path)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stderr is not None
        # Three batches of 50 are written; the fourth embedding call stalls until the child is killed.
        assert child.stdout.readline() == "stalled\n", child.stderr.read()
        with pytest.raises(IndexLockedError, match=f"pid {child.pid}"):
            build_index(config, _hash_catalog(1000), {}, progress=False, embedder=HashEmbedder())
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.communicate(timeout=30)
    with VectorIndex.open(config, embedder=HashEmbedder()) as index:
        assert index.count() == 150
    resumed = CountingEmbedder(HashEmbedder())
    report = build_index(config, _hash_catalog(1000), {}, progress=False, embedder=resumed)
    assert report.items == CollectionChanges(added=850, unchanged=150)
    assert resumed.texts == [f"item number {i}" for i in range(150, 1000)]
    with VectorIndex.open(config, embedder=HashEmbedder()) as index:
        assert index.count() == 1000


# --- Errors a person can act on -------------------------------------------------------------------------------


def test_a_missing_index_says_how_to_build_it(tmp_path: Path) -> None:
    with pytest.raises(IndexMissingError, match="run `concierge index`"):
        VectorIndex.open(embedded_settings(tmp_path), embedder=HashEmbedder())
    assert not (tmp_path / "chroma").exists()


def test_an_index_built_with_another_model_is_refused_until_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = embedded_settings(tmp_path)
    build_index(config, small_catalog(), {}, progress=False, embedder=HashEmbedder("test/hash", 16))
    with pytest.raises(IndexMismatchError) as raised:
        VectorIndex.open(config)
    message = str(raised.value)
    assert "test/hash (dimension 16" in message
    assert "sentence-transformers/all-MiniLM-L6-v2 (dimension 384" in message
    assert f"run `{REBUILD_COMMAND}`" in message
    with pytest.raises(IndexMismatchError, match="dimension 8"):
        build_index(config, small_catalog(), {}, progress=False, embedder=HashEmbedder("test/hash", 8))
    current = index_module.SCHEMA_VERSION
    monkeypatch.setattr(index_module, "SCHEMA_VERSION", current + 1)
    with pytest.raises(IndexMismatchError, match=f"schema version {current}\\)"):
        VectorIndex.open(config, embedder=HashEmbedder("test/hash", 16))
    report = build_index(
        config, small_catalog(), {}, rebuild=True, progress=False, embedder=HashEmbedder("other", 8)
    )
    assert report.items.added == 10
    with VectorIndex.open(config, embedder=HashEmbedder("other", 8)) as index:
        assert index.count() == 10


def test_a_corrupt_index_says_how_to_rebuild_and_rebuild_repairs_it(tmp_path: Path) -> None:
    config = embedded_settings(tmp_path)
    (tmp_path / "chroma").mkdir()
    (tmp_path / "chroma" / "chroma.sqlite3").write_bytes(b"not a database " * 100)
    with pytest.raises(IndexCorruptError, match=f"run `{REBUILD_COMMAND}`"):
        VectorIndex.open(config, embedder=HashEmbedder())
    with pytest.raises(IndexCorruptError):
        build_index(config, small_catalog(), {}, progress=False, embedder=HashEmbedder())
    report = build_index(config, small_catalog(), {}, rebuild=True, progress=False, embedder=HashEmbedder())
    assert report.items.added == 10
    with VectorIndex.open(config, embedder=HashEmbedder()) as index:
        assert index.count() == 10


def test_damaged_vector_files_are_reported_and_rebuild_repairs_them(tmp_path: Path) -> None:
    config = embedded_settings(tmp_path)
    # Past Chroma's sync threshold (1,000 records), so that the HNSW graph is written to files.
    build_index(config, _hash_catalog(1500), {}, progress=False, embedder=HashEmbedder())
    graphs = list((tmp_path / "chroma").glob("*/*.bin"))
    assert graphs
    for graph in graphs:
        graph.write_bytes(b"\x01" * 10)
    with (
        pytest.raises(IndexCorruptError, match=f"run `{REBUILD_COMMAND}`"),
        VectorIndex.open(config, embedder=HashEmbedder()) as index,
    ):
        index.query(HashEmbedder().embed(["item number 3"]), 5)
    report = build_index(
        config, _hash_catalog(1500), {}, rebuild=True, progress=False, embedder=HashEmbedder()
    )
    assert report.items.added == 1500
    with VectorIndex.open(config, embedder=HashEmbedder()) as index:
        assert index.query(HashEmbedder().embed(["item number 3"]), 1)[0].ids == ["i3"]


def test_a_second_writer_is_refused_while_readers_carry_on(tmp_path: Path) -> None:
    config = embedded_settings(tmp_path)
    build_index(config, small_catalog(), {}, progress=False, embedder=HashEmbedder())
    # flock locks belong to an open file, so a second open of the lock file stands for another process.
    with (tmp_path / "chroma" / LOCK_FILE).open("a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("4242")
        held.flush()
        with pytest.raises(IndexLockedError, match="another process \\(pid 4242"):
            build_index(config, small_catalog(), {}, progress=False, embedder=HashEmbedder())
        with VectorIndex.open(config, embedder=HashEmbedder()) as index:
            assert index.count() == 10
            with pytest.raises(IndexLockedError):
                index.sync(small_catalog(), {}, progress=False)
    report = build_index(config, small_catalog(), {}, progress=False, embedder=HashEmbedder())
    assert report.items.unchanged == 10


def test_a_writer_that_waits_gets_the_lock_when_the_holder_lets_go(tmp_path: Path) -> None:
    config = embedded_settings(tmp_path)
    build_index(config, small_catalog(), {}, progress=False, embedder=HashEmbedder())
    held = (tmp_path / "chroma" / LOCK_FILE).open("a+")
    fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
    held.write("4242")
    held.flush()
    with pytest.raises(IndexLockedError, match=r"pid 4242.*after waiting 0\.3 s"):
        build_index(config, small_catalog(), {}, progress=False, embedder=HashEmbedder(), wait_for_lock=0.3)
    release = threading.Timer(0.5, held.close)
    release.start()
    started = time.monotonic()
    report = build_index(
        config, small_catalog(), {}, progress=False, embedder=HashEmbedder(), wait_for_lock=30
    )
    assert report.items.unchanged == 10 and 0.4 < time.monotonic() - started < 30
    release.join()


def test_query_checks_its_input(tmp_path: Path) -> None:
    config = embedded_settings(tmp_path)
    build_index(config, small_catalog(), {}, progress=False, embedder=HashEmbedder())
    with VectorIndex.open(config, embedder=HashEmbedder()) as index:
        one = HashEmbedder().embed([item_text(small_catalog()["stapler"])])[0]
        hits = index.query(one, 3)
        assert (
            len(hits) == 1 and hits[0].ids[0] == "stapler" and hits[0].scores[0] == pytest.approx(1, abs=1e-5)
        )
        assert index.query(one, 0)[0].ids == []
        assert index.query(one, 50)[0].ids.__len__() == 10
        assert index.query(one, 5, collection=DESCRIPTIONS)[0].ids == []
        with pytest.raises(ValueError, match=r"shape \(n, 16\)"):
            index.query(np.ones((2, 5), dtype=np.float32), 3)
        with pytest.raises(ValueError, match="unknown collection"):
            index.query(one, 3, collection="titles")


# --- Chroma's where filter agrees with the numpy filter mask of retrieval.filters ------------------------------

_BRANDS = ("HP", "Canon", "Epson", "")
_PATHS = (("Ink", "Black"), ("Ink", "Color"), ("Ink",), ("Paper", "Copy"), ())


def _filter_catalog() -> Catalog:
    items = [
        Item(
            f"f{i}",
            # Half the unbranded items open their title with a brand other items carry: Canon is their maker.
            f"Canon filter item {i}" if i % 8 == 7 else f"filter item {i}",
            brand=_BRANDS[i % 4],
            categories=_PATHS[i % 5],
            price=Price(float(i % 7) * 5.0, "USD") if i % 3 else None,
        )
        for i in range(60)
    ]
    return Catalog(items)


@pytest.fixture(scope="module")
def filter_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VectorIndex]:
    config = embedded_settings(tmp_path_factory.mktemp("filters"))
    build_index(config, _filter_catalog(), {}, progress=False, embedder=HashEmbedder())
    with VectorIndex.open(config, embedder=HashEmbedder()) as index:
        yield index


_category_keys = st.sampled_from(["Ink", "Ink > Black", "Ink > Color", "Paper", "Paper > Copy", "Toner"])
_brand_keys = st.frozensets(st.sampled_from(["hp", "canon", "epson", "brother", ""]), max_size=2)
_prices = st.none() | st.sampled_from([0.0, 5.0, 12.5, 20.0, 30.0])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    category=st.none() | _category_keys,
    exclude_categories=st.frozensets(_category_keys, max_size=2),
    brands=_brand_keys,
    exclude_brands=_brand_keys,
    bounds=st.tuples(_prices, _prices).map(lambda pair: sorted(pair, key=lambda p: -1 if p is None else p)),
    exclude_ids=st.frozensets(st.sampled_from([f"f{i}" for i in range(60)]), max_size=5),
)
def test_where_filter_agrees_with_the_filter_mask_and_leaves_category_exclusions_to_it(
    filter_index: VectorIndex,
    category: str | None,
    exclude_categories: frozenset[str],
    brands: frozenset[str],
    exclude_brands: frozenset[str],
    bounds: list[float | None],
    exclude_ids: frozenset[str],
) -> None:
    low, high = bounds
    filters = Filters(
        category=category,
        exclude_categories=exclude_categories,
        brands=brands,
        exclude_brands=exclude_brands,
        min_price=low,
        max_price=high,
        exclude_ids=exclude_ids,
    )
    catalog = _filter_catalog()

    def allowed(mask_filters: Filters) -> set[str]:
        mask = FilterIndex(catalog).mask(mask_filters)
        return {item_id for item_id, keep in zip(catalog.positions, mask, strict=True) if keep}

    query = HashEmbedder().embed(["anything"])
    found = set(filter_index.query(query, 60, where=where_filter(filters))[0].ids)
    # Left to the mask (where_filter's docstring): category exclusions and the makers of unbranded items. Exact
    # without them, a superset with.
    unbranded = {item.item_id for item in catalog if not item.brand}
    without_categories = allowed(replace(filters, exclude_categories=frozenset()))
    assert found >= allowed(filters)
    assert found - unbranded == without_categories - unbranded
    if not filters.brands and not filters.exclude_brands:
        assert found == without_categories


# --- The real catalog --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def office_catalog(office: tuple[Catalog, Interactions]) -> Catalog:
    """The real sample with descriptions left out: real titles, brands and categories through the real model, at
    a third of the model time (benchmarks/bench_index.py measures the full texts)."""
    return Catalog([replace(item, description="") for item in office[0]])


@pytest.fixture(scope="session")
def office_embedder() -> CountingEmbedder:
    """The real model, remembering every vector, so that rebuilding the real catalog costs no model time."""
    return CountingEmbedder(get_embedder(64))


@pytest.fixture(scope="session")
def office_index(
    tmp_path_factory: pytest.TempPathFactory, office_catalog: Catalog, office_embedder: CountingEmbedder
) -> Iterator[VectorIndex]:
    config = embedded_settings(tmp_path_factory.mktemp("office"))
    report = build_index(config, office_catalog, {}, progress=False, embedder=office_embedder)
    assert report.items.added == len(office_catalog) == 2417
    with VectorIndex.open(config, embedder=office_embedder) as index:
        yield index


def _recall(index: VectorIndex, queries: np.ndarray, k: int, where: dict | None, allowed: set[str]) -> float:
    ids, vectors = index.vectors()
    keep = np.array([item_id in allowed for item_id in ids])
    ids, vectors = [i for i, kept in zip(ids, keep, strict=True) if kept], vectors[keep]
    exact = np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :k]
    found = index.query(queries, k, where=where)
    hits = [
        len(set(h.ids) & {ids[j] for j in row}) / min(k, len(ids))
        for h, row in zip(found, exact, strict=True)
    ]
    return float(np.mean(hits))


def test_hnsw_recall_at_100_against_exact_search_on_real_embeddings(
    office_index: VectorIndex, office_catalog: Catalog, office_embedder: CountingEmbedder
) -> None:
    catalog = office_catalog
    titles = [item.title for item in random.Random(13).sample(catalog.items, 200)]
    queries = office_embedder.inner.embed(titles)
    assert _recall(office_index, queries, 100, None, set(catalog.positions)) >= 0.99
    # A selective filter (one second-level category) must not cost recall either.
    top = max(
        {" > ".join(item.categories[:2]) for item in catalog if len(item.categories) >= 2},
        key=lambda key: sum(" > ".join(item.categories[:2]) == key for item in catalog),
    )
    filters = Filters(category=top)
    allowed = {item.item_id for item in catalog if " > ".join(item.categories[:2]) == top}
    assert _recall(office_index, queries[:50], 100, where_filter(filters), allowed) >= 0.99


@pytest.mark.usefixtures("office_index")  # it fills the embedder's memory: the base build below is model-free
def test_one_percent_edited_plus_removed_and_new_items_embed_exactly_those(
    tmp_path: Path, office_catalog: Catalog, office_embedder: CountingEmbedder
) -> None:
    catalog = office_catalog
    config = embedded_settings(tmp_path)
    build_index(config, catalog, {}, progress=False, embedder=office_embedder.fresh())
    rng = random.Random(7)
    items = list(catalog)
    edited = rng.sample(range(len(items)), 24)
    for position in edited:
        items[position] = replace(items[position], title=items[position].title + ", Value Pack")
    removed = set(rng.sample(sorted(set(range(len(items))) - set(edited)), 10))
    kept = [item for position, item in enumerate(items) if position not in removed]
    new = [Item(f"new-{n}", f"Recycled Kraft Envelopes, {n * 25} Count", brand="Mead") for n in range(1, 11)]
    counter = office_embedder.fresh()
    report = build_index(config, Catalog(kept + new), {}, progress=False, embedder=counter)
    assert report.items == CollectionChanges(added=10, updated=24, deleted=10, unchanged=2417 - 24 - 10)
    assert sorted(counter.texts) == sorted(
        [item_text(items[p]) for p in edited] + [item_text(i) for i in new]
    )
    with VectorIndex.open(config, embedder=office_embedder) as index:
        assert index.count() == 2417
        query = counter.inner.embed(["kraft envelopes"])
        assert index.query(query, 10)[0].ids[0].startswith("new-")


def test_the_demo_rebuilds_an_index_from_an_older_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ui.demo import build_indexes

    config = embedded_settings(tmp_path)
    current = index_module.SCHEMA_VERSION
    monkeypatch.setattr(index_module, "SCHEMA_VERSION", current - 1)
    build_index(config, small_catalog(), {}, progress=False)
    monkeypatch.setattr(index_module, "SCHEMA_VERSION", current)
    line = build_indexes(config, small_catalog())
    assert "rebuilt (the old index was made by another version)" in line and "10 added" in line
    with VectorIndex.open(config) as index:
        assert index.count() == 10
    assert "rebuilt" not in build_indexes(config, small_catalog())
    # Without replace_outdated the same old index is refused, as `concierge index` does.
    monkeypatch.setattr(index_module, "SCHEMA_VERSION", current + 1)
    with pytest.raises(IndexMismatchError):
        build_index(config, small_catalog(), {}, progress=False)
