"""Hybrid candidates: hard filters always hold, RRF fuses as computed by hand, bad input never breaks it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data.facets import PATH_SEPARATOR
from data.normalize import brand_key
from data.schema import Catalog, Item, Price
from data.settings import PathSettings, RetrievalSettings, Settings
from retrieval.candidates import MAX_QUERY_CHARS, CandidateGenerator, truncate_query
from retrieval.channels import ChannelHits, FilterMode, LexicalChannel, PriorChannel, Query, VectorChannel
from retrieval.embeddings import item_text
from retrieval.filters import FilterIndex, Filters
from retrieval.fusion import reciprocal_rank_fusion
from retrieval.index import DESCRIPTIONS, ITEMS, VectorIndex, build_index
from retrieval.lexical import LexicalIndex
from tests.retrieval_fixtures import WordsEmbedder

BRANDS = ("HP", "Canon", "Epson", "BIC", "")
PATHS = (
    ("Ink & Toner", "Ink", "Black"),
    ("Ink & Toner", "Ink", "Color"),
    ("Ink & Toner", "Toner"),
    ("Writing", "Pens"),
    ("Writing", "Pencils"),
    (),
)
WORDS = ("black", "ink", "cartridge", "pen", "blue", "toner", "pencil", "color", "xl", "pack")


def _store(n: int = 60) -> Catalog:
    items = []
    for i in range(n):
        words = " ".join(WORDS[(i * j + j) % len(WORDS)] for j in range(1, 4))
        price = Price(float(i % 17) * 3.5, "USD") if i % 4 else None
        items.append(
            Item(
                f"i{i}",
                f"{BRANDS[i % 5]} {words} M{i}".strip(),
                brand=BRANDS[i % 5],
                categories=PATHS[i % 6],
                price=price,
            )
        )
    return Catalog(items)


STORE = _store()
STORE_BRANDS = frozenset(item.brand_key for item in STORE if item.brand_key)


class ExactVectors:
    """A vector channel over an in-memory matrix: exact cosine search among the allowed items."""

    needs_vector = True
    needs_text = False

    def __init__(self, name, catalog, texts=None):
        self.name = name
        texts = texts or {item.item_id: item.title for item in catalog}
        self.positions = np.array([catalog.position(i) for i in texts])
        self.matrix = WordsEmbedder().embed(list(texts.values()))

    def search(self, query, k, filters, allowed):
        scores = self.matrix @ query.vector
        keep = np.ones(len(scores), dtype=bool) if allowed is None else allowed[self.positions]
        order = np.flatnonzero(keep)[np.argsort(-scores[keep], kind="stable")][:k]
        return ChannelHits(self.positions[order], scores[order])


def _hybrid(catalog: Catalog = STORE, **kwargs) -> CandidateGenerator:
    channels = [LexicalChannel(LexicalIndex.build(catalog)), ExactVectors("vector", catalog)]
    return CandidateGenerator(catalog, channels, WordsEmbedder(), **kwargs)


def _satisfies(item: Item, filters: Filters) -> bool:
    """Every filter, checked item by item, independently of FilterIndex."""
    if filters.category is not None:
        levels = filters.category.split(PATH_SEPARATOR)
        if tuple(item.categories[: len(levels)]) != tuple(levels):
            return False
    # An unbranded item whose title opens with a brand the store knows is that brand's (the store's brands are
    # one word each, so the title's first word is the whole test here).
    opening = brand_key(item.title.split()[0]) if item.title.split() else ""
    maker = item.brand_key or (opening if opening in STORE_BRANDS else "")
    if filters.brands and maker not in filters.brands:
        return False
    if maker and maker in filters.exclude_brands:
        return False
    if filters.min_price is not None or filters.max_price is not None:
        if item.price is None:
            return False
        if filters.min_price is not None and item.price.amount < filters.min_price:
            return False
        if filters.max_price is not None and item.price.amount > filters.max_price:
            return False
    return item.item_id not in filters.exclude_ids


def test_a_model_number_query_finds_its_item_first():
    generator = _hybrid()
    assert generator.generate("M17")[0].item_id == "i17"
    assert generator.generate("m-17 cartridge")[0].item_id == "i17"


def test_brand_exclusion_removes_every_item_of_the_brand():
    candidates = _hybrid().generate("hp black ink", Filters(exclude_brands=frozenset({"HP"})), k=len(STORE))
    assert candidates and all(STORE[c.item_id].brand != "HP" for c in candidates)
    assert len(candidates) == sum(item.brand != "HP" for item in STORE)


def test_an_unbranded_item_whose_title_opens_with_a_known_brand_is_that_brands_to_the_filters():
    catalog = Catalog(
        [
            Item("hp-toner", "HP 78A Toner", brand="HP"),
            Item("hp-printer", "HP Color LaserJet Printer"),
            Item("for-hp", "Toner for HP printers"),
            Item("notes", "Post-it Super Sticky Notes"),
            Item("post-it", "Post-it Notes", brand="Post-it"),
            Item("canon", "Canon PG-245 Ink", brand="Canon"),
        ]
    )
    index = FilterIndex(catalog)

    def passing(filters: Filters) -> list[str]:
        return [item_id for item_id, keep in zip(catalog.positions, index.mask(filters), strict=True) if keep]

    assert passing(Filters(exclude_brands=frozenset({"HP"}))) == ["for-hp", "notes", "post-it", "canon"]
    assert passing(Filters(exclude_brands=frozenset({"post it"}))) == [
        "hp-toner",
        "hp-printer",
        "for-hp",
        "canon",
    ]
    assert passing(Filters(brands=frozenset({"HP"}))) == ["hp-toner", "hp-printer"]
    assert passing(Filters(brands=frozenset({"Post-it", "Canon"}))) == ["notes", "post-it", "canon"]
    found = _hybrid(catalog).generate("hp printer", Filters(exclude_brands=frozenset({"HP"})), k=10)
    assert {c.item_id for c in found} == {"for-hp", "notes", "post-it", "canon"}
    found = _hybrid(catalog).generate("printer", Filters(brands=frozenset({"HP"})), k=10)
    assert {c.item_id for c in found} == {"hp-toner", "hp-printer"}


def test_brand_inclusion_keeps_only_those_brands():
    candidates = _hybrid().generate("ink", Filters(brands=frozenset({"canon", "epson"})), k=100)
    assert {STORE[c.item_id].brand for c in candidates} == {"Canon", "Epson"}


def test_a_category_filter_keeps_only_its_subtree():
    candidates = _hybrid().generate("black ink pen", Filters(category="Ink & Toner > Ink"), k=100)
    assert {STORE[c.item_id].categories[:2] for c in candidates} == {("Ink & Toner", "Ink")}
    assert len(candidates) == sum(item.categories[:2] == ("Ink & Toner", "Ink") for item in STORE)
    assert _hybrid().generate("ink", Filters(category="No Such > Path"), k=10) == []
    assert _hybrid().generate("ink", Filters(category="Ink & Toner > Ink > Black > Deeper"), k=10) == []


def test_excluded_ids_never_come_back():
    generator = _hybrid()
    first = [c.item_id for c in generator.generate("black ink cartridge", k=5)]
    again = generator.generate("black ink cartridge", Filters(exclude_ids=frozenset(first)), k=len(STORE))
    assert not set(first) & {c.item_id for c in again}
    assert len(again) == len(STORE) - 5


def test_price_range_excludes_unpriced_items():
    candidates = _hybrid().generate("ink", Filters(min_price=10, max_price=20), k=100)
    assert candidates and all(10 <= STORE[c.item_id].price.amount <= 20 for c in candidates)


def test_bad_filters_say_what_is_wrong():
    with pytest.raises(ValueError, match="swap"):
        Filters(min_price=20, max_price=10)
    with pytest.raises(ValueError, match="non-negative"):
        Filters(max_price=float("nan"))
    with pytest.raises(ValueError, match="category"):
        Filters(category=" ")


def test_rrf_order_matches_hand_computed_ranks():
    lexical = ChannelHits(np.array([3, 1, 2]), np.array([9.0, 5.0, 1.0]))
    vector = ChannelHits(np.array([2, 3, 4]), np.array([0.9, 0.8, 0.7]))
    fused = reciprocal_rank_fusion({"lexical": lexical, "vector": vector}, rrf_k=60)
    # 3: 1/61 + 1/62; 2: 1/63 + 1/61; 1: 1/62; 4: 1/63.
    assert [position for position, _, _ in fused] == [3, 2, 1, 4]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[1][2] == {"lexical": fused[1][2]["lexical"], "vector": fused[1][2]["vector"]}
    assert (fused[1][2]["lexical"].rank, fused[1][2]["vector"].rank) == (3, 1)
    # Equal fused scores: the better single-channel rank first, then catalog position.
    tie = reciprocal_rank_fusion(
        {"a": ChannelHits(np.array([8, 5]), np.ones(2)), "b": ChannelHits(np.array([5, 8]), np.ones(2))}, 60
    )
    assert [position for position, _, _ in tie] == [5, 8]


def test_weights_scale_each_channels_term():
    lexical = ChannelHits(np.array([3, 1]), np.array([9.0, 5.0]))
    prior = ChannelHits(np.array([1, 3]), np.array([50.0, 40.0]))
    equal = reciprocal_rank_fusion({"lexical": lexical, "prior": prior}, rrf_k=60)
    assert [position for position, _, _ in equal] == [1, 3]  # a tie, broken by catalog position
    heavy = reciprocal_rank_fusion({"lexical": lexical, "prior": prior}, rrf_k=60, weights={"prior": 2.0})
    assert [position for position, _, _ in heavy] == [1, 3] and heavy[0][1] == pytest.approx(1 / 62 + 2 / 61)
    light = reciprocal_rank_fusion({"lexical": lexical, "prior": prior}, rrf_k=60, weights={"prior": 0.5})
    assert [position for position, _, _ in light] == [3, 1] and light[0][1] == pytest.approx(
        1 / 61 + 0.5 / 62
    )
    with pytest.raises(ValueError, match="non-negative"):
        CandidateGenerator(STORE, [], weights={"prior": -1.0})
    with pytest.raises(ValueError, match="non-negative"):
        CandidateGenerator(STORE, [], weights={"prior": float("nan")})


def test_a_prior_channel_answers_without_words_and_respects_filters():
    counts = np.zeros(len(STORE))
    bic = [STORE.position(item.item_id) for item in STORE if item.brand == "BIC"]
    counts[bic[-1]], counts[bic[0]] = 5, 2
    counts[STORE.position("i17")] = 9
    prior = PriorChannel("popularity", counts)
    generator = CandidateGenerator(STORE, [LexicalChannel(LexicalIndex.build(STORE)), prior])
    bic_only = Filters(brands=frozenset({"BIC"}))
    candidates = generator.generate("", bic_only, k=len(STORE))
    # The items the prior knows, best first; then the unknown ones, filled in catalog order, unscored.
    assert [c.item_id for c in candidates[:2]] == [STORE.items[bic[-1]].item_id, STORE.items[bic[0]].item_id]
    assert all(set(c.channels) == {"popularity"} for c in candidates[:2])
    assert all(not c.channels for c in candidates[2:]) and all(
        STORE[c.item_id].brand == "BIC" for c in candidates
    )
    assert generator.generate("", k=1)[0].item_id == "i17"
    # With words, an item both channels find comes first.
    assert set(generator.generate("M17", k=3)[0].channels) == {"lexical", "popularity"}
    with pytest.raises(ValueError, match="non-negative"):
        PriorChannel("popularity", np.array([1.0, -1.0]))


def test_requests_without_words_use_their_own_weights():
    counts = np.arange(len(STORE), dtype=float)  # the last item is the most popular
    channels = [ExactVectors("vector", STORE), PriorChannel("popularity", counts)]
    generator = CandidateGenerator(
        STORE,
        channels,
        WordsEmbedder(),
        weights={"popularity": 0.0},
        weights_without_text={"vector": 0.0},
    )
    wordless = generator.generate("", k=3, context="M15")
    assert [c.item_id for c in wordless] == [item.item_id for item in STORE.items[::-1][:3]]
    worded = generator.generate("M15", k=1)[0]
    assert worded.item_id == "i15" and worded.score == pytest.approx(1 / 61)


def test_candidates_carry_their_score_breakdown():
    generator = _hybrid(settings=RetrievalSettings(rrf_k=10))
    best = generator.generate("M17")[0]
    assert set(best.channels) <= {"lexical", "vector"} and "lexical" in best.channels
    expected = sum(1 / (10 + part.rank) for part in best.channels.values())
    assert best.score == pytest.approx(expected)
    assert best.position == STORE.position(best.item_id)


def test_channels_can_be_enabled_one_by_one():
    lexical = CandidateGenerator.lexical_only(STORE)
    assert {name for c in lexical.generate("black ink", k=10) for name in c.channels} == {"lexical"}
    vector = CandidateGenerator(STORE, [ExactVectors("vector", STORE)], WordsEmbedder())
    assert {name for c in vector.generate("black ink", k=10) for name in c.channels} == {"vector"}
    with pytest.raises(ValueError, match="embedder"):
        CandidateGenerator(STORE, [ExactVectors("vector", STORE)])
    with pytest.raises(ValueError, match="differ"):
        CandidateGenerator(STORE, [ExactVectors("v", STORE), ExactVectors("v", STORE)], WordsEmbedder())


def test_context_reaches_the_vector_channels_only():
    calls = []

    class Recording(WordsEmbedder):
        def embed(self, texts):
            calls.extend(texts)
            return super().embed(texts)

    generator = CandidateGenerator(
        STORE, [LexicalChannel(LexicalIndex.build(STORE)), ExactVectors("vector", STORE)], Recording()
    )
    only_context = generator.generate("", Filters(category="Writing"), k=5, context="Writing Pens")
    assert calls == ["Writing Pens"]
    assert all(set(c.channels) == {"vector"} for c in only_context)
    both = generator.generate("M15", k=5, context="Writing")
    assert calls[-1] == "M15 Writing" and set(both[0].channels) == {"lexical", "vector"}


def test_an_empty_query_gives_the_filtered_items_in_catalog_order():
    generator = _hybrid()
    for query in ("", "   ", "😀🎉", "?!"):
        candidates = generator.generate(query, Filters(brands=frozenset({"BIC"})), k=5)
        assert [c.item_id for c in candidates] == [item.item_id for item in STORE if item.brand == "BIC"][:5]
        assert all(c.score == 0.0 and not c.channels for c in candidates)
    assert [c.item_id for c in generator.generate("", k=3)] == ["i0", "i1", "i2"]


def test_a_short_list_is_filled_up_to_k_with_allowed_items():
    candidates = CandidateGenerator.lexical_only(STORE).generate("M15", Filters(category="Writing"), k=8)
    assert len(candidates) == 8 and all(STORE[c.item_id].categories[0] == "Writing" for c in candidates)
    assert candidates[0].item_id == "i15" and candidates[0].channels and not candidates[-1].channels


def test_huge_and_foreign_queries_do_not_break_it():
    generator = _hybrid()
    huge = "black ink " * 50_000
    assert len(truncate_query(huge)) <= MAX_QUERY_CHARS
    assert len(generator.generate(huge, k=10)) == 10
    for query in ("مرحبا، أريد حبر أسود", "黑色墨盒", "インク", "🖊️ 🖨️", "Ünïcödé ınk"):
        candidates = generator.generate(query, Filters(category="Writing"), k=7)
        assert len(candidates) == 7 and all(STORE[c.item_id].categories[0] == "Writing" for c in candidates)


def test_an_empty_catalog_gives_no_candidates():
    generator = CandidateGenerator.lexical_only(Catalog([]))
    assert generator.generate("ink", Filters(category="Ink", exclude_ids=frozenset({"x"}))) == []


def test_an_item_with_only_a_title_is_a_candidate():
    catalog = Catalog([*STORE.items, Item("bare", "Paper shredder")])
    assert _hybrid(catalog).generate("shredder", k=3)[0].item_id == "bare"


def test_k_zero_and_bad_batches():
    generator = _hybrid()
    assert generator.generate("ink", k=0) == []
    with pytest.raises(ValueError, match="k must"):
        generator.generate("ink", k=-1)
    with pytest.raises(ValueError, match="one of each per request"):
        generator.generate_batch(["a", "b"], [Filters()])
    batch = generator.generate_batch(
        ["black ink", "blue pen"], [Filters(), Filters(brands=frozenset({"bic"}))], k=4
    )
    assert batch == [
        generator.generate("black ink", k=4),
        generator.generate("blue pen", Filters(brands={"bic"}), k=4),
    ]


def test_a_query_vector_is_computed_once_per_batch():
    calls = []

    class Counting(WordsEmbedder):
        def embed(self, texts):
            calls.append(list(texts))
            return super().embed(texts)

    generator = CandidateGenerator(STORE, [ExactVectors("vector", STORE)], Counting())
    generator.generate_batch(["ink", "", "pen"], [Filters()] * 3, k=3)
    assert calls == [["ink", "pen"]]
    assert Query("x").vector is None


FILTERS = st.builds(
    Filters,
    category=st.one_of(
        st.none(),
        st.sampled_from([PATH_SEPARATOR.join(path[:n]) for path in PATHS for n in range(1, len(path) + 1)]),
    ),
    brands=st.frozensets(st.sampled_from(["hp", "canon", "epson", "bic", "nosuch"]), max_size=2),
    exclude_brands=st.frozensets(st.sampled_from(["hp", "canon", "epson", "bic", ""]), max_size=2),
    min_price=st.one_of(st.none(), st.floats(0, 30)),
    max_price=st.one_of(st.none(), st.floats(30, 60)),
    exclude_ids=st.frozensets(st.sampled_from([item.item_id for item in STORE]), max_size=10),
)
GENERATOR = _hybrid()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    filters=FILTERS,
    query=st.one_of(
        st.sampled_from(["", "black ink", "M12 pen", "toner xl pack", "😀"]), st.text(max_size=30)
    ),
    k=st.integers(0, 70),
)
def test_every_candidate_satisfies_every_filter(filters, query, k):
    candidates = GENERATOR.generate(query, filters, k=k)
    allowed = [item.item_id for item in STORE if _satisfies(item, filters)]
    assert all(_satisfies(STORE[c.item_id], filters) for c in candidates)
    # As many as asked for, or every allowed item when fewer are allowed; no item twice.
    assert len(candidates) == min(k, len(allowed))
    assert len({c.item_id for c in candidates}) == len(candidates)
    scores = [c.score for c in candidates]
    assert scores == sorted(scores, reverse=True)


# A described item: its generated description is all that says it is a shredder.
DESCRIBED = {"i7": "a quiet paper shredder", "i30": "a heavy duty paper shredder for the office"}


@pytest.fixture(scope="module")
def chroma(tmp_path_factory):
    settings = Settings(paths=PathSettings(artifacts=tmp_path_factory.mktemp("chroma")))
    embedder = WordsEmbedder()
    build_index(settings, STORE, DESCRIBED, progress=False, embedder=embedder)
    with VectorIndex.open(settings, embedder=embedder) as index:
        yield index


def _vector_generator(index, mode=FilterMode.OVERFETCH, descriptions=True):
    collections = {ITEMS: None}
    if descriptions:
        collections[DESCRIPTIONS] = np.array([item.item_id in DESCRIBED for item in STORE])
    channel = VectorChannel("vector", index, STORE, collections, filtering=mode)
    return CandidateGenerator(STORE, [channel], WordsEmbedder())


@pytest.mark.parametrize(
    "filters",
    [
        Filters(),
        Filters(category="Writing"),
        Filters(category="Ink & Toner > Ink > Black", brands=frozenset({"hp", "canon"})),
        # The ``where`` also lets the unbranded items through (their maker is left to the mask): it must ask again.
        Filters(brands=frozenset({"hp"})),
        Filters(exclude_brands=frozenset({"hp", "canon"}), exclude_ids=frozenset({"i2", "i3", "i4"})),
        Filters(min_price=10.0, max_price=40.0),
        Filters(category="No > Such"),
    ],
)
def test_every_filter_mode_gives_the_same_candidates(chroma, filters):
    query = "black ink cartridge pack"
    found = {
        mode: [
            (c.item_id, round(c.channels["vector"].score, 5))
            for c in _vector_generator(chroma, mode).generate(query, filters, k=12)
            if c.channels
        ]
        for mode in FilterMode
    }
    where = found[FilterMode.WHERE]
    for mode in (FilterMode.OVERFETCH,):
        # Equal scores at the cut may be taken in either order; everything above the cut is the same.
        assert [score for _, score in found[mode]] == [score for _, score in where]
        cut = where[-1][1] if where else None
        assert {i for i, score in found[mode] if score != cut} == {i for i, score in where if score != cut}
    assert all(_satisfies(STORE[item_id], filters) for item_id, _ in where)
    allowed = sum(_satisfies(item, filters) for item in STORE)
    assert len(where) == min(12, allowed)


def test_a_generated_description_lifts_its_item_by_its_better_similarity(chroma):
    plain = _vector_generator(chroma, descriptions=False).generate("paper shredder", k=5)
    described = _vector_generator(chroma).generate("paper shredder", k=5)
    assert {c.item_id for c in described[:2]} == {"i7", "i30"}
    # No item's own text mentions a shredder: without descriptions every similarity is 0.
    assert all(c.channels["vector"].score == pytest.approx(0.0) for c in plain)
    # The channel's score is the better of the item's two similarities: here its description's.
    embedder = WordsEmbedder()
    query = embedder.embed(["paper shredder"])[0]
    best = next(c for c in described if c.item_id == "i7")
    own, generated = embedder.embed([item_text(STORE["i7"]), item_text(STORE["i7"], DESCRIBED["i7"])]) @ query
    assert best.channels["vector"].score == pytest.approx(max(own, generated)) == pytest.approx(generated)
