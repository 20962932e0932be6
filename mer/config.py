"""Configuration of a ``mer`` run: plain dataclasses that round-trip through JSON and YAML.

:class:`RunConfig` holds everything that determines a run — data source, missing-modality protocol,
recoverer and its settings, model widths, optimisation and seed — and every run writes it, resolved,
next to its outputs (``config.json``). ``RunConfig.from_file(path)`` reads it back (``.json``,
``.yaml``/``.yml``), so a run is reproduced from its own output directory.

:meth:`RunConfig.with_settings` changes any setting by its dotted name (``train.lr``,
``model.graph.window``, ``recoverer_kwargs.steps``), checked exactly as a file is: the CLI's
``--set KEY=VALUE`` (:func:`parse_setting`).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import numbers
import pathlib
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Mapping

import yaml

from spectraldiff.atomic import atomic_write_text

from mer.data.protocol import PROTOCOL_KINDS, TRAIN_MASK_MODES, MissingProtocol, Protocol
from mer.data.source import DataConfig
from mer.graph import GraphConfig

__all__ = [
    "DataConfig",
    "ModelConfig",
    "TrainConfig",
    "MissingProtocol",
    "Protocol",
    "RunConfig",
    "parse_setting",
    "parse_bytes",
    "PROTOCOL_KINDS",
    "REGRESSION_LOSSES",
    "FUSIONS",
    "MulTConfig",
]

REGRESSION_LOSSES = ("l1", "mse")
#: Fusion backbones of :class:`~mer.model.MERModel`: the residual GCN over the conversation's
#: utterance–modality graph, or the MulT-style crossmodal transformer over each utterance's sequences.
FUSIONS = ("gcn", "mult")
#: Where the MulT-style model recovers a missing modality's sequence (``model.recovery_space``).
RECOVERY_SPACES = ("projection", "features")


@dataclass
class MulTConfig:
    """Depths and dropouts of the MulT-style backbone (:class:`~mer.models.mult.MulTFusion`), used
    when ``model.fusion = "mult"``. Its width is ``model.dim`` and its temporal ``Conv1d`` kernels are
    ``model.kernel_sizes``.

    Parameters
    ----------
    heads : int
        Attention heads; must divide ``model.dim`` and ``(M − 1)·model.dim``.
    layers : int
        Crossmodal blocks per (target, source) pair.
    self_layers : int
        Self-attention blocks over each target's concatenated crossmodal streams.
    attn_dropout, relu_dropout, res_dropout, embed_dropout : float
        Dropout on attention weights, the feed-forward hidden layer, residual branches and the input
        embedding.
    pool : {"last", "mean"}
        How a stream becomes one vector: its last real step (MulT) or the mean over real steps.
    """

    heads: int = 4
    layers: int = 4
    self_layers: int = 3
    attn_dropout: float = 0.1
    relu_dropout: float = 0.1
    res_dropout: float = 0.1
    embed_dropout: float = 0.25
    pool: str = "last"

    def validate(self) -> None:
        _check_types(self, "model.mult")
        if self.heads < 1 or self.layers < 1 or self.self_layers < 0:
            raise ValueError(f"model.mult needs heads >= 1, layers >= 1, self_layers >= 0; got "
                             f"{self.heads}, {self.layers}, {self.self_layers}")
        for name in ("attn_dropout", "relu_dropout", "res_dropout", "embed_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"model.mult.{name} must be in [0, 1), got {getattr(self, name)}")
        if self.pool not in ("last", "mean"):
            raise ValueError(f"model.mult.pool must be 'last' or 'mean', got {self.pool!r}")


@dataclass
class ModelConfig:
    """Widths and depths of :class:`~mer.model.MERModel`.

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
        ``ReLU(Â H^l W^l)``: same-speaker edges span the whole conversation, so a plain GCN averages an
        utterance with many others (measured in ``docs/results.md``).
    graph : GraphConfig
        How the fusion graph (and GSDNet's structure graph) connects utterances.
    fusion : {"gcn", "mult"}
        ``"gcn"`` (default): utterance vectors fused over the conversation graph. ``"mult"``: each
        utterance on its own, its per-step sequences (``load_mmsa(..., sequences=True)``; a dataset
        without sequences gives one-step sequences) fused by the MulT-style backbone; recoverers then
        recover the missing modality's whole sequence (``docs/reproduce.md``).
    sequence_steps : int
        ``"mult"`` only: the common number of steps every modality's sequence is brought to (aligned
        MMSA files already have it; an unaligned modality is averaged over equal segments of its real
        steps).
    mult : MulTConfig
        The MulT backbone's depths and dropouts.
    recovery_space : {"projection", "features"}
        ``"mult"`` only: where a missing modality's sequence is recovered. ``"projection"`` (default,
        as IMDer): in the backbone's ``d``-wide temporal-convolution output, learned jointly, so
        ``recovery_mse`` is in the model's own moving units; ``"features"``: in the standardised
        per-step input features (``recovery_mse`` in the same units as everywhere else).
    """

    dim: int = 32
    kernel_sizes: int | dict = 3
    gcn_layers: int = 2
    head_hidden: int = 64
    dropout: float = 0.1
    residual: bool = True
    graph: GraphConfig = field(default_factory=GraphConfig)
    fusion: str = "gcn"
    sequence_steps: int = 50
    mult: MulTConfig = field(default_factory=MulTConfig)
    recovery_space: str = "projection"

    def recovery_dims(self, feature_dims: Mapping[str, int]) -> dict[str, int]:
        """The widths the recoverer works on: ``d`` per modality when it recovers in the MulT
        projection, else the feature widths."""
        if self.fusion == "mult" and self.recovery_space == "projection":
            return {m: int(self.dim) for m in feature_dims}
        return {m: int(d) for m, d in feature_dims.items()}

    def validate(self) -> None:
        _check_types(self, "model")
        if self.fusion not in FUSIONS:
            raise ValueError(f"unknown model.fusion {self.fusion!r}; valid: {list(FUSIONS)}")
        if self.recovery_space not in RECOVERY_SPACES:
            raise ValueError(f"unknown model.recovery_space {self.recovery_space!r}; valid: "
                             f"{list(RECOVERY_SPACES)}")
        if self.sequence_steps < 1:
            raise ValueError(f"model.sequence_steps must be >= 1, got {self.sequence_steps}")
        self.mult.validate()
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
    eval_samples : int
        Seeded draws averaged when a sampling recoverer is scored on the test split (validation
        always uses one); see :func:`mer.training.evaluate_model`.
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
    train_masks : {"per_epoch", "fixed", "complete"}
        Random and mixed protocols: draw the training split's masks anew every epoch (seed + epoch),
        or once. ``"complete"``: train on complete data under every protocol, so the condition applies
        to validation and test only (MD2N's protocol: "during training, all modalities are complete").
        Validation and test masks are always drawn once per (split, condition, seed).
    device : str
        ``"cpu"``, ``"cuda"`` or ``"cuda:K"``.
    progress : bool
        Show tqdm progress bars.
    trackers : list of str
        Where the per-epoch numbers go besides ``metrics.json`` and ``history.csv`` (which a run with
        an output folder always writes): names of :data:`mer.training.trackers.TRACKERS`, e.g.
        ``["tensorboard"]``.
    step_memory : str or None
        Memory budget of one step (``"2GB"``, ``"512MiB"``, bytes) for a recoverer that estimates its
        memory (:meth:`~mer.recoverers.Recoverer.estimate_memory`): a training batch whose estimate
        exceeds it runs as micro-batches whose gradients add up to the batch's, and evaluation batches
        shrink to fit (:mod:`mer.training.memory`). A fixed size, not the machine's memory, so the
        batches, and the numbers, are the same on every machine. ``None``: never split.
    """

    epochs: int = 30
    batch_size: int = 16
    eval_batch_size: int = 64
    eval_samples: int = 1
    lr: float = 1e-3
    weight_decay: float = 0.0
    beta: float = 0.1
    grad_clip: float = 1.0
    patience: int = 8
    regression_loss: str = "l1"
    train_masks: str = "per_epoch"
    device: str = "cpu"
    progress: bool = False
    trackers: list = field(default_factory=list)
    step_memory: str | None = "2GB"

    def validate(self) -> None:
        _check_types(self, "train")
        if self.step_memory is not None:
            parse_bytes(self.step_memory, "train.step_memory")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1 or self.eval_batch_size < 1:
            raise ValueError(
                f"batch sizes must be >= 1, got {self.batch_size}, {self.eval_batch_size}"
            )
        if type(self.eval_samples) is not int or self.eval_samples < 1:
            raise ValueError(f"eval_samples must be an integer >= 1, got {self.eval_samples!r}")
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
        # The names are checked against the tracker registry when the run starts (mer.training).
        if not isinstance(self.trackers, (list, tuple)) or not all(
                isinstance(t, str) and t for t in self.trackers):
            raise ValueError(f"train.trackers must be a list of tracker names, got {self.trackers!r}")


