"""How well the assistant understands shopper messages: exact edits and per slot type, on table-driven corpora.

Usage:
    python -m benchmarks.bench_understanding [--corpus PATH ...] [--stages STAGES ...] [--half validation|test|all]
        [--failures] [--json]

A corpus (``benchmarks/corpora/understanding-*.tsv``) holds one message per row with the cards the shopper sees
and what the message must be understood as (the format is in each file's header). A header line
``# catalog: FILE`` names the catalog the corpus is written for (beside the corpus); without one it is the
bundled sample. For each corpus the script builds the catalog's vocabulary (:class:`assistant.understand.
CatalogVocabulary`), runs :func:`assistant.understand.understand` on every message, then the stages of
:class:`assistant.resolve.CategoryResolver` that ``--stages`` names (``rules``, ``rules+embeddings``,
``rules+embeddings+llm``; each repeatable, default the first two), and prints for each stage:

- **exact**: the share of messages whose intents, slot edits and card references are all exactly as expected;
- **per slot type**: for intents, categories, brands, prices, negations (``!=`` edits), cleared slots, references
  and the no-prices answer, the share right among the messages where the corpus or the reply has that type;
- **need words**: the share of messages with expected need words whose need holds all of them;
- the time per message (p50 and p95, microseconds), and how many messages each resolver stage gave a category.

The ``llm`` stage uses the chat model of the settings' ``[llm]`` section (``CONCIERGE_LLM_PROVIDER=local`` for the
packaged model); with provider ``none`` it is reported as skipped and the other stages still run. The resolver's
thresholds are the settings' ``[understanding]`` ones.

Odd rows are the validation half (rules may be tuned on them), even rows the test half; ``--half`` picks one,
and the table shows both and all. ``--failures`` lists the messages not understood exactly.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from assistant.resolve import CategoryResolver, Stage
from assistant.understand import CatalogVocabulary, EditKind, Understanding, understand
from data.facets import FacetKind, Facets, discover_facets
from data.load import load_catalog
from data.settings import Settings, load_settings
from retrieval.profile import PRICE, Op

CORPORA = Path(__file__).resolve().parent / "corpora"
SLOTS = ("intent", "category", "brand", "price", "negation", "clear", "reference", "noprice")
STAGES = ("rules", "rules+embeddings", "rules+embeddings+llm")


class CorpusError(ValueError):
    """A corpus row that cannot be read; the message names the file, line and part."""


@dataclass(frozen=True)
class Case:
    """One corpus row: the message, the cards shown, and what it must be understood as."""

    line: int
    shown: int
    message: str
    expected: dict[str, frozenset[str]]
    need_words: tuple[str, ...] = ()
    half: str = "validation"


@dataclass
class Corpus:
    path: Path
    catalog: Path | None
    cases: list[Case] = field(default_factory=list)


def read_corpus(path: Path) -> Corpus:
    """Read a corpus file (format in its header).

    Raises:
        CorpusError: A row without three tab-separated columns, a non-numeric ``shown`` or an unknown part.
    """
    path = Path(path)
    corpus = Corpus(path, None)
    row = 0
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if raw.startswith("# catalog:"):
            corpus.catalog = path.parent / raw.split(":", 1)[1].strip()
            continue
        if not raw.strip() or raw.startswith("#"):
            continue
        columns = raw.split("\t")
        if len(columns) != 3:
            raise CorpusError(f"{path}:{number}: expected 3 tab-separated columns, found {len(columns)}")
        shown, message, spec = columns
        if not shown.strip().isdigit():
            raise CorpusError(f"{path}:{number}: cards shown must be a number, got {shown!r}")
        expected, need = _parse_spec(spec, f"{path}:{number}")
        row += 1
        corpus.cases.append(
            Case(number, int(shown), message, expected, need, "validation" if row % 2 else "test")
        )
    return corpus


def _parse_spec(spec: str, where: str) -> tuple[dict[str, frozenset[str]], tuple[str, ...]]:
    parts: dict[str, set[str]] = {slot: set() for slot in SLOTS}
    need: tuple[str, ...] = ()
    for part in (p.strip() for p in spec.split(" ; ") if p.strip()):
        if part == "noprice":
            parts["noprice"].add("yes")
        elif part.startswith("intent="):
            parts["intent"].update(v.strip() for v in part[7:].split(","))
        elif part.startswith("need="):
            need = tuple(part[5:].split())
        elif part.startswith("ref="):
            parts["reference"].update(v.strip() for v in part[4:].split(","))
        elif part.startswith("clear="):
            parts["clear"].add(part[6:].strip())
        elif part.startswith(("category!=", "brand!=")):
            slot, value = part.split("!=", 1)
            parts[slot].add(f"!={value.strip()}")
            parts["negation"].add(f"{slot}!={value.strip()}")
        elif part.startswith(("category=", "brand=")):
            slot, value = part.split("=", 1)
            parts[slot].add(f"={value.strip()}")
        elif part.startswith("price"):
            parts["price"].add(part.replace(" ", ""))
        else:
            raise CorpusError(f"{where}: unknown part {part!r}")
    return {slot: frozenset(values) for slot, values in parts.items()}, need


def observed(understood: Understanding, facets: Facets, has_prices: bool) -> dict[str, frozenset[str]]:
    """An understanding in the corpus's terms (categories by label, brands by key)."""
    parts: dict[str, set[str]] = {slot: set() for slot in SLOTS}
    parts["intent"].update(intent.value for intent in understood.intents)
    parts["reference"].update(str(n) for n in understood.references)
    if understood.price_asked and not has_prices:
        parts["noprice"].add("yes")
    for edit in understood.edits:
        if edit.kind is EditKind.CLEAR:
            parts["clear"].add(edit.facet)
            continue
        constraint = edit.constraint
        op = "!=" if constraint.op is Op.NE else "="
        if edit.facet == PRICE:
            value = constraint.value
            text = f"{value[0]:g}-{value[1]:g}" if isinstance(value, tuple) else f"{value:g}"
            parts["price"].add(f"price{'=' if constraint.op is Op.BETWEEN else constraint.op.value}{text}")
            continue
        facet = facets[edit.facet]
        if facet.kind is FacetKind.CATEGORY:
            label = facet.values[facet.code(str(constraint.value))].label
            parts["category"].add(f"{op}{label}")
            slot, value = "category", label
        else:
            parts["brand"].add(f"{op}{constraint.value}")
            slot, value = "brand", str(constraint.value)
        if op == "!=":
            parts["negation"].add(f"{slot}!={value}")
    return {slot: frozenset(values) for slot, values in parts.items()}


