"""The vector index: item text and generated descriptions as embeddings in Chroma, kept in step with the catalog.

Two collections, both in cosine space and both keyed by item id:

- ``items``: every item's own text (:func:`retrieval.embeddings.item_text`);
- ``descriptions``: the items that have a generated description, embedded as the same text with the generated
  description in place of the item's own, so that thin items can be found by what they are for.

Every record carries the metadata that hard filters need, the same in both collections: ``item_id``,
``category_1``, ``category_2``, ... (the " > "-joined path prefix at each level, the value keys of
:mod:`data.facets`), ``brand`` (:func:`data.normalize.brand_key`, ``""`` for none), ``price`` (only when
it has one) and ``text_hash``, a hash of the embedded text. :func:`where_filter` turns filters into a Chroma
``where`` over them.

:meth:`VectorIndex.sync` compares the stored hashes with the catalog's texts: new and changed items are embedded
and written, removed ones deleted, the rest left alone. It writes as it embeds, a batch at a time, so a build that
is stopped part-way (Ctrl-C, a killed process) leaves a usable index and the next sync embeds only what is still
missing. Each collection records the embedding model, its dimension and :data:`SCHEMA_VERSION`; an index built
otherwise is refused with the command that rebuilds it.

The index lives in a Chroma store (:mod:`retrieval.store`: an embedded directory or a server, and its one-writer
lock); every failure reaches the caller as a :class:`retrieval.errors.RetrievalError` whose message says what
to do.

Example:
    >>> report = build_index(settings, catalog, descriptions={})  # doctest: +SKIP
    >>> print(report.summary())  # doctest: +SKIP
    items: 2,417 added, 0 updated, 0 relabelled, 0 deleted, 0 unchanged; descriptions: nothing to do; 21.4 s
    >>> with VectorIndex.open(settings) as index:  # doctest: +SKIP
    ...     hits = index.query(get_embedder().embed(["black ink"]), k=10, where=where_filter(filters))
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from data.facets import PATH_SEPARATOR
from data.schema import Catalog, Item
from data.settings import Settings
from retrieval.embeddings import TextEmbedder, get_embedder, item_text
from retrieval.errors import REBUILD_COMMAND, IndexCorruptError, IndexMismatchError, IndexMissingError
from retrieval.filters import Filters
from retrieval.store import ChromaStore

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection

# Raised when what is stored per record, or how it is keyed, changes; an older index is then refused.
# 2: item text read to 128 word pieces, descriptions cut at 600 characters (1: 256 and 1,000).
SCHEMA_VERSION = 2
ITEMS = "items"
DESCRIPTIONS = "descriptions"
COLLECTIONS = (ITEMS, DESCRIPTIONS)
# Top-100 recall against exact search on the real catalog (200 title queries): 0.991 with Chroma's default
# ef_search of 100, 0.999 with 200, twice the usual k (retrieval.candidates); see benchmarks/bench_index.py.
_HNSW = MappingProxyType({"space": "cosine", "ef_construction": 200, "ef_search": 200})
# Records per embed-and-write step: large enough for the model to batch texts of similar length together, small
# enough that an interrupted build loses little work and the progress bar moves.
_WRITE_BATCH = 512


def where_filter(filters: Filters) -> dict[str, Any] | None:
    """A Chroma ``where`` that keeps exactly the items the filters allow, category exclusions aside (see below);
    ``None`` when it keeps every item.

    The ``brand`` metadata holds the catalog's brand key, ``""`` for an item without one, while the filters read
    an item's maker (:func:`data.facets.maker_keys`: for an unbranded item, the known brand its title opens
    with). So a brand inclusion also lets unbranded items through, and the mask decides which of them are the
    brand's. An item without a price fails any price bound. Excluded ids are matched on the ``item_id``
    metadata, so no over-fetching is needed. The result agrees with :meth:`retrieval.filters.FilterIndex.mask`
    (a property test checks it), except for what is left to the mask: category exclusions (Chroma cannot say
    "not in this subtree" of items whose path is shorter than its level) and the makers of unbranded items. So a
    ``where`` search may return more than the mask allows, and its caller masks it.

    Example:
        >>> filters = Filters(category="Office > Ink", brands={"hp"}, max_price=30.0, exclude_ids={"7"})
        >>> where_filter(filters)  # doctest: +NORMALIZE_WHITESPACE
        {'$and': [{'category_2': 'Office > Ink'}, {'brand': {'$in': ['', 'hp']}}, {'price': {'$lte': 30.0}},
                  {'item_id': {'$nin': ['7']}}]}
    """
    clauses: list[dict[str, Any]] = []
    if filters.category is not None:
        level = filters.category.count(PATH_SEPARATOR) + 1
        clauses.append({f"category_{level}": filters.category})
    if filters.brands:
        clauses.append({"brand": {"$in": sorted(filters.brands | {""})}})
    if filters.exclude_brands:
        clauses.append({"brand": {"$nin": sorted(filters.exclude_brands)}})
    if filters.min_price is not None:
        clauses.append({"price": {"$gte": float(filters.min_price)}})
    if filters.max_price is not None:
        clauses.append({"price": {"$lte": float(filters.max_price)}})
    if filters.exclude_ids:
        clauses.append({"item_id": {"$nin": sorted(filters.exclude_ids)}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


class Hits(NamedTuple):
    """The nearest items to one query vector, best first.

    Attributes:
        ids: Item ids.
        scores: Cosine similarity of each, ``float32``, in ``[-1, 1]``, higher is closer.

    Example:
        >>> ids, scores = Hits(["7", "3"], np.array([0.82, 0.41], dtype=np.float32))
        >>> ids[0], float(scores[0]) > float(scores[1])
        ('7', True)
    """

    ids: list[str]
    scores: np.ndarray


@dataclass(frozen=True)
class CollectionChanges:
    """What one sync did to one collection.

    Attributes:
        added: Items embedded and written for the first time.
        updated: Items whose text changed, embedded again.
        relabelled: Items whose filter metadata (a price) changed but not their text: rewritten, not embedded.
        deleted: Items no longer in the catalog (or no longer described), removed.
        unchanged: Items left alone.

    Example:
        >>> changes = CollectionChanges(added=2, updated=1, unchanged=40)
        >>> changes.embedded, changes.summary()
        (3, '2 added, 1 updated, 0 relabelled, 0 deleted, 40 unchanged')
    """

    added: int = 0
    updated: int = 0
    relabelled: int = 0
    deleted: int = 0
    unchanged: int = 0

    @property
    def embedded(self) -> int:
        return self.added + self.updated

    def summary(self) -> str:
        if not (self.embedded or self.relabelled or self.deleted or self.unchanged):
            return "nothing to do"
        return (
            f"{self.added:,} added, {self.updated:,} updated, {self.relabelled:,} relabelled, "
            f"{self.deleted:,} deleted, {self.unchanged:,} unchanged"
        )


@dataclass(frozen=True)
class SyncReport:
    """What :meth:`VectorIndex.sync` did.

    Example:
        >>> print(SyncReport(CollectionChanges(added=3), CollectionChanges(), 0.25).summary())
        items: 3 added, 0 updated, 0 relabelled, 0 deleted, 0 unchanged; descriptions: nothing to do; 0.2 s
    """

    items: CollectionChanges
    descriptions: CollectionChanges
    seconds: float
    # True when an index made by another model or version was thrown away first (build_index(replace_outdated=)).
    replaced_outdated: bool = False

    @property
    def embedded(self) -> int:
        """Texts embedded in all: the work a sync could not skip."""
        return self.items.embedded + self.descriptions.embedded

    def summary(self) -> str:
        replaced = "rebuilt (the old index was made by another version); " if self.replaced_outdated else ""
        return (
            f"{replaced}items: {self.items.summary()}; descriptions: {self.descriptions.summary()}; "
            f"{self.seconds:.1f} s"
        )


@dataclass(frozen=True)
class _Record:
    text: str
    metadata: dict[str, str | float]


def text_hash(text: str) -> str:
    """The content hash stored with each record: a changed hash means the text must be embedded again."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def item_metadata(item: Item, text: str) -> dict[str, str | float]:
    """The filterable facts stored with an item's vectors, and the hash of the embedded ``text``.

    Example:
        >>> item = Item("7", "HP 61 Ink", brand="HP", categories=("Office", "Ink"))
        >>> meta = item_metadata(item, "HP 61 Ink")
        >>> {key: meta[key] for key in ("item_id", "category_1", "category_2", "brand")}
        {'item_id': '7', 'category_1': 'Office', 'category_2': 'Office > Ink', 'brand': 'hp'}
    """
    metadata: dict[str, str | float] = {"item_id": item.item_id, "text_hash": text_hash(text)}
    for level in range(1, len(item.categories) + 1):
        metadata[f"category_{level}"] = PATH_SEPARATOR.join(item.categories[:level])
    # Stored even when empty, so that filters on the "" brand (no brand) mean what they mean in a filter mask.
    metadata["brand"] = item.brand_key
    if item.price is not None:
        metadata["price"] = float(item.price.amount)
    return metadata


