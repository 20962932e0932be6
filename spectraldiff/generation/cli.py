"""``python -m spectraldiff generate``: train a graph generator and evaluate it with MMD.

Example::

    python -m spectraldiff generate --dataset community_small --model spectral \\
        --epochs 200 --steps 100 --seed 0 --out runs/cs_spectral

Data: ``--graphs PATH`` (a ``.json`` edge-list file, a ``.pkl`` list of ``networkx.Graph`` — read
by the restricted unpickler, which refuses anything but graphs, containers and NumPy values unless
``--trust-pickle`` is given — or a folder of edge lists); without it, the published
set ``../shared/data/graphs/<dataset>.json`` next to the repository when present, else the package
generator for ``--dataset`` (data seed 0; 100 graphs, 200 for SPECTRE's planar and sbm), and the
command says which. The published split is used: the first 20% of the graphs are the test set. A
run on ``--graphs PATH`` is labelled by the file (``dataset`` in ``config.json`` and
``metrics.json`` is the file name without its suffix, or the folder name) unless ``--dataset`` or
the config file names a family, whose validity rule then applies (e.g. ``--graphs my_planar.json
--dataset planar``).

Settings: ``--config FILE`` (JSON or YAML, any :class:`GenerationConfig` fields; the others take their
defaults) and the flags, which override the file's values. ``--hidden-dim`` set nowhere takes the
model's default width (:data:`DEFAULT_HIDDEN_DIM`).

Writes ``DIR/model.pt`` (the trained model: weights, EMA, optimiser state; read without running code,
:mod:`.checkpoint`), ``DIR/metrics.json`` (``degree``, ``clustering``, ``orbit``, ``spectral``, ``average``,
``sampling_seconds_per_graph``, ``training_seconds`` and a description of the run), ``DIR/config.json``,
``DIR/samples.png`` and ``DIR/samples.pkl``. ``--draws D`` scores ``D`` independent sample sets and
reports each score's mean and standard deviation over them (``std`` and ``per_draw`` in
``metrics.json``; ``samples.pkl`` holds the first draw's graphs, ``samples_per_draw.pkl`` every
draw's): on a saved model, ``--resume-from RUN/model.pt --draws 5 --out DIR`` measures it without
training.

Continuing: ``--resume-from RUN/model.pt --epochs 400 --out RUN2`` trains the saved model 400 more
epochs exactly where it stopped (same optimiser state, EMA and random stream: the weights of one run
of all the epochs), then samples and scores as usual; without ``--epochs`` (on the line or in
``--config``) it only samples and scores the saved model (e.g. at other ``--steps``). The settings
are the saved run's, then ``--config`` and the flags; those that shape the network must stay the
same. The data are the saved run's dataset (give ``--graphs`` again for user graphs); other graphs
are refused.

Interrupted runs: training saves ``DIR/model.pt`` every ``--checkpoint-every`` epochs (default
:data:`DEFAULT_CHECKPOINT_EVERY`). ``--resume-from DIR/model.pt --out DIR2`` without ``--epochs``
on such a file finishes the interrupted run (the remaining epochs, the learning-rate schedule going
on where it stopped: the weights of the uninterrupted run), then samples and scores. The same holds
for a new decoder's training (``--decoder-epochs``): a file saved during it is finished the same way.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from ..atomic import json_text
from ..cli_errors import check_output_dir
from ..sampling import available_correctors, available_predictors
from ..sde import available_sdes
from .config import LEARNING_RATE_SCHEDULES, NODE_COUNT_SCHEMES, SPECTRAL_NETWORKS, GenerationConfig

__all__ = ["add_arguments", "run", "resolve_config", "load_dataset", "graphs_label", "default_hidden_dim",
           "summary_line", "DEFAULT_HIDDEN_DIM", "DEFAULT_CHECKPOINT_EVERY", "DATASETS", "MODELS"]

# Listed here so that building the parser imports no networkx; a test keeps them equal to the registries
# (spectraldiff.generation.datasets.available_datasets, spectraldiff.generation.available_models).
DATASETS = ("community_small", "grid", "planar", "sbm", "enzymes")
MODELS = ("adjacency", "spectral", "spectral_vectors")

#: Widths that give the models about the same parameter count with 3 layers on community_small
#: (padded size 20): 117 981 spectral MLP, 113 410 spectral transformer, 116 953 adjacency. The
#: MLP's first and last layers grow with the padded size (``--hidden-dim 64`` gives 99 991 on the published grid set).
DEFAULT_HIDDEN_DIM = {"spectral": 120, "spectral/transformer": 64, "adjacency": 88}


def default_hidden_dim(model: str, spectral_network: str = "mlp") -> int:
    """The ``generate`` default width of ``model`` (for ``spectral``, of its ``spectral_network``)."""
    if model == "spectral" and spectral_network != "mlp":
        return DEFAULT_HIDDEN_DIM[f"spectral/{spectral_network}"]
    return DEFAULT_HIDDEN_DIM.get(model, GenerationConfig.hidden_dim)

#: Epochs between the saves of a training run (``--checkpoint-every``): at most a few minutes of
#: training lost on the 2-core box (SBM: about 75 s per 50 epochs), for a write of well under a second.
DEFAULT_CHECKPOINT_EVERY = 50

#: Graphs drawn from a package generator whose ``num_graphs`` has no default.
FALLBACK_NUM_GRAPHS = 100


def default_num_graphs(generator) -> int:
    """How many graphs ``generate`` draws from ``generator`` when the published set is absent: its own
    ``num_graphs`` default (the published set's size for community_small and grid, SPECTRE's
    benchmark size for planar and sbm), else :data:`FALLBACK_NUM_GRAPHS`."""
    import inspect

    parameter = inspect.signature(generator).parameters.get("num_graphs")
    if parameter is None or not isinstance(parameter.default, int):
        return FALLBACK_NUM_GRAPHS
    return parameter.default


def graphs_label(graphs_path: str) -> str:
    """The name a run on the user's graphs goes by: the file name without its suffix, or the folder name."""
    path = Path(graphs_path)
    return (path.resolve().name if path.is_dir() else path.stem) or str(graphs_path)  # "." by its name


