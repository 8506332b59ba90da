"""The whole ranking table on a catalog of another domain, through the commands a store would run.

A small garden-and-kitchen store in the standard format, written to a temporary folder: ``build``,
``train-reranker`` and ``eval`` (with and without a liked item) run as subprocesses with ``--catalog``,
``--interactions`` and ``--artifacts`` and tiny training settings; everything they write lands under the given
artifacts folder, nothing under the sample's.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

KINDS = {
    ("Kitchen", "Cookware", "Frying Pans"): [
        "Nonstick Frying Pan",
        "Cast Iron Skillet",
        "Stainless Saute Pan",
    ],
    ("Kitchen", "Cookware", "Stock Pots"): ["Stock Pot with Lid", "Enameled Dutch Oven", "Pasta Pot"],
    ("Kitchen", "Utensils", "Knives"): ["Chef Knife", "Paring Knife Set", "Bread Knife"],
    ("Garden", "Tools", "Pruners"): ["Bypass Pruning Shears", "Anvil Pruner", "Hedge Shears"],
    ("Garden", "Watering", "Hoses"): ["Expandable Garden Hose", "Rubber Hose 50 ft", "Soaker Hose"],
    ("Garden", "Watering", "Sprinklers"): ["Oscillating Sprinkler", "Impact Sprinkler", "Sprinkler Timer"],
}
BRANDS = ["Lodge", "Fiskars", "Gardena", "Tramontina"]


def write_store(folder: Path) -> tuple[Path, Path]:
    rng = random.Random(5)
    items = []
    for path, titles in KINDS.items():
        for title in titles:
            for size in ("Small", "Large"):
                items.append(
                    {
                        "item_id": f"g{len(items):03d}",
                        "title": f"{title}, {size}",
                        "brand": rng.choice(BRANDS),
                        "categories": list(path),
                        "price": round(rng.uniform(8, 90), 2),
                    }
                )
    # Shoppers stay near one kind of thing: each buys a few items of one top-level department.
    events = []
    for user in range(160):
        department = "Kitchen" if user % 2 else "Garden"
        pool = [item for item in items if item["categories"][0] == department]
        for step, item in enumerate(rng.sample(pool, 3 + user % 3)):
            events.append({"user_id": f"s{user:03d}", "item_id": item["item_id"], "timestamp": 1000 + step})
    catalog = folder / "store" / "items.jsonl"
    catalog.parent.mkdir(parents=True)
    catalog.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
    interactions = folder / "store" / "interactions.jsonl"
    interactions.write_text("".join(json.dumps(event) + "\n" for event in events), encoding="utf-8")
    return catalog, interactions


TINY = """
[ranking]
reranker_train_users = 40
reranker_epochs = 1
reranker_max_length = 32
reranker_validation_queries = 20
blend_validation_episodes = 8
"""


def concierge(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ui.cli", "--config", str(tmp_path / "tiny.toml"), *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("other-catalog")
    (tmp_path / "tiny.toml").write_text(TINY, encoding="utf-8")
    catalog, interactions = write_store(tmp_path)
    artifacts = tmp_path / "store-artifacts"
    data = ("--catalog", str(catalog), "--interactions", str(interactions), "--artifacts", str(artifacts))
    sample_artifacts = ROOT / "artifacts"
    before = (
        {p: p.stat().st_mtime_ns for p in sample_artifacts.rglob("*")} if sample_artifacts.exists() else {}
    )
    runs = {}
    runs["build"] = concierge(tmp_path, "build", *data, "--provider", "none", "--quiet")
    runs["train"] = concierge(tmp_path, "train-reranker", *data, "--quiet")
    for feedback in ("0", "1"):
        runs[f"eval{feedback}"] = concierge(
            tmp_path,
            "eval",
            *data,
            "--systems",
            "hybrid,cross_encoder,hybrid_prior,blend",
            "--answers",
            "1-3",
            "--feedback",
            feedback,
            "--json",
        )
    script = tmp_path / "conversation.txt"
    script.write_text("hello! i need a garden hose\ncompare 1 and 2\nmore like #1\n#9\n", encoding="utf-8")
    runs["chat"] = concierge(tmp_path, "chat", *data, "--script", str(script), "--json")
    runs["conversation"] = concierge(tmp_path, "eval", *data, "--conversation", "--episodes", "6", "--json")
    after = (
        {p: p.stat().st_mtime_ns for p in sample_artifacts.rglob("*")} if sample_artifacts.exists() else {}
    )
    return artifacts, catalog, runs, before, after


@pytest.mark.parametrize("step", ["build", "train", "eval0", "eval1", "chat", "conversation"])
def test_every_step_succeeds_on_the_other_catalog(store, step):
    _, _, runs, _, _ = store
    done = runs[step]
    assert done.returncode == 0, f"{step}: {done.stderr[-3000:]}"


def test_the_reranker_is_trained_on_that_catalog_into_its_artifacts(store):
    artifacts, catalog, _, _, _ = store
    card = json.loads((artifacts / "reranker" / "concierge-reranker.json").read_text())
    assert card["catalog"] == str(catalog) and card["items"] == 36
    assert card["counts"]["training_queries"] > 0 and card["counts"]["validation_queries"] > 0
    assert card["paraphrases"].startswith("none stored")
    assert (artifacts / "reranker" / "blend.json").exists() and (artifacts / "reranker" / "mf").is_dir()


def test_the_evaluation_reports_every_system_at_every_k(store):
    _, _, runs, _, _ = store
    for name in ("eval0", "eval1"):
        report = json.loads(runs[name].stdout)
        rows = {(row["system"], row["answers"]) for row in report["results"]}
        assert rows == {
            (s, k) for s in ("hybrid", "cross_encoder", "hybrid_prior", "blend") for k in (1, 2, 3)
        }
        assert report["feedback"] == int(name[-1]) and report["sizes"]["episodes"] > 0
        for row in report["results"]:
            assert 0.0 <= row["metrics"]["hit_rate"]["value"] <= 1.0


def test_a_scripted_chat_runs_the_whole_pipeline_on_that_catalog(store):
    _, _, runs, _, _ = store
    document = json.loads(runs["chat"].stdout)
    assert document["ranking"].endswith("(blend)")
    turns = document["turns"]
    assert [turn["message"] for turn in turns][1:] == [
        "hello! i need a garden hose",
        "compare 1 and 2",
        "more like #1",
        "#9",
    ]
    hose = turns[1]["profile"]["slots"]
    assert [(slot["facet"], slot["value"]) for slot in hose] == [("category_3", "Garden > Watering > Hoses")]
    first = turns[1]["reply"]["cards"]
    assert len(first) >= 2 and all("Hose" in card["title"] and card["category"] == "Hoses" for card in first)
    assert turns[2]["reply"]["comparison"]["item_ids"] == [card["item_id"] for card in first[:2]]
    assert turns[3]["profile"]["liked"] == [first[0]["item_id"]]
    more = turns[3]["reply"]["cards"]
    assert more and all(card["category"] == "Hoses" for card in more)
    # The slate after a like is reranked: every card carries the cross-encoder's and the prior's parts.
    assert all(
        card["parts"]["cross_encoder"] is not None and card["parts"]["prior"] is not None for card in more
    )
    assert turns[4]["reply"]["text"].startswith("There is no #9")


def test_the_conversation_benchmark_runs_the_four_strategies_on_that_catalog(store):
    _, _, runs, _, _ = store
    report = json.loads(runs["conversation"].stdout)
    assert report["episodes"] == 6 and report["max_turns"] == 15
    assert [row["strategy"] for row in report["results"]] == [
        "engine",
        "fixed order",
        "fixed + words",
        "no questions",
    ]
    for row in report["results"]:
        shown = row["shown_by_turn"]
        assert len(shown) == 15 and shown == sorted(shown) and 0.0 <= shown[-1] <= 1.0
        assert row["success@15"]["value"] == shown[-1]
        assert 1.0 <= row["average_turns"]["value"] <= 15.0
        hit_rate = [cell["value"] for cell in row["hr@10_by_turn"]]
        # A target on a card is a hit from then on, so HR@10 never falls below the share shown by that turn.
        assert len(hit_rate) == 15 and all(s <= h <= 1.0 for s, h in zip(shown, hit_rate, strict=True))
        assert all(c["interval"][0] <= c["value"] <= c["interval"][1] for c in row["hr@10_by_turn"])
        assert sum(row["first_question"].values()) == 6
    no_questions = report["results"][3]
    assert no_questions["questions_per_episode"] == 0.0 and no_questions["first_question"] == {"none": 6}


def test_nothing_is_written_under_the_samples_artifacts(store):
    _, _, _, before, after = store
    assert after == before
