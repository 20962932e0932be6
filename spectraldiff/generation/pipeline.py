"""One generation run: train, sample as many graphs as the test set, score, write the results."""

from __future__ import annotations

import math
import pickle
import platform
import time
from pathlib import Path
from typing import Sequence

import networkx as nx
import torch

from ..atomic import atomic_write, atomic_write_json
from .config import GenerationConfig
from .generator import GraphGenerator
from .evaluation import evaluate_samples
from .models import get_model, load_generator
from .plotting import draw_samples

__all__ = ["run_generation", "train_model", "evaluate_model", "time_sampling", "mean_over_draws", "std_over_draws",
           "METRIC_KEYS"]

#: Keys of ``metrics.json`` that hold measurements (the rest describe the run).
METRIC_KEYS = ("degree", "clustering", "orbit", "spectral", "average", "sampling_seconds_per_graph",
               "training_seconds", "novel", "unique", "valid", "vun")


def mean_over_draws(draws: Sequence[dict]) -> dict:
    """Each score's mean over the draws (dicts of the same keys); a score that is None in any draw
    (validity of a family without a rule) stays None."""
    return {key: None if any(d[key] is None for d in draws) else sum(d[key] for d in draws) / len(draws)
            for key in draws[0]}


def std_over_draws(draws: Sequence[dict]) -> dict:
    """Each score's sample standard deviation over two or more draws (None where a draw has None)."""
    means = mean_over_draws(draws)
    return {key: None if mean is None else
            math.sqrt(sum((d[key] - mean) ** 2 for d in draws) / (len(draws) - 1))
            for key, mean in means.items()}


def time_sampling(model: GraphGenerator, num_graphs: int, steps: int, seed: int,
                  progress: bool = False) -> tuple[list[nx.Graph], float, dict[str, float]]:
    """Sample with a fresh generator seeded ``seed``; returns the graphs, the wall seconds per graph
    (reverse diffusion, reconstruction and thresholding included) and the model's
    :meth:`~GraphGenerator.diagnostics` of the weighted samples (not timed)."""
    generator = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    sampled = model.sample_weighted(num_graphs, steps=steps, generator=generator, progress=progress)
    graphs = model.to_graphs(sampled)
    seconds = (time.perf_counter() - start) / num_graphs
    return graphs, seconds, model.diagnostics(sampled)


