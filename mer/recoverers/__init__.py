"""Missing-modality recoverers behind one interface (:class:`Recoverer`), chosen by name.

Importing this package registers every built-in method: ``zero``, ``mean``, ``autoencoder``,
``imder``, ``md2n``, ``rohydr``, ``gsdnet`` and its ablations ``gsdnet_adjacency`` and
``gsdnet_nograph``. See ``docs/mer_training.md`` for the contract. The recoverers build on
:mod:`mer.nn`, :mod:`mer.data`, :mod:`mer.graph` and :mod:`spectraldiff` only, never on
:mod:`mer.models`.
"""

from mer.recoverers.base import (
    RECOVERERS,
    FeatureScaler,
    Recoverer,
    Recovery,
    available_recoverers,
    build_recoverer,
    check_recoverer_settings,
    dropped_mse,
    merge_observed,
    observed_only,
    recoverer_class,
    recoverer_settings,
    recovery_error,
    register_recoverer,
)

# The package sits above the method modules, so importing them here registers them without the base
# module ever importing its subclasses.
from mer.recoverers import autoencoder, gsdnet, imder, md2n, mean, rohydr, zero  # noqa: E402,F401

__all__ = [
    "RECOVERERS",
    "FeatureScaler",
    "Recoverer",
    "Recovery",
    "available_recoverers",
    "build_recoverer",
    "check_recoverer_settings",
    "dropped_mse",
    "merge_observed",
    "observed_only",
    "recoverer_class",
    "recoverer_settings",
    "recovery_error",
    "register_recoverer",
]
