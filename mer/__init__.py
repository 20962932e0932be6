"""Multimodal emotion recognition in conversations under missing modalities, on DGL.

Entry points: :func:`train` (one recoverer, one protocol), :meth:`TrainedModel.evaluate`,
:func:`run_benchmark` (methods × conditions × seeds, the papers' table) and the CLI
``python -m mer train|evaluate|benchmark``. Recoverers are chosen by name
(:func:`available_recoverers`); the missing-modality condition is a :class:`MissingProtocol`
(``Protocol`` is its older name). See ``docs/mer_training.md``.
"""

from mer.benchmark import run_benchmark
from mer.config import DataConfig, MissingProtocol, ModelConfig, Protocol, RunConfig, TrainConfig
from mer.recoverers import available_recoverers, build_recoverer, register_recoverer
from mer.training import TrainedModel, train

__all__ = [
    "DataConfig",
    "MissingProtocol",
    "ModelConfig",
    "Protocol",
    "RunConfig",
    "TrainConfig",
    "TrainedModel",
    "available_recoverers",
    "build_recoverer",
    "register_recoverer",
    "run_benchmark",
    "train",
]
