"""Vector index benchmark: build and update speed, HNSW recall and query latency on the real catalog.

Usage:
    python -m benchmarks.bench_index [--queries N] [--json]

The bundled real sample (2,417 Amazon office products) is embedded with the project's bi-encoder into a fresh
embedded Chroma index in a temporary folder (item texts only: no generated descriptions). Then:

- build: wall time, items per second, the share spent in the model, and the process's peak RSS;
- incremental update: 1% of the items get an edited title and the index is synced again;
- recall@100 of Chroma's HNSW search against exact search (numpy, the index's own vectors), with N seeded item
  titles as queries, unfiltered and under a selective filter (one category holding a few percent of the items);
- latency p50/p95 of one top-100 query, four ways: Chroma unfiltered; Chroma with the selective ``where``;
  Chroma over-fetching unfiltered, then filtering in numpy (the share of queries left with fewer than 100 items
  is reported: over-fetch cannot promise k results under a selective filter); exact numpy search over the
  items the filter allows.

The machine's load average is printed too: on a shared machine every time here grows with it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from data.facets import PATH_SEPARATOR
from data.load import load_catalog
from data.schema import Catalog
from data.settings import SAMPLE_DIR, PathSettings, Settings
from retrieval.embeddings import Embedder, get_embedder
from retrieval.filters import FilterIndex, Filters
from retrieval.index import VectorIndex, build_index, where_filter

K = 100
OVER_FETCH = 500


class _TimedEmbedder:
    """The real embedder, adding up the time spent in the model."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self.seconds = 0.0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        started = time.perf_counter()
        vectors = self.inner.embed(texts)
        self.seconds += time.perf_counter() - started
        return vectors


def _max_rss_bytes() -> int:
    # ru_maxrss is in kilobytes on Linux, in bytes on macOS.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)


def _selective_category(catalog: Catalog) -> tuple[str, int]:
    """The category value (any level) whose item count is closest to 3% of the catalog."""
    counts: dict[str, int] = {}
    for item in catalog:
        for level in range(1, len(item.categories) + 1):
            key = PATH_SEPARATOR.join(item.categories[:level])
            counts[key] = counts.get(key, 0) + 1
    target = 0.03 * len(catalog)
    key = min(counts, key=lambda name: (abs(counts[name] - target), name))
    return key, counts[key]


def _latencies_ms(run: Callable[[np.ndarray], object], queries: np.ndarray) -> tuple[float, float]:
    for query in queries[:10]:
        run(query)
    times = []
    for query in queries:
        started = time.perf_counter()
        run(query)
        times.append((time.perf_counter() - started) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 95))


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    k = min(k, len(scores))
    top = np.argpartition(-scores, k - 1)[:k]
    return top[np.argsort(-scores[top], kind="stable")]


def measure(query_count: int, batch_size: int) -> dict[str, object]:
    """Build, update and query an index of the real sample; the figures as a dict."""
    catalog, _ = load_catalog(SAMPLE_DIR / "items.jsonl")
    started = time.perf_counter()
    embedder = _TimedEmbedder(get_embedder(batch_size))
    embedder.embed(["load the model"])
    model_load_s = time.perf_counter() - started
    embedder.seconds = 0.0
    figures: dict[str, object] = {"items": len(catalog), "model_load_seconds": round(model_load_s, 2)}

    with tempfile.TemporaryDirectory(prefix="bench_index_") as folder:
        settings = Settings(paths=PathSettings(artifacts=Path(folder)))
        report = build_index(settings, catalog, {}, progress=False, embedder=embedder)
        figures.update(
            build_seconds=round(report.seconds, 2),
            build_items_per_second=round(len(catalog) / report.seconds, 1),
            build_model_seconds=round(embedder.seconds, 2),
            build_max_rss_bytes=_max_rss_bytes(),
        )

        rng = random.Random(13)
        items = list(catalog)
        edited = rng.sample(range(len(items)), round(0.01 * len(items)))
        for position in edited:
            items[position] = replace(items[position], title=items[position].title + ", Value Pack")
        update = build_index(settings, Catalog(items), {}, progress=False, embedder=embedder)
        figures.update(update_items_changed=update.items.updated, update_seconds=round(update.seconds, 2))

        with VectorIndex.open(settings, embedder=embedder) as index:
            figures.update(_search(index, catalog, embedder.inner, query_count))
    figures.update(
        load_average_1min=round(os.getloadavg()[0], 2),
        cpus=os.cpu_count(),
        python=platform.python_version(),
    )
    return figures