@dataclass
class RunConfig:
    """Everything that determines a run.

    Parameters
    ----------
    recoverer : str
        A name of :func:`mer.recoverers.available_recoverers`.
    recoverer_kwargs : dict
        Its hyperparameters (JSON-serialisable).
    protocol : MissingProtocol
    model : ModelConfig
    train : TrainConfig
    data : DataConfig
    seed : int
        Seeds parameter initialisation, batching, training masks and (by default) evaluation masks.
    """

    recoverer: str = "gsdnet"
    recoverer_kwargs: dict = field(default_factory=dict)
    protocol: MissingProtocol = field(default_factory=MissingProtocol)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    seed: int = 0

    def validate(self) -> None:
        """Refuse settings of the wrong type (``epochs: 1.5``, ``epochs: true``, ``patience: "x"``;
        a bool is never a number here) or out of range, naming the setting (``train.epochs``)."""
        _check_types(self, "")
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
            atomic_write_text(text + "\n", path)
        return text

    def to_yaml(self, path: str | pathlib.Path | None = None) -> str:
        text = yaml.safe_dump(self.to_dict(), sort_keys=True)
        if path is not None:
            atomic_write_text(text, path)
        return text

    def with_settings(self, settings: Mapping[str, typing.Any] | typing.Iterable[str],
                      *, where: str = "--set") -> "RunConfig":
        """A validated copy with settings changed by dotted name.

        ``settings`` maps names to values (``{"train.lr": 3e-4, "model.dim": 64}``) or is a sequence
        of ``"KEY=VALUE"`` strings read by :func:`parse_setting`. Each name walks the :meth:`to_dict`
        form: groups (``train``, ``model``, ``model.graph``, ``protocol``, ``data``) take only their
        fields; free mappings (``recoverer_kwargs``, ``data.options``) take any key. The result is
        rebuilt with :meth:`from_dict` and checked like a config file (types, ranges).

        Raises
        ------
        ValueError
            One line, naming the setting (``where`` says where it came from): for an unknown name
            (with a did-you-mean and the valid names of its group), a name inside a setting that is
            not a group, or a value of the wrong type or out of range.
        """
        items = (list(settings.items()) if isinstance(settings, Mapping)
                 else [parse_setting(text) for text in settings])
        data = self.to_dict()
        for key, value in items:
            _assign(data, str(key), value, where)
        try:
            config = type(self).from_dict(data)
            config.validate()
        except ValueError as err:
            given = ", ".join(f"{k}={v!r}" for k, v in items)
            raise ValueError(f"{where} {given}: {err}") from None
        return config

    @classmethod
    def from_file(cls, path: str | pathlib.Path) -> "RunConfig":
        """Read a ``.json``, ``.yaml`` or ``.yml`` file written by :meth:`to_json`/:meth:`to_yaml`
        (or by hand: missing fields take their defaults)."""
        path = pathlib.Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist")
        text = path.read_text(encoding="utf8")
        if path.suffix.lower() == ".json":
            try:
                data = json.loads(text)
            except json.JSONDecodeError as err:
                raise ValueError(f"config file {path} is not valid JSON: {err}") from None
        elif path.suffix.lower() in (".yaml", ".yml"):
            try:
                data = yaml.safe_load(text) or {}
            except yaml.YAMLError as err:  # safe_load refuses python/* tags; say which file and where
                raise ValueError(f"config file {path} is not valid YAML: {' '.join(str(err).split())}") from None
        else:
            raise ValueError(f"config file {path} must end in .json, .yaml or .yml")
        if not isinstance(data, Mapping):
            raise ValueError(f"config file {path} must hold a mapping, got {type(data).__name__}")
        try:
            config = cls.from_dict(data)
            _check_types(config, "")
        except ValueError as err:
            raise ValueError(f"config file {path}: {err}") from None
        return config


