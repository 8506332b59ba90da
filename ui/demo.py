"""``concierge demo``: build what is missing for the catalog, say what is ready, start the assistant (the chat, the
API and the agent console, served as ``concierge serve`` serves them: :mod:`ui.serve`). Without a configured
console login the demo makes one for its run (user ``agent``, a random password) and prints it."""

from __future__ import annotations

import secrets
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

from data.settings import SAMPLE_DIR, Settings

T = TypeVar("T")

DEMO_CONSOLE_USER = "agent"


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


def load_data(settings: Settings, *, strict: bool = False):
    """Load the catalog and interactions the settings name, announcing each step and reporting bad rows."""
    from data.load import Policy, load_catalog, load_interactions

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
    print(f"    catalog: {len(catalog):,} items; interactions: {len(interactions):,}")
    return catalog, interactions


def build_service(settings: Settings, catalog, interactions):
    """The assembled assistant (:func:`assistant.build.build_assistant`), announced."""
    from assistant.build import build_assistant

    assistant = _step("Assembling the assistant", lambda: build_assistant(settings, catalog, interactions))
    print(
        "    facets: "
        + ", ".join(f"{f.label} ({len(f.values):,})" for f in assistant.shop.facets if f.informative)
    )
    print(f"    ranking: {assistant.ranking}")
    return assistant


def console_login(settings: Settings) -> tuple[Settings, str]:
    """The settings with a console login, and the line that says how to log in: the configured login, or (when
    the user or the password hash is not set) one made for this run, its password printed in the line."""
    from ui.auth import hash_password

    server = settings.server
    url = f"http://{server.host}:{server.port}/console/"
    if server.console_user and server.console_password_hash:
        return settings, f"==> The agent console: {url} (log in as {server.console_user})"
    user = server.console_user or DEMO_CONSOLE_USER
    password = secrets.token_urlsafe(16)
    server = replace(server, console_user=user, console_password_hash=hash_password(password))
    line = (
        f"==> The agent console: {url} user {user}, password {password} (made for this run; "
        "`concierge hash-password` makes a lasting one for [server] console_password_hash)"
    )
    return replace(settings, server=server), line


def build_indexes(settings: Settings, catalog) -> str:
    """Build or update the vector and lexical indexes; a line saying what happened (never raises)."""
    from data.descriptions import descriptions_for_retrieval, load_descriptions
    from retrieval.errors import RetrievalError
    from retrieval.index import build_index
    from retrieval.lexical import LexicalIndex

    try:
        descriptions = descriptions_for_retrieval(load_descriptions(settings.paths.descriptions), catalog)
        # The demo builds what it needs: an index from an older version is rebuilt, not left to the user.
        report = build_index(settings, catalog, descriptions, progress=False, replace_outdated=True)
        LexicalIndex.load_or_build(settings.paths.artifacts / "lexical", catalog, descriptions)
    except RetrievalError as error:
        return f"==> The indexes could not be built: {error}"
    return f"==> Indexes ready under {settings.paths.artifacts}: {report.summary()}"


def train_ranking_layer(settings: Settings, catalog, interactions) -> str:
    """Fine-tune the cross-encoder and fit the blends when they are missing; a line saying what happened
    (never raises). About 20 minutes on 2 cores for the sample: the chat answers meanwhile."""
    from ranking.cross_encoder import RerankerModelError, read_card
    from ranking.rerank import RERANKER_FOLDER

    folder = settings.paths.artifacts / RERANKER_FOLDER
    try:
        read_card(folder)
        return f"==> Reranker present in {folder}"
    except RerankerModelError:
        pass
    try:
        from assistant.train_ranking import train_ranking
        from data.paraphrases import load_paraphrases, paraphrases_for

        paraphrases = paraphrases_for(catalog, load_paraphrases(settings.paths.paraphrases))
        report = train_ranking(settings, catalog, interactions, paraphrases=paraphrases, progress=False)
    except Exception as error:  # a failed background build must never take the chat down
        return f"==> The reranker could not be trained ({type(error).__name__}: {error}); run concierge train-reranker"
    return f"==> Reranker trained: {report.model_dir}"


def ranking_layer_state(settings: Settings) -> str:
    """One line on the trained ranking layer: present, or which command makes it."""
    from ranking.cross_encoder import RerankerModelError, read_card
    from ranking.rerank import RERANKER_FOLDER

    folder = settings.paths.artifacts / RERANKER_FOLDER
    try:
        read_card(folder)
    except RerankerModelError:
        return "    cross-encoder reranker and MF prior: not built yet (concierge train-reranker)"
    return f"    cross-encoder reranker and MF prior: present in {folder}"


def run_demo(settings: Settings, *, strict: bool = False, open_server: bool = True) -> int:
    _step("Checking the bundled sample", lambda: ensure_sample(settings))
    catalog, interactions = load_data(settings, strict=strict)
    if not open_server:
        built = (settings.paths.artifacts / "chroma").exists() or bool(settings.retrieval.chroma_host)
        print(f"    vector and lexical indexes: {'present' if built else 'not built yet'} (concierge build)")
        print(ranking_layer_state(settings))
        return 0
    # The assistant searches the indexes, so they are built (or brought up to date) first; a missing ranking
    # layer is trained in the background while the chat answers with hybrid retrieval, then swapped in.
    print(build_indexes(settings, catalog), flush=True)
    assistant = build_service(settings, catalog, interactions)
    if "not trained" in assistant.ranking:
        print("==> Training the reranker in the background (about 20 minutes on 2 cores)", flush=True)

        def prepare() -> None:
            print(train_ranking_layer(settings, catalog, interactions), flush=True)
            from assistant.build import swap_ranking

            print(f"==> Ranking: {swap_ranking(assistant, settings, interactions)}", flush=True)

        threading.Thread(target=prepare, daemon=True).start()

    from ui.serve import make_server, ready_line

    served, login = console_login(settings)
    server = _step(
        "Loading the chat interface, the API and the console",
        lambda: make_server(assistant.service, served.server),
    )
    print(ready_line(served.server), flush=True)
    print(login, flush=True)
    server.run()
    return 0
