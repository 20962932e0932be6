"""Configuration of a ``mer`` run: plain dataclasses that round-trip through JSON and YAML.

:class:`RunConfig` holds everything that determines a run — data source, missing-modality protocol,
recoverer and its settings, model widths, optimisation and seed — and every run writes it, resolved,
next to its outputs (``config.json``). ``RunConfig.from_file(path)`` reads it back (``.json``,
``.yaml``/``.yml``), so a run is reproduced from its own output directory.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
from dataclasses import dataclass, field
from typing import Any, Mapping

import yaml

from mer.graph import GraphConfig

__all__ = [
    "DataConfig",
    "ModelConfig",
    "TrainConfig",
    "Protocol",
    "RunConfig",
    "PROTOCOL_KINDS",
    "REGRESSION_LOSSES",
]

PROTOCOL_KINDS = ("none", "random", "fixed", "mixed")
REGRESSION_LOSSES = ("l1", "mse")
TRAIN_MASK_MODES = ("per_epoch", "fixed")


@dataclass
class DataConfig:
    """Where the data comes from (used by the CLI; the Python API takes a dataset object).

    Parameters
    ----------
    source : str
        A name of :func:`mer.data.available_datasets` (``"synthetic"`` by default).
    options : dict
        Keyword arguments of that loader, e.g. ``{"seed": 0, "num_conversations": 300}`` for the
        synthetic set or ``{"path": "aligned_50.pkl"}`` for ``"mmsa"``.
    task : str, optional
        ``"classification"`` turns a regression dataset into its 7-class view.
    """

    source: str = "synthetic"
    options: dict = field(default_factory=dict)
    task: str | None = None


@dataclass
class ModelConfig:
    """Widths and depths of :class:`~mer.models.MERModel`.

    Parameters
    ----------
    dim : int
        Common width ``d`` of the encoders and the fusion graph.
    kernel_sizes : int or dict
        Odd ``Conv1d`` kernel ``l_m`` over the utterance sequence, one for all or per modality.
    gcn_layers : int
        Number of ``GraphConv`` layers ``L``.
    head_hidden : int
        Hidden width of the prediction head.
    dropout : float
    residual : bool
        Residual GCN layers ``H^{l+1} = H^l + ReLU(Â H^l W^l)`` (default) instead of
        ``ReLU(Â H^l W^l)``. Same-speaker edges span the whole conversation, so a plain GCN averages an
        utterance with many others; on the synthetic default (MR 0.3, 15 epochs, 2 seeds) the plain
        layers reach ACC2 ≈ 81 % and the residual ones ≈ 88 %.
    graph : GraphConfig
        How the fusion graph (and GSDNet's structure graph) connects utterances.
    """

    dim: int = 32
    kernel_sizes: int | dict = 3
    gcn_layers: int = 2
    head_hidden: int = 64
    dropout: float = 0.1
    residual: bool = True
    graph: GraphConfig = field(default_factory=GraphConfig)

    def validate(self) -> None:
        if self.dim < 1 or self.head_hidden < 1:
            raise ValueError(f"dim and head_hidden must be >= 1, got {self.dim}, {self.head_hidden}")
        if self.gcn_layers < 1:
            raise ValueError(f"gcn_layers must be >= 1, got {self.gcn_layers}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        kernels = self.kernel_sizes.values() if isinstance(self.kernel_sizes, dict) else [self.kernel_sizes]
        bad = [k for k in kernels if int(k) < 1 or int(k) % 2 == 0]
        if bad:
            raise ValueError(f"kernel_sizes must be odd integers >= 1, got {self.kernel_sizes}")


@dataclass
class TrainConfig:
    """Optimisation settings of :func:`mer.train`.

    Parameters
    ----------
    epochs : int
        Maximum number of epochs.
    batch_size, eval_batch_size : int
        Conversations per batch in training / evaluation.
    lr, weight_decay : float
        Adam.
    beta : float
        Weight of the recoverer's loss terms: ``L = L_task + β Σ L_recoverer`` (0.1 in IMDer and
        GSDNet).
    grad_clip : float
        Maximum global gradient norm (``0`` disables clipping).
    patience : int
        Early stopping: stop after this many epochs without a lower validation loss (``0``: never).
    regression_loss : {"l1", "mse"}
        Task loss for regression (MMSA trains MOSI/MOSEI models with L1).
    train_masks : {"per_epoch", "fixed"}
        Random and mixed protocols: draw the training split's masks anew every epoch (seed + epoch),
        or once. Validation and test masks are always drawn once per (split, condition, seed).
    device : str
        ``"cpu"``, ``"cuda"`` or ``"cuda:K"``.
    progress : bool
        Show tqdm progress bars.
    """

    epochs: int = 30
    batch_size: int = 16
    eval_batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    beta: float = 0.1
    grad_clip: float = 1.0
    patience: int = 8
    regression_loss: str = "l1"
    train_masks: str = "per_epoch"
    device: str = "cpu"
    progress: bool = False

    def validate(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1 or self.eval_batch_size < 1:
            raise ValueError(
                f"batch sizes must be >= 1, got {self.batch_size}, {self.eval_batch_size}"
            )
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.weight_decay < 0 or self.beta < 0 or self.grad_clip < 0 or self.patience < 0:
            raise ValueError("weight_decay, beta, grad_clip and patience must be >= 0")
        if self.regression_loss not in REGRESSION_LOSSES:
            raise ValueError(
                f"unknown regression_loss {self.regression_loss!r}; valid: {list(REGRESSION_LOSSES)}"
            )
        if self.train_masks not in TRAIN_MASK_MODES:
            raise ValueError(f"unknown train_masks {self.train_masks!r}; valid: {list(TRAIN_MASK_MODES)}")
        if not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:K', got {self.device!r}")


@dataclass
class Protocol:
    """A missing-modality condition, applied alike to train, valid and test.

    Parameters
    ----------
    kind : {"none", "random", "fixed", "mixed"}
        ``none``: everything available; ``random``: exact-rate random masks
        (:func:`mer.data.random_missing`); ``fixed``: one availability set for every utterance;
        ``mixed``: the uniform mixture of the conditions in ``mixture`` — every conversation draws one
        of them (:func:`mer.training.protocol_masks` says how).
    missing_rate : float
        Random protocol: ``0 ≤ MR ≤ (M − 1)/M``.
    pattern : tuple of str, optional
        Fixed protocol: the available modalities.
    seed : int, optional
        Seed of the mask draws; ``None`` uses the run's seed. Valid/test masks depend only on
        (split, condition, seed), so every method evaluated with one seed sees the same inputs.
    mixture : tuple, optional
        Mixed protocol: the conditions, each a float (a random missing rate) or a tuple of modality
        names (a fixed availability set), e.g. ``(0.0, 0.3, ("t",), ("t", "a"))``. Non-empty, without
        repeats.

    Examples
    --------
    >>> Protocol.parse({"kind": "mixed", "mixture": [0.3, ["t", "a"]]}).mixture
    (0.3, ('t', 'a'))
    """

    kind: str = "random"
    missing_rate: float = 0.0
    pattern: tuple[str, ...] | None = None
    seed: int | None = None
    mixture: tuple | None = None

    def __post_init__(self) -> None:
        if self.pattern is not None:
            self.pattern = tuple(self.pattern)
        if self.mixture is not None and isinstance(self.mixture, (list, tuple)):
            # JSON turns the tuples into lists; a plain tuple of floats / tuples compares and hashes.
            self.mixture = tuple(_mixture_item(item) for item in self.mixture)

    def validate(self, modalities: list[str] | None = None) -> None:
        if self.kind not in PROTOCOL_KINDS:
            raise ValueError(f"unknown protocol kind {self.kind!r}; valid: {list(PROTOCOL_KINDS)}")
        if self.kind == "random":
            rate = float(self.missing_rate)
            if not (math.isfinite(rate) and rate >= 0.0):
                raise ValueError(f"missing_rate must be >= 0, got {self.missing_rate}")
        if self.kind == "fixed":
            if not self.pattern:
                raise ValueError("a fixed protocol needs a non-empty pattern of available modalities")
            if modalities is not None:
                unknown = [m for m in self.pattern if m not in modalities]
                if unknown:
                    raise ValueError(
                        f"pattern names unknown modalities {unknown}; valid: {list(modalities)}"
                    )
        if self.kind == "mixed":
            self._validate_mixture(modalities)

    def _validate_mixture(self, modalities: list[str] | None) -> None:
        if not isinstance(self.mixture, tuple) or not self.mixture:
            raise ValueError(
                "a mixed protocol needs a non-empty mixture of conditions, e.g. "
                f"mixture=(0.0, 0.3, ('t',)); got {self.mixture!r}"
            )
        seen: dict = {}
        for i, item in enumerate(self.mixture):
            if isinstance(item, float):
                ceiling = None if modalities is None else (len(modalities) - 1) / len(modalities)
                if not (math.isfinite(item) and item >= 0.0) or (
                    ceiling is not None and item > ceiling + 1e-9
                ):
                    bound = "" if ceiling is None else f", (M-1)/M = {ceiling:.4g}"
                    raise ValueError(
                        f"mixture[{i}]: missing rate {item:g} is outside [0{bound}]: every utterance "
                        "must keep at least one modality"
                    )
            elif not isinstance(item, tuple) or not item or not all(isinstance(m, str) for m in item):
                raise ValueError(
                    f"mixture[{i}] = {item!r} must be a missing rate (float) or a non-empty tuple of "
                    "available modality names"
                )
            elif modalities is not None:
                unknown = [m for m in item if m not in modalities]
                if unknown:
                    raise ValueError(
                        f"mixture[{i}] names unknown modalities {unknown}; valid: {list(modalities)}"
                    )
            if item in seen:
                raise ValueError(f"mixture[{i}] = {item!r} repeats mixture[{seen[item]}]")
            seen[item] = i

    @property
    def conditions(self) -> list["Protocol"]:
        """Mixed protocol: its conditions as ``random`` / ``fixed`` protocols with this seed, in
        mixture order."""
        if self.kind != "mixed":
            raise ValueError(f"only a mixed protocol has conditions, this one is {self.kind!r}")
        return [
            Protocol(kind="random", missing_rate=item, seed=self.seed)
            if isinstance(item, float)
            else Protocol(kind="fixed", pattern=item, seed=self.seed)
            for item in self.mixture or ()
        ]

    @property
    def condition(self) -> str:
        """Table label: ``"0.0"``, ``"0.3"``, ``"0.667"`` (random, rate to at most 3 decimals),
        ``"{t,a}"`` (fixed), ``"mixed"``, ``"full"`` (none)."""
        if self.kind == "random":
            text = f"{float(self.missing_rate):.3f}".rstrip("0")
            return text + "0" if text.endswith(".") else text
        if self.kind == "fixed":
            return "{" + ",".join(self.pattern or ()) + "}"
        if self.kind == "mixed":
            return "mixed"
        return "full"

    @classmethod
    def parse(cls, value: Any, modalities: list[str] | None = None) -> "Protocol":
        """Accept a :class:`Protocol`, a dict of its fields (``{"kind": "mixed", "mixture": [...]}``
        for a mixture), ``None`` or ``"none"`` (everything available), a float (random rate) or a
        tuple/list of modality names (fixed pattern)."""
        if isinstance(value, Protocol):
            out = dataclasses.replace(value)
        elif value is None or (isinstance(value, str) and value == "none"):
            out = cls(kind="none")
        elif isinstance(value, Mapping):
            out = _build(cls, value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out = cls(kind="random", missing_rate=float(value))
        elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            out = cls(kind="fixed", pattern=tuple(value))
        else:
            raise ValueError(
                "masks must be a Protocol, a dict of its fields, None or 'none', a missing rate (float) "
                f"or a tuple of available modality names such as ('t',); got {value!r}"
            )
        out.validate(modalities)
        return out


def _mixture_item(item: Any) -> Any:
    """A mixture entry in canonical form: a float rate or a tuple of names (others kept for
    :meth:`Protocol.validate` to reject)."""
    if isinstance(item, (int, float)) and not isinstance(item, bool):
        return float(item)
    if isinstance(item, (list, tuple)):
        return tuple(item)
    return item


@dataclass
class RunConfig:
    """Everything that determines a run.

    Parameters
    ----------
    recoverer : str
        A name of :func:`mer.recoverers.available_recoverers`.
    recoverer_kwargs : dict
        Its hyperparameters (JSON-serialisable).
    protocol : Protocol
    model : ModelConfig
    train : TrainConfig
    data : DataConfig
    seed : int
        Seeds parameter initialisation, batching, training masks and (by default) evaluation masks.
    """

    recoverer: str = "gsdnet"
    recoverer_kwargs: dict = field(default_factory=dict)
    protocol: Protocol = field(default_factory=Protocol)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    seed: int = 0

    def validate(self) -> None:
        self.model.validate()
        self.train.validate()
        self.protocol.validate()

    @property
    def mask_seed(self) -> int:
        return int(self.seed if self.protocol.seed is None else self.protocol.seed)

    # ------------------------------------------------------------------------- serialisation
    def to_dict(self) -> dict:
        """Plain dict of JSON types (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: Mapping) -> "RunConfig":
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError`` listing the valid ones."""
        return _build(cls, data)

    def to_json(self, path: str | pathlib.Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True)
        if path is not None:
            pathlib.Path(path).write_text(text + "\n", encoding="utf8")
        return text

    def to_yaml(self, path: str | pathlib.Path | None = None) -> str:
        text = yaml.safe_dump(self.to_dict(), sort_keys=True)
        if path is not None:
            pathlib.Path(path).write_text(text, encoding="utf8")
        return text

    @classmethod
    def from_file(cls, path: str | pathlib.Path) -> "RunConfig":
        """Read a ``.json``, ``.yaml`` or ``.yml`` file written by :meth:`to_json`/:meth:`to_yaml`
        (or by hand: missing fields take their defaults)."""
        path = pathlib.Path(path)
        text = path.read_text(encoding="utf8")
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        elif path.suffix.lower() in (".yaml", ".yml"):
            data = yaml.safe_load(text) or {}
        else:
            raise ValueError(f"config file {path} must end in .json, .yaml or .yml")
        if not isinstance(data, Mapping):
            raise ValueError(f"config file {path} must hold a mapping, got {type(data).__name__}")
        return cls.from_dict(data)


# Nested dataclass fields, so from_dict can rebuild them from plain dicts.
_NESTED = {
    (RunConfig, "protocol"): Protocol,
    (RunConfig, "model"): ModelConfig,
    (RunConfig, "train"): TrainConfig,
    (RunConfig, "data"): DataConfig,
    (ModelConfig, "graph"): GraphConfig,
}


def _build(cls, data: Mapping):
    if not isinstance(data, Mapping):
        raise ValueError(f"{cls.__name__} needs a mapping of its fields, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} settings {unknown}; valid: {sorted(names)}")
    kwargs = {}
    for key, value in data.items():
        nested = _NESTED.get((cls, key))
        if nested is not None and isinstance(value, Mapping):
            value = _build(nested, value)
        kwargs[key] = value
    return cls(**kwargs)
