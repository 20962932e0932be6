"""Modules and names that moved keep working at their old paths for one release, with a warning."""

import importlib
import sys
import warnings

import pytest

MOVED_MODULES = [
    ("mer.models.score_unet", "mer.nn.score_unet"),
    ("mer.models.sequence_conv", "mer.nn.sequence_conv"),
    ("mer.models.mer_model", "mer.model"),
    ("mer.recoverers.scaler", "mer.nn.scaler"),
]

MOVED_NAMES = [
    ("mer.models", "MERModel", "mer.model"),
    ("mer.models", "ModelOutput", "mer.model"),
    ("mer.models", "sinusoidal_positions", "mer.nn.positions"),
]


@pytest.mark.parametrize("old, new", MOVED_MODULES, ids=[old for old, _ in MOVED_MODULES])
def test_old_module_path_warns_and_is_the_new_module(old, new):
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=new.replace(".", r"\.")):
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)


@pytest.mark.parametrize("package, name, new", MOVED_NAMES, ids=[f"{p}.{n}" for p, n, _ in MOVED_NAMES])
def test_old_name_warns_and_is_the_same_object(package, name, new):
    with pytest.warns(DeprecationWarning, match=f"{new}.{name}".replace(".", r"\.")):
        obj = getattr(importlib.import_module(package), name)
    assert obj is getattr(importlib.import_module(new), name)


def test_names_that_stayed_resolve_without_a_warning():
    from mer.models.score_unet import CrossAttention  # noqa: F401  (an old path's names all come along)

    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        from mer.models import GraphFusion, ModalityEncoders, PredictionHead  # noqa: F401
        from mer.nn import ConditionalScoreUNet1d, FeatureScaler, SequenceConv  # noqa: F401
        from mer.recoverers import FeatureScaler as ReExported

    assert ReExported is FeatureScaler


def test_unknown_name_of_mer_models_is_an_attribute_error():
    import mer.models

    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        mer.models.Nope  # noqa: B018