def load_dataset(dataset: str, graphs_path: str | None = None, *, trust_pickle: bool = False) -> tuple[list, str]:
    """Graphs for a run and a sentence saying where they came from.

    ``trust_pickle`` lets a ``.pkl`` at ``graphs_path`` load with plain ``pickle.load`` (runs code from
    the file); without it the restricted unpickler reads it.
    """
    from .datasets import get_generator, load_graphs, published_graphs_path

    if graphs_path is not None:
        return load_graphs(graphs_path, trust_pickle=trust_pickle), f"user graphs from {graphs_path}"
    published = published_graphs_path(dataset)
    if published is not None:
        return load_graphs(published), f"published {dataset} set from {published}"
    generator = get_generator(dataset)
    count = default_num_graphs(generator)
    graphs = generator(count, 0)
    return graphs, (f"the published {dataset} set was not found (../shared/data/graphs); using the package "
                    f"generator instead: {count} graphs, data seed 0")


#: Flag destination → GenerationConfig field, for the flags that set one.
CONFIG_FLAGS = {
    "dataset": "dataset", "model": "model", "epochs": "epochs", "steps": "steps", "seed": "seed",
    "batch_size": "batch_size", "lr": "learning_rate", "lr_schedule": "learning_rate_schedule",
    "hidden_dim": "hidden_dim", "num_layers": "num_layers", "spectral_network": "spectral_network",
    "node_counts": "node_counts",
    "sde": "sde", "predictor": "predictor", "corrector": "corrector", "num_samples": "num_samples",
    "sample_batch_size": "sample_batch_size", "draws": "draws",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # Config flags default to None ("not given"), so --config FILE's values stand unless a flag is
    # given; the help shows the GenerationConfig default.
    d = GenerationConfig()
    parser.add_argument("--config", metavar="FILE", default=None,
                        help="GenerationConfig fields as JSON or YAML (e.g. epochs: 200, snr: 0.2); "
                             "the flags override its values")
    parser.add_argument("--dataset", choices=DATASETS, default=None,
                        help=f"graph family: the data when --graphs is not given (default {d.dataset}); with "
                             "--graphs, the family whose validity rule applies (default: none, the run is "
                             "labelled by the file name)")
    parser.add_argument("--graphs", metavar="PATH", default=None,
                        help="graphs to use: .json (a list of {\"num_nodes\": n, \"edges\": [[u, v], ...]}), "
                             ".pkl list of networkx graphs (read by a restricted unpickler) or a folder of "
                             "edge-list files ('u v' per line, one graph per file)")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="load a --graphs .pkl with plain pickle: only for files you trust, it lets the "
                             "file run code")
    parser.add_argument("--model", choices=MODELS, default=None, help=f"default {d.model}")
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"passes over the training graphs (default {d.epochs})")
    parser.add_argument("--steps", type=int, default=None,
                        help=f"reverse-diffusion sampling steps (default {d.steps})")
    parser.add_argument("--seed", type=int, default=None, help=f"default {d.seed}")
    parser.add_argument("--out", metavar="DIR", required=True,
                        help="output folder; one that already holds a run is refused unless --overwrite")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the run an existing --out folder holds (its model.pt, metrics.json, ...)")
    parser.add_argument("--resume-from", metavar="MODEL", default=None,
                        help="a model.pt of an earlier generate run: continue it --epochs more epochs "
                             "(without --epochs: only sample and score it), with its settings (a run on user "
                             "graphs needs them again: --graphs)")
    parser.add_argument("--checkpoint-every", type=int, default=DEFAULT_CHECKPOINT_EVERY, metavar="N",
                        help="save the training (the diffusion's, or a new decoder's) to DIR/model.pt every N "
                             "epochs, so an interrupted run loses at most N; finish it with --resume-from "
                             "DIR/model.pt --out NEW and no "
                             f"--epochs (0: save only at the end; default {DEFAULT_CHECKPOINT_EVERY})")
    parser.add_argument("--decoder-epochs", type=int, default=None, metavar="N",
                        help="with --resume-from of a spectral_vectors run (and no --epochs): keep its diffusion "
                             "and train a new edge decoder for N epochs, with the decoder_* settings of "
                             "--config (e.g. decoder_layers: 2)")
    parser.add_argument("--batch-size", type=int, default=None, help=f"default {d.batch_size}")
    parser.add_argument("--lr", type=float, default=None, help=f"Adam learning rate (default {d.learning_rate})")
    parser.add_argument("--lr-schedule", choices=LEARNING_RATE_SCHEDULES, default=None,
                        help=f"learning rate over each training call: constant, or cosine from --lr down to 1 %% "
                             f"of it (default {d.learning_rate_schedule})")
    parser.add_argument("--hidden-dim", type=int, default=None,
                        help="score network width (default per model: "
                             + ", ".join(f"{name} {width}" for name, width in DEFAULT_HIDDEN_DIM.items())
                             + f", spectral_vectors {GenerationConfig.hidden_dim})")
    parser.add_argument("--num-layers", type=int, default=None, help=f"default {d.num_layers}")
    parser.add_argument("--spectral-network", choices=SPECTRAL_NETWORKS, default=None,
                        help=f"eigenvalue network of the spectral model (default {d.spectral_network})")
    parser.add_argument("--node-counts", choices=NODE_COUNT_SCHEMES, default=None,
                        help="how sampled graphs draw their training graph (node count, and eigenvectors for the "
                             "spectral model): iid (the published protocol, default) or stratified (same marginal, "
                             "sizes of the sample set follow the training histogram)")
    parser.add_argument("--sde", choices=available_sdes(), default=None, help=f"default {d.sde}")
    parser.add_argument("--predictor", choices=available_predictors(), default=None, help=f"default {d.predictor}")
    parser.add_argument("--corrector", choices=available_correctors(), default=None, help=f"default {d.corrector}")
    parser.add_argument("--num-samples", type=int, default=None, help="graphs to generate (default: test-set size)")
    parser.add_argument("--draws", type=int, default=None, metavar="D",
                        help="score D independent sample sets (sampling seeds seed+1 ... seed+D) and report each "
                             "score's mean and std over them (default 1)")
    parser.add_argument("--sample-batch-size", type=int, default=None, help=f"default {d.sample_batch_size}")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def resolve_config(args: argparse.Namespace, saved: dict | None = None) -> GenerationConfig:
    """The run's :class:`GenerationConfig`: defaults (or ``saved``, the config of the model being
    resumed), then ``--config FILE``, then the flags given.

    Raises
    ------
    ValueError
        One line: a config file's unknown field, wrong type or bad value, or a name (dataset, model,
        SDE, predictor, corrector) outside the choices the flags offer.
    """
    values = {**(saved or {}), **(GenerationConfig.file_values(args.config) if args.config else {})}
    from_file = set(values)
    if args.config:
        try:  # the file's own values are checked even where a flag replaces them
            GenerationConfig.from_dict(dict(values))
        except ValueError as err:
            raise ValueError(f"config file {args.config}: {err}") from None
    for dest, name in CONFIG_FLAGS.items():
        if getattr(args, dest, None) is not None:
            values[name] = getattr(args, dest)
    # User graphs are labelled by their file, not by the default family, unless a family is named; a
    # label of other user graphs (an earlier run's config.json, or the run being resumed) gives way.
    if getattr(args, "graphs", None) is not None and values.get("dataset") not in DATASETS:
        values["dataset"] = graphs_label(args.graphs)
    if args.hidden_dim is None and "hidden_dim" not in from_file:
        values["hidden_dim"] = default_hidden_dim(values.get("model", GenerationConfig.model),
                                                  values.get("spectral_network", GenerationConfig.spectral_network))
    where = f"config file {args.config} with the flags: " if args.config else ""
    choices = {"dataset": DATASETS, "model": MODELS, "sde": available_sdes(),
               "predictor": available_predictors(), "corrector": available_correctors()}
    if getattr(args, "graphs", None) is not None:
        del choices["dataset"]  # any label names user graphs (a previous run's config.json says its file's)
    for name, valid in choices.items():
        if name in values and values[name] not in valid:
            if name == "dataset" and saved is not None:
                raise ValueError(f"--resume-from {getattr(args, 'resume_from', None)} was trained on user graphs "
                                 f"labelled {values[name]!r}: give them again with --graphs")
            hint = " (a label of user graphs? give the graphs with --graphs)" if name == "dataset" else ""
            raise ValueError(f"{where}{name} must be one of {list(valid)}, got {values[name]!r}{hint}")
    try:
        return GenerationConfig.from_dict(values)
    except ValueError as err:
        raise ValueError(f"{where}{err}") from None


