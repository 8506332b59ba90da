"""The blend: one final score from the score parts of each candidate, a diversity pass on the slate, and the fit
of the blend's weights on validation episodes.

Each part (the candidate generator's fused retrieval score, the cross-encoder's score, the MF prior's score) is
first normalised over the request's candidates to zero mean and unit spread (:func:`normalise`), so that weights
compare parts measured in different units (RRF sums, logits, dot products). Then::

    final = w_retrieval * retrieval + w_cross_encoder * cross_encoder + w_prior(n) * prior
    w_prior(n) = prior + prior_per_feedback * min(n, max_feedback)

where ``n`` is how many items the shopper has liked or disliked in the session: the MF prior's weight grows with
in-session feedback, since a folded-in like makes the prior personal, while a cold shopper's prior is only a
popularity-like term and content leads. A part a system does not use has weight 0.

Diversity (:func:`diversify`) is maximal marginal relevance over the ordered candidates: each next slate item is the
one with the best ``(1 - diversity) * relevance - diversity * max similarity to the items already chosen``, with
relevance the final score rescaled to [0, 1] and similarity the share of category levels two items share from
the top (the measure of :func:`ranking.metrics.intra_list_diversity`). ``diversity = 0`` keeps the order.

:func:`fit_blend` chooses every weight on validation episodes only, by a grid search for the best mean NDCG@10
of the target; test episodes are never read. Where some validation targets are new arrivals, only weights whose
HR@10 on those episodes is at least the retrieval order's are eligible: a new arrival must reach the slate on
content alone, and the prior, which knows nothing of it, may not cost it a hit.

Example:
    >>> parts = {"retrieval": np.array([3.0, 2.0, 1.0]), "cross_encoder": np.array([0.0, 5.0, 1.0])}
    >>> weights = BlendWeights(retrieval=1.0, cross_encoder=1.0)
    >>> np.argsort(-weights.blend(parts, feedback=0)).tolist()
    [1, 0, 2]
"""

from __future__ import annotations

import itertools
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np

from ranking.metrics import ranks_from_order

logger = logging.getLogger(__name__)

RETRIEVAL = "retrieval"
CROSS_ENCODER = "cross_encoder"
PRIOR = "prior"
PARTS = (RETRIEVAL, CROSS_ENCODER, PRIOR)
BLEND_FILE = "blend.json"
BLEND_VERSION = 1


class BlendError(ValueError):
    """A blend weights file that cannot be used; the message names the file and what to do."""


def normalise(scores: np.ndarray) -> np.ndarray:
    """Scores over one request's candidates to zero mean and unit standard deviation (all 0 when they are all
    equal); NaN or infinite scores are first set to the lowest finite score (0 when none is finite), with a
    warning.

    Example:
        >>> normalise(np.array([1.0, 2.0, 3.0])).round(3).tolist()
        [-1.225, 0.0, 1.225]
        >>> normalise(np.array([2.0, np.nan])).tolist()
        [1.0, -1.0]
    """
    scores = np.asarray(scores, dtype=float)
    if not len(scores):
        return np.zeros(0)
    finite = np.isfinite(scores)
    if not finite.all():
        logger.warning("%d of %d scores are NaN or infinite: ranked last", (~finite).sum(), len(scores))
        floor = scores[finite].min() if finite.any() else 0.0
        scores = np.where(finite, scores, floor - 1.0 if finite.any() else 0.0)
    spread = scores.std()
    if spread == 0:
        return np.zeros(len(scores))
    return (scores - scores.mean()) / spread


@dataclass(frozen=True)
class BlendWeights:
    """The blend's weights (see the module docstring).

    Attributes:
        retrieval: Weight of the normalised retrieval score.
        cross_encoder: Weight of the normalised cross-encoder score.
        prior: Weight of the normalised MF prior with no in-session feedback.
        prior_per_feedback: Added to the prior's weight per liked or disliked item.
        max_feedback: Feedback beyond this many items adds no more weight.
        diversity: The MMR trade-off of :func:`diversify` (0: the blended order as it is).
    """

    retrieval: float = 1.0
    cross_encoder: float = 1.0
    prior: float = 0.25
    prior_per_feedback: float = 0.5
    max_feedback: int = 5
    diversity: float = 0.0

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if not isinstance(value, int | float) or math.isnan(value) or value < 0:
                raise ValueError(f"blend weight {item.name} must be a non-negative number, got {value!r}")
        if self.diversity > 1:
            raise ValueError(f"blend weight diversity must lie in [0, 1], got {self.diversity}")

    def prior_weight(self, feedback: int) -> float:
        """The prior's weight after ``feedback`` liked or disliked items."""
        return self.prior + self.prior_per_feedback * min(max(feedback, 0), self.max_feedback)

    def weight(self, part: str, feedback: int) -> float:
        return self.prior_weight(feedback) if part == PRIOR else float(getattr(self, part))

    def using(self, parts: Sequence[str]) -> BlendWeights:
        """These weights with every part not in ``parts`` set to 0."""
        zeroed = {part: 0.0 for part in PARTS if part not in parts}
        if PRIOR in zeroed:
            zeroed["prior_per_feedback"] = 0.0
        return replace(self, **zeroed)

    def blend(self, parts: Mapping[str, np.ndarray], feedback: int) -> np.ndarray:
        """The final scores of one request's candidates from their raw parts (normalised here)."""
        n = len(next(iter(parts.values()))) if parts else 0
        final = np.zeros(n)
        for part, scores in parts.items():
            weight = self.weight(part, feedback)
            if weight:
                final += weight * normalise(scores)
        return final


