"""Short descriptions for catalog items whose own text is thin, written by the model or from a template.

An item is thin when its cleaned seller description has fewer than ``settings.describe.min_description_chars``
characters (80 by default). The threshold sits where seller text starts to say what a title does not: in the
bundled sample, texts under 80 characters are mostly the title again ("Mead Press-It Seal-It 6 x 9 Envelopes,
Office Pack 30 Count (76084)"), a catalog code line ("Sparco Products Hanging Name Badge Kit 01615 Media
Holders") or a slogan ("Superior, smear-resistant colors"), while texts of 80 to 130 characters are mostly one or
two sentences of features. 791 of the 2,417 sample items are thin, 638 of them with no text at all; the item's
own text stays in the prompt and in the checker's source, so a short text that does say something is used.

For each thin item the model is asked for one or two factual sentences built only from the catalog fields, with
a few worked examples (small models copy a pattern far better than they follow rules). Every text passes the fact
checker (:func:`assistant.grounding.check_grounded`) and a few format checks; a rejected text, a failure or a
missing model gives the template of :func:`template_description`, which is what shoppers see most.

Records are kept by :mod:`data.descriptions`: a rerun reuses every record whose item has not changed, so only new
and changed items are written, and an interrupted run goes on where it stopped.

Example:
    >>> from data.schema import Item
    >>> item = Item("0", "VTech CS6114 Cordless Phone", brand="VTech",
    ...             categories=("Office Electronics", "Telephones", "Cordless Telephones"))
    >>> print(template_description(item))
    Cordless Telephones from VTech: VTech CS6114 Cordless Phone. Listed under Office Electronics > Telephones.
"""

from __future__ import annotations

import enum
import re
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from langchain_core.language_models import BaseChatModel

from assistant.grounding import Finding, SourceFacts, catalog_brands, check_grounded, is_placeholder_brand
from assistant.llm import Generated, ModelUnavailableError, Outcome, get_chat_model, model_name, rephrase
from data.descriptions import (
    TEMPLATE_MODEL,
    Description,
    DescriptionLog,
    is_thin,
    load_descriptions,
    source_hash,
    write_descriptions,
)
from data.schema import Catalog, Item
from data.settings import Settings

__all__ = [
    "DescribeReport",
    "DescribedItem",
    "Redo",
    "describe_catalog",
    "describe_item",
    "description_problems",
    "description_prompt",
    "template_description",
    "thin_items",
]

PATH_SEPARATOR = " > "


def template_description(item: Item) -> str:
    """The description built from the catalog fields alone: category, brand, title, path and attributes.

    The leaf category comes first because it says what the thing is in the store's own words; the title follows
    whole because it carries the sizes, counts and model numbers shoppers search for.

    Example:
        >>> print(template_description(Item("1", "Blue Widget.", categories=("Widgets",), attributes=(("size", "L"),))))
        Widgets: Blue Widget. Details: size L.
    """
    title = item.title.rstrip(" .")
    leaf = item.categories[-1] if item.categories else ""
    brand = "" if is_placeholder_brand(item.brand) else item.brand
    if leaf and brand:
        sentences = [f"{leaf} from {brand}: {title}."]
    elif leaf:
        sentences = [f"{leaf}: {title}."]
    elif brand:
        sentences = [f"From {brand}: {title}."]
    else:
        sentences = [f"{title}."]
    if len(item.categories) > 1:
        sentences.append(f"Listed under {PATH_SEPARATOR.join(item.categories[:-1])}.")
    if item.attributes:
        sentences.append("Details: " + "; ".join(f"{key} {value}" for key, value in item.attributes) + ".")
    return " ".join(sentences)


def _facts_block(item: Item) -> str:
    lines = [f"Title: {item.title}"]
    if not is_placeholder_brand(item.brand):
        lines.append(f"Brand: {item.brand}")
    if item.categories:
        lines.append(f"Category: {PATH_SEPARATOR.join(item.categories)}")
    lines += [f"{key.capitalize()}: {value}" for key, value in item.attributes]
    if item.description:
        lines.append(f"Seller text: {item.description}")
    return "\n".join(lines)


