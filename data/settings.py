"""The one settings object: defaults, then a TOML file, then ``CONCIERGE_*`` environment variables.

Nothing else in the project reads environment variables. A file is taken from ``--config``, else from the
``CONCIERGE_CONFIG`` variable, else ``concierge.toml`` in the working directory when present. Each section of the
file is a section below (``[paths]``, ``[data]``, ``[eval]``, ``[retrieval]``, ``[ranking]``, ``[llm]``, ``[describe]``,
``[understanding]``, ``[conversation]``, ``[server]``); each variable is
``CONCIERGE_<SECTION>_<FIELD>`` in capitals, for example ``CONCIERGE_EVAL_SEED=7`` or
``CONCIERGE_PATHS_ARTIFACTS=/srv/concierge``.

Example:
    >>> settings = load_settings(environ={"CONCIERGE_EVAL_SEED": "7"})
    >>> settings.eval.seed
    7
"""

from __future__ import annotations

import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

SAMPLE_DIR = Path(__file__).resolve().parent / "sample" / "amazon-office-2014"
ENV_PREFIX = "CONCIERGE_"


class SettingsError(ValueError):
    """A settings file or variable that cannot be used; the message names it and the expected type."""


class FieldError(SettingsError):
    """A value of the right type that a section still cannot take; :func:`load_settings` says where it was set.

    Attributes:
        field: The field's name.
        reason: What is wrong and what to do.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _one_of(name: str, value: str, choices: tuple[str, ...]) -> None:
    """Raise :class:`FieldError` when ``value`` (of the field ``name``) is not one of ``choices``."""
    if value not in choices:
        raise FieldError(name, f"{value!r}: use one of {', '.join(choices)}")


@dataclass(frozen=True)
class PathSettings:
    catalog: Path = SAMPLE_DIR / "items.jsonl"
    interactions: Path = SAMPLE_DIR / "interactions.jsonl"
    # Generated descriptions are data about the catalog, stored beside it (see data/descriptions.py).
    descriptions: Path = SAMPLE_DIR / "descriptions.jsonl"
    # Shopper paraphrases of each item's need, for the benchmark's `paraphrased` vocabulary (data/paraphrases.py).
    paraphrases: Path = SAMPLE_DIR / "paraphrases.jsonl"
    artifacts: Path = Path("artifacts")


@dataclass(frozen=True)
class DataSettings:
    # A longer field is a broken export far more often than real text; it is reported, not loaded.
    max_field_chars: int = 100_000
    max_line_bytes: int = 1_000_000
    default_currency: str = "USD"
    # How many findings a lenient load keeps in full; every finding is counted regardless.
    max_reported_issues: int = 50


@dataclass(frozen=True)
class EvalSettings:
    seed: int = 13
    validation_share: float = 0.1
    test_share: float = 0.1
    new_item_share: float = 0.1
    brand_no_preference: float = 0.25
    bootstrap_samples: int = 1000
    slate_size: int = 10


@dataclass(frozen=True)
class RetrievalSettings:
    embedding_batch_size: int = 64
    # Empty: an embedded Chroma store under <artifacts>/chroma. A host name: a Chroma server (`chroma run`).
    chroma_host: str = ""
    chroma_port: int = 8000
    candidates: int = 100
    rrf_k: int = 60
    # The popularity channel's weight in the fusion when the shopper said something, and when they have only
    # picked facets (docs/benchmarks.md, "Candidate recall", for how these were chosen).
    popularity_weight: float = 0.1
    popularity_weight_without_text: float = 2.0


NEW_ARRIVAL_FLOORS = ("both", "content", "retrieval", "none")


@dataclass(frozen=True)
class RankingSettings:
    # The MF prior (implicit ALS on the training interactions, ranking/mf.py).
    mf_factors: int = 64
    mf_iterations: int = 15
    mf_regularization: float = 0.05
    mf_alpha: float = 20.0
    # How far a session's likes move the prior from the average training user to their ALS fold-in (0..1); chosen
    # on validation episodes (docs/benchmarks.md, "The folded-in like").
    mf_fold_in_weight: float = 0.25
    # How many of the hybrid's candidates the rerankers reorder (ranking/rerank.py).
    rerank_depth: int = 50
    # The cross-encoder reranker (ranking/cross_encoder.py) and its training (concierge train-reranker).
    # Word pieces of a (profile text, item text) pair: the profile text, title, brand and category path fit in 64;
    # reading 128 costs twice the time for description text (benchmarks/bench_reranker.py).
    reranker_max_length: int = 64
    reranker_batch_size: int = 32
    reranker_epochs: int = 2
    reranker_learning_rate: float = 5e-5
    reranker_hard_negatives: int = 3
    reranker_random_negatives: int = 1
    reranker_train_users: int = 1000
    # Validation work per fit: queries that choose the epoch, and episodes that fit the blends' weights.
    reranker_validation_queries: int = 300
    blend_validation_episodes: int = 200
    # "fp32", or "bf16" (autocast forward passes: 1.7x faster steps on CPUs with native bfloat16).
    reranker_precision: str = "fp32"
    # Transformer layers of the packaged MiniLM the reranker keeps (its first ones; fewer score faster); 0: all six.
    reranker_layers: int = 0
    # Serving backend: "onnx-int8" (ONNX Runtime, int8 weights: the fastest, with fp32's validation HR@10),
    # "torch" (fp32), "bf16" or "int8" (ranking/cross_encoder.py; benchmarks/bench_reranker.py measures them).
    reranker_backend: str = "onnx-int8"
    # Where a new arrival (no training interaction) may sit at worst in a blend with the MF prior, which knows
    # nothing of it: "both" (never below the better of its places in the retrieval order and in the same blend
    # without the prior), "content" (the blend without the prior only), "retrieval" (the retrieval order only) or
    # "none" (ranking/blend.py, keep_new_arrivals). Measured on validation episodes (docs/benchmarks.md, "New
    # arrivals keep their content place").
    new_arrival_floor: str = "both"

    def __post_init__(self) -> None:
        _one_of("new_arrival_floor", self.new_arrival_floor, NEW_ARRIVAL_FLOORS)


@dataclass(frozen=True)
class LlmSettings:
    # "none" (templates only), "local" (a packaged GGUF model through llama-cpp-python) or "openai" (any
    # OpenAI-compatible server: vLLM, Ollama, a hosted model).
    provider: str = "none"
    # local: "auto" (the best installed packaged model) or a package name; openai: the model name.
    model: str = "auto"
    base_url: str = ""
    api_key: str = ""
    timeout_s: float = 30.0
    max_tokens: int = 96
    temperature: float = 0.0
    threads: int = 2


@dataclass(frozen=True)
class DescribeSettings:
    # An item whose own description has fewer characters than this is "thin" and gets a generated one.
    min_description_chars: int = 80
    max_words: int = 45


@dataclass(frozen=True)
class UnderstandingSettings:
    # What resolves a message's need when the rules name no category (assistant/resolve.py). The bi-encoder
    # compares the need with the category labels; a label is taken at this cosine similarity or more, when it
    # beats the next label by the margin. Chosen on the validation halves of the understanding corpora
    # (python -m benchmarks.bench_understanding --stages ...; the figures are in assistant/resolve.py). Off by
    # default: on those halves no threshold or margin got more right than the rules alone, and a wrong category
    # filters out every right item; a store whose shoppers name things its labels do not can turn it on.
    embeddings: bool = False
    embedding_threshold: float = 0.75
    embedding_margin: float = 0.0
    # Below that, down to llm_floor, the chat model of [llm] may pick one of the llm_candidates best labels or
    # none (about a second a call on 2 cores with the local 0.5B model, hence off by default; with provider
    # "none" this stage is skipped). It picks among the embeddings' labels: embeddings = false turns both off.
    llm: bool = False
    llm_floor: float = 0.5
    llm_candidates: int = 4


QUESTION_CHOICES = ("reach", "entropy")
QUESTION_CARDS = ("candidates", "ranked")


@dataclass(frozen=True)
class ConversationSettings:
    # The question policy (assistant/policy.py): most questions per conversation, the least entropy (nats) of the
    # candidates over a facet's values worth a question, the least share of the candidates' mass that must have
    # a value for the facet, and how many candidates it weighs.
    question_budget: int = 3
    min_entropy: float = 0.5
    min_coverage: float = 0.6
    policy_candidates: int = 50
    # Also ask about the words of the candidates' titles that split them best (assistant/title_words.py); the word
    # picked joins the shopper's need, and the items whose titles have it come first.
    word_questions: bool = True
    # Which of the questions worth asking is asked: "reach" (the one whose answer is expected to put the most
    # candidate mass on the next cards) or "entropy" (the one whose answer tells the most); chosen on validation
    # conversations (docs/benchmarks.md).
    question_choice: str = "reach"
    # A question is worth asking only when its reach beats recommending now (the share of the candidates' mass on
    # the first slate) by at least this much; 0: whenever one is (assistant/policy.py). On validation conversations
    # 0.1 found the same items in the same turns with up to a tenth fewer questions and 0.2 lost vague shoppers
    # (docs/benchmarks.md); 0 stays the default because the gain is an absolute share, so on a small candidate pool
    # (a few dozen items) the same value silences questions that still split it.
    min_reach_gain: float = 0.0
    # Cards per recommendation.
    slate_size: int = 5
    # Show the candidates' first items beside each question (chosen on validation conversations).
    cards_with_questions: bool = True
    # Which items those cards are: "candidates" (the candidate generator's first items, no reranking: a fast
    # question turn) or "ranked" (the ranking system's best, as a recommendation shows them: a few more targets
    # found on validation conversations, but every question turn then reranks, and 20 sessions at once missed the
    # 1 s p95 budget on 2 cores; docs/benchmarks.md).
    question_cards: str = "candidates"
    # Where sessions are kept: "" for a SQLite file under the artifacts folder, or a postgresql:// URL.
    session_store: str = ""
    # Sessions untouched this long are deleted (hours).
    session_ttl_hours: float = 72.0

    def __post_init__(self) -> None:
        _one_of("question_choice", self.question_choice, QUESTION_CHOICES)
        _one_of("question_cards", self.question_cards, QUESTION_CARDS)
        if not 0.0 <= self.min_reach_gain <= 1.0:
            raise FieldError("min_reach_gain", f"{self.min_reach_gain!r}: use a share from 0 to 1")


@dataclass(frozen=True)
class ServerSettings:
    # `concierge serve` (and `concierge demo`): the shopper chat at / and the JSON API at /v1 (ui/serve.py).
    host: str = "127.0.0.1"
    port: int = 7860
    # The API's limits (ui/api.py). A longer message is refused with 413; at most the engine's own limit (2000).
    max_message_chars: int = 2000
    # Requests a minute one session, and one client (remote address), may make before 429 and Retry-After.
    # Behind a reverse proxy every shopper shares its address unless it sends X-Forwarded-For (trusted from
    # 127.0.0.1 only, uvicorn's default).
    requests_per_minute_per_session: int = 60
    requests_per_minute_per_client: int = 600
    # Messaging channels (ui/webhooks.py); each is off (404) while its secret is empty. The signed JSON webhook at
    # /v1/channels/webhook: the shared HMAC-SHA256 key its callers sign with, and how many seconds a request's
    # X-Concierge-Timestamp may be from the server's clock (a signature is also accepted once only in that time).
    webhook_secret: str = ""
    webhook_tolerance_s: int = 300
    # Telegram at /v1/channels/telegram: the secret_token given to the Bot API's setWebhook (1 to 256 of A-Z a-z
    # 0-9 _ -), which Telegram sends back in X-Telegram-Bot-Api-Secret-Token with every update.
    telegram_secret: str = ""
    # The key the API's session tokens are signed with (ui/api.py: POST /v1/sessions gives a session's token, and
    # every later request on it must send it). Several processes serving the same sessions need the same key;
    # empty: a random key for this process, so tokens end when it stops.
    session_secret: str = ""
    # The customer-service console at /console (ui/console.py), behind HTTP Basic auth: its one login, the user
    # name (no ':') and the scrypt hash `concierge hash-password` prints. There is no default password: while
    # either is empty the console answers 503 (`concierge demo` makes a password for its run).
    console_user: str = ""
    console_password_hash: str = ""
    # Failed console logins one client address may make a minute before every login from it is refused (429).
    console_failed_logins_per_minute: int = 5

    def __post_init__(self) -> None:
        if ":" in self.console_user:
            raise FieldError(
                "console_user", f"{self.console_user!r} holds ':', which HTTP Basic auth cannot send"
            )
        if self.console_failed_logins_per_minute < 1:
            raise FieldError(
                "console_failed_logins_per_minute",
                f"must be at least 1, got {self.console_failed_logins_per_minute}",
            )


@dataclass(frozen=True)
class Settings:
    paths: PathSettings = field(default_factory=PathSettings)
    data: DataSettings = field(default_factory=DataSettings)
    eval: EvalSettings = field(default_factory=EvalSettings)
    retrieval: RetrievalSettings = field(default_factory=RetrievalSettings)
    ranking: RankingSettings = field(default_factory=RankingSettings)
    llm: LlmSettings = field(default_factory=LlmSettings)
    describe: DescribeSettings = field(default_factory=DescribeSettings)
    understanding: UnderstandingSettings = field(default_factory=UnderstandingSettings)
    conversation: ConversationSettings = field(default_factory=ConversationSettings)
    server: ServerSettings = field(default_factory=ServerSettings)


def _coerce(value: object, kind: type, where: str) -> object:
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off"}:
                return False
            raise ValueError(text)
        if kind is int and isinstance(value, float):
            raise ValueError(value)
        return kind(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{where}: {value!r} is not a valid {kind.__name__}") from None


def _apply(section: object, values: Mapping[str, object], name_of: typing.Callable[[str], str]) -> object:
    hints = typing.get_type_hints(type(section))
    known = {f.name for f in fields(section)}
    changes = {}
    for key, value in values.items():
        if key not in known:
            raise SettingsError(f"{name_of(key)}: unknown setting; known: {', '.join(sorted(known))}")
        kind = hints[key]
        if isinstance(kind, types.UnionType):
            kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
        changes[key] = _coerce(value, kind, name_of(key))
    try:
        return replace(section, **changes)
    except FieldError as error:
        raise SettingsError(f"{name_of(error.field)}: {error.reason}") from None


def load_settings(
    config: Path | None = None, environ: Mapping[str, str] | None = None, **overrides: Mapping[str, object]
) -> Settings:
    """Build the settings: defaults, then the TOML file, then ``CONCIERGE_*`` variables, then ``overrides``.

    Args:
        config: A TOML file; when ``None``, ``CONCIERGE_CONFIG`` or ``./concierge.toml`` if either exists.
        environ: The environment to read (``os.environ`` when ``None``).
        overrides: Per-section values from the command line, e.g. ``paths={"catalog": Path("x.jsonl")}``.

    Raises:
        SettingsError: A missing file, bad TOML, an unknown section or key, a value of the wrong type, or one a
            section cannot take (:class:`FieldError`'s reason, with where it was set).
    """
    environ = os.environ if environ is None else environ
    if config is None:
        named = environ.get(f"{ENV_PREFIX}CONFIG")
        config = (
            Path(named) if named else (Path("concierge.toml") if Path("concierge.toml").exists() else None)
        )
    settings = Settings()
    sections = {f.name for f in fields(Settings)}
    if config is not None:
        try:
            document = tomllib.loads(Path(config).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SettingsError(f"{config}: settings file not found") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise SettingsError(f"{config}: not valid TOML ({error})") from None
        for name, values in document.items():
            if name not in sections or not isinstance(values, dict):
                raise SettingsError(
                    f"{config}: unknown section [{name}]; known: {', '.join(sorted(sections))}"
                )
            settings = replace(
                settings,
                **{
                    name: _apply(getattr(settings, name), values, lambda key, n=name: f"{config} [{n}] {key}")
                },
            )
    for name in sections:
        prefix = f"{ENV_PREFIX}{name.upper()}_"
        values = {
            key[len(prefix) :].lower(): value for key, value in environ.items() if key.startswith(prefix)
        }
        if values:
            settings = replace(
                settings,
                **{name: _apply(getattr(settings, name), values, lambda key, p=prefix: f"{p}{key.upper()}")},
            )
    for name, values in overrides.items():
        if name not in sections:
            raise SettingsError(f"unknown settings section '{name}'")
        settings = replace(
            settings,
            **{name: _apply(getattr(settings, name), values, lambda key, n=name: f"option {n}.{key}")},
        )
    return settings
