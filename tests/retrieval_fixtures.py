"""Shared pieces of the retrieval tests: test embedders, a small hand-built catalog, and the index contract that
the embedded store and a Chroma server must both pass."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from data.schema import Catalog, Item, Price
from data.settings import PathSettings, RetrievalSettings, Settings
from retrieval.embeddings import TextEmbedder, item_text
from retrieval.filters import Filters
from retrieval.index import DESCRIPTIONS, ITEMS, CollectionChanges, VectorIndex, build_index, where_filter
from retrieval.lexical import tokenize


class WordsEmbedder:
    """A stand-in bi-encoder (no model to load): hashed search tokens (:func:`retrieval.lexical.tokenize`),
    L2-normalised, so that texts sharing words are near. Counts the texts it embeds."""

    name = "test/words"
    dimension = 1024

    def __init__(self) -> None:
        self.embedded = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.embedded += len(texts)
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for token in tokenize(text):
                digest = hashlib.blake2b(token.encode(), digest_size=4).digest()
                vectors[row, int.from_bytes(digest, "little") % self.dimension] += 1.0
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms == 0, 1.0, norms)


def embedded_settings(folder: Path) -> Settings:
    """Settings whose embedded index lives under ``folder``."""
    return Settings(paths=PathSettings(artifacts=folder))


def server_settings(port: int) -> Settings:
    return Settings(retrieval=RetrievalSettings(chroma_host="127.0.0.1", chroma_port=port))


class HashEmbedder:
    """A stand-in model: a vector seeded by each text's hash (equal texts, equal vectors), no model to load."""

    def __init__(self, name: str = "test/hash", dimension: int = 16) -> None:
        self.name = name
        self.dimension = dimension

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
            row = np.random.default_rng(seed).normal(size=self.dimension)
            rows.append(row / np.linalg.norm(row))
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dimension)


class Interrupted(Exception):
    """Raised by :class:`CountingEmbedder` to stop a sync part-way."""


class CountingEmbedder:
    """Wraps a model: counts the texts it embeds, remembers vectors (so that rebuilding an index in a test costs
    no model time), and can fail on a given call to interrupt a sync."""

    def __init__(self, inner: TextEmbedder, *, fail_on_call: int | None = None) -> None:
        self.inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self.texts: list[str] = []
        self.calls = 0
        self.fail_on_call = fail_on_call
        self._memory: dict[str, np.ndarray] = {}

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise Interrupted(f"interrupted on embed call {self.calls}")
        self.texts.extend(texts)
        missing = list(dict.fromkeys(text for text in texts if text not in self._memory))
        if missing:
            self._memory.update(zip(missing, self.inner.embed(missing), strict=True))
        return np.array([self._memory[text] for text in texts], dtype=np.float32).reshape(
            len(texts), self.dimension
        )

    def fresh(self, *, fail_on_call: int | None = None) -> CountingEmbedder:
        """A new counter sharing this one's remembered vectors."""
        other = CountingEmbedder(self.inner, fail_on_call=fail_on_call)
        other._memory = self._memory
        return other


def small_catalog() -> Catalog:
    """Ten office products of distinct kinds, with brands, categories and some prices."""
    ink = ("Office Products", "Ink & Toner")
    paper = ("Office Products", "Paper")
    desk = ("Office Products", "Desk Accessories")
    items = [
        Item(
            "ink-hp",
            "HP 61 Black Ink Cartridge",
            brand="HP",
            categories=(*ink, "Ink"),
            price=Price(19.99, "USD"),
        ),
        Item("ink-canon", "Canon PG-245 Black Ink Cartridge", brand="Canon", categories=(*ink, "Ink")),
        Item(
            "toner-brother",
            "Brother TN-660 High Yield Toner",
            brand="Brother",
            categories=(*ink, "Toner"),
            price=Price(54.0, "USD"),
        ),
        Item(
            "paper-copy",
            "Copy Paper, Letter Size, 500 Sheets",
            brand="Hammermill",
            categories=(*paper, "Copy"),
            price=Price(8.5, "USD"),
        ),
        Item(
            "paper-photo",
            "Glossy Photo Paper 4x6, 100 Sheets",
            brand="HP",
            categories=(*paper, "Photo"),
            price=Price(12.0, "USD"),
        ),
        Item(
            "stapler",
            "Swingline Desktop Stapler, 20 Sheet Capacity",
            brand="Swingline",
            categories=desk,
            description="Staples up to 20 sheets of paper together; jam-free mechanism.",
            price=Price(15.0, "USD"),
        ),
        Item("tape", "Scotch Magic Tape Dispenser", brand="Scotch", categories=desk),
        Item(
            "chair",
            "Ergonomic Mesh Office Chair with Lumbar Support",
            categories=("Office Furniture",),
            price=Price(149.0, "USD"),
        ),
        Item(
            "pens",
            "Pilot G2 Gel Pens, Blue, 12 Pack",
            brand="Pilot",
            categories=("Writing",),
            price=Price(11.0, "USD"),
        ),
        Item(
            "calculator",
            "Texas Instruments TI-84 Graphing Calculator",
            brand="Texas Instruments",
            categories=("Office Electronics",),
        ),
    ]
    return Catalog(items)


