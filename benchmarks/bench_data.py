"""Catalog loading benchmark: throughput and memory of :func:`data.load.load_catalog`.

Usage:
    python -m benchmarks.bench_data [--items N] [--json]

A realistic JSONL catalog of N items (default 1,000,000) is written, streamed, to a temporary folder:
titles and descriptions of varied length with some HTML entities and stray whitespace, a few thousand
brands, category paths as strings or lists, prices on most items, attributes on some. It is then loaded
twice: once timed, and once under ``tracemalloc`` (which slows Python down several times) to measure the
peak memory of the load against the memory the loaded catalog keeps. A peak close to the retained memory
shows that the load holds nothing but the catalog it builds.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

from data.load import Policy, load_catalog

_VOCABULARY = (
    "stapler paper copy printer ink toner pen pencil marker highlighter notebook binder folder envelope "
    "label desk lamp chair organizer tray clip clipboard calculator scissors tape dispenser glue stick "
    "eraser sharpener ruler whiteboard cork board pushpin calendar planner journal sticky note index card "
    "cardstock laminator shredder mouse keyboard cable charger battery headset webcam monitor stand hub "
    "adapter black blue red green white heavy duty premium recycled refillable wireless ergonomic compact "
    "portable pack of 12 24 100 500 letter legal size sheets count medium fine point gel ballpoint "
    "permanent and"
)
_WORDS = _VOCABULARY.split()
_TOPS = ["Office Products", "Electronics", "Home & Kitchen", "Arts, Crafts & Sewing", "School Supplies"]
_MIDDLES = ["Office & School Supplies", "Paper", "Writing & Correction", "Desk Accessories", "Accessories"]
_LEAVES = ["Staplers", "Copy Paper", "Ballpoint Pens", "Markers", "Notebooks", "Labels", "Cables", "Lamps"]
_CURRENCIES = ["USD"] * 8 + ["EUR", "GBP"]


def _text(rng: random.Random, words: int) -> str:
    text = " ".join(rng.choices(_WORDS, k=words))
    if rng.random() < 0.1:
        text = text.replace(" and ", " &amp; ", 1) + " &amp;amp; more"
    if rng.random() < 0.1:
        text = "  " + text.replace(" ", "\n ", 1) + "\t"
    return text


def _item(rng: random.Random, index: int, brands: list[str]) -> dict[str, object]:
    """One raw catalog row, with the mix of shapes real exports have."""
    record: dict[str, object] = {"item_id": f"B{index:09d}", "title": _text(rng, rng.randint(3, 14))}
    if rng.random() < 0.8:
        # Description lengths are skewed: many short, a few very long.
        record["description"] = _text(rng, min(2000, int(rng.lognormvariate(4.0, 1.0))))
    if rng.random() < 0.9:
        record["brand"] = rng.choice(brands)
    path = [rng.choice(_TOPS), rng.choice(_MIDDLES), rng.choice(_LEAVES)][: rng.randint(1, 3)]
    record["categories"] = path if rng.random() < 0.3 else " > ".join(path)
    if rng.random() < 0.7:
        amount = round(rng.uniform(0.5, 500), 2)
        record["price"] = amount if rng.random() < 0.8 else str(amount)
        record["currency"] = rng.choice(_CURRENCIES)
    if rng.random() < 0.3:
        record["attributes"] = {"color": rng.choice(_WORDS), "pack": rng.randint(1, 100)}
    if rng.random() < 0.5:
        record["image_url"] = f"https://images.example.com/{index}.jpg"
    return record


def _rows(count: int, seed: int) -> Iterator[str]:
    rng = random.Random(seed)
    brands = [
        f"{rng.choice(_WORDS).title()}{rng.choice(['', ' Co', '-Tech', ' & Sons', 'Pro'])} {n}"
        for n in range(4000)
    ]
    for index in range(count):
        yield json.dumps(_item(rng, index, brands)) + "\n"


def generate(path: Path, count: int, seed: int = 13) -> None:
    """Write a catalog of `count` items to `path`, one line at a time."""
    with path.open("w", encoding="utf-8") as stream:
        stream.writelines(_rows(count, seed))


def measure(path: Path, count: int) -> dict[str, object]:
    """Load the catalog once timed and once traced; the figures as a dict."""
    gc.collect()
    started = time.perf_counter()
    catalog, report = load_catalog(path, policy=Policy.STRICT)
    seconds = time.perf_counter() - started
    if report.rows_loaded != count:
        raise RuntimeError(f"expected {count:,} items, loaded {report.rows_loaded:,}")
    # Taken before the traced run: tracemalloc's own bookkeeping would inflate it.
    max_rss = _max_rss_bytes()
    del catalog, report
    gc.collect()

    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        catalog, _report = load_catalog(path, policy=Policy.STRICT)
        _, peak = tracemalloc.get_traced_memory()
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    retained = after - before
    return {
        "items": len(catalog),
        "file_bytes": path.stat().st_size,
        "load_seconds": round(seconds, 3),
        "items_per_second": round(count / seconds),
        "peak_traced_bytes": peak - before,
        "retained_bytes": retained,
        "peak_over_retained": round((peak - before) / retained, 3),
        "max_rss_bytes": max_rss,
        "python": platform.python_version(),
    }


def _max_rss_bytes() -> int:
    # ru_maxrss is in kilobytes on Linux, in bytes on macOS.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)


def _table(figures: dict[str, object]) -> str:
    def mb(key: str) -> str:
        return f"{figures[key] / 1e6:,.1f} MB"  # type: ignore[operator]

    rows = [
        ("items", f"{figures['items']:,}"),
        ("file size", mb("file_bytes")),
        ("load wall time", f"{figures['load_seconds']:.1f} s"),
        ("throughput", f"{figures['items_per_second']:,} items/s"),
        ("peak memory during load", f"{mb('peak_traced_bytes')} (tracemalloc)"),
        ("retained by the catalog", f"{mb('retained_bytes')} (tracemalloc, after gc)"),
        ("peak / retained", f"{figures['peak_over_retained']:.2f}"),
        ("process max RSS", f"{mb('max_rss_bytes')} (generation and timed load)"),
        ("python", str(figures["python"])),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_data", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--items", type=int, default=1_000_000, help="catalog size (default 1,000,000)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_data_") as folder:
        path = Path(folder) / "catalog.jsonl"
        generate(path, args.items)
        figures = measure(path, args.items)
    print(json.dumps(figures) if args.json else _table(figures))


if __name__ == "__main__":
    main()