# Worked examples in the style wanted: only facts from the fields, rephrased, no opinions. They are made-up
# items, not catalog ones, so that a rerun on the catalog never sees its own answer in the prompt.
_EXAMPLES: tuple[tuple[Item, str], ...] = (
    (
        Item(
            "example-1",
            "Swingline Stapler, Optima 40, Full Strip, 40 Sheet Capacity, Black (87845)",
            brand="Swingline",
            categories=("Office & School Supplies", "Staplers & Punches", "Staplers"),
        ),
        "The Swingline Optima 40 (87845) is a black full-strip stapler that staples up to 40 sheets.",
    ),
    (
        Item(
            "example-2",
            "Pilot G2 Retractable Gel Ink Rollerball Pens, Fine Point, Blue Ink, 12-Pack (31021)",
            brand="Pilot",
            categories=("Office & School Supplies", "Writing & Correction Supplies", "Pens & Refills"),
        ),
        "A 12-pack of Pilot G2 retractable rollerball pens with blue gel ink and a fine point (31021).",
    ),
    (
        Item(
            "example-3",
            "Packing Tape Dispenser Gun, 2 Inch",
            description="Side-loading tape gun.",
            categories=("Office & School Supplies", "Tape, Adhesives & Fasteners", "Tape Dispensers"),
        ),
        "A side-loading tape dispenser gun for 2 inch packing tape.",
    ),
)


def description_prompt(item: Item, max_words: int) -> list[tuple[str, str]]:
    """The chat messages that ask for a description of ``item``: rules, worked examples, then the item.

    Example:
        >>> roles = [role for role, _ in description_prompt(Item("1", "Pen"), max_words=45)]
        >>> roles[0], roles[-1], len(roles)
        ('system', 'human', 8)
    """
    rules = (
        "You write product descriptions for an online store. Write one or two plain sentences, "
        f"at most {max_words} words, that say what the product is, using only the facts given. Never add "
        "anything that is not in the facts: no numbers, sizes, model numbers, brands, colours, materials, "
        "features, compatibility, warranties, prices, uses or opinions. Do not praise the product."
    )
    messages = [("system", rules)]
    for example, answer in _EXAMPLES:
        messages += [("human", _facts_block(example)), ("ai", answer)]
    messages.append(("human", _facts_block(item)))
    return messages


# Openings a chat model adds before the text proper ("Sure! Here is a description:").
_PREAMBLE = re.compile(
    r"^(?:sure|certainly|okay|ok)?[!,. ]*(?:here(?:'s| is) (?:a |the )?[\w ]*?:|description:)\s*", re.I
)
# A sentence ends at an end mark followed by a space or the end; "DECT 6.0" and "U.S." do not end one.
_SENTENCE = re.compile(r"\S.*?[.!?]+(?=\s|$)")


def _clean(text: str, max_words: int) -> str:
    """The model's answer as a candidate: one paragraph, no preamble or quotes, whole sentences within the limit.

    An answer cut off by the token limit ends mid-sentence: its last partial sentence is dropped.
    """
    text = " ".join(text.split())
    text = _PREAMBLE.sub("", text).strip().strip("\"'“”").strip()
    kept: list[str] = []
    for sentence in _SENTENCE.findall(text):
        if len(" ".join([*kept, sentence]).split()) > max_words:
            break
        kept.append(sentence.strip())
    return " ".join(kept)


_PROMPT_ECHO = re.compile(r"\b(?:title|brand|category|seller text)\s*:", re.IGNORECASE)


