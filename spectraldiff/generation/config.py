"""Configuration of one graph-generation run (a plain dataclass that round-trips to JSON; read from a
JSON or YAML file with :meth:`GenerationConfig.from_file`, the ``generate --config FILE`` option)."""

from __future__ import annotations

import difflib
import json
import numbers
import typing
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ..atomic import atomic_write_json

__all__ = ["GenerationConfig", "SPECTRAL_NETWORKS", "NODE_COUNT_SCHEMES", "EDGE_SAMPLING", "DEGREE_BUDGETS",
           "DECODER_INPUTS", "LEARNING_RATE_SCHEDULES", "EIGENVECTOR_PROJECTIONS"]

SPECTRAL_NETWORKS = ("mlp", "transformer")
NODE_COUNT_SCHEMES = ("iid", "stratified")
EDGE_SAMPLING = ("threshold", "bernoulli", "degree")  # the rules of .edge_sampling
DEGREE_BUDGETS = ("expected", "training")  # where the "degree" rule's budgets come from
DECODER_INPUTS = ("noised", "denoised")
LEARNING_RATE_SCHEDULES = ("constant", "cosine")  # .generator.scheduled_learning_rate
EIGENVECTOR_PROJECTIONS = ("none", "polar", "polar_denoised")  # .eigenpairs.nearest_orthonormal