def summary_line(results: dict) -> str:
    """The scores ``generate`` prints: the MMDs, and V.U.N. where the family defines validity; with more
    than one draw, each as ``mean ± std`` over the draws."""
    keys = ["degree", "clustering", "orbit", "spectral", "average"]
    keys += ["vun"] if results.get("valid") is not None else []
    if results.get("draws", 1) == 1:
        return json_text({k: round(results[k], 6) for k in keys}, indent=None)
    return f"over {results['draws']} draws: " + ", ".join(
        f"{k} {results[k]:.4g} ± {results['std'][k]:.2g}" for k in keys)


def _read_resumed(args: argparse.Namespace) -> tuple[dict | None, int, int, tuple[int, int] | None]:
    """``--resume-from``'s saved config, its last training call's epochs and how many of them ran, and
    ``(epochs, done)`` of a decoder training it was saved in the middle of (``(None, 0, 0, None)``
    without it)."""
    if args.resume_from is None:
        return None, 0, 0, None
    from .checkpoint import read_checkpoint

    if Path(args.out).resolve() == Path(args.resume_from).resolve().parent:
        raise ValueError(f"--out {args.out} is the folder of --resume-from: its model and results would be "
                         "overwritten; give a new folder")
    payload = read_checkpoint(args.resume_from)
    call_epochs, done = payload.get("call_epochs", (payload["epochs_trained"],) * 2)
    decoder = payload.get("decoder_fit")
    return payload["config"], call_epochs, done, None if decoder is None else (decoder["epochs"], decoder["done"])


