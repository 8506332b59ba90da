"""Checks that a text written by a model says nothing its source facts do not say.

Small models invent: a pack size, a model number, a rival brand, a warranty, "waterproof", "the best". Every text
a model writes for a shopper (a generated description, a paraphrased explanation) passes through
:func:`check_grounded` first, and is replaced by a template when anything is found. The checker is deliberately
lexical and strict: a false rejection costs a template sentence, a false acceptance puts an invented fact in front
of a shopper.

What counts as supported is whatever the source text contains (title, brand, category path, attributes, the
item's own description, or any other facts the caller passes): numbers, model codes, brand names, capitalised
names and claim words are each looked up there.

Example:
    >>> facts = SourceFacts(title="BIC Round Stic Ball Pen, Fine Point, Black, 12 Pens", brand="BIC")
    >>> [finding.kind.value for finding in check_grounded("A pack of 12 black BIC pens.", facts)]
    []
    >>> [str(finding) for finding in check_grounded("The best pens, 24 per box.", facts)]
    ["superlative: 'best' is not in the source", "number: '24' is not in the source"]
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from data.normalize import brand_key, clean_text
from data.schema import Catalog, Item

__all__ = [
    "Finding",
    "FindingKind",
    "SourceFacts",
    "catalog_brands",
    "check_grounded",
    "is_placeholder_brand",
]


class FindingKind(StrEnum):
    """What kind of unsupported content a finding is."""

    NUMBER = "number"
    MODEL_CODE = "model_code"
    BRAND = "brand"
    PROPER_NOUN = "proper_noun"
    PRICE = "price"
    SUPERLATIVE = "superlative"
    WARRANTY = "warranty"
    CERTIFICATION = "certification"
    COMPATIBILITY = "compatibility"
    MATERIAL = "material"
    PROPERTY = "property"
    COLOR = "color"
    AUDIENCE = "audience"
    MARKETING = "marketing"
    LINK = "link"
    NEW_WORD = "new_word"


@dataclass(frozen=True)
class Finding:
    """One piece of a text that the source does not support.

    Attributes:
        kind: The rule that found it.
        span: The words of the text it is about, as written there.
    """

    kind: FindingKind
    span: str

    def __str__(self) -> str:
        return f"{self.kind.value}: {self.span!r} is not in the source"


@dataclass(frozen=True)
class SourceFacts:
    """Everything a text about one item may draw on.

    Attributes:
        title: The item's title.
        brand: The item's own brand, ``""`` when unknown.
        categories: The category path, top level first.
        attributes: Key/value facts of the item.
        description: The item's own (seller) description.
        extra: Further facts the caller computed and states in the text (a shopper's answer, a comparison).
        known_brands: Display forms of every brand of the catalog; any of them in a text must be in the source.

    Example:
        >>> SourceFacts.from_item(Item("7", "Scotch Tape", brand="Scotch"), known_brands={"3M"}).brand
        'Scotch'
    """

    title: str
    brand: str = ""
    categories: tuple[str, ...] = ()
    attributes: tuple[tuple[str, str], ...] = ()
    description: str = ""
    extra: tuple[str, ...] = ()
    known_brands: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        # Any iterable of names is accepted; a frozenset makes the facts hashable and the brand pattern cacheable.
        object.__setattr__(self, "known_brands", frozenset(self.known_brands))

    @classmethod
    def from_item(
        cls, item: Item, known_brands: Iterable[str] = (), extra: Iterable[str] = ()
    ) -> SourceFacts:
        """The facts of a catalog item (its price is left out: prices change, texts are cached)."""
        return cls(
            title=item.title,
            brand=item.brand,
            categories=item.categories,
            attributes=item.attributes,
            description=item.description,
            extra=tuple(extra),
            known_brands=frozenset(known_brands),
        )

    def text(self) -> str:
        """All source fields as one text, the haystack every rule searches."""
        parts = [self.title, self.brand, *self.categories, self.description, *self.extra]
        parts += [f"{key} {value}" for key, value in self.attributes]
        return clean_text(" \n ".join(parts))


# Placeholder values that catalogs put in the brand field; they name no brand and are common words.
_PLACEHOLDER_BRANDS = {"generic", "unknown", "various", "compatible", "nonoem", "none", "na", "oem"}


def is_placeholder_brand(brand: str) -> bool:
    """Whether a brand field names no brand: empty, or a placeholder such as ``"Generic"`` or ``"Unknown"``.

    Example:
        >>> is_placeholder_brand("Non-OEM"), is_placeholder_brand("BIC")
        (True, False)
    """
    return brand_key(brand) in _PLACEHOLDER_BRANDS or not brand_key(brand)


def catalog_brands(catalog: Catalog) -> frozenset[str]:
    """The display forms of the brands of a catalog, placeholders such as ``"Generic"`` left out.

    Example:
        >>> sorted(catalog_brands(Catalog([Item("1", "Pen", brand="BIC"), Item("2", "Pad", brand="Generic")])))
        ['BIC']
    """
    return frozenset(item.brand for item in catalog if not is_placeholder_brand(item.brand))


# Claim words by kind. Each is a regular expression matched on word boundaries, case-insensitively; a match is
# supported when its words (plural or not) occur in the source.
_CLAIMS: dict[FindingKind, tuple[str, ...]] = {
    FindingKind.SUPERLATIVE: (
        r"best(?:[- ]selling)?",
        r"#\s?1",
        r"number one",
        r"leading",
        r"top[- ]rated",
        r"top[- ]quality",
        r"finest",
        r"ultimate",
        r"unbeatable",
        r"unmatched",
        r"unrivall?ed",
        r"superior",
        r"most popular",
        r"award[- ]winning",
        r"world'?s",
        r"industry[- ]standard",
    ),
    FindingKind.WARRANTY: (r"warrant(?:y|ies|ed)", r"guarantee[sd]?", r"money[- ]back", r"lifetime"),
    FindingKind.CERTIFICATION: (
        r"certified",
        r"certification",
        r"approved",
        r"compliant",
        r"energy star",
        r"fsc",
        r"iso",
        r"ul[- ]listed",
        r"rohs",
        r"bpa[- ]free",
        r"acid[- ]free",
        r"non[- ]?toxic",
        r"eco[- ]friendly",
        r"environmentally friendly",
        r"recycl(?:ed|able)",
        r"sustainabl[ey]",
        r"biodegradable",
        r"hypoallergenic",
        r"archival",
    ),
    FindingKind.COMPATIBILITY: (
        r"compatib(?:le|ility)",
        r"works with",
        r"designed for",
        r"fits",
        r"universal",
    ),
    FindingKind.MATERIAL: (
        r"plastic",
        r"metal(?:lic)?",
        r"steel",
        r"stainless",
        r"alumin(?:i)?um",
        r"wood(?:en)?",
        r"bamboo",
        r"leather",
        r"faux leather",
        r"rubber(?:ized)?",
        r"silicone",
        r"glass",
        r"cotton",
        r"vinyl",
        r"nylon",
        r"polyester",
        r"polypropylene",
        r"acrylic",
        r"fabric",
        r"mesh",
        r"cardboard",
        r"card ?stock",
        r"felt",
        r"foam",
        r"ceramic",
        r"brass",
        r"chrome",
        r"titanium",
    ),
    FindingKind.PROPERTY: (
        r"water[- ]?proof",
        r"water[- ]resistant",
        r"weather[- ]?proof",
        r"shock[- ]?proof",
        r"fire[- ]?proof",
        r"fire[- ]resistant",
        r"smudge[- ]proof",
        r"fade[- ]resistant",
        r"tear[- ]resistant",
        r"scratch[- ]resistant",
        r"heavy[- ]duty",
        r"light[- ]?weight",
        r"durable",
        r"durability",
        r"long[- ]lasting",
        r"sturdy",
        r"rechargeable",
        r"refillable",
        r"reusable",
        r"washable",
        r"erasable",
        r"permanent",
        r"wireless(?:ly)?",
        r"bluetooth",
        r"wi-?fi",
        r"usb",
        r"battery",
        r"batteries",
        r"solar",
        r"cordless",
        r"portable",
        r"adjustable",
        r"ergonomic(?:ally)?",
        r"compact",
        r"foldable",
        r"folding",
        r"magnetic",
        r"adhesive",
        r"self[- ]adhesive",
        r"quick[- ]dry(?:ing)?",
        r"odorless",
        r"odourless",
        r"anti[- ]?\w+",
        r"non[- ]slip",
        r"automatic(?:ally)?",
        r"digital",
        r"handmade",
        r"made in",
    ),
    FindingKind.COLOR: (
        r"black",
        r"white",
        r"red",
        r"blue",
        r"green",
        r"yellow",
        r"orange",
        r"purple",
        r"violet",
        r"pink",
        r"brown",
        r"gr[ae]y",
        r"silver",
        r"gold(?:en)?",
        r"beige",
        r"ivory",
        r"navy",
        r"teal",
        r"turquoise",
        r"clear",
        r"transparent",
        r"translucent",
        r"neon",
        r"pastel",
        r"multicolou?red",
        r"assorted",
    ),
    FindingKind.AUDIENCE: (
        r"students?",
        r"kids?",
        r"child(?:ren)?",
        r"teachers?",
        r"classrooms?",
        r"artists?",
        r"professionals?",
        r"businesse?s?",
        r"families",
        r"famil(?:y)",
        r"seniors?",
        r"elderly",
        r"travel(?:l?ers?|l?ing)?",
        r"home",
        r"household",
        r"everyday",
        r"daily",
        r"beginners?",
        r"experts?",
        r"gifts?",
    ),
    FindingKind.PRICE: (
        r"price[ds]?",
        r"pricing",
        r"costs?",
        r"affordabl[ey]",
        r"inexpensive",
        r"cheap(?:er|est|ly)?",
        r"budget",
        r"value",
        r"bargain",
        r"deals?",
        r"discount(?:ed)?",
        r"on sale",
        r"save",
        r"savings",
        r"free shipping",
    ),
    FindingKind.MARKETING: (
        r"perfect(?:ly)?",
        r"ideal(?:ly)?",
        r"excellent",
        r"exceptional",
        r"outstanding",
        r"great",
        r"amazing",
        r"incredible",
        r"premium",
        r"high[- ]quality",
        r"quality",
        r"professional[- ]grade",
        r"reliable",
        r"reliability",
        r"efficient(?:ly)?",
        r"convenient(?:ly)?",
        r"convenience",
        r"versatile",
        r"versatility",
        r"easy",
        r"easily",
        r"effortless(?:ly)?",
        r"simple",
        r"smooth(?:ly)?",
        r"comfortable",
        r"comfortably",
        r"comfort",
        r"stylish",
        r"elegant",
        r"sleek",
        r"modern",
        r"innovative",
        r"advanced",
        r"powerful",
        r"precise(?:ly)?",
        r"precision",
        r"accurate(?:ly)?",
        r"vibrant",
        r"vivid",
        r"crisp",
        r"sharp",
        r"bright",
        r"fast",
        r"quick(?:ly)?",
        r"quiet(?:ly)?",
        r"secure(?:ly)?",
        r"safe(?:ly|ty)?",
        r"clean(?:ly)?",
        r"strong",
        r"robust",
        r"popular",
        r"favou?rite",
        r"must[- ]have",
        r"essential",
        r"trusted",
        r"renowned",
        r"famous",
    ),
}

_CLAIM_PATTERNS: tuple[tuple[FindingKind, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(r"(?<![\w-])(?:" + "|".join(words) + r")(?![\w-])", re.IGNORECASE))
    for kind, words in _CLAIMS.items()
)

_CURRENCY = re.compile(
    r"[$€£¥]\s?\d+(?:[.,]\d+)*|\b\d+(?:[.,]\d+)*\s?(?:dollars?|euros?|pounds sterling|usd|eur|gbp)\b", re.I
)
_LINK = re.compile(r"https?://\S+|www\.\S+|\b[\w.+-]+@[\w-]+\.[\w.]+\b", re.IGNORECASE)

# A run of letters, digits and inner hyphens, slashes, dots or commas: "PG-245", "0.8mm", "8-1/2", "1,000".
_TOKEN = re.compile(r"[A-Za-z0-9]+(?:[-/.,][A-Za-z0-9]+)*")
_DIGITS = re.compile(r"\d+(?:[.,]\d+)*")
# What may follow or precede a number without making the token a model code: units, ordinals, "x" of sizes, and
# words joined by a hyphen ("12-pack", "3-ring").
_UNITS = {
    "mm", "cm", "m", "km", "in", "inch", "inches", "ft", "yd", "oz", "lb", "lbs", "g", "kg", "mg", "ml", "l",
    "gb", "mb", "tb", "kb", "mhz", "ghz", "hz", "w", "v", "mah", "dpi", "ppm", "pt", "gsm", "ct", "pk", "pc",
    "pcs", "st", "nd", "rd", "th", "x", "s", "k", "d", "p", "hr", "hrs", "min", "sec", "mp",
}  # fmt: skip
_SPELLED_NUMBERS = {
    "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
    "ten": "10", "eleven": "11", "twelve": "12", "dozen": "12", "fifteen": "15", "twenty": "20", "thirty": "30",
    "fifty": "50", "hundred": "100", "thousand": "1000", "double": "2", "triple": "3", "pair": "2",
}  # fmt: skip
_SPELLED = re.compile(r"(?<![\w-])(?:" + "|".join(_SPELLED_NUMBERS) + r")(?![\w-])", re.IGNORECASE)
# What comes before the first word of a sentence: nothing, or an end mark and maybe an opening quote.
# Words any text may use whatever the source says: function words and the neutral vocabulary of saying what a
# product is. Anything else a text says must come from the source (a new noun or adjective is a new claim).
_NEUTRAL_VOCABULARY = """
    a an the this that these those it its it's they their them there here which who whose what where when
    and or but nor so yet also both either neither each every all any some no not one single other another
    is are was were be been being has have had having do does did can could will would may might should must
    of in on at by for from with without within into onto over under between among through about as than to
    up down out off per via plus like such same more most less least very just only well too
    product products item items thing things piece pieces unit units set sets pack packs package packaged
    packet box boxed count counts model models version type types style kind line series range collection
    size sizes sized number numbers
    comes come coming includes include included including contains contain containing features feature
    featuring offers offer offering provides provide providing holds hold holding gives give made make makes
    sold sell sells available use uses used using listed list lists category categories section described
    called named known designed intended meant
    brand brands maker manufacturer
"""
_NEUTRAL_WORDS = frozenset(_NEUTRAL_VOCABULARY.split())

_SENTENCE_START = re.compile(r"(?:^|[.!?:;])[\s\"'(]*$")


def check_grounded(text: str, facts: SourceFacts) -> list[Finding]:
    """Everything in ``text`` that the source facts do not support, in the order it appears in the text.

    An empty list means the text may be shown. Rules: numbers (digits and spelled out) and model codes must
    occur in the source; a catalog brand or a capitalised name must occur in the source; prices, currency and
    links are never allowed; claim words (superlatives, warranties, certifications, compatibility, materials,
    properties, colours, audiences, marketing) must occur in the source.

    Example:
        >>> facts = SourceFacts(title="VTECH CS6114 DECT 6.0 Cordless Phone", brand="VTech", known_brands={"AT&T"})
        >>> [str(f) for f in check_grounded("A cordless phone like the AT&T CS6115.", facts)]
        ["brand: 'AT&T' is not in the source", "model_code: 'CS6115' is not in the source"]
    """
    text = _apostrophes(clean_text(text))
    source = _apostrophes(facts.text())
    words = _word_forms(source)
    found: list[_Located] = [
        (match.start(), Finding(kind, match.group()))
        for kind, pattern in ((FindingKind.LINK, _LINK), (FindingKind.PRICE, _CURRENCY))
        for match in pattern.finditer(text)
        if match.group().casefold() not in source.casefold()
    ]
    found += _numbers_and_codes(text, source)
    found += _brands(text, facts.known_brands, source)
    for kind, pattern in _CLAIM_PATTERNS:
        found += [
            (match.start(), Finding(kind, match.group()))
            for match in pattern.finditer(text)
            if not (_supported(match.group(), words) or _verbatim(match.group(), source))
        ]
    # The word rules come last and leave alone what a rule above already reported ("Energy Star" is one
    # certification finding, not also two names).
    found += _proper_nouns(text, words, _spans(found))
    found += _new_words(text, words, _spans(found))
    # Sorting is stable: two findings at one place keep the order of the rules.
    return list(dict.fromkeys(finding for _, finding in sorted(found, key=lambda located: located[0])))


# A finding with where it starts in the cleaned text, to report findings in reading order.
_Located = tuple[int, Finding]


def _spans(found: list[_Located]) -> list[tuple[int, int]]:
    return [(start, start + len(finding.span)) for start, finding in found]


def _inside(position: int, spans: list[tuple[int, int]]) -> bool:
    return any(start <= position < end for start, end in spans)


def _apostrophes(text: str) -> str:
    return text.replace("\u2019", "'").replace("\u2018", "'")


def _fold(word: str) -> str:
    """A word's matching form: lower case, possessive and plural endings removed ("pens" and "pen" match)."""
    word = word.casefold().removesuffix("'s")
    if len(word) > 4 and word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _word_forms(text: str) -> set[str]:
    """The folded words of a text, hyphenated words also split and joined ("heavy-duty", "heavy", "heavyduty")."""
    forms: set[str] = set()
    for token in re.findall(r"[\w'&]+(?:-[\w'&]+)*", text):
        forms.add(_fold(token))
        forms.update(_fold(part) for part in re.split(r"[-'&]", token) if part)
        forms.add(_fold(token.replace("-", "")))
    return forms


def _supported(phrase: str, words: set[str]) -> bool:
    """Whether every word of a phrase occurs in the source; "heavy duty" and "heavy-duty" are the same."""
    parts = [part for part in re.split(r"[\s-]+", phrase) if part]
    return _fold("".join(parts)) in words or all(_fold(part) in words for part in parts)


def _verbatim(phrase: str, source: str) -> bool:
    """Whether a phrase occurs in the source as written, ignoring case ("#1", "in stock")."""
    return re.search(r"(?<!\w)" + re.escape(phrase) + r"(?!\w)", source, re.IGNORECASE) is not None


def _number_key(number: str) -> str:
    """A canonical form of a number: "1,000" and "1000", "0.80" and "0.8", "05" and "5" match."""
    plain = number.replace(",", "")
    try:
        return format(Decimal(plain).normalize(), "f")
    except InvalidOperation:
        return plain


def _code_key(code: str) -> str:
    return re.sub(r"[^0-9a-z]", "", code.casefold())


def _is_code(token: str) -> bool:
    """A token mixing letters and digits that is not just a number with a unit or suffix ("0.8mm", "12-pack")."""
    if not (re.search(r"[A-Za-z]", token) and re.search(r"\d", token)):
        return False
    pieces = re.split(r"[-/]", token)
    for piece in pieces:
        if not re.search(r"\d", piece):
            # A word joined to a number ("12-pack", "3-ring") is no code; a short letter group ("PG-245") is.
            if (len(pieces) > 1 and len(piece) > 3 and piece.isalpha()) or piece.casefold() in _UNITS:
                continue
            return True
        if any(letters.casefold() not in _UNITS for letters in _DIGITS.sub(" ", piece).split()):
            return True
    return False


def _source_codes(source: str) -> set[str]:
    """Every code form the source supports: each token, its hyphen/slash parts, and adjacent tokens joined."""
    tokens = _TOKEN.findall(source)
    keys = {_code_key(token) for token in tokens}
    keys.update(_code_key(part) for token in tokens for part in re.split(r"[-/]", token))
    keys.update(_code_key(a + b) for a, b in itertools.pairwise(tokens))
    return keys


def _source_numbers(source: str) -> set[str]:
    numbers = set()
    for number in _DIGITS.findall(source):
        numbers.add(_number_key(number))
        # "1,2,3" may be a list as much as a thousands figure; "0.77" is never 77.
        numbers.update(_number_key(part) for part in number.split(","))
    numbers.update(_SPELLED_NUMBERS[match.group().casefold()] for match in _SPELLED.finditer(source))
    return numbers


def _numbers_and_codes(text: str, source: str) -> list[_Located]:
    codes = _source_codes(source)
    numbers = _source_numbers(source)
    found: list[_Located] = []
    for match in _TOKEN.finditer(text):
        token = match.group().strip(".,")
        if _is_code(token):
            if _code_key(token) not in codes:
                found.append((match.start(), Finding(FindingKind.MODEL_CODE, token)))
            continue
        for number in _DIGITS.finditer(token):
            # A number may end with a comma or a full stop that belongs to the sentence.
            value = number.group().rstrip(".,")
            if _number_key(value) not in numbers:
                found.append((match.start() + number.start(), Finding(FindingKind.NUMBER, value)))
    found += [
        (match.start(), Finding(FindingKind.NUMBER, match.group()))
        for match in _SPELLED.finditer(text)
        if _SPELLED_NUMBERS[match.group().casefold()] not in numbers
    ]
    # A number the source has may still be misused: "9312mm" when the source's 9312 is a part number.
    measures = _measures(source)
    reported = {start for start, _ in found}
    found += [
        (match.start(), Finding(FindingKind.NUMBER, match.group()))
        for match in _MEASURE.finditer(text)
        if match.start() not in reported
        and (_number_key(match["number"]), _unit(match["unit"])) not in measures
    ]
    # Or counted: "holds 62557 pencils" when the source's 62557 is only the item's number.
    reported = {start for start, _ in found}
    identifiers = _identifiers(source)
    found += [
        (match.start(), Finding(FindingKind.NUMBER, match.group()))
        for match in _COUNTED.finditer(text)
        if match.start() not in reported
        and _number_key(match["number"]) in identifiers
        and match["word"] not in _NOT_COUNTED
    ]
    found.sort(key=lambda located: located[0])
    return found


# A number followed by a plural word: how a text counts things ("200 labels"); "33374 wireless presenter" and
# "82410 model number" name an item instead.
_COUNTED = re.compile(r"(?<![\w.,(/-])(?P<number>\d+)(?:\s|-)(?P<word>[a-z]+(?<![su])s)\b")
_NOT_COUNTED = frozenset(
    "a an and as at by for from in is it of on or the to with model number item part series code no sku".split()  # noqa: SIM905
)
_PARENTHESISED = re.compile(r"\(\s*(\d+)\s*\)")


def _identifiers(source: str) -> set[str]:
    """Numbers the source uses only as item or part numbers: each use is "(62557)" alone in parentheses or a
    number of five or more digits, never a count or a size."""
    numbers = {_number_key(n) for n in _PARENTHESISED.findall(source)}
    numbers |= {_number_key(n) for n in re.findall(r"(?<![\d.,])\d{5,}(?![\d.,]\d)", source)}
    for match in re.finditer(r"(?<![\w.,/-])\d+(?:[.,]\d+)?", source):
        before, after = source[: match.start()].rstrip()[-1:], source[match.end() :].lstrip()[:1]
        if len(match.group()) < 5 and not (before == "(" and after == ")"):
            numbers.discard(_number_key(match.group()))
    # A number the source itself counts with is a count, however long.
    numbers -= {_number_key(m["number"]) for m in _COUNTED.finditer(source) if m["word"] not in _NOT_COUNTED}
    return numbers


# Units whose numbers are checked together with the unit; each spelling maps to one name.
_UNIT_SPELLINGS = {
    "mm": ("mm", "millimeter", "millimeters", "millimetre", "millimetres"),
    "cm": ("cm", "centimeter", "centimeters", "centimetre", "centimetres"),
    "m": ("m", "meter", "meters", "metre", "metres"),
    "in": ("in", "inch", "inches", '"', "''", "”"),
    "ft": ("ft", "foot", "feet", "'", "’"),
    "yd": ("yd", "yds", "yard", "yards"),
    "oz": ("oz", "ounce", "ounces"),
    "lb": ("lb", "lbs", "pound", "pounds"),
    "ml": ("ml", "milliliter", "milliliters", "millilitre", "millilitres"),
    "g": ("g", "gram", "grams"),
    "kg": ("kg", "kilogram", "kilograms"),
    "gb": ("gb", "gigabyte", "gigabytes"),
    "mb": ("mb", "megabyte", "megabytes"),
}
_UNIT_NAMES = {spelling: name for name, spellings in _UNIT_SPELLINGS.items() for spelling in spellings}
_UNIT_PATTERN = "|".join(
    re.escape(spelling) + ("" if not spelling[0].isalpha() else r"(?![\w])")
    for spelling in sorted(_UNIT_NAMES, key=len, reverse=True)
)
# A number and its unit: "9312mm", "1.5-Inch", "14\"", "0.77 oz". Sizes ("4 x 6 inches") give the unit to
# each number, so that the source's "4 x 6 inches" supports a text's "4-inch".
_MEASURE = re.compile(
    r"(?<![\w.])(?P<number>\d+(?:[.,]\d+)?)\s?-?\s?(?P<unit>" + _UNIT_PATTERN + ")", re.IGNORECASE
)
_SIZE = re.compile(
    r"(?<![\w.])(?P<numbers>\d+(?:[.,]\d+)?(?:\s?(?:x|by)\s?\d+(?:[.,]\d+)?)+)\s?-?\s?(?P<unit>"
    + _UNIT_PATTERN
    + ")",
    re.IGNORECASE,
)


def _unit(spelling: str) -> str:
    return _UNIT_NAMES[spelling.casefold()]


def _measures(source: str) -> set[tuple[str, str]]:
    """The (number, unit) pairs the source states."""
    pairs = {(_number_key(match["number"]), _unit(match["unit"])) for match in _MEASURE.finditer(source)}
    for match in _SIZE.finditer(source):
        unit = _unit(match["unit"])
        pairs.update(
            (_number_key(number), unit) for number in re.findall(r"\d+(?:[.,]\d+)?", match["numbers"])
        )
    return pairs


def _phrase_in(phrase: str, text: str) -> bool:
    """Whether a phrase occurs in a text as whole words, ignoring case and punctuation."""

    def words(value: str) -> str:
        return " " + " ".join(re.findall(r"[0-9a-z&]+", value.casefold())) + " "

    inner = words(phrase)
    return inner.strip() != "" and inner in words(text)


@functools.lru_cache(maxsize=8)
def _brand_pattern(known_brands: frozenset[str]) -> re.Pattern[str] | None:
    """One pattern for every brand of a catalog, longest first so that "Fisher Space Pen" wins over "Fisher".

    Memoised like ``re``'s own cache: a catalog's brand set is checked against thousands of texts.
    """
    names = {re.sub(r"[®™©]", "", brand).strip() for brand in known_brands}
    names = {name for name in names if not is_placeholder_brand(name)}
    if not names:
        return None
    alternatives = (
        r"[\s-]*".join(re.escape(part) for part in name.split())
        for name in sorted(names, key=len, reverse=True)
    )
    return re.compile(r"(?<![\w-])(?:" + "|".join(alternatives) + r")(?![\w-])", re.IGNORECASE)


def _brands(text: str, known_brands: frozenset[str], source: str) -> list[_Located]:
    """Catalog brands written in the text (capitalised, as names are) that the source does not mention."""
    pattern = _brand_pattern(known_brands)
    if pattern is None:
        return []
    return [
        (match.start(), Finding(FindingKind.BRAND, match.group()))
        for match in pattern.finditer(text)
        if (match.group()[0].isupper() or match.group()[0].isdigit())
        and not _phrase_in(match.group(), source)
    ]


def _stem(word: str) -> str:
    """A rough stem ("printing", "printer", "prints" -> "print"): a new form of a source word is no new word."""
    word = _fold(word)
    for suffix in ("ings", "ing", "ers", "er", "ed", "ly", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    # "staple" and "stapler" share "stapl".
    return word.removesuffix("e") if len(word) > 3 else word


def _new_words(text: str, words: set[str], taken: list[tuple[int, int]]) -> list[_Located]:
    """Content words that neither the source (in some form) nor the neutral vocabulary has.

    Words inside a span another rule already reported are left to that finding; unit words ("inch") are left
    to the number rule, which checks them with their number.
    """
    stems = {_stem(word) for word in words}
    located: list[_Located] = []
    for match in re.finditer(r"(?<![\w'&])[A-Za-z]+(?![\w])", text):
        word = match.group()
        if len(word) < 3 or _inside(match.start(), taken):
            continue
        folded = _fold(word)
        if folded in words or folded in _NEUTRAL_WORDS or word.casefold() in _NEUTRAL_WORDS:
            continue
        if _stem(word) in stems or word.casefold() in _SPELLED_NUMBERS or word.casefold() in _UNIT_NAMES:
            continue
        located.append((match.start(), Finding(FindingKind.NEW_WORD, word)))
    return located


def _proper_nouns(text: str, words: set[str], taken: list[tuple[int, int]]) -> list[_Located]:
    """Capitalised names the source does not contain.

    A capitalised word counts as a name when it is not the first word of a sentence, or when its case is
    unusual wherever it stands (all capitals, or a capital inside: "USB", "LaserJet"). A word inside a span
    already reported (``taken``) is left to that finding.
    """
    found: list[_Located] = []
    for match in re.finditer(r"(?<![\w'&])[A-Za-z][\w'&]*(?:-[\w'&]+)*", text):
        word = match.group()
        unusual = word.isupper() or re.search(r"[a-z][A-Z]", word) is not None
        if len(word) < 2 or not (word[0].isupper() or unusual):
            continue
        if re.search(r"\d", word):
            continue  # numbers and codes have their own rule
        if _SENTENCE_START.search(text[: match.start()]) and not unusual:
            continue
        if _supported(word, words) or _inside(match.start(), taken):
            continue
        found.append((match.start(), Finding(FindingKind.PROPER_NOUN, word)))
    return found