def train_model(config: GenerationConfig, train_graphs: Sequence[nx.Graph], *, progress: bool = False,
                resume_from: str | Path | None = None, train_more: bool = True, finish: bool = False,
                decoder_epochs: int | None = None, finish_decoder: bool = False, checkpoint_every: int = 0,
                checkpoint_path: str | Path | None = None) -> tuple[GraphGenerator, dict]:
    """Build ``config.model`` and train it (seeded by ``config.seed``); returns it and a training record
    (``training_seconds`` and ``epochs_trained``, both counting any earlier run, first and last epoch
    loss of this run, parameter count).

    ``resume_from`` (a ``model.pt`` of an earlier run on the same ``train_graphs``) continues that model
    for ``config.epochs`` more epochs, exactly where it stopped (:meth:`GraphGenerator.fit` with
    ``resume=True``); with ``train_more=False`` it is only loaded. ``decoder_epochs`` (``spectral_vectors``
    only, with ``resume_from`` and ``train_more=False``) instead keeps its diffusion and trains a new
    edge decoder with ``config``'s ``decoder_*`` settings for that many epochs
    (:meth:`~.spectral_vectors.SpectralVectorGenerator.fit_decoder`). ``finish`` (with ``resume_from``
    a file saved mid-fit) runs the rest of that interrupted fit instead of ``config.epochs`` more.
    ``finish_decoder`` (with ``resume_from`` a file saved during a new decoder's training) runs the
    rest of that training. ``checkpoint_every`` and ``checkpoint_path`` save the diffusion's fit, or
    the decoder's, on the way (:meth:`GraphGenerator.fit`,
    :meth:`~.spectral_vectors.SpectralVectorGenerator.fit_decoder`).
    """
    if decoder_epochs is not None and (resume_from is None or train_more or config.model != "spectral_vectors"):
        raise ValueError("decoder_epochs retrains the edge decoder of a saved spectral_vectors model: give "
                         "resume_from and no more diffusion epochs (train_more=False)")
    if finish_decoder and (resume_from is None or train_more or decoder_epochs is not None):
        raise ValueError("finish_decoder finishes the decoder training a saved file was cut in: give resume_from, "
                         "and neither more diffusion epochs (train_more=False) nor decoder_epochs")
    if resume_from is None:
        torch.manual_seed(config.seed)
        model = get_model(config.model, config)
        losses = model.fit(train_graphs, generator=torch.Generator().manual_seed(config.seed), progress=progress,
                           checkpoint_every=checkpoint_every, checkpoint_path=checkpoint_path)
    elif decoder_epochs is not None or finish_decoder:
        model = load_generator(resume_from, train_graphs)  # its own decoder settings, to load it
        saves = {"checkpoint_every": checkpoint_every, "checkpoint_path": checkpoint_path, "progress": progress}
        if finish_decoder:
            progress_so_far = model.decoder_progress()  # (epochs, done), read before finishing clears it
            decoder_epochs = progress_so_far[0] if progress_so_far else None
            losses = model.fit_decoder(train_graphs, finish=True, **saves)
        else:
            losses = model.fit_decoder(train_graphs, decoder_epochs, config=config, **saves)
    else:
        model = load_generator(resume_from, train_graphs, config)
        losses = (model.fit(train_graphs, resume=True, finish=finish, progress=progress,
                            checkpoint_every=checkpoint_every, checkpoint_path=checkpoint_path)
                  if train_more or finish else [])
    record = {
        "training_seconds": model.training_seconds,
        "epochs_trained": model.epochs_trained,
        "loss_first_epoch": losses[0] if losses else None,
        "loss_last_epoch": losses[-1] if losses else None,
        "num_parameters": model.num_parameters(),
        "num_train_graphs": len(train_graphs),
    }
    if resume_from is not None:
        record["resumed_from"] = str(resume_from)
    if decoder_epochs is not None or finish_decoder:
        record["decoder_epochs"] = decoder_epochs  # the losses above are the new decoder's
    return model, record