def description_problems(text: str, facts: SourceFacts, max_words: int) -> list[Finding | str]:
    """Everything wrong with a candidate description: the fact checker's findings, and format problems
    (``"format: ..."``) that make a text unusable whatever its facts: echoed field names, too short or too long,
    looping, or the item sold as an accessory for its own kind.

    Example:
        >>> for problem in description_problems("Title: a pen", SourceFacts(title="Pen"), max_words=45):
        ...     print(problem)
        format: repeats the prompt field names
        format: fewer than 5 words
        new_word: 'Title' is not in the source
    """
    problems: list[Finding | str] = []
    if _PROMPT_ECHO.search(text):
        problems.append("format: repeats the prompt field names")
    words = re.findall(r"\w+", text.casefold())
    if len(words) < 5:
        problems.append("format: fewer than 5 words")
    if len(text.split()) > max_words:
        problems.append(f"format: more than {max_words} words")
    trigrams = list(zip(words, words[1:], words[2:], strict=False))
    if len(trigrams) - len(set(trigrams)) > 2:
        problems.append("format: repeats itself")
    if _for_its_own_kind(text, facts.categories):
        problems.append("format: calls the item an accessory for its own kind")
    return problems + list(check_grounded(text, facts))


def _for_its_own_kind(text: str, categories: tuple[str, ...]) -> bool:
    """Whether the text sells the item as something *for* the kind of thing it is.

    A small model reads "Printer, Copier, Scanner, 2-Sided Duplex" and writes "A 2-Sided Duplex for Epson
    printers" about a printer: every word is in the source, so only the category's head noun ("Printers") after
    "for" gives it away.
    """
    if not categories:
        return False
    head = categories[-1].split()[-1].casefold()
    singular = head[:-2] if head.endswith(("xes", "ches", "shes")) else head.removesuffix("s")
    pattern = rf"\bfor(?:\W+[\w'&-]+){{0,3}}?\W+{re.escape(singular)}(?:e?s)?\b"
    return re.search(pattern, text, re.IGNORECASE) is not None


def _kind(problem: Finding | str) -> str:
    return problem.kind.value if isinstance(problem, Finding) else "format"


@dataclass(frozen=True)
class DescribedItem:
    """The description of one item and how it came about.

    Attributes:
        record: What to store.
        generated: The model call's outcome (its text, tokens and time).
        problems: Why the model's text was rejected: finding kinds (``"number"``, ``"brand"``...) and
            ``"format"`` for a text unusable as a description; empty when it was not rejected.
    """

    record: Description
    generated: Generated
    problems: tuple[str, ...] = ()


def describe_item(
    item: Item, model: BaseChatModel | None, settings: Settings, known_brands: Iterable[str] = ()
) -> DescribedItem:
    """Write the description of one item: the model's checked text, or the template."""
    facts = SourceFacts.from_item(item, known_brands)
    max_words = settings.describe.max_words
    problems: list[Finding | str] = []

    def check(text: str) -> list[Finding | str]:
        problems[:] = description_problems(text, facts, max_words)
        return problems

    generated = rephrase(
        model,
        description_prompt(item, max_words),
        template_description(item),
        check,
        lambda text: _clean(text, max_words),
    )
    record = Description(
        item_id=item.item_id,
        text=generated.text,
        generated=generated.used_model,
        model=generated.model_name if generated.used_model else TEMPLATE_MODEL,
        source_hash=source_hash(item),
        created=Description.now(),
        fallback="" if generated.used_model else generated.outcome.value,
        detail=generated.reason,
        rejected_text=generated.raw_text if generated.outcome is Outcome.REJECTED else "",
        tried_model=generated.model_name if generated.outcome in {Outcome.REJECTED, Outcome.FAILED} else "",
    )
    kinds = tuple(dict.fromkeys(_kind(problem) for problem in problems)) or ("empty",)
    return DescribedItem(record, generated, kinds if generated.outcome is Outcome.REJECTED else ())


def _recheck(record: Description, item: Item, settings: Settings, known_brands: Iterable[str]) -> Description:
    """A stored generated text, checked again with the current checker: kept, or replaced by the template.

    The checker improves over time; a text it accepted once must still pass before it is kept.
    """
    facts = SourceFacts.from_item(item, known_brands)
    problems = description_problems(record.text, facts, settings.describe.max_words)
    if not record.generated or not problems:
        return record
    return Description(
        item_id=item.item_id,
        text=template_description(item),
        generated=False,
        model=TEMPLATE_MODEL,
        source_hash=record.source_hash,
        created=Description.now(),
        fallback=Outcome.REJECTED.value,
        detail=f"rechecked ({record.model}): " + "; ".join(str(problem) for problem in problems),
        rejected_text=record.text,
        tried_model=record.model,
    )