def save_blends(
    folder: Path, weights: Mapping[str, BlendWeights], card: Mapping[str, object] | None = None
) -> Path:
    """Write ``blend.json`` into ``folder``: each system's fitted weights, a version, and what they were fitted on.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = save_blends(folder, {"blend": BlendWeights(retrieval=0.5)})
        >>> load_blend(folder, "blend").retrieval
        0.5
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / BLEND_FILE
    document = {
        "version": BLEND_VERSION,
        "weights": {name: asdict(value) for name, value in weights.items()},
        "card": dict(card or {}),
    }
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path


def load_blend(folder: Path, system: str) -> BlendWeights:
    """The weights fitted for ``system``, saved in ``folder``.

    Raises:
        BlendError: No file, unreadable JSON, another version, no weights for that system, or bad values; the
            message names the file and the command that writes it.
    """
    path = folder / BLEND_FILE
    again = "run `concierge train-reranker` to fit the blends on validation episodes"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BlendError(f"{path}: no blend weights; {again}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BlendError(f"{path}: not valid JSON ({error}); {again}") from None
    if not isinstance(document, dict) or document.get("version") != BLEND_VERSION:
        found = document.get("version") if isinstance(document, dict) else None
        raise BlendError(f"{path}: made by blend version {found}, this is {BLEND_VERSION}; {again}")
    try:
        return BlendWeights(**document["weights"][system])
    except KeyError:
        raise BlendError(f"{path}: no weights for the system '{system}'; {again}") from None
    except (TypeError, ValueError) as error:
        raise BlendError(f"{path}: bad weights for '{system}' ({error}); {again}") from None


def category_similarity(codes: np.ndarray) -> np.ndarray:
    """Pairwise similarity of items from their category codes (``(n, levels)``, ``-1`` past a path's end): the
    share of levels two items share from the top, over the deeper of the two paths.

    Example:
        >>> category_similarity(np.array([[0, 0], [0, 1], [1, 2]])).tolist()
        [[1.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    codes = np.asarray(codes)
    left, right = codes[:, None, :], codes[None, :, :]
    shared = np.cumprod((left == right) & (left >= 0), axis=-1).sum(axis=-1)
    depth = np.maximum((left >= 0).sum(axis=-1), (right >= 0).sum(axis=-1))
    return np.where(depth > 0, shared / np.maximum(depth, 1), 0.0)


def diversify(scores: np.ndarray, similarity: np.ndarray, diversity: float, k: int) -> np.ndarray:
    """The order of the first ``k`` candidates after maximal marginal relevance (see the module docstring),
    followed by the rest in score order; with ``diversity = 0``, the score order itself.

    Example:
        >>> sim = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        >>> diversify(np.array([3.0, 2.0, 1.0]), sim, 0.0, 2).tolist()
        [0, 1, 2]
        >>> diversify(np.array([3.0, 2.0, 1.0]), sim, 0.5, 2).tolist()
        [0, 2, 1]
    """
    scores = np.asarray(scores, dtype=float)
    order = np.argsort(-scores, kind="stable")
    if diversity <= 0 or len(scores) < 2:
        return order
    low, high = scores.min(), scores.max()
    relevance = (scores - low) / (high - low) if high > low else np.ones_like(scores)
    chosen: list[int] = []
    remaining = list(order)
    closest = np.zeros(len(scores))
    for _ in range(min(k, len(scores))):
        values = [(1 - diversity) * relevance[i] - diversity * closest[i] for i in remaining]
        pick = remaining.pop(int(np.argmax(values)))
        chosen.append(pick)
        closest = np.maximum(closest, similarity[pick])
    return np.array([*chosen, *remaining], dtype=np.int64)


def keep_new_arrivals(order: np.ndarray, floors: np.ndarray, fresh: np.ndarray) -> np.ndarray:
    """``order`` with each new arrival (``fresh``) moved up where needed so that it sits no lower than its floor
    rank (``floors``, 1 = first; :func:`ranking.metrics.ranks_from_order` of an order that knows nothing of the MF
    prior, since the prior knows nothing of new arrivals). The others keep their relative order. Earliest deadline
    first: at each rank, the new arrival still to come whose floor is that rank or better (the best floor first,
    then the earlier in ``order``), else the next of ``order``. Every new arrival meets its floor whenever the
    floors allow it (no more than ``r`` of them at rank ``r`` or better: always so when they are ranks in one
    order).

    Example:
        >>> order = np.array([0, 1, 2, 3])
        >>> keep_new_arrivals(order, np.array([2, 3, 4, 1]), np.array([False, False, False, True])).tolist()
        [3, 0, 1, 2]
        >>> keep_new_arrivals(order, np.array([3, 1, 4, 2]), np.array([False, False, True, True])).tolist()
        [0, 3, 1, 2]
        >>> keep_new_arrivals(order, np.array([2, 3, 4, 1]), np.zeros(4, dtype=bool)).tolist()
        [0, 1, 2, 3]
    """
    order = np.asarray(order, dtype=np.int64)
    fresh = np.asarray(fresh, dtype=bool)
    floors = np.asarray(floors, dtype=np.int64)
    rank = ranks_from_order(order)
    due = sorted((int(i) for i in np.flatnonzero(fresh)), key=lambda i: (floors[i], rank[i]))
    out: list[int] = []
    placed: set[int] = set()
    rest = iter(order.tolist())
    d = 0
    while len(out) < len(order):
        while d < len(due) and due[d] in placed:
            d += 1
        if d < len(due) and floors[due[d]] <= len(out) + 1:
            pick = due[d]
        else:
            pick = next(item for item in rest if item not in placed)
        out.append(pick)
        placed.add(pick)
    return np.array(out, dtype=np.int64)


@dataclass(frozen=True)
class BlendExample:
    """One validation episode as the blend fit sees it.

    Attributes:
        parts: Part name -> raw scores of the episode's candidates (one array per part, same length).
        target: The target's index among the candidates, ``-1`` when it is not among them.
        feedback: How many items the shopper had liked or disliked.
        similarity: Pairwise similarity of the candidates (for the diversity choice); ``None``: not fitted.
        new_arrival: The target is a new arrival (no training interaction).
    """

    parts: Mapping[str, np.ndarray]
    target: int
    feedback: int = 0
    similarity: np.ndarray | None = None
    new_arrival: bool = False


def _ndcg(examples: Sequence[BlendExample], weights: BlendWeights, k: int) -> tuple[float, float]:
    """Mean NDCG@k and HR@k of the targets under ``weights``."""
    gains, hits = [], []
    for example in examples:
        if example.target < 0:
            gains.append(0.0)
            hits.append(0.0)
            continue
        final = weights.blend(example.parts, example.feedback)
        if weights.diversity and example.similarity is not None:
            order = diversify(final, example.similarity, weights.diversity, k)
            rank = int(np.flatnonzero(order == example.target)[0]) + 1
        else:
            # Ties count against the target: a flat blend must not look good.
            rank = int((final >= final[example.target]).sum())
        gains.append(1.0 / math.log2(rank + 1) if rank <= k else 0.0)
        hits.append(float(rank <= k))
    return float(np.mean(gains)) if gains else 0.0, float(np.mean(hits)) if hits else 0.0


@dataclass(frozen=True)
class BlendFit:
    """What :func:`fit_blend` chose and how the candidates scored on the validation episodes."""

    weights: BlendWeights
    ndcg: float
    hit_rate: float
    tried: int
    new_arrival_hit_rate: float | None = None
    retrieval_new_arrival_hit_rate: float | None = None


RETRIEVAL_GRID = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0)
CROSS_ENCODER_GRID = (0.0, 1.0)
PRIOR_GRID = (0.0, 0.05, 0.1, 0.25, 0.5, 1.0)
PER_FEEDBACK_GRID = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
DIVERSITY_GRID = (0.0, 0.05, 0.1, 0.2, 0.3)
# The diversity pass may cost at most this share of the best validation HR@10: the slate gets as varied as it
# can without losing what the shopper asked for.
DIVERSITY_TOLERANCE = 0.01


def fit_blend(
    cold: Sequence[BlendExample],
    with_feedback: Sequence[BlendExample] = (),
    parts: Sequence[str] = PARTS,
    k: int = 10,
) -> BlendFit:
    """Choose the blend's weights on validation episodes.

    First the weights of the parts for shoppers without feedback (``cold``: retrieval, cross-encoder and the
    prior's base weight, by grid search for the best mean NDCG@k; the cross-encoder's weight is 1 when it is
    used, since only ratios matter), then the prior's weight per feedback item on ``with_feedback``, then the
    largest diversity whose HR@k on ``cold`` stays within :data:`DIVERSITY_TOLERANCE` of the best.

    Each step prefers weights that keep the retrieval order's HR@k on the examples whose target is a new arrival
    (``new_arrival``; :class:`_NewArrivalFloor`). When none does, the best by NDCG@k is used, with a warning.

    Raises:
        ValueError: No cold example, or a part name that is not one of :data:`PARTS`.
    """
    if not cold:
        raise ValueError("fit_blend needs validation examples without feedback")
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown blend parts {sorted(unknown)}; known: {', '.join(PARTS)}")
    base = BlendWeights(prior_per_feedback=0.0, diversity=0.0).using(parts)
    floor_cold = _NewArrivalFloor.of(cold, parts, k)
    floor_liked = _NewArrivalFloor.of(with_feedback, parts, k)
    grid = itertools.product(
        RETRIEVAL_GRID if RETRIEVAL in parts else (0.0,),
        (1.0,) if CROSS_ENCODER in parts else (0.0,),
        PRIOR_GRID if PRIOR in parts else (0.0,),
    )
    tried = 0
    best: tuple[bool, float, float, BlendWeights] | None = None
    for retrieval, cross_encoder, prior in grid:
        if retrieval == cross_encoder == prior == 0:
            continue
        weights = replace(base, retrieval=retrieval, cross_encoder=cross_encoder, prior=prior)
        ndcg, hits = _ndcg(cold, weights, k)
        tried += 1
        row = (floor_cold.keeps(weights), ndcg, hits, weights)
        if best is None or row[:2] > best[:2]:
            best = row
    assert best is not None
    if not best[0]:
        logger.warning(
            "no blend weights keep the retrieval order's HR@%d on new-arrival validation targets (%.3f); "
            "the best by NDCG@%d is used",
            k,
            floor_cold.hit_rate,
            k,
        )
    weights = best[3]
    if PRIOR in parts and with_feedback:
        scored = []
        for per_feedback in PER_FEEDBACK_GRID:
            candidate = replace(weights, prior_per_feedback=per_feedback)
            keeps = floor_liked.keeps(candidate)
            scored.append((keeps, _ndcg(with_feedback, candidate, k)[0], -per_feedback, candidate))
            tried += 1
        weights = max(scored, key=lambda row: row[:3])[3]
    if all(example.similarity is not None for example in cold):
        floor = best[2] * (1 - DIVERSITY_TOLERANCE)
        # Weights that keep new arrivals only give way to a diversity that keeps them too.
        keeping = floor_cold.keeps(weights)
        for diversity in DIVERSITY_GRID[1:]:
            candidate = replace(weights, diversity=diversity)
            tried += 1
            if _ndcg(cold, candidate, k)[1] >= floor:
                keeps = floor_cold.keeps(candidate)
                if keeps or not keeping:
                    weights, keeping = candidate, keeps
    ndcg, hits = _ndcg(cold, weights, k)
    fresh = bool(floor_cold.examples)
    return BlendFit(
        weights,
        ndcg,
        hits,
        tried,
        floor_cold.hit_rate_of(weights) if fresh else None,
        floor_cold.hit_rate if fresh else None,
    )


@dataclass(frozen=True)
class _NewArrivalFloor:
    """The HR@k that the retrieval order alone reaches on the examples whose target is a new arrival: the floor a
    blend's weights must keep there (see the module docstring)."""

    examples: Sequence[BlendExample]
    hit_rate: float
    k: int

    @classmethod
    def of(cls, examples: Sequence[BlendExample], parts: Sequence[str], k: int) -> _NewArrivalFloor:
        fresh = [example for example in examples if example.new_arrival] if RETRIEVAL in parts else []
        retrieval = BlendWeights(retrieval=1.0, cross_encoder=0.0, prior=0.0, prior_per_feedback=0.0)
        return cls(fresh, _ndcg(fresh, retrieval, k)[1] if fresh else 0.0, k)

    def hit_rate_of(self, weights: BlendWeights) -> float:
        return _ndcg(self.examples, weights, self.k)[1]

    def keeps(self, weights: BlendWeights) -> bool:
        return not self.examples or self.hit_rate_of(weights) >= self.hit_rate