def _announce_cut_run(args: argparse.Namespace, call_epochs: int, done: int, new_epochs: int | None) -> None:
    """Say what resuming a model saved mid-run does: finish it, or (``new_epochs``) start a new leg; a new
    decoder on an unfinished diffusion is refused."""
    if args.decoder_epochs is not None:
        raise ValueError(f"--resume-from {args.resume_from} was saved at epoch {done} of a {call_epochs}-epoch "
                         "run: finish its diffusion first (--resume-from without --epochs), then train a "
                         "decoder on that run's model.pt")
    print(f"resuming: {args.resume_from} was saved at epoch {done} of a {call_epochs}-epoch run; "
          + (f"finishing it: epochs {done + 1}–{call_epochs}, the learning-rate schedule going on where it stopped"
             if new_epochs is None else
             f"--epochs starts a new run of {new_epochs} epochs from there (leave --epochs out to finish the "
             "interrupted one)"))


def _announce_cut_decoder(args: argparse.Namespace, epochs: int, done: int, train_more: bool) -> bool:
    """Say what resuming a model saved during a new decoder's training does; returns whether it finishes
    that training (a new ``--decoder-epochs`` decoder replaces it instead; more diffusion epochs are
    refused)."""
    where = f"--resume-from {args.resume_from} was saved at epoch {done} of a {epochs}-epoch decoder training"
    if train_more:
        raise ValueError(f"{where}: finish it first (--resume-from without --epochs), or train a new decoder "
                         "(--decoder-epochs N); then continue the diffusion from that run's model.pt")
    if args.decoder_epochs is not None:
        print(f"resuming: {where}; --decoder-epochs trains a new decoder in its place")
        return False
    print(f"resuming: {where}; finishing it: epochs {done + 1}–{epochs}, the learning-rate schedule going on "
          "where it stopped")
    return True


