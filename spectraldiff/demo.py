"""``python -m spectraldiff demo``: learn the spectra of a graph family with eigenvalue diffusion.

The demo draws two-community graphs (12–20 nodes, edge probability 0.7 inside and 0.05 across
communities), decomposes their adjacency matrices with :func:`spectraldiff.batched_eigh`, trains an
:class:`~spectraldiff.score_networks.EigenvalueScoreNet` with denoising score matching on the VP SDE,
samples new spectra (node counts drawn from the training set) and reports the 1-Wasserstein distance
between sampled and held-out spectra, next to the same distance for the untrained network and for a
second held-out sample of real graphs (the floor any model can reach).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass

import torch
from torch import Tensor
from tqdm.auto import tqdm

from .atomic import json_text
from .eigh import batched_eigh, node_mask
from .losses import dsm_loss
from .sampling import pc_sampler
from .score_networks import EigenvalueScoreNet, NoiseToScore
from .sde import VPSDE

__all__ = ["DemoConfig", "community_adjacency", "wasserstein_1d", "SpectrumDiffusion", "run_demo"]


@dataclass
class DemoConfig:
    num_graphs: int = 600
    train_steps: int = 600
    batch_size: int = 64
    hidden_dim: int = 64
    num_layers: int = 2
    learning_rate: float = 2e-3
    sampling_steps: int = 100
    num_samples: int = 200
    seed: int = 0

    def __post_init__(self):
        for name in ("num_graphs", "train_steps", "batch_size", "hidden_dim", "num_layers", "sampling_steps",
                     "num_samples"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")


def community_adjacency(num_graphs: int, *, min_nodes: int = 12, max_nodes: int = 20, p_in: float = 0.7,
                        p_out: float = 0.05, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Random two-community graphs as a padded batch ``(B, max_nodes, max_nodes)`` and sizes ``(B,)``.

    Node counts are even and uniform on ``[min_nodes, max_nodes]``; each half is one community.
    """
    sizes = 2 * torch.randint(min_nodes // 2, max_nodes // 2 + 1, (num_graphs,), generator=generator)
    idx = torch.arange(max_nodes)
    community = (idx[None, :] >= sizes[:, None] // 2).long()  # (B, N)
    same = community[:, :, None] == community[:, None, :]
    p = torch.where(same, p_in, p_out)
    upper = torch.rand(num_graphs, max_nodes, max_nodes, generator=generator) < p
    upper = torch.triu(upper, diagonal=1)
    mask = node_mask(sizes, max_nodes)
    A = (upper | upper.mT) & mask[:, :, None] & mask[:, None, :]
    return A.float(), sizes


def wasserstein_1d(a: Tensor, b: Tensor, grid: int = 2000) -> float:
    """1-Wasserstein distance between the empirical distributions of the values in ``a`` and ``b``."""
    u = (torch.arange(grid, dtype=torch.float64) + 0.5) / grid
    qa = torch.quantile(a.double().flatten(), u)
    qb = torch.quantile(b.double().flatten(), u)
    return float((qa - qb).abs().mean())


class SpectrumDiffusion:
    """An eigenvalue diffusion model for a family of graph spectra (the demo's model).

    Eigenvalues are divided by one dataset-wide ``scale`` so that the data has unit spread, as the VP
    SDE's prior assumes.
    """

    def __init__(self, config: DemoConfig, scale: float):
        self.config = config
        self.scale = scale
        self.sde = VPSDE()
        self.network = EigenvalueScoreNet(hidden_dim=config.hidden_dim, num_layers=config.num_layers)

    def score_fn(self, mask: Tensor) -> NoiseToScore:
        return NoiseToScore(self.network, self.sde, call=lambda net, x, t, c: net(x, t, mask, c))

    def fit(self, eigenvalues: Tensor, mask: Tensor, generator: torch.Generator, progress: bool = False) -> list[float]:
        """Train for ``config.train_steps`` minibatch steps on ``eigenvalues (B, N)``; returns the losses."""
        cfg = self.config
        optimizer = torch.optim.Adam(self.network.parameters(), lr=cfg.learning_rate)
        data = eigenvalues / self.scale
        losses = []
        self.network.train()
        for _ in tqdm(range(cfg.train_steps), desc="training", disable=not progress):
            idx = torch.randint(0, data.shape[0], (cfg.batch_size,), generator=generator)
            loss = dsm_loss(self.score_fn(mask[idx]), self.sde, data[idx], mask=mask[idx], generator=generator)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss))
        return losses

    @torch.no_grad()
    def sample(self, mask: Tensor, generator: torch.Generator, progress: bool = False) -> Tensor:
        """Eigenvalues ``(B, N)`` for graphs with the real slots of ``mask``; padded slots are zero."""
        self.network.eval()
        x_T = self.sde.prior_sampling(mask.shape, generator=generator)
        lam = pc_sampler(self.sde, self.score_fn(mask), x_T, steps=self.config.sampling_steps, mask=mask,
                         generator=generator, progress=progress)
        return lam * self.scale