@dataclass
class Outcome:
    case: Case
    got: dict[str, frozenset[str]]
    need: str
    seconds: float
    stage: Stage = Stage.NONE

    @property
    def exact(self) -> bool:
        return all(self.got[slot] == self.case.expected[slot] for slot in SLOTS)

    @property
    def need_ok(self) -> bool:
        words = set(self.need.split())
        return all(word in words for word in self.case.need_words)


def run_corpus(
    corpus: Corpus, vocabulary: CatalogVocabulary, resolver: CategoryResolver | None = None
) -> list[Outcome]:
    """Understand every message, then resolve it when a resolver is given; the time covers both."""
    outcomes = []
    for case in corpus.cases:
        started = time.perf_counter()
        understood = understand(case.message, vocabulary, shown=case.shown)
        stage = Stage.NONE
        if resolver is not None:
            resolved = resolver.resolve(understood)
            understood, stage = resolved.understanding, resolved.stage
        seconds = time.perf_counter() - started
        got = observed(understood, vocabulary.facets, vocabulary.has_prices)
        outcomes.append(Outcome(case, got, understood.need, seconds, stage))
    return outcomes


def summarise(outcomes: Sequence[Outcome]) -> dict[str, object]:
    """Exact accuracy, per-slot accuracy (among messages where the slot appears) and need-word recall."""
    summary: dict[str, object] = {
        "messages": len(outcomes),
        "exact": float(np.mean([o.exact for o in outcomes])) if outcomes else 0.0,
    }
    for slot in SLOTS:
        relevant = [o for o in outcomes if o.case.expected[slot] or o.got[slot]]
        summary[slot] = {
            "messages": len(relevant),
            "accuracy": float(np.mean([o.got[slot] == o.case.expected[slot] for o in relevant]))
            if relevant
            else None,
        }
    with_need = [o for o in outcomes if o.case.need_words]
    summary["need_words"] = {
        "messages": len(with_need),
        "accuracy": float(np.mean([o.need_ok for o in with_need])) if with_need else None,
    }
    summary["resolved"] = {
        stage.value: sum(o.stage is stage for o in outcomes) for stage in (Stage.EMBEDDINGS, Stage.LLM)
    }
    if outcomes:
        micros = np.array([o.seconds for o in outcomes]) * 1e6
        summary["p50_us"], summary["p95_us"] = (
            float(np.percentile(micros, 50)),
            float(np.percentile(micros, 95)),
        )
    return summary


def _corpus_catalog(corpus: Corpus, settings: Settings):
    path = corpus.catalog or settings.paths.catalog
    catalog, _ = load_catalog(path)
    return path, catalog