def thin_items(catalog: Catalog, settings: Settings) -> list[Item]:
    """The items that get a description, in catalog order."""
    return [item for item in catalog if is_thin(item, settings.describe.min_description_chars)]


@dataclass
class DescribeReport:
    """What a :func:`describe_catalog` run did.

    Attributes:
        thin: Items that need a description.
        cached: Items whose stored record was still current and was kept.
        accepted: Items described by the model, the text accepted by the checker.
        rejected: Items whose model text was rejected, given the template.
        failed: Items where the model call failed or timed out, given the template.
        no_model: Items given the template because no model is configured or available.
        seconds: Time spent describing (model loading included).
        output_tokens: Tokens the model generated, where it reports them.
        model_seconds: Time spent in model calls.
        model_name: The model used, ``""`` when none.
        model_problem: Why no model could be used although one was configured, else ``""``.
        truncated_line: A cut-off last line found in the file (see :class:`data.descriptions.StoredDescriptions`).
        rejection_kinds: How many rejected texts had each problem (see :attr:`DescribedItem.problems`).
        rechecked_rejected: Stored model texts that the current checker rejects, replaced by the template (they
            count as cached).
        stored: Records in the file after the run.

    Example:
        >>> DescribeReport(thin=10, accepted=3, rejected=1, seconds=2.0).items_per_s
        2.0
    """

    thin: int = 0
    cached: int = 0
    accepted: int = 0
    rejected: int = 0
    failed: int = 0
    no_model: int = 0
    seconds: float = 0.0
    output_tokens: int = 0
    model_seconds: float = 0.0
    model_name: str = ""
    model_problem: str = ""
    truncated_line: int | None = None
    rejection_kinds: Counter[str] = field(default_factory=Counter)
    rechecked_rejected: int = 0
    stored: int = 0

    @property
    def described(self) -> int:
        """Items described in this run (not taken from the cache)."""
        return self.accepted + self.rejected + self.failed + self.no_model

    @property
    def items_per_s(self) -> float:
        return self.described / self.seconds if self.seconds else 0.0

    @property
    def tokens_per_s(self) -> float | None:
        """Generated tokens per second of model time, ``None`` when the model reports no token counts."""
        return self.output_tokens / self.model_seconds if self.output_tokens and self.model_seconds else None

    @property
    def rejection_rate(self) -> float:
        """Share of the model's answers that the checks rejected."""
        answered = self.accepted + self.rejected
        return self.rejected / answered if answered else 0.0

    def summary(self) -> str:
        """A few lines for a person, as the CLI prints them."""
        lines = [
            f"{self.thin:,} thin items: {self.cached:,} cached, {self.described:,} described in {self.seconds:.1f} s "
            f"({self.items_per_s:.2f} items/s)",
            f"model: {self.model_name or 'none'}"
            + (f" ({self.model_problem})" if self.model_problem else ""),
            f"accepted {self.accepted:,}, rejected -> template {self.rejected:,} "
            f"({self.rejection_rate:.0%} of answers), failed -> template {self.failed:,}, "
            f"no model -> template {self.no_model:,}",
        ]
        if self.tokens_per_s is not None:
            lines.append(f"{self.output_tokens:,} tokens generated, {self.tokens_per_s:.1f} tokens/s")
        if self.rejection_kinds:
            reasons = ", ".join(f"{kind} {count}" for kind, count in self.rejection_kinds.most_common())
            lines.append(f"rejection reasons: {reasons}")
        if self.rechecked_rejected:
            lines.append(
                f"{self.rechecked_rejected:,} stored model texts fail the current checks -> template"
            )
        if self.truncated_line is not None:
            lines.append(f"skipped a truncated last line ({self.truncated_line}) left by an interrupted run")
        lines.append(f"{self.stored:,} descriptions stored")
        return "\n".join(lines)


