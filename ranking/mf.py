"""The MF prior: collaborative evidence for a cold-start shopper, from implicit-feedback ALS on the training
interactions (``implicit``'s :class:`implicit.cpu.als.AlternatingLeastSquares`, CPU only).

:meth:`MFPrior.fit` factorises the training users x catalog items matrix (1 where a user interacted; ALS gives
each interaction the confidence ``alpha``) into user factors ``x_u`` and item factors ``y_i``. A request is what
the shopper liked and disliked in the session (catalog positions); its score of item ``i`` is made in four
steps:

1. **Cold shopper** (no like with factors): ``s_i = y_i . mean_u(x_u)``, the score the average training user
   gives the item: a popularity-like term learnt by ALS, not a raw count.
2. **Likes fold in**: the liked items with factors ``L`` make a one-row user_items matrix, and implicit's own
   ALS user step (``recalculate_user``, what ``recommend(..., recalculate_user=True)`` runs) solves for the
   shopper's vector ``x = (Y'Y + reg * I + (alpha - 1) * sum_{j in L} y_j y_j')^-1 * alpha * sum_{j in L} y_j``;
   then ``s_i = y_i . (x_cold + fold_in_weight * (x - x_cold))`` with ``x_cold`` the mean user of step 1. At
   ``fold_in_weight`` 1 this is the plain fold-in; below 1 the shopper keeps part of the population's taste, as
   a like or two is thin evidence (on the sample's validation episodes a plain fold-in of one like loses what the
   cold term knew: ``mf_fold_in_weight`` in docs/benchmarks.md). A liked new arrival has no factors and adds
   nothing; when no like has factors, the shopper is cold.
3. **Dislikes push their neighbours down**: with ``D`` the disliked items with factors,
   ``s_i -= dislike_weight * spread * mean_{d in D} cos(y_i, y_d)``, where ``spread`` is the standard deviation of
   this request's scores of step 1 or 2 over the items with factors, so the push is in the request's own units.
4. **New arrivals are neutral**: an item without training interactions (``known`` false) has no factors, so
   its score is set to the median of this request's scores (after step 3) over the items with factors: never a
   penalty, never a boost.

Catalog positions outside the catalog in ``liked`` or ``disliked`` are ignored with a warning. Scores are always
finite: factor rows that come out NaN or infinite are zeroed (the item is then scored like a new arrival) and a
fold-in that is not finite falls back to the cold shopper, with a warning. With no training interactions at all
the prior is :attr:`~MFPrior.neutral`: every score is 0 and :attr:`~MFPrior.reason` says why.

``implicit`` is imported only when a model is fitted or loaded, after ``OPENBLAS_NUM_THREADS`` defaults to 1
here (an OpenBLAS thread pool under ALS slows it badly); fitting, fold-in and ``explain`` also run under
``threadpoolctl.threadpool_limits(1, "blas")`` for a BLAS loaded earlier. ALS itself runs on one thread
(:data:`ALS_THREADS`), which also keeps its results independent of the machine's core count. The bundled sample
(4,905 users x 2,417 items) fits in about 1 s.

Example:
    >>> from scipy import sparse
    >>> rows = [[1, 0, 1, 0, 0], [0, 1, 0, 1, 0]] * 10  # two tastes; item "e" is a new arrival
    >>> prior = MFPrior(factors=4, iterations=10).fit(sparse.csr_matrix(rows), ["a", "b", "c", "d", "e"])
    >>> scores = prior.scores(liked=[0])
    >>> [prior.item_ids[i] for i in np.argsort(-scores)[:2]]
    ['a', 'c']
    >>> bool(scores[4] == np.median(scores[:4]))
    True
    >>> prior.explain(2, liked=[0]).contributors[0][0]
    0
"""

from __future__ import annotations

import contextlib
import json
import logging
import operator
import os
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from scipy import sparse

if TYPE_CHECKING:
    from implicit.cpu.als import AlternatingLeastSquares

    from data.settings import RankingSettings

# Read by BLAS libraries loaded from now on, which is why implicit is imported inside the methods below.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

logger = logging.getLogger(__name__)

REBUILD_COMMAND = "concierge train-reranker"
META_FILE = "mf_prior.json"
MODEL_FILE = "mf_als.npz"
# implicit's OpenMP threads spin against whatever else runs: on 2 busy cores one thread fitted the sample in
# 0.6 s against 1.3 s for two, and the 50 x 50 checkerboard in 0.01 s against 0.7 s.
ALS_THREADS = 1
NO_INTERACTIONS = "no training interactions: the MF prior is neutral (0 for every item)"


