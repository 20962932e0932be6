"""Data layer of ``mer``: conversations, loaders and the dataset registry, the synthetic default, the
missing-modality protocol and its masks, and collation into padded batches. See ``docs/mer_data.md``.

Nothing here imports models, training or configuration above it."""

from mer.data.collate import CLASSIFICATION_PAD_LABEL, ConversationBatch, collate_conversations
from mer.data.conversation import (
    NUM_SENTIMENT_CLASSES,
    REGRESSION_RANGE,
    TASKS,
    Conversation,
    ConversationDataset,
    encode_speakers,
    sentiment_classes,
)
from mer.data.gaussian import (
    GaussianConversationDataset,
    GaussianConversationModel,
    bayes_labels,
    gaussian_conversations,
    label_floor,
    oracle_posteriors,
    recovery_floor,
)
from mer.data.gcnet import load_gcnet
from mer.data.literature import (
    LITERATURE_COMPOSITION,
    LITERATURE_LABELS,
    literature_average,
    literature_counts,
    literature_masks,
    realised_missing_rate,
)
from mer.data.missing import (
    MaskCache,
    MaskedConversations,
    check_masks,
    fixed_patterns,
    max_missing_rate,
    missing_rate,
    pattern_masks,
    random_missing,
    split_masks,
)
from mer.data.mmsa import load_mmsa
from mer.data.protocol import MaskPlan, MissingProtocol, Protocol, protocol_masks
from mer.data.registry import DATASETS, available_datasets, load_dataset, register_dataset
from mer.data.source import DataConfig, load_data
from mer.data.splits import SPLIT_NAMES, random_splits
from mer.data.synthetic import ModalitySpec, SyntheticConfig, synthetic_conversations

__all__ = [
    "CLASSIFICATION_PAD_LABEL",
    "Conversation",
    "ConversationBatch",
    "ConversationDataset",
    "DATASETS",
    "DataConfig",
    "GaussianConversationDataset",
    "GaussianConversationModel",
    "LITERATURE_COMPOSITION",
    "LITERATURE_LABELS",
    "MaskCache",
    "MaskPlan",
    "MaskedConversations",
    "MissingProtocol",
    "ModalitySpec",
    "NUM_SENTIMENT_CLASSES",
    "Protocol",
    "REGRESSION_RANGE",
    "SPLIT_NAMES",
    "SyntheticConfig",
    "TASKS",
    "available_datasets",
    "bayes_labels",
    "check_masks",
    "collate_conversations",
    "encode_speakers",
    "fixed_patterns",
    "gaussian_conversations",
    "label_floor",
    "literature_average",
    "literature_counts",
    "literature_masks",
    "load_dataset",
    "load_data",
    "load_gcnet",
    "load_mmsa",
    "max_missing_rate",
    "missing_rate",
    "oracle_posteriors",
    "pattern_masks",
    "protocol_masks",
    "random_missing",
    "random_splits",
    "realised_missing_rate",
    "recovery_floor",
    "register_dataset",
    "sentiment_classes",
    "split_masks",
    "synthetic_conversations",
]
