"""Shopper paraphrases: the checks, the rewrite, the stored file, resume, the lock and the CLI's target order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from pydantic import Field

import assistant.paraphrase as paraphrase
from assistant.paraphrase import (
    benchmark_targets,
    paraphrase_catalog,
    paraphrase_item,
    paraphrase_problems,
    paraphrase_prompt,
    shared_words,
)
from data.descriptions import Description, source_hash, write_descriptions
from data.errors import DataError
from data.paraphrases import (
    Paraphrase,
    ParaphraseLog,
    ParaphrasesLockedError,
    Status,
    load_paraphrases,
    paraphrases_for,
)
from data.schema import Catalog, Interaction, Interactions, Item
from data.settings import Settings, load_settings
from ui.cli import main

STAPLER = Item(
    "s1",
    "Swingline Stapler, Desktop, 20 Sheet Capacity",
    brand="Swingline",
    categories=("Office Products", "Office & School Supplies", "Staplers"),
)
TAPE = Item(
    "t1",
    "Scotch Magic Tape, 3/4 x 1000 Inches",
    description="Invisible tape.",
    brand="Scotch",
    categories=("Office Products", "Tape"),
)
PEN = Item("p1", "BIC Round Stic Ball Pen, Fine Point", brand="BIC", categories=("Office Products", "Pens"))
CREATED = "2025-01-01T00:00:00+00:00"

FASTEN = "something to fasten loose sheets together on my desk"
MEND = "i want to mend a torn page so nobody notices"
WRITE = "i need to jot notes during meetings"


class RecordingModel(FakeListChatModel):
    """A fake chat model that answers from a list and keeps every prompt it was sent."""

    sent: list[list[tuple[str, str]]] = Field(default_factory=list)

    def _call(self, messages: list[Any], stop: Any = None, run_manager: Any = None, **kwargs: Any) -> str:
        self.sent.append([(message.type, message.text) for message in messages])
        return super()._call(messages, stop, run_manager, **kwargs)


def settings_at(tmp_path: Path) -> Settings:
    return load_settings(
        environ={},
        paths={
            "paraphrases": tmp_path / "paraphrases.jsonl",
            "descriptions": tmp_path / "descriptions.jsonl",
        },
        llm={"provider": "local"},
    )


def with_model(monkeypatch: pytest.MonkeyPatch, *responses: str) -> RecordingModel:
    model = RecordingModel(responses=list(responses))
    monkeypatch.setattr(paraphrase, "get_chat_model", lambda settings: model)
    return model


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_an_answer_sharing_one_word_is_accepted_with_its_overlap_recorded():
    model = RecordingModel(responses=[f'"{FASTEN}"'])
    done = paraphrase_item(STAPLER, model)
    record = done.record
    assert (record.text, record.status, record.attempts, record.overlap) == (
        FASTEN,
        Status.ACCEPTED,
        1,
        ("sheets",),
    )
    assert (record.model, record.source_hash, record.rejected_text) == (
        "fake-list-chat-model",
        source_hash(STAPLER),
        "",
    )
    assert len(model.sent) == 1 and model.sent[0][-1] == (
        "human",
        "Title: Swingline Stapler, Desktop, 20 Sheet Capacity\n"
        "Category: Office Products > Office & School Supplies > Staplers",
    )


def test_an_overlapping_answer_is_rewritten_once_with_the_words_to_avoid():
    model = RecordingModel(responses=["a desktop stapler for my office", FASTEN])
    record = paraphrase_item(STAPLER, model).record
    assert (record.text, record.status, record.attempts, record.overlap) == (
        FASTEN,
        Status.ACCEPTED,
        2,
        ("sheets",),
    )
    assert record.rejected_text == "a desktop stapler for my office"
    assert record.detail == "overlap: desktop, stapler, office (3 words of the item's own text)"
    first, rewrite = model.sent
    # Only the item's message changes, so that a local model reuses its work on the rules and the examples.
    assert rewrite[:-1] == first[:-1]
    assert rewrite[-1] == (
        "human",
        "Title: Swingline Stapler, Desktop, 20 Sheet Capacity\n"
        "Category: Office Products > Office & School Supplies > Staplers\n"
        "Without the words: desktop, stapler, office",
    )


def test_digits_and_brands_are_words_to_avoid_and_a_failure_without_any_is_not_asked_again():
    model = RecordingModel(responses=["a Swingline for 20 sheets", FASTEN])
    paraphrase_item(STAPLER, model)
    assert model.sent[1][-1][1].endswith("Without the words: swingline, sheets, 20")
    long = " ".join(["word"] * 21)
    done = paraphrase_item(STAPLER, RecordingModel(responses=[long, FASTEN]))
    assert (done.record.status, done.record.attempts, done.record.detail) == (
        Status.DROPPED,
        1,
        "length: more than 20 words",
    )


def test_a_rewrite_that_overlaps_again_is_dropped_with_its_overlap():
    model = RecordingModel(responses=["a desktop stapler", "a stapler for the office desktop"])
    done = paraphrase_item(STAPLER, model)
    assert json.loads(done.record.to_json()) | {"created": ""} == {
        "item_id": "s1",
        "text": "",
        "status": "dropped",
        "model": "fake-list-chat-model",
        "attempts": 2,
        "overlap": ["stapler", "office", "desktop"],
        "source_hash": source_hash(STAPLER),
        "created": "",
        "rejected_text": "a stapler for the office desktop",
        "detail": "overlap: stapler, office, desktop (3 words of the item's own text)",
    }
    assert done.problems == (
        ("overlap: desktop, stapler (2 words of the item's own text)",),
        ("overlap: stapler, office, desktop (3 words of the item's own text)",),
    )


@pytest.mark.parametrize(
    ("text", "brands", "expected"),
    [
        (FASTEN, (), []),
        ("something to hold 20 pages at once", (), ["digit: 20"]),
        ("a way to bind pages, like the 3M ones", ("3M",), ["digit: 3M", "brand: 3M"]),
        ("works like a Sharpie but fastens paper", ("Sharpie",), ["brand: Sharpie"]),
        # The item's own brand is refused in any case; a catalog brand that is a plain word only as a name.
        ("a swingline to hold my papers together", (), ["brand: swingline"]),
        ("keeps my pencils sharp and my papers together", ("Sharp",), []),
        ("Sharp tool that joins my papers together", ("Sharp",), ["brand: Sharp"]),
        ("fasten", (), ["length: fewer than 3 words"]),
        (" ".join(["word"] * 21), (), ["length: more than 20 words"]),
        ("i am looking for something", (), ["empty: says nothing about a need"]),
        ("As an AI, I would fasten paper together", (), ["boilerplate: As an AI"]),
        ("Here is a shopper's query: join paper", (), ["boilerplate: Here is"]),
        ("what is the name of this fastener", (), ["boilerplate: the name"]),
        ("something for the Epson C88+ printer", ("Epson",), ["digit: C88+", "brand: Epson"]),
        ("join my loose paper together. keep it neat", (), ["sentences: more than one"]),
        ("sheets of desktop paper", (), ["overlap: sheets, desktop (2 words of the item's own text)"]),
    ],
)
def test_the_checks(text, brands, expected):
    assert paraphrase_problems(text, STAPLER, "", brands) == expected


def test_the_generated_description_counts_as_the_items_own_text():
    assert shared_words("to fasten a thick stack of paper", STAPLER, "") == []
    described = "A desktop stapler that can fasten a thick stack of paper."
    assert shared_words("to fasten a thick stack of paper", STAPLER, described) == [
        "fasten",
        "thick",
        "stack",
        "paper",
    ]


def test_the_prompt_examples_pass_the_checks_and_are_not_office_items():
    for example, answer in paraphrase._EXAMPLES:
        assert paraphrase_problems(answer, example, "") == []
        assert "Office" not in " ".join(example.categories)
    roles = [role for role, _ in paraphrase_prompt(PEN)]
    assert roles == ["system", "human", "ai", "human", "ai", "human", "ai", "human"]


def test_a_catalog_run_reads_the_generated_descriptions_and_stores_in_catalog_order(tmp_path, monkeypatch):
    settings = settings_at(tmp_path)
    write_descriptions(
        [Description("p1", "A ballpoint pen to jot notes.", False, "template", source_hash(PEN), CREATED)],
        settings.paths.descriptions,
    )
    # PEN comes first; both its answers share "jot" and "notes" with its generated description: dropped.
    model = with_model(monkeypatch, "jot down notes in class", WRITE, FASTEN, MEND)
    report = paraphrase_catalog(settings, Catalog([STAPLER, TAPE, PEN]), order=["p1", "gone"], progress=False)
    assert model.sent[0][-1] == (
        "human",
        "Title: BIC Round Stic Ball Pen, Fine Point\nCategory: Office Products > Pens",
    )
    records = lines(settings.paths.paraphrases)
    assert [(r["item_id"], r["status"], r["text"], r["overlap"]) for r in records] == [
        ("s1", "accepted", FASTEN, ["sheets"]),
        ("t1", "accepted", MEND, []),
        ("p1", "dropped", "", ["jot", "notes"]),
    ]
    assert (report.items, report.accepted, report.dropped, report.failed, report.stored) == (3, 2, 1, 0, 3)
    assert (
        report.summary()
        .splitlines()[0]
        .endswith("accepted 2 (0 on the rewrite), dropped 1 (67% accepted), failed 0")
    )


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path, monkeypatch):
    settings = settings_at(tmp_path)
    with_model(monkeypatch, FASTEN)
    real = paraphrase.paraphrase_item
    calls: list[str] = []

    def interrupted_after_two(item, *args, **kwargs):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(item.item_id)
        return real(item, *args, **kwargs)

    monkeypatch.setattr(paraphrase, "paraphrase_item", interrupted_after_two)
    catalog = Catalog([STAPLER, TAPE, PEN])
    with pytest.raises(KeyboardInterrupt):
        paraphrase_catalog(settings, catalog, progress=False)
    assert [record["item_id"] for record in lines(settings.paths.paraphrases)] == ["s1", "t1"]

    monkeypatch.setattr(paraphrase, "paraphrase_item", real)
    report = paraphrase_catalog(settings, catalog, progress=False)
    assert (report.cached, report.accepted) == (2, 1)
    assert [record["item_id"] for record in lines(settings.paths.paraphrases)] == ["s1", "t1", "p1"]
    again = paraphrase_catalog(settings, catalog, progress=False)
    assert (again.cached, again.paraphrased) == (3, 0)
    assert paraphrase_catalog(settings, catalog, progress=False, redo=True).paraphrased == 3


def test_limit_appends_in_the_given_order_and_the_full_run_compacts(tmp_path, monkeypatch):
    settings = settings_at(tmp_path)
    with_model(monkeypatch, WRITE)
    catalog = Catalog([STAPLER, TAPE, PEN])
    paraphrase_catalog(settings, catalog, order=["p1", "t1"], limit=2, progress=False)
    assert [record["item_id"] for record in lines(settings.paths.paraphrases)] == ["p1", "t1"]
    report = paraphrase_catalog(settings, catalog, order=["p1", "t1"], progress=False)
    assert (report.cached, report.paraphrased, report.stored) == (2, 1, 3)
    assert [record["item_id"] for record in lines(settings.paths.paraphrases)] == ["s1", "t1", "p1"]


def test_a_second_writer_is_refused_naming_the_file_and_the_lock(tmp_path, monkeypatch):
    settings = settings_at(tmp_path)
    with_model(monkeypatch, FASTEN)
    path = settings.paths.paraphrases
    with ParaphraseLog(path), pytest.raises(ParaphrasesLockedError) as error:
        paraphrase_catalog(settings, Catalog([STAPLER]), progress=False)
    assert str(error.value).startswith(f"{path} is being written by another process (lock file {path}.lock).")
    assert path.read_text(encoding="utf-8") == ""
    assert paraphrase_catalog(settings, Catalog([STAPLER]), progress=False).accepted == 1


def test_a_bad_line_is_reported_with_file_line_and_field(tmp_path):
    path = tmp_path / "paraphrases.jsonl"
    good = Paraphrase("s1", FASTEN, Status.ACCEPTED, "m", 1, (), "h", CREATED).to_json()
    bad = json.loads(good) | {"item_id": "t1", "attempts": 0}
    path.write_text(f"{good}\n{json.dumps(bad)}\n{good}\n", encoding="utf-8")
    with pytest.raises(DataError) as error:
        load_paraphrases(path)
    assert str(error.value) == (
        f"{path}:2: field 'attempts' value '0': not a paraphrase record ('attempts' must be a whole number >= 1). "
        "Delete the line (or the file) and run `concierge paraphrase` to write it again."
    )
    assert (error.value.issue.line, error.value.issue.field) == (2, "attempts")


def test_a_truncated_last_line_is_skipped_and_cut_before_appending(tmp_path):
    path = tmp_path / "paraphrases.jsonl"
    good = Paraphrase("s1", FASTEN, Status.ACCEPTED, "m", 1, (), "h", CREATED)
    path.write_text(good.to_json() + "\n" + '{"item_id": "t1", "te', encoding="utf-8")
    stored = load_paraphrases(path)
    assert (list(stored.records), stored.truncated_line) == (["s1"], 2)
    with ParaphraseLog(path) as log:
        assert log.truncated_line == 2
        log.append(Paraphrase("p1", WRITE, Status.ACCEPTED, "m", 1, (), "h", CREATED))
    assert [record["item_id"] for record in lines(path)] == ["s1", "p1"]
    assert load_paraphrases(tmp_path / "missing.jsonl").records == {}


def test_only_accepted_records_of_unchanged_items_are_used():
    renamed = Item(STAPLER.item_id, "Swingline Stapler, Desktop, 25 Sheet Capacity", brand="Swingline")
    records = {
        "s1": Paraphrase("s1", FASTEN, Status.ACCEPTED, "m", 1, (), source_hash(STAPLER), CREATED),
        "t1": Paraphrase("t1", MEND, Status.ACCEPTED, "m", 1, (), source_hash(TAPE), CREATED),
        "p1": Paraphrase("p1", "", Status.DROPPED, "m", 2, ("pen",), source_hash(PEN), CREATED),
        "x9": Paraphrase("x9", WRITE, Status.ACCEPTED, "m", 1, (), "h", CREATED),
    }
    assert paraphrases_for(Catalog([STAPLER, TAPE, PEN]), records) == {"s1": FASTEN, "t1": MEND}
    assert paraphrases_for(Catalog([renamed, TAPE, PEN]), records) == {"t1": MEND}


def test_a_changed_item_is_paraphrased_again(tmp_path, monkeypatch):
    settings = settings_at(tmp_path)
    with_model(monkeypatch, FASTEN)
    paraphrase_catalog(settings, Catalog([STAPLER, TAPE]), progress=False)
    changed = Item(
        TAPE.item_id, "Scotch Magic Tape, Matte Finish", brand="Scotch", categories=TAPE.categories
    )
    report = paraphrase_catalog(settings, Catalog([STAPLER, changed]), progress=False)
    assert (report.cached, report.paraphrased) == (1, 1)
    stored = load_paraphrases(settings.paths.paraphrases)
    assert paraphrases_for(Catalog([STAPLER, changed]), stored) == {"s1": FASTEN, "t1": FASTEN}


def test_no_model_is_an_error_saying_what_to_set(tmp_path):
    settings = load_settings(environ={}, paths={"paraphrases": tmp_path / "p.jsonl"})
    with pytest.raises(paraphrase.ModelUnavailableError, match="--provider local"):
        paraphrase_catalog(settings, Catalog([STAPLER]), progress=False)


def small_benchmark(tmp_path: Path) -> tuple[Path, Path, Catalog, Interactions]:
    items = [Item(f"i{n}", f"Widget model {chr(65 + n)}", categories=("Things",)) for n in range(10)]
    events = [
        Interaction(f"u{user}", f"i{(user + step) % 10}", timestamp=float(step))
        for user in range(10)
        for step in range(3)
    ]
    catalog_path, interactions_path = tmp_path / "items.jsonl", tmp_path / "interactions.jsonl"
    catalog_path.write_text(
        "".join(
            json.dumps({"item_id": i.item_id, "title": i.title, "categories": list(i.categories)}) + "\n"
            for i in items
        ),
        encoding="utf-8",
    )
    interactions_path.write_text(
        "".join(
            json.dumps({"user_id": e.user_id, "item_id": e.item_id, "timestamp": e.timestamp}) + "\n"
            for e in events
        ),
        encoding="utf-8",
    )
    return catalog_path, interactions_path, Catalog(items), Interactions(events)


def test_benchmark_targets_are_test_targets_then_training_items_then_validation_targets(tmp_path):
    _, _, catalog, interactions = small_benchmark(tmp_path)
    # Seed 13 holds out u9 (i9, i0, i1) for test and u3 (i3, i4, i5) for validation, and makes i3 a new arrival
    # (out of training histories). Training user u owns i(u), i(u+1), i(u+2); their training item is the last
    # one that is neither a new arrival nor an evaluation target: u0 i2, u1 i2 (i3 is new), u2 i4, u4 i6 (not
    # i5, u3's target), u5 i7, u6 i8, u7 i9, u8 i0.
    assert benchmark_targets(catalog, interactions, Settings()) == [
        "i1",
        "i2",
        "i4",
        "i6",
        "i7",
        "i8",
        "i9",
        "i0",
        "i5",
    ]


def test_the_cli_does_the_benchmark_targets_first(tmp_path, monkeypatch, capsys):
    catalog_path, interactions_path, _, _ = small_benchmark(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONCIERGE_PATHS_PARAPHRASES", str(tmp_path / "out.jsonl"))
    monkeypatch.setenv("CONCIERGE_PATHS_DESCRIPTIONS", str(tmp_path / "none.jsonl"))
    with_model(monkeypatch, FASTEN)
    args = ["paraphrase", "--catalog", str(catalog_path), "--interactions", str(interactions_path)]
    assert main([*args, "--provider", "local", "--targets-first", "--limit", "4", "--quiet"]) == 0
    assert [record["item_id"] for record in lines(tmp_path / "out.jsonl")] == ["i1", "i2", "i4", "i6"]
    captured = capsys.readouterr()
    assert "9 items first (test targets, the reranker's training items, validation targets)" in captured.err
    assert captured.out.startswith("10 items: 0 cached, 4 paraphrased")
    assert main([*args, "--targets-first"]) == 1
    assert "paraphrases need a model" in capsys.readouterr().err