def run_demo(config: DemoConfig, progress: bool = True) -> dict:
    """Train, sample and measure; returns the measurements as a dict."""
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    A, sizes = community_adjacency(config.num_graphs + 2 * config.num_samples, generator=generator)
    start = time.perf_counter()
    eigenvalues, _ = batched_eigh(A, sizes)
    eigh_seconds = time.perf_counter() - start
    mask = node_mask(sizes, A.shape[-1])

    train = slice(0, config.num_graphs)
    held_out = slice(config.num_graphs, config.num_graphs + config.num_samples)
    floor = slice(config.num_graphs + config.num_samples, None)
    scale = float(eigenvalues[train][mask[train]].std())

    def real(sl):
        return eigenvalues[sl][mask[sl]]

    # Node counts of the generated graphs are drawn from the training distribution.
    draw = torch.randint(0, config.num_graphs, (config.num_samples,), generator=generator)
    sample_mask = mask[train][draw]

    model = SpectrumDiffusion(config, scale)
    untrained = model.sample(sample_mask, generator)
    start = time.perf_counter()
    losses = model.fit(eigenvalues[train], mask[train], generator, progress=progress)
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    sampled = model.sample(sample_mask, generator, progress=progress)
    sample_seconds = time.perf_counter() - start

    window = max(1, len(losses) // 10)
    return {
        "config": asdict(config),
        "eigh_seconds": eigh_seconds,
        "train_seconds": train_seconds,
        "sampling_seconds_per_graph": sample_seconds / config.num_samples,
        "loss_first": sum(losses[:window]) / window,
        "loss_last": sum(losses[-window:]) / window,
        "w1_trained": wasserstein_1d(sampled[sample_mask], real(held_out)),
        "w1_untrained": wasserstein_1d(untrained[sample_mask], real(held_out)),
        "w1_real_vs_real": wasserstein_1d(real(floor), real(held_out)),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = DemoConfig()
    parser.add_argument("--num-graphs", type=int, default=defaults.num_graphs, help="training graphs")
    parser.add_argument("--train-steps", type=int, default=defaults.train_steps)
    parser.add_argument("--sampling-steps", type=int, default=defaults.sampling_steps)
    parser.add_argument("--num-samples", type=int, default=defaults.num_samples, help="graphs to sample")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--json", action="store_true", help="print the measurements as JSON only")


def run(args: argparse.Namespace) -> int:
    config = DemoConfig(num_graphs=args.num_graphs, train_steps=args.train_steps,
                        sampling_steps=args.sampling_steps, num_samples=args.num_samples, seed=args.seed)
    result = run_demo(config, progress=not args.json)
    if args.json:
        print(json_text(result))
        return 0
    print(f"two-community graphs, 12-20 nodes: {config.num_graphs} for training, seed {config.seed}")
    print(f"batched_eigh on {config.num_graphs + 2 * config.num_samples} graphs: {result['eigh_seconds'] * 1e3:.1f} ms")
    print(f"training: {config.train_steps} steps in {result['train_seconds']:.1f} s, "
          f"DSM loss {result['loss_first']:.3f} -> {result['loss_last']:.3f}")
    print(f"sampling: {config.sampling_steps} Euler-Maruyama steps, "
          f"{result['sampling_seconds_per_graph'] * 1e3:.2f} ms per graph")
    print("1-Wasserstein distance of sampled eigenvalues to held-out graphs' eigenvalues:")
    print(f"  untrained network   {result['w1_untrained']:.3f}")
    print(f"  trained network     {result['w1_trained']:.3f}")
    print(f"  real vs real floor  {result['w1_real_vs_real']:.3f}")
    return 0
