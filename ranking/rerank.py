"""Rerankers: the hybrid's candidates, reordered by score parts.

Every system here takes the hybrid candidate generator's list for a profile (:class:`ranking.candidate_systems.
HybridSystem`), reorders its first ``ranking.rerank_depth`` (50) candidates that a channel found, and leaves the
rest of the catalog as the hybrid scores it (the other candidates in fused order, then everything else). So the
top-100 candidate recall of every reranker equals the hybrid's, and what a reranker changes is where in the first
50 the target lands.

- ``bi_encoder_order``: the candidates by the bi-encoder's cosine similarity between the profile text
  (:func:`retrieval.profile.profile_text`) and the item's stored vector: the baseline a cross-encoder must beat on
  the same candidates.
- ``cross_encoder_untrained``: by the packaged MiniLM with a new, untrained head (the fine-tuning's baseline).
- ``cross_encoder``: by the fine-tuned cross-encoder alone (``<artifacts>/reranker``, made by
  ``concierge train-reranker``).
- ``hybrid_cross_encoder``: the blend (:mod:`ranking.blend`) of the retrieval score and the fine-tuned
  cross-encoder.
- ``hybrid_prior``: the blend of the retrieval score and the MF prior (:mod:`ranking.mf`).
- ``blend``: retrieval, cross-encoder and MF prior, with the diversity pass.

The blends' weights are those ``concierge train-reranker`` fitted on validation episodes (saved beside the
model, :func:`ranking.blend.load_blend`); without them the defaults of :class:`ranking.blend.BlendWeights` are used
and a warning says so. The MF prior is the one ``concierge train-reranker`` saved when it was fitted on the same
training interactions, else fitted in :meth:`RerankSystem.fit` (about a second on the sample), so it never sees a
test shopper. A new arrival among the candidates gets the candidates' median prior
(:func:`neutral_for_new_arrivals`), and in a blend with the prior it never falls below the better of its places in
the retrieval order and in the same blend without the prior (setting ``ranking.new_arrival_floor``,
:func:`ranking.blend.keep_new_arrivals`): the prior knows nothing of it, so it may not cost it a place that its
content earned.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from data.settings import Settings
from data.splits import stable_seed
from ranking.blend import (
    CROSS_ENCODER,
    PRIOR,
    RETRIEVAL,
    BlendError,
    BlendWeights,
    category_similarity,
    diversify,
    keep_new_arrivals,
    load_blend,
    normalise,
)
from ranking.candidate_systems import HybridSystem
from ranking.cross_encoder import reranker_text
from ranking.metrics import ranks_from_order
from ranking.system import ScoreParts, TrainingData, register
from retrieval.candidates import Candidate
from retrieval.profile import Profile, profile_text

if TYPE_CHECKING:
    from ranking.mf import MFPrior

logger = logging.getLogger(__name__)

BI_ENCODER = "bi_encoder"
UNTRAINED = "untrained"
RERANKER_FOLDER = "reranker"
PRIOR_FOLDER = "mf"


def neutral_for_new_arrivals(prior: np.ndarray, known: np.ndarray) -> np.ndarray:
    """The candidates' prior scores with each new arrival's (``known`` false: no training interaction) set to the
    median of the other candidates': the prior has no evidence about it, so among these candidates it neither
    lifts nor sinks it. (The MF prior's own neutral value, the median over the whole catalog, sits below most
    candidates, which retrieval picked and which tend to be popular: weighted in a blend, it hid new arrivals.)

    Example:
        >>> neutral_for_new_arrivals(np.array([5.0, 0.0, 1.0, 3.0]), np.array([True, False, True, True])).tolist()
        [5.0, 3.0, 1.0, 3.0]
    """
    prior = np.asarray(prior, dtype=float).copy()
    known = np.asarray(known, dtype=bool)
    if known.any() and not known.all():
        prior[~known] = np.median(prior[known])
    return prior


class RerankSystem(HybridSystem):
    """Hybrid candidates reranked by some score parts (see the module docstring).

    Attributes:
        uses: The parts the final score is made of: ``retrieval``, ``cross_encoder``, ``prior``, or one of
            ``bi_encoder`` and ``untrained`` (an order by that model alone).
    """

    uses: ClassVar[tuple[str, ...]]

    def __init__(self, settings: Settings, *, cross_encoder: bool = True, **options: object) -> None:
        """``cross_encoder=False`` leaves the fine-tuned model out (for mining its training pairs before it
        exists); ``options`` go to :class:`ranking.candidate_systems.CandidateSystem`."""
        super().__init__(settings, **options)
        self._load_cross_encoder = cross_encoder

    def fit(self, data: TrainingData) -> None:
        ranking = self.settings.ranking
        folder = self.settings.paths.artifacts / RERANKER_FOLDER
        # The model first: a missing or outdated one is refused before the indexes are built.
        self._scorer = None
        if UNTRAINED in self.uses or (CROSS_ENCODER in self.uses and self._load_cross_encoder):
            from ranking.cross_encoder import CrossEncoderScorer, load_scorer

            if UNTRAINED in self.uses:
                self._scorer = CrossEncoderScorer.untrained(ranking.reranker_max_length, seed=data.seed)
            else:
                self._scorer = load_scorer(folder, ranking.reranker_backend)
        super().fit(data)
        self._depth = ranking.rerank_depth
        catalog = data.catalog
        self.texts = [reranker_text(item, self.descriptions.get(item.item_id)) for item in catalog]
        self._positions = {item.item_id: position for position, item in enumerate(catalog)}
        self.prior = self.fit_prior(data) if PRIOR in self.uses else None
        self._vectors = None
        if BI_ENCODER in self.uses:
            self._vectors = self.item_vectors()
        blended = [part for part in self.uses if part in (RETRIEVAL, CROSS_ENCODER, PRIOR)]
        self._weights = self._blend_weights(folder, blended)
        self._similarity_codes = np.stack(
            [facet.codes for facet in data.facets.category_levels()] or [np.full(len(catalog), -1)], axis=1
        )

    def fit_prior(self, data: TrainingData) -> MFPrior:
        """The MF prior of these training data: the one saved in ``<artifacts>/reranker/mf`` when it was fitted
        on exactly them with the current settings, else one fitted now (about a second on the sample)."""
        from ranking.mf import MFPrior, PriorModelError

        ranking, seed = self.settings.ranking, stable_seed(data.seed, "mf")
        matrix = data.matrix()
        folder = self.settings.paths.artifacts / RERANKER_FOLDER / PRIOR_FOLDER
        try:
            prior = MFPrior.load(folder, self.item_ids)
            if prior.trained_on(matrix, ranking, seed):
                prior.fold_in_weight = ranking.mf_fold_in_weight  # a scoring knob, not part of the fit
                return prior
        except PriorModelError:
            pass
        prior = MFPrior.from_settings(ranking, seed=seed).fit(matrix, self.item_ids)
        if prior.neutral:
            logger.warning("%s: %s", self.name, prior.reason)
        return prior

    def _blend_weights(self, folder, parts: list[str]) -> BlendWeights:
        if len(parts) < 2:
            return BlendWeights().using(parts)
        try:
            return load_blend(folder, self.name)
        except BlendError as error:
            logger.warning("%s: default blend weights (%s)", self.name, error)
            self.description = f"{type(self).description} Default blend weights (none fitted)."
            return BlendWeights().using(parts)

    def candidate_parts(
        self,
        profiles: Sequence[Profile],
        candidates: Sequence[Sequence[Candidate]] | None = None,
        parts: Sequence[str] | None = None,
    ) -> list[tuple[np.ndarray, dict[str, np.ndarray]]]:
        """For each profile: the catalog positions of the candidates it reranks (found by a channel, at most
        ``rerank_depth``), and the raw scores of each part (``parts``: those named; ``None``: all it uses)."""
        wanted = self.uses if parts is None else tuple(parts)
        if candidates is None:
            candidates = self.candidates_batch(profiles)
        queries = [profile_text(profile, self.facets) for profile in profiles]
        vectors = self.embed_texts(queries) if BI_ENCODER in wanted and self._vectors is not None else None
        out = []
        for row, (profile, found) in enumerate(zip(profiles, candidates, strict=True)):
            top = [c for c in found if c.channels][: self._depth]
            positions = np.array([c.position for c in top], dtype=np.int64)
            scores: dict[str, np.ndarray] = {}
            if RETRIEVAL in wanted:
                scores[RETRIEVAL] = np.array([c.score for c in top], dtype=float)
            for name in (CROSS_ENCODER, UNTRAINED):
                if name in wanted and self._scorer is not None:
                    texts = [self.texts[p] for p in positions]
                    scores[name] = self._scorer.score(queries[row], texts, keys=positions.tolist())
            if PRIOR in wanted and self.prior is not None:
                liked, disliked = self._known(profile.liked), self._known(profile.disliked)
                scores[PRIOR] = neutral_for_new_arrivals(
                    self.prior.scores(liked, disliked)[positions], self.prior.known[positions]
                )
            if vectors is not None:
                scores[BI_ENCODER] = self._vectors[positions] @ vectors[row]
            out.append((positions, scores))
        return out

    def similarity(self, positions: np.ndarray) -> np.ndarray:
        """Pairwise category similarity of some items (what the diversity pass avoids repeating)."""
        return category_similarity(self._similarity_codes[positions])

    def _known(self, item_ids: Sequence[str]) -> list[int]:
        return [self._positions[item_id] for item_id in item_ids if item_id in self._positions]

    def _final(self, profile: Profile, parts: dict[str, np.ndarray]) -> np.ndarray:
        if len(parts) == 1 and next(iter(parts)) in (BI_ENCODER, UNTRAINED):
            return normalise(next(iter(parts.values())))
        return self._weights.blend(parts, feedback=len(profile.liked) + len(profile.disliked))

    def _keep_new_arrivals(
        self, order: np.ndarray, positions: np.ndarray, parts: dict[str, np.ndarray]
    ) -> np.ndarray:
        """``order`` with the new arrivals kept at or above their place in the floor order (setting
        ``ranking.new_arrival_floor``), where the MF prior takes part in the blend."""
        floor = self.settings.ranking.new_arrival_floor
        if floor == "none" or self.prior is None or PRIOR not in parts or RETRIEVAL not in parts:
            return order
        fresh = ~self.prior.known[positions]
        if not fresh.any():
            return order
        ranks = []
        if floor in ("retrieval", "both"):
            ranks.append(ranks_from_order(np.argsort(-normalise(parts[RETRIEVAL]), kind="stable")))
        if floor in ("content", "both"):
            content = self._weights.using([RETRIEVAL, CROSS_ENCODER]).blend(parts, feedback=0)
            ranks.append(ranks_from_order(np.argsort(-content, kind="stable")))
        return keep_new_arrivals(order, np.minimum.reduce(ranks), fresh)

    def score_batch(self, profiles: Sequence[Profile]) -> np.ndarray:
        return self.score_details(profiles)[0]

    def score_details(
        self, profiles: Sequence[Profile]
    ) -> tuple[np.ndarray, list[tuple[np.ndarray, dict[str, np.ndarray]]]]:
        """The catalog scores and, per profile, the reranked positions with their raw parts."""
        candidates = self.candidates_batch(profiles)
        scores = self.catalog_scores(profiles, candidates)
        details = self.candidate_parts(profiles, candidates)
        for row, (profile, (positions, parts)) in enumerate(zip(profiles, details, strict=True)):
            if not len(positions):
                continue
            final = self._final(profile, parts)
            similarity = self.similarity(positions) if self._weights.diversity else None
            order = diversify(final, similarity, self._weights.diversity, self.settings.eval.slate_size)
            order = self._keep_new_arrivals(order, positions, parts)
            # Above every other candidate (whose tier is below top + 1) and every non-candidate.
            top = scores[row].max() + 1.0
            scores[row, positions[order]] = top + np.linspace(1.0, 0.0, len(order), endpoint=False)
        return scores, details

    def parts(
        self,
        positions: Sequence[int],
        scores: np.ndarray,
        detail: tuple[np.ndarray, dict[str, np.ndarray]],
    ) -> list[ScoreParts]:
        reranked, raw = detail
        normalised = {name: normalise(values) for name, values in raw.items()}
        index = {int(p): i for i, p in enumerate(reranked.tolist())}
        out = []
        for position in positions:
            i = index.get(int(position))
            out.append(
                ScoreParts(
                    retrieval=float(normalised[RETRIEVAL][i])
                    if i is not None and RETRIEVAL in normalised
                    else None,
                    cross_encoder=(
                        float(normalised[CROSS_ENCODER][i])
                        if i is not None and CROSS_ENCODER in normalised
                        else None
                    ),
                    prior=float(normalised[PRIOR][i]) if i is not None and PRIOR in normalised else None,
                    final=float(scores[position]),
                )
            )
        return out


@register
class BiEncoderOrder(RerankSystem):
    name = "bi_encoder_order"
    description = "Hybrid candidates ordered by the bi-encoder's cosine similarity to the profile text alone."
    uses = (BI_ENCODER,)


@register
class UntrainedCrossEncoder(RerankSystem):
    name = "cross_encoder_untrained"
    description = "Hybrid candidates ordered by the packaged MiniLM with an untrained cross-encoder head."
    uses = (UNTRAINED,)


@register
class CrossEncoderOrder(RerankSystem):
    name = "cross_encoder"
    description = "Hybrid candidates ordered by the fine-tuned cross-encoder alone."
    uses = (CROSS_ENCODER,)


@register
class HybridCrossEncoder(RerankSystem):
    name = "hybrid_cross_encoder"
    description = "Hybrid candidates reranked by the blend of retrieval and fine-tuned cross-encoder scores."
    uses = (RETRIEVAL, CROSS_ENCODER)


@register
class HybridPrior(RerankSystem):
    name = "hybrid_prior"
    description = "Hybrid candidates reranked by the blend of retrieval and MF-prior scores."
    uses = (RETRIEVAL, PRIOR)


@register
class FullBlend(RerankSystem):
    name = "blend"
    description = (
        "Hybrid candidates reranked by retrieval + fine-tuned cross-encoder + MF prior, diversified."
    )
    uses = (RETRIEVAL, CROSS_ENCODER, PRIOR)