# Nested dataclass fields, so from_dict can rebuild them from plain dicts.
_NESTED = {
    (RunConfig, "protocol"): MissingProtocol,
    (RunConfig, "model"): ModelConfig,
    (RunConfig, "train"): TrainConfig,
    (RunConfig, "data"): DataConfig,
    (ModelConfig, "graph"): GraphConfig,
    (ModelConfig, "mult"): MulTConfig,
}


def _build(cls, data: Mapping):
    if not isinstance(data, Mapping):
        raise ValueError(f"{cls.__name__} needs a mapping of its fields, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names, key=str)
    if unknown:
        guesses = {u: difflib.get_close_matches(str(u), names, n=1) for u in unknown}
        hint = "".join(f" ({u!r}: did you mean {g[0]!r}?)" for u, g in guesses.items() if g)
        raise ValueError(f"unknown {cls.__name__} settings {unknown}{hint}; valid: {sorted(names)}")
    kwargs = {}
    for key, value in data.items():
        nested = _NESTED.get((cls, key))
        if nested is MissingProtocol and not isinstance(value, (Mapping, MissingProtocol)):
            value = MissingProtocol.parse(value)  # the short forms: 0.3, ["t", "a"], "none"
        elif nested is not None and isinstance(value, Mapping):
            value = _build(nested, value)
        elif nested is not None and not isinstance(value, nested):
            raise ValueError(f"{key} must be a mapping of {nested.__name__} settings, got {value!r}")
        kwargs[key] = value
    return cls(**kwargs)


# YAML 1.1 (PyYAML) reads "3e-4" as a string: a number needs a dot there ("3.0e-4"). On a command
# line "3e-4" is a number.
_EXPONENT_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def parse_setting(text: str) -> tuple[str, typing.Any]:
    """``"KEY=VALUE"`` → ``(KEY, value)``, the value read as a YAML scalar or flow collection
    (``yaml.safe_load``: ``3`` int, ``0.5`` float, ``true`` bool, ``null`` None, ``[t, a]`` list,
    ``{t: 3}`` mapping, anything else a string), and ``3e-4`` as a number.

    >>> parse_setting("train.lr=3e-4"), parse_setting("recoverer=zero")
    (('train.lr', 0.0003), ('recoverer', 'zero'))
    """
    key, sep, raw = str(text).partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"--set {text!r}: expected KEY=VALUE, e.g. train.lr=3e-4")
    if _EXPONENT_FLOAT.fullmatch(raw.strip()):
        return key, float(raw)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as err:
        raise ValueError(f"--set {text!r}: the value is not valid YAML: {' '.join(str(err).split())}") from None
    return key, value


