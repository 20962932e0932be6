"""A yardstick with a known optimum: linear-Gaussian conversations and their Bayes oracle.

Generative process (:class:`GaussianConversationModel`; see ``docs/yardstick.md``). For each
conversation of ``N`` utterances among ``S ≥ 2`` speakers (turns as in the synthetic set: the first
speaker is uniform, then the turn passes to a uniformly chosen other speaker with probability
``turn_switch``):

1. Every speaker ``s`` carries a latent ``z ∈ R^k`` that follows a stationary Gaussian AR(1) over
   **its own** turns: ``z_first ~ N(0, I_k)``, ``z_next = ρ z_prev + sqrt(1 − ρ²) ε``. So
   ``Cov(z_t, z_u) = ρ^{|j(t) − j(u)|} I_k`` for two turns of the same speaker (``j`` counts that
   speaker's turns) and 0 across speakers: an earlier utterance of the same speaker informs the
   current one however far back it lies.
2. Modality ``m``: ``x_{t,m} = b_m + W_m z_t + σ_m ⊙ e``, ``e ~ N(0, I_{d_m})``, with offsets ``b_m``
   ``(d_m,)``, loadings ``W_m`` ``(d_m, k)`` and per-feature noise std ``σ_m`` ``(d_m,)``.
3. Label: ``y_t = βᵀ z_t + σ_y e`` (regression, marginal std ``sqrt(‖β‖² + σ_y²)``, not clipped);
   the classification view is ``round(clip(y, −3, 3)) + 3``, i.e. thresholds of ``y`` at
   ``±0.5, ±1.5, ±2.5`` (the library's 7-class view, :meth:`ConversationDataset.as_classification`).

The oracle conditions exactly (:meth:`GaussianConversationModel.posterior`): the posterior of the
latents given the observed entries is Gaussian, and so is that of every missing entry, with mean
``b_m + W_m μ_t`` and per-feature variance ``diag(W_m P_t W_mᵀ) + σ_m²`` where ``(μ_t, P_t)`` is the
latent posterior of utterance ``t``. Three information sets (:data:`INFO_SETS`):

* ``"none"``: the prior (``μ_t = 0``, ``P_t = I``) — what mean fill can reach;
* ``"utterance"``: the same utterance's observed modalities only (floor (a));
* ``"conversation"``: every observed entry of the conversation (floor (b)); speakers' chains are
  independent, so the conditioning is per speaker, in the information form
  ``Λ = T⁻¹ ⊗ I_k + blockdiag(Σ_{m observed at t} W_mᵀ diag(σ_m⁻²) W_m)``, with ``T⁻¹`` the
  tridiagonal inverse of the AR(1) correlation ``T_{ij} = ρ^{|i−j|}``.

:func:`recovery_floor` reports the expected recovery MSE in the library's units: features z-scored
with training-split statistics, averaged over every dropped scalar exactly as
:func:`mer.recoverers.recovery_error` does (``Σ squared errors / Σ_{dropped (t, m)} d_m``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from mer.data.conversation import (
    NUM_SENTIMENT_CLASSES,
    Conversation,
    ConversationDataset,
)
from mer.data.missing import check_masks
from mer.data.splits import SPLIT_NAMES

__all__ = [
    "INFO_SETS",
    "SENTIMENT_EDGES",
    "DEFAULT_GAUSSIAN_MODALITIES",
    "GaussianConversationModel",
    "GaussianConversationDataset",
    "GaussianPosterior",
    "gaussian_conversations",
    "oracle_posteriors",
    "recovery_floor",
    "label_floor",
    "bayes_labels",
    "training_std",
    "has_oracle",
    "oracle_reference",
]

#: What the oracle may condition on, from least to most.
INFO_SETS = ("none", "utterance", "conversation")

#: Class edges of the 7-class view: class ``c`` holds ``y`` in ``(edge[c−1], edge[c]]``, which is
#: ``round(clip(y, −3, 3)) + 3`` up to ties (of probability zero).
SENTIMENT_EDGES = (-2.5, -1.5, -0.5, 0.5, 1.5, 2.5)

#: Default modalities: width, noise-to-signal std and which latent coordinates they load on. Each
#: modality sees two latents it shares with one other modality and one private latent, so a missing
#: modality is partly predictable from the others at the same utterance (the shared latents) and
#: partly only from the same speaker's other turns (its private latent).
DEFAULT_GAUSSIAN_MODALITIES: dict[str, tuple] = {
    "t": (32, 0.6, (1.0, 1.0, 0.0, 1.0, 0.0, 0.0)),
    "a": (24, 0.7, (1.0, 0.0, 1.0, 0.0, 1.0, 0.0)),
    "v": (16, 0.8, (0.0, 1.0, 1.0, 0.0, 0.0, 1.0)),
}

#: Default label weights direction ``β / ‖β‖``: every latent counts, the shared ones most.
DEFAULT_LABEL_DIRECTION = (1.0, 0.8, 0.6, 0.5, 0.5, 0.5)


@dataclass(frozen=True, eq=False)
class GaussianPosterior:
    """The oracle's answer for one conversation of ``N`` utterances.

    Attributes
    ----------
    mean : dict[str, np.ndarray]
        Modality → ``(N, d_m)`` float64 posterior mean in raw units; observed entries equal the data.
    variance : dict[str, np.ndarray]
        Modality → ``(N, d_m)`` posterior variance per feature in raw units (0 where observed), the
        expected squared error of ``mean``.
    missing : np.ndarray
        ``(N, M)`` bool, ``True`` where the entry was not observed (``~mask``).
    latent_mean, latent_cov : np.ndarray
        ``(N, k)`` and ``(N, k, k)``: the marginal posterior of each utterance's latent.
    label_mean, label_variance : np.ndarray
        ``(N,)``: posterior mean of ``y`` (the Bayes regression prediction) and its expected squared
        error ``βᵀ P_t β + σ_y²``.
    """

    mean: dict[str, np.ndarray]
    variance: dict[str, np.ndarray]
    missing: np.ndarray
    latent_mean: np.ndarray
    latent_cov: np.ndarray
    label_mean: np.ndarray
    label_variance: np.ndarray


@dataclass(frozen=True, eq=False)
class GaussianConversationModel:
    """Linear-Gaussian conversations: per-speaker AR(1) latents seen through noisy linear modalities.

    ``z`` follows ``z_first ~ N(0, I_k)``, ``z_next = ρ z_prev + sqrt(1 − ρ²) ε`` over each speaker's
    own turns; ``x_{t,m} = b_m + W_m z_t + σ_m ⊙ e``; ``y_t = βᵀ z_t + σ_y e``.

    Parameters
    ----------
    loadings : dict[str, np.ndarray]
        Modality → ``W_m`` ``(d_m, k)``; the dict order is the modality order (``M ≥ 2``).
    noise : dict[str, np.ndarray]
        Modality → ``σ_m`` ``(d_m,)``, positive per-feature noise std.
    offsets : dict[str, np.ndarray]
        Modality → ``b_m`` ``(d_m,)``.
    rho : float
        ``ρ ∈ [0, 1)``, the AR(1) coefficient over a speaker's turns.
    label_weights : np.ndarray
        ``β`` ``(k,)``.
    label_noise : float
        ``σ_y ≥ 0``.

    Build one with :meth:`build` (random loadings from a seed) and sample datasets with
    :meth:`sample`; :meth:`posterior` is the oracle. Arrays are stored read-only.

    Examples
    --------
    >>> model = GaussianConversationModel.build(latent_dim=2, modalities={"t": (3, 0.5), "a": (2, 0.5)})
    >>> ds = model.sample(4, utterances=(3, 5), seed=0)
    >>> post = model.posterior(ds[0], np.ones((len(ds[0]), 2), dtype=bool), info="conversation")
    >>> bool(np.all(post.variance["t"] == 0))
    True
    """

    loadings: dict[str, np.ndarray]
    noise: dict[str, np.ndarray]
    offsets: dict[str, np.ndarray]
    rho: float
    label_weights: np.ndarray
    label_noise: float

    def __post_init__(self) -> None:
        names = list(self.loadings)
        if len(names) < 2:
            raise ValueError(f"need at least 2 modalities, got {names}")
        if list(self.noise) != names or list(self.offsets) != names:
            raise ValueError(
                f"noise {list(self.noise)} and offsets {list(self.offsets)} must name the modalities "
                f"of loadings {names}, in the same order"
            )
        beta = _frozen(np.asarray(self.label_weights, dtype=np.float64))
        if beta.ndim != 1 or beta.size < 1:
            raise ValueError(f"label_weights must be a (k,) vector, got shape {beta.shape}")
        k = beta.size
        loadings, noise, offsets = {}, {}, {}
        for m in names:
            W = np.asarray(self.loadings[m], dtype=np.float64)
            if W.ndim != 2 or W.shape[1] != k or W.shape[0] < 1:
                raise ValueError(
                    f"modality {m!r}: loadings must have shape (d_m, k = {k}), got {W.shape}"
                )
            sigma = np.asarray(self.noise[m], dtype=np.float64)
            if sigma.shape != (W.shape[0],) or not np.all(sigma > 0):
                raise ValueError(
                    f"modality {m!r}: noise must be a positive ({W.shape[0]},) vector, got shape "
                    f"{sigma.shape} with minimum {sigma.min() if sigma.size else 'n/a'}"
                )
            b = np.asarray(self.offsets[m], dtype=np.float64)
            if b.shape != (W.shape[0],):
                raise ValueError(
                    f"modality {m!r}: offsets must have shape ({W.shape[0]},), got {b.shape}"
                )
            loadings[m], noise[m], offsets[m] = _frozen(W), _frozen(sigma), _frozen(b)
        if not 0.0 <= float(self.rho) < 1.0:
            raise ValueError(f"rho must lie in [0, 1), got {self.rho}")
        if float(self.label_noise) < 0:
            raise ValueError(f"label_noise must be >= 0, got {self.label_noise}")
        object.__setattr__(self, "loadings", loadings)
        object.__setattr__(self, "noise", noise)
        object.__setattr__(self, "offsets", offsets)
        object.__setattr__(self, "rho", float(self.rho))
        object.__setattr__(self, "label_weights", beta)
        object.__setattr__(self, "label_noise", float(self.label_noise))

    # ------------------------------------------------------------------------------ construction
    @classmethod
    def build(
        cls,
        *,
        latent_dim: int = 6,
        modalities: Mapping[str, tuple] | None = None,
        rho: float = 0.9,
        label_std: float = 1.0,
        label_noise: float = 0.4,
        label_direction: Sequence[float] | None = None,
        world_seed: int = 0,
    ) -> "GaussianConversationModel":
        """A model with random loadings, offsets and feature scales drawn from ``world_seed``.

        Parameters
        ----------
        latent_dim : int
            ``k``.
        modalities : dict, optional
            Modality → ``(d_m, noise)`` or ``(d_m, noise, loadings)``: width, noise-to-signal std and
            a length-``k`` mask of latent coordinates the modality sees (default: all of them).
            Default :data:`DEFAULT_GAUSSIAN_MODALITIES` (needs ``latent_dim = 6``).
        rho : float
            AR(1) coefficient over a speaker's turns.
        label_std : float
            Marginal std of ``y``: ``‖β‖² + σ_y² = label_std²``.
        label_noise : float
            ``σ_y``, at most ``label_std``.
        label_direction : sequence of float, optional
            Direction of ``β`` (length ``k``); default :data:`DEFAULT_LABEL_DIRECTION` for ``k = 6``,
            else all ones.
        world_seed : int

        Row ``j`` of ``W_m`` is ``s_j · g_j ⊙ ℓ_m / ‖g_j ⊙ ℓ_m‖`` with ``g_j ~ N(0, I_k)``, and
        ``σ_{m,j} = s_j · noise``, with a feature scale ``s_j ~ logU(0.5, 2)`` and offset
        ``b_{m,j} ~ N(0, 1)``: every feature has signal variance ``s_j²`` and noise-to-signal ratio
        ``noise²``, and standardisation (which the library applies) undoes ``s`` and ``b``.
        """
        k = int(latent_dim)
        if k < 1:
            raise ValueError(f"latent_dim must be >= 1, got {latent_dim}")
        specs = dict(DEFAULT_GAUSSIAN_MODALITIES if modalities is None else modalities)
        if label_direction is None:
            default = k == len(DEFAULT_LABEL_DIRECTION)
            label_direction = DEFAULT_LABEL_DIRECTION if default else (1.0,) * k
        direction = np.asarray(label_direction, dtype=np.float64)
        if direction.shape != (k,) or not np.any(direction):
            raise ValueError(
                f"label_direction must have latent_dim = {k} entries, not all zero; "
                f"got {label_direction}"
            )
        if not 0.0 <= label_noise <= label_std:
            raise ValueError(f"need 0 <= label_noise <= label_std, got {label_noise}, {label_std}")
        rng = np.random.default_rng(world_seed)
        loadings, noise, offsets = {}, {}, {}
        for m, spec in specs.items():
            if len(spec) not in (2, 3):
                raise ValueError(
                    f"modality {m!r}: expected (d_m, noise) or (d_m, noise, loadings), got {spec}"
                )
            d, level = int(spec[0]), float(spec[1])
            mask = np.ones(k) if len(spec) == 2 else np.asarray(spec[2], dtype=np.float64)
            if d < 1 or level <= 0:
                raise ValueError(f"modality {m!r}: need width >= 1 and noise > 0, got {d}, {level}")
            if mask.shape != (k,) or not np.any(mask):
                raise ValueError(
                    f"modality {m!r}: loadings mask must have latent_dim = {k} entries, not all zero; "
                    f"got {spec[2]}"
                )
            G = rng.normal(size=(d, k)) * mask
            G /= np.linalg.norm(G, axis=1, keepdims=True)
            scale = np.exp(rng.uniform(np.log(0.5), np.log(2.0), size=d))
            loadings[m] = G * scale[:, None]
            noise[m] = level * scale
            offsets[m] = rng.normal(size=d)
        beta = direction / np.linalg.norm(direction) * math.sqrt(label_std**2 - label_noise**2)
        return cls(loadings, noise, offsets, rho, beta, label_noise)

    # -------------------------------------------------------------------------------- properties
    @property
    def modalities(self) -> list[str]:
        return list(self.loadings)

    @property
    def feature_dims(self) -> dict[str, int]:
        return {m: int(W.shape[0]) for m, W in self.loadings.items()}

    @property
    def latent_dim(self) -> int:
        return int(self.label_weights.size)

    @property
    def label_std(self) -> float:
        """Marginal std of ``y``."""
        return math.sqrt(float(self.label_weights @ self.label_weights) + self.label_noise**2)

    def prior_variance(self, modality: str) -> np.ndarray:
        """``(d_m,)`` marginal variance of each feature, ``‖W_{m,j}‖² + σ_{m,j}²``."""
        W = self.loadings[modality]
        return (W**2).sum(axis=1) + self.noise[modality] ** 2

    # ---------------------------------------------------------------------------------- sampling
    def sample_conversation(
        self, rng: np.random.Generator, speakers: np.ndarray, conversation_id: str
    ) -> Conversation:
        """One conversation with the given speaker sequence ``(N,)``: features (float32) and labels
        (float32, regression)."""
        speakers = np.asarray(speakers, dtype=np.int64)
        n, k = speakers.size, self.latent_dim
        eps = rng.normal(size=(n, k))
        latent = np.empty((n, k))
        last: dict[int, np.ndarray] = {}
        keep = math.sqrt(1.0 - self.rho**2)
        for t, s in enumerate(speakers.tolist()):
            latent[t] = eps[t] if s not in last else self.rho * last[s] + keep * eps[t]
            last[s] = latent[t]
        features = {
            m: (self.offsets[m] + latent @ W.T + self.noise[m] * rng.normal(size=(n, W.shape[0])))
            .astype(np.float32)
            for m, W in self.loadings.items()
        }
        labels = latent @ self.label_weights + self.label_noise * rng.normal(size=n)
        return Conversation(
            conversation_id=conversation_id,
            features=features,
            labels=labels.astype(np.float32),
            speakers=speakers,
            utterance_ids=tuple(f"{conversation_id}_{t:02d}" for t in range(n)),
        )

    def sample(
        self,
        num_conversations: int = 300,
        *,
        utterances: tuple[int, int] = (8, 20),
        num_speakers: tuple[int, int] = (2, 3),
        turn_switch: float = 0.7,
        seed: int = 0,
        task: str = "regression",
        splits: Mapping[str, Sequence[int]] | None = None,
        name: str | None = None,
    ) -> "GaussianConversationDataset":
        """A dataset of ``num_conversations`` conversations that carries this model.

        ``N ~ U{utterances}``, ``S ~ U{num_speakers}`` (``S ≥ 2``), turns as in the module docstring;
        ``splits=None`` draws the seeded 70/10/20 split. ``task="classification"`` gives the 7-class
        view (:data:`SENTIMENT_EDGES`).
        """
        lo, hi = (int(v) for v in utterances)
        s_lo, s_hi = (int(v) for v in num_speakers)
        if int(num_conversations) < 1:
            raise ValueError(f"num_conversations must be >= 1, got {num_conversations}")
        if not 1 <= lo <= hi:
            raise ValueError(f"utterances must be (min, max) with 1 <= min <= max, got {utterances}")
        if not 2 <= s_lo <= s_hi:
            raise ValueError(
                f"num_speakers must be (min, max) with 2 <= min <= max, got {num_speakers}"
            )
        if not 0.0 <= turn_switch <= 1.0:
            raise ValueError(f"turn_switch must be a probability, got {turn_switch}")
        if task not in ("regression", "classification"):
            raise ValueError(f"task must be 'regression' or 'classification', got {task!r}")
        rng = np.random.default_rng(seed)
        conversations = []
        for i in range(int(num_conversations)):
            n_spk = int(rng.integers(s_lo, s_hi + 1))
            n = int(rng.integers(lo, hi + 1))
            speakers = _turns(rng, n, n_spk, turn_switch)
            conversations.append(self.sample_conversation(rng, speakers, f"gauss{seed}_{i:04d}"))
        bound = max(3.0, 8.0 * self.label_std)
        dataset = GaussianConversationDataset(
            conversations,
            self.modalities,
            "regression",
            splits,
            label_range=(-bound, bound),
            split_seed=seed,
            name=name or f"gaussian(seed={seed})",
            model=self,
        )
        return dataset.as_classification() if task == "classification" else dataset

    # ------------------------------------------------------------------------------------ oracle
    def posterior(
        self, conversation: Conversation, mask: np.ndarray, info: str = "conversation"
    ) -> GaussianPosterior:
        """Exact posterior of every entry and label of ``conversation`` given its observed entries.

        Parameters
        ----------
        conversation : Conversation
            Features in raw units (as sampled).
        mask : np.ndarray
            ``(N, M)`` bool availability, ``True`` where observed (columns in model modality order).
        info : {"none", "utterance", "conversation"}
            What the posterior conditions on (see the module docstring).

        Returns
        -------
        GaussianPosterior
        """
        if info not in INFO_SETS:
            raise ValueError(f"info must be one of {INFO_SETS}, got {info!r}")
        mask = np.asarray(mask, dtype=bool)
        n, k = conversation.num_utterances, self.latent_dim
        if mask.shape != (n, len(self.loadings)):
            raise ValueError(
                f"conversation {conversation.conversation_id!r}: mask has shape {mask.shape}, expected "
                f"({n}, {len(self.loadings)}) (utterances × modalities {self.modalities})"
            )
        # Information form: G_t = Σ_{m observed at t} W_mᵀ diag(σ_m⁻²) W_m, h_t = Σ W_mᵀ (x − b)/σ².
        G = np.zeros((n, k, k))
        h = np.zeros((n, k))
        if info != "none":
            for c, (m, W) in enumerate(self.loadings.items()):
                seen = mask[:, c]
                if not seen.any():
                    continue
                Wn = W / self.noise[m][:, None] ** 2
                G[seen] += W.T @ Wn
                h[seen] += (conversation.features[m][seen].astype(np.float64) - self.offsets[m]) @ Wn
        if info == "conversation":
            mu, P = self._chain_posterior(np.asarray(conversation.speakers), G, h)
        else:
            P = np.linalg.inv(np.eye(k)[None] + G)
            mu = (P @ h[:, :, None])[:, :, 0]

        mean, variance = {}, {}
        for c, (m, W) in enumerate(self.loadings.items()):
            seen = mask[:, c]
            mean_m = self.offsets[m] + mu @ W.T
            var_m = ((P @ W.T) * W.T).sum(axis=1) + self.noise[m] ** 2
            mean_m[seen] = conversation.features[m][seen]
            var_m[seen] = 0.0
            mean[m], variance[m] = mean_m, var_m
        beta = self.label_weights
        return GaussianPosterior(
            mean=mean,
            variance=variance,
            missing=~mask,
            latent_mean=mu,
            latent_cov=P,
            label_mean=mu @ beta,
            label_variance=(P @ beta) @ beta + self.label_noise**2,
        )

    def _chain_posterior(
        self, speakers: np.ndarray, G: np.ndarray, h: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-speaker exact conditioning: ``Λ = T⁻¹ ⊗ I_k + blockdiag(G)``, mean ``Λ⁻¹ h``."""
        n, k = h.shape
        mu, P = np.empty((n, k)), np.empty((n, k, k))
        for s in np.unique(speakers):
            idx = np.flatnonzero(speakers == s)
            L = idx.size
            Lam = np.kron(_ar1_precision(L, self.rho), np.eye(k))
            blocks = Lam.reshape(L, k, L, k)
            blocks[np.arange(L), :, np.arange(L), :] += G[idx]
            cov = np.linalg.inv(Lam)
            mu[idx] = (cov @ h[idx].reshape(-1)).reshape(L, k)
            P[idx] = cov.reshape(L, k, L, k)[np.arange(L), :, np.arange(L), :]
        return mu, P


