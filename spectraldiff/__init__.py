"""Score-based diffusion in the spectral space of graphs.

A graph ``A = U diag(λ) Uᵀ`` is diffused by adding noise to its eigenvalues ``λ`` (and optionally to
node features) while the eigenvectors ``U`` stay fixed. Main entry points:

* :func:`batched_eigh` — batched eigendecomposition of zero-padded symmetric matrices
  (:mod:`spectraldiff.eigh`: backends, ``auto`` dispatch, the benchmark);
* :class:`SpectralGraph` — a batch of graphs in spectral form, with DGL conversions;
* :func:`from_networkx`, :func:`from_edge_index` (:mod:`spectraldiff.adapters`) — anyone's graphs as
  the dense padded ``(A, num_nodes)`` batch; :func:`sort_spectrum` — sampled eigenvalues sorted within
  each graph's slots (``docs/own_graphs.md``);
* :mod:`spectraldiff.sde` — ``VPSDE``, ``subVPSDE``, ``VESDE``, ``PowerVESDE``;
* :mod:`spectraldiff.noising`, :mod:`spectraldiff.losses`, :mod:`spectraldiff.sampling` — forward
  noising, denoising score matching, predictor–corrector and probability-flow samplers;
* :mod:`spectraldiff.score_networks` — reference score networks.
"""

from . import adapters, eigh, losses, noising, operators, sampling, score_networks, sde
from .adapters import from_edge_index, from_networkx
from .eigh import available_eigh_backends, batched_eigh, register_eigh_backend
from .losses import dsm_loss
from .noising import perturb_features, perturb_spectrum
from .registry import Registry
from .sampling import euler_maruyama_sampler, ode_sampler, pc_sampler
from .score_networks import EigenvalueScoreNet, FeatureScoreNet, NoiseToScore, SpectrumMLPScoreNet
from .sde import VESDE, VPSDE, PowerVESDE, get_sde, subVPSDE
from .spectral_graph import SpectralGraph
from .spectrum import sort_spectrum

__version__ = "0.1.0"

__all__ = [
    "batched_eigh",
    "available_eigh_backends",
    "register_eigh_backend",
    "SpectralGraph",
    "from_networkx",
    "from_edge_index",
    "sort_spectrum",
    "Registry",
    "VPSDE",
    "subVPSDE",
    "VESDE",
    "PowerVESDE",
    "get_sde",
    "perturb_spectrum",
    "perturb_features",
    "dsm_loss",
    "pc_sampler",
    "euler_maruyama_sampler",
    "ode_sampler",
    "EigenvalueScoreNet",
    "SpectrumMLPScoreNet",
    "FeatureScoreNet",
    "NoiseToScore",
    "adapters",
    "eigh",
    "losses",
    "noising",
    "operators",
    "sampling",
    "score_networks",
    "sde",
]