def _chat_model(settings: Settings):
    """The settings' chat model for the ``llm`` stage, or ``None`` with the reason on stderr."""
    from assistant.llm import ModelUnavailableError, get_chat_model

    try:
        model = get_chat_model(settings)
    except ModelUnavailableError as error:
        print(f"note: the llm stage is skipped: {error}", file=sys.stderr)
        return None
    if model is None:
        print(
            "note: the llm stage is skipped: llm.provider = none (set CONCIERGE_LLM_PROVIDER=local)",
            file=sys.stderr,
        )
    return model


def _resolver(
    stage: str, vocabulary: CatalogVocabulary, settings: Settings, chat_model
) -> CategoryResolver | None:
    if stage == "rules":
        return None
    from retrieval.embeddings import get_embedder

    understanding = replace(settings.understanding, embeddings=True, llm=stage.endswith("+llm"))
    embedder = get_embedder(settings.retrieval.embedding_batch_size)
    return CategoryResolver(vocabulary, embedder, understanding, chat_model)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_understanding", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--corpus",
        type=Path,
        action="append",
        default=None,
        help="corpus file (repeatable; default: every benchmarks/corpora/understanding-*.tsv)",
    )
    parser.add_argument(
        "--stages",
        choices=STAGES,
        action="append",
        default=None,
        help="the stages to run, each measured on its own (repeatable; default: rules and rules+embeddings)",
    )
    parser.add_argument(
        "--half", choices=("validation", "test", "all"), default="all", help="rows listed by --failures"
    )
    parser.add_argument("--failures", action="store_true", help="list the messages not understood exactly")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    paths = args.corpus or sorted(CORPORA.glob("understanding-*.tsv"))
    stages = list(dict.fromkeys(args.stages or STAGES[:2]))
    settings = load_settings()
    chat_model = _chat_model(settings) if any(stage.endswith("+llm") for stage in stages) else None
    if chat_model is None:
        stages = [stage for stage in stages if not stage.endswith("+llm")]
    document = []
    for path in paths:
        try:
            corpus = read_corpus(path)
        except (OSError, CorpusError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        catalog_path, catalog = _corpus_catalog(corpus, settings)
        started = time.perf_counter()
        vocabulary = CatalogVocabulary.build(catalog, discover_facets(catalog))
        build_s = time.perf_counter() - started
        for stage in stages:
            started = time.perf_counter()
            resolver = _resolver(stage, vocabulary, settings, chat_model)
            resolver_s = time.perf_counter() - started
            outcomes = run_corpus(corpus, vocabulary, resolver)
            halves = {
                "validation": [o for o in outcomes if o.case.half == "validation"],
                "test": [o for o in outcomes if o.case.half == "test"],
                "all": outcomes,
            }
            entry = {
                "corpus": str(path),
                "catalog": str(catalog_path),
                "stages": stage,
                "items": len(catalog),
                "vocabulary_build_s": build_s,
                "resolver_build_s": resolver_s,
                "halves": {name: summarise(rows) for name, rows in halves.items()},
                "failures": [
                    {
                        "line": o.case.line,
                        "message": o.case.message,
                        "expected": {s: sorted(v) for s, v in o.case.expected.items() if v},
                        "got": {s: sorted(v) for s, v in o.got.items() if v},
                    }
                    for o in halves[args.half]
                    if not o.exact
                ],
            }
            document.append(entry)
    if args.json:
        print(json.dumps(document, indent=2))
        return 0
    for entry in document:
        print(
            f"{entry['corpus']} on {entry['catalog']} ({entry['items']:,} items; vocabulary built in "
            f"{entry['vocabulary_build_s']:.2f} s)"
        )
        print(f"stages: {entry['stages']} (resolver built in {entry['resolver_build_s']:.2f} s)")
        print(f"{'':12} " + " ".join(f"{name:>17}" for name in entry["halves"]))
        rows = [("messages", lambda s: f"{s['messages']}"), ("exact", lambda s: f"{s['exact']:.3f}")]
        for slot in (*SLOTS, "need_words"):
            rows.append(
                (
                    slot,
                    lambda s, slot=slot: (
                        "-"
                        if s[slot]["accuracy"] is None
                        else f"{s[slot]['accuracy']:.3f} of {s[slot]['messages']}"
                    ),
                )
            )
        rows.append(("resolved e/l", lambda s: f"{s['resolved']['embeddings']} / {s['resolved']['llm']}"))
        rows.append(("p50 / p95 us", lambda s: f"{s['p50_us']:.0f} / {s['p95_us']:.0f}"))
        for name, cell in rows:
            print(f"{name:12} " + " ".join(f"{cell(s):>17}" for s in entry["halves"].values()))
        if args.failures:
            print(f"not exact ({args.half} half):")
            for failure in entry["failures"]:
                print(f"  line {failure['line']}: {failure['message']!r}")
                print(f"    expected {failure['expected']}")
                print(f"    got      {failure['got']}")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
