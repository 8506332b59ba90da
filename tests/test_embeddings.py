"""The bi-encoder on real text: unit float32 vectors, stable, loaded once, closer for paraphrases."""

from __future__ import annotations

import numpy as np
import pytest

from data.schema import Item, Price
from retrieval import embeddings
from retrieval.embeddings import (
    DIMENSION,
    MAX_DESCRIPTION_CHARS,
    MAX_TOKENS,
    MODEL_NAME,
    Embedder,
    get_embedder,
    item_text,
)


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return get_embedder(16)


def _cosine(embedder: Embedder, a: str, b: str) -> float:
    left, right = embedder.embed([a, b])
    return float(left @ right)


def test_vectors_are_unit_float32_rows_even_for_empty_and_huge_texts(embedder: Embedder) -> None:
    texts = ["black ink cartridge", "", "stapler " * 50_000, "Füller mit Tinte, 日本語のペン"]
    vectors = embedder.embed(texts)
    assert vectors.shape == (4, DIMENSION)
    assert vectors.dtype == np.float32
    assert vectors.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.embed([]).shape == (0, DIMENSION)


def test_text_past_the_token_limit_is_ignored(embedder: Embedder) -> None:
    # 300 repetitions is 900 word pieces, well past MAX_TOKENS (128): what follows never reaches the model.
    head = "black ink cartridge " * 300
    long, short = embedder.embed([head + "ergonomic office chair " * 2_000, head])
    np.testing.assert_allclose(long, short, atol=1e-6)


def test_the_model_reads_exactly_max_tokens_word_pieces(embedder: Embedder) -> None:
    assert MAX_TOKENS == 128
    # One word piece per "ink", plus the two markers the tokenizer adds: 126 words fill the window.
    inside = embedder.embed(["ink " * 125 + "chair", "ink " * 125 + "table"])
    assert not np.allclose(inside[0], inside[1], atol=1e-4)
    outside = embedder.embed(["ink " * 126 + "chair", "ink " * 126 + "table"])
    np.testing.assert_allclose(outside[0], outside[1], atol=1e-6)


def test_embedding_is_deterministic_and_independent_of_batching(embedder: Embedder) -> None:
    texts = [f"pack of {n} blue gel pens, fine point" for n in range(1, 40)]
    first = embedder.embed(texts)
    np.testing.assert_array_equal(first, embedder.embed(texts))
    np.testing.assert_allclose(first, get_embedder(64).embed(texts), atol=1e-5)
    # Each row depends on its own text only, not on its neighbours in the batch.
    np.testing.assert_allclose(first[5], embedder.embed([texts[5]])[0], atol=1e-5)


def test_the_model_is_loaded_once_per_process(embedder: Embedder) -> None:
    embedder.embed(["warm up"])
    loads = embeddings._load_model.cache_info().misses
    for batch_size in (1, 8, 64):
        get_embedder(batch_size).embed(["stapler"])
    assert embeddings._load_model.cache_info().misses == loads == 1


@pytest.mark.parametrize(
    ("text", "paraphrase", "unrelated"),
    [
        (
            "a device to staple sheets of paper together",
            "Swingline desktop stapler",
            "HP 61 black ink cartridge",
        ),
        (
            "something to write with in blue",
            "Pilot G2 gel pens, blue, 12 pack",
            "ergonomic mesh office chair",
        ),
        (
            "refill for my laser printer",
            "Brother TN-660 high yield toner",
            "manila file folders, letter size",
        ),
        ("a seat for long days at the desk", "ergonomic mesh office chair", "scotch magic tape dispenser"),
    ],
)
def test_a_paraphrase_is_closer_than_an_unrelated_text(
    embedder: Embedder, text: str, paraphrase: str, unrelated: str
) -> None:
    close, far = _cosine(embedder, text, paraphrase), _cosine(embedder, text, unrelated)
    assert close > far + 0.1, (close, far)


def test_identity_is_known_without_loading_the_model() -> None:
    embedder = Embedder(batch_size=8)
    assert (embedder.name, embedder.dimension) == (MODEL_NAME, DIMENSION)
    with pytest.raises(ValueError, match="at least 1"):
        Embedder(batch_size=0)
    with pytest.raises(TypeError, match="sequence of texts"):
        embedder.embed("stapler")


def test_item_text_puts_what_identifies_the_item_first() -> None:
    item = Item(
        "7",
        "HP 61 Black Ink",
        description="Prints sharp text.",
        brand="HP",
        categories=("Office Products", "Ink & Toner"),
        price=Price(19.99, "USD"),
    )
    assert (
        item_text(item)
        == "HP 61 Black Ink\nBrand: HP\nCategory: Office Products > Ink & Toner\nPrints sharp text."
    )
    generated = item_text(item, "A black cartridge for HP printers.")
    assert generated.endswith("\nA black cartridge for HP printers.")
    assert item_text(Item("8", "Stapler")) == "Stapler"
    assert item_text(Item("8", "Stapler", description="Own text."), "") == "Stapler"


def test_item_text_cuts_a_long_description_at_a_word() -> None:
    description = "staples up to twenty sheets " * 200
    text = item_text(Item("9", "Stapler", description=description))
    kept = text.split("\n", 1)[1]
    assert MAX_DESCRIPTION_CHARS * 0.9 <= len(kept) <= MAX_DESCRIPTION_CHARS
    assert description.startswith(kept)
    assert description[len(kept)] == " "


class _Counting:
    """An embedder that records every text it is asked to embed (the cache is under test, not a model)."""

    name, dimension = "counting", 3

    def __init__(self) -> None:
        self.asked: list[str] = []

    def embed(self, texts):
        self.asked.extend(texts)
        return np.array([[len(t), t.count("a"), 1.0] for t in texts], dtype=np.float32)


def test_the_cached_embedder_computes_each_text_once_keeps_order_and_drops_the_least_recent() -> None:
    from retrieval.embeddings import CachedEmbedder

    inner = _Counting()
    cached = CachedEmbedder(inner, capacity=2)
    first = cached.embed(["ab", "a", "ab"])
    assert first.tolist() == [[2, 1, 1], [1, 1, 1], [2, 1, 1]] and first.dtype == np.float32
    assert inner.asked == ["ab", "a"] and (cached.hits, cached.misses) == (1, 2)
    cached.embed(["ab"])  # "ab" is now the most recent, so "a" goes first
    cached.embed(["bbb"])
    cached.embed(["ab", "a"])
    assert inner.asked == ["ab", "a", "bbb", "a"]
    assert cached.embed([]).shape == (0, 3) and (cached.name, cached.dimension) == ("counting", 3)
    with pytest.raises(TypeError, match="wrap a single text"):
        cached.embed("ab")
    with pytest.raises(ValueError, match="capacity"):
        CachedEmbedder(inner, capacity=0)


def test_the_cached_embedder_is_safe_with_many_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from retrieval.embeddings import CachedEmbedder

    cached = CachedEmbedder(_Counting(), capacity=5)
    texts = [f"{'a' * (n % 7)}x" for n in range(200)]
    with ThreadPoolExecutor(8) as pool:
        rows = list(pool.map(lambda t: cached.embed([t])[0].tolist(), texts))
    assert rows == [[len(t), t.count("a"), 1.0] for t in texts]
    assert cached.hits + cached.misses == 200 and len(cached._vectors) == 5
