"""``concierge demo``: build what is missing for the catalog, say what is ready, start the assistant."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from data.settings import SAMPLE_DIR, Settings

T = TypeVar("T")

# The parts a full assistant stands on; the ones not listed as ready are reported as not built yet.
LATER_PARTS = (
    ("cross-encoder reranker", "fine-tuned relevance of items to the shopper's words"),
    ("matrix-factorization prior", "collaborative signal from in-session feedback"),
    ("language model", "paraphrased explanations; templates are used meanwhile"),
)


def _step(label: str, work: Callable[[], T]) -> T:
    print(f"==> {label} ...", end="", flush=True)
    started = time.perf_counter()
    result = work()
    print(f" done ({time.perf_counter() - started:.1f} s)", flush=True)
    return result


def ensure_sample(settings: Settings) -> None:
    """Recreate the bundled sample's standard files from its LC-Rec originals when they are missing."""
    paths = settings.paths
    if paths.catalog.exists() or paths.catalog != SAMPLE_DIR / "items.jsonl":
        return
    from data.convert import read_lcrec
    from data.load import write_interactions, write_items

    converted = read_lcrec(
        SAMPLE_DIR / "lcrec" / "Office.item.json", SAMPLE_DIR / "lcrec" / "Office.inter.json"
    )
    write_items(converted.items, SAMPLE_DIR / "items.jsonl")
    write_interactions(converted.interactions, SAMPLE_DIR / "interactions.jsonl")


def build_service(settings: Settings, *, strict: bool = False):
    """Load the data and assemble the assistant service, announcing each step."""
    from assistant.conversation import FacetedConversation
    from assistant.service import AssistantService
    from data.facets import discover_facets
    from data.load import Policy, load_catalog, load_interactions
    from ranking.baselines import FacetedPopularitySystem
    from ranking.system import Request, TrainingData

    policy = Policy.STRICT if strict else Policy.LENIENT
    catalog, report = _step(
        f"Loading the catalog {settings.paths.catalog}",
        lambda: load_catalog(settings.paths.catalog, policy=policy, settings=settings.data),
    )
    if report.rows_skipped:
        print(report.summary(), file=sys.stderr)
    interactions, report = _step(
        f"Loading the interactions {settings.paths.interactions}",
        lambda: load_interactions(
            settings.paths.interactions, catalog, policy=policy, settings=settings.data
        ),
    )
    if report.rows_skipped:
        print(report.summary(), file=sys.stderr)
    facets = _step("Discovering the catalog's facets", lambda: discover_facets(catalog))
    data = TrainingData.build(catalog, facets, interactions)
    ranker = FacetedPopularitySystem()
    _step("Counting best sellers", lambda: ranker.fit(data))

    def rank(answers: dict[str, str], shown: frozenset[str]):
        return ranker.score(Request(facets=answers, answered=len(answers), exclude=shown))

    conversation = FacetedConversation(catalog, facets, rank, data.item_counts())
    print(f"    catalog: {len(catalog):,} items; interactions: {len(interactions):,}")
    print("    facets: " + ", ".join(f"{f.label} ({len(f.values):,})" for f in facets if f.informative))
    print("    ranking: faceted best sellers (popularity among the items matching every answer)")
    for name, role in LATER_PARTS:
        print(f"    {name}: not built yet ({role})")
    return AssistantService(conversation)


def build_indexes(settings: Settings, catalog) -> str:
    """Build or update the vector and lexical indexes; a line saying what happened (never raises)."""
    from data.descriptions import descriptions_for_retrieval, load_descriptions
    from retrieval.index import RetrievalError, build_index
    from retrieval.lexical import LexicalIndex

    try:
        descriptions = descriptions_for_retrieval(load_descriptions(settings.paths.descriptions), catalog)
        # The demo builds what it needs: an index from an older version is rebuilt, not left to the user.
        report = build_index(settings, catalog, descriptions, progress=False, replace_outdated=True)
        LexicalIndex.load_or_build(settings.paths.artifacts / "lexical", catalog, descriptions)
    except RetrievalError as error:
        return f"==> The indexes could not be built: {error}"
    return f"==> Indexes ready under {settings.paths.artifacts}: {report.summary()}"


def run_demo(settings: Settings, *, strict: bool = False, open_server: bool = True) -> int:
    _step("Checking the bundled sample", lambda: ensure_sample(settings))
    service = build_service(settings, strict=strict)
    catalog = service.conversation.catalog
    if not open_server:
        built = (settings.paths.artifacts / "chroma").exists() or bool(settings.retrieval.chroma_host)
        print(f"    vector and lexical indexes: {'present' if built else 'not built yet'} (concierge build)")
        return 0
    # The chat does not search the indexes yet, so it opens while they are built or brought up to date.
    print("==> Building or updating the vector and lexical indexes in the background", flush=True)
    threading.Thread(target=lambda: print(build_indexes(settings, catalog), flush=True), daemon=True).start()

    def chat():
        from ui.app import build_app

        return build_app(service)

    app = _step("Loading the chat interface", chat)
    host, port = settings.server.host, settings.server.port
    print(f"==> Concierge is ready at http://{host}:{port}  (Ctrl+C stops it)", flush=True)
    app.launch(server_name=host, server_port=port, share=False, quiet=True)
    return 0