def evaluate_model(model: GraphGenerator, config: GenerationConfig, train_graphs: Sequence[nx.Graph],
                   test_graphs: Sequence[nx.Graph], training: dict, out_dir: str | Path | None = None, *,
                   steps: int | None = None, data_source: str = "", progress: bool = False,
                   figure: bool = True) -> dict:
    """Sample as many graphs as the test set (or ``config.num_samples``) at ``steps`` (default
    ``config.steps``) with sampling seed ``config.seed + 1``, score them against ``test_graphs`` with
    :func:`~spectraldiff.generation.evaluation.evaluate_samples` (family ``config.dataset``: validity
    and V.U.N. where the family defines validity) and, with ``out_dir``, write ``metrics.json``,
    ``config.json``, ``samples.pkl`` and ``samples.png``.

    With ``config.draws`` ``D > 1`` it draws ``D`` such sets (sampling seeds ``config.seed + 1``, …,
    ``config.seed + D``; the first is the single-draw run's) and the scores are their means, with
    ``std`` (sample standard deviation of each score, None where undefined) and ``per_draw`` (each
    draw's scores) beside them; ``samples.pkl`` and the figure keep the first draw's graphs, and
    ``samples_per_draw.pkl`` every draw's (a list of ``D`` lists, in sampling-seed order), so that any
    draw's scores can be checked or its graphs drawn again.
    """
    steps = steps or config.steps
    num_samples = config.num_samples or len(test_graphs)
    draws, samples = [], []
    for draw in range(config.draws):
        if config.draws > 1 and progress:
            print(f"draw {draw + 1} of {config.draws} (sampling seed {config.seed + 1 + draw})")
        graphs, seconds_per_graph, diagnostics = time_sampling(model, num_samples, steps, config.seed + 1 + draw,
                                                               progress)
        scores = evaluate_samples(graphs, train_graphs, test_graphs, family=config.dataset)
        draws.append({**{k: v for k, v in scores.items() if k not in ("family", "num_samples")}, **diagnostics,
                      "sampling_seconds_per_graph": seconds_per_graph})
        samples.append(graphs)
    results = {
        **mean_over_draws(draws),
        "training_seconds": training["training_seconds"],
        "model": config.model,
        "spectral_network": config.spectral_network if config.model == "spectral" else None,
        "node_counts": config.node_counts,
        "dataset": config.dataset,
        "data_source": data_source,
        "steps": steps,
        "epochs": training.get("epochs_trained", config.epochs),  # earlier runs of a resumed model included
        "seed": config.seed,
        "num_test_graphs": len(test_graphs),
        "num_samples": num_samples,
        "draws": config.draws,
        **{k: v for k, v in training.items() if k != "training_seconds"},
        "torch_threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "torch_version": torch.__version__,
    }
    if config.draws > 1:
        results["std"] = std_over_draws(draws)
        results["per_draw"] = draws
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        GenerationConfig.from_dict({**config.to_dict(), "steps": steps}).save(out / "config.json")
        atomic_write_json(results, out / "metrics.json")
        atomic_write(out / "samples.pkl", lambda handle: pickle.dump(samples[0], handle))
        if config.draws > 1:
            atomic_write(out / "samples_per_draw.pkl", lambda handle: pickle.dump(samples, handle))
        if figure:
            draw_samples(samples[0], list(test_graphs), out / "samples.png", seed=config.seed,
                         title=f"{config.model} on {config.dataset}, {steps} steps, seed {config.seed}")
    return results


def run_generation(config: GenerationConfig, train_graphs: Sequence[nx.Graph], test_graphs: Sequence[nx.Graph],
                   out_dir: str | Path | None = None, *, data_source: str = "", progress: bool = False,
                   resume_from: str | Path | None = None, train_more: bool = True, finish: bool = False,
                   decoder_epochs: int | None = None, finish_decoder: bool = False,
                   checkpoint_every: int = 0) -> dict:
    """Train ``config.model`` on ``train_graphs`` (or continue or load ``resume_from``, or give it a new
    decoder, see :func:`train_model`),
    sample, compare with ``test_graphs``.

    Returns the metrics dict; with ``out_dir`` also writes there ``model.pt`` (the trained model,
    :mod:`.checkpoint`; written before sampling, so a failed evaluation keeps the training, and with
    ``checkpoint_every`` also every that many epochs of the diffusion's fit, so an interrupted fit
    can be finished, see :func:`train_model`),
    ``metrics.json`` (the four MMDs, ``average`` of degree/clustering/orbit, ``sampling_seconds_per_graph``,
    ``training_seconds``, ``novel``, ``unique``, ``valid`` (None where the family has no validity) and
    ``vun`` (:mod:`spectraldiff.generation.evaluation`) and a description of the run),
    ``config.json``, ``samples.png`` and ``samples.pkl`` (the generated ``networkx`` graphs, a pickled
    list).
    """
    checkpoint_path = None
    if checkpoint_every:
        if out_dir is None:
            raise ValueError("checkpoint_every saves the model into out_dir/model.pt: give an out_dir")
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        checkpoint_path = Path(out_dir) / "model.pt"
    model, training = train_model(config, train_graphs, progress=progress, resume_from=resume_from,
                                  train_more=train_more, finish=finish, decoder_epochs=decoder_epochs,
                                  finish_decoder=finish_decoder, checkpoint_every=checkpoint_every,
                                  checkpoint_path=checkpoint_path)
    if out_dir is not None:
        model.save(Path(out_dir) / "model.pt")
    return evaluate_model(model, config, train_graphs, test_graphs, training, out_dir, data_source=data_source,
                          progress=progress)
