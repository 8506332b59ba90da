"""A category for the need the rules could not place: the bi-encoder first, then optionally the chat model.

:func:`assistant.understand.understand` names a category only when the message says a label's own words
("printer ink"). When it leaves need words but no category edit ("pruners" in a store whose label is Pruning
Shears), :class:`CategoryResolver` tries two more stages, each only for what the one before left in doubt:

1. **Embeddings.** The need is embedded with the project's bi-encoder (:func:`retrieval.embeddings.get_embedder`)
   and compared with every category label and each of its alternatives (:func:`assistant.understand.
   label_alternatives`), embedded once when the resolver is built. The best label is taken when its cosine
   similarity reaches ``embedding_threshold`` and it beats the best other label by ``embedding_margin``.
2. **The chat model** (off unless ``understanding.llm`` is set and a model is configured). When the best label
   is below the threshold but at ``llm_floor`` or above, the model is asked to pick one of the
   ``llm_candidates`` best labels, or none. Its answer must be one of the offered labels, exactly (case and
   surrounding punctuation aside); anything else, a failure or a timeout makes no edit
   (:func:`assistant.llm.rephrase` catches every failure).

A resolved category is added as an ``=`` edit; the need keeps its words, which still help retrieval ("cast iron
skillet" under Frying Pans). The resolver holds the label vectors of one catalog and nothing of a conversation.

How the figures were chosen, on the validation halves only (odd rows of ``understanding-sample.tsv`` and
``understanding-garden.tsv``; ``python -m benchmarks.bench_understanding --stages rules+embeddings``): 7
validation messages reach this stage, 6 of which expect no category ("whiteboard", "desk lamp", "a trash can",
"something for watering the lawn", ...) and one Self-Stick Notes ("post-it notes", need "notes"). Their best
label similarities run up to 0.747 ("watering lawn" -> Watering, a category the corpus does not want for so
vague a need), and the one wanted label is never the best (Note Cards 0.694 over Self-Stick Notes 0.660). Of the
text sets compared (the whole label; its alternatives; both; the category path) and thresholds 0.40-0.80 with
margins 0-0.12, none gets more than the rules' 6 of 7 right. With the label and its alternatives, 0.75 is the
lowest threshold that loses none, at any margin; a margin helps only at lower thresholds (0.05 turns 2 of 7 into
5 of 7 at 0.55, removing near-ties like Chalkboards 0.635 / Clipboards 0.596 for "whiteboard"), so at 0.75 there
is none by default. The category path as the text ties at best (6 of 7 at 0.45-0.50 with a margin of 0.05: it
gains "notes" and loses "watering lawn"). Matching the need with item titles instead (the majority category of
the 10 nearest items) was worse: Dry Erase Boards for both "whiteboard" messages. Hence a high threshold: a
wrong category filters out every right item, a missing one only leaves the words to retrieval.

The LLM stage was measured the same way, with the packaged Qwen2.5-Coder-0.5B (``llm.provider = local``) and
``llm_floor`` 0.5: it named a category for all 6 validation messages it was asked about and none was right
(Chalkboards for "whiteboard", Note Cards for "notes", Back & Seat Cushions for "trash", Watering for "watering
lawn"); exact accuracy fell from 0.940 to 0.906 (office) and 1.000 to 0.960 (garden). It is off by default.

Since no setting of the embedding stage got more validation messages right than the rules alone, the resolver
is off by default too (``understanding.embeddings``): a store whose shoppers name things by words its labels do
not hold can turn it on, at about 11 ms a message that reaches it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import StrEnum

import numpy as np

from assistant.understand import (
    CatalogVocabulary,
    EditKind,
    SlotEdit,
    Understanding,
    label_alternatives,
)
from data.settings import UnderstandingSettings
from retrieval.embeddings import TextEmbedder
from retrieval.profile import Constraint, Op


class Stage(StrEnum):
    """The stage that named a category (:attr:`Resolved.stage`)."""

    RULES = "rules"
    EMBEDDINGS = "embeddings"
    LLM = "llm"
    NONE = "none"


@dataclass(frozen=True)
class LabelMatch:
    """A category value and how close its label is to the need.

    Attributes:
        facet: The category level's facet (``"category_3"``).
        key: The value's key (its path).
        label: The label the shopper sees.
        similarity: The best cosine similarity of the need with the label or one of its alternatives.
    """

    facet: str
    key: str
    label: str
    similarity: float


@dataclass(frozen=True)
class Resolved:
    """What the resolver did with one understanding.

    Attributes:
        understanding: The understanding, with the category edit added when one was resolved.
        stage: Which stage named the category (:class:`Stage`; ``none`` when none did).
        candidates: The best labels for the need, best first (empty when the stages did not run).
    """

    understanding: Understanding
    stage: Stage = Stage.NONE
    candidates: tuple[LabelMatch, ...] = ()


@dataclass(frozen=True)
class _Value:
    facet: str
    key: str
    label: str
    count: int


class CategoryResolver:
    """Resolves the need of an understanding to a category of one catalog (see the module docstring).

    Args:
        vocabulary: The catalog's vocabulary (its category facets are the labels offered).
        embedder: The bi-encoder; the labels are embedded here, once.
        settings: Which stages run, and their thresholds.
        chat_model: The chat model for the LLM stage (:func:`assistant.llm.get_chat_model`); ``None`` skips it.

    Raises:
        ValueError: A threshold outside [-1, 1], a negative margin, or fewer than 2 LLM candidates.

    Example:
        >>> from data.facets import discover_facets
        >>> from data.schema import Catalog, Item
        >>> from assistant.understand import understand
        >>> from retrieval.embeddings import get_embedder
        >>> catalog = Catalog([Item("1", "Bypass Pruner", categories=("Garden", "Pruning Shears"))])
        >>> vocabulary = CatalogVocabulary.build(catalog, discover_facets(catalog))
        >>> resolver = CategoryResolver(vocabulary, get_embedder(), UnderstandingSettings())  # doctest: +SKIP
        >>> resolver.resolve(understand("pruners", vocabulary)).stage  # doctest: +SKIP
        'embeddings'
    """

    def __init__(
        self,
        vocabulary: CatalogVocabulary,
        embedder: TextEmbedder,
        settings: UnderstandingSettings,
        chat_model: object | None = None,
    ) -> None:
        for name in ("embedding_threshold", "llm_floor"):
            if not -1.0 <= getattr(settings, name) <= 1.0:
                raise ValueError(
                    f"understanding.{name} = {getattr(settings, name)}: a cosine similarity is in [-1, 1]"
                )
        if settings.embedding_margin < 0:
            raise ValueError(f"understanding.embedding_margin = {settings.embedding_margin}: use 0 or more")
        if settings.llm_candidates < 2:
            raise ValueError(
                f"understanding.llm_candidates = {settings.llm_candidates}: offer the model at least 2 labels"
            )
        self.settings = settings
        self.embedder = embedder
        self.chat_model = chat_model if settings.llm else None
        self._values: list[_Value] = []
        texts: list[str] = []
        owners: list[int] = []
        for facet in vocabulary.facets.category_levels():
            for value in facet.values:
                for text in dict.fromkeys((value.label, *label_alternatives(value.label))):
                    texts.append(text)
                    owners.append(len(self._values))
                self._values.append(_Value(facet.name, value.key, value.label, value.count))
        self._owners = np.array(owners, dtype=np.int64)
        self._vectors = embedder.embed(texts) if settings.embeddings and texts else None

    def candidates(self, need: str, k: int) -> tuple[LabelMatch, ...]:
        """The ``k`` labels closest to ``need``, best first, one value per label (of values sharing a label,
        the one with the most items)."""
        if self._vectors is None or not need.strip():
            return ()
        query = self.embedder.embed([need])[0]
        scores = np.full(len(self._values), -np.inf, dtype=np.float32)
        np.maximum.at(scores, self._owners, self._vectors @ query)
        order = sorted(range(len(self._values)), key=lambda i: (-scores[i], -self._values[i].count))
        found: dict[str, LabelMatch] = {}
        for i in order:
            value = self._values[i]
            if value.label.casefold() not in found:
                found[value.label.casefold()] = LabelMatch(
                    value.facet, value.key, value.label, float(scores[i])
                )
                if len(found) == k:
                    break
        return tuple(found.values())

    def resolve(self, understood: Understanding) -> Resolved:
        """``understood`` with a category edit for its need when a stage names one (see the module docstring)."""
        if any(edit.facet.startswith("category_") for edit in understood.edits):
            return Resolved(understood, Stage.RULES)
        if not understood.need or self._vectors is None:
            return Resolved(understood)
        settings = self.settings
        found = self.candidates(understood.need, max(2, settings.llm_candidates))
        if not found:
            return Resolved(understood)
        best, runner_up = found[0], found[1] if len(found) > 1 else None
        margin = best.similarity - (runner_up.similarity if runner_up else -1.0)
        if best.similarity >= settings.embedding_threshold and margin >= settings.embedding_margin:
            return Resolved(_with_category(understood, best), Stage.EMBEDDINGS, found)
        if self.chat_model is not None and best.similarity >= settings.llm_floor:
            offered = found[: settings.llm_candidates]
            picked = pick_label(self.chat_model, understood.need, offered)
            if picked is not None:
                return Resolved(_with_category(understood, picked), Stage.LLM, found)
        return Resolved(understood, Stage.NONE, found)


def _with_category(understood: Understanding, match: LabelMatch) -> Understanding:
    edit = SlotEdit(
        EditKind.SET, match.facet, Constraint(match.facet, Op.EQ, match.key), said=understood.need
    )
    return replace(understood, edits=(*understood.edits, edit))


_PROMPT = (
    "You sort a shopper's request into one category of an online store. Reply with the name of the one "
    "category below that the request is about, copied exactly, or with none if no category clearly fits."
)


def pick_label(model: object, need: str, offered: tuple[LabelMatch, ...]) -> LabelMatch | None:
    """The offered label the chat model picks for ``need``; ``None`` for "none", a label not offered, or any
    failure of the model.

    Example:
        >>> offered = (LabelMatch("category_1", "Garden", "Garden", 0.6),)
        >>> pick_label(None, "a rake", offered) is None
        True
    """
    from assistant.llm import rephrase

    by_name = {_folded(match.label): match for match in offered}
    listed = "\n".join(f"- {match.label}" for match in offered)
    messages = [
        ("system", _PROMPT),
        ("user", f"Request: {need}\nCategories:\n{listed}\n- none\nCategory:"),
    ]
    # One line is the whole answer: stopping there keeps a rambling model from spending its token budget
    # (a call took 8 s instead of 0.1-1 s with the local 0.5B model on 2 loaded cores).
    bound = model.bind(stop=["\n"]) if hasattr(model, "bind") else model
    answer = rephrase(
        bound,
        messages,
        fallback="",
        check=lambda text: [] if _folded(text) in by_name else [f"not an offered label: {text!r}"],
        clean=_first_line,
    )
    return by_name.get(_folded(answer.text)) if answer.used_model else None


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0].strip() if lines else ""


def _folded(text: str) -> str:
    """A label as compared: case-folded, without list marks, quotes or a final full stop around it."""
    return re.sub(r"^[\s\-*\"'`]+|[\s\"'`.]+$", "", text).casefold()