# Generated descriptions for the items whose own text says least about what they are for.
SMALL_DESCRIPTIONS = {
    "tape": "A dispenser that holds a roll of clear tape for wrapping gifts and sealing envelopes at a desk.",
    "calculator": "A handheld calculator that plots graphs, for algebra, calculus and statistics classes.",
    "not-in-catalog": "A description of an item the catalog no longer has; it is ignored.",
}


def check_index_contract(settings: Settings, embedder: TextEmbedder) -> None:
    """What any index the settings point at must do, on :func:`small_catalog` with a real model.

    Run against an embedded store and against a Chroma server: building, nearest items with cosine scores,
    every filter, the descriptions collection, and an incremental update that touches exactly what changed.
    """
    catalog = small_catalog()
    report = build_index(
        settings, catalog, SMALL_DESCRIPTIONS, rebuild=True, progress=False, embedder=embedder
    )
    assert (report.items.added, report.descriptions.added) == (10, 2)
    assert report.embedded == 12

    with VectorIndex.open(settings, embedder=embedder) as index:
        assert (index.count(ITEMS), index.count(DESCRIPTIONS)) == (10, 2)
        query = embedder.embed(["something comfortable to sit on while working", "printer ink"])
        seat, ink = index.query(query, k=10)
        assert seat.ids[0] == "chair"
        assert set(ink.ids[:2]) == {"ink-hp", "ink-canon"}
        # Scores are cosine similarities, best first, equal to those computed from the item texts.
        assert np.all(np.diff(seat.scores) <= 1e-6)
        exact = embedder.embed([item_text(catalog[i]) for i in seat.ids]) @ query[0]
        np.testing.assert_allclose(seat.scores, exact, atol=1e-4)

        def found(where: dict | None, k: int = 10) -> set[str]:
            return set(index.query(query[1], k, where=where)[0].ids)

        assert found(where_filter(Filters())) == set(catalog.positions)
        assert found(where_filter(Filters(category="Office Products > Paper"))) == {
            "paper-copy",
            "paper-photo",
        }
        assert found(where_filter(Filters(category="Office Products > Ink & Toner > Ink"))) == {
            "ink-hp",
            "ink-canon",
        }
        # A brand's ``where`` lets items without a brand through too (the chair): their maker is the mask's call.
        assert found(where_filter(Filters(brands=frozenset({"HP"})))) == {"ink-hp", "paper-photo", "chair"}
        # An item without a brand (the chair) passes a brand exclusion.
        assert "chair" in found(where_filter(Filters(exclude_brands=frozenset({"hp", "canon"}))))
        assert found(where_filter(Filters(min_price=10.0, max_price=20.0))) == {
            "ink-hp",
            "paper-photo",
            "stapler",
            "pens",
        }
        assert found(where_filter(Filters(exclude_ids=frozenset({"ink-hp", "ink-canon"})))) == set(
            catalog.positions
        ) - {"ink-hp", "ink-canon"}

        described = index.query(
            embedder.embed(["graphing calculator for a math class"]), 5, collection=DESCRIPTIONS
        )
        assert described[0].ids == ["calculator", "tape"]
        ids, vectors = index.vectors(ITEMS)
        assert sorted(ids) == sorted(catalog.positions)
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)

    again = build_index(settings, catalog, SMALL_DESCRIPTIONS, progress=False, embedder=embedder)
    assert (again.embedded, again.items.unchanged, again.descriptions.unchanged) == (0, 10, 2)

    items = [item for item in catalog if item.item_id != "pens"]
    items[0] = replace(items[0], title="HP 62 Tri-Color Ink Cartridge")
    items[3] = replace(items[3], price=Price(7.5, "USD"))
    items.append(Item("folder", "Manila File Folders, 100 Pack", brand="Smead", categories=("Filing",)))
    changed = build_index(
        settings, Catalog(items), {"tape": SMALL_DESCRIPTIONS["tape"]}, progress=False, embedder=embedder
    )
    assert changed.items == CollectionChanges(added=1, updated=1, relabelled=1, deleted=1, unchanged=7)
    assert changed.descriptions == CollectionChanges(deleted=1, unchanged=1)
    with VectorIndex.open(settings, embedder=embedder) as index:
        assert (index.count(ITEMS), index.count(DESCRIPTIONS)) == (10, 1)
        cheap = index.query(query[1], 10, where=where_filter(Filters(max_price=8.0)))[0]
        assert cheap.ids == ["paper-copy"]