@dataclass
class GenerationConfig:
    """Everything that decides a generation run; written as ``config.json`` beside its results.

    Attributes
    ----------
    dataset : str
        Name of the graph family (``community_small`` or ``grid``); labels the run and picks the
        fallback generator when no graph file is given.
    model : str
        ``"spectral"`` (eigenvalues only), ``"spectral_vectors"`` (eigenvectors and eigenvalues) or
        ``"adjacency"`` (see :func:`spectraldiff.generation.available_models`).
    epochs : int
        Passes over the training graphs.
    steps : int
        Reverse-diffusion steps when sampling.
    seed : int
        Seeds model initialisation, minibatch order, node counts and sampling noise.
    batch_size : int
        Training graphs per optimiser step.
    learning_rate : float
        Adam learning rate (the peak of a schedule).
    learning_rate_schedule : str
        ``"constant"`` (the default) or ``"cosine"``: within each training call (``fit``, a resumed leg,
        ``fit_decoder``), half a cosine per optimiser step from ``learning_rate`` down to 1 % of it at the
        call's last step (:func:`.generator.scheduled_learning_rate`). A resumed cosine leg starts again
        at the peak (a warm restart), so ``a`` then ``b`` resumed epochs equal one ``a + b``-epoch run only
        with ``"constant"``.
    hidden_dim, num_layers : int
        Width and depth of the score network.
    spectral_network : str
        Eigenvalue network of the spectral model: ``"mlp"`` (:class:`~spectraldiff.SpectrumMLPScoreNet`,
        one vector per padded spectrum; the default, several times cheaper per sampling step) or
        ``"transformer"`` (:class:`~spectraldiff.EigenvalueScoreNet`, self-attention over slots).
    sde : str
        Registered SDE name (:func:`spectraldiff.sde.get_sde`), the same family for both models.
    predictor, corrector : str
        Sampler parts (:func:`spectraldiff.sampling.pc_sampler`).
    snr : float
        Langevin corrector signal-to-noise ratio (used only with ``corrector="langevin"``).
    ema_decay : float
        Decay of the exponential moving average of the weights used for sampling (0 disables it).
    threshold : float
        Edge threshold on the generated weighted adjacency.
    num_samples : int or None
        Graphs to generate; None means as many as the test set.
    draws : int
        Independent sample sets of ``num_samples`` graphs scored by ``generate`` (sampling seeds
        ``seed + 1``, …, ``seed + draws``). With more than one, ``metrics.json`` holds each score's mean
        over the draws, its standard deviation and every draw's scores: one set of 256 samples leaves
        V.U.N. about ±3 points of binomial noise, the size of the gains being compared on SBM.
    node_counts : str
        How the training graphs that give the samples their node counts (and the spectral model its
        eigenvectors) are drawn: ``"iid"`` (uniformly with replacement, the published protocol) or
        ``"stratified"`` (a systematic sample over the training graphs sorted by size: every draw is
        still uniform over the training graphs, but the sizes of a set of ``k`` samples follow the
        training histogram to within one graph per size).
    sample_batch_size : int
        Graphs sampled together (bounds memory of the adjacency model on large graphs).
    num_eigenvectors : int
        ``spectral_vectors`` model only: ``k``, the smallest normalised-Laplacian eigenpairs diffused
        (slots beyond a graph's node count are masked).
    decoder_dim, decoder_layers : int
        ``spectral_vectors`` model only: width and PPGN blocks of the edge decoder
        (:class:`~spectraldiff.generation.edge_decoder.EigenpairEdgeDecoder`).
    decoder_noise : float
        ``spectral_vectors`` model with ``decoder_inputs="noised"`` only: standard deviation of the
        Gaussian noise added to the clean eigenpairs the decoder is trained on (in the diffused,
        unit-variance scale), so it tolerates the errors of generated ones.
    decoder_inputs : str
        ``spectral_vectors`` model only: what the edge decoder is trained on. ``"noised"`` (default):
        the clean eigenpairs plus ``decoder_noise``. ``"denoised"``: the score network's one-step
        (Tweedie) estimate ``x̂_0`` of them from the diffused state at a random time where signal
        dominates noise, detached, so the decoder learns from eigenpairs with the network's own errors
        (:meth:`~spectraldiff.generation.spectral_vectors.SpectralVectorGenerator.decoder_training_input`).
    decoder_graphs : int
        ``spectral_vectors`` model only: how many graphs of each training batch the edge decoder is
        trained on (the rest train only the diffusion). On graphs of 100–200 nodes the decoder's
        ``n²`` pairs cost most of a step: 94 ms against the score network's 26 ms with 4 graphs of
        the SBM set (docs/generation.md), so fewer decoder graphs buy more diffusion epochs per hour.
    edge_sampling : str
        ``spectral_vectors`` model only: ``"threshold"`` (edge where the decoded probability exceeds
        ``threshold``, the only rule that reads it), ``"bernoulli"`` (each edge drawn with its decoded
        probability) or ``"degree"`` (edges drawn under a budget of ``round(expected degree)`` per
        node, for families with a narrow degree band; :mod:`.edge_sampling`).
    triangle_bonus : float
        ``edge_sampling="degree"`` only: log-odds added to a pair per triangle it would close with the
        edges drawn before it (0: plain budgets). Degree budgets alone close too few triangles on
        clustered families; on ENZYMES ``6`` brings the clustering MMD from about 5× its copy floor
        to about 1.3× (docs/generation.md, *Decoding rules*). On SBM it splits the blocks into small
        cliques and no sample is valid.
    degree_budgets : str
        ``edge_sampling="degree"`` only: ``"expected"`` (each node's rounded expected degree under the
        decoder) or ``"training"`` (the degree sequence of the training graph whose node count was
        drawn, handed out in the order of the expected degrees: :func:`.edge_sampling.ranked_budgets`;
        needs drawn, not given, node counts).
    eigenvector_projection : str
        ``spectral_vectors`` model only, at sampling: ``"none"`` decodes the generated eigenvectors as
        they come, ``"polar"`` first replaces them by the nearest matrix with orthonormal columns
        (:func:`.eigenpairs.nearest_orthonormal`), as true eigenvectors are. ``"polar_denoised"``
        does that and also steers the reverse diffusion there: at every step late enough that the
        denoised estimate is more signal than noise (``t ≤`` :meth:`~.spectral_vectors.SpectralVectorGenerator.equal_noise_time`),
        the network's estimate of the clean eigenvectors is replaced by its nearest orthonormal matrix
        and the score rebuilt from it, as image samplers clip their estimate to the data range. A
        sampling setting: it changes no weight, so a saved model can be resampled with any of them
        (docs/generation.md).
    """

    dataset: str = "community_small"
    model: str = "spectral"
    epochs: int = 200
    steps: int = 1000
    seed: int = 0
    batch_size: int = 32
    learning_rate: float = 2e-3
    learning_rate_schedule: str = "constant"
    hidden_dim: int = 64
    num_layers: int = 3
    spectral_network: str = "mlp"
    sde: str = "vpsde"
    predictor: str = "euler_maruyama"
    corrector: str = "none"
    snr: float = 0.16
    ema_decay: float = 0.99
    threshold: float = 0.5
    num_samples: int | None = None
    draws: int = 1
    node_counts: str = "iid"
    sample_batch_size: int = 64
    num_eigenvectors: int = 16
    decoder_dim: int = 32
    decoder_layers: int = 2
    decoder_noise: float = 0.1
    decoder_inputs: str = "noised"
    decoder_graphs: int = 4
    edge_sampling: str = "threshold"
    triangle_bonus: float = 0.0
    degree_budgets: str = "expected"
    eigenvector_projection: str = "none"

    def __post_init__(self):
        _check_types(self)
        for name in ("epochs", "steps", "batch_size", "hidden_dim", "num_layers", "sample_batch_size", "draws",
                     "num_eigenvectors", "decoder_dim", "decoder_graphs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        if self.num_samples is not None and self.num_samples < 1:
            raise ValueError(f"num_samples must be ≥ 1 or None, got {self.num_samples}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.decoder_layers < 0:
            raise ValueError(f"decoder_layers must be ≥ 0, got {self.decoder_layers}")
        if not self.decoder_noise >= 0.0:  # also refuses NaN
            raise ValueError(f"decoder_noise must be ≥ 0, got {self.decoder_noise}")
        for name, choices in (("spectral_network", SPECTRAL_NETWORKS), ("node_counts", NODE_COUNT_SCHEMES),
                              ("edge_sampling", EDGE_SAMPLING), ("decoder_inputs", DECODER_INPUTS),
                              ("degree_budgets", DEGREE_BUDGETS),
                              ("learning_rate_schedule", LEARNING_RATE_SCHEDULES),
                              ("eigenvector_projection", EIGENVECTOR_PROJECTIONS)):
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {list(choices)}, got {getattr(self, name)!r}")
        if not self.triangle_bonus >= 0.0:  # also refuses NaN
            raise ValueError(f"triangle_bonus must be ≥ 0, got {self.triangle_bonus}")
        if self.edge_sampling != "degree":
            for name, default in (("triangle_bonus", 0.0), ("degree_budgets", "expected")):
                if getattr(self, name) != default:
                    raise ValueError(f"{name} applies to edge_sampling 'degree' only (it sets the budget draw), "
                                     f"got edge_sampling {self.edge_sampling!r}")
        if not self.learning_rate > 0:  # also refuses NaN
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "GenerationConfig":
        """Inverse of :meth:`to_dict`; missing fields take their defaults. An unknown field raises
        ``ValueError`` with a did-you-mean and the valid fields; a value of the wrong type or out of
        range raises ``ValueError`` naming the field."""
        if not isinstance(values, dict):
            raise ValueError(f"a GenerationConfig is a mapping of its fields, got {type(values).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known, key=str)
        if unknown:
            guesses = {u: difflib.get_close_matches(str(u), known, n=1) for u in unknown}
            hint = "".join(f" ({u!r}: did you mean {g[0]!r}?)" for u, g in guesses.items() if g)
            raise ValueError(f"unknown GenerationConfig field(s) {unknown}{hint}; valid fields are {sorted(known)}")
        return cls(**values)

    def save(self, path: str | Path) -> None:
        """Write :meth:`to_dict` as JSON, atomically."""
        atomic_write_json(self.to_dict(), path)

    @classmethod
    def load(cls, path: str | Path) -> "GenerationConfig":
        return cls.from_file(path)

    @classmethod
    def from_file(cls, path: str | Path) -> "GenerationConfig":
        """Read a ``.json``, ``.yaml`` or ``.yml`` file of fields (any subset; the rest take their
        defaults). Every problem is one ``ValueError`` (``FileNotFoundError`` for a missing file)
        naming the file."""
        values = cls.file_values(path)
        try:
            return cls.from_dict(values)
        except ValueError as err:
            raise ValueError(f"config file {path}: {err}") from None

    @classmethod
    def file_values(cls, path: str | Path) -> dict:
        """The fields a config file sets, as written (names checked, values not yet: the caller
        may override some before :meth:`from_dict` checks them)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist")
        text = path.read_text(encoding="utf8")
        suffix = path.suffix.lower()
        if suffix == ".json":
            try:
                values = json.loads(text)
            except json.JSONDecodeError as err:
                raise ValueError(f"config file {path} is not valid JSON: {err}") from None
        elif suffix in (".yaml", ".yml"):
            import yaml

            try:
                values = yaml.safe_load(text) or {}
            except yaml.YAMLError as err:
                raise ValueError(f"config file {path} is not valid YAML: {' '.join(str(err).split())}") from None
        else:
            raise ValueError(f"config file {path} must end in .json, .yaml or .yml")
        if not isinstance(values, dict):
            raise ValueError(f"config file {path} must hold a mapping of fields, got {type(values).__name__}")
        unknown = sorted(set(values) - {f.name for f in fields(cls)}, key=str)
        if unknown:
            try:
                cls.from_dict(values)
            except ValueError as err:
                raise ValueError(f"config file {path}: {err}") from None
        return values


_KINDS = {int: "an integer", float: "a number", str: "a string"}


def _check_types(config: GenerationConfig) -> None:
    """Refuse a field whose value is not of its annotated type (a bool is not a number here:
    ``epochs: true`` is a typo), so a config file's mistake is one line, not a traceback."""
    hints = typing.get_type_hints(type(config))
    for f in fields(config):
        value = getattr(config, f.name)
        options = typing.get_args(hints[f.name]) or (hints[f.name],)
        if value is None and type(None) in options:
            continue
        kind = next(t for t in options if t is not type(None))
        ok = {int: isinstance(value, numbers.Integral) and not isinstance(value, bool),
              float: isinstance(value, numbers.Real) and not isinstance(value, bool),
              str: isinstance(value, str)}[kind]
        if not ok:
            raise ValueError(f"{f.name} must be {_KINDS[kind]}, got {value!r} ({type(value).__name__})")
