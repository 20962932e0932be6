"""Building blocks shared by the recoverers and the models.

Imports only ``torch``, :mod:`mer.data`, :mod:`mer.graph` and :mod:`spectraldiff`, so both
:mod:`mer.recoverers` and :mod:`mer.models` stand on it without depending on each other.

* :mod:`~mer.nn.positions` — sinusoidal position embeddings;
* :mod:`~mer.nn.attention` — masked self- and cross-attention over utterance sequences;
* :mod:`~mer.nn.sequence_conv` — a "same"-padded convolution along the utterances;
* :mod:`~mer.nn.score_unet` — the conditional 1-D score U-Net (IMDer);
* :mod:`~mer.nn.ddpm` — the discrete DDPM schedule and its bound's terms (RoHyDR);
* :mod:`~mer.nn.scaler` — training-split standardisation (:class:`FeatureScaler`);
* :mod:`~mer.nn.task_loss` — the task loss.
"""

from mer.nn.attention import CrossAttention, SelfAttention
from mer.nn.ddpm import DDPMSchedule, gaussian_nll, normal_kl
from mer.nn.positions import sinusoidal_positions
from mer.nn.scaler import FeatureScaler, feature_statistics
from mer.nn.score_unet import ConditionalScoreUNet1d, GaussianFourierProjection
from mer.nn.sequence_conv import SequenceConv
from mer.nn.task_loss import task_loss

__all__ = [
    "ConditionalScoreUNet1d",
    "CrossAttention",
    "DDPMSchedule",
    "FeatureScaler",
    "GaussianFourierProjection",
    "SelfAttention",
    "SequenceConv",
    "feature_statistics",
    "gaussian_nll",
    "normal_kl",
    "sinusoidal_positions",
    "task_loss",
]