def _records(catalog: Catalog, descriptions: Mapping[str, str]) -> dict[str, dict[str, _Record]]:
    """Each collection's desired records, by item id, in catalog order.

    Generated descriptions of items no longer in the catalog, and empty ones, are left out.
    """
    items: dict[str, _Record] = {}
    described: dict[str, _Record] = {}
    for item in catalog:
        text = item_text(item)
        items[item.item_id] = _Record(text, item_metadata(item, text))
        generated = descriptions.get(item.item_id, "").strip()
        if generated:
            text = item_text(item, generated)
            described[item.item_id] = _Record(text, item_metadata(item, text))
    return {ITEMS: items, DESCRIPTIONS: described}


def _batches(values: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


class VectorIndex:
    """The two embedding collections of a catalog, in an embedded Chroma store or on a Chroma server.

    Open one with :meth:`open` (or build one with :func:`build_index`); close it when done, or use it as a
    context manager. Reading needs no model: queries take vectors.

    Args:
        store: Where the index lives.
        embedder: The model whose vectors the index holds; its name and dimension are checked against those
            the index was built with, and it embeds texts during :meth:`sync`.
        create: Create the collections when they do not exist (for writing); otherwise a missing index raises.

    Raises:
        IndexMissingError: Not built yet (and ``create`` is false).
        IndexMismatchError: Built with another model, dimension or schema version.
        IndexCorruptError: The embedded store cannot be read.
        IndexUnavailableError: The server cannot be reached.

    Example:
        >>> with VectorIndex.open(load_settings()) as index:  # doctest: +SKIP
        ...     index.count(), index.query(vector, k=3)[0].ids
        (2417, ['1480', '1495', '77'])
    """

    def __init__(self, store: ChromaStore, embedder: TextEmbedder, *, create: bool = False) -> None:
        self._store = store
        self.embedder = embedder
        self.location = store.location
        self._client = store.client(create=create)
        try:
            with store.errors():
                self._max_batch = self._client.get_max_batch_size()
                self._collections = {name: self._open_collection(name, create) for name in COLLECTIONS}
        except BaseException:
            self._client.close()
            raise

    @classmethod
    def open(
        cls, settings: Settings, *, embedder: TextEmbedder | None = None, create: bool = False
    ) -> VectorIndex:
        """Open the index the settings point at (``paths.artifacts`` or ``retrieval.chroma_host``).

        Args:
            settings: The project settings.
            embedder: The model; the project's bi-encoder (:func:`retrieval.embeddings.get_embedder`, not
                loaded until something is embedded) when ``None``.
            create: Create an empty index when there is none.
        """
        embedder = embedder or get_embedder(settings.retrieval.embedding_batch_size)
        return cls(ChromaStore(settings), embedder, create=create)

    def _identity(self) -> dict[str, str | int]:
        return {
            "embedding_model": self.embedder.name,
            "dimension": self.embedder.dimension,
            "schema_version": SCHEMA_VERSION,
        }

    def _open_collection(self, name: str, create: bool) -> Collection:
        from chromadb.errors import NotFoundError

        # embedding_function=None everywhere: the index only ever receives vectors. Left out, Chroma would attach
        # its default ONNX model and download it the first time anything asked it to embed.
        if create:
            collection = self._client.get_or_create_collection(
                name, configuration={"hnsw": dict(_HNSW)}, metadata=self._identity(), embedding_function=None
            )
        else:
            try:
                collection = self._client.get_collection(name, embedding_function=None)
            except NotFoundError:
                raise IndexMissingError(
                    f"The retrieval index at {self.location} has no '{name}' collection; build it: run "
                    "`concierge index`."
                ) from None
        stored = {key: (collection.metadata or {}).get(key) for key in self._identity()}
        if stored != self._identity():
            raise IndexMismatchError(
                f"The retrieval index at {self.location} was built with model {stored['embedding_model']} "
                f"(dimension {stored['dimension']}, schema version {stored['schema_version']}), but this "
                f"version uses {self.embedder.name} (dimension {self.embedder.dimension}, schema version "
                f"{SCHEMA_VERSION}). Rebuild it: run `{REBUILD_COMMAND}`."
            )
        return collection

    def close(self) -> None:
        """Release the store (an embedded store's files stay open until its last client in the process closes)."""
        self._client.close()

    def __enter__(self) -> VectorIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _collection(self, name: str) -> Collection:
        if name not in self._collections:
            raise ValueError(f"unknown collection {name!r}; use one of {', '.join(COLLECTIONS)}")
        return self._collections[name]

    def count(self, collection: str = ITEMS) -> int:
        """How many items a collection holds."""
        with self._store.errors():
            return self._collection(collection).count()

    def _stored_metadata(self, collection: Collection) -> dict[str, dict[str, Any]]:
        stored: dict[str, dict[str, Any]] = {}
        offset = 0
        while True:
            page = collection.get(include=["metadatas"], limit=self._max_batch, offset=offset)
            stored.update(zip(page["ids"], page["metadatas"] or [], strict=True))
            if len(page["ids"]) < self._max_batch:
                return stored
            offset += len(page["ids"])

    def vectors(self, collection: str = ITEMS) -> tuple[list[str], np.ndarray]:
        """Every stored id and vector of a collection (for exact search and evaluation), as ``float32``."""
        ids: list[str] = []
        blocks = [np.empty((0, self.embedder.dimension), dtype=np.float32)]
        with self._store.errors():
            chroma = self._collection(collection)
            while True:
                page = chroma.get(include=["embeddings"], limit=self._max_batch, offset=len(ids))
                ids.extend(page["ids"])
                if page["ids"]:
                    blocks.append(np.asarray(page["embeddings"], dtype=np.float32))
                if len(page["ids"]) < self._max_batch:
                    return ids, np.concatenate(blocks)

    def query(
        self, vectors: np.ndarray, k: int, *, collection: str = ITEMS, where: Mapping[str, Any] | None = None
    ) -> list[Hits]:
        """The ``k`` nearest items to each query vector, among those ``where`` allows.

        Args:
            vectors: Unit-length query vectors, shape ``(n, dimension)`` (or one vector of shape ``(dimension,)``).
            k: How many items per query; fewer come back when fewer match.
            collection: ``"items"`` or ``"descriptions"``.
            where: A Chroma filter, usually from :func:`where_filter`.

        Returns:
            One :class:`Hits` per query vector, in order.
        """
        matrix = np.asarray(vectors, dtype=np.float32)
        if matrix.ndim == 1:
            matrix = matrix[None, :]
        if matrix.ndim != 2 or matrix.shape[1] != self.embedder.dimension:
            raise ValueError(
                f"query vectors must have shape (n, {self.embedder.dimension}), got {np.shape(vectors)}"
            )
        chroma = self._collection(collection)
        if k < 1 or not len(matrix):
            return [Hits([], np.empty(0, dtype=np.float32)) for _ in matrix]
        with self._store.errors():
            result = chroma.query(
                query_embeddings=matrix,
                n_results=k,
                where=dict(where) if where else None,
                include=["distances"],
            )
        distances = result["distances"] or []
        # Chroma's cosine distance is 1 - cosine similarity.
        return [
            Hits(list(ids), 1.0 - np.asarray(found, dtype=np.float32))
            for ids, found in zip(result["ids"], distances, strict=True)
        ]

    def sync(self, catalog: Catalog, descriptions: Mapping[str, str], *, progress: bool = True) -> SyncReport:
        """Bring both collections in step with the catalog and its generated descriptions.

        New and changed items are embedded and written, a batch at a time; removed items are deleted; the
        rest are left alone. Stopped part-way, the index stays usable, and the next sync picks up where this one
        stopped.

        Args:
            catalog: The whole catalog.
            descriptions: Item id -> generated description; ids not in the catalog and empty texts are ignored.
            progress: Show a progress bar (on stderr) while embedding.

        Raises:
            IndexLockedError: Another process is writing the same embedded index.
        """
        with self._store.write_lock():
            return self._sync(catalog, descriptions, progress=progress)

    def _sync(self, catalog: Catalog, descriptions: Mapping[str, str], *, progress: bool) -> SyncReport:
        started = time.perf_counter()
        wanted = _records(catalog, descriptions)
        with self._store.errors():
            changes = {name: self._sync_collection(name, wanted[name], progress) for name in COLLECTIONS}
        return SyncReport(changes[ITEMS], changes[DESCRIPTIONS], time.perf_counter() - started)

    def _sync_collection(self, name: str, wanted: dict[str, _Record], progress: bool) -> CollectionChanges:
        from tqdm.auto import tqdm

        collection = self._collections[name]
        stored = self._stored_metadata(collection)
        removed = [item_id for item_id in stored if item_id not in wanted]
        added, updated, relabelled = [], [], []
        for item_id, record in wanted.items():
            old = stored.get(item_id)
            if old is None:
                added.append(item_id)
            elif old.get("text_hash") != record.metadata["text_hash"]:
                updated.append(item_id)
            elif old != record.metadata:
                relabelled.append(item_id)

        def metadatas(ids: Sequence[str]) -> list[dict[str, Any]]:
            # Chroma merges new metadata into old: a key the item no longer has (a dropped price) must be
            # written as None to be removed.
            return [{**dict.fromkeys(stored.get(i, {}), None), **wanted[i].metadata} for i in ids]

        for batch in _batches(removed, self._max_batch):
            collection.delete(ids=list(batch))
        for batch in _batches(relabelled, self._max_batch):
            collection.update(ids=list(batch), metadatas=metadatas(batch))
        to_embed = added + updated
        with tqdm(
            total=len(to_embed), desc=f"Embedding {name}", unit="item", disable=not progress or not to_embed
        ) as bar:
            for batch in _batches(to_embed, min(_WRITE_BATCH, self._max_batch)):
                vectors = self.embedder.embed([wanted[i].text for i in batch])
                collection.upsert(ids=list(batch), embeddings=vectors, metadatas=metadatas(batch))
                bar.update(len(batch))
        return CollectionChanges(
            added=len(added),
            updated=len(updated),
            relabelled=len(relabelled),
            deleted=len(removed),
            unchanged=len(wanted) - len(added) - len(updated) - len(relabelled),
        )


def build_index(
    settings: Settings,
    catalog: Catalog,
    descriptions: Mapping[str, str],
    *,
    rebuild: bool = False,
    progress: bool = True,
    embedder: TextEmbedder | None = None,
    replace_outdated: bool = False,
    wait_for_lock: float = 0.0,
) -> SyncReport:
    """Build the index, or bring an existing one up to date (the entry point of ``concierge index``).

    Args:
        settings: Where the index lives and the embedding batch size.
        catalog: The whole catalog.
        descriptions: Item id -> generated description.
        rebuild: Throw the existing index away first, even a damaged one or one built with another model.
        progress: Show a progress bar while embedding.
        embedder: The model; the project's bi-encoder when ``None``.
        replace_outdated: Rebuild an index made by another model or schema version instead of refusing it
            (:attr:`SyncReport.replaced_outdated` says so): for indexes that are only derived data, such as the
            demo's and an evaluation's own.
        wait_for_lock: Seconds to wait for another process that is writing the same embedded store (then this
            sync finds the index current); 0 refuses at once.

    Raises:
        RetrievalError: The index is locked, damaged, built otherwise (without ``rebuild`` or
            ``replace_outdated``), or the server is unreachable; the message says what to do.

    Example:
        >>> build_index(load_settings(), catalog, {}, progress=False).items.added  # doctest: +SKIP
        2417
    """
    embedder = embedder or get_embedder(settings.retrieval.embedding_batch_size)
    store = ChromaStore(settings)
    with store.write_lock(wait_for_lock):
        if rebuild:
            _clear(store)
        try:
            with VectorIndex(store, embedder, create=True) as index:
                return index._sync(catalog, descriptions, progress=progress)
        except IndexMismatchError:
            if not replace_outdated:
                raise
        _clear(store)
        with VectorIndex(store, embedder, create=True) as index:
            report = index._sync(catalog, descriptions, progress=progress)
        return replace(report, replaced_outdated=True)


def _clear(store: ChromaStore) -> None:
    """Delete both collections; an embedded store too damaged to open loses its files instead."""
    from chromadb.errors import NotFoundError

    try:
        client = store.client(create=True)
    except IndexCorruptError:
        store.remove_files()
        return
    damaged = False
    try:
        with store.errors():
            for name in COLLECTIONS:
                with contextlib.suppress(NotFoundError):
                    client.delete_collection(name)
    except IndexCorruptError:
        damaged = True
    finally:
        client.close()
    if damaged:
        store.remove_files()