#: Files that mark a folder as holding a generate run (written by :func:`.pipeline.run_generation`).
RUN_FILES = ("model.pt", "metrics.json", "config.json", "samples.pkl")
#: Everything a run writes, which ``--overwrite`` clears before the new run starts.
RUN_OUTPUTS = RUN_FILES + ("samples_per_draw.pkl", "samples.png")


def _check_new_run_folder(args: argparse.Namespace) -> None:
    """Refuse an ``--out`` that holds an earlier run (unless ``--overwrite``) or is the ``--graphs``
    folder: a finished model is never replaced by accident, and a data folder never fills with results."""
    out = Path(args.out)
    if args.graphs is not None and Path(args.graphs).is_dir() and out.resolve() == Path(args.graphs).resolve():
        raise ValueError(f"--out {args.out} is the --graphs folder: the results would be read as graphs next "
                         "time; give another folder")
    held = [name for name in RUN_FILES if (out / name).exists()]
    if held and not args.overwrite:
        raise ValueError(f"--out {args.out} already holds a run ({', '.join(held)}); give a new folder, or "
                         "--overwrite to replace it")


def _clear_replaced_run(args: argparse.Namespace) -> None:
    """``--overwrite``: remove what the earlier run wrote, once every check has passed and just before
    the new run starts, so the folder never mixes the two runs' files (a draw count, a cut run)."""
    if args.overwrite:
        for name in RUN_OUTPUTS:
            (Path(args.out) / name).unlink(missing_ok=True)