def _search(index: VectorIndex, catalog: Catalog, embedder: Embedder, query_count: int) -> dict[str, object]:
    ids, vectors = index.vectors()
    order = np.array([catalog.position(item_id) for item_id in ids])
    # The index's vectors in catalog order, so that catalog positions index them.
    matrix = np.empty_like(vectors)
    matrix[order] = vectors
    titles = [item.title for item in random.Random(7).sample(catalog.items, query_count)]
    queries = embedder.embed(titles)

    category, category_items = _selective_category(catalog)
    filters = Filters(category=category)
    where = where_filter(filters)
    allowed = FilterIndex(catalog).mask(filters)
    allowed_positions = np.flatnonzero(allowed)
    item_ids = [item.item_id for item in catalog]

    def exact(query: np.ndarray, positions: np.ndarray | None) -> list[str]:
        if positions is None:
            return [item_ids[p] for p in _top_k(matrix @ query, K)]
        return [item_ids[positions[p]] for p in _top_k(matrix[positions] @ query, K)]

    def recall(where_: dict | None, positions: np.ndarray | None) -> float:
        found = index.query(queries, K, where=where_)
        truth = [exact(query, positions) for query in queries]
        return float(np.mean([len(set(h.ids) & set(t)) / len(t) for h, t in zip(found, truth, strict=True)]))

    def over_fetch(query: np.ndarray) -> list[str]:
        hits = index.query(query, OVER_FETCH)[0]
        return [item_id for item_id in hits.ids if allowed[catalog.position(item_id)]][:K]

    wanted = min(K, len(allowed_positions))
    short = sum(len(over_fetch(query)) < wanted for query in queries)
    latency = {
        "chroma": _latencies_ms(lambda q: index.query(q, K), queries),
        "chroma_where": _latencies_ms(lambda q: index.query(q, K, where=where), queries),
        "chroma_over_fetch_numpy_filter": _latencies_ms(over_fetch, queries),
        "numpy_exact": _latencies_ms(lambda q: exact(q, None), queries),
        "numpy_exact_filtered": _latencies_ms(lambda q: exact(q, allowed_positions), queries),
    }
    return {
        "queries": query_count,
        "recall_at_100": round(recall(None, None), 4),
        "filter_category": category,
        "filter_items": category_items,
        "recall_at_100_filtered": round(recall(where, allowed_positions), 4),
        "over_fetch_short_share": round(short / len(queries), 3),
        **{f"latency_ms_{name}": [round(p50, 2), round(p95, 2)] for name, (p50, p95) in latency.items()},
    }


def _table(figures: dict[str, object]) -> str:
    def latency(name: str) -> str:
        p50, p95 = figures[f"latency_ms_{name}"]  # type: ignore[misc]
        return f"p50 {p50:.2f} ms, p95 {p95:.2f} ms"

    share = figures["filter_items"] / figures["items"]  # type: ignore[operator]
    rows = [
        ("items", f"{figures['items']:,} (real sample, item texts)"),
        ("model load", f"{figures['model_load_seconds']:.1f} s (import and weights)"),
        ("build wall time", f"{figures['build_seconds']:.1f} s ({figures['build_model_seconds']:.1f} s in the model)"),
        ("build throughput", f"{figures['build_items_per_second']:,.1f} items/s"),
        ("peak RSS after build", f"{figures['build_max_rss_bytes'] / 1e6:,.0f} MB"),  # type: ignore[operator]
        ("update, 1% titles edited", f"{figures['update_items_changed']} items in {figures['update_seconds']:.2f} s"),
        ("recall@100 vs exact", f"{figures['recall_at_100']:.4f} ({figures['queries']} title queries)"),
        ("selective filter", f"{figures['filter_category']!r}: {figures['filter_items']} items ({share:.1%})"),
        ("recall@100 filtered", f"{figures['recall_at_100_filtered']:.4f}"),
        ("top-100 query, Chroma", latency("chroma")),
        ("  + Chroma where", latency("chroma_where")),
        (f"  Chroma top-{OVER_FETCH} + numpy filter", latency("chroma_over_fetch_numpy_filter")),
        ("    queries missing allowed items", f"{figures['over_fetch_short_share']:.1%} (< min(100, allowed))"),
        ("  exact numpy, all items", latency("numpy_exact")),
        ("  exact numpy, filtered", latency("numpy_exact_filtered")),
        ("load average (1 min)", f"{figures['load_average_1min']} on {figures['cpus']} CPUs"),
        ("python", str(figures["python"])),
    ]  # fmt: skip
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_index", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--queries", type=int, default=200, help="title queries for recall and latency (200)")
    parser.add_argument("--batch-size", type=int, default=64, help="embedding batch size (64)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args(argv)
    figures = measure(args.queries, args.batch_size)
    print(json.dumps(figures) if args.json else _table(figures))


if __name__ == "__main__":
    main()
