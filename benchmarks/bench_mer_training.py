"""pytest-benchmark cases: wall time of one training epoch and of one full test evaluation per recoverer.

Run: ``OMP_NUM_THREADS=1 python -m pytest benchmarks/bench_mer_training.py --benchmark-columns=min,mean,rounds``
(``BENCH_DEVICE=cuda`` to time a GPU; default CUDA when available, else CPU).

Data: the synthetic default (300 conversations: 210 train, 60 test; modalities t, a, v of widths 32,
24, 16) under the random protocol at MR = 0.3, the default model (d = 32, 2 GCN layers) and each
recoverer's default settings (IMDer: 100 Euler–Maruyama steps at test time, 10 in training). The
model is trained for one epoch before timing so every recoverer is in its working state. Figures are
printed at the end with the machine they ran on.
"""

import time

import pytest
import torch

import mer
from mer.data import synthetic_conversations
from mer.data.protocol import protocol_masks
from mer.training import train_epoch

RECOVERERS = ["zero", "mean", "autoencoder", "imder", "md2n", "rohydr", "gsdnet", "gsdnet_adjacency",
              "gsdnet_nograph"]
MISSING_RATE = 0.3

@pytest.fixture(scope="session")
def dataset():
    return synthetic_conversations(seed=0)


@pytest.fixture(scope="session")
def trained(dataset, device):
    cache = {}

    def get(name):
        if name not in cache:
            if name not in mer.available_recoverers():
                pytest.skip(f"recoverer {name!r} is not registered")
            cache[name] = mer.train(dataset, recoverer=name, masks=MISSING_RATE, epochs=1, seed=0,
                                    device=str(device))
        return cache[name]

    return get


@pytest.mark.parametrize("name", RECOVERERS)
def test_training_epoch(benchmark, trained, dataset, device, synchronised, figures, name):
    model = trained(name)
    cfg = model.config
    optimizer = torch.optim.Adam(model.model.parameters(), lr=cfg.train.lr)
    part = dataset.split("train")
    masks = protocol_masks(dataset, cfg.protocol, "train", cfg.mask_seed, 1)
    epoch = synchronised(lambda: train_epoch(model.model, optimizer, part, masks, cfg, 1, device), device)
    benchmark.group = "mer training epoch"
    benchmark.pedantic(epoch, rounds=2 if name == "imder" else 3, iterations=1)
    if benchmark.stats is None:
        return
    seconds = benchmark.stats.stats.min
    benchmark.extra_info.update(device=str(device), conversations=len(part), seconds=seconds)
    figures("mer training and evaluation (fastest round)",
            f"  {device}  {name:>12}  training epoch ({len(part)} conversations)  {seconds:8.3f} s")


@pytest.mark.parametrize("name", RECOVERERS)
def test_test_evaluation(benchmark, trained, dataset, device, synchronised, figures, name):
    model = trained(name)
    evaluate = synchronised(lambda: model.evaluate(dataset, "test"), device)
    benchmark.group = "mer test evaluation"
    started = time.perf_counter()
    evaluate()  # warm-up, and the mask cache
    probe = time.perf_counter() - started
    benchmark.pedantic(evaluate, rounds=max(1, min(5, int(5.0 / max(probe, 1e-9)))), iterations=1)
    if benchmark.stats is None:
        return
    seconds = benchmark.stats.stats.min
    n = len(dataset.splits["test"])
    benchmark.extra_info.update(device=str(device), conversations=n, seconds=seconds)
    figures("mer training and evaluation (fastest round)",
            f"  {device}  {name:>12}  test evaluation ({n} conversations)  {seconds:8.3f} s")