def _assign(data: dict, key: str, value, where: str) -> None:
    """Set dotted ``key`` in the :meth:`RunConfig.to_dict` form ``data``, refusing a name the config
    does not have."""
    parts = key.split(".")
    if not all(parts):
        raise ValueError(f"{where} {key}: empty name in the dotted setting name")
    cls, node = RunConfig, data
    for depth, part in enumerate(parts):
        path = ".".join(parts[:depth + 1])
        if cls is not None:
            names = [f.name for f in dataclasses.fields(cls)]
            if part not in names:
                prefix = ".".join(parts[:depth])
                full = [f"{prefix}.{n}" if prefix else n for n in names]
                guess = difflib.get_close_matches(path, full, n=1)
                hint = f" (did you mean {guess[0]!r}?)" if guess else ""
                raise ValueError(f"{where} {key}: unknown setting {path!r}{hint}; valid: {', '.join(full)}")
        if depth == len(parts) - 1:
            node[part] = value
            return
        child = node.get(part)
        if child is None and cls is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ValueError(f"{where} {key}: {path!r} is a setting, not a group of settings; "
                             f"set it whole ({path}=VALUE)")
        # None below a free mapping (recoverer_kwargs, data.options, a dict-valued setting): any key.
        cls = _NESTED.get((cls, part)) if cls is not None else None
        node = child


_KINDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


_BYTE_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
               "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_bytes(text: str, setting: str = "size") -> int:
    """``"4GB"`` → 4·10⁹, ``"512MiB"`` → 512·2²⁰, ``"1e9"`` → 10⁹; ``setting`` names the value in the error."""
    match = re.fullmatch(r"\s*([0-9]+\.?[0-9]*(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*", text)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _BYTE_UNITS:
        raise ValueError(f"{setting}={text!r} is not a size; write e.g. 4GB, 512MiB or 1e9 (bytes)")
    return int(float(match.group(1)) * _BYTE_UNITS[unit])


def _check_types(config, where: str) -> None:
    """Refuse a field whose value does not have its annotated type (``int``, ``float``, ``bool``,
    ``str``, optionally ``| None``), recursing into nested configs. A bool is not an int here, though
    Python says it is: ``epochs: true`` is a typo, not one epoch."""
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        name = f"{where}.{f.name}" if where else f.name
        if dataclasses.is_dataclass(value):
            _check_types(value, name)
            continue
        hint = hints.get(f.name)
        options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        if value is None and type(None) in options:
            continue
        kinds = [t for t in options if t is not type(None)]
        if len(kinds) != 1 or kinds[0] not in _KINDS:
            continue  # a richer type (dict, tuple, int | dict): its own validate checks it
        kind = kinds[0]
        ok = {int: isinstance(value, numbers.Integral) and not isinstance(value, bool),
              float: isinstance(value, numbers.Real) and not isinstance(value, bool),
              bool: isinstance(value, bool),
              str: isinstance(value, str)}[kind]
        if not ok:
            raise ValueError(f"{name} must be {_KINDS[kind]}, got {value!r} ({type(value).__name__})")
