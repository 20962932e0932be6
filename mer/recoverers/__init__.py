"""Missing-modality recoverers behind one interface (:class:`Recoverer`), chosen by name.

Importing this package registers every built-in method: ``zero``, ``mean``, ``autoencoder``,
``imder``, ``md2n``, ``rohydr``, ``gsdnet`` and its ablations ``gsdnet_adjacency`` and
``gsdnet_nograph``. See ``docs/mer_training.md`` for the contract.
"""

import importlib

from mer.recoverers.base import (
    FeatureScaler,
    Recoverer,
    Recovery,
    available_recoverers,
    build_recoverer,
    dropped_mse,
    merge_observed,
    observed_only,
    recoverer_class,
    recovery_error,
    register_recoverer,
)
from mer.recoverers import mean, zero  # noqa: E402,F401  (registration side effects)
from mer.recoverers import autoencoder, imder  # noqa: E402,F401
from mer.recoverers import md2n  # noqa: E402,F401
from mer.recoverers import rohydr  # noqa: E402,F401

try:
    importlib.import_module("mer.recoverers.gsdnet")
except ModuleNotFoundError as err:  # the GSDNet module lands separately; tolerate only its absence
    if err.name != "mer.recoverers.gsdnet":
        raise

__all__ = [
    "FeatureScaler",
    "Recoverer",
    "Recovery",
    "available_recoverers",
    "build_recoverer",
    "dropped_mse",
    "merge_observed",
    "observed_only",
    "recoverer_class",
    "recovery_error",
    "register_recoverer",
]