class PriorModelError(ValueError):
    """A saved MF prior that cannot be used; the message names the folder and what to do."""


@dataclass(frozen=True)
class PriorExplanation:
    """The collaborative evidence for one pick.

    Attributes:
        item_position: The explained item's catalog position.
        contributors: ``(catalog position, contribution)`` of the liked items (or popular items) that contributed
            most, largest first; ``()`` when there is no collaborative evidence (a neutral prior, a new arrival).
        personal: True when the contributors are the shopper's liked items, False when popular items.
    """

    item_position: int
    contributors: tuple[tuple[int, float], ...]
    personal: bool


class MFPrior:
    """Implicit-feedback ALS with fold-in of a session's likes and a push away from its dislikes.

    See the module docstring for the exact scores.

    Args:
        factors: Latent factors per user and item.
        regularization: ALS's L2 regularisation.
        alpha: Confidence ALS gives each training interaction (and each folded-in like).
        iterations: ALS sweeps.
        seed: Seed of the factors' random start; the same seed and data give the same scores.
        dislike_weight: How far a dislike pushes its neighbours down, in standard deviations of the request's
            scores.
        fold_in_weight: How far likes move the shopper from the average training user towards their fold-in
            (0: not at all, 1: all the way). A scoring knob: changing it needs no refit.

    Raises:
        ValueError: A hyper-parameter out of range.
    """

    VERSION: ClassVar[int] = 1

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 20.0,
        iterations: int = 15,
        seed: int = 0,
        dislike_weight: float = 0.5,
        fold_in_weight: float = 1.0,
    ) -> None:
        for name, value, low in (("factors", factors, 1), ("iterations", iterations, 1)):
            if not isinstance(value, int) or value < low:
                raise ValueError(f"MFPrior {name} must be a whole number >= {low}, got {value!r}")
        for name, value in (("regularization", regularization), ("dislike_weight", dislike_weight)):
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"MFPrior {name} must be a finite number >= 0, got {value!r}")
        if not np.isfinite(fold_in_weight) or not 0 <= fold_in_weight <= 1:
            raise ValueError(f"MFPrior fold_in_weight must be a number from 0 to 1, got {fold_in_weight!r}")
        if not np.isfinite(alpha) or alpha <= 0:
            raise ValueError(f"MFPrior alpha must be a finite number > 0, got {alpha!r}")
        self.factors = factors
        self.regularization = float(regularization)
        self.alpha = float(alpha)
        self.iterations = iterations
        self.seed = seed
        self.dislike_weight = float(dislike_weight)
        self.fold_in_weight = float(fold_in_weight)
        self._item_ids: tuple[str, ...] | None = None
        self._counts = np.zeros(0, dtype=np.int64)
        self._users = 0
        self._model: AlternatingLeastSquares | None = None
        self._reason = ""

    @classmethod
    def from_settings(cls, ranking_settings: RankingSettings, seed: int = 0) -> MFPrior:
        """A prior with the ``mf_*`` hyper-parameters of the ``[ranking]`` settings."""
        return cls(
            factors=ranking_settings.mf_factors,
            regularization=ranking_settings.mf_regularization,
            alpha=ranking_settings.mf_alpha,
            iterations=ranking_settings.mf_iterations,
            seed=seed,
            fold_in_weight=ranking_settings.mf_fold_in_weight,
        )

    def fit(self, matrix: sparse.spmatrix, item_ids: Sequence[str]) -> MFPrior:
        """Learn the factors from ``matrix`` (training users x catalog items in catalog order; every stored
        non-zero counts as one interaction) for the catalog whose item ids are ``item_ids``, in that order.

        Returns:
            This prior, fitted.

        Raises:
            ValueError: The matrix's columns do not match ``item_ids``.
        """
        matrix = sparse.csr_matrix(matrix, dtype=np.float32)
        if matrix.shape[1] != len(item_ids):
            raise ValueError(
                f"MFPrior.fit: the matrix has shape {matrix.shape} but item_ids names {len(item_ids)} items; "
                "pass users x catalog items with one column per item id"
            )
        matrix.eliminate_zeros()
        matrix.sum_duplicates()
        matrix.data[:] = 1.0
        counts = np.bincount(matrix.indices, minlength=matrix.shape[1]).astype(np.int64)
        model = None
        if matrix.nnz:
            from implicit.cpu.als import AlternatingLeastSquares
            from implicit.recommender_base import ModelFitError
            from threadpoolctl import threadpool_limits

            with threadpool_limits(1, "blas"):
                model = AlternatingLeastSquares(
                    factors=self.factors,
                    regularization=self.regularization,
                    alpha=self.alpha,
                    iterations=self.iterations,
                    random_state=self.seed,
                    num_threads=ALS_THREADS,
                )
                # NaN factors: _use zeroes those rows and says so.
                with contextlib.suppress(ModelFitError):
                    model.fit(matrix, show_progress=False)
        self._use(tuple(item_ids), counts, matrix.shape[0], model)
        return self

    @property
    def item_ids(self) -> tuple[str, ...]:
        """The catalog's item ids, in the order of every score."""
        return self._fitted()

    @property
    def neutral(self) -> bool:
        """True when there was nothing to learn from: every score is 0 and :attr:`reason` says why."""
        self._fitted()
        return self._model is None

    @property
    def reason(self) -> str:
        """Why the prior is neutral, as a sentence; ``""`` when it is not."""
        self._fitted()
        return self._reason

    @property
    def known(self) -> np.ndarray:
        """Per catalog item: True when it had at least one training interaction."""
        self._fitted()
        return self._counts > 0

    def trained_on(self, matrix: sparse.spmatrix, settings: RankingSettings, seed: int) -> bool:
        """Whether this prior was fitted on these interactions (same users, same per-item counts) with these
        settings and seed: a saved prior is reused only then."""
        self._fitted()
        counts = np.asarray((sparse.csr_matrix(matrix) != 0).sum(axis=0)).ravel()
        return (
            self._users == matrix.shape[0]
            and np.array_equal(self._counts, counts)
            and (self.factors, self.iterations, self.regularization, self.alpha, self.seed)
            == (
                settings.mf_factors,
                settings.mf_iterations,
                settings.mf_regularization,
                settings.mf_alpha,
                seed,
            )
        )

    def scores(self, liked: Sequence[int] = (), disliked: Sequence[int] = ()) -> np.ndarray:
        """One finite score per catalog item, in catalog order, for a shopper who liked and disliked these
        catalog positions; higher is more likely."""
        return self.scores_batch([liked], [disliked])[0]

    def scores_batch(self, liked: Sequence[Sequence[int]], disliked: Sequence[Sequence[int]]) -> np.ndarray:
        """:meth:`scores` for many requests at once (one fold-in call for all), shape ``(requests, items)``.

        Raises:
            ValueError: ``liked`` and ``disliked`` have different lengths.
        """
        if len(liked) != len(disliked):
            raise ValueError(
                f"MFPrior.scores_batch: {len(liked)} liked lists but {len(disliked)} disliked lists; "
                "pass one of each per request"
            )
        n_items = len(self._fitted())
        if self._model is None:
            return np.zeros((len(liked), n_items))
        likes = [self._with_factors(self._in_catalog(row, "liked")) for row in liked]
        dislikes = [self._with_factors(self._in_catalog(row, "disliked")) for row in disliked]
        users = np.tile(self._cold, (len(liked), 1))
        warm = [row for row, items in enumerate(likes) if len(items)]
        if warm:
            folded = self._fold_in([likes[row] for row in warm])
            users[warm] = self._cold + self.fold_in_weight * (folded - self._cold)
        scores = users @ self._factors.T
        pushed = [row for row, items in enumerate(dislikes) if len(items)]
        if pushed:
            centroids = np.stack([self._unit[dislikes[row]].mean(axis=0) for row in pushed])
            spread = scores[pushed][:, self._usable].std(axis=1)
            scores[pushed] -= self.dislike_weight * spread[:, None] * (centroids @ self._unit.T)
        scores[:, ~self._usable] = np.median(scores[:, self._usable], axis=1)[:, None]
        return scores

    def explain(self, position: int, liked: Sequence[int] = (), n: int = 3) -> PriorExplanation:
        """The collaborative evidence for the item at catalog ``position``.

        With likes that have factors: the ``n`` liked items that contributed most to its score (implicit's
        ``explain``: the fold-in score split into one term per liked item, which sum to it; ``personal``).
        Without: the ``n`` training items with the largest ``cos(y_item, y_j) * count_j / max count`` above 0,
        the popular items most like it in factor space. A neutral prior or a new arrival has no contributors.

        Raises:
            ValueError: ``position`` is outside the catalog.
        """
        n_items = len(self._fitted())
        position = operator.index(position)
        if not 0 <= position < n_items:
            raise ValueError(
                f"MFPrior.explain: position {position} is outside the catalog of {n_items} items"
            )
        if self._model is None:
            return PriorExplanation(position, (), personal=False)
        likes = self._with_factors(self._in_catalog(liked, "liked"))
        if not self._usable[position] or n <= 0:
            return PriorExplanation(position, (), personal=bool(len(likes)))
        if len(likes):
            from threadpoolctl import threadpool_limits

            with threadpool_limits(1, "blas"):
                _, top, _ = self._model.explain(0, self._user_items([likes]), position, N=n)
            return PriorExplanation(position, tuple((int(i), float(s)) for i, s in top), personal=True)
        weights = (self._unit @ self._unit[position]) * self._counts / self._counts.max()
        weights[position] = 0.0
        order = np.argsort(-weights, kind="stable")[:n]
        return PriorExplanation(
            position, tuple((int(i), float(weights[i])) for i in order if weights[i] > 0), personal=False
        )

    def save(self, folder: Path) -> None:
        """Write the prior to ``folder`` (created if missing): implicit's model as ``mf_als.npz`` (none when
        neutral) and ``mf_prior.json`` with the format version, hyper-parameters, item ids and counts."""
        item_ids = self._fitted()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        model_path = folder / MODEL_FILE
        if self._model is None:
            model_path.unlink(missing_ok=True)
        else:
            self._model.save(str(model_path))
        meta = {
            "version": self.VERSION,
            "factors": self.factors,
            "regularization": self.regularization,
            "alpha": self.alpha,
            "iterations": self.iterations,
            "seed": self.seed,
            "dislike_weight": self.dislike_weight,
            "fold_in_weight": self.fold_in_weight,
            "users": self._users,
            "interactions": int(self._counts.sum()),
            "reason": self._reason,
            "item_ids": list(item_ids),
            "item_counts": self._counts.tolist(),
        }
        (folder / META_FILE).write_text(json.dumps(meta), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path, item_ids: Sequence[str] | None = None) -> MFPrior:
        """A prior written by :meth:`save`; with ``item_ids``, it must have been fitted on exactly that catalog.

        Raises:
            PriorModelError: Missing or unreadable files, another format version, or other item ids; the message
                names the folder and the command that rebuilds the prior.
        """
        folder = Path(folder)
        rebuild = f"rebuild it with `{REBUILD_COMMAND}`"
        meta_path, model_path = folder / META_FILE, folder / MODEL_FILE
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise PriorModelError(
                f"no MF prior in {folder} ({META_FILE} is missing); build it with `{REBUILD_COMMAND}`"
            ) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise PriorModelError(
                f"the MF prior in {folder} cannot be read ({META_FILE}: {error}); {rebuild}"
            ) from None
        found = meta.get("version") if isinstance(meta, dict) else None
        if found != cls.VERSION:
            raise PriorModelError(
                f"the MF prior in {folder} was made by version {found}, this is version {cls.VERSION}; {rebuild}"
            )
        try:
            # Priors saved before fold_in_weight existed folded likes in all the way.
            prior = cls(
                **{key: meta[key] for key in _HYPER_PARAMETERS},
                fold_in_weight=meta.get("fold_in_weight", 1.0),
            )
            stored = tuple(str(item_id) for item_id in meta["item_ids"])
            counts = np.asarray(meta["item_counts"], dtype=np.int64).reshape(len(stored))
            users, reason = int(meta["users"]), str(meta["reason"])
        except (KeyError, TypeError, ValueError) as error:
            raise PriorModelError(
                f"the MF prior in {folder} is damaged ({META_FILE}: {error!r}); {rebuild}"
            ) from None
        if item_ids is not None and tuple(item_ids) != stored:
            raise PriorModelError(
                f"the MF prior in {folder} was fitted on another catalog ({_first_difference(stored, item_ids)}); "
                f"{rebuild} for this catalog"
            )
        model = None
        if not reason:
            model = _load_model(model_path, rebuild)
            if model.item_factors.shape != (len(stored), prior.factors):
                raise PriorModelError(
                    f"the MF prior in {folder} is damaged ({MODEL_FILE} holds item factors of shape "
                    f"{model.item_factors.shape}, {META_FILE} says {(len(stored), prior.factors)}); {rebuild}"
                )
        prior._use(stored, counts, users, model)
        return prior

    def _use(
        self, item_ids: tuple[str, ...], counts: np.ndarray, users: int, model: AlternatingLeastSquares | None
    ) -> None:
        """Install fitted or loaded state and derive what scoring needs."""
        self._item_ids, self._counts, self._users, self._model = item_ids, counts, users, model
        self._reason = NO_INTERACTIONS if model is None else ""
        if model is None:
            return
        model.num_threads = ALS_THREADS
        # Items without interactions converge to zero factors in ALS; zeroing them makes it exact. Done in place,
        # before implicit caches Y'Y from them.
        model.item_factors[counts == 0] = 0.0
        broken = ~np.isfinite(model.item_factors).all(axis=1)
        model.item_factors[broken] = 0.0
        broken_users = ~np.isfinite(model.user_factors).all(axis=1)
        model.user_factors[broken_users] = 0.0
        if broken.any() or broken_users.any():
            logger.warning(
                "MF prior: ALS gave non-finite factors for %d items and %d users; they are zeroed (those items "
                "score as new arrivals); raise regularization or lower alpha",
                int(broken.sum()),
                int(broken_users.sum()),
            )
        self._usable = (counts > 0) & ~broken
        if not self._usable.any():
            self._model = None
            self._reason = (
                "ALS gave no finite item factors: the MF prior is neutral (0 for every item); "
                "raise regularization or lower alpha"
            )
            return
        self._factors = model.item_factors.astype(np.float64)
        self._cold = model.user_factors.astype(np.float64).mean(axis=0)
        norms = np.linalg.norm(self._factors, axis=1, keepdims=True)
        self._unit = np.divide(self._factors, norms, out=np.zeros_like(self._factors), where=norms > 0)

    def _fitted(self) -> tuple[str, ...]:
        if self._item_ids is None:
            raise RuntimeError("MFPrior: call fit() or MFPrior.load() before using the prior")
        return self._item_ids

    def _in_catalog(self, positions: Iterable[int], role: str) -> np.ndarray:
        """The distinct positions inside the catalog, sorted; the others are ignored with a warning."""
        n_items = len(self._fitted())
        values = np.fromiter((operator.index(p) for p in positions), dtype=np.int64)
        outside = (values < 0) | (values >= n_items)
        if outside.any():
            logger.warning(
                "MF prior: ignoring %s positions %s, outside the catalog of %d items",
                role,
                sorted(set(values[outside].tolist())),
                n_items,
            )
        return np.unique(values[~outside])

    def _with_factors(self, positions: np.ndarray) -> np.ndarray:
        return positions[self._usable[positions]]

    def _user_items(self, likes: Sequence[np.ndarray]) -> sparse.csr_matrix:
        indptr = np.concatenate([[0], np.cumsum([len(items) for items in likes])])
        indices = np.concatenate(likes).astype(np.int32)
        data = np.ones(len(indices), dtype=np.float32)
        return sparse.csr_matrix((data, indices, indptr), shape=(len(likes), len(self._counts)))

    def _fold_in(self, likes: Sequence[np.ndarray]) -> np.ndarray:
        """One user vector per non-empty list of liked positions, by implicit's ALS user step."""
        from threadpoolctl import threadpool_limits

        assert self._model is not None
        with threadpool_limits(1, "blas"):
            vectors = self._model.recalculate_user(np.arange(len(likes)), self._user_items(likes))
        vectors = np.asarray(vectors, dtype=np.float64)
        broken = ~np.isfinite(vectors).all(axis=1)
        if broken.any():
            logger.warning(
                "MF prior: the fold-in of %d requests is not finite; they score as cold", broken.sum()
            )
            vectors[broken] = self._cold
        return vectors


_HYPER_PARAMETERS = ("factors", "regularization", "alpha", "iterations", "seed", "dislike_weight")


def _first_difference(stored: Sequence[str], given: Sequence[str]) -> str:
    given = tuple(given)
    for position, (there, here) in enumerate(zip(stored, given, strict=False)):
        if there != here:
            return (
                f"{len(stored)} items there, {len(given)} here; position {position} is {there!r} there, "
                f"{here!r} here"
            )
    return f"{len(stored)} items there, {len(given)} here"


def _load_model(path: Path, rebuild: str) -> AlternatingLeastSquares:
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    if not path.is_file():
        raise PriorModelError(
            f"the MF prior in {path.parent} is incomplete ({path.name} is missing); {rebuild}"
        )
    try:
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares.load(str(path))
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise PriorModelError(
            f"the MF prior in {path.parent} cannot be read ({path.name}: {error!r}); {rebuild}"
        ) from None
    if model.item_factors is None or model.user_factors is None:
        raise PriorModelError(
            f"the MF prior in {path.parent} is damaged ({path.name} has no factors); {rebuild}"
        )
    return model
