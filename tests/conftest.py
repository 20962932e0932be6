"""Test-wide isolation: never read a user's eigh crossover table (``batched_eigh(backend="auto")``)."""

import pytest

from spectraldiff.eigh import dispatch as eigh_dispatch


@pytest.fixture(autouse=True)
def isolated_eigh_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv(eigh_dispatch.CACHE_ENV, str(tmp_path_factory.mktemp("spectraldiff-cache")))
    eigh_dispatch.clear_cache()
    yield
    eigh_dispatch.clear_cache()
