"""The shared recoverer interface and the registry that chooses recoverers by name.

A *recoverer* fills the missing modalities of a batch before fusion. Every method — zero fill, mean
fill, the autoencoder, IMDer, GSDNet — implements :class:`Recoverer`, registers itself with
:func:`register_recoverer` and is built by :func:`build_recoverer` from the name in a config.

Space
-----
Recovery happens in the **standardised raw feature space**: per modality ``m`` a tensor
``(B, N_max, d_m)`` whose every feature is z-scored with training-split statistics
(:class:`~mer.nn.scaler.FeatureScaler`; :class:`~mer.model.MERModel` applies it before calling the
recoverer). The
encoders come after recovery, so the recovery error of dropped features (:func:`recovery_error`) is
measured in the same units for every method and does not depend on a learned embedding.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

from mer.data.collate import ConversationBatch
from mer.data.conversation import ConversationDataset
from mer.config import parse_bytes
from mer.graph import GraphConfig
from mer.nn.scaler import FeatureScaler
from spectraldiff import Registry

__all__ = [
    "Recovery",
    "Recoverer",
    "FeatureScaler",
    "RECOVERERS",
    "register_recoverer",
    "available_recoverers",
    "build_recoverer",
    "check_recoverer_settings",
    "recoverer_class",
    "recoverer_settings",
    "merge_observed",
    "observed_only",
    "recovery_error",
    "dropped_mse",
    "memory_limit",
    "parse_bytes",
    "MEMORY_LIMIT_ENV",
]

#: Environment variable that caps the memory a recoverer may plan to use (``"4GB"``, ``"512MiB"``,
#: bytes); see :func:`memory_limit`.
MEMORY_LIMIT_ENV = "MER_MEMORY_LIMIT"


@dataclass
class Recovery:
    """What :meth:`Recoverer.recover` returns.

    Attributes
    ----------
    features : dict[str, Tensor]
        Modality → ``(B, N_max, d_m)`` in standardised feature space, for **every** modality of the
        batch: observed entries equal the input exactly, missing entries are filled, padded utterances
        are zero.
    adjacency : dict[str, Tensor], optional
        Modality → ``(B, N_max, N_max)`` weighted utterance graph recovered for that modality (e.g.
        GSDNet's ``U diag(λ̂_m) Uᵀ``), zero outside each conversation's block. When given, fusion uses
        ``A_m[b, i, j]`` (clamped at 0) as the weight of the within-modality edge ``j → i`` of the
        utterance–modality graph; cross-modal edges keep weight 1. ``None``: an unweighted graph.
    extras : dict[str, Tensor]
        Anything else worth logging or testing (e.g. recovered eigenvalues ``(B, N_max)``); never read
        by the trainer.
    """

    features: dict[str, Tensor]
    adjacency: dict[str, Tensor] | None = None
    extras: dict[str, Tensor] = field(default_factory=dict)


class Recoverer(nn.Module):
    """Base class and contract of every missing-modality recoverer.

    Parameters
    ----------
    modalities : sequence of str
        ``M ≥ 2`` names, in the column order of availability masks ``(B, N_max, M)``.
    feature_dims : mapping of str to int
        Modality → ``d_m``.
    graph_config : GraphConfig, optional
        The conversation-graph settings the fusion uses, so a recoverer that builds utterance graphs
        (GSDNet's structure graph) builds the same ones.

    Contract
    --------
    All tensors are in standardised feature space (see the module docstring). ``batch`` is a
    :class:`~mer.data.ConversationBatch` whose ``features`` are the **ground truth** everywhere
    (a protocol drops entries artificially, the data has them); ``observed`` is a ``(B, N_max, M)``
    bool tensor, ``True`` where the method may look (every real utterance keeps at least one
    ``True``). How to read it — through ``batch.observed_entries(observed)``,
    ``batch.missing_entries(observed)`` and ``batch.observed_features(observed)``, never
    ``batch.availability`` — is stated once, in :mod:`mer.data.collate`.

    * :meth:`fit_statistics` ``(train, scaler)`` — optional hook called once before training with the
      raw training split and the fitted :class:`FeatureScaler` (e.g. the mean of mean fill).
    * :meth:`training_losses` ``(batch, observed) → dict[str, Tensor]`` — named scalar loss terms of
      the recovery objective. It may read the ground truth of entries where ``observed`` is ``False``
      (that is what they are for). The trainer minimises ``L_task + β · Σ_k losses[k]`` (``β`` from
      the training config, 0.1 by default, the ``β`` of IMDer's and GSDNet's papers). A recoverer
      without parameters returns ``{}``.
    * :meth:`recover` ``(batch, observed) → Recovery`` — must read ``batch.features`` only where
      ``observed`` is ``True`` (:func:`observed_only` gives exactly that view); returns every
      observed entry **unchanged** (bit for bit) and fills only the missing ones
      (:func:`merge_observed` enforces this); padded utterances are zero. It is differentiable so the
      task loss can train the recoverer end to end. Called under ``torch.no_grad()`` in evaluation.
    * :attr:`stochastic` — ``True`` for a method whose :meth:`recover` samples. It must draw from
      torch's global generator (or NumPy's / :mod:`random`'s), never from a private unseeded one:
      evaluation seeds those per pass (:func:`mer.training.evaluation.seeded_rng`).
    * :meth:`training_step` ``(batch, observed) → (Recovery, losses)`` — what the trainer calls in
      training. The default is ``(recover(...), training_losses(...))``; override it to share work
      between the two or, for a sampler that is too expensive to run every step, to return a cheaper
      training-time estimate (the recoverer's docs must say so).
    * :meth:`estimate_memory` ``(max_utterances, batch_size) → bytes | None`` — optional, cheap
      (arithmetic only): the peak memory of one training step. The trainer calls
      :meth:`check_memory` with it before the first epoch, so a method that cannot fit refuses with
      one line instead of failing mid-training (``docs/long_conversations.md``).

    Subclasses take ``(modalities, feature_dims, *, graph_config=None, **hyperparameters)`` and pass
    the first three to ``super().__init__``. Hyperparameters must be JSON-serialisable keywords
    with their defaults in the signature (they are stored in the run's config and, all of them,
    in results and checkpoints: :func:`recoverer_settings`); a variant that forwards ``**kwargs`` to
    its parent with other defaults declares them in ``SETTING_DEFAULTS``.
    """

    #: Registry name, set by :func:`register_recoverer`.
    name: str = ""
    #: A variant's defaults for settings of the class it forwards ``**kwargs`` to.
    SETTING_DEFAULTS: dict = {}
    #: Whether :meth:`recover` draws random numbers (a sampler). Evaluation seeds every pass either
    #: way; ``samples=K`` averages K draws only for a stochastic method. The contract test checks the
    #: flag: a deterministic method must recover the same under any torch seed, a stochastic one not.
    stochastic: bool = False
    #: What to change when :meth:`check_memory` refuses (the end of its one-line message).
    memory_advice: str = "use a smaller train.batch_size or split the longest conversations"

    def __init__(
        self,
        modalities: Sequence[str],
        feature_dims: Mapping[str, int],
        *,
        graph_config: GraphConfig | None = None,
    ) -> None:
        super().__init__()
        modalities = tuple(modalities)
        if len(modalities) < 2 or len(set(modalities)) != len(modalities):
            raise ValueError(f"need at least 2 distinct modality names, got {list(modalities)}")
        missing = [m for m in modalities if m not in feature_dims]
        if missing:
            raise ValueError(f"feature_dims lacks modalities {missing}; expected keys {list(modalities)}")
        bad = {m: feature_dims[m] for m in modalities if int(feature_dims[m]) < 1}
        if bad:
            raise ValueError(f"feature widths must be >= 1, got {bad}")
        self.modalities = modalities
        self.feature_dims = {m: int(feature_dims[m]) for m in modalities}
        self.graph_config = graph_config or GraphConfig()

    # --------------------------------------------------------------------------------- the hooks
    def fit_statistics(self, train: ConversationDataset, scaler: FeatureScaler) -> None:
        """Optional: set data statistics from the raw training split before training."""

    def training_losses(self, batch: ConversationBatch, observed: Tensor) -> dict[str, Tensor]:
        """Named scalar loss terms (may use the ground truth of unobserved entries). Default ``{}``."""
        return {}

    def modalities_to_recover(self, batch: ConversationBatch, observed: Tensor) -> list[str]:
        """Modalities with at least one unobserved real entry in the batch, in modality order."""
        missing = batch.missing_entries(observed).any(dim=(0, 1))
        return [m for k, m in enumerate(self.modalities) if bool(missing[k])]

    def recover(self, batch: ConversationBatch, observed: Tensor) -> Recovery:
        """Fill the unobserved entries from the observed ones; see the class docstring."""
        raise NotImplementedError(f"{type(self).__name__} must implement recover(batch, observed)")

    def training_step(
        self, batch: ConversationBatch, observed: Tensor
    ) -> tuple[Recovery, dict[str, Tensor]]:
        """``(recovery for the task loss, recovery loss terms)`` during training."""
        return self.recover(batch, observed), self.training_losses(batch, observed)

    def estimate_memory(self, max_utterances: int, batch_size: int) -> int | None:
        """Estimated peak bytes of this recoverer's tensors in one training step on ``batch_size``
        conversations padded to ``max_utterances`` (evaluation, without autograd, needs less); ``None``
        (the default) for a method whose cost is small and linear in the conversation length, which
        :meth:`check_memory` then does not check. Arithmetic only: it runs before training."""
        return None

    def check_memory(self, dataset: ConversationDataset, batch_size: int, device: torch.device | str | None = None,
                     limit: int | None = None) -> None:
        """Refuse, before training, a dataset whose longest conversation would need more memory than
        ``limit`` (default :func:`memory_limit` of ``device``).

        Raises
        ------
        ValueError
            One line: the estimated memory, the conversation length and batch size behind it, the limit
            and :attr:`memory_advice`.
        """
        train = dataset.splits["train"]
        longest = dataset.max_utterances
        batch = max(1, min(int(batch_size), len(train) or int(batch_size)))
        need = self.estimate_memory(longest, batch)
        if need is None:
            return
        limit = memory_limit(device) if limit is None else int(limit)
        if need > limit:
            raise ValueError(
                f"recoverer {self.name or type(self).__name__!r} would need about {_gigabytes(need)} for a "
                f"training batch of {batch} conversations of {longest} utterances (the longest in "
                f"dataset {dataset.name!r}), over the {_gigabytes(limit)} limit ({MEMORY_LIMIT_ENV} or the "
                f"device's memory); {self.memory_advice}")

    def modality_index(self, modality: str) -> int:
        return self.modalities.index(modality)

    def extra_repr(self) -> str:
        return f"modalities={list(self.modalities)}, feature_dims={self.feature_dims}"


# -------------------------------------------------------------------------------- helpers
def observed_only(batch: ConversationBatch, observed: Tensor) -> dict[str, Tensor]:
    """Modality → ``(B, N_max, d_m)`` features with every entry where ``observed`` is ``False``
    zeroed: the only view of ``batch.features`` that :meth:`Recoverer.recover` may use
    (:meth:`~mer.data.ConversationBatch.observed_features`)."""
    return batch.observed_features(observed)


def merge_observed(
    batch: ConversationBatch, observed: Tensor, filled: Mapping[str, Tensor]
) -> dict[str, Tensor]:
    """Observed entries from ``batch``, the rest from ``filled``, padding zero.

    Parameters
    ----------
    filled : dict[str, Tensor]
        Modality → ``(B, N_max, d_m)`` proposals (only their unobserved entries are used). A modality
        left out gets zeros (for methods that recover only :meth:`Recoverer.modalities_to_recover`).

    Returns
    -------
    dict[str, Tensor]
        ``torch.where(observed, x, filled)`` per modality, so observed entries are bit-identical to
        the input, times the utterance mask.
    """
    pad = batch.utterance_mask[:, :, None]
    out = {}
    for k, (m, x) in enumerate(batch.features.items()):
        proposal = filled[m].to(x.dtype) if m in filled else torch.zeros_like(x)
        merged = torch.where(observed[:, :, k, None], x, proposal)
        out[m] = torch.where(pad, merged, torch.zeros_like(merged))
    return out


def recovery_error(
    batch: ConversationBatch, observed: Tensor, recovered: Mapping[str, Tensor]
) -> tuple[Tensor, Tensor]:
    """Summed squared error over the unobserved real entries, and the number of scalars it sums.

    ``sse = Σ_{b,i,m: ¬observed} ‖x̂_{b,i,m} − x_{b,i,m}‖²`` and ``count = Σ_{¬observed} d_m``, so
    ``sse / count`` is the per-feature mean squared error of the dropped features (accumulate both
    over batches before dividing). Returns two 0-d float64 tensors.
    """
    missing = batch.missing_entries(observed)
    sse = torch.zeros((), dtype=torch.float64, device=observed.device)
    count = torch.zeros((), dtype=torch.float64, device=observed.device)
    for k, (m, x) in enumerate(batch.features.items()):
        miss = missing[:, :, k]
        diff = (recovered[m] - x)[miss]
        sse = sse + diff.double().pow(2).sum()
        count = count + miss.sum().double() * x.shape[-1]
    return sse, count


def dropped_mse(batch: ConversationBatch, observed: Tensor, estimate: dict[str, Tensor]) -> Tensor:
    """Mean over dropped (utterance, modality) entries of ``‖x̂_{i,m} − x_{i,m}‖² / d_m``.

    Only modalities present in ``estimate`` ``{m: (B, N, d_m)}`` count. A differentiable scalar, 0 when
    nothing is dropped (so such a batch contributes no gradient).
    """
    missing = batch.missing_entries(observed)
    total = batch.features[batch.modalities[0]].new_zeros(())
    count = total.new_zeros(())
    for k, m in enumerate(batch.modalities):
        if m not in estimate:
            continue
        err = (estimate[m] - batch.features[m]).pow(2).mean(-1)
        weight = missing[:, :, k].to(err.dtype)
        total = total + (err * weight).sum()
        count = count + weight.sum()
    return total / count.clamp_min(1.0)


def memory_limit(device: torch.device | str | None = None) -> int:
    """Bytes a recoverer may plan to use: ``$MER_MEMORY_LIMIT`` (``"4GB"``, ``"512MiB"``, ``"1e9"``) when
    set, else the total memory of a CUDA ``device`` or the machine's physical memory."""
    text = os.environ.get(MEMORY_LIMIT_ENV, "").strip()
    if text:
        return parse_bytes(text, MEMORY_LIMIT_ENV)
    device = torch.device(device) if device is not None else torch.device("cpu")
    if device.type == "cuda":
        return int(torch.cuda.get_device_properties(device).total_memory)
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def _gigabytes(n: int) -> str:
    return f"{n / 10**9:.2f} GB"


# ------------------------------------------------------------------------------- registry
#: Every recoverer class by name. The methods register themselves when :mod:`mer.recoverers` (the
#: package, which sits above this module) imports them.
RECOVERERS: Registry[type[Recoverer]] = Registry("recoverer")


def register_recoverer(name: str) -> Callable[[type[Recoverer]], type[Recoverer]]:
    """Class decorator: register a :class:`Recoverer` subclass under ``name``.

    >>> @register_recoverer("my_fill")          # doctest: +SKIP
    ... class MyFill(Recoverer): ...

    Raises ``ValueError`` for a duplicate name or a class that is not a ``Recoverer``.
    """
    add = RECOVERERS.register(name)

    def checked(cls: type[Recoverer]) -> type[Recoverer]:
        if not (inspect.isclass(cls) and issubclass(cls, Recoverer)):
            raise ValueError(f"register_recoverer({name!r}) needs a Recoverer subclass, got {cls!r}")
        add(cls)
        cls.name = name
        return cls

    return checked


def available_recoverers() -> list[str]:
    """Registered recoverer names, sorted."""
    return RECOVERERS.names()


def recoverer_class(name: str) -> type[Recoverer]:
    """The class registered as ``name``; an unknown name's error (``KeyError`` and ``ValueError``)
    lists the valid ones."""
    return RECOVERERS.get(name)


def build_recoverer(
    name: str,
    modalities: Sequence[str],
    feature_dims: Mapping[str, int],
    **kwargs,
) -> Recoverer:
    """Instantiate the recoverer registered as ``name``.

    ``kwargs`` are its hyperparameters (and ``graph_config``); an unknown keyword raises
    ``ValueError`` listing the accepted ones.
    """
    check_recoverer_settings(name, kwargs)
    return recoverer_class(name)(modalities, feature_dims, **kwargs)


def check_recoverer_settings(name: str, settings: Mapping[str, object]) -> None:
    """Refuse ``settings`` names that the recoverer ``name`` does not take (``ValueError`` listing the
    accepted ones), before anything is built or trained. Values are checked by the recoverer itself."""
    defaults, closed = _constructor_defaults(recoverer_class(name))
    if closed:
        unknown = sorted(set(settings) - set(defaults))
        if unknown:
            raise ValueError(
                f"recoverer {name!r} got unknown settings {unknown}; accepted: {sorted(defaults)}"
            )


def recoverer_settings(name: str, settings: Mapping[str, object]) -> dict[str, object]:
    """Every hyperparameter the recoverer ``name`` is built with: its constructor's defaults, with
    ``settings`` (the ones given) in their place. ``graph_config`` is left out: it comes from the
    run's ``model.graph``. A result row that records this stays comparable when a later release
    changes a default, which the given settings alone would hide.

    >>> recoverer_settings("autoencoder", {"hidden": 32})["hidden"], recoverer_settings("autoencoder", {})["hidden"]
    (32, 128)
    """
    defaults, _ = _constructor_defaults(recoverer_class(name))
    built = {k: v for k, v in defaults.items() if k != "graph_config" and v is not inspect.Parameter.empty}
    return {**built, **settings}


def _constructor_defaults(cls: type) -> tuple[dict[str, object], bool]:
    """Keyword → default of what ``cls(...)`` accepts (``inspect.Parameter.empty`` where it has none),
    following ``**kwargs`` up the base classes (a variant that fixes one setting of its parent forwards
    the rest, and declares the defaults it gives its parent's settings in ``SETTING_DEFAULTS``; the
    most derived default wins), and whether a base class closes the set."""
    defaults: dict[str, object] = {}
    for klass in cls.__mro__:
        for k, v in vars(klass).get("SETTING_DEFAULTS", {}).items():
            defaults.setdefault(k, v)
        if "__init__" not in vars(klass):
            continue
        params = inspect.signature(klass.__init__).parameters
        for k, p in params.items():
            if k not in ("self", "modalities", "feature_dims") and p.kind is not p.VAR_KEYWORD:
                defaults.setdefault(k, p.default)
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            return defaults, True
    return defaults, False
