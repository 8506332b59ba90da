"""Fine-tuning the cross-encoder reranker: a plain torch loop from the packaged MiniLM to a model folder.

The loop does not know where its examples come from (``concierge train-reranker`` mines them from training
shoppers): each :class:`TrainingQuery` is a query with one positive item text and some negatives, each
:class:`ValidationQuery` a query with the candidates a reranker would see and the target among them.

Training, all of it seeded (the head's initialisation, dropout and the order of the queries; torch's global random
state is restored afterwards):

- **Model**: :func:`ranking.cross_encoder.base_cross_encoder`, the untrained baseline's model.
- **Loss**: listwise softmax cross-entropy per query over ``[positive, *negatives]``: ``-log softmax(s)[0]``.
  The reranker's job is to order one query's candidates, and this loss asks exactly that, with the hard negatives
  competing against the positive in the same softmax; binary cross-entropy on single pairs would also spend the
  model's capacity on calibrating absolute scores across queries, which nothing downstream uses (the blend
  normalises scores per query).
- **Frozen**: the word-piece embeddings, 11.7M of MiniLM's 22.7M parameters, stay as packaged. A few thousand
  queries would only move the rows of the words they hold, and leaving them out halves AdamW's work each step
  (over all parameters it took about a quarter of a 30-pair step's time at 64 word pieces).
- **Steps**: whole queries, as many as fit in ``batch_size`` pairs (at least one); AdamW (weight decay 0.01),
  learning rate warmed up linearly over the first 10% of the steps then decayed linearly to 0; gradients clipped
  to norm 1.
- **Precision**: fp32, or with ``precision="bf16"`` the forward passes under bfloat16 autocast (weights,
  gradients and AdamW stay fp32). On the project's CPUs (AMD EPYC with AVX-512 BF16) a step is 1.7 times as fast
  (13.0 against 7.8 pairs per CPU second at 128 word pieces, 31.3 against 18.4 at 64), and a proxy run on the
  bundled sample (400 queries, 64 word pieces, one epoch) reached the same validation MRR (0.825) as fp32. A CPU
  without native bfloat16 may run it slower.
- **Model selection**: after each epoch the validation queries' candidates are scored and HR@10 and MRR of the
  target computed (a target not among the candidates is a miss; ties count against the target). The epoch with
  the best MRR (the first on a tie) is the one saved; nothing else is looked at.

The folder gets the model (``CrossEncoder.save_pretrained``), :data:`ranking.cross_encoder.CARD_FILE` (written
last: a folder whose writing was interrupted has no card and is refused on load) and a short README.md. Other files
in the folder are left alone.

Example:
    >>> query = TrainingQuery("stapler", "Swingline stapler", ("Ink cartridge", "Desk lamp"), group="u1")
    >>> query.texts
    ('Swingline stapler', 'Ink cartridge', 'Desk lamp')
    >>> ValidationQuery("stapler", ("Ink cartridge", "Swingline stapler"), target=1).target
    1
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import math
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm.auto import tqdm

from ranking.cross_encoder import (
    BASE_MODEL,
    CARD_FILE,
    REBUILD_COMMAND,
    VERSION,
    CrossEncoderScorer,
    base_cross_encoder,
    quiet_transformers,
)

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder

logger = logging.getLogger(__name__)

LOSS = "listwise softmax cross-entropy over [positive, *negatives]"
PRIMARY_METRIC = "mrr"
HIT_AT = 10
WARMUP_SHARE = 0.1
WEIGHT_DECAY = 0.01
MAX_GRAD_NORM = 1.0
PRECISIONS = ("fp32", "bf16")
# What train_cross_encoder writes in the card; a caller's card fields may not replace them.
CARD_FIELDS = (
    "version",
    "id",
    "base_model",
    "created",
    "seed",
    "settings",
    "counts",
    "validation",
    "best_epoch",
    "training_seconds",
)


@dataclass(frozen=True)
class TrainingQuery:
    """One training example: a query, the item text that should come first, and texts that should not.

    Attributes:
        query: The query (a shopper's profile text).
        positive: The relevant item's text.
        negatives: Irrelevant item texts, hard ones first, then random ones (at least one).
        group: Where it comes from (a user id), for logging only.
    """

    query: str
    positive: str
    negatives: tuple[str, ...]
    group: str = ""

    def __post_init__(self) -> None:
        if not self.negatives:
            raise ValueError(
                f"training query {self.query!r} (group {self.group!r}) has no negatives; give one"
            )

    @property
    def texts(self) -> tuple[str, ...]:
        """The positive, then the negatives: the list the loss is computed over."""
        return (self.positive, *self.negatives)


@dataclass(frozen=True)
class ValidationQuery:
    """A query, the candidates a reranker orders for it, and where the target is among them.

    Attributes:
        query: The query.
        candidates: The candidates' texts.
        target: Index of the target in ``candidates``; -1 when it is not among them (always a miss).
    """

    query: str
    candidates: tuple[str, ...]
    target: int

    def __post_init__(self) -> None:
        if not -1 <= self.target < len(self.candidates):
            raise ValueError(
                f"validation query {self.query!r}: target {self.target} is not -1 or an index of its "
                f"{len(self.candidates)} candidates"
            )


@dataclass(frozen=True)
class TrainReport:
    """What a training run did.

    Attributes:
        epochs_run: Epochs trained.
        best_epoch: The epoch whose weights were saved (1-based).
        validation: Per epoch, in order: ``{"epoch", "hr@10", "mrr", "loss"}`` (``loss``: the epoch's mean
            training loss).
        pairs: Training pairs per epoch.
        seconds: Wall time of the whole run, saving included.
        model_dir: The folder written.
        model_id: The saved model's id (its card's ``id``).
    """

    epochs_run: int
    best_epoch: int
    validation: list[dict[str, float]] = field(default_factory=list)
    pairs: int = 0
    seconds: float = 0.0
    model_dir: Path = Path()
    model_id: str = ""


def validation_metrics(scorer: CrossEncoderScorer, validation: Sequence[ValidationQuery]) -> dict[str, float]:
    """HR@10 and MRR of the targets among their candidates, as ``scorer`` orders them.

    A target not among the candidates is a miss (reciprocal rank 0); a candidate scored the same as the target
    is counted ahead of it, so a model that scores everything alike gets no credit.

    Example:
        >>> class ByLength:
        ...     def score_many(self, pairs):
        ...         return np.array([len(text) for _, text in pairs], dtype=float)
        >>> queries = [ValidationQuery("q", ("aa", "a", "aaa"), target=0), ValidationQuery("q", ("b",), -1)]
        >>> validation_metrics(ByLength(), queries)
        {'hr@10': 0.5, 'mrr': 0.25}
    """
    if not validation:
        raise ValueError("validation_metrics needs at least one validation query")
    scores = scorer.score_many([(v.query, text) for v in validation for text in v.candidates])
    ranks = np.full(len(validation), np.inf)
    start = 0
    for row, v in enumerate(validation):
        own = scores[start : start + len(v.candidates)]
        start += len(v.candidates)
        if v.target >= 0:
            ranks[row] = float(np.sum(own >= own[v.target]))
    return {f"hr@{HIT_AT}": float(np.mean(ranks <= HIT_AT)), "mrr": float(np.mean(1.0 / ranks))}


def _steps(queries: Sequence[TrainingQuery], order: list[int], batch_size: int) -> Iterator[list[int]]:
    """Consecutive queries of ``order``, whole, as many as fit in ``batch_size`` pairs (at least one)."""
    step: list[int] = []
    pairs = 0
    for index in order:
        size = len(queries[index].texts)
        if step and pairs + size > batch_size:
            yield step
            step, pairs = [], 0
        step.append(index)
        pairs += size
    if step:
        yield step


def _trainable(model: CrossEncoder) -> list:
    """Freeze the word-piece embeddings (see the module docstring); the parameters left to train."""
    model.model.get_input_embeddings().weight.requires_grad_(False)
    return [parameter for parameter in model.parameters() if parameter.requires_grad]


def _step_loss(model: CrossEncoder, queries: Sequence[TrainingQuery], precision: str = "fp32"):
    """The mean listwise loss of some queries (a scalar tensor with its graph)."""
    import torch
    from sentence_transformers.util import batch_to_device

    pairs = [(q.query, text) for q in queries for text in q.texts]
    features = batch_to_device(model.preprocess(pairs), model.device)
    with torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        logits = model(features)["scores"].view(-1).float()
    losses = []
    start = 0
    for q in queries:
        own = logits[start : start + len(q.texts)]
        start += len(q.texts)
        losses.append(-torch.log_softmax(own, dim=0)[0])
    return torch.stack(losses).mean()


def train_cross_encoder(
    train: Sequence[TrainingQuery],
    validation: Sequence[ValidationQuery],
    out_dir: Path,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    max_length: int,
    seed: int,
    precision: str = "fp32",
    layers: int = 0,
    progress: bool = True,
    card: Mapping[str, object] | None = None,
) -> TrainReport:
    """Fine-tune the packaged MiniLM as a reranker and write the best epoch's model to ``out_dir``.

    Args:
        train: The training queries.
        validation: The queries that choose the epoch.
        out_dir: The model folder (created; an older model in it is replaced, other files are kept).
        epochs: Epochs to train.
        batch_size: Pairs per optimiser step, rounded down to whole queries (at least one query).
        learning_rate: AdamW's peak learning rate.
        max_length: Word pieces read of a (query, text) pair.
        seed: Seed of the head, dropout and query order.
        precision: ``"fp32"``, or ``"bf16"`` to run the forward passes under bfloat16 autocast (see the module
            docstring).
        layers: Transformer layers of the packaged model kept (its first ones); 0 keeps all.
        progress: Show tqdm progress bars.
        card: More card fields from the caller (what the data was, the command that reproduces the model); they
            may not replace the fields this function writes.

    Returns:
        The run's :class:`TrainReport`.
    """
    import torch

    if not train:
        raise ValueError("train_cross_encoder needs at least one training query")
    if not validation:
        raise ValueError("train_cross_encoder needs validation queries: they choose the epoch that is saved")
    if epochs < 1 or batch_size < 1 or not learning_rate > 0:
        raise ValueError(
            f"train_cross_encoder needs epochs >= 1, batch_size >= 1 and learning_rate > 0; got {epochs}, "
            f"{batch_size}, {learning_rate}"
        )
    if precision not in PRECISIONS:
        raise ValueError(f"unknown training precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    clashes = sorted(set(card or {}) & set(CARD_FIELDS))
    if clashes:
        raise ValueError(f"card fields {', '.join(clashes)} are written by train_cross_encoder; rename them")
    started = time.perf_counter()
    out_dir = Path(out_dir)
    pairs = sum(len(q.texts) for q in train)
    settings = {
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "max_length": max_length,
        "seed": seed,
        "precision": precision,
        "layers": layers,
        "loss": LOSS,
        "optimizer": f"AdamW (weight decay {WEIGHT_DECAY})",
        "schedule": f"linear warm-up over {WARMUP_SHARE:.0%} of the steps, then linear decay to 0",
        "max_grad_norm": MAX_GRAD_NORM,
        "frozen": "word-piece embeddings",
        "primary_metric": PRIMARY_METRIC,
    }
    model = base_cross_encoder(max_length, seed, layers)
    trained = _trainable(model)
    scorer = CrossEncoderScorer(model, "training", batch_size=batch_size, cache_size=0)
    shuffler = random.Random(seed)
    order = list(range(len(train)))
    steps_per_epoch = len(list(_steps(train, order, batch_size)))
    total_steps = steps_per_epoch * epochs
    warmup = max(1, math.ceil(WARMUP_SHARE * total_steps))

    def rate(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    history: list[dict[str, float]] = []
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        optimizer = torch.optim.AdamW(trained, lr=learning_rate, weight_decay=WEIGHT_DECAY)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, rate)
        for epoch in range(1, epochs + 1):
            shuffler.shuffle(order)
            model.train()
            total = 0.0
            bar = tqdm(
                list(_steps(train, order, batch_size)),
                desc=f"reranker epoch {epoch}/{epochs}",
                unit="step",
                disable=not progress,
            )
            for step in bar:
                loss = _step_loss(model, [train[i] for i in step], precision)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(trained, MAX_GRAD_NORM)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad(set_to_none=True)
                value = loss.detach().item()
                total += value * len(step)
                bar.set_postfix(loss=f"{value:.3f}")
            figures = validation_metrics(scorer, validation)
            history.append({"epoch": epoch, **figures, "loss": total / len(train)})
            logger.info("reranker epoch %d: %s", epoch, history[-1])
            if progress:
                tqdm.write(
                    f"reranker epoch {epoch}: validation HR@{HIT_AT} {figures[f'hr@{HIT_AT}']:.3f}, "
                    f"MRR {figures['mrr']:.3f}; training loss {history[-1]['loss']:.4f}"
                )
            if best is None or figures[PRIMARY_METRIC] > best[0]:
                state = {key: tensor.detach().clone() for key, tensor in model.state_dict().items()}
                best = (figures[PRIMARY_METRIC], epoch, state)
    assert best is not None
    model.load_state_dict(best[2])
    model.eval()
    counts = {
        "training_queries": len(train),
        "training_pairs": pairs,
        "training_groups": len({q.group for q in train}),
        "validation_queries": len(validation),
        "validation_candidates": sum(len(v.candidates) for v in validation),
    }
    model_id = _save(model, out_dir, settings, counts, history, best[1], started, dict(card or {}))
    return TrainReport(
        epochs_run=epochs,
        best_epoch=best[1],
        validation=history,
        pairs=pairs,
        seconds=time.perf_counter() - started,
        model_dir=out_dir,
        model_id=model_id,
    )


def _save(
    model: CrossEncoder,
    out_dir: Path,
    settings: dict[str, object],
    counts: dict[str, int],
    history: list[dict[str, float]],
    best_epoch: int,
    started: float,
    extra: dict[str, object],
) -> str:
    """Write the model, then the README, then the card; the model's id."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / CARD_FILE).unlink(missing_ok=True)
    with quiet_transformers():
        model.save_pretrained(str(out_dir), create_model_card=False)
    digest = hashlib.sha256()
    with (out_dir / "model.safetensors").open("rb") as weights:
        for block in iter(lambda: weights.read(1 << 20), b""):
            digest.update(block)
    model_id = f"concierge-reranker-{digest.hexdigest()[:12]}"
    best = history[best_epoch - 1]
    document: dict[str, object] = {
        "version": VERSION,
        "id": model_id,
        "base_model": BASE_MODEL,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "seed": settings["seed"],
        "settings": settings,
        "counts": counts,
        "validation": history,
        "best_epoch": best_epoch,
        "training_seconds": round(time.perf_counter() - started, 1),
    }
    document.update(extra)
    command = extra.get("command", REBUILD_COMMAND)
    depth = f" through the base model's first {settings['layers']} layers" if settings["layers"] else ""
    (out_dir / "README.md").write_text(
        f"# Concierge reranker `{model_id}`\n\n"
        f"A cross-encoder that scores how well an item text answers a shopper's profile text, fine-tuned from\n"
        f"{BASE_MODEL} with a new one-output head.\nLoss: {LOSS}.\n"
        f"It reads {settings['max_length']} word pieces of a (query, item) pair{depth}.\n\n"
        f"- Trained on {counts['training_queries']:,} queries ({counts['training_pairs']:,} pairs) for "
        f"{settings['epochs']} epoch{'s' if settings['epochs'] != 1 else ''}, seed {settings['seed']}, "
        f"{settings['precision']}.\n"
        f"- Kept epoch {best_epoch} of {len(history)}: validation HR@{HIT_AT} {best[f'hr@{HIT_AT}']:.3f}, "
        f"MRR {best['mrr']:.3f} on {counts['validation_queries']:,} queries.\n"
        f"- Everything else (settings, data, figures per epoch) is in `{CARD_FILE}`.\n\n"
        f"Rebuild it with `{command}`; load it with `ranking.cross_encoder.load_scorer(folder)`.\n",
        encoding="utf-8",
    )
    (out_dir / CARD_FILE).write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    return model_id