def run(args: argparse.Namespace) -> int:
    try:
        from .datasets import split_graphs
        from .pipeline import run_generation
    except ImportError as error:
        raise SystemExit(f"the generate command needs networkx, scipy and matplotlib ({error}); "
                         "install them, e.g. pip install networkx scipy matplotlib") from error
    check_output_dir(args.out)
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    if args.checkpoint_every < 0:
        raise ValueError(f"--checkpoint-every must be >= 0, got {args.checkpoint_every}")
    saved, call_epochs, done, decoder_cut = _read_resumed(args)
    _check_new_run_folder(args)
    config = resolve_config(args, saved)
    # A resumed model trains on only when epochs are given; otherwise it is sampled as saved, or, when
    # it was saved mid-run, the interrupted run is finished.
    train_more = args.epochs is not None or (args.config is not None
                                             and "epochs" in GenerationConfig.file_values(args.config))
    finish = done < call_epochs and not train_more
    if done < call_epochs:
        _announce_cut_run(args, call_epochs, done, config.epochs if train_more else None)
    finish_decoder = decoder_cut is not None and _announce_cut_decoder(args, *decoder_cut, train_more)
    if args.decoder_epochs is not None:
        if args.resume_from is None or train_more or config.model != "spectral_vectors":
            raise ValueError("--decoder-epochs trains a new edge decoder for a saved spectral_vectors model: give "
                             "--resume-from RUN/model.pt and no --epochs (continue the diffusion in another run)")
        if args.decoder_epochs < 1:
            raise ValueError(f"--decoder-epochs must be >= 1, got {args.decoder_epochs}")
    graphs, source = load_dataset(config.dataset, args.graphs, trust_pickle=args.trust_pickle)
    if args.graphs is not None:
        source += f" (labelled {config.dataset!r})"
    print(f"data: {source}")
    train, test = split_graphs(graphs)
    print(f"split: {len(train)} training graphs, {len(test)} test graphs (the first {len(test)})")
    _clear_replaced_run(args)
    started = time.time()
    try:
        results = run_generation(config, train, test, args.out, data_source=source,
                                 progress=not args.no_progress, resume_from=args.resume_from,
                                 train_more=train_more, finish=finish, decoder_epochs=args.decoder_epochs,
                                 finish_decoder=finish_decoder, checkpoint_every=args.checkpoint_every)
    except KeyboardInterrupt:
        saved_model = Path(args.out) / "model.pt"
        if saved_model.is_file() and saved_model.stat().st_mtime >= started:
            print(f"\ninterrupted: {saved_model} holds the last saved model; go on with: python -m spectraldiff "
                  f"generate --resume-from {saved_model} --out NEW_DIR (no --epochs: it finishes the training "
                  "where it was cut short, then samples and scores)", file=sys.stderr)
        else:
            print(f"\ninterrupted before this run saved a model (every {args.checkpoint_every} epochs, "
                  "--checkpoint-every)", file=sys.stderr)
        return 130
    print(summary_line(results))
    resumed = (f" ({'finished' if finish or finish_decoder else 'resumed'} from {args.resume_from})"
               if args.resume_from else "")
    if finish_decoder:
        resumed += ", its decoder training finished"
    if args.decoder_epochs is not None:
        # Said out loud: the decoder trains at the saved run's learning rate and EMA decay unless the config
        # sets them, and a run annealed to a small learning rate would otherwise train it too slowly.
        resumed += (f", then a new edge decoder for {args.decoder_epochs} epochs at learning rate "
                    f"{config.learning_rate:g} ({config.learning_rate_schedule}), EMA decay {config.ema_decay:g}")
    epochs = f"{results['epochs']} epoch{'s' if results['epochs'] != 1 else ''}"
    print(f"training {results['training_seconds']:.1f} s over {epochs}{resumed}; sampling "
          f"{results['sampling_seconds_per_graph'] * 1e3:.1f} ms per graph at {config.steps} steps; "
          f"results in {args.out}")
    return 0
