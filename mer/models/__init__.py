"""``mer`` models: modality encoders, graph fusion and prediction heads.

The full model, :class:`~mer.model.MERModel`, lives one layer up in :mod:`mer.model` (it combines
these with a recoverer); ``mer.models.MERModel`` and ``mer.models.ModelOutput`` still resolve there,
with a ``DeprecationWarning``, for one release.
"""

import importlib
import warnings

from mer.models.encoders import ModalityEncoder, ModalityEncoders
from mer.models.fusion import GraphFusion
from mer.models.heads import PredictionHead
from mer.models.mult import MulTFusion

__all__ = [
    "GraphFusion",
    "ModalityEncoder",
    "ModalityEncoders",
    "PredictionHead",
]

# Names that moved out of this package: name → new module.
_MOVED = {
    "MERModel": "mer.model",
    "ModelOutput": "mer.model",
    "sinusoidal_positions": "mer.nn.positions",
}


def __getattr__(name: str):
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    new = _MOVED[name]
    warnings.warn(f"mer.models.{name} has moved to {new}.{name}; import it from there (the old path "
                  f"will be removed in the next release)", DeprecationWarning, stacklevel=2)
    # Resolved on first use, not imported above: mer.model sits a layer above mer.models (it imports
    # the recoverers), and importing mer.models must not pull the recoverers in.
    return getattr(importlib.import_module(new), name)