class Redo(enum.Enum):
    """Which stored records a run writes again, besides those whose item changed.

    ``STALE`` (the default) keeps every record of an unchanged item, except a template written for want of a
    working model when a model is now available (a rejected text is not retried: the same model and prompt give
    the same answer). ``OTHER_MODELS`` also writes again every record the current model did not make: texts of
    another model, and templates that stand for another model's rejected text; it is how a catalog described
    with one model moves to a better one. ``ALL`` writes every record again.
    """

    STALE = "stale"
    OTHER_MODELS = "other-models"
    ALL = "all"


def _current(record: Description | None, item: Item, model: str, redo: Redo) -> bool:
    """Whether a stored record can be kept (``model`` is the current model's name, ``""`` without one)."""
    if record is None or record.source_hash != source_hash(item) or redo is Redo.ALL:
        return False
    if model and record.fallback in {Outcome.NO_MODEL.value, Outcome.FAILED.value}:
        return False
    if redo is Redo.OTHER_MODELS and model:
        return (record.model if record.generated else record.tried_model) == model
    return True


def describe_catalog(
    settings: Settings,
    catalog: Catalog,
    *,
    limit: int | None = None,
    progress: bool = True,
    redo: Redo = Redo.STALE,
) -> DescribeReport:
    """Describe the thin items of a catalog that have no current description, into ``paths.descriptions``.

    Each record is appended and flushed as it is made. A run without ``limit`` that finishes then rewrites the
    file with exactly the current records in catalog order, dropping items that are gone or no longer thin.
    The whole run holds the file's one-writer lock.

    Args:
        settings: ``llm`` picks the model, ``describe`` the threshold and length, ``paths.descriptions`` the file.
        catalog: The items to describe.
        limit: Describe at most this many items now (the rest stays for the next run).
        progress: Show a progress bar on standard error.
        redo: Which stored records to write again (see :class:`Redo`).

    Raises:
        DescriptionsLockedError: Another run is writing the same file.
    """
    from tqdm import tqdm

    started = time.perf_counter()
    report = DescribeReport()
    path = settings.paths.descriptions
    with DescriptionLog(path) as log:
        stored = load_descriptions(path)
        report.truncated_line = log.truncated_line
        thin = thin_items(catalog, settings)
        report.thin = len(thin)

        model: BaseChatModel | None = None
        if settings.llm.provider != "none":
            try:
                model = get_chat_model(settings)
            except ModelUnavailableError as error:
                report.model_problem = str(error)
        report.model_name = model_name(model)

        todo = [
            item
            for item in thin
            if not _current(stored.records.get(item.item_id), item, report.model_name, redo)
        ]
        report.cached = len(thin) - len(todo)
        if limit is not None:
            todo = todo[:limit]
        brands = catalog_brands(catalog)
        records = dict(stored.records)
        queued = {item.item_id for item in todo}
        for item in thin:
            record = records.get(item.item_id)
            if item.item_id in queued or record is None or not record.generated:
                continue
            rechecked = _recheck(record, item, settings, brands)
            if rechecked is not record:
                log.append(rechecked)
                records[item.item_id] = rechecked
                report.rechecked_rejected += 1
        bar = tqdm(todo, desc="describe", unit="item", disable=not progress)
        for item in bar:
            described = describe_item(item, model, settings, brands)
            log.append(described.record)
            records[item.item_id] = described.record
            _count(report, described)
            bar.set_postfix(accepted=report.accepted, template=report.described - report.accepted)
        if limit is None:
            final = [records[item.item_id] for item in thin if item.item_id in records]
            content = "".join(record.to_json() + "\n" for record in final)
            if not path.exists() or path.read_text(encoding="utf-8") != content:
                write_descriptions(final, path)
            report.stored = len(final)
        else:
            report.stored = len(records)
    report.seconds = time.perf_counter() - started
    return report


def _count(report: DescribeReport, described: DescribedItem) -> None:
    generated = described.generated
    if generated.outcome is Outcome.ACCEPTED:
        report.accepted += 1
    elif generated.outcome is Outcome.REJECTED:
        report.rejected += 1
        report.rejection_kinds.update(described.problems)
    elif generated.outcome is Outcome.FAILED:
        report.failed += 1
    else:
        report.no_model += 1
    report.output_tokens += generated.output_tokens or 0
    report.model_seconds += generated.seconds