class GaussianConversationDataset(ConversationDataset):
    """A :class:`ConversationDataset` sampled from a :class:`GaussianConversationModel`, which it
    carries as :attr:`model` through :meth:`split`, :meth:`subset` and :meth:`as_classification`.

    :meth:`standardized` returns a plain :class:`ConversationDataset`: its features are no longer
    in the model's raw units, so the oracle would not apply to them.
    """

    def __init__(self, *args, model: GaussianConversationModel, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if list(model.modalities) != self.modalities or model.feature_dims != self.feature_dims:
            raise ValueError(
                f"model modalities {model.feature_dims} do not match the dataset's {self.feature_dims}"
            )
        self.model = model

    def _derive(self, conversations, **overrides) -> ConversationDataset:
        return _rebuilt(super()._derive(conversations, **overrides), model=self.model)

    def standardized(self, reference: str = "train", eps: float = 1e-6) -> ConversationDataset:
        return _rebuilt(super().standardized(reference, eps), model=None)


def _rebuilt(dataset: ConversationDataset, model: GaussianConversationModel | None) -> ConversationDataset:
    """``dataset`` again, carrying ``model`` (a :class:`GaussianConversationDataset`) or no model."""
    settings = dict(num_classes=dataset.num_classes, label_range=dataset.label_range,
                    feature_dims=dataset.feature_dims, name=dataset.name)
    if model is None:
        return ConversationDataset(list(dataset), dataset.modalities, dataset.task, dataset.splits, **settings)
    return GaussianConversationDataset(list(dataset), dataset.modalities, dataset.task, dataset.splits,
                                       model=model, **settings)


def gaussian_conversations(
    seed: int = 0,
    num_conversations: int = 300,
    *,
    utterances: tuple[int, int] = (8, 20),
    num_speakers: tuple[int, int] = (2, 3),
    turn_switch: float = 0.7,
    latent_dim: int = 6,
    modalities: Mapping[str, tuple] | None = None,
    rho: float = 0.9,
    label_std: float = 1.0,
    label_noise: float = 0.4,
    label_direction: Sequence[float] | None = None,
    task: str = "regression",
    splits: Mapping[str, Sequence[int]] | None = None,
    world_seed: int = 0,
) -> GaussianConversationDataset:
    """The yardstick dataset: :meth:`GaussianConversationModel.build`, then its ``sample``.

    Registered as ``load_dataset("gaussian", ...)``. ``world_seed`` fixes the model (loadings,
    offsets, scales), ``seed`` the conversations and split, as for the synthetic set. The defaults
    give 300 conversations of 8–20 utterances among 2–3 speakers, modalities ``t, a, v`` of widths
    32, 24, 16 (:data:`DEFAULT_GAUSSIAN_MODALITIES`), ``k = 6``, ``ρ = 0.9``, ``y`` of std 1 with
    noise std 0.4; their floors are in ``docs/yardstick.md``.

    Returns
    -------
    GaussianConversationDataset
        Regression labels are not clipped (``label_range`` is ``±max(3, 8·label_std)``; about 0.3 %
        of them lie outside [−3, 3] at std 1, and the metrics clip as for CMU-MOSI).

    Examples
    --------
    >>> ds = gaussian_conversations(seed=0, num_conversations=20)
    >>> ds.modalities, ds.feature_dims
    (['t', 'a', 'v'], {'t': 32, 'a': 24, 'v': 16})
    """
    model = GaussianConversationModel.build(
        latent_dim=latent_dim,
        modalities=modalities,
        rho=rho,
        label_std=label_std,
        label_noise=label_noise,
        label_direction=label_direction,
        world_seed=world_seed,
    )
    return model.sample(
        num_conversations,
        utterances=utterances,
        num_speakers=num_speakers,
        turn_switch=turn_switch,
        seed=seed,
        task=task,
        splits=splits,
    )


# ---------------------------------------------------------------------------- dataset-level oracle
def oracle_posteriors(
    dataset: ConversationDataset,
    masks: Sequence[np.ndarray],
    split: str | None = "test",
    info: str = "conversation",
) -> list[GaussianPosterior]:
    """The posterior of every conversation of ``split`` under ``masks``.

    Parameters
    ----------
    dataset : GaussianConversationDataset
        Carries the model (``dataset.model``); raw features.
    masks : sequence of np.ndarray
        One ``(N_i, M)`` bool mask per conversation of ``dataset.splits[split]``, in that order (what
        :func:`mer.data.split_masks` returns); with ``split=None``, one per conversation of
        ``dataset`` (what :func:`mer.data.random_missing` returns).
    split : str or None
    info : {"none", "utterance", "conversation"}
    """
    model, conversations = _model_and_conversations(dataset, split)
    masks = check_masks(conversations, masks)
    return [model.posterior(c, a, info) for c, a in zip(conversations, masks)]


def recovery_floor(
    dataset: ConversationDataset,
    masks: Sequence[np.ndarray],
    split: str | None = "test",
    info: str = "utterance",
    scaler=None,
) -> float:
    """Expected MSE of the Bayes recovery of the dropped features, in the library's units.

    ``Σ_{dropped (t, m)} Σ_j Var[x_{t,m,j} | info] / std_{m,j}² / Σ_{dropped (t, m)} d_m``: the same
    average over dropped scalars as :func:`mer.recoverers.recovery_error` (``sse / count``), with
    ``std`` the standardisation of :class:`mer.nn.scaler.FeatureScaler`. ``info="utterance"`` is
    floor (a), ``"conversation"`` floor (b), ``"none"`` the prior (what mean fill reaches, ≈ 1).

    Parameters
    ----------
    dataset, masks, split, info
        As for :func:`oracle_posteriors`.
    scaler : optional
        The standardisation std: a fitted ``FeatureScaler`` (anything with ``.std(m)``) or a mapping
        modality → ``(d_m,)`` std; default :func:`training_std` of ``dataset``.

    Returns
    -------
    float
        NaN when nothing is dropped.
    """
    return _floor_of(oracle_posteriors(dataset, masks, split, info), _std_of(dataset, scaler))


def label_floor(
    dataset: ConversationDataset,
    masks: Sequence[np.ndarray],
    split: str | None = "test",
    info: str = "conversation",
) -> float:
    """Expected squared error of the Bayes label prediction (posterior mean of ``y``), averaged over
    the utterances of ``split``."""
    posts = oracle_posteriors(dataset, masks, split, info)
    return float(np.concatenate([p.label_variance for p in posts]).mean())


def bayes_labels(
    dataset: ConversationDataset,
    masks: Sequence[np.ndarray],
    split: str | None = "test",
    info: str = "conversation",
) -> np.ndarray:
    """The Bayes-optimal label prediction of every utterance of ``split``, concatenated in order.

    Regression: ``(Σ N_i,)`` posterior means of ``y`` (minimise the expected squared error).
    Classification: ``(Σ N_i, C)`` posterior class probabilities ``P(y ∈ class c | info)`` under the
    Gaussian posterior of ``y`` and :data:`SENTIMENT_EDGES`, whose argmax maximises the expected
    accuracy; :func:`mer.metrics.classification_metrics` takes them as scores.
    """
    return _labels_of(dataset, oracle_posteriors(dataset, masks, split, info))


def has_oracle(dataset) -> bool:
    """Whether ``dataset`` carries a Gaussian model in its raw units (what the oracle needs)."""
    return isinstance(getattr(dataset, "model", None), GaussianConversationModel)


def oracle_reference(
    dataset: ConversationDataset,
    masks: Sequence[np.ndarray],
    split: str | None = "test",
    scaler=None,
) -> dict | None:
    """Everything a benchmark reports beside the methods for ``masks``, or ``None`` when ``dataset``
    carries no oracle (:func:`has_oracle`): the one hook :mod:`mer.benchmark` calls.

    Parameters
    ----------
    dataset, masks, split, scaler
        As for :func:`recovery_floor`.

    Returns
    -------
    dict or None
        ``"floors"``: info → :func:`recovery_floor` for ``"none"`` (the prior), ``"utterance"``
        (floor (a)) and ``"conversation"`` (floor (b)); ``"labels"``: ``"utterance"`` /
        ``"conversation"`` → :func:`bayes_labels`; ``"label_mse"``: the same two → :func:`label_floor`.
        Each information set is conditioned on once.
    """
    if not has_oracle(dataset):
        return None
    std = _std_of(dataset, scaler)
    posts = {info: oracle_posteriors(dataset, masks, split, info) for info in INFO_SETS}
    informed = ("utterance", "conversation")
    return {
        "floors": {info: _floor_of(posts[info], std) for info in INFO_SETS},
        "labels": {info: _labels_of(dataset, posts[info]) for info in informed},
        "label_mse": {info: float(np.concatenate([p.label_variance for p in posts[info]]).mean())
                      for info in informed},
    }


def _floor_of(posts: Sequence[GaussianPosterior], std: Mapping[str, np.ndarray]) -> float:
    """:func:`recovery_floor` of posteriors already computed."""
    sse, count = 0.0, 0
    for post in posts:
        for c, m in enumerate(post.variance):
            dropped = post.missing[:, c]
            sse += float((post.variance[m][dropped] / std[m] ** 2).sum())
            count += int(dropped.sum()) * post.variance[m].shape[1]
    return sse / count if count else float("nan")


def _labels_of(dataset: ConversationDataset, posts: Sequence[GaussianPosterior]) -> np.ndarray:
    """:func:`bayes_labels` of posteriors already computed."""
    mean = np.concatenate([p.label_mean for p in posts])
    if dataset.task == "regression":
        return mean
    if dataset.num_classes != NUM_SENTIMENT_CLASSES:
        raise ValueError(
            f"the Gaussian classification view has {NUM_SENTIMENT_CLASSES} classes, the dataset "
            f"{dataset.num_classes}"
        )
    std = np.sqrt(np.concatenate([p.label_variance for p in posts]))
    edges = np.array([-np.inf, *SENTIMENT_EDGES, np.inf])
    cdf = _normal_cdf((edges[None, :] - mean[:, None]) / std[:, None])
    return np.diff(cdf, axis=1)


def training_std(
    dataset: ConversationDataset, split: str = "train", eps: float = 1e-6
) -> dict[str, np.ndarray]:
    """Modality → ``(d_m,)`` std over every utterance of ``split`` (all conversations if it is empty),
    floored at ``eps``: the statistic :class:`mer.nn.scaler.FeatureScaler` standardises with."""
    indices = dataset.splits.get(split) or list(range(len(dataset)))
    out = {}
    for m in dataset.modalities:
        stacked = np.concatenate([dataset[i].features[m] for i in indices]).astype(np.float64)
        out[m] = np.maximum(stacked.std(axis=0), eps)
    return out


# ------------------------------------------------------------------------------------- helpers
def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64)
    a.setflags(write=False)
    return a


