"""A small store and the real assistant built on it: the lexical ranking system (bm25s on disk), the real
understanding, policy, explanations and session stores. Shared by the engine, service, chat and UI tests."""

from __future__ import annotations

from pathlib import Path

from assistant.build import Assistant, build_assistant
from assistant.sessions import MemoryStore, SessionStore
from data.schema import Catalog, Interaction, Interactions, Item, Price
from data.settings import ConversationSettings, PathSettings, Settings
from ranking.candidate_systems import LexicalSystem

INK = ("Office Electronics", "Ink")
PHONES = ("Office Electronics", "Phones")
PENS = ("Office Supplies", "Pens")
PAPER = ("Office Supplies", "Paper")

ITEMS = [
    (
        "ink-hp",
        "HP 61 Black Ink Cartridge",
        "HP",
        INK,
        24.0,
        "Black ink for HP Deskjet printers. Prints sharp text.",
    ),
    ("ink-hp-color", "HP 61 Color Ink Cartridge", "HP", INK, 29.0, "Tri-color ink for HP Deskjet printers."),
    ("ink-canon", "Canon PG-245 Black Ink", "Canon", INK, 19.0, "Black ink for Canon Pixma printers."),
    ("ink-canon-xl", "Canon PG-245 XL Black Ink", "Canon", INK, 31.0, "High yield black ink for Pixma."),
    ("ink-epson", "Epson 212 Black Ink", "Epson", INK, 17.0, "Black ink for Epson Expression printers."),
    ("phone-vtech", "VTech Cordless Phone with Answering Machine", "VTech", PHONES, 39.0, ""),
    ("phone-att", "AT&T Corded Phone", "AT&T", PHONES, 22.0, "A corded desk phone with a big display."),
    ("phone-panasonic", "Panasonic Cordless Phone", "Panasonic", PHONES, 49.0, ""),
    ("pen-bic", "BIC Round Stic Ballpoint Pens, Blue, 12 Pack", "BIC", PENS, 4.0, "Blue ballpoint pens."),
    ("pen-pilot", "Pilot G2 Gel Pens, Black", "Pilot", PENS, 9.0, "Smooth black gel ink pens."),
    ("pen-bic-black", "BIC Cristal Pens, Black", "BIC", PENS, 5.0, "Black ballpoint pens."),
    (
        "paper-hammermill",
        "Hammermill Copy Paper, 500 Sheets",
        "Hammermill",
        PAPER,
        8.0,
        "Bright white copy paper.",
    ),
    (
        "paper-hp",
        "HP Printer Paper, 500 Sheets",
        "HP",
        PAPER,
        9.0,
        "Multipurpose paper for inkjet and laser.",
    ),
]
POPULARITY = {"ink-hp": 6, "ink-canon": 4, "ink-hp-color": 2, "phone-vtech": 5, "pen-bic": 7, "paper-hp": 3}


def small_catalog(prices: bool = False, brands: bool = True, categories: bool = True) -> Catalog:
    return Catalog(
        [
            Item(
                item_id,
                title,
                description=text,
                brand=brand if brands else "",
                categories=path if categories else (),
                price=Price(price, "USD") if prices else None,
            )
            for item_id, title, brand, path, price, text in ITEMS
        ]
    )


def small_interactions() -> Interactions:
    events = []
    for item, count in POPULARITY.items():
        events.extend(Interaction(f"u{n}", item) for n in range(count))
    # Two more shoppers chose both HP inks (u0 and u1 did too): the evidence of the explanations.
    events.extend(Interaction(f"both{n}", item) for n in range(2) for item in ("ink-hp", "ink-hp-color"))
    return Interactions(events)


def small_settings(folder: Path, **conversation: object) -> Settings:
    """Settings for the small store; questions come without cards unless a test asks for them (one test does),
    so that each slate in the other tests is exactly the one under test."""
    conversation.setdefault("cards_with_questions", False)
    return Settings(
        paths=PathSettings(artifacts=folder / "artifacts", descriptions=folder / "descriptions.jsonl"),
        conversation=ConversationSettings(**conversation),
    )


def small_assistant(
    folder: Path,
    catalog: Catalog | None = None,
    store: SessionStore | None = None,
    **conversation: object,
) -> Assistant:
    settings = small_settings(folder, **conversation)
    system = LexicalSystem(settings)
    catalog = catalog or small_catalog()
    from data.facets import discover_facets
    from ranking.system import TrainingData

    interactions = small_interactions()
    system.fit(TrainingData.build(catalog, discover_facets(catalog), interactions))
    return build_assistant(settings, catalog, interactions, system=system, store=store or MemoryStore())