def _turns(rng: np.random.Generator, n: int, n_spk: int, turn_switch: float) -> np.ndarray:
    speakers = np.empty(n, dtype=np.int64)
    speakers[0] = rng.integers(n_spk)
    for t in range(1, n):
        if rng.random() < turn_switch:
            other = int(rng.integers(n_spk - 1))
            speakers[t] = other + (other >= speakers[t - 1])
        else:
            speakers[t] = speakers[t - 1]
    return speakers


def _ar1_precision(n: int, rho: float) -> np.ndarray:
    """Inverse of ``T_{ij} = ρ^{|i−j|}`` ``(n, n)``: tridiagonal, exact for any ``ρ ∈ [0, 1)``."""
    Q = np.zeros((n, n))
    idx = np.arange(n)
    Q[idx, idx] = 1.0 + rho**2
    Q[0, 0] = Q[n - 1, n - 1] = 1.0
    Q[idx[:-1], idx[1:]] = Q[idx[1:], idx[:-1]] = -rho
    return Q / (1.0 - rho**2)


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.vectorize(math.erf, otypes=[np.float64])(x / math.sqrt(2.0)))


def _model_and_conversations(dataset, split):
    model = getattr(dataset, "model", None)
    if not isinstance(model, GaussianConversationModel):
        raise ValueError(
            f"dataset {getattr(dataset, 'name', dataset)!r} carries no Gaussian model; the oracle "
            "needs a GaussianConversationDataset in raw units (gaussian_conversations(...), not "
            ".standardized())"
        )
    if split is None:
        return model, list(dataset)
    if split not in SPLIT_NAMES:
        raise ValueError(f"unknown split {split!r}; valid: {list(SPLIT_NAMES)} or None for all")
    return model, [dataset[i] for i in dataset.splits[split]]


def _std_of(dataset, scaler) -> dict[str, np.ndarray]:
    if scaler is None:
        return training_std(dataset)
    if isinstance(scaler, Mapping):
        return {m: np.asarray(scaler[m], dtype=np.float64) for m in dataset.modalities}
    out = {}
    for m in dataset.modalities:
        std = scaler.std(m)
        if hasattr(std, "detach"):
            std = std.detach().cpu().numpy()
        out[m] = np.asarray(std, dtype=np.float64)
    return out
